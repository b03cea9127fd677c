"""``dlaudit demo`` end to end: three models, their reports and the comparison page.

Runs once the robustness branch (``dlaudit.train(adversarial=...)``) is merged.
One full demo (train three models, audit each in the fast configuration); its
budget is under 3 minutes on 2 cores. Model reuse is tested in tests/report/test_demo_run.py.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from click.testing import CliRunner

import dlaudit
from dlaudit.cli import cli


@pytest.mark.slow
@pytest.mark.skipif(
    "adversarial" not in inspect.signature(dlaudit.train).parameters,
    reason="needs dlaudit.train(adversarial=...) from the robustness branch (issue 4)",
)
def test_demo_command(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["demo", "-o", str(tmp_path), "--device", "cpu"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    for name in ("cnn", "cnn-pgd", "credit-mlp"):
        assert (tmp_path / f"demo-{name}.html").is_file() and (tmp_path / f"demo-{name}.pt").is_file()
    assert (tmp_path / "demo-comparison.html").is_file()
    assert "demo-comparison.html" in res.output
    std = dlaudit.load_report(tmp_path / "demo-cnn.json")
    adv = dlaudit.load_report(tmp_path / "demo-cnn-pgd.json")
    assert std.passed and adv.passed and std.fast
    key = "robustness.pgd_linf.acc@0.1"  # adversarial training (at eps 0.1) makes PGD at 0.1 much less effective
    assert adv.metrics[key] > std.metrics[key] + 0.05
    credit = dlaudit.load_report(tmp_path / "demo-credit-mlp.json")
    assert credit.section("fairness") is not None
    # its one gate passes, but its fairness section fails the four-fifths rule: the health verdict says so
    assert credit.passed and credit.health.status == "fail" and credit.health.worst.check == "four-fifths"
    page = (tmp_path / "demo-credit-mlp.html").read_text()
    header = page[: page.index('id="scorecard"')]
    assert "Gates passed: the one gate holds." in header and "four-fifths rule fails" in header
    assert "Health: fail — " in res.output and "four-fifths rule fails" in res.output
