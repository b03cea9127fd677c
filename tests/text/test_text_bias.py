from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from dlaudit.errors import DataError
from dlaudit.fairness.text_bias import (
    bnsp_auc,
    bpsn_auc,
    final_bias_metric,
    identity_groups,
    jigsaw_bias_aucs,
    power_mean,
    roc_auc,
    subgroup_auc,
)
from dlaudit.text.synthetic import load_synthetic_text

# background: labels 0 1 0 1, scores .1 .6 .3 .9; subgroup: labels 0 0 1 1, scores .7 .2 .8 .5
Y = [0, 1, 0, 1, 0, 0, 1, 1]
S = [0.1, 0.6, 0.3, 0.9, 0.7, 0.2, 0.8, 0.5]
G = [0, 0, 0, 0, 1, 1, 1, 1]


def test_hand_worked_example() -> None:
    # subgroup: positives {.8, .5} vs negatives {.7, .2}: .8>.7 .8>.2 .5>.2 (not .5>.7) = 3/4
    assert subgroup_auc(Y, S, G) == 0.75
    # BPSN: background positives {.6, .9} vs subgroup negatives {.7, .2}: .6>.2 .9>.7 .9>.2 = 3/4
    assert bpsn_auc(Y, S, G) == 0.75
    # BNSP: subgroup positives {.8, .5} vs background negatives {.1, .3}: all 4 pairs
    assert bnsp_auc(Y, S, G) == 1.0
    # overall: 14 of the 16 positive-negative pairs are ordered (.6 and .5 both lose to .7)
    assert roc_auc(Y, S) == 14 / 16
    result = jigsaw_bias_aucs(Y, S, {"g": G}, n_boot=0)
    assert result.final_metric == pytest.approx(0.25 * (0.875 + 0.75 + 0.75 + 1.0))
    assert result.metrics()["fairness.bias.g.bpsn_auc"] == 0.75


def test_ties_count_one_half() -> None:
    assert roc_auc([0, 1], [0.5, 0.5]) == 0.5
    assert roc_auc([0, 0, 1], [0.2, 0.5, 0.5]) == 0.75
    assert math.isnan(roc_auc([1, 1], [0.2, 0.3]))


def test_power_mean_by_hand() -> None:
    # ((0.5^-5 + 1^-5) / 2)^(-1/5) = 16.5^(-1/5)
    assert power_mean([0.5, 1.0], -5) == pytest.approx(16.5 ** (-0.2))
    assert power_mean([0.7, 0.7, 0.7], -5) == pytest.approx(0.7)
    assert power_mean([0.5, float("nan")], -5) == pytest.approx(0.5)
    assert power_mean([0.0, 1.0], -5) == 0.0
    assert power_mean([0.5, 1.0], 1) == pytest.approx(0.75)
    assert final_bias_metric(0.9, {"subgroup_auc": [0.8], "bpsn_auc": [0.6], "bnsp_auc": [1.0]}) == pytest.approx(0.825)


@pytest.mark.parametrize("seed", range(5))
def test_against_sklearn_on_the_defined_subsets(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 300
    y = rng.integers(0, 2, n)
    groups = pd.DataFrame({"a": rng.random(n) < 0.2, "b": rng.random(n), "c": rng.random(n) < 0.5})
    s = np.round(y * 0.3 + rng.random(n) + 0.4 * groups["a"], 2)  # rounded: ties happen
    result = jigsaw_bias_aucs(y, s, groups, n_boot=0)
    assert result.overall_auc == pytest.approx(roc_auc_score(y, s))
    for name, b in result.by_identity().items():
        g = groups[name].to_numpy(dtype=float) >= 0.5
        yb = y.astype(bool)
        assert b.subgroup_auc == pytest.approx(roc_auc_score(y[g], s[g]))
        bpsn = (~g & yb) | (g & ~yb)
        bnsp = (~g & ~yb) | (g & yb)
        assert b.bpsn_auc == pytest.approx(roc_auc_score(y[bpsn], s[bpsn]))
        assert b.bnsp_auc == pytest.approx(roc_auc_score(y[bnsp], s[bnsp]))
    # scores raised inside group a: its BPSN AUC falls below its BNSP AUC
    assert result.by_identity()["a"].bpsn_auc < result.by_identity()["a"].bnsp_auc
    assert result.worst("bpsn_auc").identity == "a"


def test_bootstrap_intervals_are_seeded_and_contain_the_estimate() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    s = y + rng.normal(0, 1, 400)
    groups = {"g": rng.random(400) < 0.3}
    a = jigsaw_bias_aucs(y, s, groups, n_boot=100, seed=1)
    b = jigsaw_bias_aucs(y, s, groups, n_boot=100, seed=1)
    assert a == b
    assert a != jigsaw_bias_aucs(y, s, groups, n_boot=100, seed=2)
    lo, hi = a.final_interval
    assert lo <= a.final_metric <= hi and hi - lo < 0.2
    for kind in ("subgroup_auc", "bpsn_auc", "bnsp_auc"):
        lo, hi = a.identities[0].interval[kind]
        assert lo <= a.identities[0].value(kind) <= hi
    assert list(a.table().columns[:4]) == ["identity", "n", "n_positive", "subgroup_auc"]


def test_a_group_without_both_classes_is_skipped_with_a_reason() -> None:
    y = [0, 1, 0, 1, 1, 1]
    s = [0.1, 0.9, 0.2, 0.8, 0.7, 0.6]
    result = jigsaw_bias_aucs(y, s, {"g": [0, 0, 0, 0, 1, 1], "h": [1, 1, 0, 0, 0, 0]}, n_boot=0)
    assert "g" in result.skipped and "both classes" in result.skipped["g"]
    assert math.isnan(result.by_identity()["g"].subgroup_auc)
    assert not math.isnan(result.final_metric)  # power means over the identities that have AUCs


def test_identity_groups_and_bad_input() -> None:
    frame = identity_groups(["none", "muslim", "gay", "muslim"])
    assert frame.columns.tolist() == ["gay", "muslim"] and frame["muslim"].tolist() == [0, 1, 0, 1]
    with pytest.raises(DataError, match="binary labels"):
        jigsaw_bias_aucs([0, 2], [0.1, 0.2], {"g": [0, 1]})
    with pytest.raises(DataError, match="not numeric or boolean"):
        jigsaw_bias_aucs([0, 1], [0.1, 0.2], {"g": ["a", "b"]})
    with pytest.raises(DataError, match="2 rows of identity columns for 3 texts"):
        jigsaw_bias_aucs([0, 1, 1], [0.1, 0.2, 0.3], {"g": [0, 1]})


def test_bias_found_on_synthetic_text(bag_model) -> None:
    """The injected bias (positive comments about 'muslim' or 'gay' labelled 1) shows as a low BPSN AUC for those terms.

    Fresh comments (another seed, 6000 of them: about 350 per identity) keep the groups large enough to tell.
    """
    data = load_synthetic_text(n=6000, bias=0.3, seed=1).whole
    scores = bag_model.predict_proba(data.texts)[:, 1].numpy()
    result = jigsaw_bias_aucs(data.y.numpy(), scores, identity_groups(data.sensitive["identity"]), n_boot=20)
    by = result.by_identity()
    unbiased = [b.bpsn_auc for name, b in by.items() if name not in ("muslim", "gay")]
    for term in ("muslim", "gay"):
        assert by[term].bpsn_auc < min(unbiased)
        assert by[term].interval["bpsn_auc"][1] < np.median(unbiased)  # the interval excludes the unbiased level
    assert result.worst("bpsn_auc").identity in ("muslim", "gay")
