"""captum methods on models whose answers can be worked out by hand."""

from __future__ import annotations

import pytest
import torch
from explain_helpers import BIAS, WEIGHTS, FunctionalReLU, ReusedReLU, linear_module, tabular_context
from torch import nn

from dlaudit.errors import AnalysisError, ConfigError
from dlaudit.explain import ExplainContext, ExplainSettings, attribute
from dlaudit.explain.saliency import conv_layers, gradcam_layer, layer_activations
from dlaudit.models import CNN, MLP

X = torch.tensor([[0.2, 0.4, 0.6, 0.8], [1.0, 0.0, 0.5, 0.25]])
TARGET = torch.tensor([0, 2])


def test_saliency_of_a_linear_model_is_its_weights() -> None:
    ctx = tabular_context(torch.rand(10, 4))
    out = attribute("saliency", linear_module(), X, TARGET, ctx).values
    assert torch.equal(out, WEIGHTS[TARGET])


def test_integrated_gradients_of_a_linear_model_is_weight_times_input() -> None:
    ctx = tabular_context(torch.rand(10, 4))
    res = attribute("ig", linear_module(), X, TARGET, ctx)
    torch.testing.assert_close(res.values, WEIGHTS[TARGET] * X)
    # completeness: sum of attributions = f(x) - f(0)
    change = (X @ WEIGHTS.T + BIAS).gather(1, TARGET[:, None])[:, 0] - BIAS[TARGET]
    torch.testing.assert_close(res.values.sum(dim=1), change)
    assert res.extras["delta"].abs().max() < 1e-5


def test_deeplift_and_occlusion_of_a_linear_model() -> None:
    ctx = tabular_context(torch.rand(10, 4))
    for name in ("deeplift", "occlusion"):
        out = attribute(name, linear_module(), X, TARGET, ctx).values
        torch.testing.assert_close(out, WEIGHTS[TARGET] * X, msg=name)


def test_smoothgrad_noise_is_scaled_to_the_value_range() -> None:
    ctx = ExplainContext("tabular", (0.0, 2.0), torch.rand(10, 4), settings=ExplainSettings(smoothgrad_samples=4))
    res = attribute("smoothgrad", linear_module(), X, TARGET, ctx)
    assert res.extras["stdev"] == pytest.approx(0.3)  # 0.15 * (2 - 0), not captum's 1.0
    torch.testing.assert_close(res.values, WEIGHTS[TARGET])  # a linear model's gradient ignores the noise


def test_smoothgrad_is_seeded() -> None:
    model = MLP((4,), 3, hidden=(8,)).eval()
    a = attribute("smoothgrad", model, X, TARGET, tabular_context(torch.rand(10, 4), seed=3)).values
    b = attribute("smoothgrad", model, X, TARGET, tabular_context(torch.rand(10, 4), seed=3)).values
    assert torch.equal(a, b)


def test_integrated_gradients_memory_is_bounded_by_internal_batch_size() -> None:
    """However many inputs, one forward pass holds at most internal_batch_size rows."""
    model = MLP((4,), 3, hidden=(8,)).eval()
    sizes: list[int] = []
    handle = model[1].register_forward_hook(lambda _m, inp, _o: sizes.append(len(inp[0])))
    settings = ExplainSettings(ig_steps=16, internal_batch_size=64)
    try:
        out = attribute(
            "ig",
            model,
            torch.rand(40, 4),
            torch.zeros(40, dtype=torch.long),
            tabular_context(torch.rand(5, 4), settings=settings),
        )
    finally:
        handle.remove()
    assert out.values.shape == (40, 4)
    assert max(sizes) <= 64


def test_gradcam_finds_the_last_convolution(image_context: ExplainContext) -> None:
    model = CNN((1, 8, 8), 10, channels=4, hidden=8).eval()
    x = torch.rand(3, 1, 8, 8)
    assert [n for n, _ in conv_layers(model, x)] == ["0"]
    assert gradcam_layer(model, x)[0] == "0"
    res = attribute("gradcam", model, x, torch.tensor([0, 1, 2]), image_context)
    assert res.values.shape == x.shape
    assert res.extras["layer"] == "0"
    assert (res.values >= 0).all()  # ReLU of the weighted activations


def test_gradcam_on_a_named_layer_and_an_unknown_one(image_context: ExplainContext) -> None:
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(2, 2, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(128, 3),
    ).eval()
    x = torch.rand(2, 1, 8, 8)
    assert gradcam_layer(model, x)[0] == "2"
    image_context.gradcam_layer = "0"
    assert attribute("gradcam", model, x, torch.tensor([0, 1]), image_context).extras["layer"] == "0"
    with pytest.raises(
        ConfigError, match=r"Grad-CAM layer 'nope' is not a module of this model; convolutional layers: 0, 2"
    ):
        gradcam_layer(model, x, "nope")


def test_gradcam_does_not_apply_to_an_mlp(image_context: ExplainContext) -> None:
    model = MLP((1, 8, 8), 10, hidden=(8,)).eval()
    with pytest.raises(AnalysisError, match="needs a 2-D convolutional layer and this model has none"):
        attribute("gradcam", model, torch.rand(2, 1, 8, 8), torch.tensor([0, 1]), image_context)


def test_gradcam_does_not_apply_to_tabular_data() -> None:
    with pytest.raises(AnalysisError, match="explains image models"):
        attribute("gradcam", linear_module(), X, TARGET, tabular_context(torch.rand(4, 4)))


def test_deeplift_skips_a_reused_relu_and_warns_on_a_functional_one() -> None:
    ctx = tabular_context(torch.rand(4, 4))
    with pytest.raises(AnalysisError, match="module 'act' is used 2 times"):
        attribute("deeplift", ReusedReLU().eval(), X, TARGET, ctx)
    res = attribute("deeplift", FunctionalReLU().eval(), X, TARGET, ctx)
    assert res.values.shape == X.shape
    assert res.findings and "functional" in res.findings[0][1]


def test_layer_activations_of_every_convolution() -> None:
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Conv2d(2, 5, 3), nn.ReLU(), nn.Flatten(), nn.Linear(180, 3)
    ).eval()
    acts = layer_activations(model, torch.rand(1, 1, 8, 8))
    assert [(n, tuple(a.shape)) for n, a in acts] == [("0", (1, 2, 8, 8)), ("2", (1, 5, 6, 6))]
