"""Baseline comparison: headline metrics may not get worse by more than max_drop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from dlaudit import compare_to_baseline, save_report
from dlaudit.errors import ConfigError
from dlaudit.report import Comparison, Metric, Report, Section
from dlaudit.report.baseline import config_differences


def _set(report: Report, name: str, value: float | None) -> Report:
    for sec in report.sections:
        sec.metrics = [replace(m, value=value) if m.name == name else m for m in sec.metrics]
    return report


def _rows(report: Report) -> dict[str, str]:
    assert report.comparison is not None
    return {r.metric: r.status for r in report.comparison.rows}


def test_identical_reports_pass_and_every_headline_metric_is_checked(make_report: Callable[..., Report]) -> None:
    old, new = make_report(gates=False), make_report(gates=False)
    comparison = compare_to_baseline(new, old)
    assert comparison.passed and new.passed
    assert set(_rows(new).values()) == {"same"}
    guarded = [g.metric for g in new.gates]
    assert (
        "performance.accuracy" in guarded
        and "explain.ig.deletion_auc" in guarded
        and len([g for g in guarded if g.startswith("robustness.")]) == 15
    )
    assert "performance.mean_confidence" not in guarded  # not a headline metric
    assert "explain.saliency.sanity_rank_corr" not in guarded  # headline, but no direction
    assert all(g.source == "baseline" for g in new.gates)


def test_a_drop_beyond_max_drop_is_a_regression(make_report: Callable[..., Report]) -> None:
    old = make_report(gates=False)
    new = _set(make_report(gates=False), "performance.accuracy", 0.9778 - 0.03)
    comparison = compare_to_baseline(new, old, max_drop=0.02)
    assert [r.metric for r in comparison.regressions] == ["performance.accuracy"]
    assert not new.passed
    (gate,) = [g for g in new.gates if g.metric == "performance.accuracy"]
    assert (
        gate.gate == "performance.accuracy < 0.9578"
        and not gate.passed
        and gate.message == "baseline 0.9778, max drop 0.02"
    )
    assert comparison.rows[0].change == pytest.approx(-0.03)


def test_a_drop_of_exactly_max_drop_passes(make_report: Callable[..., Report]) -> None:
    old = _set(make_report(gates=False), "performance.accuracy", 0.97)
    new = _set(make_report(gates=False), "performance.accuracy", 0.95)
    assert compare_to_baseline(new, old, max_drop=0.02).passed
    assert _rows(new)["performance.accuracy"] == "worse"


def test_lower_is_better_metrics_regress_upwards(make_report: Callable[..., Report]) -> None:
    old = make_report(gates=False)
    new = _set(make_report(gates=False), "explain.ig.deletion_auc", 0.30)
    compare_to_baseline(new, old, max_drop=0.05)
    assert _rows(new)["explain.ig.deletion_auc"] == "regression"
    better = _set(make_report(gates=False), "explain.ig.deletion_auc", 0.10)
    compare_to_baseline(better, old, max_drop=0.05)
    assert _rows(better)["explain.ig.deletion_auc"] == "better" and better.passed


def test_missing_undefined_new_and_not_run(make_report: Callable[..., Report]) -> None:
    old = make_report(gates=False)
    new = make_report(gates=False)
    new.sections[2].metrics = new.sections[2].metrics[1:]  # robustness ran but lost a metric
    new.sections[1].metrics.append(Metric("explain.shap.deletion_auc", 0.3))
    _set(new, "performance.macro_f1", None)
    new.sections = [s for s in new.sections if s.name != "explain"] + [Section(name="extra", title="Extra")]
    compare_to_baseline(new, old)
    rows = _rows(new)
    assert rows["robustness.fgsm_linf.acc@0.05"] == "regression"  # vanished although its section ran
    assert rows["performance.macro_f1"] == "regression"  # now undefined
    assert rows["explain.ig.deletion_auc"] == "not run"  # its section was not run this time
    assert rows["explain.lime.stability"] == "not run"
    failed = {g.metric: g.message for g in new.gates if not g.passed}
    assert failed == {
        "robustness.fgsm_linf.acc@0.05": "not computed in this run; baseline 0.95, max drop 0.02",
        "performance.macro_f1": "undefined in this run; baseline 0.977, max drop 0.02",
    }
    other = make_report(gates=False)
    other.sections[0].metrics.append(Metric("performance.brier", 0.1))
    compare_to_baseline(other, old)
    assert _rows(other)["performance.brier"] == "new"


def test_non_headline_metrics_are_shown_but_never_fail(make_report: Callable[..., Report]) -> None:
    old = make_report(gates=False)
    new = _set(make_report(gates=False), "performance.mean_confidence", 0.5)
    assert compare_to_baseline(new, old).passed
    assert _rows(new)["performance.mean_confidence"] == "changed"


def test_compare_reads_a_json_file_and_replaces_an_earlier_comparison(
    tmp_path: Path, make_report: Callable[..., Report]
) -> None:
    old = make_report(gates=False)
    save_report(old, tmp_path / "old.json")
    new = make_report()
    n_gates = len(new.gates)
    compare_to_baseline(new, tmp_path / "old.json")
    compare_to_baseline(new, tmp_path / "old.json")
    assert new.comparison is not None and new.comparison.baseline == str(tmp_path / "old.json")
    assert len([g for g in new.gates if g.source == "baseline"]) == len(new.gates) - n_gates == 18


def test_negative_max_drop_is_an_error(make_report: Callable[..., Report]) -> None:
    with pytest.raises(ConfigError, match="max-drop must be a number >= 0"):
        compare_to_baseline(make_report(), make_report(), max_drop=-0.1)


def test_sections_run_under_another_configuration_are_not_compared(make_report: Callable[..., Report]) -> None:
    old = make_report(gates=False)
    new = _set(make_report(gates=False), "robustness.noise.acc@0.1", 0.5)  # would be a regression...
    new.section("robustness").params = {**new.section("robustness").params, "steps": 40, "fast": False}
    old.section("robustness").params = {**old.section("robustness").params, "fast": True}
    comparison = compare_to_baseline(new, old)
    assert comparison.passed  # ... but the configurations differ, so it is not compared
    assert comparison.skipped == {"robustness": "steps: 10 -> 40, fast: true -> false"}
    rows = {r.metric: r for r in comparison.rows}
    assert rows["robustness.noise.acc@0.1"].status == "skipped"
    assert (
        rows["robustness.noise.acc@0.1"].note
        == "not compared: configuration differs (steps: 10 -> 40, fast: true -> false)"
    )
    assert rows["performance.accuracy"].status == "same"  # other sections still are
    assert not any(g.metric.startswith("robustness.") for g in new.gates)
    assert comparison.summary() == (
        "baseline dlaudit report: cat.pt: 6 metrics compared, no regression, 15 skipped "
        "(configuration differs: robustness: fast: true -> false, steps: 10 -> 40)."
    )
    assert Comparison.from_dict(comparison.to_dict()).skipped == comparison.skipped


def test_settings_that_do_not_change_the_numbers_are_not_a_difference() -> None:
    assert config_differences({"batch_size": 64, "n": 200}, {"n": 200, "settings": {"a": 1}}) == []
    assert config_differences({"settings": {"ig_steps": 64, "x": 1}}, {"settings": {"ig_steps": 32}}) == [
        "settings.ig_steps: 64 -> 32"
    ]
    assert config_differences({"fast": False, "n": 1000.0}, {"fast": True, "n": 1000}) == ["fast: false -> true"]


def test_what_was_computed_is_not_how_it_was_computed(make_report: Callable[..., Report]) -> None:
    old, new = make_report(gates=False), make_report(gates=False)
    new.section("robustness").params["eps"] = [0.05, 0.1]  # fewer budgets: the common ones still compare
    new.section("robustness").params["batch_size"] = 999
    assert not compare_to_baseline(new, old).skipped
