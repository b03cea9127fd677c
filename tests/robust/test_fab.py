"""FAB and FAB-T: exact projections, exact answers on linear models, invariants, the official code, bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from robust_models import LinearMargin, tiny_mlp
from scipy.optimize import linprog
from torch import nn

import dlaudit
from dlaudit.errors import ConfigError, DataError
from dlaudit.robust.attacks.fab import _random_start, fab, fab_run, project_l2, project_linf

try:
    from pyautoattack.fab_projections import projection_l2 as official_l2
    from pyautoattack.fab_projections import projection_linf as official_linf
    from pyautoattack.fab_pt import FABAttack_PT
except ImportError:  # the official code is an optional peer
    FABAttack_PT = None

needs_official = pytest.mark.skipif(
    FABAttack_PT is None, reason="pyautoattack (the official AutoAttack code) is not installed"
)
W = [1.0, -2.0, 0.5, 0.5]


# -- the projections against brute force ------------------------------------------------------


def _brute_l2(t: np.ndarray, w: np.ndarray, b: float, lo: float, hi: float) -> np.ndarray | None:
    """Exact L2 projection onto {w.z = b} in the box by enumerating which coordinates sit on a face."""
    best = None
    for faces in itertools.product((None, lo, hi), repeat=len(t)):
        z = np.array([t[i] if f is None else f for i, f in enumerate(faces)])
        free = [i for i, f in enumerate(faces) if f is None]
        rest = b - w @ z
        wf = w[free]
        if wf @ wf > 0:
            z[free] += rest * wf / (wf @ wf)
        elif abs(rest) > 1e-12:
            continue
        if (z >= lo - 1e-12).all() and (z <= hi + 1e-12).all():
            d = z - t
            if best is None or d @ d < best @ best:
                best = d
    return best


def _lp_linf(t: np.ndarray, w: np.ndarray, b: float, lo: float, hi: float) -> float | None:
    """Smallest L-inf distance from t to {w.z = b} in the box, as a linear program."""
    n = len(t)
    eye, ones = np.eye(n), np.ones((n, 1))
    res = linprog(
        np.r_[np.zeros(n), 1.0],
        A_ub=np.block([[eye, -ones], [-eye, -ones]]), b_ub=np.zeros(2 * n),
        A_eq=np.r_[w, 0.0][None], b_eq=[b - w @ t],
        bounds=[(lo - ti, hi - ti) for ti in t] + [(0, None)], method="highs",
    )  # fmt: skip
    return float(res.x[-1]) if res.status == 0 else None


def _instances(seed: int, count: int) -> list[tuple[np.ndarray, np.ndarray, float, float, float]]:
    rng = np.random.default_rng(seed)
    out = []
    for k in range(count):
        n = int(rng.integers(1, 6))
        lo, hi = ((0.0, 1.0), (-1.0, 2.0), (0.2, 0.4))[k % 3]
        t = rng.uniform(lo, hi, n)
        if k % 4 == 0:
            t[0] = hi  # a coordinate on a face
        w = rng.normal(size=n)
        if k % 5 == 0:
            w[int(rng.integers(n))] = 0.0
        b = float(w @ rng.uniform(lo - 0.3 * (hi - lo), hi + 0.3 * (hi - lo), n))  # some hyperplanes miss the box
        out.append((t, w, b, lo, hi))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_projections_match_brute_force(seed: int) -> None:
    infeasible = 0
    for t, w, b, lo, hi in _instances(seed, 60):
        args = (torch.tensor(t)[None], torch.tensor(w)[None], torch.tensor([b], dtype=torch.float64), lo, hi)
        d2, dinf = project_l2(*args)[0].numpy(), project_linf(*args)[0].numpy()
        ref2, refinf = _brute_l2(t, w, b, lo, hi), _lp_linf(t, w, b, lo, hi)
        if ref2 is None:  # the hyperplane misses the box: both go to the corner closest to it
            assert refinf is None
            infeasible += 1
            towards = -np.sign(w) * np.sign(w @ t - b)
            corner = np.where(towards > 0, hi - t, lo - t) * (w != 0)
            np.testing.assert_allclose(d2, corner, atol=1e-12)
            np.testing.assert_allclose(dinf, corner, atol=1e-12)
            continue
        np.testing.assert_allclose(d2, ref2, atol=1e-9)  # the L2 projection is unique
        assert abs(np.abs(dinf).max(initial=0.0) - refinf) < 1e-8  # L-inf: the optimal norm (minimisers are not unique)
        z = t + dinf
        assert abs(w @ z - b) < 1e-9 and (z >= lo - 1e-12).all() and (z <= hi + 1e-12).all()
    assert 0 < infeasible < 60


def test_projection_by_hand() -> None:
    t = torch.tensor([[0.5, 0.5]])
    w = torch.tensor([[1.0, 1.0]])
    # w.z = 0.4: L2 moves both coordinates by -0.3; L-inf as well (its minimiser moves every coordinate by lam)
    torch.testing.assert_close(project_l2(t, w, torch.tensor([0.4])), torch.tensor([[-0.3, -0.3]]))
    torch.testing.assert_close(project_linf(t, w, torch.tensor([0.4])), torch.tensor([[-0.3, -0.3]]))
    # w = (1, 3), w.z = 2.5 from w.t = 2: the L2 step w * 0.5 / ||w||^2 = (0.05, 0.15) stays in the box
    w13 = torch.tensor([[1.0, 3.0]])
    torch.testing.assert_close(project_l2(t, w13, torch.tensor([2.5])), torch.tensor([[0.05, 0.15]]))
    # w.z = 3.9: the step (0.19, 0.57) leaves the box in z2; z2 stops at 1 (adds 1.5), z1 adds the other 0.4
    torch.testing.assert_close(project_l2(t, w13, torch.tensor([3.9])), torch.tensor([[0.4, 0.5]]))
    # L-inf: lam = 1.9 / 4 = 0.475 for both coordinates, inside the box
    torch.testing.assert_close(project_linf(t, w13, torch.tensor([3.9])), torch.tensor([[0.475, 0.475]]))
    # the hyperplane misses the box: the closest corner
    torch.testing.assert_close(project_linf(t, w, torch.tensor([5.0])), torch.tensor([[0.5, 0.5]]))
    # zero weights never move
    torch.testing.assert_close(
        project_linf(t, torch.tensor([[0.0, 2.0]]), torch.tensor([0.6])), torch.tensor([[0.0, -0.2]])
    )


@needs_official
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_projections_match_the_official_code(norm: str) -> None:
    gen = torch.Generator().manual_seed(0)
    t = torch.rand(300, 64, generator=gen, dtype=torch.float64)
    w = torch.randn(300, 64, generator=gen, dtype=torch.float64)
    w[:, :8] = 0.0
    b = (w * torch.rand(300, 64, generator=gen, dtype=torch.float64) * 1.3).sum(1)
    mine = (project_linf if norm == "linf" else project_l2)(t, w, b)
    official = (official_linf if norm == "linf" else official_l2)(t.clone(), w.clone(), b.clone())
    torch.testing.assert_close(mine, official, atol=1e-12, rtol=0)


# -- exact answers on linear models -------------------------------------------------------------


def _linear_case() -> tuple[LinearMargin, torch.Tensor, torch.Tensor, torch.Tensor]:
    model = LinearMargin(W, b=-0.25)
    x = torch.tensor([[0.9, 0.2, 0.6, 0.5], [0.2, 0.5, 0.1, 0.3], [0.1, 0.0, 0.95, 0.98]])  # the last one is near faces
    margin = x @ torch.tensor(W) - 0.25
    return model, x, (margin > 0).long(), margin.abs()


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_minimal_perturbation_is_the_distance_to_the_hyperplane(norm: str) -> None:
    model, x, y, margin = _linear_case()
    w = torch.tensor(W)
    distance = margin / (w.abs().sum() if norm == "linf" else w.norm())  # the dual norm of w
    # far box: no face binds. FAB approaches the boundary from outside (it overshoots by eta > 1 and backs off by beta)
    _, found = fab_run(model, x, y, 1 - y, x.clone(), eps=1.0, norm=norm, steps=100, alpha_max=0.1, eta=1.05, beta=0.9,
                       lo=-10.0, hi=10.0, early_stop=False)  # fmt: skip
    assert bool((found >= distance * (1 - 1e-6)).all()) and bool((found <= distance * 1.01).all())
    _, closer = fab_run(model, x, y, 1 - y, x.clone(), eps=1.0, norm=norm, steps=100, alpha_max=0.1, eta=1.001, beta=0.9,
                        lo=-10.0, hi=10.0, early_stop=False)  # fmt: skip
    torch.testing.assert_close(closer, distance, rtol=1e-3, atol=0)
    # through the public function: broken just above the distance, not just below
    for scale, expected in ((1.02, True), (0.99, False)):
        eps = float(distance[0]) * scale
        x_adv, ok = fab(model, x[:1], y[:1], eps=eps, norm=norm, value_range=(-10.0, 10.0))
        assert bool(ok[0]) is expected
        if expected:
            assert model(x_adv).argmax(1)[0] != y[0]
        else:
            assert torch.equal(x_adv, x[:1])


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_the_box_binds_on_a_linear_model(norm: str) -> None:
    # in [0, 1] the step along -w runs into faces; the true minimal distance is the box-constrained one
    model, x, y, _ = _linear_case()
    for i in range(len(x)):
        t, w = x[i].double().numpy(), np.array(W) * (1 if y[i] == 0 else -1)  # decision value must cross 0.25
        b = 0.25 * (1 if y[i] == 0 else -1)
        exact = _lp_linf(t, w, b, 0.0, 1.0) if norm == "linf" else float(np.linalg.norm(_brute_l2(t, w, b, 0.0, 1.0)))
        unboxed = abs(float(w @ t - b)) / (np.abs(w).sum() if norm == "linf" else np.linalg.norm(w))
        _, found = fab_run(model, x[i : i + 1], y[i : i + 1], 1 - y[i : i + 1], x[i : i + 1].clone(), eps=1.0, norm=norm,
                           steps=100, alpha_max=0.1, eta=1.05, beta=0.9, lo=0.0, hi=1.0, early_stop=False)  # fmt: skip
        assert exact * (1 - 1e-6) <= float(found[0]) <= exact * 1.01
        if i == 2:
            assert exact > unboxed * 1.01  # this sample's projection does hit a face


# -- invariants ---------------------------------------------------------------------------------


def _tied(logits: torch.Tensor) -> torch.Tensor:
    """Samples whose two top logits agree to float precision: their argmax may differ between batch sizes
    (matmul rounding), so the attack's prediction and a later one need not agree there."""
    top = logits.topk(2, dim=1).values
    return (top[:, 0] - top[:, 1]) <= 1e-5 * top[:, 0].abs().clamp_min(1.0)


