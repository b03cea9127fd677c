"""What every text section asks of a text model first: its tokenizer, and class probabilities of raw texts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..errors import AnalysisError

if TYPE_CHECKING:
    from ..bundle import ModelBundle
    from ..data import AuditData

__all__ = ["require_text", "text_proba"]


def require_text(bundle: ModelBundle, data: AuditData, what: str) -> Any:
    """``bundle``'s tokenizer; an :class:`~dlaudit.errors.AnalysisError` naming ``what`` when it or the raw texts are missing."""
    if bundle.tokenizer is None or data.texts is None:
        raise AnalysisError(f"{what} need the model's tokenizer and the raw texts")
    return bundle.tokenizer


def text_proba(
    module: torch.nn.Module, tokenizer: Any, device: Any, length: int
) -> Callable[[Sequence[str]], np.ndarray]:
    """``texts -> (N, C)`` probabilities: encoded by ``tokenizer`` and padded (truncated) to ``length`` tokens, so
    every batch has the model's input shape and a text's probabilities do not depend on its batch."""

    def predict_proba(texts: Sequence[str]) -> np.ndarray:
        x = tokenizer.encode(list(texts), max_len=length, min_len=length).ids.to(device)
        with torch.no_grad():
            return torch.softmax(module(x).float(), dim=1).cpu().numpy()

    return predict_proba
