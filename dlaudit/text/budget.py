"""What ``--time-budget`` measures of a text section (see :mod:`dlaudit.plan`): its fast profile's seconds, split
into a fixed part and a part per text, from two timed runs of the section itself on a few texts.

The text sections' ladders (:mod:`dlaudit.explain.text_budget`, :mod:`dlaudit.robust.text_budget`) price the
full profile from these by the ratio of its model passes per text to the fast profile's (the pass counts of
the sections' time estimates, priced by :func:`dlaudit.text.estimate.text_costs`). Timings only choose a plan;
no number of a report depends on them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..plan import run_probe

if TYPE_CHECKING:
    from ..bundle import ModelBundle
    from ..data import AuditData

__all__ = ["FILL_SECONDS", "PROBE_LONG", "section_costs", "planned_params", "priced_per_text"]

PROBE_LONG = 1.0
"""Seconds of the first run beyond which it is not repeated: a quick first run is mostly imports and caches
warming up (it is timed again: the reference TextCNN explained one text in 0.23 s, then 0.08 s), a long one is
mostly the work (a 4-layer, 256-wide BERT: 3 s a text; the warm-up, a fraction of a second, then counts in the
fixed part)."""
FILL_SECONDS = 3.0
"""Where the small run says that runs on ``fill`` and ``2 * fill`` texts (texts that fill the section's batches)
take at most these seconds, the line goes through those two instead: a cheap model is then priced where batching
has made its texts cheaper (the reference TextCNN's fast text attacks, 2-core machine, load about 2.3: 0.04 s on 4
texts, 0.28 s on 64, 0.40 s on 128, 0.52 s on 200: the line through 4 and 12 priced 200 at 2 to 3x what they took,
the line through 4 and 64 at 1.6x); an expensive model keeps ``small`` and ``large`` (its batches cost about their
texts, and its probe stays short)."""
FLOOR = 0.1
"""The part per text is never taken below this share of the small run's seconds per text (a busy machine can
blur the difference of the two runs to nothing)."""


def planned_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters a run was given, less those a probe or a rung sets itself (``n``, ``fast``, ``seed``)."""
    return {k: v for k, v in params.items() if k not in ("n", "fast", "seed")}


def section_costs(
    fn: Callable[..., Any],
    bundle: ModelBundle,
    data: AuditData,
    params: Mapping[str, Any],
    *,
    small: int,
    large: int,
    fill: int | None = None,
) -> dict[str, float]:
    """Seconds of the section ``fn`` under its fast profile with ``params``: ``fixed`` and ``per_text``, from
    runs on ``small`` and ``large`` texts (at most the data's; the first run is repeated when it is quick), or on
    ``fill`` and ``2 * fill`` texts where the small run says those cost at most :data:`FILL_SECONDS`."""
    given = planned_params(params)
    small = max(1, min(small, len(data)))
    large = max(small, min(large, len(data)))
    one = run_probe(fn, bundle, data, fast=True, seed=0, **given, n=small)
    if one < PROBE_LONG:
        one = run_probe(fn, bundle, data, fast=True, seed=0, **given, n=small)
    if fill is not None and one / small * 2 * fill <= FILL_SECONDS and len(data) > small:
        small, large = min(fill, len(data)), min(2 * fill, len(data))  # past a batch: the line batching then follows
        if large == small:
            small = max(1, large // 2)
        one = run_probe(fn, bundle, data, fast=True, seed=0, **given, n=small)
    if large == small:
        return {"fixed": 0.0, "per_text": one / small}
    more = run_probe(fn, bundle, data, fast=True, seed=0, **given, n=large)
    per = max((more - one) / (large - small), FLOOR * one / small)
    return {"fixed": max(one - small * per, 0.0), "per_text": per}


def priced_per_text(full_ratio: Callable[..., float]) -> Callable[..., float]:
    """A text section's ``cost`` hook: the probe's fixed part plus the rung's texts at the fast profile's seconds
    per text, times ``full_ratio(bundle, data, params, costs)`` on a full-profile rung."""

    def cost(
        bundle: ModelBundle, data: AuditData, level: Any, params: Mapping[str, Any], costs: Mapping[str, float]
    ) -> float:
        ratio = 1.0 if level.fast else full_ratio(bundle, data, params, costs)
        return costs["fixed"] + int(level.params["n"]) * costs["per_text"] * ratio

    return cost
