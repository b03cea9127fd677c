from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dlaudit.errors import ConfigError
from dlaudit.models.text import EmbeddingBagClassifier
from dlaudit.text.attacks import (
    attack_metrics,
    char_candidates,
    deepwordbug,
    embedding_neighbours,
    hotflip,
    neighbours_of,
    word_substitution,
)
from dlaudit.text.attacks._greedy import split_words
from dlaudit.text.stopwords import STOPWORD_SET, is_stopword
from dlaudit.text.vocab import WordVocab


def _bad_counter(texts: list[str]) -> np.ndarray:
    """Class 1 iff the word 'bad' appears twice or more: p1 = 0.15 + 0.2 * count('bad'), capped at 0.99."""
    p1 = np.array([min(0.99, 0.15 + 0.2 * t.lower().split().count("bad")) for t in texts])
    return np.stack([1 - p1, p1], axis=1)


def _changed_words(a: str, b: str) -> int:
    wa, wb = split_words(a)[1], split_words(b)[1]
    assert len(wa) == len(wb)
    return sum(x != y for x, y in zip(wa, wb))


def test_deepwordbug_finds_the_decision_word() -> None:
    texts = ["the film was bad bad and long", "bad bad plot"]
    result = deepwordbug(_bad_counter, texts, [1, 1], budget=3, seed=0)
    assert result.success.all() and result.words_changed.tolist() == [1, 1]
    for before, after in zip(texts, result.adv_texts):
        assert _changed_words(before, after) == 1
        assert after.split().count("bad") == 1  # one of the two decision words was edited
    # queries: the original, one removal per word that is not a stop word ('the', 'was', 'and'
    # are), then the first word's candidates only
    n_cands = [len(set(char_candidates("bad", np.random.default_rng([0, i])))) for i in range(2)]
    assert result.queries.tolist() == [1 + 4 + n_cands[0], 1 + 3 + n_cands[1]]
    every_word = deepwordbug(_bad_counter, texts, [1, 1], budget=3, seed=0, stopwords=())
    assert every_word.queries.tolist() == [1 + 7 + n_cands[0], 1 + 3 + n_cands[1]]


def test_stop_words_are_never_edited() -> None:
    """DeepWordBug's rule: 'The', 'was', 'not' ... stay as they are even when editing them would flip the class."""
    stop_counter = lambda ts: _bad_counter([t.lower().replace("not", "bad") for t in ts])
    texts = ["The film was not not long", "not not bad"]
    result = deepwordbug(stop_counter, texts, [1, 1], budget=3, seed=0)
    assert result.initially_correct.all() and not result.success[0]
    for before, after in zip(texts, result.adv_texts):
        assert [w for w in before.split() if is_stopword(w)] == [w for w in after.split() if is_stopword(w)]
    assert deepwordbug(stop_counter, texts, [1, 1], budget=3, seed=0, stopwords=()).success.all()


def test_budget_is_respected_and_acc_at_k_matches_separate_runs() -> None:
    texts = ["bad bad bad bad movie", "bad bad film", "good film", "bad bad bad and bad again bad"]
    labels = [1, 1, 0, 1]
    runs = {k: deepwordbug(_bad_counter, texts, labels, budget=k, seed=1) for k in (1, 2, 3, 4)}
    for k, r in runs.items():
        assert (r.words_changed <= k).all()
        assert all(_changed_words(a, b) <= k for a, b in zip(texts, r.adv_texts))
        assert runs[4].acc_at(k) == pytest.approx(r.accuracy)
    assert runs[1].success.tolist() == [False, True, False, False]
    assert runs[3].success.tolist() == [True, True, False, False]
    assert runs[4].success.tolist() == [True, True, False, True]
    m = attack_metrics(runs[4])
    assert m["robustness.charswap.acc@1"] == 0.75 and m["robustness.charswap.acc@4"] == 0.25
    assert m["robustness.charswap.success_rate@4"] == 0.75  # 'good film' is right and stays right
    assert m["robustness.charswap.words_changed@4"] == pytest.approx((3 + 1 + 4) / 3)


def test_wrong_predictions_are_not_attacked() -> None:
    result = deepwordbug(_bad_counter, ["bad bad", "nice"], [0, 1], budget=2)
    assert not result.initially_correct.any() and not result.success.any()
    assert result.queries.tolist() == [1, 1] and result.adv_texts == ["bad bad", "nice"]
    assert result.accuracy == 0.0 and np.isnan(result.success_rate)


