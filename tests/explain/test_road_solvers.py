"""ROAD's imputation solvers: conjugate gradients, banded Cholesky and SuperLU solve the same systems."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from dlaudit.explain import road
from dlaudit.explain.road import noisy_linear_imputation, road_curves, solve_imputation


def _masks(rng: np.random.Generator, n_px: int) -> np.ndarray:
    """Hidden sets from 10% to 99.9% hidden, a single visible pixel (a corner, the middle), and none hidden."""
    fractions = np.array([0.1, 0.5, 0.9, 0.95, 0.99, 0.999])
    hidden = rng.random((len(fractions), n_px)) < fractions[:, None]
    hidden[:, rng.integers(n_px)] = False
    corner, middle = np.ones(n_px, dtype=bool), np.ones(n_px, dtype=bool)
    corner[0], middle[n_px // 2] = False, False
    return np.concatenate([hidden, [corner, middle, np.zeros(n_px, dtype=bool)]])


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32), (2, 5, 9), (1, 7, 2)])
def test_every_solver_agrees_with_spsolve(shape: tuple[int, int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    x = rng.random((2, *shape))
    hidden = np.stack([_masks(rng, shape[1] * shape[2]) for _ in range(2)])
    ref = solve_imputation(x, hidden, solver="sparse")
    assert ref.shape == (2, hidden.shape[1], shape[0], shape[1] * shape[2])
    visible = ~hidden[:, :, None, :].repeat(shape[0], axis=2)
    assert np.array_equal(ref[visible], np.broadcast_to(x.reshape(2, 1, shape[0], -1), ref.shape)[visible])
    for solver in ("cg", "banded", "auto"):
        np.testing.assert_allclose(solve_imputation(x, hidden, solver=solver), ref, rtol=0, atol=1e-10)


def test_conjugate_gradients_give_the_same_bits_whatever_the_batch_and_threads() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((3, 2, 12, 10))
    hidden = np.stack([_masks(rng, 120) for _ in range(3)])
    together = solve_imputation(x, hidden, solver="cg")
    for i in range(3):
        alone = solve_imputation(x[i : i + 1], hidden[i : i + 1], solver="cg")[0]
        assert np.array_equal(alone, together[i])
        assert np.array_equal(solve_imputation(x[i : i + 1], hidden[i, 4:6][None], solver="cg")[0], together[i, 4:6])
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1 if threads > 1 else 2)
        assert np.array_equal(solve_imputation(x, hidden, solver="cg"), together)
    finally:
        torch.set_num_threads(threads)


def test_systems_short_of_the_tolerance_at_the_cap_are_solved_by_spsolve_and_banded_calls_split(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(1)
    x, hidden = rng.random((1, 1, 16, 16)), _masks(rng, 256)[None]
    ref = solve_imputation(x, hidden, solver="sparse")
    cg = road._solve_cg(torch.from_numpy(x[0, :1]).expand(9, 16, 16), torch.from_numpy(hidden[0].reshape(9, 16, 16)))
    assert cg[1][:8].all()  # every system with a hidden pixel converges within the cap
    monkeypatch.setattr(road, "cg_iteration_cap", lambda h, w: 2)
    _, converged = road._solve_cg(
        torch.from_numpy(x[0, :1]).expand(9, 16, 16), torch.from_numpy(hidden[0].reshape(9, 16, 16))
    )
    assert not converged[2:6].any()  # large hidden shares need more than two steps
    np.testing.assert_allclose(solve_imputation(x, hidden, solver="cg"), ref, rtol=0, atol=1e-12)
    monkeypatch.setattr(road, "_BANDED_CALL_BYTES", 1)  # one hidden set a banded call
    np.testing.assert_allclose(solve_imputation(x, hidden, solver="banded"), ref, rtol=0, atol=1e-12)


def test_noise_is_one_draw_over_the_hidden_pixels_in_row_major_order() -> None:
    rng = np.random.default_rng(2)
    x, hidden = rng.random((2, 6, 7)), _masks(rng, 42)[:4]
    clean = noisy_linear_imputation(x, hidden, noise=0.0)
    noisy = noisy_linear_imputation(x, hidden, noise=0.5, rng=np.random.default_rng([7, 1]))
    rows_k, rows_p = np.nonzero(hidden)
    expected = clean.reshape(4, 2, 42).copy()
    expected[rows_k, :, rows_p] += 0.5 * np.random.default_rng([7, 1]).standard_normal((len(rows_k), 2))
    np.testing.assert_array_equal(noisy, expected.reshape(4, 2, 6, 7))
    with pytest.raises(ValueError, match="solver must be one of"):
        solve_imputation(x[None], hidden[None], solver="lu")


def test_road_curves_do_not_depend_on_the_memory_budget_or_the_solver() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 8 * 8, 4)).eval()
    x = torch.rand(5, 1, 10, 10)
    order = torch.argsort(torch.rand(5, 100), dim=1)
    target = torch.tensor([0, 1, 2, 3, 0])
    counts = np.array([0, 25, 50, 75, 95, 100])
    kw = {"span": 1.0, "value_range": (0.0, 1.0), "seed": 3}
    whole = road_curves(model, x, target, order, counts, **kw)
    one_at_a_time = road_curves(model, x, target, order, counts, max_memory=1, batch_size=3, **kw)
    # the imputed images are the same bits (above); a float32 model's outputs may move in the last bits with the
    # rows that share its pass, as in every chunked explanation (tested to 1e-6 in test_memory.py)
    np.testing.assert_allclose(one_at_a_time.morf, whole.morf, rtol=0, atol=1e-6)
    np.testing.assert_allclose(one_at_a_time.lerf, whole.lerf, rtol=0, atol=1e-6)
    assert whole.morf.shape == (5, 5) and whole.morf_auc != whole.lerf_auc
    for solver in ("cg", "sparse"):
        other = road_curves(model, x, target, order, counts, solver=solver, **kw)
        np.testing.assert_allclose(other.morf, whole.morf, rtol=0, atol=1e-6)
        np.testing.assert_allclose(other.lerf, whole.lerf, rtol=0, atol=1e-6)


def test_road_holds_its_imputed_images_within_a_quarter_of_the_budget(monkeypatch) -> None:
    """The model's pass takes half of ``max_memory`` (the caller's batch size), ROAD's images and solver a quarter:
    every chunk of samples, its solved grids and noisy images (float64) and their float32 copy, fits in it."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 16 * 16, 3)).eval()
    n, counts = 40, np.array([26, 51, 128, 205, 230])
    x = torch.rand(n, 3, 16, 16)
    order = torch.argsort(torch.rand(n, 256), dim=1)
    chunks: list[int] = []
    solve = road.solve_imputation
    monkeypatch.setattr(road, "solve_imputation", lambda xs, *a, **k: chunks.append(len(xs)) or solve(xs, *a, **k))
    budget = 4 * (2 * road._BANDED_CALL_BYTES + 2 * 2**20)  # a quarter: the banded solver's share and 2 MiB of images
    road_curves(model, x, torch.zeros(n, dtype=torch.long), order, counts, span=1.0, max_memory=budget)
    image_bytes = 2 * len(counts) * 3 * 16 * 16 * (8 + 8 + 4)  # per sample: solved, noisy (float64), float32 copy
    assert sum(chunks) == n and len(chunks) > 1
    assert max(chunks) * image_bytes <= budget // 4 - 2 * road._BANDED_CALL_BYTES
