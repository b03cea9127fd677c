"""Headline metrics: the ones the scorecard shows and a baseline comparison guards.

A metric is a headline metric when its analysis marks it (``Metric.headline``)
or when its name matches one of DESIGN.md's public metric names below. Its
direction (higher or lower is better) comes from ``Metric.higher_is_better``,
else from the pattern; a metric with no known direction is shown but never
counted as a regression.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from .model import Metric, Report

__all__ = ["HEADLINE_PATTERNS", "is_headline", "higher_is_better", "headline_metrics"]

# (pattern, higher is better?) -- None: no direction (e.g. "near 0 passes").
HEADLINE_PATTERNS: tuple[tuple[str, bool | None], ...] = (
    ("performance.accuracy", True),
    ("performance.macro_f1", True),
    ("robustness.*.acc@*", True),
    ("explain.*.deletion_auc", False),
    ("explain.*.sanity_rank_corr", None),
    ("fairness.*.demographic_parity_difference", False),
    ("fairness.*.equalized_odds_difference", False),
)


def _pattern(name: str) -> tuple[str, bool | None] | None:
    return next((p for p in HEADLINE_PATTERNS if fnmatchcase(name, p[0])), None)


def is_headline(metric: Metric) -> bool:
    """Marked by its analysis, or named in the public metric contract."""
    return metric.headline or _pattern(metric.name) is not None


def higher_is_better(metric: Metric) -> bool | None:
    """The metric's own direction, else its pattern's; None when unknown."""
    if metric.higher_is_better is not None:
        return metric.higher_is_better
    pattern = _pattern(metric.name)
    return pattern[1] if pattern else None


def headline_metrics(report: Report) -> list[Metric]:
    """The report's headline metrics, in section order."""
    return [m for sec in report.sections for m in sec.metrics if is_headline(m)]
