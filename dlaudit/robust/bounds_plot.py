"""The figure of the two bounds: certified accuracy (proven, lower) and attacked accuracy (upper) against eps."""

from __future__ import annotations

import math

import numpy as np

from ..report.figures import COLORS, fig_to_png, subplots
from ..report.model import Figure
from .certified import Bounds

__all__ = ["bounds_figure"]


def bounds_figure(bounds: Bounds, *, clean: float) -> Figure | None:
    """Lower and upper bound of robust accuracy per L-inf budget, the unresolved band between them shaded."""
    pts = [
        (e, lo, up) for e, lo, up in zip(bounds.eps, bounds.lower, bounds.upper) if lo is not None and math.isfinite(up)
    ]
    if not pts:
        return None
    eps = np.array([0.0] + [p[0] for p in pts])
    lower = np.array([clean] + [p[1] for p in pts])
    upper = np.array([clean] + [p[2] for p in pts])
    fig, ax = subplots(figsize=(5.2, 3.4))
    ax.fill_between(eps, lower, upper, color=COLORS[5], alpha=0.25, label="unresolved: true robust accuracy lies here")
    ax.plot(eps, upper, marker="o", color=COLORS[3], label="attacked (worst case): upper bound")
    ax.plot(eps, lower, marker="s", color=COLORS[0], label=f"certified ({bounds.method}): lower bound")
    ax.set_xlabel("eps (L-inf)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Robust accuracy: proven and attacked")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=1, frameon=False)
    ax.grid(alpha=0.3)
    gap = float(np.max(upper[1:] - lower[1:]))
    return Figure(
        data=fig_to_png(fig),
        caption=f"Between the certified and the attacked accuracy lies the true robust accuracy; the widest unresolved gap is {gap:.1%}.",
        alt="Line chart of certified and attacked robust accuracy against the L-inf budget, with the band between them shaded.",
    )
