"""Gates: ``METRIC OP NUMBER`` checks that CI fails on.

A gate is the condition to fail on, as ``--fail-on`` reads: ``--fail-on
"robustness.pgd_linf.acc@0.1 < 0.6"`` fails the run when robust accuracy at eps
0.1 is below 0.6. A gate *passes* when its condition is false and *fails* when it
is true, or when the metric is undefined (it cannot be checked). ``dlaudit
report`` exits 1 when a gate fails, and 2 when a gate is malformed or names a
metric that was not computed (an error, never a silent pass).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..errors import GateError
from .model import GateResult, Report

__all__ = ["Gate", "OPS", "parse_gate", "parse_gates", "check_gates", "check_report"]

OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_GATE_RE = re.compile(
    r"^\s*(?P<metric>[^\s<>=]+)\s*(?P<op><=|>=|<|>)\s*(?P<num>[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)\s*$"
)
MALFORMED = "malformed gate {gate!r}; write METRIC OP NUMBER, the condition to fail on, with OP one of <, <=, >, >= (e.g. 'performance.accuracy < 0.95')"
NOT_COMPUTED = "gate '{gate}' names metric {metric!r}, which was not computed; {hint}"


@dataclass(frozen=True)
class Gate:
    """``metric op threshold``: the condition to fail on (the gate fails when it is true)."""

    metric: str
    op: str
    threshold: float

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise GateError(f"gate operator must be one of {', '.join(OPS)}, got {self.op!r}")
        if not math.isfinite(self.threshold):
            raise GateError(f"gate threshold must be a finite number, got {self.threshold!r}")

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {_number(self.threshold)}"

    def fails(self, value: float) -> bool:
        """True when ``value`` meets the fail condition."""
        return bool(OPS[self.op](float(value), self.threshold))


def _number(x: float) -> str:
    """The shortest text that reads back as ``x`` (``0.95``, ``1``, ``1e-06``)."""
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") else text


def parse_gate(text: str | Gate) -> Gate:
    """Parse ``"robustness.pgd_linf.acc@0.1 < 0.6"``; a malformed gate is a :class:`GateError`."""
    if isinstance(text, Gate):
        return text
    m = _GATE_RE.match(str(text))
    if not m:
        raise GateError(MALFORMED.format(gate=text))
    return Gate(m["metric"], m["op"], float(m["num"]))


def parse_gates(texts: Iterable[str | Gate]) -> list[Gate]:
    """Parse every gate first, so a malformed one fails before any work is done."""
    return [parse_gate(t) for t in texts]


def check_gates(
    gates: Iterable[str | Gate],
    metrics: Mapping[str, float | None],
    *,
    source: str = "",
    missing_reasons: Mapping[str, str] | None = None,
) -> list[GateResult]:
    """Evaluate gates against a flat metrics mapping.

    Parameters
    ----------
    gates
        Gate strings or :class:`Gate` objects.
    metrics
        Metric name -> value (``None`` when undefined), e.g. ``report.metrics``.
    source
        Recorded on each result (``"fail-on"``, ``"config"``...).
    missing_reasons
        Section name -> why it has no metrics, used in the error message when a
        gate names a metric that was not computed.

    A gate on a metric that was not computed raises :class:`GateError`. A metric
    computed as undefined (None/NaN) fails its gate.
    """
    parsed = parse_gates(gates)
    for gate in parsed:
        if gate.metric not in metrics:
            raise GateError(
                NOT_COMPUTED.format(
                    gate=gate, metric=gate.metric, hint=_missing_hint(gate.metric, metrics, missing_reasons or {})
                )
            )
    return [_result(gate, metrics[gate.metric], source) for gate in parsed]


def check_report(report: Report, gates: Iterable[str | Gate], *, source: str = "") -> list[GateResult]:
    """Evaluate gates on a report's metrics, record the results on the report and return them.

    Parameters
    ----------
    report
        The report; its ``gates`` list gains the results, so they show in every output.
    gates
        ``"METRIC OP NUMBER"`` strings or :class:`Gate` objects.
    source
        Recorded on each result (``"fail-on"``, ``"config"``, ``"demo"``...).

    Returns
    -------
    list of GateResult
        One per gate, in order.

    Raises
    ------
    GateError
        A gate is malformed or names a metric that was not computed (the message says
        why, e.g. that its section was skipped); an undefined metric fails its gate.

    Examples
    --------
    >>> dlaudit.check_report(report, ["performance.accuracy < 0.9"])  # doctest: +SKIP
    [GateResult(gate='performance.accuracy < 0.9', ..., passed=True, ...)]
    """
    why = {
        s.name: f"the {s.name} section was {'skipped' if s.status == 'skipped' else 'not computed'}: {s.reason}"
        for s in report.sections
        if s.status != "ok"
    }
    results = check_gates(gates, report.metrics, source=source, missing_reasons=why)
    report.gates.extend(results)
    return results


def _result(gate: Gate, value: float | None, source: str) -> GateResult:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return GateResult(str(gate), gate.metric, gate.op, gate.threshold, None, False, "metric is undefined", source)
    return GateResult(str(gate), gate.metric, gate.op, gate.threshold, float(value), not gate.fails(value), "", source)


def _missing_hint(metric: str, metrics: Mapping[str, float | None], reasons: Mapping[str, str]) -> str:
    section = metric.split(".", 1)[0]
    if section in reasons:
        return reasons[section]
    stem = metric.split("@")[0]
    close = [k for k in metrics if k.split("@")[0] == stem or k.startswith(section + ".")][:6]
    if close:
        return f"computed ones like it: {', '.join(close)}"
    return "run the check that computes it (--checks) or fix the name"
