"""How ``--time-budget`` sizes the text robustness section (:func:`dlaudit.robust.text_section.robustness_text`;
see :mod:`dlaudit.plan`).

Probe: the section itself under its fast profile (attacks with at most 2 words changed) on 4 and on 12 texts, or,
where a cheap model's 4 texts say that takes at most a few seconds (:data:`dlaudit.text.budget.FILL_SECONDS`), on
64 and 128 (:data:`PROBE_FILL`: past a HotFlip batch and a batch of the black-box searches' candidates): a fixed part and a part per text
(:func:`dlaudit.text.budget.section_costs`: every attack's queries and the noise); and a forward and a gradient pass of a batch of texts (:func:`dlaudit.text.estimate.text_costs`), which
price the full profile's word budget (3) against the fast one's by their passes per text. Ladder: the fast
profile on 8, 16, 32, 64, 128 texts up to the configured count (200), then the full profile on it: exactly what
an audit without ``--time-budget`` runs. Each rung names the settings it runs (``n``, ``attacks``, ``budget``: the
words an attack may change, ``noise_rate``), so a plan file says them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..plan import Budget, Level
from ..text.budget import planned_params, priced_per_text, section_costs
from .text_section import HOTFLIP_BATCH, TextRobustSettings, attack_passes, mean_words, robustness_text

if TYPE_CHECKING:
    from ..bundle import ModelBundle
    from ..data import AuditData

__all__ = ["BUDGET", "LADDER"]

LADDER = (8, 16, 32, 64, 128)
"""Texts attacked at the rungs below the configured count (200 by default)."""
PROBE_TEXTS = (4, 12)
"""Texts of the probe's two runs of the section (the second goes up to :data:`PROBE_FILL` where that is cheap)."""
PROBE_FILL = HOTFLIP_BATCH
"""Texts of the probe's first timed run on a cheap model (then twice as many): they fill a HotFlip gradient batch,
and their candidates (4 character edits a word for 64 texts) a batch of the black-box searches' queries."""


def _probe(bundle: ModelBundle, data: AuditData, params: Mapping[str, Any]) -> dict[str, float]:
    from ..text.estimate import text_costs

    TextRobustSettings.build(fast=False, **planned_params(params))  # a scope or attack text refuses: say so now
    if bundle.tokenizer is None or not data.texts:  # the section says what is missing when it runs
        return {"fixed": 0.0, "per_text": 0.0, "forward": 0.0, "grad": 0.0}
    costs = section_costs(
        robustness_text, bundle, data, params, small=PROBE_TEXTS[0], large=PROBE_TEXTS[1], fill=PROBE_FILL
    )
    return {**costs, **text_costs(bundle, data)}


def _levels(bundle: ModelBundle, data: AuditData, params: Mapping[str, Any]) -> list[Level]:
    """The fast profile on more and more texts up to the configured count, then the full profile on it; each rung
    names its settings (texts, attacks, word budget, noise rate: a parameter given keeps its value)."""
    given = planned_params(params)
    fast, full = (
        TextRobustSettings.build(fast=True, **given),
        TextRobustSettings.build(fast=False, **given, n=params.get("n")),
    )
    top = max(1, min(full.n, len(data)))
    counts = sorted({k for k in LADDER if k < top} | {top})
    levels = [Level({**_named(fast, params), "n": k}, True, k) for k in counts]
    if _named(full, params) != _named(
        fast, params
    ):  # a full profile the given parameters left as the fast one is no new rung
        levels.append(Level({**_named(full, params), "n": top}, False, top))
    return levels


def _named(s: TextRobustSettings, params: Mapping[str, Any]) -> dict[str, Any]:
    """The settings a rung runs; PGD's ``restarts`` that ``dlaudit attack`` passes are cleared (text attacks take
    none, and a plan should not print one)."""
    cleared = {"restarts": None} if params.get("restarts") is not None else {}
    return {"attacks": list(s.attacks), "budget": s.budget, "noise_rate": s.noise_rate, **cleared}


def _full_ratio(bundle: ModelBundle, data: AuditData, params: Mapping[str, Any], costs: Mapping[str, float]) -> float:
    """The full profile's seconds per text over the fast one's: their passes per text, priced (at least 1)."""
    from ..text.vocab import WordVocab

    if bundle.tokenizer is None or not data.texts:
        return 1.0
    words, word_level = mean_words(data), isinstance(bundle.tokenizer, WordVocab)
    given = planned_params(params)

    def price(fast: bool) -> float:
        forwards, grads = attack_passes(TextRobustSettings.build(fast=fast, **given), words, word_level=word_level)
        return forwards * costs["forward"] + grads * costs["grad"]

    fast = price(True)
    return max(price(False) / fast, 1.0) if fast > 0 else 1.0


BUDGET = Budget(probe=_probe, levels=_levels, cost=priced_per_text(_full_ratio))
"""How ``--time-budget`` sizes the text attacks: texts attacked first (fast profile), then the full word budget."""
