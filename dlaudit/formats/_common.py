"""What the format loaders share: the archive audit's context, the one-line refusals, and building a card.

Nothing here knows a particular format; :mod:`dlaudit.formats` runs the audit for the
formats that declare an archive, and each loader module uses the card helpers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..architectures import is_known_architecture, load_weights
from ..archive import OversizedArchive, UnsafeArchive, audit_archive, check_sizes, guarded_loading
from ..card import ModelCard, read_card_json
from ..errors import CardError, ModelLoadError
from ..models import Normalized, build_model
from ..operators import RefusedOperator
from ..paths import sidecar_paths

__all__ = [
    "audited",
    "checked_operators",
    "pickle_refused",
    "operator_refused",
    "first_line",
    "card_dict",
    "sidecar_dict",
    "foreign_card",
    "normalised",
    "rebuild",
    "state_dict_in",
    "describe",
]

log = logging.getLogger(__name__)


def first_line(err: BaseException) -> str:
    """The first line of an error's message (at most 300 characters), or its type's name."""
    text = str(err).strip().splitlines()
    return text[0][:300] if text else type(err).__name__


def pickle_refused(path: Path, what: str, verb: str = "unpickling") -> ModelLoadError:
    """The one message for a file that would run code when read (pickled objects, native code, eval'd graphs)."""
    return ModelLoadError(
        f"{path} holds {what}, and {verb} runs code from the file; "
        "if you trust its source, pass --trust-pickle (trust_pickle=True); better, re-save it as a dlaudit "
        "checkpoint, TorchScript or torch.export file"
    )


def _clean(text: str) -> str:
    """``text`` on one line without control characters (it comes from the model file)."""
    return "".join(c if c.isprintable() else "?" for c in text)[:200]


def operator_refused(path: Path, err: RefusedOperator) -> ModelLoadError:
    """The one message for a model whose graph calls an operator off the allow-list (:mod:`dlaudit.operators`)."""
    what = (
        "if you trust this model and the extension that defines the operator, pass --trust-ops (trust_ops=True)"
        if err.trustable
        else "re-export the model without it; only if you trust its source, pass --trust-pickle, which skips every check"
    )
    return ModelLoadError(
        f"{path} calls {_clean(err.operator)} ({_clean(err.where)}), which {_clean(err.why)}; "
        f"dlaudit runs no model whose operators reach outside its tensors: {what}"
    )


def audited(path: Path, kind: str, trust_pickle: bool, trust_ops: bool) -> contextlib.AbstractContextManager[None]:
    """Audit the archive (unless trusted) and return the guard to read it under."""
    try:
        if trust_pickle:
            log.warning("reading %s with trust_pickle=True: its pickled members and operators are not checked", path)
            with zipfile.ZipFile(path) as zf:
                check_sizes(str(path), zf.infolist())
            return contextlib.nullcontext()
        audit_archive(str(path), kind, trust_ops=trust_ops)
    except RefusedOperator as err:
        raise operator_refused(path, err) from err
    except OversizedArchive as err:
        raise ModelLoadError(
            f"{path} holds {_clean(first_line(err))}; it is damaged or crafted, so dlaudit does not read it; save the model again"
        ) from err
    except UnsafeArchive as err:
        raise pickle_refused(path, f"a member dlaudit cannot vouch for ({first_line(err)})", "reading it") from err
    return guarded_loading()


def checked_operators(path: Path, check: Callable[[], None]) -> None:
    """Run an operator check of a loaded graph (before any forward pass), turning a refusal into one line."""
    try:
        check()
    except RefusedOperator as err:
        raise operator_refused(path, err) from err


# -- cards ------------------------------------------------------------------------------


def card_dict(card: ModelCard | dict[str, Any] | str | Path | None) -> dict[str, Any]:
    """The fields of a card given as a :class:`ModelCard`, a dict, or a JSON path (none: empty)."""
    if card is None:
        return {}
    if isinstance(card, ModelCard):
        return card.to_dict()
    if isinstance(card, (str, Path)):
        return ModelCard.from_json(card).to_dict()
    if isinstance(card, dict):
        return dict(card)
    raise CardError(f"card must be a ModelCard, a dict or a JSON path, got {type(card).__name__}")


def sidecar_dict(path: Path) -> dict[str, Any]:
    """The fields of the model's sidecar card JSON (``model.card.json``), or empty when there is none."""
    for candidate in sidecar_paths(path):
        if os.path.lexists(candidate):  # a sidecar that is a FIFO, a device or a broken link is said, not skipped
            fields = read_card_json(candidate)
            if not isinstance(fields, dict):
                raise CardError(
                    f"card file {candidate}: a model card must be a JSON object, got {type(fields).__name__}"
                )
            return fields
    return {}


def foreign_card(
    path: Path,
    card: Any,
    module: nn.Module,
    shape_hint: Callable[[], tuple[int, ...] | None] | None = None,
    from_file: Mapping[str, Any] | None = None,
) -> ModelCard:
    """The card of a model that carries none: the caller's fields over the sidecar's over what the file says.

    A missing ``input_shape`` comes from ``shape_hint`` (the data's shape); a missing
    ``num_classes`` from running the model once on zeros.
    """
    fields = {**(from_file or {}), **sidecar_dict(path), **card_dict(card)}  # flags and card= win over the sidecar
    if fields.get("input_shape") is None and shape_hint is not None:
        fields["input_shape"] = shape_hint()
    if fields.get("input_shape") is None:
        raise CardError(
            f"{path} has no model card, and its input shape cannot be read from the file; "
            f"write {sidecar_paths(path)[0].name} with at least "
            '{"input_shape": [1, 28, 28], "num_classes": 10, "value_range": [0, 1]}, '
            "or pass --input-shape/--num-classes"
        )
    if fields.get("num_classes") is None:
        ModelCard.from_dict(
            {**fields, "num_classes": len(fields.get("class_names") or []) or 2}, source=f"card of {path}"
        )  # check the card before running the model on it
        fields["num_classes"] = _infer_num_classes(path, module, tuple(fields["input_shape"]))
    return ModelCard.from_dict(fields, source=f"card of {path}")


def _infer_num_classes(path: Path, module: nn.Module, input_shape: tuple[int, ...]) -> int:
    try:
        with torch.no_grad():
            out = module.eval()(torch.zeros((2, *input_shape)))
    except Exception as err:  # a foreign model can fail in any way
        raise CardError(
            f"{path}: could not run the model on an input of shape {input_shape} to count its classes ({first_line(err)}); give num_classes on the card"
        ) from err
    if not isinstance(out, torch.Tensor) or out.ndim != 2:
        raise CardError(f"{path}: the model returns {describe(out)}, but dlaudit needs (N, classes) logits")
    return int(out.shape[1])


def describe(out: Any) -> str:
    """A model output in words, for errors: its shape, or its type."""
    if isinstance(out, torch.Tensor):
        return f"a tensor of shape {tuple(out.shape)}"
    return f"a {type(out).__name__}"


def normalised(module: nn.Module, card: ModelCard) -> nn.Module:
    """``module`` behind ``(x - mean) / std`` when the card gives a normalisation and the model does not build it in."""
    if card.mean is None or (card.architecture and not is_known_architecture(card.architecture)):
        return module
    return Normalized(module, card.mean, card.std, ndim=len(card.input_shape))


# -- weights into an architecture -------------------------------------------------------------

_STATE_KEYS = ("state_dict", "model_state_dict", "model")
"""Where training scripts commonly keep the weights in a checkpoint dict (``{"epoch": 3, "state_dict": ...}``)."""


def state_dict_in(obj: Any) -> dict[str, torch.Tensor] | None:
    """The state_dict ``obj`` is or holds (under one of :data:`_STATE_KEYS`), else None."""
    tensors = lambda d: isinstance(d, Mapping) and d and all(isinstance(v, torch.Tensor) for v in d.values())
    if tensors(obj):
        return dict(obj)
    if isinstance(obj, Mapping):
        for key in _STATE_KEYS:
            if tensors(obj.get(key)):
                log.info("reading the weights under %r of the checkpoint dict", key)
                return dict(obj[key])
    return None


def rebuild(card: ModelCard, state: dict[str, torch.Tensor], path: Path) -> nn.Module:
    """The card's architecture with ``state`` loaded into it (a reference model, or a known torchvision/timm one)."""
    if not card.architecture:
        raise CardError(f"{path}: the card names no architecture, so the weights cannot be placed in a model")
    if is_known_architecture(card.architecture):
        return load_weights(card.architecture, card.num_classes, card.arch_kwargs, state, source=str(path))
    kwargs = dict(card.arch_kwargs)
    if card.mean is not None and card.std is not None:
        kwargs.setdefault("mean", card.mean)
        kwargs.setdefault("std", card.std)
    _check_shapes(card, kwargs, state, path)
    module = build_model(card.architecture, card.input_shape, card.num_classes, **kwargs)
    try:
        module.load_state_dict(state)
    except RuntimeError as err:
        raise ModelLoadError(
            f"{path}: the weights do not fit architecture {card.architecture!r} {kwargs}: {first_line(err)}"
        ) from err
    return module


def _check_shapes(card: ModelCard, kwargs: dict[str, Any], state: dict[str, Any], path: Path) -> None:
    """Compare the weights with the architecture the card describes, built on the meta device (no memory):
    a card claiming a huge input must not allocate the huge model before the mismatch is found."""
    try:
        with torch.device("meta"):
            skeleton = build_model(card.architecture, card.input_shape, card.num_classes, **kwargs)
    except (
        RuntimeError,
        NotImplementedError,
    ):  # an architecture that reads values while it is built: load_state_dict checks it
        return
    expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        (k, tuple(state[k].shape), expected[k])
        for k in expected
        if k in state and isinstance(state[k], torch.Tensor) and tuple(state[k].shape) != expected[k]
    ]
    if missing or unexpected or wrong:
        parts = [
            f"missing {', '.join(missing[:3])}" if missing else "",
            f"unexpected {', '.join(unexpected[:3])}" if unexpected else "",
        ]
        parts += [f"{k} is {got} but the card's shapes need {want}" for k, got, want in wrong[:3]]
        raise ModelLoadError(
            f"{path}: the weights do not fit architecture {card.architecture!r} for input {list(card.input_shape)} "
            f"and {card.num_classes} classes: {'; '.join(p for p in parts if p)}; check the card's input_shape and num_classes"
        )
