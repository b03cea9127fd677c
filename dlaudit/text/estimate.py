"""What a text model's passes cost, measured on a few texts: the unit prices of the text sections' time estimates.

The estimates only tell the person waiting how long a section may take (announced before it runs,
like the image sections'); no number of a report depends on them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import torch

if TYPE_CHECKING:
    from ..bundle import ModelBundle
    from ..data import AuditData

__all__ = ["PROBE", "priced", "text_costs"]

S = TypeVar("S")

PROBE = 16
"""Texts per timed pass."""


def priced(
    bundle: ModelBundle, data: AuditData, build: Callable[..., S], fast: bool, params: dict[str, Any] | None
) -> tuple[S, dict[str, float], int] | None:
    """A text section's settings (``build(fast=fast, **params)``), its unit :func:`text_costs` and the number of texts
    it reads, or None where there is nothing to estimate: no tokenizer or texts, or settings or a model the section
    itself refuses (it says what is wrong when it runs)."""
    from ..errors import ConfigError

    if bundle.tokenizer is None or not data.texts or not len(data):
        return None
    try:
        settings = build(fast=fast, **(params or {}))
        costs = text_costs(bundle, data)
    except (ConfigError, RuntimeError, ValueError, TypeError):
        return None
    return settings, costs, min(int(settings.n), len(data))


def text_costs(bundle: ModelBundle, data: AuditData) -> dict[str, float]:
    """Seconds per text of a forward pass (``forward``, tokenising included) and of a gradient pass through the
    embedding (``grad``), the faster of two timed runs each (the first warms caches up)."""
    from ..explain.tokens import find_embedding
    from ..utils import model_state, next_device

    module, tok = bundle.module, bundle.tokenizer
    texts = list((data.texts or [])[:PROBE])
    length = int(data.x.shape[1])
    dev = next_device(module)
    embedding = find_embedding(module)
    forward = grad = float("inf")
    captured: list[torch.Tensor] = []

    def hook(_: object, __: object, out: torch.Tensor) -> torch.Tensor:
        captured.append(out.detach().requires_grad_(True))
        return captured[-1]

    with model_state(module):
        for _ in range(2):
            start = time.perf_counter()
            with torch.no_grad():
                module(tok.encode(texts, max_len=length, min_len=length).ids.to(dev))
            forward = min(forward, time.perf_counter() - start)
        ids = data.x[:PROBE].to(dev)
        handle = embedding.register_forward_hook(hook)
        try:
            for _ in range(2):
                start = time.perf_counter()
                with torch.enable_grad():
                    out = module(ids).sum()
                    torch.autograd.grad(out, captured[-1])
                grad = min(grad, time.perf_counter() - start)
                captured.clear()
        finally:
            handle.remove()
    n = max(len(texts), 1)
    return {"forward": forward / n, "grad": grad / n}