def _mlp(seed: int, dropout: bool = False) -> nn.Module:
    return tiny_mlp(seed, 4, hidden=16, dropout=dropout)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    norm=st.sampled_from(["linf", "l2"]),
    targeted=st.booleans(),
    lo=st.sampled_from([0.0, -1.0]),
    width=st.sampled_from([1.0, 2.0]),
    eps_frac=st.floats(0.0, 1.0),
    restarts=st.integers(1, 2),
    n_targets=st.integers(1, 5),
    train_mode=st.booleans(),
    early_stop=st.booleans(),
)
def test_fab_invariants(seed: int, norm: str, targeted: bool, lo: float, width: float, eps_frac: float, restarts: int,
                        n_targets: int, train_mode: bool, early_stop: bool) -> None:  # fmt: skip
    gen = torch.Generator().manual_seed(seed)
    model = _mlp(seed, dropout=True).train(train_mode)
    model[1].weight.requires_grad_(False)
    flags = [p.requires_grad for p in model.parameters()]
    hi = lo + width
    x = lo + width * torch.rand(6, 1, 3, 4, generator=gen)
    y = torch.randint(0, 4, (6,), generator=gen)
    eps = eps_frac * width * (1.0 if norm == "linf" else 2.0)
    x_adv, ok = fab(model, x, y, eps=eps, norm=norm, targeted=targeted, n_target_classes=n_targets, steps=8,
                    restarts=restarts, value_range=(lo, hi), seed=seed, early_stop=early_stop)  # fmt: skip
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype and ok.dtype == torch.bool
    delta = (x_adv.double() - x.double()).flatten(1)
    size = delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)
    assert float(size.max()) <= eps + 1e-6
    assert float(x_adv.min()) >= lo and float(x_adv.max()) <= hi
    assert torch.equal(x_adv[~ok], x[~ok])  # not broken: the clean input
    # left as found: mode, flags, no parameter gradients
    assert model.training == train_mode and [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters()) and not x_adv.requires_grad
    with torch.no_grad():
        logits = model.eval()(x_adv)
    assert torch.equal(ok[~_tied(logits)], (logits.argmax(1) != y)[~_tied(logits)])


