"""The NumPy MLP: hand-derived backprop equals torch autograd; it trains and exports."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

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
