from __future__ import annotations

import io
import json

import pytest
import torch

from dlaudit.errors import CardError, ConfigError
from dlaudit.text.vocab import MASK, PAD, UNK, WordVocab, merge_to_words, word_spans

TEXTS = ["The film was good.", "the film was bad", "A good, good day"]


def test_build_is_deterministic_with_frequency_then_alphabetical_order() -> None:
    vocab = WordVocab.build(TEXTS, min_count=1)
    assert vocab.tokens[:3] == (PAD, UNK, MASK)
    # good 3, film 2, the 2, was 2, then the singletons alphabetically
    assert vocab.tokens[3:] == ("good", "film", "the", "was", ",", ".", "a", "bad", "day")
    assert WordVocab.build(list(reversed(TEXTS)), min_count=1) == vocab


def test_min_count_and_max_size() -> None:
    assert WordVocab.build(TEXTS, min_count=2).tokens[3:] == ("good", "film", "the", "was")
    assert WordVocab.build(TEXTS, min_count=1, max_size=5).tokens == (PAD, UNK, MASK, "good", "film")


def test_encode_pads_truncates_and_counts() -> None:
    vocab = WordVocab.build(TEXTS, min_count=1, max_len=3)
    enc = vocab.encode(["the film was good .", "good", "zebra good"], min_len=1)
    assert enc.ids.shape == (3, 3)
    assert enc.ids[0].tolist() == [vocab.id_of("the"), vocab.id_of("film"), vocab.id_of("was")]
    assert enc.ids[1].tolist() == [vocab.id_of("good"), vocab.pad_id, vocab.pad_id]
    assert enc.ids[2, 0].item() == vocab.unk_id
    assert enc.lengths.tolist() == [3, 1, 2]
    assert enc.n_tokens == [5, 1, 2]
    assert enc.truncated == 1
    assert vocab.encode(["good"], min_len=5).ids.shape == (1, 5)
    assert vocab.encode(["the film was good ."], max_len=10).truncated == 0


def test_offsets_point_into_the_original_text() -> None:
    vocab = WordVocab.build(TEXTS, min_count=1)
    text = "Don't  panic, OK?"
    enc = vocab.encode([text])
    assert [text[a:b] for a, b in enc.offsets[0]] == ["Don't", "panic", ",", "OK", "?"]
    assert enc.word_ids[0] == [0, 1, 2, 3, 4]
    assert word_spans(text) == enc.offsets[0]


def test_decode_round_trip_of_known_words() -> None:
    vocab = WordVocab.build(TEXTS, min_count=1)
    ids = vocab.encode(["the film was bad", "good"]).ids
    assert vocab.decode(ids[0]) == "the film was bad"
    assert vocab.decode(ids[1]) == "good"
    assert vocab.decode(ids[1], skip_pad=False).startswith("good <pad>")
    with pytest.raises(ConfigError, match="outside the vocabulary"):
        vocab.decode([999])


def test_json_round_trip_and_weights_only_load() -> None:
    vocab = WordVocab.build(TEXTS, min_count=1, max_len=7)
    data = json.loads(json.dumps(vocab.to_dict()))
    assert WordVocab.from_dict(data) == vocab
    buf = io.BytesIO()
    torch.save({"card": {"encoder": vocab.to_dict()}}, buf)
    buf.seek(0)
    assert WordVocab.from_dict(torch.load(buf, weights_only=True)["card"]["encoder"]) == vocab


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"kind": "other"}, "not a dlaudit word vocabulary"),
        ({"kind": "dlaudit.word_vocab", "version": 99, "tokens": []}, "version 99"),
        ({"kind": "dlaudit.word_vocab", "version": 1, "tokens": "abc"}, "list of strings"),
        ({"kind": "dlaudit.word_vocab", "version": 1, "tokens": ["a", "b", "c"]}, "starts with"),
        ({"kind": "dlaudit.word_vocab", "version": 1, "tokens": [PAD, UNK, MASK], "max_len": 1.5}, "whole number"),
    ],
)
def test_bad_vocab_is_a_card_error(data: dict, match: str) -> None:
    with pytest.raises(CardError, match=match):
        WordVocab.from_dict(data)


def test_case_is_kept_when_asked() -> None:
    vocab = WordVocab.build(["Good good"], min_count=1, lowercase=False)
    assert set(vocab.tokens[3:]) == {"Good", "good"}
    assert vocab.id_of("GOOD") == vocab.unk_id


def test_merge_to_words_sums_subword_scores() -> None:
    # "unbelievable film": [CLS] un ##believ ##able film [SEP]
    scores = [9.0, 0.1, 0.2, 0.3, 1.0, 9.0]
    word_ids = [None, 0, 0, 0, 1, None]
    assert merge_to_words(scores, word_ids) == pytest.approx([0.6, 1.0])
    assert merge_to_words(scores, word_ids, reduce="mean") == pytest.approx([0.2, 1.0])
    with pytest.raises(ConfigError):
        merge_to_words(scores, word_ids, reduce="max")
