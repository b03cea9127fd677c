"""Model files: every format round-trips; unsafe or broken files give clear errors."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import torch

import dlaudit
from dlaudit.bundle import CHECKPOINT_FORMAT
from dlaudit.errors import CardError, DlauditError, ModelLoadError


@pytest.fixture(scope="module")
def small_mlp() -> dlaudit.ModelBundle:
    return dlaudit.train("mlp", "digits", epochs=1, seed=0, device="cpu")


@pytest.fixture()
def x() -> torch.Tensor:
    return torch.rand(7, 1, 8, 8, generator=torch.Generator().manual_seed(0))


def _card_file(path: Path) -> None:
    path.with_suffix(".card.json").write_text(
        json.dumps({"input_shape": [1, 8, 8], "num_classes": 10, "value_range": [0, 1]})
    )


def test_checkpoint_round_trip_is_weights_only(tmp_path, small_mlp, x):
    path = dlaudit.save_model(small_mlp, tmp_path / "m.pt")
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == CHECKPOINT_FORMAT and set(raw) == {"format", "version", "card", "state_dict"}
    loaded = dlaudit.load_model(path, device="cpu")
    assert loaded.format == "checkpoint"
    assert torch.equal(loaded.module(x), small_mlp.module(x))
    assert loaded.card == small_mlp.card
    assert not loaded.module.training


def test_torchscript_round_trip_with_sidecar_card(tmp_path, small_mlp, x):
    path = tmp_path / "ts.pt"
    torch.jit.trace(small_mlp.module, x).save(str(path))
    with pytest.raises(CardError, match=r"no model card.*ts\.card\.json.*input_shape"):
        dlaudit.load_model(path)
    _card_file(path)
    loaded = dlaudit.load_model(path, device="cpu")
    assert loaded.format == "torchscript"
    assert torch.equal(loaded.module(x), small_mlp.module(x))


@pytest.mark.parametrize("dynamic", [True, False])
def test_torch_export_round_trip(tmp_path, small_mlp, x, dynamic):
    path = tmp_path / "m.pt2"
    shapes = {"input": {0: torch.export.Dim("batch")}} if dynamic else None
    torch.export.save(torch.export.export(small_mlp.module, (x,), dynamic_shapes=shapes), str(path))
    loaded = dlaudit.load_model(path, device="cpu")  # input shape read from the program itself
    assert loaded.format == "torch.export"
    assert loaded.card.input_shape == (1, 8, 8) and loaded.card.num_classes == 10
    big = torch.cat([x, x, x[:3]])  # 17 rows: a static batch of 7 is served by chunking
    assert torch.allclose(loaded.module(big), small_mlp.module(big), atol=1e-6)


def test_pickled_module_needs_trust(tmp_path, small_mlp, x):
    path = tmp_path / "whole.pt"
    torch.save(small_mlp.module, path)
    with pytest.raises(ModelLoadError, match="trust-pickle"):
        dlaudit.load_model(path)
    loaded = dlaudit.load_model(path, trust_pickle=True, card={"input_shape": [1, 8, 8]}, device="cpu")
    assert loaded.format == "pickle" and loaded.card.num_classes == 10
    assert torch.equal(loaded.module(x), small_mlp.module(x))


class _Evil:
    """Unpickling this writes a file: the proof that code from the file ran."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def test_malicious_pickle_is_not_run(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"model": _Evil(str(marker))}, path)
    with pytest.raises(ModelLoadError, match="unpickling runs code"):
        dlaudit.load_model(path)
    assert not marker.exists()
    legacy = tmp_path / "evil_legacy.pt"  # a raw pickle stream (torch's legacy format)
    legacy.write_bytes(pickle.dumps(_Evil(str(marker)), protocol=2))
    with pytest.raises(DlauditError):
        dlaudit.load_model(legacy)
    assert not marker.exists()


def test_broken_files_give_clear_errors(tmp_path, small_mlp):
    good = dlaudit.save_model(small_mlp, tmp_path / "good.pt")
    cases = {
        "empty.pt": (b"", "is empty"),
        "random.pt": (bytes(range(7, 256)) * 40, "not a model file"),
        "truncated.pt": (good.read_bytes()[: good.stat().st_size // 2], "truncated"),
    }
    for name, (content, message) in cases.items():
        p = tmp_path / name
        p.write_bytes(content)
        with pytest.raises(ModelLoadError, match=message):
            dlaudit.load_model(p)
    with pytest.raises(ModelLoadError, match="does not exist"):
        dlaudit.load_model(tmp_path / "missing.pt")


def test_bare_state_dict(tmp_path, small_mlp, x):
    path = tmp_path / "sd.pt"
    torch.save(small_mlp.module.state_dict(), path)
    with pytest.raises(ModelLoadError, match="bare state_dict"):
        dlaudit.load_model(path)
    card = small_mlp.card.to_dict()
    loaded = dlaudit.load_model(path, card=card, device="cpu")
    assert torch.equal(loaded.module(x), small_mlp.module(x))


def test_weights_that_do_not_fit_the_architecture(tmp_path, small_mlp):
    path = dlaudit.save_model(small_mlp, tmp_path / "m.pt")
    with pytest.raises(ModelLoadError, match="do not fit"):
        dlaudit.load_model(path, card={"arch_kwargs": {"hidden": [5]}})


def test_bad_cards(tmp_path):
    with pytest.raises(CardError, match="num_classes"):
        dlaudit.ModelCard(input_shape=(3,), num_classes=1)
    with pytest.raises(CardError, match="unknown card field"):
        dlaudit.ModelCard.from_dict({"input_shape": [3], "num_classes": 2, "colour": "red"})
    with pytest.raises(CardError, match="missing num_classes"):
        dlaudit.ModelCard.from_dict({"input_shape": [3]})
    with pytest.raises(CardError, match="class_names"):
        dlaudit.ModelCard(input_shape=(3,), num_classes=2, class_names=["a"])


def test_foreign_model_not_returning_logits(tmp_path):
    class Scalar(torch.nn.Module):
        def forward(self, x):
            return x.flatten(1).sum(1)

    path = tmp_path / "scalar.pt"
    torch.jit.script(Scalar()).save(str(path))
    with pytest.raises(CardError, match=r"\(N, classes\) logits"):
        dlaudit.load_model(path, card={"input_shape": [4]})


def test_save_refuses_foreign_architecture(tmp_path, small_mlp):
    bundle = dlaudit.ModelBundle(small_mlp.module, small_mlp.card.replace(architecture=None))
    with pytest.raises(ModelLoadError, match="torch.jit.save"):
        dlaudit.save_model(bundle, tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()
