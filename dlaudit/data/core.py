"""AuditData: the inputs, labels and metadata an analysis runs on."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..errors import DataError
from ..modalities import Modality, get_modality

__all__ = ["AuditData", "Splits", "check_array"]


@dataclass
class AuditData:
    """Inputs ``x`` (float tensor), labels ``y`` (long tensor) and what describes them.

    ``sensitive`` holds one row per sample with the raw values of the sensitive
    features (e.g. ``sex``, ``age``); ``raw`` the raw tabular columns before
    encoding; ``encoder`` the :class:`TabularEncoder` spec that produced ``x``.
    """

    x: torch.Tensor
    y: torch.Tensor
    name: str
    modality: str = "image"
    value_range: tuple[float, float] = (0.0, 1.0)
    class_names: list[str] | None = None
    feature_names: list[str] | None = None
    sensitive: pd.DataFrame | None = None
    raw: pd.DataFrame | None = None
    encoder: dict[str, Any] | None = None
    split: str = "test"
    target: str | None = None
    notes: list[str] = field(default_factory=list)
    texts: list[str] | None = None
    """Text data: the raw texts, one per sample (``x`` then holds their token ids, right-padded)."""

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise DataError(f"data {self.name!r}: {len(self.x)} inputs but {len(self.y)} labels")
        if len(self.x) == 0:
            raise DataError(f"data {self.name!r} ({self.split}) is empty: no samples to audit")
        if self.sensitive is not None and len(self.sensitive) != len(self.x):
            raise DataError(
                f"data {self.name!r}: {len(self.sensitive)} rows of sensitive features for {len(self.x)} samples"
            )
        if self.texts is not None and len(self.texts) != len(self.x):
            raise DataError(f"data {self.name!r}: {len(self.texts)} texts for {len(self.x)} samples")

    def __len__(self) -> int:
        return len(self.x)

    @property
    def num_classes(self) -> int:
        return len(self.class_names) if self.class_names else int(self.y.max()) + 1

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    @property
    def kind(self) -> Modality:
        """The registered :class:`~dlaudit.modalities.Modality` named by ``modality``, which analyses query."""
        return get_modality(self.modality)

    def subset(self, index: Any) -> AuditData:
        """The samples at ``index`` (a slice, index array or boolean mask)."""
        idx = torch.as_tensor(np.arange(len(self))[index] if isinstance(index, slice) else index)
        if idx.dtype == torch.bool:
            idx = idx.nonzero().flatten()
        rows = idx.cpu().numpy()
        return replace(
            self,
            x=self.x[idx],
            y=self.y[idx],
            sensitive=None if self.sensitive is None else self.sensitive.iloc[rows].reset_index(drop=True),
            raw=None if self.raw is None else self.raw.iloc[rows].reset_index(drop=True),
            notes=list(self.notes),
            texts=None if self.texts is None else [self.texts[int(i)] for i in rows],
        )

    def head(self, n: int) -> AuditData:
        return self if n >= len(self) else self.subset(slice(0, n))


@dataclass
class Splits:
    """A dataset's training and held-out parts, and for a single-table file (an ``.npz`` with ``x``/``y``,
    a csv, a ``folder:`` of class folders) every row of it as ``whole`` (split ``"all"``), which an
    audit of a file that is not the model's own training data uses."""

    train: AuditData
    test: AuditData
    whole: AuditData | None = None


def check_array(x: np.ndarray, *, name: str) -> None:
    """NaN, inf and emptiness checks shared by every loader."""
    if x.size == 0:
        raise DataError(f"data {name!r} is empty")
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).sum())
        raise DataError(f"data {name!r} has {bad} NaN or infinite value(s); clean or impute them before auditing")
