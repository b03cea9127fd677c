"""A Hugging Face fast tokenizer as a :class:`dlaudit.text.vocab.Tokenizer`.

:class:`HFTokenizer` wraps a ``PreTrainedTokenizerFast`` (what ``AutoTokenizer`` loads from a
``save_pretrained`` folder with a ``tokenizer.json``): ``encode`` returns right-padded ids with
the tokenizer's special tokens (``[CLS] ... [SEP]``), the character span of every kept token
and its word index from the fast tokenizer's offsets mapping (``None`` for special tokens, as
:func:`~dlaudit.text.vocab.merge_to_words` expects), so attributions merge into words and
draw over the original text the same way as for dlaudit's own word vocabulary.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ..errors import ConfigError
from .vocab import Encoding

__all__ = ["HFTokenizer", "MAX_LENGTH"]

MAX_LENGTH = 4096
"""The longest input accepted when neither the tokenizer nor the model states a shorter one."""


class HFTokenizer:
    """A Hugging Face fast tokenizer behind dlaudit's tokenizer protocol.

    Parameters
    ----------
    tokenizer
        A ``transformers.PreTrainedTokenizerFast`` (``is_fast``: offsets come from it).
    max_len
        The truncation length (special tokens included): at most the model's positions.

    Examples
    --------
    >>> tok = HFTokenizer(AutoTokenizer.from_pretrained("tiny-bert", local_files_only=True), max_len=64)  # doctest: +SKIP
    >>> tok.encode(["a good film"]).ids  # doctest: +SKIP
    tensor([[ 2,  5, 11, 36,  3]])
    """

    def __init__(self, tokenizer: Any, *, max_len: int) -> None:
        if not getattr(tokenizer, "is_fast", False):
            raise ConfigError(
                f"the tokenizer {type(tokenizer).__name__} is not a fast tokenizer; dlaudit needs one "
                "(a tokenizer.json in the folder) for the character offsets of its tokens"
            )
        if tokenizer.pad_token_id is None:
            raise ConfigError("the tokenizer has no padding token; dlaudit pads batches of texts with it")
        if tokenizer.unk_token_id is None:
            raise ConfigError("the tokenizer has no unknown token ([UNK]); dlaudit hides and replaces tokens with it")
        if max_len < 1:
            raise ConfigError(f"max_len must be at least 1, got {max_len}")
        self.hf = tokenizer
        self.max_len = int(max_len)

    def __repr__(self) -> str:
        return f"HFTokenizer({type(self.hf).__name__}, {len(self)} tokens, max_len={self.max_len})"

    def __len__(self) -> int:
        return len(self.hf)

    @property
    def pad_id(self) -> int:
        return int(self.hf.pad_token_id)

    @property
    def unk_id(self) -> int:
        return int(self.hf.unk_token_id)

    @property
    def mask_id(self) -> int:
        """The mask token's id, or the unknown token's when the tokenizer has no mask token."""
        mask = self.hf.mask_token_id
        return int(mask) if mask is not None else self.unk_id

    @property
    def special_ids(self) -> frozenset[int]:
        """The ids of every special token of the tokenizer (``[PAD]``, ``[UNK]``, ``[CLS]``, ``[SEP]``, ``[MASK]``...)."""
        return frozenset(int(i) for i in self.hf.all_special_ids) | {self.pad_id, self.unk_id}

    @property
    def special_tokens(self) -> tuple[str, ...]:
        """The special tokens as written in a text (``"[CLS]"``...): the text attacks leave them as they are."""
        return tuple(str(t) for t in self.hf.all_special_tokens)

    def tokenize(self, text: str) -> list[str]:
        """The subword tokens of ``text`` without special tokens, before truncation."""
        return list(self.hf.tokenize(text))

    def _checked(self, texts: Sequence[str], max_len: int | None) -> tuple[list[str], int]:
        limit = self.max_len if max_len is None else int(max_len)
        if limit < 1:
            raise ConfigError(f"max_len must be at least 1, got {limit}")
        texts = list(texts)
        if not all(isinstance(t, str) for t in texts):
            raise ConfigError("encode takes a list of texts (strings)")
        return texts, limit

    def _padded(self, rows: Sequence[Sequence[int]], min_len: int) -> torch.Tensor:
        width = max([min_len, *map(len, rows)])
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        return ids

    def encode(self, texts: Sequence[str], *, max_len: int | None = None, min_len: int = 1) -> Encoding:
        """Token ids of ``texts`` (special tokens added), truncated to ``max_len`` and right-padded with ``pad_id``."""
        texts, limit = self._checked(texts, max_len)
        if not texts:
            return Encoding(
                torch.zeros((0, min_len), dtype=torch.long), torch.zeros(0, dtype=torch.long), [], [], [], limit
            )
        full = self.hf(texts, truncation=False, verbose=False)["input_ids"]
        batch = self.hf(texts, truncation=True, max_length=limit, return_offsets_mapping=True, verbose=False)
        rows = batch["input_ids"]
        offsets = [[(int(a), int(b)) for a, b in spans] for spans in batch["offset_mapping"]]
        word_ids = [list(batch.word_ids(i)) for i in range(len(texts))]
        lengths = torch.tensor([len(r) for r in rows], dtype=torch.long)
        return Encoding(self._padded(rows, min_len), lengths, offsets, word_ids, [len(r) for r in full], limit)

    def encode_ids(self, texts: Sequence[str], *, max_len: int | None = None, min_len: int = 1) -> torch.Tensor:
        """``encode(texts, ...).ids`` in one tokenizer pass, without offsets or untruncated lengths (what a forward needs)."""
        texts, limit = self._checked(texts, max_len)
        if not texts:
            return torch.zeros((0, min_len), dtype=torch.long)
        return self._padded(self.hf(texts, truncation=True, max_length=limit, verbose=False)["input_ids"], min_len)

    def decode(self, ids: Sequence[int] | torch.Tensor, *, skip_pad: bool = True) -> str:
        """The text of ``ids`` as the tokenizer decodes it (padding left out unless ``skip_pad`` is false)."""
        values = [int(i) for i in (ids.tolist() if isinstance(ids, torch.Tensor) else ids)]
        for i in values:
            if not 0 <= i < len(self):
                raise ConfigError(f"token id {i} is outside the vocabulary (0..{len(self) - 1})")
        if skip_pad:
            values = [i for i in values if i != self.pad_id]
        return str(self.hf.decode(values, skip_special_tokens=False))
