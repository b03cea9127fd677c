"""Small building blocks shared by the reference models."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["KeptDropout", "Normalize", "Normalized"]


class KeptDropout(nn.Dropout):
    """Dropout that stays on in eval mode (Monte Carlo dropout; Gal and Ghahramani 2016,
    https://arxiv.org/abs/1506.02142): a model random at inference, which dlaudit detects and
    evaluates with expectation over transformation and majority votes (:mod:`dlaudit.robust.stochastic`)."""

    def train(self, mode: bool = True) -> KeptDropout:
        return super().train(True)


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel (or feature), inside the model.

    Keeping normalisation inside the model means attacks and explanations work
    in the input's own units (e.g. pixel values in [0, 1]).
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], ndim: int) -> None:
        super().__init__()
        shape = (1, -1) + (1,) * (ndim - 1)
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).reshape(shape))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).reshape(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class Normalized(nn.Module):
    """A model with ``(x - mean) / std`` in front: what dlaudit wraps a foreign model in when its card
    gives a normalisation, so attacks and explanations work in the input's own units.

    ``model`` is the wrapped module as loaded (its state_dict keys unchanged under ``model.``).
    """

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float], ndim: int) -> None:
        super().__init__()
        self.normalize = Normalize(mean, std, ndim)
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(self.normalize(x))
