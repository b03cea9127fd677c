"""Time estimates of expensive sections, announced before they start.

One measured gradient step on a few of the audited inputs times the number of gradient steps
and forward passes the section's settings imply. For robustness that is an upper bound (a
sample stops being attacked once it is fooled); on the digits CNN it read 6.3 s for a section
that took 5.5 s. Explanations are not estimated: their cost is dominated by per-call overheads
(captum, LIME's segmentation, Kernel SHAP) that one gradient step does not measure; the same
count read 1.1 s for a section that took 11 s, so they report progress per method instead.
Nothing here changes what a section computes.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .bundle import ModelBundle
    from .data import AuditData

__all__ = ["step_seconds", "section_estimate", "EXPENSIVE"]

EXPENSIVE = 20.0
"""Sections estimated to take longer than this (seconds) are announced with their estimate."""
_PROBE = 32


def step_seconds(bundle: ModelBundle, data: AuditData) -> tuple[float, float]:
    """Seconds per sample of one forward-and-backward pass and of one forward pass, measured on a few inputs."""
    import torch

    from .utils import model_state, next_device

    module = bundle.module
    x = data.x[:_PROBE].float().to(next_device(module))
    with model_state(module):
        for _ in range(2):  # the first pass warms caches and allocators up
            start = time.perf_counter()
            xg = x.clone().requires_grad_(True)
            module(xg).sum().backward()
            grad = time.perf_counter() - start
        start = time.perf_counter()
        with torch.no_grad():
            module(x)
        forward = time.perf_counter() - start
        for p in module.parameters():
            p.grad = None
    n = len(x)
    return grad / n, forward / n


def section_estimate(
    name: str, bundle: ModelBundle, data: AuditData, *, fast: bool, params: dict[str, Any]
) -> tuple[float, str] | None:
    """``(seconds, what it counts)`` for ``robustness``; None for the other sections or bad settings."""
    if name != "robustness" or len(data) == 0:
        return None
    from .errors import DlauditError

    try:
        grad, forward = step_seconds(bundle, data)
        return _robustness(bundle, data, grad, forward, fast=fast, params=params)
    except (DlauditError, RuntimeError, ValueError, TypeError):  # the section itself will say what is wrong
        return None


def _robustness(
    bundle: ModelBundle, data: AuditData, grad: float, forward: float, *, fast: bool, params: dict[str, Any]
) -> tuple[float, str]:
    from .robust.analysis import settings

    s = settings(fast, bundle.card.value_range, **params)
    n = min(s.n, len(data))
    steps = 0
    for attack in s.attacks:
        budgets = [e for e in (s.eps if attack.endswith("linf") else s.eps_l2) if e > 0]
        steps += n * len(budgets) * (1 if attack.startswith("fgsm") else s.steps * s.restarts)
    steps += min(s.min_eps_samples, n) * (s.bisection + 2) * s.min_eps_steps
    if s.masking:
        steps += n * s.steps * 4  # the large-budget, more-steps and more-restarts checks
    forwards = 2 * n * len(s.noise)
    what = f"up to {steps:,} gradient steps (PGD-{s.steps} on {n} samples) and {forwards:,} forward passes"
    return steps * grad + forwards * forward, what
