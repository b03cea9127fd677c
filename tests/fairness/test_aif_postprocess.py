"""AIF360's reject-option classification and calibrated equalized odds, written in dlaudit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import dlaudit
from dlaudit.data.groups import resolve_sensitive
from dlaudit.errors import ConfigError
from dlaudit.fairness.aif_postprocess import fit_aif_postprocess, fit_calibrated_eqodds, fit_reject_option
from dlaudit.fairness.mitigate import mitigate_bundle


def _loop_reject_option(s, y, priv, n_t, n_m, bound=0.05):
    """AIF360's fit, written as its loop: one prediction per (threshold, margin) pair."""
    best = None
    rows = []
    for t in np.linspace(0.01, 0.99, n_t):
        for m in np.linspace(0.0, t if t <= 0.5 else 1.0 - t, n_m):
            pred = s > t
            crit = (s <= t + m) & (s > t - m)
            pred = np.where(crit & priv, False, np.where(crit & ~priv, True, pred))
            bal = 0.5 * ((pred & y).sum() / y.sum() + (~pred & ~y).sum() / (~y).sum())
            spd = pred[~priv].mean() - pred[priv].mean()
            rows.append((t, m, bal, spd))
    ok = [r for r in rows if -bound <= r[3] <= bound]
    best = max(ok, key=lambda r: r[2]) if ok else min(rows, key=lambda r: r[3])  # first of the ties, as AIF360
    return best


@pytest.mark.parametrize("seed", [0, 1])
def test_vectorised_grid_equals_the_loop(seed):
    rng = np.random.default_rng(seed)
    n = 400
    priv = rng.random(n) < 0.6
    y = rng.random(n) < np.where(priv, 0.4, 0.2)
    s = np.clip(0.3 * y + 0.15 * priv + rng.normal(0.25, 0.15, n), 0, 1)
    fit = fit_reject_option(s, y, priv, n_thresholds=25, n_margins=12)
    t, m, bal, spd = _loop_reject_option(s, y, priv, 25, 12)
    assert (fit.threshold, fit.margin) == (t, m)
    assert fit.balanced_accuracy == pytest.approx(bal) and fit.parity_difference == pytest.approx(spd)


def test_calibrated_eqodds_by_hand():
    # privileged: scores 0.9, 0.8 on positives, 0.1 on a negative; unprivileged: 0.6 on a positive, 0.5, 0.4 on negatives
    s = np.array([0.9, 0.8, 0.1, 0.6, 0.5, 0.4])
    y = np.array([1, 1, 0, 1, 0, 0], dtype=bool)
    priv = np.array([1, 1, 1, 0, 0, 0], dtype=bool)
    fit = fit_calibrated_eqodds(s, y, priv)
    # cost = 0.5 * gFPR * (1 - base) + 0.5 * gFNR * base
    cost_p = 0.5 * 0.1 * (1 / 3) + 0.5 * ((0.1 + 0.2) / 2) * (2 / 3)  # 0.0666...
    cost_u = 0.5 * 0.45 * (2 / 3) + 0.5 * 0.4 * (1 / 3)  # 0.2166...
    triv_p = 0.5 * (2 / 3) * (1 / 3) + 0.5 * (1 / 3) * (2 / 3)  # base rate 2/3 as the score
    assert (fit.base_rate_priv, fit.base_rate_unpriv) == pytest.approx((2 / 3, 1 / 3))
    assert fit.priv_mix_rate == pytest.approx((cost_u - cost_p) / (triv_p - cost_p)) and fit.unpriv_mix_rate == 0.0


