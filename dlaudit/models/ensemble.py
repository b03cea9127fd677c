"""A weighted ensemble of reference models: ``log(sum_j w_j softmax(f_j(x)))``.

Used for fairlearn's ExponentiatedGradient, whose result is a weighted mixture of
classifiers. The ensemble averages its members' class probabilities with the
mixture weights and returns the log of the average, so its softmax *is* that
average and the saved model is an ordinary (N, classes) logits model.

Members are described by plain data (``{"architecture": ..., "arch_kwargs": ...}``,
or ``{"architecture": "constant", "arch_kwargs": {"label": k}}`` for a member that
always predicts class ``k``), so a checkpoint loads with ``weights_only=True``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .registry import build_model, register_model

__all__ = ["Ensemble", "ConstantLogits", "ensemble"]

_NEG = -1e4  # log-probability of a class a constant member never predicts


class ConstantLogits(nn.Module):
    """Always predicts class ``label`` (log-probabilities 0 for it, -1e4 for the others)."""

    def __init__(self, num_classes: int, label: int) -> None:
        super().__init__()
        if not 0 <= label < num_classes:
            raise ConfigError(f"constant member: label {label} is outside 0..{num_classes - 1}")
        row = torch.full((num_classes,), _NEG)
        row[label] = 0.0
        self.register_buffer("row", row, persistent=False)
        self.label = label

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.row.expand(len(x), -1)


class Ensemble(nn.Module):
    """Weighted average of member probabilities, returned as logits (log-probabilities)."""

    def __init__(self, members: Sequence[nn.Module], weights: Sequence[float]) -> None:
        super().__init__()
        if not members or len(members) != len(weights):
            raise ConfigError(
                f"ensemble: {len(members)} members for {len(weights)} weights; give one weight per member"
            )
        values = [float(v) for v in weights]  # checked as numbers: the module may be built on the meta device
        if not all(math.isfinite(v) and v >= 0 for v in values) or sum(values) <= 0:
            raise ConfigError(f"ensemble weights must be finite, non-negative and not all zero, got {list(weights)}")
        w = torch.tensor(values, dtype=torch.float32)
        self.members = nn.ModuleList(members)
        self.register_buffer("log_weights", torch.log(w / w.sum()), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logp = torch.stack([F.log_softmax(m(x), dim=1) for m in self.members])  # (M, N, K)
        return torch.logsumexp(logp + self.log_weights[:, None, None], dim=0)


def _member(
    spec: Mapping[str, Any], input_shape: tuple[int, ...], num_classes: int, extra: dict[str, Any]
) -> nn.Module:
    arch = spec.get("architecture")
    kwargs = dict(spec.get("arch_kwargs") or {})
    if arch == "constant":
        return ConstantLogits(num_classes, int(kwargs.get("label", 0)))
    if not arch or arch == "ensemble":
        raise ConfigError(f"ensemble member needs a reference architecture (not {arch!r})")
    return build_model(arch, input_shape, num_classes, **{**extra, **kwargs})


@register_model("ensemble")
def ensemble(
    input_shape: tuple[int, ...],
    num_classes: int,
    members: Sequence[Mapping[str, Any]] = (),
    weights: Sequence[float] = (),
    **kwargs: Any,
) -> Ensemble:
    """Build an :class:`Ensemble` from member specs; ``kwargs`` (e.g. mean/std) go to every member."""
    if not members:
        raise ConfigError("ensemble needs at least one member")
    if not all(math.isfinite(float(w)) for w in weights):
        raise ConfigError(f"ensemble weights must be finite, got {list(weights)}")
    return Ensemble([_member(m, input_shape, num_classes, kwargs) for m in members], weights)
