"""What every renderer shows first: the gate verdict, the health verdict, the scorecard, gate lines.

Pure functions of a :class:`Report`, shared by the HTML, Markdown, JUnit and terminal outputs,
so that each says the same thing in the same words.

Two verdicts, never one:

- the **gate verdict** (:func:`verdict`) is what CI acts on: did every gate (``--fail-on``,
  ``[tool.dlaudit]``, baseline checks, sections that must complete) hold?
- the **health verdict** (:func:`health`) is what the audit found, whether or not a gate
  asks about it: the most severe finding (fail / warning / ok), the counts, and the worst
  finding by name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .headline import headline_metrics, higher_is_better
from .model import SEVERITIES, GateResult, Health, Metric, MetricDelta, Report, Section, health
from .numbers import fmt_number

__all__ = [
    "Verdict",
    "Health",
    "HeadlineRow",
    "HeadlineGroup",
    "ScoreSection",
    "verdict",
    "health",
    "headline_rows",
    "headline_groups",
    "scorecard",
    "finding_counts",
    "gate_line",
    "gate_condition",
    "ran_label",
    "direction",
    "RAN",
]

RAN = {"ok": "completed", "skipped": "skipped", "error": "failed"}
"""Whether a section ran, in words (its ``status``); what it found is :attr:`Section.found`."""
_RANK = {"fail": 4, "warning": 3, "inconclusive": 2, "pass": 1, "": 0}


def ran_label(section: Section) -> str:
    return RAN.get(section.status, section.status)


# -- the gate verdict -------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """``status`` is ``"pass"``, ``"fail"`` or ``"none"`` (no gates were set)."""

    status: str
    text: str


def verdict(report: Report) -> Verdict:
    """One line: did every gate (baseline checks and section completion included) hold?

    ``"Gates failed: 2 of 3 gates failed; all 18 baseline checks hold."``
    """
    if not report.gates:
        return Verdict("none", "No gates set: nothing for CI to pass or fail.")
    kinds = (
        ("gate", [g for g in report.gates if g.source not in ("baseline", "section")]),
        ("baseline check", [g for g in report.gates if g.source == "baseline"]),
        ("section check", [g for g in report.gates if g.source == "section"]),
    )
    parts = []
    for kind, gates in kinds:
        failed = sum(not g.passed for g in gates)
        if len(gates) == 1:
            parts.append(f"the one {kind} {'failed' if failed else 'holds'}")
        elif gates:
            parts.append(f"{failed} of {len(gates)} {kind}s failed" if failed else f"all {len(gates)} {kind}s hold")
    status = "pass" if report.passed else "fail"
    text = "; ".join(parts)
    return Verdict(status, f"Gates {'passed' if status == 'pass' else 'failed'}: {text}.")


# -- gate lines --------------------------------------------------------------------------------


def gate_condition(g: GateResult) -> str:
    """The condition the gate fails on (``robustness.masking.violations > 0``), as the user wrote it;
    a baseline check's threshold is rounded as every number is (see :mod:`dlaudit.report.baseline`)."""
    return g.gate


def gate_line(g: GateResult) -> str:
    """A gate as it reads in every output: ``fails when robustness.masking.violations > 0; value 0: pass``.

    A section that must complete reads ``section explain completed: failed — <reason>``; a
    note (baseline, why undefined) follows in parentheses.
    """
    if g.source == "section":
        return f"{g.gate}: " + ("yes" if g.passed else f"failed — {g.message}" if g.message else "failed")
    outcome = "pass" if g.passed else "FAIL"
    line = f"fails when {gate_condition(g)}; value {fmt_number(g.value)}: {outcome}"
    return line + (f" ({g.message})" if g.message else "")


# -- the scorecard -----------------------------------------------------------------------------


def direction(metric: Metric) -> str:
    """``"higher is better"``, ``"lower is better"`` or empty."""
    up = higher_is_better(metric)
    return "" if up is None else "higher is better" if up else "lower is better"


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


