"""Text attacks never edit a tokenizer's special tokens (CLS, SEP, PAD, MASK) nor write new ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import dlaudit
from dlaudit.errors import ConfigError
from dlaudit.explain.tokens import find_embedding
from dlaudit.text.attacks import deepwordbug, hotflip
from dlaudit.text.attacks._greedy import split_words
from dlaudit.text.stopwords import STOPWORDS
from dlaudit.text.vocab import WordVocab, special_ids_of, special_tokens_of, unknown_word
from tests.formats.hf_folders import SENTENCES, tiny_bert

pytest.importorskip("transformers")
pytest.importorskip("tokenizers")


@pytest.fixture(scope="module")
def bert(tmp_path_factory: pytest.TempPathFactory) -> dlaudit.ModelBundle:
    return dlaudit.load_model(tiny_bert(tmp_path_factory.mktemp("hf") / "tiny-bert"), device="cpu")


def test_the_adapters_name_their_special_ids(bert: dlaudit.ModelBundle) -> None:
    tok = bert.tokenizer
    assert special_ids_of(tok) == {0, 1, 2, 3, 4}  # [PAD] [UNK] [CLS] [SEP] [MASK]
    assert set(special_tokens_of(tok)) == {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}
    vocab = WordVocab.build(["a good film"])
    assert special_ids_of(vocab) == {0, 1, 2} and special_tokens_of(vocab) == ()


def test_hotflip_leaves_cls_sep_and_pad_alone(bert: dlaudit.ModelBundle) -> None:
    tok, module = bert.tokenizer, bert.module
    ids = tok.encode(SENTENCES, min_len=12).ids
    with torch.no_grad():
        pred = module(ids).argmax(1)
    specials = sorted(special_ids_of(tok))
    result = hotflip(module, ids, pred, budget=6, n_candidates=60, special=specials, embedding=find_embedding(module))
    adv = result.adv_ids
    assert result.words_changed.sum() > 0, "the attack flipped nothing: the check below would be empty"
    is_special = torch.isin(ids, torch.tensor(specials))
    assert torch.equal(adv[is_special], ids[is_special]), "a special token was flipped"
    assert not torch.isin(adv[~is_special], torch.tensor(specials)).any(), "a token was flipped to a special token"
    # without the special ids, the same attack does flip [CLS] or [SEP] (so the check above can fail)
    loose = hotflip(module, ids, pred, budget=6, n_candidates=60, embedding=find_embedding(module)).adv_ids
    assert not torch.equal(loose[is_special], ids[is_special]) or torch.isin(loose[~is_special], 3).any()


def test_split_words_skips_spelled_special_tokens() -> None:
    pieces, words, _ = split_words("good [SEP] film [MASK]", ("[SEP]", "[MASK]"))
    assert "".join(pieces) == "good [SEP] film [MASK]" and words == ["good", "film"]
    assert split_words("good [SEP] film")[1] == ["good", "SEP", "film"]


def test_charswap_never_edits_a_spelled_special_token(bert: dlaudit.ModelBundle) -> None:
    tok = bert.tokenizer
    texts = [f"{s} [SEP] [MASK] {s}" for s in SENTENCES]

    def predict(batch: list[str]) -> np.ndarray:
        x = tok.encode(batch, min_len=32).ids
        with torch.no_grad():
            return torch.softmax(bert.module(x), dim=1).numpy()

    labels = predict(texts).argmax(1)
    result = deepwordbug(predict, texts, labels, budget=4, protected=special_tokens_of(tok), seed=0)
    assert result.words_changed.sum() > 0
    for after in result.adv_texts:
        assert after.count("[SEP]") == 1 and after.count("[MASK]") == 1, after


def test_charswap_ranks_words_by_the_tokenizers_own_unknown_token(bert: dlaudit.ModelBundle) -> None:
    """``scoring="unk"`` puts the tokenizer's [UNK] id in each ranking query, once: a literal "<unk>" would not."""
    tok = bert.tokenizer
    unk = unknown_word(tok)
    assert unk == "[UNK]"
    assert tok.encode_ids(["<unk>"])[0].tolist().count(tok.unk_id) != 1  # the former fixed spelling: not one [UNK]
    calls: list[torch.Tensor] = []

    def predict(batch: list[str]) -> np.ndarray:
        ids = tok.encode_ids(batch, min_len=8)
        calls.append(ids)
        with torch.no_grad():
            return torch.softmax(bert.module(ids), dim=1).numpy()

    labels = predict(SENTENCES).argmax(1)
    assert not (tok.encode_ids(SENTENCES) == tok.unk_id).any()  # every clean word is in the vocabulary
    calls.clear()
    deepwordbug(predict, SENTENCES, labels, budget=1, scoring="unk", unk=unk, protected=special_tokens_of(tok))
    clean, ranking = calls[0], calls[1]  # the clean texts, then one query per non-stop word
    assert len(ranking) == sum(len(split_words(t, skip=STOPWORDS)[1]) for t in SENTENCES) > 0
    assert ((ranking == tok.unk_id).sum(1) == 1).all(), "a ranking query without exactly one [UNK]"
    assert not (clean == tok.unk_id).any()
    with pytest.raises(ConfigError, match="unknown token"):
        deepwordbug(predict, SENTENCES, labels, scoring="unk")


def test_unknown_word_of_a_word_vocabulary_is_outside_it() -> None:
    vocab = WordVocab.build(["a good film", "unk is a word here"], min_count=1)
    word = unknown_word(vocab)
    assert word == "unk1" and vocab.encode_ids([f"a {word} film"])[0].tolist() == [
        vocab.id_of("a"),
        1,
        vocab.id_of("film"),
    ]
    assert vocab.encode_ids(["<unk>"])[0].tolist() != [vocab.unk_id]


def test_text_proba_trims_a_bert_to_each_texts_width(bert: dlaudit.ModelBundle) -> None:
    """A Hugging Face BERT masks its padding: text_proba pads each text to its own width, with the full width's numbers."""
    from dlaudit.text.model_io import padding_invariant, text_proba

    tok, module = bert.tokenizer, bert.module
    assert padding_invariant(module, tok, "cpu", 64)
    trimmed, full = text_proba(module, tok, "cpu", 64), text_proba(module, tok, "cpu", 64, trim=False)
    np.testing.assert_allclose(trimmed(SENTENCES), full(SENTENCES), rtol=0, atol=1e-6)
    alone = np.concatenate([trimmed([t]) for t in SENTENCES])
    np.testing.assert_allclose(alone, trimmed(SENTENCES), rtol=0, atol=1e-6)
