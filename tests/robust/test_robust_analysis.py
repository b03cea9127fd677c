"""The robustness section, dlaudit.attack / dlaudit.robustness, and the CLI commands."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from click.testing import CliRunner

import dlaudit
from dlaudit.cli import cli
from dlaudit.errors import ConfigError

EPS_NAMES = [f"robustness.{a}.acc@{e:g}" for a in ("fgsm_linf", "pgd_linf") for e in (0, 0.05, 0.1, 0.2, 0.3)]
EPS_NAMES += [f"robustness.pgd_l2.acc@{e:g}" for e in (0, 0.5, 1, 1.5, 2)]


@pytest.fixture(scope="module")
def section(digits_cnn: dlaudit.ModelBundle) -> dlaudit.Section:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the autouse fixture does for each test (module fixtures run before it)
    try:
        return dlaudit.robustness(digits_cnn, fast=True, n=120, steps=8)
    finally:
        torch.set_num_threads(threads)


def test_section_metrics(section: dlaudit.Section) -> None:
    metrics = {m.name: m for m in section.metrics}
    for name in [
        *EPS_NAMES,
        "robustness.clean_acc",
        "robustness.pgd_linf.median_min_eps",
        "robustness.masking.violations",
    ]:
        assert name in metrics, name
    for s in (0.05, 0.1, 0.2, 0.3):
        assert f"robustness.noise.acc@{s:g}" in metrics and f"robustness.noise_uniform.acc@{s:g}" in metrics
    clean = metrics["robustness.clean_acc"].value
    assert metrics["robustness.pgd_linf.acc@0"].value == clean
    assert metrics["robustness.pgd_linf.acc@0.3"].value < 0.1 < clean
    assert metrics["robustness.pgd_linf.acc@0.1"].value <= metrics["robustness.fgsm_linf.acc@0.1"].value
    assert metrics["robustness.pgd_linf.acc@0.1"].ci is not None
    assert 0.02 < metrics["robustness.pgd_linf.median_min_eps"].value < 0.3
    assert metrics["robustness.masking.violations"].value == 0


def test_section_layout(section: dlaudit.Section) -> None:
    assert section.status == "ok" and section.name == "robustness"
    assert "at eps 0.1, accuracy falls from" in section.summary
    assert [t.title for t in section.tables] == [
        "Robust accuracy",
        "Accuracy under random noise",
        "Gradient-masking checks",
        "Minimal adversarial eps (PGD L-inf, bisection)",
        "Worst case per sample (L-inf)",
        "Worst case per sample (L2)",
        "AutoAttack (L-inf, fast: APGD-CE and APGD-T)",
        "Certified and attacked accuracy (L-inf)",
        "Randomized smoothing (L2, the smoothed classifier)",
        "Accuracy under common corruptions",
    ]
    # the curves, the two bounds, adversarial examples, the corruption chart and the corrupted images
    assert len(section.figures) == 5 and all(f.data.startswith(b"\x89PNG") and f.alt for f in section.figures)
    assert section.params["fast"] is True and section.params["n"] == 120 and section.params["steps"] == 8
    assert section.params["batch_size_chosen_by"] == "default (see dlaudit.robust.batching)"
    checks = section.tables[2].rows
    assert {r[1] for r in checks} == {"pass"} and len(
        checks
    ) == 9  # the 7 PGD/FGSM checks, gradients, AutoAttack's curve
    assert {"input gradients are finite and non-zero", "autoattack_linf accuracy falls with eps"} <= {
        r[0] for r in checks
    }


def test_same_seed_same_numbers(digits_cnn: dlaudit.ModelBundle, section: dlaudit.Section, snapshot) -> None:
    before = snapshot(digits_cnn.module)
    again = dlaudit.robustness(digits_cnn, fast=True, n=120, steps=8, batch_size=32)
    assert snapshot(digits_cnn.module) == before
    assert {m.name: m.value for m in again.metrics} == {m.name: m.value for m in section.metrics}


def test_in_the_report(digits_cnn: dlaudit.ModelBundle, tmp_path) -> None:
    report = dlaudit.audit(
        digits_cnn,
        checks=["performance", "robustness"],
        fast=True,
        params={"robustness": {"n": 60, "steps": 4, "noise": [0.1], "min_eps_samples": 10}},
    )
    assert report.section("robustness").status == "ok"
    assert report.metrics["robustness.noise.acc@0.1"] is not None
    path = dlaudit.save_report(report, tmp_path / "r.json", format="json")
    loaded = (
        json.loads(path.read_text()) if hasattr(path, "read_text") else json.loads((tmp_path / "r.json").read_text())
    )
    assert loaded["metrics"]["robustness.pgd_linf.acc@0.1"] == report.metrics["robustness.pgd_linf.acc@0.1"]
    html = dlaudit.save_report(report, tmp_path / "r.html")
    assert "Gradient-masking checks" in (tmp_path / "r.html").read_text() and html


def test_groups_and_budget_warnings(digits_cnn: dlaudit.ModelBundle, digits_splits) -> None:
    data = digits_splits.test.subset(slice(0, 100))
    data.sensitive = pd.DataFrame({"parity": ["even" if int(v) % 2 == 0 else "odd" for v in data.y]})
    sec = dlaudit.robustness(
        digits_cnn,
        data,
        fast=True,
        steps=4,
        eps=[0, 0.1, 1.0],
        attacks="pgd_linf",
        noise=[],
        min_eps_samples=0,
        examples=0,
        masking=False,
    )
    metrics = {m.name: m.value for m in sec.metrics}
    assert set(metrics) >= {"robustness.parity.pgd_linf.acc_gap@0.1", "robustness.parity.pgd_linf.acc_gap@1"}
    gap_table = next(t for t in sec.tables if t.title == "Robust accuracy by parity (PGD L-inf)")
    assert [r[0] for r in gap_table.rows] == ["even", "odd"] and gap_table.columns == [
        "group",
        "n",
        "clean",
        "eps 0.1",
        "eps 1",
    ]
    assert any(
        f.check == "eps-range" and "eps 1 was computed, but L-inf eps 1 is at least the whole value range" in f.message
        for f in sec.findings
    )
    assert metrics["robustness.masking.violations"] is None


def test_unknown_parameter_is_an_error(digits_cnn: dlaudit.ModelBundle) -> None:
    with pytest.raises(ConfigError, match="unknown robustness parameter"):
        dlaudit.robustness(digits_cnn, fast=True, epsilon=[0.1])
    with pytest.raises(ConfigError, match="must be numbers >= 0"):
        dlaudit.robustness(digits_cnn, fast=True, eps=[-0.1])


def test_tabular_model_with_sensitive_features() -> None:
    bundle = dlaudit.train("mlp", "synthetic-credit", epochs=3, device="cpu")
    sec = dlaudit.robustness(bundle, fast=True, n=150, steps=4, min_eps_samples=10)
    assert sec.status == "ok"
    assert any(m.name.startswith("robustness.sex.pgd_linf.acc_gap@") for m in sec.metrics)
    assert any(f.check == "tabular" for f in sec.findings)
    assert len(sec.figures) == 2  # the curves and the bounds; no image grid for tabular data


def test_api_attack(digits_cnn: dlaudit.ModelBundle) -> None:
    res = dlaudit.attack(
        digits_cnn, attacks="pgd", norms="linf,l2", eps=[0.1], eps_l2=[1.0], steps=5, n=80, batch_size=40
    )
    assert set(res.metrics) == {"robustness.clean_acc", "robustness.pgd_linf.acc@0.1", "robustness.pgd_l2.acc@1"}
    params = res.section("robustness").params
    assert params["n"] == 80 and params["batch_size"] == 40 and params["batch_size_chosen_by"] == "explicit"
    assert params["scope"] == "attacks" and [s.name for s in res.sections] == ["robustness"]
    assert json.dumps(res.to_dict())


def test_cli_attack_json(tmp_path) -> None:
    model = tmp_path / "m.pt"
    dlaudit.save_model(dlaudit.train("mlp", "digits", epochs=3, device="cpu"), model)
    out = tmp_path / "a.json"
    res = CliRunner().invoke(
        cli,
        [
            "attack",
            str(model),
            "--attack",
            "fgsm,pgd",
            "--eps",
            "0.05,0.1",
            "--steps",
            "5",
            "--n",
            "60",
            "--json",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "pgd_linf" in res.output and "60 samples of digits (test)" in res.output
    payload = json.loads(out.read_text())
    attacks = ("fgsm", "pgd", "worst")  # worst: the worst case per sample over both attacks
    assert set(payload["metrics"]) == {"robustness.clean_acc"} | {
        f"robustness.{a}_linf.acc@{e}" for a in attacks for e in ("0.05", "0.1")
    }
    m = payload["metrics"]
    for e in ("0.05", "0.1"):
        assert m[f"robustness.worst_linf.acc@{e}"] <= min(
            m[f"robustness.fgsm_linf.acc@{e}"], m[f"robustness.pgd_linf.acc@{e}"]
        )
    for args, words in [
        (["--eps", "-1"], "must be a number >= 0"),
        (["--alpha", "0"], "alpha (the step size) must be a positive number"),
        (["--steps", "0"], "steps must be an integer of at least 1"),
        (["--attack", "cw"], "unknown attack(s) cw"),
    ]:
        bad = CliRunner().invoke(cli, ["attack", str(model), "--n", "10", *args])
        assert bad.exit_code == 2 and words in bad.output, (args, bad.output)


def test_cli_report_has_the_section(tmp_path) -> None:
    model = tmp_path / "m.pt"
    dlaudit.save_model(dlaudit.train("mlp", "digits", epochs=3, device="cpu"), model)
    res = CliRunner().invoke(
        cli,
        [
            "report",
            str(model),
            "--checks",
            "robustness",
            "--fast",
            "-o",
            str(tmp_path / "r.html"),
            "--json",
            str(tmp_path / "r.json"),
            "--fail-on",
            "robustness.pgd_linf.acc@0.3 <= 0.5",
        ],
    )
    assert res.exit_code == 1  # the gate fails: a standard model is not robust at eps 0.3
    assert "fails when robustness.pgd_linf.acc@0.3 <= 0.5; value " in res.output and ": FAIL" in res.output
    assert "robustness.pgd_linf.acc@0.1" in json.loads((tmp_path / "r.json").read_text())["metrics"]


def test_a_full_configuration_runs_autoattack_and_certification() -> None:
    """An earlier settings() switched both off unless they were named: only --fast reports had them."""
    from dlaudit.robust.analysis import settings

    full = settings(False, (0.0, 1.0))
    assert (full.autoattack, full.certify, full.smoothing) == ("standard", "crown-ibp", True)
    fast = settings(True, (0.0, 1.0))
    assert (fast.autoattack, fast.certify) == ("fast", "ibp")
    off = settings(False, (0.0, 1.0), autoattack="off", certify="none")
    assert (off.autoattack, off.certify) == (None, None)
    assert settings(False, (0.0, 1.0), features="numeric").features == "numeric"


def test_the_budget_ladder_raises_strength_on_every_sample_before_the_full_profile(digits_mlp) -> None:
    from dlaudit.data import for_card
    from dlaudit.robust.analysis import Settings, _levels

    data = for_card(digits_mlp.card, "digits", split="audit")
    levels = _levels(digits_mlp, data, {})
    samples = [level.samples for level in levels]
    assert samples == sorted(samples) and levels[-1].fast is False
    top = [level for level in levels if level.samples == samples[-1]]
    assert len(top) >= 3  # the fast profile, then PGD's full steps (and the full certification), then all of it
    built = [Settings.build(digits_mlp, fast=level.fast, **level.params) for level in levels]
    assert all(a != b for a, b in zip(built, built[1:]))  # every rung changes something
    assert built[-2].steps == built[-1].steps != built[len(levels) - len(top)].steps
    kept = _levels(digits_mlp, data, {"steps": 7})  # a parameter given explicitly stays as it is on every rung
    assert all(Settings.build(digits_mlp, fast=lv.fast, **{"steps": 7, **lv.params}).steps == 7 for lv in kept)


def test_autoattack_is_priced_on_the_inputs_that_survive_at_each_budget(digits_mlp) -> None:
    from dlaudit.robust.analysis import UNSEEN, Settings, _autoattack_work

    costs = {"batch": 256.0, "clean_acc": 1.0}
    fast = Settings.build(digits_mlp, fast=False, eps=(0.3, 0.1), autoattack="fast")  # APGD-CE 25, APGD-T 3 x 25
    shares = {**costs, "survive_linf@0.1": 0.5, "survive_linf@0.3": 0.25}
    # eps 0.1: APGD-CE on 512, APGD-T on its 256 survivors; eps 0.3 only on those 256, APGD-T on 128 (as it runs)
    assert _autoattack_work(fast, 512, 10, shares)[0] == 512 * 25 + 256 * 75 + 256 * 25 + 128 * 75
    s = Settings.build(digits_mlp, fast=False, eps=(0.1, 0.3), autoattack="standard")
    none = _autoattack_work(s, 512, 10, {**costs, "survive_linf@0.1": 0.0, "survive_linf@0.3": 0.0})
    half = _autoattack_work(s, 512, 10, shares)
    assert none[1] == round(512 * UNSEEN * 5000) + round(512 * UNSEEN**2 * 5000)  # none seen: a few, not none
    assert half[1] == (256 + 128) * 5000 and half[0] > none[0] and half[2] > none[2]  # Square on the survivors
    wrong = _autoattack_work(s, 512, 10, {**costs, "clean_acc": 0.5, "survive_linf@0.1": 0.0, "survive_linf@0.3": 0.0})
    assert wrong[0] == pytest.approx(none[0] / 2, rel=0.01)  # misclassified inputs are not attacked


def test_the_ladder_buys_standard_autoattack_on_part_of_the_samples_before_all(digits_mlp) -> None:
    from dlaudit.data import for_card
    from dlaudit.robust.analysis import _cost, _levels

    data = for_card(digits_mlp.card, "digits", split="audit")
    levels = _levels(digits_mlp, data, {})
    top = levels[-1].samples
    parts = [lv for lv in levels if "autoattack_n" in lv.params]
    assert [lv.params["autoattack_n"] for lv in parts] == [round(top * f) for f in (0.25, 0.5, 0.75)]
    assert levels[-len(parts) - 1 : -1] == parts and all(not lv.fast and lv.samples == top for lv in parts)
    costs = {"grad": 1e-4, "forward": 3e-5, "call": 1e-3, "batch": 256.0, "clean_acc": 0.9}
    seconds = [_cost(digits_mlp, data, lv, {}, costs) for lv in levels[-len(parts) - 2 :]]
    assert seconds == sorted(seconds) and len(set(seconds)) == len(seconds)  # each part costs more, all the most
    assert _levels(digits_mlp, data, {"autoattack_n": 5})[-2].params.get("autoattack_n") is None  # given: kept


def test_autoattack_on_the_first_samples_only_says_so(digits_mlp) -> None:
    sec = dlaudit.robustness(
        digits_mlp, fast=True, n=24, autoattack_n=8, steps=4, attacks=["pgd_linf"], eps=[0.1], eps_l2=[], noise=[],
        certify="off", smoothing=False, masking=False, min_eps_samples=4, min_eps_steps=4, corruptions=False,
    )  # fmt: skip
    metrics = {m.name: m for m in sec.metrics}
    aa = metrics["robustness.autoattack_linf.acc@0.1"]
    assert "on the first 8 of the 24 samples" in aa.description
    assert round(aa.value * 8) == pytest.approx(aa.value * 8)  # a share of 8 samples
    assert sec.params["autoattack_n"] == 8 and sec.params["n"] == 24
    worst, pgd = metrics["robustness.worst_linf.acc@0.1"].value, metrics["robustness.pgd_linf.acc@0.1"].value
    assert worst <= pgd and round(worst * 24) == pytest.approx(worst * 24)  # per sample over all 24
    with pytest.raises(ConfigError, match="autoattack_n must be at least 1"):
        dlaudit.robustness(digits_mlp, fast=True, n=24, autoattack_n=0)


def test_keyed_attacks_on_a_stochastic_model_are_priced_without_early_stopping_and_with_votes(digits_mlp) -> None:
    """A model random at inference: PGD runs every step, each pass a call per chunk of 8 samples (0.4 of an
    iteration each beyond the batch's), and a 9-pass vote judges each input; the plan's probe says which."""
    from dlaudit.data import for_card
    from dlaudit.robust.analysis import CALL_FACTOR, EAGER_CALLS, Settings, _work, estimate

    data = for_card(digits_mlp.card, "digits", split="audit")
    s = Settings.build(digits_mlp, fast=True, scope="attacks", attacks=["pgd_linf"], eps=(0.1,), n=64)
    costs = {"grad": 1e-4, "forward": 1e-5, "call": 1e-3, "batch": 256.0, "clean_acc": 1.0, "survive_linf@0.1": 0.0}
    plain, keyed = _work(digits_mlp, data, s, costs)[0], _work(digits_mlp, data, s, costs, keyed=True)[0]
    call = CALL_FACTOR * 1e-3
    assert plain == pytest.approx(64 * 10 * 0.5 * 1e-4 + 10 * call)  # half the steps: early stopping
    chunks = 1 + 0.4 * (64 // 8 - 1)
    assert keyed == pytest.approx(64 * 10 * 1e-4 + 64 * 9 * 1e-5 + chunks * (10 + 9) * EAGER_CALLS * 1e-3)  # eager
    assert estimate(digits_mlp, data, s, {**costs, "keyed": 1.0})[0] == pytest.approx(keyed)  # the probe's word
    assert estimate(digits_mlp, data, s, {**costs, "keyed": 0.0})[0] == pytest.approx(plain)


def test_square_queries_on_few_survivors_are_priced_cheaper_than_on_a_full_batch() -> None:
    from dlaudit.robust.analysis import CALL_FACTOR, _square_calls

    costs = {"batch": 256.0}
    assert _square_calls(256, costs) * CALL_FACTOR == pytest.approx(1.2)  # a full batch still live
    assert _square_calls(8, costs) * CALL_FACTOR == pytest.approx(0.9 + 0.3 * 8 / 256)  # measured 0.91 on 8
    assert _square_calls(0, costs) < _square_calls(32, costs) < _square_calls(1000, costs) == _square_calls(256, costs)
