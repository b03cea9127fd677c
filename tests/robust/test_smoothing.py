"""Randomized smoothing (Cohen et al. 2019): exact answers on a linear classifier, seeding, abstention, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from robust_models import LinearMargin
from scipy import stats
from torch import nn

import dlaudit
from dlaudit.errors import ConfigError
from dlaudit.robust import smoothing
from dlaudit.robust.certify import ABSTAIN, SmoothingResult, certify_smoothing, predict_smoothed
from dlaudit.robust.smoothing import binomial_pvalue, clopper_pearson_lower

W, B = [1.0, -2.0, 0.5, 0.5], -0.25


class Constant(nn.Module):
    """Always class ``label`` of ``k``, whatever the input."""

    def __init__(self, label: int = 0, k: int = 3) -> None:
        super().__init__()
        self.register_buffer("row", torch.arange(k).eq(label).float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.row.expand(len(x), -1)


def _points(distances: list[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """Points at signed distances from the hyperplane ``w.x + b = 0``, and their sides (the labels)."""
    w = torch.tensor(W)
    base = torch.full((4,), 0.5)
    base -= (w @ base + B) / (w @ w) * w  # the foot of the perpendicular from (0.5, ...)
    x = torch.stack([base + d * w / w.norm() for d in distances])
    return x, (torch.tensor(distances) > 0).long()


def test_linear_classifier_radius_approaches_the_distance_and_never_exceeds_it() -> None:
    """For ``f(x) = [w.x + b > 0]`` the smoothed probability is ``Phi((w.x + b) / (sigma ||w||))``, so the
    exact certified radius is the distance ``|w.x + b| / ||w||`` to the hyperplane (Cohen et al.'s bound is tight)."""
    sigma, alpha = 0.25, 0.001
    distances = [0.05, 0.1, -0.15, 0.25, -0.3, 0.4]
    x, side = _points(distances)
    dist = torch.tensor(distances).abs().double()
    model = LinearMargin(W, b=B)
    gaps = {}
    for n in (100, 1_000, 10_000, 100_000):
        res = certify_smoothing(model, x, side, sigma=sigma, n0=100, n=n, alpha=alpha, seed=0, batch_size=4096)
        assert bool((res.radius <= dist).all()), (n, res.radius, dist)
        certified = res.prediction != ABSTAIN
        assert bool((res.prediction[certified] == side[certified]).all())
        gaps[n] = torch.where(certified, dist - res.radius, dist)
    # the gap shrinks as n grows; at n = 100,000 the one-sided 99.9% bound costs about 3.1 standard errors of p_A
    assert bool((gaps[100_000] < gaps[1_000]).all() and (gaps[1_000] <= gaps[100]).all())
    p = stats.norm.cdf(dist.numpy() / sigma)
    predicted_gap = sigma * 3.1 * np.sqrt(p * (1 - p) / 100_000) / stats.norm.pdf(stats.norm.ppf(p))
    assert np.all(gaps[100_000].numpy() < 2 * predicted_gap + 1e-3), (gaps[100_000], predicted_gap)
    assert float(gaps[100_000].max()) < 0.03 * sigma


def test_same_seed_same_certificates_whatever_the_batch_size(digits_mlp: dlaudit.ModelBundle, digits_splits) -> None:
    x, y = digits_splits.test.x[:6], digits_splits.test.y[:6]
    runs = [certify_smoothing(digits_mlp, x, y, sigma=0.25, n0=30, n=700, seed=3, batch_size=bs) for bs in (7, 500)]
    for field in ("prediction", "p_lower", "radius", "counts"):
        assert torch.equal(getattr(runs[0], field), getattr(runs[1], field)), field
    tail = certify_smoothing(digits_mlp, x[2:], y[2:], sigma=0.25, n0=30, n=700, seed=3, batch_size=64, index_offset=2)
    assert torch.equal(tail.counts, runs[0].counts[2:])  # a slice with its offset draws the noise the whole did
    other = certify_smoothing(digits_mlp, x, y, sigma=0.25, n0=30, n=700, seed=4, batch_size=7)
    assert not torch.equal(other.counts, runs[0].counts)


def test_noise_is_per_input_and_independent_of_the_other_inputs() -> None:
    """Two copies of one input get different noise; an input's counts do not depend on its neighbours."""
    model = LinearMargin(W, b=B)
    x, side = _points([0.02, 0.02, 0.3])
    res = certify_smoothing(model, x, side, sigma=0.25, n0=10, n=2_000, seed=0, batch_size=333)
    assert res.counts[0] != res.counts[1]
    alone = certify_smoothing(model, x[:1], side[:1], sigma=0.25, n0=10, n=2_000, seed=0, batch_size=50)
    assert alone.counts[0] == res.counts[0]


def test_certify_abstains_when_the_lower_bound_is_at_most_one_half() -> None:
    # a constant classifier: every count is n, so p_A_lower = alpha ** (1 / n) exactly
    x = torch.rand(2, 4)
    res = certify_smoothing(Constant(1), x, torch.tensor([1, 1]), sigma=0.5, n0=1, n=1, alpha=0.5)
    assert res.p_lower.tolist() == pytest.approx([0.5, 0.5])  # on the boundary: abstain (radius 0 certifies nothing)
    assert res.prediction.tolist() == [ABSTAIN, ABSTAIN] and res.radius.tolist() == [0.0, 0.0]
    res = certify_smoothing(Constant(1), x, torch.tensor([1, 0]), sigma=0.5, n0=1, n=2, alpha=0.4)
    assert res.prediction.tolist() == [1, 1]
    assert res.radius.tolist() == pytest.approx([0.5 * stats.norm.ppf(0.4**0.5)] * 2)
    assert res.certified_accuracy([0.0, 0.1, 1.0]) == {0.0: 0.5, 0.1: 0.5, 1.0: 0.0}
    # on the hyperplane the classes are equally likely: p_A_lower < 1/2
    on_plane, _ = _points([0.0])
    res = certify_smoothing(LinearMargin(W, b=B), on_plane, torch.tensor([1]), sigma=0.25, n0=100, n=5_000, seed=1)
    assert res.prediction.item() == ABSTAIN and res.p_lower.item() < 0.5 and res.abstain_rate == 1.0


def test_predict_abstains_on_a_tie_and_answers_when_clear() -> None:
    assert binomial_pvalue(5, 5) == 1.0  # a tie: PREDICT abstains at every alpha < 1
    x, _ = _points([0.0, 0.3, -0.3])
    pred = predict_smoothed(LinearMargin(W, b=B), x, sigma=0.25, n=2_000, seed=0)
    assert pred.tolist() == [ABSTAIN, 1, 0]
    # 10 of 10 votes: p-value 2 / 2**10 = 0.002 > alpha 0.001, so even a unanimous vote abstains; 20 of 20 does not
    assert predict_smoothed(Constant(2), x, sigma=0.25, n=10).tolist() == [ABSTAIN] * 3
    assert predict_smoothed(Constant(2), x, sigma=0.25, n=20).tolist() == [2, 2, 2]


def test_statistics_match_scipys_binomial_test() -> None:
    for n in (1, 10, 1000):
        for k in sorted({0, 1, n // 3, n // 2, n - 1, n}):
            for alpha in (0.001, 0.05):
                want = (
                    stats.binomtest(k, n, alternative="greater")
                    .proportion_ci(confidence_level=1 - alpha, method="exact")
                    .low
                )
                assert clopper_pearson_lower(k, n, alpha) == pytest.approx(want, abs=1e-12)
                two_sided = stats.binomtest(k, n).proportion_ci(confidence_level=1 - 2 * alpha, method="exact").low
                assert clopper_pearson_lower(k, n, alpha) == pytest.approx(two_sided, abs=1e-12)  # Cohen et al.'s form
    for n_a, n_b in ((0, 1), (3, 1), (7, 7), (60, 40), (900, 100), (12, 11)):
        assert binomial_pvalue(n_a, n_b) == pytest.approx(stats.binomtest(n_a, n_a + n_b, 0.5).pvalue, rel=1e-9)


def test_result_helpers_on_a_hand_built_result() -> None:
    res = SmoothingResult(
        sigma=0.25, n0=10, n=100, alpha=0.001,
        prediction=torch.tensor([1, ABSTAIN, 0, 2]), p_lower=torch.tensor([0.9, 0.4, 0.7, 0.99], dtype=torch.float64),
        radius=torch.tensor([0.3, 0.0, 0.1, 0.6], dtype=torch.float64), counts=torch.tensor([95, 50, 80, 100]),
        labels=torch.tensor([1, 1, 0, 1]), seconds_per_input=0.1, batch_size=64,
    )  # fmt: skip
    assert res.certified_accuracy([0.0, 0.2, 0.5]) == {0.0: 0.5, 0.2: 0.25, 0.5: 0.0}
    assert res.certified_accuracy(0.1) == {0.1: 0.5}
    assert res.abstain_rate == 0.25 and res.clean_accuracy == 0.5
    assert res.info() == {
        "method": "randomized smoothing",
        "sigma": 0.25,
        "n0": 10,
        "n": 100,
        "alpha": 0.001,
        "paper": "Cohen et al. 2019, arXiv:1902.02918",
    }
    with pytest.raises(ConfigError) as err:
        res.certified_accuracy([0.1, -0.5])
    assert str(err.value) == smoothing.MSG_RADIUS.format(value=-0.5)
    unlabelled = SmoothingResult(**{**res.__dict__, "labels": None})
    with pytest.raises(ConfigError, match="pass y to certify"):
        unlabelled.certified_accuracy([0.0])


def test_leaves_the_model_as_found(digits_splits, snapshot) -> None:
    net = dlaudit.build_model("mlp", (1, 8, 8), 10).train()
    before = snapshot(net)
    certify_smoothing(net, digits_splits.test.x[:3], digits_splits.test.y[:3], sigma=0.25, n0=5, n=50)
    predict_smoothed(net, digits_splits.test.x[:3], sigma=0.25, n=50)
    assert snapshot(net) == before


def test_probed_batch_size_gives_the_same_numbers(digits_mlp: dlaudit.ModelBundle, digits_splits) -> None:
    x, y = digits_splits.test.x[:3], digits_splits.test.y[:3]
    probed = certify_smoothing(digits_mlp, x, y, sigma=0.25, n0=20, n=3_000)
    fixed = certify_smoothing(digits_mlp, x, y, sigma=0.25, n0=20, n=3_000, batch_size=100)
    assert probed.batch_size >= 1 and torch.equal(probed.counts, fixed.counts)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sigma": 0.0}, smoothing.MSG_SIGMA.format(value=0.0)),
        ({"sigma": -0.25}, smoothing.MSG_SIGMA.format(value=-0.25)),
        ({"sigma": math.nan}, smoothing.MSG_SIGMA.format(value=math.nan)),
        ({"sigma": 0.25, "alpha": 0.0}, smoothing.MSG_ALPHA.format(value=0.0)),
        ({"sigma": 0.25, "alpha": 1.0}, smoothing.MSG_ALPHA.format(value=1.0)),
        ({"sigma": 0.25, "alpha": 1.5}, smoothing.MSG_ALPHA.format(value=1.5)),
        ({"sigma": 0.25, "n0": 0}, smoothing.MSG_COUNT.format(name="n0", value=0)),
        ({"sigma": 0.25, "n": 0}, smoothing.MSG_COUNT.format(name="n", value=0)),
        ({"sigma": 0.25, "n": 10.5}, smoothing.MSG_COUNT.format(name="n", value=10.5)),
        ({"sigma": 0.25, "batch_size": 0}, smoothing.MSG_BATCH.format(value=0)),
    ],
)
def test_bad_settings_say_what_is_valid(kwargs: dict, message: str) -> None:
    x = torch.rand(2, 4)
    with pytest.raises(ConfigError) as err:
        certify_smoothing(Constant(), x, torch.tensor([0, 0]), **kwargs)
    assert str(err.value) == message


def test_empty_input_and_labels_out_of_range() -> None:
    res = certify_smoothing(Constant(), torch.empty(0, 4), torch.empty(0, dtype=torch.long), sigma=0.25)
    assert len(res.prediction) == 0 and math.isnan(res.abstain_rate)
    with pytest.raises(dlaudit.DataError, match="only 3 classes"):
        certify_smoothing(Constant(), torch.rand(2, 4), torch.tensor([0, 5]), sigma=0.25, n=10)
