"""Bare state_dicts of known architectures (torchvision, timm): built, loaded strictly, normalised, saved."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch
import torchvision

import dlaudit
from dlaudit.api import card_overrides
from dlaudit.architectures import build_architecture, infer_num_classes
from dlaudit.errors import CardError, ConfigError, ModelLoadError
from dlaudit.models import Normalized

CIFAR_MEAN = [0.4914, 0.4822, 0.4465]
CIFAR_STD = [0.2470, 0.2435, 0.2616]


@pytest.fixture(scope="module")
def resnet(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, Path]:
    """torchvision's resnet18 with random weights and 10 classes, saved the way most people save: a state_dict."""
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10).eval()
    path = tmp_path_factory.mktemp("resnet") / "model.pt"
    torch.save(model.state_dict(), path)
    return model, path


def _x(n: int = 3) -> torch.Tensor:
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def test_state_dict_loads_into_the_named_architecture(resnet) -> None:
    model, path = resnet
    bundle = dlaudit.load_model(path, arch="torchvision:resnet18", num_classes=10, input_shape="3,32,32", device="cpu")
    assert bundle.format == "state_dict" and bundle.card.architecture == "torchvision:resnet18"
    with torch.no_grad():
        assert torch.equal(bundle.module(_x()), model(_x()))
    assert bundle.normalisation.startswith("none")


def test_num_classes_is_read_from_the_classifier(resnet) -> None:
    _, path = resnet
    bundle = dlaudit.load_model(path, arch="torchvision:resnet18", input_shape="3,32,32", device="cpu")
    assert bundle.card.num_classes == 10
    assert infer_num_classes("torchvision:resnet18", {}, torch.load(path, weights_only=True)) == 10


def test_mean_and_std_put_the_normalisation_in_front(resnet) -> None:
    model, path = resnet
    bundle = dlaudit.load_model(
        path,
        arch="torchvision:resnet18",
        num_classes=10,
        input_shape=(3, 32, 32),
        mean=",".join(map(str, CIFAR_MEAN)),
        std=CIFAR_STD,
        device="cpu",
    )
    assert isinstance(bundle.module, Normalized)
    expected = model((_x() - torch.tensor(CIFAR_MEAN)[:, None, None]) / torch.tensor(CIFAR_STD)[:, None, None])
    with torch.no_grad():
        assert torch.allclose(bundle.module(_x()), expected, atol=1e-5)
    assert "applied by dlaudit in front of the loaded model" in bundle.normalisation
    report = dlaudit.audit(bundle, _npz(path.parent), checks="performance")
    assert report.provenance["model"]["normalisation"] == bundle.normalisation


def _npz(folder: Path) -> Path:
    import numpy as np

    rng = np.random.default_rng(0)
    path = folder / "d.npz"
    np.savez(path, x=rng.integers(0, 256, (40, 3, 32, 32), dtype=np.uint8), y=np.arange(40) % 10)
    return path


def test_sidecar_card_with_arch_needs_no_flag(resnet, tmp_path) -> None:
    model, path = resnet
    copy = tmp_path / "model.pt"
    copy.write_bytes(path.read_bytes())
    copy.with_suffix(".card.json").write_text(
        json.dumps({"arch": "torchvision:resnet18", "input_shape": [3, 32, 32], "num_classes": 10})
    )
    bundle = dlaudit.load_model(copy, device="cpu")
    assert bundle.card.architecture == "torchvision:resnet18"
    with torch.no_grad():
        assert torch.equal(bundle.module(_x()), model(_x()))


def test_flags_win_over_the_sidecar(resnet, tmp_path) -> None:
    _, path = resnet
    copy = tmp_path / "model.pt"
    copy.write_bytes(path.read_bytes())
    copy.with_suffix(".card.json").write_text(
        json.dumps({"input_shape": [3, 32, 32], "class_names": list("abcdefghij")})
    )
    bundle = dlaudit.load_model(copy, arch="torchvision:resnet18", device="cpu")
    assert bundle.card.class_names == list("abcdefghij") and bundle.card.input_shape == (3, 32, 32)


def test_save_model_writes_a_checkpoint_torchvision_can_read(resnet, tmp_path) -> None:
    model, path = resnet
    bundle = dlaudit.load_model(
        path, arch="torchvision:resnet18", input_shape="3,32,32", mean=CIFAR_MEAN, std=CIFAR_STD, device="cpu"
    )
    out = dlaudit.save_model(bundle, tmp_path / "ckpt.pt")
    raw = torch.load(out, weights_only=True)
    assert raw["card"]["architecture"] == "torchvision:resnet18" and raw["card"]["mean"] == CIFAR_MEAN
    plain = torchvision.models.resnet18(num_classes=10)
    plain.load_state_dict(raw["state_dict"])  # the weights alone, without dlaudit's normalisation
    again = dlaudit.load_model(out, device="cpu")  # no flag: the card names the architecture
    assert again.format == "checkpoint" and isinstance(again.module, Normalized)
    with torch.no_grad():
        assert torch.equal(again.module(_x()), bundle.module(_x()))


