"""Image datasets: digits (embedded), MNIST and Fashion-MNIST (torchvision), npz files."""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from ..errors import DataError
from ..paths import check_input, shown
from .core import AuditData, Splits, check_array
from .split import stratify_on

__all__ = ["load_digits", "load_mnist", "load_npz", "images_to_tensor", "npz_sample_shape"]

TEST_FRACTION = 0.25
MAX_CLASSES = 100_000
"""More classes than this is not a label column (a label of 2**62 would otherwise allocate exabytes)."""


def images_to_tensor(x: np.ndarray, *, name: str) -> torch.Tensor:
    """(N, H, W) or (N, C, H, W), uint8 0-255 or floats in [0, 1] -> float32 (N, C, H, W) in [0, 1]."""
    check_array(x, name=name)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise DataError(f"data {name!r}: images must be (N, H, W) or (N, C, H, W), got shape {x.shape}")
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255.0
    elif np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)
        lo, hi = float(x.min()), float(x.max())
        if lo < 0.0 or hi > 1.0:
            raise DataError(f"data {name!r}: image values span [{lo:g}, {hi:g}]; give uint8 0-255 or floats in [0, 1]")
    else:
        raise DataError(f"data {name!r}: images must be numeric, got dtype {x.dtype}")
    return torch.from_numpy(np.ascontiguousarray(x))


def _labels(y: np.ndarray, *, name: str) -> torch.Tensor:
    y = np.asarray(y)
    if y.ndim != 1:
        raise DataError(f"data {name!r}: labels must be one-dimensional, got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        if np.issubdtype(y.dtype, np.floating) and np.isfinite(y).all() and (y == np.round(y)).all():
            y = y.astype(np.int64)
        else:
            raise DataError(f"data {name!r}: labels must be integer class indices 0..C-1, got dtype {y.dtype}")
    if len(y) and y.min() < 0:
        raise DataError(f"data {name!r}: labels must be class indices 0..C-1, found {int(y.min())}")
    if len(y) and y.max() >= MAX_CLASSES:
        raise DataError(
            f"data {name!r}: label {int(y.max())} is not a class index; labels must be 0..C-1 with C at most {MAX_CLASSES:,}"
        )
    return torch.from_numpy(y.astype(np.int64))


MIN_SAMPLES = 4
"""The fewest samples a dataset may have to be split 75/25 into two non-empty parts."""


def _split(x: torch.Tensor, y: torch.Tensor, *, name: str, seed: int, class_names: list[str] | None = None) -> Splits:
    if len(x) != len(y):
        raise DataError(f"data {name!r}: {len(x)} inputs but {len(y)} labels; give one label per input")
    if len(y) < MIN_SAMPLES:
        raise DataError(
            f"data {name!r} has {len(y)} sample(s); at least {MIN_SAMPLES} are needed to split it 75/25 into training and held-out data"
        )
    idx = np.arange(len(y))
    stratify = stratify_on(y.numpy(), TEST_FRACTION)
    tr, te = train_test_split(idx, test_size=TEST_FRACTION, random_state=seed, stratify=stratify)
    names = class_names or [str(i) for i in range(int(y.max()) + 1)]
    make = lambda part, split: AuditData(x[part], y[part], name=name, class_names=names, split=split)
    return Splits(make(np.sort(tr), "train"), make(np.sort(te), "test"), make(idx, "all"))


def load_digits(*, seed: int = 0) -> Splits:
    """scikit-learn's 8x8 digits (1,797 images, shipped with scikit-learn), scaled to [0, 1].

    A fixed stratified split (25% held out) seeded by ``seed`` (0 by default).
    """
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    x = torch.from_numpy((bunch.images / 16.0).astype(np.float32))[:, None]
    y = torch.from_numpy(bunch.target.astype(np.int64))
    return _split(x, y, name="digits", seed=seed)


_MNIST_CLASSES = {
    "mnist": [str(i) for i in range(10)],
    "fashion-mnist": [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ],
}


def load_mnist(name: str = "mnist", *, data_dir: str | Path | None = None, download: bool = True) -> Splits:
    """MNIST or Fashion-MNIST through torchvision's reader.

    Reads the IDX files under ``data_dir/MNIST/raw`` (or ``FashionMNIST/raw``);
    when they are missing and ``download`` is set, torchvision tries to download
    them; without a network that fails with a message saying where to put them.
    """
    from torchvision import datasets

    cls = {"mnist": datasets.MNIST, "fashion-mnist": datasets.FashionMNIST}[name]
    root = Path(data_dir or Path.home() / ".cache" / "dlaudit")
    parts = {}
    for split, train in (("train", True), ("test", False)):
        try:
            ds = cls(str(root), train=train, download=False)
        except RuntimeError:
            if not download:
                raise DataError(
                    f"{name}: IDX files not found under {root / cls.__name__ / 'raw'}; put them there or allow downloading"
                ) from None
            try:
                ds = cls(str(root), train=train, download=True)
            except (RuntimeError, OSError) as err:
                raise DataError(
                    f"{name}: files not found under {root / cls.__name__ / 'raw'} and could not be downloaded ({str(err).splitlines()[0][:120]}); "
                    "copy the four IDX files there, or pass --data-dir"
                ) from err
        x = images_to_tensor(ds.data.numpy(), name=name)
        y = _labels(ds.targets.numpy(), name=name)
        parts[split] = AuditData(x, y, name=name, class_names=list(_MNIST_CLASSES[name]), split=split)
    return Splits(parts["train"], parts["test"])


def load_npz(path: str | Path, *, seed: int = 0) -> Splits:
    """An ``.npz`` with ``x``, ``y`` (split here, seeded and stratified) or
    ``x_train``, ``y_train``, ``x_test``, ``y_test``.

    Images: (N, H, W) or (N, C, H, W), uint8 0-255 or floats in [0, 1];
    tabular: (N, F) floats.
    """
    path = check_input(path, "data file", error=DataError, empty_ok=True)
    headers = _check_npz_headers(path)
    used = next((group for group in NPZ_LAYOUTS if set(group) <= headers.keys()), None)
    if used is None:
        raise DataError(
            f"{shown(path)} holds arrays {sorted(headers)}; it needs x and y, or x_train, y_train, x_test and y_test"
        )
    _check_npz_memory(path, {k: headers[k] for k in used})
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in used}  # only these: another member, however large, is never read
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise DataError(
            f"{path} is not a readable .npz file ({err}); save one with numpy.savez(path, x=..., y=...)"
        ) from err
    name = path.stem
    if {"x_train", "y_train", "x_test", "y_test"} <= arrays.keys():
        out = {}
        for split in ("train", "test"):
            x, y = _to_inputs(arrays[f"x_{split}"], name=name), _labels(arrays[f"y_{split}"], name=name)
            out[split] = (x, y)
        k = int(max(out["train"][1].max(), out["test"][1].max())) + 1
        names = [str(i) for i in range(k)]
        modality = "image" if out["train"][0].ndim == 4 else "tabular"
        return Splits(
            *(AuditData(*out[s], name=name, class_names=names, split=s, modality=modality) for s in ("train", "test"))
        )
    # the other layout: x and y
    x, y = _to_inputs(arrays["x"], name=name), _labels(arrays["y"], name=name)
    splits = _split(x, y, name=name, seed=seed)
    if x.ndim == 2:
        for part in (splits.train, splits.test, splits.whole):
            if part is not None:
                part.modality = "tabular"
    return splits


