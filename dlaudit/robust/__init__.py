"""Adversarial robustness: FGSM and PGD, robustness curves, noise, gradient-masking checks,
adversarial training, and the ``robustness`` report section."""

from __future__ import annotations

from .attacks import Attack, AttackOutput, fgsm, pgd, run_attack
from .curves import Curve, minimal_eps, robustness_curve
from .evaluate import AttackResult, evaluate_attacks
from .groups import accuracy_by_group, per_sample_correct
from .noise import noise_accuracy
from .training import AdversarialTraining, adversarial_loss

__all__ = [
    "AdversarialTraining",
    "Attack",
    "AttackOutput",
    "AttackResult",
    "Curve",
    "accuracy_by_group",
    "adversarial_loss",
    "evaluate_attacks",
    "fgsm",
    "minimal_eps",
    "noise_accuracy",
    "per_sample_correct",
    "pgd",
    "robustness_curve",
    "run_attack",
]
