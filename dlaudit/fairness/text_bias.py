"""Jigsaw "unintended bias" metrics: subgroup AUC, BPSN AUC, BNSP AUC and the competition's final metric.

Borkan et al. (2019), "Nuanced Metrics for Measuring Unintended Bias with Real Data for
Text Classification", https://arxiv.org/abs/1903.04561. For an identity subgroup ``g``
(the texts that mention it) and the background (every other text):

- **subgroup AUC**: the ROC AUC on the texts in ``g``; low when the model separates toxic
  from non-toxic texts about ``g`` worse than it does overall.
- **BPSN AUC** (background positive, subgroup negative): the AUC on the positive
  background texts and the negative texts in ``g``; low when non-toxic texts about ``g``
  score higher than toxic texts elsewhere (false positives driven by the identity).
- **BNSP AUC** (background negative, subgroup positive): the AUC on the negative background
  texts and the positive texts in ``g``; low when toxic texts about ``g`` score lower.

The Kaggle "Jigsaw Unintended Bias in Toxicity Classification" final metric combines them:

``final = w0 * AUC_overall + sum_a w_a * M_p(AUC_{g, a} over identities g)``,
``M_p(m) = (mean_g m_g ** p) ** (1 / p)``, ``p = -5``, every ``w = 0.25``

(a generalized power mean with a negative power weighs the worst identities most).
Intervals are percentile bootstrap intervals over resampled rows (seeded).

AUCs count ties as one half (the Mann-Whitney statistic), as ``sklearn.metrics.roc_auc_score``.
An AUC whose subset lacks a class is undefined (NaN); such an identity is left out of the
power means and its reason is recorded in :attr:`BiasAUCResult.skipped`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataError

__all__ = [
    "AUC_KINDS",
    "IdentityBias",
    "BiasAUCResult",
    "roc_auc",
    "subgroup_auc",
    "bpsn_auc",
    "bnsp_auc",
    "power_mean",
    "final_bias_metric",
    "identity_groups",
    "jigsaw_bias_aucs",
]

AUC_KINDS = ("subgroup_auc", "bpsn_auc", "bnsp_auc")


def roc_auc(y_true: Any, scores: Any) -> float:
    """ROC AUC of binary ``y_true`` (0/1 or bool) against ``scores``: the Mann-Whitney U over n_pos * n_neg; NaN without both classes."""
    y = np.asarray(y_true).astype(bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    ranks = np.empty(len(s), dtype=np.float64)
    # average ranks of tied scores (1-based)
    starts = np.flatnonzero(np.r_[True, sorted_s[1:] != sorted_s[:-1]])
    ends = np.r_[starts[1:], len(s)]
    mean_rank = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(mean_rank, ends - starts)
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def _binary(y_true: Any, scores: Any, in_group: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = np.asarray(y_true).ravel()
    if not np.isin(y, (0, 1)).all():
        raise DataError("bias AUCs need binary labels (0/1 or bool); map the positive (toxic) class to 1")
    s = np.asarray(scores, dtype=np.float64).ravel()
    g = np.asarray(in_group).astype(bool).ravel()
    if not len(y) == len(s) == len(g):
        raise DataError(
            f"bias AUCs: {len(y)} labels, {len(s)} scores and {len(g)} group flags; give one of each per text"
        )
    return y.astype(bool), s, g


def subgroup_auc(y_true: Any, scores: Any, in_group: Any) -> float:
    """AUC on the texts in the subgroup."""
    y, s, g = _binary(y_true, scores, in_group)
    return roc_auc(y[g], s[g])


def bpsn_auc(y_true: Any, scores: Any, in_group: Any) -> float:
    """AUC on the background positives and the subgroup negatives."""
    y, s, g = _binary(y_true, scores, in_group)
    keep = (~g & y) | (g & ~y)
    return roc_auc(y[keep], s[keep])


def bnsp_auc(y_true: Any, scores: Any, in_group: Any) -> float:
    """AUC on the background negatives and the subgroup positives."""
    y, s, g = _binary(y_true, scores, in_group)
    keep = (~g & ~y) | (g & y)
    return roc_auc(y[keep], s[keep])


def power_mean(values: Sequence[float], p: float = -5.0) -> float:
    """Generalized mean ``(mean(v ** p)) ** (1 / p)`` of positive values (NaNs left out; 0 if one is 0 and ``p < 0``)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if not len(v):
        return float("nan")
    if p == 0:
        return float(np.exp(np.log(v).mean())) if (v > 0).all() else 0.0
    if p < 0 and (v <= 0).any():
        return 0.0
    return float(np.mean(v**p) ** (1.0 / p))


