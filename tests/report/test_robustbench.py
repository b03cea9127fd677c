"""--robustbench-json: a report's AutoAttack result in RobustBench's model-info fields, read back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import dlaudit
from dlaudit.cli import cli
from dlaudit.errors import ConfigError
from dlaudit.report.model import Report, Section
from dlaudit.report.robustbench import FIELDS, NO_AUTOATTACK, robustbench_info


def _report(autoattack: dict[str, float], version: str = "standard") -> Report:
    sec = Section(name="robustness", title="Robustness")
    sec.add_metric("robustness.clean_acc", 0.9875)
    sec.add_metric("robustness.pgd_linf.acc@0.1", 0.5)
    for name, value in autoattack.items():
        sec.add_metric(name, value)
    sec.params = {"n": 80, "data": "digits", "seed": 3, "scope": "full", "autoattack": version, "version": "fast"}
    return Report(title="cnn.pt", card={"architecture": "cnn"}, sections=[sec])


def test_the_fields_are_robustbench_s_and_the_budget_is_the_middle_one() -> None:
    info = robustbench_info(
        _report(
            {
                "robustness.autoattack_linf.acc@0": 0.9875,  # eps 0 is the clean accuracy, not a budget
                "robustness.autoattack_linf.acc@0.3": 0.0,
                "robustness.autoattack_linf.acc@0.0313725": 0.25,  # 8/255
                "robustness.autoattack_linf.acc@0.1": 0.125,
                "robustness.autoattack_l2.acc@1": 0.5,
            }
        )
    )
    assert list(info)[: len(FIELDS)] == list(FIELDS)
    assert info["clean_acc"] == "98.75" and info["autoattack_acc"] == "12.50" and info["eps"] == "0.1"
    assert info["threat_model"] == "Linf" and info["n_examples"] == 80 and info["autoattack_version"] == "standard"
    assert info["dataset"] == "digits" and info["architecture"] == "cnn" and info["number_forward_passes"] == 1
    assert {"threat_model": "Linf", "eps": "8/255", "autoattack_acc": "25.00"} in info["all_budgets"]
    assert {"threat_model": "L2", "eps": "1", "autoattack_acc": "50.00"} in info["all_budgets"]
    assert len(info["all_budgets"]) == 4 and "0" not in [b["eps"] for b in info["all_budgets"]]


def test_an_l2_only_run_and_a_stochastic_model_s_votes() -> None:
    info = robustbench_info(_report({"robustness.autoattack_l2.acc@0.5": 0.75}, version="rand"))
    assert info["threat_model"] == "L2" and info["eps"] == "0.5" and info["autoattack_acc"] == "75.00"
    assert info["autoattack_version"] == "rand" and info["number_forward_passes"] == 9


def test_without_autoattack_it_says_to_add_it() -> None:
    with pytest.raises(ConfigError) as err:
        robustbench_info(_report({}))
    assert str(err.value) == NO_AUTOATTACK and "--attack autoattack" in NO_AUTOATTACK and "\n" not in NO_AUTOATTACK


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory, digits_cnn: dlaudit.ModelBundle) -> Path:
    path = tmp_path_factory.mktemp("rb") / "cnn.pt"
    dlaudit.save_model(digits_cnn, path)
    return path


def test_dlaudit_attack_writes_it_and_it_reads_back(model_file: Path, tmp_path: Path) -> None:
    out, rep = tmp_path / "rb.json", tmp_path / "report.json"
    args = ["attack", str(model_file), "--attack", "autoattack", "--version", "fast", "--eps", "0.1", "--n", "24"]
    res = CliRunner().invoke(cli, [*args, "--robustbench-json", str(out), "--json", str(rep), "--quiet"])
    assert res.exit_code == 0, res.output
    info = json.loads(out.read_text())
    metrics = json.loads(rep.read_text())["metrics"]
    assert info["autoattack_acc"] == f"{100 * metrics['robustness.autoattack_linf.acc@0.1']:.2f}"
    assert info["clean_acc"] == f"{100 * metrics['robustness.clean_acc']:.2f}"
    assert info["eps"] == "0.1" and info["n_examples"] == 24 and info["autoattack_version"] == "fast"


def test_without_autoattack_or_over_an_input_it_is_a_one_line_error(model_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "rb.json"
    res = CliRunner().invoke(cli, ["attack", str(model_file), "--attack", "fgsm", "--eps", "0.1", "--n", "8",
                                   "--robustbench-json", str(out), "--quiet"])  # fmt: skip
    assert res.exit_code == 2 and "--attack autoattack" in res.output and not out.exists()
    assert "Traceback" not in res.output
    before = model_file.read_bytes()
    res = CliRunner().invoke(cli, ["attack", str(model_file), "--attack", "autoattack", "--n", "8",
                                   "--robustbench-json", str(model_file), "--quiet"])  # fmt: skip
    assert res.exit_code == 2 and "--robustbench-json" in res.output and model_file.read_bytes() == before
