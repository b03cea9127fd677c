"""Trust metrics a reviewer can check: bootstrap intervals and interval verdicts, ROAD's imputation, the
random-logit check and max-sensitivity, each on inputs whose answer is known; and Quantus as the oracle."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from torch import nn

import dlaudit
from dlaudit.explain.compute import MethodQuality
from dlaudit.explain.intervals import Interval, bootstrap_mean, bootstrap_ratio, samples_to_settle, verdict
from dlaudit.explain.quality import perturbation_curves
from dlaudit.explain.road import noisy_linear_imputation, road_curves
from dlaudit.explain.section import method_verdicts
from dlaudit.explain.stability import max_sensitivity, other_classes, random_logit_similarity

# -- intervals -----------------------------------------------------------------------------


def test_bootstrap_is_seeded_and_brackets_the_mean() -> None:
    v = np.random.default_rng(1).normal(0.3, 0.1, 20)
    a, b = bootstrap_mean(v, seed=5), bootstrap_mean(v, seed=5)
    assert a == b and a is not None
    assert a.value == pytest.approx(v.mean()) and a.lo < a.value < a.hi and a.n == 20
    assert bootstrap_mean(v, seed=6) != a  # another seed, other resamples
    assert bootstrap_mean([np.nan, np.nan], seed=0) is None
    one = bootstrap_mean([0.4, np.nan], seed=0)  # NaN (undefined) samples are left out
    assert one == Interval(0.4, 0.4, 0.4, 1)


def test_bootstrap_ratio_is_the_ratio_of_sums() -> None:
    r = bootstrap_ratio(np.array([1.0, 0.0, 1.0]), np.array([2.0, 2.0, 4.0]), seed=0)
    assert r is not None and r.value == pytest.approx(0.25) and r.lo <= 0.25 <= r.hi
    assert bootstrap_ratio(np.ones(3), np.zeros(3), seed=0) is None


def test_verdict_passes_only_when_the_whole_interval_clears() -> None:
    assert verdict(Interval(0.2, 0.1, 0.3, 10), 0.5, passes_below=True) == "pass"
    assert verdict(Interval(0.45, 0.3, 0.6, 10), 0.5, passes_below=True) == "inconclusive"
    assert verdict(Interval(0.8, 0.6, 0.9, 10), 0.5, passes_below=True) == "warning"
    assert verdict(Interval(0.8, 0.6, 0.9, 10), 0.5, passes_below=False) == "pass"
    assert verdict(None, 0.5, passes_below=True) == ""


def test_samples_to_settle() -> None:
    # half-width 0.15, gap 0.05: the half-width must shrink 3x, so 9x the samples
    assert samples_to_settle(Interval(0.45, 0.30, 0.60, 10), 0.5) == 90
    assert samples_to_settle(Interval(0.5, 0.4, 0.6, 10), 0.5) is None  # on the threshold: no sample size settles it


def test_method_verdicts_name_the_inconclusive_part() -> None:
    q = MethodQuality()
    q.intervals = {
        "deletion_gain": Interval(-0.3, -0.4, -0.2, 8),
        "sanity_rank_corr": Interval(0.45, 0.3, 0.6, 8),
        "sensitivity": Interval(0.9, 0.7, 1.1, 8),
    }
    v = method_verdicts(q)
    assert v["faithful"] == ("pass", None)
    assert v["model-sensitive"] == ("inconclusive", 72)
    assert v["stable"] == ("warning", None)
    assert v["class-sensitive"] == ("", None)  # not measured


# -- ROAD ----------------------------------------------------------------------------------


def test_noisy_linear_imputation_of_one_pixel_is_its_neighbours_weighted_mean() -> None:
    x = np.arange(9, dtype=np.float64).reshape(1, 3, 3)
    hidden = np.zeros((1, 9), dtype=bool)
    hidden[0, 4] = True  # the centre
    out = noisy_linear_imputation(x, hidden, noise=0.0)
    direct, diagonal = 1 + 3 + 5 + 7, 0 + 2 + 6 + 8
    assert out[0, 0, 1, 1] == pytest.approx(direct / 6 + diagonal / 12)
    assert np.array_equal(np.delete(out.ravel(), 4), np.delete(x.ravel(), 4))
    corner = np.zeros((1, 9), dtype=bool)
    corner[0, 0] = True  # three neighbours in the image: their weights renormalised
    got = noisy_linear_imputation(x, corner, noise=0.0)[0, 0, 0, 0]
    assert got == pytest.approx((1 / 6 * 1 + 1 / 6 * 3 + 1 / 12 * 4) / (1 / 6 + 1 / 6 + 1 / 12))
    with pytest.raises(ValueError, match="at least one visible pixel"):
        noisy_linear_imputation(x, np.ones((1, 9), dtype=bool))


def test_road_curves_are_seeded_and_morf_falls_below_lerf_for_a_faithful_order() -> None:
    torch.manual_seed(0)
    w = torch.zeros(2, 16)
    w[0, :4], w[1, :4] = 3.0, -3.0  # class 0 reads the first four pixels
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2, bias=False))
    model[1].weight.data = w
    x = torch.full((3, 1, 4, 4), 0.2)
    x[:, :, 0, :] = 1.0
    order = torch.arange(16).repeat(3, 1)  # the relevant pixels first
    counts = np.array([0, 4, 8, 12, 16])
    a = road_curves(model, x, torch.zeros(3, dtype=torch.long), order, counts, span=1.0, seed=3)
    b = road_curves(model, x, torch.zeros(3, dtype=torch.long), order, counts, span=1.0, seed=3)
    assert np.array_equal(a.morf, b.morf) and a.fractions.tolist() == [0.0, 0.25, 0.5, 0.75]
    assert a.morf_auc < a.lerf_auc


# -- random logit and max-sensitivity ------------------------------------------------------


def _linear(w: torch.Tensor) -> nn.Module:
    model = nn.Linear(w.shape[1], w.shape[0], bias=False)
    model.weight.data = w.clone()
    return model


def _saliency(model: nn.Module):
    def fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        x = x.clone().requires_grad_(True)
        model(x).gather(1, t[:, None]).sum().backward()
        return x.grad.detach()

    return fn


def test_random_logit_similarity_of_a_linear_models_gradient_is_the_weights_correlation() -> None:
    w = torch.tensor([[1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0], [1.0, 2.0, 4.0, 3.0]])
    fn, x = _saliency(_linear(w)), torch.rand(5, 4)
    t = torch.zeros(5, dtype=torch.long)
    other = other_classes(t, 3, seed=0)
    assert (other != t).all() and torch.equal(other, other_classes(t, 3, seed=0))
    got = random_logit_similarity(fn, x, t, fn(x, t), 3, seed=0)
    want = [spearmanr(w[0], w[int(o)])[0] for o in other]
    assert got == pytest.approx(want)


def test_max_sensitivity_is_zero_for_a_linear_model_and_bounded_by_the_noise() -> None:
    model = _linear(torch.tensor([[1.0, -1.0, 0.5], [-1.0, 1.0, -0.5]]))
    x, t = torch.tensor([[0.9, 0.1, 0.5], [0.2, 0.8, 0.5]]), torch.tensor([0, 1])
    fn = _saliency(model)
    r = max_sensitivity(fn, model, x, t, fn(x, t), radius=0.05, value_range=(0.0, 1.0), perturbations=6, seed=0)
    assert r.per_sample.tolist() == [0.0, 0.0] and r.dropped == 0 and r.draws == 12
    ident = lambda xx, tt: xx.clone()
    s = max_sensitivity(ident, model, x, t, x, radius=0.05, value_range=(0.0, 1.0), perturbations=6, seed=0)
    assert np.all(s.per_sample > 0) and np.all(s.per_sample <= 0.05 * np.sqrt(3) / x.norm(dim=1).numpy() + 1e-9)


def test_max_sensitivity_leaves_out_draws_that_change_the_prediction() -> None:
    model = _linear(torch.tensor([[1.0, -1.0], [-1.0, 1.0]]))
    x, t = torch.tensor([[0.5, 0.5]]), torch.tensor([0])  # on the decision boundary: about half the draws flip it
    ident = lambda xx, tt: xx.clone()
    r = max_sensitivity(ident, model, x, t, x, radius=0.1, value_range=(0.0, 1.0), perturbations=40, seed=0)
    assert 0 < r.dropped < 40


# -- the section ---------------------------------------------------------------------------


def test_same_seed_same_intervals_and_every_metric_has_one(digits_cnn, digits_test) -> None:
    run = lambda: dlaudit.explain_model(digits_cnn, digits_test, methods="saliency,ig", n=8, seed=0, fast=True)
    a, b = run(), run()
    ma = {m.name: m for m in a.section.metrics}
    mb = {m.name: m for m in b.section.metrics}
    assert {n: (m.value, m.ci, m.status) for n, m in ma.items()} == {
        n: (m.value, m.ci, m.status) for n, m in mb.items()
    }
    for name in (
        "deletion_auc",
        "insertion_auc",
        "sanity_rank_corr",
        "sensitivity",
        "random_logit_similarity",
        "road_morf_auc",
        "road_lerf_auc",
    ):
        m = ma[f"explain.saliency.{name}"]
        assert m.ci is not None and m.ci[0] <= m.value <= m.ci[1], name
    assert ma["explain.ig.completeness_error"].ci is not None
    assert ma["explain.ig.sanity_rank_corr"].status in ("warning", "inconclusive")  # IG x input: a known failure
    assert ma["explain.saliency.deletion_auc"].status in ("pass", "inconclusive", "warning")


# -- Quantus as the oracle -----------------------------------------------------------------


def _tiny_image_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 64, 2)).eval()


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(1)) * 0.4 + 0.3
    return x, torch.zeros(6, dtype=torch.long)


def test_pixel_flipping_and_road_agree_with_quantus() -> None:
    quantus = pytest.importorskip("quantus", reason="quantus is not installed (pip install quantus)")
    model, (x, _) = _tiny_image_model(), _inputs()
    with torch.no_grad():
        y = model(x).argmax(1)
    a = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    order = torch.argsort(-a.reshape(6, -1), dim=1)
    ours = perturbation_curves(model, x, y, order, baseline=0.0, steps=8)
    pf = quantus.PixelFlipping(features_in_step=8, perturb_baseline=0.0, disable_warnings=True)
    theirs = np.asarray(pf(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=a.numpy(), softmax=True))
    np.testing.assert_allclose(ours.deletion[:, 1:], theirs, atol=1e-5)
    # ROAD without noise (both deterministic): Quantus reports whether the prediction survives
    # the imputation itself: the same linear system, to rounding
    hidden = np.zeros((1, 64), dtype=bool)
    hidden[0, order[0, :40].numpy()] = True
    np.testing.assert_allclose(
        noisy_linear_imputation(x[0].double().numpy(), hidden, noise=0.0)[0],
        quantus.functions.perturb_func.noisy_linear_imputation(
            x[0].double().numpy(), np.sort(order[0, :40].numpy()), noise=0.0
        ),
        atol=1e-12,
    )
    # a checkerboard model, whose decision the smooth imputation erodes: the predictions change along the curve
    board = _linear(
        torch.stack([c := (torch.arange(64) % 2 * 2 - 1).float() * ((torch.arange(64) // 8) % 2 * 2 - 1), -c])
    )
    board = nn.Sequential(nn.Flatten(), board).eval()
    xb = torch.rand(12, 1, 8, 8, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        yb = board(xb).argmax(1)
    ab = torch.rand(12, 1, 8, 8, generator=torch.Generator().manual_seed(5))
    road = road_curves(
        board, xb, yb, torch.argsort(-ab.reshape(12, -1), dim=1), np.arange(0, 65, 8), span=1.0, noise=0.0
    )
    q = quantus.ROAD(percentages=[12.5 * k for k in range(1, 8)], noise=0.0, disable_warnings=True)
    q(model=board, x_batch=xb.numpy(), y_batch=yb.numpy(), a_batch=ab.numpy(), softmax=True)
    ours_acc = (road.morf[:, 1:] > 0.5).mean(axis=0)  # two classes: the prediction survives when p > 1/2
    assert ours_acc.min() < 1.0
    np.testing.assert_allclose(ours_acc, list(q.evaluation_scores.values()))


def test_random_logit_and_max_sensitivity_agree_with_quantus() -> None:
    quantus = pytest.importorskip("quantus", reason="quantus is not installed (pip install quantus)")
    model, (x, _) = _tiny_image_model(), _inputs()
    with torch.no_grad():
        y = model(x).argmax(1)

    def grad(xx: torch.Tensor, tt: torch.Tensor) -> torch.Tensor:
        xx = torch.as_tensor(xx).clone().float().requires_grad_(True)
        model(xx).gather(1, torch.as_tensor(tt).long()[:, None]).sum().backward()
        return (xx.grad * xx).detach()

    def explain_func(model, inputs, targets, **kwargs):  # Quantus calls it with these names
        return grad(torch.as_tensor(inputs), torch.as_tensor(targets)).numpy()

    a = grad(x, y)
    # two classes: the random other class is the other one for both
    ours = random_logit_similarity(grad, x, y, a, 2, seed=0)
    rl = quantus.RandomLogit(
        num_classes=2,
        similarity_func=quantus.similarity_func.correlation_spearman,
        normalise=False,
        disable_warnings=True,
    )
    theirs = rl(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=a.numpy(), explain_func=explain_func)
    np.testing.assert_allclose(ours, theirs, atol=1e-9)
    # max-sensitivity: different noise streams, so the maxima over 100 draws agree within 10%
    ms = quantus.MaxSensitivity(nr_samples=100, lower_bound=0.05, normalise=False, disable_warnings=True)
    np.random.seed(0)
    theirs = np.asarray(
        ms(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=a.numpy(), explain_func=explain_func)
    )
    ours = max_sensitivity(grad, model, x, y, a, radius=0.05, value_range=(0.0, 1.0), perturbations=100, seed=0)
    np.testing.assert_allclose(ours.per_sample, theirs, rtol=0.10)
    # local Lipschitz estimate, from the same draws as max-sensitivity: Quantus's with the same uniform noise
    lle = quantus.LocalLipschitzEstimate(
        nr_samples=100,
        perturb_func=lambda arr, **_: arr + np.random.uniform(-0.05, 0.05, arr.shape),  # Quantus's own needs axes
        normalise=False,
        disable_warnings=True,
    )
    np.random.seed(0)
    theirs = np.asarray(
        lle(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=a.numpy(), explain_func=explain_func)
    )
    assert ours.lipschitz is not None and np.isfinite(ours.lipschitz).all()
    np.testing.assert_allclose(ours.lipschitz, theirs, rtol=0.05)
