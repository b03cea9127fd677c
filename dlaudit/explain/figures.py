"""Figures of the explanations section (matplotlib object API, Okabe-Ito colours)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from matplotlib.axes import Axes

from ..report.model import Figure
from ..report.plots import COLORS, fig_to_png, subplots
from ._common import Column
from .quality import Curves

__all__ = [
    "overlay_grid",
    "activation_maps",
    "curves_figure",
    "column_importance",
    "sample_columns",
    "column_attributions",
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


def _outline(ax: Axes, image: np.ndarray, value_range: tuple[float, float]) -> None:
    """The input's outline (its mid-grey contour) over an attribution map."""
    lo, hi = value_range
    grey = (image.mean(axis=0) - lo) / (hi - lo)
    if grey.min() < 0.5 < grey.max():
        ax.contour(grey, levels=[0.5], colors="black", linewidths=0.6)
    ax.set_xticks([])
    ax.set_yticks([])


def _caption_of(true: str, pred: str) -> tuple[str, str]:
    ok = true == pred
    return f"true {true}\npred {pred} {'✓' if ok else '✗'}", ("black" if ok else COLORS[3])


def overlay_grid(
    title: str,
    x: torch.Tensor,
    attributions: torch.Tensor,
    true: Sequence[str],
    pred: Sequence[str],
    value_range: tuple[float, float],
    *,
    target_note: str = "",
) -> Figure:
    """Inputs (top row) and the attribution over a grey copy of each (bottom row)."""
    k = len(x)
    fig, axes = subplots(2, k, figsize=(max(1.4 * k, 3.0), 3.2), squeeze=False)
    maps = attributions.detach().cpu().float()
    maps = maps.sum(dim=1).numpy() if maps.dim() == 4 else maps.numpy()
    for j in range(k):
        text, colour = _caption_of(true[j], pred[j])
        _show_image(axes[0, j], x[j].numpy(), value_range)
        axes[0, j].set_title(text, fontsize=8, color=colour)
        vmax = float(np.percentile(np.abs(maps[j]), 99)) or 1e-12
        im = axes[1, j].imshow(maps[j], cmap=DIVERGING, vmin=-vmax, vmax=vmax, interpolation="nearest")
        _outline(axes[1, j], x[j].numpy(), value_range)
    axes[0, 0].set_ylabel("input", fontsize=8)
    axes[1, 0].set_ylabel(title, fontsize=8)
    fig.colorbar(im, ax=list(axes[1]), fraction=0.02, pad=0.01, ticks=[], label="− / +")
    fig.suptitle(title, fontsize=10, y=1.06)
    n_wrong = sum(t != p for t, p in zip(true, pred))
    return Figure(
        caption=f"{title}: inputs and their attributions, with the input's outline in black (red raises the explained class{target_note}, blue lowers it; "
        "each map scaled to its own 99th percentile). "
        f"{k - n_wrong} correctly and {n_wrong} wrongly classified samples.",
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


def curves_figure(curves: Mapping[str, Curves], random: Curves, titles: Mapping[str, str]) -> Figure:
    """Mean deletion and insertion curves of every method against a random order."""
    fig, axes = subplots(1, 2, figsize=(9, 3.4))
    styles = ["-", "--", "-.", ":"]
    for kind, ax in zip(("deletion", "insertion"), axes):
        for i, (name, c) in enumerate(curves.items()):
            ax.plot(
                c.fractions,
                getattr(c, kind).mean(axis=0),
                styles[i // len(COLORS) % 4],
                color=COLORS[i % len(COLORS)],
                label=titles.get(name, name),
            )
        ax.plot(
            random.fractions, getattr(random, kind).mean(axis=0), ":", color="grey", linewidth=2, label="random order"
        )
        ax.set_xlabel(f"fraction of features {'removed' if kind == 'deletion' else 'inserted'}")
        ax.set_ylabel("probability of the explained class")
        ax.set_title(
            f"{kind.capitalize()} ({'lower' if kind == 'deletion' else 'higher'} is more faithful)", fontsize=10
        )
        ax.set_ylim(-0.02, 1.02)
    axes[1].legend(fontsize=7, loc="lower right")
    return Figure(
        caption="Deletion and insertion curves (RISE, Petsiuk et al. 2018): features removed from (or inserted into) the input in each method's order, "
        "most important first, mean over the explained samples; the grey dotted line is a random order.",
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
    fig, ax = subplots(figsize=(6, 0.3 * len(order) + 1.0))
    ax.barh([columns[i].name for i in order], mean_abs[order], color=COLORS[0])
    ax.set_xlabel("mean |attribution|")
    ax.set_title(title, fontsize=10)
    return Figure(
        caption=f"{title}: mean absolute attribution of each input column over the explained samples (one-hot features of a categorical column summed).",
        data=fig_to_png(fig),
        alt=f"bar chart of {title} feature importance",
    )


def _column_label(col: Column, row: torch.Tensor) -> str:
    """A column's name, with the sample's category for a categorical column (``sex=female``)."""
    if not col.categorical or not col.categories:
        return col.name
    values = row[list(col.features)]
    return f"{col.name}={col.categories[int(values.argmax())]}" if float(values.max()) > 0 else f"{col.name}=(unseen)"


def sample_columns(
    title: str,
    x: torch.Tensor,
    attributions: torch.Tensor,
    columns: Sequence[Column],
    true: Sequence[str],
    pred: Sequence[str],
    *,
    top: int = 8,
) -> Figure:
    """Per-sample views: each sample's signed column attributions (largest first)."""
    values = column_attributions(attributions, columns)
    k = len(values)
    fig, axes = subplots(
        1, k, figsize=(3.2 * k, 0.3 * min(top, len(columns)) + 1.4), squeeze=False, layout="constrained"
    )
    for j in range(k):
        ax = axes[0, j]
        order = np.argsort(-np.abs(values[j]))[:top][::-1]
        v = values[j][order]
        ax.barh(
            [_column_label(columns[i], x[j]) for i in order], v, color=[COLORS[2] if t >= 0 else COLORS[3] for t in v]
        )
        ax.axvline(0, color="black", linewidth=0.5)
        text, colour = _caption_of(true[j], pred[j])
        ax.set_title(text.replace("\n", ", "), fontsize=8, color=colour)
        ax.tick_params(labelsize=7)
    fig.suptitle(title, fontsize=10)
    return Figure(
        caption=f"{title} per sample: each column's contribution to the explained class (green raises it, vermillion lowers it), largest first.",
        data=fig_to_png(fig),
        alt=f"{title} per-sample bar charts",
    )
