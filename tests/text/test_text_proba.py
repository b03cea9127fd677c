"""text_proba's padding: each text to its own width where the model allows it, the full width otherwise."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from dlaudit.text.model_io import MIN_WIDTH, _own_widths, padding_invariant, text_proba
from dlaudit.text.stopwords import STOPWORDS, STOPWORDS_SHA256, is_stopword, stopwords_digest
from dlaudit.text.vocab import WordVocab


class _CountsPadding(nn.Module):
    """Logits from the mean embedding over every position, padding included: they change with the padded width."""

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, 2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.embedding(ids).mean(dim=1)


class _Spy(nn.Module):
    """Records the width of every batch it sees."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner, self.widths = inner, []

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        self.widths.append(ids.shape[1])
        return self.inner(ids)


def test_the_stop_word_list_is_nltks() -> None:
    assert len(STOPWORDS) == 179 == len(set(STOPWORDS)) and stopwords_digest() == STOPWORDS_SHA256
    assert is_stopword("The") and is_stopword("t") and not is_stopword("film")


def test_widths_depend_on_each_text_alone() -> None:
    ids = torch.tensor([[5, 6, 0, 0] + [0] * 20, [5] * 9 + [0] * 15, [0] * 24, [7] * 24, [7] * 23 + [0]])
    assert _own_widths(ids, 0).tolist() == [MIN_WIDTH, 9, MIN_WIDTH, 24, 23]


def test_a_padding_invariant_model_is_trimmed_and_batch_independent(cnn_model, synth) -> None:
    texts, length = synth.test.texts[:24], 64
    spy = _Spy(cnn_model.module.eval())
    assert padding_invariant(spy, cnn_model.vocab, "cpu", length)
    trimmed = text_proba(spy, cnn_model.vocab, "cpu", length)
    full = text_proba(spy, cnn_model.vocab, "cpu", length, trim=False)
    trimmed(texts[:1])  # the first call checks the model (at the full width too)
    spy.widths.clear()
    together = trimmed(texts)
    assert max(spy.widths) < length  # synthetic texts are short: no call at the full width
    np.testing.assert_allclose(together, full(texts), rtol=0, atol=1e-6)
    alone = np.concatenate([trimmed([t]) for t in texts])
    in_sevens = np.concatenate([trimmed(texts[i : i + 7]) for i in range(0, len(texts), 7)])
    np.testing.assert_allclose(alone, together, rtol=0, atol=1e-6)
    np.testing.assert_allclose(in_sevens, together, rtol=0, atol=1e-6)


def test_a_model_that_reads_padding_keeps_the_full_width(cnn_model, synth) -> None:
    torch.manual_seed(0)
    spy = _Spy(_CountsPadding(len(cnn_model.vocab)))
    assert not padding_invariant(spy, cnn_model.vocab, "cpu", 32)
    predict = text_proba(spy, cnn_model.vocab, "cpu", 32)
    predict(synth.test.texts[:1])
    spy.widths.clear()
    out = predict(synth.test.texts[:5])
    assert set(spy.widths) == {32}
    ids = cnn_model.vocab.encode(synth.test.texts[:5], max_len=32, min_len=32).ids
    np.testing.assert_array_equal(out, torch.softmax(spy.inner(ids), dim=1).detach().numpy())


class _FixedWidth(nn.Module):
    """Logits from the flattened embeddings of exactly ``width`` tokens: a shorter input is a shape error."""

    def __init__(self, vocab_size: int, width: int) -> None:
        super().__init__()
        self.embedding, self.linear = nn.Embedding(vocab_size, 2), nn.Linear(2 * width, 2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.linear(self.embedding(ids).flatten(1))


class _BrokenWhenShort(nn.Module):
    """Fine at its full width; a bug of its own (not a shape error) on anything shorter."""

    def __init__(self, inner: nn.Module, width: int, error: type[Exception]) -> None:
        super().__init__()
        self.inner, self.width, self.error = inner, width, error

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if ids.shape[1] < self.width:
            raise self.error("a bug in the model's own code")
        return self.inner(ids)


_VOCAB = WordVocab.build(["a good film", "a bad film", "an odd plot"], min_count=1)


def test_a_model_that_needs_its_full_width_is_not_trimmed() -> None:
    torch.manual_seed(0)
    eager = _FixedWidth(len(_VOCAB), 16).eval()
    exported = torch.export.export(eager, (torch.zeros((2, 16), dtype=torch.long),)).module()
    for module in (eager, torch.jit.trace(eager, torch.zeros((2, 16), dtype=torch.long)), exported):
        assert not padding_invariant(module, _VOCAB, "cpu", 16)  # RuntimeError, TorchScript's, export's guard
    out = text_proba(exported, _VOCAB, "cpu", 16)(["a good film", "an odd plot"])
    ids = _VOCAB.encode(["a good film", "an odd plot"], max_len=16, min_len=16).ids
    np.testing.assert_allclose(out, torch.softmax(eager(ids), dim=1).detach().numpy(), rtol=0, atol=1e-6)


@pytest.mark.parametrize("error", [TypeError, KeyError, ZeroDivisionError])
def test_an_unexpected_error_at_a_shorter_width_is_not_swallowed(error: type[Exception]) -> None:
    module = _BrokenWhenShort(_FixedWidth(len(_VOCAB), 16), 16, error)
    with pytest.raises(error, match="a bug in the model's own code"):
        padding_invariant(module, _VOCAB, "cpu", 16)
