"""How ``--time-budget`` sizes the text fairness section (:func:`dlaudit.fairness.text_section.fairness_text`;
see :mod:`dlaudit.plan`): its bootstrap resamples, fast then full (200 then 1,000, the Jigsaw bias AUCs' and
the group metrics' alike). The samples behind its numbers are the data's (every text is swapped and
scored), so, as the tabular fairness section's (:mod:`dlaudit.fairness.budget`), it grows last.

Probe: after an untimed run on a few texts (it warms up), the section on the first :data:`PROBE_TEXTS` texts without and with :data:`PROBE_BOOT`
resamples (the fast and the full profile differ in the resamples alone), scaled to the data's texts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..plan import Budget, Level, run_probe
from .text_section import JIGSAW_RESAMPLES, fairness_text

if TYPE_CHECKING:
    from ..bundle import ModelBundle
    from ..data import AuditData

__all__ = ["BUDGET"]

PROBE_BOOT = 50
"""Bootstrap resamples of the probe that measures one resample's cost."""
PROBE_TEXTS = 128
"""Texts the probe's runs read (the first ones); their seconds are scaled to the data's texts."""
WARM_TEXTS = 16
"""Texts of the untimed first run (imports and caches warm up: 1.7 s of a first run on 128 texts of the reference
TextCNN, against 0.3 s for the next, busy 2-core machine)."""


RESAMPLE_FLOOR = 1e-6
"""The least one resample is priced at (seconds): on a busy machine the probe's noise can hide its cost, and the full
profile must still cost more than the fast one."""


def _probe(bundle: ModelBundle, data: AuditData, params: Mapping[str, Any]) -> dict[str, float]:
    """Seconds of the section without resamples and of one resample (a Jigsaw one and a group metrics' one), measured on the first :data:`PROBE_TEXTS` texts and scaled to the data's (every part of the section,
    the counterfactuals' passes and a resample's AUCs, grows with the texts)."""
    given = {k: v for k, v in params.items() if k not in ("n_boot", "fast", "seed")}
    sub = data.head(PROBE_TEXTS)
    scale = len(data) / max(len(sub), 1)
    run_probe(fairness_text, bundle, data.head(WARM_TEXTS), fast=True, n_boot=0, seed=0, **given)  # imports, caches
    fast0 = run_probe(fairness_text, bundle, sub, fast=True, n_boot=0, seed=0, **given)
    boot = run_probe(fairness_text, bundle, sub, fast=True, n_boot=PROBE_BOOT, seed=0, **given)
    resample = max((boot - fast0) / PROBE_BOOT, RESAMPLE_FLOOR)
    return {"fixed": scale * fast0, "resample": scale * resample}


def _levels(bundle: ModelBundle, data: AuditData, params: Mapping[str, Any]) -> list[Level]:
    """The fast profile, then the full one (the resamples are the knob; the samples are the data's)."""
    if params.get("n_boot") is not None:  # the resamples given: the profiles differ in nothing else
        return [Level({}, True, len(data)), Level({}, False, len(data))]
    return [Level({"n_boot": JIGSAW_RESAMPLES[fast]}, fast, len(data)) for fast in (True, False)]


def _cost(
    bundle: ModelBundle, data: AuditData, level: Level, params: Mapping[str, Any], costs: Mapping[str, float]
) -> float:
    n_boot = {**params, **level.params}.get("n_boot")
    n_boot = JIGSAW_RESAMPLES[level.fast] if n_boot is None else int(n_boot)
    return costs["fixed"] + n_boot * costs["resample"]


BUDGET = Budget(probe=_probe, levels=_levels, cost=_cost)
"""How ``--time-budget`` sizes the text fairness section: its fast profile at its minimum, the full one at the top."""
