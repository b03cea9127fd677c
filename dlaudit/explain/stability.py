"""Whether a map depends on the class it explains and survives a change of the input that the model ignores.

- Random-logit check (Sixt et al. 2020, "When Explanations Lie: Why Many Modified BP
  Attributions Fail", https://arxiv.org/abs/1912.09818): the map for the explained class
  against the map for a random other class (drawn uniformly from the other classes,
  seeded). The similarity is the Spearman rank correlation of the two *signed* maps over
  units (a pixel's channels summed, a tabular column's one-hot features summed); a method
  whose maps barely depend on the class (similarity near 1) shows the input, not the
  decision. Quantus's ``RandomLogit`` computes the same with
  ``similarity_func=correlation_spearman`` (its default is SSIM).
- Max-sensitivity (Yeh et al. 2019, https://arxiv.org/abs/1901.09392): per sample, the
  largest ``||a(x') - a(x)|| / ||a(x)||`` (Frobenius norms) over ``perturbations`` inputs
  ``x'`` drawn uniformly from the L-inf ball of ``radius`` around ``x`` (clipped to the
  value range), counting only the draws that keep the model's prediction (a map *should*
  change when the decision does). Every draw of every sample is explained in one call.
- Local Lipschitz estimate (Alvarez-Melis & Jaakkola 2018, "On the Robustness of
  Interpretability Methods", https://arxiv.org/abs/1806.08049): with the same draws, the
  largest ``||a(x') - a(x)|| / ||x' - x||`` (map units per input unit, Euclidean norms) over
  the draws that keep the prediction; Quantus's ``LocalLipschitzEstimate`` computes the
  same ratio (with Gaussian draws by default).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..utils import model_state
from ._common import batched_probabilities
from .quality import spearman_rows as _spearman_rows
from .quality import unit_scores

__all__ = ["other_classes", "random_logit_similarity", "StabilityResult", "max_sensitivity"]


def other_classes(target: torch.Tensor, n_classes: int, *, seed: int) -> torch.Tensor:
    """A class other than ``target[i]`` for each sample, uniformly among the ``n_classes - 1`` others (seeded)."""
    if n_classes < 2:
        raise ValueError("the random-logit check needs at least two classes")
    shift = np.random.default_rng(seed).integers(1, n_classes, size=len(target))
    return (target.cpu() + torch.from_numpy(shift)) % n_classes


def random_logit_similarity(
    explain_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    target: torch.Tensor,
    original: torch.Tensor,
    n_classes: int,
    *,
    units: torch.Tensor | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Per-sample Spearman correlation of the signed maps for ``target`` (``original``) and for a random other class."""
    other = other_classes(target, n_classes, seed=seed)
    off = explain_fn(x, other.to(target.device))
    return _spearman_rows(unit_scores(original, units).double().numpy(), unit_scores(off, units).double().numpy())


@dataclass(frozen=True)
class StabilityResult:
    """Per-sample max-sensitivity (NaN where no draw kept the prediction or the map is zero), the local Lipschitz
    estimate from the same draws (NaN where no draw kept the prediction), and how many draws changed the
    prediction (left out)."""

    per_sample: np.ndarray
    dropped: int
    draws: int
    lipschitz: np.ndarray | None = None


def max_sensitivity(
    explain_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    module: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    original: torch.Tensor,
    *,
    radius: float,
    value_range: tuple[float, float],
    perturbations: int = 8,
    seed: int = 0,
    batch_size: int = 256,
) -> StabilityResult:
    """Max-sensitivity of ``explain_fn`` at each row of ``x`` (``original`` its maps there); see the module docstring.

    The prediction passes hold ``batch_size`` rows at most (``explain_fn`` chunks its own); the result does not
    depend on it.
    """
    n, p = len(x), max(1, int(perturbations))
    gen = torch.Generator().manual_seed(int(seed))
    xs = x.detach().cpu().float()
    noise = (torch.rand((n, p, *xs.shape[1:]), generator=gen) * 2.0 - 1.0) * radius
    lo, hi = value_range
    xp = (xs[:, None] + noise).clamp(lo, hi).reshape(n * p, *xs.shape[1:])
    with model_state(module), torch.no_grad():
        pred = batched_probabilities(module, xs, batch_size=batch_size).argmax(dim=1)
        pred_p = batched_probabilities(module, xp, batch_size=batch_size).argmax(dim=1).reshape(n, p)
    kept = pred_p == pred[:, None]
    tp = target.cpu().repeat_interleave(p)
    ap = explain_fn(xp.to(x.device), tp.to(target.device)).detach().cpu().double().reshape(n, p, -1)
    a = original.detach().cpu().double().reshape(n, 1, -1)
    base = a.norm(dim=2)[:, 0]
    change = (ap - a).norm(dim=2)
    diff = change.masked_fill(~kept, float("-inf")).max(dim=1).values
    step = (xp.double().reshape(n, p, -1) - xs.double().reshape(n, 1, -1)).norm(dim=2)
    ratio = torch.where(step > 0, change / step.clamp_min(1e-300), torch.zeros_like(change))
    lips = ratio.masked_fill(~kept, float("-inf")).max(dim=1).values
    nan = torch.full_like(base, float("nan"))
    out = torch.where((base > 0) & torch.isfinite(diff), diff / base, nan)
    lips = torch.where(torch.isfinite(lips), lips, nan)
    return StabilityResult(out.numpy(), int((~kept).sum()), n * p, lips.numpy())
