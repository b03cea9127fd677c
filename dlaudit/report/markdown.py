"""Markdown renderer: a summary fit for a pull-request comment or ``$GITHUB_STEP_SUMMARY``.

Headline metrics, every gate with pass/fail, findings per section, skipped
sections with their reasons, and the baseline regressions. Text from user data
is escaped, so a class name never becomes a link, markup or a broken table.
"""

from __future__ import annotations

from .model import Report, Section
from .numbers import fmt_change, fmt_ci, fmt_number
from .summary import HeadlineGroup, HeadlineRow, finding_counts, headline_groups, verdict

__all__ = ["render_markdown", "MAX_FINDINGS"]

MAX_FINDINGS = 20
"""At most this many fail/warning findings are listed (the HTML report has them all)."""

_ICON = {
    "pass": "✅ pass",
    "fail": "❌ **FAIL**",
    "none": "–",
    "ok": "✅ ok",
    "skipped": "⏭️ skipped",
    "error": "❌ error",
}
_VERDICT = {"pass": "✅", "fail": "❌", "none": "ℹ️"}
_SEVERITY = {"fail": "❌ fail", "warning": "⚠️ warning", "info": "ℹ️ info"}
_ESCAPE = {
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
    "|": "\\|",
    "\\": "\\\\",
    "*": "\\*",
    "_": "\\_",
    "`": "\\`",
    "[": "\\[",
    "]": "\\]",
    "#": "\\#",
    "~": "\\~",
}


_AUTOLINKS = (("://", "&#58;//"), ("www.", "www&#46;"), ("@", "&#64;"))
"""GitHub turns bare URLs, www. names and e-mail addresses into links without any markup; these break them."""


def text(value: object) -> str:
    """User text made inert: no markup, links (bracketed or bare), emphasis or table breaks; one line."""
    out = "".join(_ESCAPE.get(ch, ch) for ch in " ".join(str(value).split()))
    for needle, inert in _AUTOLINKS:
        out = out.replace(needle, inert)
    return out


def code(value: object) -> str:
    """An inline code span that survives a table cell."""
    s = " ".join(str(value).split()).replace("`", "'").replace("|", "\\|")
    return f"`{s}`"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(r) + " |" for r in rows),
        "",
    ]


def render_markdown(report: Report) -> str:
    """The report as a Markdown summary."""
    v = verdict(report)
    lines = [f"## {_VERDICT[v.status]} {text(report.title)}", "", f"**{text(v.text)}**", ""]
    if report.fast:
        lines += [
            "_Fast configuration (`--fast`): fewer samples and steps; numbers are rougher than a full audit._",
            "",
        ]
    lines += (
        _gates(report) + _headline(report) + _sections(report) + _findings(report) + _baseline(report) + _footer(report)
    )
    return "\n".join(lines).rstrip() + "\n"


def _gates(report: Report) -> list[str]:
    if not report.gates:
        return ["No gates were set.", ""]
    rows = [
        [
            _ICON["pass" if g.passed else "fail"],
            code(g.gate),
            fmt_number(g.value),
            text(g.source or "python"),
            text(g.message),
        ]
        for g in report.gates
    ]
    return ["### Gates", "", *_table(["result", "fails when", "value", "from", "note"], rows)]


def _headline(report: Report) -> list[str]:
    groups = headline_groups(report)
    if not groups:
        return []
    header = ["metric", "value", "95% CI", "gate"]
    if report.comparison:
        header += ["baseline", "change"]
    return [
        "### Headline metrics",
        "",
        *_table(header, [_curve_cells(g, report) if g.curve else _metric_cells(g.rows[0], report) for g in groups]),
    ]


def _metric_cells(r: HeadlineRow, report: Report) -> list[str]:
    cells = [code(r.metric.name), fmt_number(r.metric.value), fmt_ci(r.metric.ci), _ICON[r.gate_status]]
    if report.comparison:
        d = r.delta
        cells += [
            fmt_number(d.baseline) if d else "",
            (fmt_change(d.change) + (" ❌ regression" if d.status == "regression" else "")) if d else "",
        ]
    return cells


