"""``--time-budget`` and ``--plan`` (dlaudit/plan.py): measured costs choose a plan; the numbers follow the plan.

Tiny model (the digits MLP), the performance and robustness sections only (their probes take a fraction of a
second), and one real plan made once for the module.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable

import pytest
import torch
from click.testing import CliRunner

import dlaudit
from dlaudit.cli import cli
from dlaudit.errors import ConfigError
from dlaudit.plan import Level, _Ladder, choose, halfwidth, load_plan, make_plan, parse_duration

CHECKS = "performance,robustness"


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("10m", 600), ("1h", 3600), ("2.5min", 150), ("45", 45)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["0", "0s", "abc", "-5s", "", "10 parsecs", "nan"])
def test_bad_durations_say_what_to_give(text: str) -> None:
    with pytest.raises(ConfigError, match="--time-budget must be"):
        parse_duration(text)


def _ladder(name: str, samples: list[int], costs: list[float]) -> _Ladder:
    return _Ladder(name, [Level({"n": k}, True, k) for k in samples], costs)


def test_every_section_at_its_minimum_then_the_widest_interval_grows() -> None:
    a = _ladder("a", [10, 100, 1000], [1.0, 5.0, 50.0])
    b = _ladder("b", [50, 500], [2.0, 20.0])
    assert choose([a, b], 0.5) == 3.0 and (a.at, b.at) == (0, 0)  # below the minimums: the minimums
    a, b = _ladder("a", [10, 100, 1000], [1.0, 5.0, 50.0]), _ladder("b", [50, 500], [2.0, 20.0])
    assert choose([a, b], 10.0) == 7.0 and (a.at, b.at) == (1, 0)  # a had the widest interval (10 samples)
    a, b = _ladder("a", [10, 100, 1000], [1.0, 5.0, 50.0]), _ladder("b", [50, 500], [2.0, 20.0])
    assert choose([a, b], 30.0) == 25.0 and (a.at, b.at) == (1, 1)  # then b (50 < 100); a's next does not fit
    a, b = _ladder("a", [10, 100, 1000], [1.0, 5.0, 50.0]), _ladder("b", [50, 500], [2.0, 20.0])
    assert choose([a, b], 1e9) == 70.0 and (a.at, b.at) == (2, 1)  # never past the full configuration
    assert halfwidth(100) == pytest.approx(0.098) and halfwidth(400) == pytest.approx(0.049)


@pytest.fixture(scope="module")
def planned(digits_mlp: dlaudit.ModelBundle, tmp_path_factory: pytest.TempPathFactory):
    """One audit under a 4 s budget, its plan written out."""
    path = tmp_path_factory.mktemp("plan") / "plan.json"
    with dlaudit.planning(time_budget="4s", plan_out=path):
        report = dlaudit.audit(digits_mlp, "digits", checks=CHECKS, seed=3, device="cpu")
    return report, path


def test_the_plan_fits_the_budget_and_is_in_the_report(planned) -> None:
    report, path = planned
    plan = report.provenance["plan"]
    assert json.loads(path.read_text()) == plan
    assert plan["estimated_seconds"] <= plan["planned_for_seconds"] <= 4 or plan["over_budget"]
    assert report.provenance["seed"] == plan["seed"] == 3
    robust = plan["sections"]["robustness"]
    assert robust["budgeted"] and robust["params"]["n"] == robust["samples"] >= 25
    assert robust["interval_halfwidth"] == pytest.approx(halfwidth(robust["samples"]), abs=1e-4)
    assert report.provenance["total_seconds"] < 10 * 4  # the budget's order, on a busy shared machine
    assert set(report.provenance["plan_bought"]) >= {"performance", "robustness"}
    section = report.section("robustness")
    assert section.params["n"] == robust["samples"]


def _slower(real: Callable[[], float], factor: float) -> Callable[[], float]:
    origin = real()
    return lambda: origin + factor * (real() - origin)


def test_replaying_the_plan_gives_the_same_numbers_on_a_slower_clock(
    planned, digits_mlp: dlaudit.ModelBundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    report, path = planned
    for name in ("perf_counter", "monotonic", "time"):  # a machine 10x slower: timing must not matter
        monkeypatch.setattr(time, name, _slower(getattr(time, name), 10.0))
    with dlaudit.planning(plan=path):
        again = dlaudit.audit(digits_mlp, "digits", checks=CHECKS, seed=0, device="cpu")  # the plan's seed wins
    assert again.metrics == report.metrics
    assert again.provenance["plan"]["sections"] == report.provenance["plan"]["sections"]


def test_a_larger_budget_buys_more_samples(digits_mlp: dlaudit.ModelBundle) -> None:
    from dlaudit.data import for_card

    data = for_card(digits_mlp.card, "digits", split="audit")
    small = make_plan(digits_mlp, data, ["robustness"], {}, fast=False, seed=0, budget=0.5)
    large = make_plan(digits_mlp, data, ["robustness"], {}, fast=False, seed=0, budget=600)
    s, g = small["sections"]["robustness"], large["sections"]["robustness"]
    assert s["params"]["n"] == s["samples"] == 25 and small["over_budget"]  # the minimum, said to be over
    assert g["samples"] > s["samples"] and g["interval_halfwidth"] < s["interval_halfwidth"]


def test_a_plan_for_another_model_or_other_data_is_refused(planned, digits_mlp: dlaudit.ModelBundle) -> None:
    import copy

    import torch

    _, path = planned
    other = copy.deepcopy(digits_mlp)
    with torch.no_grad():
        next(other.module.parameters()).add_(1e-3)
    with pytest.raises(ConfigError, match="was made for another model"):
        with dlaudit.planning(plan=path):
            dlaudit.audit(other, "digits", checks=CHECKS, device="cpu")
    with pytest.raises(ConfigError, match="was made for other data"):
        with dlaudit.planning(plan=path):
            dlaudit.audit(digits_mlp, "digits", checks=CHECKS, device="cpu", split="train")
    with pytest.raises(ConfigError, match="plans the sections performance, robustness"):
        with dlaudit.planning(plan=path):
            dlaudit.audit(digits_mlp, "digits", checks="performance", device="cpu")


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("not json", "not JSON"),
        ('{"x": 1}', '"dlaudit_plan": 1'),
        ('{"dlaudit_plan": 1, "model": "m", "data": "d", "seed": 0, "checks": ["a"], "sections": {"a": {}}}', "params"),
    ],
)
def test_a_malformed_plan_is_one_line_and_exit_2(tmp_path, content: str, why: str) -> None:
    bad = tmp_path / "plan.json"
    bad.write_text(content)
    with pytest.raises(ConfigError, match="is not a dlaudit plan"):
        load_plan(bad)
    result = CliRunner().invoke(cli, ["attack", "model.pt", "--plan", str(bad)], catch_exceptions=False)
    assert result.exit_code == 2 and why in result.output and len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--time-budget", "0"], "more than 0 seconds"),
        (["--time-budget", "abc"], "a duration such as 90s"),
        (["--time-budget", "1m", "--plan", "p.json"], "exclude each other"),
        (["--plan-out", "p.json"], "add --time-budget"),
    ],
)
def test_bad_budget_options_are_one_line_and_exit_2(tmp_path, args: list[str], message: str) -> None:
    model = tmp_path / "m.pt"
    for command in (["report", str(model), "-o", str(tmp_path / "r.html")], ["certify", str(model)]):
        result = CliRunner().invoke(cli, [*command, *args], catch_exceptions=False)
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1


def test_plan_out_never_overwrites_an_input(tmp_path, digits_mlp: dlaudit.ModelBundle) -> None:
    model = tmp_path / "m.pt"
    dlaudit.save_model(digits_mlp, model)
    before = model.read_bytes()
    result = CliRunner().invoke(
        cli, ["attack", str(model), "--time-budget", "1m", "--plan-out", str(model)], catch_exceptions=False
    )
    assert result.exit_code == 2 and "would destroy an input" in result.output
    assert model.read_bytes() == before


def test_the_report_says_what_the_budget_bought(planned) -> None:
    report, _ = planned
    bought = report.provenance["time_budget"]
    assert bought["budget"].startswith("4 s, estimated")
    assert (
        "samples, interval at most +/-" in bought["robustness"]
        and "widest 95% interval measured" in bought["robustness"]
    )
    from dlaudit.report.html import provenance_rows

    assert any("time budget" in str(row) for row in provenance_rows(report.provenance))


@pytest.mark.parametrize(
    ("seconds", "large", "samples", "fixed", "per"),
    [
        ((3.0, 1.0, 1.6, 1.3), False, [1, 1, 4, 4], 0.8, 0.1),
        ((6.0, 1.0, 1.6, 1.3), False, [1, 1, 4, 4], 0.8, 0.1),  # a slow first run (imports) is no large model
        ((9.0, 6.0), False, [1, 1], 0.0, 6.0),  # slow when warm too: priced from that run alone
    ],
)
def test_the_explanation_probe_prices_a_warm_run(monkeypatch, seconds, large, samples, fixed, per) -> None:
    """The first one-sample run pays the imports: it is not priced (a large model runs none: see below)."""
    from dlaudit.explain import explanation

    times, calls = iter(seconds), []

    def run_probe(fn, bundle, data, **params):
        calls.append(params["n"])
        return next(times)

    monkeypatch.setattr(explanation, "run_probe", run_probe)
    monkeypatch.setattr(explanation, "_large", lambda bundle, data: large)
    costs = explanation._probe(None, None, {"methods": ["saliency"], "n": 8})
    assert calls == samples
    assert costs["fast_fixed"] == pytest.approx(fixed) and costs["fast_sample"] == pytest.approx(per)
    assert costs["figure_samples"] == 8  # the last run (small models only): figures for one sample
    assert costs["fast_figure"] == pytest.approx(per if len(samples) == 4 else 0.0)


def test_a_large_models_explanations_are_priced_by_their_counted_passes(monkeypatch, digits_cnn) -> None:
    """A large model runs no sample in the probe: a gradient step and a forward pass are timed, and each rung is its
    counted passes at those prices (dlaudit.explain.estimate.price), full rungs dearer than fast ones."""
    from dlaudit.explain import explanation
    from dlaudit.explain.estimate import price
    from dlaudit.plan import Level

    data = dlaudit.load_data(bundle=digits_cnn)
    monkeypatch.setattr(explanation, "_large", lambda bundle, data: True)
    monkeypatch.setattr(explanation, "run_probe", lambda *a, **k: pytest.fail("a large model's probe ran the section"))
    costs = explanation._probe(digits_cnn, data, {"methods": ["saliency", "ig"], "n": 16})
    assert costs["counted"] == 1.0 and costs["grad"] > 0 and costs["forward"] > 0 and costs["layers"] >= 2
    params = {"methods": ["saliency", "ig"]}
    fast4, fast16, full16 = (
        explanation._cost(digits_cnn, data, Level({"n": k}, fast, k), params, costs)
        for k, fast in ((4, True), (16, True), (16, False))
    )
    assert 0 < fast4 < fast16 < full16
    settings = explanation.Settings.build(digits_cnn, fast=False, methods=["saliency", "ig"], n=16)
    assert full16 == pytest.approx(price(digits_cnn, data, settings, costs)[0])


def test_a_large_model_is_told_by_its_counted_operations(digits_mlp) -> None:
    from dlaudit.data import for_card
    from dlaudit.explain.explanation import LARGE_FLOPS, _large

    data = for_card(digits_mlp.card, "digits", split="audit")
    assert not _large(digits_mlp, data)
    wide = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, LARGE_FLOPS // 128 + 1), torch.nn.ReLU())
    assert _large(dataclasses.replace(digits_mlp, module=wide), data)


def test_the_explanation_estimate_stops_pricing_figures_past_their_cap() -> None:
    """Measured on the digits CNN (fast profile, after warm-up, busy 2-core machine): 1 sample 2.45 s, 4 samples
    4.38 s, 4 samples with figures for one 2.6 s; then 8 samples took 6.61 s and 16 took 7.5 s. Extrapolating the
    1-to-4 slope put 16 samples at 12.1 s (1.6x); the figures' part stops at 8 samples."""
    from dlaudit.explain import explanation

    costs = explanation._unit_costs(2.45, 4.38, 2.6, 4, 8)
    for n, took in ((8, 6.61), (16, 7.5)):
        priced = explanation._cost(None, None, Level({"n": n}, True, n), {}, costs)
        assert abs(priced / took - 1) < 0.1, (n, priced, took)
    assert explanation._cost(None, None, Level({"n": 1}, True, 1), {}, costs) == pytest.approx(2.45)


