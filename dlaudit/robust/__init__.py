"""Adversarial robustness: FGSM and PGD, robustness curves, noise, gradient-masking checks,
adversarial training, certified robustness (randomized smoothing, IBP/CROWN bounds, certified
training), and the ``robustness`` report section."""

from __future__ import annotations

from .attacks import Attack, AttackOutput, fgsm, pgd, run_attack
from .certified_training import GaussianNoiseTraining, IBPTraining
from .certify import SmoothingResult, VerifiedResult, certify_smoothing, predict_smoothed, verified_accuracy
from .curves import Curve, minimal_eps, robustness_curve
from .groups import accuracy_by_group, per_sample_correct
from .noise import noise_accuracy
from .training import AdversarialTraining, adversarial_loss

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
