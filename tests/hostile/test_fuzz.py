"""Fuzzing the loaders: random bytes and mutated real files either load or raise a DlauditError, nothing else."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import dlaudit
from dlaudit.errors import DlauditError

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
CARD = {"input_shape": [1, 8, 8], "num_classes": 10}


def _model() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).eval()


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("orig")
    ckpt = folder / "c.pt"
    dlaudit.save_model(dlaudit.train("mlp", "digits", epochs=1, hidden=[8], seed=0, device="cpu"), ckpt)
    ts = folder / "t.pt"
    torch.jit.save(torch.jit.script(_model()), ts)
    ep = folder / "e.pt2"
    torch.export.save(torch.export.export(_model(), (torch.zeros(2, 1, 8, 8),)), ep)
    npz = io.BytesIO()
    np.savez(npz, x=np.zeros((20, 8, 8), np.uint8), y=np.arange(20) % 10)
    return {
        "checkpoint": ckpt.read_bytes(),
        "torchscript": ts.read_bytes(),
        "export": ep.read_bytes(),
        "npz": npz.getvalue(),
    }


def _mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    out = bytearray(data)
    for pos, value in edits:
        out[pos % len(out)] = value
    return bytes(out[: cut % len(out)] if cut else out)


def _load_model(path: Path) -> None:
    try:
        dlaudit.load_model(path, card=CARD, device="cpu")
    except DlauditError as err:
        assert "\n" not in str(err).strip() or str(err).count("\n") < 3
    # anything else propagates and fails the test


@FUZZ
@given(data=st.binary(min_size=1, max_size=4096))
def test_random_bytes_as_a_model(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "m.pt"
    path.write_bytes(data)
    _load_model(path)


@FUZZ
@given(
    kind=st.sampled_from(["checkpoint", "torchscript", "export"]),
    edits=st.lists(st.tuples(st.integers(0, 2**31), st.integers(0, 255)), min_size=1, max_size=8),
    cut=st.none() | st.integers(1, 2**31),
)
def test_mutated_model_archives(
    tmp_path: Path, originals: dict[str, bytes], kind: str, edits: list, cut: int | None
) -> None:
    path = tmp_path / ("m.pt2" if kind == "export" else "m.pt")
    path.write_bytes(_mutate(originals[kind], edits, cut))
    _load_model(path)


@FUZZ
@given(
    edits=st.lists(st.tuples(st.integers(0, 2**31), st.integers(0, 255)), min_size=1, max_size=8),
    cut=st.none() | st.integers(1, 2**31),
)
def test_mutated_npz(tmp_path: Path, originals: dict[str, bytes], edits: list, cut: int | None) -> None:
    path = tmp_path / "d.npz"
    path.write_bytes(_mutate(originals["npz"], edits, cut))
    try:
        dlaudit.load_data(path)
    except DlauditError:
        pass


@FUZZ
@given(text=st.text(max_size=400))
def test_random_csv(tmp_path: Path, text: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,b,label\n" + text, encoding="utf-8")
    try:
        dlaudit.load_data(path, target="label")
    except DlauditError:
        pass
