"""Trust metrics: deletion/insertion curves, sanity check, completeness, sensitivity."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from explain_helpers import WEIGHTS, linear_module, tabular_context
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from dlaudit.explain import ExplainContext, attribute
from dlaudit.explain.quality import (
    attribution_order,
    completeness_error,
    feature_units,
    perturbation_curves,
    random_order,
    randomised_models,
    rank_correlation,
    sanity_check,
    unit_scores,
)
from dlaudit.explain.stability import max_sensitivity


def test_curves_on_a_linear_model_by_hand() -> None:
    """Two features, logits (0, 2 x0 + x1): the probabilities after each removal are known."""
    model = nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.0, 0.0], [2.0, 1.0]]))
        model.bias.zero_()
    x = torch.tensor([[1.0, 1.0]])
    order = torch.tensor([[0, 1]])  # remove x0 first
    c = perturbation_curves(model, x, torch.tensor([1]), order, baseline=0.0, steps=2)
    sig = lambda v: 1 / (1 + math.exp(-v))
    np.testing.assert_allclose(c.fractions, [0.0, 0.5, 1.0])
    np.testing.assert_allclose(c.deletion[0], [sig(3), sig(1), sig(0)], rtol=1e-6)
    np.testing.assert_allclose(c.insertion[0], [sig(0), sig(2), sig(3)], rtol=1e-6)
    assert c.deletion_auc == pytest.approx(0.25 * (sig(3) + 2 * sig(1) + sig(0)))


def test_image_curves_remove_whole_pixels() -> None:
    x = torch.rand(1, 3, 4, 4)
    attr = torch.zeros(1, 3, 4, 4)
    attr[0, :, 0, 0] = 1.0
    assert unit_scores(attr).shape == (1, 16)
    order = attribution_order(attr)
    assert int(order[0, 0]) == 0
    seen: list[torch.Tensor] = []

    class Probe(nn.Module):
        def forward(self, inp: torch.Tensor) -> torch.Tensor:
            seen.append(inp.clone())
            return torch.zeros(len(inp), 2)

    perturbation_curves(Probe(), x, torch.tensor([0]), order, baseline=0.0, steps=16)
    first_deletion = seen[0][1]
    assert (first_deletion[:, 0, 0] == 0).all()  # every channel of pixel (0, 0)
    assert torch.equal(first_deletion[:, 1:, :], x[0, :, 1:, :])


def test_tabular_units_are_raw_columns() -> None:
    """A one-hot column is scored, ranked and removed as one unit."""
    from dlaudit.explain._common import columns_for

    encoder = {
        "numeric": [{"name": "n", "min": 0.0, "max": 1.0}],
        "categorical": [{"name": "c", "categories": ["a", "b", "c"]}],
        "target": "t",
        "classes": ["0", "1"],
    }
    units = feature_units((4,), columns_for(4, None, encoder))
    assert units.tolist() == [0, 1, 1, 1]
    attr = torch.tensor([[0.5, 0.0, 2.0, 0.0]])
    assert unit_scores(attr, units).tolist() == [[0.5, 2.0]]
    assert attribution_order(attr, units).tolist() == [[1, 0]]
    # rank correlation over the two columns, not over four features of which two are always zero
    assert rank_correlation(attr, torch.tensor([[2.0, 0.0, 0.5, 0.0]]), units) == [pytest.approx(-1.0)]
    seen: list[torch.Tensor] = []

    class Probe(nn.Module):
        def forward(self, inp: torch.Tensor) -> torch.Tensor:
            seen.append(inp.clone())
            return torch.zeros(len(inp), 2)

    x = torch.tensor([[0.5, 0.0, 1.0, 0.0]])
    perturbation_curves(Probe(), x, torch.tensor([0]), torch.tensor([[1, 0]]), units=units, baseline=0.0, steps=2)
    assert seen[0][:3].tolist() == [[0.5, 0.0, 1.0, 0.0], [0.5, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]  # deletion


def test_attribution_order_breaks_ties_by_seed() -> None:
    attr = torch.tensor([[0.0, 5.0, 0.0, 0.0, 0.0, 1.0]])
    a, b = attribution_order(attr, seed=1), attribution_order(attr, seed=1)
    assert torch.equal(a, b)
    assert a[0, :2].tolist() == [1, 5]
    orders = {tuple(attribution_order(attr, seed=s)[0, 2:].tolist()) for s in range(10)}
    assert len(orders) > 1  # the tied zeros are not always in index order


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 4), f=st.integers(1, 30), seed=st.integers(0, 10_000))
def test_random_order_is_a_permutation(n: int, f: int, seed: int) -> None:
    order = random_order(n, f, seed=seed)
    assert order.shape == (n, f)
    assert all(sorted(row.tolist()) == list(range(f)) for row in order)


def test_rank_correlation() -> None:
    a = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    assert rank_correlation(a, a) == [pytest.approx(1.0)]
    assert rank_correlation(a, -a) == [pytest.approx(1.0)]  # absolute values
    assert rank_correlation(a, torch.tensor([[4.0, 3.0, 2.0, 1.0]])) == [pytest.approx(-1.0)]
    assert math.isnan(rank_correlation(a, torch.ones(1, 4))[0])


def test_randomised_models_never_touch_the_callers_model(digits_cnn) -> None:
    before = {k: v.clone() for k, v in digits_cnn.module.state_dict().items()}
    steps = [
        (name, {k: v.clone() for k, v in m.state_dict().items()})
        for name, m in randomised_models(digits_cnn.module, torch.rand(1, 1, 8, 8))
    ]
    assert [name for name, _ in steps] == ["7", "4", "0"]  # from the logits down
    last = steps[-1][1]
    assert all(not torch.equal(last[k], before[k]) for k in before)
    assert all(torch.equal(v, before[k]) for k, v in digits_cnn.module.state_dict().items())


def test_sanity_separates_saliency_from_an_input_only_method(digits_cnn, digits_test) -> None:
    """Saliency changes with the weights; 'the input itself' as attribution does not."""
    x = digits_test.x[:16]
    target = digits_cnn.predict(x)
    ctx = ExplainContext("image", (0.0, 1.0), digits_test.x[:10])
    sal = lambda m, xx, tt: attribute("saliency", m, xx, tt, ctx).values
    result = sanity_check(sal, digits_cnn.module, x, target, sal(digits_cnn.module, x, target))
    assert len(result.steps) == 3
    assert result.final < 0.5
    identity = lambda m, xx, tt: xx.detach().clone()
    assert sanity_check(identity, digits_cnn.module, x, target, x.clone(), cascade=False).final > 0.9


def test_ig_is_complete_and_beats_random_deletion_on_the_cnn(digits_cnn, digits_test) -> None:
    x = digits_test.x[:16]
    target = digits_cnn.predict(x)
    ctx = ExplainContext("image", (0.0, 1.0), digits_test.x[:10])
    ig = attribute("ig", digits_cnn.module, x, target, ctx).values
    assert completeness_error(digits_cnn.module, x, target, ig, baseline=0.0) < 0.01
    ig_curves = perturbation_curves(digits_cnn.module, x, target, attribution_order(ig), baseline=0.0)
    rnd = perturbation_curves(digits_cnn.module, x, target, random_order(16, 64, seed=1), baseline=0.0)
    assert ig_curves.deletion_auc < rnd.deletion_auc
    assert ig_curves.insertion_auc > rnd.insertion_auc


def test_completeness_error_by_hand() -> None:
    x = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    target = torch.tensor([0])  # f(x) - f(0) = 1 - 2 = -1
    exact = WEIGHTS[0] * x
    assert completeness_error(linear_module(), x, target, exact, baseline=0.0) == pytest.approx(0.0, abs=1e-6)
    assert completeness_error(linear_module(), x, target, exact * 1.5, baseline=0.0) == pytest.approx(0.5)


def test_sensitivity_and_lipschitz_of_a_linear_models_saliency_are_zero() -> None:
    ctx = tabular_context(torch.rand(5, 4))
    model = linear_module()
    fn = lambda xx, tt: attribute("saliency", model, xx, tt, ctx).values
    x, t = torch.rand(3, 4), torch.tensor([0, 1, 2])
    kw = {"radius": 0.05, "value_range": (0.0, 1.0), "perturbations": 4}
    out = max_sensitivity(fn, model, x, t, fn(x, t), **kw)
    kept = np.isfinite(out.per_sample)
    assert kept.any() and (out.per_sample[kept] == 0.0).all() and (out.lipschitz[kept] == 0.0).all()
    # the identity map: it moves as the input does, at most the radius in every coordinate; its Lipschitz constant is 1
    ident = lambda xx, tt: xx.clone()
    out = max_sensitivity(ident, model, x, t, x.clone(), **kw)
    s = out.per_sample[np.isfinite(out.per_sample)]
    assert len(s) and (s > 0).all() and (s <= 0.05 * 2 / float(x.norm(dim=1).min())).all()
    np.testing.assert_allclose(out.lipschitz[np.isfinite(out.lipschitz)], 1.0, rtol=1e-9)
