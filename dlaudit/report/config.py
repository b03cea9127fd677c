"""Project configuration: ``[tool.dlaudit]`` in pyproject.toml (or a file given with ``--config``).

.. code-block:: toml

    [tool.dlaudit]
    gates = ["performance.accuracy < 0.95", "robustness.pgd_linf.acc@0.1 < 0.5"]
    checks = ["performance", "robustness"]   # or "performance,robustness"
    fast = true
    baseline = "reports/baseline.json"      # relative to this file
    max-drop = 0.02

Each gate is a condition to fail on, exactly as ``--fail-on`` takes it (``fail-on``
is accepted as another name for ``gates``). Command-line options override these;
``--fail-on`` gates are added to the
configured ones. A file given with ``--config`` may also hold the keys at its top
level (a dedicated ``dlaudit.toml``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..parsing import split_list
from ..paths import TOML_LIMIT, read_input, shown
from .gates import Gate, parse_gate

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover  (Python 3.10: the same parser, from PyPI)
    import tomli as tomllib

__all__ = ["AuditConfig", "load_config", "KEYS"]

KEYS = ("gates", "fail-on", "checks", "fast", "baseline", "max-drop")


@dataclass(frozen=True)
class AuditConfig:
    """What ``[tool.dlaudit]`` sets; ``source`` is the file it came from (None: no configuration)."""

    gates: list[Gate] = field(default_factory=list)
    checks: list[str] | None = None
    fast: bool | None = None
    baseline: Path | None = None
    max_drop: float | None = None
    source: Path | None = None


def load_config(path: str | Path | None = None, *, cwd: str | Path | None = None) -> AuditConfig:
    """Read ``[tool.dlaudit]`` from ``path``, or from ``pyproject.toml`` in ``cwd`` (default: the current directory).

    A given file that is missing or malformed is a :class:`ConfigError`; a
    missing ``pyproject.toml`` or one without ``[tool.dlaudit]`` is no configuration.
    """
    if path is None:
        default = Path(cwd or ".") / "pyproject.toml"
        if not os.path.lexists(default):  # one that is a FIFO, a device or a broken link is said, not skipped
            return AuditConfig()
        table = _tool_table(_read_toml(default, "the default config"), default)
        return AuditConfig() if table is None else _parse(table, default)
    path = Path(path)
    if not os.path.lexists(path):
        raise ConfigError(f"config file {shown(path)} does not exist; give a TOML file with a [tool.dlaudit] table")
    doc = _read_toml(path, "config file")
    table = _tool_table(doc, path)
    if table is None:
        table = {k: v for k, v in doc.items() if k != "tool"}
        if not table:
            raise ConfigError(
                f'{path} has no [tool.dlaudit] table; add one, e.g. gates = ["performance.accuracy < 0.95"]'
            )
    return _parse(table, path)


def _read_toml(path: Path, label: str) -> dict[str, Any]:
    raw = read_input(path, label, limit=TOML_LIMIT, error=ConfigError)
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{shown(path)} is not valid TOML: {err}") from err
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{shown(path)} is not UTF-8 text ({err.reason} at byte {err.start}); TOML files are UTF-8"
        ) from err
    except RecursionError as err:
        raise ConfigError(f"{shown(path)} is nested too deeply to be a configuration") from err


def _tool_table(doc: dict[str, Any], path: Path) -> Any:
    """``doc["tool"]["dlaudit"]`` (None when absent); a ``tool`` that is not a table is a :class:`ConfigError`."""
    tool = doc.get("tool", {})
    if not isinstance(tool, Mapping):
        raise ConfigError(
            f"{shown(path)}: tool must be a table ([tool.dlaudit] ...), got {type(tool).__name__} {tool!r:.40}; "
            "remove the top-level tool key or make it a table"
        )
    return tool.get("dlaudit")


def _parse(table: Any, path: Path) -> AuditConfig:
    where = f"{path} [tool.dlaudit]"
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where} must be a table")
    table = {str(k).replace("_", "-"): v for k, v in table.items()}
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(KEYS)}")
    return AuditConfig(
        gates=[parse_gate(g) for key in ("gates", "fail-on") for g in _strings(table.get(key, []), key, where)],
        checks=_checks(table["checks"], where) if "checks" in table else None,
        fast=_bool(table["fast"], "fast", where) if "fast" in table else None,
        baseline=(path.parent / _string(table["baseline"], "baseline", where)) if "baseline" in table else None,
        max_drop=_max_drop(table["max-drop"], where) if "max-drop" in table else None,
        source=path,
    )


def _strings(value: Any, key: str, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f'{where}: {key} must be a list of strings, e.g. {key} = ["performance.accuracy < 0.95"]')
    return value


def _string(value: Any, key: str, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: {key} must be a non-empty string")
    return value


def _checks(value: Any, where: str) -> list[str]:
    return split_list(value if isinstance(value, str) else _strings(value, "checks", where))


def _bool(value: Any, key: str, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: {key} must be true or false, got {value!r}")
    return value


def _max_drop(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigError(f"{where}: max-drop must be a number >= 0, got {value!r}")
    return float(value)
