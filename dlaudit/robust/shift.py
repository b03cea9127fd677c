"""Distribution shift of tabular data: measurement noise, missing values, flipped categories, covariate shift.

The tabular counterpart of common corruptions (Hendrycks and Dietterich 2019,
https://arxiv.org/abs/1903.12261): what happens to a tabular model when a sensor is noisy,
a value is missing, a category is mis-recorded, or one feature's distribution moves
(covariate shift; Quinonero-Candela et al. 2009, "Dataset Shift in Machine Learning").
Every shift acts on the encoded inputs the way the card's encoder
(:class:`dlaudit.data.tabular.TabularEncoder`) would have encoded the shifted raw values:
numeric columns first, min-max scaled and clipped to [0, 1]; then one one-hot block per
categorical column.

- ``noise`` at level ``s``: every numeric feature gets Gaussian noise of standard deviation
  ``s`` times that feature's spread (its standard deviation over the audited samples), then
  is clipped to [0, 1] as the encoder clips.
- ``missing`` at rate ``r``: each (sample, column) is missing with probability ``r``. A
  missing category encodes as all zeros, exactly as the encoder encodes a category it has not
  seen. The encoder has **no fill for a numeric column** (it refuses NaN), so a missing number
  is filled with the column's median over the audited samples, the usual imputation; the
  report says so.
- ``flip`` at rate ``r``: each categorical value changes, with probability ``r``, to another of
  its column's categories, uniformly.
- ``covariate`` at level ``s``: one numeric feature moves by ``s`` times its spread (clipped);
  run for every numeric feature, the worst one is reported.

Every draw is keyed by (seed, kind, sample index) through :mod:`dlaudit.robust._hashrand`, so
a sample's shifted input does not depend on the batch size or on which samples are audited
alongside it (the spreads and medians do: they are statistics of the audited samples).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import ConfigError
from . import _hashrand

__all__ = ["KINDS", "LEVELS", "Layout", "ShiftResult", "layout", "passes", "shift", "shift_accuracy"]

KINDS = ("noise", "missing", "flip", "covariate")
LEVELS: dict[str, tuple[float, ...]] = {
    "noise": (0.1, 0.25, 0.5),
    "missing": (0.1, 0.25, 0.5),
    "flip": (0.1, 0.25, 0.5),
    "covariate": (0.5, 1.0, 2.0),
}
"""Default levels: a fraction of the spread (noise, covariate) or a rate (missing, flip)."""
_STREAMS = {"noise": 0x5A1, "missing": 0x5A2, "flip": 0x5A3, "flip_to": 0x5A4}


@dataclass(frozen=True)
class Layout:
    """Where the encoder's columns are in an encoded input: numeric features, then one-hot blocks."""

    numeric: tuple[str, ...]
    categorical: tuple[tuple[str, tuple[int, ...]], ...]
    """(column name, indices of its one-hot features) per categorical column."""


def layout(encoder: dict[str, Any]) -> Layout:
    """The :class:`Layout` of a card's encoder spec (``numeric``, ``categorical`` as ``dlaudit train`` writes them)."""
    numeric = tuple(str(c["name"]) for c in encoder.get("numeric") or [])
    blocks, start = [], len(numeric)
    for c in encoder.get("categorical") or []:
        k = len(c["categories"])
        blocks.append((str(c["name"]), tuple(range(start, start + k))))
        start += k
    return Layout(numeric, tuple(blocks))


def passes(lay: Layout, levels: dict[str, Sequence[float]] | None = None) -> tuple[int, int]:
    """Prediction passes over all the samples that :func:`shift_accuracy` makes, as ``(drawn, moved)``: the ones
    whose shifted inputs take random draws (noise, missing values, flipped categories, noise on one feature) and the
    ones that only move a column (covariate shift, and the clean pass). What ``--time-budget`` prices the part by."""
    lv = {k: tuple((levels or {}).get(k, LEVELS[k])) for k in KINDS}
    m = len(lay.numeric)
    drawn = (len(lv["noise"]) if m else 0) + len(lv["missing"]) + (len(lv["flip"]) if lay.categorical else 0) + m
    return drawn, m * len(lv["covariate"]) + 1


def _uniform(seed: int, kind: str, index: torch.Tensor, n: int) -> torch.Tensor:
    return _hashrand.uniform(seed, _STREAMS[kind], index, 0, n)


