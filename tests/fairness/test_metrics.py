"""Group metrics: exact answers on hand-built predictions, agreement with fairlearn, the bootstrap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    demographic_parity_difference,
    demographic_parity_ratio,
    equal_opportunity_difference,
    equalized_odds_difference,
    equalized_odds_ratio,
)
from sklearn.metrics import confusion_matrix

import dlaudit
from dlaudit.data.groups import sensitive_feature
from dlaudit.errors import ConfigError
from dlaudit.fairness.metrics import _bootstrap_confusions, group_fairness, rates_from_confusion


def _value(result, name):
    return next(m for m in result.metrics if m.name == name)


def _hand_case():
    # group a (40): 20 positives, 10 predicted positive and right, 30 correct; group b (40): 10 positives, all caught, 10 false positives
    yt = np.array([1] * 20 + [0] * 20 + [1] * 10 + [0] * 30)
    yp = np.array([1] * 10 + [0] * 10 + [0] * 20 + [1] * 10 + [1] * 10 + [0] * 20)
    groups = pd.Series(["a"] * 40 + ["b"] * 40)
    return yt, yp, groups


def test_exact_answers_on_a_hand_built_case():
    yt, yp, groups = _hand_case()
    r = group_fairness(yt, yp, [sensitive_feature("g", groups)], n_boot=0)
    t = r.feature("g").by_group
    # a: selection 10/40, TPR 10/20, FPR 0/20, accuracy 30/40; b: selection 20/40, TPR 10/10, FPR 10/30, accuracy 30/40
    assert t.loc["a", ["selection_rate", "tpr", "fpr", "accuracy"]].tolist() == [0.25, 0.5, 0.0, 0.75]
    assert t.loc["b", ["selection_rate", "tpr", "fpr", "accuracy"]].tolist() == pytest.approx([0.5, 1.0, 1 / 3, 0.75])
    assert _value(r, "fairness.g.demographic_parity_difference").value == pytest.approx(0.25)
    assert _value(r, "fairness.g.demographic_parity_ratio").value == pytest.approx(0.5)
    assert _value(r, "fairness.g.equalized_odds_difference").value == pytest.approx(0.5)
    assert _value(r, "fairness.g.equalized_odds_ratio").value == pytest.approx(0.0)
    assert _value(r, "fairness.g.equal_opportunity_difference").value == pytest.approx(0.5)
    assert _value(r, "fairness.g.accuracy_gap").value == pytest.approx(0.0)
    assert _value(r, "fairness.g.selection_rate@a").value == pytest.approx(0.25)
    assert _value(r, "fairness.g.accuracy@b").value == pytest.approx(0.75)
    assert _value(r, "fairness.g.demographic_parity_difference").ci is None  # n_boot=0: no interval


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_fairlearn(seed):
    rng = np.random.default_rng(seed)
    n = 3000
    groups = pd.Series(rng.choice(["w", "x", "y"], size=n, p=[0.6, 0.3, 0.1]))
    yt = rng.integers(0, 2, size=n)
    yp = np.where(rng.random(n) < 0.8, yt, 1 - yt)
    r = group_fairness(yt, yp, [sensitive_feature("g", groups)], n_boot=0)
    kw = {"sensitive_features": groups}
    assert _value(r, "fairness.g.demographic_parity_difference").value == pytest.approx(
        demographic_parity_difference(yt, yp, **kw)
    )
    assert _value(r, "fairness.g.demographic_parity_ratio").value == pytest.approx(
        demographic_parity_ratio(yt, yp, **kw)
    )
    assert _value(r, "fairness.g.equalized_odds_difference").value == pytest.approx(
        equalized_odds_difference(yt, yp, **kw)
    )
    assert _value(r, "fairness.g.equalized_odds_ratio").value == pytest.approx(equalized_odds_ratio(yt, yp, **kw))
    assert _value(r, "fairness.g.equal_opportunity_difference").value == pytest.approx(
        equal_opportunity_difference(yt, yp, **kw)
    )


def test_vectorised_bootstrap_counts_equal_a_per_resample_recount():
    rng = np.random.default_rng(5)
    n, k = 200, 3
    yt, yp = rng.integers(0, k, n), rng.integers(0, k, n)
    codes = rng.integers(0, 2, n)
    keys = (codes * k + yt) * k + yp
    boot = _bootstrap_confusions([keys], [2 * k * k], 4, 11, None)[0].reshape(4, 2, k, k)
    idx = np.random.default_rng(11).integers(0, n, size=(4, n), dtype=np.int32)
    for b in range(4):
        for g in range(2):
            sel = idx[b][codes[idx[b]] == g]
            np.testing.assert_array_equal(boot[b, g], confusion_matrix(yt[sel], yp[sel], labels=range(k)))


def test_intervals_are_seeded_and_bracket_the_estimate():
    yt, yp, groups = _hand_case()
    feats = [sensitive_feature("g", groups)]
    a = group_fairness(yt, yp, feats, n_boot=300, seed=3)
    b = group_fairness(yt, yp, feats, n_boot=300, seed=3)
    c = group_fairness(yt, yp, feats, n_boot=300, seed=4)
    m = _value(a, "fairness.g.demographic_parity_ratio")  # a ratio keeps the percentile bootstrap
    assert m.ci == _value(b, "fairness.g.demographic_parity_ratio").ci
    assert m.ci != _value(c, "fairness.g.demographic_parity_ratio").ci
    assert m.ci[0] < m.value < m.ci[1]
    # two groups: the difference gets Newcombe's closed form, the same for every seed
    d = _value(a, "fairness.g.demographic_parity_difference")
    assert d.ci == _value(c, "fairness.g.demographic_parity_difference").ci and d.ci[0] < d.value < d.ci[1]


def test_a_group_without_positives_has_undefined_tpr_not_zero():
    rng = np.random.default_rng(0)
    groups = pd.Series(["a"] * 50 + ["b"] * 50 + ["c"] * 50)
    yt = np.concatenate([rng.integers(0, 2, 50), rng.integers(0, 2, 50), np.zeros(50, dtype=int)])
    yp = rng.integers(0, 2, 150)
    r = group_fairness(yt, yp, [sensitive_feature("g", groups)], n_boot=50)
    t = r.feature("g").by_group
    assert np.isnan(t.loc["c", "tpr"]) and np.isnan(t.loc["c", "fnr"]) and not np.isnan(t.loc["c", "fpr"])
    eod = _value(r, "fairness.g.equalized_odds_difference")
    assert eod.value is not None
    assert "TPR undefined for 'c' (no positives)" in eod.note
    ab = t.loc[["a", "b"]]
    assert eod.value == pytest.approx(max(np.ptp(ab["tpr"]), np.ptp(t["fpr"])))


def test_small_groups_are_flagged_and_left_out_of_the_gaps():
    groups = pd.Series(["a"] * 40 + ["b"] * 40 + ["tiny"] * 5)
    yt = np.array([1, 0] * 20 + [1, 0] * 20 + [1] * 5)
    yp = np.array([1, 0] * 20 + [0, 0] * 20 + [1] * 5)
    r = group_fairness(yt, yp, [sensitive_feature("g", groups)], n_boot=0, min_group_size=30)
    f = r.feature("g")
    assert f.too_small == ["tiny"]
    dpd = _value(r, "fairness.g.demographic_parity_difference")
    assert dpd.value == pytest.approx(0.5)  # a: 0.5, b: 0.0; tiny (1.0) not judged
    assert "too small to judge: tiny" in dpd.note
    assert "too small to judge (n=5 < 30)" in _value(r, "fairness.g.selection_rate@tiny").note


def test_fewer_than_two_judged_groups_is_undefined():
    groups = pd.Series(["a"] * 40 + ["b"] * 10)
    r = group_fairness(np.zeros(50, dtype=int), np.zeros(50, dtype=int), [sensitive_feature("g", groups)], n_boot=20)
    m = _value(r, "fairness.g.demographic_parity_difference")
    assert m.value is None and "fewer than two groups have at least 30 samples (counts: a=40, b=10)" in m.note


def test_zero_selection_everywhere_makes_the_ratio_undefined_not_one():
    groups = pd.Series(["a"] * 40 + ["b"] * 40)
    r = group_fairness(np.ones(80, dtype=int), np.zeros(80, dtype=int), [sensitive_feature("g", groups)], n_boot=0)
    assert _value(r, "fairness.g.demographic_parity_difference").value == 0.0
    ratio = _value(r, "fairness.g.demographic_parity_ratio")
    assert ratio.value is None and "0/0" in ratio.note


def test_undefined_feature_gives_undefined_metrics_with_the_reason():
    r = group_fairness(
        np.zeros(4, dtype=int), np.zeros(4, dtype=int), [sensitive_feature("sex", pd.Series(["F"] * 4))], n_boot=10
    )
    f = r.feature("sex")
    assert not f.defined
    assert {m.value for m in f.metrics} == {None}
    assert all("single value" in m.note for m in f.metrics)


def test_multiclass_reports_the_worst_class():
    # 3 classes, two groups of 30: group b never gets class 2 predicted
    yt = np.array([0, 1, 2] * 10 + [0, 1, 2] * 10)
    yp = np.array([0, 1, 2] * 10 + [0, 1, 1] * 10)
    r = group_fairness(
        yt, yp, [sensitive_feature("g", pd.Series(["a"] * 30 + ["b"] * 30))], class_names=["x", "y", "z"], n_boot=0
    )
    dpd = _value(r, "fairness.g.demographic_parity_difference")
    assert dpd.value == pytest.approx(1 / 3)  # class y: 1/3 vs 2/3; class z: 1/3 vs 0
    assert "worst class" in dpd.note
    eod = _value(r, "fairness.g.equalized_odds_difference")
    assert eod.value == pytest.approx(1.0)  # class z: TPR 1 vs 0
    assert "worst class 'z'" in eod.note
    f = r.feature("g")
    assert list(f.by_group.columns[:3]) == ["count", "judged", "accuracy"]
    assert len(f.per_class) == 6
    assert not any(m.name.startswith("fairness.g.selection_rate@") for m in r.metrics)


def test_rates_from_confusion_divides_by_zero_as_nan():
    cm = np.array([[[5, 0], [0, 0]]])  # one group, no positives, nothing predicted positive
    rates = rates_from_confusion(cm)
    assert rates["accuracy"][0] == 1.0
    assert np.isnan(rates["tpr"][0, 1]) and np.isnan(rates["precision"][0, 1]) and rates["fpr"][0, 1] == 0.0


def test_bad_labels_are_config_errors():
    f = [sensitive_feature("g", pd.Series(["a", "b"]))]
    with pytest.raises(ConfigError, match="integer class indices"):
        group_fairness(np.array([0.5, 1.0]), np.array([0, 1]), f)
    with pytest.raises(ConfigError, match="has 2 values for 3 predictions"):
        group_fairness(np.array([0, 1, 1]), np.array([0, 1, 1]), f)


# -- the target: synthetic-credit's injected bias is found ---------------------------------------


@pytest.mark.parametrize(("bias", "seed"), [(0.1, 0), (0.2, 1), (0.3, 2)])
def test_label_disparity_matches_the_injected_bias(bias, seed):
    frame = dlaudit.data.synthetic_credit_frame(4000, bias=bias, seed=seed)
    y = (frame["approved"] == "yes").to_numpy().astype(int)
    r = group_fairness(y, y, [sensitive_feature("sex", frame["sex"])], n_boot=1000, seed=0)
    m = _value(r, "fairness.sex.demographic_parity_difference")
    assert m.ci[0] <= bias <= m.ci[1], (m.value, m.ci)


def test_model_disparity_matches_the_injected_bias(credit_mlp, credit_splits):
    """The MLP learns the biased labels: its measured DPD has the injected 0.2 inside its interval."""
    test = credit_splits.test
    pred = credit_mlp.predict(test.x).numpy()
    r = group_fairness(test.y.numpy(), pred, [sensitive_feature("sex", test.sensitive["sex"])], n_boot=1000, seed=0)
    m = _value(r, "fairness.sex.demographic_parity_difference")
    assert m.ci[0] <= 0.2 <= m.ci[1], (m.value, m.ci)
    assert (
        r.feature("sex").by_group.loc["female", "selection_rate"]
        < r.feature("sex").by_group.loc["male", "selection_rate"]
    )


def test_multiclass_per_class_metrics_equal_fairlearn_one_vs_rest():
    """Each class against the rest: selection rate per group and the parity and odds differences, as fairlearn."""
    from fairlearn.metrics import (
        MetricFrame,
        demographic_parity_difference,
        equalized_odds_difference,
        selection_rate,
    )

    rng = np.random.default_rng(3)
    n = 600
    groups = pd.Series(rng.choice(["a", "b", "c"], size=n))
    yt = rng.integers(0, 3, size=n)
    yp = np.where(rng.random(n) < np.where(groups == "b", 0.5, 0.8), yt, rng.integers(0, 3, size=n))
    r = group_fairness(yt, yp, [sensitive_feature("g", groups)], class_names=["x", "y", "z"], n_boot=50)
    m = {x.name: x for x in r.metrics}
    for c, name in enumerate(["x", "y", "z"]):
        t, p = (yt == c).astype(int), (yp == c).astype(int)
        mf = MetricFrame(metrics=selection_rate, y_true=t, y_pred=p, sensitive_features=groups)
        for group, value in mf.by_group.items():
            assert m[f"fairness.g.class_{name}.selection_rate@{group}"].value == pytest.approx(value, abs=1e-12)
        dpd = m[f"fairness.g.class_{name}.demographic_parity_difference"]
        assert dpd.value == pytest.approx(demographic_parity_difference(t, p, sensitive_features=groups), abs=1e-12)
        eod = m[f"fairness.g.class_{name}.equalized_odds_difference"]
        assert eod.value == pytest.approx(equalized_odds_difference(t, p, sensitive_features=groups), abs=1e-12)
        assert eod.ci is not None and eod.ci[0] <= eod.value + 1e-9
    worst = max(["x", "y", "z"], key=lambda c: m[f"fairness.g.class_{c}.equalized_odds_difference"].value)
    assert (
        m["fairness.g.equalized_odds_difference"].value
        == m[f"fairness.g.class_{worst}.equalized_odds_difference"].value
    )
    assert f"worst class {worst!r}" in m["fairness.g.equalized_odds_difference"].note