def final_bias_metric(
    overall_auc: float,
    per_identity: Mapping[str, Sequence[float]],
    *,
    p: float = -5.0,
    weights: Sequence[float] = (0.25, 0.25, 0.25, 0.25),
) -> float:
    """The Jigsaw competition score: ``w0 * overall + sum_a w_a * power_mean(per_identity[a], p)``.

    ``per_identity`` maps each of :data:`AUC_KINDS` to the per-identity AUCs.
    """
    if len(weights) != 4:
        raise ConfigError(f"the final bias metric takes 4 weights (overall, subgroup, BPSN, BNSP), got {len(weights)}")
    total = weights[0] * overall_auc
    for w, kind in zip(weights[1:], AUC_KINDS):
        total += w * power_mean(per_identity[kind], p)
    return float(total)


@dataclass(frozen=True)
class IdentityBias:
    """The three bias AUCs of one identity, with bootstrap intervals (``interval[kind]``)."""

    identity: str
    n: int
    n_positive: int
    subgroup_auc: float
    bpsn_auc: float
    bnsp_auc: float
    interval: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    def value(self, kind: str) -> float:
        return float(getattr(self, kind))


@dataclass(frozen=True)
class BiasAUCResult:
    """What :func:`jigsaw_bias_aucs` computed; :meth:`metrics` gives the flat, dotted metric names."""

    overall_auc: float
    overall_interval: tuple[float, float]
    identities: tuple[IdentityBias, ...]
    final_metric: float
    final_interval: tuple[float, float]
    power: float
    weights: tuple[float, float, float, float]
    n_boot: int
    confidence: float
    skipped: Mapping[str, str] = field(default_factory=dict)

    def by_identity(self) -> dict[str, IdentityBias]:
        return {b.identity: b for b in self.identities}

    def worst(self, kind: str = "bpsn_auc") -> IdentityBias | None:
        """The identity with the lowest AUC of ``kind`` (NaNs left out), or None."""
        found = [b for b in self.identities if not math.isnan(b.value(kind))]
        return min(found, key=lambda b: b.value(kind)) if found else None

    def metrics(self, prefix: str = "fairness.bias") -> dict[str, float]:
        """``{prefix}.overall_auc``, ``{prefix}.final_metric`` and ``{prefix}.{identity}.{kind}`` for each identity."""
        out = {f"{prefix}.overall_auc": self.overall_auc, f"{prefix}.final_metric": self.final_metric}
        for b in self.identities:
            for kind in AUC_KINDS:
                out[f"{prefix}.{b.identity}.{kind}"] = b.value(kind)
        return out

    def table(self) -> pd.DataFrame:
        """One row per identity: n, positives, each AUC and its interval."""
        rows = []
        for b in self.identities:
            row: dict[str, Any] = {"identity": b.identity, "n": b.n, "n_positive": b.n_positive}
            for kind in AUC_KINDS:
                lo, hi = b.interval.get(kind, (float("nan"), float("nan")))
                row |= {kind: b.value(kind), f"{kind}_low": lo, f"{kind}_high": hi}
            rows.append(row)
        return pd.DataFrame(rows)


def identity_groups(values: Any, *, exclude: Sequence[str] = ("none", "")) -> pd.DataFrame:
    """One 0/1 column per value of a categorical column (``"muslim"``, ``"none"``, ...), ``exclude`` left out."""
    series = pd.Series(values).astype(str)
    names = sorted(v for v in series.unique() if v not in exclude)
    return pd.DataFrame({n: (series == n).astype(int).to_numpy() for n in names})


def _group_masks(groups: Any, n: int, threshold: float) -> dict[str, np.ndarray]:
    frame = groups if isinstance(groups, pd.DataFrame) else pd.DataFrame(dict(groups))
    if len(frame) != n:
        raise DataError(f"bias AUCs: {len(frame)} rows of identity columns for {n} texts")
    out = {}
    for col in frame.columns:
        values = frame[col]
        if pd.api.types.is_bool_dtype(values):
            out[str(col)] = values.to_numpy(dtype=bool)
        elif pd.api.types.is_numeric_dtype(values):
            v = values.to_numpy(dtype=np.float64)
            if np.isnan(v).any():
                raise DataError(f"bias AUCs: identity column {col!r} has missing values; fill them with 0")
            out[str(col)] = v >= threshold
        else:
            raise DataError(
                f"bias AUCs: identity column {col!r} is not numeric or boolean; "
                "expand a categorical column with identity_groups() first"
            )
    if not out:
        raise DataError("bias AUCs need at least one identity column")
    return out


