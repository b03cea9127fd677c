"""The black-box text attacks advance every text in lockstep: a text's search is the one it gets alone.

Through :func:`~dlaudit.text.model_io.text_proba` (each text padded to its own width, calls of
mixed widths split by width), running the texts in blocks of 1, 3 or 16 (a block's first text at
its global index, ``start``, as the report's shards do) and with other batch sizes gives the same
edits, queries and successes as one run over all of them.
"""

from __future__ import annotations

import numpy as np
import pytest

import dlaudit
from dlaudit.text.attacks import deepwordbug
from dlaudit.text.model_io import text_proba
from dlaudit.text.vocab import special_tokens_of
from tests.formats.hf_folders import SENTENCES, tiny_bert

pytest.importorskip("transformers")
pytest.importorskip("tokenizers")


@pytest.fixture(scope="module")
def bert(tmp_path_factory: pytest.TempPathFactory) -> dlaudit.ModelBundle:
    return dlaudit.load_model(tiny_bert(tmp_path_factory.mktemp("hf") / "tiny-bert"), device="cpu")


def _blocks(predict, texts, labels, block, **kw):
    parts = [
        deepwordbug(predict, texts[a : a + block], labels[a : a + block], start=a, **kw)
        for a in range(0, len(texts), block)
    ]
    return (
        [t for p in parts for t in p.adv_texts],
        np.concatenate([p.queries for p in parts]).tolist(),
        np.concatenate([p.success for p in parts]).tolist(),
        np.concatenate([p.words_changed for p in parts]).tolist(),
    )


@pytest.mark.parametrize("model", ["bert", "bag"])
def test_blocks_of_1_3_16_give_the_one_run_result(model, request, synth) -> None:
    if model == "bert":
        bundle = request.getfixturevalue("bert")
        module, tok = bundle.module, bundle.tokenizer
        # texts of 3 to 14 words, so that calls mix several widths
        texts = SENTENCES[:3] + [f"{a} and {b}" for a, b in zip(SENTENCES, SENTENCES[2:])][:5]
    else:
        clf = request.getfixturevalue("bag_model")
        module, tok = clf.module.eval(), clf.vocab
        texts = list(synth.test.texts[:16])
    predict = text_proba(module, tok, "cpu", 32)
    labels = predict(texts).argmax(1).tolist()  # every text starts right: every text is attacked
    kw = {"budget": 3, "seed": 5, "protected": list(special_tokens_of(tok)), "stopwords": ()}
    whole = _blocks(predict, texts, labels, len(texts), **kw)
    assert sum(whole[3]) > 0, "the attack changed nothing: the comparison below would be empty"
    for block in (1, 3, 16):  # 16: one block for the BERT's texts, two for the bag model's
        assert _blocks(predict, texts, labels, block, **kw) == whole, f"blocks of {block}"
    assert _blocks(predict, texts, labels, len(texts), batch_size=5, **kw) == whole
