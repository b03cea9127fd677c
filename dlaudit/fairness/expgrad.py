"""Exponentiated gradient reduction (fairlearn) with our trainer as the base learner.

Agarwal, Beygelzimer, Dudik, Langford and Wallach 2018, "A Reductions Approach to
Fair Classification", https://arxiv.org/abs/1803.02453.

:class:`TorchClassifier` wraps :func:`dlaudit.train.fit` as a scikit-learn
estimator that accepts ``sample_weight``, which is how ExponentiatedGradient asks
each round's best response to weigh the samples. The result is a randomized
mixture of the rounds' classifiers; :func:`fit_expgrad` turns it into an
``ensemble`` model (:mod:`dlaudit.models.ensemble`) that averages the members'
class probabilities with the mixture weights. That saved ensemble is the
deterministic, soft-vote form of fairlearn's randomized classifier: it is what
the before/after table measures, and members with weight 0 are dropped.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from torch import nn

from ..bundle import ModelBundle
from ..data import AuditData
from ..data.groups import SensitiveFeature
from ..errors import ConfigError
from ..models import build_model
from ..train import TrainConfig, fit
from ..utils import ProgressFn, batched_logits
from .thresholds import CONSTRAINTS, check_constraint

__all__ = ["TorchClassifier", "fit_expgrad", "CONSTRAINTS"]

log = logging.getLogger(__name__)


class TorchClassifier(ClassifierMixin, BaseEstimator):
    """A dlaudit reference model trained by our trainer, as a scikit-learn classifier.

    Parameters are the architecture and :class:`~dlaudit.train.TrainConfig`
    fields; ``fit(X, y, sample_weight=None)`` trains a fresh model (seeded).
    """

    _on_fit: Any = None
    """Called after each fit (one round of exponentiated gradient); a class attribute, so the copies
    fairlearn makes of the estimator share it (set by :func:`fit_expgrad` for its progress)."""

    def __init__(
        self,
        arch: str = "mlp",
        arch_kwargs: dict[str, Any] | None = None,
        input_shape: tuple[int, ...] | None = None,
        num_classes: int = 2,
        epochs: int = 5,
        lr: float = 1e-3,
        optimizer: str = "adam",
        batch_size: int = 64,
        weight_decay: float = 0.0,
        seed: int = 0,
        device: str = "cpu",
    ) -> None:
        self.arch = arch
        self.arch_kwargs = arch_kwargs
        self.input_shape = input_shape
        self.num_classes = num_classes
        self.epochs = epochs
        self.lr = lr
        self.optimizer = optimizer
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.seed = seed
        self.device = device

    def _tensor(self, X: Any) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(X, dtype=np.float32))
        shape = tuple(self.input_shape) if self.input_shape else tuple(x.shape[1:])
        return x.reshape(len(x), *shape)

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> TorchClassifier:
        x = self._tensor(X)
        labels = torch.from_numpy(np.array(y, dtype=np.int64))
        self.classes_ = np.arange(self.num_classes)
        module = build_model(self.arch, tuple(x.shape[1:]), self.num_classes, **(self.arch_kwargs or {}))
        data = AuditData(x, labels, name="expgrad-round", modality="tabular")
        config = TrainConfig(
            epochs=self.epochs,
            lr=self.lr,
            optimizer=self.optimizer,
            batch_size=self.batch_size,
            weight_decay=self.weight_decay,
            seed=self.seed,
        )
        torch.manual_seed(self.seed)
        fit(module, data, config, device=self.device, sample_weight=sample_weight)
        self.module_ = module.eval()
        if TorchClassifier._on_fit is not None:
            TorchClassifier._on_fit()
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        logits = batched_logits(self.module_, self._tensor(X), batch_size=2048)
        return torch.softmax(logits, dim=1).numpy()

    def predict(self, X: Any) -> np.ndarray:
        return batched_logits(self.module_, self._tensor(X), batch_size=2048).argmax(dim=1).numpy()


def _member(predictor: Any, arch: str, arch_kwargs: dict[str, Any]) -> tuple[dict[str, Any], nn.Module | None]:
    """A predictor of the mixture as an ensemble member spec (and its module)."""
    if isinstance(predictor, TorchClassifier):
        return {"architecture": arch, "arch_kwargs": dict(arch_kwargs)}, predictor.module_
    constant = getattr(
        predictor, "constant", None
    )  # fairlearn uses a DummyClassifier when a round's labels are all one class
    if constant is not None:
        return {"architecture": "constant", "arch_kwargs": {"label": int(np.asarray(constant).ravel()[0])}}, None
    raise ConfigError(f"exponentiated gradient returned an unexpected predictor {type(predictor).__name__}")


def fit_expgrad(
    bundle: ModelBundle,
    data: AuditData,
    feature: SensitiveFeature,
    *,
    constraint: str = "demographic_parity",
    eps: float = 0.01,
    max_iter: int = 20,
    epochs: int | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: ProgressFn | None = None,
) -> tuple[ModelBundle, Any]:
    """Run ExponentiatedGradient on ``data`` (the training split) with ``bundle``'s architecture.

    Each round trains a fresh model of the card's architecture with its training
    configuration (``epochs`` overrides the epochs per round); ``progress`` hears
    ``("mitigate:expgrad rounds", k, max_iter)`` after each. Returns the ensemble
    bundle and the fitted fairlearn estimator.
    """
    from fairlearn.reductions import DemographicParity, EqualizedOdds, ExponentiatedGradient

    card = bundle.card
    check_constraint(constraint)
    if card.num_classes != 2:
        raise ConfigError(
            f"exponentiated gradient here supports binary models; this one has {card.num_classes} classes; use --method reweigh"
        )
    if not card.architecture or card.architecture == "ensemble":
        raise ConfigError(
            "exponentiated gradient retrains the model, which needs a reference architecture (mlp, cnn) on the card; use --method threshold"
        )
    if not feature.defined:
        raise ConfigError(f"cannot run exponentiated gradient over {feature.name!r}: {feature.reason}")
    training = card.training or {}
    arch_kwargs = dict(card.arch_kwargs)
    if card.mean is not None and card.std is not None:
        arch_kwargs.update(mean=card.mean, std=card.std)
    estimator = TorchClassifier(
        arch=card.architecture,
        arch_kwargs=arch_kwargs,
        input_shape=tuple(card.input_shape),
        num_classes=2,
        epochs=int(epochs or training.get("epochs", 5)),
        lr=float(training.get("lr", 1e-3)),
        optimizer=str(training.get("optimizer", "adam")),
        batch_size=int(training.get("batch_size", 64)),
        weight_decay=float(training.get("weight_decay", 0.0)),
        seed=seed,
        device=str(torch.device(device)),
    )
    moment = DemographicParity() if constraint == "demographic_parity" else EqualizedOdds()
    reduction = ExponentiatedGradient(estimator, constraints=moment, eps=eps, max_iter=max_iter)
    x = data.x.reshape(len(data), -1).numpy()
    with warnings.catch_warnings():  # fairlearn 0.15 sets Series items in ways pandas 3 deprecates
        warnings.filterwarnings(
            "ignore", message="Setting (a value on a Series via .at|an item of incompatible dtype)", category=Warning
        )
        rounds = [0]

        def tick() -> None:
            rounds[0] += 1
            if progress is not None:
                progress("mitigate:expgrad rounds", min(rounds[0], max_iter), max_iter)

        TorchClassifier._on_fit = tick
        try:
            reduction.fit(x, data.y.numpy(), sensitive_features=feature.groups.astype(str).to_numpy())
        finally:
            TorchClassifier._on_fit = None
    specs, modules, weights = [], [], []
    for idx, weight in reduction.weights_.items():
        if weight <= 0:
            continue
        spec, module = _member(reduction.predictors_[idx], card.architecture, card.arch_kwargs)
        specs.append(spec)
        modules.append(module)
        weights.append(float(weight))
    ensemble = build_model(
        "ensemble",
        card.input_shape,
        2,
        members=specs,
        weights=weights,
        **({"mean": card.mean, "std": card.std} if card.mean is not None else {}),
    )
    for member, trained in zip(ensemble.members, modules):
        if trained is not None:
            member.load_state_dict(trained.state_dict())
    log.info("exponentiated gradient: %d rounds, %d members with weight > 0", len(reduction.predictors_), len(specs))
    new_card = card.replace(
        architecture="ensemble", arch_kwargs={"members": specs, "weights": weights}, postprocess=None
    )
    return ModelBundle(ensemble, new_card, device=bundle.device), reduction
