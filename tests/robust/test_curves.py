"""Robustness curves, minimal budgets by bisection, noise, and the batch-size probe."""

from __future__ import annotations

import pytest
import torch
from robust_models import LinearMargin

import dlaudit
from dlaudit.errors import ConfigError
from dlaudit.robust import Attack, minimal_eps, noise_accuracy, robustness_curve
from dlaudit.robust.batching import CPU_BATCH, CPU_BUDGET, activation_bytes, choose_batch_size, clear_cache


def _points(model: LinearMargin, n: int = 48) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    x = 0.3 + 0.4 * torch.rand(n, 4, generator=torch.Generator().manual_seed(5))
    margin = model(x)[:, 1].detach()
    return x, (margin > 0).long(), margin.abs() / 4.0  # L-inf distance to the boundary: |m| / ||w||_1


def test_curve_on_a_linear_model_is_exact(linear_model: LinearMargin) -> None:
    x, y, dist = _points(linear_model)
    y[:3] = 1 - y[:3]  # three samples misclassified without attack
    curve = robustness_curve(linear_model, x, y, Attack.pgd(1.0, steps=20), [0.0, 0.02, 0.05, 0.1], batch_size=16)
    clean_ok = torch.ones(len(y), dtype=torch.bool)
    clean_ok[:3] = False
    assert curve.name == "pgd_linf"
    assert curve.at(0.0) == pytest.approx(45 / 48)
    for e, ok in zip(curve.eps, curve.correct):
        expected = clean_ok & (dist > e)
        assert torch.equal(ok, expected), e
    assert list(curve.accuracy) == sorted(curve.accuracy, reverse=True)
    with pytest.raises(KeyError, match="not on the pgd_linf curve"):
        curve.at(0.3)


def test_minimal_eps_by_bisection(linear_model: LinearMargin) -> None:
    x, y, dist = _points(linear_model, 32)
    found = minimal_eps(linear_model, x, y, eps_max=0.5, steps=20, iterations=8, batch_size=32)
    resolution = 0.5 / 2**8
    assert bool((found >= dist - 1e-6).all())
    assert bool((found <= dist + resolution + 1e-6).all())


def test_minimal_eps_marks_misclassified_and_unbreakable(linear_model: LinearMargin) -> None:
    x = torch.full((2, 4), 0.5)
    x[1] = torch.tensor([1.0, 0.0, 1.0, 1.0])  # margin 1 + 0.5 + 0.5 - 0.25 = 1.75: distance 0.44 > eps_max 0.2
    y = torch.tensor([1, 1])  # sample 0 has margin 0 -> predicted 0: misclassified
    found = minimal_eps(linear_model, x, y, eps_max=0.2, iterations=4)
    assert found[0] == 0 and torch.isinf(found[1])
    with pytest.raises(ConfigError, match="eps_max must be positive"):
        minimal_eps(linear_model, x, y, eps_max=0.0)


def test_noise_accuracy(digits_cnn: dlaudit.ModelBundle, digits_splits) -> None:
    x, y = digits_splits.test.x[:150], digits_splits.test.y[:150]
    a = noise_accuracy(digits_cnn, x, y, kind="gaussian", strengths=(0.0, 0.1, 0.5), seed=1, batch_size=150)
    b = noise_accuracy(digits_cnn, x, y, kind="gaussian", strengths=(0.0, 0.1, 0.5), seed=1, batch_size=7)
    assert a == b  # per-sample noise: the batch size does not matter
    assert a[0.0] == pytest.approx(float((digits_cnn.predict(x) == y).float().mean()))
    assert a[0.5] < a[0.0]
    u = noise_accuracy(digits_cnn, x, y, kind="uniform", strengths=(0.1,), seed=1)
    assert set(u) == {0.1}
    with pytest.raises(ConfigError, match="unknown noise 'salt'"):
        noise_accuracy(digits_cnn, x, y, kind="salt")
    with pytest.raises(ConfigError, match="noise strengths must be >= 0"):
        noise_accuracy(digits_cnn, x, y, strengths=(-0.1,))


def test_default_batch_size(digits_cnn: dlaudit.ModelBundle, digits_splits) -> None:
    """Fixed on a CPU (256), one batch for few inputs, fewer for large activations; the same on every call."""
    clear_cache()
    x = digits_splits.test.x
    module = digits_cnn.module
    cpu = torch.device("cpu")
    assert choose_batch_size(module, x[:40], cpu) == 40  # small inputs: one batch
    assert choose_batch_size(module, x, cpu) == min(CPU_BATCH, len(x))
    assert choose_batch_size(module, x[:100], cpu) == 100
    big = torch.nn.Sequential(
        torch.nn.Conv2d(1, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.LazyLinear(10)
    )
    xb = torch.rand(300, 1, 256, 256)
    big(xb[:1])
    per_input = activation_bytes(big, xb, cpu)
    assert per_input is not None and per_input > 64 * 256 * 256 * 4  # at least the convolution's output
    size = choose_batch_size(big, xb, cpu)
    assert size == max(1, CPU_BUDGET // per_input) - max(1, CPU_BUDGET // per_input) % 8 and 8 <= size < CPU_BATCH
    assert choose_batch_size(big, xb, cpu) == size
