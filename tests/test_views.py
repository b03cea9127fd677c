"""Every command is an audit: attack, certify and explain return the Report, write its JSON and gate on --fail-on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import dlaudit
from dlaudit.cli import cli
from dlaudit.pipeline import AuditSpec, keep, run, run_keeping

SHAPE = {"schema_version", "title", "passed", "metrics", "gates", "sections", "provenance"}
"""The top-level keys of every command's JSON (those of ``dlaudit report --json``)."""


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("views") / "mlp.pt"
    dlaudit.save_model(dlaudit.train("mlp", "digits", epochs=2, seed=0, device="cpu"), path)
    return path


VIEWS = {
    "attack": ["attack", "--attack", "fgsm", "--eps", "0.1", "--n", "30"],
    "certify": ["certify", "--method", "ibp", "--eps", "0.01", "--inputs", "10"],
    "explain": ["explain", "--method", "saliency", "--n", "2", "--no-quality"],
}
METRIC = {
    "attack": "robustness.fgsm_linf.acc@0.1",
    "certify": "robustness.certified_linf.acc@0.01",
    "explain": "explain.saliency.seconds",
}


def _invoke(model: Path, view: str, *extra: str) -> tuple[int, str]:
    argv = [VIEWS[view][0], str(model), *VIEWS[view][1:], "--seed", "0", *extra]
    res = CliRunner().invoke(cli, argv, catch_exceptions=False)
    return res.exit_code, res.output


@pytest.mark.parametrize("view", list(VIEWS))
def test_every_view_writes_the_report_json(view: str, model: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    code, text = _invoke(model, view, "--json", str(out), "-q")
    assert code == 0, text
    payload = json.loads(out.read_text())
    assert set(payload) >= SHAPE
    assert [s["name"] for s in payload["sections"]] == [METRIC[view].split(".")[0]]
    assert payload["title"] == f"dlaudit {view}: mlp.pt"
    assert payload["provenance"]["seed"] == 0 and "engine" in payload["provenance"]
    if view != "explain":
        assert METRIC[view] in payload["metrics"]
    back = dlaudit.load_report(out)  # the same reader as any report: baselines work on every command
    assert back.metrics == payload["metrics"]


@pytest.mark.parametrize("view", ["attack", "certify"])
def test_fail_on_gates_every_view(view: str, model: Path, tmp_path: Path) -> None:
    metric = METRIC[view]
    code, text = _invoke(model, view, "--fail-on", f"{metric} > 2")
    assert code == 0, text
    assert f"gate     fails when {metric} > 2" in text and "Gates passed" in text
    md, junit = tmp_path / "r.md", tmp_path / "r.xml"
    code, text = _invoke(model, view, "--fail-on", f"{metric} >= 0", "--markdown", str(md), "--junit", str(junit))
    assert code == 1, text
    assert "FAIL" in text and "Gates failed" in text
    assert metric in md.read_text() and "<testcase" in junit.read_text()
    code, text = _invoke(model, view, "--fail-on", "robustness.nothing.acc@1 < 0.5")
    assert code == 2 and "robustness.nothing.acc@1" in text, text


def test_attack_terminal_output_is_the_section_table(model: Path) -> None:
    code, text = _invoke(model, "attack", "--attack", "fgsm,pgd", "--steps", "3")
    assert code == 0, text
    assert "Robust accuracy" in text and "worst_linf" in text and "On 30 samples of digits (test)" in text
    assert "PGD-3 alpha 2.5 * eps / steps" in text


def test_certify_smoothing_prints_its_table_and_abstentions(model: Path) -> None:
    res = CliRunner().invoke(
        cli, ["certify", str(model), "--inputs", "4", "--n", "50", "--n0", "10"], catch_exceptions=False
    )
    assert res.exit_code == 0, res.output
    assert "Randomized smoothing (L2)" in res.output and "abstained on" in res.output
    assert "robustness.smoothing_l2.abstain_rate" in res.output


def test_a_view_runs_one_analysis_in_one_scope(model: Path) -> None:
    rep = dlaudit.attack(str(model), attacks="apgd-ce", norms="l2", eps_l2=[0.5], n=10, steps=2)
    sec = rep.section("robustness")
    assert sec.params["scope"] == "attacks" and sec.params["attacks"] == ["apgd-ce_l2"]
    assert set(rep.metrics) == {"robustness.clean_acc", "robustness.apgd_ce_l2.acc@0.5"}
    cert = dlaudit.certify(str(model), method="ibp", eps=[0.01], inputs=5)
    assert set(cert.metrics) == {"robustness.certified_linf.acc@0.01"}
    assert cert.section("robustness").params["scope"] == "certify"


def test_bad_settings_fail_before_any_work(model: Path) -> None:
    with pytest.raises(dlaudit.ConfigError, match="exceed the value range"):
        dlaudit.attack(str(model), eps=[2.0])
    with pytest.raises(dlaudit.ConfigError, match="unknown attack"):
        dlaudit.robustness(str(model), attacks=["cw_linf"])
    with pytest.raises(dlaudit.ConfigError, match="scope"):
        dlaudit.robustness(str(model), scope="some")
    # in an audit, bad settings fail their section only (the other sections still run)
    rep = dlaudit.audit(str(model), checks="performance,robustness", params={"robustness": {"attacks": ["cw_linf"]}})
    assert rep.section("robustness").status == "error" and "unknown attack" in rep.section("robustness").reason
    assert rep.section("performance").status == "ok"


def test_the_fast_profile_is_the_analysis_own(model: Path) -> None:
    from dlaudit.analysis import get_analysis

    robustness = get_analysis("robustness")
    assert robustness.fast["n"] == 200 and robustness.fast["steps"] == 10
    bundle = dlaudit.load_model(model)
    fast = robustness.make_settings(bundle, fast=True, params={"scope": "attacks", "steps": 5})
    assert (fast.n, fast.steps, fast.version) == (200, 5, "fast")  # explicit values win over the profile
    full = robustness.make_settings(bundle, params={"scope": "attacks"})
    assert (full.n, full.steps, full.version) == (None, 40, "standard")  # a view attacks every sample
    cert = robustness.make_settings(bundle, fast=True, params={"scope": "certify", "certify": "smoothing"})
    assert (cert.n, cert.smoothing_n) == (50, 1000)


def test_the_pipeline_hands_kept_results_to_the_view_only(model: Path) -> None:
    from dlaudit.analysis import _REGISTRY, register_analysis

    def probe(bundle: Any, data: Any, *, seed: int = 0, fast: bool = False, progress: Any = None, **_: Any) -> Any:
        keep("probe", len(data))
        sec = dlaudit.report.Section(name="probe", title="Probe")
        sec.add_metric("probe.n", float(len(data)))
        return sec

    register_analysis("probe", probe, default=False)
    try:
        spec = AuditSpec(str(model), checks=("probe",), title="t", command="dlaudit probe")
        rep, kept = run_keeping(spec)
        assert kept == {"probe": rep.metrics["probe.n"]} and rep.provenance["command"] == "dlaudit probe"
        assert run(spec).metrics == rep.metrics
        keep("outside", 1)  # outside a run: nothing happens
    finally:
        _REGISTRY.pop("probe")
