"""Crafted torch.export and TorchScript archives: loading one never runs code from the file.

Each case plants a payload that would create a marker file, and first proves the
payload is real: with ``trust_pickle=True`` (torch's own reader, unchecked) the
marker appears. Without it, dlaudit refuses with one line and the marker never does.
"""

from __future__ import annotations

import contextlib
import io
import json
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

import dlaudit
from dlaudit.archive import UnsafeArchive, _safe_expression, _safe_target, audit_archive
from dlaudit.cli import cli
from dlaudit.errors import ModelLoadError


class _Payload:
    """Unpickling this evaluates ``expr`` (which touches ``marker``) and returns its value."""

    def __init__(self, marker: Path, returns: str = "None") -> None:
        self.expr = f"__import__('pathlib').Path({str(marker)!r}).touch() or {returns}"

    def __reduce__(self):
        return (eval, (self.expr,))


SAMPLE_INPUTS = "((__import__('torch').zeros(2, 1, 8, 8),), {})"


def _model() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 10), nn.ReLU(), nn.Linear(10, 10)).eval()


def _exported(tmp_path: Path, *, dynamic: bool = False) -> Path:
    x = torch.zeros(2, 1, 8, 8)
    shapes = ({0: torch.export.Dim("batch")},) if dynamic else None
    path = tmp_path / ("dyn.pt2" if dynamic else "model.pt2")
    torch.export.save(torch.export.export(_model(), (x,), dynamic_shapes=shapes), path)
    return path


def _rewrite(
    src: Path, dst: Path, change: Callable[[str, bytes], bytes | None], add: dict[str, bytes] | None = None
) -> Path:
    """Copy an archive member by member; ``change(name, data)`` returns new bytes (or None to keep them)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        root = zin.namelist()[0].split("/", 1)[0]
        for name in zin.namelist():
            data = zin.read(name)
            new = change(name, data)
            zout.writestr(name, data if new is None else new)
        for rel, data in (add or {}).items():
            zout.writestr(f"{root}/{rel}", data)
    return dst


def _torch_save_bytes(obj: object) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _stealth_sample_inputs(tmp_path: Path, marker: Path) -> Path:
    """torch.save bytes whose object runs the payload and then is the model's sample inputs."""
    payload = _torch_save_bytes(_Payload(marker, SAMPLE_INPUTS))
    return _rewrite(
        _exported(tmp_path), tmp_path / "stealth.pt2", lambda n, d: payload if "sample_inputs" in n else None
    )


def _pickled_weight(tmp_path: Path, marker: Path) -> Path:
    def change(name: str, data: bytes) -> bytes | None:
        if name.endswith("model_weights_config.json"):
            doc = json.loads(data)
            first = next(iter(doc["config"].values()))
            first["use_pickle"] = True
            change.target = first["path_name"]  # type: ignore[attr-defined]
            return json.dumps(doc).encode()
        return None

    staged = _rewrite(_exported(tmp_path), tmp_path / "staged.pt2", change)
    target = change.target  # type: ignore[attr-defined]
    payload = _torch_save_bytes({"w": _Payload(marker, "__import__('torch').zeros(10, 64)")})
    return _rewrite(
        staged, tmp_path / "pickled_weight.pt2", lambda n, d: payload if n.endswith(f"data/weights/{target}") else None
    )


def _opaque_constant(tmp_path: Path, marker: Path) -> Path:
    def change(name: str, data: bytes) -> bytes | None:
        if name.endswith("model_constants_config.json"):
            return json.dumps(
                {
                    "config": {
                        "evil": {
                            "path_name": "opaque_obj_0",
                            "is_param": False,
                            "use_pickle": True,
                            "tensor_meta": None,
                        }
                    }
                }
            ).encode()
        return None

    return _rewrite(
        _exported(tmp_path),
        tmp_path / "opaque.pt2",
        change,
        add={"data/constants/opaque_obj_0": pickle.dumps(_Payload(marker), protocol=2)},
    )


def _broken_sample_inputs(tmp_path: Path, marker: Path) -> Path:
    """A raw pickle: it runs while torch reads the magic number, and the export then fails."""
    payload = pickle.dumps(_Payload(marker), protocol=2)
    return _rewrite(
        _exported(tmp_path), tmp_path / "broken.pt2", lambda n, d: payload if "sample_inputs" in n else None
    )


def _evaluated_shape(tmp_path: Path, marker: Path) -> Path:
    code = f"__import__('pathlib').Path({str(marker)!r}).touch()"

    def change(name: str, data: bytes) -> bytes | None:
        if name.endswith("models/model.json"):
            text = data.decode()
            old = json.dumps("Symbol('s")[1:-1]
            assert old in text
            head, _, tail = text.partition(old)
            end = tail.index('"')
            return (head + code.replace('"', '\\"') + tail[end:]).encode()
        return None

    return _rewrite(_exported(tmp_path, dynamic=True), tmp_path / "sympy.pt2", change)


def _graph_calls_torch_save(tmp_path: Path, marker: Path) -> Path:
    def change(name: str, data: bytes) -> bytes | None:
        if name.endswith("models/model.json"):
            return data.replace(b'"torch.ops.aten.relu.default"', b'"torch.save"')
        return None

    return _rewrite(_exported(tmp_path), tmp_path / "graph.pt2", change)