def test_the_summary_states_autoattack_on_part_of_the_samples_and_its_interval() -> None:
    from dlaudit.plan import summary

    entry = {"budgeted": True, "level": "9 of 11", "fast": False, "samples": 400, "interval_halfwidth": 0.049}
    plan = {"sections": {"robustness": {**entry, "params": {"n": 400, "autoattack_n": 100}}}}
    assert "(AutoAttack on the first 100 of them: +/-0.098)" in summary(plan, {})["robustness"]
    plan = {"sections": {"robustness": {**entry, "params": {"n": 400}}}}
    assert "AutoAttack" not in summary(plan, {})["robustness"]


def test_a_rung_never_costs_less_than_the_one_below(monkeypatch, digits_mlp) -> None:
    """A probe timed on a busy machine can price a higher rung below a lower one; the plan does not believe it."""
    from dlaudit.data import for_card
    from dlaudit.explain import explanation
    from dlaudit.plan import Budget

    falling = {1: 5.0, 2: 3.0, 3: 4.0}  # seconds by rung: the second and third are noise

    def levels(bundle, data, params):
        return [Level({"n": k}, True, k) for k in falling]

    def cost(bundle, data, level, params, costs):
        return falling[level.params["n"]]

    monkeypatch.setattr(explanation, "BUDGET", Budget(probe=lambda *a: {"unit": 1.0}, levels=levels, cost=cost))
    data = for_card(digits_mlp.card, "digits", split="audit")
    plan = make_plan(digits_mlp, data, ["explain"], {"explain": {}}, fast=False, seed=0, budget=1000.0)
    entry = plan["sections"]["explain"]
    assert entry["minimum_seconds"] == 5.0 and entry["full_seconds"] == 5.0
    assert entry["samples"] == 3  # every rung fits: it costs what the first does
