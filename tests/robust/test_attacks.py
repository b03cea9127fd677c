"""FGSM and PGD: exact answers on a linear model, semantics, peers, and bad input."""

from __future__ import annotations

import pytest
import torch
from robust_models import DictOutput, FlatOutput, LinearMargin

import dlaudit
from dlaudit.errors import CardError, ConfigError, DataError
from dlaudit.robust import Attack, fgsm, pgd, run_attack
from dlaudit.robust.attacks import budget_problem

X = torch.tensor([[0.5, 0.5, 0.5, 0.5], [0.9, 0.1, 0.2, 0.0], [0.0, 1.0, 0.3, 0.7]])
Y = torch.tensor([1, 0, 1])


def test_fgsm_exact_on_linear_model(linear_model: LinearMargin) -> None:
    # logits [0, w.x + b], w = (1, -2, .5, .5): for label 1 the loss grows along -w, for label 0 along +w
    x_adv = fgsm(linear_model, X, Y, eps=0.1)
    expected = torch.tensor([[0.4, 0.6, 0.4, 0.4], [1.0, 0.0, 0.3, 0.1], [0.0, 1.0, 0.2, 0.6]])  # clipped to [0, 1]
    torch.testing.assert_close(x_adv, expected)


def test_fgsm_l2_steps_along_the_normalised_gradient(linear_model: LinearMargin) -> None:
    x = torch.full((1, 4), 0.5)
    x_adv = fgsm(linear_model, x, torch.tensor([1]), eps=0.5, norm="l2")
    w = torch.tensor([1.0, -2.0, 0.5, 0.5])
    torch.testing.assert_close(x_adv, x - 0.5 * w / w.norm())


def test_targeted_fgsm_moves_towards_the_target(linear_model: LinearMargin) -> None:
    x = torch.full((1, 4), 0.5)
    towards_1 = fgsm(linear_model, x, torch.tensor([1]), eps=0.1, targeted=True)
    torch.testing.assert_close(towards_1, torch.tensor([[0.6, 0.4, 0.6, 0.6]]))


def test_pgd_reaches_the_linear_boundary(linear_model: LinearMargin) -> None:
    # sample 0 has margin w.x + b = 0.25 - 0.25 = 0; give it margin 0.3 by hand: x = .5 + .1*sign(w)... simpler: check
    # that PGD fools every sample whose L-inf distance to the boundary (|margin| / ||w||_1 = |m| / 4) is below eps
    x = torch.rand(64, 4, generator=torch.Generator().manual_seed(1)) * 0.5 + 0.25
    margin = linear_model(x)[:, 1]
    y = (margin > 0).long()
    dist = margin.abs() / 4.0
    out = run_attack(linear_model, x, y, Attack.pgd(0.1, steps=20), seed=0, batch_size=16)
    assert bool(out.success[dist < 0.095].all())
    assert not bool(out.success[dist > 0.105].any())
    assert float((out.x_adv - x).abs().max()) <= 0.1 + 1e-6


def test_pgd_l2_projection_and_range(linear_model: LinearMargin) -> None:
    x = torch.rand(32, 4, generator=torch.Generator().manual_seed(2))
    y = (linear_model(x)[:, 1] > 0).long()
    x_adv = pgd(linear_model, x, y, eps=0.3, norm="l2", steps=10, early_stop=False)
    assert float((x_adv - x).flatten(1).norm(dim=1).max()) <= 0.3 + 1e-6
    assert float(x_adv.min()) >= 0 and float(x_adv.max()) <= 1


def test_eps_zero_changes_nothing(linear_model: LinearMargin) -> None:
    assert torch.equal(pgd(linear_model, X, Y, eps=0.0, steps=3), X)
    assert torch.equal(fgsm(linear_model, X, Y, eps=0.0), X)


