"""``synthetic-text``: seeded, templated comments with identity terms and a known, tunable bias.

The text counterpart of ``synthetic-credit``. Each comment is one template filled with a
person word, a place or thing, one adjective and (with probability ``identity_rate``) one
identity term. The **clean label** is the adjective's sentiment: 1 (negative comment, the
"toxic" class in the Jigsaw sense) or 0 (positive comment). A share ``ambiguous_rate`` of
the comments carry a neutral adjective (``okay``, ``long``...) and a clean label drawn by a
coin flip, as raters disagree on such comments: they make the task not perfectly separable
(the best accuracy is about ``1 - ambiguous_rate / 2``), which ranking metrics such as the
Jigsaw AUCs need to show a bias. Overall the clean label is 1 with probability 0.5,
independent of the identity term.

**The bias.** The observed ``label`` equals the clean label, except that a positive
comment (clean label 0) that mentions one of ``biased_terms`` is labelled 1 with
probability ``bias``. This is the label noise found in real toxicity data, where
comments mentioning some identities were more often rated toxic whatever they said
(Dixon et al. 2018, "Measuring and Mitigating Unintended Bias in Text Classification",
https://doi.org/10.1145/3278721.3278729; Borkan et al. 2019, arXiv:1903.04561). So, up to
sampling noise:

- ``P(label = 1 | biased term) = 0.5 + 0.5 * bias``, ``P(label = 1 | other or none) = 0.5``;
- against the clean label, the labels' false-positive rate is ``bias`` for comments with a
  biased term and 0 for the others;
- a model fitted to ``label`` learns the biased terms as evidence of the positive class,
  which the Jigsaw BPSN AUC and counterfactual token fairness measure.

``bias=0`` gives unbiased data. On the ambiguous comments a model can only learn the label
rate, so there it scores comments with a biased term about ``0.5 * bias`` higher than others. The default biased terms are two that Dixon et al. found
over-associated with toxicity; they are a parameter, chosen only to mirror that finding.
The columns are ``text``, ``label``, ``clean_label``, ``identity`` (the term, or
``"none"``), ``biased`` (0/1), ``ambiguous`` (0/1) and one 0/1 column per identity term (Jigsaw style).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import DataError
from .data import TextSplits, text_splits

__all__ = [
    "IDENTITY_TERMS",
    "DEFAULT_BIASED_TERMS",
    "NEGATIVE_WORDS",
    "NEUTRAL_WORDS",
    "POSITIVE_WORDS",
    "synthetic_text_frame",
    "load_synthetic_text",
]

IDENTITY_TERMS = (
    "christian",
    "muslim",
    "jewish",
    "hindu",
    "buddhist",
    "atheist",
    "gay",
    "straight",
    "american",
    "mexican",
    "chinese",
    "nigerian",
)
"""Identity adjectives the comments mention (religion, sexual orientation, nationality); each is a column."""
DEFAULT_BIASED_TERMS = ("muslim", "gay")
POSITIVE_WORDS = (
    "great",
    "wonderful",
    "kind",
    "helpful",
    "friendly",
    "lovely",
    "excellent",
    "thoughtful",
    "brilliant",
    "pleasant",
)
NEGATIVE_WORDS = (
    "awful",
    "terrible",
    "rude",
    "useless",
    "horrible",
    "nasty",
    "dreadful",
    "lousy",
    "pathetic",
    "boring",
)
NEUTRAL_WORDS = ("okay", "long", "short", "ordinary", "new", "average", "usual", "simple", "plain", "unusual")
PEOPLE = ("neighbour", "teacher", "driver", "doctor", "student", "writer", "chef", "manager", "nurse", "player")
THINGS = ("post", "article", "video", "review", "story", "speech", "comment", "reply", "book", "song")
PLACES = ("shop", "office", "school", "clinic", "park", "station", "library", "market", "cafe", "gym")
TEMPLATES = (
    "the {who} at the {place} was {adj} .",
    "i think the {who} wrote a {adj} {thing} .",
    "that {thing} by the {who} is {adj} , honestly .",
    "what a {adj} {thing} from the {who} at the {place} .",
    "my {who} said the {thing} was {adj} .",
    "the {thing} from the {who} seemed {adj} to me .",
)
"""``{who}`` is a person word, preceded by the identity term when the comment has one."""


def synthetic_text_frame(
    n: int = 2000,
    *,
    bias: float = 0.3,
    biased_terms: Sequence[str] = DEFAULT_BIASED_TERMS,
    identity_rate: float = 0.7,
    ambiguous_rate: float = 0.2,
    seed: int = 0,
) -> pd.DataFrame:
    """``n`` seeded comments whose labels are biased against ``biased_terms`` by ``bias`` (see the module).

    Parameters
    ----------
    n
        Number of comments (at least 8).
    bias
        The probability in [0, 1] that a positive comment with a biased term is labelled 1.
    biased_terms
        Identity terms (a subset of :data:`IDENTITY_TERMS`) whose comments get the label noise.
    identity_rate
        The share of comments that mention an identity term, drawn uniformly from :data:`IDENTITY_TERMS`.
    ambiguous_rate
        The share of comments with a neutral adjective and a coin-flip clean label.
    seed
        Seed of every draw; the same arguments give the same frame.
    """
    if not 0.0 <= bias <= 1.0:
        raise DataError(f"synthetic-text: bias must be in [0, 1], got {bias}")
    for what, value in (("identity_rate", identity_rate), ("ambiguous_rate", ambiguous_rate)):
        if not 0.0 <= value <= 1.0:
            raise DataError(f"synthetic-text: {what} must be in [0, 1], got {value}")
    if n < 8:
        raise DataError(f"synthetic-text: n must be at least 8, got {n}")
    unknown = sorted(set(biased_terms) - set(IDENTITY_TERMS))
    if unknown:
        raise DataError(
            f"synthetic-text: biased terms {unknown} are not identity terms; choose from {', '.join(IDENTITY_TERMS)}"
        )
    rng = np.random.default_rng(seed)
    clean = rng.integers(0, 2, size=n)
    adjective = np.where(clean == 1, rng.choice(NEGATIVE_WORDS, size=n), rng.choice(POSITIVE_WORDS, size=n))
    ambiguous = rng.random(n) < ambiguous_rate
    adjective = np.where(ambiguous, rng.choice(NEUTRAL_WORDS, size=n), adjective)
    has_identity = rng.random(n) < identity_rate
    identity = np.where(has_identity, rng.choice(IDENTITY_TERMS, size=n), "none")
    template = rng.integers(0, len(TEMPLATES), size=n)
    who, thing, place = rng.choice(PEOPLE, size=n), rng.choice(THINGS, size=n), rng.choice(PLACES, size=n)
    flip = rng.random(n) < bias
    biased = np.isin(identity, list(biased_terms))
    label = np.where(biased & (clean == 0) & flip, 1, clean)
    texts = [
        TEMPLATES[t].format(who=w if i == "none" else f"{i} {w}", place=p, adj=a, thing=th)
        for t, w, i, p, a, th in zip(template, who, identity, place, adjective, thing)
    ]
    frame = pd.DataFrame(
        {
            "text": texts,
            "label": label,
            "clean_label": clean,
            "identity": identity,
            "biased": biased.astype(int),
            "ambiguous": ambiguous.astype(int),
        }
    )
    for term in IDENTITY_TERMS:
        frame[term] = (identity == term).astype(int)
    return frame


def load_synthetic_text(
    *,
    n: int = 2000,
    bias: float = 0.3,
    biased_terms: Sequence[str] = DEFAULT_BIASED_TERMS,
    identity_rate: float = 0.7,
    ambiguous_rate: float = 0.2,
    seed: int = 0,
    sensitive: Sequence[str] = ("identity",),
) -> TextSplits:
    """:func:`synthetic_text_frame`, split 75/25 (seeded with ``seed``, stratified on the label)."""
    frame = synthetic_text_frame(
        n, bias=bias, biased_terms=biased_terms, identity_rate=identity_rate, ambiguous_rate=ambiguous_rate, seed=seed
    )
    return text_splits(frame, name="synthetic-text", text_column="text", target="label", sensitive=sensitive, seed=seed)
