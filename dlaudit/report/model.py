"""The report's data model: Report, Section, Metric, Finding, Table, Figure, GateResult, Comparison.

Analyses build these; renderers (html, json, markdown, junit) only read them.
This module is plain data and imports nothing else of dlaudit: what needs gates,
baselines or renderers is a function in those modules (:func:`.gates.check_report`,
:func:`.baseline.compare_to_baseline`, :func:`.io.save_report`, :func:`.io.load_report`),
so the import graph inside ``report/`` has no circle.
Everything serialises to plain JSON and back (``to_dict`` / ``from_dict``)
without loss of metrics and findings. The JSON layout (schema version 1) is
documented in the README's "Report" section.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = [
    "Metric",
    "Finding",
    "Table",
    "Figure",
    "Section",
    "GateResult",
    "MetricDelta",
    "Comparison",
    "Report",
    "Health",
    "health",
    "SEVERITIES",
    "SCHEMA_VERSION",
    "judged",
]

SCHEMA_VERSION = 1
DEFAULT_MAX_DROP = 0.02
"""How much a headline metric may get worse than its baseline (absolute) by default."""
SEVERITIES = ("info", "warning", "fail")
STATUSES = ("ok", "skipped", "error")
METRIC_STATUSES = ("", "pass", "inconclusive", "warning", "fail")
"""A metric judged against its analysis' finding threshold ("" when it has none; "inconclusive" when its interval
straddles the threshold)."""
FIGURE_MIMES = ("image/png", "image/svg+xml")


def _known(cls: type, d: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of ``d`` that are fields of ``cls`` (newer writers may add keys)."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in d.items() if k in names}


def _num(value: Any) -> float | None:
    """JSON-safe number: NaN and inf become None (undefined)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class Metric:
    """A named number. ``value`` None means undefined (``note`` says why).

    ``headline`` marks a metric for the scorecard and the baseline comparison;
    the metrics named in DESIGN.md's contract are headline metrics anyway
    (see :mod:`dlaudit.report.headline`).

    ``status`` is the metric judged against the threshold its analysis' findings
    use (``"pass"``, ``"warning"`` or ``"fail"``; empty when it has none) and
    ``rule`` says that threshold in words (``"warns above 0.5"``); see :func:`judged`.
    """

    name: str
    value: float | None
    ci: tuple[float, float] | None = None
    description: str = ""
    higher_is_better: bool | None = None
    note: str = ""
    headline: bool = False
    status: str = ""
    rule: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _num(self.value))
        if self.ci is not None:
            object.__setattr__(self, "ci", (float(self.ci[0]), float(self.ci[1])))
        if self.status not in METRIC_STATUSES:
            raise ValueError(f"metric status must be one of {METRIC_STATUSES[1:]} or empty, got {self.status!r}")

    @property
    def defined(self) -> bool:
        return self.value is not None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ci"] = list(self.ci) if self.ci else None
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Metric:
        d = _known(cls, d)
        if d.get("ci") is not None:
            d["ci"] = tuple(d["ci"])
        return cls(**d)


def judged(value: float | None, *, fail: bool = False, warning: bool = False, rule: str) -> dict[str, str]:
    """``status`` and ``rule`` keywords for :class:`Metric`: the verdict of the analysis' own finding threshold.

    ``fail`` / ``warning`` are the conditions under which the analysis reports a
    finding of that severity; an undefined value is not judged.

    >>> judged(0.9, warning=0.9 > 0.5, rule="warns above 0.5")
    {'status': 'warning', 'rule': 'warns above 0.5'}
    """
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return {"status": "", "rule": rule}
    return {"status": "fail" if fail else "warning" if warning else "pass", "rule": rule}


@dataclass(frozen=True)
class Finding:
    """Something a reader should know: ``severity`` is info, warning or fail."""

    severity: str
    message: str
    evidence: str = ""
    check: str = ""

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"finding severity must be one of {SEVERITIES}, got {self.severity!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Finding:
        return cls(**_known(cls, d))


@dataclass(frozen=True)
class Table:
    """A titled table of rows (lists of cells, numbers or strings)."""

    title: str
    columns: list[str]
    rows: list[list[Any]]
    caption: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "columns": list(self.columns),
            "rows": [[_cell(c) for c in r] for r in self.rows],
            "caption": self.caption,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Table:
        return cls(**_known(cls, d))


def _cell(c: Any) -> Any:
    if isinstance(c, float):
        return _num(c)
    if hasattr(c, "item"):  # numpy / torch scalars
        return _cell(c.item())
    return c


