"""dlaudit's own checkpoint: a plain dict (card + state_dict) that loads with ``torch.load(weights_only=True)``.

Written by :func:`dlaudit.save_model`; reading it cannot run code from the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..card import ModelCard
from ..errors import ModelLoadError
from . import Loaded, LoadRequest, ModelFile, ModelFormat, register_format
from ._common import card_dict, rebuild

__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "FORMAT", "from_checkpoint", "is_checkpoint"]

CHECKPOINT_FORMAT = "dlaudit-checkpoint"
CHECKPOINT_VERSION = 1


def is_checkpoint(obj: Any) -> bool:
    """Whether ``obj`` (what ``torch.load`` read) is a dlaudit checkpoint dict."""
    return isinstance(obj, dict) and obj.get("format") == CHECKPOINT_FORMAT


def from_checkpoint(path: Path, obj: dict[str, Any], card: Any) -> Loaded:
    """The model and card of a checkpoint dict; fields of ``card`` override the stored card's."""
    version = obj.get("version")
    if version != CHECKPOINT_VERSION:
        raise ModelLoadError(
            f"{path} is a dlaudit checkpoint of version {version}; this dlaudit reads version {CHECKPOINT_VERSION}; upgrade dlaudit"
        )
    stored = dict(obj.get("card") or {})
    full = ModelCard.from_dict({**stored, **card_dict(card)}, source=str(path))
    return Loaded(rebuild(full, obj.get("state_dict") or {}, path), card=full, format="checkpoint")


def detect(file: ModelFile) -> bool:
    """A ``torch.save`` file that reads (weights only) as a dict marked ``"format": "dlaudit-checkpoint"``."""
    return file.maybe_torch_save and is_checkpoint(file.torch_save.obj)


def load(file: ModelFile, request: LoadRequest) -> Loaded:
    return from_checkpoint(file.path, file.torch_save.obj, request.card)


FORMAT = register_format(
    ModelFormat(
        "checkpoint", detect, load, order=30, description="dlaudit checkpoint (card + state_dict, dlaudit.save_model)"
    )
)
