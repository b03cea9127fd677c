"""One training loop for every reference model: standard, weighted, adversarial.

The loop's loss is a pluggable :data:`LossFn` ``(module, x, y, weight) -> loss``;
the default is (optionally per-sample weighted) cross-entropy, and adversarial
training plugs in a loss that first generates adversarial examples inside the loop.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..bundle import ModelBundle
from ..card import ModelCard
from ..data import AuditData, Splits
from ..errors import ConfigError, DataError
from ..models import NumpyMLP, build_model
from ..utils import ProgressFn, batched_logits, resolve_device, seed_everything

__all__ = [
    "CollapseMonitor",
    "TrainConfig",
    "LossFn",
    "weighted_cross_entropy",
    "fit",
    "train",
    "evaluate_accuracy",
    "DEFAULTS",
]

log = logging.getLogger(__name__)

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor, "torch.Tensor | None"], torch.Tensor]
"""``loss_fn(module, x, y, weight) -> scalar loss`` for one batch (``weight`` per sample, or None).

A loss whose behaviour follows a schedule (e.g. IBP training's ramped budget) may
define ``on_epoch(epoch, epochs)``: :func:`fit` calls it at the start of every
epoch with the 0-based epoch index and the number of epochs.
"""

OPTIMIZERS = ("adam", "sgd")
LR_SCHEDULES = ("constant", "cosine")


@dataclass
class TrainConfig:
    """Hyperparameters of :func:`fit` (stored on the model card)."""

    epochs: int = 10
    lr: float = 1e-3
    optimizer: str = "adam"
    batch_size: int = 64
    weight_decay: float = 0.0
    momentum: float = 0.9
    seed: int = 0
    lr_schedule: str = "constant"
    """``constant``, or ``cosine``: the learning rate decays to 0 along half a cosine over all steps."""
    extra: dict[str, Any] = field(default_factory=dict)

    SMALL: ClassVar[dict[str, Any]] = {"epochs": 2}
    """What ``DLAUDIT_SMALL=1`` (the smoke-test configuration, :func:`dlaudit.pipeline.small`) caps: the
    epochs, given or default; defined here and nowhere else (mitigation's retraining follows it too)."""

    @classmethod
    def small_epochs(cls, epochs: int | None, small: bool) -> int | None:
        """``epochs`` under the smoke-test configuration: capped at :attr:`SMALL`, and set to it when not given."""
        if not small:
            return epochs
        return cls.SMALL["epochs"] if epochs is None else min(epochs, cls.SMALL["epochs"])

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"epochs must be at least 1, got {self.epochs}")
        if not self.lr > 0:
            raise ConfigError(f"learning rate must be positive, got {self.lr}")
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, got {self.batch_size}")
        if self.weight_decay < 0:
            raise ConfigError(f"weight decay must be >= 0, got {self.weight_decay}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(
                f"unknown learning-rate schedule {self.lr_schedule!r}; choose one of: {', '.join(LR_SCHEDULES)}"
            )
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; choose one of: {', '.join(OPTIMIZERS)}")


DEFAULTS: dict[str, dict[str, Any]] = {
    "cnn": {"epochs": 10, "lr": 3e-3, "optimizer": "adam", "batch_size": 32},
    "mlp": {"epochs": 30, "lr": 1e-3, "optimizer": "adam", "batch_size": 64},
    "numpy-mlp": {"epochs": 40, "lr": 0.05, "optimizer": "sgd", "batch_size": 32, "momentum": 0.0},
}


def weighted_cross_entropy(
    module: nn.Module, x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None
) -> torch.Tensor:
    """Cross-entropy, averaged with per-sample weights when given."""
    logits = module(x)
    if weight is None:
        return F.cross_entropy(logits, y)
    losses = F.cross_entropy(logits, y, reduction="none")
    return (losses * weight).sum() / weight.sum().clamp_min(1e-12)


def fit(
    module: nn.Module,
    data: AuditData,
    config: TrainConfig,
    *,
    device: str | torch.device = "auto",
    sample_weight: np.ndarray | torch.Tensor | None = None,
    loss_fn: LossFn = weighted_cross_entropy,
    progress: ProgressFn | None = None,
    on_epoch_end: Callable[[int, nn.Module], None] | None = None,
) -> list[float]:
    """Train ``module`` in place on ``data``; return the mean loss of each epoch.

    Batches are drawn by a permutation from a generator seeded by ``config.seed``,
    so the same seed gives the same model (on the same device and torch build).
    When ``loss_fn`` has an ``on_epoch(epoch, epochs)`` method it is called at the
    start of every epoch (0-based ``epoch``), for losses with a schedule;
    ``on_epoch_end(epoch, module)`` after each (the model back in train mode after it).
    """
    dev = resolve_device(device)
    x, y = data.x.to(dev), data.y.to(dev)
    w = _weights(sample_weight, len(data), dev)
    gen = torch.Generator().manual_seed(config.seed)
    module.to(dev).train()
    params = [p for p in module.parameters() if p.requires_grad]
    if config.optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    else:
        opt = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    history = []
    n = len(data)
    steps = config.epochs * math.ceil(n / config.batch_size)
    schedule = (
        torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, steps) / steps)))
        if config.lr_schedule == "cosine"
        else None
    )
    on_epoch = getattr(loss_fn, "on_epoch", None)
    for epoch in range(config.epochs):
        if on_epoch is not None:
            on_epoch(epoch, config.epochs)
        order = torch.randperm(n, generator=gen).to(dev)
        total = 0.0
        for start in range(0, n, config.batch_size):
            idx = order[start : start + config.batch_size]
            loss = loss_fn(module, x[idx], y[idx], None if w is None else w[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if schedule is not None:
                schedule.step()
            total += float(loss.detach()) * len(idx)
        history.append(total / n)
        log.debug("epoch %d/%d loss %.4f", epoch + 1, config.epochs, history[-1])
        if on_epoch_end is not None:
            on_epoch_end(epoch, module)
            module.train()
        if progress is not None:
            progress("train", epoch + 1, config.epochs)
    module.eval()
    opt.zero_grad(set_to_none=True)
    return history


class CollapseMonitor:
    """After each epoch, the clean accuracy and the most predicted class's share on a fixed sample of
    the training data; a collapsed model (one class for nearly every input, or chance accuracy) is a
    logged warning and is recorded, so the CLI, the card and the report can say so.
    """

    SHARE = 0.9
    SLACK = 0.02

    def __init__(
        self, data: AuditData, num_classes: int, device: torch.device, *, size: int = 512, seed: int = 0
    ) -> None:
        gen = torch.Generator().manual_seed(seed)
        idx = torch.randperm(len(data), generator=gen)[:size].sort().values
        self.x, self.y = data.x[idx], data.y[idx]
        self.k, self.device = num_classes, device
        self.label_share = float(torch.bincount(self.y, minlength=num_classes).max()) / max(len(self.y), 1)
        self.epochs: list[dict[str, Any]] = []

    def __call__(self, epoch: int, module: nn.Module) -> None:
        module.eval()
        pred = batched_logits(module, self.x, device=self.device).argmax(dim=1)
        acc = float((pred == self.y).float().mean())
        counts = torch.bincount(pred, minlength=self.k)
        share = float(counts.max()) / len(pred)
        why = ""
        if share >= self.SHARE and self.label_share < self.SHARE:
            why = f"it predicts class {int(counts.argmax())} for {share:.0%} of training samples"
        elif self.label_share < self.SHARE and acc <= self.label_share + self.SLACK:
            why = f"its training accuracy {acc:.1%} is chance"
        self.epochs.append(
            {"epoch": epoch + 1, "clean_accuracy": round(acc, 4), "top_class_share": round(share, 4), "collapsed": why}
        )
        if why:
            log.warning(
                "training collapsed at epoch %d: %s; try a smaller --eps, more --epochs or a lower --lr", epoch + 1, why
            )

    def info(self) -> dict[str, Any]:
        """What the card records under ``training.monitor``."""
        collapsed = [e["epoch"] for e in self.epochs if e["collapsed"]]
        final = self.epochs[-1]["collapsed"] if self.epochs else ""
        return {"per_epoch": self.epochs, "collapsed_epochs": collapsed, "collapsed": final}


def _weights(sample_weight: Any, n: int, dev: torch.device) -> torch.Tensor | None:
    if sample_weight is None:
        return None
    w = torch.as_tensor(np.asarray(sample_weight, dtype=np.float32)).flatten()
    if len(w) != n:
        raise DataError(f"sample_weight has {len(w)} entries for {n} training samples")
    if not torch.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise DataError("sample_weight must be finite, non-negative and not all zero")
    return w.to(dev)


def evaluate_accuracy(module: nn.Module, data: AuditData, *, device: torch.device | None = None) -> float:
    logits = batched_logits(module, data.x, device=device)
    return float((logits.argmax(1) == data.y).float().mean())


def _check_size(arch: str, input_shape: tuple[int, ...], num_classes: int, arch_kwargs: dict[str, Any]) -> None:
    """Refuse, before anything is allocated, a model whose training would not fit in memory."""
    from ..limits import TRAIN_BYTES_PER_PARAMETER, check_model_size

    numpy = arch == "numpy-mlp"  # float64 weights: twice the bytes
    check_model_size(
        lambda: build_model("mlp" if numpy else arch, input_shape, num_classes, **arch_kwargs),
        f"training {arch}" + "".join(f" {k}={str(v)[:60]}" for k, v in arch_kwargs.items()),
        "choose smaller layer sizes (e.g. --hidden 128,64)",
        bytes_per_parameter=TRAIN_BYTES_PER_PARAMETER * (2 if numpy else 1),
    )


def train(
    arch: str,
    splits: Splits,
    *,
    epochs: int | None = None,
    lr: float | None = None,
    optimizer: str | None = None,
    batch_size: int | None = None,
    weight_decay: float = 0.0,
    seed: int = 0,
    device: str | torch.device = "auto",
    hidden: tuple[int, ...] | None = None,
    sample_weight: np.ndarray | None = None,
    loss_fn: LossFn | None = None,
    training_info: dict[str, Any] | None = None,
    dataset: str | None = None,
    data_dir: str | None = None,
    data_seed: int = 0,
    progress: ProgressFn | None = None,
    lr_schedule: str | None = None,
    keep_dropout: bool = False,
) -> ModelBundle:
    """Train a reference model (``mlp``, ``cnn`` or ``numpy-mlp``) and return its bundle.

    Defaults per architecture are in :data:`DEFAULTS`; the held-out accuracy and
    the training configuration are recorded on the card.
    """
    if arch not in DEFAULTS:
        raise ConfigError(f"unknown model {arch!r}; choose one of: {', '.join(DEFAULTS)}")
    d = DEFAULTS[arch]
    config = TrainConfig(
        epochs=epochs if epochs is not None else d["epochs"],
        lr=lr if lr is not None else d["lr"],
        optimizer=optimizer or d["optimizer"],
        batch_size=batch_size or d["batch_size"],
        momentum=d.get("momentum", 0.9),
        weight_decay=weight_decay,
        seed=seed,
        lr_schedule=lr_schedule or getattr(loss_fn, "lr_schedule", "constant"),
    )
    train_data, test_data = splits.train, splits.test
    dev = resolve_device(device)
    seed_everything(seed)
    start = time.perf_counter()
    arch_kwargs: dict[str, Any] = {}
    if hidden is not None:
        arch_kwargs["hidden"] = list(hidden)
    if keep_dropout:
        if arch != "cnn":
            raise ConfigError(f"--keep-dropout keeps the cnn's dropout on at inference; {arch} has none: train cnn")
        arch_kwargs["dropout_at_inference"] = True
    if arch == "numpy-mlp":
        if loss_fn is not None:
            raise ConfigError(
                "numpy-mlp trains with its own hand-written backprop; adversarial training needs mlp or cnn"
            )
        _check_size(arch, train_data.input_shape, train_data.num_classes, arch_kwargs)
        net = NumpyMLP(train_data.input_shape, train_data.num_classes, hidden=hidden or (128, 64), seed=seed)
        history = net.fit(
            train_data.x.numpy().astype(np.float64),
            train_data.y.numpy(),
            epochs=config.epochs,
            lr=config.lr,
            batch_size=config.batch_size,
            seed=seed,
            sample_weight=sample_weight,
            progress=progress,
            optimizer=config.optimizer,
            momentum=config.momentum if config.optimizer == "sgd" else 0.0,
            weight_decay=config.weight_decay,
        )
        module: nn.Module = net.to_torch()
        card_arch, arch_kwargs = "mlp", {"hidden": list(net.hidden)}
    else:
        if arch == "cnn" and train_data.x.ndim != 4:
            raise ConfigError(
                f"cnn needs image data; {train_data.name!r} is {train_data.modality} data; train an mlp instead"
            )
        _check_size(arch, train_data.input_shape, train_data.num_classes, arch_kwargs)
        module = build_model(arch, train_data.input_shape, train_data.num_classes, **arch_kwargs)
        monitor = CollapseMonitor(train_data, train_data.num_classes, dev, seed=seed)
        history = fit(
            module,
            train_data,
            config,
            device=dev,
            sample_weight=sample_weight,
            loss_fn=loss_fn or weighted_cross_entropy,
            progress=progress,
            on_epoch_end=monitor,
        )
        card_arch = arch
    seconds = time.perf_counter() - start
    module = module.to(dev).eval()
    metrics = {
        "train_accuracy": evaluate_accuracy(module, train_data, device=dev),
        "test_accuracy": evaluate_accuracy(module, test_data, device=dev),
        "final_loss": float(history[-1]) if history and math.isfinite(history[-1]) else float("nan"),
        "train_seconds": round(seconds, 3),
    }
    info = {"trainer": arch, **asdict(config), "device": dev.type, "sample_weighted": sample_weight is not None}
    info.pop("extra")
    if config.optimizer == "adam":  # the card records what was applied: Adam's betas, not SGD's momentum
        info.pop("momentum")
        info["betas"] = [0.9, 0.999]
    info.update(training_info or {"adversarial": None})
    if arch != "numpy-mlp":
        info["monitor"] = monitor.info()
        extra = getattr(loss_fn, "training_info", None)
        if callable(extra) and isinstance(info.get("adversarial"), dict):
            info["adversarial"] = {**info["adversarial"], **extra()}
    card = ModelCard(
        input_shape=train_data.input_shape,
        num_classes=train_data.num_classes,
        value_range=train_data.value_range,
        architecture=card_arch,
        arch_kwargs=arch_kwargs,
        modality=train_data.modality,
        class_names=train_data.class_names,
        feature_names=train_data.feature_names,
        encoder=train_data.encoder,
        dataset=dataset or train_data.name,
        data_dir=data_dir,
        data_seed=data_seed,
        target=train_data.target,
        sensitive=list(train_data.sensitive.columns) if train_data.sensitive is not None else None,
        training=info,
        seed=seed,
        metrics=metrics,
    )
    return ModelBundle(module, card, device=dev)
