"""The NumPy MLP: hand-derived backprop equals torch autograd; it trains and exports."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import dlaudit
from dlaudit.errors import ConfigError
from dlaudit.models import MLP, NumpyMLP, build_model, list_models


def _torch_grads(net: NumpyMLP, x: np.ndarray, y: np.ndarray, w: np.ndarray | None):
    ws = [torch.tensor(a, requires_grad=True) for a in net.weights]
    bs = [torch.tensor(b, requires_grad=True) for b in net.biases]
    a = torch.tensor(x.reshape(len(x), -1))
    for i, (wi, bi) in enumerate(zip(ws, bs)):
        a = a @ wi.T + bi
        if i < len(ws) - 1:
            a = torch.relu(a)
    losses = F.cross_entropy(a, torch.tensor(y), reduction="none")
    loss = losses.mean() if w is None else (losses * torch.tensor(w)).sum() / float(np.sum(w))
    loss.backward()
    return float(loss.detach()), [t.grad.numpy() for t in ws], [t.grad.numpy() for t in bs]


@pytest.mark.parametrize("weighted", [False, True])
def test_backprop_matches_autograd(weighted):
    rng = np.random.default_rng(0)
    net = NumpyMLP((1, 8, 8), 10, hidden=(32, 16), seed=1)
    for b in net.biases:  # non-zero biases exercise db
        b += rng.normal(0, 0.1, size=b.shape)
    x = rng.random((25, 1, 8, 8))
    y = rng.integers(0, 10, size=25)
    w = rng.random(25) if weighted else None
    loss, gw, gb = net.loss_and_gradients(x, y, w)
    t_loss, t_gw, t_gb = _torch_grads(net, x, y, w)
    assert loss == pytest.approx(t_loss, rel=1e-10)
    for mine, ref in zip(gw + gb, t_gw + t_gb):
        rel = np.linalg.norm(mine - ref) / max(np.linalg.norm(ref), 1e-30)
        assert rel < 1e-6


def test_a_hand_checked_step():
    """One layer, two classes: delta = y_hat - y, dW = delta x^T."""
    net = NumpyMLP((2,), 2, hidden=(), seed=0)
    net.weights[0][:] = 0.0  # logits 0 -> y_hat = (0.5, 0.5)
    loss, gw, gb = net.loss_and_gradients(np.array([[1.0, 2.0]]), np.array([1]))
    assert loss == pytest.approx(np.log(2))
    np.testing.assert_allclose(gb[0], [0.5, -0.5])
    np.testing.assert_allclose(gw[0], [[0.5, 1.0], [-0.5, -1.0]])


def test_export_to_torch_is_equivalent():
    rng = np.random.default_rng(2)
    net = NumpyMLP((1, 8, 8), 10, hidden=(20,), seed=3)
    x = rng.random((9, 1, 8, 8))
    module = net.to_torch()
    assert isinstance(module, MLP) and not module.training
    out = module(torch.tensor(x, dtype=torch.float32)).detach().numpy()
    np.testing.assert_allclose(out, net.logits(x), rtol=1e-4, atol=1e-5)


def test_bad_hyperparameters():
    with pytest.raises(ConfigError, match="lr > 0"):
        NumpyMLP((4,), 2).fit(np.zeros((4, 4)), np.zeros(4, int), lr=0)


def test_registry():
    assert {"cnn", "mlp"} <= set(list_models())
    with pytest.raises(ConfigError, match="unknown model 'resnet'; choose one of: cnn, .*mlp"):
        build_model("resnet", (1, 8, 8), 10)
    with pytest.raises(ConfigError, match="image inputs"):
        build_model("cnn", (12,), 2)
    # every ReLU is its own module (shap's DeepExplainer needs it)
    for name, shape in (("cnn", (1, 28, 28)), ("mlp", (1, 8, 8))):
        relus = [m for m in build_model(name, shape, 10).modules() if isinstance(m, torch.nn.ReLU)]
        assert len(relus) == len({id(r) for r in relus}) == 2


@pytest.mark.parametrize(
    ("optimizer", "momentum", "weight_decay"),
    [("sgd", 0.0, 0.0), ("sgd", 0.9, 0.0), ("sgd", 0.9, 0.01), ("adam", 0.0, 0.0), ("adam", 0.0, 0.01)],
)
def test_optimizer_steps_match_torch(optimizer: str, momentum: float, weight_decay: float) -> None:
    """A few steps of the hand-written optimizer equal torch.optim's on the same net and batches (float64)."""
    rng = np.random.default_rng(0)
    x, y = rng.random((12, 6)), rng.integers(0, 3, 12)
    net = NumpyMLP((6,), 3, hidden=(5,), seed=1)
    net.weights = [w.astype(np.float32).astype(np.float64) for w in net.weights]  # to_torch goes through float32
    net.biases = [b.astype(np.float32).astype(np.float64) for b in net.biases]
    module = net.to_torch().double().train()
    params = [p for m in module if isinstance(m, torch.nn.Linear) for p in (m.weight, m.bias)]
    opt = (
        torch.optim.SGD(params, lr=0.1, momentum=momentum, weight_decay=weight_decay)
        if optimizer == "sgd"
        else torch.optim.Adam(params, lr=0.01, weight_decay=weight_decay)
    )
    lr = 0.1 if optimizer == "sgd" else 0.01
    net.fit(
        x, y, epochs=3, lr=lr, batch_size=4, seed=5, optimizer=optimizer, momentum=momentum, weight_decay=weight_decay
    )
    order_rng = np.random.default_rng(5)
    for _ in range(3):
        order = order_rng.permutation(12)
        for start in range(0, 12, 4):
            idx = order[start : start + 4]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(module(torch.tensor(x[idx])), torch.tensor(y[idx])).backward()
            opt.step()
    mine = [a for w, b in zip(net.weights, net.biases) for a in (w, b)]
    for ours, theirs in zip(mine, params):
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-9, atol=1e-12)


def test_the_card_records_what_the_numpy_trainer_applied(digits_splits) -> None:
    bundle = dlaudit.train("numpy-mlp", "digits", epochs=1, optimizer="adam", lr=0.01, weight_decay=1e-4, device="cpu")
    t = bundle.card.training
    assert t["optimizer"] == "adam" and t["weight_decay"] == 1e-4 and "momentum" not in t and t["betas"] == [0.9, 0.999]
    plain = dlaudit.train("numpy-mlp", "digits", epochs=1, device="cpu").card.training
    assert plain["optimizer"] == "sgd" and plain["momentum"] == 0.0
