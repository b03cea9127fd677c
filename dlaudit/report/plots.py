"""The comparison page's figures: several reports' numbers on one set of axes (used by the HTML renderer).

Drawn with the shared helpers of :mod:`dlaudit.report.figures` (palette, ``subplots``,
PNG bytes), which the analyses use for their own figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .figures import COLORS, fig_to_png, subplots
from .model import Figure

__all__ = ["comparison_curves_figure", "comparison_fairness_figure"]

# -- the comparison page: several reports' numbers on one set of axes ----------------------------------

_CURVE_ORDER = ("pgd_linf", "fgsm_linf", "pgd_l2", "autoattack_linf", "worst_linf", "noise")
_CURVE_TITLES = {
    "pgd_linf": "PGD (L-inf)",
    "fgsm_linf": "FGSM (L-inf)",
    "pgd_l2": "PGD (L2)",
    "autoattack_linf": "AutoAttack (L-inf)",
    "worst_linf": "worst case (L-inf)",
    "noise": "Gaussian noise",
}
_LINES = ("-", "--", "-.", ":")
_MARKERS = ("o", "s", "^", "D", "v", "P")


def _curves_of(report: Any) -> dict[str, list[tuple[float, float]]]:
    """``robustness.<curve>.acc@<eps>`` metrics as ``{curve: [(eps, accuracy), ...]}``, sorted by eps."""
    out: dict[str, list[tuple[float, float]]] = {}
    for name, value in report.metrics.items():
        stem, at, eps = name.rpartition("@")
        parts = stem.split(".")
        if not at or len(parts) != 3 or parts[0] != "robustness" or parts[2] != "acc" or value is None:
            continue
        try:
            out.setdefault(parts[1], []).append((float(eps), float(value)))
        except ValueError:
            continue
    return {k: sorted(v) for k, v in out.items()}


def comparison_curves_figure(reports: Sequence[tuple[str, Any]], *, max_panels: int = 4) -> Figure | None:
    """Each model's robustness curves overlaid: one panel per attack, one line per model (None without any)."""
    curves = {label: _curves_of(rep) for label, rep in reports}
    names = [c for c in _CURVE_ORDER if any(c in cs for cs in curves.values())]
    names += sorted({c for cs in curves.values() for c in cs} - set(names))
    names = names[:max_panels]
    if not names:
        return None
    ncols = 2 if len(names) > 2 else len(names)  # two panels a line keep the fonts readable at the page's width
    nrows = -(-len(names) // ncols)
    fig, axes = subplots(nrows, ncols, figsize=(4.8 * ncols, 3.5 * nrows + 0.5), squeeze=False)
    for ax in axes.flat[len(names) :]:
        ax.set_visible(False)
    for ax, curve in zip(axes.flat, names):
        for i, (label, cs) in enumerate(curves.items()):
            if curve not in cs:
                continue
            xs, ys = zip(*cs[curve])
            ax.plot(
                xs,
                ys,
                color=COLORS[i % len(COLORS)],
                linestyle=_LINES[i % len(_LINES)],
                marker=_MARKERS[i % len(_MARKERS)],
                markersize=4,
                label=label,
            )
        ax.set_title(_CURVE_TITLES.get(curve, curve.replace("_", " ")), fontsize=10)
        ax.set_xlabel("noise strength" if curve.startswith("noise") else "eps", fontsize=9)
        ax.set_ylabel("accuracy", fontsize=9)
        ax.set_ylim(-0.02, 1.02)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    for ax in axes.flat[1 : len(names)]:  # a model may lack the first panel's curve
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 3), fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.08 if nrows == 1 else 0.05, 1, 1))
    shown = ", ".join(_CURVE_TITLES.get(c, c) for c in names)
    return Figure(
        caption=f"Robust accuracy against the budget, the models overlaid: {shown}. Each model's own report has its intervals; "
        "a model missing from a panel did not compute that curve.",
        data=fig_to_png(fig),
        alt="Line charts of accuracy against eps, one line per model: "
        + "; ".join(
            f"{label}: {_CURVE_TITLES.get(c, c)} " + ", ".join(f"{e:g}: {a:.2f}" for e, a in cs[c])
            for label, cs in curves.items()
            for c in names
            if c in cs
        ),
    )


_FAIRNESS_BARS = ("demographic_parity_difference", "equalized_odds_difference", "accuracy_gap")


def comparison_fairness_figure(reports: Sequence[tuple[str, Any]]) -> Figure | None:
    """Each model's fairness gaps as bars side by side (with their intervals), per feature and metric; None without any."""
    keys: list[str] = []
    for _, rep in reports:
        for name in rep.metrics:
            parts = name.split(".")
            if len(parts) == 3 and parts[0] == "fairness" and parts[2] in _FAIRNESS_BARS and name not in keys:
                keys.append(name)
    if not keys:
        return None
    keys.sort(key=lambda n: (n.split(".")[1], _FAIRNESS_BARS.index(n.split(".")[2])))
    with_fairness = [(label, rep) for label, rep in reports if any(rep.metric(k) is not None for k in keys)]
    m = len(with_fairness)
    width = 0.8 / max(m, 1)
    fig, ax = subplots(figsize=(max(5.0, 1.3 * len(keys) * max(m, 1) * 0.6 + 3.0), 3.8))
    x = np.arange(len(keys))
    for i, (label, rep) in enumerate(with_fairness):
        values, lo, hi = [], [], []
        for k in keys:
            metric = rep.metric(k)
            v = metric.value if metric is not None and metric.value is not None else np.nan
            values.append(v)
            ci = metric.ci if metric is not None and metric.ci is not None else (v, v)
            lo.append(max(v - ci[0], 0) if not np.isnan(v) else 0)
            hi.append(max(ci[1] - v, 0) if not np.isnan(v) else 0)
        pos = x - 0.4 + width * (i + 0.5)
        ax.bar(pos, np.nan_to_num(values), width, color=COLORS[i % len(COLORS)], label=label)
        ax.errorbar(pos, np.nan_to_num(values), yerr=[lo, hi], fmt="none", ecolor="black", elinewidth=1, capsize=2)
    ax.set_xticks(
        x,
        [f"{k.split('.')[1]}\n{k.split('.')[2].replace('_difference', '').replace('_', ' ')}" for k in keys],
        fontsize=8,
    )
    ax.set_ylabel("gap between groups (lower is fairer)", fontsize=9)
    ax.set_title("Fairness gaps by model", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    missing = [label for label, rep in reports if (label, rep) not in with_fairness]
    return Figure(
        caption="Fairness gaps (largest minus smallest group rate) of each model with a fairness section, with their 95% bootstrap intervals"
        + (f"; {', '.join(missing)}: no fairness section (no sensitive features)." if missing else "."),
        data=fig_to_png(fig),
        alt="Bar chart of fairness gaps by model: "
        + "; ".join(
            f"{label}: "
            + ", ".join(
                f"{k.split('.', 1)[1]} {rep.metric(k).value:.3f}"
                for k in keys
                if rep.metric(k) and rep.metric(k).value is not None
            )
            for label, rep in with_fairness
        ),
    )
