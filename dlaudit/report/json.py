"""JSON renderer: the whole report with the flat ``metrics`` object (schema versioned)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from .model import Report

__all__ = ["render_json", "parse_json", "check_report_dict"]


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
    """A :class:`Report` from the text :func:`render_json` wrote; a wrong shape is a ``ValueError`` naming the field."""
    doc = json.loads(text)
    check_report_dict(doc)
    return Report.from_dict(doc)


# -- the shape a report read back must have -------------------------------------------------------
#
# A report read back (a --baseline) is someone else's file: every field the comparison and the renderers
# use is checked for its type here, once, so a wrong one is a message naming it rather than a traceback
# wherever it is first used. Keys a newer writer adds are ignored; a missing optional key takes its default.

_STR = "a string"
_NUMBER = "a number"
_OPT_NUMBER = "a number or null"
_BOOL = "true or false"
_OPT_BOOL = "true, false or null"
_DICT = "an object"
_LIST = "a list"
_ROWS = "a list of lists"
_CI = "null or a list of two numbers"
_NAMED_TEXTS = "an object of strings"

_METRIC = {
    "name": _STR,
    "value": _OPT_NUMBER,
    "ci": _CI,
    "description": _STR,
    "higher_is_better": _OPT_BOOL,
    "note": _STR,
    "headline": _BOOL,
    "status": _STR,
    "rule": _STR,
}
_FINDING = {"severity": _STR, "message": _STR, "evidence": _STR, "check": _STR}
_TABLE = {"title": _STR, "columns": _LIST, "rows": _ROWS, "caption": _STR}
_FIGURE = {"caption": _STR, "data_base64": _STR, "mime": _STR, "alt": _STR}
_SECTION = {
    "name": _STR,
    "title": _STR,
    "status": _STR,
    "reason": _STR,
    "summary": _STR,
    "metrics": [_METRIC],
    "findings": [_FINDING],
    "tables": [_TABLE],
    "figures": [_FIGURE],
    "params": _DICT,
    "seconds": _OPT_NUMBER,
}
_GATE = {
    "gate": _STR,
    "metric": _STR,
    "op": _STR,
    "threshold": _NUMBER,
    "value": _OPT_NUMBER,
    "passed": _BOOL,
    "message": _STR,
    "source": _STR,
}
_DELTA = {
    "metric": _STR,
    "baseline": _OPT_NUMBER,
    "current": _OPT_NUMBER,
    "status": _STR,
    "headline": _BOOL,
    "higher_is_better": _OPT_BOOL,
    "note": _STR,
}
_COMPARISON = {
    "baseline": _STR,
    "max_drop": _NUMBER,
    "rows": [_DELTA],
    "baseline_generated": _STR,
    "skipped": _NAMED_TEXTS,
}
_REPORT = {
    "title": _STR,
    "card": _DICT,
    "sections": [_SECTION],
    "gates": [_GATE],
    "provenance": _DICT,
    "extras": _DICT,
    "baseline": "comparison",
}
_REQUIRED = {id(_SECTION): ("name", "title"), id(_FIGURE): ("caption",), id(_METRIC): ("name",)}


def check_report_dict(doc: Any) -> None:
    """Raise ``ValueError`` naming the first field of ``doc`` (a parsed JSON report) whose type is wrong.

    Examples
    --------
    >>> check_report_dict({"sections": [{"name": "p", "title": "P", "params": [1]}]})
    Traceback (most recent call last):
    ...
    ValueError: sections[0].params must be an object, got list [1]
    """
    _check_object(doc, _REPORT, "the report")


def _check_object(value: Any, schema: dict[str, Any], where: str) -> None:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where} must be an object, got {_shown(value)}")
    for key in _REQUIRED.get(id(schema), ()):
        if key not in value:
            raise ValueError(f"{_join(where, key)} is missing")
    for key, kind in schema.items():
        if key in value:
            _check(value[key], kind, _join(where, key))


def _join(where: str, key: str) -> str:
    return key if where == "the report" else f"{where}.{key}"


def _check(value: Any, kind: Any, where: str) -> None:
    if isinstance(kind, list):
        if not isinstance(value, list):
            raise ValueError(f"{where} must be a list, got {_shown(value)}")
        for i, item in enumerate(value):
            _check_object(item, kind[0], f"{where}[{i}]")
        return
    if kind == "comparison":
        if value is not None and value != {}:
            _check_object(value, _COMPARISON, where)
        return
    if not _CHECKS[kind](value):
        raise ValueError(f"{where} must be {kind}, got {_shown(value)}")


_CHECKS: dict[str, Callable[[Any], bool]] = {
    _STR: lambda v: isinstance(v, str),
    _NUMBER: lambda v: _is_number(v),
    _OPT_NUMBER: lambda v: v is None or _is_number(v),
    _BOOL: lambda v: isinstance(v, bool),
    _OPT_BOOL: lambda v: v is None or isinstance(v, bool),
    _DICT: lambda v: isinstance(v, Mapping),
    _NAMED_TEXTS: lambda v: isinstance(v, Mapping) and all(isinstance(x, str) for x in v.values()),
    _LIST: lambda v: isinstance(v, list),
    _ROWS: lambda v: isinstance(v, list) and all(isinstance(r, list) for r in v),
    _CI: lambda v: v is None or (isinstance(v, list) and len(v) == 2 and all(_is_number(x) for x in v)),
}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _shown(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (str, int, float, bool, type(None))) else repr(value)
    kind = {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}.get(type(value))
    return f"{kind or type(value).__name__} {text[:40]}{'...' if len(text) > 40 else ''}"


def _default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    return str(obj)