def test_seeded_and_batch_independent(bag_model, synth) -> None:
    texts, labels = synth.test.texts[:40], synth.test.y[:40].numpy()
    a = deepwordbug(bag_model.predict_proba, texts, labels, budget=2, seed=3)
    b = deepwordbug(bag_model.predict_proba, texts, labels, budget=2, seed=3, batch_size=7)
    assert a.adv_texts == b.adv_texts and (a.queries == b.queries).all()
    c = deepwordbug(bag_model.predict_proba, texts, labels, budget=2, seed=4)
    assert c.adv_texts != a.adv_texts
    # a text's result does not depend on the other texts attacked with it
    alone = deepwordbug(bag_model.predict_proba, texts[:5], labels[:5], budget=2, seed=3)
    assert alone.adv_texts == a.adv_texts[:5]


def _reference_deepwordbug(predict, texts, labels, *, budget, seed, per_edit=1):
    """The algorithm written as a plain loop, one text and one model call at a time (the oracle)."""
    p_true = lambda t, y: round(float(predict([t])[0, y]), 6)
    out = []
    for i, (text, y) in enumerate(zip(texts, labels)):
        rng = np.random.default_rng([seed, i])
        pieces, words, slots = split_words(text, skip=STOPWORD_SET)
        if int(predict([text])[0].argmax()) != y:
            out.append((text, False, 0))
            continue
        cur = p_true(text, y)
        drops = [cur - p_true("".join("" if j == s else p for j, p in enumerate(pieces)), y) for s in slots]
        order = sorted(range(len(slots)), key=lambda j: -drops[j])
        changed, success = 0, False
        for j in order:
            if changed == budget or success:
                break
            slot = slots[j]
            cands = list(
                dict.fromkeys(c for c in char_candidates(pieces[slot], rng, per_edit=per_edit) if c != pieces[slot])
            )
            if not cands:
                continue
            scored = [(p_true("".join(c if k == slot else p for k, p in enumerate(pieces)), y), c) for c in cands]
            best_p = min(p for p, _ in scored)
            best = next(c for p, c in scored if p == best_p)
            if best_p < cur:
                pieces[slot], cur, changed = best, best_p, changed + 1
                success = int(predict(["".join(pieces)])[0].argmax()) != y
        out.append(("".join(pieces), success, changed))
    return out


def test_deepwordbug_equals_the_reference_loop(cnn_model, synth) -> None:
    """TextAttack's DeepWordBug recipe pulls flair and transformers<5 (it does not install here): a plain loop is the oracle."""
    texts, labels = synth.test.texts[:30], synth.test.y[:30].tolist()
    predict = lambda ts: cnn_model.predict_proba(ts).numpy()
    result = deepwordbug(predict, texts, labels, budget=3, seed=0)
    reference = _reference_deepwordbug(predict, texts, labels, budget=3, seed=0)
    assert result.adv_texts == [r[0] for r in reference]
    assert result.success.tolist() == [r[1] for r in reference]
    assert result.words_changed.tolist() == [r[2] for r in reference]
    assert result.success.sum() >= 5


@settings(max_examples=60, deadline=None)
@given(word=st.text(alphabet="abcdefxyz'", min_size=1, max_size=12), seed=st.integers(0, 2**16))
def test_char_candidates_are_one_edit_away(word: str, seed: int) -> None:
    for cand in char_candidates(word, np.random.default_rng(seed), per_edit=3):
        assert cand != word
        assert abs(len(cand) - len(word)) <= 1
        if len(cand) == len(word):
            diff = [i for i, (a, b) in enumerate(zip(cand, word)) if a != b]
            assert len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1 and cand[diff[0]] == word[diff[1]])


def test_word_substitution_with_known_neighbours() -> None:
    neighbours = {"bad": ["poor", "good"], "movie": ["film"]}
    texts = ["Bad bad movie", "a bad bad bad bad story told"]  # 'Bad' counts as 'bad'
    result = word_substitution(_bad_counter, texts, [1, 1], neighbours, budget=3, max_share=0.5)
    assert result.success[0] and result.adv_texts[0] in ("Poor bad movie", "Bad poor movie")
    assert result.words_changed[0] == 1
    # seven words, max_share 0.5: at most 3 changed; replacing 3 of 4 'bad' is needed, so it succeeds at 3
    assert result.words_changed[1] == 3 and result.success[1]
    capped = word_substitution(_bad_counter, texts, [1, 1], neighbours, budget=3, max_share=0.34)
    assert capped.words_changed[1] == 2 and not capped.success[1]


def test_embedding_neighbours_by_cosine() -> None:
    vocab = WordVocab(("<pad>", "<unk>", "<mask>", "good", "great", "bad", ","), max_len=8)
    weight = torch.tensor([[0, 0], [1, 1], [1, 1], [1.0, 0.1], [0.9, 0.0], [-1.0, 0.2], [1.0, 0.1]])
    nb = embedding_neighbours(weight, vocab, k=2)
    assert nb == {"good": ["great", "bad"], "great": ["good", "bad"], "bad": ["good", "great"]}
    assert embedding_neighbours(weight, vocab, k=2, min_similarity=0.5)["bad"] == []
    with pytest.raises(ConfigError, match="rows"):
        embedding_neighbours(weight[:3], vocab)