def test_same_seed_same_numbers_and_batch_size_does_not_matter(digits_cnn: dlaudit.ModelBundle, digits_splits) -> None:
    x, y = digits_splits.test.x[:96], digits_splits.test.y[:96]
    a = pgd(digits_cnn, x, y, eps=0.1, steps=5, seed=3, batch_size=96, early_stop=False)
    b = pgd(digits_cnn, x, y, eps=0.1, steps=5, seed=3, batch_size=17, early_stop=False)
    c = pgd(digits_cnn, x, y, eps=0.1, steps=5, seed=4, batch_size=96, early_stop=False)
    torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    assert not torch.equal(a, c)


def test_restarts_and_early_stop_never_weaken_the_attack(digits_cnn: dlaudit.ModelBundle, digits_splits) -> None:
    x, y = digits_splits.test.x[:200], digits_splits.test.y[:200]
    one = run_attack(digits_cnn, x, y, Attack.pgd(0.08, steps=10), seed=0, batch_size=64)
    three = run_attack(digits_cnn, x, y, Attack.pgd(0.08, steps=10, restarts=3), seed=0, batch_size=64)
    plain = run_attack(digits_cnn, x, y, Attack.pgd(0.08, steps=10, early_stop=False), seed=0, batch_size=64)
    assert bool((three.success >= one.success).all())  # the first restart is the same run
    assert int(one.success.sum()) >= int(plain.success.sum()) - 1
    # the prediction reported is the model's prediction on the adversarial input returned
    torch.testing.assert_close(digits_cnn.predict(three.x_adv), three.pred)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_same_iterates_as_torchattacks_without_random_start(
    digits_cnn: dlaudit.ModelBundle, digits_splits, norm: str
) -> None:
    torchattacks = pytest.importorskip("torchattacks")
    x, y = digits_splits.test.x[:100], digits_splits.test.y[:100]
    eps, steps = (0.1, 10) if norm == "linf" else (1.0, 10)
    ours = pgd(digits_cnn, x, y, eps=eps, steps=steps, norm=norm, random_start=False, early_stop=False)
    cls = torchattacks.PGD if norm == "linf" else torchattacks.PGDL2
    theirs = cls(digits_cnn.module, eps=eps, alpha=2.5 * eps / steps, steps=steps, random_start=False)(x, y)
    if norm == "linf":
        torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)
    else:  # float rounding differs (their mean loss and 1e-10 added to norms, our summed loss): a pixel can land on the other side of a clip
        diff = (ours - theirs).abs()
        assert float((diff > 1e-3).float().mean()) <= 0.002 and float(diff.max()) < 0.02
    if norm == "linf":
        torch.testing.assert_close(fgsm(digits_cnn, x, y, eps=eps), torchattacks.FGSM(digits_cnn.module, eps=eps)(x, y))


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_robust_accuracy_close_to_torchattacks(digits_cnn: dlaudit.ModelBundle, digits_splits, norm: str) -> None:
    torchattacks = pytest.importorskip("torchattacks")
    x, y = digits_splits.test.x[:200], digits_splits.test.y[:200]
    eps, steps = (0.1, 20) if norm == "linf" else (1.0, 20)
    ours = (digits_cnn.predict(pgd(digits_cnn, x, y, eps=eps, steps=steps, norm=norm, seed=0)) == y).float().mean()
    cls = torchattacks.PGD if norm == "linf" else torchattacks.PGDL2
    torch.manual_seed(0)
    theirs = (
        (digits_cnn.predict(cls(digits_cnn.module, eps=eps, alpha=2.5 * eps / steps, steps=steps)(x, y)) == y)
        .float()
        .mean()
    )
    # random starts differ, and on the steep part of a curve one draw moves accuracy by a point or two
    assert abs(float(ours) - float(theirs)) <= 0.02


