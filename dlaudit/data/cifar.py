"""CIFAR-10 and CIFAR-100 in torchvision's dataset layout, read without running code from the files.

torchvision keeps them as the original "python version" batches under ``--data-dir``::

    DIR/cifar-10-batches-py/data_batch_1 ... data_batch_5, test_batch, batches.meta
    DIR/cifar-100-python/train, test, meta

Each batch is a pickle of a dict (``data``: a uint8 array of N x 3072 values, rows of
32x32 red, then green, then blue; ``labels``, or ``fine_labels`` for CIFAR-100). torchvision
reads them with ``pickle.load``, which runs whatever a crafted file asks for. Here they go
through :class:`_BatchUnpickler`, which builds only what the batches hold: dicts, lists,
strings, bytes, numbers and NumPy arrays (of numeric dtypes), and refuses every other
global, so a hostile data folder cannot run code.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DataError
from ..paths import read_input
from .core import AuditData, Splits

__all__ = ["CIFAR", "load_cifar", "read_batch"]

CIFAR = {
    "cifar10": {
        "folder": "cifar-10-batches-py",
        "train": [f"data_batch_{i}" for i in range(1, 6)],
        "test": ["test_batch"],
        "meta": ("batches.meta", "label_names"),
        "labels": "labels",
        "classes": 10,
    },
    "cifar100": {
        "folder": "cifar-100-python",
        "train": ["train"],
        "test": ["test"],
        "meta": ("meta", "fine_label_names"),
        "labels": "fine_labels",
        "classes": 100,
    },
}
SHAPE = (3, 32, 32)
MAX_BATCH_BYTES = 1 << 30
"""Larger than any CIFAR batch file (the CIFAR-100 train batch is 155 MB): a bigger one is not a batch."""


def _latin1(obj: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles of bytes use it, for the text codecs only."""
    if not isinstance(obj, str) or encoding.lower().replace("_", "-") not in ("latin1", "latin-1", "utf-8", "ascii"):
        raise pickle.UnpicklingError(f"_codecs.encode with {encoding!r} is not how a CIFAR batch stores bytes")
    return obj.encode(encoding, errors)


def _allowed() -> dict[tuple[str, str], Any]:
    try:
        from numpy._core import multiarray, numeric
    except ImportError:  # NumPy < 2
        from numpy.core import multiarray, numeric  # type: ignore[no-redef]
    table = {("_codecs", "encode"): _latin1, ("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):  # NumPy 1 and NumPy 2 write different names
        table[(module, "_reconstruct")] = multiarray._reconstruct
        table[(module, "scalar")] = multiarray.scalar
    for module in ("numpy.core.numeric", "numpy._core.numeric"):
        table[(module, "_frombuffer")] = numeric._frombuffer
    return table


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles what a CIFAR batch holds and nothing else.

    Every way a pickle reaches a callable (GLOBAL, STACK_GLOBAL, INST, OBJ, the copyreg
    extension codes) goes through :meth:`find_class`; only NumPy's array and dtype
    rebuilders and the latin-1 encoder of protocol-2 bytes pass. Persistent ids are refused.
    """

    _ALLOWED = _allowed()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refers to {module}.{name}; a CIFAR batch holds only dicts, lists, strings, numbers and arrays"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("holds a persistent reference, which a CIFAR batch never does")


def read_batch(path: Path) -> dict[str, Any]:
    """One batch (or meta) file as a dict with text keys; a file that is anything else is a :class:`DataError`."""
    raw = read_input(path, "CIFAR batch", limit=MAX_BATCH_BYTES, error=DataError)
    try:
        obj = _BatchUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except pickle.UnpicklingError as err:
        raise DataError(f"{path} is not a CIFAR batch: it {err}; dlaudit does not run code from data files") from err
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, MemoryError, RecursionError) as err:
        raise DataError(
            f"{path} is not a readable CIFAR batch ({type(err).__name__}: {err}); download it again"
        ) from err
    if not isinstance(obj, dict):
        raise DataError(f"{path} holds a {type(obj).__name__}, but a CIFAR batch is a dict")
    return {k.decode("latin1") if isinstance(k, bytes) else str(k): v for k, v in obj.items()}


def _images(batch: dict[str, Any], path: Path, labels_key: str, classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    data, labels = batch.get("data"), batch.get(labels_key)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        what = f"an array of {data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{path}: 'data' must be uint8 rows of 3072 values (3x32x32), got {what}")
    y = np.asarray(labels if labels is not None else [])
    if y.ndim != 1 or len(y) != len(data) or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{path}: {labels_key!r} must be {len(data)} integer labels, one per image")
    if len(y) and (y.min() < 0 or y.max() >= classes):
        raise DataError(f"{path}: labels must be 0..{classes - 1}, found {int(y.min())}..{int(y.max())}")
    x = torch.from_numpy(data.reshape(-1, *SHAPE).astype(np.float32) / 255.0)
    return x, torch.from_numpy(y.astype(np.int64))


def load_cifar(name: str, *, data_dir: str | Path | None = None) -> Splits:
    """CIFAR-10 (``"cifar10"``) or CIFAR-100 (``"cifar100"``, fine labels) from torchvision's layout in ``data_dir``.

    Images are (3, 32, 32) floats in [0, 1]; class names come from the meta file when it
    is there. Nothing is downloaded: without the files the message says where to put them.
    """
    spec = CIFAR[name]
    root = Path(data_dir or Path.home() / ".cache" / "dlaudit") / spec["folder"]
    missing = [f for f in (*spec["train"], *spec["test"]) if not (root / f).is_file()]
    if missing:
        raise DataError(
            f"{name}: {', '.join(missing)} not found under {root}; download the CIFAR python version "
            f"(e.g. torchvision.datasets.{'CIFAR10' if name == 'cifar10' else 'CIFAR100'}(DIR, download=True)) "
            "and pass --data-dir DIR"
        )
    meta_file, meta_key = spec["meta"]
    names = [str(i) for i in range(spec["classes"])]
    if (root / meta_file).is_file():
        found = read_batch(root / meta_file).get(meta_key)
        if isinstance(found, list) and len(found) == spec["classes"]:
            names = [n.decode("latin1") if isinstance(n, bytes) else str(n) for n in found]
    parts = {}
    for split in ("train", "test"):
        xs, ys = zip(*(_images(read_batch(root / f), root / f, spec["labels"], spec["classes"]) for f in spec[split]))
        parts[split] = AuditData(torch.cat(xs), torch.cat(ys), name=name, class_names=names, split=split)
    return Splits(parts["train"], parts["test"])
