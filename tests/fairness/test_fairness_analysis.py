"""The fairness section: findings, tables, figures, skipped cases, bad input, robustness by group."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

import dlaudit
from dlaudit.analysis import run_analysis
from dlaudit.fairness import analysis as fairness_analysis
from dlaudit.fairness import robustness


def _metrics(section):
    return {m.name: m for m in section.metrics}


def test_registered_after_performance():
    names = dlaudit.list_analyses()
    assert "fairness" in names and names.index("fairness") > names.index("performance")


def test_image_data_is_skipped_with_the_reason(untrained_cnn, digits_splits):
    sec = run_analysis("fairness", untrained_cnn, digits_splits.test)
    assert sec.status == "skipped"
    assert "image data with no sensitive features" in sec.reason


def test_section_on_biased_credit_data(credit_mlp, credit_splits):
    module = credit_mlp.module
    module.train()
    flags = [p.requires_grad for p in module.parameters()]
    try:
        sec = run_analysis("fairness", credit_mlp, credit_splits.test, n_boot=200, intersection=True)
        assert module.training and [p.requires_grad for p in module.parameters()] == flags
    finally:
        module.eval()
    assert sec.status == "ok", sec.reason
    m = _metrics(sec)
    for name in (
        "demographic_parity_difference",
        "equalized_odds_difference",
        "accuracy_gap",
        "selection_rate@female",
        "selection_rate@male",
    ):
        assert m[f"fairness.sex.{name}"].value is not None
    assert m["fairness.sex.demographic_parity_difference"].ci is not None
    assert "fairness.age.selection_rate@under_25" in m and "fairness.sex&age.demographic_parity_difference" in m
    checks = {f.check for f in sec.findings}
    assert {"four-fifths", "demographic_parity_difference", "binning"} <= checks
    four_fifths = next(f for f in sec.findings if f.check == "four-fifths" and f.message.startswith("sex"))
    assert four_fifths.severity == "fail" and "female" in four_fifths.evidence
    assert [t.title for t in sec.tables][:3] == ["Groups by sex", "Groups by age", "Groups by sex&age"]
    assert len(sec.figures) == 3 and all(f.data.startswith(b"\x89PNG") for f in sec.figures)
    assert sec.params["bins"] == {"age": [25.0, 60.0]}


def test_same_seed_same_numbers(credit_mlp, credit_splits):
    a = run_analysis("fairness", credit_mlp, credit_splits.test, n_boot=100, seed=7)
    b = run_analysis("fairness", credit_mlp, credit_splits.test, n_boot=100, seed=7)
    assert [(x.name, x.value, x.ci) for x in a.metrics] == [(x.name, x.value, x.ci) for x in b.metrics]


def _with_sensitive(data, frame):
    return replace(data, sensitive=frame)


@pytest.mark.parametrize(
    ("column", "reason"),
    [
        (lambda n: ["female"] * n, "holds a single value ('female')"),
        (lambda n: [None] + ["female", "male"] * ((n - 1) // 2) + ["male"] * ((n - 1) % 2), "1 missing value(s) (NaN)"),
    ],
)
def test_bad_sensitive_columns_are_undefined_not_zero(credit_mlp, credit_splits, column, reason):
    data = _with_sensitive(credit_splits.test, pd.DataFrame({"grp": column(len(credit_splits.test))}))
    sec = run_analysis("fairness", credit_mlp, data, sensitive="grp", n_boot=20)
    assert sec.status == "ok"
    m = _metrics(sec)["fairness.grp.demographic_parity_difference"]
    assert m.value is None and reason in m.note
    assert any(f.check == "undefined" and reason in f.message for f in sec.findings)


def test_missing_sensitive_column_is_undefined(credit_mlp, credit_splits):
    sec = run_analysis("fairness", credit_mlp, credit_splits.test, sensitive="sex,zip", n_boot=20)
    m = _metrics(sec)
    assert m["fairness.sex.demographic_parity_difference"].value is not None
    assert m["fairness.zip.demographic_parity_difference"].value is None
    assert "column 'zip' is not in the data" in m["fairness.zip.demographic_parity_difference"].note


def test_tabular_data_without_sensitive_columns_is_skipped(credit_mlp, credit_splits):
    sec = run_analysis("fairness", credit_mlp, _with_sensitive(credit_splits.test, None))
    assert sec.status == "skipped" and "--sensitive" in sec.reason


def test_a_group_with_no_positives_is_reported(credit_mlp, credit_splits):
    data = credit_splits.test
    y = data.y.numpy()
    grp = np.where(np.arange(len(y)) % 2 == 0, "even", "odd").astype(object)
    negatives = np.flatnonzero(y == 0)[:60]
    grp[negatives] = "none-positive"
    sec = run_analysis(
        "fairness", credit_mlp, _with_sensitive(data, pd.DataFrame({"grp": grp})), sensitive="grp", n_boot=20
    )
    table = next(t for t in sec.tables if t.title == "Groups by grp")
    row = next(r for r in table.rows if r[0] == "none-positive")
    assert row[table.columns.index("TPR")] is None and "TPR" in row[-1]
    assert any(f.check == "undefined-rate" and "'none-positive'" in f.message for f in sec.findings)


def test_german_bins_age_and_flags_small_groups(shared_data):
    splits = dlaudit.data.load_splits("german", data_dir=shared_data / "german", sensitive="sex,age")
    bundle = dlaudit.train("mlp", "german", data_dir=shared_data / "german", epochs=3, seed=0, device="cpu")
    sec = run_analysis("fairness", bundle, splits.test, n_boot=50)
    assert sec.status == "ok"
    m = _metrics(sec)
    assert {
        "fairness.age.selection_rate@under_25",
        "fairness.age.selection_rate@25_to_60",
        "fairness.age.selection_rate@60_and_over",
    } <= set(m)
    assert "too small to judge" in m["fairness.age.selection_rate@60_and_over"].note
    assert any(f.check == "small-group" and "60_and_over" in f.message for f in sec.findings)


def test_robust_accuracy_by_group_is_skipped_without_a_defined_feature(credit_mlp, credit_splits):
    sec = run_analysis("fairness", credit_mlp, credit_splits.test, sensitive="no_such_column", n_boot=0)
    assert "skipped" in sec.params["robust_by_group"]
    assert any(f.check == "robust-by-group" for f in sec.findings)


def test_robust_accuracy_by_group_uses_the_robustness_packages_results(credit_mlp, credit_splits, monkeypatch):
    calls = {}

    def per_sample_correct(bundle, data, *, eps, seed, steps):
        calls.update(eps=eps, seed=seed)
        return (data.sensitive["sex"] == "male").to_numpy()  # the attack only fools 'female' samples

    monkeypatch.setattr(robustness, "per_sample_correct", per_sample_correct)
    sec = run_analysis("fairness", credit_mlp, credit_splits.test, sensitive="sex", n_boot=0, robust_eps=0.05, seed=3)
    m = _metrics(sec)
    assert m["fairness.sex.robust_accuracy@male"].value == 1.0
    assert m["fairness.sex.robust_accuracy@female"].value == 0.0
    assert m["fairness.sex.robust_accuracy_gap"].value == 1.0
    assert calls == {"eps": 0.05, "seed": 3}
    assert any(t.title.startswith("Robust accuracy by sex") for t in sec.tables)


def test_fast_uses_fewer_resamples(credit_mlp, credit_splits):
    sec = run_analysis("fairness", credit_mlp, credit_splits.test, fast=True, sensitive="sex")
    assert sec.params["n_boot"] == fairness_analysis.Settings.FAST["n_boot"]


def test_report_roundtrip_keeps_fairness_metrics(credit_mlp, credit_splits, tmp_path):
    rep = dlaudit.fairness_report(credit_mlp, credit_splits.test, sensitive="sex", n_boot=50)
    path = dlaudit.save_report(rep, tmp_path / "r.json", format="json")
    back = dlaudit.load_report(path)
    assert (
        back.metrics["fairness.sex.demographic_parity_difference"]
        == rep.metrics["fairness.sex.demographic_parity_difference"]
    )
    assert "performance.accuracy" in back.metrics
    html = dlaudit.save_report(rep, tmp_path / "r.html")
    assert "Groups by sex" in html.read_text()


def test_the_health_verdict_names_the_failing_four_fifths_finding(credit_mlp):
    """The synthetic-credit demo's case: the one gate passes, the fairness section fails the four-fifths rule."""
    rep = dlaudit.fairness_report(credit_mlp, sensitive="sex", n_boot=50)
    dlaudit.check_report(rep, ["performance.accuracy < 0.75"], source="demo")
    assert rep.passed
    assert rep.health.status == "fail" and rep.health.worst.check == "four-fifths"
    assert "Health: fail" in rep.health.text and "four-fifths rule fails" in rep.health.text
    fair = rep.section("fairness")
    assert fair.status == "ok" and fair.found == "fail"
    ratio = rep.metric("fairness.sex.demographic_parity_ratio")
    assert ratio.headline and ratio.status == "fail" and ratio.rule == "fails below 0.8 (four-fifths rule)"
    from dlaudit.report.html import render_html

    page = render_html(rep)
    header = page[: page.index('id="scorecard"')]
    assert "Gates passed: the one gate holds." in header and "four-fifths rule fails" in header
