"""Post-processors: a registry the core looks kinds up in, filled by their providers."""

from __future__ import annotations

import copy
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import dlaudit
from dlaudit import postprocessors
from dlaudit.errors import ConfigError, ModelLoadError
from dlaudit.postprocessors import get_postprocessor, list_postprocessors, register_postprocessor


class _Scaled(nn.Module):
    def __init__(self, module: nn.Module, factor: float) -> None:
        super().__init__()
        self.module, self.factor = module, factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x) * self.factor


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> dict:
    """The registry with the built-ins loaded; what a test registers is gone afterwards."""
    list_postprocessors()
    monkeypatch.setattr(postprocessors, "_REGISTRY", dict(postprocessors._REGISTRY))
    return postprocessors._REGISTRY


def _with_postprocess(bundle: dlaudit.ModelBundle, spec: dict) -> dlaudit.ModelBundle:
    card = dataclasses.replace(bundle.card, postprocess=spec)
    return dlaudit.ModelBundle(copy.deepcopy(bundle.module), card, device="cpu")


def test_the_builtin_kind_is_registered_by_path_and_resolves_on_first_use(registry: dict) -> None:
    from dlaudit.fairness.thresholds import wrap_group_thresholds

    assert "group-thresholds" in list_postprocessors()
    assert get_postprocessor("group-thresholds") is wrap_group_thresholds
    assert registry["group-thresholds"] is wrap_group_thresholds  # imported once, then kept
    assert get_postprocessor("no-such-kind") is None


def test_listing_the_kinds_imports_no_analysis() -> None:
    code = (
        "import sys\nfrom dlaudit.postprocessors import list_postprocessors\n"
        "print(list_postprocessors(), sorted(m for m in sys.modules if m.startswith(('dlaudit.fairness', 'torch'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "['group-thresholds'] []"


def test_the_core_names_no_provider() -> None:
    core = Path(dlaudit.__file__).parent
    for name in ("bundle.py", "postprocessors.py"):
        assert "fairness" not in (core / name).read_text(), name


def test_a_registered_kind_wraps_the_loaded_model(registry: dict, digits_mlp, tmp_path: Path) -> None:
    @register_postprocessor("scaled")
    def scaled(module: nn.Module, card: dlaudit.ModelCard) -> nn.Module:
        return _Scaled(module, card.postprocess["factor"])

    assert registry["scaled"] is scaled
    path = dlaudit.save_model(_with_postprocess(digits_mlp, {"kind": "scaled", "factor": 2.0}), tmp_path / "m.pt")
    loaded = dlaudit.load_model(path, device="cpu")
    assert isinstance(loaded.module, _Scaled) and not loaded.module.training
    x = torch.rand(3, 1, 8, 8)
    torch.testing.assert_close(loaded.logits(x), 2.0 * digits_mlp.logits(x))


def test_a_path_registers_without_importing(registry: dict) -> None:
    assert register_postprocessor("later", "dlaudit.nonexistent_module:fn") == "dlaudit.nonexistent_module:fn"
    assert registry["later"] == "dlaudit.nonexistent_module:fn"
    with pytest.raises(ModuleNotFoundError):
        get_postprocessor("later")


def test_an_unknown_kind_on_a_card_names_the_known_ones(registry: dict, digits_mlp, tmp_path: Path) -> None:
    path = dlaudit.save_model(_with_postprocess(digits_mlp, {"kind": "nope"}), tmp_path / "m.pt")
    with pytest.raises(ModelLoadError, match=r"unknown post-processing 'nope' on the card; known: group-thresholds"):
        dlaudit.load_model(path, device="cpu")


@pytest.mark.parametrize(
    ("kind", "target", "message"),
    [
        ("two words", "a.b:c", "must be a word"),
        ("", "a.b:c", "must be a word"),
        ("ok", "not a path", "is not an import path"),
        ("ok", "module.only", "is not an import path"),
        ("ok", 3, "must be a function"),
    ],
)
def test_bad_registrations_are_refused(registry: dict, kind: str, target: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        register_postprocessor(kind, target)  # type: ignore[arg-type]
    assert "ok" not in registry
