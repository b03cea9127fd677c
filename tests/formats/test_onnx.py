"""ONNX models: exported with torch.onnx.export, converted, checked against onnxruntime, audited; hostile files refused."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
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


# -- ONNX files not made by torch; agreement on the data ----------------------------------------


def _hand_mlp(
    path: Path, *, opset: int, ir_version: int
) -> tuple[Path, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A 1x8x8 -> 16 -> 10 MLP written node by node with onnx.helper (Flatten, Gemm, Relu, Gemm), as another
    framework's exporter writes it (weights transposed, transB=1), at an older opset and IR version."""
    rng = np.random.default_rng(0)
    w1, b1 = rng.normal(0, 0.5, (16, 64)).astype(np.float32), rng.normal(0, 0.1, 16).astype(np.float32)
    w2, b2 = rng.normal(0, 0.5, (10, 16)).astype(np.float32), rng.normal(0, 0.1, 10).astype(np.float32)
    tensors = [onnx.numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"))]
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["pixels"], ["flat"], name="flatten", axis=1),
            helper.make_node("Gemm", ["flat", "w1", "b1"], ["h"], name="dense_1", transB=1),
            helper.make_node("Relu", ["h"], ["a"], name="relu_1"),
            helper.make_node("Gemm", ["a", "w2", "b2"], ["logits"], name="dense_2", transB=1),
        ],
        "hand_mlp",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        initializer=tensors,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="hand")
    model.ir_version = ir_version
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path, w1, b1, w2, b2


@pytest.mark.parametrize("converter", ["onnx2pytorch", "onnx2torch"])
@pytest.mark.parametrize(("opset", "ir_version"), [(11, 6), (13, 7)])
def test_an_onnx_file_not_made_by_torch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, converter: str, opset: int, ir_version: int
) -> None:
    monkeypatch.setattr(onnx_format, "CONVERTERS", tuple(c for c in onnx_format.CONVERTERS if c[0] == converter))
    path, w1, b1, w2, b2 = _hand_mlp(tmp_path / "mlp.onnx", opset=opset, ir_version=ir_version)
    bundle = dlaudit.load_model(path, device="cpu")
    notes = bundle.load_notes["onnx"]
    assert notes["converter"].startswith(converter) and notes["opset"] == opset
    assert notes["max_abs_logit_diff"] <= notes["tolerance"]
    assert bundle.card.input_shape == (1, 8, 8) and bundle.card.num_classes == 10
    x = torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    by_hand = np.maximum(x.reshape(5, 64).numpy() @ w1.T + b1, 0) @ w2.T + b2
    with torch.no_grad():
        np.testing.assert_allclose(bundle.module(x).numpy(), by_hand, rtol=1e-5, atol=1e-5)


def test_agreement_on_the_data_is_in_the_report(tmp_path: Path) -> None:
    path = _hand_mlp(tmp_path / "mlp.onnx", opset=13, ir_version=7)[0]
    out = tmp_path / "r.json"
    argv = ["report", str(path), "--data", "digits", "--checks", "performance", "--quiet"]
    res = CliRunner().invoke(cli, [*argv, "-o", str(tmp_path / "r.html"), "--json", str(out)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    onnx_notes = json.loads(out.read_text())["provenance"]["model"]["load"]["onnx"]
    assert onnx_notes["data_samples"] == 32 and 0 <= onnx_notes["data_max_abs_logit_diff"] <= onnx_notes["tolerance"]


def test_a_conversion_that_disagrees_on_the_data_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Agreement on random probes is not enough: a conversion off only on real inputs is refused once data is read."""
    first, _ = onnx_format.CONVERTERS

    class OffOnDigits(torch.nn.Module):  # agrees on uniform noise; digits have exact zeros, noise almost never
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(x) + (x == 0).flatten(1).float().mean(1, keepdim=True)

    monkeypatch.setattr(onnx_format, "CONVERTERS", (("off", lambda model: OffOnDigits(first[1](model))),))
    path = _hand_mlp(tmp_path / "mlp.onnx", opset=13, ir_version=7)[0]
    _info(path)  # without data, the probes agree
    line = _one_line_exit_2(path, "--data", "digits")
    assert "on 32 inputs of the data its converted logits differ from onnxruntime's by up to" in line
