"""Whether a robustness number can be trusted: AutoAttack next to PGD, the worst case per sample,
degenerate models, and the strong signs of gradient masking.

- AutoAttack (Croce and Hein 2020, https://arxiv.org/abs/2003.01690) lowered the reported
  robust accuracy of nearly every defended model; dlaudit runs it at every L-inf budget of
  the section and reports, per sample, the worst case over all attacks that ran.
- A collapsed model (one class for every input, or chance accuracy) is never robust: its
  "robust accuracy" is how often that class is right. It gets a failing finding and its
  attack accuracies are undefined, so no gate passes on them.
- Gradient masking (Athalye et al. 2018, https://arxiv.org/abs/1802.00420): a black-box
  attack that fools what every gradient attack missed, robust accuracy far above chance at a
  budget that destroys the input, or zero / non-finite input gradients on a share of the
  inputs are failing findings, and the attack accuracies become undefined too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from ..bundle import ModelBundle
from ..report.model import Finding, Section
from ..utils import ProgressFn, model_state
from .attacks import autoattack
from .attacks.autoattack import AutoAttackResult
from .curves import Curve

__all__ = [
    "AutoAttackCurve",
    "autoattack_curve",
    "degenerate_reason",
    "gradient_problems",
    "black_box_evidence",
    "undefine_attack_metrics",
    "DEGENERATE_SHARE",
    "ZERO_GRADIENT_SHARE",
]

DEGENERATE_SHARE = 0.95
"""A model predicting one class for at least this share of inputs is degenerate."""
CHANCE_SLACK = 0.02
"""Clean accuracy within this of the majority-class rate is chance accuracy."""
NOTHING_CHANGES = 0.01
"""Robust accuracy within this of clean accuracy at every budget, large ones included: attacks change nothing."""
LARGE_FRACTION = 0.25
"""A budget of at least this share of the value range is large (for the check above)."""
ZERO_GRADIENT_SHARE = 0.05
"""Input gradients zero or non-finite on more than this share of inputs: masked gradients."""
BLACK_BOX_SHARE = 0.01
"""Square fooling more than this share of the samples (and at least 2) that every gradient attack missed."""


@dataclass(frozen=True)
class AutoAttackCurve:
    """AutoAttack at each budget (ascending), with the per-attack breakdown of every run."""

    curve: Curve
    results: dict[float, AutoAttackResult]
    positions: dict[float, torch.Tensor]
    """Per budget, the positions (in the section's samples) of the samples that run attacked."""


def autoattack_curve(
    bundle: ModelBundle,
    x: torch.Tensor,
    y: torch.Tensor,
    clean_ok: torch.Tensor,
    eps: Sequence[float],
    *,
    norm: str,
    version: str,
    seed: int,
    batch_size: int | None,
    progress: ProgressFn | None = None,
    features: tuple[int, ...] | None = None,
) -> AutoAttackCurve:
    """AutoAttack at every budget; a larger budget attacks only the samples that resisted the smaller one.

    An input fooled within a smaller ball is fooled within a larger one, so this gives
    the accuracies of running AutoAttack at each budget from scratch or lower, for a
    fraction of the work. Random draws are keyed by the sample's position in ``x``.
    """
    survivors = clean_ok.clone()
    by_eps: dict[float, torch.Tensor] = {}
    results: dict[float, AutoAttackResult] = {}
    positions: dict[float, torch.Tensor] = {}
    bs = 0
    for e in sorted({float(v) for v in eps}):
        todo = survivors.nonzero().flatten()
        correct = survivors.clone()
        if e > 0 and len(todo):
            res = autoattack(
                bundle, x[todo], y[todo], eps=e, norm=norm, version=version, seed=seed, batch_size=batch_size,
                progress=progress, index=todo, features=features,
            )  # fmt: skip
            correct[todo] = res.robust
            results[e] = res
            positions[e] = todo
            bs = res.batch_size or bs
        survivors = correct
        by_eps[e] = correct
    order = [float(e) for e in eps]
    n = len(y)
    accs = tuple(int(by_eps[e].sum()) / n for e in order)
    what = "standard: APGD-CE, APGD-T, FAB-T, Square" if version == "standard" else "fast: APGD-CE and APGD-T"
    curve = Curve(
        f"autoattack_{norm}", tuple(order), accs, tuple(by_eps[e] for e in order), f"AutoAttack {norm} ({what})", bs
    )
    return AutoAttackCurve(curve, results, positions)


def degenerate_reason(
    clean_pred: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    names: Sequence[str],
    curves: Sequence[Curve],
    value_range: tuple[float, float],
    *,
    unchanged: bool = True,
) -> str:
    """Why the model is degenerate (its robustness numbers mean nothing), or ''.

    One class for (nearly) every input, chance accuracy, or (with ``unchanged``) no
    attack moving its accuracy at any budget, large ones included.
    """
    n = len(y)
    if n == 0:
        return ""
    counts = torch.bincount(clean_pred.cpu(), minlength=num_classes)
    top = int(counts.argmax())
    share = int(counts[top]) / n
    label_share = int(torch.bincount(y.cpu(), minlength=num_classes).max()) / n
    if share >= DEGENERATE_SHARE and label_share < DEGENERATE_SHARE:
        return f"predicts class {names[top]!r} for {share:.0%} of inputs"
    clean = float((clean_pred.cpu() == y.cpu()).float().mean())
    if label_share < DEGENERATE_SHARE and clean <= label_share + CHANCE_SLACK:
        return f"has chance accuracy ({clean:.1%}: the most frequent class is {label_share:.1%} of the data)"
    if not unchanged:
        return ""
    width = value_range[1] - value_range[0]
    linf = [c for c in curves if c.name.endswith("_linf") and not c.name.startswith("worst_")]
    budgets = [(e, a) for c in linf for e, a in zip(c.eps, c.accuracy) if e > 0]
    if (
        budgets
        and max(e for e, _ in budgets) >= LARGE_FRACTION * width
        and all(a >= clean - NOTHING_CHANGES for _, a in budgets)
    ):
        return f"no attack changes its accuracy ({clean:.1%}) at any budget up to eps {max(e for e, _ in budgets):g}"
    return ""


def gradient_problems(
    bundle: ModelBundle, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 256
) -> tuple[int, int, int]:
    """``(zero, non-finite, n)``: inputs whose cross-entropy gradient is exactly zero or not finite."""
    module, dev = bundle.module, bundle.device
    zero = bad = 0
    with model_state(module, train=False, grad=False):
        for s in range(0, len(x), batch_size):
            xb = x[s : s + batch_size].to(dev).detach().requires_grad_(True)
            loss = F.cross_entropy(module(xb), y[s : s + batch_size].to(dev), reduction="sum")
            if not loss.requires_grad:
                return len(x), 0, len(x)
            (grad,) = torch.autograd.grad(loss, xb)
            flat = grad.flatten(1)
            finite = flat.isfinite().all(dim=1)
            bad += int((~finite).sum())
            zero += int((finite & (flat.abs().amax(dim=1) == 0)).sum())
    return zero, bad, len(x)


def black_box_evidence(aa: AutoAttackCurve, white_box: Sequence[Curve]) -> tuple[float, int]:
    """The budget where Square fooled the most samples that every gradient attack missed, and how many.

    Within AutoAttack, Square only sees the samples APGD-CE, APGD-T and FAB-T could not
    fool; of those, the ones FGSM or PGD fooled at the same budget are not counted.
    """
    best = (0.0, 0)
    for e, res in aa.results.items():
        if "square" not in res.attacks or "square" in res.skipped:
            continue
        by_square = aa.positions[e][res.breaker == res.attacks.index("square") + 1]
        missed = torch.ones(len(by_square), dtype=torch.bool)
        for c in white_box:
            i = next((i for i, f in enumerate(c.eps) if math.isclose(f, e, rel_tol=1e-9, abs_tol=1e-12)), None)
            if i is not None:
                missed &= c.correct[i][by_square]
        if int(missed.sum()) > best[1]:
            best = (e, int(missed.sum()))
    return best


def undefine_attack_metrics(sec: Section, why: str, *, prefixes: Sequence[str]) -> int:
    """Make every metric named ``robustness.<prefix>...acc@`` undefined, with ``why`` as its note; returns how many."""
    changed = 0
    for i, m in enumerate(sec.metrics):
        if m.value is None or "@" not in m.name or not any(m.name.startswith(f"robustness.{p}") for p in prefixes):
            continue
        sec.metrics[i] = replace(
            m, value=None, ci=None, note=f"undefined: {why} (measured {m.value:.4f}, not a robustness figure)"
        )
        changed += 1
    return changed


def fail(message: str, evidence: str, check: str) -> Finding:
    return Finding("fail", message, evidence=evidence, check=check)
