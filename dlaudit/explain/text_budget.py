"""How ``--time-budget`` sizes the text explanations section (:func:`dlaudit.explain.text_section.explain_text`;
see :mod:`dlaudit.plan`).

Probe: the section itself under its fast profile on one and on four texts, or on 8 and 16 where that is
cheap (a fixed part and a part per text, :func:`dlaudit.text.budget.section_costs`), and a forward and a gradient
pass of a batch of texts (:func:`dlaudit.text.estimate.text_costs`), which price the full profile's passes per
text (IG steps, LIME samples) against the fast one's; where that is cheap too, the full profile is timed on 8
texts instead (:data:`PROBE_FILL`). Ladder: the fast profile (16 IG steps, 200 LIME samples) on 2, 4, 8... texts
up to the configured count, then the full profile on it: exactly what an audit without ``--time-budget`` runs.
Each rung names the settings it runs (``n``, ``methods``, ``steps``, ``lime_samples``), so a plan file says them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..plan import Budget, Level, run_probe
from ..text.budget import FILL_SECONDS, planned_params, priced_per_text, section_costs
from .text_section import TextSettings, explain_text, mean_tokens, text_passes

if TYPE_CHECKING:
    from ..bundle import ModelBundle
    from ..data import AuditData

__all__ = ["BUDGET", "LADDER"]

LADDER = (2, 4, 8)
"""Texts explained at the rungs below the configured count (16 by default)."""
PROBE_TEXTS = (1, 4)
"""Texts of the probe's two runs of the section (8 and 16 where that is cheap: :data:`PROBE_FILL`)."""
PROBE_FILL = 8
"""On a cheap model the probe's line goes through 8 and 16 texts (the methods batch across texts: the reference
TextCNN's fast profile took 0.06 to 0.12 s on 1 text, 0.22 to 0.29 s on 4, 0.4 s on 8 and 0.5 to 0.7 s on 16, so the
line through 1 and 4 priced 16 texts at 1.4x), and the full profile is timed on 8 texts (its passes priced it at
1.9x the fast profile, it took 2.3x: on a small model the methods' own work, not the model's passes, is the time);
a model on which these would take more than :data:`~dlaudit.text.budget.FILL_SECONDS` keeps 1 and 4 texts and the
priced passes (a 4-layer BERT: 1.9x priced, 1.9x taken)."""


def _probe(bundle: ModelBundle, data: AuditData, params: Mapping[str, Any]) -> dict[str, float]:
    from ..text.estimate import text_costs

    if bundle.tokenizer is None or not data.texts:  # the section says what is missing when it runs
        return {"fixed": 0.0, "per_text": 0.0, "forward": 0.0, "grad": 0.0}
    costs = section_costs(
        explain_text, bundle, data, params, small=PROBE_TEXTS[0], large=PROBE_TEXTS[1], fill=PROBE_FILL
    )
    costs = {**costs, **text_costs(bundle, data)}
    given, k = planned_params(params), min(PROBE_FILL, len(data))
    fast, full = TextSettings.build(fast=True, **given), TextSettings.build(fast=False, **given)
    priced = costs["fixed"] + k * costs["per_text"] * _full_ratio(bundle, data, params, costs)
    if _named(full) != _named(fast) and costs["per_text"] > 0 and priced <= FILL_SECONDS:
        full_k = run_probe(explain_text, bundle, data, fast=False, seed=0, **given, n=k)
        costs["full_ratio"] = max((full_k - costs["fixed"]) / (k * costs["per_text"]), 1.0)
    return costs


def _levels(bundle: ModelBundle, data: AuditData, params: Mapping[str, Any]) -> list[Level]:
    """The fast profile on more and more texts up to the configured count, then the full profile on it; each rung
    names its settings (texts, methods, IG steps, LIME samples: a parameter given keeps its value)."""
    given = planned_params(params)
    fast, full = TextSettings.build(fast=True, **given), TextSettings.build(fast=False, **given, n=params.get("n"))
    top = max(1, min(full.n, len(data)))
    counts = sorted({k for k in LADDER if k < top} | {top})
    levels = [Level({**_named(fast), "n": k}, True, k) for k in counts]
    if _named(full) != _named(fast):  # a full profile the given parameters left as the fast one is no new rung
        levels.append(Level({**_named(full), "n": top}, False, top))
    return levels


def _named(s: TextSettings) -> dict[str, Any]:
    return {"methods": list(s.methods or ()), "steps": s.steps, "lime_samples": s.lime_samples}


def _full_ratio(bundle: ModelBundle, data: AuditData, params: Mapping[str, Any], costs: Mapping[str, float]) -> float:
    """The full profile's seconds per text over the fast one's (at least 1): measured where the probe ran it
    (``full_ratio``), else their passes per text, priced."""
    if "full_ratio" in costs:
        return float(costs["full_ratio"])
    if bundle.tokenizer is None or not data.texts:
        return 1.0
    tokens = mean_tokens(bundle, data)
    given = planned_params(params)

    def price(fast: bool) -> float:
        forwards, grads = text_passes(TextSettings.build(fast=fast, **given), tokens)
        return forwards * costs["forward"] + grads * costs["grad"]

    fast = price(True)
    return max(price(False) / fast, 1.0) if fast > 0 else 1.0


BUDGET = Budget(probe=_probe, levels=_levels, cost=priced_per_text(_full_ratio))
"""How ``--time-budget`` sizes the text explanations: texts explained first (fast profile), then the full profile."""
