"""Time estimates of expensive sections, announced before they start.

One measured gradient step on a batch of the audited inputs (the engine's default batch size, at
most 256) times the number of gradient steps and forward passes the section's settings imply. PGD's share is an upper bound (a sample stops
being attacked once it is fooled); AutoAttack's assumes half the samples outlast APGD-CE
(:data:`SURVIVING`); randomized smoothing counts its noisy copies as forward passes, on the inputs
its plan allows. On the digits CNN the full section read 29.7 s and took 33 s (AutoAttack 32 s of it). Explanations are not estimated: their cost is dominated by per-call overheads
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
_PROBE_MAX = 256
"""Inputs of the timed passes at most: the engine's default batch (per-input cost falls with the batch)."""


def step_seconds(bundle: ModelBundle, data: AuditData) -> tuple[float, float]:
    """Seconds per sample of one forward-and-backward pass and of one forward pass, measured on a few inputs."""
    import torch

    from .robust.attacks import speed
    from .robust.batching import choose_batch_size
    from .utils import model_state, next_device

    module = bundle.module
    dev = next_device(module)
    with model_state(module):
        size = choose_batch_size(module, data.x[: 2 * _PROBE_MAX].float(), dev)  # the engine's batch
    x = data.x[: min(size, _PROBE_MAX)].float().to(dev)
    with model_state(module), speed.layout(module, x):
        for _ in range(2):  # the first pass warms caches and allocators up
            start = time.perf_counter()
            xg = x.clone().requires_grad_(True)
            module(xg).sum().backward()
            grad = time.perf_counter() - start
        forward = float("inf")
        for _ in range(2):  # the faster of two (other work only ever slows a pass down)
            start = time.perf_counter()
            with torch.no_grad():
                module(x)
            forward = min(forward, time.perf_counter() - start)
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
    what = f"up to {steps:,} gradient steps (PGD-{s.steps} on {n} samples)"
    if s.autoattack:
        aa_steps, aa_forwards = _autoattack(s, n, bundle.card.num_classes or 10)
        steps += aa_steps
        forwards += aa_forwards
        what += f", about {aa_steps:,} for AutoAttack ({s.autoattack}, if half the samples outlast APGD-CE)"
    if s.certify:
        forwards += n * len([e for e in s.eps if e > 0]) * CERTIFY_FORWARDS.get(s.certify, 1)
    smoothing = 0.0
    if s.smoothing:
        from .robust.certified import forward_flops, planned_inputs

        flops = forward_flops(bundle.module, data.x[:1])
        wanted = min(s.smoothing_samples, n)
        samples, _ = planned_inputs(wanted, flops, s.smoothing_n0 + s.smoothing_n, s.smoothing_max_flops)
        smoothing = samples * (s.smoothing_n0 + s.smoothing_n) * forward
        if samples:
            what += f", randomized smoothing on {samples} inputs"
    what += f" and {forwards:,} forward passes"
    return steps * grad + forwards * forward + smoothing, what


SURVIVING = 0.5
"""Share of samples assumed to outlast APGD-CE: AutoAttack's later attacks run only on those, which
cannot be known before the section runs. On the digits CNN (budgets 0.05-0.3) the measured share
averaged about 0.4."""


def _autoattack(s: Any, n: int, num_classes: int) -> tuple[int, int]:
    """(gradient steps, forward passes) of AutoAttack at every budget, with :data:`SURVIVING` of the samples
    reaching the attacks after APGD-CE."""
    from .robust.attacks.autoattack import (
        FAST_STEPS,
        FAST_TARGETS,
        SQUARE_QUERIES,
        STANDARD_STEPS,
        STANDARD_TARGETS,
    )

    standard = s.autoattack == "standard"
    iters, targets = (STANDARD_STEPS, STANDARD_TARGETS) if standard else (FAST_STEPS, FAST_TARGETS)
    targets = min(targets, num_classes - 1)
    budgets = sum(len([e for e in (s.eps if v == "linf" else s.eps_l2) if e > 0]) for v in s.autoattack_norms)
    later = int(n * SURVIVING)
    steps = n * iters + later * targets * iters  # APGD-CE on all, APGD-T on the survivors
    forwards = 0
    if standard:
        steps += later * targets * iters * 2  # FAB-T: a forward-backward pass for each of two logits a step
        forwards += later * SQUARE_QUERIES  # Square: one forward pass a query
    return budgets * steps, budgets * forwards


CERTIFY_FORWARDS = {"ibp": 5, "crown-ibp": 72, "crown": 1600}
"""One input's bound in forward passes of it, end to end (``bench/certify.py`` on the digits CNN: IBP 2.7-5.3x,
CROWN-IBP 65-74x, CROWN 1,590-1,670x; CROWN grows with the square of the layers' widths, so more on wider models)."""
