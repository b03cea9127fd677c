"""ModelBundle (module + card + device) and reading/writing every supported model format.

Formats are told apart by content, not by extension:

1. dlaudit checkpoint: a plain dict (card + state_dict), read with
   ``torch.load(weights_only=True)``, which cannot run code;
2. TorchScript archives (``torch.jit.save``);
3. ``torch.export`` programs (``torch.export.save``, usually ``.pt2``);
4. a whole pickled ``nn.Module``, only with ``trust_pickle=True``: unpickling runs
   arbitrary code from the file, so it is never the default.

Foreign models (2-4) take their card from ``card=`` or a sidecar JSON file
(``model.card.json`` or ``model.pt.card.json``). A bare ``state_dict`` (weights
without code, ``torch.save(model.state_dict(), path)``) loads into a known
architecture named on the card (``"architecture": "torchvision:resnet18"``, or
``--arch``), see :mod:`dlaudit.architectures`. A card's ``mean``/``std`` put
``(x - mean) / std`` in front of every model but a reference one (which builds it in).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import pickle
import warnings
import zipfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .architectures import infer_num_classes, is_known_architecture, load_weights
from .archive import (
    EXPORT,
    TORCHSCRIPT,
    OversizedArchive,
    UnsafeArchive,
    audit_archive,
    check_sizes,
    guarded_loading,
)
from .card import ModelCard, canonical_fields, read_card_json
from .errors import CardError, DlauditError, ModelLoadError
from .graphs import ExportedModule, exported_module
from .models import Normalized, build_model
from .operators import RefusedOperator, check_fx_graph, check_torchscript
from .paths import check_input, read_input, shown, sidecar_paths
from .utils import atomic_write, batched_logits, eval_mode, resolve_device

__all__ = ["ModelBundle", "save_model", "load_model", "check_output", "register_postprocessor", "CHECKPOINT_FORMAT"]

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "dlaudit-checkpoint"
CHECKPOINT_VERSION = 1

Postprocessor = Callable[[nn.Module, ModelCard], nn.Module]
POSTPROCESSORS: dict[str, Postprocessor | str] = {
    "group-thresholds": "dlaudit.fairness.thresholds:wrap_group_thresholds",  # fairness mitigation by thresholds
}
"""How a card's ``postprocess={"kind": KIND, ...}`` wraps a loaded module: a function
``(module, card) -> module`` or its ``"module:function"`` path (imported when used)."""


def register_postprocessor(kind: str) -> Callable[[Postprocessor], Postprocessor]:
    """Register how a card's ``postprocess={"kind": KIND, ...}`` wraps a loaded module."""

    def deco(fn: Postprocessor) -> Postprocessor:
        POSTPROCESSORS[kind] = fn
        return fn

    return deco


@dataclass
class ModelBundle:
    """An ``nn.Module`` in eval mode, its :class:`ModelCard`, and the device it is on."""

    module: nn.Module
    card: ModelCard
    device: torch.device = torch.device("cpu")
    source: str | None = None
    format: str = "in-memory"

    def __post_init__(self) -> None:
        self.device = resolve_device(self.device)
        self.module = self.module.to(self.device).eval()

    def to(self, device: str | torch.device) -> ModelBundle:
        self.device = resolve_device(device)
        self.module = self.module.to(self.device)
        return self

    def logits(self, x: torch.Tensor, *, batch_size: int = 512) -> torch.Tensor:
        """Logits on ``x`` (batched, no gradients, the model in eval mode), returned on the CPU."""
        with eval_mode(self.module):
            return batched_logits(self.module, x, batch_size=batch_size, device=self.device)

    def predict(self, x: torch.Tensor, *, batch_size: int = 512) -> torch.Tensor:
        return self.logits(x, batch_size=batch_size).argmax(dim=1)

    @property
    def normalisation(self) -> str:
        """In words: which normalisation the inputs go through, and who applies it (for the report)."""
        card = self.card
        if card.mean is None:
            return f"none: the model receives inputs in value_range {list(card.value_range)} as they are"
        where = (
            "applied by dlaudit in front of the loaded model (from the card)"
            if any(isinstance(m, Normalized) for m in self.module.modules())
            else "built into the model"
        )
        return f"(x - mean) / std with mean {card.mean}, std {card.std}, {where}; inputs in value_range {list(card.value_range)}"


# -- saving -------------------------------------------------------------------------


