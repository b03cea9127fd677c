"""Fairness figures: per-group bars with confidence intervals, and accuracy against disparity."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..data.groups import INTERSECTION_SEP
from ..report.figures import COLORS, fig_to_png, subplots
from ..report.model import Figure

__all__ = ["group_bars_figure", "segments_figure", "tradeoff_figure"]

_LABELS = {"selection_rate": "selection rate", "tpr": "true positive rate", "accuracy": "accuracy"}


def group_bars_figure(
    feature: str,
    by_group: pd.DataFrame,
    *,
    rates: Sequence[str] = ("selection_rate", "tpr", "accuracy"),
    ci_level: float = 0.95,
) -> Figure:
    """Grouped bars of ``rates`` per group, with bootstrap intervals as whiskers.

    Groups too small to judge are drawn hatched and pale.
    """
    rates = [r for r in rates if r in by_group.columns]
    groups = [str(g) for g in by_group.index]
    x = np.arange(len(groups))
    width = 0.8 / max(len(rates), 1)
    fig, ax = subplots(figsize=(max(4.5, 1.1 * len(groups) + 2.5), 3.4))
    for i, rate in enumerate(rates):
        values = by_group[rate].to_numpy(dtype=float)
        pos = x - 0.4 + width * (i + 0.5)
        judged = by_group["judged"].to_numpy(dtype=bool)
        heights = np.nan_to_num(values, nan=0.0)
        bars = ax.bar(pos, heights, width, color=COLORS[i % len(COLORS)], label=_LABELS.get(rate, rate))
        for bar, ok, v in zip(bars, judged, values):
            if not ok:
                bar.set_alpha(0.35)
                bar.set_hatch("//")
            if np.isnan(v):
                ax.text(
                    bar.get_x() + bar.get_width() / 2, 0.02, "n/a", ha="center", va="bottom", fontsize=7, rotation=90
                )
        if f"{rate}_lo" in by_group.columns:
            lo = by_group[f"{rate}_lo"].to_numpy(dtype=float)
            hi = by_group[f"{rate}_hi"].to_numpy(dtype=float)
            ok = ~(np.isnan(values) | np.isnan(lo) | np.isnan(hi))
            err = np.vstack([np.clip(values - lo, 0, None), np.clip(hi - values, 0, None)])
            ax.errorbar(pos[ok], values[ok], yerr=err[:, ok], fmt="none", ecolor="black", elinewidth=1, capsize=2)
    ticks = [
        f"{g.replace(INTERSECTION_SEP, ' ' + INTERSECTION_SEP + chr(10))}\n(n={int(c)})"
        for g, c in zip(groups, by_group["count"])
    ]
    crowded = len(groups) > 6 or max(len(g) for g in groups) > 14
    ax.set_xticks(
        x, ticks, fontsize=7 if crowded else 8, rotation=30 if crowded else 0, ha="right" if crowded else "center"
    )
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("rate")
    ax.set_title(f"Rates by {feature}")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", alpha=0.3)
    names = ", ".join(_LABELS.get(r, r) for r in rates)
    return Figure(
        caption=f"{names.capitalize()} for each group of {feature}, with {ci_level:.0%} bootstrap intervals; hatched bars are groups too small to judge.",
        data=fig_to_png(fig),
        alt=f"Bar chart of {names} for the groups of {feature}: "
        + "; ".join(
            f"{g}: "
            + ", ".join(
                f"{_LABELS.get(r, r)} {by_group[r].iloc[j]:.2f}" for r in rates if not np.isnan(by_group[r].iloc[j])
            )
            for j, g in enumerate(groups)
        ),
    )


def tradeoff_figure(rows: Sequence[dict], *, feature: str, disparity: str = "demographic_parity_difference") -> Figure:
    """Accuracy (y) against a disparity (x) for the original and each mitigated model.

    ``rows`` are dicts with ``model``, ``accuracy`` and ``disparity`` (and optional
    ``disparity_lo`` / ``disparity_hi`` for horizontal whiskers).
    """
    fig, ax = subplots(figsize=(5, 3.6))
    for i, row in enumerate(rows):
        d, a = row.get("disparity"), row.get("accuracy")
        if d is None or a is None:
            continue
        color = COLORS[i % len(COLORS)]
        marker = "s" if i == 0 else "o"
        if row.get("disparity_lo") is not None and row.get("disparity_hi") is not None:
            ax.errorbar(
                [d],
                [a],
                xerr=[[max(d - row["disparity_lo"], 0)], [max(row["disparity_hi"] - d, 0)]],
                fmt=marker,
                color=color,
                capsize=3,
                label=row["model"],
            )
        else:
            ax.plot([d], [a], marker, color=color, label=row["model"])
    ax.set_xlabel(f"{disparity.replace('_', ' ')} ({feature}); lower is fairer")
    ax.set_ylabel("accuracy")
    ax.set_title("Accuracy against disparity")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return Figure(
        caption=f"Accuracy against {disparity.replace('_', ' ')} over {feature} for the original model (square) and each mitigated model, on the same held-out data.",
        data=fig_to_png(fig),
        alt="Scatter of accuracy against disparity: "
        + "; ".join(
            f"{r['model']}: accuracy {r['accuracy']:.3f}, disparity {r['disparity']:.3f}"
            for r in rows
            if r.get("accuracy") is not None and r.get("disparity") is not None
        ),
    )


def segments_figure(rows: Sequence[tuple[str, float, float, float]], *, ci_level: float = 0.95) -> Figure:
    """Horizontal bars of each weak segment's gap to the rest of the data, with its interval as whiskers.

    ``rows`` are ``(label, gap, lower, upper)``, worst first (drawn at the top).
    """
    labels = [r[0] for r in rows]
    gaps = np.array([r[1] for r in rows], dtype=float)
    lo = np.array([r[2] for r in rows], dtype=float)
    hi = np.array([r[3] for r in rows], dtype=float)
    y = np.arange(len(rows))[::-1]
    fig, ax = subplots(figsize=(7.5, 0.42 * len(rows) + 1.3))
    kinds = sorted({lab.split(":", 1)[0] for lab in labels})
    colors = [COLORS[kinds.index(lab.split(":", 1)[0]) % len(COLORS)] for lab in labels]
    ax.barh(y, gaps, color=colors, height=0.6)
    err = np.vstack([np.clip(gaps - lo, 0, None), np.clip(hi - gaps, 0, None)])
    ax.errorbar(gaps, y, xerr=err, fmt="none", ecolor="black", elinewidth=1, capsize=2)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(y, [lab if len(lab) <= 70 else lab[:67] + "..." for lab in labels], fontsize=7)
    ax.set_xlabel(f"rate elsewhere minus rate in the segment ({ci_level:.0%} CI)")
    ax.set_title("Weak segments found by the search", fontsize=9)
    fig.tight_layout()
    return Figure(
        caption=f"The worst segments found (rate elsewhere minus rate in the segment), with Newcombe {ci_level:.0%} intervals.",
        data=fig_to_png(fig),
        alt="bars of the gap of each weak segment: " + "; ".join(f"{lab}: {g:.3f}" for lab, g in zip(labels, gaps)),
    )
