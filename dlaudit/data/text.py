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


def _as_index(label: str) -> int | None:
    """``label`` as a whole number (``"1"``, ``"-1"``, ``"1.0"``), else None."""
    try:
        value = float(label)
    except ValueError:
        return None
    return int(value) if value.is_integer() else None


def align_labels(splits: Splits, class_names: Sequence[str] | None) -> Splits:
    """``splits`` with labels mapped to the model's ``class_names`` (the order of its ``id2label``).

    A text file's labels are indexed in sorted order (``negative`` 0, ``positive`` 1), a Hugging Face
    model's classes by its ``id2label``, which may differ (``{0: "positive", 1: "negative"}``):

    - labels that are all the model's class names (ignoring case and surrounding spaces) map by name;
    - whole-number labels (``0``/``1`` for ``NEGATIVE``/``POSITIVE`` or ``LABEL_0``/``LABEL_1``) are class
      indices and map by value; one outside ``0 .. len(class_names) - 1`` is a :class:`DataError`;
    - other labels that share no name with the model map in sorted order, and a note says so;
    - labels of which some are the model's class names and some are not are a :class:`DataError` (by name
      and by order they could mean different classes).

    Where a label's class changes, or labels map by order, the split's notes say so.
    """
    if not class_names:
        return splits

    def key(name: object) -> str:
        return str(name).strip().lower()

    model = [key(c) for c in class_names]
    if len(set(model)) != len(model):
        return splits
    listed = ", ".join(f"{i}: {c}" for i, c in enumerate(class_names[:10])) + (", ..." if len(class_names) > 10 else "")

    def align(part: Any) -> Any:
        if part is None or part.class_names is None:
            return part
        data = [key(c) for c in part.class_names]
        if data == model:
            return part
        import torch

        shared = set(data) & set(model)
        numbers = [_as_index(c) for c in data]
        if shared == set(data):
            targets, how = [model.index(c) for c in data], "re-indexed to the model's classes"
        elif shared:
            others = [c for c, k in zip(part.class_names, data) if k not in shared]
            raise DataError(
                f"data {part.name!r}: labels {others[:5]} are not among the model's classes ({listed}) while "
                f"{sorted(shared)[:5]} are; label every row with a class name of the model or its index"
            )
        elif all(n is not None for n in numbers):
            if any(not 0 <= n < len(class_names) for n in numbers):
                raise DataError(
                    f"data {part.name!r}: whole-number labels are the model's class indices, but {part.class_names[:10]} "
                    f"are not all in 0..{len(class_names) - 1} ({listed}); relabel them with those indices or class names"
                )
            targets, how = numbers, "taken as the model's class indices"
        else:
            targets = list(range(len(data)))
            names = ", ".join(
                f"{c} -> {class_names[j]}" for c, j in zip(part.class_names, targets) if j < len(class_names)
            )
            return replace(
                part,
                notes=[*part.notes, f"labels are not the model's class names; mapped in sorted order ({names})"],
            )
        if targets == list(range(len(data))):
            return part
        order = torch.tensor(targets, dtype=torch.long)
        moved = ", ".join(f"{c} {i}->{j}" for i, (c, j) in enumerate(zip(part.class_names, targets)) if i != j)
        return replace(
            part,
            y=order[part.y],
            class_names=list(class_names),
            notes=[*part.notes, f"labels {how} ({moved})"],
        )

    return Splits(align(splits.train), align(splits.test), align(splits.whole))
