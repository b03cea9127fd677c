"""How ``--time-budget`` sizes the text explanations section (:func:`dlaudit.explain.text_section.explain_text`;
see :mod:`dlaudit.plan`).

Probe: the section itself under its fast profile on one and on four texts (a fixed part and a part per text,
:func:`dlaudit.text.budget.section_costs`), and a forward and a gradient pass of a batch of texts
(:func:`dlaudit.text.estimate.text_costs`), which price the full profile's passes per text (IG steps, LIME
samples) against the fast one's. Ladder: the fast profile (16 IG steps, 200 LIME samples) on 2, 4, 8... texts
up to the configured count, then the full profile on it: exactly what an audit without ``--time-budget`` runs.
Each rung names the settings it runs (``n``, ``methods``, ``steps``, ``lime_samples``), so a plan file says them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..plan import Budget, Level
from ..text.budget import planned_params, section_costs
from .text_section import TextSettings, explain_text, mean_tokens, text_passes

if TYPE_CHECKING:
    from ..bundle import ModelBundle
    from ..data import AuditData

__all__ = ["BUDGET", "LADDER"]

LADDER = (2, 4, 8)
"""Texts explained at the rungs below the configured count (16 by default)."""
PROBE_TEXTS = (1, 4)
"""Texts of the probe's two runs of the section."""


def _probe(bundle: ModelBundle, data: AuditData, params: Mapping[str, Any]) -> dict[str, float]:
    from ..text.estimate import text_costs

    if bundle.tokenizer is None or not data.texts:  # the section says what is missing when it runs
        return {"fixed": 0.0, "per_text": 0.0, "forward": 0.0, "grad": 0.0}
    costs = section_costs(explain_text, bundle, data, params, small=PROBE_TEXTS[0], large=PROBE_TEXTS[1])
    return {**costs, **text_costs(bundle, data)}


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


def _cost(
    bundle: ModelBundle, data: AuditData, level: Level, params: Mapping[str, Any], costs: Mapping[str, float]
) -> float:
    ratio = 1.0 if level.fast else _full_ratio(bundle, data, params, costs)
    return costs["fixed"] + int(level.params["n"]) * costs["per_text"] * ratio


def _full_ratio(bundle: ModelBundle, data: AuditData, params: Mapping[str, Any], costs: Mapping[str, float]) -> float:
    """The full profile's seconds per text over the fast one's: their passes per text, priced (at least 1)."""
    if bundle.tokenizer is None or not data.texts:
        return 1.0
    tokens = mean_tokens(bundle, data)
    given = planned_params(params)

    def price(fast: bool) -> float:
        forwards, grads = text_passes(TextSettings.build(fast=fast, **given), tokens)
        return forwards * costs["forward"] + grads * costs["grad"]

    fast = price(True)
    return max(price(False) / fast, 1.0) if fast > 0 else 1.0


BUDGET = Budget(probe=_probe, levels=_levels, cost=_cost)
"""How ``--time-budget`` sizes the text explanations: texts explained first (fast profile), then the full profile."""
