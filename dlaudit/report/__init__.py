"""Reports: the data model and its renderers (HTML, JSON; Markdown and JUnit in their modules)."""
from __future__ import annotations

from .model import Figure, Finding, GateResult, Metric, Report, Section, Table

__all__ = ["Figure", "Finding", "GateResult", "Metric", "Report", "Section", "Table"]
