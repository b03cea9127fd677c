"""Baseline comparison: this report against an earlier one (``--baseline old.json``).

Every metric of either report gets a row in the diff table. A headline metric
(:mod:`dlaudit.report.headline`) with a known direction is also a gate: it must
not get worse by more than ``max_drop`` (an absolute amount: 0.02 is two points
of accuracy), and it must still be computed when its section ran.

Like is compared with like: each section records the configuration it ran with
(``Section.params``: ``fast``, ``n``, ``steps``, the seed, the data...). When a
setting that changes the numbers differs between the two reports, that section's
metrics are not compared: their rows say ``skipped`` and why, and they gate nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .headline import higher_is_better, is_headline
from .io import load_report
from .model import DEFAULT_MAX_DROP, Comparison, GateResult, Metric, MetricDelta, Report, Section
from .numbers import fmt_number

__all__ = ["compare_to_baseline", "compare_reports", "config_differences", "DEFAULT_MAX_DROP", "NUMBER_NEUTRAL_PARAMS"]

_EPS = 1e-12  # float slack, so a drop of exactly max_drop passes
NUMBER_NEUTRAL_PARAMS = frozenset(
    {
        "batch_size",  # batches never change the numbers (random draws are per sample)
        "batch_size_chosen_by",
        "notes",
        # what was computed, not how: each metric's name already says which attack, budget, method or feature
        "methods",
        "attacks",
        "eps",
        "eps_l2",
        "noise",
        "features",
        "explains",
    }
)
"""Section parameters that do not change a metric computed under both configurations."""


def _config(section: Section, report: Report) -> dict[str, Any]:
    """The settings the section's numbers depend on: its params, and the audited data when it does not say."""
    data = report.provenance.get("data") or {}
    out: dict[str, Any] = {k: data[k] for k in ("name", "split") if k in data and section.params.get("data") is None}
    out.update({k: v for k, v in section.params.items() if k not in NUMBER_NEUTRAL_PARAMS})
    return out


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return fmt_number(value)
    return str(value)


def config_differences(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    """``["fast: false -> true", "n: 1000 -> 200"]``: the settings both record with different values.

    A setting only one side records is not a difference (an older report may not
    record it); nested settings (``settings.ig_steps``) are compared key by key.
    """
    out = []
    for key in old:
        if key not in new:
            continue
        a, b = old[key], new[key]
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out.extend(config_differences(a, b, f"{prefix}{key}."))
        elif _normal(a) != _normal(b):
            out.append(f"{prefix}{key}: {_text(a)} -> {_text(b)}")
    return out


def _normal(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_normal(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def compare_reports(
    current: Report, baseline: Report, *, max_drop: float = DEFAULT_MAX_DROP, source: str = ""
) -> tuple[Comparison, list[GateResult]]:
    """The diff of ``current`` against ``baseline`` and the gate result of each guarded metric."""
    if not max_drop >= 0:
        raise ConfigError(f"--max-drop must be a number >= 0, got {max_drop!r}")
    old = {m.name: m for sec in baseline.sections for m in sec.metrics}
    new = {m.name: m for sec in current.sections for m in sec.metrics}
    ran = {s.name for s in current.sections}
    skipped = _skipped_sections(current, baseline)
    rows: list[MetricDelta] = []
    gates: list[GateResult] = []
    for name in [*old, *(n for n in new if n not in old)]:
        section = name.split(".", 1)[0]
        if section in skipped and name in old and name in new:
            ref = new[name]
            rows.append(
                MetricDelta(
                    name,
                    old[name].value,
                    ref.value,
                    "skipped",
                    is_headline(ref),
                    higher_is_better(ref),
                    f"not compared: configuration differs ({skipped[section]})",
                )
            )
            continue
        row, gate = _compare_one(name, old.get(name), new.get(name), ran, max_drop)
        rows.append(row)
        if gate is not None:
            gates.append(gate)
    comparison = Comparison(
        baseline=source or baseline.title,
        max_drop=max_drop,
        rows=rows,
        baseline_generated=str(baseline.provenance.get("generated", "")),
        skipped=skipped,
    )
    return comparison, gates


def compare_to_baseline(
    report: Report, baseline: Report | str | Path, *, max_drop: float = DEFAULT_MAX_DROP, label: str | None = None
) -> Comparison:
    """Compare a report with an earlier one (or its JSON file) and record the result on the report.

    Parameters
    ----------
    report
        The new report; its ``comparison`` is set and its baseline gate results replaced.
    baseline
        The earlier :class:`Report`, or the path of its JSON file.
    max_drop
        How much worse (an absolute amount) a headline metric may get before it is a regression.
    label
        Names the baseline in the outputs (default: its path, or its title).

    Returns
    -------
    Comparison
        Every metric's change. Each compared headline metric also becomes a gate result
        with source ``"baseline"``, so ``report.passed`` is False after a regression.

    Examples
    --------
    >>> dlaudit.compare_to_baseline(report, "main.json", max_drop=0.02).passed  # doctest: +SKIP
    True
    """
    if not isinstance(baseline, Report):
        label = label or str(baseline)
        baseline = load_report(baseline)
    report.comparison, results = compare_reports(report, baseline, max_drop=max_drop, source=label or baseline.title)
    report.gates = [g for g in report.gates if g.source != "baseline"] + results
    return report.comparison


def _skipped_sections(current: Report, baseline: Report) -> dict[str, str]:
    """Section name -> the settings that differ, for sections both reports completed under different configurations."""
    out = {}
    for sec in current.sections:
        old = baseline.section(sec.name)
        if old is None or sec.status != "ok" or old.status != "ok":
            continue
        diffs = config_differences(_config(old, baseline), _config(sec, current))
        if diffs:
            out[sec.name] = ", ".join(diffs)
    return out


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
    gate = f"{name} {op} {fmt_number(threshold)}"
    context = f"baseline {fmt_number(before)}, max drop {fmt_number(max_drop)}"
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
