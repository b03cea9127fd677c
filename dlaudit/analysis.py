"""The analysis registry: ``(bundle, data, *, seed, fast, progress, **params) -> Section``.

Every analysis is registered by name; :func:`run_analysis` times it and turns a
failure into a section that says why, so one failing analysis never aborts a report.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import AnalysisError, ConfigError, DlauditError
from .report.model import Section

__all__ = ["Analysis", "register_analysis", "list_analyses", "get_analysis", "run_analysis"]

log = logging.getLogger(__name__)

AnalysisFn = Callable[..., Section]


@dataclass(frozen=True)
class Analysis:
    name: str
    title: str
    fn: AnalysisFn
    order: int = 100


_REGISTRY: dict[str, Analysis] = {}


def register_analysis(name: str, title: str, *, order: int = 100) -> Callable[[AnalysisFn], AnalysisFn]:
    """Register an analysis function under ``name`` (the ``--checks`` name)."""

    def deco(fn: AnalysisFn) -> AnalysisFn:
        _REGISTRY[name] = Analysis(name, title, fn, order)
        return fn

    return deco


def list_analyses() -> list[str]:
    """Registered analyses in report order."""
    return [a.name for a in sorted(_REGISTRY.values(), key=lambda a: (a.order, a.name))]


def get_analysis(name: str) -> Analysis:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown check {name!r}; choose from: {', '.join(list_analyses())}") from None


def run_analysis(name: str, bundle: Any, data: Any, **params: Any) -> Section:
    """Run one analysis; an error becomes a skipped or failed section, never an exception."""
    analysis = get_analysis(name)
    start = time.perf_counter()
    try:
        section = analysis.fn(bundle, data, **params)
    except AnalysisError as err:
        section = Section.skipped(name, analysis.title, str(err))
    except DlauditError as err:
        section = Section.failed(name, analysis.title, str(err))
    except Exception as err:  # an analysis bug must not abort the whole report  # noqa: BLE001
        log.exception("analysis %s failed", name)
        section = Section.failed(name, analysis.title, f"{type(err).__name__}: {err}")
    section.seconds = round(time.perf_counter() - start, 3)
    return section
