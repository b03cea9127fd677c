"""``folder:DIR``: the image-folder layout most users keep their own images in.

::

    DIR/cat/001.png  DIR/cat/002.jpg  DIR/dog/...          one sub-folder per class (split 75/25 here)
    DIR/train/cat/... DIR/test/cat/...                      or train/ and test/ (or val/) folders of them

Class names are the sub-folder names in sorted order (torchvision's ``ImageFolder``
convention). PNG and JPEG files are read with Pillow (it comes with torchvision),
converted to greyscale or RGB and resized to the model card's input shape; without a
card, to the first image's size.
"""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .core import AuditData, Splits

__all__ = ["SUFFIXES", "PREFIX", "is_folder_spec", "load_folder"]

PREFIX = "folder:"
SUFFIXES = (".png", ".jpg", ".jpeg")
MAX_BYTES = 4 << 30
"""The most memory the images of a folder may take as float32 tensors (a bigger folder is refused, not swapped)."""
MIN_SAMPLES = 4


def is_folder_spec(spec: object) -> bool:
    return isinstance(spec, (str, Path)) and str(spec).strip().startswith(PREFIX)


def _natural(name: str) -> list[object]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def _classes(root: Path) -> dict[str, list[Path]]:
    out = {}
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(
            (f for f in sub.rglob("*") if f.is_file() and f.suffix.lower() in SUFFIXES), key=lambda f: _natural(f.name)
        )
        if files:
            out[sub.name] = files
    return out


def _read(path: Path, mode: str, size: tuple[int, int] | None, where: str) -> np.ndarray:
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img = img.convert(mode)
                if size is not None and img.size != (size[1], size[0]):
                    img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
                arr = np.asarray(img, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise DataError(
            f"{where}: {path} could not be read as an image ({type(err).__name__}: {str(err)[:120]}); remove or replace it"
        ) from err
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def _load(
    classes: dict[str, list[Path]], names: list[str], shape: tuple[int, ...] | None, where: str
) -> tuple[torch.Tensor, torch.Tensor]:
    files = [(f, names.index(c)) for c, fs in classes.items() for f in fs]
    channels = shape[0] if shape else None
    if channels not in (None, 1, 3):
        raise DataError(f"{where}: images have 1 (greyscale) or 3 (RGB) channels, but the model takes {channels}")
    size = (shape[1], shape[2]) if shape and len(shape) == 3 else None
    if shape is not None and len(shape) != 3:
        raise DataError(f"{where}: images are (C, H, W), but the model takes inputs of shape {list(shape)}")
    if channels is None:
        from PIL import Image

        with Image.open(files[0][0]) as first:
            channels = 1 if first.mode in ("1", "L", "I", "F", "I;16") else 3
    mode = "L" if channels == 1 else "RGB"
    first = _read(files[0][0], mode, size, where)
    size = size or (first.shape[1], first.shape[2])
    need = len(files) * channels * math.prod(size) * 4
    if need > MAX_BYTES:
        raise DataError(
            f"{where}: {len(files):,} images of {size[0]}x{size[1]} need {need / 2**30:.1f} GiB; audit a smaller folder"
        )
    arrays = [first] + [_read(f, mode, size, where) for f, _ in files[1:]]
    x = torch.from_numpy(np.stack(arrays).astype(np.float32) / 255.0)
    y = torch.tensor([c for _, c in files], dtype=torch.int64)
    return x, y


def load_folder(spec: str | Path, *, input_shape: tuple[int, ...] | None = None, seed: int = 0) -> Splits:
    """Images from ``folder:DIR`` (see the module docstring), as (C, H, W) floats in [0, 1].

    Parameters
    ----------
    spec
        ``"folder:DIR"``.
    input_shape
        The model's input shape (C, H, W): images are converted to C channels and resized to H x W.
    seed
        Seed of the stratified 75/25 split when DIR has no train/ and test/ folders.
    """
    from .images import _split

    root = Path(str(spec).strip()[len(PREFIX) :]).expanduser()
    where = f"folder:{root}"
    if not root.is_dir():
        raise DataError(f"{where} is not a folder; give folder:DIR with one sub-folder of images per class")
    held_out = next((root / n for n in ("test", "val") if (root / n).is_dir()), None)
    if (root / "train").is_dir() and held_out is not None:
        train, test = _classes(root / "train"), _classes(held_out)
        names = sorted(set(train) | set(test))
        if not train or not test:
            raise DataError(f"{where}: train/ and {held_out.name}/ need class sub-folders with PNG or JPEG images")
        parts = {
            split: AuditData(*_load(found, names, input_shape, where), name=root.name, class_names=names, split=split)
            for split, found in (("train", train), ("test", test))
        }
        return Splits(parts["train"], parts["test"])
    classes = _classes(root)
    if not classes:
        raise DataError(
            f"{where} holds no images: put PNG or JPEG files in one sub-folder per class (DIR/cat/1.png, DIR/dog/2.jpg)"
        )
    names = sorted(classes)
    count = sum(len(v) for v in classes.values())
    if count < MIN_SAMPLES:
        raise DataError(f"{where} holds {count} image(s); at least {MIN_SAMPLES} are needed to split it 75/25")
    x, y = _load(classes, names, input_shape, where)
    return _split(x, y, name=root.name, seed=seed, class_names=names)
