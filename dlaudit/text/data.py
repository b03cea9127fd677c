"""Text data: texts, labels and sensitive columns read from ``.csv`` / ``.jsonl`` files (optionally gzipped).

A file holds one row per text: a text column, a target column, optional sensitive
columns (e.g. Jigsaw-style 0/1 identity columns) and optionally a ``split`` column
(``train`` / ``test``). Without a split column the rows are split 75/25, seeded and
stratified on the target, as dlaudit splits tabular files.

The loaders return :class:`TextData` (plain lists and tensors, no token ids: the
tokenizer belongs to the model). :func:`to_audit_data` is the adapter to
:class:`~dlaudit.data.AuditData` for the rest of dlaudit: token ids as ``x`` and the
texts in ``raw``.
"""

from __future__ import annotations

import gzip
import io
import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import train_test_split

from ..data.split import stratify_on
from ..errors import DataError
from ..paths import check_input, shown

__all__ = ["TextData", "TextSplits", "load_text_file", "text_splits", "to_audit_data", "TEST_FRACTION", "TEXT_SUFFIXES"]

TEST_FRACTION = 0.25
TEXT_SUFFIXES = (".csv", ".jsonl", ".csv.gz", ".jsonl.gz")
FILE_LIMIT = 2 << 30
"""The largest text file (after decompression) dlaudit reads: 2 GiB."""
MIN_ROWS = 4


@dataclass
class TextData:
    """Texts, integer labels and what describes them.

    Attributes
    ----------
    texts
        The raw texts (untokenised).
    y
        ``(N,)`` long tensor of class indices into ``class_names``.
    class_names
        The label values as strings; for a 0/1 target ``["0", "1"]`` (index 1 is the positive class).
    sensitive
        One row per text with the sensitive columns (as read), or None.
    columns
        One row per text with the file's other columns (as read), or None: where a view such as
        ``dlaudit fairness --sensitive COL`` finds a column the loader was not told about.
    notes
        What the loader did that a report should say (rows dropped, a split made).
    """

    texts: list[str]
    y: torch.Tensor
    name: str
    class_names: list[str]
    sensitive: pd.DataFrame | None = None
    split: str = "test"
    text_column: str = "text"
    target: str = "label"
    notes: list[str] = field(default_factory=list)
    columns: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.y):
            raise DataError(f"data {self.name!r}: {len(self.texts)} texts but {len(self.y)} labels")
        if not self.texts:
            raise DataError(f"data {self.name!r} ({self.split}) is empty: no texts to audit")
        if self.sensitive is not None and len(self.sensitive) != len(self.texts):
            raise DataError(
                f"data {self.name!r}: {len(self.sensitive)} rows of sensitive columns for {len(self.texts)} texts"
            )

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def subset(self, index: Any) -> TextData:
        """The texts at ``index`` (a slice, a sequence of indices or a boolean mask)."""
        rows = np.arange(len(self))[index] if isinstance(index, slice) else np.asarray(index)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        rows = rows.astype(np.int64)
        return replace(
            self,
            texts=[self.texts[i] for i in rows],
            y=self.y[torch.from_numpy(rows)],
            sensitive=None if self.sensitive is None else self.sensitive.iloc[rows].reset_index(drop=True),
            columns=None if self.columns is None else self.columns.iloc[rows].reset_index(drop=True),
            notes=list(self.notes),
        )

    def head(self, n: int) -> TextData:
        return self if n >= len(self) else self.subset(slice(0, n))


@dataclass
class TextSplits:
    """The training and held-out parts of a text dataset, and every row (``whole``) when it came as one file."""

    train: TextData
    test: TextData
    whole: TextData | None = None


