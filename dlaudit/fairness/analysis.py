"""The fairness section: group metrics with intervals, findings, per-group bars.

Findings follow three rules:

- the four-fifths rule (US EEOC Uniform Guidelines, 29 CFR 1607.4(D)): a
  demographic parity ratio under 0.8 fails;
- a demographic parity, equalized odds or accuracy gap over ``gap_threshold``
  (0.1 by default) is a warning;
- groups under ``min_group_size`` samples (30) are flagged as too small to judge,
  and left out of the gaps and ratios rather than judged;
- the weak-segment search (:mod:`.segments`) over every column of the data, one
  or two at a time: the surest significant accuracy gap warns above
  ``gap_threshold`` and fails above ``segment_fail_gap`` (unset by default: a weak
  segment warns, it fails only where you set the gap); a selection-rate
  gap only warns, as on a non-sensitive column it may follow the base rate.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..analysis import Option
from ..bundle import ModelBundle
from ..data import AuditData
from ..data.groups import INTERSECTION_SEP, POOLED, SensitiveFeature, pool_small_groups, resolve_sensitive
from ..errors import AnalysisError, ConfigError
from ..parsing import round_or_none, split_list
from ..report.model import Metric, Section, Table, judged
from ..utils import ProgressFn, model_state
from .metrics import INTERVAL_METHODS, FairnessResult, FeatureFairness, group_fairness
from .options import ALL
from .plots import group_bars_figure, segments_figure
from .robustness import robust_accuracy_by_group
from .segments import SegmentResult, find_weak_segments

__all__ = ["fairness_section", "Settings", "FOUR_FIFTHS", "GAP_THRESHOLD", "MIN_GROUP_SIZE", "N_BOOT"]

log = logging.getLogger(__name__)

FOUR_FIFTHS = 0.8
GAP_THRESHOLD = 0.1
MIN_GROUP_SIZE = 30
N_BOOT = 1000
SEGMENT_FAIL_GAP: float | None = None
"""No segment fails the run by default (a weak segment of a non-sensitive column is a warning); set a gap to fail."""


@dataclass(frozen=True)
class Settings:
    """What the fairness analysis runs; every field is a keyword parameter of :func:`fairness_section`."""

    sensitive: str | Sequence[str] | None = None
    intersection: bool | None = None
    bins: Mapping[str, Sequence[float]] | None = None
    n_boot: int = N_BOOT
    ci: float = 0.95
    gap_threshold: float = GAP_THRESHOLD
    min_group_size: int = MIN_GROUP_SIZE
    robust_eps: float = 0.1
    robust_steps: int = 40
    """PGD steps of the robust accuracy per group (see :func:`dlaudit.robust.groups.per_sample_correct`)."""
    batch_size: int = 512
    segments: bool = True
    segment_columns: str | Sequence[str] | None = None
    segment_bins: int = 5
    segment_min_support: int = 50
    segment_fdr: float = 0.05
    segment_pairs: bool = True
    segment_top: int = 10
    segment_fail_gap: float | None = SEGMENT_FAIL_GAP

    OPTIONS: ClassVar[tuple[Option, ...]] = ALL
    """Its command-line options (``dlaudit fairness``), declared in :mod:`dlaudit.fairness.options`."""
    FAST: ClassVar[dict[str, Any]] = {"n_boot": 200, "robust_steps": 10}
    """The fast profile (``fast=True``): 200 bootstrap resamples and PGD-10; explicit parameters win over it."""

    @classmethod
    def build(cls, bundle: ModelBundle | None = None, *, fast: bool = False, **params: Any) -> Settings:
        """Defaults, the fast profile, then ``params`` (None keeps the default; names it does not know are ignored,
        as every analysis' shared keywords reach it), validated."""
        known = {f.name for f in fields(cls)}
        base: dict[str, Any] = dict(cls.FAST) if fast else {}
        base.update({k: v for k, v in params.items() if k in known and v is not None})
        s = cls(**base)
        if isinstance(s.n_boot, bool) or not isinstance(s.n_boot, int) or s.n_boot < 0:
            raise ConfigError(f"n_boot (bootstrap resamples) must be a whole number >= 0, got {s.n_boot!r}")
        if not (isinstance(s.ci, (int, float)) and 0 < s.ci < 1):
            raise ConfigError(f"ci (the confidence level) must be between 0 and 1, got {s.ci!r}")
        if not (isinstance(s.gap_threshold, (int, float)) and math.isfinite(s.gap_threshold) and s.gap_threshold >= 0):
            raise ConfigError(f"gap_threshold must be a number >= 0, got {s.gap_threshold!r}")
        if isinstance(s.min_group_size, bool) or not isinstance(s.min_group_size, int) or s.min_group_size < 1:
            raise ConfigError(f"min_group_size must be a whole number >= 1, got {s.min_group_size!r}")
        for name in ("segment_bins", "segment_min_support", "segment_top"):
            v = getattr(s, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < (2 if name == "segment_bins" else 1):
                raise ConfigError(f"{name} must be a whole number >= {2 if name == 'segment_bins' else 1}, got {v!r}")
        if not (isinstance(s.segment_fdr, (int, float)) and 0 < s.segment_fdr < 1):
            raise ConfigError(f"segment_fdr (the false discovery rate) must be between 0 and 1, got {s.segment_fdr!r}")
        fail_gap = s.segment_fail_gap
        if fail_gap is not None and not (
            isinstance(fail_gap, (int, float)) and not isinstance(fail_gap, bool) and math.isfinite(fail_gap)
        ):
            raise ConfigError(f"segment_fail_gap must be a number or None, got {fail_gap!r}")
        return s


_GAPS = {
    "demographic_parity_difference": "demographic parity difference (selection rates)",
    "equalized_odds_difference": "equalized odds difference (TPR/FPR)",
    "accuracy_gap": "accuracy gap",
}


def _fmt_ci(lo: Any, hi: Any) -> str:
    if lo is None or hi is None or np.isnan(lo) or np.isnan(hi):
        return ""
    return f"[{lo:.3f}, {hi:.3f}]"


def fairness_section(
    bundle: ModelBundle,
    data: AuditData,
    *,
    seed: int = 0,
    fast: bool = False,
    progress: ProgressFn | None = None,
    sensitive: str | Sequence[str] | None = None,
    intersection: bool | None = None,
    bins: Mapping[str, Sequence[float]] | None = None,
    n_boot: int | None = None,
    ci: float = 0.95,
    gap_threshold: float = GAP_THRESHOLD,
    min_group_size: int = MIN_GROUP_SIZE,
    robust_eps: float = 0.1,
    robust_steps: int | None = None,
    batch_size: int = 512,
    segments: bool = True,
    segment_columns: str | Sequence[str] | None = None,
    segment_bins: int = 5,
    segment_min_support: int = 50,
    segment_fdr: float = 0.05,
    segment_pairs: bool = True,
    segment_top: int = 10,
    segment_fail_gap: float | None = SEGMENT_FAIL_GAP,
    **_: object,
) -> Section:
    """Group fairness of the model's predictions over each sensitive feature.

    Parameters
    ----------
    sensitive
        Sensitive columns (comma-separated or a list), looked up in
        ``data.sensitive`` then in the raw columns; default: ``data.sensitive``.
    intersection
        Also judge the intersection of the features (e.g. ``sex&race``); None (the default): when
        two or more features are named.
    bins
        Bin edges for continuous features, e.g. ``{"age": [25, 60]}``; age
        defaults to under 25, 25 to 60, 60 and over.
    n_boot
        Bootstrap resamples for the intervals (default 1000, 200 with ``fast``).
    gap_threshold
        Gaps above this are reported as warnings.
    min_group_size
        Smaller groups are flagged as too small and not judged.
    robust_eps
        Attack budget for robust accuracy per group (when dlaudit.robust provides it).
    segments
        Search every column of the data (``data.raw`` and the sensitive columns),
        one or two at a time, for segments with significantly worse accuracy or
        selection rate than the rest (:func:`.segments.find_weak_segments`).
    segment_columns
        The columns to search (default: all).
    segment_bins, segment_min_support, segment_fdr, segment_pairs
        Quantile bins per numeric column (5), the fewest rows a segment needs (50),
        the Benjamini-Hochberg false discovery rate over every test (0.05), and
        whether pairs of columns are searched (yes).
    segment_top
        Segments listed per metric (10).
    segment_fail_gap
        A significant accuracy gap above this fails (default None: never; a weak segment of a
        column nobody named sensitive warns); above ``gap_threshold`` it warns.
    """
    if sensitive is None and data.sensitive is None:
        if not data.kind.columns:
            raise AnalysisError(
                f"{data.name!r} is {data.kind.title} data with no sensitive features, so there are no groups to compare; audit fairness on tabular data with --sensitive COLUMN"
            )
        raise AnalysisError(
            f"{data.name!r} names no sensitive features; pass --sensitive COLUMN[,COLUMN] (e.g. sex,race)"
        )
    features = resolve_sensitive(data, sensitive, bins=bins, intersection=intersection)
    features = [pool_small_groups(f, min_group_size) if INTERSECTION_SEP in f.name else f for f in features]
    if not features:
        raise AnalysisError("no sensitive features were given; pass --sensitive COLUMN[,COLUMN]")
    settings = Settings.build(
        fast=fast,
        n_boot=n_boot,
        ci=ci,
        gap_threshold=gap_threshold,
        min_group_size=min_group_size,
        robust_steps=robust_steps,
        segment_bins=segment_bins,
        segment_min_support=segment_min_support,
        segment_fdr=segment_fdr,
        segment_top=segment_top,
        segment_fail_gap=segment_fail_gap,
    )
    n_boot = settings.n_boot
    pred, result = group_results(
        bundle,
        data,
        features,
        n_boot=n_boot,
        seed=seed,
        ci=ci,
        min_group_size=min_group_size,
        batch_size=batch_size,
        progress=progress,
    )
    sec = Section(
        name="fairness",
        title="Fairness",
        params={
            "data": data.name,
            "split": data.split,
            "n": len(data),
            "features": [f.name for f in features],
            "positive_class": bundle.card.names[result.positive] if result.positive is not None else None,
            "n_boot": n_boot,
            "ci": ci,
            "seed": seed,
            "fast": fast,
            "gap_threshold": gap_threshold,
            "four_fifths": FOUR_FIFTHS,
            "min_group_size": min_group_size,
            "bins": {f.name: list(f.edges) for f in features if f.edges},
            "intervals": dict(INTERVAL_METHODS) if n_boot else "none (n_boot = 0)",
        },
    )
    add_group_results(sec, result, gap_threshold=gap_threshold, min_group_size=min_group_size)
    if not any(f.severity in ("warning", "fail") for f in sec.findings):
        sec.add_finding(
            "info",
            f"no gap above {gap_threshold:g} and the four-fifths rule holds for every judged feature",
            check="fairness-ok",
        )
    if segments:
        _add_segments(sec, data, pred, result.positive, settings, columns=segment_columns, pairs=segment_pairs)
    _add_robust(
        sec,
        bundle,
        data,
        features,
        eps=robust_eps,
        seed=seed,
        steps=settings.robust_steps,
        min_group_size=min_group_size,
    )
    sec.summary = _summary(result, data)
    return sec


def group_results(
    bundle: ModelBundle,
    data: AuditData,
    features: Sequence[SensitiveFeature],
    *,
    n_boot: int,
    seed: int,
    ci: float = 0.95,
    min_group_size: int = MIN_GROUP_SIZE,
    batch_size: int = 512,
    progress: ProgressFn | None = None,
) -> tuple[np.ndarray, FairnessResult]:
    """The model's predicted classes on ``data`` and their group metrics over ``features`` (what the fairness
    section of every modality computes for its sensitive columns)."""
    with model_state(bundle.module):
        pred = bundle.predict(data.x, batch_size=batch_size).numpy()
    result = group_fairness(
        data.y.numpy(),
        pred,
        features,
        class_names=bundle.card.names,
        n_boot=n_boot,
        seed=seed,
        ci=ci,
        min_group_size=min_group_size,
        progress=progress,
        positive=bundle.card.positive_index,
    )
    return pred, result


def add_group_results(
    sec: Section, result: FairnessResult, *, gap_threshold: float = GAP_THRESHOLD, min_group_size: int = MIN_GROUP_SIZE
) -> None:
    """``result``'s metrics, judged by ``gap_threshold`` and the four-fifths rule, and each feature's findings and
    tables, added to ``sec``."""
    sec.metrics.extend(_judged(m, gap_threshold) for m in result.metrics)
    for feat in result.features:
        _add_feature_findings(sec, feat, gap_threshold=gap_threshold, min_group_size=min_group_size)
        _add_feature_tables(sec, feat, result)


def _judged(metric: Metric, gap_threshold: float) -> Metric:
    """The metric with the verdict of the finding thresholds below (the four-fifths rule, the gap threshold).

    The selection-rate ratio becomes a headline metric: it is what the four-fifths rule reads.
    """
    short = metric.name.rsplit(".", 1)[-1]
    v = metric.value
    if short == "demographic_parity_ratio":
        return replace(
            metric,
            headline=True,
            **judged(v, fail=v is not None and v < FOUR_FIFTHS, rule=f"fails below {FOUR_FIFTHS:g} (four-fifths rule)"),
        )
    if short in _GAPS:
        return replace(
            metric, **judged(v, warning=v is not None and v > gap_threshold, rule=f"warns above {gap_threshold:g}")
        )
    return metric


def _add_feature_findings(sec: Section, feat: FeatureFairness, *, gap_threshold: float, min_group_size: int) -> None:
    if feat.note and all(f.message != feat.note for f in sec.findings):  # an intersection repeats its parts' notes
        sec.add_finding("info", feat.note, check="pooled" if POOLED in feat.note else "binning")
    if not feat.defined:
        sec.add_finding("warning", f"fairness over {feat.name!r} is undefined: {feat.reason}", check="undefined")
        return
    table = feat.by_group
    small = table[~table["judged"]]
    if len(small):
        listed = ", ".join(f"{g!r} (n={int(c)})" for g, c in small["count"].items())
        sec.add_finding(
            "info",
            f"{feat.name}: group(s) {listed} have fewer than {min_group_size} samples: too small to judge, left out of the gaps",
            check="small-group",
        )
    if feat.per_class is not None:
        _add_worst_class_finding(sec, feat)
    if INTERSECTION_SEP in feat.name:
        _add_worst_off_finding(sec, feat)
    ratio = feat.metric("demographic_parity_ratio")
    if ratio is not None and ratio.value is not None and ratio.value < FOUR_FIFTHS:
        sec.add_finding(
            "fail",
            f"{feat.name}: four-fifths rule fails: the lowest group selection rate is {ratio.value:.0%} of the highest (under {FOUR_FIFTHS:.0%})",
            evidence=_evidence(feat, "selection_rate") + (f"; ratio 95% CI {_fmt_ci(*ratio.ci)}" if ratio.ci else ""),
            check="four-fifths",
        )
    for short, label in _GAPS.items():
        m = feat.metric(short)
        if m is None or m.value is None or m.value <= gap_threshold:
            continue
        rate = {
            "demographic_parity_difference": "selection_rate",
            "equalized_odds_difference": "tpr",
            "accuracy_gap": "accuracy",
        }[short]
        sec.add_finding(
            "warning",
            f"{feat.name}: {label} is {m.value:.3f}, over {gap_threshold:g}"
            + (f" (95% CI {_fmt_ci(*m.ci)})" if m.ci else ""),
            evidence=_evidence(feat, rate),
            check=short,
        )
    for rate, why in (("tpr", "no positives"), ("fpr", "no negatives")):
        if rate not in table.columns:
            continue
        groups = [str(g) for g in table.index[table["judged"] & table[rate].isna()]]
        if groups:
            sec.add_finding(
                "info",
                f"{feat.name}: {rate.upper()} is undefined for {', '.join(map(repr, groups))} ({why}); those groups are left out of the {rate.upper()} gaps",
                check="undefined-rate",
            )


def _worst_off(feat: FeatureFairness) -> tuple[str, str] | None:
    """The judged group of an intersection that fares worst: the lowest selection rate of the positive class
    (the favourable outcome), or the lowest accuracy for multi-class models; with the rate's name."""
    table = feat.by_group
    rate = "selection_rate" if "selection_rate" in table.columns else "accuracy"
    judged = table[table["judged"] & table[rate].notna()]
    if len(judged) < 2:
        return None
    return str(judged[rate].idxmin()), rate


def _add_worst_off_finding(sec: Section, feat: FeatureFairness) -> None:
    worst = _worst_off(feat)
    if worst is None:
        return
    group, rate = worst
    table = feat.by_group
    row = table.loc[group]
    judged = table[table["judged"]]
    best = str(judged[rate].idxmax())
    label = rate.replace("_", " ")
    extra = f"; accuracy {row['accuracy']:.3f}" if rate != "accuracy" else ""
    sec.add_finding(
        "info",
        f"{feat.name}: the worst-off intersection is {group!r}: {label} {row[rate]:.3f} (n={int(row['count'])}){extra}, "
        f"against {table.loc[best, rate]:.3f} for {best!r}",
        evidence=_evidence(feat, rate),
        check="worst-off-intersection",
    )


def _add_worst_class_finding(sec: Section, feat: FeatureFairness) -> None:
    """Multi-class: name the class each one-vs-rest summary is worst for, with every class's value."""
    parts, evidence = [], []
    for short in ("equalized_odds_difference", "demographic_parity_difference"):
        m = feat.metric(short)
        per_class = [x for x in feat.metrics if x.name.endswith(f".{short}") and ".class_" in x.name]
        if m is None or m.value is None or "worst class" not in m.note:
            continue
        worst = m.note.split("worst class ", 1)[1].split(";", 1)[0]
        parts.append(f"{short.replace('_', ' ')} is worst for class {worst} ({m.value:.3f})")
        evidence.append(
            f"{short.replace('_', ' ')} by class: "
            + ", ".join(
                f"{x.name.split('.class_', 1)[1].split('.', 1)[0]}: {'undefined' if x.value is None else f'{x.value:.3f}'}"
                for x in per_class
            )
        )
    if parts:
        sec.add_finding(
            "info",
            f"{feat.name} (one-vs-rest per class): " + "; ".join(parts),
            evidence="; ".join(evidence),
            check="worst-class",
        )


def _evidence(feat: FeatureFairness, rate: str) -> str:
    if feat.by_group is None or rate not in feat.by_group.columns:
        return ""
    parts = []
    for group, row in feat.by_group.iterrows():
        value = row[rate]
        text = "undefined" if np.isnan(value) else f"{value:.3f}"
        parts.append(f"{group}: {text} (n={int(row['count'])}{'' if row['judged'] else ', too small'})")
    return f"{rate.replace('_', ' ')} by group: " + "; ".join(parts)


def _add_feature_tables(sec: Section, feat: FeatureFairness, result: FairnessResult) -> None:
    if not feat.defined:
        return
    table = feat.by_group
    binary = result.positive is not None
    level = f"{result.ci_level:.0%} CI"
    if binary:
        columns = [
            "group",
            "n",
            "accuracy",
            level,
            "selection rate",
            level,
            "TPR",
            level,
            "FPR",
            "FNR",
            "precision",
            "note",
        ]
    else:
        columns = ["group", "n", "accuracy", level, "note"]
    rows = []
    worst = _worst_off(feat) if INTERSECTION_SEP in feat.name else None
    for group, row in table.iterrows():
        note = "" if row["judged"] else f"too small to judge (n < {result.min_group_size})"
        if worst is not None and str(group) == worst[0]:
            note = f"worst-off (lowest {worst[1].replace('_', ' ')})"
        cells: list[Any] = [
            str(group),
            int(row["count"]),
            round_or_none(row["accuracy"]),
            _fmt_ci(row.get("accuracy_lo"), row.get("accuracy_hi")),
        ]
        if binary:
            cells += [
                round_or_none(row["selection_rate"]),
                _fmt_ci(row.get("selection_rate_lo"), row.get("selection_rate_hi")),
            ]
            cells += [
                round_or_none(row["tpr"]),
                _fmt_ci(row.get("tpr_lo"), row.get("tpr_hi")),
                round_or_none(row["fpr"]),
                round_or_none(row["fnr"]),
                round_or_none(row["precision"]),
            ]
            undefined = [
                name.upper() if len(name) == 3 else name for name in ("tpr", "fpr", "precision") if np.isnan(row[name])
            ]
            if undefined:
                note = "; ".join(filter(None, [note, f"{', '.join(undefined)} undefined (no samples to divide by)"]))
        rows.append(cells + [note])
    positive = result.class_names[result.positive] if binary else None
    caption = (
        f"Rates of the positive class {positive!r}; blank (undefined) where the rate has nothing to divide by, e.g. TPR for a group with no positives."
        if binary
        else "Accuracy per group; see the per-class table for one-vs-rest rates."
    )
    if result.n_boot:
        caption += " Intervals: Wilson score with continuity correction."
    if feat.note:
        caption += f" {feat.note}."
    sec.tables.append(Table(title=f"Groups by {feat.name}", columns=columns, rows=rows, caption=caption))
    if feat.per_class is not None:
        pc = feat.per_class
        sec.tables.append(
            Table(
                title=f"Per-class rates by {feat.name} (one-vs-rest)",
                columns=["class", "group", "selection rate", "TPR", "FPR", "FNR", "precision"],
                rows=[
                    [
                        r["class"],
                        r["group"],
                        round_or_none(r["selection_rate"]),
                        round_or_none(r["tpr"]),
                        round_or_none(r["fpr"]),
                        round_or_none(r["fnr"]),
                        round_or_none(r["precision"]),
                    ]
                    for _, r in pc.iterrows()
                ],
                caption="Each class against the rest; the summaries report the worst class.",
            )
        )
    rates = ("selection_rate", "tpr", "accuracy") if binary else ("accuracy",)
    sec.figures.append(group_bars_figure(feat.name, table, rates=rates, ci_level=result.ci_level))


def _segment_columns(data: AuditData, columns: str | Sequence[str] | None) -> pd.DataFrame | None:
    """The per-sample columns to search: the raw columns, then sensitive ones the raw frame lacks."""
    frames = [f.reset_index(drop=True) for f in (data.raw, data.sensitive) if f is not None]
    if not frames:
        return None
    table = frames[0]
    for extra in frames[1:]:
        table = pd.concat([table, extra[[c for c in extra.columns if c not in table.columns]]], axis=1)
    if columns is None:
        return table
    wanted = split_list(columns) if isinstance(columns, str) else [str(c) for c in columns]
    unknown = [c for c in wanted if c not in table.columns]
    if unknown:
        raise ConfigError(
            f"segment column(s) {', '.join(map(repr, unknown))} not in the data; columns are: {', '.join(map(str, table.columns))}"
        )
    return table[wanted]


def _add_segments(
    sec: Section,
    data: AuditData,
    pred: np.ndarray,
    positive: int | None,
    settings: Settings,
    *,
    columns: str | Sequence[str] | None,
    pairs: bool,
) -> None:
    """The weak-segment search: metrics, the worst segment per rate as a finding, a table and a figure."""
    table = _segment_columns(data, columns)
    if table is None or table.shape[1] == 0:
        sec.params["segments"] = "skipped: the data has no per-sample columns to search"
        sec.add_finding("info", "weak-segment search skipped: the data has no per-sample columns", check="segments")
        return
    y = data.y.numpy()
    found = find_weak_segments(
        table,
        pred == y,
        predicted_positive=None if positive is None else pred == positive,
        actual_positive=None if positive is None else y == positive,
        n_bins=settings.segment_bins,
        min_support=settings.segment_min_support,
        fdr=settings.segment_fdr,
        ci=settings.ci,
        pairs=pairs,
    )
    sec.params["segments"] = {
        "columns": found.columns,
        "pairs": pairs,
        "bins": settings.segment_bins,
        "min_support": found.min_support,
        "fdr": found.fdr,
        "test": "one-sided pooled two-proportion z-test against the rest; Benjamini-Hochberg over every test",
        "interval": "Newcombe hybrid score (Wilson) interval of the gap",
    }
    scope = (
        f"{found.n_tested} tests ({', '.join(found.metrics)}) over segments of {len(found.columns)} column(s)"
        + (" and their pairs" if pairs else "")
        + f" with at least {found.min_support} rows; Benjamini-Hochberg at false discovery rate {found.fdr:g}"
    )
    sec.metrics.append(
        Metric("fairness.segments.n_tested", found.n_tested, description="segment tests made", note=scope)
    )
    sec.metrics.append(
        Metric(
            "fairness.segments.n_significant",
            found.n_significant,
            description="segments significantly worse than the rest (BH)",
            note=scope,
            higher_is_better=False,
        )
    )
    for metric in found.metrics:
        _add_segment_metric(sec, found, metric, settings)
    listed = [s for m in found.metrics for s in [x for x in found.segments if x.metric == m][: settings.segment_top]]
    sec.add_finding(
        "info",
        f"weak-segment search: {found.n_significant} of {found.n_tested} segment tests significant "
        f"(Benjamini-Hochberg, false discovery rate {found.fdr:g}); {len(listed)} listed",
        evidence="; ".join(found.notes),
        check="segments",
    )
    if not listed:
        return
    level = f"{settings.ci:.0%} CI"
    sec.tables.append(
        Table(
            title="Weak segments (found, not named)",
            columns=["segment", "rate", "rows", "in segment", "elsewhere", "gap", level, "BH q"],
            rows=[
                [
                    s.description,
                    s.metric.replace("_", " "),
                    s.n,
                    round_or_none(s.value),
                    round_or_none(s.rest),
                    round_or_none(s.gap),
                    _fmt_ci(*s.ci),
                    float(f"{s.q_value:.3g}"),
                ]
                for s in listed
            ],
            caption=(
                f"Segments of one or two columns significantly worse than the rest of the data, surest gap first "
                f"(the lower end of its Newcombe interval); {scope}. A pair is listed only when it is surely worse than "
                "both its parts. The positive class's selection rate may follow a segment's base rate: see the findings."
            ),
        )
    )
    sec.figures.append(
        segments_figure(
            [(f"{s.metric.replace('_', ' ')}: {s.description}", s.gap, s.ci[0], s.ci[1]) for s in listed],
            ci_level=settings.ci,
        )
    )


def _add_segment_metric(sec: Section, found: SegmentResult, metric: str, settings: Settings) -> None:
    worst = found.worst(metric)
    label = metric.replace("_", " ")
    fails = metric == "accuracy" and settings.segment_fail_gap is not None
    rule = f"warns above {settings.gap_threshold:g}" + (f", fails above {settings.segment_fail_gap:g}" if fails else "")
    value = 0.0 if worst is None else worst.gap
    note = (
        f"no segment has a significantly lower {label} than the rest"
        if worst is None
        else f"{worst.sentence()}; BH q = {worst.q_value:.2g}"
    )
    fail = fails and worst is not None and worst.gap > settings.segment_fail_gap  # type: ignore[operator]
    warning = worst is not None and worst.gap > settings.gap_threshold
    sec.metrics.append(
        Metric(
            f"fairness.segments.worst_{metric}_gap",
            value,
            ci=None if worst is None else worst.ci,
            description=f"{label} elsewhere minus {label} in the worst significant segment (0: none)",
            note=note,
            higher_is_better=False,
            **judged(value, fail=fail, warning=warning, rule=rule),
        )
    )
    if worst is None:
        return
    severity = "fail" if fail else "warning" if warning else "info"
    sec.add_finding(
        severity,
        f"weak segment: {worst.sentence()}",
        evidence=f"gap {worst.gap:.3f} ({settings.ci:.0%} CI {_fmt_ci(*worst.ci)}), one-sided p = {worst.p_value:.2g}, "
        f"BH q = {worst.q_value:.2g} over {found.n_tested} tests",
        check=f"segment-{metric.replace('_', '-')}",
    )


def _add_robust(
    sec: Section,
    bundle: ModelBundle,
    data: AuditData,
    features: Sequence[SensitiveFeature],
    *,
    eps: float,
    seed: int,
    steps: int,
    min_group_size: int,
) -> None:
    robust = robust_accuracy_by_group(
        bundle, data, features, eps=eps, seed=seed, steps=steps, min_group_size=min_group_size
    )
    if robust.skipped:
        sec.params["robust_by_group"] = f"skipped: {robust.skipped}"
        sec.add_finding("info", f"robust accuracy per group skipped: {robust.skipped}", check="robust-by-group")
        return
    sec.params["robust_by_group"] = {"eps": eps}
    sec.metrics.extend(robust.metrics)
    sec.tables.extend(robust.tables)


def _summary(result: FairnessResult, data: AuditData) -> str:
    parts = []
    for feat in result.features:
        m = feat.metric("demographic_parity_difference")
        if not feat.defined or m is None:
            parts.append(f"{feat.name}: undefined")
        elif m.value is None:
            parts.append(f"{feat.name}: demographic parity difference undefined")
        else:
            parts.append(f"{feat.name}: demographic parity difference {m.value:.3f}")
    return f"{len(data)} samples of {data.name} ({data.split}); " + "; ".join(parts) + "."
