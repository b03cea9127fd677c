"""The certified half of the robustness section: proven lower bounds next to the attacks' upper bounds.

For each L-inf budget the section reports three numbers about the same samples:
``certified (proven, IBP or CROWN-IBP) <= true robust accuracy <= worst case of the attacks``;
the gap between them is what neither proof nor attack resolved. Randomized smoothing
certifies a *different* classifier (the smoothed one) at L2 radii, and is reported beside.

When certification runs in the default report (the rule):

- interval bounds always (IBP under ``--fast``; CROWN-IBP, tighter and still cheap, otherwise),
  on every sample the attacks saw; a model with a layer the bounds cannot handle gets the
  part skipped with that layer's name, never a wrong bound;
- randomized smoothing on up to ``smoothing_samples`` inputs (100; 20 under ``--fast``) with
  ``smoothing_n`` noise samples each (10,000; 1,000 under ``--fast``), as many inputs as fit
  ``smoothing_max_flops`` (1e13; 1e12 under ``--fast``) of counted forward-pass work, never
  stopped by the clock (a number must not depend on how busy the machine is); fewer than
  five inputs and it is not run, with the reason; the section states what ran.
  ``dlaudit certify`` runs the paper's n = 100,000 on the inputs you choose.

Soundness is checked, not assumed: a sample both verified and fooled by an attack at the
same budget is a bug, reported as a failing finding.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..bundle import ModelBundle
from ..errors import AnalysisError
from ..report.model import Section, Table
from ..stats import wilson_interval
from ..utils import ProgressFn
from .certify import VerifiedResult, certify_smoothing, verified_accuracy
from .curves import Curve

__all__ = ["Bounds", "certified_part", "SMOOTHING_RADII"]

log = logging.getLogger(__name__)

SMOOTHING_RADII = (0.0, 0.25, 0.5, 1.0)
"""L2 radii of the smoothing curve, as fractions of the value range's width."""


@dataclass(frozen=True)
class Bounds:
    """Per L-inf budget: the certified (lower) and attacked (upper) accuracy; ``reason`` when not certified."""

    eps: tuple[float, ...]
    lower: tuple[float | None, ...]
    upper: tuple[float, ...]
    method: str
    reason: str = ""


def certified_part(
    sec: Section,
    bundle: ModelBundle,
    x: torch.Tensor,
    y: torch.Tensor,
    worst: Curve | None,
    *,
    eps: Sequence[float],
    method: str,
    smoothing: dict[str, float | int] | None,
    seed: int,
    progress: ProgressFn | None = None,
) -> Bounds:
    """Add the certified metrics, findings and tables to ``sec``; return the bounds for the figure."""
    n = len(y)
    budgets = [float(e) for e in eps if e > 0]
    results: dict[float, VerifiedResult] = {}
    reason = ""
    try:
        for e in budgets:
            results[e] = verified_accuracy(bundle, x, y, eps=e, method=method, progress=progress)
    except AnalysisError as err:
        reason = str(err)
        sec.add_finding("info", f"certified bounds skipped: {reason}", check="certified")
    lower: list[float | None] = []
    upper: list[float] = []
    for e in budgets:
        res = results.get(e)
        up = worst.at(e) if worst is not None and any(math.isclose(e, f) for f in worst.eps) else math.nan
        lower.append(res.accuracy if res is not None else None)
        upper.append(up)
        k = int(res.verified.sum()) if res is not None else 0
        sec.add_metric(
            f"robustness.certified_linf.acc@{e:g}",
            res.accuracy if res is not None else None,
            ci=wilson_interval(k, n) if res is not None else None,
            description=f"verified accuracy at L-inf eps {e:g} ({method}): a proven lower bound of robust accuracy",
            higher_is_better=True,
            note="" if res is not None else f"not computed: {reason}",
            headline=True,
        )
        sec.add_metric(
            f"robustness.gap_linf@{e:g}",
            (up - res.accuracy) if res is not None and math.isfinite(up) else None,
            description=f"worst-case attacked accuracy minus verified accuracy at eps {e:g}: what neither attack nor proof resolved",
            higher_is_better=False,
            note="" if res is not None else "no certified bound",
        )
        if res is not None and worst is not None and any(math.isclose(e, f) for f in worst.eps):
            i = next(i for i, f in enumerate(worst.eps) if math.isclose(e, f))
            broken = res.verified & ~worst.correct[i]
            if bool(broken.any()):
                sec.add_finding(
                    "fail",
                    f"unsound result at eps {e:g}: {int(broken.sum())} sample(s) were verified robust by {method} and yet an "
                    "attack fooled them; this is a bug in dlaudit's bounds or attacks, so neither number can be trusted here",
                    evidence=f"sample positions {broken.nonzero().flatten()[:10].tolist()}",
                    check="certified-soundness",
                )
    rows = [
        [
            e,
            None if lo is None else round(lo, 4),
            None if not math.isfinite(up) else round(up, 4),
            None if lo is None or not math.isfinite(up) else round(up - lo, 4),
        ]
        for e, lo, up in zip(budgets, lower, upper)
    ]
    if rows:
        sec.tables.append(
            Table(
                "Certified and attacked accuracy (L-inf)",
                ["eps", f"certified ({method}, lower bound)", "worst-case attacked (upper bound)", "unresolved gap"],
                rows,
                caption="The true robust accuracy lies between the two: no attack can go below the certified share, and "
                "the attacks already reached the upper one. Certified: Gowal et al. 2018 (arXiv:1810.12715), CROWN-IBP: "
                "Zhang et al. 2020 (arXiv:1906.06316)." + (f" Not certified: {reason}" if reason else ""),
            )
        )
    if smoothing:
        _smoothing(sec, bundle, x, y, smoothing, seed, progress)
    return Bounds(tuple(budgets), tuple(lower), tuple(upper), method, reason)