def save_model(bundle: ModelBundle, path: str | Path) -> Path:
    """Write a dlaudit checkpoint (card + state_dict), atomically.

    The file loads with ``torch.load(weights_only=True)``. Models whose card names an
    ``architecture`` can be saved this way: dlaudit's reference models and known
    architectures (``torchvision:NAME``, ``timm:NAME``; their state_dict is stored
    without dlaudit's normalisation wrapper, so plain torchvision loads it too). Save
    any other foreign model with ``torch.jit.save`` or ``torch.export.save`` instead.
    """
    if not bundle.card.architecture:
        raise ModelLoadError(
            "this model has no reference architecture on its card, so a dlaudit checkpoint could not rebuild it; "
            "save it with torch.jit.save or torch.export.save and a sidecar .card.json instead"
        )
    module = bundle.module
    if is_known_architecture(bundle.card.architecture) and isinstance(module, Normalized):
        module = module.model  # the normalisation comes back from the card's mean/std
    state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "card": bundle.card.to_dict(),
        "state_dict": state,
    }
    path = Path(path)
    with atomic_write(path) as fh:
        torch.save(payload, fh)
    return path


# -- loading ------------------------------------------------------------------------


def load_model(
    path: str | Path,
    *,
    card: ModelCard | dict[str, Any] | str | Path | None = None,
    trust_pickle: bool = False,
    trust_ops: bool = False,
    device: str | torch.device = "auto",
    shape_hint: Callable[[], tuple[int, ...] | None] | None = None,
) -> ModelBundle:
    """Load a model file of any supported format, telling formats apart by content.

    Parameters
    ----------
    path
        The model file.
    card
        For foreign formats: a :class:`ModelCard`, a dict of card fields, or the
        path of a card JSON. Left out, a sidecar ``<model>.card.json`` is used.
        For a dlaudit checkpoint, given fields override the stored card.
    trust_pickle
        Allow unpickling a whole ``nn.Module``. Unpickling runs code from the file;
        only do this for files you trust. It also skips the operator audit.
    trust_ops
        Let a TorchScript or torch.export graph call operators outside torch's own
        tensor operators (a custom extension's), see :mod:`dlaudit.operators`; the
        operators that reach outside the model (files, printing, processes) stay refused.
    device
        ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
    shape_hint
        For a foreign model whose card (and file) gives no ``input_shape``: a function
        returning the shape of the data it will be audited on (e.g. (3, 32, 32) for
        cifar10), or None.
    """
    path = Path(path)
    if not os.path.lexists(path):
        raise ModelLoadError(
            f"model file {shown(path)} does not exist; check the path, or train one with 'dlaudit train cnn -o {shown(path.name)}'"
        )
    if path.is_dir():
        raise ModelLoadError(f"{shown(path)} is a directory, not a model file")
    check_input(path, "model file", error=ModelLoadError)  # a regular file: not a FIFO, a device, a loop, empty
    head = read_input(path, "model file", limit=None, error=ModelLoadError, head=4)
    dev = resolve_device(device)
    try:
        bundle = _load(
            path, head, card=card, trust_pickle=trust_pickle, trust_ops=trust_ops, device=dev, shape_hint=shape_hint
        )
    except DlauditError:
        raise
    except (
        RuntimeError,
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        AttributeError,
        EOFError,
        OSError,
        MemoryError,
        RecursionError,
        zipfile.BadZipFile,
        zlib.error,
    ) as err:
        # the boundary where an untrusted file meets torch's readers: what they raise is the file's fault, said in one line
        raise ModelLoadError(
            f"{path} could not be read as a model ({type(err).__name__}: {_first_line(err)}); it may be damaged or of another kind"
        ) from err
    check_output(bundle)
    return bundle


def check_output(bundle: ModelBundle) -> None:
    """Run the model once on two inputs of the card's shape: it must return (2, num_classes) logits.

    One check at load for every format and every command, so no analysis ever reads
    logits of the wrong shape (a model returning one row per batch, a card whose
    ``num_classes`` is not the model's).
    """
    low = float(bundle.card.value_range[0])
    probe = torch.full((2, *bundle.card.input_shape), low, device=bundle.device)
    try:
        with torch.no_grad(), eval_mode(bundle.module):
            out = bundle.module(probe)
    except Exception as err:  # a foreign model can fail in any way
        raise CardError(
            f"{bundle.source}: the model fails on an input of the card's shape {list(bundle.card.input_shape)} "
            f"({type(err).__name__}: {_first_line(err)}); check input_shape on the card"
        ) from err
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 2:
        raise CardError(
            f"{bundle.source}: for 2 inputs the model returns {_describe(out)}, but dlaudit needs logits of shape (N, classes), here (2, {bundle.card.num_classes}); "
            "return one row of class scores per input"
        )
    if out.shape[1] != bundle.card.num_classes:
        raise CardError(
            f"{bundle.source}: the model returns {out.shape[1]} logits per input, but its card says num_classes={bundle.card.num_classes}; fix the card"
        )


