"""ONNX models: exported with torch.onnx.export, converted, checked against onnxruntime, audited; hostile files refused."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import pytest
import torch
import torchvision
from click.testing import CliRunner

import dlaudit
from dlaudit.cli import cli
from dlaudit.formats import onnx as onnx_format

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnx2pytorch")
from onnx import TensorProto, helper  # noqa: E402

pytestmark = pytest.mark.slow


def _export(
    module: torch.nn.Module, shape: tuple[int, ...], path: Path, *, dynamo: bool, opset: int | None = None
) -> Path:
    x = torch.rand(2, *shape, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            torch.onnx.export(
                module.eval(), (x,), str(path), dynamo=True, dynamic_shapes=({0: torch.export.Dim("batch")},)
            )
        else:
            kwargs = {"opset_version": opset} if opset else {}
            torch.onnx.export(
                module.eval(), (x,), str(path), dynamo=False, input_names=["x"], dynamic_axes={"x": {0: "b"}}, **kwargs
            )
    return path


@pytest.fixture(scope="module")
def cnn_onnx(tmp_path_factory: pytest.TempPathFactory, digits_cnn: dlaudit.ModelBundle) -> Path:
    return _export(
        digits_cnn.module, digits_cnn.card.input_shape, tmp_path_factory.mktemp("onnx") / "cnn.onnx", dynamo=True
    )


@pytest.fixture(scope="module")
def resnet() -> torch.nn.Module:
    torch.manual_seed(0)
    return torchvision.models.resnet18(num_classes=10).eval()


def _info(path: Path, *extra: str) -> dict:
    res = CliRunner().invoke(cli, ["info", str(path), "--json", "-", *extra], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return json.loads(res.output[res.output.index("{") :])


def test_info_reads_the_shape_from_the_graph_and_states_the_agreement(cnn_onnx: Path) -> None:
    info = _info(cnn_onnx)
    assert info["format"] == "onnx"
    assert info["card"]["input_shape"] == [1, 8, 8] and info["card"]["num_classes"] == 10
    agreement = info["load"]["onnx"]
    assert agreement["converter"].startswith("onnx2pytorch") and agreement["opset"] >= 18
    assert 0 <= agreement["max_abs_logit_diff"] <= agreement["tolerance"]


def test_the_converted_model_is_the_exported_function(cnn_onnx: Path, digits_cnn: dlaudit.ModelBundle) -> None:
    bundle = dlaudit.load_model(cnn_onnx, device="cpu")
    x = torch.rand(7, 1, 8, 8, generator=torch.Generator().manual_seed(1), requires_grad=True)
    out = bundle.module(x)
    torch.testing.assert_close(out, digits_cnn.module(x), atol=1e-4, rtol=1e-4)
    (grad,) = torch.autograd.grad(out[:, 0].sum(), x)  # input gradients flow: attacks and saliency work
    assert grad.abs().sum() > 0


def test_fast_report_on_onnx(cnn_onnx: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    argv = ["report", str(cnn_onnx), "--data", "digits", "--fast", "--checks", "performance,robustness"]
    argv += ["--quiet", "-o", str(tmp_path / "r.html"), "--json", str(out)]
    res = CliRunner().invoke(cli, argv, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    assert doc["metrics"]["performance.accuracy"] > 0.8
    assert any(k.startswith("robustness.pgd_linf") for k in doc["metrics"])
    assert doc["provenance"]["model"]["load"]["onnx"]["max_abs_logit_diff"] < 1e-3
    assert "max_abs_logit_diff" in (tmp_path / "r.html").read_text()


@pytest.mark.parametrize(("dynamo", "opset"), [(True, None), (False, 17)], ids=["dynamo-opset20", "legacy-opset17"])
def test_resnet18_exports(resnet: torch.nn.Module, tmp_path: Path, dynamo: bool, opset: int | None) -> None:
    path = _export(resnet, (3, 32, 32), tmp_path / "resnet18.onnx", dynamo=dynamo, opset=opset)
    info = _info(path)
    assert info["card"]["input_shape"] == [3, 32, 32] and info["card"]["num_classes"] == 10
    bundle = dlaudit.load_model(path, device="cpu")
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(bundle.module(x), resnet(x), atol=1e-4, rtol=1e-4)


# -- converters, agreement, refusals -------------------------------------------------------------


def _tiny(
    path: Path, *, nodes: list | None = None, initializers: list | None = None, shape: list | None = None
) -> Path:
    """A 4-feature linear classifier written with onnx.helper (no exporter)."""
    weight = helper.make_tensor("W", TensorProto.FLOAT, [4, 3], [0.1 * i for i in range(12)])
    graph = helper.make_graph(
        nodes or [helper.make_node("MatMul", ["x", "W"], ["y"], name="matmul_0")],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape or ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        initializer=initializers if initializers is not None else [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path.write_bytes(model.SerializeToString())
    return path


def _one_line_exit_2(path: Path, *extra: str) -> str:
    res = CliRunner().invoke(cli, ["info", str(path), *extra])
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in res.output, res.output
    return lines[0]


class _Off(torch.nn.Module):
    def __init__(self, inner: torch.nn.Module, by: float) -> None:
        super().__init__()
        self.inner, self.by = inner, by

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x) + self.by


def test_falls_back_to_the_next_converter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = onnx_format.CONVERTERS
    broken = (
        "broken",
        lambda model: (_ for _ in ()).throw(NotImplementedError("Conversion not implemented for op_type=MatMul.")),
    )
    monkeypatch.setattr(onnx_format, "CONVERTERS", (broken, first))
    bundle = dlaudit.load_model(_tiny(tmp_path / "m.onnx"), device="cpu")
    assert bundle.load_notes["onnx"]["converter"].startswith("onnx2pytorch")
    assert bundle.card.input_shape == (4,) and bundle.card.num_classes == 3


def test_a_conversion_that_disagrees_is_refused_naming_the_difference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _ = onnx_format.CONVERTERS
    off = ("off", lambda model: _Off(first[1](model), 0.5))
    monkeypatch.setattr(onnx_format, "CONVERTERS", (off,))
    line = _one_line_exit_2(_tiny(tmp_path / "m.onnx"))
    assert "no converter reproduces this ONNX model" in line
    assert "off: its logits differ from onnxruntime's by up to 0.5 (tolerance " in line


def test_an_unsupported_operator_names_op_and_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    custom = helper.make_node("Evil", ["x"], ["y"], name="evil_node", domain="com.example")
    line = _one_line_exit_2(_tiny(tmp_path / "custom.onnx", nodes=[custom], initializers=[]))
    assert "unsupported operator com.example::Evil (node 'evil_node')" in line
    raising = (
        "broken",
        lambda model: (_ for _ in ()).throw(NotImplementedError("Conversion not implemented for op_type=MatMul.")),
    )
    monkeypatch.setattr(onnx_format, "CONVERTERS", (raising,))
    line = _one_line_exit_2(_tiny(tmp_path / "m.onnx"))
    assert "broken: unsupported operator MatMul (node 'matmul_0')" in line


def _declared(name: str, dims: list[int]) -> TensorProto:
    """An initializer that declares ``dims`` and holds no data."""
    tensor = TensorProto(name=name, data_type=TensorProto.FLOAT)
    tensor.dims.extend(dims)
    return tensor


def test_external_data_outside_the_folder_is_refused_before_reading(tmp_path: Path) -> None:
    weight = _declared("W", [4, 3])
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "../secret.bin"), ("offset", "0"), ("length", "48")):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    (tmp_path / "secret.bin").write_bytes(b"\0" * 48)
    folder = tmp_path / "model"
    folder.mkdir()
    line = _one_line_exit_2(_tiny(folder / "m.onnx", initializers=[weight]))
    assert "keeps its data in '../secret.bin', outside the model's folder" in line


def test_declared_shapes_are_bounded(tmp_path: Path) -> None:
    line = _one_line_exit_2(_tiny(tmp_path / "wide.onnx", shape=["batch", 2**20, 2**20]))
    assert "input 'x' declares shape [1048576, 1048576], beyond bounds" in line
    huge = _declared("W", [2**20, 2**20])
    line = _one_line_exit_2(_tiny(tmp_path / "huge.onnx", initializers=[huge]))
    assert "initializer 'W' declares shape [1048576, 1048576], beyond bounds" in line


def test_a_damaged_file_is_one_line(tmp_path: Path) -> None:
    path = _tiny(tmp_path / "m.onnx")
    path.write_bytes(path.read_bytes()[:40])
    assert "not a readable ONNX model" in _one_line_exit_2(path)


def test_without_the_extra_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    assert "pip install dlaudit[onnx]" in _one_line_exit_2(_tiny(tmp_path / "m.onnx"))
