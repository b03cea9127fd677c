"""NLTK's English stop words: the words DeepWordBug (and TextAttack's ``DeepWordBugGao2018``) never ranks or edits.

:data:`STOPWORDS` is NLTK's 179-word English list (nltk_data ``corpora/stopwords/english``,
in file order), the list TextAttack's ``StopwordModification`` reads. It is embedded here,
not read from NLTK (nothing downloads at run time), and checked byte for byte against that
file by :data:`STOPWORDS_SHA256` (one word a line, final newline) in the tests and in
``bench/text_textattack.py``; the file is the one in ``packages/corpora/stopwords.zip`` of
the nltk_data repository whose MD5 (``8726a900bca7083674536e2593686361``) NLTK's download
index lists for ``stopwords`` (snapshot of 2023-02).

dlaudit matches a word against it in lower case (``The`` is a stop word); the list's
contractions (``don't``) never match one word of :func:`~dlaudit.text.vocab.word_spans`,
which splits at the apostrophe, but their parts (``don``, ``t``) are on the list too.
"""

from __future__ import annotations

import hashlib

__all__ = ["STOPWORDS", "STOPWORDS_SHA256", "STOPWORD_SET", "is_stopword", "stopwords_digest"]

STOPWORDS: tuple[str, ...] = tuple(
    (
        "i me my myself we our ours ourselves you you're you've you'll you'd your yours yourself yourselves "
        "he him his himself she she's her hers herself it it's its itself they them their theirs themselves "
        "what which who whom this that that'll these those am is are was were be been being have has had "
        "having do does did doing a an the and but if or because as until while of at by for with about "
        "against between into through during before after above below to from up down in out on off over "
        "under again further then once here there when where why how all any both each few more most other "
        "some such no nor not only own same so than too very s t can will just don don't should should've now "
        "d ll m o re ve y ain aren aren't couldn couldn't didn didn't doesn doesn't hadn hadn't hasn hasn't "
        "haven haven't isn isn't ma mightn mightn't mustn mustn't needn needn't shan shan't shouldn shouldn't "
        "wasn wasn't weren weren't won won't wouldn wouldn't"
    ).split()
)
"""NLTK's English stop words (179, in the file's order)."""

STOPWORD_SET: frozenset[str] = frozenset(STOPWORDS)

STOPWORDS_SHA256 = "019f104ba2ed07436d05f9cdd3383034ad66014edc27fc651f837e1a038b6451"
"""SHA-256 of nltk_data's ``corpora/stopwords/english`` (one word a line, final newline)."""


def stopwords_digest(words: tuple[str, ...] = STOPWORDS) -> str:
    """The SHA-256 of ``words`` written as NLTK's file (one a line, final newline)."""
    return hashlib.sha256(("\n".join(words) + "\n").encode()).hexdigest()


def is_stopword(word: str) -> bool:
    """Whether ``word`` (in lower case) is on :data:`STOPWORDS`."""
    return word.lower() in STOPWORD_SET
