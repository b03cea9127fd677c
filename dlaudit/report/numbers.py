"""How numbers read in every renderer (HTML, Markdown, JUnit, the terminal)."""

from __future__ import annotations

from typing import Any

__all__ = ["fmt_number", "fmt_ci", "fmt_change"]

UNDEFINED = "undefined"


def fmt_number(value: Any, digits: int = 4) -> str:
    """Four significant digits; tiny numbers in scientific notation; None is "undefined"."""
    if value is None:
        return UNDEFINED
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:  # numpy / torch scalars
        value = value.item()
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if value != value:  # NaN
            return UNDEFINED
        return f"{value:.{digits}g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"
    return str(value)


def fmt_ci(ci: tuple[float, float] | None, digits: int = 3) -> str:
    """``"0.951 – 0.982"``, or empty without an interval."""
    if not ci:
        return ""
    return f"{fmt_number(ci[0], digits)} – {fmt_number(ci[1], digits)}"


def fmt_change(change: float | None, digits: int = 3) -> str:
    """A signed difference, ``"+0.012"`` / ``"−0.030"``; empty when undefined."""
    if change is None:
        return ""
    if abs(change) < 5 * 10 ** -(digits + 3):
        return "0"
    sign = "+" if change > 0 else "−"
    return f"{sign}{fmt_number(abs(change), digits)}"