def test_checkpoint_dicts_and_dataparallel_prefixes(resnet, tmp_path) -> None:
    model, path = resnet
    state = torch.load(path, weights_only=True)
    wrapped = tmp_path / "train.pt"
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in state.items()}}, wrapped)
    bundle = dlaudit.load_model(wrapped, arch="torchvision:resnet18", input_shape="3,32,32", device="cpu")
    with torch.no_grad():
        assert torch.equal(bundle.module(_x()), model(_x()))


def test_a_state_dict_that_does_not_fit_names_the_first_keys_and_shapes(resnet) -> None:
    _, path = resnet
    with pytest.raises(ModelLoadError) as err:
        dlaudit.load_model(path, arch="torchvision:resnet18", num_classes=100, input_shape="3,32,32")
    assert "fc.weight is (10, 512) in the file but (100, 512) in the architecture" in str(err.value)
    with pytest.raises(ModelLoadError, match=r"missing layer1\.2\.conv1\.weight.* and \d+ more"):
        dlaudit.load_model(path, arch="torchvision:resnet34", num_classes=10, input_shape="3,32,32")


def test_unknown_architecture_lists_close_matches() -> None:
    with pytest.raises(
        ConfigError, match="unknown architecture torchvision:resnet19; close matches: torchvision:resnet18"
    ):
        build_architecture("torchvision:resnet19", 10)
    with pytest.raises(ConfigError, match="SOURCE:NAME"):
        card_overrides(arch="resnet18")


def test_pretrained_weights_are_never_asked_for() -> None:
    with pytest.raises(ConfigError, match="leave these out"):
        build_architecture("torchvision:resnet18", 10, {"weights": "IMAGENET1K_V1"})


def test_arch_kwargs_reach_the_builder(tmp_path) -> None:
    model = torchvision.models.squeezenet1_1(num_classes=4, dropout=0.2)
    path = tmp_path / "sq.pt"
    torch.save(model.state_dict(), path)
    bundle = dlaudit.load_model(
        path, arch="torchvision:squeezenet1_1", arch_kwargs="dropout=0.2", input_shape="3,32,32", device="cpu"
    )
    assert bundle.card.arch_kwargs == {"dropout": 0.2} and bundle.card.num_classes == 4
    with pytest.raises(ConfigError, match="NAME=VALUE"):
        card_overrides(arch_kwargs="dropout")


def test_no_input_shape_is_taken_from_the_data_or_the_weights_or_asked_for(
    resnet, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, path = resnet
    bundle = dlaudit.load_model(path, arch="torchvision:resnet18", data="cifar10", device="cpu")
    assert bundle.card.input_shape == (3, 32, 32)
    bundle = dlaudit.load_model(path, arch="torchvision:resnet18", device="cpu")
    assert bundle.card.input_shape == (3, 224, 224)  # what resnet18's published weights take
    from dlaudit.formats import state_dict

    monkeypatch.setattr(state_dict, "default_input_shape", lambda arch, kwargs: None)  # a library that does not say
    with pytest.raises(CardError, match="--input-shape"):
        dlaudit.load_model(path, arch="torchvision:resnet18")


def test_mean_of_the_wrong_length_is_refused(resnet) -> None:
    _, path = resnet
    with pytest.raises(CardError, match="mean has 2 value"):
        dlaudit.load_model(path, arch="torchvision:resnet18", input_shape="3,32,32", mean="0.5,0.5", std="1,1")
    with pytest.raises(CardError, match="both mean and std"):
        dlaudit.load_model(path, arch="torchvision:resnet18", input_shape="3,32,32", mean="0.5")


def test_timm_without_timm_says_how_to_install(resnet, monkeypatch: pytest.MonkeyPatch) -> None:
    _, path = resnet
    monkeypatch.setitem(sys.modules, "timm", None)  # import timm raises ImportError
    from dlaudit.architectures import list_architectures

    list_architectures.cache_clear()
    with pytest.raises(ConfigError, match="pip install timm"):
        dlaudit.load_model(path, arch="timm:resnet18", input_shape="3,32,32")
    list_architectures.cache_clear()


@pytest.mark.skipif(importlib.util.find_spec("timm") is None, reason="timm is not installed (an optional extra)")
def test_timm_architecture(tmp_path) -> None:
    import timm

    model = timm.create_model("resnet10t", pretrained=False, num_classes=5).eval()
    path = tmp_path / "t.pt"
    torch.save(model.state_dict(), path)
    bundle = dlaudit.load_model(path, arch="timm:resnet10t", input_shape="3,32,32", device="cpu")
    assert bundle.card.num_classes == 5
    with torch.no_grad():
        assert torch.equal(bundle.module(_x()), model(_x()))


def test_info_on_a_bare_state_dict_needs_no_data(resnet) -> None:
    """A state_dict's card names no dataset: info shows the card and says accuracy needs --data."""
    from click.testing import CliRunner

    from dlaudit.cli import cli

    _, path = resnet
    out = dlaudit.info(dlaudit.load_model(path, arch="torchvision:resnet18", input_shape="3,32,32", device="cpu"))
    assert out["accuracy"] is None and out["data"] is None and out["parameters"] > 11_000_000
    res = CliRunner().invoke(cli, ["info", str(path), "--arch", "torchvision:resnet18", "--input-shape", "3,32,32"])
    assert res.exit_code == 0, res.output
    assert "not measured" in res.output and "--data" in res.output and "torchvision:resnet18" in res.output
