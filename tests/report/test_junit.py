"""JUnit XML: one testcase per gate."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable

from dlaudit import compare_to_baseline
from dlaudit.report import Report
from dlaudit.report.junit import render_junit


def test_one_testcase_per_gate(report: Report) -> None:
    root = ET.fromstring(render_junit(report))
    assert root.tag == "testsuites" and root.get("tests") == "3" and root.get("failures") == "2"
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "dlaudit.gates" and suite.get("timestamp") == "2024-05-01T12:00:00"
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [g.gate for g in report.gates]
    assert [c.find("failure") is None for c in cases] == [True, False, False]
    failure = cases[1].find("failure")
    assert (
        failure is not None
        and failure.get("message") == "fails when robustness.pgd_linf.acc@0.1 < 0.8; value 0.75: FAIL"
    )
    assert (
        cases[2].find("failure").get("message")
        == "fails when explain.lime.stability <= 0.5; value undefined: FAIL (metric is undefined)"
    )
    assert cases[0].find("system-out").text == "fails when performance.accuracy < 0.95; value 0.9778: pass"
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["seed"] == "0" and props["model"] == "cat.pt"


def test_baseline_checks_get_their_own_suite(make_report: Callable[..., Report]) -> None:
    rep = make_report()
    compare_to_baseline(rep, make_report(gates=False))
    root = ET.fromstring(render_junit(rep))
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {"dlaudit.gates", "dlaudit.baseline"}
    assert suites["dlaudit.baseline"].get("tests") == "18" and suites["dlaudit.baseline"].get("failures") == "0"


def test_no_gates_is_an_empty_suite_and_odd_text_stays_valid_xml(make_report: Callable[..., Report]) -> None:
    rep = make_report(gates=False)
    rep.title = "a <b> & \x00\x1b c"
    root = ET.fromstring(render_junit(rep))
    assert root.get("tests") == "0" and root.get("name") == "a <b> &  c"
    assert [s.get("name") for s in root.findall("testsuite")] == ["dlaudit.gates"]
