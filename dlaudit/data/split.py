"""When a held-out split can be stratified on the labels (one rule for images, tables and texts)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["stratify_on"]


def stratify_on(labels: Sequence[Any] | np.ndarray, test_fraction: float) -> np.ndarray | None:
    """``labels`` as scikit-learn's ``stratify`` argument, or None where a stratified split cannot be drawn.

    A stratified split needs two or more classes, at least two rows of every class, and room for one
    row of every class in each part: ``ceil(test_fraction * n)`` held-out rows and the rest for
    training must each be at least the number of classes (scikit-learn raises otherwise). A tiny
    dataset (5 texts of 3 classes) is then split at random instead of failing with scikit-learn's message.
    """
    values = np.asarray(labels)
    if values.ndim != 1 or len(values) < 2:
        return None
    _, counts = np.unique(values.astype(str), return_counts=True)
    n, k = len(values), len(counts)
    n_test = math.ceil(test_fraction * n)
    if k < 2 or counts.min() < 2 or n_test < k or n - n_test < k:
        return None
    return values
