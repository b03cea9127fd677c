"""Figures for reports, drawn into PNG bytes with matplotlib's object API.

No pyplot state is touched: figures are :class:`matplotlib.figure.Figure` objects
rendered by the Agg canvas, so importing or running dlaudit never changes the
plotting backend of a notebook or application that uses it.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure as MplFigure

from .model import Figure

__all__ = ["fig_to_png", "subplots", "confusion_matrix_figure", "COLORS"]

# Okabe-Ito palette: distinguishable with the common forms of colour blindness.
COLORS = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]


def subplots(
    nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float], squeeze: bool = True, layout: str | None = None
) -> tuple[MplFigure, Any]:
    """A new figure and its axes, like ``pyplot.subplots`` but without pyplot's global state."""
    fig = MplFigure(figsize=figsize, layout=layout)
    return fig, fig.subplots(nrows, ncols, squeeze=squeeze)


def fig_to_png(fig: MplFigure, *, dpi: int = 100) -> bytes:
    """Render a matplotlib figure with the Agg canvas; the PNG carries no timestamp (same input, same bytes)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def confusion_matrix_figure(
    matrix: np.ndarray, class_names: Sequence[str], *, title: str = "Confusion matrix"
) -> Figure:
    k = len(class_names)
    size = min(2.5 + 0.45 * k, 12.0)
    fig, ax = subplots(figsize=(size, size * 0.85))
    row_sums = matrix.sum(axis=1, keepdims=True).clip(min=1)
    im = ax.imshow(matrix / row_sums, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(
        range(k), [str(c) for c in class_names], rotation=45 if k > 6 else 0, ha="right" if k > 6 else "center"
    )
    ax.set_yticks(range(k), [str(c) for c in class_names])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if k <= 20:
        for i in range(k):
            for j in range(k):
                frac = matrix[i, j] / row_sums[i, 0]
                ax.text(
                    j,
                    i,
                    str(int(matrix[i, j])),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if frac > 0.5 else "black",
                )
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
    return Figure(
        caption=f"{title}: rows are true classes, columns predictions; colour is the share of each true class.",
        data=fig_to_png(fig),
        alt=f"{title} heat map over {k} classes",
    )
