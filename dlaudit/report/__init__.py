"""Reports: the data model and its renderers (HTML, JSON, Markdown, JUnit), gates and baselines."""

from __future__ import annotations

from .model import Comparison, Figure, Finding, GateResult, Metric, MetricDelta, Report, Section, Table

__all__ = ["Comparison", "Figure", "Finding", "GateResult", "Metric", "MetricDelta", "Report", "Section", "Table"]
