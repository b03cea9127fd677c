"""Tabular data: one row of a table per input, numeric columns scaled and categorical ones one-hot encoded."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .base import Modality, grouped_segments

if TYPE_CHECKING:
    import torch
    from matplotlib.axes import Axes

__all__ = ["TabularModality", "TABULAR"]


class TabularModality(Modality):
    """Rows of a table: continuous features, a raw column (its one-hot features together) is one part.

    Masking surrogates (tabular LIME, Kernel SHAP) draw hidden columns from the training
    data rather than setting them to the baseline.
    """

    name: ClassVar[str] = "tabular"
    title: ClassVar[str] = "tabular"
    continuous: ClassVar[bool] = True
    spatial: ClassVar[bool] = False
    columns: ClassVar[bool] = True
    masks_with_baseline: ClassVar[bool] = False

    def segments(self, shape: Sequence[int], groups: Sequence[Sequence[int]] = ()) -> torch.Tensor:
        """One segment per raw column (``groups``: each column's features); features in no column one each."""
        return grouped_segments(math.prod(shape), groups)

    def numeric_features(self, encoder: dict[str, Any] | None) -> tuple[int, ...] | None:
        """The numeric columns of the card's encoder (they come first in its output); None without an encoder."""
        if not encoder:
            return None
        return tuple(range(len(encoder.get("numeric") or [])))

    def draw_example(self, ax: Axes, x: torch.Tensor, value_range: Sequence[float]) -> None:
        """The row's feature values as horizontal bars, first feature on top."""
        a = x.detach().float().cpu().numpy().reshape(-1)
        lo, hi = self.domain(value_range)
        ax.barh(np.arange(len(a)), a, color="#4c72b0")
        ax.set_xlim(min(lo, float(a.min(initial=lo))), max(hi, float(a.max(initial=hi))))
        ax.invert_yaxis()

    def draw_attribution(self, ax: Axes, values: torch.Tensor, *, scale: float | None = None) -> None:
        """Per-feature attributions as bars, red positive and blue negative."""
        a = values.detach().float().cpu().numpy().reshape(-1)
        ax.barh(np.arange(len(a)), a, color=np.where(a >= 0, "#c44e52", "#4c72b0"))
        top = scale if scale is not None else float(np.abs(a).max(initial=0.0))
        if math.isfinite(top) and top > 0:
            ax.set_xlim(-top, top)
        ax.invert_yaxis()


TABULAR = TabularModality()
