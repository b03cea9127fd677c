"""`dlaudit explain` on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import dlaudit
from dlaudit.cli import cli


@pytest.fixture(scope="module")
def cnn_file(digits_cnn, tmp_path_factory) -> Path:
    return dlaudit.save_model(digits_cnn, tmp_path_factory.mktemp("explain") / "cnn.pt")


def test_explain_writes_json_html_and_arrays(cnn_file: Path, tmp_path: Path) -> None:
    out, js = tmp_path / "out", tmp_path / "explain.json"
    result = CliRunner().invoke(
        cli,
        [
            "explain",
            str(cnn_file),
            "--method",
            "saliency,gradcam",
            "--n",
            "4",
            "--fast",
            "--device",
            "cpu",
            "-o",
            str(out),
            "--json",
            str(js),
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(js.read_text())
    assert payload["metrics"]["explain.gradcam.sanity_rank_corr"] is not None
    assert set(payload["metrics"]) >= {
        f"explain.saliency.{k}"
        for k in ("deletion_auc", "insertion_auc", "random_deletion_auc", "sanity_rank_corr", "sensitivity")
    }
    assert not [f for f in payload["sections"][0]["findings"] if f["check"] == "explain-skipped"]
    assert set(payload) >= {"metrics", "sections", "gates", "provenance"}  # the report shape, as every command
    arrays = np.load(out / "attributions.npz")
    assert arrays["attr_saliency"].shape == (4, 1, 8, 8) and arrays["x"].shape == (4, 1, 8, 8)
    html = (out / "explain.html").read_text()
    assert "Explanations" in html and "data:image/png;base64," in html


def test_explain_unknown_method_is_a_usage_error(cnn_file: Path) -> None:
    result = CliRunner().invoke(cli, ["explain", str(cnn_file), "--method", "saliency,anchors"])
    assert result.exit_code == 2
    assert (
        "unknown explanation method(s) anchors; choose from: saliency, ig, smoothgrad, gradcam, deeplift, occlusion, lime, shap"
        in result.output
    )


def test_explain_unknown_target_is_a_usage_error(cnn_file: Path) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "explain",
            str(cnn_file),
            "--method",
            "saliency",
            "--n",
            "2",
            "--explain-target",
            "eleven",
            "--no-quality",
            "-q",
        ],
    )
    assert result.exit_code == 2
    assert "unknown explanation target 'eleven'" in result.output


def test_report_includes_the_explain_section(cnn_file: Path, tmp_path: Path) -> None:
    js = tmp_path / "report.json"
    result = CliRunner().invoke(
        cli,
        [
            "report",
            str(cnn_file),
            "--checks",
            "explain",
            "--fast",
            "--device",
            "cpu",
            "-o",
            str(tmp_path / "r.html"),
            "--json",
            str(js),
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(js.read_text())
    assert payload["sections"][0]["name"] == "explain" and payload["sections"][0]["status"] == "ok"
    assert payload["metrics"]["explain.ig.deletion_auc"] < payload["metrics"]["explain.ig.random_deletion_auc"]