def shift(
    x: torch.Tensor,
    kind: str,
    level: float,
    lay: Layout,
    *,
    seed: int,
    index: torch.Tensor,
    spread: torch.Tensor,
    median: torch.Tensor,
    feature: int | None = None,
) -> torch.Tensor:
    """``x`` (N, F), encoded, under shift ``kind`` at ``level`` (see the module docstring).

    ``index`` holds the samples' global indices (they key the draws); ``spread`` and ``median``
    the numeric features' standard deviations and medians over the audited samples; ``feature``
    restricts ``noise`` to one numeric feature and names the one ``covariate`` moves.
    """
    if kind not in KINDS:
        raise ConfigError(f"unknown shift {kind!r}; choose from: {', '.join(KINDS)}")
    out = x.clone()
    m = len(lay.numeric)
    if kind == "noise":
        z = _hashrand.normal(seed, _STREAMS["noise"], index, 0, max(m, 1))[:, :m].to(x.dtype)
        if feature is not None:
            keep = torch.zeros(m, dtype=x.dtype)
            keep[feature] = 1.0
            z = z * keep
        out[:, :m] = (x[:, :m] + level * spread * z).clamp(0.0, 1.0)
    elif kind == "covariate":
        if feature is None:
            raise ConfigError("the covariate shift moves one numeric feature; give feature=<its index>")
        out[:, feature] = (x[:, feature] + level * spread[feature]).clamp(0.0, 1.0)
    elif kind == "missing":
        gone = _uniform(seed, "missing", index, m + len(lay.categorical)) < level
        out[:, :m] = torch.where(gone[:, :m], median.to(x.dtype), x[:, :m])
        for j, (_, cols) in enumerate(lay.categorical):
            out[gone[:, m + j], cols[0] : cols[-1] + 1] = 0.0
    else:  # flip
        c = len(lay.categorical)
        flip = _uniform(seed, "flip", index, max(c, 1))[:, :c] < level
        to = _uniform(seed, "flip_to", index, max(c, 1))[:, :c]
        for j, (_, cols) in enumerate(lay.categorical):
            k = len(cols)
            if k < 2:
                continue
            block = x[:, cols[0] : cols[-1] + 1]
            current = block.argmax(dim=1)
            other = (current + 1 + (to[:, j] * (k - 1)).long().clamp(max=k - 2)) % k  # uniform over the others
            new = torch.nn.functional.one_hot(other, k).to(x.dtype)
            out[:, cols[0] : cols[-1] + 1] = torch.where(flip[:, j : j + 1], new, block)
    return out


@dataclass(frozen=True)
class ShiftResult:
    """Accuracy under each shift and level, per-feature noise and covariate accuracies, on ``n`` samples."""

    n: int
    clean_accuracy: float
    accuracy: dict[str, dict[float, float]]
    """kind -> level -> accuracy (covariate: the worst feature's)."""
    feature_noise: dict[str, float]
    """Numeric feature -> accuracy with noise at :attr:`feature_level` on that feature alone."""
    feature_level: float
    covariate: dict[str, dict[float, float]]
    """Numeric feature -> level -> accuracy when that feature alone moves."""
    imputed: bool
    """Whether a missing numeric value was filled with the median (the encoder has no fill of its own)."""

    @property
    def worst_noise_feature(self) -> str | None:
        """The numeric feature whose noise alone costs the most accuracy (ties: the first)."""
        if not self.feature_noise:
            return None
        return min(self.feature_noise, key=lambda k: (self.feature_noise[k], list(self.feature_noise).index(k)))

    def worst_covariate_feature(self, level: float) -> str | None:
        if not self.covariate:
            return None
        return min(self.covariate, key=lambda k: (self.covariate[k][level], list(self.covariate).index(k)))


def shift_accuracy(
    predict: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    encoder: dict[str, Any],
    *,
    seed: int = 0,
    levels: dict[str, Sequence[float]] | None = None,
) -> ShiftResult:
    """Accuracy of ``predict`` (encoded inputs -> labels) on ``x``, ``y`` under every shift of :data:`KINDS`.

    Parameters
    ----------
    predict
        ``predict(x) -> labels``, e.g. a bundle's ``predict``.
    x, y
        Encoded inputs (N, F) as the card's encoder writes them, and labels (N,).
    encoder
        The card's encoder spec (numeric and categorical columns).
    seed
        Seeds every draw, keyed per sample.
    levels
        kind -> levels (default :data:`LEVELS`).
    """
    lay = layout(encoder)
    lv = {k: tuple(float(v) for v in (levels or {}).get(k, LEVELS[k])) for k in KINDS}
    n, m = len(y), len(lay.numeric)
    if x.dim() != 2 or x.shape[1] != m + sum(len(c) for _, c in lay.categorical):
        raise ConfigError(
            f"shift needs encoded tabular inputs of {m + sum(len(c) for _, c in lay.categorical)} features "
            f"(the card's encoder), got shape {tuple(x.shape)}"
        )
    x = x.detach().cpu().float()
    y = y.cpu()
    index = torch.arange(n)
    spread = x[:, :m].std(dim=0, unbiased=False) if n else torch.zeros(m)
    median = x[:, :m].median(dim=0).values if n else torch.zeros(m)
    common = {"seed": seed, "index": index, "spread": spread, "median": median}

    def acc(xs: torch.Tensor) -> float:
        return float((predict(xs).cpu() == y).float().mean()) if n else float("nan")

    accuracy: dict[str, dict[float, float]] = {}
    for kind in ("noise", "missing", "flip"):
        if kind == "flip" and not lay.categorical or kind == "noise" and not m:
            continue
        accuracy[kind] = {level: acc(shift(x, kind, level, lay, **common)) for level in lv[kind]}
    covariate = {
        name: {level: acc(shift(x, "covariate", level, lay, feature=j, **common)) for level in lv["covariate"]}
        for j, name in enumerate(lay.numeric)
    }
    if covariate:
        accuracy["covariate"] = {level: min(c[level] for c in covariate.values()) for level in lv["covariate"]}
    mid = lv["noise"][(len(lv["noise"]) - 1) // 2]
    feature_noise = {name: acc(shift(x, "noise", mid, lay, feature=j, **common)) for j, name in enumerate(lay.numeric)}
    return ShiftResult(n, acc(x), accuracy, feature_noise, mid, covariate, imputed=m > 0 and "missing" in accuracy)
