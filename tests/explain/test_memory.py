"""Memory-bounded batching: sizes, the measured cost of a row, and the same maps under any budget."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from explain_helpers import tabular_context
from torch import nn

import dlaudit
from dlaudit.cli import cli
from dlaudit.errors import ConfigError
from dlaudit.explain import ExplainContext, ExplainSettings, attribute
from dlaudit.explain.explanation import Settings
from dlaudit.explain.memory import BACKWARD_FACTOR, activation_bytes, chunks, parse_size, row_budget
from dlaudit.models import CNN, MLP


def test_sizes_parse_in_powers_of_1024() -> None:
    assert parse_size("2G") == 2 * 2**30
    assert parse_size("500M") == 500 * 2**20
    assert parse_size("1.5GB") == 3 * 2**29
    assert parse_size("64kib") == 64 * 2**10
    assert parse_size("4096") == parse_size(4096) == 4096


@pytest.mark.parametrize("bad", ["", "lots", "2X", "-1G", "0", "0.1"])
def test_a_bad_size_says_what_to_give(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"^--max-memory takes a size such as 2G, 500M or 1.5GB"):
        parse_size(bad)


def test_a_bad_size_is_refused_before_any_work() -> None:
    with pytest.raises(ConfigError, match="--max-memory takes a size"):
        Settings.build(max_memory="two gigs")


def test_activation_bytes_count_every_distinct_output_once() -> None:
    """Input 4 floats, Linear 8, ReLU 8 (a new tensor), Linear 3: (4 + 8 + 8 + 3) * 4 bytes; the
    Sequential's own output is its last child's and counts once."""
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).eval()
    assert activation_bytes(model, torch.rand(5, 4)) == (4 + 8 + 8 + 3) * 4
    assert not model._forward_hooks and not any(m._forward_hooks for m in model.modules())


def test_row_budget_is_the_budget_over_a_rows_cost() -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).eval()
    per_row = (4 + 8 + 8 + 3) * 4
    ctx = tabular_context(torch.rand(5, 4), settings=ExplainSettings(max_memory=10 * per_row * BACKWARD_FACTOR))
    assert row_budget(model, torch.rand(2, 4), ctx) == 10
    assert row_budget(model, torch.rand(2, 4), ctx, backward=False) == 10 * BACKWARD_FACTOR
    tiny = replace(ctx, settings=ExplainSettings(max_memory=1), cache={})
    assert row_budget(model, torch.rand(2, 4), tiny) == 1  # under one row: a row at a time
    assert row_budget(model, torch.rand(2, 4), replace(ctx, settings=ExplainSettings(), cache={})) <= 512


def test_chunks_cover_the_range_in_order() -> None:
    assert [(s.start, s.stop) for s in chunks(7, 3)] == [(0, 3), (3, 6), (6, 7)]
    assert list(chunks(0, 3)) == []


def _passes(model: nn.Module, name: str, x: torch.Tensor, target: torch.Tensor, ctx: ExplainContext):
    """The attributions and the largest batch any forward pass held."""
    sizes: list[int] = []
    handle = model.register_forward_hook(lambda _m, inp, _o: sizes.append(len(inp[0])))
    try:
        values = attribute(name, model, x, target, ctx).values
    finally:
        handle.remove()
    return values, max(sizes)


IMAGE_METHODS = ("saliency", "ig", "smoothgrad", "gradcam", "deeplift", "occlusion", "lime", "shap")


def test_image_maps_are_the_same_under_any_budget(digits_splits) -> None:
    """Two budgets that give different chunk sizes: every method's passes shrink, its maps do not change."""
    torch.manual_seed(0)
    model = CNN((1, 8, 8), 10).eval()
    x, target = digits_splits.test.x[:6].float(), torch.arange(6) % 10
    per_row = activation_bytes(model, x)
    settings = ExplainSettings(ig_steps=8, smoothgrad_samples=4, lime_samples=60, shap_samples=8, shap_background=10)
    bg = digits_splits.train.x[:20]
    small = ExplainContext(
        "image", (0.0, 1.0), bg, settings=replace(settings, max_memory=5 * per_row * BACKWARD_FACTOR)
    )
    large = ExplainContext("image", (0.0, 1.0), bg, settings=replace(settings, max_memory=10**9))
    for name in IMAGE_METHODS:
        a, a_rows = _passes(model, name, x, target, small)
        b, b_rows = _passes(model, name, x, target, large)
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6, msg=name)
        limit = 5 * BACKWARD_FACTOR if name in ("occlusion", "lime") else 5  # forward-only passes pay no backward
        assert a_rows <= limit < b_rows, (name, a_rows, b_rows)


def test_tabular_maps_are_the_same_under_any_budget(credit_bundle, credit_splits) -> None:
    """LIME (tabular) and Kernel SHAP under a 3-row and an unbounded budget."""
    from dlaudit.explain._common import columns_for

    model = credit_bundle.module
    x = credit_splits.test.x[:3].float()
    target = torch.tensor([0, 1, 0])
    per_row = activation_bytes(model, x)
    settings = ExplainSettings(lime_tabular_samples=100, kernel_samples=40, kernel_centres=4)
    cols = columns_for(x.shape[1], credit_splits.test.feature_names, credit_bundle.card.encoder)
    bg = credit_splits.train.x[:50]

    def ctx(budget: int) -> ExplainContext:
        return ExplainContext("tabular", (0.0, 1.0), bg, columns=cols, settings=replace(settings, max_memory=budget))

    for name in ("lime", "shap"):
        a, a_rows = _passes(model, name, x, target, ctx(3 * per_row))
        b, b_rows = _passes(model, name, x, target, ctx(10**9))
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6, msg=name)
        assert a_rows <= 3 < b_rows, (name, a_rows, b_rows)


