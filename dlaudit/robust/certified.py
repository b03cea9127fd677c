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
  ``smoothing_n`` noise samples each (10,000; 1,000 under ``--fast``), stopped at
  ``smoothing_budget`` seconds (120; 20 under ``--fast``); the section states what ran.
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
    """Randomized smoothing (Cohen et al. 2019, arXiv:1902.02918) on the first inputs, within a time budget."""
    width = bundle.card.value_range[1] - bundle.card.value_range[0]
    sigma = float(cfg["sigma"])
    samples = min(int(cfg["samples"]), len(x))
    budget = float(cfg["budget"])
    radii = [r * width for r in SMOOTHING_RADII]
    start = time.perf_counter()
    done, parts = 0, []
    chunk = max(1, min(10, samples))
    while done < samples and time.perf_counter() - start < budget:
        stop = min(samples, done + chunk)
        parts.append(
            certify_smoothing(
                bundle,
                x[done:stop],
                y[done:stop],
                sigma=sigma,
                n0=int(cfg["n0"]),
                n=int(cfg["n"]),
                alpha=float(cfg["alpha"]),
                seed=seed,
                index_offset=done,
            )  # fmt: skip
        )
        done = stop
        if progress is not None:  # one stage for the whole part, not certify's select/estimate per chunk
            progress("smoothing", done, samples)
    seconds = time.perf_counter() - start
    if not parts:
        return
    correct = torch.cat([p.correct for p in parts])
    radius = torch.cat([p.radius for p in parts])
    abstain = torch.cat([p.prediction for p in parts]) < 0
    stopped = f"; stopped after {seconds:.0f} s (budget {budget:g} s)" if done < samples else ""
    what = f"{done} input(s), sigma {sigma:g}, n0 {int(cfg['n0'])}, n {int(cfg['n']):,}, alpha {float(cfg['alpha']):g}{stopped}"
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
        "n0": int(cfg["n0"]),
        "n": int(cfg["n"]),
        "alpha": float(cfg["alpha"]),
        "inputs": done,
        "budget_s": budget,
        "seconds": round(seconds, 2),
    }
