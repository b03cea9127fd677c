"""Markdown renderer: a summary fit for a pull-request comment or ``$GITHUB_STEP_SUMMARY``.

Headline metrics, every gate with pass/fail, findings per section, skipped
sections with their reasons, and the baseline regressions. Text from user data
is escaped, so a class name never becomes a link, markup or a broken table.
"""

from __future__ import annotations

from .model import GateResult, Report, Section
from .numbers import fmt_change, fmt_ci, fmt_number
from .summary import HeadlineGroup, HeadlineRow, finding_counts, ran_label, scorecard, verdict

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
_HEALTH = {"fail": "❌", "warning": "⚠️", "ok": "✅"}
_CHECK = {"pass": "✅ pass", "inconclusive": "❔ inconclusive", "warning": "⚠️ warn", "fail": "❌ fail", "": "–"}
_FOUND = {"fail": "❌ fail", "warning": "⚠️ warning", "ok": "✅ ok", None: "–"}
_RAN = {"ok": "✅ completed", "skipped": "⏭️ skipped", "error": "❌ failed"}
_DIRECTION = {"higher is better": "↑ higher", "lower is better": "↓ lower", "": "–"}
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
    h = report.health
    lines = [
        f"## {_VERDICT[v.status]} {text(report.title)}",
        "",
        f"**{text(v.text)}**",
        "",
        f"{_HEALTH[h.status]} {text(h.text)}",
        "",
    ]
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
    shown = [g for g in report.gates if g.source != "baseline" or not g.passed]
    rows = [[_ICON["pass" if g.passed else "fail"], _gate_cell(g), text(g.source or "python")] for g in shown]
    if report.comparison is not None:
        c = report.comparison
        rows.append([_ICON["pass" if c.passed else "fail"], text(c.summary()), "baseline"])
    return ["### Gates", "", *_table(["result", "gate (fails when its condition is true)", "from"], rows)]


def _gate_cell(g: GateResult) -> str:
    """:func:`~dlaudit.report.summary.gate_line` with the condition as code: ``fails when `X > 0`; value 0: pass``."""
    if g.source == "section":
        return f"{code(g.gate)}: " + (
            "yes" if g.passed else "**failed**" + (f" — {text(g.message)}" if g.message else "")
        )
    cell = f"fails when {code(g.gate)}; value {fmt_number(g.value)}: {'pass' if g.passed else '**FAIL**'}"
    return cell + (f" ({text(g.message)})" if g.message else "")


def _headline(report: Report) -> list[str]:
    sections = [ss for ss in scorecard(report) if ss.groups]
    if not sections:
        return []
    header = ["metric", "value", "95% CI", "better", "check", "gate"]
    if report.comparison:
        header += ["baseline", "change"]
    rows: list[list[str]] = []
    for ss in sections:
        sec = ss.section
        rows.append(
            [f"**{text(sec.title)}** ({ran_label(sec)}, findings: {_FOUND[sec.found]})"] + [""] * (len(header) - 1)
        )
        rows += [_curve_cells(g, report) if g.curve else _metric_cells(g, report) for g in ss.groups]
    return ["### Headline metrics by section", "", *_table(header, rows)]


def _name_cell(g: HeadlineGroup, name: str) -> str:
    return f"{text(g.label)}<br>{code(name)}"


def _metric_cells(g: HeadlineGroup, report: Report) -> list[str]:
    r: HeadlineRow = g.rows[0]
    cells = [
        _name_cell(g, r.metric.name),
        fmt_number(r.metric.value),
        fmt_ci(r.metric.ci),
        _DIRECTION[g.direction],
        _CHECK[g.status],
        _ICON[r.gate_status],
    ]
    if report.comparison:
        d = r.delta
        cells += [
            fmt_number(d.baseline) if d else "",
            (
                fmt_change(d.change)
                + (" ❌ regression" if d.status == "regression" else " (not compared)" if d.status == "skipped" else "")
            )
            if d
            else "",
        ]
    return cells


def _curve_cells(g: HeadlineGroup, report: Report) -> list[str]:
    """A curve on one row: ``@0.05: 0.887 · @0.1: 0.602 ❌``."""
    mark = {"pass": " ✅", "fail": " ❌", "none": ""}
    points = " · ".join(f"@{text(r.at)}: {fmt_number(r.metric.value)}{mark[r.gate_status]}" for r in g.rows)
    cells = [_name_cell(g, g.stem + "@"), points, "", _DIRECTION[g.direction], _CHECK[g.status], _ICON[g.gate_status]]
    if report.comparison:
        regressed = [f"@{text(a)}" for a in g.regressed]
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
        [text(s.title), _RAN[s.status], _FOUND[s.found], _counts(s), text(s.summary if s.status == "ok" else s.reason)]
        for s in report.sections
    ]
    return (
        ["### Sections", "", *_table(["section", "ran", "found", "findings", "summary or reason"], rows)]
        if rows
        else []
    )


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
        f"{text(c.summary())} A headline metric may get worse by at most {fmt_number(c.max_drop)}.",
        "",
    ]
    if c.regressions:
        rows = [
            [code(r.metric), fmt_number(r.baseline), fmt_number(r.current), fmt_change(r.change), "❌ **regression**"]
            for r in c.regressions
        ]
        lines += _table(["metric", "baseline", "now", "change", "status"], rows)
    for name, why in c.skipped.items():
        lines.append(f"- ⏭️ {text(name)}: not compared, the configuration differs ({text(why)})")
    if c.skipped:
        lines.append("")
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