def _toy_bag() -> tuple[EmbeddingBagClassifier, WordVocab]:
    """Mean of 2-d embeddings, identity head: 'good' pulls to class 1, 'bad' to class 0, others are neutral."""
    vocab = WordVocab(("<pad>", "<unk>", "<mask>", "a", "b", "good", "bad"), max_len=8)
    model = EmbeddingBagClassifier(len(vocab), 2, embed_dim=2, hidden=0)
    with torch.no_grad():
        model.embedding.weight.copy_(torch.tensor([[0, 0], [0, 0], [0, 0], [0.5, 0.5], [0.5, 0.5], [0, 4.0], [4.0, 0]]))
        model.head.weight.copy_(torch.eye(2))
        model.head.bias.zero_()
    return model.train(), vocab


def test_hotflip_flips_the_decision_token_and_leaves_the_model_as_found() -> None:
    model, vocab = _toy_bag()
    ids = vocab.encode(["a good b", "b a good a"]).ids
    result = hotflip(model, ids, [1, 1], budget=2, n_candidates=3)
    assert result.success.all() and result.words_changed.tolist() == [1, 1]
    assert vocab.decode(result.adv_ids[0]) == "a bad b"
    assert vocab.decode(result.adv_ids[1]) == "b a bad a"
    assert model.training and not model.embedding._forward_hooks
    assert all(p.grad is None for p in model.parameters())
    assert attack_metrics(result)["robustness.hotflip.acc@1"] == 0.0


def _reference_greedy_flips(model, ids, y, budget, forbidden=(0, 1, 2)):
    """Exhaustive greedy flips (every position and token tried exactly): what HotFlip does with every candidate scored."""
    cur, flipped, changed = ids.clone(), set(), 0
    p = lambda t: torch.softmax(model(t[None]), 1)[0]
    with torch.no_grad():
        if int(p(cur).argmax()) != y:
            return cur, False, 0
        for _ in range(budget):
            best = (float(p(cur)[y]), None)
            for pos in range(len(cur)):
                if cur[pos] == 0 or pos in flipped:
                    continue
                for tok in range(model.vocab_size):
                    if tok in forbidden or tok == cur[pos]:
                        continue
                    new = cur.clone()
                    new[pos] = tok
                    q = float(p(new)[y])
                    if q < best[0]:
                        best = (q, (pos, tok))
            if best[1] is None:
                break
            cur[best[1][0]] = best[1][1]
            flipped.add(best[1][0])
            changed += 1
            if int(p(cur).argmax()) != y:
                return cur, True, changed
    return cur, False, changed


def test_hotflip_with_every_candidate_equals_exhaustive_greedy(bag_model, synth) -> None:
    texts, labels = synth.test.texts[:12], synth.test.y[:12]
    ids = bag_model.encode(texts)
    n_all = ids.shape[1] * len(bag_model.vocab)
    result = hotflip(bag_model.module, ids, labels, budget=2, n_candidates=n_all)
    for i in range(len(texts)):
        ref_ids, ref_success, ref_changed = _reference_greedy_flips(bag_model.module, ids[i], int(labels[i]), 2)
        assert bool(result.success[i]) == ref_success
        assert int(result.words_changed[i]) == ref_changed
        assert torch.equal(result.adv_ids[i], ref_ids)


def test_attacks_on_the_reference_models(bag_model, cnn_model, synth) -> None:
    texts, labels = synth.test.texts[:100], synth.test.y[:100].numpy()
    for clf in (bag_model, cnn_model):
        clean = (clf.predict_proba(texts).argmax(1).numpy() == labels).mean()
        char = deepwordbug(clf.predict_proba, texts, labels, budget=3)
        words = word_substitution(clf.predict_proba, texts, labels, neighbours_of(clf.module, clf.vocab), budget=3)
        flips = hotflip(clf.module, clf.encode(texts), labels, budget=3)
        for r in (char, words, flips):
            assert r.clean_accuracy == pytest.approx(clean)
            assert r.acc_at(1) >= r.acc_at(2) >= r.acc_at(3)
            assert r.acc_at(3) < clean
            assert (r.words_changed <= 3).all()
        assert flips.success_rate > 0.9  # white-box flips of a one-adjective decision


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="budget"):
        deepwordbug(_bad_counter, ["bad"], [1], budget=0)
    with pytest.raises(ConfigError, match="unknown character edit"):
        deepwordbug(_bad_counter, ["bad"], [1], edits=["shout"])
    with pytest.raises(ConfigError, match="2 texts but 1 labels"):
        deepwordbug(_bad_counter, ["bad", "x"], [1])
    with pytest.raises(ConfigError, match="nn.Embedding"):
        hotflip(torch.nn.Linear(2, 2), torch.zeros(1, 2, dtype=torch.long), [0])
