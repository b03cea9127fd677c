"""``dlaudit report``: outputs, exit codes (0 pass, 1 failed gate or regression, 2 bad usage), config, baseline."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result

import dlaudit
from dlaudit.cli import cli
from tests.report.test_audit_api import unavailable


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory, digits_cnn: dlaudit.ModelBundle) -> Path:
    path = tmp_path_factory.mktemp("model") / "cnn.pt"
    dlaudit.save_model(digits_cnn, path)
    return path


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run ``dlaudit ARGS`` in an empty directory (so no pyproject.toml there unless a test writes one)."""
    monkeypatch.chdir(tmp_path)

    def _run(*args: str) -> Result:
        return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)

    return _run


def test_report_writes_every_output_and_exits_0_when_gates_hold(run: Any, model_file: Path, tmp_path: Path) -> None:
    res = run(
        "report",
        model_file,
        "--checks",
        "performance",
        "--json",
        "out/r.json",
        "--markdown",
        "out/r.md",
        "--junit",
        "out/r.xml",
        "--fail-on",
        "performance.accuracy < 0.9",
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "reports" / "cnn.html").is_file()  # the default HTML path
    data = json.loads((tmp_path / "out" / "r.json").read_text())
    assert data["schema_version"] == 1 and data["passed"] is True
    assert 0.9 <= data["metrics"]["performance.accuracy"] <= 1.0
    assert dlaudit.load_report(tmp_path / "out" / "r.json").metrics == data["metrics"]
    assert "✅ pass" in (tmp_path / "out" / "r.md").read_text()
    assert 'tests="1" failures="0"' in (tmp_path / "out" / "r.xml").read_text()
    assert "gate     fails when performance.accuracy < 0.9; value 0.9" in res.output and ": pass" in res.output


def test_failed_gate_exits_1_and_still_writes_the_report(run: Any, model_file: Path, tmp_path: Path) -> None:
    res = run(
        "report",
        model_file,
        "--checks",
        "performance",
        "-o",
        "r.html",
        "--junit",
        "r.xml",
        "--fail-on",
        "performance.accuracy < 0.9",
        "--fail-on",
        "performance.accuracy <= 0.9999",
    )
    assert res.exit_code == 1
    assert "gate     fails when performance.accuracy <= 0.9999; value " in res.output
    assert "Gates failed: 1 of 2 gates failed." in res.output
    assert "Gates failed: 1 of 2 gates failed." in (tmp_path / "r.html").read_text()
    assert 'failures="1"' in (tmp_path / "r.xml").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fail-on", "performance.accuracy => 0.9"], "malformed gate 'performance.accuracy => 0.9'"),
        (["--fail-on", "performance.acuracy < 0.9"], "names metric 'performance.acuracy', which was not computed"),
        (["--checks", "performance,speed"], "unknown check(s) speed"),
        (["--baseline", "missing.json"], "report missing.json does not exist"),
        (["--max-drop", "0.01"], "--max-drop needs a baseline"),
        (["--config", "nope.toml"], "config file nope.toml does not exist"),
        (["--data", "nosuch"], "unknown dataset 'nosuch'"),
    ],
)
def test_bad_usage_exits_2_with_one_line(run: Any, model_file: Path, args: list[str], message: str) -> None:
    res = run("report", model_file, "--checks", "performance", "-o", "r.html", *args)
    assert res.exit_code == 2
    assert message in res.output
    assert "Traceback" not in res.output
    assert res.output.count("dlaudit: error:") == 1


def test_click_usage_errors_exit_2(run: Any, model_file: Path) -> None:
    assert run("report", model_file, "--max-drop", "-1").exit_code == 2
    assert run("report").exit_code == 2  # no MODEL


def test_gate_on_a_skipped_section_says_why(
    run: Any, model_file: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    unavailable(monkeypatch, "robustness")  # as if robustness had not landed
    res = run(
        "report",
        model_file,
        "--checks",
        "performance,robustness",
        "-o",
        "r.html",
        "--fail-on",
        "robustness.pgd_linf.acc@0.1 < 0.5",
    )
    assert res.exit_code == 2
    assert "the robustness section was skipped: this analysis is not available" in res.output
    assert (tmp_path / "r.html").is_file()  # written anyway, to look into


def test_gates_from_pyproject_in_the_current_directory(run: Any, model_file: Path, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.dlaudit]\ngates = ["performance.accuracy < 0.9", "performance.macro_f1 <= 0.9999"]\nchecks = "performance"\n'
    )
    res = run("report", model_file, "-o", "r.html", "--json", "r.json", "--fail-on", "performance.accuracy >= 1.5")
    assert res.exit_code == 1
    gates = json.loads((tmp_path / "r.json").read_text())["gates"]
    assert [(g["gate"], g["source"], g["passed"]) for g in gates] == [
        ("performance.accuracy < 0.9", "config", True),
        ("performance.macro_f1 <= 0.9999", "config", False),
        ("performance.accuracy >= 1.5", "fail-on", True),
    ]


