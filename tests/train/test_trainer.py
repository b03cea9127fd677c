"""Reference trainers reach their accuracy targets on digits, deterministically."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import dlaudit
from dlaudit.errors import ConfigError, DataError


def test_cnn_target(digits_cnn):
    assert digits_cnn.card.metrics["test_accuracy"] >= 0.97
    assert digits_cnn.card.training["trainer"] == "cnn" and digits_cnn.card.dataset == "digits"
    assert digits_cnn.card.metrics["train_seconds"] > 0  # speed itself is measured in bench/, not here


def test_mlp_target(digits_mlp):
    assert digits_mlp.card.metrics["test_accuracy"] >= 0.96


def test_numpy_mlp_target():
    bundle = dlaudit.train("numpy-mlp", "digits", seed=0, device="cpu")
    assert bundle.card.metrics["test_accuracy"] >= 0.93
    assert bundle.card.architecture == "mlp" and bundle.card.training["trainer"] == "numpy-mlp"


def test_same_seed_same_model():
    a = dlaudit.train("cnn", "digits", epochs=1, seed=3, device="cpu")
    b = dlaudit.train("cnn", "digits", epochs=1, seed=3, device="cpu")
    c = dlaudit.train("cnn", "digits", epochs=1, seed=4, device="cpu")
    x = dlaudit.load_data("digits").x[:20]
    assert torch.equal(a.module(x), b.module(x))
    assert not torch.equal(a.module(x), c.module(x))


def test_sample_weights_change_training_and_are_checked():
    n = len(dlaudit.load_data("digits", split="train"))
    w = np.ones(n)
    w[: n // 2] = 0.0
    a = dlaudit.train("mlp", "digits", epochs=1, seed=0, device="cpu")
    b = dlaudit.train("mlp", "digits", epochs=1, seed=0, device="cpu", sample_weight=w)
    assert b.card.training["sample_weighted"]
    x = dlaudit.load_data("digits").x[:10]
    assert not torch.equal(a.module(x), b.module(x))
    with pytest.raises(DataError, match="sample_weight has 3 entries"):
        dlaudit.train("mlp", "digits", epochs=1, device="cpu", sample_weight=[1, 2, 3])


def test_progress_and_bad_config():
    seen = []
    dlaudit.train("mlp", "digits", epochs=2, device="cpu", progress=lambda s, d, t: seen.append((s, d, t)))
    assert seen == [("train", 1, 2), ("train", 2, 2)]
    with pytest.raises(ConfigError, match="learning rate must be positive"):
        dlaudit.train("mlp", "digits", lr=-1.0, device="cpu")
    with pytest.raises(ConfigError, match="cnn needs image data"):
        dlaudit.train("cnn", "synthetic-credit", device="cpu")


def test_tabular_mlp_records_its_encoder():
    bundle = dlaudit.train("mlp", "synthetic-credit", epochs=3, device="cpu")
    assert bundle.card.modality == "tabular" and bundle.card.encoder["target"] == "approved"
    assert bundle.card.sensitive == ["sex"]
    data = dlaudit.load_data(bundle=bundle)  # the card's dataset, encoded with the card's encoder
    assert data.x.shape[1] == bundle.card.input_shape[0]
