"""Numbers that cannot be trusted (issue 20, part 3): a model with NaN or infinite logits, checkpoint
shards that were edited, cut or replaced by a pickle payload, and an evaluation file that must be
audited whole.

Each case gives its exit code and a fragment of its one-line message, and changes nothing the user
had (the model and data files; a ``--checkpoint`` folder is dlaudit's own and may be rewritten).
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

import dlaudit
from dlaudit.cli import cli
from tests.hostile.crafted import digest
from tests.hostile.test_corpus import _npz

NONFINITE = "the model returns NaN or infinite logits for"

# -- models whose logits are not finite ------------------------------------------------------------


class _NaNOnSome(nn.Module):
    """NaN logits for the digits whose pixel 20 is bright (about 40% of them), finite ones otherwise."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.fc(x.flatten(1))
        return torch.where(x.flatten(1)[:, 20:21] > 0.5, torch.full_like(z, float("nan")), z)


class _InfOnAll(nn.Module):
    """Logits of +-inf (and NaN where a logit is 0) for every input."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1)) * float("inf")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """TorchScript bytes of each non-finite model (scripted once for the module)."""
    out = {}
    torch.manual_seed(0)
    for name, cls in (("nan", _NaNOnSome), ("inf", _InfOnAll)):
        path = tmp_path_factory.mktemp(name) / "m.pt"
        torch.jit.save(torch.jit.script(cls().eval()), path)
        out[name] = path.read_bytes()
    return out


COMMANDS: dict[str, list[str]] = {
    "info": ["info", "{m}", "--data", "digits"],
    "attack": ["attack", "{m}", "--data", "digits", "--attack", "pgd", "--eps", "0.1", "--n", "20", "--json", "a.json"],
    "certify": ["certify", "{m}", "--data", "digits", "--n", "20", "--inputs", "5", "--json", "c.json"],
    "explain": ["explain", "{m}", "--data", "digits", "--method", "saliency", "--n", "4", "--json", "e.json"],
    "fairness": ["fairness", "{m}", "--data", "digits", "--json", "f.json"],
    "report": ["report", "{m}", "--data", "digits", "--checks", "performance", "-o", "r.html", "--json", "r.json"],
}
"""Every command that runs a model on data, with the JSON it may write."""

REPORTS = {"fairness": "f.json", "report": "r.json"}
"""The commands that still write their report (with every metric undefined); the others write nothing."""


@pytest.mark.parametrize("kind", ["nan", "inf"])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_nonfinite_logits_fail_every_command_with_no_number(
    kind: str, command: str, models: dict[str, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    model = tmp_path / "m.pt"
    model.write_bytes(models[kind])
    model.with_suffix(".card.json").write_text(json.dumps({"input_shape": [1, 8, 8]}))
    before = digest(tmp_path)
    argv = [a.format(m=model) for a in COMMANDS[command]]
    res = CliRunner().invoke(cli, argv, catch_exceptions=False)
    out = res.output
    assert res.exit_code == 1, (argv, out)
    assert "Traceback" not in out and NONFINITE in out, out
    after = digest(tmp_path)
    assert {k: v for k, v in after.items() if k in before} == before, "an input was changed"
    written = {Path(a).name for a in argv if a.endswith(".json")}
    if command in REPORTS:
        report = json.loads((tmp_path / REPORTS[command]).read_text())
        assert report["metrics"] and all(v is None for v in report["metrics"].values()), report["metrics"]
        assert report["passed"] is False
        for sec in report["sections"]:
            assert not sec["tables"] and not sec["figures"]
            assert any(f["check"] == "nonfinite-logits" for f in sec["findings"])
        assert any(g["source"] == "section" and "logits are finite" in g["gate"] for g in report["gates"])
    else:
        assert not any((tmp_path / w).exists() for w in written), "a result of a non-finite model was written"
        assert out.count("\n") <= 1 and out.startswith("dlaudit: error:"), out


def test_nonfinite_logits_on_perturbed_inputs_fail_the_attack(tmp_path: Path) -> None:
    """Finite on the data, NaN once an attack pushes a pixel past 0.9: the attack stops, it does not count NaN."""

    class NaNWhenPushed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(64, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            z = self.fc(x.flatten(1))
            return torch.where((x.flatten(1) > 0.9).any(dim=1, keepdim=True), torch.full_like(z, float("nan")), z)

    path = tmp_path / "pushed.pt"
    torch.jit.save(torch.jit.script(NaNWhenPushed().eval()), path)
    path.with_suffix(".card.json").write_text(json.dumps({"input_shape": [1, 8, 8]}))
    x = np.full((40, 8, 8), 0.5, np.float32)
    data = _npz(tmp_path, x=x, y=np.arange(40) % 10)
    res = CliRunner().invoke(
        cli, ["attack", str(path), "--data", str(data), "--attack", "fgsm", "--eps", "0.45", "--json", "a.json"]
    )
    assert res.exit_code == 1 and NONFINITE in res.output and "Traceback" not in res.output, res.output
    assert "perturbed or noisy copies" in res.output


# -- an evaluation file is audited whole -----------------------------------------------------------


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "m.pt"
    dlaudit.save_model(dlaudit.train("mlp", "digits", epochs=2, seed=0, device="cpu"), path)
    return path


def _forty(folder: Path) -> Path:
    x = np.random.default_rng(0).random((40, 8, 8)).astype(np.float32)
    return _npz(folder, "eval.npz", x=x, y=np.arange(40) % 10)


def test_info_and_attack_audit_every_row_of_an_xy_file(tmp_path: Path, model_file: Path) -> None:
    data = _forty(tmp_path)
    before = digest(tmp_path)
    info = CliRunner().invoke(cli, ["info", str(model_file), "--data", str(data), "--json", "-"])
    assert info.exit_code == 0, info.output
    assert json.loads(info.output)["data"] == {"name": "eval", "split": "all", "n": 40}
    out = tmp_path / "a.json"
    attack = CliRunner().invoke(
        cli, ["attack", str(model_file), "--data", str(data), "--attack", "fgsm", "--eps", "0.1", "--json", str(out)]
    )
    assert attack.exit_code == 0, attack.output
    params = json.loads(out.read_text())["sections"][0]["params"]
    assert (params["n"], params["split"]) == (40, "all")
    assert digest(tmp_path) == {**before, "a.json": digest(tmp_path)["a.json"]}


def test_a_model_trained_on_a_file_is_audited_on_its_held_out_part(tmp_path: Path) -> None:
    data = _forty(tmp_path)
    model = tmp_path / "own.pt"
    res = CliRunner().invoke(cli, ["train", "mlp", "--data", str(data), "--epochs", "1", "-o", str(model)])
    assert res.exit_code == 0, res.output
    for argv in (["info", str(model), "--json", "-"], ["info", str(model), "--data", str(data), "--json", "-"]):
        info = CliRunner().invoke(cli, argv)
        assert info.exit_code == 0, info.output
        assert json.loads(info.output)["data"]["split"] == "test" and json.loads(info.output)["data"]["n"] == 10


def test_a_csv_is_audited_whole_and_split_for_training(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = ["a,b,label", *(f"{rng.random():.3f},{rng.random():.3f},{i % 2}" for i in range(40))]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    model = tmp_path / "t.pt"
    res = CliRunner().invoke(
        cli, ["train", "mlp", "--data", str(tmp_path / "t.csv"), "--target", "label", "--epochs", "1", "-o", str(model)]
    )
    assert res.exit_code == 0, res.output
    (tmp_path / "other.csv").write_text("\n".join(rows) + "\n")
    info = CliRunner().invoke(
        cli, ["info", str(model), "--data", str(tmp_path / "other.csv"), "--target", "label", "--json", "-"]
    )
    assert info.exit_code == 0, info.output
    assert json.loads(info.output)["data"]["n"] == 40


# -- checkpoint shards --------------------------------------------------------------------------------

ATTACK = ["--attack", "pgd", "--eps", "0.3", "--steps", "10", "--n", "40", "--batch-size", "8"]


def _attack(model: Path, ckpt: Path | None, out: Path) -> tuple[int, str, dict]:
    argv = ["attack", str(model), *ATTACK, "--json", str(out)]
    if ckpt is not None:
        argv += ["--checkpoint", str(ckpt)]
    res = CliRunner().invoke(cli, argv, catch_exceptions=False)
    return res.exit_code, res.output, json.loads(out.read_text()) if out.exists() else {}


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory: pytest.TempPathFactory, model_file: Path) -> dict:
    """The attack's metrics without a checkpoint (what every tampered run must reproduce)."""
    code, out, result = _attack(model_file, None, tmp_path_factory.mktemp("clean") / "clean.json")
    assert code == 0, out
    return result["metrics"]


