"""APGD: exact answers on hand-checkable models, the official code's iterates, invariants, bad input."""

from __future__ import annotations

import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from robust_models import LinearMargin, assert_attack_invariants, property_case

import dlaudit
from dlaudit.errors import ConfigError, DataError
from dlaudit.robust import _random
from dlaudit.robust.attacks.apgd import (
    _Settings,
    _start,
    _stream,
    _top_targets,
    apgd,
    checkpoint_windows,
    dlr_loss,
    targeted_dlr_loss,
)

W = torch.tensor([1.0, -2.0, 0.5, 0.5])
X = torch.tensor([[0.5, 0.5, 0.5, 0.5], [0.4, 0.45, 0.6, 0.5], [0.55, 0.5, 0.3, 0.6], [0.5, 0.3, 0.5, 0.5]])


def _margins(x: torch.Tensor) -> torch.Tensor:
    return x @ W - 0.25  # LinearMargin([1, -2, .5, .5], b=-.25): logit of class 1 minus that of class 0


# -- the schedule and the losses ----------------------------------------------------------------


def test_checkpoints_follow_the_papers_recurrence() -> None:
    windows = checkpoint_windows(100)
    assert windows == [22, 19, 16, 13, 10, 7, 6, 6]
    p = [0.0, 0.22]  # p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)
    while p[-1] + max(p[-1] - p[-2] - 0.03, 0.06) <= 1.0:
        p.append(p[-1] + max(p[-1] - p[-2] - 0.03, 0.06))
    assert [sum(windows[: j + 1]) for j in range(len(windows))] == [round(100 * q) for q in p[1:]]
    assert (
        checkpoint_windows(25) == [5, 4, 3, 2] + [1] * 11
    )  # the fast version: a checkpoint every iteration after the 14th
    assert checkpoint_windows(1) == [1]


def test_dlr_loss_on_hand_made_logits() -> None:
    z = torch.tensor([[3.0, 1.0, 0.0, -1.0], [3.0, 1.0, 0.0, -1.0], [2.0, 2.0, 0.0, 0.0]])
    y = torch.tensor([0, 2, 1])
    # -(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3): -(3 - 1)/3, -(0 - 3)/3, -(2 - 2)/2
    torch.testing.assert_close(dlr_loss(z, y), torch.tensor([-2 / 3, 1.0, 0.0]))
    # shifting and scaling the logits changes nothing
    torch.testing.assert_close(dlr_loss(5 * z - 7, y), dlr_loss(z, y))
    # targeted: -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2)
    t = torch.tensor([3, 0, 0])
    torch.testing.assert_close(targeted_dlr_loss(z, y, t), torch.tensor([-4 / 3.5, 3 / 3.5, -0.0 / 2.0]))


def test_targets_are_the_top_wrong_classes() -> None:
    z = torch.tensor([[0.1, 5.0, 3.0, 4.0, -1.0], [0.1, 5.0, 3.0, 4.0, -1.0]])
    y = torch.tensor([1, 2])  # the second is misclassified: its label is not excluded from the top by accident
    assert _top_targets(z, y, 3).tolist() == [[3, 2, 0], [1, 3, 0]]
    assert _top_targets(z, y, 4).tolist() == [[3, 2, 0, 4], [1, 3, 0, 4]]


# -- exact answers on a linear model --------------------------------------------------------------


@pytest.mark.parametrize("eps", [0.01, 0.03])
def test_linf_reaches_the_analytic_worst_margin(eps: float) -> None:
    # for a linear model the worst L-inf point is x - eps * sign(w) * (label sign): the margin moves by eps * ||w||_1
    model = LinearMargin(W.tolist(), b=-0.25)
    y = (_margins(X) > 0).long()
    x_adv, ok = apgd(model, X, y, eps=eps)
    assert not ok.any()
    torch.testing.assert_close(_margins(x_adv).abs(), _margins(X).abs() - eps * W.abs().sum(), atol=1e-6, rtol=0)


