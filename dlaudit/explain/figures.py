"""Figures of the explanations section (matplotlib object API, Okabe-Ito colours)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.ticker import FuncFormatter

from ..report.figures import COLORS, fig_to_png, subplots
from ..report.model import Figure
from ._common import Column
from .quality import Curves

__all__ = [
    "overlay_grid",
    "activation_maps",
    "curves_figure",
    "column_importance",
    "column_value",
    "importance_comparison",
    "waterfall",
    "beeswarm",
    "column_attributions",
    "FIGURE_SCALES",
    "CURVES_PER_PANEL",
]

DIVERGING = "RdBu_r"  # blue negative, red positive; readable with the common colour blindnesses


def _show_image(ax: Axes, image: np.ndarray, value_range: tuple[float, float], *, gray: bool = False) -> None:
    lo, hi = value_range
    img = np.clip((image - lo) / (hi - lo), 0.0, 1.0)
    if img.shape[0] == 1 or gray:
        ax.imshow(img.mean(axis=0), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(np.moveaxis(img, 0, -1), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def _caption_of(true: str, pred: str) -> tuple[str, str]:
    ok = true == pred
    return f"true {true}\npred {pred} {'✓' if ok else '✗'}", ("black" if ok else COLORS[3])


FIGURE_SCALES = ("shared", "sample")
"""How saliency maps are coloured: one scale for the whole figure (samples compare) or one per sample."""


def _robust_max(values: np.ndarray) -> float:
    """The 99th percentile of |values|: one outlier pixel does not wash out the map."""
    return float(np.percentile(np.abs(values), 99)) or float(np.abs(values).max()) or 1e-12


def _overlay(ax: Axes, image: np.ndarray, amap: np.ndarray, norm: Normalize, value_range: tuple[float, float]) -> None:
    """The input in grey with the attribution over it: transparent where it is near 0, opaque where it is strong."""
    lo, hi = value_range
    grey = np.clip((image.mean(axis=0) - lo) / (hi - lo), 0.0, 1.0)
    ax.imshow(grey, cmap="gray", vmin=-0.35, vmax=1.35, interpolation="nearest")  # muted, so the colours stand out
    rgba = colormaps[DIVERGING](norm(amap))
    rgba[..., 3] = np.clip(np.abs(amap) / max(norm.vmax, 1e-12), 0.0, 1.0) * 0.9
    ax.imshow(rgba, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def overlay_grid(
    title: str,
    x: torch.Tensor,
    attributions: torch.Tensor,
    true: Sequence[str],
    pred: Sequence[str],
    value_range: tuple[float, float],
    *,
    scale: str = "shared",
    target_note: str = "",
) -> Figure:
    """Inputs (top row) and each attribution laid over its input (bottom row), with a numbered colour bar.

    ``scale="shared"`` (the default) colours every map of the figure on one scale, so samples
    compare; ``"sample"`` scales each map to its own 99th percentile (the colour bar says so).
    """
    if scale not in FIGURE_SCALES:
        raise ValueError(f"figure scale must be one of {FIGURE_SCALES}, got {scale!r}")
    k = len(x)
    fig, axes = subplots(2, k, figsize=(max(1.35 * k + 1.2, 3.6), 3.5), squeeze=False, layout="constrained")
    maps = attributions.detach().cpu().float()
    maps = maps.sum(dim=1).numpy() if maps.dim() == 4 else maps.numpy()
    if scale == "sample":
        maps = np.stack([m / _robust_max(m) for m in maps])
        vmax = 1.0
    else:
        vmax = _robust_max(maps)
    norm = Normalize(vmin=-vmax, vmax=vmax, clip=True)
    for j in range(k):
        text, colour = _caption_of(true[j], pred[j])
        _show_image(axes[0, j], x[j].numpy(), value_range)
        axes[0, j].set_title(text, fontsize=9, color=colour)
        _overlay(axes[1, j], x[j].numpy(), maps[j], norm, value_range)
    axes[0, 0].set_ylabel("input", fontsize=9)
    axes[1, 0].set_ylabel("attribution", fontsize=9)
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap=DIVERGING), ax=list(axes[1]), fraction=0.03, pad=0.01, aspect=12)
    bar.set_ticks(np.linspace(-vmax, vmax, 5))
    bar.ax.tick_params(labelsize=8)
    bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.2g}"))
    bar.set_label("per-sample scale:\nshare of each map's 99th pct" if scale == "sample" else "attribution", fontsize=8)
    fig.suptitle(title, fontsize=11)
    n_wrong = sum(t != p for t, p in zip(true, pred))
    how = (
        "each map scaled to its own 99th percentile (per-sample scale: colours do not compare across samples)"
        if scale == "sample"
        else f"one scale for the whole figure, ±{vmax:.2g} (the 99th percentile of |attribution| over these samples), so samples compare"
    )
    return Figure(
        caption=f"{title}: inputs, and each attribution over its input, transparent where it is near 0 (red raises the explained class{target_note}, "
        f"blue lowers it; {how}). {k - n_wrong} correctly and {n_wrong} wrongly classified samples.",
        data=fig_to_png(fig),
        alt=f"{title} attribution maps over {k} input images",
    )


def activation_maps(activations: Sequence[tuple[str, torch.Tensor]], *, channels: int = 8, label: str = "") -> Figure:
    """The first ``channels`` feature maps of each convolutional layer for one input."""
    rows = len(activations)
    fig, axes = subplots(rows, channels, figsize=(1.1 * channels, 1.2 * rows + 0.4), squeeze=False)
    for i, (name, act) in enumerate(activations):
        a = act[0].numpy()
        for j in range(channels):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j < len(a):
                ax.imshow(a[j], cmap="viridis", interpolation="nearest")
        axes[i, 0].set_ylabel(f"layer {name}", fontsize=8)
    fig.suptitle(f"Activation maps, {label}" if label else "Activation maps", fontsize=10)
    return Figure(
        caption=f"Activations of the convolutional layers (captum LayerActivation) for {label or 'one input'}: the first {channels} channels of each layer, brighter is stronger.",
        data=fig_to_png(fig),
        alt="grid of convolutional feature maps",
    )


CURVES_PER_PANEL = 4
"""At most this many methods share a deletion/insertion panel (beside the random order), so the lines stay readable."""


def curves_figure(curves: Mapping[str, Curves], random: Curves, titles: Mapping[str, str]) -> Figure:
    """Mean deletion and insertion curves against a random order: a row of two panels per group of
    :data:`CURVES_PER_PANEL` methods, the legend outside the curves, right of each row."""
    names = list(curves)
    groups = [names[i : i + CURVES_PER_PANEL] for i in range(0, len(names), CURVES_PER_PANEL)] or [[]]
    fig, axes = subplots(len(groups), 2, figsize=(10.5, 3.1 * len(groups) + 0.3), squeeze=False, layout="constrained")
    styles = ["-", "--", "-.", (0, (1, 1))]
    for row, group in enumerate(groups):
        for kind, ax in zip(("deletion", "insertion"), axes[row]):
            for i, name in enumerate(group):
                c = curves[name]
                ax.plot(
                    c.fractions,
                    getattr(c, kind).mean(axis=0),
                    linestyle=styles[i % len(styles)],
                    color=COLORS[(row * CURVES_PER_PANEL + i) % len(COLORS)],
                    linewidth=1.8,
                    label=titles.get(name, name),
                )
            ax.plot(
                random.fractions,
                getattr(random, kind).mean(axis=0),
                ":",
                color="grey",
                linewidth=2,
                label="random order",
            )
            ax.set_xlabel(f"fraction of features {'removed' if kind == 'deletion' else 'inserted'}", fontsize=9)
            ax.set_ylabel("probability of the explained class", fontsize=9)
            ax.set_title(
                f"{kind.capitalize()} ({'lower' if kind == 'deletion' else 'higher'} is more faithful)", fontsize=10
            )
            ax.set_ylim(-0.02, 1.02)
            ax.tick_params(labelsize=8)
            ax.grid(alpha=0.3)
        axes[row, 1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    return Figure(
        caption="Deletion and insertion curves (RISE, Petsiuk et al. 2018): features removed from (or inserted into) the input in each method's order, "
        "most important first, mean over the explained samples; the grey dotted line is a random order"
        + (f"; at most {CURVES_PER_PANEL} methods per row of panels." if len(groups) > 1 else "."),
        data=fig_to_png(fig),
        alt="line charts of deletion and insertion curves per method",
    )


def column_attributions(attributions: torch.Tensor, columns: Sequence[Column]) -> np.ndarray:
    """Per-column attributions (N, columns): the sum over each column's features."""
    a = attributions.detach().cpu().double().reshape(len(attributions), -1).numpy()
    return np.stack([a[:, list(c.features)].sum(axis=1) for c in columns], axis=1)


