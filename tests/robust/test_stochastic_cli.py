"""A stochastic model end to end: `dlaudit train cnn --keep-dropout`, then `dlaudit attack` on its file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import dlaudit
from dlaudit.cli import cli
from dlaudit.models.layers import KeptDropout
from dlaudit.robust.stochastic import detect


@pytest.fixture(scope="module")
def stochastic_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sto") / "mc.pt"
    res = CliRunner().invoke(
        cli, ["train", "cnn", "--data", "digits", "--keep-dropout", "--epochs", "1", "--output", str(path), "--quiet"]
    )
    assert res.exit_code == 0, res.output
    return path


def _attack(model: Path, out: Path, *extra: str) -> tuple[dict, CliRunner]:
    args = ["attack", str(model), "--attack", "autoattack", "--eps", "0.08", "--n", "4", "--json", str(out), *extra]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    return json.loads(out.read_text()), res


def test_a_keep_dropout_checkpoint_loads_as_a_stochastic_model(stochastic_file: Path) -> None:
    bundle = dlaudit.load_model(stochastic_file)
    assert bundle.card.arch_kwargs.get("dropout_at_inference") is True
    assert any(isinstance(m, KeptDropout) for m in bundle.module.modules())
    found = detect(bundle.module, dlaudit.load_data("digits").x[:8])
    assert found is not None and "dropout left on in eval mode" in found.reason()


def test_attack_on_a_stochastic_file_states_why_and_runs_the_rand_version(
    stochastic_file: Path, tmp_path: Path
) -> None:
    report, res = _attack(stochastic_file, tmp_path / "a.json")
    sec = report["sections"][0]
    why = [f for f in sec["findings"] if f["check"] == "stochastic-model"]
    assert len(why) == 1 and "rand version" in why[0]["message"] and "dropout left on" in why[0]["message"]
    assert sec["params"]["version"] == "rand"
    assert "robustness.autoattack_linf.acc@0.08" in report["metrics"]
    assert "random at inference" in res.output


def test_version_rand_is_a_cli_choice_and_bad_input_is_one_line(tmp_path: Path, digits_cnn) -> None:
    model = tmp_path / "cnn.pt"
    dlaudit.save_model(digits_cnn, model)
    report, _ = _attack(model, tmp_path / "r.json", "--version", "rand")
    sec = report["sections"][0]
    assert sec["params"]["version"] == "rand"
    assert not [f for f in sec["findings"] if f["check"] == "stochastic-model"]  # asked for, not detected
    bad = CliRunner().invoke(cli, ["attack", str(model), "--attack", "autoattack", "--version", "plus"])
    assert bad.exit_code == 2 and "rand" in bad.output
    mlp = CliRunner().invoke(
        cli, ["train", "mlp", "--data", "digits", "--keep-dropout", "--output", str(tmp_path / "m.pt")]
    )
    assert mlp.exit_code == 2 and "--keep-dropout" in mlp.output and "Traceback" not in mlp.output
