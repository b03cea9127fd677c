"""A deterministic word-level tokenizer and vocabulary for the reference text models.

The vocabulary is built from training texts (a minimum count and a maximum size), has
fixed ids for the special tokens (``PAD`` 0, ``UNK`` 1, ``MASK`` 2), and serialises to
plain JSON (:meth:`WordVocab.to_dict`), so it can live on a dlaudit checkpoint's card
and load with ``torch.load(weights_only=True)``.

Tokens carry character offsets into the original text (:attr:`Encoding.offsets`) and a
word index (:attr:`Encoding.word_ids`). For this tokenizer every token is a word; a
subword tokenizer (a Hugging Face one) fills the same fields, and
:func:`merge_to_words` turns per-token scores into per-word scores for display either way.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch

from ..errors import CardError, ConfigError

__all__ = [
    "PAD",
    "UNK",
    "MASK",
    "TOKEN_PATTERN",
    "Encoding",
    "Tokenizer",
    "WordVocab",
    "merge_to_words",
    "special_ids_of",
    "special_tokens_of",
    "tokenizer_from_dict",
    "unknown_word",
    "word_spans",
]

PAD, UNK, MASK = "<pad>", "<unk>", "<mask>"
SPECIALS = (PAD, UNK, MASK)
VOCAB_KIND = "dlaudit.word_vocab"
VOCAB_VERSION = 1
TOKEN_PATTERN = re.compile(r"\w+(?:'\w+)*|[^\w\s]")
"""A token is a run of word characters (with inner apostrophes: ``don't``) or one punctuation character."""


def word_spans(text: str) -> list[tuple[int, int]]:
    """The ``(start, end)`` character offsets of the tokens of ``text`` (see :data:`TOKEN_PATTERN`)."""
    return [m.span() for m in TOKEN_PATTERN.finditer(text)]


@dataclass(frozen=True)
class Encoding:
    """Token ids of a batch of texts, right-padded with ``PAD``.

    Attributes
    ----------
    ids
        ``(N, L)`` long tensor; ``L`` is the longest encoded text (at least ``min_len``).
    lengths
        ``(N,)`` long tensor: the number of tokens kept per text.
    offsets
        Per text, the ``(start, end)`` character span of each kept token.
    word_ids
        Per text, the word index of each kept token (for a word-level tokenizer, ``0..n-1``).
    n_tokens
        Per text, the number of tokens before truncation.
    max_len
        The truncation length used.
    """

    ids: torch.Tensor
    lengths: torch.Tensor
    offsets: list[list[tuple[int, int]]]
    word_ids: list[list[int]]
    n_tokens: list[int]
    max_len: int

    @property
    def truncated(self) -> int:
        """How many texts had more than ``max_len`` tokens (their tail was dropped)."""
        return sum(n > self.max_len for n in self.n_tokens)

    def __len__(self) -> int:
        return len(self.n_tokens)


@runtime_checkable
class Tokenizer(Protocol):
    """What dlaudit asks of a text model's tokenizer (:class:`WordVocab`, or an adapter of a Hugging Face one).

    ``encode`` returns right-padded ids with character offsets and word ids per token, so that
    attributions can be merged into words and drawn over the original text.
    """

    @property
    def pad_id(self) -> int: ...

    @property
    def unk_id(self) -> int: ...

    @property
    def mask_id(self) -> int: ...

    @property
    def special_ids(self) -> frozenset[int]:
        """Every id of a special token (PAD, UNK, MASK, CLS, SEP, ...): attacks never edit nor insert them."""
        ...

    def __len__(self) -> int: ...

    def tokenize(self, text: str) -> list[str]: ...

    def encode(self, texts: Sequence[str], *, max_len: int | None = None, min_len: int = 1) -> Encoding: ...

    def encode_ids(self, texts: Sequence[str], *, max_len: int | None = None, min_len: int = 1) -> torch.Tensor:
        """``encode(...).ids`` alone (a tokenizer may skip its offsets): what a model's forward pass reads."""
        ...

    def decode(self, ids: Sequence[int] | torch.Tensor, *, skip_pad: bool = True) -> str: ...


@dataclass(frozen=True)
class WordVocab:
    """Word-level vocabulary: ``tokens[i]`` is the token with id ``i``; the first three are PAD, UNK, MASK.

    Build one with :meth:`build`; save it with :meth:`to_dict` and load it with :meth:`from_dict`.

    Examples
    --------
    >>> vocab = WordVocab.build(["a good film", "a bad film"], min_count=1)
    >>> vocab.encode(["a good film"]).ids.tolist()
    [[3, 6, 4]]
    """

    tokens: tuple[str, ...]
    lowercase: bool = True
    max_len: int = 128

    def __post_init__(self) -> None:
        if tuple(self.tokens[:3]) != SPECIALS:
            raise ConfigError(f"a word vocabulary starts with {SPECIALS}, got {tuple(self.tokens[:3])}")
        if len(set(self.tokens)) != len(self.tokens):
            raise ConfigError("a word vocabulary has each token once; this one repeats tokens")
        if self.max_len < 1:
            raise ConfigError(f"max_len must be at least 1, got {self.max_len}")
        object.__setattr__(self, "_index", {t: i for i, t in enumerate(self.tokens)})

    # -- building and saving -----------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        texts: Iterable[str],
        *,
        min_count: int = 2,
        max_size: int = 20_000,
        lowercase: bool = True,
        max_len: int = 128,
    ) -> WordVocab:
        """The vocabulary of ``texts``: tokens seen at least ``min_count`` times, the ``max_size`` most frequent.

        Ties in frequency are broken alphabetically, so the same texts always give the same ids.
        ``max_size`` counts the three special tokens.
        """
        if min_count < 1:
            raise ConfigError(f"min_count must be at least 1, got {min_count}")
        if max_size < len(SPECIALS) + 1:
            raise ConfigError(f"max_size must be at least {len(SPECIALS) + 1}, got {max_size}")
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(_tokens(text, lowercase))
        for special in SPECIALS:
            counts.pop(special, None)
        ranked = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
        return cls(SPECIALS + tuple(ranked[: max_size - len(SPECIALS)]), lowercase=lowercase, max_len=max_len)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (str, bool, int, lists) that :meth:`from_dict` reads back."""
        return {
            "kind": VOCAB_KIND,
            "version": VOCAB_VERSION,
            "tokens": list(self.tokens),
            "lowercase": self.lowercase,
            "max_len": self.max_len,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WordVocab:
        """The vocabulary saved by :meth:`to_dict`; anything else is a :class:`~dlaudit.errors.CardError`."""
        if not isinstance(data, Mapping) or data.get("kind") != VOCAB_KIND:
            raise CardError(f"model card: the tokenizer is not a dlaudit word vocabulary (kind {VOCAB_KIND!r})")
        if data.get("version") != VOCAB_VERSION:
            raise CardError(
                f"model card: word vocabulary version {data.get('version')!r} is not {VOCAB_VERSION}; "
                "upgrade dlaudit or retrain the model"
            )
        tokens, max_len = data.get("tokens"), data.get("max_len", 128)
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise CardError("model card: the word vocabulary's tokens must be a list of strings")
        if isinstance(max_len, bool) or not isinstance(max_len, int):
            raise CardError(f"model card: the word vocabulary's max_len must be a whole number, got {max_len!r}")
        try:
            return cls(tuple(tokens), lowercase=bool(data.get("lowercase", True)), max_len=max_len)
        except ConfigError as err:
            raise CardError(f"model card: {err}") from err

    # -- ids ---------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def unk_id(self) -> int:
        return 1

    @property
    def mask_id(self) -> int:
        return 2

    @property
    def special_ids(self) -> frozenset[int]:
        """The ids of ``<pad>``, ``<unk>`` and ``<mask>``."""
        return frozenset({0, 1, 2})

    def id_of(self, token: str) -> int:
        """The id of ``token`` (lower-cased when the vocabulary is), ``UNK``'s id when it is unknown."""
        return self._index.get(token.lower() if self.lowercase else token, self.unk_id)  # type: ignore[attr-defined]

    def tokenize(self, text: str) -> list[str]:
        """The tokens of ``text`` (lower-cased when the vocabulary is), before truncation."""
        return _tokens(text, self.lowercase)

    def encode(self, texts: Sequence[str], *, max_len: int | None = None, min_len: int = 1) -> Encoding:
        """Token ids of ``texts``, truncated to ``max_len`` tokens (the vocabulary's own by default).

        The batch is right-padded with ``PAD`` to its longest text, and to at least ``min_len``
        (a convolution's widest kernel); :attr:`Encoding.truncated` counts the texts cut short.
        """
        limit = self.max_len if max_len is None else int(max_len)
        if limit < 1:
            raise ConfigError(f"max_len must be at least 1, got {limit}")
        rows, offsets, n_tokens = [], [], []
        for text in texts:
            spans = word_spans(text)
            n_tokens.append(len(spans))
            spans = spans[:limit]
            rows.append([self.id_of(text[a:b]) for a, b in spans])
            offsets.append(spans)
        width = max([min_len, *map(len, rows)])
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        lengths = torch.tensor([len(r) for r in rows], dtype=torch.long)
        return Encoding(ids, lengths, offsets, [list(range(len(r))) for r in rows], n_tokens, limit)

    def encode_ids(self, texts: Sequence[str], *, max_len: int | None = None, min_len: int = 1) -> torch.Tensor:
        """``encode(texts, ...).ids``."""
        return self.encode(texts, max_len=max_len, min_len=min_len).ids

    def decode(self, ids: Sequence[int] | torch.Tensor, *, skip_pad: bool = True) -> str:
        """The tokens of ``ids`` joined by spaces (PAD left out unless ``skip_pad`` is false)."""
        values = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        out = []
        for i in values:
            if skip_pad and i == self.pad_id:
                continue
            if not 0 <= i < len(self.tokens):
                raise ConfigError(f"token id {i} is outside the vocabulary (0..{len(self.tokens) - 1})")
            out.append(self.tokens[i])
        return " ".join(out)


