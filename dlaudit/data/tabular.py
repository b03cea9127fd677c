"""Tabular datasets: csv files, UCI Adult and German Credit, and synthetic-credit.

Raw columns become model inputs through a :class:`TabularEncoder`: numeric
columns are min-max scaled to [0, 1] with the training split's range, categorical
columns are one-hot encoded with the training split's categories. The encoder's
spec is stored on the model card, so a saved model re-encodes new data the same way.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import train_test_split

from ..errors import DataError
from ..paths import check_input
from .core import AuditData, Splits
from .split import stratify_on

__all__ = ["TabularEncoder", "load_csv", "load_adult", "load_german", "load_synthetic_credit", "frame_splits"]

TEST_FRACTION = 0.25


class TabularEncoder:
    """Numeric columns min-max scaled to [0, 1]; categorical columns one-hot.

    Values outside the training range are clipped to [0, 1]; categories unseen in
    training encode as all zeros.
    """

    def __init__(
        self, numeric: list[dict[str, Any]], categorical: list[dict[str, Any]], target: str, classes: list[str]
    ) -> None:
        self.numeric = numeric
        self.categorical = categorical
        self.target = target
        self.classes = [str(c) for c in classes]

    @classmethod
    def fit(cls, frame: pd.DataFrame, target: str, *, positive: str | None = None) -> TabularEncoder:
        features = frame.drop(columns=[target])
        numeric, categorical = [], []
        for col in features.columns:
            series = features[col]
            if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
                cats = sorted(series.dropna().astype(str).unique().tolist())
                categorical.append({"name": str(col), "categories": cats})
            else:
                lo, hi = float(series.min()), float(series.max())
                numeric.append({"name": str(col), "min": lo, "max": hi if hi > lo else lo + 1.0})
        classes = sorted(frame[target].dropna().astype(str).unique().tolist())
        if positive is not None and positive in classes:  # the positive class is index 1
            classes = [c for c in classes if c != positive] + [positive]
        if len(classes) < 2:
            raise DataError(
                f"target column {target!r} holds a single value ({classes}); a classifier needs at least two classes"
            )
        return cls(numeric, categorical, target, classes)

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> TabularEncoder:
        return cls(spec["numeric"], spec["categorical"], spec["target"], spec["classes"])

    def spec(self) -> dict[str, Any]:
        return {
            "numeric": self.numeric,
            "categorical": self.categorical,
            "target": self.target,
            "classes": self.classes,
        }

    @property
    def columns(self) -> list[str]:
        return [c["name"] for c in self.numeric] + [c["name"] for c in self.categorical]

    @property
    def feature_names(self) -> list[str]:
        names = [c["name"] for c in self.numeric]
        for c in self.categorical:
            names += [f"{c['name']}={v}" for v in c["categories"]]
        return names

    @property
    def categorical_indices(self) -> list[list[int]]:
        """For each categorical column, the indices of its one-hot features."""
        out, start = [], len(self.numeric)
        for c in self.categorical:
            out.append(list(range(start, start + len(c["categories"]))))
            start += len(c["categories"])
        return out

    def transform(self, frame: pd.DataFrame, *, name: str = "data") -> torch.Tensor:
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise DataError(
                f"data {name!r} lacks column(s) {', '.join(missing)} that the model was trained on "
                "(its card's encoder names them); audit it on data with the model's columns"
            )
        parts = []
        for c in self.numeric:
            col = pd.to_numeric(frame[c["name"]], errors="coerce").to_numpy(dtype=np.float64)
            if not np.isfinite(col).all():
                raise DataError(
                    f"data {name!r}: column {c['name']!r} has NaN, infinite or non-numeric values; clean or impute them"
                )
            parts.append(np.clip((col - c["min"]) / (c["max"] - c["min"]), 0.0, 1.0)[:, None])
        for c in self.categorical:
            values = frame[c["name"]].astype(str).to_numpy()
            parts.append((values[:, None] == np.asarray(c["categories"], dtype=object)[None, :]).astype(np.float64))
        x = np.concatenate(parts, axis=1) if parts else np.zeros((len(frame), 0))
        return torch.from_numpy(x.astype(np.float32))

    def labels(self, frame: pd.DataFrame, *, name: str = "data") -> torch.Tensor:
        if self.target not in frame.columns:
            raise DataError(
                f"data {name!r} has no column {self.target!r}, the label column the model's card names "
                "(its encoder's target); audit it on data with the model's columns"
            )
        values = frame[self.target].astype(str)
        unknown = sorted(set(values.unique()) - set(self.classes))
        if unknown:
            raise DataError(
                f"data {name!r}: target {self.target!r} holds label(s) {unknown[:5]} outside the classes {self.classes}"
            )
        index = {c: i for i, c in enumerate(self.classes)}
        return torch.tensor(values.map(index).to_numpy(dtype=np.int64))


def _sensitive_frame(frame: pd.DataFrame, sensitive: Sequence[str], *, name: str) -> pd.DataFrame | None:
    if not sensitive:
        return None
    missing = [c for c in sensitive if c not in frame.columns]
    if missing:
        raise DataError(
            f"data {name!r}: unknown sensitive column(s) {', '.join(missing)}; columns are: {', '.join(map(str, frame.columns))}"
        )
    return frame[list(sensitive)].reset_index(drop=True)


def frame_splits(
    train: pd.DataFrame,
    test: pd.DataFrame,
    *,
    target: str,
    sensitive: Sequence[str] = (),
    name: str,
    positive: str | None = None,
    encoder: dict[str, Any] | None = None,
    whole: pd.DataFrame | None = None,
) -> Splits:
    """Encode a train and a test frame (and the ``whole`` table they came from, if given) into :class:`AuditData` splits."""
    if target not in train.columns:
        raise DataError(
            f"data {name!r}: unknown target column {target!r}; columns are: {', '.join(map(str, train.columns))}"
        )
    for part, frame in (("train", train), ("test", test)):
        if len(frame) == 0:
            raise DataError(f"data {name!r}: the {part} split is empty")
        if frame[target].isna().any():
            raise DataError(
                f"data {name!r}: target column {target!r} has missing values in the {part} split; drop those rows"
            )
    enc = TabularEncoder.from_spec(encoder) if encoder else TabularEncoder.fit(train, target, positive=positive)
    out = []
    for split, frame in (("train", train), ("test", test), *((("all", whole),) if whole is not None else ())):
        frame = frame.reset_index(drop=True)
        out.append(
            AuditData(
                enc.transform(frame, name=name),
                enc.labels(frame, name=name),
                name=name,
                modality="tabular",
                class_names=list(enc.classes),
                feature_names=enc.feature_names,
                sensitive=_sensitive_frame(frame, sensitive, name=name),
                raw=frame.drop(columns=[target]),
                encoder=enc.spec(),
                split=split,
                target=target,
            )
        )
    return Splits(*out)


def _split_frame(frame: pd.DataFrame, target: str, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    if len(frame) < MIN_ROWS:
        raise DataError(
            f"the data has {len(frame)} row(s); at least {MIN_ROWS} are needed to split it 75/25 into training and held-out data"
        )
    stratify = stratify_on(frame[target].to_numpy(), TEST_FRACTION)
    return train_test_split(frame, test_size=TEST_FRACTION, random_state=seed, stratify=stratify)


MIN_ROWS = 4
"""The fewest rows a table may have to be split 75/25 into two non-empty parts."""


def _read(path: Path, what: str, **kwargs: Any) -> pd.DataFrame:
    """``pd.read_csv`` whose failures (bad encoding, malformed rows, an empty file) are one-line DataErrors."""
    try:
        return pd.read_csv(path, **kwargs)
    except UnicodeDecodeError as err:
        raise DataError(
            f"{what}: {path} is not UTF-8 text ({err.reason} at byte {err.start}); re-save it as UTF-8"
        ) from err
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, OSError) as err:
        raise DataError(f"{what}: {path} could not be read as a table: {str(err).splitlines()[0][:200]}") from err


def load_csv(
    path: str | Path,
    *,
    target: str | None,
    sensitive: Sequence[str] = (),
    seed: int = 0,
    encoder: dict[str, Any] | None = None,
) -> Splits:
    """A csv file with a header row; ``target`` names the label column.

    Split 75/25, seeded and stratified.
    """
    path = check_input(path, "data file", error=DataError, empty_ok=True)
    if not target:
        raise DataError(f"{path.name}: a csv needs --target COLUMN naming the label column")
    frame = _read(path, "csv", skipinitialspace=True)
    if frame.empty:
        raise DataError(f"{path} has no data rows")
    if target not in frame.columns:
        raise DataError(
            f"{path.name}: unknown target column {target!r}; columns are: {', '.join(map(str, frame.columns))}"
        )
    for col in sensitive:
        if col in frame.columns and frame[col].isna().any():
            raise DataError(f"{path.name}: sensitive column {col!r} has missing values; fill or drop those rows")
    train, test = _split_frame(frame, target, seed)
    return frame_splits(train, test, target=target, sensitive=sensitive, name=path.stem, encoder=encoder, whole=frame)


ADULT_COLUMNS = [
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education-num",
    "marital-status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital-gain",
    "capital-loss",
    "hours-per-week",
    "native-country",
    "income",
]


def _need(path: Path, what: str) -> Path:
    if not os.path.lexists(path):
        raise DataError(f"{what}: {path} not found; pass --data-dir pointing to the folder that holds it")
    return check_input(path, what, error=DataError, empty_ok=True)


def load_adult(
    data_dir: str | Path | None, *, sensitive: Sequence[str] = ("sex", "race"), encoder: dict[str, Any] | None = None
) -> Splits:
    """UCI Adult: ``adult.data`` (train) and ``adult.test`` (test) in ``data_dir``.

    Rows with missing values ('?') are dropped; ``fnlwgt`` (a sampling weight)
    and ``education`` (duplicated by education-num) are not model inputs; the
    label is income >50K (positive class ``">50K"``).
    """
    root = Path(data_dir or ".")
    frames = []
    for fname in ("adult.data", "adult.test"):
        p = _need(root / fname, "adult")
        frame = _read(p, "adult", header=None, names=ADULT_COLUMNS, skipinitialspace=True, na_values="?", comment="|")
        frame = frame.dropna().reset_index(drop=True)
        if len(frame) < MIN_ROWS:
            raise DataError(
                f"adult: {p} has {len(frame)} complete row(s); give the UCI file (at least {MIN_ROWS} rows)"
            )
        frame["income"] = frame["income"].astype(str).str.rstrip(".")
        frames.append(frame.drop(columns=["fnlwgt", "education"]))
    return frame_splits(
        *frames, target="income", sensitive=list(sensitive), name="adult", positive=">50K", encoder=encoder
    )


GERMAN_COLUMNS = [
    "checking",
    "duration",
    "credit_history",
    "purpose",
    "amount",
    "savings",
    "employment",
    "installment_rate",
    "personal_status_sex",
    "other_debtors",
    "residence_since",
    "property",
    "age",
    "other_plans",
    "housing",
    "existing_credits",
    "job",
    "people_liable",
    "telephone",
    "foreign_worker",
    "credit",
]


def load_german(
    data_dir: str | Path | None,
    *,
    sensitive: Sequence[str] = ("sex", "age"),
    seed: int = 0,
    encoder: dict[str, Any] | None = None,
) -> Splits:
    """UCI Statlog German Credit (``german.data``): label good (1) / bad (2) credit.

    Adds ``sex`` derived from attribute 9 (A92, A95 female; A91, A93, A94 male).
    Split 75/25, seeded and stratified.
    """
    p = _need(Path(data_dir or ".") / "german.data", "german")
    frame = _read(p, "german", sep=r"\s+", header=None, names=GERMAN_COLUMNS)
    if not set(frame["credit"].dropna().unique()) <= {1, 2}:
        raise DataError(f"german: {p} is not UCI's german.data (its last column must be 1 = good or 2 = bad)")
    frame["credit"] = frame["credit"].map({1: "good", 2: "bad"})
    frame["sex"] = np.where(frame["personal_status_sex"].isin(["A92", "A95"]), "female", "male")
    train, test = _split_frame(frame, "credit", seed)
    return frame_splits(
        train, test, target="credit", sensitive=list(sensitive), name="german", positive="good", encoder=encoder
    )


def synthetic_credit_frame(n: int = 4000, *, bias: float = 0.2, seed: int = 0) -> pd.DataFrame:
    """Seeded credit data whose label is biased against one group by a known amount.

    Features ``income``, ``debt``, ``age``, ``years_employed`` are drawn from the
    same distributions for both groups of ``sex``, so the true qualification rate
    is the same (0.5) in each. The observed label ``approved`` is the
    qualification, except that a qualified ``female`` applicant is recorded as
    rejected with probability ``2 * bias``. The injected demographic parity
    difference of the labels is therefore ``bias`` (0.5 - 0.5 * (1 - 2 * bias)),
    up to sampling noise. ``bias`` must lie in [0, 0.5].
    """
    if not 0.0 <= bias <= 0.5:
        raise DataError(f"synthetic-credit: bias must be in [0, 0.5], got {bias}")
    rng = np.random.default_rng(seed)
    sex = rng.choice(["female", "male"], size=n)
    income = rng.lognormal(mean=10.5, sigma=0.5, size=n)
    debt = rng.gamma(shape=2.0, scale=5000.0, size=n)
    age = rng.integers(18, 75, size=n)
    years = np.minimum(rng.exponential(6.0, size=n), age - 17)
    score = np.log(income) - 10.5 - 0.00004 * (debt - 10000) + 0.03 * (years - 6) + rng.normal(0, 0.15, size=n)
    qualified = score > np.median(score)
    flipped = (sex == "female") & qualified & (rng.random(n) < 2 * bias)
    approved = np.where(qualified & ~flipped, "yes", "no")
    return pd.DataFrame(
        {
            "income": income.round(2),
            "debt": debt.round(2),
            "age": age,
            "years_employed": years.round(2),
            "sex": sex,
            "approved": approved,
        }
    )


def load_synthetic_credit(
    *,
    n: int = 4000,
    bias: float = 0.2,
    seed: int = 0,
    sensitive: Sequence[str] = ("sex",),
    encoder: dict[str, Any] | None = None,
) -> Splits:
    """:func:`synthetic_credit_frame`, split 75/25 (seeded, stratified)."""
    frame = synthetic_credit_frame(n, bias=bias, seed=seed)
    train, test = _split_frame(frame, "approved", seed)
    return frame_splits(
        train,
        test,
        target="approved",
        sensitive=list(sensitive),
        name="synthetic-credit",
        positive="yes",
        encoder=encoder,
    )
