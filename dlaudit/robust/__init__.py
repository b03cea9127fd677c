"""Adversarial robustness: FGSM and PGD, robustness curves, noise, gradient-masking checks,
adversarial training, certified robustness (randomized smoothing, IBP/CROWN bounds, certified
training), and the ``robustness`` report section."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_getattr

if TYPE_CHECKING:
    from .attacks import Attack, AttackOutput, fgsm, pgd, run_attack
    from .certified_training import GaussianNoiseTraining, IBPTraining
    from .certify import SmoothingResult, VerifiedResult, certify_smoothing, predict_smoothed, verified_accuracy
    from .curves import Curve, minimal_eps, robustness_curve
    from .groups import accuracy_by_group, per_sample_correct
    from .noise import noise_accuracy
    from .training import AdversarialTraining, adversarial_loss

_LAZY = {
    "Attack": ".attacks",
    "AttackOutput": ".attacks",
    "fgsm": ".attacks",
    "pgd": ".attacks",
    "run_attack": ".attacks",
    "GaussianNoiseTraining": ".certified_training",
    "IBPTraining": ".certified_training",
    "SmoothingResult": ".certify",
    "VerifiedResult": ".certify",
    "certify_smoothing": ".certify",
    "predict_smoothed": ".certify",
    "verified_accuracy": ".certify",
    "Curve": ".curves",
    "minimal_eps": ".curves",
    "robustness_curve": ".curves",
    "accuracy_by_group": ".groups",
    "per_sample_correct": ".groups",
    "noise_accuracy": ".noise",
    "AdversarialTraining": ".training",
    "adversarial_loss": ".training",
}
"""Each public name and the module it lives in, imported on first use (so that the light modules of this
package, such as its command-line options, load without torch)."""

__all__ = [
    "AdversarialTraining",
    "Attack",
    "AttackOutput",
    "Curve",
    "GaussianNoiseTraining",
    "IBPTraining",
    "SmoothingResult",
    "VerifiedResult",
    "accuracy_by_group",
    "adversarial_loss",
    "certify_smoothing",
    "fgsm",
    "minimal_eps",
    "noise_accuracy",
    "per_sample_correct",
    "pgd",
    "predict_smoothed",
    "robustness_curve",
    "run_attack",
    "verified_accuracy",
]

__getattr__ = lazy_getattr(__name__, _LAZY)
