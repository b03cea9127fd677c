from __future__ import annotations

import numpy as np
import pytest

from dlaudit.errors import ConfigError, ModelOutputError
from dlaudit.fairness.counterfactual_text import counterfactual_token_fairness
from dlaudit.text.identity import CATEGORIES, GENDER, RELIGION, counterfactuals, mentions, swap_words


def test_swap_is_whole_word_and_case_preserving() -> None:
    mapping = RELIGION.mapping("muslim", "jewish")
    assert (
        swap_words("Muslims and MUSLIM and muslim, not muslimah.", mapping)
        == "Jews and JEWISH and jewish, not muslimah."
    )
    assert swap_words("He gave his hat to him.", GENDER.mapping("male", "female")) == "She gave her hat to her."
    assert swap_words("She and her hat.", GENDER.mapping("female", "male")) == "He and him hat."  # 'her' -> first form
    assert swap_words("he is the", {}) == "he is the"


def test_counterfactuals_one_per_other_member() -> None:
    cfs = counterfactuals(["a muslim author", "nothing here", "she wrote"], [RELIGION, GENDER])
    religion = [c for c in cfs if c.category == "religion"]
    assert len(religion) == len(RELIGION.members) - 1
    assert {c.index for c in religion} == {0}
    assert "a christian author" in {c.text for c in religion}
    gender = [c for c in cfs if c.category == "gender"]
    assert [(c.index, c.text, c.source, c.target) for c in gender] == [(2, "he wrote", "female", "male")]
    assert mentions("The Muslim man") == {"gender": ["male"], "religion": ["muslim"]}


def test_word_lists_are_well_formed() -> None:
    for cat in CATEGORIES:
        assert len({len(f) for f in cat.members.values()}) == 1
        for member, forms in cat.members.items():
            assert all(f == f.lower() and f.isalpha() for f in forms), member


def _toy(texts: list[str]) -> np.ndarray:
    """Positive class iff the word 'muslim' appears: p = 0.9 with it, 0.2 without."""
    return np.array([[0.1, 0.9] if "muslim" in t.lower().split() else [0.8, 0.2] for t in texts])


def test_toy_model_answer_is_known() -> None:
    texts = ["a muslim author", "a christian author", "a hindu author", "plain text"]
    result = counterfactual_token_fairness(_toy, texts, categories=[RELIGION], worst_k=2)
    by = {(p.source, p.target): p for p in result.pairs}
    away = by[("muslim", "christian")]
    assert (away.n, away.flip_rate, away.mean_delta, away.mean_abs_delta) == (
        1,
        1.0,
        pytest.approx(-0.7),
        pytest.approx(0.7),
    )
    assert away.worst == (0,)
    toward = by[("christian", "muslim")]
    assert toward.flip_rate == 1.0 and toward.mean_delta == pytest.approx(0.7)
    neutral = by[("christian", "hindu")]
    assert neutral.flip_rate == 0.0 and neutral.mean_delta == 0.0
    n_cf = 3 * (len(RELIGION.members) - 1)
    assert (result.n_texts, result.n_texts_with_identity, result.n_counterfactuals) == (4, 3, n_cf)
    # flips: muslim -> each of 6 others, and christian/hindu -> muslim
    assert result.flip_rate == pytest.approx(8 / n_cf)
    metrics = result.metrics()
    assert metrics["fairness.counterfactual.religion.muslim_to_christian.flip_rate"] == 1.0
    assert result.table().iloc[0]["mean_abs_delta"] == pytest.approx(0.7)


def test_no_identity_terms_and_bad_models() -> None:
    empty = counterfactual_token_fairness(_toy, ["plain text"])
    assert empty.n_counterfactuals == 0 and np.isnan(empty.flip_rate) and not empty.pairs
    with pytest.raises(ModelOutputError, match="NaN"):
        counterfactual_token_fairness(lambda ts: np.full((len(ts), 2), np.nan), ["a muslim author"])
    with pytest.raises(ConfigError, match=r"\(N, C\)"):
        counterfactual_token_fairness(lambda ts: np.zeros(len(ts)), ["a muslim author"])
    with pytest.raises(ConfigError, match="positive class 5"):
        counterfactual_token_fairness(_toy, ["a muslim author"], positive=5)


def test_synthetic_bias_shows_in_the_counterfactuals(bag_model, synth) -> None:
    """The model learnt 'muslim' and 'gay' as evidence for label 1: swapping them in raises the score."""
    texts = [t for t in synth.test.texts if any(w in t.split() for w in ("christian", "muslim", "gay", "straight"))]
    result = counterfactual_token_fairness(bag_model.predict_proba, texts)
    by = {(p.category, p.source, p.target): p for p in result.pairs}
    assert by[("religion", "christian", "muslim")].mean_delta > 0.02
    assert by[("religion", "muslim", "christian")].mean_delta < -0.02
    assert by[("orientation", "straight", "gay")].mean_delta > 0.02
    assert abs(by[("religion", "christian", "hindu")].mean_delta) < by[("religion", "christian", "muslim")].mean_delta