@dataclass(frozen=True)
class Figure:
    """An image (PNG or SVG bytes) with a caption and alt text."""

    caption: str
    data: bytes
    mime: str = "image/png"
    alt: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.data, str):  # SVG text
            object.__setattr__(self, "data", self.data.encode("utf-8"))
        if self.mime not in FIGURE_MIMES:
            raise ValueError(f"figure mime type must be one of {FIGURE_MIMES}, got {self.mime!r}")

    def to_dict(self, *, include_data: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"caption": self.caption, "mime": self.mime, "alt": self.alt or self.caption}
        if include_data:
            out["data_base64"] = base64.b64encode(self.data).decode("ascii")
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Figure:
        return cls(
            caption=d["caption"],
            data=base64.b64decode(d.get("data_base64", "")),
            mime=d.get("mime", "image/png"),
            alt=d.get("alt", ""),
        )

    @property
    def data_uri(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"


@dataclass
class Section:
    """The result of one analysis."""

    name: str
    title: str
    status: str = "ok"
    reason: str = ""
    summary: str = ""
    metrics: list[Metric] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    seconds: float | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"section status must be one of {STATUSES}, got {self.status!r}")

    def add_metric(self, name: str, value: Any, **kwargs: Any) -> Metric:
        m = Metric(name, value, **kwargs)
        self.metrics.append(m)
        return m

    def add_finding(self, severity: str, message: str, evidence: str = "", check: str = "") -> Finding:
        f = Finding(severity, message, evidence, check)
        self.findings.append(f)
        return f

    @classmethod
    def skipped(cls, name: str, title: str, reason: str) -> Section:
        return cls(name=name, title=title, status="skipped", reason=reason)

    @classmethod
    def failed(cls, name: str, title: str, reason: str) -> Section:
        sec = cls(name=name, title=title, status="error", reason=reason)
        sec.add_finding("fail", f"{title} could not be computed: {reason}", check="analysis-error")
        return sec

    def to_dict(self, *, include_figures: bool = True) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "status": self.status,
            "reason": self.reason,
            "summary": self.summary,
            "metrics": [m.to_dict() for m in self.metrics],
            "findings": [f.to_dict() for f in self.findings],
            "tables": [t.to_dict() for t in self.tables],
            "figures": [f.to_dict(include_data=include_figures) for f in self.figures],
            "params": self.params,
            "seconds": self.seconds,
            "found": self.found,
        }

    @property
    def found(self) -> str | None:
        """What the section found, apart from whether it ran (``status``): the most severe of its findings,
        ``"fail"``, ``"warning"`` or ``"ok"``; None when it did not run to the end (skipped or failed)."""
        if self.status != "ok":
            return None
        severities = {f.severity for f in self.findings}
        return "fail" if "fail" in severities else "warning" if "warning" in severities else "ok"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Section:
        return cls(
            name=d["name"],
            title=d["title"],
            status=d.get("status", "ok"),
            reason=d.get("reason", ""),
            summary=d.get("summary", ""),
            metrics=[Metric.from_dict(m) for m in d.get("metrics", [])],
            findings=[Finding.from_dict(f) for f in d.get("findings", [])],
            tables=[Table.from_dict(t) for t in d.get("tables", [])],
            figures=[Figure.from_dict(f) for f in d.get("figures", []) if f.get("data_base64")],
            params=d.get("params", {}),
            seconds=d.get("seconds"),
        )


@dataclass(frozen=True)
class GateResult:
    """The outcome of one gate ``metric op threshold``.

    ``source`` says where the gate came from: ``"fail-on"`` (the command line),
    ``"config"`` (``[tool.dlaudit]``), ``"baseline"`` (a regression check), or
    empty for gates checked from Python.
    """

    gate: str
    metric: str
    op: str
    threshold: float
    value: float | None
    passed: bool
    message: str = ""
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GateResult:
        return cls(**_known(cls, d))


DELTA_STATUSES = (
    "regression",
    "worse",
    "same",
    "better",
    "changed",
    "new",
    "missing",
    "not run",
    "undefined",
    "skipped",
)


