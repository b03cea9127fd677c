"""Text data for the rest of dlaudit: ``synthetic-text`` and ``.csv`` / ``.jsonl`` files, encoded by a model's tokenizer.

The tokenizer belongs to the model (``bundle.tokenizer``), so text data becomes
:class:`~dlaudit.data.AuditData` (token ids in ``x``, the texts in ``texts``) only
together with a model: :func:`encode_splits`. Training reads the raw texts
(:func:`load_text_splits`) and builds its vocabulary from them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import DataError
from .core import Splits

__all__ = [
    "SYNTHETIC_TEXT",
    "is_text_spec",
    "load_text_splits",
    "encode_splits",
    "align_labels",
    "TEXT_DEFAULT_COLUMN",
]

SYNTHETIC_TEXT = "synthetic-text"
TEXT_DEFAULT_COLUMN = "text"
_TEXT_ONLY_SUFFIXES = (".jsonl", ".jsonl.gz", ".csv.gz")


def is_text_spec(spec: Any, text_column: str | None = None) -> bool:
    """Whether ``spec`` names text data: ``synthetic-text``, a ``.jsonl`` file, or any file read with ``--text-column``."""
    name = str(spec).strip()
    if name.lower() == SYNTHETIC_TEXT:
        return True
    if text_column is not None and Path(name).suffix.lower() in (".csv", ".jsonl", ".gz"):
        return True
    return name.lower().endswith(_TEXT_ONLY_SUFFIXES)


def load_text_splits(
    spec: str | Path,
    *,
    text_column: str | None = None,
    target: str | None = None,
    sensitive: Sequence[str] | None = None,
    seed: int = 0,
) -> Any:
    """The raw texts (:class:`~dlaudit.text.data.TextSplits`) of ``synthetic-text`` or a text file."""
    from ..text.data import load_text_file
    from ..text.synthetic import load_synthetic_text

    if str(spec).strip().lower() == SYNTHETIC_TEXT:
        return load_synthetic_text(seed=seed, sensitive=tuple(sensitive) if sensitive is not None else ("identity",))
    return load_text_file(
        spec,
        text_column=text_column or TEXT_DEFAULT_COLUMN,
        target=target or "label",
        sensitive=tuple(sensitive or ()),
        seed=seed,
    )


def encode_splits(texts: Any, tokenizer: Any, *, max_len: int) -> Splits:
    """:class:`Splits` of ``texts`` (:class:`~dlaudit.text.data.TextSplits`) as ids of ``tokenizer``, padded to ``max_len``.

    Every split is padded (and truncated) to the model's ``max_len`` tokens, so every input has
    the model's input shape; the notes of each split say how many texts were truncated.
    """
    from ..text.data import to_audit_data

    if tokenizer is None:
        raise DataError(
            f"data {texts.test.name!r} is text, but this model reads no text (it has no tokenizer); "
            "audit a text model (e.g. 'dlaudit train textcnn --data synthetic-text -o t.pt')"
        )

    def encode(part: Any) -> Any:
        return None if part is None else to_audit_data(part, tokenizer, max_len=max_len, min_len=max_len)

    return Splits(encode(texts.train), encode(texts.test), encode(texts.whole))


def align_labels(splits: Splits, class_names: Sequence[str] | None) -> Splits:
    """``splits`` with labels re-indexed to the model's ``class_names`` where the data's label values are those names.

    A text file's labels are indexed in sorted order (``negative`` 0, ``positive`` 1), a Hugging Face
    model's by its ``id2label``, which may differ (``{0: "positive", 1: "negative"}``). Where the two
    sets of names agree (ignoring case and surrounding spaces), each label becomes the index of its
    name on the model, and a note says so; otherwise (e.g. 0/1 labels for ``LABEL_0``/``LABEL_1``)
    the labels stay the indices they are.
    """
    if not class_names:
        return splits

    def key(name: object) -> str:
        return str(name).strip().lower()

    model = [key(c) for c in class_names]
    if len(set(model)) != len(model):
        return splits

    def align(part: Any) -> Any:
        if part is None or part.class_names is None:
            return part
        data = [key(c) for c in part.class_names]
        if data == model or sorted(data) != sorted(model):
            return part
        import torch

        order = torch.tensor([model.index(c) for c in data], dtype=torch.long)
        moved = ", ".join(f"{c} {i}->{j}" for i, (c, j) in enumerate(zip(part.class_names, order.tolist())) if i != j)
        return replace(
            part,
            y=order[part.y],
            class_names=list(class_names),
            notes=[*part.notes, f"labels re-indexed to the model's classes ({moved})"],
        )

    return Splits(align(splits.train), align(splits.test), align(splits.whole))
