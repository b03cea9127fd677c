"""Weak-segment discovery: hand-computed statistics, a planted segment found, none found without one."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from dlaudit.errors import ConfigError
from dlaudit.fairness.segments import benjamini_hochberg, find_weak_segments, newcombe_difference


def test_newcombe_interval_matches_the_paper():
    # Newcombe 1998, Table II, example (a): 56/70 against 48/80, method 10: 0.0524 to 0.3339
    d, lo, hi = newcombe_difference(np.array([56]), np.array([70]), np.array([48]), np.array([80]))
    assert d[0] == pytest.approx(0.2)
    assert lo[0] == pytest.approx(0.0524, abs=5e-5) and hi[0] == pytest.approx(0.3339, abs=5e-5)


def test_benjamini_hochberg_by_hand():
    # sorted 0.005, 0.01, 0.03, 0.04 -> p * 4 / rank = 0.02, 0.02, 0.04, 0.04
    q = benjamini_hochberg(np.array([0.01, 0.04, 0.03, 0.005]))
    assert q == pytest.approx([0.02, 0.04, 0.04, 0.02])


def _planted(n: int = 2000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Two columns; the model is right on every row but half of the rows where a = x and b = p."""
    rng = np.random.default_rng(seed)
    a = rng.choice(["x", "y", "z"], size=n)
    b = rng.choice(["p", "q"], size=n)
    correct = np.ones(n, dtype=bool)
    weak = np.flatnonzero((a == "x") & (b == "p"))
    correct[weak[::2]] = False
    return pd.DataFrame({"a": a, "b": b}), correct


def test_planted_segment_is_found_with_hand_computed_numbers():
    table, correct = _planted()
    r = find_weak_segments(table, correct, min_support=30)
    weak = (table["a"] == "x") & (table["b"] == "p")
    n_seg, k_seg = int(weak.sum()), int(correct[weak].sum())
    n_rest, k_rest = len(table) - n_seg, int(correct[~weak].sum())
    top = r.worst("accuracy")
    assert top is not None and top.description == "a = x and b = p" and top.columns == ("a", "b")
    assert (top.n, top.value, top.rest) == (n_seg, k_seg / n_seg, k_rest / n_rest)
    pooled = (k_seg + k_rest) / (n_seg + n_rest)
    z = (k_rest / n_rest - k_seg / n_seg) / math.sqrt(pooled * (1 - pooled) * (1 / n_seg + 1 / n_rest))
    assert top.p_value == pytest.approx(0.5 * math.erfc(z / math.sqrt(2)), rel=1e-9)
    assert top.ci[0] < top.gap < top.ci[1] and top.gap == pytest.approx(1 - k_seg / n_seg)
    # its parents a = x and b = p are worse than the rest too, but the pair is surely worse than both
    listed = [s.description for s in r.segments]
    assert listed.index("a = x and b = p") == 0
    # every segment was tested: 3 + 2 single levels and 6 pairs, each with at least 30 rows
    assert r.n_tested == 11 and r.n_significant >= 1
    assert (
        top.sentence()
        == f"a = x and b = p: accuracy {k_seg / n_seg:.0%} against {k_rest / n_rest:.0%} elsewhere, {n_seg} rows"
    )


def test_numeric_columns_are_binned_by_quantiles_and_named_by_their_range():
    n = 1000
    age = np.arange(n) % 50 + 20  # 20..69, evenly
    correct = age < 60
    r = find_weak_segments(pd.DataFrame({"age": age}), correct, n_bins=5, pairs=False)
    top = r.worst("accuracy")
    assert top.description == "age 60-69" and top.value == 0.0 and top.n == 200
    assert r.notes == ["age: 5 bins of about equal size: 20-29, 30-39, 40-49, 50-59, 60-69"]


def test_selection_rate_segment_carries_the_base_rate():
    n = 1200
    g = np.array(["a", "b", "c"] * (n // 3))
    truth = np.arange(n) % 2 == 0
    pred = truth & (g != "c")  # c never selected
    r = find_weak_segments(
        pd.DataFrame({"g": g}), pred == truth, predicted_positive=pred, actual_positive=truth, pairs=False
    )
    top = r.worst("selection_rate")
    assert top.description == "g = c" and top.value == 0.0 and top.rest == pytest.approx(0.5)
    assert top.base_rate == pytest.approx(0.5) and "true positive share 50% against 50%" in top.sentence()


def test_no_segment_found_where_there_is_none():
    """Correct answers independent of every column: BH keeps false discoveries rare (20 data sets)."""
    hits = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        n = 2000
        table = pd.DataFrame(
            {
                "num": rng.normal(size=n),
                "cat": rng.choice(list("abcdef"), size=n),
                "bin": rng.choice(["u", "v"], size=n),
            }
        )
        r = find_weak_segments(table, rng.random(n) < 0.85, predicted_positive=rng.random(n) < 0.3)
        assert r.n_tested > 100
        hits += r.n_significant > 0
    # under the global null BH at 0.05 errs in at most 5% of data sets (in expectation): 1 of 20
    assert hits <= 3


def test_bad_input_is_one_clear_error():
    table, correct = _planted(200)
    with pytest.raises(ConfigError, match="one value per row"):
        find_weak_segments(table, correct[:-1])
    with pytest.raises(ConfigError, match="false discovery rate must be between 0 and 1"):
        find_weak_segments(table, correct, fdr=1.5)
    with pytest.raises(ConfigError, match="segment bins must be a whole number >= 2"):
        find_weak_segments(table, correct, n_bins=1)


def test_high_cardinality_columns_stay_cheap():
    """An ID column has no level with enough rows; two of them paired count only the cells present."""
    n = 3000
    rng = np.random.default_rng(0)
    ids = pd.DataFrame(
        {"id": [f"u{i}" for i in range(n)], "other": rng.permutation(n).astype(str), "g": np.arange(n) % 2}
    )
    correct = rng.random(n) < 0.8
    r = find_weak_segments(ids, correct)
    assert r.columns == ["g"] and r.n_tested == 2  # id and other: every level under 50 rows
    r1 = find_weak_segments(ids[["id", "other"]], correct, min_support=1)  # 3000 x 3000 pair cells: 3000 present
    assert r1.n_tested == 3 * n


def test_missing_values_are_a_level_of_their_own():
    n = 600
    x = pd.Series(np.arange(n, dtype=float))
    x[:100] = np.nan
    flag = pd.Series(["yes", None] * (n // 2))
    correct = np.ones(n, dtype=bool)
    correct[:100:2] = False  # half of the rows where x is missing are wrong
    r = find_weak_segments(pd.DataFrame({"x": x, "flag": flag}), correct, pairs=False)
    assert r.worst("accuracy").description == "x missing" and r.worst("accuracy").n == 100
    assert r.n_tested == 6 + 2  # x: 5 bins and missing; flag: yes and missing
