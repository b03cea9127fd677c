"""Fixtures of the text tests: the synthetic data and the two reference text models trained on it (seeded)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlaudit.text.data import TextSplits
from dlaudit.text.synthetic import load_synthetic_text
from dlaudit.text.train import TextClassifier, train_text_model

SHARED_TEXT = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "text"


@pytest.fixture(scope="session")
def shared_text() -> Path:
    """``../shared/data/text`` (HateXplain with identity columns, SMS spam); skips where it is absent."""
    if not (SHARED_TEXT / "sms_spam.csv.gz").is_file():
        pytest.skip(f"shared text data not found at {SHARED_TEXT}")
    return SHARED_TEXT


@pytest.fixture(scope="session")
def synth() -> TextSplits:
    """synthetic-text, 2000 comments, bias 0.3; ``sensitive`` also carries the ground truth for the tests."""
    return load_synthetic_text(n=2000, bias=0.3, seed=0, sensitive=("identity", "ambiguous", "clean_label"))


@pytest.fixture(scope="session")
def bag_model(synth: TextSplits) -> TextClassifier:
    """The embedding-bag model on synthetic-text (seed 0, under a second). Do not mutate it."""
    return train_text_model("embedding-bag", synth.train, seed=0)


@pytest.fixture(scope="session")
def cnn_model(synth: TextSplits) -> TextClassifier:
    """TextCNN on synthetic-text (seed 0, a few seconds). Do not mutate it."""
    return train_text_model("textcnn", synth.train, seed=0, epochs=3)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "shared_text" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.shared)
