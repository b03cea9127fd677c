"""Reference architectures, registered by name (timm-style)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from ..errors import ConfigError
from ..limits import check_model_size

__all__ = ["register_model", "list_models", "build_model"]

ModelBuilder = Callable[..., nn.Module]
_REGISTRY: dict[str, ModelBuilder] = {}


def register_model(name: str) -> Callable[[ModelBuilder], ModelBuilder]:
    """Register ``builder(input_shape, num_classes, **kwargs) -> nn.Module`` as ``name``."""

    def deco(builder: ModelBuilder) -> ModelBuilder:
        _REGISTRY[name] = builder
        return builder

    return deco


def list_models() -> list[str]:
    """Names of the registered reference architectures."""
    return sorted(_REGISTRY)


def build_model(name: str, input_shape: tuple[int, ...], num_classes: int, **kwargs: Any) -> nn.Module:
    """Build a reference model by registry name; an unknown name lists the valid ones.

    Its size is checked first (built on torch's meta device, which allocates nothing): a model whose
    parameters would not fit in memory is a :class:`ConfigError`, not an allocation that swaps or fails.
    """
    try:
        builder = _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; choose one of: {', '.join(list_models())}") from None
    try:
        check_model_size(
            lambda: builder(tuple(input_shape), int(num_classes), **kwargs),
            f"model {name} {_shown(kwargs)}".rstrip(),
            "choose smaller layer sizes",
        )
        return builder(tuple(input_shape), int(num_classes), **kwargs)
    except TypeError as err:
        raise ConfigError(f"model {name!r}: bad arguments {kwargs}: {err}") from err


def _shown(kwargs: dict[str, Any]) -> str:
    """``hidden=[200000, 200000], channels=32``, for messages (long values cut)."""
    return ", ".join(f"{k}={str(v)[:60]}" for k, v in kwargs.items())
