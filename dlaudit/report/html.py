"""HTML renderer: one self-contained page (CSS inline, images as data URIs, no scripts).

Jinja2 with autoescape: a class name, feature name or file name from user data
is always text, never markup. The page's Content-Security-Policy forbids
scripts and every network request, so it reads the same offline, attached to a
CI run, or opened from an e-mail.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from .headline import headline_metrics
from .model import SEVERITIES, Finding, Report, Section
from .numbers import fmt_change, fmt_ci, fmt_number
from .summary import finding_counts, headline_groups, ran_label, scorecard, verdict

__all__ = ["render_html", "render_comparison_html", "LONG_TABLE_ROWS", "LONG_METRIC_LIST", "MAX_HTML_ROWS"]

LONG_TABLE_ROWS = 15
"""Tables with more rows than this start collapsed."""
LONG_METRIC_LIST = 12
"""Sections with more metrics than this show them collapsed."""
MAX_HTML_ROWS = 200
"""Rows of one table (or items of one list) the HTML page shows; a line under it says how many more there
are, and the JSON report holds them all. A baseline of a million metrics must not make a page of 200 MB."""
_LONG_LIST = 12

_CARD_ORDER = (
    "architecture",
    "arch_kwargs",
    "modality",
    "task",
    "input_shape",
    "num_classes",
    "value_range",
    "mean",
    "std",
    "class_names",
    "feature_names",
    "dataset",
    "split",
    "data_seed",
    "target",
    "sensitive",
    "training",
    "seed",
    "metrics",
    "postprocess",
    "data_dir",
    "dlaudit_version",
)
_CARD_HIDDEN = ("encoder",)
_PROVENANCE_ORDER = (
    "command",
    "seed",
    "fast",
    "device",
    "threads",
    "generated",
    "total_seconds",
    "seconds_per_section",
    "model",
    "data",
    "versions",
)


@dataclass(frozen=True)
class Row:
    """A label and its value prepared for display: text, a list of items, or key/value pairs."""

    label: str
    text: str = ""
    items: tuple[str, ...] = ()
    pairs: tuple[tuple[str, str], ...] = ()
    code: bool = False

    @property
    def long(self) -> bool:
        return len(self.items) > _LONG_LIST or len(self.pairs) > _LONG_LIST


def _row(label: str, value: Any, *, code: bool = False) -> Row:
    if isinstance(value, dict):
        return Row(label, pairs=tuple((str(k), _plain(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)) and any(isinstance(v, (str, dict, list)) for v in value):
        return Row(label, items=tuple(_plain(v) for v in value))
    return Row(label, text=_plain(value), code=code)


def _plain(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(_plain(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_plain(v)}" for k, v in value.items())
    if value is None:
        return "—"
    return fmt_number(value)


def _shape(value: Any) -> str:
    """``[1, 8, 8]`` as ``1 × 8 × 8``."""
    return " × ".join(str(v) for v in value) if isinstance(value, (list, tuple)) else _plain(value)


def _shown(value: Any) -> bool:
    return value not in (None, "", [], {})


def card_rows(card: dict[str, Any]) -> list[Row]:
    """The model card's fields in a reading order, empty ones left out."""
    keys = [k for k in _CARD_ORDER if k in card] + sorted(
        k for k in card if k not in _CARD_ORDER and k not in _CARD_HIDDEN
    )
    return [
        _row(k.replace("_", " "), _shape(card[k]) if k == "input_shape" else card[k]) for k in keys if _shown(card[k])
    ]


def card_summary(card: dict[str, Any]) -> str:
    """``"cnn · digits (test split) · 10 classes · input 1 × 8 × 8"``."""
    parts = [card.get("architecture") or "foreign model"]
    if card.get("dataset"):
        parts.append(f"{card['dataset']} ({card.get('split', 'test')} split)")
    if card.get("num_classes"):
        parts.append(f"{card['num_classes']} classes")
    if card.get("input_shape"):
        parts.append("input " + _shape(card["input_shape"]))
    return " · ".join(str(p) for p in parts)


