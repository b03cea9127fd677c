"""dlaudit: audit PyTorch classifiers for interpretability, adversarial robustness and fairness.

>>> import dlaudit
>>> bundle = dlaudit.train("cnn", "digits")
>>> report = dlaudit.audit(bundle, checks=["performance"])
>>> report.metrics["performance.accuracy"]  # doctest: +SKIP
0.98

``import dlaudit`` is cheap and changes nothing in the process: the functions of
:mod:`dlaudit.api` are bound here, and everything that needs torch (models, data,
attacks) loads on first use. ``dlaudit.explain`` and ``dlaudit.fairness`` are the
subpackages; their entry points are :func:`explain_model` and :func:`fairness_report`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import train as _train_package  # noqa: F401  (the subpackage first, so that the name below stays the function)
from ._alloc import tune_malloc
from ._version import __version__
from .analysis import default_analyses, list_analyses, register_analysis, run_analysis
from .api import (
    attack,
    audit,
    certify,
    explain_model,
    fairness_report,
    info,
    load_data,
    load_model,
    mitigate,
    robustness,
    save_model,
    train,
)
from .card import ModelCard
from .errors import (
    AnalysisError,
    CardError,
    ConfigError,
    DataError,
    DlauditError,
    GateError,
    ModelLoadError,
    ModelOutputError,
)
from .report import Figure, Finding, GateResult, Metric, Report, Section, Table
from .report.gates import check_gates, parse_gate

if TYPE_CHECKING:
    from .bundle import ModelBundle
    from .data import DATASETS, AuditData
    from .models import NumpyMLP, build_model, list_models
    from .robust import fgsm, pgd

_LAZY = {
    "ModelBundle": "dlaudit.bundle",
    "AuditData": "dlaudit.data",
    "DATASETS": "dlaudit.data",
    "NumpyMLP": "dlaudit.models",
    "build_model": "dlaudit.models",
    "list_models": "dlaudit.models",
    "fgsm": "dlaudit.robust",
    "pgd": "dlaudit.robust",
}
_SUBPACKAGES = ("api", "bundle", "card", "data", "demo", "explain", "fairness", "models", "report", "robust")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "__version__",
    "AnalysisError",
    "AuditData",
    "CardError",
    "ConfigError",
    "DATASETS",
    "DataError",
    "DlauditError",
    "Figure",
    "Finding",
    "GateError",
    "GateResult",
    "Metric",
    "ModelBundle",
    "ModelCard",
    "ModelLoadError",
    "ModelOutputError",
    "NumpyMLP",
    "Report",
    "Section",
    "Table",
    "attack",
    "audit",
    "build_model",
    "certify",
    "check_gates",
    "default_analyses",
    "explain_model",
    "fairness_report",
    "fgsm",
    "info",
    "list_analyses",
    "list_models",
    "load_data",
    "load_model",
    "mitigate",
    "parse_gate",
    "pgd",
    "register_analysis",
    "robustness",
    "run_analysis",
    "save_model",
    "train",
    "tune_malloc",
]