_TRAILING = re.compile(
    r"\s*\((?:[^()]*(?:is better|more faithful|passes|more stable|is fairer)[^()]*)\)\s*$", re.IGNORECASE
)
_BUDGET_WORDS = {"at", "eps", "in", "of", "standard", "deviation", "strength", "radius"}


def _label(descriptions: list[str], name: str) -> str:
    """A reader's label: the description (curves: the part their points share), without the direction said twice."""
    texts = [d for d in descriptions if d]
    if not texts:
        stem = name.split(".", 1)[1] if "." in name else name
        text = stem.replace(".", " · ").replace("_", " ")
        return text[:1].upper() + text[1:]
    if len(set(texts)) > 1:
        prefix = texts[0]
        for t in texts[1:]:
            while not t.startswith(prefix):
                prefix = prefix[:-1]
        words = prefix.rsplit(" ", 1)[0].split() if " " in prefix else prefix.split()
        while words and words[-1].lower().strip("[(-") in _BUDGET_WORDS | {""}:
            words.pop()
        text = " ".join(words) or texts[0]
    else:
        text = re.sub(r"\s+at eps\s+\S+$", "", texts[0])
    text = _TRAILING.sub("", text)
    return text[:1].upper() + text[1:]


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

    @property
    def label(self) -> str:
        return _label([r.metric.description for r in self.rows], self.stem)

    @property
    def direction(self) -> str:
        return direction(self.rows[0].metric)

    @property
    def status(self) -> str:
        """The most severe judgement of its points against the finding thresholds ("" when none is judged)."""
        return max((r.metric.status for r in self.rows), key=lambda s: _RANK[s], default="")

    @property
    def rule(self) -> str:
        return next((r.metric.rule for r in self.rows if r.metric.rule), "")

    @property
    def gate_status(self) -> str:
        statuses = {r.gate_status for r in self.rows} - {"none"}
        return "fail" if "fail" in statuses else "pass" if statuses else "none"

    @property
    def regressed(self) -> list[str]:
        """The budgets (or the metric itself, as ``""``) that regressed against the baseline."""
        return [r.at for r in self.rows if r.delta and r.delta.status == "regression"]


@dataclass(frozen=True)
class ScoreSection:
    """The scorecard's rows of one section, with whether it ran and what it found."""

    section: Section
    groups: tuple[HeadlineGroup, ...]

    @property
    def ran(self) -> str:
        return ran_label(self.section)


def headline_rows(report: Report) -> list[HeadlineRow]:
    """Each headline metric with its gates (not baseline checks) and its baseline row."""
    deltas = {r.metric: r for r in report.comparison.rows} if report.comparison else {}
    return [
        HeadlineRow(
            m, tuple(g for g in report.gates if g.metric == m.name and g.source != "baseline"), deltas.get(m.name)
        )
        for m in headline_metrics(report)
    ]


def _grouped(rows: list[HeadlineRow]) -> list[HeadlineGroup]:
    groups: dict[str, list[HeadlineRow]] = {}
    for row in rows:
        stem = row.metric.name.rpartition("@")[0] if row.at else row.metric.name
        groups.setdefault(stem, []).append(row)
    return [HeadlineGroup(stem, tuple(rs)) for stem, rs in groups.items()]


def headline_groups(report: Report) -> list[HeadlineGroup]:
    """:func:`headline_rows` with the points of each curve (``name@budget``) gathered on one row."""
    return _grouped(headline_rows(report))


def scorecard(report: Report) -> list[ScoreSection]:
    """The headline groups by section, in report order; every section appears, with or without headline metrics."""
    rows = headline_rows(report)
    out = []
    for sec in report.sections:
        names = {m.name for m in sec.metrics}
        out.append(ScoreSection(sec, tuple(_grouped([r for r in rows if r.metric.name in names]))))
    return out


def finding_counts(section: Section) -> dict[str, int]:
    """Findings per severity: ``{"fail": 1, "warning": 0, "info": 2}``."""
    return {sev: sum(1 for f in section.findings if f.severity == sev) for sev in reversed(SEVERITIES)}
