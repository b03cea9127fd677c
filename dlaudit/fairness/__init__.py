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

from typing import TYPE_CHECKING

from .._lazy import lazy_getattr

if TYPE_CHECKING:
    from ..data.groups import DEFAULT_BINS, SensitiveFeature, resolve_sensitive
    from .metrics import FairnessResult, FeatureFairness, group_fairness
    from .mitigate import MITIGATIONS, MitigationResult, mitigate_bundle
    from .reweigh import reweighing_weights

_LAZY = {
    "DEFAULT_BINS": "..data.groups",
    "SensitiveFeature": "..data.groups",
    "resolve_sensitive": "..data.groups",
    "FairnessResult": ".metrics",
    "FeatureFairness": ".metrics",
    "group_fairness": ".metrics",
    "MITIGATIONS": ".mitigate",
    "MitigationResult": ".mitigate",
    "mitigate_bundle": ".mitigate",
    "reweighing_weights": ".reweigh",
}
"""Each public name and the module it lives in, imported on first use (so that the light modules of this
package, such as its command-line options, load without torch)."""

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

__getattr__ = lazy_getattr(__name__, _LAZY)
