"""Saving and loading reports; the format comes from the file extension or ``format=``.

Every output is written atomically (a temporary file beside the target, then a
rename), so a crash while rendering never leaves half a report over an earlier one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from ..errors import ConfigError, DlauditError
from ..paths import JSON_LIMIT, atomic_write, read_input, shown
from .model import Report

__all__ = ["save_report", "load_report", "render", "FORMATS", "SUFFIXES"]

SUFFIXES = {
    ".html": "html",
    ".htm": "html",
    ".json": "json",
    ".md": "markdown",
    ".markdown": "markdown",
    ".xml": "junit",
}
FORMATS = ("html", "json", "markdown", "junit", "robustbench")


def _renderer(fmt: str) -> Callable[[Report], str]:
    if fmt == "html":
        from .html import render_html

        return render_html
    if fmt == "json":
        from .json import render_json

        return render_json
    if fmt == "markdown":
        from .markdown import render_markdown

        return render_markdown
    if fmt == "junit":
        from .junit import render_junit

        return render_junit
    if fmt == "robustbench":
        from .robustbench import render_robustbench

        return render_robustbench
    raise ConfigError(f"unknown report format {fmt!r}; choose one of: {', '.join(FORMATS)}")


def render(report: Report, fmt: str) -> str:
    """The report as text in ``fmt`` (html, json, markdown, junit, or robustbench: RobustBench's model-info fields)."""
    return _renderer(fmt)(report)


def format_for(path: str | Path, format: str | None = None) -> str:
    """The format named, or the one the suffix of ``path`` implies."""
    if format is not None:
        _renderer(format)
        return format
    fmt = SUFFIXES.get(Path(path).suffix.lower())
    if fmt is None:
        raise ConfigError(
            f"cannot tell the report format from {Path(path).name!r}; use .html, .json, .md or .xml, or pass format= (one of: {', '.join(FORMATS)})"
        )
    return fmt


def save_report(report: Report, path: str | Path, *, format: str | None = None) -> Path:
    """Write ``report`` atomically; the format comes from the suffix unless given."""
    path = Path(path)
    renderer = _renderer(format_for(path, format))
    with atomic_write(path, "wb") as fh:
        fh.write(renderer(report).encode("utf-8"))
    return path


def load_report(path: str | Path, *, label: str = "report") -> Report:
    """Read a JSON report written by :func:`save_report`; ``label`` names it in messages (``"--baseline"``)."""
    from .json import parse_json

    path = Path(path)
    if not os.path.lexists(path):
        raise DlauditError(
            f"{label} {shown(path)} does not exist; write one with `dlaudit report MODEL --json {shown(path)}`"
        )
    raw = read_input(path, label, limit=JSON_LIMIT, error=DlauditError)
    try:
        return parse_json(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DlauditError(
            f"{path} is not JSON ({err}); give the JSON report written with --json, not the HTML one"
        ) from err
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as err:
        raise DlauditError(
            f"baseline/report {path} is not a dlaudit JSON report ({type(err).__name__}: {str(err)[:150]}); write one with --json"
        ) from err