@dataclass(frozen=True)
class MetricDelta:
    """One row of a baseline comparison: a metric's value then and now.

    ``status`` is one of :data:`DELTA_STATUSES`; ``regression`` only for a
    headline metric that got worse by more than the tolerance (or vanished);
    ``skipped`` when the two were computed under different configurations
    (``note`` says which settings differ), so comparing them would mean nothing.
    """

    metric: str
    baseline: float | None
    current: float | None
    status: str
    headline: bool = False
    higher_is_better: bool | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if self.status not in DELTA_STATUSES:
            raise ValueError(f"comparison status must be one of {DELTA_STATUSES}, got {self.status!r}")

    @property
    def change(self) -> float | None:
        if self.baseline is None or self.current is None:
            return None
        return self.current - self.baseline

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "change": self.change}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MetricDelta:
        return cls(**_known(cls, d))


@dataclass(frozen=True)
class Comparison:
    """A report compared with an earlier one (``--baseline``).

    ``skipped`` maps a section name to why its metrics were not compared (its
    configuration differs from the baseline's, e.g. ``fast: false -> true``).
    """

    baseline: str
    max_drop: float
    rows: list[MetricDelta]
    baseline_generated: str = ""
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def regressions(self) -> list[MetricDelta]:
        return [r for r in self.rows if r.status == "regression"]

    @property
    def compared(self) -> list[MetricDelta]:
        """Rows whose metric was compared (in both reports, under the same configuration)."""
        return [r for r in self.rows if r.status in ("regression", "worse", "same", "better", "changed", "undefined")]

    def summary(self) -> str:
        """One line: how many metrics were compared, regressed and skipped, and why."""
        n_reg = len(self.regressions)
        skipped = [r for r in self.rows if r.status == "skipped"]
        text = (
            f"baseline {self.baseline}: {len(self.compared)} metric{'s' if len(self.compared) != 1 else ''} compared, "
            + (f"{n_reg} regression{'s' if n_reg != 1 else ''}" if n_reg else "no regression")
        )
        if skipped:
            why = "; ".join(f"{name}: {_first_differences(reason)}" for name, reason in self.skipped.items())
            text += f", {len(skipped)} skipped (configuration differs: {why})" if why else f", {len(skipped)} skipped"
        return text + "."

    @property
    def passed(self) -> bool:
        return not self.regressions

    def to_dict(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline,
            "baseline_generated": self.baseline_generated,
            "max_drop": self.max_drop,
            "passed": self.passed,
            "regressions": [r.metric for r in self.regressions],
            "skipped": dict(self.skipped),
            "summary": self.summary(),
            "rows": [r.to_dict() for r in self.rows],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Comparison:
        return cls(
            baseline=d.get("baseline", ""),
            max_drop=float(d.get("max_drop", 0.0)),
            rows=[MetricDelta.from_dict(r) for r in d.get("rows", [])],
            baseline_generated=d.get("baseline_generated", ""),
            skipped=dict(d.get("skipped") or {}),
        )


# -- the health verdict -----------------------------------------------------------------------


@dataclass(frozen=True)
class Health:
    """What the findings say: ``status`` ``"fail"``, ``"warning"`` or ``"ok"``.

    ``worst`` is the most severe finding (the first of its severity in report order)
    and ``worst_section`` the title of its section; ``not_run`` the titles of sections
    that were skipped or failed.
    """

    status: str
    counts: dict[str, int]
    worst: Finding | None = None
    worst_section: str = ""
    worst_anchor: str = ""
    skipped: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()

    @property
    def worst_text(self) -> str:
        """The worst finding's first sentence (the report holds the rest)."""
        if self.worst is None:
            return ""
        first = self.worst.message.split(". ", 1)[0]
        return first if len(first) <= 240 else first[:239] + "…"

    @property
    def text(self) -> str:
        c = self.counts
        parts = [
            f"{c['fail']} failing finding{'s' if c['fail'] != 1 else ''}" if c["fail"] else "",
            f"{c['warning']} warning{'s' if c['warning'] != 1 else ''}" if c["warning"] else "",
        ]
        counted = " and ".join(p for p in parts if p) or "no failing or warning findings"
        text = f"Health: {self.status} — {counted}"
        if self.worst is not None and self.status != "ok":
            text += f"; worst: {self.worst_section}: {self.worst_text}"
        if self.failed:
            text += f"; {len(self.failed)} section{'s' if len(self.failed) != 1 else ''} failed to run ({', '.join(self.failed)})"
        if self.skipped:
            text += f"; {len(self.skipped)} skipped ({', '.join(self.skipped)})"
        return text + "."

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "counts": dict(self.counts),
            "worst": None
            if self.worst is None
            else {
                "section": self.worst_section,
                "severity": self.worst.severity,
                "message": self.worst.message,
                "check": self.worst.check,
            },
            "skipped": list(self.skipped),
            "failed": list(self.failed),
            "text": self.text,
        }


