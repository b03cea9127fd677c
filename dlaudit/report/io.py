"""Saving and loading reports; the format comes from the file extension or ``format=``."""
from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError, DlauditError
from ..utils import atomic_write
from .model import Report

__all__ = ["save_report", "load_report", "FORMATS"]

FORMATS = {".html": "html", ".htm": "html", ".json": "json", ".md": "markdown", ".markdown": "markdown", ".xml": "junit"}


def render(report: Report, fmt: str) -> str:
    if fmt == "html":
        from .html import render_html

        return render_html(report)
    if fmt == "json":
        from .json import render_json

        return render_json(report)
    if fmt == "markdown":
        from .markdown import render_markdown

        return render_markdown(report)
    if fmt == "junit":
        from .junit import render_junit

        return render_junit(report)
    raise ConfigError(f"unknown report format {fmt!r}; choose html, json, markdown or junit")


def save_report(report: Report, path: str | Path, *, format: str | None = None) -> Path:  # noqa: A002
    """Write ``report`` atomically; the format comes from the suffix unless given."""
    path = Path(path)
    fmt = format or FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(f"cannot tell the report format from {path.name!r}; use .html, .json, .md or .xml, or pass format=")
    text = render(report, fmt)
    with atomic_write(path, "w") as fh:
        fh.write(text)
    return path


def load_report(path: str | Path) -> Report:
    """Read a JSON report written by :func:`save_report`."""
    from .json import parse_json

    path = Path(path)
    try:
        return parse_json(path.read_text())
    except FileNotFoundError as err:
        raise DlauditError(f"report {path} does not exist") from err
    except (ValueError, KeyError, TypeError) as err:
        raise DlauditError(f"{path} is not a dlaudit JSON report ({err}); write one with --json") from err
