"""text_proba's padding: each text to its own width where the model allows it, the full width otherwise."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from dlaudit.text.model_io import MIN_WIDTH, _own_widths, padding_invariant, text_proba
from dlaudit.text.stopwords import STOPWORDS, STOPWORDS_SHA256, is_stopword, stopwords_digest


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
