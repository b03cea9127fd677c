"""torch.export programs at full speed, and TorchScript/exported models through every explanation and sanity check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

import dlaudit
from dlaudit.explain._common import ExplainContext, ExplainSettings
from dlaudit.explain.quality import cascade_stages, randomised_models
from dlaudit.explain.saliency import conv_layers, gradcam, layer_activations
from dlaudit.graphs import ConvTap, ExportedModule, clone_module, hookable, layer_kind

CARD = {"input_shape": [1, 8, 8], "num_classes": 10}


def _cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(256, 10),
    ).eval()


class _Pinned(nn.Module):
    """Flattens with ``x.reshape(x.shape[0], -1)``: exported with a static batch, the graph pins that batch size."""

    def __init__(self) -> None:
        super().__init__()
        self.body = _cnn()[:5]
        self.head = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x)
        return self.head(h.reshape(h.shape[0], -1))


def _x(n: int) -> torch.Tensor:
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(n))


def _export(
    tmp_path: Path, batch: int, dynamic: torch.export.Dim | None = None, model: nn.Module | None = None
) -> Path:
    path = tmp_path / f"m{batch}{'d' if dynamic else ''}{'p' if model is not None else ''}.pt2"
    shapes = ({0: dynamic},) if dynamic is not None else None
    torch.export.save(torch.export.export(model or _cnn(), (_x(batch),), dynamic_shapes=shapes), path)
    path.with_suffix(".card.json").write_text(json.dumps(CARD))
    return path


def _script(tmp_path: Path) -> Path:
    path = tmp_path / "ts.pt"
    torch.jit.save(torch.jit.trace(_cnn(), _x(2)), path)
    path.with_suffix(".card.json").write_text(json.dumps(CARD))
    return path


def _ctx() -> ExplainContext:
    return ExplainContext(modality="image", value_range=(0.0, 1.0), background=_x(4), settings=ExplainSettings.fast())


class _Counting(nn.Module):
    """Counts calls of the graph it wraps."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.inner(x)


def _same_as_eager(module: nn.Module, reference: nn.Module, rows: int) -> None:
    x = _x(rows).requires_grad_()
    out = module(x)
    xr = x.detach().clone().requires_grad_()
    assert torch.allclose(out, reference(xr), atol=1e-5)
    out.sum().backward()
    reference(xr).sum().backward()
    assert torch.allclose(x.grad, xr.grad, atol=1e-5)


@pytest.mark.parametrize("batch", [1, 3])
def test_a_static_batch_no_operator_uses_takes_any_batch_in_one_call(tmp_path: Path, batch: int) -> None:
    module = dlaudit.load_model(_export(tmp_path, batch), device="cpu").module
    assert isinstance(module, ExportedModule) and module.batch == (1, None) and "no operator uses" in module.served_by
    counting = _Counting(module.graph)
    module.graph = counting
    _same_as_eager(module, _cnn(), 17)
    assert counting.calls == 1


@pytest.mark.parametrize("batch", [1, 3])
def test_a_pinned_static_batch_runs_every_batch_in_one_vmapped_call(tmp_path: Path, batch: int) -> None:
    pinned = _Pinned().eval()
    module = dlaudit.load_model(_export(tmp_path, batch, model=pinned), device="cpu").module
    assert module.static_batch == batch and module.vmap
    counting = _Counting(module.graph)
    module.graph = counting
    x = _x(17).requires_grad_()
    out = module(x)
    assert counting.calls == 1  # one call for all 17 rows (the last chunk padded), not one per chunk
    reference = pinned
    xr = x.detach().clone().requires_grad_()
    assert torch.allclose(out, reference(xr), atol=1e-5)
    out.sum().backward()
    reference(xr).sum().backward()
    assert torch.allclose(x.grad, xr.grad, atol=1e-5)


def test_a_hook_on_the_graph_falls_back_to_one_call_per_chunk(tmp_path: Path) -> None:
    module = dlaudit.load_model(_export(tmp_path, 2, model=_Pinned().eval()), device="cpu").module
    tap = next(m for m in module.graph.modules() if isinstance(m, ConvTap))
    seen: list[int] = []
    handle = tap.register_forward_hook(lambda m, i, o: seen.append(len(o)))
    try:
        module(_x(5))
    finally:
        handle.remove()
    assert seen == [2, 2, 2]  # three chunks of the static batch 2 (the last padded), each seen by the hook


def test_dynamic_batch_with_a_lower_bound_pads_small_batches(tmp_path: Path) -> None:
    bundle = dlaudit.load_model(_export(tmp_path, 4, torch.export.Dim("batch", min=2, max=64)), device="cpu")
    assert bundle.module.batch == (2, 64)
    assert torch.allclose(bundle.module(_x(1)), _cnn()(_x(1)), atol=1e-5)
    assert torch.allclose(bundle.module(_x(70)), _cnn()(_x(70)), atol=1e-5)