def test_mitigate_with_both_methods_saves_models_that_apply_the_rules(credit_mlp, credit_splits, tmp_path):
    result = mitigate_bundle(credit_mlp, credit_splits, sensitive="sex", methods=["reject-option", "calibrated-eqodds"])
    for name, model in result.models.items():
        dlaudit.save_model(model, tmp_path / f"fair-{name}.pt")
    assert [r["model"] for r in result.rows] == ["original", "reject-option", "calibrated-eqodds"]
    info = result.info["reject-option"]
    assert info["privileged"] in ("female", "male") and 0 <= info["margin"] <= 0.5
    # the saved reject-option model decides exactly as the rule: unprivileged s > t - m, privileged s > t + m
    loaded = dlaudit.load_model(tmp_path / "fair-reject-option.pt", device="cpu")
    x = credit_splits.test.x
    with torch.no_grad():
        s = torch.softmax(credit_mlp.module(x).double(), dim=1)[:, 1].numpy()
    groups = resolve_sensitive(credit_splits.test, "sex")[0].groups.astype(str).to_numpy()
    priv = groups == info["privileged"]
    expected = np.where(priv, s > info["threshold"] + info["margin"], s > info["threshold"] - info["margin"])
    assert np.array_equal(loaded.predict(x).numpy() == 1, expected)
    ceo = result.info["calibrated-eqodds"]
    assert ceo["priv_mix_rate"] == 0.0 or ceo["unpriv_mix_rate"] == 0.0


def test_multiclass_models_are_refused(three_class_mlp, credit_splits):
    feature = resolve_sensitive(credit_splits.train, "sex")[0]
    with pytest.raises(ConfigError, match="reject-option needs a binary model"):
        fit_aif_postprocess("reject-option", three_class_mlp, credit_splits.train, feature)


def test_agrees_with_aif360_on_adult(shared_data):
    """Same threshold and margin, same mix rates as AIF360's own fit on Adult (3,000 training rows, a small grid)."""
    aif = pytest.importorskip("aif360", reason="aif360 is not installed (pip install aif360)")
    del aif
    import pandas as pd
    from aif360.algorithms.postprocessing import CalibratedEqOddsPostprocessing, RejectOptionClassification
    from aif360.datasets import BinaryLabelDataset
    from sklearn.linear_model import LogisticRegression

    from dlaudit.data import load_splits

    train = load_splits("adult", data_dir=shared_data / "adult").train
    x, y = train.x.numpy()[:3000], train.y.numpy()[:3000]
    male = (train.sensitive["sex"].astype(str).to_numpy()[:3000] == "Male").astype(float)
    scores = LogisticRegression(max_iter=500).fit(x, y).predict_proba(x)[:, 1]
    frame = pd.DataFrame({"sex": male, "label": y.astype(float)})
    truth = BinaryLabelDataset(df=frame, label_names=["label"], protected_attribute_names=["sex"])
    pred = truth.copy(deepcopy=True)
    pred.scores = scores.reshape(-1, 1)
    pred.labels = (scores > 0.5).astype(float).reshape(-1, 1)
    groups = {"unprivileged_groups": [{"sex": 0.0}], "privileged_groups": [{"sex": 1.0}]}
    roc = RejectOptionClassification(**groups, num_class_thresh=20, num_ROC_margin=10).fit(truth, pred)
    ours = fit_reject_option(scores, y == 1, male == 1, n_thresholds=20, n_margins=10)
    assert (ours.threshold, ours.margin) == (roc.classification_threshold, roc.ROC_margin)
    ceo = CalibratedEqOddsPostprocessing(**groups, seed=0).fit(truth, pred)
    mine = fit_calibrated_eqodds(scores, y == 1, male == 1)
    assert mine.base_rate_priv == pytest.approx(ceo.base_rate_priv, rel=1e-9)
    assert mine.base_rate_unpriv == pytest.approx(ceo.base_rate_unpriv, rel=1e-9)
    assert mine.priv_mix_rate == pytest.approx(ceo.priv_mix_rate, rel=1e-6, abs=1e-12)
    assert mine.unpriv_mix_rate == pytest.approx(ceo.unpriv_mix_rate, rel=1e-6, abs=1e-12)
