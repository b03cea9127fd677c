"""The model-format registry: order, lookup, plug-ins, and the audit it runs for every archive format."""

from __future__ import annotations

import logging
import pickle
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

import dlaudit
import dlaudit.formats as formats
from dlaudit.archive import TORCHSCRIPT
from dlaudit.errors import ModelLoadError
from dlaudit.formats import Loaded, LoadRequest, ModelFile, ModelFormat, get_format, list_formats, register_format
from dlaudit.operators import RefusedOperator

MAGIC = b"TOYMODEL"


def _toy_detect(file: ModelFile) -> bool:
    return file.head.startswith(MAGIC)


def _toy_load(file: ModelFile, request: LoadRequest) -> Loaded:
    torch.manual_seed(0)
    module = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    return Loaded(module, card_fields={"input_shape": [1, 2, 2], "class_names": ["a", "b", "c"]})


TOY = ModelFormat("toy", _toy_detect, _toy_load, order=5, description="a test format")
"""What a third-party package's entry point names (``dlaudit.formats = toy = pkg.mod:TOY``)."""


@pytest.fixture
def registry() -> Iterator[dict[str, ModelFormat]]:
    """The registry, restored after the test (formats registered in it are dropped)."""
    list_formats()  # the built-ins and installed plug-ins are in
    saved = dict(formats._FORMATS)
    yield formats._FORMATS
    formats._FORMATS.clear()
    formats._FORMATS.update(saved)


def test_builtins_in_detection_order() -> None:
    names = [f.name for f in list_formats()]
    builtins = ["torchscript", "torch.export", "checkpoint", "state_dict", "pickle"]
    assert [n for n in names if n in builtins] == builtins
    assert get_format("torchscript").archive == TORCHSCRIPT and get_format("torchscript").is_graph
    assert not get_format("checkpoint").is_graph


def test_unknown_format_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match=r"unknown model format 'nope'; known: .*checkpoint"):
        get_format("nope")


def test_an_archive_format_must_check_operators() -> None:
    with pytest.raises(ValueError, match="must declare check_operators"):
        ModelFormat("bad", _toy_detect, _toy_load, archive=TORCHSCRIPT)


def test_a_name_is_registered_once(registry: dict[str, ModelFormat]) -> None:
    register_format(TOY)
    register_format(TOY)  # the same object again: fine
    with pytest.raises(ValueError, match="registered already"):
        register_format(ModelFormat("toy", _toy_detect, _toy_load))


def test_a_registered_format_loads_by_content(tmp_path: Path, registry: dict[str, ModelFormat]) -> None:
    register_format(TOY)
    path = tmp_path / "model.bin"
    path.write_bytes(MAGIC)
    bundle = dlaudit.load_model(path, device="cpu")
    assert bundle.format == "toy"
    assert bundle.card.input_shape == (1, 2, 2) and bundle.card.num_classes == 3  # classes counted by running it
    assert bundle.card.class_names == ["a", "b", "c"]
    bundle = dlaudit.load_model(path, device="cpu", card={"class_names": ["x", "y", "z"]})
    assert bundle.card.class_names == ["x", "y", "z"]  # the caller's fields win over the file's


def _hostile_archive(path: Path) -> Path:
    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps(Payload()))
    return path


def test_the_registry_audits_every_archive_format_before_its_loader(
    tmp_path: Path, registry: dict[str, ModelFormat]
) -> None:
    calls: list[str] = []

    def load(file: ModelFile, request: LoadRequest) -> Loaded:
        calls.append("load")
        raise AssertionError("the loader ran on an archive the audit refuses")

    register_format(
        ModelFormat(
            "zipped",
            lambda f: bool(f.zip_names) and "archive/data.pkl" in f.zip_names,
            load,
            order=1,
            archive=TORCHSCRIPT,
            check_operators=lambda module, trust_ops: None,
        )
    )
    path = _hostile_archive(tmp_path / "m.zip")
    with pytest.raises(ModelLoadError, match=r"builtins.print.*--trust-pickle"):
        dlaudit.load_model(path, device="cpu")
    assert calls == []


def test_the_operator_check_runs_before_the_model_is_wrapped(tmp_path: Path, registry: dict[str, ModelFormat]) -> None:
    wrapped: list[bool] = []

    def refuse(module: nn.Module, trust_ops: bool) -> None:
        raise RefusedOperator("aten::save", "graph node save_1", "writes files", trustable=False)

    def wrap(loaded: Loaded, file: ModelFile) -> Loaded:
        wrapped.append(True)
        return loaded

    with zipfile.ZipFile(tmp_path / "m.zip", "w") as zf:
        zf.writestr("archive/constants.pkl", pickle.dumps({}))
    register_format(
        ModelFormat(
            "graphy",
            lambda f: bool(f.zip_names) and "archive/constants.pkl" in f.zip_names,
            _toy_load,
            order=1,
            archive=TORCHSCRIPT,
            check_operators=refuse,
            wrap=wrap,
        )
    )
    with pytest.raises(ModelLoadError, match=r"calls aten::save \(graph node save_1\), which writes files"):
        dlaudit.load_model(tmp_path / "m.zip", device="cpu")
    assert wrapped == []


class _EntryPoint:
    def __init__(self, name: str, value: str, obj: object = None, error: Exception | None = None) -> None:
        self.name, self.value, self._obj, self._error = name, value, obj, error

    def load(self) -> object:
        if self._error is not None:
            raise self._error
        return self._obj


def test_entry_point_formats_load_and_broken_ones_are_one_warning(
    monkeypatch: pytest.MonkeyPatch, registry: dict[str, ModelFormat], caplog: pytest.LogCaptureFixture
) -> None:
    points = [
        _EntryPoint("toy", "tests.formats.test_registry:TOY", obj=TOY),
        _EntryPoint("broken", "missing_pkg:FORMAT", error=ModuleNotFoundError("No module named 'missing_pkg'")),
        _EntryPoint("odd", "pkg:thing", obj=lambda: 42),
    ]
    from dlaudit import plugins

    plugins._reset()
    monkeypatch.setattr(
        plugins.importlib.metadata, "entry_points", lambda group: points if group == formats.ENTRY_POINT_GROUP else []
    )
    with caplog.at_level(logging.WARNING, logger="dlaudit.plugins"):
        names = [f.name for f in list_formats()]
    plugins._reset()
    assert "toy" in names
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 2
    assert "plug-in broken (dlaudit.formats = missing_pkg:FORMAT) was not loaded: ModuleNotFoundError" in warned[0]
    assert "plug-in odd" in warned[1] and "not a dlaudit.formats.ModelFormat" in warned[1]
    assert all("\n" not in w for w in warned)


def test_bundle_capabilities(digits_cnn: dlaudit.ModelBundle, tmp_path: Path) -> None:
    assert not digits_cnn.is_graph and digits_cnn.supports_hooks
    scripted = torch.jit.trace(digits_cnn.module.eval(), torch.zeros(2, *digits_cnn.card.input_shape))
    bundle = dlaudit.ModelBundle(scripted, digits_cnn.card)
    assert bundle.is_graph and not bundle.supports_hooks
