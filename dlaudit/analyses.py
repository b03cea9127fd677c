"""The built-in plug-ins, registered in one place (by import path, so nothing heavy loads until one runs).

A new analysis is a module with the function, one line here, and one test file;
``tests/test_analysis_contract.py`` checks the contract of every line. The post-processors
the analyses write on model cards (:mod:`dlaudit.postprocessors`) are registered here too,
so the core that loads models never names the package that provides them.
"""

from __future__ import annotations

from .analysis import register_analysis
from .postprocessors import register_postprocessor

register_analysis(
    "performance", "dlaudit.performance:performance", title="Performance", order=10, budget="dlaudit.performance:BUDGET"
)
register_analysis(
    "explain",
    "dlaudit.explain.explanation:explain_section",
    title="Explanations",
    order=20,
    settings="dlaudit.explain.explanation:Settings",
    estimate="dlaudit.explain.estimate:estimate",
    budget="dlaudit.explain.explanation:BUDGET",
    options="dlaudit.explain.options:OPTIONS",
)
register_analysis(
    "robustness",
    "dlaudit.robust.analysis:robustness",
    title="Robustness",
    order=30,
    settings="dlaudit.robust.analysis:Settings",
    estimate="dlaudit.robust.analysis:estimate",
    budget="dlaudit.robust.analysis:BUDGET",
    options="dlaudit.robust.options:OPTIONS",
)
register_analysis(
    "fairness",
    "dlaudit.fairness.analysis:fairness_section",
    title="Fairness",
    order=40,
    settings="dlaudit.fairness.analysis:Settings",
    budget="dlaudit.fairness.budget:BUDGET",
    options="dlaudit.fairness.options:ALL",
)

# fairness mitigation by group thresholds: the card stores the thresholds, the wrapper applies them
register_postprocessor("group-thresholds", "dlaudit.fairness.thresholds:wrap_group_thresholds")
