"""Gates: ``METRIC OP NUMBER`` checks that CI fails on."""
from __future__ import annotations

import math
import operator
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..errors import GateError
from .model import GateResult

__all__ = ["Gate", "parse_gate", "check_gates"]

_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_GATE_RE = re.compile(r"^\s*(?P<metric>[^\s<>=]+)\s*(?P<op><=|>=|<|>)\s*(?P<num>[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class Gate:
    """``metric op threshold``: the gate *holds* when the comparison is true."""

    metric: str
    op: str
    threshold: float

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.threshold:g}"


def parse_gate(text: str) -> Gate:
    """Parse ``"robustness.pgd_linf.acc@0.1 >= 0.6"``; a malformed gate is a :class:`GateError`."""
    m = _GATE_RE.match(str(text))
    if not m:
        raise GateError(f"malformed gate {text!r}; write METRIC OP NUMBER with OP one of <, <=, >, >= (e.g. 'performance.accuracy >= 0.95')")
    return Gate(m["metric"], m["op"], float(m["num"]))


def check_gates(gates: Iterable[str | Gate], metrics: Mapping[str, float | None]) -> list[GateResult]:
    """Evaluate gates against a flat metrics mapping.

    A gate on a metric that was not computed raises :class:`GateError` (it is an
    error, not a pass). A metric computed as undefined (None/NaN) fails its gate.
    """
    results = []
    for g in gates:
        gate = g if isinstance(g, Gate) else parse_gate(g)
        if gate.metric not in metrics:
            close = [k for k in metrics if k.split("@")[0] == gate.metric.split("@")[0]][:5]
            hint = f"; computed ones like it: {', '.join(close)}" if close else "; run the check that computes it (--checks) or fix the name"
            raise GateError(f"gate '{gate}' names metric {gate.metric!r}, which was not computed{hint}")
        value = metrics[gate.metric]
        if value is None or (isinstance(value, float) and math.isnan(value)):
            results.append(GateResult(str(gate), gate.metric, gate.op, gate.threshold, None, False, "metric is undefined"))
            continue
        ok = _OPS[gate.op](float(value), gate.threshold)
        results.append(GateResult(str(gate), gate.metric, gate.op, gate.threshold, float(value), ok))
    return results
