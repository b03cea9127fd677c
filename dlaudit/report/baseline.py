"""Baseline comparison: this report against an earlier one (``--baseline old.json``).

Every metric of either report gets a row in the diff table. A headline metric
(:mod:`dlaudit.report.headline`) with a known direction is also a gate: it must
not get worse by more than ``max_drop`` (an absolute amount: 0.02 is two points
of accuracy), and it must still be computed when its section ran.
"""

from __future__ import annotations

from ..errors import ConfigError
from .headline import higher_is_better, is_headline
from .model import DEFAULT_MAX_DROP, Comparison, GateResult, Metric, MetricDelta, Report

__all__ = ["compare_reports", "DEFAULT_MAX_DROP"]

_EPS = 1e-12  # float slack, so a drop of exactly max_drop passes


def compare_reports(
    current: Report, baseline: Report, *, max_drop: float = DEFAULT_MAX_DROP, source: str = ""
) -> tuple[Comparison, list[GateResult]]:
    """The diff of ``current`` against ``baseline`` and the gate result of each guarded metric."""
    if not max_drop >= 0:
        raise ConfigError(f"--max-drop must be a number >= 0, got {max_drop!r}")
    old = {m.name: m for sec in baseline.sections for m in sec.metrics}
    new = {m.name: m for sec in current.sections for m in sec.metrics}
    ran = {s.name for s in current.sections}
    rows: list[MetricDelta] = []
    gates: list[GateResult] = []
    for name in [*old, *(n for n in new if n not in old)]:
        row, gate = _compare_one(name, old.get(name), new.get(name), ran, max_drop)
        rows.append(row)
        if gate is not None:
            gates.append(gate)
    comparison = Comparison(
        baseline=source or baseline.title,
        max_drop=max_drop,
        rows=rows,
        baseline_generated=str(baseline.provenance.get("generated", "")),
    )
    return comparison, gates


def _compare_one(
    name: str, old: Metric | None, new: Metric | None, ran: set[str], max_drop: float
) -> tuple[MetricDelta, GateResult | None]:
    ref = new if new is not None else old
    headline = ref is not None and is_headline(ref)
    up = higher_is_better(ref) if ref is not None else None
    before = old.value if old is not None else None
    after = new.value if new is not None else None
    if old is None:
        return MetricDelta(name, None, after, "new", headline, up), None
    if new is None and name.split(".", 1)[0] not in ran:
        return MetricDelta(name, before, None, "not run", headline, up), None
    if not (headline and up is not None and before is not None):
        return MetricDelta(
            name, before, after, _status(before, after, up, computed=new is not None), headline, up
        ), None
    op = "<" if up else ">"  # the fail condition: worse than the baseline by more than max_drop
    threshold = before - max_drop if up else before + max_drop
    gate = f"{name} {op} {threshold:g}"
    context = f"baseline {before:.4g}, max drop {max_drop:g}"
    if after is None:
        why = "not computed in this run" if new is None else "undefined in this run"
        return MetricDelta(name, before, None, "regression", headline, up), GateResult(
            gate, name, op, threshold, None, False, f"{why}; {context}", "baseline"
        )
    worse = (before - after) if up else (after - before)
    passed = worse <= max_drop + _EPS
    status = _status(before, after, up, computed=True) if passed else "regression"
    return MetricDelta(name, before, after, status, headline, up), GateResult(
        gate, name, op, threshold, after, passed, context, "baseline"
    )


def _status(before: float | None, after: float | None, up: bool | None, *, computed: bool) -> str:
    """How a metric moved, when it is not a guarded one (or moved within the tolerance)."""
    if not computed:
        return "missing"
    if after is None:
        return "undefined" if before is not None else "same"
    if before is None:
        return "changed"
    if abs(after - before) <= _EPS:
        return "same"
    if up is None:
        return "changed"
    return "better" if (after > before) == up else "worse"
