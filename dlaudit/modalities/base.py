"""What a kind of data is, as the analyses ask it: :class:`Modality`.

An analysis never compares a modality's name: it asks the modality object
(``data.kind``, ``card.kind``) what it needs to know:

- ``continuous``: inputs are real values in a box (the value range), so gradients,
  L-p attacks and additive noise apply; a discrete-token modality (text) says False
  and perturbs and masks by substituting tokens instead;
- ``spatial``: inputs are pictures ``(C, H, W)``: Grad-CAM applies, a pixel (all its
  channels) is one removable unit, figures show the input as an image;
- ``columns``: inputs are a table's columns (numeric ones, one-hot groups for
  categorical ones): column-wise explainers (tabular LIME, Kernel SHAP) apply and
  attacks may be restricted to the numeric columns;
- ``masks_with_baseline``: masking surrogates (LIME) hide a part of an input by setting it
  to the baseline; False where they draw hidden parts from the data instead;
- :meth:`Modality.domain` / :meth:`Modality.clip`: the input's value domain;
- :meth:`Modality.perturb`: noise applied to an input (added and clipped for continuous data);
- :meth:`Modality.segments` / :meth:`Modality.mask`: the parts an input is cut into for
  occlusion and deletion curves, and the input with some parts hidden;
- :meth:`Modality.draw_example` / :meth:`Modality.draw_attribution`: how to draw one input
  and one attribution map on a matplotlib axis;
- :meth:`Modality.probe`: the inputs a loader runs a model on once (long ids for text);
- :meth:`Modality.section_builder`: the section builder of its own a modality answers an
  analysis with (text: token attributions, text attacks, counterfactual token fairness), with its
  time estimate (:meth:`Modality.section_estimate`) and its ``--time-budget`` hooks
  (:meth:`Modality.section_budget`).

Which attacks, explanation methods and analyses apply to a modality is declared on
them (``modalities``, ``continuous``...) and answered by their ``applies_to(modality)``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import torch
    from matplotlib.axes import Axes

__all__ = ["Modality", "pixel_segments", "grouped_segments"]


class Modality(ABC):
    """One kind of data (image, tabular, ...): what the analyses ask about its inputs.

    Subclasses set the class attributes and implement :meth:`segments`,
    :meth:`draw_example` and :meth:`draw_attribution`; the continuous defaults of
    :meth:`domain`, :meth:`clip`, :meth:`perturb` and :meth:`mask` fit any real-valued
    input. Register an instance with :func:`dlaudit.modalities.register_modality`.
    """

    name: ClassVar[str] = ""
    """The registry name, stored as ``modality`` on cards and data (e.g. ``"image"``)."""
    title: ClassVar[str] = ""
    """How reports name it (``"image"``, ``"tabular"``)."""
    continuous: ClassVar[bool] = True
    spatial: ClassVar[bool] = False
    columns: ClassVar[bool] = False
    masks_with_baseline: ClassVar[bool] = True

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled by name (to Ray workers): the registered object on the other side."""
        from . import get_modality

        return (get_modality, (self.name,))

    # -- the value domain -----------------------------------------------------------------

    def domain(self, value_range: Sequence[float]) -> tuple[float, float]:
        """The values an input feature may take: the closed box ``[low, high]`` of the value range."""
        low, high = (float(v) for v in value_range)
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f"a value range is (low, high) with finite low < high, got {tuple(value_range)}")
        return low, high

    def clip(self, x: torch.Tensor, value_range: Sequence[float]) -> torch.Tensor:
        """``x`` brought into the value domain (a new tensor)."""
        low, high = self.domain(value_range)
        return x.clamp(low, high)

    # -- perturbation -----------------------------------------------------------------------

    def perturb(self, x: torch.Tensor, noise: torch.Tensor, value_range: Sequence[float]) -> torch.Tensor:
        """``x`` under ``noise`` (a tensor of ``x``'s shape, already scaled): ``x + noise``, clipped to the domain.

        A discrete modality substitutes values where ``noise`` says so instead.
        """
        low, high = self.domain(value_range)
        return (x + noise).clamp_(low, high)

    # -- masking ----------------------------------------------------------------------------

    @abstractmethod
    def segments(self, shape: Sequence[int], groups: Sequence[Sequence[int]] = ()) -> torch.Tensor:
        """The part (segment id) of each flat feature of one input of ``shape``: ``(n_features,)`` long ids.

        ``groups`` lists features that belong together (a categorical column's one-hot
        features); ids run from 0 without gaps.
        """

    def mask(self, x: torch.Tensor, hidden: torch.Tensor, baseline: float) -> torch.Tensor:
        """``x`` with the features where ``hidden`` (bool, broadcastable to ``x``) is True set to ``baseline``."""
        import torch

        return torch.where(hidden, torch.full_like(x, float(baseline)), x)

    def hide_segments(
        self, x: torch.Tensor, hidden: torch.Tensor, segments: torch.Tensor, baseline: float
    ) -> torch.Tensor:
        """Inputs ``x`` ``(N, ...)`` with the segments ``hidden`` ``(N, n_segments)`` (bool) masked."""
        per_feature = hidden[:, segments].reshape(x.shape)
        return self.mask(x, per_feature, baseline)

    def probe(self, shape: Sequence[int], value_range: Sequence[float], n: int = 2) -> torch.Tensor:
        """``n`` inputs of ``shape`` at the low end of the value range: what a loader runs the model on once."""
        import torch

        return torch.full((n, *shape), self.domain(value_range)[0])

    # -- sections -------------------------------------------------------------------------------

    def section_builder(self, analysis: str) -> str | None:
        """The ``"module:function"`` that builds the section of ``analysis`` for this modality, or None.

        None (the default): the registered analysis runs as it is. A modality whose data the
        analysis cannot read as values (text) names a builder of its own, called like the analysis.
        """
        return None

    def section_estimate(self, analysis: str) -> str | None:
        """The ``"module:function"`` estimating the time of :meth:`section_builder`'s section, or None.

        It is called as ``estimate(bundle, data, fast=..., params=...)`` and returns
        ``(seconds, what it counts)`` or None, like an analysis' own estimate.
        """
        return None

    def section_budget(self, analysis: str) -> str | None:
        """The ``"module:NAME"`` of the :class:`dlaudit.plan.Budget` that sizes :meth:`section_builder`'s section
        under ``--time-budget``, or None (that section is then planned as configured).

        The analysis' own budget measures and sizes the registered analysis, which the builder replaces, so it
        never applies where the modality answers with a builder of its own.
        """
        return None

    # -- attacks --------------------------------------------------------------------------------

    def numeric_features(self, encoder: dict[str, Any] | None) -> tuple[int, ...] | None:
        """The flat indices of the numeric features an attack may restrict itself to; None where the modality has none."""
        return None

    # -- rendering ------------------------------------------------------------------------------

    @abstractmethod
    def draw_example(self, ax: Axes, x: torch.Tensor, value_range: Sequence[float]) -> None:
        """Draw one input on ``ax``."""

    @abstractmethod
    def draw_attribution(self, ax: Axes, values: torch.Tensor, *, scale: float | None = None) -> None:
        """Draw one attribution map (the input's shape) on ``ax``; ``scale`` fixes the colour/bar range."""


def pixel_segments(shape: Sequence[int]) -> torch.Tensor:
    """One segment per pixel of a ``(C, H, W)`` input (its channels together); one per feature otherwise."""
    import torch

    if len(shape) == 3:
        return torch.arange(shape[1] * shape[2]).repeat(shape[0])
    return torch.arange(math.prod(shape))


def grouped_segments(n_features: int, groups: Sequence[Sequence[int]]) -> torch.Tensor:
    """Segment ids of ``n_features`` features: group ``j`` is segment ``j``; features in no group follow, one each."""
    import torch

    units = torch.full((n_features,), -1, dtype=torch.long)
    for j, features in enumerate(groups):
        units[list(features)] = j
    loose = (units < 0).nonzero().flatten()
    units[loose] = len(groups) + torch.arange(len(loose))
    return units
