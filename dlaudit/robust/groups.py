"""Robust accuracy per group of a sensitive feature, and the worst gap between groups: one
implementation, used by the robustness section and the fairness section alike.

A model can be as accurate for every group without attack and still be far easier
to fool for one of them (Nanda et al. 2021, "Fairness through robustness",
https://arxiv.org/abs/2006.12621). Groups are those of
:func:`dlaudit.data.groups.resolve_sensitive` (categories, or stated bins of a
continuous feature); groups under :data:`~dlaudit.data.groups.MIN_GROUP_SIZE`
samples are shown but left out of the gap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..bundle import ModelBundle
from ..data import AuditData
from ..data.groups import MIN_GROUP_SIZE, SensitiveFeature

__all__ = ["GroupAccuracy", "accuracy_by_group", "per_sample_correct", "PER_GROUP_STEPS"]

PER_GROUP_STEPS = 40
"""PGD steps of :func:`per_sample_correct` (the robustness section's default)."""


@dataclass(frozen=True)
class GroupAccuracy:
    """Accuracy per group (in the feature's order) and the largest difference between judged groups.

    ``gap`` is None when fewer than two groups have at least ``min_group_size`` samples.
    """

    feature: str
    groups: tuple[str, ...]
    sizes: tuple[int, ...]
    accuracy: tuple[float | None, ...]
    gap: float | None
    min_group_size: int = MIN_GROUP_SIZE

    def judged(self, i: int) -> bool:
        """Whether group ``i`` is large enough to be in the gap."""
        return self.sizes[i] >= self.min_group_size and self.accuracy[i] is not None

    @property
    def worst(self) -> str | None:
        """The judged group with the lowest accuracy (None without a gap)."""
        eligible = [(self.accuracy[i], g) for i, g in enumerate(self.groups) if self.judged(i)]
        return min(eligible)[1] if len(eligible) >= 2 else None


def accuracy_by_group(
    correct: torch.Tensor | np.ndarray, feature: SensitiveFeature, *, min_group_size: int = MIN_GROUP_SIZE
) -> GroupAccuracy:
    """Share of ``correct`` per group of a defined ``feature`` (one boolean per sample, in the data's order)."""
    if not feature.defined:
        raise ValueError(f"feature {feature.name!r} is undefined: {feature.reason}")
    ok = (correct.cpu().numpy() if isinstance(correct, torch.Tensor) else np.asarray(correct)).astype(bool).ravel()
    labels = feature.groups.astype(str).to_numpy()
    if len(labels) != len(ok):
        raise ValueError(f"{len(ok)} results for {len(labels)} samples of {feature.name!r}")
    names = feature.levels
    sizes = [int((labels == g).sum()) for g in names]
    accs = [float(ok[labels == g].mean()) if s else None for g, s in zip(names, sizes)]
    judged = [a for a, s in zip(accs, sizes) if s >= min_group_size and a is not None]
    gap = float(max(judged) - min(judged)) if len(judged) >= 2 else None
    return GroupAccuracy(feature.name, tuple(names), tuple(sizes), tuple(accs), gap, min_group_size)


def per_sample_correct(
    bundle: ModelBundle, data: AuditData, *, eps: float, seed: int = 0, steps: int = PER_GROUP_STEPS
) -> np.ndarray:
    """Whether each sample is still classified correctly under PGD L-inf at ``eps``.

    PGD with ``steps`` steps (40; the fairness analysis' fast profile uses 10), random start seeded
    per sample, so the answer does not depend on the batch size.
    """
    from .attacks import make_attack, run_attack

    out = run_attack(
        bundle, data.x, data.y, make_attack("pgd", float(eps), steps=steps, norm="linf"), seed=seed, keep_adv=False
    )
    return (out.pred == data.y.cpu()).numpy()
