"""What a text model's passes cost, measured on a few texts: the unit prices of the text sections' time estimates.

The estimates only tell the person waiting how long a section may take (announced before it runs,
like the image sections'); no number of a report depends on them.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import torch

if TYPE_CHECKING:
    from ..bundle import ModelBundle
    from ..data import AuditData

__all__ = ["PROBE", "QUERY_PROBE", "priced", "text_costs"]

S = TypeVar("S")

PROBE = 16
"""Texts per timed pass."""
QUERY_PROBE = 64
"""Texts of the timed ``query`` call: the attacks score each round's candidates of every text in shared calls, so
a query is priced at a batch nearer theirs (on a 4-layer, 256-wide BERT, quiet 2-core machine: 1.1 ms a text on 16
texts, 0.6 ms on 64; charswap on 200 texts was priced 5.1 s, then 2.7 s, for 1.8-2.0 s taken, an upper bound since
an attack stops at a text's first success)."""


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


_LAST: list[tuple[tuple[Any, ...], dict[str, float]]] = []
"""The last model and data :func:`text_costs` timed, and what it measured."""


def text_costs(bundle: ModelBundle, data: AuditData) -> dict[str, float]:
    """Seconds per text of a forward pass at the model's full width (``forward``, tokenising included), of a text
    scored as the attacks, natural noise and counterfactual fairness score theirs (``query``:
    :func:`dlaudit.text.model_io.text_proba`, each text at its own width where the model allows it, a BERT's last
    layer at ``[CLS]`` alone) and of a gradient pass through the embedding (``grad``), the faster of two timed runs
    each (the first warms caches up). On a 4-layer, 256-wide BERT a query cost a fifth of a full-width forward pass
    (texts of about 14 tokens of 64), and pricing the attacks' queries as full-width passes put the robustness
    estimate at 25 s for 6.6 s taken.

    Measured once for a model and its data (the last pair is kept): a plan's explanation and robustness probes
    and the estimates announced before their sections then share one measurement (on a 4-layer BERT, each took
    seconds)."""
    if _LAST:
        (module, texts, shape), costs = _LAST[0]
        if module() is bundle.module and texts() is data and shape == tuple(data.x.shape):
            return dict(costs)
    costs = _measure(bundle, data)
    try:  # weak references: a model no longer used is freed, and a new one at its address is not taken for it
        _LAST[:] = [((weakref.ref(bundle.module), weakref.ref(data), tuple(data.x.shape)), costs)]
    except TypeError:
        _LAST.clear()
    return dict(costs)


def _measure(bundle: ModelBundle, data: AuditData) -> dict[str, float]:
    from ..explain.tokens import find_embedding
    from ..utils import model_state, next_device
    from .model_io import text_proba

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
        score = text_proba(module, tok, dev, length)
        score(texts[:1])  # its first call checks the model (padding, the first-token copy): not priced
        queried = list((data.texts or [])[:QUERY_PROBE])
        query = float("inf")
        for _ in range(2):
            start = time.perf_counter()
            score(queried)
            query = min(query, time.perf_counter() - start)
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
    return {"forward": forward / n, "grad": grad / n, "query": query / max(len(queried), 1)}
