"""Greedy word substitution with the model's own embedding neighbours (needs no download).

Words are ranked by importance (the replace-1 score of :mod:`._greedy`) and, in that
order, replaced by the nearest neighbours of their embedding (cosine similarity in the
model's own token embedding), keeping the best candidate, until the prediction changes,
``budget`` words changed or ``max_share`` of the text's words changed. This is the search
of Jin et al. (2020), "Is BERT Really Robust?" (TextFooler, https://arxiv.org/abs/1907.11932)
and Ren et al. (2019, PWWS) with candidates from the attacked model instead of
counter-fitted vectors or WordNet, and without their semantic-similarity filter: a
neighbour in the model's space need not be a synonym, so read it as a robustness probe of
the embedding, not a meaning-preserving attack. Metric names: ``robustness.wordswap.acc@K``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from ...errors import ConfigError
from ..vocab import SPECIALS, WordVocab
from ._greedy import PredictProba, greedy_word_attack
from .result import TextAttackResult

__all__ = ["embedding_neighbours", "neighbours_of", "word_substitution"]


def _match_case(template: str, word: str) -> str:
    if template.isupper() and len(template) > 1:
        return word.upper()
    return word[:1].upper() + word[1:] if template[:1].isupper() else word


def embedding_neighbours(
    weight: torch.Tensor,
    vocab: WordVocab,
    *,
    k: int = 8,
    min_similarity: float = -1.0,
    words: Iterable[str] | None = None,
) -> dict[str, list[str]]:
    """For each word token of ``vocab``, its ``k`` nearest tokens by cosine similarity of the rows of ``weight``.

    Special tokens and punctuation are neither keys nor neighbours; neighbours below
    ``min_similarity`` (none by default) are left out. Ties are broken by the lower id.
    ``words`` restricts the keys to those words (lower-cased, e.g. the words of the texts to
    attack), so a large vocabulary costs ``len(words) x vocabulary`` similarities, not its square.
    """
    if weight.shape[0] != len(vocab):
        raise ConfigError(f"the embedding has {weight.shape[0]} rows but the vocabulary {len(vocab)} tokens")
    ids = [i for i, t in enumerate(vocab.tokens) if t not in SPECIALS and any(ch.isalnum() for ch in t)]
    if len(ids) < 2:
        return {}
    position = {vocab.tokens[i]: r for r, i in enumerate(ids)}
    if words is None:
        rows = list(range(len(ids)))
    else:
        wanted = {w.lower() if vocab.lowercase else w for w in words}
        rows = sorted(position[w] for w in wanted if w in position)
    w = torch.nn.functional.normalize(weight.detach().float()[ids], dim=1)
    kk = min(k, len(ids) - 1)
    out = {}
    for start in range(0, len(rows), 1024):
        block = rows[start : start + 1024]
        sim = w[block] @ w.T
        sim[torch.arange(len(block)), torch.tensor(block, dtype=torch.long)] = -float("inf")
        # stable top-k: sort by (-similarity, id) through a stable sort of the negated similarities
        order = torch.sort(-sim, dim=1, stable=True).indices[:, :kk]
        for j, r in enumerate(block):
            cols = order[j].tolist()
            out[vocab.tokens[ids[r]]] = [vocab.tokens[ids[c]] for c in cols if float(sim[j, c]) >= min_similarity]
    return out


def word_substitution(
    predict_proba: PredictProba,
    texts: Sequence[str],
    labels: Sequence[int],
    neighbours: dict[str, list[str]],
    *,
    budget: int = 3,
    max_share: float = 0.25,
    scoring: str = "delete",
    unk: str | None = None,
    protected: Sequence[str] = (),
    seed: int = 0,
    start: int = 0,
    batch_size: int = 256,
) -> TextAttackResult:
    """Attack ``texts`` by replacing important words with their neighbours (:func:`embedding_neighbours`).

    Parameters
    ----------
    predict_proba
        ``texts -> (N, C)`` probabilities.
    texts, labels
        The inputs and their true classes; texts the model gets wrong are not attacked.
    neighbours
        Lower-cased word -> candidate words; a replacement keeps the case of the word it replaces.
    budget
        The most words changed per text (K in ``robustness.wordswap.acc@K``).
    max_share
        The most words changed as a share of the text's words (at least one).
    scoring, unk, seed, batch_size
        As in :func:`~dlaudit.text.attacks.deepwordbug.deepwordbug` (the search draws no random numbers).
    protected
        As in :func:`~dlaudit.text.attacks.deepwordbug.deepwordbug`: special tokens are never edited.
    """
    return greedy_word_attack(
        predict_proba,
        texts,
        labels,
        lambda word, rng: [_match_case(word, n) for n in neighbours.get(word.lower(), [])],
        name="wordswap",
        budget=budget,
        max_share=max_share,
        scoring=scoring,
        unk=unk,
        protected=protected,
        seed=seed,
        start=start,
        batch_size=batch_size,
    )


def neighbours_of(
    module: torch.nn.Module, vocab: WordVocab, *, k: int = 8, words: Iterable[str] | None = None
) -> dict[str, list[str]]:
    """:func:`embedding_neighbours` of ``module.embedding``'s weight (keys restricted to ``words`` when given)."""
    embedding = getattr(module, "embedding", None)
    if not isinstance(embedding, torch.nn.Embedding):
        raise ConfigError("the model has no 'embedding' (an nn.Embedding) to take word neighbours from")
    return embedding_neighbours(embedding.weight, vocab, k=k, words=words)
