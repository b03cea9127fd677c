"""``--time-budget`` sizes a text model's own sections (explanations, text attacks, text fairness): the plan names
their settings, replays to the same numbers, ends at the configuration an audit without a budget runs, and a budget
below the minimums gives every text section its first rung.

A 1-epoch TextCNN on 96 synthetic-text comments, few texts explained and attacked: the whole file takes seconds.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import dlaudit
from dlaudit.cli import cli
from dlaudit.plan import make_plan
from dlaudit.progress import ProgressPrinter

CHECKS = "explain,robustness,fairness"
TEXT_SECTIONS = ("explain", "robustness", "fairness")
PARAMS = {
    "explain": {"n": 4, "methods": "ig,occlusion"},
    "robustness": {"n": 12, "attacks": "charswap,hotflip"},
}
"""Few texts and cheap methods (the ladders then end at these counts: a parameter given caps its rungs)."""


@pytest.fixture(scope="module")
def textcnn(tmp_path_factory: pytest.TempPathFactory) -> tuple[dlaudit.ModelBundle, dlaudit.AuditData]:
    model = tmp_path_factory.mktemp("textcnn") / "t.pt"
    r = CliRunner().invoke(
        cli, ["train", "textcnn", "--data", "synthetic-text", "--epochs", "1", "-o", str(model), "-q"]
    )
    assert r.exit_code == 0, r.output
    bundle = dlaudit.load_model(model, device="cpu")
    return bundle, dlaudit.load_data(bundle=bundle).head(96)


@pytest.fixture(scope="module")
def planned(textcnn, tmp_path_factory: pytest.TempPathFactory) -> tuple[dlaudit.Report, Path, str]:
    """One text audit under a budget that buys every section's full configuration, its plan written out, and what
    it printed on stderr."""
    bundle, data = textcnn
    path = tmp_path_factory.mktemp("plan") / "plan.json"
    out = io.StringIO()
    with dlaudit.planning(time_budget="10m", plan_out=path):
        report = dlaudit.audit(
            bundle,
            data,
            checks=CHECKS,
            seed=4,
            device="cpu",
            params=PARAMS,
            progress=ProgressPrinter(stream=out, tty=False, interval=1e9),
        )
    return report, path, out.getvalue()


def test_the_plan_names_the_text_sections_settings(planned) -> None:
    report, path, _ = planned
    plan = json.loads(path.read_text())
    assert plan == report.provenance["plan"] and plan["seed"] == 4
    explain, robust, fair = (plan["sections"][name] for name in TEXT_SECTIONS)
    for entry in (explain, robust, fair):
        assert entry["budgeted"] and entry["estimated_seconds"] > 0, entry
        assert entry["level"].split(" of ")[0] == entry["level"].split(" of ")[1]  # 10 minutes buy the top rung
        assert not entry["fast"]
    assert explain["params"] == {"n": 4, "methods": ["ig", "occlusion"], "steps": 32, "lime_samples": 500}
    assert robust["params"] == {"n": 12, "attacks": ["charswap", "hotflip"], "budget": 3, "noise_rate": 0.2}
    assert fair["params"] == {"n_boot": 1000} and fair["samples"] == 96
    # a cheap model's full profile is timed on a few texts (full_ratio); a slow machine may price its passes instead
    assert {"fixed", "per_text", "forward", "grad"} <= set(plan["unit_costs"]["explain"])
    assert set(plan["unit_costs"]["explain"]) <= {"fixed", "per_text", "forward", "grad", "query", "full_ratio"}
    assert report.section("explain").params["ig_steps"] == 32 and report.section("robustness").params["budget"] == 3


def test_the_top_rung_is_the_audit_without_a_budget(planned, textcnn) -> None:
    report, _, _ = planned
    bundle, data = textcnn
    fixed = dlaudit.audit(bundle, data, checks=CHECKS, seed=4, device="cpu", params=PARAMS)
    assert fixed.metrics == report.metrics and len(report.metrics) > 20


def test_replaying_the_plan_gives_the_same_metrics(planned, textcnn) -> None:
    report, path, _ = planned
    bundle, data = textcnn
    with dlaudit.planning(plan=path):
        again = dlaudit.audit(bundle, data, checks=CHECKS, seed=0, device="cpu", params=PARAMS)  # the plan's seed wins
    assert again.metrics == report.metrics
    assert again.provenance["plan"]["sections"] == report.provenance["plan"]["sections"]


def test_the_plan_is_printed_before_the_work_and_names_the_text_sections(planned) -> None:
    _, _, printed = planned
    lines = printed.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("dlaudit: plan for 10 min"))
    started = next(i for i, line in enumerate(lines) if line.endswith("[explain] started"))
    plan_lines = lines[head + 1 : head + 4]
    assert head < started and [line.split(":")[0].strip() for line in plan_lines] == list(TEXT_SECTIONS)
    assert re.search(r"explain: level 3 of 3 \(full profile, lime_samples=500, n=4, steps=32\)", plan_lines[0])
    assert re.search(r"robustness: level 3 of 3 \(full profile, budget=3, n=12\)", plan_lines[1])
    assert "fairness: level 2 of 2 (full profile, n_boot=1000)" in plan_lines[2]


def test_a_budget_below_the_minimums_gives_every_text_section_its_first_rung(textcnn) -> None:
    bundle, data = textcnn
    plan = make_plan(bundle, data, list(TEXT_SECTIONS), PARAMS, fast=False, seed=0, budget=0.001)
    explain, robust, fair = (plan["sections"][name] for name in TEXT_SECTIONS)
    assert plan["over_budget"]
    assert explain["level"] == "1 of 3" and explain["fast"] and explain["samples"] == 2
    assert explain["params"] == {"n": 2, "methods": ["ig", "occlusion"], "steps": 16, "lime_samples": 200}
    assert robust["level"] == "1 of 3" and robust["fast"]
    assert robust["params"] == {"n": 8, "attacks": ["charswap", "hotflip"], "budget": 2, "noise_rate": 0.2}
    assert fair["level"] == "1 of 2" and fair["fast"] and fair["params"] == {"n_boot": 200}
    for entry in (explain, robust, fair):  # the ladders never fall in price (the full rung costs no less)
        assert entry["full_seconds"] >= entry["minimum_seconds"] > 0
