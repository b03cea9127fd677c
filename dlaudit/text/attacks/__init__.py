"""Text attacks: DeepWordBug (characters), greedy embedding-neighbour substitution (words), HotFlip (tokens).

Each returns a :class:`~.result.TextAttackResult` with per-sample success, words changed
and queries; :func:`~.result.attack_metrics` turns one into metric names:

``robustness.charswap.acc@K``
    Accuracy under DeepWordBug (:mod:`.deepwordbug`) with at most K words changed, one
    character edit (swap, substitute, delete, insert) each.
``robustness.wordswap.acc@K``
    Accuracy under greedy word substitution with the model's own embedding neighbours
    (:mod:`.wordswap`), at most K words (and at most ``max_share`` of the text) changed.
``robustness.hotflip.acc@K``
    Accuracy under HotFlip (:mod:`.hotflip`) with at most K tokens flipped.

Each also gives ``success_rate@K``, ``words_changed@K`` (mean over successes) and
``queries@K`` (mean over attacked samples). Accuracy counts every sample, and a sample the
model gets wrong before the attack counts as wrong after it. ``acc@k`` for every ``k`` up
to the run's budget comes from one run (a greedy search with a smaller budget stops on the
same path, earlier).
"""

from __future__ import annotations

from .deepwordbug import EDITS, char_candidates, deepwordbug
from .hotflip import hotflip
from .result import TextAttackResult, attack_metrics
from .wordswap import embedding_neighbours, neighbours_of, word_substitution

__all__ = [
    "EDITS",
    "TextAttackResult",
    "attack_metrics",
    "char_candidates",
    "deepwordbug",
    "embedding_neighbours",
    "hotflip",
    "neighbours_of",
    "word_substitution",
]
