"""explain(): sample choice, targets, skipped methods, the report section, the model left as found."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import dlaudit
from dlaudit.errors import ConfigError
from dlaudit.explain import DEFAULT_METHODS, EXPLAIN_METHODS, ExplainSettings, attribute, parse_methods
from dlaudit.explain.compute import resolve_target, select_samples
from dlaudit.explain.explanation import explain
from dlaudit.report.model import Report, Section

CHEAP = "saliency,ig,gradcam,occlusion"


def test_dlaudit_explain_is_the_package_and_explain_model_the_function() -> None:
    import dlaudit.explain as package

    assert dlaudit.explain is package and callable(dlaudit.explain_model)
    assert "explain" in dlaudit.list_analyses()
    assert dlaudit.list_analyses().index("explain") == dlaudit.list_analyses().index("performance") + 1


def test_unknown_method_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as err:
        parse_methods("saliency,guided")
    assert (
        str(err.value)
        == "unknown explanation method(s) guided; choose from: saliency, ig, smoothgrad, gradcam, deeplift, occlusion, lime, shap"
    )
    assert parse_methods(None) == list(DEFAULT_METHODS)
    assert parse_methods(["IG", " lime ", "ig"]) == ["ig", "lime"]


def test_select_samples_mixes_correct_and_wrong() -> None:
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2])
    pred = y.clone()
    pred[[1, 5, 9]] = 0
    idx = select_samples(pred, y, 8, seed=0)
    wrong = [int(i) for i in idx if pred[i] != y[i]]
    assert len(idx) == 8 and len(set(idx.tolist())) == 8
    assert len(wrong) == 2  # a quarter of 8
    assert torch.equal(idx, select_samples(pred, y, 8, seed=0))
    assert len(select_samples(pred, y, 50)) == 12


def test_resolve_target() -> None:
    y, pred = torch.tensor([0, 1, 2]), torch.tensor([1, 1, 0])
    names = ["cat", "dog", "7"]
    assert resolve_target("predicted", y, pred, names).tolist() == [1, 1, 0]
    assert resolve_target("true", y, pred, names).tolist() == [0, 1, 2]
    assert resolve_target("dog", y, pred, names).tolist() == [1, 1, 1]
    assert resolve_target("7", y, pred, names).tolist() == [2, 2, 2]  # a class name before an index
    assert resolve_target(0, y, pred, names).tolist() == [0, 0, 0]
    with pytest.raises(
        ConfigError, match="unknown explanation target 'cow'; use 'predicted', 'true', or a class: cat, dog, 7"
    ):
        resolve_target("cow", y, pred, names)


def test_explain_on_the_digits_cnn(digits_cnn, digits_test) -> None:
    exp = dlaudit.explain_model(digits_cnn, digits_test, methods="saliency,ig", n=16, seed=0)
    assert set(exp.attributions) == {"saliency", "ig"}
    assert all(a.shape == (16, 1, 8, 8) for a in exp.attributions.values())
    m = exp.metrics
    assert m["explain.ig.completeness_error"] < 0.01
    assert m["explain.saliency.sanity_rank_corr"] < 0.5
    assert m["explain.ig.deletion_auc"] < m["explain.ig.random_deletion_auc"]
    assert m["explain.ig.insertion_auc"] > m["explain.ig.random_insertion_auc"]
    for name in ("deletion_auc", "insertion_auc", "random_deletion_auc", "sanity_rank_corr", "sensitivity"):
        assert isinstance(m[f"explain.saliency.{name}"], float)
    assert int((exp.y != exp.pred).sum()) >= 1 and int((exp.y == exp.pred).sum()) >= 1
    sec = exp.section
    assert sec.params["background"].endswith("the training split of digits")
    assert [t.title for t in sec.tables] == [
        "Explained samples",
        "How far to trust each method",
        "Sanity check: cascading randomisation",
    ]
    assert len(sec.figures) == 4  # two overlay grids, activation maps, curves


def test_same_seed_same_numbers(linear_bundle, linear_data) -> None:
    run = lambda seed: explain(linear_bundle, linear_data, methods="smoothgrad,lime", n=4, fast=True, seed=seed).metrics
    first = run(0)
    assert run(0) == first
    assert run(1) != first


def test_skipped_methods_and_n_larger_than_the_data(linear_bundle, linear_data) -> None:
    exp = explain(linear_bundle, linear_data, methods="saliency,gradcam", n=100, fast=True)
    assert exp.skipped == {"gradcam": "Grad-CAM explains image models (inputs shaped N, C, H, W); this is tabular data"}
    assert exp.x.shape == (24, 4)
    messages = [f.message for f in exp.section.findings]
    assert "asked for 100 samples but the data holds 24; explaining all of them" in messages
    assert any(msg.startswith("Grad-CAM skipped: ") for msg in messages)
    assert not any(m.name.startswith("explain.gradcam.") for m in exp.section.metrics)
    assert exp.section.params["settings"] == ExplainSettings.fast().to_dict()
    torch.testing.assert_close(exp.attributions["saliency"], linear_bundle.module[0].weight.detach()[exp.target])


def test_target_true_label_and_named_class(linear_bundle, linear_data) -> None:
    exp = explain(linear_bundle, linear_data, methods="saliency", n=6, target="true", quality=False)
    assert torch.equal(exp.target, exp.y)
    exp = explain(linear_bundle, linear_data, methods="saliency", n=6, target="z", quality=False)
    assert exp.target.tolist() == [2] * 6
    assert exp.section.metrics == []  # no trust metrics asked for


def test_tabular_section_on_synthetic_credit(credit_bundle, credit_splits) -> None:
    exp = explain(credit_bundle, credit_splits.test, methods="lime,shap,gradcam", n=6, fast=True)
    assert set(exp.attributions) == {"lime", "shap"} and "gradcam" in exp.skipped
    assert all(a.shape == (6, 6) for a in exp.attributions.values())
    assert exp.section.params["explains"] == {"lime": "probability", "shap": "probability"}
    assert exp.section.params["background"].endswith("the training split of synthetic-credit")
    captions = [f.caption for f in exp.section.figures]
    assert sum("waterfall per explained row" in c for c in captions) == 2  # LIME and SHAP, as shap users expect
    assert sum("summary: one dot per explained row" in c for c in captions) == 2  # and a beeswarm over the rows
    assert any(c.startswith("SHAP waterfall per explained row: from the base value E[f(x)]") for c in captions)
    # a categorical column's weight sits on the active one-hot feature (sex=female or sex=male) only
    lime = exp.attributions["lime"]
    assert ((lime[:, 4] != 0) & (lime[:, 5] != 0)).sum() == 0


def _snapshot(module: nn.Module) -> dict:
    return {
        "training": [m.training for m in module.modules()],
        "requires_grad": [p.requires_grad for p in module.parameters()],
        "grads": [p.grad for p in module.parameters()],
        "hooks": [
            len(m._forward_hooks)
            + len(m._forward_pre_hooks)
            + len(m._backward_hooks)
            + len(getattr(m, "_backward_pre_hooks", {}))
            for m in module.modules()
        ],
        "attributes": [sorted(vars(m)) for m in module.modules()],
        "state": {k: v.clone() for k, v in module.state_dict().items()},
    }


@pytest.mark.parametrize("name", list(EXPLAIN_METHODS))
def test_every_method_leaves_the_model_as_found(name: str, digits_cnn, digits_test) -> None:
    """Training mode, requires_grad, hooks, gradients, attributes and weights all unchanged."""
    from dlaudit.explain import ExplainContext

    module = copy.deepcopy(digits_cnn.module)
    module.train()  # a model handed over in training mode ...
    module[0].weight.requires_grad_(False)  # ... with one frozen tensor
    before = _snapshot(module)
    ctx = ExplainContext(
        "image",
        (0.0, 1.0),
        digits_test.x[:20],
        settings=ExplainSettings.fast(),
        shap_explainer="deep" if name == "shap" else "auto",
    )
    x = digits_test.x[:3]
    attribute(name, module, x, torch.tensor([0, 1, 2]), ctx)
    after = _snapshot(module)
    for key in ("training", "requires_grad", "hooks", "attributes"):
        assert after[key] == before[key], key
    assert all(g is None for g in after["grads"])
    assert all(torch.equal(after["state"][k], v) for k, v in before["state"].items())


def test_registered_analysis_runs_in_a_report(digits_cnn, digits_test) -> None:
    report = dlaudit.audit(
        digits_cnn, digits_test, checks=["explain"], fast=True, params={"explain": {"methods": CHEAP, "n": 6}}
    )
    sec = report.section("explain")
    assert sec.status == "ok", sec.reason
    assert sec.params["fast"] is True and sec.params["n"] == 6
    assert "explain.gradcam.sanity_rank_corr" in report.metrics
    back = Report.from_dict(report.to_dict(include_figures=True))
    assert back.metrics == report.metrics
    assert [f.message for f in back.section("explain").findings] == [f.message for f in sec.findings]


def test_a_bad_method_in_a_report_fails_only_its_section(digits_cnn, digits_test) -> None:
    report = dlaudit.audit(
        digits_cnn, digits_test, checks=["explain"], fast=True, params={"explain": {"methods": "nope"}}
    )
    sec = report.section("explain")
    assert sec.status == "error" and "choose from: saliency" in sec.reason
    assert isinstance(sec, Section)


def test_explain_with_every_method_and_trust_metric_leaves_the_model_as_found(digits_test) -> None:
    from dlaudit.card import ModelCard
    from dlaudit.models import CNN

    torch.manual_seed(0)
    module = CNN((1, 8, 8), 10, channels=4, hidden=16)
    bundle = dlaudit.ModelBundle(module, ModelCard(input_shape=(1, 8, 8), num_classes=10), device="cpu")
    bundle.module.train()
    before = _snapshot(bundle.module)
    exp = explain(bundle, digits_test, n=3, fast=True, shap_explainer="deep")
    assert set(exp.attributions) == set(EXPLAIN_METHODS)
    after = _snapshot(bundle.module)
    for key in ("training", "requires_grad", "hooks", "attributes"):
        assert after[key] == before[key], key
    assert all(torch.equal(after["state"][k], v) for k, v in before["state"].items())


def test_torchscript_model_gets_gradcam_and_the_sanity_check(digits_test, tmp_path) -> None:
    from dlaudit.models import CNN

    torch.manual_seed(0)
    path = tmp_path / "cnn.ts"
    eager = CNN((1, 8, 8), 10, channels=2, hidden=8).eval()
    torch.jit.save(torch.jit.script(eager), str(path))
    bundle = dlaudit.load_model(path, card={"input_shape": [1, 8, 8], "num_classes": 10}, device="cpu")
    exp = explain(bundle, digits_test, methods="saliency,gradcam,deeplift", n=2, fast=True)
    assert set(exp.attributions) == {"saliency", "gradcam"}
    assert "non-linearity modules" in exp.skipped["deeplift"]
    sanity = next(m for m in exp.section.metrics if m.name == "explain.saliency.sanity_rank_corr")
    assert sanity.value is not None and sanity.note == ""
    assert exp.metrics["explain.gradcam.sanity_rank_corr"] is not None
    assert exp.details["gradcam"].extras["layer"] == "0"  # the last (only) convolution, by its own name
    reference = explain(
        dlaudit.ModelBundle(eager, bundle.card, device="cpu"), digits_test, methods="gradcam", n=2, fast=True
    )
    assert torch.allclose(exp.attributions["gradcam"], reference.attributions["gradcam"], atol=1e-5)


def test_a_warning_for_every_method_is_logged_once_with_a_count(digits_test, monkeypatch, caplog) -> None:
    import logging

    from dlaudit.card import ModelCard
    from dlaudit.errors import AnalysisError
    from dlaudit.models import CNN

    def refuse(*args, **kwargs):
        raise AnalysisError("this model cannot be randomised")

    monkeypatch.setattr("dlaudit.explain.compute.sanity_check", refuse)
    torch.manual_seed(0)
    bundle = dlaudit.ModelBundle(
        CNN((1, 8, 8), 10, channels=2, hidden=8), ModelCard(input_shape=(1, 8, 8), num_classes=10)
    )
    with caplog.at_level(logging.WARNING, logger="dlaudit.explain.compute"):
        exp = explain(bundle, digits_test, methods="saliency,ig,smoothgrad", n=2, fast=True)
    sanity = [r.getMessage() for r in caplog.records if "sanity_rank_corr" in r.getMessage()]
    assert len(sanity) == 1 and "(3 times: saliency, ig, smoothgrad)" in sanity[0], sanity
    assert all(exp.metrics[f"explain.{m}.sanity_rank_corr"] is None for m in ("saliency", "ig", "smoothgrad"))
