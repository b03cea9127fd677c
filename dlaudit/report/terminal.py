"""The terminal rendering of a report: what every command prints when it is done.

One renderer for every command, next to HTML, JSON, Markdown and JUnit: ``dlaudit report``
prints the outcome (where the files went, skipped sections, gates, the verdicts); the named
views (``attack``, ``certify``, ``explain``, ``fairness``) print their sections in full first:
the summary, each table with its caption, the metrics with their intervals, the findings.
A pure function of the report, tested on hand-built reports.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .model import Report, Section, Table
from .summary import gate_line, verdict

__all__ = ["render_terminal", "render_section", "render_table", "render_training", "render_info", "render_demo"]

METRIC_WIDTH = 52
"""Width of the metric-name column of the metric list."""


def _cell(value: Any) -> str:
    if value is None:
        return "undefined"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def render_table(table: Table) -> str:
    """``table`` as right-aligned text columns under its title, its caption after it."""
    rows = [[_cell(v) for v in row] for row in table.rows]
    widths = [max([len(str(c)), *(len(r[i]) for r in rows if i < len(r))]) for i, c in enumerate(table.columns)]
    lines = [table.title, "  ".join(f"{str(c):>{w}}" for c, w in zip(table.columns, widths))]
    lines.extend("  ".join(f"{v:>{w}}" for v, w in zip(r, widths)) for r in rows)
    if table.caption:
        lines.append(table.caption)
    return "\n".join(lines)


def _metric_line(name: str, value: Any, ci: Sequence[float] | None, note: str) -> str:
    interval = f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
    text = f"{name:<{METRIC_WIDTH}} {_cell(value):>10}   {interval}"
    return (text + (f"  ({note})" if note else "")).rstrip()


def render_section(section: Section) -> str:
    """A section in full: its status (when it did not run), summary, tables, metrics and findings.

    With tables, the metrics named ``NAME@VALUE`` (curves the tables show) are left out of the list.
    """
    if section.status != "ok":
        return f"{section.name} {section.status}: {section.reason}"
    parts = [section.summary] if section.summary else []
    parts.extend(render_table(t) for t in section.tables)
    shown = [m for m in section.metrics if not (section.tables and "@" in m.name)]
    if shown:
        lines = [f"{'metric':<{METRIC_WIDTH}} {'value':>10}   95% CI"]
        last_note = ""
        for m in shown:
            note = m.note if m.value is None and m.note != last_note else ""
            last_note = m.note if m.value is None else ""
            lines.append(_metric_line(m.name, m.value, m.ci, note))
        parts.append("\n".join(lines))
    if section.findings:
        parts.append("\n".join(f"{f.severity.upper():<8} {f.message}" for f in section.findings))
    return "\n\n".join(parts)


MAX_LINES = 50
"""Lines one list (gates, regressions) takes on the terminal; the JSON report (--json) has them all."""


def _first(lines: list[str], more: str, *, indent: str = "  ") -> list[str]:
    """The first :data:`MAX_LINES` of ``lines``, then one line counting the rest."""
    if len(lines) <= MAX_LINES:
        return lines
    return [
        *lines[:MAX_LINES],
        f"{indent}... and {len(lines) - MAX_LINES:,} {more}: the JSON report (--json) lists them all",
    ]


def _gates(report: Report) -> list[str]:
    """Each gate as a condition to fail on, the baseline as one line plus its regressions, then both verdicts."""
    lines = _first(
        [f"gate     {gate_line(g)}" for g in report.gates if g.source != "baseline"], "more gates", indent=""
    )
    if report.comparison is not None:
        summary = report.comparison.summary()
        lines.append(summary[:1].upper() + summary[1:])
        regressions = [g for g in report.gates if g.source == "baseline" and not g.passed]
        lines.extend(_first([f"  regression: {gate_line(g)}" for g in regressions], "more regressions"))
    lines.append(verdict(report).text)
    lines.append(report.health.text)
    return lines


def render_terminal(report: Report, *, paths: Mapping[str, Any] | None = None, detail: bool = True) -> str:
    """What a command prints about ``report``.

    Parameters
    ----------
    report
        The report of any command.
    paths
        The files written, by format (``html``, ``json``, ``markdown``, ``junit``, or any other
        label such as ``npz``), each listed as ``label -> path``.
    detail
        Every section in full (the named views); off, the outcome only: the HTML report and its
        accuracy, the other files, and the sections that did not run (``dlaudit report``).
    """
    paths = {k: v for k, v in (paths or {}).items() if v}
    lines: list[str] = []
    if detail:
        lines.extend(render_section(s) + "\n" for s in report.sections)
        lines.extend(f"{label:<8} -> {path}" for label, path in paths.items())
    else:
        acc = report.metrics.get("performance.accuracy")
        if "html" in paths:
            lines.append(f"report -> {paths['html']}" + (f" (accuracy {acc:.4f})" if acc is not None else ""))
        lines.extend(f"{label:<8} -> {path}" for label, path in paths.items() if label != "html")
        lines.extend(f"skipped  {s.title}: {s.reason}" for s in report.sections if s.status == "skipped")
    lines.extend(_gates(report))
    return "\n".join(lines)


# -- what the commands that make no report print ----------------------------------------------------


def render_training(card: Mapping[str, Any], arch: str, output: Any) -> str:
    """``dlaudit train``'s line: what was trained, how, its held-out accuracy, where it went (``card`` as a dict)."""
    training, m = card.get("training") or {}, card.get("metrics") or {}
    adv, cert, noise = training.get("adversarial"), training.get("certified"), training.get("noise")
    how = (
        f" with {adv['method']} adversarial training (eps {adv['eps']:g}, {adv['steps']} steps, alpha {adv['alpha']:.3g})"
        if adv
        else f" with {cert['method']} certified training (eps {cert['eps']:g})"
        if cert
        else f" with Gaussian noise (sigma {noise['sigma']:g})"
        if noise
        else ""
    )
    if (training.get("monitor") or {}).get("collapsed"):
        how += f"; WARNING: the model collapsed ({training['monitor']['collapsed']})"
    return (
        f"trained {arch} on {card.get('dataset')}{how}: held-out accuracy {m['test_accuracy']:.4f} "
        f"(train {m['train_accuracy']:.4f}) in {m['train_seconds']:.1f} s -> {output}"
    )


