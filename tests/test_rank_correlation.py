"""The sanity check's rank correlation, ranked in one call, gives the numbers the per-row loop gave."""

from __future__ import annotations

import numpy as np
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
