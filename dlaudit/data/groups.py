"""Sensitive features as group labels: found, checked, binned, intersected.

A sensitive feature is looked up in ``AuditData.sensitive`` first, then in the raw
tabular columns (``AuditData.raw``). Whatever makes it unusable (the column is
missing, holds a single value, or has missing values) is recorded as the reason
it is undefined, never silently dropped or read as zero. A continuous feature
(numeric with more than :data:`MAX_CATEGORIES` distinct values, e.g. ``age``) is
binned with stated edges; the edges and the resulting groups are written in
:attr:`SensitiveFeature.note`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..parsing import split_list
from .core import AuditData

__all__ = [
    "SensitiveFeature",
    "DEFAULT_BINS",
    "MAX_CATEGORIES",
    "MIN_GROUP_SIZE",
    "INTERSECTION_SEP",
    "resolve_sensitive",
    "sensitive_feature",
    "bin_labels",
    "bin_values",
    "intersect",
    "metric_key",
    "pool_small_groups",
    "POOLED",
]

DEFAULT_BINS: dict[str, tuple[float, ...]] = {"age": (25.0, 60.0)}
"""Bin edges used when none are given: age under 25, 25 to 60, 60 and over."""

MIN_GROUP_SIZE = 30
"""Groups smaller than this are shown but not judged (their rates are too noisy): every section uses it."""

MAX_CATEGORIES = 10
"""A numeric feature with more distinct values than this is treated as continuous and binned."""

INTERSECTION_SEP = "&"

POOLED = "small_groups_pooled"
"""The label of the group that pools an intersection's groups under the minimum size."""

_UNSAFE = re.compile(r"[\s<>=]+")


def metric_key(label: str) -> str:
    """A group or feature label made safe for a metric name (no spaces, no ``<``, ``>`` or ``=``)."""
    return _UNSAFE.sub("_", str(label)).strip("_") or "_"


@dataclass(frozen=True)
class SensitiveFeature:
    """One sensitive feature as a group label per sample.

    ``groups`` is None when the feature cannot be used; ``reason`` then says why.
    """

    name: str
    groups: pd.Series | None
    reason: str = ""
    note: str = ""
    edges: tuple[float, ...] | None = None

    @property
    def defined(self) -> bool:
        return self.groups is not None

    @property
    def levels(self) -> list[str]:
        """The groups in a stable order (bins in order, categories sorted)."""
        if self.groups is None:
            return []
        if isinstance(self.groups.dtype, pd.CategoricalDtype):
            present = set(self.groups.unique())
            return [str(c) for c in self.groups.cat.categories if c in present]
        return sorted(str(v) for v in self.groups.unique())


def bin_labels(edges: Sequence[float]) -> list[str]:
    """Labels of the bins cut by ``edges``: ``under_25``, ``25_to_60``, ``60_and_over``."""
    e = [f"{v:g}" for v in edges]
    return [f"under_{e[0]}"] + [f"{a}_to_{b}" for a, b in zip(e[:-1], e[1:])] + [f"{e[-1]}_and_over"]


def bin_values(values: pd.Series, edges: Sequence[float]) -> pd.Series:
    """Bin numbers into ``[-inf, e0), [e0, e1), ..., [ek, inf)`` with :func:`bin_labels`."""
    edges = [float(v) for v in edges]
    if not edges or any(b <= a for a, b in zip(edges[:-1], edges[1:])):
        raise ConfigError(f"bin edges must be one or more increasing numbers, got {list(edges)}")
    codes = np.searchsorted(np.asarray(edges), values.to_numpy(dtype=np.float64), side="right")
    labels = bin_labels(edges)
    return pd.Series(pd.Categorical.from_codes(codes, categories=labels), index=values.index)


def _quartile_edges(values: pd.Series) -> tuple[float, ...]:
    qs = np.unique(np.round(np.quantile(values.to_numpy(dtype=np.float64), [0.25, 0.5, 0.75]), 6))
    return tuple(float(q) for q in qs)


def _is_continuous(values: pd.Series) -> bool:
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    return bool(numeric and values.nunique() > MAX_CATEGORIES)


def _lookup(data: AuditData, name: str) -> pd.Series | None:
    for frame in (data.sensitive, data.raw):
        if frame is not None and name in frame.columns:
            return frame[name].reset_index(drop=True)
    return None


def _available(data: AuditData) -> list[str]:
    cols: list[str] = []
    for frame in (data.sensitive, data.raw):
        if frame is not None:
            cols += [str(c) for c in frame.columns if str(c) not in cols]
    return cols