def column_importance(title: str, attributions: torch.Tensor, columns: Sequence[Column], *, top: int = 15) -> Figure:
    """Bar chart of the mean |attribution| of each column (one-hot groups summed)."""
    mean_abs = np.abs(column_attributions(attributions, columns)).mean(axis=0)
    order = np.argsort(-mean_abs)[:top][::-1]
    fig, ax = subplots(figsize=(6, 0.32 * len(order) + 1.1))
    ax.barh([columns[i].name for i in order], mean_abs[order], color=COLORS[0])
    ax.set_xlabel("mean |attribution|", fontsize=10)
    ax.tick_params(labelsize=9)
    ax.set_title(title, fontsize=11)
    return Figure(
        caption=f"{title}: mean absolute attribution of each input column over the explained samples (one-hot features of a categorical column summed).",
        data=fig_to_png(fig),
        alt=f"bar chart of {title} feature importance",
    )


def importance_comparison(
    attributions: Mapping[str, torch.Tensor], columns: Sequence[Column], *, top: int = 12
) -> Figure:
    """One chart for several methods: each column's share of a method's mean |attribution| (methods side by side),
    instead of one chart per method. Shares, because the methods' units differ (gradients, logit changes)."""
    titles = list(attributions)
    shares = []
    for t in titles:
        mean_abs = np.abs(column_attributions(attributions[t], columns)).mean(axis=0)
        shares.append(mean_abs / mean_abs.sum() if mean_abs.sum() > 0 else mean_abs)
    share = np.stack(shares)  # (methods, columns)
    order = list(np.argsort(-share.mean(axis=0))[:top])[::-1]
    m = len(titles)
    height = 0.8 / max(m, 1)
    fig, ax = subplots(figsize=(7.5, 0.28 * m * len(order) + 1.4), layout="constrained")
    ys = np.arange(len(order))
    for i, t in enumerate(titles):
        ax.barh(ys - 0.4 + height * (m - i - 0.5), share[i, order], height, color=COLORS[i % len(COLORS)], label=t)
    ax.set_yticks(ys, [columns[c].name for c in order], fontsize=9)
    ax.set_xlabel("share of the method's mean |attribution|", fontsize=9)
    ax.tick_params(axis="x", labelsize=8)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.set_title("Column importance by method", fontsize=11)
    return Figure(
        caption=f"Column importance of {', '.join(titles)}: each column's share of the method's mean absolute attribution over the "
        "explained samples (one-hot features of a categorical column summed), so methods with different units compare.",
        data=fig_to_png(fig),
        alt="grouped bar chart of column importance by method: "
        + "; ".join(f"{t}: most important {columns[int(np.argmax(share[i]))].name}" for i, t in enumerate(titles)),
    )


