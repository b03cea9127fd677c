"""Training: one loop for standard, weighted and adversarial training."""
from __future__ import annotations

from .trainer import DEFAULTS, LossFn, TrainConfig, evaluate_accuracy, fit, train, weighted_cross_entropy

__all__ = ["DEFAULTS", "LossFn", "TrainConfig", "evaluate_accuracy", "fit", "train", "weighted_cross_entropy"]
