"""Tabular distribution shift: each shift does what it says, seeded per sample, and the section reports it."""

from __future__ import annotations

import warnings

import pytest
import torch

import dlaudit
from dlaudit.card import ModelCard
from dlaudit.data import load_splits
from dlaudit.errors import ConfigError
from dlaudit.models.mlp import MLP
from dlaudit.robust.shift import KINDS, layout, passes, shift, shift_accuracy

ENCODER = {
    "numeric": [{"name": "a", "min": 0.0, "max": 1.0}, {"name": "b", "min": 0.0, "max": 1.0}],
    "categorical": [{"name": "c", "categories": ["x", "y", "z"]}],
    "target": "t",
    "classes": ["0", "1"],
}


def _rows(n: int = 400) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    num = torch.rand(n, 2, generator=gen)
    cat = torch.nn.functional.one_hot(torch.randint(0, 3, (n,), generator=gen), 3).float()
    return torch.cat([num, cat], dim=1)


def _stats(x: torch.Tensor) -> dict:
    return {"spread": x[:, :2].std(dim=0, unbiased=False), "median": x[:, :2].median(dim=0).values}


def test_each_shift_changes_what_it_names_and_nothing_else() -> None:
    x, lay = _rows(), layout(ENCODER)
    common = {"seed": 1, "index": torch.arange(len(x)), **_stats(x)}
    noisy = shift(x, "noise", 0.5, lay, **common)
    assert torch.equal(noisy[:, 2:], x[:, 2:]) and not torch.equal(noisy[:, :2], x[:, :2])
    assert float(noisy.min()) >= 0.0 and float(noisy.max()) <= 1.0
    gone = shift(x, "missing", 0.5, lay, **common)
    changed = gone[:, :2] != x[:, :2]
    assert bool((gone[:, :2][changed] == common["median"].expand_as(x[:, :2])[changed]).all())
    zeroed = gone[:, 2:].sum(dim=1) == 0
    assert 0.4 < float(zeroed.float().mean()) < 0.6  # a missing category: all zeros, at the rate asked for
    flipped = shift(x, "flip", 0.25, lay, **common)
    assert torch.equal(flipped[:, :2], x[:, :2]) and bool((flipped[:, 2:].sum(dim=1) == 1).all())
    moved = (flipped[:, 2:].argmax(1) != x[:, 2:].argmax(1)).float().mean()
    assert 0.18 < float(moved) < 0.32  # flipped always to another category
    cov = shift(x, "covariate", 1.0, lay, feature=1, **common)
    assert torch.equal(cov[:, [0, 2, 3, 4]], x[:, [0, 2, 3, 4]])
    assert float((cov[:, 1] - x[:, 1]).max()) == pytest.approx(float(common["spread"][1]), abs=1e-6)
    with pytest.raises(ConfigError, match="unknown shift"):
        shift(x, "rotate", 0.1, lay, **common)


def test_a_sample_s_shift_does_not_depend_on_the_others() -> None:
    x, lay = _rows(), layout(ENCODER)
    common = _stats(x)
    for kind in ("noise", "missing", "flip"):
        whole = shift(x, kind, 0.3, lay, seed=4, index=torch.arange(len(x)), **common)
        part = shift(x[100:150], kind, 0.3, lay, seed=4, index=torch.arange(100, 150), **common)
        assert torch.equal(whole[100:150], part)
        other = shift(x, kind, 0.3, lay, seed=5, index=torch.arange(len(x)), **common)
        assert not torch.equal(whole, other)


def test_a_model_that_reads_only_feature_b_is_hurt_most_by_b_s_noise() -> None:
    x = _rows()
    y = (x[:, 1] > 0.5).long()

    def predict(v: torch.Tensor) -> torch.Tensor:
        return (v[:, 1] > 0.5).long()

    res = shift_accuracy(predict, x, y, ENCODER, seed=0)
    assert res.clean_accuracy == 1.0 and set(res.accuracy) == set(KINDS)
    assert res.worst_noise_feature == "b" and res.feature_noise["a"] == 1.0 and res.feature_noise["b"] < 1.0
    assert res.accuracy["flip"] == {0.1: 1.0, 0.25: 1.0, 0.5: 1.0}  # it ignores the category
    noise = list(res.accuracy["noise"].values())
    assert noise == sorted(noise, reverse=True) and noise[-1] < 0.9
    assert res.worst_covariate_feature(2.0) == "b"
    assert res.imputed