def _smoothing(
    sec: Section,
    bundle: ModelBundle,
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: dict[str, float | int],
    seed: int,
    progress: ProgressFn | None,
) -> None:
    """Randomized smoothing (Cohen et al. 2019, arXiv:1902.02918) on the first inputs, as many as the plan allows.

    How many inputs are certified is planned from the model's counted forward cost
    (:func:`planned_inputs`), never from elapsed time: the same model, settings and seed
    certify the same inputs on a quiet machine and a busy one.
    """
    width = bundle.card.value_range[1] - bundle.card.value_range[0]
    sigma = float(cfg["sigma"])
    n0, n = int(cfg["n0"]), int(cfg["n"])
    flops = forward_flops(bundle.module, x[:1])
    samples, why = planned_inputs(min(int(cfg["samples"]), len(x)), flops, n0 + n, float(cfg["max_flops"]))
    if samples == 0:
        sec.add_finding("info", f"randomized smoothing was not run: {why}", check="smoothing-plan")
        sec.params["smoothing"] = {"inputs": 0, "flops_per_forward": flops, "max_flops": float(cfg["max_flops"])}
        return
    radii = [r * width for r in SMOOTHING_RADII]
    start = time.perf_counter()  # reported only (seconds per input), never a reason to stop
    done, parts = 0, []
    chunk = max(1, min(10, samples))
    while done < samples:
        stop = min(samples, done + chunk)
        parts.append(
            certify_smoothing(
                bundle,
                x[done:stop],
                y[done:stop],
                sigma=sigma,
                n0=n0,
                n=n,
                alpha=float(cfg["alpha"]),
                seed=seed,
                index_offset=done,
            )  # fmt: skip
        )
        done = stop
        if progress is not None:  # one stage for the whole part, not certify's select/estimate per chunk
            progress("smoothing", done, samples)
    seconds = time.perf_counter() - start
    correct = torch.cat([p.correct for p in parts])
    radius = torch.cat([p.radius for p in parts])
    abstain = torch.cat([p.prediction for p in parts]) < 0
    planned = f"; {why}" if why else ""
    what = f"{done} input(s), sigma {sigma:g}, n0 {n0}, n {n:,}, alpha {float(cfg['alpha']):g}{planned}"
    for r in radii:
        acc = float((correct & (radius >= r)).double().mean())
        sec.add_metric(
            f"robustness.smoothing_l2.acc@{r:g}",
            acc,
            ci=wilson_interval(int((correct & (radius >= r)).sum()), done),
            description=f"randomized-smoothing certified accuracy at L2 radius {r:g} (the smoothed classifier; {what})",
            higher_is_better=True,
            headline=r > 0,
        )
    sec.add_metric(
        "robustness.smoothing_l2.abstain_rate",
        float(abstain.double().mean()),
        description=f"share of inputs the smoothed classifier abstains on ({what})",
        higher_is_better=False,
    )
    sec.tables.append(
        Table(
            "Randomized smoothing (L2, the smoothed classifier)",
            ["radius", "certified accuracy"],
            [[r, round(float((correct & (radius >= r)).double().mean()), 4)] for r in radii],
            caption=f"Cohen et al. 2019 (arXiv:1902.02918): each certificate holds with probability 1 - alpha. {what}; "
            f"{seconds / max(done, 1):.2f} s per input. It certifies the smoothed classifier, not the model itself.",
        )
    )
    sec.params["smoothing"] = {
        "sigma": sigma,
        "n0": n0,
        "n": n,
        "alpha": float(cfg["alpha"]),
        "inputs": done,
        "flops_per_forward": flops,
        "max_flops": float(cfg["max_flops"]),
        "seconds": round(seconds, 2),
    }


MIN_SMOOTHING_INPUTS = 5
"""Fewer planned inputs than this and smoothing is not run in a report: its interval would say nothing."""


def forward_flops(module: torch.nn.Module, example: torch.Tensor) -> int:
    """Floating-point operations of one forward pass on ``example`` (one input), counted, not timed.

    torch's :class:`~torch.utils.flop_counter.FlopCounterMode` counts matrix products and
    convolutions; elementwise work is floored at the input's size, so a model without either
    still costs something. The count depends on the model and the input shape only.
    """
    from torch.utils.flop_counter import FlopCounterMode

    from ..utils import next_device

    example = example.float().to(next_device(module))
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            module(example)
        counted = int(counter.get_total_flops())
    except (
        RuntimeError,
        TypeError,
        NotImplementedError,
    ) as err:  # a graph the counter cannot trace: parameters instead
        log.debug("flop counter failed (%s); counting parameters", err)
        counted = 2 * sum(p.numel() for p in module.parameters())
    return max(counted, example.numel())


def planned_inputs(wanted: int, flops: int, forwards: int, max_flops: float) -> tuple[int, str]:
    """How many of ``wanted`` inputs smoothing certifies within ``max_flops``, and why fewer (else "")."""
    cost = flops * forwards
    fits = int(max_flops // cost) if cost > 0 else wanted
    if fits >= wanted:
        return wanted, ""
    plan = (
        f"{wanted} inputs x {forwards:,} noisy forward passes of {flops / 1e9:.3g} GFLOP each exceed the report's "
        f"plan of {max_flops / 1e12:g} TFLOP for smoothing"
    )
    if fits < MIN_SMOOTHING_INPUTS:
        return 0, f"{plan}; run `dlaudit certify MODEL --method smoothing` on the inputs you choose"
    return fits, f"planned {fits} of {wanted} inputs ({plan})"
