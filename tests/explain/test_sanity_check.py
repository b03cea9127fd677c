"""The sanity check: its rank correlation, ranked in one call, gives the numbers the per-row loop gave; Quantus's
MPRT as the oracle."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import rankdata

from dlaudit.explain.quality import feature_units, randomised_models, rank_correlation, sanity_check, unit_scores


def per_row(a: torch.Tensor, b: torch.Tensor, units: torch.Tensor | None = None) -> list[float]:
    """The loop ``rank_correlation`` ran before it was vectorised."""
    out = []
    for u, v in zip(unit_scores(a, units).abs().numpy(), unit_scores(b, units).abs().numpy()):
        if np.ptp(u) == 0 or np.ptp(v) == 0:
            out.append(float("nan"))
            continue
        out.append(float(np.corrcoef(rankdata(u), rankdata(v))[0, 1]))
    return out


def test_rank_correlation_matches_the_per_row_loop() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(6, 2, 5, 5, generator=g)
    b = a + 0.7 * torch.randn(6, 2, 5, 5, generator=g)
    a[1] = torch.round(a[1])  # ties
    a[3] = 0.0  # a constant map: NaN
    b[4] = 2.5
    units = feature_units((2, 5, 5))
    for u in (None, units):
        ours, ref = np.asarray(rank_correlation(a, b, u)), np.asarray(per_row(a, b, u))
        assert np.array_equal(np.isnan(ours), np.isnan(ref))
        assert np.isnan(ours[[3, 4]]).all()
        np.testing.assert_allclose(ours[~np.isnan(ref)], ref[~np.isnan(ref)], rtol=0, atol=1e-12)
    flipped = -b  # signs do not count: |a| and |b| are ranked
    np.testing.assert_array_equal(rank_correlation(a, flipped), rank_correlation(a, b))


def test_sanity_check_numbers_unchanged() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(64, 3)
    ).eval()
    x = torch.rand(5, 1, 4, 4)
    y = model(x).argmax(1)

    def grad(m: torch.nn.Module, xx: torch.Tensor, tt: torch.Tensor) -> torch.Tensor:
        xx = xx.clone().requires_grad_(True)
        m(xx).gather(1, tt[:, None]).sum().backward()
        return xx.grad.detach()

    original = grad(model, x, y)
    res = sanity_check(grad, model, x, y, original, seed=3)
    ref = [float(np.nanmean(per_row(original, grad(m, x, y)))) for _, m in randomised_models(model, x, seed=3)]
    assert [name for name, _ in res.steps] == ["3", "0"]
    np.testing.assert_allclose([v for _, v in res.steps], ref, rtol=0, atol=1e-12)


def _grad(m: torch.nn.Module, xx: torch.Tensor, tt: torch.Tensor) -> torch.Tensor:
    xx = torch.as_tensor(xx).clone().float().requires_grad_(True)
    m(xx).gather(1, torch.as_tensor(tt).long()[:, None]).sum().backward()
    return xx.grad.detach()


def test_sanity_check_agrees_with_quantus_mprt() -> None:
    """Quantus's MPRT (cascading, top down, |map|, Spearman) on the same maps and explanation: where both draw the
    same weights (the first step; Quantus reseeds every layer with ``seed + 1``, dlaudit layer k with ``seed + k``)
    the correlations agree to 1e-9, per sample where the first step is the last."""
    quantus = pytest.importorskip("quantus", reason="quantus is not installed (pip install quantus)")
    torch.manual_seed(1)
    x = torch.rand(6, 1, 5, 5)
    for model in (
        torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(25, 4)).eval(),
        torch.nn.Sequential(
            torch.nn.Conv2d(1, 3, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(75, 4)
        ).eval(),
    ):
        with torch.no_grad():
            y = model(x).argmax(1)
        a = _grad(model, x, y)
        ours = sanity_check(_grad, model, x, y, a, seed=5)
        mprt = quantus.MPRT(
            similarity_func=quantus.similarity_func.correlation_spearman,
            layer_order="top_down",
            seed=4,
            abs=True,
            normalise=False,
            disable_warnings=True,
        )
        scores = mprt(
            model=model,
            x_batch=x.numpy(),
            y_batch=y.numpy(),
            a_batch=a.numpy(),
            explain_func=lambda model, inputs, targets, **_: _grad(model, inputs, targets).numpy(),
        )
        layers = [k for k in scores if k != "original"]
        assert layers == [name for name, _ in ours.steps]
        assert ours.steps[0][1] == pytest.approx(float(np.mean(scores[layers[0]])), abs=1e-9)
        if len(layers) == 1:
            np.testing.assert_allclose(ours.samples, scores[layers[0]], rtol=0, atol=1e-9)
