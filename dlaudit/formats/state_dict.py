"""A bare state_dict (weights without code, ``torch.save(model.state_dict(), path)``) in a named architecture.

The architecture comes from the card (``"architecture": "torchvision:resnet18"``) or
``--arch``, see :mod:`dlaudit.architectures`. Training-script checkpoints that keep the
weights under ``state_dict``, ``model_state_dict`` or ``model`` load too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..architectures import default_input_shape, infer_num_classes, is_known_architecture
from ..card import ModelCard, canonical_fields
from ..errors import CardError, ModelLoadError
from . import Loaded, LoadRequest, ModelFile, ModelFormat, register_format
from ._common import card_dict, rebuild, sidecar_dict, state_dict_in

__all__ = ["FORMAT", "from_state_dict"]

log = logging.getLogger(__name__)


def from_state_dict(
    path: Path,
    state: dict[str, torch.Tensor],
    card: Any,
    shape_hint: Callable[[], tuple[int, ...] | None] | None = None,
    *,
    format: str = "state_dict",
) -> Loaded:
    """``state`` loaded into the architecture the card (sidecar or ``card``) names; the class count read from it."""
    fields = canonical_fields({**sidecar_dict(path), **card_dict(card)}, source=f"card of {path}")
    if not fields.get("architecture"):
        raise ModelLoadError(
            f"{path} is a bare state_dict (weights without code); dlaudit needs to know the architecture: pass "
            "--arch torchvision:NAME (or timm:NAME) with --num-classes, or give a card with arch, input_shape and "
            f"num_classes (sidecar {path.with_suffix('.card.json').name}); or save it with dlaudit.save_model"
        )
    arch = fields["architecture"]
    if fields.get("input_shape") is None and shape_hint is not None:
        fields["input_shape"] = shape_hint()
    if fields.get("input_shape") is None and is_known_architecture(arch):
        fields["input_shape"] = default_input_shape(arch, fields.get("arch_kwargs") or {})
        if fields["input_shape"] is not None:
            log.warning(
                "%s: no input shape given; using %s, the size %s's published weights take (pass --input-shape or "
                "--data for another)",
                path,
                "x".join(map(str, fields["input_shape"])),
                arch,
            )
    if fields.get("input_shape") is None:
        raise CardError(
            f"{path}: the card gives no input_shape for {arch}; pass --input-shape C,H,W (e.g. 3,32,32 for "
            'CIFAR-sized images) or put "input_shape" in the card'
        )
    if fields.get("num_classes") is None and is_known_architecture(arch):
        fields["num_classes"] = infer_num_classes(arch, fields.get("arch_kwargs") or {}, state)
        if fields["num_classes"] is None:
            raise CardError(f"{path}: the class count of {arch} cannot be read from the file; pass --num-classes")
        log.info("%s: %d classes, read from the classifier's weights", path, fields["num_classes"])
    full = ModelCard.from_dict(fields, source=str(path))
    return Loaded(rebuild(full, state, path), card=full, format=format)


def detect(file: ModelFile) -> bool:
    """A ``torch.save`` file that reads (weights only) as a dict of tensors, or a dict holding one."""
    return file.maybe_torch_save and state_dict_in(file.torch_save.obj) is not None


def load(file: ModelFile, request: LoadRequest) -> Loaded:
    state = state_dict_in(file.torch_save.obj)
    if state is None:  # detect said otherwise
        raise ModelLoadError(f"{file.path} holds no state_dict")
    return from_state_dict(file.path, state, request.card, request.shape_hint)


FORMAT = register_format(
    ModelFormat(
        "state_dict", detect, load, order=40, description="bare state_dict (torch.save) with --arch torchvision:NAME"
    )
)
