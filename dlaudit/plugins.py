"""Plug-ins from other packages, through Python entry points (as pytest finds its plugins).

A third-party package adds attacks, explanation methods, analyses, modalities or model
formats by declaring an entry point in one of the :data:`GROUPS`, e.g. in its
``pyproject.toml``::

    [project.entry-points."dlaudit.attacks"]
    jitter = "dlaudit_jitter"

The entry point names a module (importing it runs its ``register_*`` calls), a function
that takes no arguments and registers, or the object to register itself (an
:class:`~dlaudit.robust.attacks.AttackMethod` subclass, an explanation
:class:`~dlaudit.explain.methods.Method`, an :class:`~dlaudit.analysis.Analysis`, a
:class:`~dlaudit.modalities.Modality`), which the registry of that group then takes.

Each registry calls :func:`load_plugins` for its group when it is first consulted, so
``import dlaudit`` stays light and a plug-in is imported only when its kind is needed.
A plug-in that fails to load is one warning line (``logging``; the CLI prints it on
stderr), never a crash: the command goes on without it.
"""

from __future__ import annotations

import importlib.metadata
import logging
import threading
import types
from collections.abc import Callable
from typing import Any

__all__ = ["GROUPS", "load_plugins", "loaded_plugins", "failed_plugins"]

log = logging.getLogger(__name__)

GROUPS = ("dlaudit.attacks", "dlaudit.explainers", "dlaudit.analyses", "dlaudit.formats", "dlaudit.modalities")
"""The entry-point groups dlaudit reads, one per kind of plug-in."""

Registrar = Callable[[str, Any], bool]
"""``registrar(entry point name, loaded object) -> True`` when it registered the object itself."""

_LOCK = threading.RLock()
_DONE: set[str] = set()
_LOADED: dict[str, list[str]] = {}
_FAILED: dict[str, dict[str, str]] = {}


def load_plugins(group: str, registrar: Registrar | None = None) -> list[str]:
    """Load every entry point of ``group`` once; the names of those that loaded.

    Parameters
    ----------
    group
        One of :data:`GROUPS`.
    registrar
        Offered each loaded object first: returns True when it registered it (an object
        of its registry's kind). Otherwise a module counts as registered by its import
        and a callable is called with no arguments.

    Returns
    -------
    list[str]
        Entry-point names that loaded, in the order loaded (empty on later calls for the
        same group: each group loads once per process).

    Notes
    -----
    A plug-in that raises while loading or registering (any ``Exception``: it is foreign
    code) is logged as one warning line naming it and the error, and skipped.
    """
    if group not in GROUPS:
        raise ValueError(f"unknown plug-in group {group!r}; choose from: {', '.join(GROUPS)}")
    with _LOCK:
        if group in _DONE:
            return []
        _DONE.add(group)
        loaded: list[str] = []
        for ep in _entry_points(group):
            try:
                _register(ep, registrar)
            except Exception as err:  # noqa: BLE001 - a broken third-party plug-in must not stop the command
                reason = _one_line(err)
                _FAILED.setdefault(group, {})[ep.name] = reason
                log.warning("plug-in %s (%s = %s) was not loaded: %s", ep.name, group, ep.value, reason)
                continue
            loaded.append(ep.name)
        _LOADED[group] = loaded
        return loaded


def loaded_plugins(group: str) -> list[str]:
    """The entry-point names of ``group`` that loaded (empty before the group was first consulted)."""
    return list(_LOADED.get(group, []))


def failed_plugins(group: str) -> dict[str, str]:
    """Entry-point name -> the one-line reason, for the plug-ins of ``group`` that failed to load."""
    return dict(_FAILED.get(group, {}))


def _entry_points(group: str) -> list[importlib.metadata.EntryPoint]:
    """The group's entry points, once each (a distribution found twice on the path is listed twice)."""
    seen: dict[tuple[str, str], importlib.metadata.EntryPoint] = {}
    for ep in importlib.metadata.entry_points(group=group):
        seen.setdefault((ep.name, ep.value), ep)
    return sorted(seen.values(), key=lambda ep: ep.name)


def _register(ep: importlib.metadata.EntryPoint, registrar: Registrar | None) -> None:
    obj = ep.load()
    if registrar is not None and registrar(ep.name, obj):
        return
    if isinstance(obj, types.ModuleType):
        return
    if callable(obj):
        obj()
        return
    raise TypeError(f"{ep.value} is neither a module, a registration function nor an object this registry takes")


def _one_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0][:200]}" if lines else type(err).__name__


def _reset() -> None:
    """Forget what was loaded, so the next consultation loads again (for tests)."""
    with _LOCK:
        _DONE.clear()
        _LOADED.clear()
        _FAILED.clear()