def test_l2_reaches_the_analytic_worst_margin() -> None:
    model = LinearMargin(W.tolist(), b=-0.25)
    y = (_margins(X) > 0).long()
    x_adv, ok = apgd(model, X, y, eps=0.05, norm="l2")
    assert not ok.any()
    torch.testing.assert_close(_margins(x_adv).abs(), _margins(X).abs() - 0.05 * W.norm(), atol=1e-5, rtol=0)


def test_fools_exactly_the_samples_within_reach() -> None:
    model = LinearMargin(W.tolist(), b=-0.25)
    y = (_margins(X) > 0).long()
    eps = 0.06  # flips a sample iff |margin| < 4 * eps = 0.24
    x_adv, ok = apgd(model, X, y, eps=eps)
    assert ok.tolist() == (_margins(X).abs() < 4 * eps).tolist() == [False, True, False, True]
    assert ((_margins(x_adv) > 0).long() != y).tolist() == ok.tolist()
    assert float((x_adv - X).abs().max()) <= eps + 1e-7


def test_clean_misclassified_and_eps_zero() -> None:
    model = LinearMargin(W.tolist(), b=-0.25)
    y = (_margins(X) > 0).long()
    y[0] = 1 - y[0]  # wrong already
    x_adv, ok = apgd(model, X, y, eps=0.01)
    assert ok.tolist() == [True, False, False, False]
    assert torch.equal(x_adv[0], X[0])
    x0, ok0 = apgd(model, X, y, eps=0.0)
    assert torch.equal(x0, X) and ok0.tolist() == [True, False, False, False]


def test_dlr_needs_three_classes() -> None:
    model = LinearMargin(W.tolist(), b=-0.25)
    with pytest.raises(ConfigError, match="needs at least 3 classes, but the model has 2; use loss='ce'"):
        apgd(model, X, torch.zeros(4, dtype=torch.long), eps=0.1, loss="dlr")


# -- the random start ---------------------------------------------------------------------------


def test_draws_at_indices_are_the_rows_of_the_contiguous_stream() -> None:
    index = torch.tensor([130, 3, 64, 63, 3, 200])
    whole_u = _random.uniform((2, 3), 0, 201, seed=5, stream=7)
    whole_n = _random.normal((2, 3), 0, 201, seed=5, stream=7)
    assert torch.equal(_random.uniform_at((2, 3), index, seed=5, stream=7), whole_u[index])
    assert torch.equal(_random.normal_at((2, 3), index, seed=5, stream=7), whole_n[index])
    assert _random.uniform_at((2,), torch.tensor([], dtype=torch.long), seed=0).shape == (0, 2)
    with pytest.raises(ValueError, match="integer"):
        _random.uniform_at((2,), torch.tensor([0.5]), seed=0)


def test_start_is_the_official_one_per_sample() -> None:
    x = torch.full((3, 1, 4, 4), 0.5)
    s = _Settings(0.1, "linf", 10, 0.75, 0.75, 0.0, 1.0, True)
    x0 = _start(x, s, torch.tensor([4, 9, 70]), 1, _stream(0, 0))
    assert torch.allclose((x0 - x).flatten(1).abs().amax(dim=1), torch.full((3,), 0.1))  # on the boundary of the ball
    assert torch.equal(_start(x[1:2], s, torch.tensor([9]), 1, _stream(0, 0)), x0[1:2])
    s2 = _Settings(0.5, "l2", 10, 0.75, 0.75, 0.0, 1.0, True)
    x2 = _start(x, s2, torch.arange(3), 1, _stream(0, 0))
    assert torch.allclose((x2 - x).flatten(1).norm(dim=1), torch.full((3,), 0.5), atol=1e-6)
    assert len({_stream(r, k) for r in range(20) for k in range(20)}) == 400


# -- on a trained model: the official code, batches, seeds ------------------------------------------


