"""Fixtures of the fairness tests: small tabular models trained once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import dlaudit
from dlaudit.data import Splits, load_splits


@pytest.fixture(scope="package", autouse=True)
def _one_torch_thread():
    """Tiny MLPs train about 20x faster on one thread on the shared 2-core machine
    (intra-op threads spin against the other processes); restored after this package."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="package")
def credit_splits() -> Splits:
    return load_splits("synthetic-credit", sensitive="sex,age")


@pytest.fixture(scope="package")
def credit_mlp() -> dlaudit.ModelBundle:
    """MLP on synthetic-credit (injected bias 0.2 against 'female'), seed 0, CPU, under a second. Do not mutate it."""
    return dlaudit.train(
        "mlp", "synthetic-credit", sensitive="sex,age", epochs=30, batch_size=256, seed=0, device="cpu"
    )


@pytest.fixture(scope="package")
def three_class_mlp(credit_mlp: dlaudit.ModelBundle) -> dlaudit.ModelBundle:
    """An untrained 3-class MLP over the credit inputs (for refusals of binary-only methods)."""
    encoder = {**credit_mlp.card.encoder, "classes": ["a", "b", "c"]}  # the card stays consistent: 3 labels, 3 classes
    card = credit_mlp.card.replace(num_classes=3, class_names=["a", "b", "c"], encoder=encoder)
    return dlaudit.ModelBundle(dlaudit.build_model("mlp", card.input_shape, 3, hidden=[8]), card, device="cpu")


@pytest.fixture(scope="package")
def untrained_cnn() -> dlaudit.ModelBundle:
    """An untrained CNN for 8x8 digits (the fairness section only needs to see image data)."""
    card = dlaudit.ModelCard(input_shape=(1, 8, 8), num_classes=10, architecture="cnn", dataset="digits")
    return dlaudit.ModelBundle(dlaudit.build_model("cnn", (1, 8, 8), 10), card, device="cpu")


@pytest.fixture(scope="package")
def adult_mlp(shared_data: Path) -> dlaudit.ModelBundle:
    """A quickly trained MLP on UCI Adult (2 epochs, batch 256)."""
    return dlaudit.train("mlp", "adult", data_dir=shared_data / "adult", epochs=2, batch_size=256, seed=0, device="cpu")
