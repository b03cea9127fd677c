"""Seeded bootstrap intervals over the explained samples, and verdicts decided on them.

Every trust metric of the explanations section is a statistic over the explained
samples (a mean of per-sample values, or for completeness a ratio of sums). With 8
or 16 samples a point estimate can land on either side of its threshold from one
run to the next, so each metric carries a 95% percentile bootstrap interval
(Efron and Tibshirani 1993): ``resamples`` resamples of the samples with
replacement, drawn from ``numpy.random.default_rng(seed)``, so the same seed gives
the same interval.

A verdict passes only when the whole interval clears its threshold, fails
(``"warning"``) when the whole interval is on the wrong side, and is
``"inconclusive"`` when the interval straddles the threshold. For an inconclusive
verdict :func:`samples_to_settle` says how many samples would settle it: the
interval's half-width shrinks as ``1 / sqrt(n)``, so ``n`` samples settle it when
``n >= n_now * (half_width / gap)**2``, with ``gap`` the distance from the point
estimate to the threshold (an estimate that assumes the point and the spread stay
where they are).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Interval", "bootstrap_mean", "bootstrap_ratio", "verdict", "samples_to_settle", "RESAMPLES", "LEVEL"]

RESAMPLES = 1000
LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap interval over ``n`` samples (``lo == hi == value`` for one sample)."""

    value: float
    lo: float
    hi: float
    n: int

    @property
    def ci(self) -> tuple[float, float]:
        return (self.lo, self.hi)

    @property
    def half_width(self) -> float:
        return (self.hi - self.lo) / 2.0


def _seeded_indices(n: int, seed: int, resamples: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def _interval(value: float, stats: np.ndarray, n: int, level: float) -> Interval:
    stats = stats[np.isfinite(stats)]
    if not len(stats):
        return Interval(value, value, value, n)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(stats, [alpha, 1.0 - alpha])
    return Interval(value, float(min(lo, value)), float(max(hi, value)), n)


def bootstrap_mean(
    values: Sequence[float] | np.ndarray, *, seed: int, resamples: int = RESAMPLES, level: float = LEVEL
) -> Interval | None:
    """The mean of the finite ``values`` with its percentile bootstrap interval; None when none is finite."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if not len(v):
        return None
    stats = v[_seeded_indices(len(v), seed, resamples)].mean(axis=1)
    return _interval(float(v.mean()), stats, len(v), level)


def bootstrap_ratio(
    numerator: np.ndarray, denominator: np.ndarray, *, seed: int, resamples: int = RESAMPLES, level: float = LEVEL
) -> Interval | None:
    """``sum(numerator) / sum(denominator)`` over samples with its bootstrap interval (resampling the pairs)."""
    num, den = np.asarray(numerator, dtype=np.float64), np.asarray(denominator, dtype=np.float64)
    if not len(num) or float(den.sum()) <= 0:
        return None
    idx = _seeded_indices(len(num), seed, resamples)
    d = den[idx].sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        stats = np.where(d > 0, num[idx].sum(axis=1) / d, np.nan)
    return _interval(float(num.sum() / den.sum()), stats, len(num), level)


def verdict(interval: Interval | None, threshold: float, *, passes_below: bool) -> str:
    """``"pass"`` when the whole interval is on the passing side of ``threshold``, ``"warning"`` when the whole
    interval is on the other side, ``"inconclusive"`` when it straddles; ``""`` when there is no interval."""
    if interval is None:
        return ""
    good, bad = (
        (interval.hi < threshold, interval.lo >= threshold)
        if passes_below
        else (
            interval.lo > threshold,
            interval.hi <= threshold,
        )
    )
    return "pass" if good else "warning" if bad else "inconclusive"


def samples_to_settle(interval: Interval | None, threshold: float) -> int | None:
    """How many samples would make the interval clear ``threshold`` (see the module's docstring); None when the
    point estimate sits on the threshold or the interval has no width."""
    if interval is None:
        return None
    gap = abs(interval.value - threshold)
    if gap <= 0 or interval.half_width <= 0:
        return None
    return max(interval.n + 1, math.ceil(interval.n * (interval.half_width / gap) ** 2 - 1e-9))