def _load(
    path: Path,
    head: bytes,
    *,
    card: Any,
    trust_pickle: bool,
    device: torch.device,
    trust_ops: bool = False,
    shape_hint: Callable[[], tuple[int, ...] | None] | None = None,
) -> ModelBundle:
    dev = device
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, OSError) as err:
            raise ModelLoadError(f"model file {path} is a damaged zip archive ({err}); save it again") from err
        if any(n.endswith("/constants.pkl") for n in names) and any("/code/" in n for n in names):
            module, fmt = _load_torchscript(path, trust_pickle=trust_pickle, trust_ops=trust_ops), "torchscript"
        elif any(
            n.endswith("archive_format")
            or "serialized_exported_program" in n
            or n.endswith(".json")
            and "/models/" in n
            for n in names
        ):
            module, fmt = _load_exported(path, trust_pickle=trust_pickle, trust_ops=trust_ops), "torch.export"
        else:
            return _load_torch_save(path, card=card, trust_pickle=trust_pickle, device=dev, shape_hint=shape_hint)
        full = _foreign_card(path, card, module, shape_hint)
        return _finish(ModelBundle(_normalised(module, full), full, device=dev, source=str(path), format=fmt))
    if head[:2] == b"PK":
        raise ModelLoadError(
            f"model file {path} looks like a truncated zip archive (no end-of-archive record); it was probably cut off while copying; save or copy it again"
        )
    if head[:1] == b"\x80":  # a raw pickle stream: torch's legacy format
        return _load_torch_save(path, card=card, trust_pickle=trust_pickle, device=dev, shape_hint=shape_hint)
    raise ModelLoadError(
        f"{path} is not a model file dlaudit can read (not a torch.save, TorchScript or torch.export archive); "
        "give a dlaudit checkpoint, a TorchScript or a torch.export file"
    )


def _pickle_refused(path: Path, what: str, verb: str = "unpickling") -> ModelLoadError:
    """The one message for a file that would run code when read (pickled objects, native code, eval'd graphs)."""
    return ModelLoadError(
        f"{path} holds {what}, and {verb} runs code from the file; "
        "if you trust its source, pass --trust-pickle (trust_pickle=True); better, re-save it as a dlaudit "
        "checkpoint, TorchScript or torch.export file"
    )


def _operator_refused(path: Path, err: RefusedOperator) -> ModelLoadError:
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


def _clean(text: str) -> str:
    """``text`` on one line without control characters (it comes from the model file)."""
    return "".join(c if c.isprintable() else "?" for c in text)[:200]


def _audited(path: Path, kind: str, trust_pickle: bool, trust_ops: bool) -> contextlib.AbstractContextManager[None]:
    """Audit the archive (unless trusted) and return the guard to read it under."""
    try:
        if trust_pickle:
            log.warning("reading %s with trust_pickle=True: its pickled members and operators are not checked", path)
            with zipfile.ZipFile(path) as zf:
                check_sizes(str(path), zf.infolist())
            return contextlib.nullcontext()
        audit_archive(str(path), kind, trust_ops=trust_ops)
    except RefusedOperator as err:
        raise _operator_refused(path, err) from err
    except OversizedArchive as err:
        raise ModelLoadError(
            f"{path} holds {_clean(_first_line(err))}; it is damaged or crafted, so dlaudit does not read it; save the model again"
        ) from err
    except UnsafeArchive as err:
        raise _pickle_refused(path, f"a member dlaudit cannot vouch for ({_first_line(err)})", "reading it") from err
    return guarded_loading()


def _checked_operators(path: Path, check: Callable[[], None]) -> None:
    """Run an operator check of a loaded graph (before any forward pass), turning a refusal into one line."""
    try:
        check()
    except RefusedOperator as err:
        raise _operator_refused(path, err) from err