def test_same_seed_same_result_and_independent_of_the_batch_split() -> None:
    model = _mlp(3)
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(64, 1, 3, 4, generator=gen)
    y = model(x).argmax(1).detach()  # all clean-correct
    kwargs = {"eps": 0.15, "norm": "linf", "steps": 10, "restarts": 3, "n_target_classes": 3, "seed": 5}
    whole, ok = fab(model, x, y, **kwargs)
    again, ok_again = fab(model, x, y, **kwargs)
    assert torch.equal(whole, again) and torch.equal(ok, ok_again)
    assert 0 < int(ok.sum()) < 64  # some broken, some not: the split matters for which samples stay active
    parts = [
        fab(model, x[s : s + 5], y[s : s + 5], index=torch.arange(s, min(s + 5, 64)), **kwargs) for s in range(0, 64, 5)
    ]
    torch.testing.assert_close(torch.cat([p[0] for p in parts]), whole, rtol=0, atol=1e-6)
    assert torch.equal(torch.cat([p[1] for p in parts]), ok)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_random_restarts_start_at_half_eps_keyed_by_index_and_seed(norm: str) -> None:
    x0 = torch.full((6, 1, 3, 4), 0.5)
    index = torch.tensor([3, 9, 4, 100, 7, 8])
    start = _random_start(x0, index, 0.4, norm, 0.0, 1.0, seed=1, stream=7)
    step = (start - x0).flatten(1)
    size = step.abs().amax(1) if norm == "linf" else step.norm(dim=1)
    torch.testing.assert_close(size, torch.full((6,), 0.2))  # the official radius: eps / 2 (the box does not bind here)
    assert torch.equal(_random_start(x0[2:4], index[2:4], 0.4, norm, 0.0, 1.0, seed=1, stream=7), start[2:4])
    assert not torch.equal(_random_start(x0, index, 0.4, norm, 0.0, 1.0, seed=2, stream=7), start)
    assert not torch.equal(_random_start(x0, index, 0.4, norm, 0.0, 1.0, seed=1, stream=8), start)


