"""Explanation methods declare what they are; a newly registered method runs in explain() as it declares."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import nn

from dlaudit.errors import ConfigError
from dlaudit.explain import EXPLAIN_METHODS, Attribution, ExplainContext, Method, explain, get_method, register_method
from dlaudit.explain.methods import DEFAULT_METHODS, list_methods, parse_methods
from dlaudit.modalities import IMAGE, TABULAR


def gradient_times_input(module: nn.Module, x: torch.Tensor, target: torch.Tensor, ctx: ExplainContext) -> Attribution:
    """Gradient x (input - baseline): complete for a linear model."""
    x = x.clone().requires_grad_(True)
    out = module(x).gather(1, target[:, None]).sum()
    (grad,) = torch.autograd.grad(out, x)
    return Attribution(grad * (x.detach() - ctx.baseline(x)))


GXI = Method(
    "gxi",
    "Gradient x Input",
    gradient_times_input,
    "https://arxiv.org/abs/1605.01713",
    multiplies_by_inputs=True,
    complete=True,
    gradients=True,
    default=False,
)


@pytest.fixture()
def gxi() -> Iterator[Method]:
    register_method(GXI)
    yield GXI
    del EXPLAIN_METHODS["gxi"]


def test_the_built_in_methods_declare_what_they_are() -> None:
    complete = [n for n in DEFAULT_METHODS if EXPLAIN_METHODS[n].complete]
    times = [n for n in DEFAULT_METHODS if EXPLAIN_METHODS[n].multiplies_by_inputs]
    surrogates = [n for n in DEFAULT_METHODS if EXPLAIN_METHODS[n].surrogate]
    assert complete == ["ig", "deeplift"]
    assert times == ["ig", "deeplift", "occlusion", "shap"]
    assert surrogates == ["lime", "shap"]
    assert EXPLAIN_METHODS["lime"].explains == "probability"


def test_per_row_follows_the_settings() -> None:
    background = torch.zeros(2, 4)
    tabular = ExplainContext("tabular", (0.0, 1.0), background)
    image = ExplainContext("image", (0.0, 1.0), background)
    shap, lime = EXPLAIN_METHODS["shap"], EXPLAIN_METHODS["lime"]
    assert shap.runs_per_row(tabular) and not shap.runs_per_row(image)  # Kernel SHAP on tables only
    tabular.shap_explainer = "gradient"
    assert not shap.runs_per_row(tabular)
    assert lime.runs_per_row(image) and not EXPLAIN_METHODS["ig"].runs_per_row(tabular)


def test_a_registered_method_runs_with_its_capabilities(gxi: Method, linear_bundle, linear_data) -> None:
    assert "gxi" in list_methods() and get_method("gxi") is gxi
    assert "gxi" not in parse_methods(None)  # default=False: only when named
    exp = explain(linear_bundle, linear_data, methods="gxi,saliency", n=6, fast=True)
    metrics = exp.metrics
    # complete=True: its completeness is measured, and it is exact for a linear model with its logit
    assert metrics["explain.gxi.completeness_error"] == pytest.approx(0.0, abs=1e-5)
    assert "explain.saliency.completeness_error" not in metrics
    assert {"explain.gxi.deletion_auc", "explain.gxi.sanity_rank_corr"} <= set(metrics)
    assert gxi.scales_with_input(TABULAR) and gxi.applies_to(IMAGE) is None


def test_registering_checks_the_method_and_its_name(gxi: Method) -> None:
    with pytest.raises(ConfigError, match="already registered"):
        register_method(Method("gxi", "Other", gradient_times_input, ""))
    with pytest.raises(ConfigError, match="takes a Method"):
        register_method("gxi")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown explanation method 'nope'; choose from: saliency, ig"):
        get_method("nope")
