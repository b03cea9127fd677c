"""TorchScript archives (``torch.jit.save``): audited (pickles, code, operators) before torch reads them."""

from __future__ import annotations

import warnings

import torch

from ..archive import TORCHSCRIPT
from ..errors import ModelLoadError
from ..operators import check_torchscript
from . import Loaded, LoadRequest, ModelFile, ModelFormat, register_format
from ._common import first_line

__all__ = ["FORMAT"]


def detect(file: ModelFile) -> bool:
    """A zip archive with TorchScript's constants pickle and code folder."""
    names = file.zip_names or []
    return any(n.endswith("/constants.pkl") for n in names) and any("/code/" in n for n in names)


def load(file: ModelFile, request: LoadRequest) -> Loaded:
    try:
        with warnings.catch_warnings():  # TorchScript is deprecated upstream, but users still ship it
            warnings.simplefilter("ignore", FutureWarning)
            module = torch.jit.load(str(file.path), map_location="cpu")
    except (RuntimeError, ValueError) as err:
        raise ModelLoadError(f"TorchScript archive {file.path} could not be loaded: {first_line(err)}") from err
    return Loaded(module)


FORMAT = register_format(
    ModelFormat(
        "torchscript",
        detect,
        load,
        order=10,
        archive=TORCHSCRIPT,
        check_operators=lambda module, trust_ops: check_torchscript(module, trust_ops=trust_ops),
        is_graph=True,
        description="TorchScript archive (torch.jit.save)",
    )
)
