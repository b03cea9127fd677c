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

A :class:`Report` is plain data; :func:`check_report`, :func:`compare_to_baseline`,
:func:`save_report` and :func:`load_report` check, compare, write and read one.
The command line uses nothing but the names in ``__all__``; some are there for it
and other front ends: :func:`run_report` (what ``dlaudit report`` does; ``report``
is the subpackage), :func:`check_paths` / :func:`run_inputs` / :func:`method_outputs`
(no output overwrites an input), :func:`save_json` / :func:`json_text`, option
parsing, :class:`ProgressPrinter`, the terminal renderer, Ctrl-C handling, and the one-line
texts of verdicts and gates.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import train as _train_package  # noqa: F401  (the subpackage first, so that the name below stays the function)
from ._alloc import tune_malloc
from ._version import __version__
from .analysis import (
    FAST_HELP,
    Option,
    command_options,
    default_analyses,
    list_analyses,
    register_analysis,
    run_analysis,
)
from .api import (
    MAX_SEED,
    TRAINABLE,
    attack,
    audit,
    card_overrides,
    catch_interrupts,
    certify,
    command_line,
    exit_now,
    explain_model,
    fairness_report,
    gate_line,
    health_text,
    info,
    interrupted,
    json_text,
    load_data,
    load_model,
    mitigate,
    parse_gates,
    printable,
    render_demo,
    render_info,
    render_terminal,
    render_training,
    robustness,
    save_explanation,
    save_json,
    save_model,
    train,
    verdict_text,
)
from .api import report as run_report
from .card import ModelCard
from .demo import demo  # the module loads first, so `dlaudit.demo` stays the function
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
from .parsing import parse_numbers, split_list
from .paths import check_paths, method_outputs, run_inputs
from .plan import requested as planning
from .postprocessors import register_postprocessor
from .progress import ProgressPrinter
from .report import Figure, Finding, GateResult, Metric, Report, Section, Table
from .report.baseline import compare_to_baseline
from .report.gates import check_gates, check_report, parse_gate
from .report.io import load_report, save_report

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
_SUBPACKAGES = ("api", "bundle", "card", "data", "explain", "fairness", "models", "report", "robust")


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
    "FAST_HELP",
    "Figure",
    "Finding",
    "GateError",
    "GateResult",
    "MAX_SEED",
    "Metric",
    "ModelBundle",
    "ModelCard",
    "ModelLoadError",
    "ModelOutputError",
    "NumpyMLP",
    "Option",
    "ProgressPrinter",
    "Report",
    "Section",
    "TRAINABLE",
    "Table",
    "attack",
    "audit",
    "build_model",
    "card_overrides",
    "catch_interrupts",
    "certify",
    "check_gates",
    "check_paths",
    "check_report",
    "command_line",
    "command_options",
    "compare_to_baseline",
    "default_analyses",
    "demo",
    "exit_now",
    "explain_model",
    "fairness_report",
    "fgsm",
    "gate_line",
    "health_text",
    "info",
    "interrupted",
    "json_text",
    "list_analyses",
    "list_models",
    "load_data",
    "load_model",
    "load_report",
    "method_outputs",
    "mitigate",
    "parse_gate",
    "parse_gates",
    "parse_numbers",
    "pgd",
    "planning",
    "printable",
    "register_analysis",
    "register_postprocessor",
    "render_demo",
    "render_info",
    "render_terminal",
    "render_training",
    "robustness",
    "run_analysis",
    "run_inputs",
    "run_report",
    "save_explanation",
    "save_json",
    "save_model",
    "save_report",
    "split_list",
    "train",
    "tune_malloc",
    "verdict_text",
]
