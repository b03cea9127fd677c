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

__all__ = ["MIN_WIDTH", "PAD_ATOL", "PAD_RTOL", "padding_invariant", "require_text", "scorer", "text_proba"]

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


def _probes(tokenizer: Any, length: int) -> torch.Tensor | None:
    """:data:`PROBES` rows of ``length`` token ids, seeded: random non-special ids over widths spread across
    ``1 .. length - 1``, then padding (None where the vocabulary is all special tokens)."""
    pad = int(tokenizer.pad_id)
    specials = {int(i) for i in getattr(tokenizer, "special_ids", ())} | {pad}
    pool = np.array([i for i in range(len(tokenizer)) if i not in specials])
    if not len(pool) or length < 2:
        return None
    rng = np.random.default_rng(0)
    ids = torch.full((PROBES, length), pad, dtype=torch.long)
    for row, n in enumerate(np.linspace(1, length - 1, PROBES).astype(int)):
        ids[row, :n] = torch.as_tensor(rng.choice(pool, size=n))
    return ids


def _agree(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.allclose(a, b, rtol=PAD_RTOL, atol=PAD_ATOL)


def padding_invariant(module: torch.nn.Module, tokenizer: Any, device: Any, length: int) -> bool:
    """Whether ``module``'s logits do not change when trailing all-padding columns are left out.

    Checked once per model on :data:`PROBES` random rows of non-special token ids (seeded, so the
    answer depends on the model alone, not on the texts or how they are batched or sharded), of
    widths spread over ``1 .. length - 1``: the logits of each row at its :func:`_own_widths`
    width and at ``length`` must agree to :data:`PAD_RTOL` / :data:`PAD_ATOL`. A model that
    needs its full width (one that fails on a shorter input) is not invariant.
    """
    ids = _probes(tokenizer, length) if length > MIN_WIDTH else None
    if ids is None:
        return False
    widths = _own_widths(ids, int(tokenizer.pad_id))
    try:
        with torch.no_grad():
            full = module(ids.to(device)).float()
            for row, w in enumerate(widths.tolist()):
                if not _agree(module(ids[row : row + 1, :w].to(device)).float(), full[row : row + 1]):
                    return False
    except SHORT_WIDTH_ERRORS:  # a model that fails at a shorter width needs its full width
        return False
    return True


def scorer(module: torch.nn.Module, tokenizer: Any, device: Any, length: int, trim: bool) -> torch.nn.Module:
    """What scores texts for ``module`` without gradients: its ``first_token_only()`` copy
    (:meth:`dlaudit.formats.huggingface.HFTextClassifier.first_token_only`, a BERT-style encoder whose last layer
    computes the ``[CLS]`` position alone) where it has one and its logits equal ``module``'s on the
    :func:`_probes` to :data:`PAD_RTOL` / :data:`PAD_ATOL`, at full width and, with ``trim``, at each probe's own
    width; otherwise ``module`` itself. On the 4-layer, 256-wide BERT of ``bench/text_textattack.py`` the copy
    scored 64 texts of 15 tokens in 47 ms against the full model's 56 ms (one thread), to 3.6e-07."""
    make = getattr(module, "first_token_only", None)
    fast = make() if callable(make) else None
    ids = _probes(tokenizer, length)
    if fast is None or ids is None:
        return module
    widths = _own_widths(ids, int(tokenizer.pad_id)).tolist() if trim else []
    try:
        with torch.no_grad():
            if not _agree(fast(ids.to(device)).float(), module(ids.to(device)).float()):
                return module
            for row, w in enumerate(widths):
                part = ids[row : row + 1, :w].to(device)
                if not _agree(fast(part).float(), module(part).float()):
                    return module
    except (RuntimeError, ValueError, TypeError, IndexError):  # a layout the copy does not compute: the full model
        return module
    return fast


def text_proba(
    module: torch.nn.Module, tokenizer: Any, device: Any, length: int, *, trim: bool = True
) -> Callable[[Sequence[str]], np.ndarray]:
    """``texts -> (N, C)`` probabilities of texts encoded by ``tokenizer`` and truncated to ``length`` tokens.

    Each text is padded to its own token count, at least :data:`MIN_WIDTH` (texts of one width
    share a model call: give it texts of similar lengths together) where ``trim`` is on and the model's logits do not depend on trailing
    padding (:func:`padding_invariant`, checked on the first call); otherwise to ``length``, the
    model's input shape. Either way a text's padding depends on that text alone, so its
    probabilities do not depend on the batch it comes in. The texts are scored by :func:`scorer`'s choice (a
    BERT-style model's last layer at ``[CLS]`` alone, where its logits are checked equal), chosen on the first call.
    """
    pad = int(tokenizer.pad_id)
    state: dict[str, Any] = {}

    def predict_proba(texts: Sequence[str]) -> np.ndarray:
        ids = tokenizer.encode_ids(list(texts), max_len=length, min_len=length)
        if "trim" not in state:
            state["trim"] = trim and padding_invariant(module, tokenizer, device, length)
            state["model"] = scorer(module, tokenizer, device, length, state["trim"])
        model = state["model"]
        with torch.no_grad():
            if not state["trim"] or not len(ids):
                logits = model(ids.to(device)).float()
            else:
                widths = _own_widths(ids, pad)
                parts, order = [], []
                for w in sorted(set(widths.tolist())):
                    rows = (widths == w).nonzero().flatten()
                    parts.append(model(ids[rows, :w].to(device)).float())
                    order.append(rows)
                logits = torch.empty((len(ids), parts[0].shape[1]), dtype=parts[0].dtype, device=parts[0].device)
                for rows, out in zip(order, parts):
                    logits[rows.to(logits.device)] = out
            return torch.softmax(logits, dim=1).cpu().numpy()

    return predict_proba
