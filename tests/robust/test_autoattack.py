"""AutoAttack: the ensemble's bookkeeping, agreement with the official code, invariants, bad input."""

from __future__ import annotations

import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from robust_models import LinearMargin
from torch import nn

import dlaudit
from dlaudit.errors import ConfigError
from dlaudit.robust.attacks.autoattack import (
    FAST_ATTACKS,
    FAST_STEPS,
    FAST_TARGETS,
    STANDARD_ATTACKS,
    AutoAttackResult,
    _verified,
    autoattack,
)


@pytest.fixture(scope="module")
def batch(digits_splits) -> tuple[torch.Tensor, torch.Tensor]:
    return digits_splits.test.x[:96], digits_splits.test.y[:96]


@pytest.fixture(scope="module")
def standard(digits_cnn: dlaudit.ModelBundle, batch) -> AutoAttackResult:
    x, y = batch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return autoattack(digits_cnn, x, y, eps=0.1, batch_size=64, return_adv=True)


# -- bookkeeping ------------------------------------------------------------------------------------


def test_every_sample_is_accounted_for(standard, batch) -> None:
    y = batch[1]
    r = standard
    assert r.attacks == STANDARD_ATTACKS
    assert torch.equal(r.robust, r.breaker < 0)
    assert torch.equal(~r.clean_correct, r.breaker == 0)  # misclassified without attack: broken, not attacked
    assert int((~r.clean_correct).sum()) + sum(r.counts.values()) + int(r.robust.sum()) == len(y)
    assert r.robust_accuracy == int(r.robust.sum()) / len(y)
    after = r.accuracy_after()
    assert list(after) == ["clean", *[a for a in r.attacks if a not in r.skipped]]
    assert (
        list(after.values()) == sorted(after.values(), reverse=True) and list(after.values())[-1] == r.robust_accuracy
    )
    assert r.counts["apgd-ce"] > 0
    assert set(r.seconds) == set(r.counts) and not r.rejected
    names = r.broken_by
    assert all((n is None) == bool(rb) for n, rb in zip(names, r.robust.tolist()))
    assert r.to_dict()["metrics"] == {"robustness.autoattack_linf.acc@0.1": r.robust_accuracy}


def test_adversarial_inputs_are_real_and_within_budget(standard, batch, digits_cnn: dlaudit.ModelBundle) -> None:
    x, y = batch
    r = standard
    broken = r.breaker > 0
    assert torch.equal(r.x_adv[~broken], x[~broken])
    assert float((r.x_adv - x).abs().max()) <= 0.1 + 1e-6
    assert float(r.x_adv.min()) >= 0.0 and float(r.x_adv.max()) <= 1.0
    assert bool((digits_cnn.predict(r.x_adv[broken]) != y[broken]).all())


def test_the_whole_ensemble_runs(standard) -> None:
    assert standard.complete and not standard.skipped
    assert set(standard.counts) == {"apgd-ce", "apgd-t", "fab-t", "square"}


def test_a_model_with_three_classes_skips_apgd_t_and_says_why() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3)).eval()
    x = torch.rand(8, 1, 2, 2)
    y = model(x).argmax(dim=1)
    r = autoattack(model, x, y, eps=0.01, version="fast", batch_size=8)
    assert "apgd-t" in r.skipped and "4 classes" in r.skipped["apgd-t"] and not r.complete


def test_same_numbers_for_batch_sizes_7_and_64(digits_cnn: dlaudit.ModelBundle, batch) -> None:
    x, y = batch[0][:48], batch[1][:48]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = autoattack(digits_cnn, x, y, eps=0.1, batch_size=64)
        b = autoattack(digits_cnn, x, y, eps=0.1, batch_size=7)
    assert torch.equal(a.breaker, b.breaker)
    assert a.counts == b.counts and a.robust_accuracy == b.robust_accuracy


def test_fast_version(digits_cnn: dlaudit.ModelBundle, batch, standard) -> None:
    x, y = batch
    fast = autoattack(digits_cnn, x, y, eps=0.1, version="fast", batch_size=64)
    assert fast.attacks == FAST_ATTACKS and fast.complete
    assert (FAST_STEPS, FAST_TARGETS) == (25, 3)
    assert fast.metric_name == "robustness.autoattack_fast_linf.acc@0.1"
    assert fast.robust_accuracy >= standard.robust_accuracy - 2 / len(
        y
    )  # fewer iterations: an upper bound, up to chance
    again = autoattack(digits_cnn, x, y, eps=0.1, version="fast", batch_size=64)
    assert torch.equal(again.breaker, fast.breaker)


def test_two_class_model_skips_apgd_t() -> None:
    model = LinearMargin([1.0, -2.0, 0.5, 0.5], b=-0.25)
    x = torch.tensor([[0.5, 0.5, 0.5, 0.5], [0.4, 0.45, 0.6, 0.5], [0.5, 0.3, 0.5, 0.5]])
    y = torch.tensor([0, 0, 1])  # margins -0.25, -0.2, 0.15: a sample flips iff |margin| < ||w||_1 * eps = 0.24
    r = autoattack(model, x, y, eps=0.06, version="fast")
    assert r.skipped == {"apgd-t": "the targeted DLR loss needs at least 4 classes; the model has 2"}
    assert r.robust.tolist() == [True, False, False] and r.counts == {"apgd-ce": 2}


