"""Figures for reports, drawn with matplotlib's Agg backend into PNG bytes."""
from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .model import Figure  # noqa: E402

__all__ = ["fig_to_png", "confusion_matrix_figure", "COLORS"]

# Okabe-Ito palette: distinguishable with the common forms of colour blindness.
COLORS = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]


def fig_to_png(fig: plt.Figure, *, dpi: int = 100) -> bytes:
    """Render and close a matplotlib figure; the PNG carries no timestamp (same input, same bytes)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def confusion_matrix_figure(matrix: np.ndarray, class_names: Sequence[str], *, title: str = "Confusion matrix") -> Figure:
    k = len(class_names)
    size = min(2.5 + 0.45 * k, 12.0)
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    row_sums = matrix.sum(axis=1, keepdims=True).clip(min=1)
    im = ax.imshow(matrix / row_sums, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k), [str(c) for c in class_names], rotation=45 if k > 6 else 0, ha="right" if k > 6 else "center")
    ax.set_yticks(range(k), [str(c) for c in class_names])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if k <= 20:
        for i in range(k):
            for j in range(k):
                frac = matrix[i, j] / row_sums[i, 0]
                ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=8, color="white" if frac > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
    return Figure(
        caption=f"{title}: rows are true classes, columns predictions; colour is the share of each true class.",
        data=fig_to_png(fig),
        alt=f"{title} heat map over {k} classes",
    )
