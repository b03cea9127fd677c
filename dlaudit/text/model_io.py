"""What every text section asks of a text model first: its tokenizer, and class probabilities of raw texts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..errors import SHORT_WIDTH_ERRORS, AnalysisError

if TYPE_CHECKING:
    from ..bundle import ModelBundle
    from ..data import AuditData

__all__ = ["MIN_WIDTH", "PAD_ATOL", "PAD_RTOL", "padding_invariant", "require_text", "text_proba"]

MIN_WIDTH = 8
"""A text is padded to its own token count, and to at least this many tokens (a convolution's widest kernel
fits), where the model allows it. Exact widths: on the 4-layer BERT of ``bench/text_textattack.py``, rounding
widths up to a multiple of 8 padded its attack queries by a quarter (14.2 tokens to 17.9 on average) and
took 13-19% more CPU time in its model calls than exact widths in width-sorted calls (median and best of 4)."""
PAD_RTOL, PAD_ATOL = 1e-5, 1e-5
"""How close the logits at a text's own width must be to those at the full width for :func:`text_proba` to trim."""
PROBES = 8
"""Random texts (token ids) that :func:`padding_invariant` checks."""


def require_text(bundle: ModelBundle, data: AuditData, what: str) -> Any:
    """``bundle``'s tokenizer; an :class:`~dlaudit.errors.AnalysisError` naming ``what`` when it or the raw texts are missing."""
    if bundle.tokenizer is None or data.texts is None:
        raise AnalysisError(f"{what} need the model's tokenizer and the raw texts")
    return bundle.tokenizer


def _own_widths(ids: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Each row's width without its trailing padding, at least :data:`MIN_WIDTH`, at most the full width."""
    real = ids != pad_id
    last = torch.where(
        real.any(dim=1),
        real.shape[1] - real.flip(1).int().argmax(dim=1),
        torch.zeros_like(real[:, 0], dtype=torch.long),
    )
    return torch.clamp(last, min=MIN_WIDTH, max=ids.shape[1])


def padding_invariant(module: torch.nn.Module, tokenizer: Any, device: Any, length: int) -> bool:
    """Whether ``module``'s logits do not change when trailing all-padding columns are left out.

    Checked once per model on :data:`PROBES` random rows of non-special token ids (seeded, so the
    answer depends on the model alone, not on the texts or how they are batched or sharded), of
    widths spread over ``1 .. length - 1``: the logits of each row at its :func:`_own_widths`
    width and at ``length`` must agree to :data:`PAD_RTOL` / :data:`PAD_ATOL`. A model that
    needs its full width (one that fails on a shorter input) is not invariant.
    """
    if length <= MIN_WIDTH:
        return False
    pad = int(tokenizer.pad_id)
    specials = {int(i) for i in getattr(tokenizer, "special_ids", ())} | {pad}
    pool = np.array([i for i in range(len(tokenizer)) if i not in specials])
    if not len(pool):
        return False
    rng = np.random.default_rng(0)
    ids = torch.full((PROBES, length), pad, dtype=torch.long)
    for row, n in enumerate(np.linspace(1, length - 1, PROBES).astype(int)):
        ids[row, :n] = torch.as_tensor(rng.choice(pool, size=n))
    widths = _own_widths(ids, pad)
    try:
        with torch.no_grad():
            full = module(ids.to(device)).float()
            for row, w in enumerate(widths.tolist()):
                short = module(ids[row : row + 1, :w].to(device)).float()
                if short.shape != full[row : row + 1].shape or not torch.allclose(
                    short, full[row : row + 1], rtol=PAD_RTOL, atol=PAD_ATOL
                ):
                    return False
    except SHORT_WIDTH_ERRORS:  # a model that fails at a shorter width needs its full width
        return False
    return True


def text_proba(
    module: torch.nn.Module, tokenizer: Any, device: Any, length: int, *, trim: bool = True
) -> Callable[[Sequence[str]], np.ndarray]:
    """``texts -> (N, C)`` probabilities of texts encoded by ``tokenizer`` and truncated to ``length`` tokens.

    Each text is padded to its own token count, at least :data:`MIN_WIDTH` (texts of one width
    share a model call: give it texts of similar lengths together) where ``trim`` is on and the model's logits do not depend on trailing
    padding (:func:`padding_invariant`, checked on the first call); otherwise to ``length``, the
    model's input shape. Either way a text's padding depends on that text alone, so its
    probabilities do not depend on the batch it comes in.
    """
    pad = int(tokenizer.pad_id)
    state: dict[str, bool] = {}

    def predict_proba(texts: Sequence[str]) -> np.ndarray:
        ids = tokenizer.encode_ids(list(texts), max_len=length, min_len=length)
        if "trim" not in state:
            state["trim"] = trim and padding_invariant(module, tokenizer, device, length)
        with torch.no_grad():
            if not state["trim"] or not len(ids):
                logits = module(ids.to(device)).float()
            else:
                widths = _own_widths(ids, pad)
                parts, order = [], []
                for w in sorted(set(widths.tolist())):
                    rows = (widths == w).nonzero().flatten()
                    parts.append(module(ids[rows, :w].to(device)).float())
                    order.append(rows)
                logits = torch.empty((len(ids), parts[0].shape[1]), dtype=parts[0].dtype, device=parts[0].device)
                for rows, out in zip(order, parts):
                    logits[rows.to(logits.device)] = out
            return torch.softmax(logits, dim=1).cpu().numpy()

    return predict_proba
