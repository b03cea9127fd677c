"""SHAP: the target output only, DeepExplainer's fallback, Kernel SHAP on raw columns."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from explain_helpers import WEIGHTS, FunctionalReLU, ReusedReLU, linear_module, tabular_context

from dlaudit.errors import AnalysisError, ConfigError
from dlaudit.explain import ExplainContext, ExplainSettings, attribute
from dlaudit.explain._common import columns_for
from dlaudit.explain._structure import relu_problems
from dlaudit.models import CNN, MLP

X = torch.tensor([[0.2, 0.4, 0.6, 0.8], [1.0, 0.0, 0.5, 0.25]])
TARGET = torch.tensor([0, 2])


def test_relu_problems_finds_functional_and_reused_relus() -> None:
    assert relu_problems(CNN((1, 8, 8), 10)) == []
    assert relu_problems(MLP((4,), 3)) == []
    assert relu_problems(FunctionalReLU()) == ["functional relu at relu"]
    assert relu_problems(ReusedReLU()) == ["module 'act' is used 2 times"]
    assert relu_problems(torch.jit.script(MLP((4,), 3))) is None  # cannot be traced: unknown


def test_gradient_shap_of_a_linear_model_with_one_background_row() -> None:
    """Expected gradients with a single background point b: W[target] * (x - b), exactly."""
    b = torch.full((1, 4), 0.5)
    ctx = tabular_context(b, shap_explainer="gradient", settings=ExplainSettings(shap_samples=20))
    res = attribute("shap", linear_module(), X, TARGET, ctx)
    torch.testing.assert_close(res.values, WEIGHTS[TARGET] * (X - b))
    assert res.extras["explainer"] == "gradient"


def test_deep_shap_adds_up_on_the_cnn(digits_cnn, digits_test) -> None:
    ctx = ExplainContext("image", (0.0, 1.0), digits_test.x[-20:], shap_explainer="deep")
    x = digits_test.x[:4]
    res = attribute("shap", digits_cnn.module, x, digits_cnn.predict(x), ctx)
    assert res.extras["explainer"] == "deep"
    assert res.extras["additivity_error"] < 1e-3
    assert not res.findings


@pytest.mark.parametrize("model_cls", [FunctionalReLU, ReusedReLU])
def test_deep_shap_falls_back_to_gradient_with_a_finding(model_cls: type) -> None:
    ctx = tabular_context(torch.rand(10, 4), shap_explainer="deep", settings=ExplainSettings(shap_samples=20))
    res = attribute("shap", model_cls().eval(), X, TARGET, ctx)
    assert res.values.shape == X.shape
    assert res.extras["explainer"] == "gradient (fallback from deep)"
    assert res.findings[0][0] == "warning"
    assert "DeepExplainer needs every non-linearity to be its own module" in res.findings[0][1]


def test_kernel_shap_on_raw_columns_adds_up(credit_bundle) -> None:
    from dlaudit.explain._common import batched_probabilities
    from dlaudit.explain.shap import _kmeans_background

    data = credit_bundle.card
    columns = columns_for(6, data.feature_names, data.encoder)
    gen = torch.Generator().manual_seed(0)
    bg = torch.cat(
        [
            torch.rand(60, 4, generator=gen),
            torch.nn.functional.one_hot(torch.randint(0, 2, (60,), generator=gen), 2).float(),
        ],
        dim=1,
    )
    ctx = ExplainContext("tabular", (0.0, 1.0), bg, columns=columns, settings=ExplainSettings(kernel_centres=5))
    x = bg[:3]
    target = credit_bundle.predict(x)
    res = attribute("shap", credit_bundle.module, x, target, ctx)
    assert res.extras["explainer"] == "kernel"
    phi = res.extras["column_values"]
    assert phi.shape == (3, 5)  # income, debt, age, years_employed, sex
    summary = _kmeans_background(ctx)
    expected = np.average(
        batched_probabilities(credit_bundle.module, torch.from_numpy(summary.data).float()).numpy(),
        axis=0,
        weights=summary.weights,
    )
    change = (
        batched_probabilities(credit_bundle.module, x).numpy()[np.arange(3), target.numpy()] - expected[target.numpy()]
    )
    np.testing.assert_allclose(phi.sum(axis=1), change, atol=1e-4)
    # sex's value sits on the active one-hot feature only
    active = x[:, 4:].argmax(dim=1)
    for i in range(3):
        assert res.values[i, 4 + int(1 - active[i])] == 0


def test_kernel_shap_refuses_images_and_unknown_explainers(image_context: ExplainContext) -> None:
    image_context.shap_explainer = "kernel"
    with pytest.raises(AnalysisError, match="KernelExplainer is for tabular models"):
        attribute(
            "shap", CNN((1, 8, 8), 3, channels=2, hidden=4), torch.rand(1, 1, 8, 8), torch.tensor([0]), image_context
        )
    image_context.shap_explainer = "tree"
    with pytest.raises(ConfigError, match="unknown SHAP explainer 'tree'; choose from: auto, gradient, deep, kernel"):
        attribute(
            "shap", CNN((1, 8, 8), 3, channels=2, hidden=4), torch.rand(1, 1, 8, 8), torch.tensor([0]), image_context
        )


def test_shap_leaves_the_global_numpy_generator_alone() -> None:
    np.random.seed(123)
    expected = np.random.random()
    np.random.seed(123)
    attribute(
        "shap",
        linear_module(),
        X,
        TARGET,
        tabular_context(torch.rand(5, 4), shap_explainer="gradient", settings=ExplainSettings(shap_samples=10)),
    )
    assert np.random.random() == expected
