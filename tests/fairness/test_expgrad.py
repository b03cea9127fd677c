"""Exponentiated gradient with our trainer, and the ensemble architecture it is saved as."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone

import dlaudit
from dlaudit.data.groups import resolve_sensitive
from dlaudit.errors import ConfigError
from dlaudit.fairness.expgrad import TorchClassifier, fit_expgrad
from dlaudit.models import build_model
from dlaudit.models.ensemble import Ensemble


def test_ensemble_averages_member_probabilities_exactly():
    members = [
        {"architecture": "constant", "arch_kwargs": {"label": 0}},
        {"architecture": "constant", "arch_kwargs": {"label": 1}},
    ]
    model = build_model("ensemble", (3,), 2, members=members, weights=[0.25, 0.75])
    probs = torch.softmax(model(torch.zeros(4, 3)), dim=1)
    torch.testing.assert_close(probs, torch.tensor([[0.25, 0.75]] * 4))


def test_ensemble_of_mlps_roundtrips_through_a_checkpoint(tmp_path):
    members = [{"architecture": "mlp", "arch_kwargs": {"hidden": [4]}}] * 2
    module = build_model("ensemble", (3,), 2, members=members, weights=[1.0, 3.0])
    card = dlaudit.ModelCard(
        input_shape=(3,),
        num_classes=2,
        architecture="ensemble",
        arch_kwargs={"members": members, "weights": [1.0, 3.0]},
        modality="tabular",
    )
    path = dlaudit.save_model(dlaudit.ModelBundle(module, card), tmp_path / "e.pt")
    loaded = dlaudit.load_model(path, device="cpu")
    x = torch.rand(5, 3)
    torch.testing.assert_close(loaded.module(x), module(x))
    p = torch.softmax(module(x), 1)
    expected = 0.25 * torch.softmax(module.members[0](x), 1) + 0.75 * torch.softmax(module.members[1](x), 1)
    torch.testing.assert_close(p, expected)


@pytest.mark.parametrize("weights", [[], [1.0, -1.0], [0.0, 0.0]])
def test_bad_ensembles_are_config_errors(weights):
    members = [{"architecture": "constant", "arch_kwargs": {"label": 0}}] * 2
    with pytest.raises(ConfigError):
        build_model("ensemble", (3,), 2, members=members, weights=weights)


def test_torch_classifier_is_a_cloneable_weighted_estimator():
    rng = np.random.default_rng(0)
    x = rng.random((200, 3)).astype(np.float32)
    y = (x[:, 0] > 0.5).astype(int)
    est = TorchClassifier(arch="mlp", arch_kwargs={"hidden": [8]}, input_shape=(3,), epochs=30, batch_size=32, lr=0.01)
    est2 = clone(est)
    assert est2.get_params() == est.get_params()
    est.fit(x, y)
    assert (est.predict(x) == y).mean() > 0.9
    # weight only the samples with x0 > 0.5 and label them all 1: the model learns to say 1 there
    w = (x[:, 0] > 0.5).astype(float)
    est2.fit(x, np.ones_like(y) * (x[:, 0] > 0.5), sample_weight=w + 1e-6)
    assert est2.predict_proba(x).shape == (200, 2)


def test_expgrad_reduces_disparity_and_saves_an_ensemble(credit_mlp, credit_splits, tmp_path):
    f = resolve_sensitive(credit_splits.train, ["sex"])[0]
    mitigated, reduction = fit_expgrad(credit_mlp, credit_splits.train, f, max_iter=4, epochs=3, seed=0)
    assert isinstance(mitigated.module, Ensemble)
    card = mitigated.card
    assert card.architecture == "ensemble" and len(card.arch_kwargs["members"]) == len(card.arch_kwargs["weights"]) >= 1
    assert sum(card.arch_kwargs["weights"]) == pytest.approx(1.0)
    path = dlaudit.save_model(mitigated, tmp_path / "eg.pt")
    loaded = dlaudit.load_model(path, device="cpu")
    x = credit_splits.test.x
    torch.testing.assert_close(loaded.logits(x), mitigated.logits(x))


def test_expgrad_refuses_what_it_cannot_do(three_class_mlp, credit_splits, credit_mlp):
    f = resolve_sensitive(credit_splits.train, ["sex"])[0]
    with pytest.raises(ConfigError, match="binary"):
        fit_expgrad(three_class_mlp, credit_splits.train, f)
    with pytest.raises(ConfigError, match="unknown constraint"):
        fit_expgrad(credit_mlp, credit_splits.train, f, constraint="parity")
