"""The analysis registry, and the contract every analysis keeps.

An analysis is a function ``(bundle, data, *, seed, fast, progress, **params) -> Section``
registered under the name ``--checks`` uses. The contract, checked for every
registered analysis by ``tests/test_analysis_contract.py``:

- it leaves the model as it found it (training mode, ``requires_grad``, hooks); :func:`run_analysis`
  runs it with the model in eval mode and restores each submodule's mode after;
- every metric it reports is named ``<section name>.*``;
- the same seed gives the same numbers; ``fast=True`` is accepted;
- it raises :class:`~dlaudit.errors.AnalysisError` when it does not apply (the report
  shows it as skipped with the reason) and any other error when it fails;
  :func:`run_analysis` turns both into a section, so no analysis aborts a report.

The built-in analyses are registered in one place, :mod:`dlaudit.analyses`, by import
path: nothing is imported until an analysis runs (``dlaudit --help`` stays light).
A new analysis is one module, one :func:`register_analysis` line and one test file.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import AnalysisError, ConfigError, DlauditError

if TYPE_CHECKING:
    from .bundle import ModelBundle
    from .data import AuditData
    from .report.model import Section

__all__ = [
    "Analysis",
    "register_analysis",
    "list_analyses",
    "default_analyses",
    "get_analysis",
    "run_analysis",
    "parse_checks",
]

log = logging.getLogger(__name__)

AnalysisFn = Callable[..., "Section"]


@dataclass(frozen=True)
class Analysis:
    """A registered analysis: its ``--checks`` name, section title, function (or its
    ``"module:function"`` import path), place in the report, and whether it runs by default."""

    name: str
    title: str
    target: AnalysisFn | str
    order: int = 100
    default: bool = True

    @property
    def fn(self) -> AnalysisFn:
        """The analysis function (imported on first use when registered by path)."""
        if callable(self.target):
            return self.target
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)


_REGISTRY: dict[str, Analysis] = {}
_BUILTINS_LOADED = False


def register_analysis(
    name: str,
    target: AnalysisFn | str | None = None,
    *,
    title: str | None = None,
    order: int = 100,
    default: bool = True,
) -> Any:
    """Register an analysis under ``name`` (the ``--checks`` name and its metrics' prefix).

    ``target`` is the function or its ``"module:function"`` path; left out, this
    returns a decorator. ``default=False`` analyses run only when ``--checks`` names them.

    >>> @register_analysis("latency", title="Latency", order=50, default=False)  # doctest: +SKIP
    ... def latency(bundle, data, *, seed=0, fast=False, progress=None): ...
    """
    if not name or not name.replace("_", "").replace("-", "").isalnum():
        raise ConfigError(f"an analysis name must be a word (letters, digits, - or _), got {name!r}")

    def add(fn: AnalysisFn | str) -> AnalysisFn | str:
        _REGISTRY[name] = Analysis(name, title or name.capitalize(), fn, order, default)
        return fn

    return add if target is None else add(target)


def _registry() -> dict[str, Analysis]:
    global _BUILTINS_LOADED
    if not _BUILTINS_LOADED:
        _BUILTINS_LOADED = True
        importlib.import_module(f"{__package__}.analyses")
    return _REGISTRY


def list_analyses() -> list[str]:
    """Every registered analysis, in report order."""
    return [a.name for a in sorted(_registry().values(), key=lambda a: (a.order, a.name))]


def default_analyses() -> list[str]:
    """The analyses a report runs when ``--checks`` is not given, in report order."""
    return [name for name in list_analyses() if _registry()[name].default]


def get_analysis(name: str) -> Analysis:
    try:
        return _registry()[name]
    except KeyError:
        raise ConfigError(f"unknown check {name!r}; choose from: {', '.join(list_analyses())}") from None


def parse_checks(checks: str | Any | None) -> list[str]:
    """``--checks`` (comma-separated or a list) as registered names in report order; None: the defaults."""
    if checks is None:
        return default_analyses()
    from .parsing import parse_names, split_list

    order = list_analyses()
    if not split_list(checks):
        raise ConfigError(f"no checks selected; choose from: {', '.join(order)}")
    items = parse_names(checks, order, "check(s)")
    return sorted(items, key=order.index)


def run_analysis(name: str, bundle: ModelBundle, data: AuditData, **params: Any) -> Section:
    """Run one analysis; an error becomes a skipped or failed section, never an exception."""
    from .report.model import Section
    from .utils import eval_mode

    analysis = get_analysis(name)
    start = time.perf_counter()
    try:
        with eval_mode(
            bundle.module
        ):  # an audit measures the model as deployed: no dropout, running batch-norm statistics
            section = analysis.fn(bundle, data, **params)
    except AnalysisError as err:
        section = Section.skipped(name, analysis.title, str(err))
    except DlauditError as err:
        section = Section.failed(name, analysis.title, str(err))
    except Exception as err:  # an analysis bug must not abort the whole report
        log.debug("analysis %s failed", name, exc_info=True)
        section = Section.failed(name, analysis.title, f"{type(err).__name__}: {err}")
    section.seconds = round(time.perf_counter() - start, 3)
    return section
