"""The explanation engine gives the peers' attributions (captum, shap) to 1e-5, whatever the passes' size."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import IntegratedGradients, Occlusion

from dlaudit.explain import ExplainContext, ExplainSettings, attribute
from dlaudit.explain.engine import occlusion_windows, rows_per_pass, shap_draws
from dlaudit.explain.shap import TargetOutput
from dlaudit.models import CNN, MLP

TOL = {"atol": 1e-5, "rtol": 1e-5}


@pytest.fixture(scope="module")
def cnn_case() -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    module = CNN((1, 9, 9), 4, channels=4, hidden=8).eval()
    x = torch.rand(6, 1, 9, 9)
    with torch.no_grad():
        target = module(x).argmax(1)
    if len(torch.unique(target)) < 2:  # the per-class grouping must be exercised
        target[:3] = (target[:3] + 1) % 4
    return module, x, target


def _ctx(x: torch.Tensor, **settings) -> ExplainContext:
    return ExplainContext("image", (0.0, 1.0), x, settings=ExplainSettings(**settings), seed=3)


@pytest.mark.parametrize("budget", [512, 8])
def test_integrated_gradients_equal_captums(cnn_case, budget: int) -> None:
    module, x, target = cnn_case
    ref, ref_delta = IntegratedGradients(module).attribute(
        x, baselines=torch.zeros_like(x), target=target, n_steps=8, return_convergence_delta=True
    )
    out = attribute("ig", module, x, target, _ctx(x, ig_steps=8, internal_batch_size=budget))
    torch.testing.assert_close(out.values, ref, **TOL)
    torch.testing.assert_close(out.extras["delta"], ref_delta, **TOL)


@pytest.mark.parametrize("budget", [512, 5])
def test_occlusion_equals_captums_with_cut_edge_windows(cnn_case, budget: int) -> None:
    module, x, target = cnn_case
    # 9x9, window 4, stride 2: ceil(5 / 2) + 1 = 4 positions, the last at 6..10, cut to 6..9 by captum's padding
    ref = Occlusion(module).attribute(
        x, sliding_window_shapes=(1, 4, 4), strides=(1, 2, 2), baselines=0.0, target=target, perturbations_per_eval=3
    )
    out = attribute("occlusion", module, x, target, _ctx(x, occlusion_window=4, internal_batch_size=budget))
    torch.testing.assert_close(out.values, ref, **TOL)


def test_occlusion_of_tabular_features_equals_captums() -> None:
    torch.manual_seed(1)
    module = MLP((5,), 3, hidden=(6,)).eval()
    x = torch.rand(7, 5) * 2 - 1
    target = torch.tensor([0, 1, 2, 0, 1, 2, 0])
    ctx = ExplainContext("tabular", (-1.0, 1.0), x)
    ref = Occlusion(module).attribute(x, sliding_window_shapes=(1,), strides=(1,), baselines=-1.0, target=target)
    torch.testing.assert_close(attribute("occlusion", module, x, target, ctx).values, ref, **TOL)


def test_occlusion_windows_follow_captums_order_and_cut_at_the_border() -> None:
    masks = occlusion_windows((1, 5, 5), (1, 3, 3), (1, 2, 2))
    assert masks.shape == (4, 1, 5, 5)
    assert masks[1, 0, 2:5, 0:3].all() and int(masks[1].sum()) == 9  # the first dimension moves fastest, as captum's
    masks = occlusion_windows((1, 4, 4), (1, 3, 3), (1, 2, 2))  # ceil(1/2) + 1 = 2 positions: 0..3 and 2..4 (cut)
    assert masks.shape == (4, 1, 4, 4)
    assert int(masks[3].sum()) == 4 and masks[3, 0, 2:4, 2:4].all()


@pytest.mark.parametrize("budget", [512, 7])
def test_gradient_shap_equals_shaps_gradient_explainer(cnn_case, budget: int) -> None:
    import shap

    module, x, target = cnn_case
    background = torch.rand(5, 1, 9, 9, generator=torch.Generator().manual_seed(2))
    ref = np.zeros(tuple(x.shape))
    for cls in torch.unique(target).tolist():
        idx = (target == cls).nonzero().flatten()
        vals = shap.GradientExplainer(TargetOutput(module, cls), background).shap_values(x[idx], nsamples=12, rseed=3)
        ref[idx.numpy()] = np.asarray(vals).reshape(len(idx), *x.shape[1:])
    ctx = ExplainContext(
        "image",
        (0.0, 1.0),
        background,
        settings=ExplainSettings(shap_samples=12, shap_background=5, internal_batch_size=budget),
        shap_explainer="gradient",
        seed=3,
    )
    out = attribute("shap", module, x, target, ctx)
    torch.testing.assert_close(out.values, torch.from_numpy(ref).float(), **TOL)


@pytest.mark.parametrize("background", [1, 2, 3, 100, 129])
def test_shap_draws_are_numpys_choice_then_uniform(background: int) -> None:
    state = np.random.RandomState(11)
    expected = [(state.choice(background), state.uniform()) for _ in range(3 * 40)]
    index, t = shap_draws(11, background, 3, 40)
    assert index.reshape(-1).tolist() == [int(i) for i, _ in expected]
    assert t.reshape(-1).tolist() == [u for _, u in expected]


def test_rows_per_pass_is_cache_sized_within_the_budget() -> None:
    assert rows_per_pass(torch.zeros(2, 1, 8, 8), 512) == 512
    assert rows_per_pass(torch.zeros(2, 3, 32, 32), 512) == (1 << 18) // 3072
    assert rows_per_pass(torch.zeros(2, 3, 224, 224), 512) == 16
    assert rows_per_pass(torch.zeros(2, 3, 224, 224), 4) == 4


class _ViewAfterConv(torch.nn.Module):
    """A model that flattens with ``view``, which a channels-last activation cannot take."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(2, 3, 3, padding=1)
        self.fc = torch.nn.Linear(3 * 6 * 6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv(x))
        return self.fc(h.view(h.shape[0], -1))


def test_occlusion_of_a_model_that_cannot_take_channels_last() -> None:
    torch.manual_seed(4)
    module = _ViewAfterConv().eval()
    x = torch.rand(3, 2, 6, 6)
    target = torch.tensor([0, 1, 3])
    weight = module.conv.weight
    ref = Occlusion(module).attribute(
        x, sliding_window_shapes=(2, 2, 2), strides=(2, 1, 1), baselines=0.0, target=target
    )
    out = attribute("occlusion", module, x, target, _ctx(x, occlusion_window=2))
    torch.testing.assert_close(out.values, ref, **TOL)
    assert module.conv.weight is weight and weight.is_contiguous()  # the model is left as it was
