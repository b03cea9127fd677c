"""Weights in a ``.safetensors`` file (``safetensors.torch.save_file``) in an architecture named by ``--arch``.

The same path as a bare state_dict (:mod:`dlaudit.formats.state_dict`): the card (or
``--arch torchvision:NAME`` / ``timm:NAME``) names the architecture and the weights are
loaded into it. The file is read with the ``safetensors`` library, which holds tensors
and a JSON header only: nothing is unpickled. The header is checked before the library
reads it (its declared length against the file's, well-formed JSON, offsets inside the
file), so a damaged or crafted file is one line.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from ..errors import ModelLoadError
from . import Loaded, LoadRequest, ModelFile, ModelFormat, register_format
from ._common import first_line
from .state_dict import from_state_dict

__all__ = ["FORMAT", "read_header", "read_tensors", "MAX_HEADER_BYTES"]

MAX_HEADER_BYTES = 100 * 2**20
"""Largest JSON header read (the safetensors library's own limit): about 100 bytes per tensor is usual."""


def detect(file: ModelFile) -> bool:
    """An 8-byte little-endian header length followed by a JSON object (``{``)."""
    return len(file.head) > 8 and file.head[8:9] == b"{"


def _refused(path: Path, what: str) -> ModelLoadError:
    return ModelLoadError(f"{path} is not a valid safetensors file ({what}); save the weights again")


def read_header(path: Path) -> dict[str, Any]:
    """The file's JSON header, checked: a bounded length inside the file, an object of tensor entries
    whose data offsets lie in the file. Raises :class:`ModelLoadError` with one line otherwise."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        raw = fh.read(8)
        if len(raw) < 8:
            raise _refused(path, "shorter than its 8-byte header length")
        (length,) = struct.unpack("<Q", raw)
        if length > MAX_HEADER_BYTES or length + 8 > size:
            raise _refused(
                path,
                f"it declares a header of {length:,} bytes in a file of {size:,} bytes "
                f"(at most {MAX_HEADER_BYTES:,} and the file's size)",
            )
        text = fh.read(length)
    try:
        header = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise _refused(path, f"its header is not JSON: {first_line(err)}") from err
    if not isinstance(header, dict):
        raise _refused(path, f"its header is a JSON {type(header).__name__}, not an object")
    data = size - 8 - length
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) and 0 <= o <= data for o in offsets)
            or offsets[0] > offsets[1]
        ):
            raise _refused(path, f"tensor {str(name)[:80]!r} has data offsets outside the file's {data:,} data bytes")
    return header


def read_tensors(path: Path) -> dict[str, Any]:
    """Every tensor of the file (on the CPU), read with the ``safetensors`` library after :func:`read_header`."""
    header = read_header(path)
    try:
        from safetensors import SafetensorError
        from safetensors.torch import load_file
    except ImportError as err:
        raise ModelLoadError(f"{path} is a safetensors file; reading it needs: pip install safetensors") from err
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, ValueError, OSError) as err:
        raise _refused(path, first_line(err)) from err
    if not tensors and len(header) <= 1:
        raise ModelLoadError(f"{path} is a safetensors file without tensors; it holds no weights")
    return tensors


def load(file: ModelFile, request: LoadRequest) -> Loaded:
    state = read_tensors(file.path)
    return from_state_dict(file.path, state, request.card, request.shape_hint, format="safetensors")


FORMAT = register_format(
    ModelFormat(
        "safetensors", detect, load, order=45, description="weights in a .safetensors file with --arch torchvision:NAME"
    )
)
