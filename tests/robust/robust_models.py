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


def tiny_mlp(seed: int, classes: int, *, hidden: int = 8, dropout: bool = False) -> nn.Sequential:
    """Seeded Flatten, Linear(12, hidden), ReLU, [Dropout(0.5)], Linear(hidden, classes): for 1x3x4 inputs."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Flatten(), nn.Linear(12, hidden), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(0.5))
    layers.append(nn.Linear(hidden, classes))
    return nn.Sequential(*layers)


def property_case(
    case: dict, classes: int, dtype: torch.dtype = torch.float32
) -> tuple[nn.Sequential, list[bool], torch.Tensor, torch.Tensor]:
    """A property test's subject, as ``case`` draws it: a :func:`tiny_mlp` (``dropout``), in ``train_mode``, its
    first layer ``frozen`` or not; its ``requires_grad`` flags; ``n`` inputs in ``[lo, hi]`` (the first with
    values on both edges); their labels."""
    gen = torch.Generator().manual_seed(case["seed"])
    model = tiny_mlp(case["seed"], classes, dropout=case["dropout"]).to(dtype)
    model.train(case["train_mode"])
    if case["frozen"]:
        model[1].weight.requires_grad_(False)
    flags = [p.requires_grad for p in model.parameters()]
    lo, hi = case["lo"], case["hi"]
    x = lo + (hi - lo) * torch.rand(case["n"], 1, 3, 4, generator=gen, dtype=dtype)
    x[0, 0, 0, :2] = torch.tensor([lo, hi])  # values on the edges of the range
    y = torch.randint(0, classes, (case["n"],), generator=gen)
    return model, flags, x, y


def assert_attack_invariants(model: nn.Module, x: torch.Tensor, x_adv: torch.Tensor, case: dict, flags: list[bool]):
    """What every attack keeps: ``x_adv`` has ``x``'s shape and dtype, lies within ``eps`` of ``x`` in ``norm``
    and inside ``[lo, hi]``; the model is left as found (``train_mode``, ``flags``, no gradients)."""
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype
    delta = (x_adv.double() - x.double()).flatten(1)
    size = delta.abs().max(dim=1).values if case["norm"] == "linf" else delta.norm(dim=1)
    assert float(size.max()) <= case["eps"] + 1e-6
    assert float(x_adv.min()) >= case["lo"] and float(x_adv.max()) <= case["hi"]
    # the model is left as found: mode, requires_grad, no gradients
    assert model.training == case["train_mode"]
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())
    assert not x_adv.requires_grad and x.grad is None
