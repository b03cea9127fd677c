"""Post-processors: how a card's ``postprocess={"kind": KIND, ...}`` wraps a loaded module.

A post-processor is a function ``(module, card) -> module`` that wraps a model after it
loads (mitigation by group thresholds is one: the card stores the thresholds
and the wrapper applies them, so the loaded model gives the mitigated decisions).

The core (:mod:`dlaudit.bundle`) looks a kind up here and never names the package that
provides it; providers register themselves:

- dlaudit's own post-processors are registered in :mod:`dlaudit.analyses`, the one module
  that registers the built-in plug-ins (analyses and post-processors), by import path
  ``"package.module:function"``, so that nothing heavy (fairlearn, scikit-learn) loads
  until a card asks for that kind;
- anyone else calls ``register_postprocessor(kind, fn)`` (or uses it as a decorator)
  before loading a model whose card names ``kind``.

The built-in registrations load on the first look-up, the way :mod:`dlaudit.analysis`
loads the built-in analyses: this module imports :mod:`dlaudit.analyses` by name when
first asked, so neither module imports the other at import time and no package of
analyses is named here.

>>> import torch
>>> from dlaudit.postprocessors import register_postprocessor
>>> class Temperature(torch.nn.Module):
...     def __init__(self, module, t):
...         super().__init__()
...         self.module, self.t = module, t
...     def forward(self, x):
...         return self.module(x) / self.t
>>> @register_postprocessor("temperature")  # a card with postprocess={"kind": "temperature", "t": 2.0}
... def temperature(module, card):
...     return Temperature(module, card.postprocess["t"])
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from .errors import ConfigError

if TYPE_CHECKING:
    from torch import nn

    from .card import ModelCard

__all__ = ["Postprocessor", "register_postprocessor", "get_postprocessor", "list_postprocessors"]

Postprocessor = Callable[["nn.Module", "ModelCard"], "nn.Module"]
"""``(module, card) -> module``: wraps a loaded module as its card's ``postprocess`` says."""

_BUILTINS = "dlaudit.analyses"
"""The module that registers dlaudit's own plug-ins; imported on the first look-up."""
_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_REGISTRY: dict[str, Postprocessor | str] = {}
_builtins_loaded = False


def register_postprocessor(
    kind: str, target: Postprocessor | str | None = None
) -> Callable[[Postprocessor], Postprocessor] | Postprocessor | str:
    """Register how a card's ``postprocess={"kind": kind, ...}`` wraps a loaded module.

    Parameters
    ----------
    kind
        The name cards use (letters, digits, ``-`` or ``_``); registering it again replaces it.
    target
        The function ``(module, card) -> module``, or its import path ``"package.module:function"``
        (imported when a card first asks for ``kind``). Left out, a decorator is returned.

    Returns
    -------
    callable or str
        ``target`` itself, or the decorator that registers the function it decorates.

    Raises
    ------
    ConfigError
        ``kind`` is not a word, or ``target`` is neither callable nor an import path.
    """
    if not isinstance(kind, str) or not re.fullmatch(r"[A-Za-z0-9][\w-]*", kind):
        raise ConfigError(f"a post-processor kind must be a word (letters, digits, - or _), got {kind!r}")

    def add(fn: Postprocessor | str) -> Postprocessor | str:
        if isinstance(fn, str) and not _PATH.match(fn):
            raise ConfigError(f"post-processor {kind!r}: {fn!r} is not an import path 'package.module:function'")
        if not isinstance(fn, str) and not callable(fn):
            raise ConfigError(f"post-processor {kind!r} must be a function (module, card) -> module, got {fn!r}")
        _REGISTRY[kind] = fn
        return fn

    return add if target is None else add(target)


def _registry() -> dict[str, Postprocessor | str]:
    global _builtins_loaded
    if not _builtins_loaded:
        _builtins_loaded = True
        importlib.import_module(_BUILTINS)
    return _REGISTRY


def list_postprocessors() -> list[str]:
    """The registered kinds, sorted (the built-in ones included)."""
    return sorted(_registry())


def get_postprocessor(kind: str) -> Postprocessor | None:
    """The function registered for ``kind`` (imported now when registered by path), or None when none is."""
    target = _registry().get(kind)
    if isinstance(target, str):
        module_name, _, attr = target.partition(":")
        target = getattr(importlib.import_module(module_name), attr)
        _REGISTRY[kind] = target
    return target
