"""``dlaudit demo`` end to end: three models, their reports and the comparison page.

Runs once the robustness branch (``dlaudit.train(adversarial=...)``) is merged;
the demo's budget is under 3 minutes on 2 cores, cached models reused.
"""
from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from click.testing import CliRunner

import dlaudit
from dlaudit.cli import cli


@pytest.mark.slow
@pytest.mark.skipif("adversarial" not in inspect.signature(dlaudit.train).parameters, reason="needs dlaudit.train(adversarial=...) from the robustness branch (issue 4)")
def test_demo_command(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["demo", "-o", str(tmp_path), "--device", "cpu"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    for name in ("cnn", "cnn-pgd", "credit-mlp"):
        assert (tmp_path / f"demo-{name}.html").is_file() and (tmp_path / f"demo-{name}.pt").is_file()
    assert (tmp_path / "demo-comparison.html").is_file()
    std = dlaudit.Report.load(tmp_path / "demo-cnn.json").metrics
    adv = dlaudit.Report.load(tmp_path / "demo-cnn-pgd.json").metrics
    eps = [k for k in std if k.startswith("robustness.pgd_linf.acc@")]
    assert eps and all(adv[k] >= std[k] for k in eps)  # adversarial training makes PGD harder
    again = CliRunner().invoke(cli, ["demo", "-o", str(tmp_path), "--device", "cpu"], catch_exceptions=False)
    assert again.output.count("(cached model)") == 3
