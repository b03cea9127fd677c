"""Weak-segment discovery: the subgroups where the model is worst, found rather than named.

Every column of a table (sensitive or not) is cut into levels: a numeric column
with more than :data:`~dlaudit.data.groups.MAX_CATEGORIES` distinct values into
``n_bins`` quantile bins (labelled by the range of values they hold, e.g.
``age 61-90``), any other column by value (``education = Bachelors``). A
*segment* is one level of one column, or (with ``pairs``) the rows where two
levels of two different columns meet (``age 61-90 and hours-per-week 1-29``).
Segments with fewer than ``min_support`` rows are not tested.

Each segment is compared with the rest of the data (its complement) on

- ``accuracy`` (equivalently the error rate, ``1 - accuracy``): worse means lower;
- ``selection_rate`` of the positive class (binary models; the favourable outcome
  the four-fifths rule reads): worse means lower.

The test is the one-sided pooled two-proportion z-test (segment worse than the
rest); the effect size is the difference ``rest - segment`` with Newcombe's hybrid
score interval (Newcombe 1998, "Interval estimation for the difference between
independent proportions", method 10, built from Wilson intervals), which keeps its
coverage for small segments and rates near 0 or 1. Multiple testing is controlled
with the Benjamini-Hochberg procedure (1995) over **every** segment tested, all
columns, pairs and metrics together, at false discovery rate ``fdr``.

A significant pair is listed only when the lower end of its gap's interval is
above the gaps of both its single-column parts (otherwise it only repeats a parent).

The counts of every pair come from one ``np.bincount`` over combined level codes,
so Adult's 14 columns and their 91 pairs take well under a second on 16k rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from ..data.groups import MAX_CATEGORIES
from ..errors import ConfigError

__all__ = [
    "SEGMENT_METRICS",
    "Segment",
    "SegmentResult",
    "benjamini_hochberg",
    "find_weak_segments",
    "newcombe_difference",
    "wilson_bounds",
    "wilson_cc_bounds",
]

SEGMENT_METRICS = ("accuracy", "selection_rate")
"""The rates a segment is compared on (``selection_rate`` needs a positive class)."""

_LABEL = {"accuracy": "accuracy", "selection_rate": "selection rate"}


# -- statistics, vectorised --------------------------------------------------------------


def wilson_bounds(k: np.ndarray, n: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of ``k / n`` elementwise (Wilson 1927); NaN where ``n == 0``."""
    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denom = 1.0 + z * z / n
        centre = (p + z * z / (2.0 * n)) / denom
        half = z * np.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n)) / denom
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def wilson_cc_bounds(k: np.ndarray, n: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval with continuity correction (Newcombe 1998, "Two-sided confidence intervals for
    the single proportion", method 4), elementwise; NaN where ``n == 0``.

    Unlike the plain Wilson interval its coverage does not dip under the nominal
    level for a handful of samples (a TPR over 3 positives).
    """
    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denom = 2.0 * (n + z * z)
        lo = (2 * n * p + z * z - 1 - z * np.sqrt(np.maximum(z * z - 2 - 1 / n + 4 * p * (n * (1 - p) + 1), 0))) / denom
        hi = (2 * n * p + z * z + 1 + z * np.sqrt(np.maximum(z * z + 2 - 1 / n + 4 * p * (n * (1 - p) - 1), 0))) / denom
    lo = np.where(k <= 0, 0.0, np.clip(lo, 0.0, 1.0))
    hi = np.where(k >= n, 1.0, np.clip(hi, 0.0, 1.0))
    return np.where(n > 0, lo, np.nan), np.where(n > 0, hi, np.nan)


def newcombe_difference(
    k1: np.ndarray, n1: np.ndarray, k2: np.ndarray, n2: np.ndarray, *, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``p1 - p2`` and its Newcombe hybrid score interval (method 10 of Newcombe 1998), elementwise.

    Returns ``(difference, lower, upper)``.
    """
    z = float(ndtri(0.5 + level / 2.0))
    k1, n1, k2, n2 = (np.asarray(a, dtype=np.float64) for a in (k1, n1, k2, n2))
    with np.errstate(invalid="ignore", divide="ignore"):
        p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson_bounds(k1, n1, z)
    l2, u2 = wilson_bounds(k2, n2, z)
    d = p1 - p2
    lo = d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    hi = d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return d, lo, hi


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values): reject where ``q <= fdr``.

    Benjamini and Hochberg 1995, "Controlling the false discovery rate".
    """
    p = np.asarray(p, dtype=np.float64)
    m = len(p)
    if m == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    ranked = p[order] * m / np.arange(1, m + 1)
    q_sorted = np.minimum.accumulate(ranked[::-1])[::-1]
    q = np.empty(m)
    q[order] = np.minimum(q_sorted, 1.0)
    return q


def _one_sided_p(k_seg: np.ndarray, n_seg: np.ndarray, k_rest: np.ndarray, n_rest: np.ndarray) -> np.ndarray:
    """p-value of the pooled two-proportion z-test that the segment's rate is lower than the rest's."""
    with np.errstate(invalid="ignore", divide="ignore"):
        p_seg, p_rest = k_seg / n_seg, k_rest / n_rest
        pooled = (k_seg + k_rest) / (n_seg + n_rest)
        se = np.sqrt(pooled * (1.0 - pooled) * (1.0 / n_seg + 1.0 / n_rest))
        z = (p_rest - p_seg) / se
    return np.where((se > 0) & np.isfinite(z), ndtr(-z), 1.0)


# -- columns into levels -----------------------------------------------------------------


def _fmt(v: float) -> str:
    """``25``, ``0.125``, ``31784`` (never ``3.18e+04``)."""
    v = float(v)
    return f"{v:.0f}" if v.is_integer() or abs(v) >= 1000 else f"{v:.3g}"


@dataclass(frozen=True)
class _Column:
    name: str
    codes: np.ndarray  # level per row, -1 where the level is not tested
    labels: list[str]  # plain words per level, e.g. "age 61-90"
    note: str = ""


def _levels(name: str, values: pd.Series, n_bins: int) -> _Column:
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if numeric and values.nunique() > MAX_CATEGORIES:  # (more than 10 distinct values, so some are not NaN)
        x = values.to_numpy(dtype=np.float64, na_value=np.nan)
        ok = ~np.isnan(x)
        qs = np.linspace(0, 1, n_bins + 1)[1:-1]
        modes, counts = np.unique(x[ok], return_counts=True)
        mode = modes[counts.argmax()]
        if counts.max() > ok.sum() / n_bins:  # e.g. capital-gain, mostly 0: the common value is a level of its own
            rest = x[ok & (x != mode)]
            inner = np.quantile(rest, qs) if len(rest) else np.empty(0)
            edges = np.unique(np.concatenate([inner, [mode, np.nextafter(mode, np.inf)]]))
        else:
            edges = np.unique(np.quantile(x[ok], qs))
        raw_codes = np.searchsorted(edges, x, side="right")
        used = np.unique(raw_codes[ok])  # empty bins dropped
        codes = np.searchsorted(used, raw_codes)
        labels = []
        for b in used:
            inside = x[ok & (raw_codes == b)]
            lo, hi = float(inside.min()), float(inside.max())
            labels.append(f"{name} = {_fmt(lo)}" if lo == hi else f"{name} {_fmt(lo)}-{_fmt(hi)}")
        if not ok.all():
            codes = np.where(ok, codes, len(labels))
            labels.append(f"{name} missing")
        note = f"{name}: {len(used)} bins of about equal size: {', '.join(lab[len(name) + 1 :] for lab in labels)}"
        return _Column(name, codes.astype(np.int64), labels, note)
    filled = values.astype(object).where(values.notna(), None)
    as_text = pd.Series(["\0missing" if v is None else str(v).strip() for v in filled])
    codes, uniques = pd.factorize(as_text, sort=True)
    labels = [f"{name} missing" if u == "\0missing" else f"{name} = {u}" for u in uniques]
    return _Column(name, codes.astype(np.int64), labels)


def _drop_rare(col: _Column, min_support: int) -> _Column:
    """Levels under ``min_support`` rows can be no segment, alone or in a pair: their rows get code -1.

    This bounds a column's levels by ``n / min_support`` (an ID column keeps none).
    """
    counts = np.bincount(col.codes[col.codes >= 0], minlength=len(col.labels))
    kept = np.flatnonzero(counts >= min_support)
    if len(kept) == len(col.labels):
        return col
    new_code = np.full(len(col.labels) + 1, -1, dtype=np.int64)
    new_code[kept] = np.arange(len(kept))
    return _Column(col.name, new_code[col.codes], [col.labels[i] for i in kept], col.note)


# -- results -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """One tested segment: where it is, how many rows, its rate against the rest's, and the test."""

    columns: tuple[str, ...]
    description: str
    metric: str
    n: int
    value: float
    rest: float
    gap: float
    ci: tuple[float, float]
    p_value: float
    q_value: float
    base_rate: float | None = None
    rest_base_rate: float | None = None

    def sentence(self) -> str:
        """Plain words: ``age 61-90 and hours-per-week 1-29: accuracy 71% against 86% elsewhere, 412 rows``."""
        text = f"{self.description}: {_LABEL[self.metric]} {self.value:.0%} against {self.rest:.0%} elsewhere, {self.n} rows"
        if self.base_rate is not None and self.rest_base_rate is not None:
            text += f" (true positive share {self.base_rate:.0%} against {self.rest_base_rate:.0%})"
        return text


@dataclass(frozen=True)
class SegmentResult:
    """What :func:`find_weak_segments` found.

    ``segments`` are the significant ones (BH at ``fdr``) worth listing, per metric
    worst first: by the lower bound of the gap's interval (the gap the data make
    sure of, so a large certain gap outranks a larger one on 50 rows); pairs that
    only repeat a parent are left out.
    ``n_tested`` counts every test made (segments times metrics), ``n_significant``
    every rejection among them (before pruning pairs).
    """

    segments: list[Segment]
    n_rows: int
    n_tested: int
    n_significant: int
    metrics: tuple[str, ...]
    overall: dict[str, float]
    columns: list[str]
    min_support: int
    fdr: float
    ci_level: float
    pairs: bool
    notes: list[str] = field(default_factory=list)

    def worst(self, metric: str) -> Segment | None:
        """The first listed segment on ``metric`` (the surest large gap; None when none is significant)."""
        return next((s for s in self.segments if s.metric == metric), None)


# -- the search --------------------------------------------------------------------------


def find_weak_segments(
    columns: pd.DataFrame,
    correct: np.ndarray | Sequence[bool],
    *,
    predicted_positive: np.ndarray | Sequence[bool] | None = None,
    actual_positive: np.ndarray | Sequence[bool] | None = None,
    n_bins: int = 5,
    min_support: int = 50,
    fdr: float = 0.05,
    ci: float = 0.95,
    pairs: bool = True,
) -> SegmentResult:
    """Segments of ``columns`` (one or two columns each) with significantly worse rates than the rest.

    Parameters
    ----------
    columns
        One row per sample: the raw values to segment by (numeric or categorical).
    correct
        Whether the model got each sample right (the accuracy test).
    predicted_positive
        Whether each sample was predicted as the positive class (the selection-rate
        test; leave out for multi-class models).
    actual_positive
        Whether each sample truly is positive: shown next to selection rates as
        the base rate, so a reader can tell a bias from a difference in base rates.
    n_bins
        Quantile bins per numeric column.
    min_support
        Segments with fewer rows are not tested.
    fdr
        Benjamini-Hochberg false discovery rate over every test made.
    ci
        Level of the Newcombe intervals of the gaps.
    pairs
        Also test every pair of levels of two different columns.

    Returns
    -------
    SegmentResult
    """
    n = len(columns)
    ok = np.asarray(correct, dtype=bool)
    if ok.shape != (n,):
        raise ConfigError(f"correct must hold one value per row of the {n} rows, got shape {ok.shape}")
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 2:
        raise ConfigError(f"segment bins must be a whole number >= 2, got {n_bins!r}")
    if isinstance(min_support, bool) or not isinstance(min_support, int) or min_support < 1:
        raise ConfigError(f"segment minimum support must be a whole number >= 1, got {min_support!r}")
    if not 0 < fdr < 1:
        raise ConfigError(f"segment false discovery rate must be between 0 and 1, got {fdr!r}")
    weights = {"accuracy": ok.astype(np.float64)}
    if predicted_positive is not None:
        pos = np.asarray(predicted_positive, dtype=bool)
        if pos.shape != (n,):
            raise ConfigError(f"predicted_positive must hold one value per row, got shape {pos.shape}")
        weights["selection_rate"] = pos.astype(np.float64)
    truth = None if actual_positive is None else np.asarray(actual_positive, dtype=np.float64)

    cols = [_levels(str(c), columns[c].reset_index(drop=True), n_bins) for c in columns.columns]
    cols = [_drop_rare(c, min_support) for c in cols]
    cols = [c for c in cols if len(c.labels) >= 1 and (c.codes >= 0).any()]
    cells = _count_cells(cols, weights, truth, n, min_support, pairs)
    totals = {m: float(w.sum()) for m, w in weights.items()}
    total_truth = None if truth is None else float(truth.sum())

    tested: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = []
    for metric in weights:
        k = cells["k"][metric]
        n_seg = cells["n"]
        k_rest, n_rest = totals[metric] - k, n - n_seg
        p = _one_sided_p(k, n_seg, k_rest, n_rest)
        tested.append((metric, k, n_seg, p))
    all_p = np.concatenate([t[3] for t in tested]) if tested else np.empty(0)
    all_q = benjamini_hochberg(all_p)
    n_sig = int((all_q <= fdr).sum())

    segments: list[Segment] = []
    offset = 0
    for metric, k, n_seg, p in tested:
        q = all_q[offset : offset + len(p)]
        offset += len(p)
        k_rest, n_rest = totals[metric] - k, n - n_seg
        gap, lo, hi = newcombe_difference(k_rest, n_rest, k, n_seg, level=ci)
        sig = np.flatnonzero(q <= fdr)
        keep = _prune(sig, gap, lo, cells)
        for i in sorted(keep, key=lambda i: (-lo[i], -gap[i], cells["desc"][i])):
            base = rest_base = None
            if metric == "selection_rate" and truth is not None:
                t = cells["truth"][i]
                base, rest_base = t / n_seg[i], (total_truth - t) / (n - n_seg[i])
            segments.append(
                Segment(
                    columns=cells["cols"][i],
                    description=cells["desc"][i],
                    metric=metric,
                    n=int(n_seg[i]),
                    value=float(k[i] / n_seg[i]),
                    rest=float(k_rest[i] / n_rest[i]),
                    gap=float(gap[i]),
                    ci=(float(lo[i]), float(hi[i])),
                    p_value=float(p[i]),
                    q_value=float(q[i]),
                    base_rate=None if base is None else float(base),
                    rest_base_rate=None if rest_base is None else float(rest_base),
                )
            )
    return SegmentResult(
        segments=segments,
        n_rows=n,
        n_tested=len(all_p),
        n_significant=n_sig,
        metrics=tuple(weights),
        overall={m: totals[m] / n if n else math.nan for m in weights},
        columns=[c.name for c in cols],
        min_support=min_support,
        fdr=fdr,
        ci_level=ci,
        pairs=pairs,
        notes=[c.note for c in cols if c.note],
    )


def _count_cells(
    cols: list[_Column],
    weights: dict[str, np.ndarray],
    truth: np.ndarray | None,
    n: int,
    min_support: int,
    pairs: bool,
) -> dict[str, object]:
    """Counts (rows, weighted successes, true positives) of every segment with at least ``min_support`` rows.

    Also records each segment's parent segments (their indices; -1 for none) for the pruning.
    """
    n_parts: list[np.ndarray] = []
    k_parts: dict[str, list[np.ndarray]] = {m: [] for m in weights}
    t_parts: list[np.ndarray] = []
    descs: list[str] = []
    names: list[tuple[str, ...]] = []
    parents: list[tuple[int, int]] = []
    single_index: dict[tuple[int, int], int] = {}

    def add(codes: np.ndarray, size: int, describe, parent_of) -> None:
        """Count the cells ``0..size-1`` of ``codes`` (``size`` itself holds the untested rows)."""
        cell_of = None
        if size > max(8 * n, 1 << 16):  # many sparse cells (two high-cardinality columns): count the ones present
            cell_of, codes = np.unique(codes, return_inverse=True)
        length = len(cell_of) if cell_of is not None else size + 1
        counts = np.bincount(codes, minlength=length)
        real = (cell_of < size) if cell_of is not None else (np.arange(length) < size)
        keep = np.flatnonzero(real & (counts >= min_support) & (n - counts >= min_support))  # the rest is compared too
        if len(keep) == 0:
            return
        n_parts.append(counts[keep].astype(np.float64))
        for m, w in weights.items():
            k_parts[m].append(np.bincount(codes, weights=w, minlength=length)[keep])
        if truth is not None:
            t_parts.append(np.bincount(codes, weights=truth, minlength=length)[keep])
        if cell_of is not None:
            keep = cell_of[keep]
        for cell in keep:
            owner, parent = parent_of(int(cell), len(descs))
            descs.append(describe(int(cell)))
            names.append(owner)
            parents.append(parent)

    for a, col in enumerate(cols):
        size = len(col.labels)
        codes = np.where(col.codes >= 0, col.codes, size)  # untested rows fall in a cell past the end

        def single(cell: int, index: int, a: int = a, col: _Column = col) -> tuple[tuple[str, ...], tuple[int, int]]:
            single_index[(a, cell)] = index
            return (col.name,), (-1, -1)

        add(codes, size, lambda cell, col=col: col.labels[cell], single)
    if pairs:
        for a in range(len(cols)):
            for b in range(a + 1, len(cols)):
                ca, cb = cols[a], cols[b]
                la, lb = len(ca.labels), len(cb.labels)
                codes = np.where((ca.codes >= 0) & (cb.codes >= 0), ca.codes * lb + cb.codes, la * lb)

                def describe(cell: int, ca: _Column = ca, cb: _Column = cb, lb: int = lb) -> str:
                    return f"{ca.labels[cell // lb]} and {cb.labels[cell % lb]}"

                def pair(
                    cell: int, index: int, a: int = a, b: int = b, lb: int = lb, ca: _Column = ca, cb: _Column = cb
                ) -> tuple[tuple[str, ...], tuple[int, int]]:
                    return (ca.name, cb.name), (
                        single_index.get((a, cell // lb), -1),
                        single_index.get((b, cell % lb), -1),
                    )

                add(codes, la * lb, describe, pair)
    empty = np.empty(0)
    return {
        "n": np.concatenate(n_parts) if n_parts else empty,
        "k": {m: np.concatenate(v) if v else empty for m, v in k_parts.items()},
        "truth": np.concatenate(t_parts) if t_parts else empty,
        "desc": descs,
        "cols": names,
        "parents": parents,
    }


def _prune(sig: np.ndarray, gap: np.ndarray, lo: np.ndarray, cells: dict[str, object]) -> list[int]:
    """The significant segments minus pairs that are not surely worse than both their parts.

    A pair is kept when the lower end of its gap's interval is above each parent's
    gap: ``age 17-25 and capital-loss = 0`` (nearly every young person) only
    repeats ``age 17-25`` and is left out.
    """
    parents = cells["parents"]
    keep = []
    for i in sig:
        if any(j >= 0 and lo[i] <= gap[j] for j in parents[i]):
            continue
        keep.append(int(i))
    return keep
