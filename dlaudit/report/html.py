"""HTML renderer: one self-contained file (CSS inline, images as data URIs), Jinja2 with autoescape."""
from __future__ import annotations

from importlib.resources import files

from jinja2 import Environment, FileSystemLoader, select_autoescape

from .model import Report

__all__ = ["render_html"]


def _fmt(value: object, digits: int = 4) -> str:
    if value is None:
        return "undefined"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"
    return str(value)


def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(files("dlaudit.report") / "templates")),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fmt"] = _fmt
    return env


def render_html(report: Report) -> str:
    """Render ``report`` as a standalone HTML page (no network requests)."""
    css = (files("dlaudit.report") / "templates" / "report.css").read_text()
    return _env().get_template("report.html.j2").render(report=report, css=css)