def _load_torchscript(path: Path, *, trust_pickle: bool = False, trust_ops: bool = False) -> nn.Module:
    try:
        with (
            _audited(path, TORCHSCRIPT, trust_pickle, trust_ops),
            warnings.catch_warnings(),
        ):  # TorchScript is deprecated upstream, but users still ship it
            warnings.simplefilter("ignore", FutureWarning)
            module = torch.jit.load(str(path), map_location="cpu")
    except (RuntimeError, ValueError) as err:
        raise ModelLoadError(f"TorchScript archive {path} could not be loaded: {_first_line(err)}") from err
    if not trust_pickle:
        _checked_operators(path, lambda: check_torchscript(module, trust_ops=trust_ops))
    return module


def _load_exported(path: Path, *, trust_pickle: bool = False, trust_ops: bool = False) -> nn.Module:
    try:
        with _audited(path, EXPORT, trust_pickle, trust_ops):
            program = torch.export.load(str(path))
    except ModelLoadError:
        raise
    except pickle.UnpicklingError as err:  # the guard stopped an unpickling the audit did not foresee
        raise _pickle_refused(path, f"pickled Python objects ({_first_line(err)})") from err
    except Exception as err:  # torch raises many types here (RuntimeError, KeyError, ...)
        raise ModelLoadError(f"torch.export program {path} could not be loaded: {_first_line(err)}") from err
    if not trust_pickle:
        _checked_operators(path, lambda: check_fx_graph(program.graph_module, trust_ops=trust_ops))
    module = exported_module(program)
    log.info("torch.export program %s: batches are served by %s", path, module.served_by)
    return module


def _load_torch_save(
    path: Path,
    *,
    card: Any,
    trust_pickle: bool,
    device: torch.device,
    shape_hint: Callable[[], tuple[int, ...] | None] | None = None,
) -> ModelBundle:
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if not trust_pickle:
            raise _pickle_refused(path, "pickled Python objects (a whole nn.Module?)") from err
        obj = _load_trusted_pickle(path)
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as err:
        raise ModelLoadError(
            f"{path} could not be read as a torch file ({_first_line(err)}); it may be truncated or corrupt"
        ) from err

    if isinstance(obj, nn.Module):
        full = _foreign_card(path, card, obj, shape_hint)
        return _finish(ModelBundle(_normalised(obj, full), full, device=device, source=str(path), format="pickle"))
    if isinstance(obj, dict) and obj.get("format") == CHECKPOINT_FORMAT:
        return _finish(_from_checkpoint(path, obj, card, device))
    state = _state_dict_in(obj)
    if state is not None:
        return _finish(_from_state_dict(path, state, card, device, shape_hint))
    raise ModelLoadError(
        f"{path} holds a {type(obj).__name__}, not a model: dlaudit reads its own checkpoints, TorchScript, "
        "torch.export programs, and (with --trust-pickle) pickled nn.Modules"
    )


_STATE_KEYS = ("state_dict", "model_state_dict", "model")
"""Where training scripts commonly keep the weights in a checkpoint dict (``{"epoch": 3, "state_dict": ...}``)."""


def _state_dict_in(obj: Any) -> dict[str, torch.Tensor] | None:
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


def _normalised(module: nn.Module, card: ModelCard) -> nn.Module:
    """``module`` behind ``(x - mean) / std`` when the card gives a normalisation and the model does not build it in."""
    if card.mean is None or (card.architecture and not is_known_architecture(card.architecture)):
        return module
    return Normalized(module, card.mean, card.std, ndim=len(card.input_shape))


def _finish(bundle: ModelBundle) -> ModelBundle:
    log.info("%s: normalisation %s", bundle.source, bundle.normalisation)
    return _apply_postprocess(bundle)


def _load_trusted_pickle(path: Path) -> Any:
    log.warning("unpickling %s with trust_pickle=True: this runs code from the file", path)
    try:
        return torch.load(str(path), map_location="cpu", weights_only=False)
    except (AttributeError, ModuleNotFoundError) as err:
        raise ModelLoadError(
            f"{path} is a pickled module whose class cannot be imported here ({_first_line(err)}); "
            "import the module that defines it first, or re-save the model as TorchScript"
        ) from err


