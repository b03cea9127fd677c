"""Text data for the rest of dlaudit: ``synthetic-text`` and ``.csv`` / ``.jsonl`` files, encoded by a model's tokenizer.

The tokenizer belongs to the model (``bundle.tokenizer``), so text data becomes
:class:`~dlaudit.data.AuditData` (token ids in ``x``, the texts in ``texts``) only
together with a model: :func:`encode_splits`. Training reads the raw texts
(:func:`load_text_splits`) and builds its vocabulary from them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import DataError
from .core import Splits

__all__ = ["SYNTHETIC_TEXT", "is_text_spec", "load_text_splits", "encode_splits", "TEXT_DEFAULT_COLUMN"]

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