def provenance_rows(provenance: dict[str, Any]) -> list[Row]:
    """The provenance footer: command line, seed, device, time per section, versions..."""
    keys = [k for k in _PROVENANCE_ORDER if k in provenance] + sorted(
        k for k in provenance if k not in _PROVENANCE_ORDER
    )
    rows = []
    for key in keys:
        value = provenance[key]
        if key == "seconds_per_section" and isinstance(value, dict):
            value = {k: ("—" if v is None else f"{v:.1f} s") for k, v in value.items()}
        elif key == "total_seconds" and isinstance(value, (int, float)):
            value = f"{value:.1f} s"
        elif key == "fast":
            value = "yes: fewer samples and steps (--fast)" if value else "no"
        if _shown(value) or key == "fast":
            rows.append(_row(key.replace("_", " "), value, code=key == "command"))
    return rows


def visible_findings(section: Section) -> list[Finding]:
    """The section's findings, most severe first (otherwise in the analysis's order).

    A failed section's own "could not be computed" finding is left out: the
    section's reason already says so, in a box of its own.
    """
    rank = {sev: i for i, sev in enumerate(reversed(SEVERITIES))}
    shown = [f for f in section.findings if not (section.status == "error" and f.check == "analysis-error")]
    return sorted(shown, key=lambda f: rank[f.severity])


def data_line(report: Report) -> str:
    data = report.provenance.get("data") or {}
    if not data:
        return ""
    return f"{data.get('name', '?')} ({data.get('split', '?')} split, {data.get('n', '?')} samples)"


def first_rows(items: Iterable[Any], n: int = MAX_HTML_ROWS) -> list[Any]:
    """The first ``n`` of ``items`` (a template filter: ``rows | first_rows``)."""
    return list(itertools.islice(items, n))


@cache
def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("dlaudit.report", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(fmt=fmt_number, ci=fmt_ci, change=fmt_change, first_rows=first_rows)
    env.globals.update(
        verdict=verdict,
        headline_groups=headline_groups,
        scorecard=scorecard,
        ran_label=ran_label,
        headline_metrics=headline_metrics,
        finding_counts=finding_counts,
        card_rows=card_rows,
        card_summary=card_summary,
        provenance_rows=provenance_rows,
        visible_findings=visible_findings,
        data_line=data_line,
        LONG_TABLE_ROWS=LONG_TABLE_ROWS,
        LONG_METRIC_LIST=LONG_METRIC_LIST,
        MAX_HTML_ROWS=MAX_HTML_ROWS,
    )
    return env


def _css() -> str:
    return (files("dlaudit.report") / "templates" / "report.css").read_text(encoding="utf-8")


def render_html(report: Report) -> str:
    """Render ``report`` as a standalone HTML page (no scripts, no network requests)."""
    return _env().get_template("report.html.j2").render(report=report, css=_css())


def render_comparison_html(reports: Sequence[tuple[str, Report, str]], *, title: str = "dlaudit comparison") -> str:
    """One page comparing several reports: ``(label, report, link)`` each; the headline metrics side by side."""
    names: list[str] = []
    titles: list[str] = []
    for _, rep, _ in reports:
        names.extend(n for n in dict.fromkeys(m.name for m in headline_metrics(rep)) if n not in names)
        titles.extend(s.title for s in rep.sections if s.title not in titles)
    from .plots import comparison_curves_figure, comparison_fairness_figure

    labelled = [(label, rep) for label, rep, _ in reports]
    overlays = [f for f in (comparison_curves_figure(labelled), comparison_fairness_figure(labelled)) if f is not None]
    return (
        _env()
        .get_template("comparison.html.j2")
        .render(title=title, reports=reports, names=names, titles=titles, overlays=overlays, css=_css())
    )