def health(report: Report) -> Health:
    """The health verdict built from every finding of every section (a failed section counts as a failing finding)."""
    counts = dict.fromkeys(reversed(SEVERITIES), 0)
    worst: tuple[Section, Finding] | None = None
    for sec in report.sections:
        for f in sec.findings:
            counts[f.severity] += 1
            if f.severity != "info" and (
                worst is None or SEVERITIES.index(f.severity) > SEVERITIES.index(worst[1].severity)
            ):
                worst = (sec, f)
    status = "fail" if counts["fail"] else "warning" if counts["warning"] else "ok"
    return Health(
        status,
        counts,
        worst[1] if worst else None,
        worst[0].title if worst else "",
        worst[0].name if worst else "",
        tuple(s.title for s in report.sections if s.status == "skipped"),
        tuple(s.title for s in report.sections if s.status == "error"),
    )


_KEY_SETTINGS = ("fast", "n", "steps", "seed", "data", "split", "name")


def _first_differences(reason: str, keep: int = 3) -> str:
    """The settings that matter most of ``"a: 1 -> 2, fast: false -> true, ..."``, the rest counted."""
    parts = [p.strip() for p in reason.split(", ") if p.strip()]
    parts.sort(key=lambda p: _KEY_SETTINGS.index(p.split(":")[0]) if p.split(":")[0] in _KEY_SETTINGS else 99)
    return ", ".join(parts[:keep]) + (f" and {len(parts) - keep} more" if len(parts) > keep else "")


@dataclass
class Report:
    """An audit: the model card, one section per analysis, gate results and provenance.

    Plain data: build one with :func:`dlaudit.audit`; check gates with
    :func:`dlaudit.check_report`, compare with an earlier report with
    :func:`dlaudit.compare_to_baseline`, write it with :func:`dlaudit.save_report`
    and read a JSON one back with :func:`dlaudit.load_report`.
    """

    title: str
    card: dict[str, Any] = field(default_factory=dict)
    sections: list[Section] = field(default_factory=list)
    gates: list[GateResult] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    comparison: Comparison | None = None
    errors: list[str] = field(default_factory=list, repr=False, compare=False)
    """Problems that leave the verdict unknown (a gate on a metric that was not computed);
    not stored in any output. ``dlaudit report`` writes the files, then exits 2 with the first."""

    @property
    def metrics(self) -> dict[str, float | None]:
        """Every metric of every section by its dotted name (the public contract)."""
        out: dict[str, float | None] = {}
        for sec in self.sections:
            for m in sec.metrics:
                out[m.name] = m.value
        return out

    def metric(self, name: str) -> Metric | None:
        """The :class:`Metric` called ``name`` (with its CI and note), or None."""
        return next((m for sec in self.sections for m in sec.metrics if m.name == name), None)

    @property
    def findings(self) -> list[Finding]:
        return [f for sec in self.sections for f in sec.findings]

    def section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)

    @property
    def fast(self) -> bool:
        """Whether the audit ran in the cheaper ``--fast`` configuration."""
        return bool(self.provenance.get("fast", False))

    @property
    def passed(self) -> bool:
        """True when every gate checked so far (baseline checks included) passes."""
        return all(g.passed for g in self.gates)

    @property
    def health(self) -> Health:
        """The verdict of the findings (fail / warning / ok, counts, the worst one), apart from the gates'.

        ``passed`` is what CI gates on; this is what the audit found whether or not a gate asks about it.
        """
        return health(self)

    def to_dict(self, *, include_figures: bool = False) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "title": self.title,
            "passed": self.passed,
            "health": self.health.to_dict(),
            "metrics": self.metrics,
            "gates": [g.to_dict() for g in self.gates],
            "baseline": self.comparison.to_dict() if self.comparison else None,
            "card": self.card,
            "sections": [s.to_dict(include_figures=include_figures) for s in self.sections],
            "provenance": self.provenance,
            "extras": self.extras,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Report:
        version = d.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(f"report schema version {version!r} is not {SCHEMA_VERSION}")
        return cls(
            title=d.get("title", "dlaudit report"),
            card=d.get("card", {}),
            sections=[Section.from_dict(s) for s in d.get("sections", [])],
            gates=[GateResult.from_dict(g) for g in d.get("gates", [])],
            provenance=d.get("provenance", {}),
            extras=d.get("extras", {}),
            comparison=Comparison.from_dict(d["baseline"]) if d.get("baseline") else None,
        )
