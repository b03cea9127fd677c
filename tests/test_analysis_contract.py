"""The contract of every registered analysis (dlaudit.analysis), checked on each one through one table.

A new analysis is one module, one line in dlaudit/analyses.py, and its own tests;
this file then checks it without being edited.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import dlaudit
from dlaudit.analysis import get_analysis, list_analyses, run_analysis
from dlaudit.data import AuditData


@pytest.fixture(scope="module")
def subjects(digits_cnn: dlaudit.ModelBundle) -> dict[str, tuple[dlaudit.ModelBundle, AuditData]]:
    """An image model and a tabular model with sensitive features, on small held-out samples."""
    credit = dlaudit.train(
        "mlp", "synthetic-credit", sensitive="sex,age", epochs=5, batch_size=256, seed=0, device="cpu"
    )
    return {
        "image": (digits_cnn, dlaudit.load_data("digits", bundle=digits_cnn, limit=48)),
        "tabular": (credit, dlaudit.load_data(bundle=credit, limit=240)),
    }


# Small settings so that the whole table runs in seconds; every analysis also accepts fast=True.
SMALL = {
    "explain": {"n": 4, "methods": "saliency,ig,lime"},
    "robustness": {
        "n": 48,
        "eps": [0, 0.1],
        "eps_l2": [0, 1.0],
        "noise": [0.1],
        "min_eps_samples": 8,
        "bisection": 2,
        "examples": 2,
    },
    "fairness": {"n_boot": 20},
}


def _state(module: nn.Module) -> tuple:
    hooks = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in module.modules())
    return (
        [m.training for m in module.modules()],
        [p.requires_grad for p in module.parameters()],
        [p.grad is not None for p in module.parameters()],
        hooks,
        [p.detach().clone() for p in module.parameters()],
    )


def _same(a: tuple, b: tuple) -> bool:
    return a[:4] == b[:4] and all(torch.equal(x, y) for x, y in zip(a[4], b[4]))


def _run(name: str, bundle: dlaudit.ModelBundle, data: AuditData, **kw: object) -> dlaudit.Section:
    return run_analysis(name, bundle, data, fast=True, **{**SMALL.get(name, {}), **kw})


ANALYSES = list_analyses()


def test_the_builtin_analyses_are_registered() -> None:
    assert ANALYSES[:4] == ["performance", "explain", "robustness", "fairness"]
    assert dlaudit.default_analyses() == ANALYSES


@pytest.mark.parametrize("name", ANALYSES)
@pytest.mark.parametrize("kind", ["image", "tabular"])
def test_contract(name: str, kind: str, subjects: dict) -> None:
    bundle, data = subjects[kind]
    module = bundle.module

    def run_as_found() -> dlaudit.Section:
        module.train()  # the analyses must leave it as they found it, even in training mode
        frozen = next(module.parameters())
        frozen.requires_grad_(False)
        handle = module.register_forward_hook(lambda *_: None)
        try:
            before = _state(module)
            section = _run(name, bundle, data, seed=3)
            assert _same(_state(module), before), (
                f"{name} changed the model (mode, requires_grad, gradients, hooks or weights)"
            )
            return section
        finally:
            handle.remove()
            frozen.requires_grad_(True)
            module.eval()

    first = run_as_found()
    assert first.name == name and first.title == get_analysis(name).title
    assert first.status in ("ok", "skipped"), (first.status, first.reason)
    if first.status == "skipped":
        assert first.reason and not first.metrics
        return
    assert first.metrics, f"{name} reported no metric"
    for metric in first.metrics:
        assert metric.name.startswith(f"{name}."), metric.name
    again = run_as_found()
    assert {m.name: m.value for m in again.metrics} == {m.name: m.value for m in first.metrics}, (
        "same seed, different numbers"
    )


class _Broken(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("this model always fails")


@pytest.mark.parametrize("name", ANALYSES)
def test_a_failing_analysis_is_a_section_not_an_exception(name: str, subjects: dict) -> None:
    bundle, data = subjects["image"]
    broken = dlaudit.ModelBundle(_Broken(), bundle.card, device="cpu")
    section = _run(name, broken, data)
    assert section.status in ("error", "skipped")
    if section.status == "error":
        assert any(f.severity == "fail" and f.check == "analysis-error" for f in section.findings)
        assert "this model always fails" in section.reason
