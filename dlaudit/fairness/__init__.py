"""Fairness: group metrics over fairlearn's MetricFrame, mitigation, and robustness by group.

- :mod:`.groups`: sensitive features as group labels (binned, checked, intersected);
- :mod:`.metrics`: per-group rates, parity differences and ratios, bootstrap intervals;
- :mod:`.analysis`: the report's "fairness" section (registered, order 40);
- :mod:`.reweigh`, :mod:`.thresholds`, :mod:`.expgrad`: the three mitigations;
- :mod:`.mitigate`: fitting them and measuring every model before and after.

The public entry points are :func:`dlaudit.fairness` and :func:`dlaudit.mitigate`
(in :mod:`dlaudit.api`). Because ``dlaudit.fairness`` is that function, import
from this package with ``from dlaudit.fairness.metrics import group_fairness``.
"""

from __future__ import annotations

from ..data.groups import DEFAULT_BINS, SensitiveFeature, resolve_sensitive
from .metrics import FairnessResult, FeatureFairness, group_fairness
from .mitigate import MITIGATIONS, MitigationResult, mitigate_bundle
from .reweigh import reweighing_weights

__all__ = [
    "DEFAULT_BINS",
    "FairnessResult",
    "FeatureFairness",
    "MITIGATIONS",
    "MitigationResult",
    "SensitiveFeature",
    "group_fairness",
    "mitigate_bundle",
    "resolve_sensitive",
    "reweighing_weights",
]
