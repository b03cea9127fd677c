"""Figure helpers that analyses and renderers share: the palette, a pyplot-free ``subplots``, PNG bytes.

No pyplot state is touched: figures are :class:`matplotlib.figure.Figure` objects
rendered by the Agg canvas, so importing or running dlaudit never changes the
plotting backend of a notebook or application that uses it.

This module is neutral ground: it imports matplotlib and nothing of dlaudit, so the
analyses (which draw their sections' figures) and the renderers (which draw the
comparison page) both use it without either importing the other.
"""

from __future__ import annotations

import io
from typing import Any

from matplotlib.figure import Figure as MplFigure

__all__ = ["COLORS", "fig_to_png", "subplots"]

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
