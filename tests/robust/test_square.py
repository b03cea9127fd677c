"""Square Attack: its schedule and patterns, invariants, query accounting, the official code, bad input."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from robust_models import LinearMargin
from torch import nn

import dlaudit
from dlaudit.errors import ConfigError, DataError
from dlaudit.robust.attacks.square import _init_l2, margin, p_schedule, square, window_pattern

try:
    from pyautoattack.square import SquareAttack
except ImportError:  # the official code is an optional peer
    SquareAttack = None

needs_official = pytest.mark.skipif(
    SquareAttack is None, reason="pyautoattack (the official AutoAttack code) is not installed"
)


class Counting(nn.Module):
    """Wraps a model; records the batch size of every call and whether it ran under inference mode."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.calls: list[tuple[int, bool]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append((len(x), torch.is_inference_mode_enabled()))
        return self.inner(x)


class Quantised(nn.Module):
    """Logits ``[0, w . round(64 x) / 64 + b]``: piecewise constant in x, so its gradient is zero (masked)."""

    def __init__(self, w: list[float], b: float = -0.6) -> None:
        super().__init__()
        self.register_buffer("w", torch.tensor(w))
        self.b = b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = torch.round(x.flatten(1) * 64) / 64 @ self.w + self.b
        return torch.stack([torch.zeros_like(z), z], dim=1)