def column_value(col: Column, row: torch.Tensor, numeric: Mapping[str, tuple[float, float]] | None = None) -> str:
    """A sample's value of one column as a reader knows it: ``sex=female``, ``age=42`` (decoded when the range is known)."""
    values = row[list(col.features)]
    if col.categorical and col.categories:
        return (
            f"{col.name}={col.categories[int(values.argmax())]}" if float(values.max()) > 0 else f"{col.name}=(unseen)"
        )
    v = float(values[0])
    if numeric and col.name in numeric:
        lo, hi = numeric[col.name]
        v = lo + v * (hi - lo)
    return f"{col.name}={v:,.0f}" if abs(v) >= 1000 else f"{col.name}={v:.3g}"


def waterfall(
    title: str,
    x: torch.Tensor,
    attributions: torch.Tensor,
    columns: Sequence[Column],
    outputs: Sequence[float],
    true: Sequence[str],
    pred: Sequence[str],
    *,
    base_label: str,
    numeric: Mapping[str, tuple[float, float]] | None = None,
    top: int = 7,
) -> Figure:
    """A waterfall per explained row, as shap draws them: from the base value, each column's contribution
    (its value in the label) in turn, the rest summed, to the model's output ``f(x)``.

    ``outputs`` are the explained class's output per row; the base value is what the contributions
    leave of it (``f(x) - sum``): the expected output for SHAP, the surrogate's intercept for LIME.
    """
    values = column_attributions(attributions, columns)
    k = len(values)
    n_bars = min(top, len(columns)) + (1 if len(columns) > top else 0) + 2
    ncols = min(k, 2)  # two per line: the page's width keeps the fonts at their size
    nrows = -(-k // ncols)
    fig, axes = subplots(
        nrows, ncols, figsize=(5.25 * ncols, (0.36 * n_bars + 1.2) * nrows), squeeze=False, layout="constrained"
    )
    for ax in axes.flat[k:]:
        ax.set_visible(False)
    for j in range(k):
        ax = axes.flat[j]
        order = list(np.argsort(-np.abs(values[j]))[:top])
        rest = float(values[j].sum() - values[j][order].sum())
        fx = float(outputs[j])
        base = fx - float(values[j].sum())
        labels = [base_label] + [column_value(columns[i], x[j], numeric) for i in order]
        steps = [float(values[j][i]) for i in order]
        if len(columns) > top:
            labels.append(f"{len(columns) - top} other columns")
            steps.append(rest)
        start = base
        for pos, step in enumerate(steps, start=1):
            ax.barh(pos, step, left=start, color=COLORS[2] if step >= 0 else COLORS[3], height=0.7)
            ax.text(
                start + step,
                pos,
                f" {step:+.3f} " if abs(step) >= 5e-4 else " 0 ",
                va="center",
                ha="left" if step >= 0 else "right",
                fontsize=8,
            )
            start += step
        ax.barh(0, base, color="#bbbbbb", height=0.7)
        ax.barh(len(steps) + 1, fx, color=COLORS[0], height=0.7)
        ax.text(base, 0, f" {base:.3f}", va="center", fontsize=8)
        ax.text(fx, len(steps) + 1, f" {fx:.3f}", va="center", fontsize=8)
        ax.set_yticks(range(len(steps) + 2), [*labels, "f(x)"], fontsize=9)
        ax.invert_yaxis()
        ax.axvline(base, color="grey", linewidth=0.6, linestyle=":")
        ax.set_xlabel("probability of the explained class", fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
        text, colour = _caption_of(true[j], pred[j])
        ax.set_title(text.replace("\n", ", "), fontsize=9, color=colour)
        ax.margins(x=0.2)
    fig.suptitle(f"{title}: contributions per row", fontsize=11)
    return Figure(
        caption=f"{title} waterfall per explained row: from the {base_label} (grey) each column's contribution, largest first "
        "(green raises the explained class, vermillion lowers it; the label holds the row's value), the rest summed, "
        "to the model's output f(x) (blue).",
        data=fig_to_png(fig),
        alt=f"{title} waterfall charts for {k} rows",
    )


def beeswarm(
    title: str, x: torch.Tensor, attributions: torch.Tensor, columns: Sequence[Column], *, top: int = 12, seed: int = 0
) -> Figure:
    """A beeswarm-style summary over the explained rows, as shap draws it: one line per column (most important on
    top), one dot per row at its contribution, coloured by the row's value of a numeric column (grey: categorical)."""
    values = column_attributions(attributions, columns)
    order = list(np.argsort(-np.abs(values).mean(axis=0))[:top])
    rng = np.random.default_rng(seed)
    fig, ax = subplots(figsize=(7.2, 0.42 * len(order) + 1.4), layout="constrained")
    cmap = colormaps["coolwarm"]
    for pos, i in enumerate(order):
        col = columns[i]
        v = values[:, i]
        jitter = rng.uniform(-0.25, 0.25, size=len(v))
        if col.categorical:
            colour: Any = "#888888"
        else:
            feature = x[:, col.features[0]].detach().cpu().double().numpy()
            lo, hi = float(feature.min()), float(feature.max())
            colour = cmap((feature - lo) / (hi - lo) if hi > lo else np.full_like(feature, 0.5))
        ax.scatter(v, pos + jitter, c=colour, s=22, edgecolors="none", alpha=0.85)
    ax.axvline(0, color="black", linewidth=0.6)
    ax.set_yticks(range(len(order)), [columns[i].name for i in order], fontsize=9)
    ax.invert_yaxis()
    ax.set_xlabel("contribution to the explained class's probability", fontsize=9)
    ax.tick_params(axis="x", labelsize=8)
    bar = fig.colorbar(ScalarMappable(norm=Normalize(0, 1), cmap=cmap), ax=ax, fraction=0.04, pad=0.02)
    bar.set_ticks([0, 1], labels=["low", "high"])
    bar.ax.tick_params(labelsize=8)
    bar.set_label("column value (numeric)", fontsize=8)
    ax.set_title(f"{title}: summary over {len(values)} rows", fontsize=11)
    return Figure(
        caption=f"{title} summary: one dot per explained row at its column's contribution (right raises the explained class), "
        "coloured by the row's value of that column, blue low to red high (grey: categorical columns); columns by mean |contribution|.",
        data=fig_to_png(fig),
        alt=f"{title} beeswarm summary over {len(values)} rows and {len(order)} columns",
    )
