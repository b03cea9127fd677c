"""DeepWordBug: character edits to the most important words (a black-box attack).

Gao, Lanchantin, Soffa and Qi (2018), "Black-box Generation of Adversarial Text Sequences
to Evade Deep Learning Classifiers", https://arxiv.org/abs/1801.04354. Words are ranked by
the replace-1 score: the drop of the true-class probability when the word is replaced by the
model's unknown token (``scoring="unk"``, Gao et al.'s and TextAttack's rule, as ``dlaudit
report`` runs it) or removed (``scoring="delete"``, this function's default: it sees only
probabilities, not the tokenizer). The top words are then edited one character each, by one
of four edits:

- **swap** two adjacent characters (``bad`` -> ``abd``);
- **substitute** a character by a random letter (``bad`` -> ``bxd``);
- **delete** a character (``bad`` -> ``bd``);
- **insert** a random letter (``bad`` -> ``bayd``).

As in TextAttack's ``DeepWordBugGao2018`` recipe, every edit proposes candidates and the
best one (lowest true-class probability) is kept greedily (:mod:`._greedy`), and stop words
(NLTK's English list, :mod:`dlaudit.text.stopwords`, matched in lower case) are neither
ranked nor edited; unlike it, there is no cap on the total Levenshtein distance other than
the budget: at most ``budget`` words change, each by one edit (distance 1; a swap is
distance 1 under Damerau-Levenshtein). Metric names: ``robustness.charswap.acc@K``.
"""

from __future__ import annotations

import string
from collections.abc import Collection, Sequence

import numpy as np

from ...errors import ConfigError
from ..stopwords import STOPWORDS
from ._greedy import PredictProba, greedy_word_attack
from .result import TextAttackResult

__all__ = ["EDITS", "char_candidates", "deepwordbug"]

EDITS = ("swap", "substitute", "delete", "insert")
LETTERS = string.ascii_lowercase


def char_candidates(
    word: str, rng: np.random.Generator, *, per_edit: int = 1, edits: Sequence[str] = EDITS
) -> list[str]:
    """``per_edit`` random one-character edits of ``word`` for each edit in ``edits``, in that order.

    Draws, per candidate: swap one position in ``[0, len - 1)``; substitute a position and a
    letter; delete a position (words of two or more characters); insert a position in
    ``[0, len]`` and a letter. Edits that leave the word unchanged are dropped.
    """
    out, n = [], len(word)
    for edit in edits:
        for _ in range(per_edit):
            if edit == "swap" and n >= 2:
                i = int(rng.integers(0, n - 1))
                new = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
            elif edit == "substitute" and n >= 1:
                i, ch = int(rng.integers(0, n)), LETTERS[int(rng.integers(0, 26))]
                new = word[:i] + ch + word[i + 1 :]
            elif edit == "delete" and n >= 2:
                i = int(rng.integers(0, n))
                new = word[:i] + word[i + 1 :]
            elif edit == "insert":
                i, ch = int(rng.integers(0, n + 1)), LETTERS[int(rng.integers(0, 26))]
                new = word[:i] + ch + word[i:]
            else:
                continue
            if new != word:
                out.append(new)
    return out


def deepwordbug(
    predict_proba: PredictProba,
    texts: Sequence[str],
    labels: Sequence[int],
    *,
    budget: int = 3,
    per_edit: int = 1,
    edits: Sequence[str] = EDITS,
    scoring: str = "delete",
    unk: str | None = None,
    protected: Sequence[str] = (),
    stopwords: Collection[str] = STOPWORDS,
    seed: int = 0,
    start: int = 0,
    batch_size: int = 256,
) -> TextAttackResult:
    """Attack ``texts`` with DeepWordBug: at most ``budget`` words edited, one character each.

    Parameters
    ----------
    predict_proba
        ``texts -> (N, C)`` probabilities (any text model: only its outputs are used).
    texts, labels
        The inputs and their true classes; texts the model gets wrong are not attacked.
    budget
        The most words changed per text (K in ``robustness.charswap.acc@K``).
    per_edit
        Random candidates per edit kind and word (4 kinds: up to ``4 * per_edit`` candidates).
        1 by default, as TextAttack's recipe: on a 4-layer BERT (``bench/text_textattack.py``)
        2 raised the success rate by a few points for about 1.5x the queries.
    edits
        A subset of :data:`EDITS`.
    scoring, unk
        The replace-1 score: ``"delete"`` removes the word; ``"unk"`` (DeepWordBug's own rule, and
        TextAttack's) replaces it by ``unk``, the word the model's tokenizer reads as its unknown
        token (:func:`~dlaudit.text.vocab.unknown_word`: ``"[UNK]"`` for a BERT). ``dlaudit report``
        ranks by ``"unk"`` and falls back to ``"delete"`` for a tokenizer without an unknown word.
    seed, start
        Seeds each text's generator with ``(seed, start + index)``: the same seed gives the same
        texts, and a shard of texts starting at global index ``start`` draws what the whole run does.
    protected
        Strings never edited: the tokenizer's special tokens as a text spells them (``"[SEP]"``,
        :func:`~dlaudit.text.vocab.special_tokens_of`); no edit may spell a new one either.
    stopwords
        Words never ranked nor edited, matched in lower case: NLTK's English list by default
        (:data:`~dlaudit.text.stopwords.STOPWORDS`, as DeepWordBug and TextAttack); ``()`` for none.
    batch_size
        Texts per model call.

    Examples
    --------
    >>> result = deepwordbug(clf.predict_proba, texts, labels, budget=3)  # doctest: +SKIP
    >>> attack_metrics(result)["robustness.charswap.acc@1"]  # doctest: +SKIP
    """
    unknown = sorted(set(edits) - set(EDITS))
    if unknown or not edits:
        raise ConfigError(f"unknown character edit(s) {unknown}; choose from {', '.join(EDITS)}")
    if per_edit < 1:
        raise ConfigError(f"per_edit must be at least 1, got {per_edit}")
    return greedy_word_attack(
        predict_proba,
        texts,
        labels,
        lambda word, rng: char_candidates(word, rng, per_edit=per_edit, edits=edits),
        name="charswap",
        budget=budget,
        scoring=scoring,
        unk=unk,
        protected=protected,
        skip=stopwords,
        seed=seed,
        start=start,
        batch_size=batch_size,
    )
