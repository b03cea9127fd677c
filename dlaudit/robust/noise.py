"""Accuracy under random noise added to the inputs (Gaussian and uniform).

Random noise is the weakest perturbation: a model that fails under it at small
strengths is fragile to ordinary corruptions, not only to attacks (see Hendrycks
and Dietterich 2019, "Benchmarking neural network robustness to common
corruptions and perturbations", https://arxiv.org/abs/1903.12261).

Gaussian noise at strength ``s`` has standard deviation ``s``; uniform noise is
drawn from ``U(-s, s)``. Noisy inputs are clipped to the value range. Each sample
draws one unit noise per kind (seeded, independent of the batch size) and every
strength scales that same draw, so the curve is smooth in the strength. A model random at
inference, passed as a :class:`~dlaudit.robust.stochastic.Keyed` model (or a majority vote of
one), has its passes keyed by each sample's position in ``x`` (the same numbers for any batch size).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..bundle import ModelBundle
from ..errors import ConfigError
from ..modalities import Modality
from ..utils import ProgressFn, model_state
from . import _random
from .attacks import check_inputs, check_logits, resolve_model, speed
from .stochastic import keyed_rows

__all__ = ["KINDS", "noise_accuracy"]

KINDS = ("gaussian", "uniform")
_STREAMS = {"gaussian": 1001, "uniform": 1002}


def noise_accuracy(
    model: nn.Module | ModelBundle,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    kind: str = "gaussian",
    strengths: Sequence[float] = (0.05, 0.1, 0.2, 0.3),
    seed: int = 0,
    value_range: tuple[float, float] | None = None,
    batch_size: int = 512,
    device: torch.device | str | None = None,
    progress: ProgressFn | None = None,
    modality: Modality | None = None,
) -> dict[float, float]:
    """Accuracy at each noise strength (``{strength: accuracy}``).

    Parameters
    ----------
    kind
        ``"gaussian"`` (standard deviation ``s``) or ``"uniform"`` (``U(-s, s)``).
    strengths
        Noise strengths in input units, each ``>= 0``.
    modality
        The inputs' :class:`~dlaudit.modalities.Modality`, which applies the noise
        (:meth:`~dlaudit.modalities.Modality.perturb`); None: added and clipped to the value range.
    """
    if kind not in KINDS:
        raise ConfigError(f"unknown noise {kind!r}; choose from: {', '.join(KINDS)}")
    bad = [s for s in strengths if not s >= 0]
    if bad:
        raise ConfigError(f"noise strengths must be >= 0, got {bad}")
    module, (lo, hi), dev, k = resolve_model(model, value_range, device)
    y = check_inputs(x, y, (lo, hi))
    n = len(x)
    correct = torch.zeros(len(strengths))
    shape = tuple(x.shape[1:])
    draw = _random.normal if kind == "gaussian" else _random.uniform
    perturb = modality.perturb if modality is not None else _add_clipped
    with model_state(module, train=False, grad=False), speed.layout(module, x), torch.no_grad():
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            xb, yb = x[start:stop].to(dev), y[start:stop].to(dev)
            unit = draw(shape, start, stop, seed=seed, stream=_STREAMS[kind]).to(device=dev, dtype=xb.dtype)
            rows = torch.arange(start, stop)
            for i, s in enumerate(strengths):
                noisy = perturb(xb, float(s) * unit, (lo, hi)) if s > 0 else xb
                with keyed_rows(rows, "noise", kind, float(s)):  # a Keyed model's passes keyed by the samples
                    pred = check_logits(module(noisy), len(xb), k).argmax(dim=1)
                correct[i] += float((pred == yb).sum())
            if progress is not None:
                progress(f"robustness:noise_{kind}", stop, n)
    return {float(s): float(c) / n if n else float("nan") for s, c in zip(strengths, correct)}


def _add_clipped(x: torch.Tensor, noise: torch.Tensor, value_range: tuple[float, float]) -> torch.Tensor:
    return (x + noise).clamp_(*value_range)
