"""Names a package exports but imports on first use, so that its light modules load without torch."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_getattr(package: str, modules: Mapping[str, str]) -> Callable[[str], Any]:
    """The module ``__getattr__`` of ``package`` that imports each name from its module in ``modules``.

    ``modules`` maps a public name to the module that defines it, relative to ``package``
    (``".methods"``, ``"..data.groups"``); any other name is an ``AttributeError``.
    """

    def __getattr__(name: str) -> Any:
        if name in modules:
            return getattr(importlib.import_module(modules[name], package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
