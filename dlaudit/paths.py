"""Input and output paths, checked before any work: no output may destroy an input, and every output
location must be writable before a long audit starts (no heavy imports).

Symbolic links are followed: an output that is a symlink stays one, and the file
it points to is replaced atomically (see :func:`dlaudit.utils.atomic_write`); an
output whose target is an input is refused like the input itself.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from .errors import ConfigError

__all__ = ["check_paths", "sidecar_paths", "resolved", "method_outputs"]

PathLike = str | os.PathLike[str]


def sidecar_paths(path: PathLike) -> list[Path]:
    """Where a foreign model's card may lie: ``model.card.json``, then ``model.pt.card.json``."""
    path = Path(path)
    return [path.with_suffix(".card.json"), path.with_name(path.name + ".card.json")]


def method_outputs(output: PathLike, methods: list[str] | tuple[str, ...]) -> dict[str, str]:
    """Where each mitigated model is written: ``output`` itself for one method, else ``<stem>-<method><suffix>``."""
    path = Path(output)
    if len(methods) == 1:
        return {methods[0]: str(path)}
    return {m: str(path.with_name(f"{path.stem}-{m}{path.suffix or '.pt'}")) for m in methods}


def resolved(path: PathLike) -> Path:
    """The absolute path with every symlink followed (the file that would really be read or written)."""
    return Path(path).expanduser().resolve(strict=False)


def _same(a: Path, b: Path) -> bool:
    if a == b:
        return True
    with contextlib.suppress(OSError):
        return a.exists() and b.exists() and os.path.samefile(a, b)  # hard links
    return False


def _writable(label: str, path: Path) -> None:
    target = resolved(path)
    if target.is_dir():
        raise ConfigError(f"{label} {path} is a directory; give a file path")
    parent = target.parent
    for ancestor in (parent, *parent.parents):
        if ancestor.exists():
            if not ancestor.is_dir():
                raise ConfigError(f"{label} {path} cannot be written: {ancestor} is a file, not a folder")
            break
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".dlaudit-probe.", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise ConfigError(
            f"{label} {path} cannot be written ({err.strerror or err}); choose a folder you can write to"
        ) from None


def check_paths(
    inputs: Mapping[str, PathLike | None],
    outputs: Mapping[str, PathLike | None],
) -> None:
    """Refuse, before any work, an output that is one of the inputs (after following symlinks),
    two outputs that are the same file, and an output location that cannot be written.

    ``inputs`` and ``outputs`` map an option name (``"MODEL"``, ``"--json"``) to a path;
    None entries are ignored. A model input brings its sidecar cards along.
    """
    ins: dict[str, Path] = {}
    for label, path in inputs.items():
        if path is None:
            continue
        ins[label] = resolved(path)
        if label == "MODEL":
            for side in sidecar_paths(path):
                ins[f"the model's card {side.name}"] = resolved(side)
    outs = {label: Path(p) for label, p in outputs.items() if p is not None}
    seen: dict[Path, str] = {}
    for label, path in outs.items():
        target = resolved(path)
        for in_label, in_path in ins.items():
            if _same(target, in_path):
                raise ConfigError(
                    f"{label} {path} is {in_label} ({in_path}); writing it would destroy an input; choose another path"
                )
        for other_target, other_label in seen.items():
            if _same(target, other_target):
                raise ConfigError(
                    f"{label} and {other_label} are the same file ({target}); give each output its own path"
                )
        seen[target] = label
    for label, path in outs.items():
        _writable(label, path)
