"""Reference text classifiers over token ids: Kim's TextCNN and an embedding-bag (fastText-style) model.

Both take an ``(N, L)`` long tensor of token ids, right-padded with ``pad_id``, and return
``(N, num_classes)`` logits. Padding never changes a text's logits (PAD's embedding is the
zero vector and padded positions are masked), so a batch can be padded to any length.
Both expose ``embedding`` (an :class:`torch.nn.Embedding`), the layer that token-level
attributions (captum's ``LayerIntegratedGradients``) and HotFlip hook.

The builders :func:`textcnn` and :func:`embedding_bag` have the signature of
:func:`dlaudit.models.register_model` builders (``input_shape`` is ``(max_len,)``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..errors import ConfigError
from .registry import register_model

__all__ = ["TextCNN", "EmbeddingBagClassifier", "textcnn", "embedding_bag", "TEXT_MODELS"]


def _check(vocab_size: int, num_classes: int, pad_id: int) -> None:
    if vocab_size < 2:
        raise ConfigError(f"vocab_size must be at least 2, got {vocab_size}")
    if num_classes < 2:
        raise ConfigError(f"num_classes must be at least 2, got {num_classes}")
    if not 0 <= pad_id < vocab_size:
        raise ConfigError(f"pad_id {pad_id} is outside the vocabulary (0..{vocab_size - 1})")


class TextCNN(nn.Module):
    """Kim (2014), "Convolutional Neural Networks for Sentence Classification", https://arxiv.org/abs/1408.5882.

    Embedding -> parallel 1-D convolutions (one per kernel size, ``num_filters`` each) -> ReLU ->
    max over time -> dropout -> linear. Max pooling runs over the windows that start at a
    real token; the sequence is zero-padded by ``max(kernel_sizes) - 1`` so that every real
    token starts a window, which makes the logits independent of the batch's padding.

    Parameters
    ----------
    vocab_size, num_classes
        Sizes of the vocabulary and of the output.
    embed_dim
        Width of the token embedding (Kim: 300).
    kernel_sizes, num_filters
        Window sizes and filters per size (Kim: 3, 4, 5 and 100).
    dropout
        Dropout on the pooled features (Kim: 0.5).
    pad_id
        The padding token's id.
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        *,
        embed_dim: int = 64,
        kernel_sizes: Sequence[int] = (3, 4, 5),
        num_filters: int = 32,
        dropout: float = 0.5,
        pad_id: int = 0,
    ) -> None:
        super().__init__()
        _check(vocab_size, num_classes, pad_id)
        if not kernel_sizes or min(kernel_sizes) < 1:
            raise ConfigError(f"kernel_sizes must be positive whole numbers, got {list(kernel_sizes)}")
        self.pad_id = int(pad_id)
        self.vocab_size = int(vocab_size)
        self.kernel_sizes = tuple(int(k) for k in kernel_sizes)
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.convs = nn.ModuleList(nn.Conv1d(embed_dim, num_filters, k) for k in self.kernel_sizes)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(num_filters * len(self.kernel_sizes), num_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        real = ids != self.pad_id  # (N, L)
        real[:, 0] |= ~real.any(dim=1)  # an all-PAD row still pools one window
        emb = self.embedding(ids).transpose(1, 2)  # (N, E, L)
        emb = nn.functional.pad(emb, (0, max(self.kernel_sizes) - 1))
        pooled = []
        for conv in self.convs:
            h = torch.relu(conv(emb))[:, :, : ids.shape[1]]  # windows starting at positions 0..L-1
            h = h.masked_fill(~real[:, None, :], float("-inf"))
            pooled.append(h.amax(dim=2))
        return self.fc(self.dropout(torch.cat(pooled, dim=1)))


class EmbeddingBagClassifier(nn.Module):
    """Mean of the token embeddings -> linear -> ReLU -> linear: a fastText-style bag of words.

    Joulin et al. (2017), "Bag of Tricks for Efficient Text Classification", https://arxiv.org/abs/1607.01759.
    The bag is the mean over real (non-PAD) tokens, as ``nn.EmbeddingBag(mode="mean",
    padding_idx=pad_id)`` computes it, written as an ``nn.Embedding`` plus a masked mean so
    that the per-token embeddings exist for layer attributions and HotFlip.

    Parameters
    ----------
    vocab_size, num_classes
        Sizes of the vocabulary and of the output.
    embed_dim, hidden
        Width of the embedding and of the hidden layer (``hidden=0``: linear on the mean).
    pad_id
        The padding token's id.
    """

    def __init__(
        self, vocab_size: int, num_classes: int, *, embed_dim: int = 64, hidden: int = 64, pad_id: int = 0
    ) -> None:
        super().__init__()
        _check(vocab_size, num_classes, pad_id)
        self.pad_id = int(pad_id)
        self.vocab_size = int(vocab_size)
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        if hidden:
            self.head: nn.Module = nn.Sequential(
                nn.Linear(embed_dim, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)
            )
        else:
            self.head = nn.Linear(embed_dim, num_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        real = (ids != self.pad_id).unsqueeze(-1)
        emb = self.embedding(ids) * real
        mean = emb.sum(dim=1) / real.sum(dim=1).clamp_min(1)
        return self.head(mean)


@register_model("textcnn")
def textcnn(input_shape: tuple[int, ...], num_classes: int, *, vocab_size: int, **kwargs: object) -> TextCNN:
    """Registry builder: ``input_shape`` is ``(max_len,)`` (unused by the model: any length is accepted)."""
    return TextCNN(vocab_size, num_classes, **kwargs)  # type: ignore[arg-type]


@register_model("embedding-bag")
def embedding_bag(
    input_shape: tuple[int, ...], num_classes: int, *, vocab_size: int, **kwargs: object
) -> EmbeddingBagClassifier:
    """Registry builder: ``input_shape`` is ``(max_len,)`` (unused by the model: any length is accepted)."""
    return EmbeddingBagClassifier(vocab_size, num_classes, **kwargs)  # type: ignore[arg-type]


TEXT_MODELS = {"textcnn": textcnn, "embedding-bag": embedding_bag}
"""The text builders, registered as reference models under these names."""