def sensitive_feature(
    name: str, values: pd.Series | None, *, edges: Sequence[float] | None = None, available: Sequence[str] = ()
) -> SensitiveFeature:
    """Turn one column of raw values into a :class:`SensitiveFeature` (or say why it cannot be one)."""
    if values is None:
        cols = ", ".join(available) if available else "none"
        return SensitiveFeature(
            name,
            None,
            reason=f"column {name!r} is not in the data (columns: {cols}); pass an existing column to --sensitive",
        )
    missing = int(values.isna().sum())
    if missing:
        return SensitiveFeature(
            name,
            None,
            reason=f"column {name!r} has {missing} missing value(s) (NaN) of {len(values)}; fill or drop those rows to judge fairness over it",
        )
    note, used_edges = "", None
    if edges is not None or _is_continuous(values):
        if not (pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)):
            raise ConfigError(f"bin edges were given for {name!r}, but it is not numeric")
        stated = edges if edges is not None else DEFAULT_BINS.get(name)
        used_edges = tuple(float(v) for v in (stated if stated is not None else _quartile_edges(values)))
        source = "given" if edges is not None else ("default" if name in DEFAULT_BINS else "quartile")
        groups = bin_values(values, used_edges)
        labels = bin_labels(used_edges)
        note = f"{name} is continuous; binned with {source} edges {', '.join(f'{e:g}' for e in used_edges)} into {', '.join(labels)} (each bin includes its lower edge)"
    else:
        groups = values.astype(str)
    if groups.nunique() < 2:
        only = str(groups.iloc[0])
        return SensitiveFeature(
            name,
            None,
            reason=f"column {name!r} holds a single value ({only!r}) in these {len(values)} samples; there are no groups to compare",
            note=note,
            edges=used_edges,
        )
    return SensitiveFeature(name, groups.rename(name), note=note, edges=used_edges)


def intersect(features: Sequence[SensitiveFeature]) -> SensitiveFeature:
    """The intersection of defined features, e.g. ``sex&race`` with groups ``Female&White``."""
    name = INTERSECTION_SEP.join(f.name for f in features)
    undefined = [f for f in features if not f.defined]
    if len(features) < 2:
        return SensitiveFeature(name, None, reason="an intersection needs at least two sensitive features")
    if undefined:
        return SensitiveFeature(
            name,
            None,
            reason=f"the intersection needs every feature defined; {', '.join(f.name for f in undefined)} is not",
        )
    combined = features[0].groups.astype(str)
    for f in features[1:]:
        combined = combined + INTERSECTION_SEP + f.groups.astype(str)
    return SensitiveFeature(name, combined.rename(name), note="; ".join(f.note for f in features if f.note))


def pool_small_groups(feature: SensitiveFeature, min_size: int) -> SensitiveFeature:
    """The feature with its groups under ``min_size`` rows pooled into one group, :data:`POOLED`, named in the note.

    Used for intersections, where ``Female&Amer-Indian-Eskimo`` may hold a dozen
    rows: pooled, they are judged together rather than each left out. With fewer
    than two small groups nothing changes (a pool of one is the group itself).
    """
    if feature.groups is None:
        return feature
    counts = feature.groups.astype(str).value_counts()
    small = sorted(str(g) for g in counts.index[counts < min_size])
    if len(small) < 2:
        return feature
    values = feature.groups.astype(str)
    pooled = values.where(~values.isin(small), POOLED)
    listed = ", ".join(f"{g} (n={int(counts[g])})" for g in small)
    note = f"{feature.name}: {len(small)} groups under {min_size} rows pooled into {POOLED!r}: {listed}"
    return SensitiveFeature(
        feature.name,
        pooled.rename(feature.name),
        note="; ".join(filter(None, [feature.note, note])),
        edges=feature.edges,
    )


def resolve_sensitive(
    data: AuditData,
    names: str | Sequence[str] | None = None,
    *,
    bins: Mapping[str, Sequence[float]] | None = None,
    intersection: bool | None = None,
) -> list[SensitiveFeature]:
    """The sensitive features to judge: ``names`` (default: the columns of ``data.sensitive``).

    Returns one :class:`SensitiveFeature` per name (undefined ones carry their
    reason), plus their intersection when ``intersection`` is true, or is None (the default) and two or
    more features were named.
    """
    if isinstance(names, str):
        names = split_list(names)
    if names is None:
        names = [] if data.sensitive is None else [str(c) for c in data.sensitive.columns]
    bins = dict(bins or {})
    available = _available(data)
    features = [sensitive_feature(n, _lookup(data, n), edges=bins.get(n), available=available) for n in names]
    if intersection is None:
        intersection = len(features) >= 2
    if intersection and len(features) >= 2:
        features.append(intersect(features))
    return features