def _all_aucs(
    y: np.ndarray, s: np.ndarray, masks: Mapping[str, np.ndarray]
) -> tuple[float, dict[str, dict[str, float]]]:
    per = {}
    for name, g in masks.items():
        per[name] = {
            "subgroup_auc": roc_auc(y[g], s[g]),
            "bpsn_auc": roc_auc(y[(~g & y) | (g & ~y)], s[(~g & y) | (g & ~y)]),
            "bnsp_auc": roc_auc(y[(~g & ~y) | (g & y)], s[(~g & ~y) | (g & y)]),
        }
    return roc_auc(y, s), per


def _final(overall: float, per: Mapping[str, Mapping[str, float]], p: float, weights: Sequence[float]) -> float:
    kinds = {k: [v[k] for v in per.values()] for k in AUC_KINDS}
    return final_bias_metric(overall, kinds, p=p, weights=weights)


def jigsaw_bias_aucs(
    y_true: Any,
    scores: Any,
    groups: pd.DataFrame | Mapping[str, Any],
    *,
    power: float = -5.0,
    weights: Sequence[float] = (0.25, 0.25, 0.25, 0.25),
    threshold: float = 0.5,
    n_boot: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
) -> BiasAUCResult:
    """Subgroup, BPSN and BNSP AUCs per identity, the overall AUC and the final metric, with bootstrap intervals.

    Parameters
    ----------
    y_true
        Binary labels, 1 = the positive (toxic) class.
    scores
        The model's score for the positive class (a probability or a logit).
    groups
        One column per identity: booleans, or numbers where ``>= threshold`` means "mentions it"
        (Jigsaw's identity columns are annotator fractions, thresholded at 0.5).
    power, weights
        The generalized mean's power (-5) and the weights of overall, subgroup, BPSN, BNSP (0.25 each).
    n_boot, confidence, seed
        Bootstrap replicates (0: no intervals), the interval's coverage and the resampling seed.

    Examples
    --------
    >>> r = jigsaw_bias_aucs([0, 1, 0, 1, 0, 0, 1, 1], [.1, .6, .3, .9, .7, .2, .8, .5],
    ...                      {"g": [0, 0, 0, 0, 1, 1, 1, 1]}, n_boot=0)
    >>> r.by_identity()["g"].bnsp_auc, r.final_metric
    (1.0, 0.84375)
    """
    y, s, _ = _binary(y_true, scores, np.zeros(len(np.asarray(y_true).ravel())))
    masks = _group_masks(groups, len(y), threshold)
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must be in (0, 1), got {confidence}")
    if n_boot < 0:
        raise ConfigError(f"n_boot must be 0 or more, got {n_boot}")
    overall, per = _all_aucs(y, s, masks)
    final = _final(overall, per, power, weights)
    boot_overall, boot_final = [], []
    boot_per: dict[str, dict[str, list[float]]] = {g: {k: [] for k in AUC_KINDS} for g in masks}
    rng = np.random.default_rng(seed)
    for _ in range(n_boot):
        rows = rng.integers(0, len(y), size=len(y))
        b_overall, b_per = _all_aucs(y[rows], s[rows], {g: m[rows] for g, m in masks.items()})
        boot_overall.append(b_overall)
        boot_final.append(_final(b_overall, b_per, power, weights))
        for g, values in b_per.items():
            for k, v in values.items():
                boot_per[g][k].append(v)
    alpha = (1 - confidence) / 2

    def interval(values: list[float]) -> tuple[float, float]:
        v = np.asarray(values, dtype=np.float64)
        v = v[~np.isnan(v)]
        if not len(v):
            return (float("nan"), float("nan"))
        return (float(np.quantile(v, alpha)), float(np.quantile(v, 1 - alpha)))

    identities, skipped = [], {}
    for g, m in masks.items():
        values = per[g]
        if any(math.isnan(v) for v in values.values()):
            n_pos = int((m & y).sum())
            skipped[g] = f"{int(m.sum())} text(s), {n_pos} positive: an AUC needs both classes in its subset"
        identities.append(
            IdentityBias(
                identity=g,
                n=int(m.sum()),
                n_positive=int((m & y).sum()),
                **values,
                interval={k: interval(boot_per[g][k]) for k in AUC_KINDS},
            )
        )
    return BiasAUCResult(
        overall_auc=overall,
        overall_interval=interval(boot_overall),
        identities=tuple(identities),
        final_metric=final,
        final_interval=interval(boot_final),
        power=power,
        weights=tuple(float(w) for w in weights),  # type: ignore[arg-type]
        n_boot=n_boot,
        confidence=confidence,
        skipped=skipped,
    )
