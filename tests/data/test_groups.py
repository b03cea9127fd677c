"""Sensitive features: lookup, binning with stated edges, undefined reasons, intersections."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from dlaudit.data import AuditData
from dlaudit.data.groups import bin_labels, bin_values, intersect, metric_key, resolve_sensitive, sensitive_feature
from dlaudit.errors import ConfigError


def _data(sensitive: pd.DataFrame | None, raw: pd.DataFrame | None = None) -> AuditData:
    n = len(sensitive if sensitive is not None else raw)
    return AuditData(
        torch.zeros(n, 2), torch.zeros(n, dtype=torch.long), name="t", modality="tabular", sensitive=sensitive, raw=raw
    )


def test_bin_labels_and_edges_include_the_lower_edge():
    assert bin_labels([25, 60]) == ["under_25", "25_to_60", "60_and_over"]
    binned = bin_values(pd.Series([18, 24.9, 25, 59, 60, 90]), [25, 60])
    assert binned.astype(str).tolist() == ["under_25", "under_25", "25_to_60", "25_to_60", "60_and_over", "60_and_over"]


def test_bad_edges_are_a_config_error():
    with pytest.raises(ConfigError, match="increasing"):
        bin_values(pd.Series([1.0]), [60, 25])


def test_age_is_binned_with_the_default_edges_and_says_so():
    f = sensitive_feature("age", pd.Series(np.arange(18, 80)))
    assert f.defined and f.edges == (25.0, 60.0)
    assert f.levels == ["under_25", "25_to_60", "60_and_over"]
    assert "default edges 25, 60" in f.note


def test_other_continuous_features_get_stated_quartile_edges():
    f = sensitive_feature("income", pd.Series(np.linspace(0, 100, 101)))
    assert f.edges == (25.0, 50.0, 75.0)
    assert "quartile edges 25, 50, 75" in f.note


def test_given_edges_win_and_few_valued_numbers_stay_categories():
    f = sensitive_feature("age", pd.Series(np.arange(18, 80)), edges=[40])
    assert f.edges == (40.0,) and "given edges 40" in f.note
    g = sensitive_feature("flag", pd.Series([0, 1, 1, 0]))
    assert g.edges is None and g.levels == ["0", "1"]


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        (pd.Series(["a", "a", "a"]), "holds a single value ('a')"),
        (pd.Series(["a", None, "b"]), "1 missing value(s) (NaN) of 3"),
        (pd.Series([1.0, np.nan, 2.0]), "1 missing value(s) (NaN) of 3"),
        (None, "column 'x' is not in the data (columns: sex, age)"),
    ],
)
def test_unusable_features_are_undefined_with_the_reason(values, reason):
    f = sensitive_feature("x", values, available=["sex", "age"])
    assert not f.defined and f.groups is None
    assert reason in f.reason


def test_lookup_prefers_sensitive_then_raw():
    sens = pd.DataFrame({"sex": ["F", "M", "F"]})
    raw = pd.DataFrame({"sex": ["x", "y", "z"], "race": ["a", "b", "a"]})
    feats = resolve_sensitive(_data(sens, raw), "sex,race,zip")
    assert feats[0].groups.tolist() == ["F", "M", "F"]
    assert feats[1].groups.tolist() == ["a", "b", "a"]
    assert not feats[2].defined and "columns: sex, race" in feats[2].reason


def test_default_features_are_the_sensitive_columns():
    sens = pd.DataFrame({"sex": ["F", "M"], "race": ["a", "b"]})
    assert [f.name for f in resolve_sensitive(_data(sens))] == [
        "sex",
        "race",
        "sex&race",
    ]  # two: their intersection too
    assert [f.name for f in resolve_sensitive(_data(sens), intersection=False)] == ["sex", "race"]
    assert [f.name for f in resolve_sensitive(_data(sens), ["sex"])] == ["sex"]
    assert resolve_sensitive(_data(None, pd.DataFrame({"c": [1, 2]}))) == []


def test_intersection():
    sens = pd.DataFrame({"sex": ["F", "M", "F"], "race": ["a", "a", "b"]})
    feats = resolve_sensitive(_data(sens), ["sex", "race"], intersection=True)
    assert feats[-1].name == "sex&race"
    assert feats[-1].groups.tolist() == ["F&a", "M&a", "F&b"]
    broken = intersect([feats[0], sensitive_feature("zip", None)])
    assert not broken.defined and "zip" in broken.reason


def test_metric_key_is_gate_safe():
    assert metric_key("Some college") == "Some_college"
    assert metric_key("<=50K") == "50K"
    assert metric_key("Amer-Indian-Eskimo") == "Amer-Indian-Eskimo"