class _Marker:
    """Unpickling this creates a file: the payload a shard must never run."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Callable[..., object], tuple[object, ...]]:
        return (Path.touch, (self.path,))


def _edit_robust(path: Path, ckpt: Path) -> None:
    """Every sample of the shard resists the attack: what lifted PGD accuracy at eps 0.3 from 0.0 to 0.583."""
    v = torch.load(path, weights_only=True)
    v["success"] = torch.zeros_like(v["success"])
    v["pred"] = torch.zeros_like(v["pred"])
    torch.save(v, path)


def _wrong_length(path: Path, ckpt: Path) -> None:
    """Three rows where the shard has eight, with ``shards.json`` rewritten to match (only the shape check is left)."""
    v = torch.load(path, weights_only=True)
    torch.save({k: t[:3] for k, t in v.items()}, path)
    _reindex(path, ckpt)


def _pickle_payload(path: Path, ckpt: Path) -> None:
    """A plain pickle whose loading would create ``marker``, with ``shards.json`` rewritten to match."""
    path.write_bytes(pickle.dumps({"pred": _Marker(ckpt.parent / "marker")}))
    _reindex(path, ckpt)


def _torch_payload(path: Path, ckpt: Path) -> None:
    """A ``torch.save`` archive holding the payload, unindexed (the digest check refuses it first)."""
    torch.save({"pred": _Marker(ckpt.parent / "marker"), "success": torch.zeros(8, dtype=torch.bool)}, path)


def _reindex(path: Path, ckpt: Path) -> None:
    import hashlib

    index = json.loads((ckpt / "shards.json").read_text())
    data = path.read_bytes()
    index[path.stem.removeprefix("shard-")] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    (ckpt / "shards.json").write_text(json.dumps(index))


TAMPER: dict[str, tuple[Callable[[Path, Path], None], str]] = {
    "edited shard": (_edit_robust, "written"),
    "wrong-length shard (index rewritten)": (_wrong_length, "not 8 rows"),
    "pickle payload (index rewritten)": (_pickle_payload, "does not load as plain tensors"),
    "torch.save payload": (_torch_payload, "written"),
}


@pytest.mark.parametrize("case", list(TAMPER))
def test_a_tampered_shard_is_computed_again_with_a_warning(
    case: str, tmp_path: Path, model_file: Path, clean_run: dict, caplog: pytest.LogCaptureFixture
) -> None:
    tamper, fragment = TAMPER[case]
    model = tmp_path / "m.pt"
    model.write_bytes(model_file.read_bytes())
    ckpt = tmp_path / "ckpt"
    code, out, first = _attack(model, ckpt, tmp_path / "first.json")
    assert code == 0, out
    assert first["metrics"] == clean_run
    shards = sorted(ckpt.glob("shard-*.pt"))
    assert shards, "the attack wrote no shard"
    tamper(shards[0], ckpt)
    before = digest(tmp_path)
    with caplog.at_level("WARNING", logger="dlaudit"):
        code, out, again = _attack(model, ckpt, tmp_path / "again.json")
    assert code == 0 and "Traceback" not in out, out
    assert not (tmp_path / "marker").exists(), "a shard's pickle payload ran"
    assert again["metrics"] == clean_run
    par = again["provenance"]["parallel"]
    assert par["shards_recomputed"] == 1 and par["shards_reused"] == len(shards) - 1, par
    assert fragment in par["shards_not_trusted"][0], par
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(shards[0].name in w and "computing it again" in w for w in warned), warned
    after = digest(tmp_path)
    assert after["m.pt"] == before["m.pt"], "the model was changed"
    third = _attack(model, ckpt, tmp_path / "third.json")[2]
    assert third["provenance"]["parallel"]["shards_reused"] == len(shards), "the recomputed shard was not stored again"
