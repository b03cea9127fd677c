"""JSON renderer: the whole report with the flat ``metrics`` object (schema versioned)."""

from __future__ import annotations

import json
from typing import Any

from .model import Report

__all__ = ["render_json", "parse_json"]


def render_json(report: Report, *, include_figures: bool = False) -> str:
    """The report as JSON; NaN never appears (undefined numbers are ``null``)."""
    return (
        json.dumps(
            report.to_dict(include_figures=include_figures),
            indent=2,
            sort_keys=False,
            allow_nan=False,
            default=_default,
        )
        + "\n"
    )


def parse_json(text: str) -> Report:
    return Report.from_dict(json.loads(text))


def _default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    return str(obj)