def _curve_cells(g: HeadlineGroup, report: Report) -> list[str]:
    """A curve on one row: ``@0.05: 0.887 · @0.1: 0.602 ❌``."""
    mark = {"pass": " ✅", "fail": " ❌", "none": ""}
    points = " · ".join(f"@{text(r.at)}: {fmt_number(r.metric.value)}{mark[r.gate_status]}" for r in g.rows)
    statuses = {r.gate_status for r in g.rows} - {"none"}
    cells = [code(g.stem + "@"), points, "", _ICON["fail" if "fail" in statuses else "pass" if statuses else "none"]]
    if report.comparison:
        regressed = [f"@{text(r.at)}" for r in g.rows if r.delta and r.delta.status == "regression"]
        cells += ["", f"❌ regression at {', '.join(regressed)}" if regressed else ""]
    return cells


def _counts(section: Section) -> str:
    c = finding_counts(section)
    parts = [
        f"{c['fail']} ❌ fail" if c["fail"] else "",
        f"{c['warning']} ⚠️ warning" if c["warning"] else "",
        f"{c['info']} info" if c["info"] else "",
    ]
    return ", ".join(p for p in parts if p) or "none"


def _sections(report: Report) -> list[str]:
    rows = [
        [text(s.title), _ICON[s.status], _counts(s), text(s.summary if s.status == "ok" else s.reason)]
        for s in report.sections
    ]
    return ["### Sections", "", *_table(["section", "status", "findings", "summary or reason"], rows)] if rows else []


def _findings(report: Report) -> list[str]:
    worth = [(s, f) for s in report.sections for f in s.findings if f.severity != "info"]
    worth.sort(key=lambda sf: sf[1].severity != "fail")
    if not worth:
        return []
    lines = [f"<details><summary>{len(worth)} finding{'s' if len(worth) != 1 else ''} to look at</summary>", ""]
    lines += [f"- {_SEVERITY[f.severity]} ({text(s.title)}): {text(f.message)}" for s, f in worth[:MAX_FINDINGS]]
    if len(worth) > MAX_FINDINGS:
        lines.append(f"- … and {len(worth) - MAX_FINDINGS} more in the HTML report")
    return [*lines, "", "</details>", ""]


def _baseline(report: Report) -> list[str]:
    c = report.comparison
    if c is None:
        return []
    head = f"### Baseline: {'✅ no regression' if c.passed else f'❌ {len(c.regressions)} regression' + ('s' if len(c.regressions) != 1 else '')}"
    lines = [
        head,
        "",
        f"Compared with {code(c.baseline)}; a headline metric may get worse by at most {fmt_number(c.max_drop)}.",
        "",
    ]
    shown = [r for r in c.rows if r.headline or r.status == "regression"]
    if shown:
        rows = [
            [
                code(r.metric),
                fmt_number(r.baseline),
                fmt_number(r.current),
                fmt_change(r.change),
                ("❌ **regression**" if r.status == "regression" else text(r.status)),
            ]
            for r in shown
        ]
        lines += _table(["metric", "baseline", "now", "change", "status"], rows)
    return lines


def _footer(report: Report) -> list[str]:
    p = report.provenance
    versions = p.get("versions") or {}
    bits = [
        f"dlaudit {versions.get('dlaudit', '')}".strip(),
        f"torch {versions['torch']}" if "torch" in versions else "",
        f"seed {p['seed']}" if "seed" in p else "",
        f"device {p['device']}" if "device" in p else "",
    ]
    if isinstance(p.get("total_seconds"), (int, float)):
        bits.append(f"{p['total_seconds']:.1f} s")
    line = " · ".join(text(b) for b in bits if b)
    if p.get("command"):
        line += f" · {text(p['command'])}"
    return [f"<sub>{line}</sub>", ""] if line else []
