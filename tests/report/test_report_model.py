"""The report data model: JSON round trip, flat metrics, findings, gates, passed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import dlaudit
from dlaudit.report import Figure, Metric, Report, Section
from dlaudit.report.json import parse_json, render_json


def test_json_round_trip_keeps_metrics_findings_gates_and_comparison(report: Report, make_report) -> None:
    dlaudit.compare_to_baseline(report, make_report(gates=False), max_drop=0.01, label="old.json")
    back = parse_json(render_json(report))
    assert back.metrics == report.metrics
    assert back.findings == report.findings
    assert back.gates == report.gates
    assert back.comparison == report.comparison
    assert [(s.name, s.status, s.reason, s.tables) for s in back.sections] == [
        (s.name, s.status, s.reason, s.tables) for s in report.sections
    ]
    assert [m for s in back.sections for m in s.metrics] == [m for s in report.sections for m in s.metrics]


def test_json_has_the_documented_top_level_keys_and_no_nan(report: Report) -> None:
    data = json.loads(render_json(report))
    assert list(data) == [
        "schema_version",
        "title",
        "passed",
        "health",
        "metrics",
        "gates",
        "baseline",
        "card",
        "sections",
        "provenance",
        "extras",
    ]
    assert data["schema_version"] == 1
    assert data["health"]["status"] == "fail" and data["health"]["counts"] == {"fail": 2, "warning": 2, "info": 2}
    assert [s["found"] for s in data["sections"]] == ["warning", "fail", "warning", None, None]
    assert data["metrics"]["explain.lime.stability"] is None
    assert data["sections"][1]["figures"] == [
        {"caption": "Integrated-gradients attribution map.", "mime": "image/svg+xml", "alt": "An 8 by 8 heat map"}
    ]
    assert "NaN" not in render_json(report)


def test_figures_travel_in_json_only_when_asked(report: Report) -> None:
    assert parse_json(render_json(report)).sections[1].figures == []
    with_figs = parse_json(render_json(report, include_figures=True))
    assert with_figs.sections[1].figures == report.sections[1].figures


def test_load_reads_back_and_rejects_what_is_not_a_report(tmp_path: Path, report: Report) -> None:
    dlaudit.save_report(report, tmp_path / "r.json")
    assert dlaudit.load_report(tmp_path / "r.json").metrics == report.metrics
    dlaudit.save_report(report, tmp_path / "r.html")
    with pytest.raises(dlaudit.DlauditError, match="is not JSON .*not the HTML one"):
        dlaudit.load_report(tmp_path / "r.html")
    (tmp_path / "v2.json").write_text(json.dumps({"schema_version": 2}))
    with pytest.raises(dlaudit.DlauditError, match="schema version 2 is not 1"):
        dlaudit.load_report(tmp_path / "v2.json")
    with pytest.raises(dlaudit.DlauditError, match="does not exist"):
        dlaudit.load_report(tmp_path / "nope.json")


def test_newer_keys_are_ignored_within_schema_1() -> None:
    d = {
        "schema_version": 1,
        "title": "t",
        "sections": [{"name": "p", "title": "P", "metrics": [{"name": "p.a", "value": 0.5, "colour": "blue"}]}],
        "future": 1,
    }
    assert Report.from_dict(d).metrics == {"p.a": 0.5}


def test_metrics_findings_metric_and_passed(report: Report) -> None:
    assert report.metrics["performance.accuracy"] == 0.9778
    assert report.metric("performance.accuracy").ci == (0.9597, 0.9879)
    assert report.metric("nope") is None
    assert {f.severity for f in report.findings} == {"info", "warning", "fail"}
    assert report.passed is False
    assert Report(title="no gates").passed is True


def test_check_records_results_with_their_source(report: Report) -> None:
    before = len(report.gates)
    results = dlaudit.check_report(report, ["performance.accuracy <= 0.5"], source="python")
    assert len(report.gates) == before + 1 and results[0].passed and results[0].source == "python"


def test_undefined_numbers_are_none_and_figure_types_are_checked() -> None:
    assert Metric("m", float("nan")).value is None
    assert Metric("m", float("inf")).defined is False
    with pytest.raises(ValueError, match="mime type"):
        Figure("c", b"x", mime="text/html")
    with pytest.raises(ValueError, match="status"):
        Section(name="x", title="X", status="weird")
