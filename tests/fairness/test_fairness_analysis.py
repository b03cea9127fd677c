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
    assert len(sec.figures) == 4 and all(f.data.startswith(b"\x89PNG") for f in sec.figures)
    assert sec.figures[-1].caption.startswith("The worst segments found")  # the weak-segment search
    assert m["fairness.segments.n_significant"].value > 0 and any(
        t.title.startswith("Weak segments") for t in sec.tables
    )
    assert sec.params["bins"] == {"age": [25.0, 60.0]}


def test_a_weak_segment_warns_by_default_and_fails_only_above_a_gap_the_user_sets(credit_mlp, credit_splits):
    default = run_analysis("fairness", credit_mlp, credit_splits.test, n_boot=50)
    worst = _metrics(default)["fairness.segments.worst_accuracy_gap"]
    assert worst.value > 0 and worst.status != "fail"
    assert all(f.severity != "fail" for f in default.findings if f.check == "segment-accuracy")
    strict = run_analysis("fairness", credit_mlp, credit_splits.test, n_boot=50, segment_fail_gap=worst.value / 2)
    assert _metrics(strict)["fairness.segments.worst_accuracy_gap"].status == "fail"
    assert any(f.severity == "fail" for f in strict.findings if f.check == "segment-accuracy")
    bad = run_analysis("fairness", credit_mlp, credit_splits.test, segment_fail_gap="high")
    assert bad.status == "error" and "segment_fail_gap must be a number or None" in bad.reason


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


def test_multiclass_image_model_with_metadata_names_the_worst_class_and_searches_segments(digits_mlp, digits_splits):
    """Ten classes, a per-sample metadata column: per-class metrics, the worst class named, segments searched."""
    data = digits_splits.test
    site = pd.DataFrame({"site": np.where(np.arange(len(data)) % 3 == 0, "north", "south")})
    sec = run_analysis("fairness", digits_mlp, _with_sensitive(data, site), n_boot=50)
    assert sec.status == "ok", sec.reason
    m = _metrics(sec)
    eod = m["fairness.site.equalized_odds_difference"]
    per_class = [m[f"fairness.site.class_{c}.equalized_odds_difference"].value for c in digits_mlp.card.names]
    assert eod.value == pytest.approx(max(v for v in per_class if v is not None))
    worst = next(f for f in sec.findings if f.check == "worst-class")
    assert "equalized odds difference is worst for class" in worst.message
    assert "fairness.site.class_0.selection_rate@north" in m
    assert sec.params["segments"]["columns"] == ["site"] and m["fairness.segments.n_tested"].value == 2


def test_intersection_pools_small_groups_by_name_and_highlights_the_worst_off(credit_mlp, credit_splits):
    data = credit_splits.test
    n = len(data)
    i = np.arange(n)
    sex = np.where(i % 2 == 0, "female", "male")
    race = np.where(i % 50 == 0, "c", np.where(i % 50 == 1, "d", np.where(i % 4 < 2, "a", "b")))
    sec = run_analysis(
        "fairness",
        credit_mlp,
        _with_sensitive(data, pd.DataFrame({"sex": sex, "race": race})),
        n_boot=0,
        intersection=True,
    )
    assert sec.status == "ok", sec.reason
    # c and d hold n/50 rows each (c only even rows: female; d only odd: male): two groups of 20, pooled by name
    pooled = next(f for f in sec.findings if f.check == "pooled")
    for group in ("female&c", "male&d"):
        assert group in pooled.message
    assert "2 groups under 30 rows pooled into 'small_groups_pooled'" in pooled.message
    m = _metrics(sec)
    assert (
        "fairness.sex&race.selection_rate@small_groups_pooled" in m
        and "fairness.sex&race.selection_rate@female&c" not in m
    )
    table = next(t for t in sec.tables if t.title == "Groups by sex&race")
    rates = {r[0]: r[4] for r in table.rows}
    worst = min(rates, key=rates.get)
    finding = next(f for f in sec.findings if f.check == "worst-off-intersection")
    assert finding.message.startswith(f"sex&race: the worst-off intersection is {worst!r}")
    assert next(r for r in table.rows if r[0] == worst)[-1].startswith("worst-off")