def _tokens(text: str, lowercase: bool) -> list[str]:
    found = TOKEN_PATTERN.findall(text)
    return [t.lower() for t in found] if lowercase else found


def special_ids_of(tokenizer: Any) -> frozenset[int]:
    """The ids of ``tokenizer``'s special tokens: its ``special_ids``, else its PAD, UNK and MASK ids."""
    ids = getattr(tokenizer, "special_ids", None)
    if ids is None:
        ids = {tokenizer.pad_id, tokenizer.unk_id, getattr(tokenizer, "mask_id", tokenizer.unk_id)}
    return frozenset(int(i) for i in ids if i is not None and int(i) >= 0)


def special_tokens_of(tokenizer: Any) -> tuple[str, ...]:
    """The special tokens as a text may spell them (``"[CLS]"``, ``"[SEP]"``...) where the tokenizer reads them
    as special tokens (a Hugging Face one); empty for dlaudit's word vocabulary, which splits ``<pad>`` into words."""
    return tuple(t for t in getattr(tokenizer, "special_tokens", ()) if t)


def unknown_word(tokenizer: Any) -> str | None:
    """A word that ``tokenizer`` reads as exactly its unknown token, or ``None`` where none was found.

    A Hugging Face tokenizer's own spelling (``"[UNK]"``, a special token it reads whole) comes first;
    dlaudit's word vocabulary splits ``"<unk>"`` into three tokens, so for it the answer is a word
    outside the vocabulary (``"unk"``, else ``"unk1"``...). Each candidate is checked by encoding it:
    its ids, less the special tokens other than the unknown one (``[CLS]``, ``[SEP]``, padding), must be
    the unknown token's id alone. DeepWordBug's word ranking replaces words by it
    (:func:`~dlaudit.text.attacks.deepwordbug.deepwordbug`, ``scoring="unk"``).
    """
    unk = getattr(tokenizer, "unk_id", None)
    if unk is None:
        return None
    own = getattr(getattr(tokenizer, "hf", None), "unk_token", None)
    others = special_ids_of(tokenizer) - {int(unk)}
    for word in [*([str(own)] if own else []), "unk", *(f"unk{i}" for i in range(1, 100))]:
        ids = [int(i) for i in tokenizer.encode_ids([word])[0].tolist() if int(i) not in others]
        if ids == [int(unk)]:
            return word
    return None


