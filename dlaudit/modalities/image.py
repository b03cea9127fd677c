"""Images: ``(C, H, W)`` pictures with values in a box (usually ``[0, 1]``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from .base import Modality, pixel_segments

if TYPE_CHECKING:
    import torch
    from matplotlib.axes import Axes

__all__ = ["ImageModality", "IMAGE"]


class ImageModality(Modality):
    """Pictures: continuous values, a pixel (all its channels) is one part, drawn as an image.

    Masking surrogates (image LIME) hide segments with the baseline colour, so their
    attributions scale with ``input - baseline`` like Integrated Gradients'.
    """

    name: ClassVar[str] = "image"
    title: ClassVar[str] = "image"
    continuous: ClassVar[bool] = True
    spatial: ClassVar[bool] = True
    columns: ClassVar[bool] = False
    masks_with_baseline: ClassVar[bool] = True

    def segments(self, shape: Sequence[int], groups: Sequence[Sequence[int]] = ()) -> torch.Tensor:
        """One segment per pixel (its channels together); ``groups`` are not used by images."""
        return pixel_segments(shape)

    def draw_example(self, ax: Axes, x: torch.Tensor, value_range: Sequence[float]) -> None:
        """The image in grey (one channel, or the channels' mean) or in colour (three channels)."""
        lo, hi = self.domain(value_range)
        a = (x.detach().float().cpu().numpy() - lo) / (hi - lo)
        if a.ndim == 3 and a.shape[0] == 3:
            ax.imshow(np.clip(np.transpose(a, (1, 2, 0)), 0, 1))
        else:
            ax.imshow(a.reshape(a.shape[-2:]) if a.ndim == 2 else a.mean(axis=0), cmap="gray", vmin=0, vmax=1)

    def draw_attribution(self, ax: Axes, values: torch.Tensor, *, scale: float | None = None) -> None:
        """The map summed over channels, red positive and blue negative, symmetric around 0."""
        a = values.detach().float().cpu().numpy()
        a = a.sum(axis=0) if a.ndim == 3 else a.reshape(a.shape[-2:])
        top = scale if scale is not None else float(np.abs(a).max())
        top = top if math.isfinite(top) and top > 0 else 1.0
        ax.imshow(a, cmap="RdBu_r", vmin=-top, vmax=top)


IMAGE = ImageModality()
