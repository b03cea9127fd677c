"""The greedy word-importance search shared by the black-box text attacks, batched over texts.

For each text the model got right:

1. **Word importance** (Gao et al.'s replace-1 score): the drop of the true-class
   probability when one word is removed (``scoring="delete"``) or replaced by the model's
   unknown token (``scoring="unk"``, DeepWordBug's and TextAttack's rule: ``unk`` is that token
   as a text spells it, :func:`~dlaudit.text.vocab.unknown_word`); every word of every text is
   scored in shared batches.
2. **Greedy substitution**: in order of importance (ties: left first), the candidates of the
   next word (character edits, embedding neighbours...) are scored; the one with the lowest
   true-class probability is kept if it lowers that probability (as TextAttack's
   ``GreedyWordSwapWIR``), and counts one word changed. The search stops at a wrong
   prediction (success), after ``budget`` changed words, or when every word was tried.

All active texts advance one word per round, and every candidate of the round is scored in
shared batches. Probabilities are compared at :data:`DECIMALS` decimals, so that the float
noise of different batch compositions cannot reorder near-ties (two edits that both make
a word unknown score the same). Each text draws its random numbers from its own generator, seeded with
``(seed, index)``, so its result does not depend on the other texts in the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

import numpy as np

from ...errors import ConfigError, ModelOutputError
from ..vocab import word_spans
from .result import TextAttackResult

DECIMALS = 6
"""Decimals at which the search compares probabilities."""

__all__ = [
    "DECIMALS",
    "greedy_word_attack",
    "split_words",
    "protected_spans",
    "probabilities",
    "PredictProba",
    "CandidateFn",
]

PredictProba = Callable[[list[str]], object]
"""``texts -> (N, C)`` class probabilities (a tensor or an array)."""
CandidateFn = Callable[[str, np.random.Generator], list[str]]
"""``(word, rng) -> replacement words`` (the word itself and duplicates are dropped by the search)."""


def protected_spans(text: str, protected: Sequence[str]) -> list[tuple[int, int]]:
    """The ``(start, end)`` character spans of every occurrence of the ``protected`` strings in ``text``."""
    spans = []
    for token in protected:
        at = text.find(token) if token else -1
        while at >= 0:
            spans.append((at, at + len(token)))
            at = text.find(token, at + len(token))
    return spans


def count_protected(text: str, protected: Sequence[str]) -> int:
    """How many times the ``protected`` strings occur in ``text``."""
    return sum(text.count(token) for token in protected if token)


def split_words(
    text: str, protected: Sequence[str] = (), skip: Collection[str] = ()
) -> tuple[list[str], list[str], list[int]]:
    """``text`` as pieces (separators at even positions, tokens at odd ones) and the piece index of each word.

    ``"".join(pieces) == text``; punctuation tokens are pieces but not words, and neither is a token
    inside one of the ``protected`` strings (a tokenizer's special tokens such as ``[SEP]`` in the text)
    nor one whose lower case is in ``skip`` (stop words, :mod:`dlaudit.text.stopwords`).
    """
    pieces, slots, last = [], [], 0
    guarded = protected_spans(text, protected)
    for a, b in word_spans(text):
        pieces += [text[last:a], text[a:b]]
        last = b
        inside = any(a < end and start < b for start, end in guarded)
        word = text[a:b]
        if not inside and any(ch.isalnum() for ch in word) and word.lower() not in skip:
            slots.append(len(pieces) - 1)
    pieces.append(text[last:])
    return pieces, [pieces[i] for i in slots], slots


def probabilities(predict_proba: PredictProba, texts: list[str], batch_size: int) -> np.ndarray:
    """``predict_proba`` over ``texts`` in batches, as a float64 ``(N, C)`` array (NaNs refused).

    The batches take the texts in order of length (ties: in order), so that a ``predict_proba``
    that pads each text to its own width (:func:`~dlaudit.text.model_io.text_proba`) meets few
    widths per call; a text's probabilities must not depend on the batch it comes in.
    """
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    parts = []
    for i in range(0, len(texts), batch_size):
        out = predict_proba([texts[j] for j in order[i : i + batch_size]])
        out = out.detach().cpu().numpy() if hasattr(out, "detach") else np.asarray(out)
        parts.append(np.asarray(out, dtype=np.float64))
    probs = np.concatenate(parts) if parts else np.zeros((0, 0))
    if probs.ndim != 2 or len(probs) != len(texts):
        raise ConfigError(
            f"predict_proba must return (N, C) probabilities; got shape {probs.shape} for {len(texts)} texts"
        )
    if not np.isfinite(probs).all():
        raise ModelOutputError("the model returns NaN or infinite probabilities on some texts; fix its forward")
    out = np.empty_like(probs)
    out[order] = probs
    return out


@dataclass
class _State:
    index: int
    label: int
    pieces: list[str]
    slots: list[int]
    order: list[int] = field(default_factory=list)
    position: int = 0
    changed: int = 0
    cap: int = 0
    prob: float = 1.0
    queries: int = 0
    done: bool = False
    success: bool = False

    def text(self, slot: int | None = None, word: str | None = None) -> str:
        if slot is None:
            return "".join(self.pieces)
        return "".join(word if i == slot else p for i, p in enumerate(self.pieces))


def greedy_word_attack(
    predict_proba: PredictProba,
    texts: Sequence[str],
    labels: Sequence[int],
    candidates: CandidateFn,
    *,
    name: str,
    budget: int,
    max_share: float = 1.0,
    scoring: str = "delete",
    unk: str | None = None,
    protected: Sequence[str] = (),
    skip: Collection[str] = (),
    seed: int = 0,
    start: int = 0,
    batch_size: int = 256,
) -> TextAttackResult:
    """The greedy search described in the module, with ``candidates`` proposing each word's replacements.

    ``budget`` caps the words changed per text, and so does ``max_share`` of its words
    (at least one word). ``protected`` strings (the tokenizer's special tokens as a text spells
    them, :func:`~dlaudit.text.vocab.special_tokens_of`) are never edited, and no candidate that
    would spell a new one is tried. ``start`` is the global index of the first text (a shard's
    offset): text ``i`` draws from a generator seeded with ``(seed, start + i)``. Words whose
    lower case is in ``skip`` (stop words) are neither scored nor edited. ``scoring="unk"`` needs
    ``unk``, the word the model's tokenizer reads as its unknown token (``"[UNK]"`` for a BERT's
    WordPiece; :func:`~dlaudit.text.vocab.unknown_word`): a fixed ``"<unk>"`` is three ordinary
    tokens to a WordPiece or to dlaudit's word vocabulary.
    """
    if budget < 1:
        raise ConfigError(f"the attack budget must be at least 1 word, got {budget}")
    if not 0 < max_share <= 1:
        raise ConfigError(f"max_share must be in (0, 1], got {max_share}")
    if scoring not in ("delete", "unk"):
        raise ConfigError(f"scoring must be 'delete' or 'unk', got {scoring!r}")
    if scoring == "unk" and not unk:
        raise ConfigError(
            "scoring='unk' needs unk=, the word the model's tokenizer reads as its unknown token "
            "(dlaudit.text.vocab.unknown_word(tokenizer)); or use scoring='delete'"
        )
    texts, y = list(texts), np.asarray(labels, dtype=np.int64)
    skip = frozenset(w.lower() for w in skip)
    if len(texts) != len(y):
        raise ConfigError(f"{len(texts)} texts but {len(y)} labels")
    probs = np.round(probabilities(predict_proba, texts, batch_size), DECIMALS)
    correct = probs.argmax(axis=1) == y
    states, rngs = [], {}
    for i, text in enumerate(texts):
        pieces, _, slots = split_words(text, protected, skip)
        s = _State(i, int(y[i]), pieces, slots, prob=float(probs[i, y[i]]), queries=1, done=not correct[i])
        states.append(s)
        rngs[i] = np.random.default_rng([seed, start + i])
    # 1. word importance, every word of every attacked text in shared batches
    active = [s for s in states if not s.done]
    removed = "" if scoring == "delete" else unk
    queries = [s.text(slot, removed) for s in active for slot in s.slots]
    scores = np.round(probabilities(predict_proba, queries, batch_size), DECIMALS) if queries else np.zeros((0, 0))
    at = 0
    for s in active:
        drop = s.prob - scores[at : at + len(s.slots), s.label]
        at += len(s.slots)
        s.queries += len(s.slots)
        s.order = [int(j) for j in np.argsort(-drop, kind="stable")]
        s.cap = min(budget, max(1, int(max_share * len(s.slots))))
        s.done = not s.slots
    # 2. greedy substitution, one word per active text per round
    while True:
        round_texts: list[str] = []
        owners: list[tuple[_State, int, list[str]]] = []
        for s in states:
            while not s.done:
                if s.position >= len(s.order) or s.changed >= s.cap:
                    s.done = True
                    break
                slot = s.slots[s.order[s.position]]
                s.position += 1
                word = s.pieces[slot]
                cands = [c for c in dict.fromkeys(candidates(word, rngs[s.index])) if c and c != word]
                if protected:
                    before = count_protected(s.text(), protected)
                    cands = [c for c in cands if count_protected(s.text(slot, c), protected) <= before]
                if cands:
                    owners.append((s, slot, cands))
                    round_texts += [s.text(slot, c) for c in cands]
                    break
        if not owners:
            break
        out = np.round(probabilities(predict_proba, round_texts, batch_size), DECIMALS)
        at = 0
        for s, slot, cands in owners:
            block = out[at : at + len(cands)]
            at += len(cands)
            s.queries += len(cands)
            best = int(np.argmin(block[:, s.label]))  # first of ties
            if block[best, s.label] < s.prob:
                s.pieces[slot] = cands[best]
                s.prob = float(block[best, s.label])
                s.changed += 1
                if int(block[best].argmax()) != s.label:
                    s.done = s.success = True
    return TextAttackResult(
        name=name,
        budget=budget,
        labels=y,
        initially_correct=correct,
        success=np.array([s.success for s in states], dtype=bool),
        words_changed=np.array([s.changed for s in states], dtype=np.int64),
        queries=np.array([s.queries for s in states], dtype=np.int64),
        adv_texts=[s.text() for s in states],
    )
