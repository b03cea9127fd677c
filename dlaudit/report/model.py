"""The report's data model: Report, Section, Metric, Finding, Table, Figure, GateResult.

Analyses build these; renderers (html, json, markdown, junit) only read them.
Everything serialises to plain JSON and back (``to_dict`` / ``from_dict``)
without loss of metrics and findings.
"""
from __future__ import annotations

import base64
import math
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Metric", "Finding", "Table", "Figure", "Section", "GateResult", "Report", "SEVERITIES", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1
SEVERITIES = ("info", "warning", "fail")
STATUSES = ("ok", "skipped", "error")


def _num(value: Any) -> float | None:
    """JSON-safe number: NaN and inf become None (undefined)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class Metric:
    """A named number. ``value`` None means undefined (``note`` says why)."""

    name: str
    value: float | None
    ci: tuple[float, float] | None = None
    description: str = ""
    higher_is_better: bool | None = None
    note: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _num(self.value))
        if self.ci is not None:
            object.__setattr__(self, "ci", (float(self.ci[0]), float(self.ci[1])))

    @property
    def defined(self) -> bool:
        return self.value is not None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ci"] = list(self.ci) if self.ci else None
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Metric:
        d = dict(d)
        if d.get("ci") is not None:
            d["ci"] = tuple(d["ci"])
        return cls(**d)


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
        return cls(**d)


@dataclass(frozen=True)
class Table:
    """A titled table of rows (lists of cells, numbers or strings)."""

    title: str
    columns: list[str]
    rows: list[list[Any]]
    caption: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "columns": list(self.columns), "rows": [[_cell(c) for c in r] for r in self.rows], "caption": self.caption}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Table:
        return cls(**d)


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

    def to_dict(self, *, include_data: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"caption": self.caption, "mime": self.mime, "alt": self.alt or self.caption}
        if include_data:
            out["data_base64"] = base64.b64encode(self.data).decode("ascii")
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Figure:
        return cls(caption=d["caption"], data=base64.b64decode(d.get("data_base64", "")), mime=d.get("mime", "image/png"), alt=d.get("alt", ""))

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
        }

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
    """The outcome of one gate ``metric op threshold``."""

    gate: str
    metric: str
    op: str
    threshold: float
    value: float | None
    passed: bool
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GateResult:
        return cls(**d)


@dataclass
class Report:
    """An audit: the model card, one section per analysis, gate results and provenance."""

    title: str
    card: dict[str, Any] = field(default_factory=dict)
    sections: list[Section] = field(default_factory=list)
    gates: list[GateResult] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def metrics(self) -> dict[str, float | None]:
        """Every metric of every section by its dotted name (the public contract)."""
        out: dict[str, float | None] = {}
        for sec in self.sections:
            for m in sec.metrics:
                out[m.name] = m.value
        return out

    @property
    def findings(self) -> list[Finding]:
        return [f for sec in self.sections for f in sec.findings]

    def section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)

    @property
    def passed(self) -> bool:
        """True when every gate checked so far holds."""
        return all(g.passed for g in self.gates)

    def check(self, gates: Any) -> list[GateResult]:
        """Evaluate gates (strings or :class:`~dlaudit.report.gates.Gate`) and record the results."""
        from .gates import check_gates

        results = check_gates(gates, self.metrics)
        self.gates.extend(results)
        return results

    def save(self, path: Any, *, format: str | None = None) -> Any:  # noqa: A002
        """Write the report; HTML, JSON, Markdown or JUnit by extension (or ``format=``)."""
        from .io import save_report

        return save_report(self, path, format=format)

    @classmethod
    def load(cls, path: Any) -> Report:
        """Read a JSON report back."""
        from .io import load_report

        return load_report(path)

    def to_dict(self, *, include_figures: bool = False) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "title": self.title,
            "metrics": self.metrics,
            "passed": self.passed,
            "gates": [g.to_dict() for g in self.gates],
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
        )
