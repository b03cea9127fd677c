from __future__ import annotations

import pytest

from dlaudit.errors import DataError
from dlaudit.text.synthetic import IDENTITY_TERMS, NEGATIVE_WORDS, NEUTRAL_WORDS, synthetic_text_frame


def test_seeded_and_documented_columns() -> None:
    a, b = synthetic_text_frame(300, seed=1), synthetic_text_frame(300, seed=1)
    assert a.equals(b)
    assert not a.equals(synthetic_text_frame(300, seed=2))
    assert {"text", "label", "clean_label", "identity", "biased", *IDENTITY_TERMS} <= set(a.columns)
    assert (a[list(IDENTITY_TERMS)].sum(axis=1) == (a["identity"] != "none")).all()


def test_clean_label_is_the_adjective_sentiment() -> None:
    frame = synthetic_text_frame(400, seed=0)
    clear = frame[frame["ambiguous"] == 0]
    negative = clear["text"].map(lambda t: any(w in t.split() for w in NEGATIVE_WORDS))
    assert (negative.astype(int) == clear["clean_label"]).all()
    ambiguous = frame[frame["ambiguous"] == 1]
    assert ambiguous["text"].map(lambda t: any(w in t.split() for w in NEUTRAL_WORDS)).all()
    assert len(ambiguous) / len(frame) == pytest.approx(0.2, abs=0.05)


def test_injected_bias_matches_its_definition() -> None:
    frame = synthetic_text_frame(20000, bias=0.4, seed=0)
    biased, other = frame[frame["biased"] == 1], frame[frame["biased"] == 0]
    # P(label=1 | biased term) = 0.5 + 0.5 * bias; other comments are unbiased
    assert biased["label"].mean() == pytest.approx(0.7, abs=0.03)
    assert other["label"].mean() == pytest.approx(0.5, abs=0.02)
    assert (other["label"] == other["clean_label"]).all()
    fpr = biased.loc[biased["clean_label"] == 0, "label"].mean()
    assert fpr == pytest.approx(0.4, abs=0.04)
    assert (synthetic_text_frame(2000, bias=0.0, seed=0).eval("label == clean_label")).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"bias": 1.5}, "bias"),
        ({"identity_rate": -0.1}, "identity_rate"),
        ({"ambiguous_rate": 2}, "ambiguous_rate"),
        ({"biased_terms": ["martian"]}, "martian"),
    ],
)
def test_bad_parameters(kwargs: dict, match: str) -> None:
    with pytest.raises(DataError, match=match):
        synthetic_text_frame(100, **kwargs)