class Stubborn(nn.Module):
    """Always predicts class 0 by a wide margin, whatever the input: nothing can fool it."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.lin(x.flatten(1)) * 0.0
        return z + torch.tensor([100.0, 0.0, 0.0])


# -- pieces --------------------------------------------------------------------------------------


def test_margin_by_hand() -> None:
    logits = torch.tensor([[2.0, 1.0, 0.5], [0.0, 3.0, 3.0], [1.0, 4.0, 2.0]])
    torch.testing.assert_close(margin(logits, torch.tensor([0, 1, 0])), torch.tensor([1.0, 0.0, -3.0]))


def test_schedule_halves_p_at_the_papers_points() -> None:
    # 10,000 queries: the paper's iterations
    assert [p_schedule(i, 10_000, 0.8) for i in (0, 10, 11, 50, 51, 200, 201, 8000, 8001, 9999)] == [
        0.8, 0.8, 0.4, 0.4, 0.2, 0.2, 0.1, 0.8 / 256, 0.8 / 512, 0.8 / 512,
    ]  # fmt: skip
    # rescaled to 1,000 queries: iteration i counts as i * 10
    assert p_schedule(2, 1000, 0.8) == 0.4 and p_schedule(1, 1000, 0.8) == 0.8


@needs_official
def test_schedule_and_pattern_match_the_official_code() -> None:
    official = SquareAttack(None, norm="L2", eps=1.0)
    official.device = torch.device("cpu")
    for queries in (5000, 100, 37):
        official.n_queries = queries
        assert all(official.p_selection(i) == p_schedule(i, queries, 0.8) for i in range(queries))
    for s in range(1, 16):
        eta = official.eta(s)  # randomly transposed
        mine = window_pattern(s)
        assert min(float((eta - mine).abs().max()), float((eta - mine.T).abs().max())) < 1e-6


def test_window_pattern_shape_and_norm() -> None:
    p = window_pattern(5, dtype=torch.float64)
    assert p.shape == (5, 5)
    torch.testing.assert_close(p.norm(), torch.tensor(1.0, dtype=torch.float64))
    assert bool((p[:2] > 0).all()) and bool((p[2:] < 0).all())  # positive above, negative below
    torch.testing.assert_close(p[:, :2], p[:, 3:].flip(1))  # symmetric left-right


@needs_official
@pytest.mark.parametrize("h", [8, 28, 32])
def test_l2_start_has_the_official_layout(h: int) -> None:
    x = torch.full((3, 1, h, h), 0.5)
    mine = _init_l2(x, torch.arange(3), 0.1, -10.0, 10.0, 0, 0) - x
    official = SquareAttack(None, norm="L2", eps=0.1)
    official.init_hyperparam(x)
    s, start = h // 5, (h - 5 * (h // 5)) // 2
    ref = torch.zeros_like(x)
    for bi in range(h // s):
        for bj in range(h // s):
            r, c = start + bi * s, start + bj * s
            ref[:, :, r : r + s, c : c + s] += official.eta(s).view(1, 1, s, s) * official.random_choice([3, 1, 1, 1])
    ref = official.normalize(ref) * 0.1
    # signs and orientations are random; the magnitudes and where they sit are the official ones
    assert torch.equal(mine != 0, ref != 0)
    torch.testing.assert_close(mine.abs().flatten(1).sort(1).values, ref.abs().flatten(1).sort(1).values)
    torch.testing.assert_close(mine.flatten(1).norm(dim=1), torch.full((3,), 0.1))


# -- behaviour -----------------------------------------------------------------------------------


def _quantised_case() -> tuple[Quantised, torch.Tensor, torch.Tensor, torch.Tensor]:
    model = Quantised([1.0, -2.0, 0.5, 0.5, 1.5, -1.0])
    x = 0.3 + 0.4 * torch.rand(40, 1, 2, 3, generator=torch.Generator().manual_seed(0))
    value = x.flatten(1) @ model.w + model.b
    y = model(x).argmax(1)  # the rounding moves the value by at most 0.05: the distances below are within 0.01
    return model, x, y, value.abs() / model.w.abs().sum()  # L-inf distance to the boundary (of the unrounded model)


def test_breaks_a_gradient_masked_model() -> None:
    # the model rounds its input, so its gradient is zero everywhere: PGD cannot move, a score-based search can
    model, x, y, distance = _quantised_case()
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(xg)[:, 1].sum(), xg)
    assert not bool(grad.any())
    x_adv, ok = square(model, x, y, eps=0.25, queries=100)
    assert bool(ok[distance < 0.2].all())  # the optimum is a vertex of the eps-box, which the search finds
    assert not bool(ok[distance > 0.26].any())
    assert float((x_adv - x).abs().max()) <= 0.25 + 1e-6


def test_forward_passes_only_on_samples_not_yet_fooled() -> None:
    model, x, y, _ = _quantised_case()
    counting = Counting(model)
    _, ok = square(counting, x, y, eps=0.1, queries=100)
    sizes = [n for n, _ in counting.calls]
    assert all(inference for _, inference in counting.calls)  # no autograd anywhere
    assert sizes[:2] == [40, 40]  # the clean pass, the starting point
    assert sizes[2:-1] == sorted(sizes[2:-1], reverse=True)  # fooled samples leave and never come back
    assert sizes[-1] == int(ok.sum())  # the last pass confirms the fooled ones
    assert 0 < int(ok.sum()) < 40 and len(sizes) == 2 + 100 + 1  # some never fall: the budget runs out


def test_query_budget_is_respected_on_an_unfoolable_model() -> None:
    model = Counting(Stubborn())
    x = torch.rand(7, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    x_adv, ok = square(model, x, torch.zeros(7, dtype=torch.long), eps=0.3, queries=25)
    assert not bool(ok.any()) and torch.equal(x_adv, x)
    assert [n for n, _ in model.calls] == [7] * (1 + 1 + 25)  # clean, start, one query per iteration


def test_eps_zero_changes_nothing(linear_model: LinearMargin) -> None:
    x = torch.rand(16, 1, 2, 2, generator=torch.Generator().manual_seed(1))
    y = (linear_model(x)[:, 1] > 0).long()
    x_adv, ok = square(linear_model, x, y, eps=0.0, queries=20)
    assert torch.equal(x_adv, x) and not bool(ok.any())


def test_outputs_are_ordinary_tensors(linear_model: LinearMargin) -> None:
    x = torch.rand(4, 1, 2, 2, generator=torch.Generator().manual_seed(2))
    x_adv, ok = square(linear_model, x, torch.tensor([0, 1, 0, 1]), eps=0.3, queries=10)
    assert not x_adv.is_inference() and not ok.is_inference()
    x_adv.requires_grad_(True)  # usable by autograd afterwards (inference tensors are not)


def _cnn(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.Dropout(0.3), nn.Flatten(), nn.Linear(4 * 5 * 6, 3)
    )


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    norm=st.sampled_from(["linf", "l2"]),
    lo=st.sampled_from([0.0, -1.0]),
    width=st.sampled_from([1.0, 2.0]),
    eps_frac=st.floats(0.0, 1.0),
    restarts=st.integers(1, 2),
    train_mode=st.booleans(),
    p_init=st.sampled_from([0.05, 0.3, 0.8, 1.0]),
)
def test_square_invariants(
    seed: int, norm: str, lo: float, width: float, eps_frac: float, restarts: int, train_mode: bool, p_init: float
) -> None:
    gen = torch.Generator().manual_seed(seed)
    model = _cnn(seed).train(train_mode)
    model[0].weight.requires_grad_(False)
    flags = [p.requires_grad for p in model.parameters()]
    hi = lo + width
    x = lo + width * torch.rand(5, 2, 5, 6, generator=gen)  # two channels, not square
    x[0, 0, 0, :2] = torch.tensor([lo, hi])
    y = torch.randint(0, 3, (5,), generator=gen)
    eps = eps_frac * width * (0.5 if norm == "linf" else 3.0)
    x_adv, ok = square(
        model, x, y, eps=eps, norm=norm, queries=15, p_init=p_init, restarts=restarts, value_range=(lo, hi), seed=seed
    )
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype and ok.dtype == torch.bool
    delta = (x_adv.double() - x.double()).flatten(1)
    size = delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)
    assert float(size.max()) <= eps + 1e-6
    assert float(x_adv.min()) >= lo and float(x_adv.max()) <= hi
    assert torch.equal(x_adv[~ok], x[~ok])
    assert model.training == train_mode and [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())
    with torch.no_grad():
        logits = model.eval()(x_adv)
    top = logits.topk(2, dim=1).values
    clear = (top[:, 0] - top[:, 1]) > 1e-5 * top[:, 0].abs().clamp_min(
        1.0
    )  # ties at float precision depend on the batch size
    assert torch.equal(ok[clear], (logits.argmax(1) != y)[clear])


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_tabular_inputs_are_one_row_images(norm: str) -> None:
    model, x, y, distance = _quantised_case()
    x = x.flatten(1)  # (N, 6)
    if norm == "l2":
        distance = distance * model.w.abs().sum() / model.w.norm()
    eps = 0.25 if norm == "linf" else 0.5
    x_adv, ok = square(model, x, y, eps=eps, norm=norm, queries=100)
    assert x_adv.shape == x.shape
    assert bool(ok[distance < 0.5 * eps].all()) and not bool(ok[distance > eps * 1.05].any())
    with torch.no_grad():
        assert torch.equal(ok, model(x_adv).argmax(1) != y)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_same_seed_same_result_and_independent_of_the_batch_split(
    digits_cnn: dlaudit.ModelBundle, digits_splits, norm: str
) -> None:
    model = digits_cnn.module
    x, y = digits_splits.test.x[:64], digits_splits.test.y[:64]
    kwargs = {"eps": 0.15 if norm == "linf" else 0.8, "norm": norm, "queries": 60, "restarts": 2, "seed": 3}
    whole, ok = square(model, x, y, **kwargs)
    again, ok_again = square(model, x, y, **kwargs)
    assert torch.equal(whole, again) and torch.equal(ok, ok_again)
    assert 0 < int(ok.sum()) < 64
    parts = [
        square(model, x[s : s + 5], y[s : s + 5], index=torch.arange(s, min(s + 5, 64)), **kwargs)
        for s in range(0, 64, 5)
    ]
    assert torch.equal(torch.cat([p[1] for p in parts]), ok)
    torch.testing.assert_close(torch.cat([p[0] for p in parts]), whole, rtol=0, atol=1e-6)
    other, _ = square(model, x, y, **{**kwargs, "seed": 4})
    assert not torch.equal(other, whole)


# -- agreement with the official code ----------------------------------------------------------


@needs_official
@pytest.mark.parametrize(("norm", "eps"), [("linf", 0.15), ("l2", 0.8)])
def test_robust_accuracy_matches_official_square(
    digits_cnn: dlaudit.ModelBundle, digits_splits, norm: str, eps: float
) -> None:
    model = digits_cnn.module.eval()
    x, y = digits_splits.test.x[:300], digits_splits.test.y[:300]
    queries, seeds = 300, (0, 1)

    def official(seed: int) -> float:
        attack = SquareAttack(
            model, norm="Linf" if norm == "linf" else "L2", n_queries=queries, eps=eps, p_init=0.8, seed=seed
        )
        with torch.no_grad():
            return (model(attack.perturb(x, y)).argmax(1) == y).float().mean().item()

    def mine(seed: int, official_range: bool) -> float:
        _, ok = square(model, x, y, eps=eps, norm=norm, queries=queries, seed=seed, official_range=official_range)
        return 1.0 - ok.float().mean().item()

    theirs = sum(official(s) for s in seeds) / len(seeds)
    same_draws = sum(mine(s, True) for s in seeds) / len(seeds)
    ours = sum(mine(s, False) for s in seeds) / len(seeds)
    assert 0.2 < theirs < 0.8
    # with the official range of square positions: the same attack up to its random draws
    assert abs(same_draws - theirs) <= 0.03
    # every position (the default): at least as strong; on 8x8 images markedly stronger
    assert ours <= theirs + 0.01


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"eps": 0.1, "norm": "l1"}, "unknown norm 'l1' for Square Attack; choose from: linf, l2"),
        ({"eps": -1}, "eps (the attack budget) must be a finite number >= 0, got -1"),
        ({"eps": 0.1, "queries": 0}, "queries must be an integer of at least 1, got 0"),
        ({"eps": 0.1, "restarts": 1.5}, "restarts must be an integer of at least 1, got 1.5"),
        (
            {"eps": 0.1, "p_init": 0.0},
            "p_init (the initial fraction of the image a square covers) must be a number in (0, 1], got 0.0",
        ),
        (
            {"eps": 0.1, "p_init": 1.2},
            "p_init (the initial fraction of the image a square covers) must be a number in (0, 1], got 1.2",
        ),
        (
            {"eps": 0.1, "value_range": (0.0,)},
            "value_range must be (low, high), two finite numbers with low < high, got (0.0,)",
        ),
    ],
)
def test_bad_parameters_are_clear_errors(linear_model: LinearMargin, kwargs: dict, message: str) -> None:
    x = torch.rand(3, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ConfigError) as err:
        square(linear_model, x, torch.tensor([0, 1, 0]), **kwargs)
    assert str(err.value) == message


def test_five_dimensional_inputs_are_a_data_error() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(8, 2))
    with pytest.raises(DataError, match=r"needs images \(N, C, H, W\)"):
        square(model, torch.rand(2, 1, 2, 2, 2), torch.tensor([0, 1]), eps=0.1)
