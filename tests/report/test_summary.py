"""The two verdicts (gates, health), gate lines and the scorecard, on hand-built reports."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable

import pytest

from dlaudit import check_report, compare_to_baseline
from dlaudit.report import Finding, GateResult, Metric, Report, Section
from dlaudit.report.html import render_html
from dlaudit.report.json import render_json
from dlaudit.report.junit import render_junit
from dlaudit.report.markdown import render_markdown
from dlaudit.report.model import judged
from dlaudit.report.summary import gate_line, health, scorecard, verdict


def _fairness_report(*, gates: bool = True) -> Report:
    """Shaped like the synthetic-credit demo: one gate that passes, a failing four-fifths finding."""
    perf = Section(name="performance", title="Performance", summary="Accuracy 85.7%.")
    perf.add_metric("performance.accuracy", 0.857, ci=(0.834, 0.877), higher_is_better=True)
    fair = Section(name="fairness", title="Fairness", summary="sex: demographic parity difference 0.132.")
    fair.add_metric(
        "fairness.sex.demographic_parity_ratio",
        0.738,
        headline=True,
        higher_is_better=True,
        description="smallest over largest group selection rate (four-fifths rule: >= 0.8)",
        **judged(0.738, fail=True, rule="fails below 0.8 (four-fifths rule)"),
    )
    fair.add_metric(
        "fairness.sex.demographic_parity_difference",
        0.132,
        ci=(0.078, 0.192),
        higher_is_better=False,
        description="largest minus smallest group selection rate",
        **judged(0.132, warning=True, rule="warns above 0.1"),
    )
    fair.add_finding("fail", "sex: four-fifths rule fails: the lowest group selection rate is 74% of the highest")
    fair.add_finding("warning", "sex: demographic parity difference (selection rates) is 0.132, over 0.1")
    rep = Report(title="dlaudit demo: synthetic-credit MLP", sections=[perf, fair])
    if gates:
        check_report(rep, ["performance.accuracy < 0.75"], source="demo")
    return rep


def test_health_names_the_failing_fairness_finding_even_when_every_gate_passes() -> None:
    rep = _fairness_report()
    assert rep.passed and verdict(rep).text == "Gates passed: the one gate holds."
    h = health(rep)
    assert h.status == "fail" and h.counts == {"fail": 1, "warning": 1, "info": 0}
    assert h.worst is not None and h.worst.message.startswith("sex: four-fifths rule fails")
    assert h.text == (
        "Health: fail — 1 failing finding and 1 warning; worst: Fairness: sex: four-fifths rule fails: "
        "the lowest group selection rate is 74% of the highest."
    )
    assert rep.section("fairness").status == "ok" and rep.section("fairness").found == "fail"  # ran; found a failure


def test_health_is_shown_beside_the_gate_verdict_in_every_output() -> None:
    rep = _fairness_report()
    html = render_html(rep)
    header = html[: html.index('id="scorecard"')]
    assert "Gate verdict" in header and "Gates passed: the one gate holds." in header
    assert 'class="verdict health fail"' in header and "four-fifths rule fails" in header
    assert header.index("Gate verdict") < header.index("Health")  # side by side, each with its own label
    md = render_markdown(rep)
    assert md.splitlines()[2] == "**Gates passed: the one gate holds.**"
    assert md.splitlines()[4].startswith("❌ Health: fail — 1 failing finding and 1 warning; worst: Fairness:")
    data = json.loads(render_json(rep))
    assert data["passed"] is True and data["health"]["status"] == "fail"
    assert data["health"]["worst"]["section"] == "Fairness"
    assert [s["found"] for s in data["sections"]] == ["ok", "fail"]
    assert Report.from_dict(data).health == rep.health  # computed, so a report read back says the same


def test_health_without_gates_and_without_findings() -> None:
    rep = _fairness_report(gates=False)
    assert verdict(rep) == verdict(rep) and verdict(rep).status == "none"
    assert "nothing for CI to pass or fail" in verdict(rep).text and health(rep).status == "fail"
    rep.sections[1].findings = [Finding("info", "no gap above 0.1")]
    assert health(rep).status == "ok" and health(rep).text == "Health: ok — no failing or warning findings."
    rep.sections.append(Section.skipped("robustness", "Robustness", "not asked for"))
    rep.sections.append(Section.failed("explain", "Explanations", "RuntimeError: boom"))
    h = health(rep)
    assert h.status == "fail" and h.failed == ("Explanations",) and h.skipped == ("Robustness",)
    assert h.text.endswith("; 1 section failed to run (Explanations); 1 skipped (Robustness).")


def test_verdict_counts_each_kind_of_check_apart(make_report: Callable[..., Report]) -> None:
    rep = make_report()
    compare_to_baseline(rep, make_report(gates=False))
    assert verdict(rep).text == "Gates failed: 2 of 3 gates failed; all 18 baseline checks hold."
    rep.gates.append(
        GateResult("section explain completed", "explain", "completed", 0.0, None, False, "boom", "section")
    )
    assert verdict(rep).text.endswith("; the one section check failed.")


@pytest.mark.parametrize(
    ("gate", "line"),
    [
        (
            GateResult("robustness.masking.violations > 0", "robustness.masking.violations", ">", 0, 0.0, True),
            "fails when robustness.masking.violations > 0; value 0: pass",
        ),
        (
            GateResult("performance.accuracy < 0.9", "performance.accuracy", "<", 0.9, 0.3262701466592019, False),
            "fails when performance.accuracy < 0.9; value 0.3263: FAIL",
        ),
        (
            GateResult("x.y <= 0.5", "x.y", "<=", 0.5, None, False, "metric is undefined"),
            "fails when x.y <= 0.5; value undefined: FAIL (metric is undefined)",
        ),
        (
            GateResult(
                "section explain completed", "explain", "completed", 0.0, None, False, "RuntimeError: boom", "section"
            ),
            "section explain completed: failed — RuntimeError: boom",
        ),
    ],
)
def test_gate_lines_read_as_the_condition_they_are(gate: GateResult, line: str) -> None:
    assert gate_line(gate) == line
    rep = Report(title="t", gates=[gate])
    html = render_html(rep)
    assert ("fails when <code>" in html) != (gate.source == "section")
    junit = ET.fromstring(render_junit(rep)).find("testsuite/testcase")
    assert line in ET.tostring(junit, encoding="unicode").replace("&gt;", ">").replace("&lt;", "<")
    md_cell = render_markdown(rep).split("### Gates", 1)[1].splitlines()[4]
    assert (
        md_cell.replace("`", "")
        .replace("**", "")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("\\_", "_")
        .replace("&#64;", "@")
        .startswith(f"| {'✅ pass' if gate.passed else '❌ FAIL'} | {line}")
    )


def test_scorecard_groups_headline_metrics_by_section_with_direction_and_check() -> None:
    rep = _fairness_report()
    cards = scorecard(rep)
    assert [c.section.name for c in cards] == ["performance", "fairness"]
    ratio, diff = cards[1].groups
    assert ratio.stem == "fairness.sex.demographic_parity_ratio" and ratio.status == "fail"
    assert ratio.direction == "higher is better" and ratio.label.startswith(
        "Smallest over largest group selection rate"
    )
    assert diff.status == "warning" and diff.rule == "warns above 0.1" and diff.direction == "lower is better"
    html = render_html(rep)
    card = html[html.index('id="scorecard"') : html.index('id="model-card"')]
    assert (
        card.index("Performance</a>") < card.index("Fairness</a>") < card.index("fairness.sex.demographic_parity_ratio")
    )
    assert "✗</span> fail" in card and "⚠</span> warn" in card and "↓</span> lower" in card
    assert "fails below 0.8 (four-fifths rule)" in card and "0.078 – 0.192" in card
    md = render_markdown(rep)
    assert "| ↑ higher | ❌ fail |" in md and "| ↓ lower | ⚠️ warn |" in md


def test_metric_status_is_validated_and_round_trips() -> None:
    with pytest.raises(ValueError, match="metric status"):
        Metric("a.b", 1.0, status="bad")
    m = Metric("a.b", 0.9, **judged(0.9, warning=True, rule="warns above 0.5"))
    assert Metric.from_dict(m.to_dict()) == m
    assert judged(None, fail=True, rule="r") == {"status": "", "rule": "r"}  # undefined: not judged
