"""Data: :class:`AuditData` and the loaders behind :func:`dlaudit.load_data`.

Named datasets: ``digits`` (embedded), ``mnist``, ``fashion-mnist``, ``cifar10``,
``cifar100``, ``adult``, ``german``, ``synthetic-credit``, ``synthetic-text``; ``folder:DIR``
(one sub-folder of images per class); files: ``.npz`` and ``.csv`` (``.jsonl`` and a csv read
with ``text_column`` are text, encoded by the model's tokenizer).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import DataError
from ..parsing import split_list
from .cifar import load_cifar
from .core import AuditData, Splits
from .folder import is_folder_spec, load_folder
from .images import load_digits, load_mnist, load_npz
from .tabular import TabularEncoder, load_adult, load_csv, load_german, load_synthetic_credit, synthetic_credit_frame
from .text import align_labels, encode_splits, is_text_spec, load_text_splits

__all__ = [
    "AuditData",
    "Splits",
    "TabularEncoder",
    "DATASETS",
    "load_splits",
    "load_data",
    "synthetic_credit_frame",
    "for_card",
    "same_dataset",
    "sample_shape",
]

DATASETS = (
    "digits",
    "mnist",
    "fashion-mnist",
    "cifar10",
    "cifar100",
    "adult",
    "german",
    "synthetic-credit",
    "synthetic-text",
)
SHAPES = {
    "digits": (1, 8, 8),
    "mnist": (1, 28, 28),
    "fashion-mnist": (1, 28, 28),
    "cifar10": (3, 32, 32),
    "cifar100": (3, 32, 32),
}
"""The sample shape of each named image dataset (without reading it)."""


def _as_list(value: str | Sequence[str] | None) -> list[str] | None:
    return None if value is None else split_list(value)


def load_splits(
    spec: str | Path = "digits",
    *,
    data_dir: str | Path | None = None,
    target: str | None = None,
    sensitive: str | Sequence[str] | None = None,
    seed: int = 0,
    encoder: dict[str, Any] | None = None,
    input_shape: tuple[int, ...] | None = None,
    tokenizer: Any = None,
    text_column: str | None = None,
) -> Splits:
    """Load a dataset's training and held-out splits.

    Parameters
    ----------
    spec
        A dataset name (see ``DATASETS``), ``folder:DIR`` or a ``.npz`` / ``.csv`` file.
    data_dir
        Where a named dataset's files are (mnist, cifar10, cifar100, adult, german).
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
    input_shape
        The model's input shape: ``folder:DIR`` images are resized to it; text is padded
        and truncated to its length.
    tokenizer
        A text model's tokenizer: text data (``synthetic-text``, ``.jsonl``, a csv with
        ``text_column``) is encoded with it; text data without one is an error.
    text_column
        The column holding the texts of a csv or jsonl file (default ``text``).
    """
    try:
        if is_text_spec(spec, text_column):
            texts = load_text_splits(
                spec, text_column=text_column, target=target, sensitive=_as_list(sensitive), seed=seed
            )
            max_len = input_shape[0] if input_shape else getattr(tokenizer, "max_len", 128)
            return encode_splits(texts, tokenizer, max_len=int(max_len))
        if is_folder_spec(spec):
            return load_folder(spec, input_shape=input_shape, seed=seed)
        return _load_splits(spec, data_dir=data_dir, target=target, sensitive=sensitive, seed=seed, encoder=encoder)
    except DataError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, MemoryError, RecursionError, EOFError) as err:
        # the boundary where untrusted files meet numpy/pandas/torchvision: what they raise is the file's fault, said in one line
        first = (str(err).strip().splitlines() or [""])[0][:200]
        raise DataError(
            f"data {str(spec)!r} could not be read: {type(err).__name__}: {first}; check that it is the file or dataset you meant"
        ) from err


def _load_splits(
    spec: str | Path,
    *,
    data_dir: str | Path | None,
    target: str | None,
    sensitive: str | Sequence[str] | None,
    seed: int,
    encoder: dict[str, Any] | None,
) -> Splits:
    sens = _as_list(sensitive)
    name = str(spec).strip()
    key = name.lower()
    if key == "digits":
        return load_digits(seed=seed)
    if key in ("mnist", "fashion-mnist"):
        return load_mnist(key, data_dir=data_dir)
    if key in ("cifar10", "cifar100", "cifar-10", "cifar-100"):
        return load_cifar(key.replace("-", ""), data_dir=data_dir)
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
    raise DataError(
        f"unknown dataset {name!r}; use one of {', '.join(DATASETS)}, folder:DIR (one sub-folder of images per class), "
        "or a .npz or .csv file"
    )


def sample_shape(spec: str | Path, *, data_dir: str | Path | None = None) -> tuple[int, ...] | None:
    """The shape of one sample of ``spec`` without loading it (named image datasets, ``.npz`` headers), else None.

    What a foreign model whose card gives no input shape is taken to accept.
    """
    from .images import npz_sample_shape

    key = str(spec).strip().lower()
    if key in SHAPES:
        return SHAPES[key]
    if key.endswith(".npz") and Path(str(spec)).is_file():
        return npz_sample_shape(Path(str(spec)))
    return None


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
    data = getattr(
        load_splits(spec, data_dir=data_dir, target=target, sensitive=sensitive, seed=seed, encoder=encoder), split
    )
    if limit is not None:
        if limit < 1:
            raise DataError(f"limit must be at least 1, got {limit}")
        data = data.head(limit)
    return data


# -- which data goes with a model -----------------------------------------------------------------


def same_dataset(card: Any, spec: str | Path | None) -> bool:
    """Whether ``spec`` (a dataset name, a file, or an :class:`AuditData` name) is the dataset on ``card``."""
    if card is None or not getattr(card, "dataset", None) or spec is None:
        return False
    mine, theirs = str(card.dataset), str(spec)
    if mine == theirs:
        return True
    if Path(mine).suffix.lower() in (".npz", ".csv", ".jsonl"):
        return (
            Path(theirs).suffix.lower() == Path(mine).suffix.lower()
            and Path(theirs).resolve() == Path(mine).resolve()
            or theirs == Path(mine).stem
        )
    return False


def for_card(
    card: Any,
    spec: str | Path | None = None,
    *,
    split: str = "test",
    data_dir: str | Path | None = None,
    target: str | None = None,
    sensitive: str | Sequence[str] | None = None,
    seed: int | None = None,
    limit: int | None = None,
    tokenizer: Any = None,
    text_column: str | None = None,
) -> Any:
    """The data that goes with a model card: the one place that decides dataset, split, folder and seed.

    ``spec`` left out means the dataset on the card. When ``spec`` is the card's
    dataset, the card's data folder, split seed and sensitive columns apply
    (arguments given here win); the card's tabular encoder always applies, so new
    data is encoded as the training data was. ``split`` is ``"test"``, ``"train"``,
    ``"both"`` (returns :class:`Splits`), ``"all"`` (every row of a single-table file) or
    ``"audit"``: what an audit command reads, the held-out split of the model's own dataset,
    or every row of any other file (an evaluation set is audited whole, not a quarter of it).
    Every split returned is checked against the model (:func:`dlaudit.data.validate.check_fits`).
    A text model's data is encoded with ``tokenizer`` (its bundle's); a csv given to a text model
    is read as text (``text_column``, default ``text``).
    """
    from ..errors import ConfigError
    from .validate import check_fits

    if split not in ("train", "test", "both", "all", "audit"):
        raise DataError(f"split must be 'train', 'test', 'both', 'all' or 'audit', got {split!r}")
    if spec is None:
        if card is None or not card.dataset:
            example = (
                "synthetic-text, or a .csv/.jsonl file with --text-column COL --target COL"
                if card is not None and tokenizer is not None
                else "digits or a .npz/.csv file"
            )
            raise ConfigError(f"no data given and the model card names no dataset; pass --data (e.g. --data {example})")
        spec = card.dataset
    same = same_dataset(card, spec)
    text_model = card is not None and not card.kind.continuous and tokenizer is not None
    if text_model and text_column is None and str(spec).lower().endswith(".csv"):
        text_column = "text"
    if text_model and not is_text_spec(spec, text_column):
        raise DataError(
            f"this model reads text, but {str(spec)!r} is not text data; give synthetic-text, "
            "or a .csv/.jsonl file with --text-column COL --target COL"
        )
    splits = load_splits(
        spec,
        data_dir=data_dir or (card.data_dir if same else None),
        target=target or (card.target if card is not None else None),
        sensitive=sensitive if sensitive is not None else (card.sensitive if same else None),
        seed=seed if seed is not None else (card.data_seed if same else 0),
        encoder=card.encoder if card is not None and card.encoder else None,
        input_shape=tuple(card.input_shape) if card is not None else None,
        tokenizer=tokenizer,
        text_column=text_column,
    )
    if text_model:
        splits = align_labels(splits, card.class_names)
    if split == "both":
        if card is not None:
            check_fits(card, splits.train)
            check_fits(card, splits.test)
        return splits
    if split == "audit":
        split = "test" if same or splits.whole is None else "all"
    if split == "all":
        if splits.whole is None:
            raise DataError(
                f"data {str(spec)!r} comes as a training and a held-out split; choose split 'test' or 'train'"
            )
        data = splits.whole
    else:
        data = getattr(splits, split)
    if limit is not None:
        if limit < 1:
            raise DataError(f"limit must be at least 1, got {limit}")
        data = data.head(limit)
    if card is not None:
        check_fits(card, data)
    return data
