"""Fixtures of the explanation tests (helpers and tiny models live in explain_helpers.py)."""

from __future__ import annotations

import pytest
import torch
from explain_helpers import BIAS, WEIGHTS, linear_module

import dlaudit
from dlaudit.card import ModelCard
from dlaudit.data import AuditData, Splits, load_splits
from dlaudit.explain import ExplainContext
from dlaudit.models import MLP


@pytest.fixture()
def linear_bundle() -> dlaudit.ModelBundle:
    card = ModelCard(
        input_shape=(4,),
        num_classes=3,
        modality="tabular",
        feature_names=["a", "b", "c", "d"],
        class_names=["x", "y", "z"],
    )
    return dlaudit.ModelBundle(linear_module(), card, device="cpu")


@pytest.fixture()
def linear_data() -> AuditData:
    x = torch.rand(24, 4, generator=torch.Generator().manual_seed(0))
    y = (x @ WEIGHTS.T + BIAS).argmax(dim=1)
    y[:3] = (y[:3] + 1) % 3  # a few misclassified samples
    return AuditData(
        x, y, name="linear", modality="tabular", class_names=["x", "y", "z"], feature_names=["a", "b", "c", "d"]
    )


@pytest.fixture(scope="session")
def digits_test(digits_splits) -> AuditData:
    return digits_splits.test


@pytest.fixture()
def image_context(digits_splits) -> ExplainContext:
    return ExplainContext("image", (0.0, 1.0), digits_splits.train.x[:50])


@pytest.fixture(scope="session")
def credit_splits() -> Splits:
    return load_splits("synthetic-credit")


@pytest.fixture(scope="session")
def credit_bundle(credit_splits: Splits) -> dlaudit.ModelBundle:
    """A small MLP on synthetic-credit (4 numeric columns, sex one-hot), fitted by 60 full-batch Adam steps."""
    train = credit_splits.train
    torch.manual_seed(0)
    module = MLP((6,), 2, hidden=(16,))
    opt = torch.optim.Adam(module.parameters(), lr=0.05)
    for _ in range(60):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(module(train.x), train.y).backward()
        opt.step()
    card = ModelCard(
        input_shape=(6,),
        num_classes=2,
        modality="tabular",
        architecture="mlp",
        arch_kwargs={"hidden": [16]},
        class_names=train.class_names,
        feature_names=train.feature_names,
        encoder=train.encoder,
        dataset="synthetic-credit",
    )
    return dlaudit.ModelBundle(module.eval(), card, device="cpu")
