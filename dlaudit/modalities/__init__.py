"""Kinds of data as plug-ins: one :class:`Modality` object per kind (image, tabular, text), found by name.

Cards and data keep the modality's name (a string, for serialisation);
``data.kind`` / ``card.kind`` return the registered object, which analyses query
instead of comparing names. A new modality is a subclass of :class:`Modality`, one
:func:`register_modality` call (or an entry point in the ``dlaudit.modalities`` group,
see :mod:`dlaudit.plugins`) and its tests.
"""

from __future__ import annotations

import difflib
import threading
from typing import Any

from ..errors import ConfigError
from .base import Modality, grouped_segments, pixel_segments
from .image import IMAGE, ImageModality
from .tabular import TABULAR, TabularModality
from .text import TEXT, TextModality

__all__ = [
    "Modality",
    "ImageModality",
    "TabularModality",
    "TextModality",
    "IMAGE",
    "TABULAR",
    "TEXT",
    "register_modality",
    "get_modality",
    "list_modalities",
    "grouped_segments",
    "pixel_segments",
]

_REGISTRY: dict[str, Modality] = {}
_LOCK = threading.Lock()
_PLUGINS_LOADED = False


def register_modality(modality: Modality, *, replace: bool = False) -> Modality:
    """Register ``modality`` under its ``name``; a second modality of the same name is an error unless ``replace``.

    >>> register_modality(TextModality())  # doctest: +SKIP
    """
    if not isinstance(modality, Modality):
        raise ConfigError(f"register_modality takes a Modality instance, got {type(modality).__name__}")
    name = modality.name
    if not name or not name.replace("_", "").replace("-", "").isalnum():
        raise ConfigError(f"a modality name must be a word (letters, digits, - or _), got {name!r}")
    if name in _REGISTRY and _REGISTRY[name] is not modality and not replace:
        raise ConfigError(
            f"modality {name!r} is already registered ({_REGISTRY[name]!r}); pass replace=True to replace it"
        )
    _REGISTRY[name] = modality
    return modality


def _registry() -> dict[str, Modality]:
    global _PLUGINS_LOADED
    if not _PLUGINS_LOADED:
        with _LOCK:
            if not _PLUGINS_LOADED:
                _PLUGINS_LOADED = True
                from ..plugins import load_plugins

                load_plugins("dlaudit.modalities", _take)
    return _REGISTRY


def _take(name: str, obj: Any) -> bool:
    """Register an entry point's object when it is a modality (an instance or a subclass to instantiate)."""
    if isinstance(obj, type) and issubclass(obj, Modality):
        obj = obj()
    if isinstance(obj, Modality):
        register_modality(obj)
        return True
    return False


def list_modalities() -> list[str]:
    """Every registered modality's name, sorted."""
    return sorted(_registry())


def get_modality(name: str | Modality) -> Modality:
    """The modality registered as ``name`` (a modality is returned as is); an unknown name lists the valid ones."""
    if isinstance(name, Modality):
        return name
    registry = _registry()
    if name not in registry:
        close = difflib.get_close_matches(str(name), list(registry), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ConfigError(f"unknown modality {name!r}{hint}; choose from: {', '.join(sorted(registry))}")
    return registry[name]


register_modality(IMAGE)
register_modality(TABULAR)
register_modality(TEXT)
