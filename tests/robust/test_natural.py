"""The common-corruptions part of the robustness section: metrics, table, figures, gate, images only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import dlaudit
from dlaudit.cli import cli
from dlaudit.robust.corruptions import CORRUPTIONS, SEVERITIES

OFF = {"autoattack": "off", "certify": "off", "smoothing": False, "masking": False, "noise": (), "n": 60}


def test_an_image_model_gets_every_corruption_and_severity(digits_cnn: dlaudit.ModelBundle) -> None:
    sec = dlaudit.robustness(digits_cnn, "digits", fast=True, seed=0, **OFF)
    metrics = {m.name: m for m in sec.metrics}
    names = [f"robustness.corruption.{c}.acc@{s}" for c in CORRUPTIONS for s in SEVERITIES]
    assert all(n in metrics for n in names) and len(names) == 75
    assert all(0.0 <= metrics[n].value <= 1.0 and metrics[n].ci is not None for n in names)
    mean = sum(metrics[n].value for n in names) / 75
    assert metrics["robustness.corruption.mean_acc"].value == pytest.approx(mean)
    clean = metrics["robustness.clean_acc"].value
    assert metrics["robustness.corruption.relative_error"].value == pytest.approx(clean - mean)
    assert any(t.title == "Accuracy under common corruptions" and len(t.rows) == 15 for t in sec.tables)
    assert any("one line per severity" in f.caption for f in sec.figures)
    assert any(f.check == "corruptions" for f in sec.findings)
    assert sec.params["corruptions"]["n"] == 60


def test_same_seed_same_corruption_numbers_and_switched_off_on_request(digits_cnn: dlaudit.ModelBundle) -> None:
    one = dlaudit.robustness(digits_cnn, "digits", fast=True, seed=4, **OFF)
    two = dlaudit.robustness(digits_cnn, "digits", fast=True, seed=4, **OFF)
    pick = lambda sec: {m.name: m.value for m in sec.metrics if ".corruption." in m.name}
    assert pick(one) == pick(two)
    off = dlaudit.robustness(digits_cnn, "digits", fast=True, seed=4, corruptions=False, **OFF)
    assert not pick(off)


def test_a_tabular_model_has_no_corruption_part(digits_mlp: dlaudit.ModelBundle) -> None:
    from dlaudit.data import load_splits

    bundle = dlaudit.train("mlp", "synthetic-credit", epochs=1, seed=0, device="cpu")
    sec = dlaudit.robustness(bundle, load_splits("synthetic-credit").test, fast=True, seed=0, **OFF)
    assert not any(".corruption." in m.name for m in sec.metrics)


def test_a_gate_on_mean_corruption_accuracy(tmp_path: Path, digits_cnn: dlaudit.ModelBundle) -> None:
    model = tmp_path / "cnn.pt"
    dlaudit.save_model(digits_cnn, model)
    out = tmp_path / "r.json"
    res = CliRunner().invoke(
        cli,
        ["report", str(model), "--fast", "--checks", "robustness", "--json", str(out), "-q",
         "--fail-on", "robustness.corruption.mean_acc < 1.01"],
    )  # fmt: skip
    assert res.exit_code == 1, res.output
    assert 0.5 < json.loads(out.read_text())["metrics"]["robustness.corruption.mean_acc"] <= 1.0
