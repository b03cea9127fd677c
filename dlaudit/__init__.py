"""dlaudit: audit PyTorch classifiers for interpretability, adversarial robustness and fairness.

>>> import dlaudit
>>> bundle = dlaudit.train("cnn", "digits")
>>> report = dlaudit.audit(bundle, checks=["performance"])
>>> report.metrics["performance.accuracy"]  # doctest: +SKIP
0.98
"""
from __future__ import annotations

__version__ = "0.1.0"

from ._alloc import tune_malloc

tune_malloc()  # before torch allocates anything; opt out with DLAUDIT_MALLOC_TUNING=0

from . import performance as _performance  # noqa: E402,F401  (registers the "performance" analysis)
from . import robust as _robust  # noqa: E402,F401  (registers the "robustness" analysis)
from .fairness import analysis as _fairness_analysis  # noqa: E402,F401  (registers "fairness" and the group-thresholds post-processor)
from . import explain as _explain_package  # noqa: E402,F401  (registers "explain"; the name dlaudit.explain is the function below)
from .analysis import list_analyses, register_analysis, run_analysis  # noqa: E402
from .api import DEFAULT_CHECKS, audit, explain, info, load_data, train  # noqa: E402
from .api import fairness, mitigate  # noqa: E402  (dlaudit.fairness is the function; the package stays importable by its full path)
from .bundle import ModelBundle, load_model, save_model  # noqa: E402
from .card import ModelCard  # noqa: E402
from .data import DATASETS, AuditData  # noqa: E402
from .errors import (  # noqa: E402
    AnalysisError,
    CardError,
    ConfigError,
    DataError,
    DlauditError,
    GateError,
    ModelLoadError,
)
from .models import NumpyMLP, build_model, list_models  # noqa: E402
from .report import Figure, Finding, GateResult, Metric, Report, Section, Table  # noqa: E402
from .report.gates import check_gates, parse_gate  # noqa: E402
from .api import attack, robustness  # noqa: E402
from .robust import fgsm, pgd  # noqa: E402

__all__ = [
    "__version__",
    "AnalysisError",
    "AuditData",
    "CardError",
    "ConfigError",
    "DATASETS",
    "DEFAULT_CHECKS",
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
    "NumpyMLP",
    "Report",
    "Section",
    "Table",
    "audit",
    "build_model",
    "check_gates",
    "fairness",
    "explain",
    "info",
    "list_analyses",
    "list_models",
    "load_data",
    "load_model",
    "mitigate",
    "parse_gate",
    "register_analysis",
    "run_analysis",
    "save_model",
    "train",
    "tune_malloc",
]
__all__ += ["attack", "fgsm", "pgd", "robustness"]