def test_early_stop_breaks_the_same_samples() -> None:
    model = _mlp(4)
    x = torch.rand(40, 1, 3, 4, generator=torch.Generator().manual_seed(4))
    y = model(x).argmax(1).detach()
    for norm, eps in (("linf", 0.1), ("l2", 0.2)):
        _, fast = fab(model, x, y, eps=eps, norm=norm, steps=20)
        _, full = fab(model, x, y, eps=eps, norm=norm, steps=20, early_stop=False)
        assert torch.equal(fast, full)


def test_misclassified_inputs_are_successes_unchanged(digits_cnn: dlaudit.ModelBundle, digits_splits) -> None:
    x, y = digits_splits.test.x[:50], digits_splits.test.y[:50]
    wrong = (y + 1) % 10
    x_adv, ok = fab(digits_cnn.module, x, wrong, eps=0.0, steps=3)
    clean_right = digits_cnn.module(x).argmax(1) == wrong
    assert torch.equal(ok, ~clean_right)
    assert torch.equal(x_adv, x)


def test_two_classes_cap_the_target_classes() -> None:
    model, x, y, _ = _linear_case()
    _, ok = fab(model, x, y, eps=1.0, n_target_classes=9, value_range=(-10.0, 10.0))  # only one other class exists
    assert bool(ok.all())