def _clean_correct(bundle: dlaudit.ModelBundle, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        keep = bundle.module(x).argmax(dim=1) == y
    return x[keep], y[keep]


@pytest.mark.parametrize(
    ("norm", "eps", "loss", "targeted"),
    [("linf", 0.1, "ce", False), ("linf", 0.1, "dlr", True), ("l2", 0.5, "dlr", False), ("l2", 0.5, "ce", False)],
)
def test_same_iterates_as_the_official_code_from_the_same_start(
    digits_cnn: dlaudit.ModelBundle, digits_splits, norm: str, eps: float, loss: str, targeted: bool
) -> None:
    apgd_base = pytest.importorskip(
        "pyautoattack.autopgd_base", reason="pyautoattack (the official AutoAttack code) is not installed"
    )
    x, y = _clean_correct(digits_cnn, digits_splits.test.x[:80], digits_splits.test.y[:80])
    model = digits_cnn.module
    x_adv, ok = apgd(
        model, x, y, eps=eps, norm=norm, loss=loss, targeted=targeted, n_target_classes=1, early_stop=False
    )
    s = _Settings(eps, norm, 100, 0.75, 0.75, 0.0, 1.0, False)
    x0 = _start(x, s, torch.arange(len(x)), 0, _stream(1 if targeted else 0, 0))
    official_norm = "Linf" if norm == "linf" else "L2"
    if targeted:
        attack = apgd_base.APGDAttack_targeted(model, n_iter=100, norm=official_norm, eps=eps, device="cpu")
        with torch.no_grad():
            attack.y_target = model(x).sort(dim=1)[1][:, -2]
    else:
        attack = apgd_base.APGDAttack(model, n_iter=100, norm=official_norm, eps=eps, loss=loss, device="cpu")
    attack.init_hyperparam(x)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its zero-gradient check warns on a saturated sample or two
        x_best, still_correct, _, _ = attack.attack_single_run(x, y, x_init=x0)
    assert torch.equal(ok, ~still_correct)
    assert 0 < int(ok.sum()) < len(ok)
    assert torch.equal(x_adv[~ok], x_best[~ok])  # bit for bit: the highest-loss point of the same trajectory


def test_robust_accuracy_close_to_the_official_apgd_ce(digits_cnn: dlaudit.ModelBundle, digits_splits) -> None:
    apgd_base = pytest.importorskip(
        "pyautoattack.autopgd_base", reason="pyautoattack (the official AutoAttack code) is not installed"
    )
    x, y = digits_splits.test.x[:300], digits_splits.test.y[:300]
    model = digits_cnn.module
    _, ok = apgd(model, x, y, eps=0.1)
    official = apgd_base.APGDAttack(model, n_iter=100, norm="Linf", eps=0.1, loss="ce", seed=0, device="cpu")
    with torch.no_grad():
        adv = official.perturb(x.clone(), y.clone())
        official_acc = float((model(adv).argmax(dim=1) == y).float().mean())
    ours = 1 - float(ok.float().mean())
    assert 0.2 < ours < 0.9  # informative: neither everything nor nothing is broken
    assert abs(ours - official_acc) <= 0.02


@pytest.mark.parametrize(("loss", "targeted"), [("ce", False), ("dlr", True)])
def test_same_result_for_any_batch_size_and_seed_matters(
    digits_cnn: dlaudit.ModelBundle, digits_splits, loss: str, targeted: bool
) -> None:
    x, y = digits_splits.test.x[:64], digits_splits.test.y[:64]
    model = digits_cnn.module
    whole, ok = apgd(model, x, y, eps=0.1, loss=loss, targeted=targeted, n_target_classes=2, steps=20)
    parts = [
        apgd(
            model,
            x[s : s + 7],
            y[s : s + 7],
            eps=0.1,
            loss=loss,
            targeted=targeted,
            n_target_classes=2,
            steps=20,
            index=torch.arange(s, min(s + 7, 64)),
        )
        for s in range(0, 64, 7)
    ]
    assert torch.equal(torch.cat([p[1] for p in parts]), ok)
    # the random starts are the same; the CNN's own logits differ by ~1e-6 between batch sizes (the conv and
    # matmul kernels block differently), which can move a sample's highest-loss point, never whether it is fooled
    moved = (torch.cat([p[0] for p in parts]) != whole).flatten(1).any(dim=1)
    assert int(moved.sum()) <= 2 and not (moved & ok).any()
    again, ok_again = apgd(model, x, y, eps=0.1, loss=loss, targeted=targeted, n_target_classes=2, steps=20)
    assert torch.equal(again, whole) and torch.equal(ok_again, ok)
    other, _ = apgd(model, x, y, eps=0.1, loss=loss, targeted=targeted, n_target_classes=2, steps=20, seed=1)
    assert not torch.equal(other, whole)


def test_early_exit_never_weakens(digits_cnn: dlaudit.ModelBundle, digits_splits) -> None:
    x, y = digits_splits.test.x[:100], digits_splits.test.y[:100]
    model = digits_cnn.module
    _, fast = apgd(model, x, y, eps=0.1, steps=30)
    _, full = apgd(model, x, y, eps=0.1, steps=30, early_stop=False)
    assert torch.equal(fast, full)  # per-sample trajectories: the same samples are fooled either way


def test_explicit_targets_count_only_the_target(digits_cnn: dlaudit.ModelBundle, digits_splits) -> None:
    x, y = _clean_correct(digits_cnn, digits_splits.test.x[:40], digits_splits.test.y[:40])
    t = (y + 1) % 10
    x_adv, reached = apgd(digits_cnn.module, x, y, eps=0.3, loss="dlr", targeted=True, targets=t, steps=30)
    with torch.no_grad():
        pred = digits_cnn.module(x_adv).argmax(dim=1)
    assert reached.any()
    assert torch.equal(reached, pred == t)


# -- invariants ---------------------------------------------------------------------------------------


@st.composite
def cases(draw: st.DrawFn) -> dict:
    norm = draw(st.sampled_from(["linf", "l2"]))
    lo = draw(st.sampled_from([0.0, -1.0]))
    hi = lo + draw(st.sampled_from([1.0, 2.0]))
    return {
        "seed": draw(st.integers(0, 2**16)),
        "n": draw(st.integers(1, 9)),
        "lo": lo,
        "hi": hi,
        "norm": norm,
        "eps": draw(st.floats(0.0, (1.2 if norm == "linf" else 3.0) * (hi - lo), allow_nan=False)),
        "loss": draw(st.sampled_from(["ce", "dlr"])),
        "targeted": draw(st.booleans()),
        "n_target_classes": draw(st.integers(1, 6)),
        "steps": draw(st.integers(1, 6)),
        "restarts": draw(st.integers(1, 2)),
        "early_stop": draw(st.booleans()),
        "train_mode": draw(st.booleans()),
        "frozen": draw(st.booleans()),
        "dropout": draw(st.booleans()),
        "split": draw(st.integers(1, 9)),
    }


@settings(max_examples=40, deadline=None)
@given(cases())
def test_apgd_invariants(case: dict) -> None:
    # float64: batch-size rounding in matmul stays far below any decision
    model, flags, x, y = property_case(case, 5, torch.float64)
    lo, hi = case["lo"], case["hi"]
    kwargs = {
        k: case[k] for k in ("eps", "norm", "loss", "targeted", "n_target_classes", "steps", "restarts", "early_stop")
    }
    kwargs.update(value_range=(lo, hi), seed=case["seed"])
    x_adv, ok = apgd(model, x, y, **kwargs)
    assert ok.shape == (case["n"],)
    assert_attack_invariants(model, x, x_adv, case, flags)
    # success means misclassified at the returned input (eval mode)
    model.eval()
    with torch.no_grad():
        assert torch.equal(ok, model(x_adv).argmax(dim=1) != y)
    # the same in any split of the batch, and with the same seed
    k = case["split"]
    parts = [
        apgd(model, x[s : s + k], y[s : s + k], index=torch.arange(s, min(s + k, case["n"])), **kwargs)
        for s in range(0, case["n"], k)
    ]
    assert torch.equal(torch.cat([p[1] for p in parts]), ok)
    torch.testing.assert_close(
        torch.cat([p[0] for p in parts]), x_adv, atol=1e-12, rtol=0
    )  # matmul rounds by batch size
    again, ok_again = apgd(model, x, y, **kwargs)
    assert torch.equal(again, x_adv) and torch.equal(ok_again, ok)


# -- bad input ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"loss": "hinge"}, "unknown loss 'hinge' for APGD; choose from: ce, dlr"),
        ({"norm": "l1"}, "unknown norm 'l1' for APGD; choose from: linf, l2"),
        ({"steps": 0}, "steps must be an integer of at least 1, got 0"),
        ({"restarts": 0}, "restarts must be an integer of at least 1, got 0"),
        ({"n_target_classes": 0}, "n_target_classes must be an integer of at least 1, got 0"),
        ({"eps": -0.1}, "eps (the attack budget) must be a number >= 0, got -0.1"),
        (
            {"rho": 1.5},
            "rho (the share of rising-loss iterations at or below which the step is halved) must be a number in [0, 1], got 1.5",
        ),
        (
            {"momentum": -1},
            "momentum (the weight of the new step against the last one) must be a number in [0, 1], got -1",
        ),
        ({"value_range": (1.0, 0.0)}, "value_range must be (low, high) with low < high, got (1.0, 0.0)"),
        (
            {"targets": torch.zeros(4, dtype=torch.long)},
            "targets were given but targeted=False; pass targeted=True to attack towards them",
        ),
    ],
)
def test_bad_parameters_are_clear_errors(kwargs: dict, message: str) -> None:
    model = LinearMargin(W.tolist(), b=-0.25)
    args = {"eps": 0.1, **kwargs}
    with pytest.raises(ConfigError) as err:
        apgd(model, X, torch.zeros(4, dtype=torch.long), **args)
    assert str(err.value) == message


