"""Training: one loop for standard, weighted and adversarial training (:mod:`dlaudit.train.trainer`).

The names below load on first use, so that ``import dlaudit`` (whose ``dlaudit.train``
is the function :func:`dlaudit.api.train`) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .trainer import DEFAULTS, LossFn, TrainConfig, evaluate_accuracy, fit, train, weighted_cross_entropy

__all__ = ["DEFAULTS", "LossFn", "TrainConfig", "evaluate_accuracy", "fit", "train", "weighted_cross_entropy"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module(f"{__name__}.trainer"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
