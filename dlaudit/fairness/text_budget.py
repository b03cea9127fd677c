"""How ``--time-budget`` sizes the text fairness section (:func:`dlaudit.fairness.text_section.fairness_text`;
see :mod:`dlaudit.plan`): its bootstrap resamples, fast then full (the Jigsaw bias AUCs' 100 then 500, the
group metrics' 200 then 1,000). The samples behind its numbers are the data's (every text is swapped and
scored), so, as the tabular fairness section's (:mod:`dlaudit.fairness.budget`), it grows last.

Probe: after an untimed run on a few texts (it warms up), the section on the first 64 and 128 texts under its fast
profile without Jigsaw resamples (a fixed part and a part per text, the line through them carried to the data's
texts: the reference TextCNN took 0.56 s on 128 texts and 0.85 s on 500, not 4x), and under its full profile on 128
without them (its group metrics' resamples then differ; the difference scaled to the data's texts); and one Jigsaw
resample on the data's labels and identities, timed alone (no model: :func:`jigsaw_bias_aucs` on seeded scores) as
the median of a few repeats (the difference of two section runs was noise: up to 5x off).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ..plan import Budget, Level, run_probe
from .text_bias import jigsaw_bias_aucs
from .text_section import JIGSAW_RESAMPLES, fairness_text, identity_frame

if TYPE_CHECKING:
    from ..bundle import ModelBundle
    from ..data import AuditData

__all__ = ["BUDGET"]

PROBE_BOOT = 40
"""Jigsaw bootstrap resamples of each timed run that measures one resample's cost."""
REPEATS = 3
"""Timed runs of the resamples (their median counts)."""
PROBE_TEXTS = (64, 128)
"""Texts of the probe's runs of the section (the first ones); the line through them is carried to the data's texts."""
WARM_TEXTS = 16
"""Texts of the untimed first run (imports and caches warm up: 1.7 s of a first run on 128 texts of the reference
TextCNN, against 0.3 s for the next, busy 2-core machine)."""
FLOOR = 0.1
"""The part per text is never taken below this share of the larger run's seconds per text."""


def _probe(bundle: ModelBundle, data: AuditData, params: Mapping[str, Any]) -> dict[str, float]:
    """Seconds of the section without Jigsaw resamples on the data's texts (fast and full: the group metrics'
    resamples differ) and of one resample."""
    given = {k: v for k, v in params.items() if k not in ("n_boot", "fast", "seed")}
    total = len(data)
    small, large = (max(1, min(k, total)) for k in PROBE_TEXTS)
    run = lambda k, fast: run_probe(fairness_text, bundle, data.head(k), fast=fast, n_boot=0, seed=0, **given)
    run_probe(fairness_text, bundle, data.head(WARM_TEXTS), fast=True, n_boot=0, seed=0, **given)  # imports, caches
    fast_large = run(large, True)
    if large > small:
        fast_small = run(small, True)
        per = max((fast_large - fast_small) / (large - small), FLOOR * fast_large / large)
    else:
        per = fast_large / large
    fixed_fast = max(fast_large - large * per, 0.0) + total * per
    full_extra = max(run(large, False) - fast_large, 0.0) * total / large
    return {"fixed_fast": fixed_fast, "fixed_full": fixed_fast + full_extra, "resample": _resample(bundle, data)}


def _resample(bundle: ModelBundle, data: AuditData) -> float:
    """Seconds of one Jigsaw bias-AUC resample on the data's labels and identities (0 where the section computes
    none: a model that is not binary, or no identity columns)."""
    identities = identity_frame(data.sensitive)
    if bundle.card.num_classes != 2 or identities is None or not len(data):
        return 0.0
    positive = bundle.card.positive_index
    labels = data.y.numpy() == (1 if positive is None else positive)
    scores = np.random.default_rng(0).random(len(data))  # the AUCs' work does not depend on the scores' values

    def seconds(n_boot: int) -> float:
        start = time.perf_counter()
        jigsaw_bias_aucs(labels, scores, identities, n_boot=n_boot, seed=0)
        return time.perf_counter() - start

    seconds(1)  # warm-up
    return max(statistics.median(seconds(PROBE_BOOT) - seconds(0) for _ in range(REPEATS)), 0.0) / PROBE_BOOT


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