def test_bad_index_and_inputs() -> None:
    model = LinearMargin(W.tolist(), b=-0.25)
    y = torch.zeros(4, dtype=torch.long)
    with pytest.raises(DataError, match="one global sample index per input"):
        apgd(model, X, y, eps=0.1, index=torch.arange(3))
    with pytest.raises(DataError, match="negative"):
        apgd(model, X, y, eps=0.1, index=torch.tensor([0, 1, 2, -3]))
    with pytest.raises(DataError, match="outside the value range"):
        apgd(model, X + 2.0, y, eps=0.1)


def test_empty_batch() -> None:
    model = LinearMargin(W.tolist(), b=-0.25)
    x_adv, ok = apgd(model, X[:0], torch.zeros(0, dtype=torch.long), eps=0.1)
    assert x_adv.shape == (0, 4) and ok.shape == (0,)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_runs_on_cuda(digits_cnn: dlaudit.ModelBundle, digits_splits) -> None:
    x, y = digits_splits.test.x[:64], digits_splits.test.y[:64]
    model = digits_cnn.module
    _cpu_adv, cpu_ok = apgd(model, x, y, eps=0.1, steps=20)
    model.cuda()
    try:
        adv, ok = apgd(model, x.cuda(), y.cuda(), eps=0.1, steps=20)
    finally:
        model.cpu()
    assert adv.device.type == "cuda" and ok.device.type == "cuda"
    assert abs(int(ok.sum()) - int(cpu_ok.sum())) <= 2  # kernels round differently; the random starts are the same
