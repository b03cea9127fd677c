"""Kamiran-Calders reweighing: exact weights and the independence they create."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlaudit.errors import ConfigError
from dlaudit.fairness.reweigh import reweighing_weights


def test_hand_checked_weights():
    # n=4; P(a)=3/4, P(b)=1/4, P(y=1)=1/2: w(a,1)=3/4*1/2/(2/4), w(a,0)=3/4*1/2/(1/4), w(b,0)=1/4*1/2/(1/4)
    assert reweighing_weights(["a", "a", "a", "b"], [1, 1, 0, 0]).tolist() == [0.75, 0.75, 1.5, 0.5]


def test_independent_data_gets_unit_weights():
    assert reweighing_weights(["a", "b", "a", "b"], [0, 0, 1, 1]).tolist() == [1.0, 1.0, 1.0, 1.0]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 2)), min_size=1, max_size=80))
def test_weighted_label_rates_are_equal_across_groups(pairs):
    groups = np.array([g for g, _ in pairs])
    y = np.array([label for _, label in pairs])
    w = reweighing_weights(groups, y)
    assert np.all(w > 0)
    for g in np.unique(groups):
        mask = groups == g
        full = all(((groups == g) & (y == c)).any() for c in np.unique(y))
        if not full:
            continue  # an empty (group, label) cell cannot be weighted up
        for c in np.unique(y):
            weighted = w[mask & (y == c)].sum() / w[mask].sum()
            assert weighted == pytest.approx((y == c).mean())


def test_length_mismatch_is_a_config_error():
    with pytest.raises(ConfigError, match="2 group labels for 3 samples"):
        reweighing_weights(["a", "b"], [0, 1, 1])
