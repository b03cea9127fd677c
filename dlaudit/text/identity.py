"""Identity word lists and whole-word, case-preserving swaps, for counterfactual token fairness.

Garg et al. (2019), "Counterfactual Fairness in Text Classification through Robustness",
https://arxiv.org/abs/1809.10610: a classifier is counterfactually token-fair when
substituting one identity term for another (``gay`` -> ``straight``) does not change its
prediction. This module writes the counterfactual texts; the metrics are in
:mod:`dlaudit.fairness.counterfactual_text`.

**The lists.** Each :class:`IdentityCategory` has members; a member has one or more word
*forms*, aligned by position across the members of the category, so that a swap maps
each form to the form at the same position (``muslim`` -> ``christian`` and
``muslims`` -> ``christians``). They are kept modest and neutral on purpose: common,
descriptive words only, no slurs, and (but for ``straight``) no words whose main sense is not
an identity.

- ``gender``: two members (male, female) of aligned pairs (he/she, him/her, his/her,
  man/woman, father/mother, ...). ``her`` is both ``him`` and ``his``: a swap from female
  to male maps it to the first (``him``), a known limit of word lists.
- ``names``: ten common English given names per gender, aligned in pairs (after the
  name-swapping tests of Garg et al. and of Prabhakaran et al. 2019, arXiv:1910.04210).
- ``religion``: adjective and plural forms of seven religions or beliefs.
- ``nationality``: adjective and plural forms of ten nationalities.
- ``orientation``: four sexual-orientation adjectives (identity terms of Dixon et al. 2018,
  https://doi.org/10.1145/3278721.3278729). ``straight`` has other senses ("go straight on");
  it is kept as the usual counterpart of ``gay``, and its swaps are read with that in mind.

A text that mentions one member gets one counterfactual per other member of the same
category, in which every form of the first member is replaced at once. Matching is on
whole words, case-insensitive; the replacement keeps the case of the word it replaces
(``Muslim`` -> ``Christian``, ``HE`` -> ``SHE``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

from ..errors import ConfigError

__all__ = [
    "IdentityCategory",
    "Counterfactual",
    "CATEGORIES",
    "GENDER",
    "NAMES",
    "RELIGION",
    "NATIONALITY",
    "ORIENTATION",
    "swap_words",
    "counterfactuals",
    "mentions",
]


@dataclass(frozen=True)
class IdentityCategory:
    """A named category of identity members, each a tuple of word forms aligned by position across members."""

    name: str
    members: Mapping[str, tuple[str, ...]]

    def __post_init__(self) -> None:
        widths = {len(forms) for forms in self.members.values()}
        if len(self.members) < 2 or len(widths) != 1:
            raise ConfigError(
                f"identity category {self.name!r} needs two or more members with the same number of forms"
            )
        words = [w.lower() for forms in self.members.values() for w in forms]
        if any(not re.fullmatch(r"\w+", w) for w in words):
            raise ConfigError(f"identity category {self.name!r}: each form is one word")

    @cached_property
    def _patterns(self) -> dict[str, re.Pattern[str]]:
        return {m: _pattern(forms) for m, forms in self.members.items()}

    def present(self, text: str) -> list[str]:
        """The members with at least one form in ``text`` (whole words, any case)."""
        return [m for m, p in self._patterns.items() if p.search(text)]

    def mapping(self, source: str, target: str) -> dict[str, str]:
        """Lower-cased form of ``source`` -> the aligned form of ``target`` (the first wins for repeated forms)."""
        out: dict[str, str] = {}
        for a, b in zip(self.members[source], self.members[target]):
            out.setdefault(a.lower(), b.lower())
        return out


def _pattern(words: Iterable[str]) -> re.Pattern[str]:
    alternatives = sorted({w.lower() for w in words}, key=lambda w: (-len(w), w))
    return re.compile(r"\b(?:" + "|".join(map(re.escape, alternatives)) + r")\b", re.IGNORECASE)


def _match_case(template: str, word: str) -> str:
    if template.isupper() and len(template) > 1:
        return word.upper()
    if template[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def swap_words(text: str, mapping: Mapping[str, str]) -> str:
    """``text`` with every whole word in ``mapping`` (matched case-insensitively) replaced, all at once, keeping case.

    Examples
    --------
    >>> swap_words("He said HE was his own man.", {"he": "she", "his": "her", "man": "woman"})
    'She said SHE was her own woman.'
    """
    if not mapping:
        return text
    lower = {k.lower(): v for k, v in mapping.items()}
    return _pattern(lower).sub(lambda m: _match_case(m.group(), lower[m.group().lower()]), text)


GENDER = IdentityCategory(
    "gender",
    {
        "male": ("he", "him", "his", "himself", "man", "men", "boy", "boys", "father", "son", "brother", "husband",
                 "uncle", "nephew", "king", "male", "gentleman", "mr", "sir", "dad", "grandfather", "boyfriend"),
        "female": ("she", "her", "her", "herself", "woman", "women", "girl", "girls", "mother", "daughter", "sister",
                   "wife", "aunt", "niece", "queen", "female", "lady", "mrs", "madam", "mom", "grandmother",
                   "girlfriend"),
    },
)  # fmt: skip
NAMES = IdentityCategory(
    "names",
    {
        "male_name": ("james", "john", "robert", "michael", "david", "daniel", "thomas", "william", "paul", "peter"),
        "female_name": ("mary", "linda", "susan", "sarah", "karen", "lisa", "emily", "anna", "laura", "julia"),
    },
)
RELIGION = IdentityCategory(
    "religion",
    {
        "christian": ("christian", "christians"),
        "muslim": ("muslim", "muslims"),
        "jewish": ("jewish", "jews"),
        "hindu": ("hindu", "hindus"),
        "buddhist": ("buddhist", "buddhists"),
        "sikh": ("sikh", "sikhs"),
        "atheist": ("atheist", "atheists"),
    },
)
NATIONALITY = IdentityCategory(
    "nationality",
    {
        "american": ("american", "americans"),
        "mexican": ("mexican", "mexicans"),
        "chinese": ("chinese", "chinese"),
        "nigerian": ("nigerian", "nigerians"),
        "indian": ("indian", "indians"),
        "french": ("french", "french"),
        "german": ("german", "germans"),
        "brazilian": ("brazilian", "brazilians"),
        "japanese": ("japanese", "japanese"),
        "canadian": ("canadian", "canadians"),
    },
)
ORIENTATION = IdentityCategory(
    "orientation", {"gay": ("gay",), "lesbian": ("lesbian",), "bisexual": ("bisexual",), "straight": ("straight",)}
)
CATEGORIES: tuple[IdentityCategory, ...] = (GENDER, NAMES, RELIGION, NATIONALITY, ORIENTATION)
"""The default lists, in the order reports show them."""


@dataclass(frozen=True)
class Counterfactual:
    """One counterfactual text: ``index`` of the original, the ``category`` and the ``source`` -> ``target`` members."""

    index: int
    text: str
    category: str
    source: str
    target: str

    @property
    def pair(self) -> tuple[str, str, str]:
        return (self.category, self.source, self.target)


def mentions(text: str, categories: Sequence[IdentityCategory] = CATEGORIES) -> dict[str, list[str]]:
    """Per category, the members ``text`` mentions (categories it does not mention are left out)."""
    out = {c.name: c.present(text) for c in categories}
    return {k: v for k, v in out.items() if v}


def counterfactuals(texts: Sequence[str], categories: Sequence[IdentityCategory] = CATEGORIES) -> list[Counterfactual]:
    """Every counterfactual of ``texts``: for each member a text mentions, one text per other member of its category.

    Texts that mention no identity term give none. A swap that leaves the text unchanged
    (aligned forms that are the same word) is left out.
    """
    out = []
    for i, text in enumerate(texts):
        for cat in categories:
            for source in cat.present(text):
                for target in cat.members:
                    if target == source:
                        continue
                    new = swap_words(text, cat.mapping(source, target))
                    if new != text:
                        out.append(Counterfactual(i, new, cat.name, source, target))
    return out