INFO_FIELDS = (
    "architecture", "arch_kwargs", "modality", "input_shape", "num_classes", "value_range", "mean", "std",
    "class_names", "dataset", "split", "training", "metrics",
)  # fmt: skip
"""The card fields ``dlaudit info`` shows, in order (those that are set)."""


def render_info(out: Mapping[str, Any], model: Any) -> str:
    """``dlaudit info``'s lines for what :func:`dlaudit.info` returned about ``model``."""
    card = out["card"]
    lines = [f"model         {model} ({out['format']}, {out['parameters']:,} parameters)"]
    for kind, notes in (out.get("load") or {}).items():  # e.g. an ONNX conversion's agreement with onnxruntime
        lines.append(f"{kind + ' load':<13} " + ", ".join(f"{k} {v}" for k, v in notes.items()))
    lines += [f"{key:<13} {card[key]}" for key in INFO_FIELDS if card.get(key) not in (None, {}, [])]
    if out["accuracy"] is None:
        lines.append("accuracy      not measured: the card names no dataset; pass --data to measure it")
    else:
        d = out["data"]
        lines.append(f"accuracy      {out['accuracy']:.4f} on {d['n']} samples of {d['name']} ({d['split']})")
    return "\n".join(lines)


def render_demo(result: Any) -> str:
    """``dlaudit demo``'s lines: each report with its accuracy, verdict and health, then the comparison page."""
    lines = []
    for name, path in result.reports.items():
        acc = result.metrics[name].get("performance.accuracy")
        cached = " (cached model)" if name in result.reused else ""
        lines.append(f"demo report -> {path}" + (f" (accuracy {acc:.4f})" if acc is not None else "") + cached)
        lines += [f"  {result.verdicts[name]}", f"  {result.health[name]}"]
    lines.append(f"comparison  -> {result.comparison}")
    return "\n".join(lines)
