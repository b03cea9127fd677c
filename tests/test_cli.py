"""The command line as a new user meets it: train, info, report; bad input is one line and exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner, Result

import dlaudit
from dlaudit.cli import cli


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dlaudit", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def test_train_info_report_end_to_end(tmp_path):
    """The 'done when' of the foundation issue, through real processes."""
    r = run("train", "cnn", "--data", "digits", "-o", "cnn.pt", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    info = run("info", "cnn.pt", "--json", cwd=tmp_path)
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["accuracy"] >= 0.97
    rep = run("report", "cnn.pt", "-o", "r.html", "--json", "r.json", "--checks", "performance", cwd=tmp_path)
    assert rep.returncode == 0, rep.stderr
    metrics = json.loads((tmp_path / "r.json").read_text())["metrics"]
    assert metrics["performance.accuracy"] == pytest.approx(json.loads(info.stdout)["accuracy"], abs=1e-6)
    html = (tmp_path / "r.html").read_text()
    assert "data:image/png;base64," in html and "Confusion matrix" in html


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, digits_cnn):
    path = tmp_path_factory.mktemp("m") / "cnn.pt"
    dlaudit.save_model(digits_cnn, path)
    return path


def _bad(args, tmp_path) -> str:
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 2, (args, result.output)
    out = result.output.strip()
    assert "Traceback" not in out
    return out


def test_bad_input_is_one_line_and_exit_2(tmp_path, model_file):
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    noise = tmp_path / "noise.pt"
    noise.write_bytes(np.random.default_rng(0).bytes(4096))
    pickled = tmp_path / "whole.pt"
    torch.save(torch.nn.Linear(64, 10), pickled)
    small = tmp_path / "small.npz"
    np.savez(small, x=np.zeros((20, 4, 4), np.uint8), y=np.arange(20) % 2)
    cases = [
        (["info", str(tmp_path / "missing.pt")], "does not exist"),
        (["info", str(empty)], "is empty"),
        (["info", str(noise)], "not a model file"),
        (["info", str(pickled)], "--trust-pickle"),
        (["info", str(model_file), "--data", str(small)], "expects (1, 8, 8)"),
        (["info", str(model_file), "--data", "imagenet"], "unknown dataset"),
        (["report", str(model_file), "--checks", "magic"], "unknown check"),
        (["report", str(model_file), "--fail-on", "accuracy is great"], "malformed gate"),
        (["train", "cnn", "--data", "synthetic-credit", "-o", str(tmp_path / "x.pt")], "cnn needs image data"),
        (["train", "resnet", "-o", str(tmp_path / "x.pt")], "Invalid value"),
    ]
    for args, message in cases:
        out = _bad(args, tmp_path)
        assert message in out, (args, out)
        assert len(out.splitlines()) <= 4, out  # click usage errors carry a usage line; ours are one line
    assert not (tmp_path / "x.pt").exists()


def test_error_through_a_real_process_has_no_traceback(tmp_path):
    r = run("info", str(tmp_path / "missing.pt"))
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and r.stderr.startswith("dlaudit: error: ")
    assert "Traceback" not in r.stderr


def test_gate_exit_codes(tmp_path, model_file):
    def gated(name: str, gate: str, *more: str) -> Result:
        report = ["report", str(model_file), "--checks", "performance", "-o", str(tmp_path / name)]
        return CliRunner().invoke(cli, [*report, "--fail-on", gate, *more])

    ok = gated("a.html", "performance.accuracy < 0.9", "-q")
    assert ok.exit_code == 0, ok.output
    bad = gated("b.html", "performance.accuracy <= 0.999", "-q")
    assert bad.exit_code == 1, bad.output
    missing = gated("c.html", "robustness.pgd_linf.acc@0.1 < 0.5")
    assert missing.exit_code == 2 and "not computed" in missing.output


def test_report_does_not_clobber_on_failure(tmp_path, model_file):
    target = tmp_path / "keep.html"
    target.write_text("earlier report")
    r = CliRunner().invoke(cli, ["report", str(model_file), "--data", "imagenet", "-o", str(target)])
    assert r.exit_code == 2
    assert target.read_text() == "earlier report"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.html"]


def test_foreign_model_with_cli_card(tmp_path, digits_cnn):
    path = tmp_path / "ts.pt"
    torch.jit.trace(digits_cnn.module, torch.rand(2, 1, 8, 8)).save(str(path))
    out = _bad(["info", str(path)], tmp_path)
    assert "input_shape" in out
    ok = CliRunner().invoke(
        cli, ["info", str(path), "--input-shape", "1,8,8", "--num-classes", "10", "--data", "digits", "--json"]
    )
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["accuracy"] >= 0.97


def test_malloc_tuning_starts_with_the_cli_not_at_import_with_opt_out():
    imported = "import dlaudit._alloc as a, dlaudit; print(a.malloc_tuning_state()['reason'])"
    started = (
        "import sys, dlaudit._alloc as a, dlaudit.cli\n"
        "sys.argv = ['dlaudit', '--version']\n"
        "try:\n    dlaudit.cli.main()\nexcept SystemExit:\n    pass\n"
        "print(a.malloc_tuning_state()['reason'])"
    )
    run = lambda code, **env: (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **env})
        .stdout.strip()
        .splitlines()[-1]
    )
    assert run(imported) == "not attempted"  # importing dlaudit changes nothing in the process
    assert run(started) in ("applied", "C library is not glibc")
    assert run(started, DLAUDIT_MALLOC_TUNING="0") == "disabled by DLAUDIT_MALLOC_TUNING=0"


def test_info_json_takes_a_path_like_every_command(tmp_path, model_file):
    out = tmp_path / "info.json"
    res = CliRunner().invoke(cli, ["info", str(model_file), "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text())["accuracy"] >= 0.97 and "accuracy" in res.output  # the table still prints
    printed = CliRunner().invoke(cli, ["info", str(model_file), "--json", "-"])
    assert json.loads(printed.output)["card"]["architecture"] == "cnn"
