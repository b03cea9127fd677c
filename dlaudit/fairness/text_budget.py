"""How ``--time-budget`` sizes the text fairness section (:func:`dlaudit.fairness.text_section.fairness_text`;
see :mod:`dlaudit.plan`): its bootstrap resamples, fast then full (200 then 1,000, the Jigsaw bias AUCs' and
the group metrics' alike). The samples behind its numbers are the data's (every text is swapped and
scored), so, as the tabular fairness section's (:mod:`dlaudit.fairness.budget`), it grows last.

Probe: after an untimed run on a few texts (it warms up), the section without resamples on the first 64 and 128
texts (a fixed part and a part per text, the line through them carried to the data's texts: the reference TextCNN
took 0.56 s on 128 texts and 0.85 s on 500, not 4x); and one resample (a Jigsaw one and a group metrics' one) on the
data's labels, identities and sensitive columns, timed alone (no model: :func:`jigsaw_bias_aucs` and
:func:`group_fairness` on seeded scores and predictions) as the median of a few repeats (the difference of two
section runs was noise: up to 5x off).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import AnalysisError, ConfigError
from ..plan import Budget, Level, run_probe
from .text_bias import jigsaw_bias_aucs
from .text_section import JIGSAW_RESAMPLES, fairness_text, identity_frame, sensitive_columns

if TYPE_CHECKING:
    from ..bundle import ModelBundle
    from ..data import AuditData

__all__ = ["BUDGET"]

PROBE_BOOT = 40
"""Bootstrap resamples of each timed run that measures one resample's cost."""
REPEATS = 3
"""Timed runs of the resamples (their median counts)."""
PROBE_TEXTS = (64, 128)
"""Texts of the probe's runs of the section (the first ones); the line through them is carried to the data's texts."""
WARM_TEXTS = 16
"""Texts of the untimed first run (imports and caches warm up: 1.7 s of a first run on 128 texts of the reference
TextCNN, against 0.3 s for the next, busy 2-core machine)."""
FLOOR = 0.1
"""The part per text is never taken below this share of the larger run's seconds per text."""
RESAMPLE_FLOOR = 1e-6
"""The least one resample is priced at (seconds): on a busy machine the probe's noise can hide its cost, and the full
profile must still cost more than the fast one."""


def _probe(bundle: ModelBundle, data: AuditData, params: Mapping[str, Any]) -> dict[str, float]:
    """Seconds of the section without resamples on the data's texts and of one resample (a Jigsaw one and a group
    metrics' one)."""
    given = {k: v for k, v in params.items() if k not in ("n_boot", "fast", "seed")}
    total = len(data)
    small, large = (max(1, min(k, total)) for k in PROBE_TEXTS)
    run = lambda k: run_probe(fairness_text, bundle, data.head(k), fast=True, n_boot=0, seed=0, **given)
    run_probe(fairness_text, bundle, data.head(WARM_TEXTS), fast=True, n_boot=0, seed=0, **given)  # imports, caches
    more = run(large)
    if large > small:
        per = max((more - run(small)) / (large - small), FLOOR * more / large)
    else:
        per = more / large
    fixed = max(more - large * per, 0.0) + total * per
    try:
        resample = _resample(bundle, data, given.get("sensitive"))
    except (AnalysisError, ConfigError):
        raise
    except Exception as err:  # as a probe's run: the section is then planned as configured and says what is wrong
        raise AnalysisError(f"its probe failed ({type(err).__name__}: {err})") from err
    return {"fixed": fixed, "resample": max(resample, RESAMPLE_FLOOR)}


def _resample(bundle: ModelBundle, data: AuditData, sensitive: Any) -> float:
    """Seconds of one resample of the section's bootstraps on the data (the Jigsaw bias AUCs' where the section
    computes them, a binary model with identity columns; the group metrics' where it has sensitive columns)."""
    from ..data.groups import resolve_sensitive
    from .analysis import group_fairness

    if not len(data):
        return 0.0
    rng = np.random.default_rng(0)  # the resamples' work does not depend on the scores' values
    binary = bundle.card.num_classes == 2
    identities = identity_frame(sensitive_columns(data, sensitive)) if binary else None
    positive = 1 if bundle.card.positive_index is None else bundle.card.positive_index
    labels, scores = data.y.numpy(), rng.random(len(data))
    features = resolve_sensitive(data, sensitive) if data.sensitive is not None or sensitive is not None else []
    pred = rng.integers(0, max(bundle.card.num_classes, 1), len(data))
    if identities is None and not features:
        return 0.0

    def seconds(n_boot: int) -> float:
        start = time.perf_counter()
        if identities is not None:
            jigsaw_bias_aucs(labels == positive, scores, identities, n_boot=n_boot, seed=0)
        if features:
            group_fairness(
                labels,
                pred,
                features,
                class_names=bundle.card.names,
                n_boot=n_boot,
                seed=0,
                positive=bundle.card.positive_index,
            )
        return time.perf_counter() - start

    seconds(1)  # warm-up
    return max(statistics.median(seconds(PROBE_BOOT) - seconds(0) for _ in range(REPEATS)), 0.0) / PROBE_BOOT


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
