"""A whole pickled ``nn.Module`` (``torch.save(model, path)``): read only with ``trust_pickle=True``.

Unpickling runs arbitrary code from the file, so without ``--trust-pickle`` such a file
is refused with one line. Any ``torch.save`` file that ``weights_only=True`` refuses
lands here: trusted, a checkpoint or state_dict inside it loads as that format.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

from ..errors import ModelLoadError
from . import Loaded, LoadRequest, ModelFile, ModelFormat, register_format
from ._common import first_line, pickle_refused, state_dict_in
from .checkpoint import from_checkpoint, is_checkpoint
from .state_dict import from_state_dict

__all__ = ["FORMAT"]

log = logging.getLogger(__name__)


def detect(file: ModelFile) -> bool:
    """A ``torch.save`` file holding pickled Python objects (``weights_only=True`` refuses it)."""
    return file.maybe_torch_save and file.torch_save.needs_pickle is not None


def _unpickle(file: ModelFile) -> Any:
    log.warning("unpickling %s with trust_pickle=True: this runs code from the file", file.path)
    try:
        return torch.load(str(file.path), map_location="cpu", weights_only=False)
    except (AttributeError, ModuleNotFoundError) as err:
        raise ModelLoadError(
            f"{file.path} is a pickled module whose class cannot be imported here ({first_line(err)}); "
            "import the module that defines it first, or re-save the model as TorchScript"
        ) from err


def load(file: ModelFile, request: LoadRequest) -> Loaded:
    if not request.trust_pickle:
        raise pickle_refused(file.path, "pickled Python objects (a whole nn.Module?)") from file.torch_save.needs_pickle
    obj = _unpickle(file)
    if isinstance(obj, nn.Module):
        return Loaded(obj)
    if is_checkpoint(obj):
        return from_checkpoint(file.path, obj, request.card)
    state = state_dict_in(obj)
    if state is not None:
        return from_state_dict(file.path, state, request.card, request.shape_hint)
    raise ModelLoadError(
        f"{file.path} holds a {type(obj).__name__}, not a model: dlaudit reads its own checkpoints, TorchScript, "
        "torch.export programs, and (with --trust-pickle) pickled nn.Modules"
    )


FORMAT = register_format(
    ModelFormat("pickle", detect, load, order=90, description="a pickled nn.Module (torch.save), with --trust-pickle")
)
