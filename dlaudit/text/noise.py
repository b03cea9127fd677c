"""Natural text noise, the text counterpart of Gaussian noise: typos, casing and punctuation.

Each kind rewrites a share ``rate`` of a text's words (at least one), seeded per text with
``(seed, index)``, so the same seed gives the same noisy texts:

- ``typos``: one keyboard-style slip per chosen word (two adjacent letters swapped, or a
  letter dropped or doubled), as people type;
- ``casing``: the chosen words upper-cased, or the whole text lower-cased at random;
- ``punctuation``: punctuation marks dropped, and ``!`` / ``...`` / ``,`` added after chosen words.

None of them changes what a reader understands, so a robust classifier keeps its answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from ..errors import ConfigError

__all__ = ["NOISE_KINDS", "noisy_texts"]

NOISE_KINDS = ("typos", "casing", "punctuation")
_WORD = re.compile(r"[A-Za-z]{2,}")
_PUNCT = re.compile(r"[.,;:!?]")


def _typo(word: str, rng: np.random.Generator) -> str:
    kind = int(rng.integers(0, 3))
    i = int(rng.integers(0, len(word) - 1))
    if kind == 0:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == 1:
        return word[:i] + word[i + 1 :]
    return word[: i + 1] + word[i] + word[i + 1 :]


def _one(text: str, kind: str, rate: float, rng: np.random.Generator) -> str:
    spans = [m.span() for m in _WORD.finditer(text)]
    if not spans:
        return text
    k = max(1, int(round(rate * len(spans))))
    chosen = sorted(rng.choice(len(spans), size=min(k, len(spans)), replace=False).tolist())
    if kind == "punctuation":
        text2 = _PUNCT.sub("", text) if rng.random() < 0.5 else text
        spans = [m.span() for m in _WORD.finditer(text2)]
        chosen = [c for c in chosen if c < len(spans)]
        marks = ("!", "...", ",")
        out, last = [], 0
        for c in chosen:
            a, b = spans[c]
            out.append(text2[last:b] + marks[int(rng.integers(0, len(marks)))])
            last = b
        return "".join(out) + text2[last:]
    if kind == "casing" and rng.random() < 0.3:
        return text.upper() if rng.random() < 0.5 else text.lower()
    out, last = [], 0
    for c in chosen:
        a, b = spans[c]
        word = text[a:b]
        new = _typo(word, rng) if kind == "typos" else word.upper()
        out.append(text[last:a] + new)
        last = b
    return "".join(out) + text[last:]


def noisy_texts(texts: Sequence[str], kind: str, *, rate: float = 0.2, seed: int = 0) -> list[str]:
    """``texts`` with natural noise of ``kind`` (:data:`NOISE_KINDS`) on a share ``rate`` of their words."""
    if kind not in NOISE_KINDS:
        raise ConfigError(f"unknown text noise {kind!r}; choose from {', '.join(NOISE_KINDS)}")
    if not 0 < rate <= 1:
        raise ConfigError(f"the noise rate is a share of words in (0, 1], got {rate}")
    return [_one(t, kind, rate, np.random.default_rng((seed, i, NOISE_KINDS.index(kind)))) for i, t in enumerate(texts)]
