"""How ``--time-budget`` sizes the fairness section (see :mod:`dlaudit.plan`): its bootstrap resamples, fast
(200) then full (1,000); the samples behind its intervals are the data's, so it grows last."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..bundle import ModelBundle
from ..data import AuditData
from ..plan import Budget, Level, run_probe
from .analysis import Settings, fairness_section

__all__ = ["BUDGET"]

PROBE_BOOT = 20
"""Bootstrap resamples of the probe that measures one resample's cost."""


def _probe(bundle: ModelBundle, data: AuditData, params: Mapping[str, Any]) -> dict[str, float]:
    """Seconds of the section without resamples (fast and full: the robust part differs) and of one resample."""
    given = {**{k: v for k, v in params.items() if k not in ("n_boot", "fast", "seed")}, "seed": 0}
    fast0 = run_probe(fairness_section, bundle, data, fast=True, n_boot=0, **given)
    boot = run_probe(fairness_section, bundle, data, fast=True, n_boot=PROBE_BOOT, **given)
    full0 = run_probe(fairness_section, bundle, data, fast=False, n_boot=0, **given)
    return {"fixed_fast": fast0, "fixed_full": full0, "resample": max(boot - fast0, 0.0) / PROBE_BOOT}


def _levels(bundle: ModelBundle, data: AuditData, params: Mapping[str, Any]) -> list[Level]:
    """The fast profile, then the full one (the bootstrap's resamples are the knob; the samples are the data's)."""
    if params.get("n_boot") is not None:
        return [Level({}, False, len(data))]
    return [Level({}, True, len(data)), Level({}, False, len(data))]


def _cost(
    bundle: ModelBundle, data: AuditData, level: Level, params: Mapping[str, Any], costs: Mapping[str, float]
) -> float:
    s = Settings.build(fast=level.fast, **{**params, **level.params})
    return costs["fixed_fast" if level.fast else "fixed_full"] + s.n_boot * costs["resample"]


BUDGET = Budget(probe=_probe, levels=_levels, cost=_cost)
"""How ``--time-budget`` sizes the section: 200 resamples at its minimum, 1,000 at its full configuration."""