def test_model_left_as_found(digits_cnn: dlaudit.ModelBundle, digits_splits, snapshot) -> None:
    module = digits_cnn.module
    module.train()
    list(module.parameters())[0].requires_grad_(False)
    before = snapshot(module)
    try:
        pgd(digits_cnn, digits_splits.test.x[:20], digits_splits.test.y[:20], eps=0.1, steps=2)
        assert snapshot(module) == before
    finally:
        module.eval()
        list(module.parameters())[0].requires_grad_(True)


# -- bad input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"eps": -0.1}, "eps (the attack budget) must be a number >= 0, got -0.1"),
        ({"eps": 0.1, "alpha": 0.0}, "alpha (the step size) must be a positive number, got 0.0"),
        ({"eps": 0.1, "alpha": -1.0}, "alpha (the step size) must be a positive number, got -1.0"),
        ({"eps": 0.1, "steps": 0}, "steps must be an integer of at least 1, got 0"),
        ({"eps": 0.1, "restarts": 0}, "restarts must be an integer of at least 1, got 0"),
        ({"eps": 0.1, "norm": "l1"}, "unknown norm 'l1'; choose from: linf, l2"),
    ],
)
def test_bad_parameters_are_clear_errors(linear_model: LinearMargin, kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        pgd(linear_model, X, Y, **kwargs)
    assert str(err.value) == message


def test_fgsm_rejects_negative_eps(linear_model: LinearMargin) -> None:
    with pytest.raises(ConfigError, match="must be a number >= 0"):
        fgsm(linear_model, X, Y, eps=-1)


def test_inputs_outside_the_value_range_name_the_range(linear_model: LinearMargin) -> None:
    with pytest.raises(DataError, match=r"outside the value range \[0, 1\]"):
        pgd(linear_model, X * 255, Y, eps=0.1)
    with pytest.raises(DataError, match=r"outside the value range \[-1, 1\]"):
        pgd(linear_model, X - 3, Y, eps=0.1, value_range=(-1.0, 1.0))


def test_bundle_value_range_is_used(digits_cnn: dlaudit.ModelBundle, digits_splits) -> None:
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        pgd(digits_cnn, digits_splits.test.x[:4] * 16, digits_splits.test.y[:4], eps=0.1)


@pytest.mark.parametrize(
    ("model", "words"),
    [(FlatOutput(), "for 2 input(s) the model returned a tensor of shape (2,)"), (DictOutput(), "returned a dict")],
)
def test_output_must_be_logits(model: torch.nn.Module, words: str) -> None:
    with pytest.raises(CardError) as err:
        pgd(model, X, Y, eps=0.1)
    assert words in str(err.value)
    assert "(N, classes)" in str(err.value)


def test_labels_beyond_the_classes(linear_model: LinearMargin) -> None:
    with pytest.raises(DataError, match="only 2 classes"):
        pgd(linear_model, X, torch.tensor([0, 1, 2]), eps=0.1)


def test_budget_beyond_the_value_range_is_flagged() -> None:
    assert budget_problem(0.3, "linf", (0.0, 1.0), (1, 8, 8)) is None
    assert "whole value range" in budget_problem(1.0, "linf", (0.0, 1.0), (1, 8, 8))
    assert budget_problem(7.9, "l2", (0.0, 1.0), (1, 8, 8)) is None
    assert "diameter" in budget_problem(8.0, "l2", (0.0, 1.0), (1, 8, 8))


def test_empty_input(linear_model: LinearMargin) -> None:
    x_adv = pgd(linear_model, torch.empty(0, 4), torch.empty(0, dtype=torch.long), eps=0.1)
    assert x_adv.shape == (0, 4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda(digits_cnn: dlaudit.ModelBundle, digits_splits) -> None:
    x, y = digits_splits.test.x[:64], digits_splits.test.y[:64]
    x_adv = pgd(digits_cnn, x, y, eps=0.1, steps=5, device="cuda")
    assert x_adv.device == x.device
    assert float((x_adv - x).abs().max()) <= 0.1 + 1e-6
    assert digits_cnn.device.type == "cpu" and next(digits_cnn.module.parameters()).device.type == "cpu"