@pytest.mark.parametrize("pinned", [False, True])
def test_exported_convolutions_are_tapped_for_gradcam(tmp_path: Path, pinned: bool) -> None:
    reference = _Pinned().eval() if pinned else _cnn()
    module = dlaudit.load_model(_export(tmp_path, 1, model=reference if pinned else None), device="cpu").module
    prefix = "body." if pinned else ""
    names = [name for name, _ in conv_layers(module, _x(1))]
    assert names == [f"graph.{prefix}0.output", f"graph.{prefix}3.output"]
    x, target = _x(3), torch.tensor([1, 2, 3])
    got = gradcam(module, x, target, _ctx())
    want = gradcam(reference, x, target, _ctx())
    assert got.extras["layer"] == want.extras["layer"] == f"{prefix}3"
    assert torch.allclose(got.values, want.values, atol=1e-5)
    acts = layer_activations(module, _x(1))
    assert [a for a, _ in acts] == [f"{prefix}0", f"{prefix}3"]


def test_torchscript_becomes_hookable(tmp_path: Path) -> None:
    module = dlaudit.load_model(_script(tmp_path), device="cpu").module
    assert isinstance(module, torch.jit.ScriptModule)
    converted = hookable(module, _x(2))
    assert isinstance(converted, ExportedModule)
    assert torch.allclose(converted(_x(5)), module(_x(5)), atol=1e-5)
    x, target = _x(2), torch.tensor([4, 5])
    assert torch.allclose(
        gradcam(module, x, target, _ctx()).values, gradcam(_cnn(), x, target, _ctx()).values, atol=1e-5
    )


@pytest.mark.parametrize("kind", ["torchscript", "export"])
def test_randomised_copies_of_graphs_leave_the_model_alone(tmp_path: Path, kind: str) -> None:
    path = _script(tmp_path) if kind == "torchscript" else _export(tmp_path, 1)
    module = dlaudit.load_model(path, device="cpu").module
    before = {k: v.clone() for k, v in module.state_dict().items()}
    out = module(_x(4)).detach()
    steps = list(randomised_models(module, _x(1), seed=0))
    labels = [label for label, _ in steps]
    assert labels[0].endswith("6") and len(labels) == 4  # top (the Linear) first; four layers with weights
    randomised = steps[-1][1]
    assert not torch.allclose(randomised(_x(4)), out)
    assert all(torch.equal(module.state_dict()[k], v) for k, v in before.items())
    kinds = {layer_kind(m) for _, m in randomised.named_modules() if any(True for _ in m.parameters(recurse=False))}
    assert {"Conv2d", "BatchNorm2d", "Linear"} <= kinds


def test_clone_of_torchscript_is_independent(tmp_path: Path) -> None:
    module = dlaudit.load_model(_script(tmp_path), device="cpu").module
    copy = clone_module(module)
    with torch.no_grad():
        next(copy.parameters()).zero_()
    assert not torch.equal(next(copy.parameters()), next(module.parameters()))


def test_cascade_stages_cap_the_steps() -> None:
    layers = [f"l{i}" for i in range(62)]
    groups = cascade_stages(layers, 8)
    assert len(groups) == 8 and sum(groups, []) == layers
    assert cascade_stages(layers[:3], 8) == [["l0"], ["l1"], ["l2"]]


@pytest.mark.parametrize("kind", ["torchscript", "export-static", "export-dynamic"])
def test_every_section_runs_on_every_format(tmp_path: Path, kind: str) -> None:
    path = {
        "torchscript": lambda: _script(tmp_path),
        "export-static": lambda: _export(tmp_path, 1),
        "export-dynamic": lambda: _export(tmp_path, 4, torch.export.Dim("batch")),
    }[kind]()
    report = dlaudit.audit(
        path,
        "digits",
        fast=True,
        device="cpu",
        params={"explain": {"methods": "saliency,gradcam,ig", "n": 4}, "robustness": {"n": 40}},
    )
    status = {s.name: s.status for s in report.sections}
    assert status == {"performance": "ok", "explain": "ok", "robustness": "ok", "fairness": "skipped"}, [
        (s.name, s.reason) for s in report.sections
    ]
    for method in ("saliency", "gradcam", "ig"):
        assert report.metrics[f"explain.{method}.sanity_rank_corr"] is not None, method
    assert any(
        f.caption.startswith("Activation") or "activation" in f.caption.lower()
        for f in report.section("explain").figures
    )


def test_the_unchecked_graph_still_checks_the_sample_shape(tmp_path: Path) -> None:
    path = _export(tmp_path, 1)
    module = dlaudit.load_model(path, device="cpu").module
    with pytest.raises(ValueError, match=r"inputs of shape \(N, 1, 8, 8\)"):
        module(torch.rand(2, 1, 9, 9))
    with pytest.raises(dlaudit.CardError, match="fails on an input of the card's shape"):
        dlaudit.load_model(path, card={"input_shape": [1, 9, 9], "num_classes": 10}, device="cpu")
