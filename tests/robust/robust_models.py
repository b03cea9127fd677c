"""Tiny models whose attacks can be worked out by hand (imported by the robustness tests)."""

from __future__ import annotations

import torch
from torch import nn


class LinearMargin(nn.Module):
    """Two classes with logits ``[0, w . x + b]`` (x flattened).

    Against label 1 the cross-entropy's gradient points along ``-w``; the
    smallest L-inf perturbation that flips a sample of margin ``m = w . x + b``
    is ``m / ||w||_1`` (when the value range does not bind).
    """

    def __init__(self, w: list[float], b: float = 0.0) -> None:
        super().__init__()
        self.lin = nn.Linear(len(w), 1)
        with torch.no_grad():
            self.lin.weight.copy_(torch.tensor([w]))
            self.lin.bias.fill_(b)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.lin(x.flatten(1))
        return torch.cat([torch.zeros_like(z), z], dim=1)


class FlatOutput(nn.Module):
    """A broken 'classifier' that returns one score per input, shape (N,)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x.flatten(1)).flatten()


class DictOutput(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": self.lin(x.flatten(1))}


class RoundedMean(nn.Module):
    """Gradient masking by construction: the class is round(mean(x)), whose gradient is zero.

    A sound attack with eps 0.5 flips every sample of mean 0.05 or 0.95; gradient
    attacks cannot move at all.
    """

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(10.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.scale * (torch.round(x.flatten(1).mean(dim=1, keepdim=True)) - 0.5)
        return torch.cat([torch.zeros_like(z), z], dim=1)