def merge_to_words(
    scores: Sequence[float] | torch.Tensor, word_ids: Sequence[int | None], *, reduce: str = "sum"
) -> list[float]:
    """Per-word scores from per-token scores: the tokens with the same word id are summed (or averaged).

    ``word_ids[i]`` is the word of token ``i``, or ``None`` for a special token (left out), as in
    Hugging Face's ``BatchEncoding.word_ids()``. Summing keeps the attributions' total (IG's
    completeness); ``reduce="mean"`` averages instead.
    """
    if reduce not in ("sum", "mean"):
        raise ConfigError(f"reduce must be 'sum' or 'mean', got {reduce!r}")
    values = scores.tolist() if isinstance(scores, torch.Tensor) else list(scores)
    if len(values) < len(word_ids):
        raise ConfigError(f"{len(word_ids)} word ids for {len(values)} token scores")
    n = 1 + max((w for w in word_ids if w is not None), default=-1)
    total, count = [0.0] * n, [0] * n
    for v, w in zip(values, word_ids):
        if w is not None:
            total[w] += float(v)
            count[w] += 1
    if reduce == "mean":
        return [t / c if c else 0.0 for t, c in zip(total, count)]
    return total


def tokenizer_from_dict(data: Mapping[str, Any], *, vocab_size: int | None = None) -> Tokenizer:
    """The tokenizer a model card stores (``card.tokenizer``): a dlaudit word vocabulary.

    ``vocab_size`` (the model's, from its card's value range) must be the vocabulary's size:
    a tokenizer that is not the model's would feed it ids it never learned.
    """
    vocab = WordVocab.from_dict(data)
    if vocab_size is not None and len(vocab) != vocab_size:
        raise CardError(
            f"model card: the tokenizer has {len(vocab)} tokens but the model reads ids 0..{vocab_size - 1}; "
            "the tokenizer is not the model's"
        )
    return vocab
