"""Tiny models whose explanations can be worked out by hand (imported by the explain tests)."""

from __future__ import annotations

import torch
from torch import nn

from dlaudit.explain import ExplainContext
from dlaudit.explain._common import columns_for

# A 3-class linear model on 4 features: logits = W x + b.
WEIGHTS = torch.tensor([[1.0, -2.0, 0.5, 0.0], [0.0, 1.0, -1.0, 3.0], [-1.0, 0.0, 2.0, 1.0]])
BIAS = torch.tensor([0.1, -0.2, 0.3])


def linear_module() -> nn.Module:
    lin = nn.Linear(4, 3)
    with torch.no_grad():
        lin.weight.copy_(WEIGHTS)
        lin.bias.copy_(BIAS)
    return nn.Sequential(lin).eval()


def tabular_context(background: torch.Tensor, **kwargs: object) -> ExplainContext:
    """A context for plain numeric features in [0, 1] (no encoder)."""
    return ExplainContext(
        "tabular", (0.0, 1.0), background, columns=columns_for(background.shape[1], None, None), **kwargs
    )


class FunctionalReLU(nn.Module):
    """ReLU called as a function: invisible to DeepLIFT's module hooks."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 8)
        self.b = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.nn.functional.relu(self.a(x)))


class ReusedReLU(nn.Module):
    """One nn.ReLU object used twice."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 8)
        self.b = nn.Linear(8, 8)
        self.c = nn.Linear(8, 3)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c(self.act(self.b(self.act(self.a(x)))))
