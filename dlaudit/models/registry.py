"""Reference architectures, registered by name (timm-style)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from ..errors import ConfigError

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
    """Build a reference model by registry name; an unknown name lists the valid ones."""
    try:
        builder = _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; choose one of: {', '.join(list_models())}") from None
    try:
        return builder(tuple(input_shape), int(num_classes), **kwargs)
    except TypeError as err:
        raise ConfigError(f"model {name!r}: bad arguments {kwargs}: {err}") from err
