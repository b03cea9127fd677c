"""Robust accuracy per group of a sensitive feature, and the worst gap between groups.

A model can be as accurate for every group without attack and still be far
easier to fool for one of them (Nanda et al. 2021, "Fairness through robustness",
https://arxiv.org/abs/2006.12621). Groups are a feature's values; a numeric
feature with many values is split at its median.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..bundle import ModelBundle
from ..data import AuditData

__all__ = ["GroupAccuracy", "group_labels", "group_accuracy", "per_sample_correct", "MAX_CATEGORIES", "MIN_GROUP"]

MAX_CATEGORIES = 20
"""A numeric feature with more distinct values than this is split at its median."""
MIN_GROUP = 10
"""Groups smaller than this are shown but left out of the gap (too noisy)."""


def group_labels(column: pd.Series) -> np.ndarray:
    """The group of each row as a string (a value, or ``<= m`` / ``> m`` around the median)."""
    values = column.reset_index(drop=True)
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values) and values.nunique(dropna=True) > MAX_CATEGORIES:
        median = float(values.median())
        return np.where(values.isna(), "missing", np.where(values <= median, f"<= {median:g}", f"> {median:g}")).astype(str)
    return np.where(values.isna(), "missing", values.astype(str)).astype(str)


@dataclass(frozen=True)
class GroupAccuracy:
    """Accuracy per group at one budget and the largest difference between groups."""

    groups: tuple[str, ...]
    sizes: tuple[int, ...]
    accuracy: tuple[float, ...]
    gap: float | None

    @property
    def worst(self) -> str | None:
        """The group with the lowest accuracy among those in the gap."""
        eligible = [(a, g) for g, n, a in zip(self.groups, self.sizes, self.accuracy) if n >= MIN_GROUP]
        return min(eligible)[1] if len(eligible) >= 2 else None


def group_accuracy(correct: torch.Tensor, labels: np.ndarray) -> GroupAccuracy:
    """Accuracy of each group (sorted by name); the gap is max - min over groups of at least :data:`MIN_GROUP`.

    The gap is None when fewer than two groups are that large.
    """
    ok = correct.cpu().numpy().astype(bool)
    names = sorted(set(labels.tolist()))
    sizes = [int((labels == g).sum()) for g in names]
    accs = [float(ok[labels == g].mean()) if s else float("nan") for g, s in zip(names, sizes)]
    eligible = [a for a, s in zip(accs, sizes) if s >= MIN_GROUP]
    gap = float(max(eligible) - min(eligible)) if len(eligible) >= 2 else None
    return GroupAccuracy(tuple(names), tuple(sizes), tuple(accs), gap)


def per_sample_correct(bundle: ModelBundle, data: AuditData, *, eps: float, seed: int = 0, fast: bool = False) -> np.ndarray:
    """Whether each sample is still classified correctly under PGD L-inf at ``eps``.

    The per-sample view that the fairness section groups by sensitive feature
    (robust accuracy per group). PGD-40 (PGD-10 with ``fast``), random start,
    seeded per sample, so the answer does not depend on the batch size.
    """
    from .analysis import FAST, Settings
    from .attacks import Attack, run_attack

    steps = FAST["steps"] if fast else Settings.steps
    out = run_attack(bundle, data.x, data.y, Attack.pgd(float(eps), steps=steps, norm="linf"), seed=seed, keep_adv=False)
    return (out.pred == data.y.cpu()).numpy()
