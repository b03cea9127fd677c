"""The examples run (on a ready-made model, so no test waits for training) and the workflow uses real options."""

from __future__ import annotations

import re
import runpy
import sys
from pathlib import Path

import pytest

import dlaudit
from dlaudit.cli import report as report_command

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(script: Path, argv: list[str]) -> int:
    old = sys.argv
    sys.argv = [str(script), *argv]
    try:
        runpy.run_path(str(script), run_name="__main__")
    except SystemExit as stop:
        return int(stop.code or 0)
    finally:
        sys.argv = old
    return 0


def test_python_api_example(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, digits_cnn: dlaudit.ModelBundle, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(dlaudit, "train", lambda *a, **k: digits_cnn)
    real_audit = dlaudit.audit
    small = dlaudit.load_data("digits", bundle=digits_cnn, limit=60)  # the script's flow on fewer samples
    monkeypatch.setattr(dlaudit, "audit", lambda model, **kw: real_audit(model, small, **kw))
    assert _run(EXAMPLES / "python_api.py", []) == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0].split()
    assert first[0] == "accuracy" and float(first[1]) >= 0.9 and "PASS performance.accuracy < 0.9" in out
    assert dlaudit.load_report(tmp_path / "reports" / "python-api.json").metrics["performance.accuracy"] > 0.9
    assert (tmp_path / "reports" / "python-api.html").is_file()
    assert len((EXAMPLES / "python_api.py").read_text().splitlines()) <= 20


def test_fairness_adult_example(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code = _run(
        EXAMPLES / "fairness_adult.py",
        ["--data-dir", str(shared_data / "adult"), "--epochs", "1", "-o", "out/adult.html"],
    )
    out = capsys.readouterr().out
    assert code in (0, 1), out
    assert out.startswith("accuracy 0.8") and "report -> out/adult.html" in out
    assert (tmp_path / "out" / "adult.html").is_file() and (tmp_path / "out" / "adult.json").is_file()


def test_github_workflow_uses_options_that_exist() -> None:
    text = (EXAMPLES / "github-actions.yml").read_text()
    command = re.search(r"dlaudit report (.+?)\n\n", text, re.S)
    assert command is not None
    options = set(re.findall(r"(?<!\w)--[a-z][a-z-]+", command.group(1)))
    known = {o for p in report_command.params for o in p.opts}
    assert options and options <= known, options - known
    for needed in (
        "--junit",
        "--markdown",
        "--json",
        "--fail-on",
        "--baseline",
        "GITHUB_STEP_SUMMARY",
        "actions/upload-artifact",
        "if: always()",
    ):
        assert needed in text
    assert "\t" not in text
