"""Multi-layer perceptron over flattened inputs."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import nn

from .layers import Normalize
from .registry import register_model

__all__ = ["MLP", "mlp"]


class MLP(nn.Sequential):
    """Flatten -> (Linear -> ReLU -> Dropout) x len(hidden) -> Linear.

    Every ReLU is its own module (shap's DeepExplainer needs it).
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        hidden: Sequence[int] = (128, 64),
        dropout: float = 0.0,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> None:
        layers: list[nn.Module] = []
        if mean is not None and std is not None:
            layers.append(Normalize(mean, std, ndim=len(input_shape)))
        layers.append(nn.Flatten())
        width = math.prod(input_shape)
        for h in hidden:
            layers += [nn.Linear(width, int(h)), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = int(h)
        layers.append(nn.Linear(width, num_classes))
        super().__init__(*layers)


@register_model("mlp")
def mlp(input_shape: tuple[int, ...], num_classes: int, **kwargs) -> MLP:
    return MLP(input_shape, num_classes, **kwargs)
