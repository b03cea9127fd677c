"""Data: :class:`AuditData` and the loaders behind :func:`dlaudit.load_data`.

Named datasets: ``digits`` (embedded), ``mnist``, ``fashion-mnist``, ``adult``,
``german``, ``synthetic-credit``; files: ``.npz`` and ``.csv``.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import DataError
from .core import AuditData, Splits
from .images import load_digits, load_mnist, load_npz
from .tabular import TabularEncoder, load_adult, load_csv, load_german, load_synthetic_credit, synthetic_credit_frame

__all__ = [
    "AuditData",
    "Splits",
    "TabularEncoder",
    "DATASETS",
    "load_splits",
    "load_data",
    "synthetic_credit_frame",
]

DATASETS = ("digits", "mnist", "fashion-mnist", "adult", "german", "synthetic-credit")


def _as_list(value: str | Sequence[str] | None) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def load_splits(
    spec: str | Path = "digits",
    *,
    data_dir: str | Path | None = None,
    target: str | None = None,
    sensitive: str | Sequence[str] | None = None,
    seed: int = 0,
    encoder: dict[str, Any] | None = None,
) -> Splits:
    """Load a dataset's training and held-out splits.

    Parameters
    ----------
    spec
        A dataset name (see ``DATASETS``) or a ``.npz`` / ``.csv`` file.
    data_dir
        Where a named dataset's files are (mnist, adult, german).
    target
        The label column of a csv file.
    sensitive
        Sensitive columns (comma-separated or a list); each dataset has defaults.
    seed
        Seed of the train/test split (files and german) or of the generator
        (synthetic-credit). The ``digits`` split is fixed (seed 0 unless given).
    encoder
        A tabular encoder spec from a model card, so new data is encoded the way
        the model's training data was.
    """
    sens = _as_list(sensitive)
    name = str(spec).strip()
    key = name.lower()
    if key == "digits":
        return load_digits(seed=seed)
    if key in ("mnist", "fashion-mnist"):
        return load_mnist(key, data_dir=data_dir)
    if key == "adult":
        return load_adult(data_dir, sensitive=sens if sens is not None else ("sex", "race"), encoder=encoder)
    if key == "german":
        return load_german(data_dir, sensitive=sens if sens is not None else ("sex", "age"), seed=seed, encoder=encoder)
    if key == "synthetic-credit":
        return load_synthetic_credit(seed=seed, sensitive=sens if sens is not None else ("sex",), encoder=encoder)
    path = Path(name)
    if path.suffix.lower() == ".npz":
        return load_npz(path, seed=seed)
    if path.suffix.lower() == ".csv":
        return load_csv(path, target=target, sensitive=sens or (), seed=seed, encoder=encoder)
    if path.exists():
        raise DataError(f"data file {path} has suffix {path.suffix or '(none)'}; dlaudit reads .npz and .csv files")
    raise DataError(f"unknown dataset {name!r}; use one of {', '.join(DATASETS)}, or a .npz or .csv file")


def load_data(
    spec: str | Path = "digits",
    *,
    split: str = "test",
    data_dir: str | Path | None = None,
    target: str | None = None,
    sensitive: str | Sequence[str] | None = None,
    seed: int = 0,
    encoder: dict[str, Any] | None = None,
    limit: int | None = None,
) -> AuditData:
    """Load one split (``"test"`` by default, the held-out part) as :class:`AuditData`.

    See :func:`load_splits` for the parameters; ``limit`` keeps the first N samples.
    """
    if split not in ("train", "test"):
        raise DataError(f"split must be 'train' or 'test', got {split!r}")
    data = getattr(load_splits(spec, data_dir=data_dir, target=target, sensitive=sensitive, seed=seed, encoder=encoder), split)
    if limit is not None:
        if limit < 1:
            raise DataError(f"limit must be at least 1, got {limit}")
        data = data.head(limit)
    return data
