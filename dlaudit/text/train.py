"""Training the reference text models (TextCNN, embedding bag) on :class:`~dlaudit.text.data.TextData`.

:func:`train_text_model` builds the vocabulary from the training texts, trains with Adam
(seeded: the same arguments give the same weights on a CPU) and returns a
:class:`TextClassifier`: the module in eval mode with its vocabulary, class names and a
plain-data ``checkpoint()`` that loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..errors import CardError, ConfigError
from ..models.text import TEXT_MODELS
from .data import TextData
from .vocab import WordVocab

__all__ = ["TextClassifier", "train_text_model", "predict_proba", "CHECKPOINT_KIND"]

CHECKPOINT_KIND = "dlaudit.text_classifier"


@dataclass
class TextClassifier:
    """A text model with what it needs to read raw text.

    Attributes
    ----------
    module
        The ``nn.Module`` taking ``(N, L)`` token ids (in eval mode).
    vocab
        Its :class:`~dlaudit.text.vocab.WordVocab`.
    arch, arch_kwargs
        The builder name in :data:`dlaudit.models.text.TEXT_MODELS` and its keyword arguments.
    class_names
        The label of each output.
    min_len
        The shortest id sequence the module takes (TextCNN: its widest kernel).
    history
        Per epoch, the mean training loss.
    """

    module: nn.Module
    vocab: WordVocab
    arch: str
    arch_kwargs: dict[str, Any]
    class_names: list[str]
    min_len: int = 1
    history: list[float] = field(default_factory=list)

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        return self.vocab.encode(texts, min_len=self.min_len).ids

    def predict_proba(self, texts: Sequence[str], *, batch_size: int = 256) -> torch.Tensor:
        """Class probabilities ``(N, C)`` of raw texts."""
        return predict_proba(self.module, self.encode(texts), batch_size=batch_size)

    def checkpoint(self) -> dict[str, Any]:
        """Plain data (the state_dict and JSON-able fields) for ``torch.save``; see :meth:`from_checkpoint`.

        The vocabulary is ``vocab.to_dict()``: on a dlaudit ``ModelCard`` it goes in the
        ``encoder`` field, with ``arch``/``arch_kwargs`` as the architecture.
        """
        return {
            "kind": CHECKPOINT_KIND,
            "arch": self.arch,
            "arch_kwargs": dict(self.arch_kwargs),
            "class_names": list(self.class_names),
            "vocab": self.vocab.to_dict(),
            "min_len": self.min_len,
            "state_dict": {k: v.detach().cpu() for k, v in self.module.state_dict().items()},
        }

    @classmethod
    def from_checkpoint(cls, data: dict[str, Any]) -> TextClassifier:
        """The classifier saved by :meth:`checkpoint` (read with ``torch.load(weights_only=True)``)."""
        if not isinstance(data, dict) or data.get("kind") != CHECKPOINT_KIND:
            raise CardError(f"not a dlaudit text classifier checkpoint (kind {CHECKPOINT_KIND!r})")
        vocab = WordVocab.from_dict(data["vocab"])
        module = _build(data["arch"], len(vocab), len(data["class_names"]), vocab.pad_id, data["arch_kwargs"])
        module.load_state_dict(data["state_dict"])
        module.eval()
        return cls(
            module, vocab, data["arch"], dict(data["arch_kwargs"]), list(data["class_names"]), int(data["min_len"])
        )


def _build(arch: str, vocab_size: int, num_classes: int, pad_id: int, kwargs: dict[str, Any]) -> nn.Module:
    try:
        builder = TEXT_MODELS[arch]
    except KeyError:
        raise ConfigError(f"unknown text model {arch!r}; choose one of: {', '.join(sorted(TEXT_MODELS))}") from None
    try:
        return builder((1,), num_classes, vocab_size=vocab_size, pad_id=pad_id, **kwargs)
    except TypeError as err:
        raise ConfigError(f"text model {arch!r}: bad arguments {kwargs}: {err}") from err


@torch.no_grad()
def predict_proba(module: nn.Module, ids: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor:
    """Softmax probabilities of ``module`` on token ids, in batches, in eval mode (the mode is restored)."""
    was_training = module.training
    module.eval()
    try:
        device = next(iter(module.parameters()), torch.empty(0)).device
        parts = [
            torch.softmax(module(ids[i : i + batch_size].to(device)), dim=1).cpu()
            for i in range(0, len(ids), batch_size)
        ]
    finally:
        module.train(was_training)
    return torch.cat(parts) if parts else torch.empty(0, 0)


def train_text_model(
    arch: str,
    train: TextData,
    *,
    vocab: WordVocab | None = None,
    min_count: int = 1,
    max_size: int = 20_000,
    max_len: int = 64,
    epochs: int = 4,
    batch_size: int = 32,
    lr: float = 5e-3,
    weight_decay: float = 0.0,
    seed: int = 0,
    progress: Callable[[int, int, float], None] | None = None,
    **arch_kwargs: Any,
) -> TextClassifier:
    """Train a reference text model (``"textcnn"`` or ``"embedding-bag"``) on ``train``.

    Parameters
    ----------
    arch
        A name in :data:`dlaudit.models.text.TEXT_MODELS`.
    train
        Training texts and labels.
    vocab
        A vocabulary to use; by default one is built from ``train.texts`` with ``min_count``,
        ``max_size`` and ``max_len``.
    epochs, batch_size, lr, weight_decay
        Adam with cross-entropy, shuffled mini-batches.
    seed
        Seeds the initial weights, the shuffling and dropout.
    progress
        Called as ``progress(epoch, epochs, mean_loss)`` after each epoch.
    **arch_kwargs
        Passed to the model (``embed_dim``, ``kernel_sizes``, ``num_filters``, ``dropout``, ``hidden``).

    Examples
    --------
    >>> from dlaudit.text.synthetic import load_synthetic_text
    >>> clf = train_text_model("textcnn", load_synthetic_text().train)  # a few seconds on a CPU
    """
    if epochs < 1 or batch_size < 1 or lr <= 0:
        raise ConfigError(f"epochs and batch_size must be at least 1 and lr positive, got {epochs}, {batch_size}, {lr}")
    vocab = vocab or WordVocab.build(train.texts, min_count=min_count, max_size=max_size, max_len=max_len)
    torch.manual_seed(seed)
    module = _build(arch, len(vocab), train.num_classes, vocab.pad_id, arch_kwargs)
    min_len = max(getattr(module, "kernel_sizes", (1,)))
    ids = vocab.encode(train.texts, min_len=min_len).ids
    y = train.y.long()
    optimiser = torch.optim.Adam(module.parameters(), lr=lr, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(seed)
    history = []
    module.train()
    for epoch in range(epochs):
        order = torch.randperm(len(ids), generator=generator)
        total = 0.0
        for start in range(0, len(ids), batch_size):
            batch = order[start : start + batch_size]
            optimiser.zero_grad()
            loss = nn.functional.cross_entropy(module(ids[batch]), y[batch])
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(batch)
        history.append(total / len(ids))
        if progress is not None:
            progress(epoch + 1, epochs, history[-1])
    module.eval()
    return TextClassifier(module, vocab, arch, dict(arch_kwargs), list(train.class_names), min_len, history)