# -- reading files ---------------------------------------------------------------------------------


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in sorted(TEXT_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return suffix
    return path.suffix.lower()


def _read_text(path: Path, gz: bool) -> str:
    try:
        if gz:
            with gzip.open(path, "rb") as fh:
                raw = fh.read(FILE_LIMIT + 1)
        else:
            with path.open("rb") as fh:
                raw = fh.read(FILE_LIMIT + 1)
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise DataError(
            f"text data {shown(path)} is not a valid gzip file ({err}); re-compress it or give it uncompressed"
        ) from err
    except OSError as err:
        raise DataError(f"text data {shown(path)} could not be read: {err.strerror or err}") from err
    if len(raw) > FILE_LIMIT:
        raise DataError(f"text data {shown(path)} is larger than {FILE_LIMIT >> 30} GiB; give a sample of it")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(
            f"text data {shown(path)} is not UTF-8 text ({err.reason} at byte {err.start}); re-save it as UTF-8"
        ) from err


def _jsonl_rows(content: str, path: Path) -> list[Any]:
    """The JSON value of each non-blank line; a line that is not JSON is a one-line error naming its number."""
    rows = []
    for number, line in enumerate(content.splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except (json.JSONDecodeError, RecursionError) as err:
                why = f"{err.msg[:100]} at column {err.colno}" if isinstance(err, json.JSONDecodeError) else "too deep"
                raise DataError(
                    f"text data {shown(path)}: line {number} is not valid JSON ({why}); fix the file"
                ) from err
    return rows


def _read_frame(path: Path) -> pd.DataFrame:
    suffix = _suffix(path)
    if suffix not in TEXT_SUFFIXES:
        raise DataError(
            f"text data {shown(path)} has suffix {suffix or '(none)'}; dlaudit reads {', '.join(TEXT_SUFFIXES)} files"
        )
    content = _read_text(path, suffix.endswith(".gz"))
    if not content.strip():
        raise DataError(f"text data {shown(path)} has no rows; give a file with a header and one text per row")
    try:
        if suffix.startswith(".jsonl"):
            rows = _jsonl_rows(content, path)
            if not all(isinstance(r, dict) for r in rows):
                raise DataError(f"text data {shown(path)}: every line of a .jsonl file must be a JSON object")
            return pd.DataFrame.from_records(rows)
        return pd.read_csv(io.StringIO(content), keep_default_na=False, na_values=[""], dtype={})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as err:
        first = (str(err).splitlines() or [""])[0][:200]
        raise DataError(f"text data {shown(path)} could not be read as a table: {first}") from err


def load_text_file(
    path: str | Path,
    *,
    text_column: str = "text",
    target: str = "label",
    sensitive: Sequence[str] = (),
    split_column: str = "split",
    seed: int = 0,
    positive: str | None = None,
) -> TextSplits:
    """Read a ``.csv`` / ``.jsonl`` (or ``.csv.gz`` / ``.jsonl.gz``) file of texts into training and held-out parts.

    Parameters
    ----------
    path
        The file: UTF-8, a header row for csv, one JSON object per line for jsonl.
    text_column, target
        The columns holding the text and the label.
    sensitive
        Columns with sensitive attributes or identity groups (kept as read, one row per text).
    split_column
        A column of ``train`` / ``test`` values that fixes the split; when the file has none,
        the rows are split 75/25 (seeded with ``seed``, stratified on the target).
    positive
        The label value that is the positive class (index 1 of a binary target); by default
        the largest value in sorted order (``1`` of 0/1, ``"yes"`` of no/yes).

    Raises
    ------
    DataError
        A missing column, no usable text, a label missing, a file that is not UTF-8, ...: one line saying what to do.
    """
    path = check_input(path, "text data", error=DataError, empty_ok=True)
    frame = _read_frame(path)
    return text_splits(
        frame,
        name=_stem(path),
        text_column=text_column,
        target=target,
        sensitive=sensitive,
        split_column=split_column,
        seed=seed,
        positive=positive,
    )


def _stem(path: Path) -> str:
    return path.name[: -len(_suffix(path))] if _suffix(path) in TEXT_SUFFIXES else path.stem


def _columns(frame: pd.DataFrame) -> str:
    names = ", ".join(map(str, frame.columns[:30]))
    return names + (", ..." if len(frame.columns) > 30 else "")


def text_splits(
    frame: pd.DataFrame,
    *,
    name: str,
    text_column: str = "text",
    target: str = "label",
    sensitive: Sequence[str] = (),
    split_column: str = "split",
    seed: int = 0,
    positive: str | None = None,
) -> TextSplits:
    """:class:`TextSplits` from a table (see :func:`load_text_file` for the parameters)."""
    for what, col in (("text column", text_column), ("target column", target)):
        if col not in frame.columns:
            flag = "--text-column" if what == "text column" else "--target"
            raise DataError(
                f"data {name!r}: unknown {what} {col!r}; columns are: {_columns(frame)} (choose one with {flag})"
            )
    missing = [c for c in sensitive if c not in frame.columns]
    if missing:
        raise DataError(
            f"data {name!r}: unknown sensitive column(s) {', '.join(missing)}; columns are: {_columns(frame)} "
            "(choose them with --sensitive)"
        )
    notes: list[str] = []
    texts = frame[text_column]
    if not all(isinstance(t, str) for t in texts.dropna()):
        raise DataError(
            f"data {name!r}: text column {text_column!r} holds non-text values (numbers); is it the right column?"
        )
    empty = texts.map(lambda t: not (isinstance(t, str) and t.strip())).astype(bool)
    if empty.all():
        raise DataError(
            f"data {name!r}: text column {text_column!r} is empty in every row; choose the column that holds the texts"
        )
    if empty.any():
        notes.append(f"{int(empty.sum())} row(s) with an empty text were left out")
        frame = frame.loc[~empty]
    if frame[target].isna().any():
        raise DataError(
            f"data {name!r}: target column {target!r} has missing values in {int(frame[target].isna().sum())} row(s); drop those rows"
        )
    for col in sensitive:
        if frame[col].isna().any():
            raise DataError(f"data {name!r}: sensitive column {col!r} has missing values; fill or drop those rows")
    frame = frame.reset_index(drop=True)
    classes = _classes(frame[target], positive, name=name, target=target)
    if split_column in frame.columns:
        split = frame[split_column].astype(str).str.strip().str.lower()
        bad = sorted(set(split) - {"train", "test"})
        if bad:
            raise DataError(
                f"data {name!r}: split column {split_column!r} holds {bad[:3]}; use 'train' and 'test' only"
            )
        train_rows, test_rows = np.flatnonzero(split == "train"), np.flatnonzero(split == "test")
        if not len(train_rows) or not len(test_rows):
            raise DataError(
                f"data {name!r}: split column {split_column!r} has no {'train' if not len(train_rows) else 'test'} rows"
            )
    else:
        labels = frame[target].astype(str).to_numpy()
        train_rows, test_rows = _stratified_split(labels, seed, name=name)
        how = (
            f"stratified on {target!r}"
            if stratify_on(labels, TEST_FRACTION) is not None
            else "too few texts per class to stratify"
        )
        notes.append(f"split {100 - 100 * TEST_FRACTION:.0f}/{100 * TEST_FRACTION:.0f} (seed {seed}, {how})")

    def part(rows: np.ndarray | None, split: str) -> TextData:
        sub = frame if rows is None else frame.iloc[rows]
        index = {c: i for i, c in enumerate(classes)}
        y = torch.tensor(sub[target].astype(str).map(index).to_numpy(dtype=np.int64))
        return TextData(
            texts=sub[text_column].astype(str).tolist(),
            y=y,
            name=name,
            class_names=list(classes),
            sensitive=sub[list(sensitive)].reset_index(drop=True) if sensitive else None,
            columns=sub.drop(columns=[text_column]).reset_index(drop=True),
            split=split,
            text_column=text_column,
            target=target,
            notes=list(notes),
        )

    return TextSplits(part(train_rows, "train"), part(test_rows, "test"), part(None, "all"))


def _classes(labels: pd.Series, positive: str | None, *, name: str, target: str) -> list[str]:
    values = labels.unique().tolist()
    try:
        ordered = sorted(values)
    except TypeError:
        ordered = sorted(values, key=str)
    classes = [str(v) for v in ordered]
    if len(set(classes)) < 2:
        raise DataError(
            f"data {name!r}: target column {target!r} holds a single value ({classes}); a classifier needs two or more classes"
        )
    if positive is not None:
        if str(positive) not in classes:
            raise DataError(f"data {name!r}: positive class {positive!r} is not a value of {target!r} ({classes[:10]})")
        classes = [c for c in classes if c != str(positive)] + [str(positive)]
    return classes


def _stratified_split(labels: np.ndarray, seed: int, *, name: str) -> tuple[np.ndarray, np.ndarray]:
    if len(labels) < MIN_ROWS:
        raise DataError(
            f"data {name!r} has {len(labels)} text(s); at least {MIN_ROWS} are needed to split it into training and held-out data"
        )
    stratify = stratify_on(labels, TEST_FRACTION)
    rows = np.arange(len(labels))
    train, test = train_test_split(rows, test_size=TEST_FRACTION, random_state=seed, stratify=stratify)
    return np.sort(train), np.sort(test)


# -- the adapter to AuditData ----------------------------------------------------------------------


def to_audit_data(data: TextData, tokenizer: Any, *, max_len: int | None = None, min_len: int = 1) -> Any:
    """:class:`~dlaudit.data.AuditData` for ``data`` encoded with ``tokenizer`` (a :class:`~dlaudit.text.vocab.Tokenizer`).

    ``x`` holds the ``(N, L)`` token ids (long, right-padded to at least ``min_len``), ``texts``
    the raw texts, ``modality`` is ``"text"``, ``value_range`` the id range, and ``notes`` say how
    many texts were truncated to ``max_len`` tokens.
    """
    from ..data.core import AuditData

    enc = tokenizer.encode(data.texts, max_len=max_len, min_len=min_len)
    notes = list(data.notes)
    if enc.truncated:
        notes.append(f"{enc.truncated} of {len(enc)} text(s) were longer than {enc.max_len} tokens and were truncated")
    return AuditData(
        enc.ids,
        data.y.clone(),
        name=data.name,
        modality="text",
        value_range=(0.0, float(len(tokenizer) - 1)),
        class_names=list(data.class_names),
        sensitive=data.sensitive,
        raw=pd.concat(
            [pd.DataFrame({data.text_column: data.texts}), data.columns if data.columns is not None else None], axis=1
        ),
        split=data.split,
        target=data.target,
        notes=notes,
        texts=list(data.texts),
    )
