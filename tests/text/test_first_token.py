"""A BERT's last layer at [CLS] alone (HFTextClassifier.first_token_only): the same logits, the model untouched, and
the full model wherever the copy's logits differ."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import dlaudit
from dlaudit.formats.huggingface import FirstTokenLayer, HFTextClassifier
from dlaudit.text.hf_tokenizer import HFTokenizer
from dlaudit.text.model_io import scorer, text_proba
from tests.formats.hf_folders import SENTENCES, bert_classifier, tiny_bert, wordpiece_tokenizer

pytest.importorskip("transformers")
pytest.importorskip("tokenizers")


@pytest.fixture(scope="module")
def bert(tmp_path_factory: pytest.TempPathFactory) -> dlaudit.ModelBundle:
    return dlaudit.load_model(tiny_bert(tmp_path_factory.mktemp("hf") / "tiny-bert", seed=3), device="cpu")


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_the_copy_gives_the_full_models_logits_and_leaves_it_untouched(attention: str) -> None:
    tok = wordpiece_tokenizer()
    model = bert_classifier(tok, ("a", "b", "c"), hidden=32, layers=3, heads=4, intermediate=64, positions=64, seed=1)
    model.config._attn_implementation = attention
    full = HFTextClassifier(model.eval(), tok.pad_token_id)
    layers = list(model.bert.encoder.layer)
    fast = full.first_token_only()
    assert fast is not None and isinstance(fast.model.bert.encoder.layer[-1], FirstTokenLayer)
    assert list(model.bert.encoder.layer) == layers and not any(isinstance(m, FirstTokenLayer) for m in model.modules())
    assert fast.model.bert.embeddings is model.bert.embeddings and fast.model.classifier is model.classifier
    enc = tok(SENTENCES, padding="max_length", max_length=24, truncation=True, return_tensors="pt")
    ids = enc["input_ids"]
    assert (ids == tok.pad_token_id).any(), "no padding: the mask would not be exercised"
    with torch.no_grad():
        expected, got = full(ids), fast(ids)
    assert expected.shape == got.shape == (len(SENTENCES), 3)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    # the last layer's output really is one position: the work at the others is not done
    with torch.no_grad():
        hidden = fast.model.bert(input_ids=ids, attention_mask=(ids != tok.pad_token_id).long()).last_hidden_state
    assert hidden.shape[1] == 1


def test_text_proba_scores_with_the_copy_at_the_full_models_numbers(bert: dlaudit.ModelBundle) -> None:
    tok, module = bert.tokenizer, bert.module
    chosen = scorer(module, tok, "cpu", 64, trim=True)
    assert chosen is not module and isinstance(chosen.model.bert.encoder.layer[-1], FirstTokenLayer)
    seen: list[int] = []  # the last layer's query is shared by the copies: it sees one position in theirs
    query = module.model.bert.encoder.layer[-1].attention.self.query
    hook = query.register_forward_hook(lambda _m, args, _out: seen.append(args[0].shape[1]))
    predict = text_proba(module, tok, "cpu", 64)
    try:
        predict(SENTENCES[:1])  # the first call checks the copy against the model
        seen.clear()
        fast = predict(SENTENCES)
    finally:
        hook.remove()
    assert seen and set(seen) == {1}, "text_proba did not score with the first-token copy"
    with torch.no_grad():
        ids = tok.encode_ids(list(SENTENCES), max_len=64, min_len=64)
        reference = torch.softmax(module(ids), dim=1).numpy()
    np.testing.assert_allclose(fast, reference, rtol=0, atol=1e-6)


class _MeanPooled(nn.Module):
    """A classifier whose copy reads another position than the model: the check must refuse it."""

    def __init__(self, inner: HFTextClassifier) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.inner(ids)

    def first_token_only(self) -> nn.Module:
        return _Shifted(self.inner)


class _Shifted(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.inner(ids) + 1e-3


def test_a_copy_whose_logits_differ_is_not_used(bert: dlaudit.ModelBundle) -> None:
    wrapped = _MeanPooled(bert.module)
    assert scorer(wrapped, bert.tokenizer, "cpu", 64, trim=True) is wrapped
    assert scorer(wrapped, bert.tokenizer, "cpu", 64, trim=False) is wrapped


def test_models_that_are_not_bert_style_encoders_have_no_copy() -> None:
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    tok = wordpiece_tokenizer()
    config = DistilBertConfig(vocab_size=len(tok), dim=32, n_layers=2, n_heads=2, hidden_dim=64, pad_token_id=0)
    distil = HFTextClassifier(DistilBertForSequenceClassification(config).eval(), tok.pad_token_id)
    assert distil.first_token_only() is None
    assert scorer(distil, HFTokenizer(tok, max_len=16), "cpu", 16, trim=False) is distil
