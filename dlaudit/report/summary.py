"""What every renderer shows first: the verdict, the scorecard rows, finding counts.

Pure functions of a :class:`Report`, shared by the HTML, Markdown and terminal outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

from .headline import headline_metrics
from .model import SEVERITIES, GateResult, Metric, MetricDelta, Report, Section

__all__ = ["Verdict", "HeadlineRow", "HeadlineGroup", "verdict", "headline_rows", "headline_groups", "finding_counts"]


@dataclass(frozen=True)
class Verdict:
    """``status`` is ``"pass"``, ``"fail"`` or ``"none"`` (no gates were set)."""

    status: str
    text: str


@dataclass(frozen=True)
class HeadlineRow:
    """A headline metric with the gates that name it and its baseline comparison."""

    metric: Metric
    gates: tuple[GateResult, ...]
    delta: MetricDelta | None

    @property
    def gate_status(self) -> str:
        """``"pass"``, ``"fail"``, or ``"none"`` when no gate names the metric."""
        if not self.gates:
            return "none"
        return "pass" if all(g.passed for g in self.gates) else "fail"

    @property
    def at(self) -> str:
        """The budget after ``@`` (``"0.1"`` in ``robustness.pgd_linf.acc@0.1``), or empty."""
        return self.metric.name.rpartition("@")[2] if "@" in self.metric.name else ""


@dataclass(frozen=True)
class HeadlineGroup:
    """Headline rows that share a name up to ``@``: a curve such as accuracy against eps.

    A metric without ``@`` is a group of one; the scorecard shows a curve on one line.
    """

    stem: str
    rows: tuple[HeadlineRow, ...]

    @property
    def curve(self) -> bool:
        return len(self.rows) > 1 or bool(self.rows[0].at)


def verdict(report: Report) -> Verdict:
    """One line: did every gate (baseline checks included) pass?"""
    gates = [g for g in report.gates if g.source != "baseline"]
    checks = [g for g in report.gates if g.source == "baseline"]
    if not report.gates:
        return Verdict("none", "No gates set: nothing to pass or fail.")
    parts = []
    if gates:
        parts.append(f"{len(gates)} gate{'s' if len(gates) != 1 else ''}")
    if checks:
        parts.append(f"{len(checks)} baseline check{'s' if len(checks) != 1 else ''}")
    what = " and ".join(parts)
    failed = [g for g in report.gates if not g.passed]
    if not failed:
        return Verdict(
            "pass", "Passed: the one gate passes." if len(report.gates) == 1 else f"Passed: all {what} pass."
        )
    return Verdict(
        "fail", "Failed: the one gate failed." if len(report.gates) == 1 else f"Failed: {len(failed)} of {what} failed."
    )


def headline_rows(report: Report) -> list[HeadlineRow]:
    """Each headline metric with its gates (not baseline checks) and its baseline row."""
    deltas = {r.metric: r for r in report.comparison.rows} if report.comparison else {}
    return [
        HeadlineRow(
            m, tuple(g for g in report.gates if g.metric == m.name and g.source != "baseline"), deltas.get(m.name)
        )
        for m in headline_metrics(report)
    ]


def headline_groups(report: Report) -> list[HeadlineGroup]:
    """:func:`headline_rows` with the points of each curve (``name@budget``) gathered on one row."""
    groups: dict[str, list[HeadlineRow]] = {}
    for row in headline_rows(report):
        stem = row.metric.name.rpartition("@")[0] if row.at else row.metric.name
        groups.setdefault(stem, []).append(row)
    return [HeadlineGroup(stem, tuple(rows)) for stem, rows in groups.items()]


def finding_counts(section: Section) -> dict[str, int]:
    """Findings per severity: ``{"fail": 1, "warning": 0, "info": 2}``."""
    return {sev: sum(1 for f in section.findings if f.severity == sev) for sev in reversed(SEVERITIES)}
