"""Reading the values users type: comma lists, numbers, shapes, ranges (no heavy imports).

Every parser accepts a string (as typed on the command line or in a TOML file) or
an already-split sequence, and raises :class:`~dlaudit.errors.ConfigError` with a
message that names the option and says what is valid.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .errors import ConfigError

__all__ = [
    "parse_bins",
    "parse_kwargs",
    "parse_names",
    "parse_numbers",
    "parse_shape",
    "parse_value_range",
    "round_or_none",
    "split_list",
]


def split_list(value: str | Iterable[Any] | None) -> list[str]:
    """``"a, b,c"`` or ``["a", "b"]`` as stripped, non-empty strings."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    return [v.strip() for v in items if v.strip()]


def parse_names(value: str | Iterable[Any] | None, valid: Sequence[str], what: str, *, lower: bool = True) -> list[str]:
    """Names from ``valid`` (comma-separated or a list), de-duplicated in the order given.

    An unknown name, or none at all, is a :class:`ConfigError` listing the valid ones.
    """
    items = [v.lower() for v in split_list(value)] if lower else split_list(value)
    bad = [v for v in items if v not in valid]
    if bad or not items:
        close = [m for b in bad for m in difflib.get_close_matches(b, list(valid), n=1)]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ConfigError(f"unknown {what} {', '.join(bad) or '(none given)'}{hint}; choose from: {', '.join(valid)}")
    return list(dict.fromkeys(items))


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be numbers, got {text!r}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{what} must be finite numbers, got {text!r}")
    return value


def parse_numbers(
    value: str | Iterable[Any] | None,
    what: str,
    *,
    count: int | None = None,
    minimum: float | None = None,
    integer: bool = False,
) -> list[float]:
    """Finite numbers (comma-separated or a list); at least one.

    ``count`` demands exactly that many, ``minimum`` a lower bound, ``integer``
    whole numbers (``8.7`` is refused, not truncated).
    """
    items = split_list(value)
    if not items:
        raise ConfigError(f"{what} needs at least one number, got {value!r}")
    numbers = [_number(v, what) for v in items]
    if count is not None and len(numbers) != count:
        raise ConfigError(
            f"{what} takes {count} number{'s' if count != 1 else ''}, got {len(numbers)} ({', '.join(items)})"
        )
    if integer and any(v != int(v) for v in numbers):
        raise ConfigError(f"{what} must be whole numbers, got {', '.join(items)}")
    if minimum is not None and any(v < minimum for v in numbers):
        raise ConfigError(f"{what} must be a number >= {minimum:g}, got {', '.join(items)}")
    return numbers


def parse_shape(value: str | Sequence[Any], what: str = "input shape", *, max_elements: int = 50_000_000) -> list[int]:
    """A sample's shape such as ``1,28,28``: positive whole numbers, comma-separated.

    ``"188"`` is one dimension of 188, never ``(1, 8, 8)``; the product is capped
    at ``max_elements`` so a typo cannot allocate gigabytes.
    """
    dims = [int(v) for v in parse_numbers(value, what, minimum=1, integer=True)]
    if len(dims) > 8:
        raise ConfigError(f"{what} has {len(dims)} dimensions; give the shape of one sample, e.g. 1,28,28 or 104")
    elements = math.prod(dims)
    if elements > max_elements:
        raise ConfigError(
            f"{what} {','.join(map(str, dims))} is {elements:,} values per sample, more than dlaudit audits ({max_elements:,})"
        )
    return dims


def parse_value_range(value: str | Sequence[Any], what: str = "value range") -> list[float]:
    """``low,high`` with ``low < high``, e.g. ``0,1``."""
    low, high = parse_numbers(value, what, count=2)
    if not low < high:
        raise ConfigError(f"{what} must be low,high with low < high, got {low:g},{high:g}")
    return [low, high]


def _literal(text: str) -> Any:
    """A keyword argument's value: a number, true/false, none, or else the text itself."""
    import ast

    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text
    return value if isinstance(value, (int, float, str)) else text


def parse_kwargs(value: str | Mapping[str, Any] | None, what: str = "--arch-kwargs") -> dict[str, Any]:
    """``"k=v,k2=v2"`` (or a mapping) as keyword arguments; values are numbers, true/false, none or words.

    ``"dropout=0.2,aux_logits=false"`` is ``{"dropout": 0.2, "aux_logits": False}``.
    """
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    out: dict[str, Any] = {}
    for item in split_list(value):
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ConfigError(
                f"{what} takes NAME=VALUE pairs, comma-separated, e.g. dropout=0.2,aux_logits=false; got {item!r}"
            )
        out[key] = _literal(text.strip())
    return out


def parse_bins(value: Mapping[str, Sequence[float]] | Sequence[str] | None) -> dict[str, list[float]] | None:
    """``--bins age=25,60`` (repeatable: a list of such strings) as ``{"age": [25.0, 60.0]}``; a mapping as given."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return {str(k): [float(v) for v in edges] for k, edges in value.items()}
    out: dict[str, list[float]] = {}
    for text in [value] if isinstance(value, str) else value:
        name, sep, edges = str(text).partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--bins takes COLUMN=EDGE[,EDGE...], e.g. age=25,60; got {text!r}")
        out[name.strip()] = parse_numbers(edges, f"--bins {name.strip()}")
    return out or None


def round_or_none(value: float | None, digits: int = 4) -> float | None:
    """``value`` rounded for a table cell; None (undefined) for None, NaN or inf."""
    if value is None:
        return None
    value = float(value)
    return round(value, digits) if math.isfinite(value) else None
