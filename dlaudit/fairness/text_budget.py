"""How ``--time-budget`` sizes the text fairness section (:func:`dlaudit.fairness.text_section.fairness_text`;
see :mod:`dlaudit.plan`): its bootstrap resamples, fast then full (the Jigsaw bias AUCs' 100 then 500, the
group metrics' 200 then 1,000). The samples behind its numbers are the data's (every text is swapped and
scored), so, as the tabular fairness section's (:mod:`dlaudit.fairness.budget`), it grows last.

Probe: the section under its fast profile (twice when the first run is quick: it warms up) without and with :data:`PROBE_BOOT` Jigsaw resamples, and under
its full profile without them (its group metrics' resamples then differ).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..plan import Budget, Level, run_probe
from ..text.budget import PROBE_LONG
from .text_section import JIGSAW_RESAMPLES, fairness_text

if TYPE_CHECKING:
    from ..bundle import ModelBundle
    from ..data import AuditData

__all__ = ["BUDGET"]

PROBE_BOOT = 20
"""Jigsaw bootstrap resamples of the probe that measures one resample's cost."""


def _probe(bundle: ModelBundle, data: AuditData, params: Mapping[str, Any]) -> dict[str, float]:
    given = {k: v for k, v in params.items() if k not in ("n_boot", "fast", "seed")}
    fast0 = run_probe(fairness_text, bundle, data, fast=True, n_boot=0, seed=0, **given)
    if fast0 < PROBE_LONG:  # a quick first run is mostly imports warming up: time it again
        fast0 = run_probe(fairness_text, bundle, data, fast=True, n_boot=0, seed=0, **given)
    boot = run_probe(fairness_text, bundle, data, fast=True, n_boot=PROBE_BOOT, seed=0, **given)
    full0 = run_probe(fairness_text, bundle, data, fast=False, n_boot=0, seed=0, **given)
    return {"fixed_fast": fast0, "fixed_full": full0, "resample": max(boot - fast0, 0.0) / PROBE_BOOT}


def _levels(bundle: ModelBundle, data: AuditData, params: Mapping[str, Any]) -> list[Level]:
    """The fast profile, then the full one (the resamples are the knob; the samples are the data's)."""
    if params.get("n_boot") is not None:  # the resamples given: the profile still sets the group metrics' ones
        return [Level({}, True, len(data)), Level({}, False, len(data))]
    return [Level({"n_boot": JIGSAW_RESAMPLES[fast]}, fast, len(data)) for fast in (True, False)]


def _cost(
    bundle: ModelBundle, data: AuditData, level: Level, params: Mapping[str, Any], costs: Mapping[str, float]
) -> float:
    n_boot = {**params, **level.params}.get("n_boot")
    n_boot = JIGSAW_RESAMPLES[level.fast] if n_boot is None else int(n_boot)
    return costs["fixed_fast" if level.fast else "fixed_full"] + n_boot * costs["resample"]


BUDGET = Budget(probe=_probe, levels=_levels, cost=_cost)
"""How ``--time-budget`` sizes the text fairness section: its fast profile at its minimum, the full one at the top."""
