"""Rough time estimates of the expensive sections, announced before they start.

One measured gradient step on a few of the audited inputs times the number of gradient steps
and forward passes the section's settings imply. For robustness that is an upper bound (a
sample stops being attacked once it is fooled); for explanations a coarse figure. Nothing
here changes what a section computes.
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
    """``(seconds, what it counts)`` for ``robustness`` and ``explain``; None for the cheap sections or bad settings."""
    if name not in ("robustness", "explain") or len(data) == 0:
        return None
    from .errors import DlauditError

    try:
        grad, forward = step_seconds(bundle, data)
        if name == "robustness":
            return _robustness(bundle, data, grad, forward, fast=fast, params=params)
        return _explain(data, grad, forward, fast=fast, params=params)
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


def _explain(data: AuditData, grad: float, forward: float, *, fast: bool, params: dict[str, Any]) -> tuple[float, str]:
    from .explain._common import FAST_SETTINGS, ExplainSettings
    from .explain.methods import parse_methods

    s = params.get("settings") or (FAST_SETTINGS if fast else ExplainSettings())
    n = min(int(params.get("n") or (8 if fast else 16)), len(data))
    methods = parse_methods(params.get("methods"))
    per_sample = {
        "saliency": 1,
        "ig": s.ig_steps,
        "smoothgrad": s.smoothgrad_samples,
        "gradcam": 1,
        "deeplift": 2,
        "shap": s.shap_samples,
    }
    grads = n * sum(per_sample.get(m, 0) for m in methods)
    grads *= 1 + (4 if s.sanity_cascade else 1) + s.sensitivity_perturbations * s.sensitivity_samples / max(n, 1)
    forwards = n * (s.lime_samples if "lime" in methods else 0) + 2 * n * s.curve_steps * (
        len(methods) + s.random_orders
    )
    what = (
        f"about {int(grads):,} gradient steps and {forwards:,} forward passes ({len(methods)} methods on {n} samples)"
    )
    return grads * grad + forwards * forward, what
