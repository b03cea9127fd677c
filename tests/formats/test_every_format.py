"""Every section on every image format: the digits CNN as a dlaudit checkpoint, TorchScript, torch.export program,
bare state_dict, safetensors and ONNX file, and a tiny Hugging Face ResNet folder, each loaded from disk and audited.

The model and its file are left as found; every section completes or says why it skipped; Grad-CAM, DeepLIFT, the
sanity check and the certified bounds each run or name the reason (the table below says which, per format).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import pytest
import torch

import dlaudit
from dlaudit.analysis import get_analysis, list_analyses, run_analysis
from dlaudit.data import AuditData
from tests.formats.hf_folders import snapshot, tiny_resnet
from tests.test_analysis_contract import _same, _state

pytestmark = pytest.mark.slow

SMALL = {
    "explain": {"n": 2, "methods": "saliency,gradcam,deeplift"},
    "robustness": {
        "n": 8,
        "eps": [0, 0.1],
        "eps_l2": [0, 1.0],
        "noise": [0.1],
        "min_eps_samples": 4,
        "bisection": 2,
        "examples": 1,
        "attacks": ("fgsm_linf", "pgd_linf"),
        "autoattack": None,
        "smoothing_n": 100,
        "smoothing_samples": 2,
        "corruptions": False,  # forward passes only, as in the performance section: nothing a format changes
    },
    "fairness": {"n_boot": 10},
}

GRAPH = "a TorchScript or torch.export graph"
FX = "with torch.fx"
EXPECTED: dict[str, dict[str, str | None]] = {
    # format: {method or "bounds": None (it runs) or a phrase of the reason it names}
    "checkpoint": {"deeplift": None, "bounds": None},
    "torchscript": {"deeplift": GRAPH, "bounds": "do not support the model itself (RecursiveScriptModule)"},
    "torch.export": {"deeplift": GRAPH, "bounds": "forward hook on layer 'graph' (GraphModule)"},
    "state_dict": {"deeplift": None, "bounds": None},
    "safetensors": {"deeplift": None, "bounds": None},
    "onnx": {"deeplift": None, "bounds": FX},
    "huggingface": {"deeplift": None, "bounds": FX},
}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, digits_cnn: dlaudit.ModelBundle) -> dict[str, Path]:
    """The digits CNN in each file format (foreign ones with a sidecar card), and a 1x8x8 Hugging Face ResNet."""
    d = tmp_path_factory.mktemp("formats")
    module = digits_cnn.module.eval()
    card = digits_cnn.card.to_dict()
    foreign = {k: card[k] for k in ("input_shape", "num_classes", "value_range", "class_names")}
    x = torch.rand(2, *digits_cnn.card.input_shape, generator=torch.Generator().manual_seed(0))
    out = {"checkpoint": dlaudit.save_model(digits_cnn, d / "cnn.pt")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.trace(module, x).save(str(d / "traced.ts"))
        program = torch.export.export(module, (x,), dynamic_shapes=({0: torch.export.Dim("batch")},))
        torch.export.save(program, str(d / "exported.pt2"))
        torch.onnx.export(
            module, (x,), str(d / "cnn.onnx"), dynamo=False, input_names=["x"], dynamic_axes={"x": {0: "b"}}
        )
    torch.save(module.state_dict(), d / "weights.pt")
    from safetensors.torch import save_file

    save_file(module.state_dict(), str(d / "weights2.safetensors"))
    for name, fields in (("traced", foreign), ("exported", foreign), ("weights", card), ("weights2", card)):
        (d / f"{name}.card.json").write_text(json.dumps(fields))
    out.update(
        {
            "torchscript": d / "traced.ts",
            "torch.export": d / "exported.pt2",
            "state_dict": d / "weights.pt",
            "safetensors": d / "weights2.safetensors",
            "onnx": d / "cnn.onnx",
            "huggingface": tiny_resnet(d / "hf-resnet", num_labels=10, size=8, channels=1),
        }
    )
    return out


@pytest.fixture(scope="module")
def data(digits_cnn: dlaudit.ModelBundle) -> AuditData:
    return dlaudit.load_data("digits", bundle=digits_cnn, limit=24)


def _fingerprint(path: Path) -> dict[str, tuple[int, int, str]]:
    files = sorted(path.rglob("*")) if path.is_dir() else [path]
    return {
        str(f): (f.stat().st_size, f.stat().st_mtime_ns, hashlib.sha256(f.read_bytes()).hexdigest())
        for f in files
        if f.is_file()
    }


def _value(section: dlaudit.Section, name: str) -> float | None:
    return next((m.value for m in section.metrics if m.name == name), None)


def _reason(section: dlaudit.Section, method: str) -> str | None:
    """None when ``method`` ran (its metrics are there), else the message that names why it did not."""
    if any(m.name.startswith(f"explain.{method}.") for m in section.metrics):
        return None
    named = [f.message for f in section.findings if method in f.message.lower().replace("-", "")]
    assert named, f"{method} neither ran nor said why: {[f.message for f in section.findings]}"
    return named[0]


@pytest.mark.parametrize("fmt", list(EXPECTED))
def test_every_section_on_every_format(fmt: str, files: dict[str, Path], data: AuditData) -> None:
    path = files[fmt]
    before = _fingerprint(path)
    bundle = dlaudit.load_model(path, device="cpu")
    assert bundle.format == fmt
    module = bundle.module
    state = _state(module)
    sections = {
        name: run_analysis(name, bundle, data, fast=True, seed=0, **SMALL.get(name, {})) for name in list_analyses()
    }
    assert _same(_state(module), state), f"{fmt}: an analysis changed the model"
    assert _fingerprint(path) == before, f"{fmt}: the model file changed"
    if path.is_dir():
        assert snapshot(path).keys() == {str(Path(p).relative_to(path)) for p in before}, "a file appeared"
    for name, section in sections.items():
        assert section.title == get_analysis(name).title
        assert section.status in ("ok", "skipped"), (fmt, name, section.status, section.reason)
        assert section.status == "ok" or section.reason, (fmt, name)
    assert sections["fairness"].status == "skipped" and "no sensitive features" in sections["fairness"].reason

    explain, robustness = sections["explain"], sections["robustness"]
    assert not [f.message for f in explain.findings if f.check == "explain-failed"], fmt
    assert _reason(explain, "gradcam") is None  # Grad-CAM finds a convolution in every one of these
    assert _value(explain, "explain.saliency.sanity_rank_corr") is not None  # the randomisation check ran
    deeplift = _reason(explain, "deeplift")
    if EXPECTED[fmt]["deeplift"] is None:
        assert deeplift is None, deeplift
        assert _value(explain, "explain.deeplift.sanity_rank_corr") is not None
    else:
        assert deeplift is not None and EXPECTED[fmt]["deeplift"] in deeplift
    certified = _value(robustness, "robustness.certified_linf.acc@0.1")
    skipped = [f.message for f in robustness.findings if f.message.startswith("certified bounds skipped:")]
    if EXPECTED[fmt]["bounds"] is None:
        assert certified is not None and not skipped, skipped
    else:
        assert certified is None and len(skipped) == 1 and EXPECTED[fmt]["bounds"] in skipped[0], skipped
    degenerate = [f for f in robustness.findings if f.check == "degenerate-model"]  # the HF ResNet is untrained
    assert _value(robustness, "robustness.pgd_linf.acc@0.1") is not None or (fmt == "huggingface" and degenerate)