def test_false_claims_are_not_counted() -> None:
    model = LinearMargin([1.0, -2.0, 0.5, 0.5], b=-0.25)
    x = torch.full((3, 4), 0.5)
    y = torch.zeros(3, dtype=torch.long)
    far = x.clone()
    far[1] += 0.5  # out of the ball
    far[2] = torch.tensor([1.0, 0.0, 1.0, 1.0])  # fools it, within eps 0.5
    ok = _verified(model, x, y, far, torch.ones(3, dtype=torch.bool), eps=0.2, norm="linf", value_range=(0.0, 1.0))
    assert ok.tolist() == [False, False, False]  # row 0 not misclassified; 1 and 2 beyond eps 0.2
    ok = _verified(model, x, y, far, torch.tensor([True, False, True]), eps=0.5, norm="linf", value_range=(0.0, 1.0))
    assert ok.tolist() == [False, False, True]


def test_model_left_as_found(digits_cnn: dlaudit.ModelBundle, batch, snapshot) -> None:
    module = digits_cnn.module
    before = snapshot(module)
    module.train()
    module[0].weight.requires_grad_(False)
    changed = snapshot(module)
    try:
        autoattack(digits_cnn, batch[0][:16], batch[1][:16], eps=0.1, version="fast")
        assert snapshot(module) == changed
    finally:
        module.train(before[0])
        for p, flag in zip(module.parameters(), before[1]):
            p.requires_grad_(flag)
    assert snapshot(module) == before


# -- the official code ------------------------------------------------------------------------------------


def test_finds_every_point_the_official_autoattack_finds(digits_cnn: dlaudit.ModelBundle, batch, standard) -> None:
    aa = pytest.importorskip("pyautoattack", reason="pyautoattack (the official AutoAttack code) is not installed")
    x, y = batch
    ran = [a for a in standard.attacks if a not in standard.skipped]
    if set(ran) == set(STANDARD_ATTACKS):
        official = aa.AutoAttack(digits_cnn.module, eps=0.1, norm="Linf", seed=0, version="standard")
    else:  # compare like with like: the official code with the same attacks and settings
        official = aa.AutoAttack(digits_cnn.module, eps=0.1, norm="Linf", seed=0, version="custom", attacks=ran)
        official.apgd.n_restarts = 1
        official.apgd_targeted.n_target_classes = 9
    official.logger.disabled = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, y_adv = official.run_standard_evaluation(x.clone(), y.clone(), batch_size=96)
    official_robust = y_adv == y
    missed = official_robust.logical_not() & standard.robust  # broken by the official code, not by us
    assert int(missed.sum()) <= 1
    assert abs(int(official_robust.sum()) - int(standard.robust.sum())) <= 1
    assert 0.2 < standard.robust_accuracy < 0.9  # informative


# -- invariants ---------------------------------------------------------------------------------------------


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    n=st.integers(1, 12),
    norm=st.sampled_from(["linf", "l2"]),
    eps=st.floats(0.0, 1.5),
    bs=st.integers(1, 12),
    train=st.booleans(),
)
def test_autoattack_invariants(seed: int, n: int, norm: str, eps: float, bs: int, train: bool) -> None:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 5)).double().train(train)
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 3, 4, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 5, (n,), generator=gen)
    r = autoattack(model, x, y, eps=eps, norm=norm, version="fast", seed=seed, batch_size=bs, return_adv=True)
    delta = (r.x_adv - x).flatten(1)
    size = delta.abs().amax(dim=1) if norm == "linf" else delta.norm(dim=1)
    assert float(size.max()) <= eps + 1e-6
    assert float(r.x_adv.min()) >= 0.0 and float(r.x_adv.max()) <= 1.0
    assert model.training == train and all(p.requires_grad and p.grad is None for p in model.parameters())
    model.eval()
    with torch.no_grad():
        assert torch.equal(r.robust, model(r.x_adv).argmax(dim=1) == y)
    whole = autoattack(model, x, y, eps=eps, norm=norm, version="fast", seed=seed, batch_size=n)
    assert torch.equal(whole.breaker, r.breaker)


# -- bad input ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"version": "plus"}, "unknown AutoAttack version 'plus'; choose from: standard, fast, rand"),
        ({"norm": "l1"}, "unknown norm 'l1' for AutoAttack; choose from: linf, l2"),
        ({"eps": -0.3}, "eps (the attack budget) must be a number >= 0, got -0.3"),
        ({"batch_size": 0}, "batch_size must be an integer of at least 1, got 0"),
    ],
)
def test_bad_parameters_are_clear_errors(kwargs: dict, message: str) -> None:
    model = LinearMargin([1.0, -2.0, 0.5, 0.5], b=-0.25)
    args = {"eps": 0.1, **kwargs}
    with pytest.raises(ConfigError) as err:
        autoattack(model, torch.full((2, 4), 0.5), torch.zeros(2, dtype=torch.long), **args)
    assert str(err.value) == message


def test_empty_input() -> None:
    model = LinearMargin([1.0, -2.0, 0.5, 0.5], b=-0.25)
    r = autoattack(model, torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), eps=0.1)
    assert r.n == 0 and r.robust.shape == (0,)