# -- agreement with the official code ----------------------------------------------------------


@needs_official
@pytest.mark.parametrize(("norm", "eps"), [("linf", 0.1), ("l2", 0.5)])
def test_robust_accuracy_matches_official_fab_t(
    digits_cnn: dlaudit.ModelBundle, digits_splits, norm: str, eps: float
) -> None:
    model = digits_cnn.module.eval()
    x, y = digits_splits.test.x[:200], digits_splits.test.y[:200]
    _, ok = fab(model, x, y, eps=eps, norm=norm, steps=20)
    official = FABAttack_PT(model, norm="Linf" if norm == "linf" else "L2", n_restarts=1, n_iter=20, eps=eps, seed=0,
                            targeted=True, n_target_classes=9)  # fmt: skip
    x_off = official.perturb(x, y)
    dist = (x_off - x).flatten(1)
    dist = dist.abs().amax(1) if norm == "linf" else dist.norm(dim=1)
    with torch.no_grad():
        robust_official = ((model(x_off).argmax(1) == y) | (dist > eps)).float().mean().item()
    robust_mine = 1.0 - ok.float().mean().item()
    assert 0.2 < robust_official < 0.9  # a budget where the comparison means something
    assert abs(robust_mine - robust_official) <= 0.02


@needs_official
def test_untargeted_fab_matches_the_official_code(digits_cnn: dlaudit.ModelBundle, digits_splits) -> None:
    model = digits_cnn.module.eval()
    x, y = digits_splits.test.x[:100], digits_splits.test.y[:100]
    _, ok = fab(model, x, y, eps=0.1, targeted=False, steps=15)
    x_off = FABAttack_PT(model, norm="Linf", n_restarts=1, n_iter=15, eps=0.1, seed=0).perturb(x, y)
    with torch.no_grad():
        robust_official = (
            ((model(x_off).argmax(1) == y) | ((x_off - x).flatten(1).abs().amax(1) > 0.1)).float().mean().item()
        )
    assert abs((1.0 - ok.float().mean().item()) - robust_official) <= 0.02


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"eps": 0.1, "norm": "l1"}, "unknown norm 'l1' for FAB; choose from: linf, l2"),
        ({"eps": -0.1}, "eps (the attack budget) must be a finite number >= 0, got -0.1"),
        ({"eps": float("nan")}, "eps (the attack budget) must be a finite number >= 0, got nan"),
        ({"eps": 0.1, "steps": 0}, "steps must be an integer of at least 1, got 0"),
        ({"eps": 0.1, "restarts": 0}, "restarts must be an integer of at least 1, got 0"),
        ({"eps": 0.1, "n_target_classes": 0}, "n_target_classes must be an integer of at least 1, got 0"),
        ({"eps": 0.1, "alpha_max": 1.5}, "alpha_max must be a number in [0, 1], got 1.5"),
        ({"eps": 0.1, "eta": 0.9}, "eta must be a number of at least 1 (the overshoot past the boundary), got 0.9"),
        ({"eps": 0.1, "beta": 0.0}, "beta must be a number in (0, 1], got 0.0"),
        (
            {"eps": 0.1, "value_range": (1.0, 0.0)},
            "value_range must be (low, high), two finite numbers with low < high, got (1.0, 0.0)",
        ),
    ],
)
def test_bad_parameters_are_clear_errors(kwargs: dict, message: str) -> None:
    model, x, y, _ = _linear_case()
    with pytest.raises(ConfigError) as err:
        fab(model, x, y, **kwargs)
    assert str(err.value) == message


def test_bad_index_is_a_data_error() -> None:
    model, x, y, _ = _linear_case()
    with pytest.raises(DataError, match=r"one global index per input \(3\)"):
        fab(model, x, y, eps=0.1, index=torch.arange(2))