def _aotinductor(tmp_path: Path, marker: Path) -> Path:
    return _rewrite(
        _exported(tmp_path),
        tmp_path / "aoti.pt2",
        lambda n, d: None,
        add={"data/aotinductor/model/model.so": b"\x7fELF"},
    )


EXPORT_CASES = {
    "sample inputs that run code and return valid inputs": (_stealth_sample_inputs, True),
    "a weight stored with use_pickle": (_pickled_weight, True),
    "an opaque constant (pickle.loads)": (_opaque_constant, True),
    "sample inputs that run code and break the export": (_broken_sample_inputs, True),
    "a symbolic shape that sympify evaluates": (_evaluated_shape, True),
    "a graph node that calls torch.save": (_graph_calls_torch_save, False),
    "an AOTInductor native library": (_aotinductor, False),
}


@pytest.mark.parametrize("case", list(EXPORT_CASES))
def test_crafted_export_archive_runs_no_code(tmp_path: Path, case: str) -> None:
    make, proven_by_torch = EXPORT_CASES[case]
    marker = tmp_path / "marker"
    path = make(tmp_path, marker)
    if proven_by_torch:  # the payload is real: torch's reader runs it
        with pytest.raises(Exception):
            torch.export.load(str(path))(torch.zeros(2, 1, 8, 8))
            raise RuntimeError("loaded")
        assert marker.exists(), "the crafted archive did not run its payload under torch's own loader"
        marker.unlink()
    with pytest.raises(ModelLoadError, match="trust-pickle") as err:
        dlaudit.load_model(path, card={"input_shape": [1, 8, 8], "num_classes": 10}, device="cpu")
    assert "\n" not in str(err.value)
    assert not marker.exists()
    result = CliRunner().invoke(
        cli,
        ["report", str(path), "--data", "digits", "--checks", "performance", "-o", str(tmp_path / "r.html")],
        catch_exceptions=False,
    )
    assert result.exit_code == 2, result.output
    assert "trust-pickle" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not marker.exists() and not (tmp_path / "r.html").exists()


def test_stealth_sample_inputs_run_only_when_trusted(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    path = _stealth_sample_inputs(tmp_path, marker)
    with contextlib.suppress(ModelLoadError):  # torch 2.14 then trips over its own log message under pytest
        dlaudit.load_model(path, card={"input_shape": [1, 8, 8], "num_classes": 10}, device="cpu", trust_pickle=True)
    assert marker.exists()


def test_genuine_archives_pass_the_audit(tmp_path: Path) -> None:
    for dynamic in (False, True):
        audit_archive(str(_exported(tmp_path, dynamic=dynamic)), "torch.export")
    ts = tmp_path / "m.ts"
    torch.jit.save(
        torch.jit.script(
            nn.Sequential(
                nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(36, 10)
            ).eval()
        ),
        ts,
    )
    audit_archive(str(ts), "torchscript")
    traced = tmp_path / "t.ts"
    torch.jit.save(torch.jit.trace(_model(), torch.zeros(2, 1, 8, 8)), traced)
    audit_archive(str(traced), "torchscript")


def test_torchscript_pickle_naming_a_python_function_is_refused(tmp_path: Path) -> None:
    ts = tmp_path / "m.ts"
    torch.jit.save(torch.jit.script(_model()), ts)
    marker = tmp_path / "marker"
    payload = pickle.dumps(_Payload(marker), protocol=2)
    evil = _rewrite(ts, tmp_path / "evil.ts", lambda n, d: payload if n.endswith("/constants.pkl") else None)
    with pytest.raises(UnsafeArchive, match=r"(__builtin__|builtins)\.eval"):
        audit_archive(str(evil), "torchscript")
    with pytest.raises(ModelLoadError, match="trust-pickle"):
        dlaudit.load_model(evil, card={"input_shape": [1, 8, 8]}, device="cpu")
    assert not marker.exists()


@pytest.mark.parametrize(
    ("text", "safe"),
    [
        ("Symbol('s31', positive=True, integer=True)", True),
        ("2*s0 + FloorDiv(s1, 2) - Max(s0, 3)", True),
        ("Float('0.5', precision=53)", True),
        ("__import__('os').system('x')", False),
        ("exec(chr(95) + chr(95))", False),
        ("Max('__import__(1)', 2)", False),
        ("s0.__class__", False),
        ("Symbol('__x')", False),
        ("(lambda: 1)()", False),
    ],
)
def test_expression_audit(text: str, safe: bool) -> None:
    assert _safe_expression(text) is safe


@pytest.mark.parametrize(
    ("target", "safe"),
    [
        ("torch.ops.aten.conv2d.default", True),
        ("torch.ops.higher_order.cond", True),
        ("_operator.getitem", True),
        ("math.ceil", True),
        ("torch.save", False),
        ("torch.hub.load", False),
        ("torch.ops.aten.__class__", False),
        ("_operator.methodcaller", False),
        ("#custom:op", False),
    ],
)
def test_target_audit(target: str, safe: bool) -> None:
    assert _safe_target(target) is safe
