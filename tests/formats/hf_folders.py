"""Tiny Hugging Face folders for tests, built offline: models from configs with random weights, a WordPiece
tokenizer built from a few sentences with ``tokenizers``, all written with ``save_pretrained``.

``bench/text_bert.py`` builds its larger BERT with :func:`wordpiece_tokenizer` and :func:`bert_classifier` too."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

IMAGE_MEAN = [0.5, 0.4, 0.3]
IMAGE_STD = [0.2, 0.25, 0.3]
SENTENCES = [
    "a good film",
    "a bad film",
    "the acting was great",
    "the plot was terrible and slow",
    "i loved every minute of it",
    "i hated the ending",
    "a fine cast and a dull script",
]


def tiny_vit(folder: Path, *, seed: int = 0) -> Path:
    """A ViT for 3x16x16 images and 3 classes (cat, dog, fox), with a ViT processor (mean/std per channel)."""
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(seed)
    config = ViTConfig(
        image_size=16,
        patch_size=4,
        num_channels=3,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        id2label={0: "cat", 1: "dog", 2: "fox"},
        label2id={"cat": 0, "dog": 1, "fox": 2},
    )
    ViTForImageClassification(config).eval().save_pretrained(folder)
    ViTImageProcessor(size={"height": 16, "width": 16}, image_mean=IMAGE_MEAN, image_std=IMAGE_STD).save_pretrained(
        folder
    )
    return folder


def tiny_resnet(folder: Path, *, num_labels: int = 10, size: int = 8, channels: int = 3, seed: int = 0) -> Path:
    """A two-stage ResNet (basic blocks) for channels x size x size images, with a ConvNeXt-style processor
    (shortest_edge, mean and std 0.5 per channel)."""
    from transformers import ConvNextImageProcessor, ResNetConfig, ResNetForImageClassification

    torch.manual_seed(seed)
    config = ResNetConfig(
        num_channels=channels,
        embedding_size=8,
        hidden_sizes=[8, 16],
        depths=[1, 1],
        layer_type="basic",
        num_labels=num_labels,
    )
    ResNetForImageClassification(config).eval().save_pretrained(folder)
    half = [0.5] * channels
    ConvNextImageProcessor(size={"shortest_edge": size}, crop_pct=1.0, image_mean=half, image_std=half).save_pretrained(
        folder
    )
    return folder


def wordpiece_tokenizer(
    texts: Sequence[str] = SENTENCES, *, vocab_size: int = 60, max_length: int = 32, train: bool = False
) -> Any:
    """A BERT-style WordPiece tokenizer for ``texts`` (lower-cased, ``[CLS] text [SEP]``), as a
    ``PreTrainedTokenizerFast`` of ``max_length`` tokens at most.

    Its vocabulary is built, the same in every process: the special tokens, every character of
    ``texts`` alone and as a continuation (``##c``), then their most frequent words (ties in
    alphabetical order) up to ``vocab_size``; a word outside it is split into its longest known
    pieces. With ``train``, ``tokenizers``' WordPiece trainer learns it instead, which breaks ties
    in hash-map order, so its vocabulary (ids, even which subwords) changes from one process to
    the next (huggingface/tokenizers#1794).
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    normalizer, pre_tokenizer = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()
    if train:
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    else:
        words = Counter(w for t in texts for w, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(t)))
        chars = sorted({c for w in words for c in w})
        vocab = [*specials, *chars, *(f"##{c}" for c in chars)]
        vocab += [w for w in sorted(words, key=lambda w: (-words[w], w)) if w not in vocab][: vocab_size - len(vocab)]
        tok = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer, tok.pre_tokenizer, tok.decoder = normalizer, pre_tokenizer, decoders.WordPiece()
    if train:
        tok.train_from_iterator(list(texts), trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=max_length,
    )


def bert_classifier(
    tokenizer: Any,
    labels: Sequence[str],
    *,
    hidden: int,
    layers: int,
    heads: int,
    intermediate: int,
    positions: int,
    seed: int = 0,
    vocab_size: int | None = None,
) -> Any:
    """A ``BertForSequenceClassification`` with random weights (``seed``) for ``tokenizer``'s ids, one class per
    name in ``labels`` (``id2label``); ``vocab_size`` gives it another embedding size than the tokenizer's."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=vocab_size or len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate,
        max_position_embeddings=positions,
        id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)},
        pad_token_id=tokenizer.pad_token_id,
    )
    return BertForSequenceClassification(config)


def tiny_bert(folder: Path, *, seed: int = 0, vocab_size: int | None = None) -> Path:
    """A 2-layer BERT (hidden 32) sentiment classifier (neg, pos) and its WordPiece tokenizer.

    ``vocab_size`` gives the model another embedding size than the tokenizer's (a mismatched pair).
    """
    tokenizer = wordpiece_tokenizer()
    model = bert_classifier(
        tokenizer,
        ("neg", "pos"),
        hidden=32,
        layers=2,
        heads=2,
        intermediate=64,
        positions=64,
        seed=seed,
        vocab_size=vocab_size,
    )
    model.eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder`` with its size and modification time, to show nothing was written."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}