@pytest.fixture(scope="module")
def credit() -> tuple[dlaudit.ModelBundle, object]:
    splits = load_splits("synthetic-credit")
    train = splits.train
    torch.manual_seed(0)
    module = MLP((6,), 2, hidden=(16,))
    opt = torch.optim.Adam(module.parameters(), lr=0.05)
    for _ in range(60):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(module(train.x), train.y).backward()
        opt.step()
    card = ModelCard(
        input_shape=(6,), num_classes=2, modality="tabular", architecture="mlp", arch_kwargs={"hidden": [16]},
        class_names=train.class_names, feature_names=train.feature_names, encoder=train.encoder,
        dataset="synthetic-credit",
    )  # fmt: skip
    return dlaudit.ModelBundle(module.eval(), card, device="cpu"), splits.test


def test_the_section_reports_the_shift_on_synthetic_credit(credit) -> None:
    bundle, data = credit
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sec = dlaudit.robustness(
            bundle, data, fast=True, n=200, steps=4, certify="off", smoothing=False, masking=False,
            attacks=["pgd_linf"], eps=[0.1], noise=[], min_eps_samples=8, min_eps_steps=4,
        )  # fmt: skip
    metrics = {m.name: m.value for m in sec.metrics}
    for kind, levels in (("noise", "0.1 0.25 0.5"), ("missing", "0.1 0.25 0.5"), ("flip", "0.1 0.25 0.5"),
                         ("covariate", "0.5 1 2")):  # fmt: skip
        for level in levels.split():
            assert 0.0 <= metrics[f"robustness.shift.{kind}.acc@{level}"] <= 1.0
    assert "robustness.shift.noise.worst_feature_acc@0.25" in metrics
    assert metrics["robustness.shift.noise.acc@0.5"] < metrics["robustness.clean_acc"]
    found = [f for f in sec.findings if f.check == "tabular-shift"]
    assert len(found) == 1 and "the feature whose noise hurts most is" in found[0].message
    assert any(t.title == "Accuracy under tabular distribution shift" for t in sec.tables)
    assert not any(name.startswith("robustness.corruption.") for name in metrics)


def test_passes_count_the_predictions_shift_accuracy_makes() -> None:
    calls = []

    def predict(v: torch.Tensor) -> torch.Tensor:
        calls.append(len(v))
        return (v[:, 1] > 0.5).long()

    x = _rows(50)
    shift_accuracy(predict, x, (x[:, 1] > 0.5).long(), ENCODER, seed=0)
    drawn, moved = passes(layout(ENCODER))
    assert len(calls) == drawn + moved == 3 + 3 + 3 + 2 + 2 * 3 + 1
    assert set(calls) == {50}


def test_the_robustness_estimate_prices_the_shift_by_its_passes(credit) -> None:
    from dlaudit.robust.analysis import Settings, estimate, overhead_costs, unit_costs

    bundle, data = credit
    s = Settings.build(bundle, fast=True, n=200)
    costs = {**unit_costs(bundle, data), **overhead_costs(bundle, data, s)}
    assert costs["shift_drawn"] > 0 and costs["shift_moved"] > 0
    on, what = estimate(bundle, data, s, costs)
    off, _ = estimate(bundle, data, Settings.build(bundle, fast=True, n=200, shift=False), costs)
    drawn, moved = passes(layout(bundle.card.encoder))
    shifted = 200 * (drawn * costs["shift_drawn"] + moved * costs["shift_moved"])
    assert on - off == pytest.approx(shifted * costs["slowdown"])  # a busy machine's slowdown scales every part
    assert f"{drawn + moved} tabular-shift passes" in what