def test_integrated_gradients_splits_one_examples_steps_to_fit() -> None:
    """200 steps of one example under a 16-row budget: no pass holds more than 16 rows, the same map."""
    model = MLP((4,), 3, hidden=(8,)).eval()
    x, target = torch.rand(2, 4), torch.tensor([0, 2])
    per_row = activation_bytes(model, x) * BACKWARD_FACTOR
    settings = ExplainSettings(ig_steps=200)
    a, a_rows = _passes(
        model, "ig", x, target, tabular_context(torch.rand(5, 4), settings=replace(settings, max_memory=16 * per_row))
    )
    b, b_rows = _passes(model, "ig", x, target, tabular_context(torch.rand(5, 4), settings=settings))
    assert a_rows <= 16 < b_rows
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


def test_deep_shap_splits_its_background_to_fit() -> None:
    """DeepExplainer pairs each example with every background row: under a 4-row budget, passes of 2 background
    rows (4 rows with the copies) and the same SHAP values and additivity as with the 10 rows at once."""
    torch.manual_seed(0)
    model = MLP((4,), 3, hidden=(8,)).eval()
    x, target = torch.rand(3, 4), torch.tensor([0, 2, 2])
    per_row = activation_bytes(model, x) * BACKWARD_FACTOR
    settings = ExplainSettings(shap_background=10)

    def ctx(budget: int | None) -> ExplainContext:
        return tabular_context(torch.rand(10, 4, generator=torch.Generator().manual_seed(1)), shap_explainer="deep",
                               settings=replace(settings, max_memory=budget))  # fmt: skip

    a, a_rows = _passes(model, "shap", x, target, ctx(4 * per_row))
    b, b_rows = _passes(model, "shap", x, target, ctx(10**9))
    assert a_rows <= 4 < b_rows
    assert attribute("shap", model, x, target, ctx(4 * per_row)).extras["explainer"] == "deep"  # not a fallback
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


@pytest.fixture(scope="module")
def cnn_file(digits_cnn, tmp_path_factory) -> Path:
    return dlaudit.save_model(digits_cnn, tmp_path_factory.mktemp("memory") / "cnn.pt")


@pytest.mark.parametrize("command", ["explain", "report"])
def test_a_bad_max_memory_is_one_line_and_exit_2(cnn_file: Path, command: str) -> None:
    args = [command, str(cnn_file), "--max-memory", "2X", "-q"]
    result = CliRunner().invoke(cli, args + (["--checks", "explain"] if command == "report" else []))
    assert result.exit_code == 2, result.output
    assert (
        "--max-memory takes a size such as 2G, 500M or 1.5GB (bytes, or K/M/G/T in powers of 1024), got '2X'"
        in result.output
    )
    assert "Traceback" not in result.output


def test_trust_metrics_are_the_same_under_any_budget(digits_cnn, digits_test, monkeypatch) -> None:
    """Deletion/insertion, ROAD, stability, random logit, sanity and completeness chunk their forward passes to the
    budget: a budget of a few rows shrinks every pass they make, and no number or interval moves (1e-6, relative for
    the unnormalised local Lipschitz estimate: float32 sums of a conv over other batch sizes)."""
    from dlaudit.explain.compute import Run

    module = digits_cnn.module
    per_row = activation_bytes(module, digits_test.x[:1].float())
    sizes: list[int] = []
    assessing = [False]
    assess = Run.assess_all

    def watched(self: Run) -> None:
        assessing[0] = True
        try:
            assess(self)
        finally:
            assessing[0] = False

    monkeypatch.setattr(Run, "assess_all", watched)

    def hook(_m: nn.Module, inp: tuple, _o: object) -> None:
        if assessing[0]:
            sizes.append(len(inp[0]))

    handle = module.register_forward_hook(hook)

    def run(budget: int) -> tuple[dict, int]:
        sizes.clear()
        kw = {"methods": "saliency,ig", "n": 8, "seed": 0, "fast": True, "max_memory": budget}
        sec = dlaudit.explain_model(digits_cnn, digits_test, **kw).section
        return {m.name: (m.value, m.ci) for m in sec.metrics if m.value is not None}, max(sizes)

    try:
        small, small_rows = run(3 * per_row)
        large, large_rows = run(10**9)
    finally:
        handle.remove()
    assert small.keys() == large.keys()
    names = [n for n in large if n.split(".")[-1] in TRUST_METRICS]
    assert {n.split(".")[-1] for n in names} == set(TRUST_METRICS), names
    for name in large:
        (va, ca), (vb, cb) = small[name], large[name]
        assert va == pytest.approx(vb, rel=1e-6, abs=1e-6), name
        assert (ca is None) == (cb is None) and (ca is None or ca == pytest.approx(cb, rel=1e-6, abs=1e-6)), name
    assert small_rows <= 3 < large_rows, (small_rows, large_rows)


TRUST_METRICS = (
    "deletion_auc",
    "insertion_auc",
    "road_morf_auc",
    "road_lerf_auc",
    "sensitivity",
    "local_lipschitz",
    "random_logit_similarity",
    "sanity_rank_corr",
    "completeness_error",
)