def test_config_file_option(run: Any, model_file: Path, tmp_path: Path) -> None:
    (tmp_path / "ci.toml").write_text('gates = ["performance.accuracy < 0.5"]\nchecks = ["performance"]\nfast = true\n')
    res = run("report", model_file, "-o", "r.html", "--json", "r.json", "--config", "ci.toml")
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "r.json").read_text())
    assert [s["name"] for s in data["sections"]] == ["performance"]
    assert data["provenance"]["fast"] is True
    (tmp_path / "bad.toml").write_text('[tool.dlaudit]\ngates = "performance.accuracy < 0.5"\n')
    res = run("report", model_file, "--config", "bad.toml")
    assert res.exit_code == 2 and "gates must be a list of strings" in res.output


def test_baseline_regression_exits_1(run: Any, model_file: Path, tmp_path: Path) -> None:
    assert run("report", model_file, "--checks", "performance", "-o", "base.html", "--json", "base.json").exit_code == 0
    same = run("report", model_file, "--checks", "performance", "-o", "r.html", "--baseline", "base.json")
    assert same.exit_code == 0, same.output
    base = json.loads((tmp_path / "base.json").read_text())  # pretend the last release was better
    acc = base["metrics"]["performance.accuracy"]
    for m in base["sections"][0]["metrics"]:
        if m["name"] == "performance.accuracy":
            m["value"] = acc + 0.05
    (tmp_path / "better.json").write_text(json.dumps(base))
    res = run(
        "report",
        model_file,
        "--checks",
        "performance",
        "-o",
        "r.html",
        "--markdown",
        "r.md",
        "--json",
        "r.json",
        "--baseline",
        "better.json",
        "--max-drop",
        "0.02",
    )
    assert res.exit_code == 1
    assert "Baseline better.json: 3 metrics compared, 1 regression." in res.output
    assert f"  regression: fails when performance.accuracy < {acc + 0.03:.4g}; value {acc:.4g}: FAIL" in res.output
    assert res.output.count("fails when") == 1  # the checks that held are in the summary line, not one line each
    assert "❌ 1 regression" in (tmp_path / "r.md").read_text()
    html = (tmp_path / "r.html").read_text()
    assert 'id="baseline"' in html and "regression" in html
    assert json.loads((tmp_path / "r.json").read_text())["baseline"]["regressions"] == ["performance.accuracy"]
    tolerant = run(
        "report",
        model_file,
        "--checks",
        "performance",
        "-o",
        "r.html",
        "--baseline",
        "better.json",
        "--max-drop",
        "0.06",
    )
    assert tolerant.exit_code == 0, tolerant.output


def test_same_inputs_and_seed_give_the_same_json_metrics(run: Any, model_file: Path, tmp_path: Path) -> None:
    """Every section (fast configuration, 80 samples), twice: the metrics must match exactly."""
    small = dlaudit.load_data("digits").head(80)
    x, y = small.x.numpy(), small.y.numpy()
    np.savez(tmp_path / "small.npz", x_train=x, y_train=y, x_test=x, y_test=y)
    for name in ("a", "b"):
        res = run(
            "report",
            model_file,
            "--data",
            "small.npz",
            "--fast",
            "--seed",
            "3",
            "-o",
            f"{name}.html",
            "--json",
            f"{name}.json",
        )
        assert res.exit_code == 0, res.output
    a, b = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("a", "b"))
    assert a["metrics"] == b["metrics"]
    assert [s["findings"] for s in a["sections"]] == [s["findings"] for s in b["sections"]]
    assert [s["name"] for s in a["sections"]] == ["performance", "explain", "robustness", "fairness"]


def test_plain_progress_lines_when_not_a_terminal_and_quiet_prints_nothing(
    run: Any, model_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    res = run("report", model_file, "--checks", "performance", "-o", "r.html", "--quiet")
    assert res.exit_code == 0 and res.output == ""
    monkeypatch.setenv("DLAUDIT_PROGRESS_INTERVAL", "0")
    res = run("report", model_file, "--checks", "performance,robustness", "--fast", "-o", "r.html")
    assert "[###" not in res.stderr and "\r" not in res.stderr  # no bar: CliRunner's stderr is not a terminal
    lines = res.stderr.splitlines()
    assert "dlaudit: [performance] started" in lines and "dlaudit: [robustness] started" in lines
    step = next(line for line in lines if line.startswith("dlaudit: [robustness] pgd_linf"))
    assert re.fullmatch(
        r"dlaudit: \[robustness\] pgd_linf \d+/\d+ \(\d+%\) · .+ elapsed( · about .+ left)? · section .+", step
    )
    assert any(re.fullmatch(r"dlaudit: \[robustness\] done in .+", line) for line in lines)
    assert "report ->" not in res.stderr  # results go to stdout, progress to stderr


def test_progress_bar_on_a_terminal(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from dlaudit import cli as cli_module

    monkeypatch.setattr(cli_module.sys.stderr, "isatty", lambda: True)
    bar = cli_module.TerminalProgress(quiet=False)
    assert bar.mode == "bar"
    bar("robustness:pgd_linf", 0, 4)
    bar("robustness:pgd_linf", 4, 4)
    err = capsys.readouterr().err
    assert "robustness:pgd_linf" in err and "[" + "#" * 24 + "] 4/4" in err
    assert not cli_module.TerminalProgress(quiet=True).enabled