def _from_checkpoint(path: Path, obj: dict[str, Any], card: Any, device: torch.device) -> ModelBundle:
    version = obj.get("version")
    if version != CHECKPOINT_VERSION:
        raise ModelLoadError(
            f"{path} is a dlaudit checkpoint of version {version}; this dlaudit reads version {CHECKPOINT_VERSION}; upgrade dlaudit"
        )
    stored = dict(obj.get("card") or {})
    overrides = _card_dict(card)
    full = ModelCard.from_dict({**stored, **overrides}, source=str(path))
    module = _rebuild(full, obj.get("state_dict") or {}, path)
    return ModelBundle(_normalised(module, full), full, device=device, source=str(path), format="checkpoint")


def _from_state_dict(
    path: Path,
    state: dict[str, torch.Tensor],
    card: Any,
    device: torch.device,
    shape_hint: Callable[[], tuple[int, ...] | None] | None = None,
) -> ModelBundle:
    fields = canonical_fields({**_sidecar_dict(path), **_card_dict(card)}, source=f"card of {path}")
    if not fields.get("architecture"):
        raise ModelLoadError(
            f"{path} is a bare state_dict (weights without code); dlaudit needs to know the architecture: pass "
            "--arch torchvision:NAME (or timm:NAME) with --num-classes, or give a card with arch, input_shape and "
            f"num_classes (sidecar {path.with_suffix('.card.json').name}); or save it with dlaudit.save_model"
        )
    arch = fields["architecture"]
    if fields.get("input_shape") is None and shape_hint is not None:
        fields["input_shape"] = shape_hint()
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
    module = _rebuild(full, state, path)
    return ModelBundle(_normalised(module, full), full, device=device, source=str(path), format="state_dict")


def _rebuild(card: ModelCard, state: dict[str, torch.Tensor], path: Path) -> nn.Module:
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
            f"{path}: the weights do not fit architecture {card.architecture!r} {kwargs}: {_first_line(err)}"
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


def _card_dict(card: ModelCard | dict[str, Any] | str | Path | None) -> dict[str, Any]:
    if card is None:
        return {}
    if isinstance(card, ModelCard):
        return card.to_dict()
    if isinstance(card, (str, Path)):
        return ModelCard.from_json(card).to_dict()
    if isinstance(card, dict):
        return dict(card)
    raise CardError(f"card must be a ModelCard, a dict or a JSON path, got {type(card).__name__}")


def _sidecar_dict(path: Path) -> dict[str, Any]:
    for candidate in sidecar_paths(path):
        if os.path.lexists(candidate):  # a sidecar that is a FIFO, a device or a broken link is said, not skipped
            fields = read_card_json(candidate)
            if not isinstance(fields, dict):
                raise CardError(
                    f"card file {candidate}: a model card must be a JSON object, got {type(fields).__name__}"
                )
            return fields
    return {}


def _foreign_card(
    path: Path, card: Any, module: nn.Module, shape_hint: Callable[[], tuple[int, ...] | None] | None = None
) -> ModelCard:
    fields = {**_sidecar_dict(path), **_card_dict(card)}  # fields given (flags, card=) win over the sidecar's
    if fields.get("input_shape") is None and isinstance(module, ExportedModule) and module.input_shape:
        fields["input_shape"] = list(module.input_shape)
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
            f"{path}: could not run the model on an input of shape {input_shape} to count its classes ({_first_line(err)}); give num_classes on the card"
        ) from err
    if not isinstance(out, torch.Tensor) or out.ndim != 2:
        raise CardError(f"{path}: the model returns {_describe(out)}, but dlaudit needs (N, classes) logits")
    return int(out.shape[1])


def _describe(out: Any) -> str:
    if isinstance(out, torch.Tensor):
        return f"a tensor of shape {tuple(out.shape)}"
    return f"a {type(out).__name__}"


def _apply_postprocess(bundle: ModelBundle) -> ModelBundle:
    spec = bundle.card.postprocess
    if not spec:
        return bundle
    kind = spec.get("kind") if isinstance(spec, dict) else None
    if kind not in POSTPROCESSORS:
        raise ModelLoadError(
            f"{bundle.source}: unknown post-processing {kind!r} on the card; known: {', '.join(sorted(POSTPROCESSORS)) or 'none'}"
        )
    wrap = POSTPROCESSORS[kind]
    if isinstance(wrap, str):
        module_name, _, attr = wrap.partition(":")
        wrap = getattr(importlib.import_module(module_name), attr)
    bundle.module = wrap(bundle.module, bundle.card).to(bundle.device).eval()
    return bundle


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:300] if text else type(err).__name__
