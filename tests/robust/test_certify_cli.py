"""`dlaudit certify` and the certified half of the robustness section."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

import dlaudit
from dlaudit.cli import cli


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory, digits_cnn: dlaudit.ModelBundle) -> Path:
    path = tmp_path_factory.mktemp("cert") / "cnn.pt"
    dlaudit.save_model(digits_cnn, path)
    return path


def test_certify_smoothing_and_bounds_through_the_cli(model_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.json"
    res = CliRunner().invoke(
        cli,
        [
            "certify",
            str(model_file),
            "--method",
            "smoothing",
            "--sigma",
            "0.25",
            "--inputs",
            "8",
            "--n",
            "500",
            "--json",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    metrics = json.loads(out.read_text())["metrics"]
    assert {
        "robustness.smoothing_l2.acc@0",
        "robustness.smoothing_l2.acc@0.5",
        "robustness.smoothing_l2.abstain_rate",
    } <= set(metrics)
    assert (
        metrics["robustness.smoothing_l2.acc@1"]
        <= metrics["robustness.smoothing_l2.acc@0.5"]
        <= metrics["robustness.smoothing_l2.acc@0"]
    )
    out2 = tmp_path / "b.json"
    res = CliRunner().invoke(
        cli, ["certify", str(model_file), "--method", "ibp", "--eps", "0.005,0.1", "--json", str(out2)]
    )
    assert res.exit_code == 0, res.output
    m = json.loads(out2.read_text())["metrics"]
    assert m["robustness.certified_linf.acc@0.1"] <= m["robustness.certified_linf.acc@0.005"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sigma", "0"], "sigma"),
        (["--alpha", "1.5"], "alpha"),
        (["--n", "0"], "at least 1"),
        (["--n0", "0"], "at least 1"),
        (["--radii", "-0.5"], "radius must be a number >= 0"),
        (["--method", "ibp", "--eps=-0.1"], "eps must be a number >= 0"),
    ],
)
def test_bad_certify_input_is_one_line_exit_2(model_file: Path, args: list[str], message: str) -> None:
    res = CliRunner().invoke(cli, ["certify", str(model_file), "--inputs", "2", "--n", "10", *args])
    assert res.exit_code == 2 and message in res.output and "Traceback" not in res.output, res.output


class Odd(nn.Module):
    """A recurrent layer: no interval bounds for it."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(8, 10, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(x.view(len(x), 8, 8))[0][:, -1]


def test_a_layer_the_bounds_cannot_handle_is_named(tmp_path: Path) -> None:
    path = tmp_path / "odd.pt"
    torch.save(Odd(), path)
    path.with_suffix(".card.json").write_text('{"input_shape": [1, 8, 8], "num_classes": 10}')
    res = CliRunner().invoke(
        cli, ["certify", str(path), "--trust-pickle", "--method", "ibp", "--data", "digits", "--inputs", "4"]
    )
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert "GRU" in res.output or "forward" in res.output


def test_the_report_shows_both_bounds(digits_cnn: dlaudit.ModelBundle) -> None:
    sec = dlaudit.robustness(
        digits_cnn,
        fast=True,
        n=60,
        eps=[0, 0.01, 0.1],
        noise=[],
        min_eps_samples=0,
        examples=0,
        smoothing_samples=5,
        smoothing_n=200,
    )
    m = {x.name: x.value for x in sec.metrics}
    for e in ("0.01", "0.1"):
        assert m[f"robustness.certified_linf.acc@{e}"] <= m[f"robustness.worst_linf.acc@{e}"]
        assert m[f"robustness.gap_linf@{e}"] == pytest.approx(
            m[f"robustness.worst_linf.acc@{e}"] - m[f"robustness.certified_linf.acc@{e}"]
        )
    assert "robustness.smoothing_l2.acc@0.5" in m
    assert any(t.title == "Certified and attacked accuracy (L-inf)" for t in sec.tables)
    assert any("proven and attacked" in f.alt or "certified" in f.caption for f in sec.figures)
    assert not [f for f in sec.findings if f.check == "certified-soundness"]