def npz_sample_shape(path: Path) -> tuple[int, ...] | None:
    """The shape of one image in an ``.npz`` (``x`` or ``x_test``, read from the header), or None."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = {i.filename: i for i in zf.infolist()}
            member = next((n for n in ("x_test.npy", "x.npy") if n in names), None)
            if member is None:
                return None
            with zf.open(member) as fh:
                major, _ = np.lib.format.read_magic(fh)
                read = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
                shape, _, _ = read(fh)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return None  # the loader says what is wrong with the file
    if len(shape) == 3:
        return (1, *shape[1:])
    return tuple(shape[1:]) if len(shape) == 4 else None


NPZ_LAYOUTS = (("x_train", "y_train", "x_test", "y_test"), ("x", "y"))
"""The arrays an ``.npz`` data file is read for, in order of preference; other members are never read."""

NPZ_BYTES_PER_VALUE = 8
"""Memory per array value beyond the file's own bytes: its float32 (inputs) or int64 (labels) tensor."""


def _check_npz_headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Each array's (shape, dtype), from its header without its data: a crafted header must not allocate
    what the file does not hold."""
    out = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with zf.open(info) as fh:
                    major, _ = np.lib.format.read_magic(fh)
                    read_header = (
                        np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
                    )
                    shape, _, dtype = read_header(fh)
                declared = math.prod(shape) * dtype.itemsize
                if declared > info.file_size:
                    raise DataError(
                        f"{path}: array {info.filename[:-4]!r} declares shape {shape} ({declared:,} bytes) but the file holds "
                        f"{info.file_size:,}; the file is truncated or crafted"
                    )
                out[info.filename[:-4]] = (tuple(shape), dtype)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        raise DataError(
            f"{path} is not a readable .npz file ({err}); save one with numpy.savez(path, x=..., y=...)"
        ) from err
    return out


def _check_npz_memory(path: Path, headers: dict[str, tuple[tuple[int, ...], np.dtype]]) -> None:
    """Refuse, before reading them, arrays whose declared sizes (inflated, as read) would not fit in memory."""
    from ..limits import check_memory

    values = {k: math.prod(shape) for k, (shape, _) in headers.items()}
    needed = sum(n * (dtype.itemsize + NPZ_BYTES_PER_VALUE) for n, (_, dtype) in zip(values.values(), headers.values()))
    arrays = ", ".join(f"{k} {'x'.join(map(str, shape)) or 'scalar'} {dtype}" for k, (shape, dtype) in headers.items())
    check_memory(
        needed,
        f"data file {shown(path)} (arrays {arrays})",
        "audit a sample of it: save fewer rows with numpy.savez",
        error=DataError,
    )


def _to_inputs(x: np.ndarray, *, name: str) -> torch.Tensor:
    if x.ndim == 2:  # tabular features
        check_array(x, name=name)
        return torch.from_numpy(x.astype(np.float32))
    return images_to_tensor(x, name=name)
