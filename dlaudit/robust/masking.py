"""Checks for gradient masking: signs that the attacks, not the model, are weak.

A model can look robust because its gradients are useless to an attacker
(shattered, stochastic or vanishing), not because adversarial inputs are rare.
Athalye, Carlini and Wagner 2018, "Obfuscated gradients give a false sense of
security", https://arxiv.org/abs/1802.00420, and Carlini et al. 2019, "On
evaluating adversarial robustness", https://arxiv.org/abs/1902.06705, list
sanity checks any sound evaluation passes:

- an iterative attack (PGD) is not weaker than a single step (FGSM) at the same budget;
- accuracy falls (weakly) as the budget grows;
- with a budget large enough to reach any input, accuracy approaches chance;
- more steps or more random restarts do not raise accuracy;
- a black-box attack (Square) does not fool what every gradient attack missed;
- input gradients are not zero or non-finite on a share of the inputs.

Each check here is a pure function of numbers already measured; a violation becomes a
finding that says what it means. The last three (and accuracy far above chance at a
budget that destroys the input) are strong evidence, so they are failing findings:
"gradient masking suspected".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..report.model import Finding
from .curves import Curve

__all__ = [
    "MaskingCheck",
    "tolerance",
    "check_pgd_vs_fgsm",
    "check_monotone",
    "check_chance",
    "check_more_effort",
    "check_black_box",
    "check_gradients",
    "masking_findings",
]

_REF = "Athalye et al. 2018, arXiv:1802.00420; Carlini et al. 2019, arXiv:1902.06705"
CHANCE_MARGIN = 0.10
"""How far above chance accuracy at the large budget may stay before it is a warning."""


@dataclass(frozen=True)
class MaskingCheck:
    """One sanity check: ``passed`` is None when it could not be computed."""

    name: str
    title: str
    passed: bool | None
    evidence: str
    meaning: str = ""
    severity: str = "warning"
    """``warning`` (possible masking) or ``fail`` (masking suspected: the attack numbers cannot be trusted)."""

    @property
    def status(self) -> str:
        return "not run" if self.passed is None else ("pass" if self.passed else self.severity)

    def finding(self) -> Finding | None:
        """A finding for a violation (of the check's severity), else None."""
        if self.passed is not False:
            return None
        lead = "gradient masking suspected" if self.severity == "fail" else "possible gradient masking"
        return Finding(
            self.severity,
            f"{lead}: {self.meaning}",
            evidence=f"{self.evidence} ({_REF})",
            check=f"masking:{self.name}",
        )


def tolerance(n: int) -> float:
    """Accuracy differences within this are noise: 1 point, or 2 samples on small sets."""
    return max(0.01, 2.0 / n) if n > 0 else 1.0


def check_pgd_vs_fgsm(fgsm: Curve, pgd: Curve, n: int) -> MaskingCheck:
    """PGD must not leave higher accuracy than FGSM at any shared budget."""
    tol = tolerance(n)
    worse = [(e, fgsm.at(e), pgd.at(e)) for e in pgd.eps if e > 0 and e in fgsm.eps and pgd.at(e) > fgsm.at(e) + tol]
    shared = [e for e in pgd.eps if e > 0 and e in fgsm.eps]
    if not shared:
        return MaskingCheck(
            "pgd-vs-fgsm", "PGD at least as strong as FGSM", None, "no budget shared by the FGSM and PGD curves"
        )
    if not worse:
        return MaskingCheck(
            "pgd-vs-fgsm",
            "PGD at least as strong as FGSM",
            True,
            f"PGD accuracy <= FGSM accuracy (+{tol:.3g}) at eps {', '.join(f'{e:g}' for e in shared)}",
        )
    e, fa, pa = worse[0]
    return MaskingCheck(
        "pgd-vs-fgsm",
        "PGD at least as strong as FGSM",
        False,
        "; ".join(f"eps {e:g}: PGD {p:.3f} vs FGSM {f:.3f}" for e, f, p in worse),
        f"PGD is weaker than FGSM at eps {e:g} (accuracy {pa:.3f} against {fa:.3f}). An iterative attack should never do worse "
        "than a single step; the gradients mislead it, so the robust accuracies in this section likely overstate the model's "
        "robustness. Confirm with more restarts, another loss or a gradient-free attack before trusting them.",
    )


def check_monotone(curve: Curve, n: int) -> MaskingCheck:
    """Accuracy must not rise with the budget (a larger ball holds the smaller one)."""
    tol = tolerance(n)
    pairs = list(zip(curve.eps, curve.accuracy))
    rises = [(e0, a0, e1, a1) for (e0, a0), (e1, a1) in zip(pairs, pairs[1:]) if e1 > e0 and a1 > a0 + tol]
    title = f"{curve.name} accuracy falls with eps"
    if len(pairs) < 2:
        return MaskingCheck(f"monotone-{curve.name}", title, None, "fewer than two budgets")
    if not rises:
        return MaskingCheck(
            f"monotone-{curve.name}", title, True, f"non-increasing over eps {', '.join(f'{e:g}' for e, _ in pairs)}"
        )
    e0, a0, e1, a1 = rises[0]
    return MaskingCheck(
        f"monotone-{curve.name}",
        title,
        False,
        "; ".join(f"eps {a:g} -> {c:g}: {b:.3f} -> {d:.3f}" for a, b, c, d in rises),
        f"accuracy under {curve.name} rises from {a0:.3f} at eps {e0:g} to {a1:.3f} at eps {e1:g}. A larger budget contains "
        "the smaller one, so accuracy can only fall; the attack misses adversarial inputs it found at the smaller budget, "
        "a sign that its gradients are unreliable.",
    )


def check_chance(accuracy: float, eps: float, chance: float, n: int) -> MaskingCheck:
    """With a budget that reaches (nearly) any input, accuracy must approach chance."""
    limit = chance + max(CHANCE_MARGIN, tolerance(n))
    title = "accuracy near chance at a large eps"
    if accuracy <= limit:
        return MaskingCheck(
            "large-eps",
            title,
            True,
            f"PGD at eps {eps:g}: accuracy {accuracy:.3f} <= chance {chance:.3f} + {limit - chance:.2f}",
        )
    return MaskingCheck(
        "large-eps",
        title,
        False,
        f"PGD at eps {eps:g}: accuracy {accuracy:.3f}, chance {chance:.3f}",
        f"with a budget of eps {eps:g} (half the value range, enough to turn any input into a flat grey one) PGD still leaves "
        f"accuracy {accuracy:.3f}, far above chance ({chance:.3f}). No model is robust there; the attack's gradients are "
        "masked or obfuscated, so every robust accuracy in this section is an overestimate.",
        severity="fail",
    )


def check_black_box(eps: float, missed: int, n: int, *, share: float = 0.01) -> MaskingCheck:
    """Square (black box) must not fool a share of the samples every gradient attack missed."""
    title = "a black-box attack finds nothing the gradient attacks missed"
    limit = max(2, math.ceil(share * n))
    if missed < limit:
        return MaskingCheck(
            "black-box", title, True, f"Square fooled {missed} sample(s) the gradient attacks missed (limit {limit})"
        )
    return MaskingCheck(
        "black-box",
        title,
        False,
        f"eps {eps:g}: Square fooled {missed} of {n} samples that FGSM, PGD, APGD-CE, APGD-T and FAB-T all missed",
        f"the gradient-free Square attack fooled {missed} of {n} samples at eps {eps:g} that every gradient attack missed. "
        "Gradient attacks are the stronger ones on a model with useful gradients; here the gradients mislead them, so the "
        "white-box robust accuracies overstate the model's robustness.",
        severity="fail",
    )


def check_gradients(zero: int, nonfinite: int, n: int, *, share: float = 0.05) -> MaskingCheck:
    """Input gradients of the loss must be finite and non-zero on (nearly) every input."""
    title = "input gradients are finite and non-zero"
    if n == 0:
        return MaskingCheck("gradients", title, None, "no correctly classified sample to check")
    frac = (zero + nonfinite) / n
    evidence = f"{zero} zero and {nonfinite} non-finite cross-entropy gradients on {n} correctly classified inputs"
    if frac <= share:
        return MaskingCheck("gradients", title, True, evidence)
    return MaskingCheck(
        "gradients",
        title,
        False,
        evidence,
        f"the loss gradient with respect to the input is zero or not finite on {frac:.0%} of the inputs ({evidence}). Gradient "
        "attacks cannot move those inputs, so their robust accuracy is the attacks' blindness, not the model's robustness "
        "(shattered or vanishing gradients: a non-differentiable step, a saturated softmax, a rounding layer).",
        severity="fail",
    )


def check_more_effort(base: float, more: float, *, what: str, base_what: str, eps: float, n: int) -> MaskingCheck:
    """A stronger attack (more steps, more restarts) must not raise accuracy."""
    tol = tolerance(n)
    name = "more-" + ("restarts" if "restart" in what else "steps")
    title = f"{what} does not raise accuracy"
    if more <= base + tol:
        return MaskingCheck(name, title, True, f"eps {eps:g}: {base_what} {base:.3f}, {what} {more:.3f}")
    return MaskingCheck(
        name,
        title,
        False,
        f"eps {eps:g}: {base_what} {base:.3f}, {what} {more:.3f}",
        f"PGD with {what} leaves higher accuracy ({more:.3f}) than with {base_what} ({base:.3f}) at eps {eps:g}. A stronger "
        "attack must not do worse; the loss surface misleads the attack (or the step size is off), so the reported robust "
        "accuracy is not reliable.",
    )


def masking_findings(checks: list[MaskingCheck]) -> list[Finding]:
    """One warning finding per violated check."""
    return [f for f in (c.finding() for c in checks) if f is not None]
