"""Small files in CIFAR's "python version" layout, written the way the original batches are (for tests)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _dump(path: Path, obj: dict, *, bytes_keys: bool, protocol: int) -> None:
    if bytes_keys:  # the original files were pickled by Python 2: keys and strings are bytes
        obj = {k.encode("latin1"): v for k, v in obj.items()}
    with path.open("wb") as fh:
        pickle.dump(obj, fh, protocol=protocol)


def write_cifar10(
    root: Path, *, per_batch: int = 8, test: int = 40, seed: int = 0, bytes_keys: bool = True, protocol: int = 2
) -> Path:
    """``root/cifar-10-batches-py``: five training batches of ``per_batch`` images, a test batch and the meta file."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for i, name in enumerate(names):
        n = test if name == "test_batch" else per_batch
        labels = [int(v) for v in (np.arange(n) + i) % 10]
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        batch = {"batch_label": f"batch {i}".encode(), "labels": labels, "data": data, "filenames": [b"x.png"] * n}
        _dump(folder / name, batch, bytes_keys=bytes_keys, protocol=protocol)
    meta = {"num_cases_per_batch": per_batch, "label_names": CIFAR10_NAMES, "num_vis": 3072}
    _dump(folder / "batches.meta", meta, bytes_keys=bytes_keys, protocol=protocol)
    return root


def write_cifar100(root: Path, *, train: int = 40, test: int = 20, seed: int = 0) -> Path:
    """``root/cifar-100-python``: train, test and meta (fine and coarse labels)."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name, n in (("train", train), ("test", test)):
        fine = [int(v) for v in np.arange(n) % 100]
        batch = {
            "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            "fine_labels": fine,
            "coarse_labels": [f // 5 for f in fine],
        }
        _dump(folder / name, batch, bytes_keys=False, protocol=4)
    meta = {
        "fine_label_names": [f"class{i}" for i in range(100)],
        "coarse_label_names": [f"super{i}" for i in range(20)],
    }
    _dump(folder / "meta", meta, bytes_keys=False, protocol=4)
    return root


class Payload:
    """Unpickling this runs a shell command that creates ``marker``: the proof that code from the file ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def plant_payload(path: Path, marker: Path) -> None:
    """Replace a batch with a dict whose labels hold a ``__reduce__`` payload."""
    with path.open("wb") as fh:
        pickle.dump({"data": np.zeros((2, 3072), np.uint8), "labels": Payload(marker)}, fh, protocol=2)
