"""Training a reference text model (``textcnn``, ``embedding-bag``) into a :class:`~dlaudit.bundle.ModelBundle`.

The training itself is :func:`dlaudit.text.train.train_text_model`; this module gives the
result a dlaudit model card: modality ``text``, the vocabulary (``card.tokenizer``, plain
JSON, so the checkpoint loads with ``torch.load(weights_only=True)``), the architecture with
the vocabulary size and padding id, the class names, the dataset and the held-out accuracy.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch

from ..bundle import ModelBundle
from ..card import ModelCard
from ..errors import ConfigError
from ..models.text import TEXT_MODELS
from ..utils import ProgressFn, resolve_device

__all__ = ["TEXT_ARCHS", "TEXT_DEFAULTS", "train_text"]

TEXT_ARCHS = tuple(TEXT_MODELS)
TEXT_DEFAULTS: dict[str, dict[str, Any]] = {
    "textcnn": {"epochs": 4, "lr": 5e-3, "batch_size": 32, "max_len": 64},
    "embedding-bag": {"epochs": 6, "lr": 1e-2, "batch_size": 32, "max_len": 64},
}
"""Per architecture: training epochs, Adam's learning rate, batch size and the longest text kept (tokens)."""


def train_text(
    arch: str,
    splits: Any,
    *,
    epochs: int | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    weight_decay: float = 0.0,
    max_len: int | None = None,
    seed: int = 0,
    device: str | torch.device = "auto",
    dataset: str | None = None,
    data_seed: int = 0,
    sensitive: Sequence[str] | None = None,
    progress: ProgressFn | None = None,
) -> ModelBundle:
    """Train ``arch`` on ``splits`` (:class:`~dlaudit.text.data.TextSplits`) and return its bundle.

    The vocabulary is built from the training texts (every word seen; at most 20,000); the
    held-out accuracy and the training configuration go on the card.
    """
    from ..text.data import to_audit_data
    from ..text.train import train_text_model

    if arch not in TEXT_DEFAULTS:
        raise ConfigError(f"unknown text model {arch!r}; choose one of: {', '.join(TEXT_DEFAULTS)}")
    d = TEXT_DEFAULTS[arch]
    config = {
        "epochs": epochs if epochs is not None else d["epochs"],
        "lr": lr if lr is not None else d["lr"],
        "batch_size": batch_size or d["batch_size"],
        "weight_decay": weight_decay,
        "max_len": max_len or d["max_len"],
    }
    start = time.perf_counter()

    def report(epoch: int, total: int, loss: float) -> None:
        if progress is not None:
            progress("training", epoch, total)

    clf = train_text_model(arch, splits.train, seed=seed, progress=report, **config)
    seconds = time.perf_counter() - start
    vocab, module = clf.vocab, clf.module
    arch_kwargs = {**clf.arch_kwargs, "vocab_size": len(vocab), "pad_id": vocab.pad_id}
    length = vocab.max_len

    def accuracy(part: Any) -> float:
        data = to_audit_data(part, vocab, max_len=length, min_len=length)
        with torch.no_grad():
            return float((module(data.x).argmax(dim=1) == data.y).float().mean())

    metrics = {
        "train_accuracy": accuracy(splits.train),
        "test_accuracy": accuracy(splits.test),
        "final_loss": float(clf.history[-1]),
        "train_seconds": round(seconds, 3),
    }
    info = {"trainer": arch, "optimizer": "adam", "betas": [0.9, 0.999], "seed": seed, **config}
    info["device"] = "cpu"
    card = ModelCard(
        input_shape=(length,),
        num_classes=len(clf.class_names),
        value_range=(0.0, float(len(vocab) - 1)),
        architecture=arch,
        arch_kwargs=arch_kwargs,
        modality="text",
        class_names=clf.class_names,
        tokenizer=vocab.to_dict(),
        dataset=dataset or splits.train.name,
        data_seed=data_seed,
        target=splits.train.target,
        sensitive=list(sensitive) if sensitive else None,
        training=info,
        seed=seed,
        metrics=metrics,
    )
    return ModelBundle(module, card, device=resolve_device(device), tokenizer=vocab)
