"""JUnit XML renderer: one testcase per gate, so CI systems show gate results natively.

Gates from ``--fail-on`` and ``[tool.dlaudit]`` form the ``dlaudit.gates``
suite; baseline checks (``--baseline``) the ``dlaudit.baseline`` suite. A gate
that fails is a ``<failure>``. Report properties (dlaudit version, seed,
model) ride along on each suite.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime

from .model import GateResult, Report
from .summary import gate_line

__all__ = ["render_junit"]

_SUITES = (("dlaudit.gates", lambda g: g.source != "baseline"), ("dlaudit.baseline", lambda g: g.source == "baseline"))
_XML_INVALID = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _clean(value: object) -> str:
    """Text XML 1.0 can hold (control characters removed); escaping is ElementTree's job."""
    return _XML_INVALID.sub("", str(value))


def _failure_message(g: GateResult) -> str:
    """The gate in the words every output uses: ``fails when X < 0.8; value 0.75: FAIL``."""
    return gate_line(g)


def _timestamp(generated: object) -> str | None:
    """JUnit wants ISO 8601 (``2024-05-01T12:00:00``); reports say ``2024-05-01 12:00:00 UTC``."""
    try:
        return datetime.strptime(str(generated), "%Y-%m-%d %H:%M:%S UTC").strftime("%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None


def _suite(parent: ET.Element, name: str, gates: list[GateResult], report: Report) -> None:
    failures = sum(not g.passed for g in gates)
    suite = ET.SubElement(
        parent, "testsuite", name=name, tests=str(len(gates)), failures=str(failures), errors="0", skipped="0", time="0"
    )
    stamp = _timestamp(report.provenance.get("generated"))
    if stamp:
        suite.set("timestamp", stamp)
    props = ET.SubElement(suite, "properties")
    versions = report.provenance.get("versions") or {}
    model = (report.provenance.get("model") or {}).get("source")
    for key, value in (
        ("dlaudit", versions.get("dlaudit")),
        ("seed", report.provenance.get("seed")),
        ("fast", report.provenance.get("fast")),
        ("model", model),
        ("title", report.title),
    ):
        if value is not None:
            ET.SubElement(props, "property", name=key, value=_clean(value))
    for g in gates:
        case = ET.SubElement(suite, "testcase", classname=name, name=_clean(g.gate), time="0")
        if not g.passed:
            message = _clean(_failure_message(g))
            failure = ET.SubElement(case, "failure", message=message, type="GateFailed")
            failure.text = message
        else:
            out = ET.SubElement(case, "system-out")
            out.text = _clean(gate_line(g))


def render_junit(report: Report) -> str:
    """The gate results as JUnit XML (a ``<testsuites>`` document)."""
    failures = sum(not g.passed for g in report.gates)
    root = ET.Element(
        "testsuites",
        name=_clean(report.title),
        tests=str(len(report.gates)),
        failures=str(failures),
        errors="0",
        time="0",
    )
    for name, keep in _SUITES:
        gates = [g for g in report.gates if keep(g)]
        if gates or name == "dlaudit.gates":
            _suite(root, name, gates, report)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
