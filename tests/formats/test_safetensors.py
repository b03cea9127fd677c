"""Weights in .safetensors with --arch: read with the safetensors library (no pickle), the same path as a state_dict."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch
import torchvision
from click.testing import CliRunner
from safetensors.torch import save_file

import dlaudit
from dlaudit.cli import cli


@pytest.fixture(scope="module")
def resnet_weights(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10).eval()
    path = tmp_path_factory.mktemp("st") / "weights.safetensors"
    save_file(model.state_dict(), str(path))
    return path, model


def test_info_reads_resnet18_safetensors(resnet_weights: tuple[Path, torch.nn.Module], tmp_path: Path) -> None:
    path, _ = resnet_weights
    out = tmp_path / "info.json"
    args = ["info", str(path), "--arch", "torchvision:resnet18", "--input-shape", "3,32,32", "--json", str(out)]
    res = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    info = json.loads(out.read_text())
    assert info["format"] == "safetensors"
    assert info["card"]["num_classes"] == 10 and info["card"]["architecture"] == "torchvision:resnet18"


def test_the_same_function_as_the_saved_model(resnet_weights: tuple[Path, torch.nn.Module]) -> None:
    path, model = resnet_weights
    bundle = dlaudit.load_model(path, card={"architecture": "torchvision:resnet18", "input_shape": [3, 32, 32]})
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(bundle.logits(x), model(x))
    assert not bundle.is_graph and bundle.supports_hooks


def test_without_an_architecture_says_arch(resnet_weights: tuple[Path, torch.nn.Module]) -> None:
    path, _ = resnet_weights
    with pytest.raises(dlaudit.ModelLoadError, match="bare state_dict.*--arch torchvision:NAME"):
        dlaudit.load_model(path)


def _header(text: bytes, declared: int | None = None, data: bytes = b"") -> bytes:
    return struct.pack("<Q", len(text) if declared is None else declared) + text + data


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (_header(b'{"a": 1', declared=2**62), "declares a header of 4,611,686,018,427,387,904 bytes"),
        (_header(b"{not json}"), "its header is not JSON"),
        (_header(b'{"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 4096]}}'), "data offsets outside"),
        (_header(b'{"w": {"dtype": "F32", "shape": [1000000], "data_offsets": [0, 16]}}', data=b"\0" * 16), "valid"),
    ],
    ids=["huge-header", "bad-json", "offsets-outside", "shape-lies"],
)
def test_a_hostile_header_is_one_line_exit_2(tmp_path: Path, payload: bytes, message: str) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(payload)
    args = ["info", str(path), "--arch", "torchvision:resnet18", "--input-shape", "3,32,32"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in res.output


def test_info_as_a_new_user_runs_it(
    resnet_weights: tuple[Path, torch.nn.Module], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No --input-shape, no --num-classes: the shape resnet18's published weights take, the classes from the file."""
    path, _ = resnet_weights
    out = tmp_path / "info.json"
    res = CliRunner().invoke(cli, ["info", str(path), "--arch", "torchvision:resnet18", "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert "no input shape given; using 3x224x224" in caplog.text  # said, not silently assumed
    card = json.loads(out.read_text())["card"]
    assert card["input_shape"] == [3, 224, 224] and card["num_classes"] == 10


def test_default_input_shapes() -> None:
    from dlaudit.architectures import default_input_shape

    assert default_input_shape("torchvision:resnet18") == (3, 224, 224)
    assert default_input_shape("torchvision:inception_v3") == (3, 299, 299)
    assert default_input_shape("torchvision:vit_b_16", {"image_size": 32}) == (3, 32, 32)
