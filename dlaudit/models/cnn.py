"""The seed CNN: Conv 32 3x3, ReLU, MaxPool 2, Dense 128, Dropout 0.5, Dense classes."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from ..errors import ConfigError
from .layers import KeptDropout, Normalize
from .registry import register_model

__all__ = ["CNN", "cnn"]


class CNN(nn.Sequential):
    """The seed architecture, sized from the input.

    Small images (under 16 pixels a side, e.g. 8x8 digits) get a padded
    convolution so the pooled feature map keeps the image's full extent; 28x28
    MNIST gets the unpadded seed layout. Every ReLU is its own module.
    ``dropout_at_inference`` keeps the dropout on in eval mode (:class:`~dlaudit.models.layers.KeptDropout`,
    Monte Carlo dropout): a stochastic model, recorded on the card so a checkpoint loads as one.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        channels: int = 32,
        hidden: int = 128,
        dropout: float = 0.5,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        dropout_at_inference: bool = False,
    ) -> None:
        if len(input_shape) != 3:
            raise ConfigError(
                f"cnn needs image inputs shaped (C, H, W), got input shape {tuple(input_shape)}; use mlp for tabular data"
            )
        c, h, w = (int(s) for s in input_shape)
        pad = 1 if min(h, w) < 16 else 0
        oh, ow = (h + 2 * pad - 2) // 2, (w + 2 * pad - 2) // 2
        if oh < 1 or ow < 1:
            raise ConfigError(f"cnn needs images of at least 3x3 pixels, got {h}x{w}")
        layers: list[nn.Module] = []
        if mean is not None and std is not None:
            layers.append(Normalize(mean, std, ndim=3))
        layers += [
            nn.Conv2d(c, channels, 3, padding=pad),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(channels * oh * ow, hidden),
            nn.ReLU(),
            KeptDropout(dropout) if dropout_at_inference else nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        ]
        super().__init__(*layers)


@register_model("cnn")
def cnn(input_shape: tuple[int, ...], num_classes: int, **kwargs) -> CNN:
    return CNN(input_shape, num_classes, **kwargs)
