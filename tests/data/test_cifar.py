"""CIFAR-10/100 in torchvision's layout, read by a restricted unpickler: the files' numbers, and no code from them."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

import dlaudit
from dlaudit.data import load_splits
from dlaudit.data.cifar import read_batch
from dlaudit.errors import DataError
from tests.cifar_files import CIFAR10_NAMES, plant_payload, write_cifar10, write_cifar100


@pytest.mark.parametrize("bytes_keys, protocol", [(True, 2), (False, 4), (False, 5)])
def test_cifar10_reads_the_batches_as_torchvision_lays_them_out(
    tmp_path: Path, bytes_keys: bool, protocol: int
) -> None:
    write_cifar10(tmp_path, per_batch=6, test=12, bytes_keys=bytes_keys, protocol=protocol)
    splits = load_splits("cifar10", data_dir=tmp_path)
    assert splits.train.x.shape == (30, 3, 32, 32) and splits.test.x.shape == (12, 3, 32, 32)
    assert splits.test.class_names == CIFAR10_NAMES
    raw = read_batch(tmp_path / "cifar-10-batches-py" / "test_batch")
    data = np.asarray(raw["data"])
    # rows are 1024 red, 1024 green, 1024 blue values, row-major: torchvision's reshape(-1, 3, 32, 32)
    assert float(splits.test.x[0, 0, 0, 0]) == pytest.approx(data[0, 0] / 255.0)
    assert float(splits.test.x[0, 1, 0, 0]) == pytest.approx(data[0, 1024] / 255.0)
    assert float(splits.test.x[0, 2, 31, 31]) == pytest.approx(data[0, 3071] / 255.0)
    assert torch.equal(splits.test.y, torch.tensor([int(v) for v in raw["labels"]]))


def test_cifar100_uses_the_fine_labels(tmp_path: Path) -> None:
    write_cifar100(tmp_path)
    splits = dlaudit.load_data("cifar100", data_dir=tmp_path, split="train")
    assert splits.x.shape == (40, 3, 32, 32) and int(splits.y.max()) == 39
    assert splits.class_names[7] == "class7" and len(splits.class_names) == 100


def test_a_reduce_payload_never_runs(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    marker = tmp_path / "pwned"
    plant_payload(tmp_path / "cifar-10-batches-py" / "data_batch_1", marker)
    with pytest.raises(DataError, match=r"posix\.system|os\.system|nt\.system") as err:
        load_splits("cifar10", data_dir=tmp_path)
    assert "does not run code" in str(err.value)
    assert not marker.exists()


def test_plain_pickle_would_run_the_payload(tmp_path: Path) -> None:
    """The control: the same file through pickle.load creates the marker, so the test above proves something."""
    marker = tmp_path / "control"
    path = tmp_path / "batch"
    plant_payload(path, marker)
    with path.open("rb") as fh:
        pickle.load(fh)
    assert marker.exists()


@pytest.mark.parametrize(
    "obj, message",
    [
        ({"data": np.zeros((2, 3072), np.float32), "labels": [0, 1]}, "must be uint8 rows of 3072"),
        ({"data": np.zeros((2, 3072), np.uint8), "labels": [0]}, "2 integer labels"),
        ({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 10]}, "labels must be 0..9"),
        ([1, 2, 3], "holds a list"),
    ],
)
def test_malformed_batches_are_data_errors(tmp_path: Path, obj: object, message: str) -> None:
    write_cifar10(tmp_path)
    with (tmp_path / "cifar-10-batches-py" / "test_batch").open("wb") as fh:
        pickle.dump(obj, fh, protocol=2)
    with pytest.raises(DataError, match=message):
        load_splits("cifar10", data_dir=tmp_path)


def test_missing_files_say_where_they_go(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"data_batch_1.*not found under .*cifar-10-batches-py.*--data-dir"):
        load_splits("cifar10", data_dir=tmp_path)


def test_truncated_batch(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(DataError, match="data_batch_2"):
        load_splits("cifar10", data_dir=tmp_path)
