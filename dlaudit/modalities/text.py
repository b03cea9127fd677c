"""Text: token ids ``(L,)`` per input (right-padded), read by a model through its tokenizer.

Text is discrete: gradients reach the embedding, not the ids, so L-p attacks, additive
noise and pixel-style explainers do not apply. A part of an input is a token; hiding a
token replaces its id by the tokenizer's mask (or unknown) id, which the caller passes as
``baseline``; noise substitutes ids. The analyses that do apply to text run as sections
of their own (:meth:`TextModality.section_builder`): token attributions, text attacks and
counterfactual token fairness.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .base import Modality

if TYPE_CHECKING:
    import torch
    from matplotlib.axes import Axes

__all__ = ["TextModality", "TEXT", "draw_highlighted", "mask_id_of"]

SECTIONS = {
    "explain": "dlaudit.explain.text_section:explain_text",
    "robustness": "dlaudit.robust.text_section:robustness_text",
    "fairness": "dlaudit.fairness.text_section:fairness_text",
}
"""The sections text answers with builders of its own (the registered analysis's name -> builder path)."""

ESTIMATES = {
    "explain": "dlaudit.explain.text_section:estimate_text",
    "robustness": "dlaudit.robust.text_section:estimate_text",
}
"""The time estimates of those builders (the expensive ones), announced before they run."""

BUDGETS = {
    "explain": "dlaudit.explain.text_budget:BUDGET",
    "robustness": "dlaudit.robust.text_budget:BUDGET",
    "fairness": "dlaudit.fairness.text_budget:BUDGET",
}
"""How ``--time-budget`` measures and sizes those builders' sections (:class:`dlaudit.plan.Budget` s)."""


def mask_id_of(tokenizer: Any) -> int:
    """The id that hides a token: the tokenizer's mask id, else its unknown id (a tokenizer without a mask token)."""
    mask = getattr(tokenizer, "mask_id", None)
    return int(mask) if mask is not None and mask >= 0 else int(tokenizer.unk_id)


class TextModality(Modality):
    """Token ids: discrete inputs, one token is one part, hidden by the mask id, drawn as highlighted text."""

    name: ClassVar[str] = "text"
    title: ClassVar[str] = "text"
    continuous: ClassVar[bool] = False
    spatial: ClassVar[bool] = False
    columns: ClassVar[bool] = False
    masks_with_baseline: ClassVar[bool] = True

    def domain(self, value_range: Sequence[float]) -> tuple[float, float]:
        """The ids an input may hold: ``[0, vocabulary size - 1]`` (the card's value range)."""
        low, high = super().domain(value_range)
        return float(math.floor(low)), float(math.floor(high))

    def clip(self, x: torch.Tensor, value_range: Sequence[float]) -> torch.Tensor:
        low, high = self.domain(value_range)
        return x.clamp(int(low), int(high))

    def perturb(self, x: torch.Tensor, noise: torch.Tensor, value_range: Sequence[float]) -> torch.Tensor:
        """``x`` with the ids where ``noise`` is non-zero replaced by ``noise`` rounded into the id domain.

        Text noise is substitution, not addition: ``noise`` holds the replacement ids (0 keeps the token).
        """
        import torch

        low, high = self.domain(value_range)
        repl = noise.round().long().clamp(int(low), int(high))
        return torch.where(noise != 0, repl, x)

    def segments(self, shape: Sequence[int], groups: Sequence[Sequence[int]] = ()) -> torch.Tensor:
        """One segment per token position."""
        import torch

        return torch.arange(math.prod(shape))

    def mask(self, x: torch.Tensor, hidden: torch.Tensor, baseline: float) -> torch.Tensor:
        """``x`` with the hidden tokens replaced by the id ``baseline`` (the mask or unknown id), ids kept long."""
        import torch

        return torch.where(hidden, torch.full_like(x, int(baseline)), x)

    def probe(self, shape: Sequence[int], value_range: Sequence[float], n: int = 2) -> torch.Tensor:
        """``n`` inputs of ``shape`` holding the lowest id (PAD for dlaudit's vocabularies), as long ids."""
        import torch

        return torch.full((n, *shape), int(self.domain(value_range)[0]), dtype=torch.long)

    def section_builder(self, analysis: str) -> str | None:
        return SECTIONS.get(analysis)

    def section_estimate(self, analysis: str) -> str | None:
        return ESTIMATES.get(analysis)

    def section_budget(self, analysis: str) -> str | None:
        return BUDGETS.get(analysis)

    def draw_example(self, ax: Axes, x: torch.Tensor, value_range: Sequence[float]) -> None:
        """The ids of one input as text (the tokenizer decodes them where the caller has it; here: ``#id``)."""
        ids = [int(i) for i in x.detach().cpu().reshape(-1).tolist()]
        draw_highlighted(ax, [f"#{i}" for i in ids], [0.0] * len(ids))

    def draw_attribution(self, ax: Axes, values: torch.Tensor, *, scale: float | None = None) -> None:
        """Per-token attributions as bars along the text, red positive and blue negative."""
        a = values.detach().float().cpu().numpy().reshape(-1)
        ax.bar(np.arange(len(a)), a, color=np.where(a >= 0, "#c44e52", "#4c72b0"))
        top = scale if scale is not None else float(np.abs(a).max(initial=0.0))
        if math.isfinite(top) and top > 0:
            ax.set_ylim(-top, top)


def draw_highlighted(
    ax: Axes, words: Sequence[str], scores: Sequence[float], *, scale: float | None = None, width: int = 70
) -> float:
    """Draw ``words`` as running text, each on a background coloured by its score (red +, blue -).

    Lines wrap at about ``width`` characters; ``scale`` fixes the score that gets the full colour
    (default: the largest absolute score). Returns the scale used, for a legend.
    """
    import matplotlib.pyplot as plt

    values = np.asarray(list(scores), dtype=np.float64)
    top = scale if scale is not None else float(np.abs(values).max(initial=0.0))
    top = top if math.isfinite(top) and top > 0 else 1.0
    cmap = plt.get_cmap("RdBu_r")
    ax.set_axis_off()
    lines: list[list[tuple[str, float]]] = [[]]
    used = 0
    for word, v in zip(words, values):
        if used and used + len(word) + 1 > width:
            lines.append([])
            used = 0
        lines[-1].append((word, float(v)))
        used += len(word) + 1
    n = max(len(lines), 1)
    for row, line in enumerate(lines):
        x = 0.0
        y = 1.0 - (row + 0.5) / n
        for word, v in line:
            colour = cmap(0.5 + 0.5 * max(-1.0, min(1.0, v / top)))
            ax.text(
                x,
                y,
                word,
                fontsize=9,
                family="monospace",
                va="center",
                bbox={"boxstyle": "square,pad=0.15", "facecolor": colour, "edgecolor": "none"},
            )
            x += (len(word) + 1) / width
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    return top


TEXT = TextModality()
