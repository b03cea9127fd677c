"""ModelBundle (module + card + device), saving dlaudit checkpoints, and loading a model file of any format.

Formats are told apart by content, not by extension, by the loaders registered in
:mod:`dlaudit.formats` (one module each: a dlaudit checkpoint, TorchScript, torch.export,
a bare state_dict with ``--arch``, and, only with ``trust_pickle=True``, a whole pickled
``nn.Module``, since unpickling runs arbitrary code from the file).

Foreign models take their card from ``card=`` or a sidecar JSON file
(``model.card.json`` or ``model.pt.card.json``), over what the file itself tells (an
exported graph's input shape). A card's ``mean``/``std`` put ``(x - mean) / std`` in
front of every model but a reference one (which builds it in).
"""

from __future__ import annotations

import logging
import os
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .architectures import is_known_architecture
from .card import ModelCard
from .errors import CardError, DlauditError, ModelLoadError
from .formats import HEAD_BYTES, LoadRequest, ModelFile, load_file
from .formats._common import card_dict, describe, first_line, foreign_card, normalised
from .formats.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_VERSION, from_checkpoint
from .graphs import contains_graph, contains_script
from .models import Normalized
from .paths import check_input, read_input, shown
from .postprocessors import get_postprocessor, list_postprocessors, register_postprocessor
from .utils import atomic_write, batched_logits, eval_mode, resolve_device

__all__ = ["ModelBundle", "save_model", "load_model", "check_output", "register_postprocessor", "CHECKPOINT_FORMAT"]

log = logging.getLogger(__name__)


@dataclass
class ModelBundle:
    """An ``nn.Module`` in eval mode, its :class:`ModelCard`, and the device it is on."""

    module: nn.Module
    card: ModelCard
    device: torch.device = torch.device("cpu")
    source: str | None = None
    format: str = "in-memory"
    load_notes: dict[str, Any] = field(default_factory=dict)
    """What loading found that the report's provenance states (e.g. an ONNX conversion's agreement with onnxruntime)."""
    tokenizer: Any = None
    """A text model's tokenizer (:class:`dlaudit.text.vocab.Tokenizer`): texts in, right-padded ``(N, L)`` ids out.

    ``None`` for models that read tensors (images, tables). A text model's module takes those ids
    (padded with ``tokenizer.pad_id``) and returns logits.
    """

    reference: Callable[[torch.Tensor], dict[str, Any]] | None = field(default=None, repr=False, compare=False)
    """For a converted model (ONNX): ``reference(x) -> notes``, its check against its own runtime on real
    inputs, run once by :meth:`check_samples` (see :attr:`dlaudit.formats.Loaded.check_samples`)."""

    def __post_init__(self) -> None:
        if self.tokenizer is None and self.card.tokenizer is not None:
            from .text.vocab import tokenizer_from_dict

            self.tokenizer = tokenizer_from_dict(self.card.tokenizer, vocab_size=int(self.card.value_range[1]) + 1)
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

    def __getstate__(self) -> dict[str, Any]:
        """Pickled and copied without :attr:`reference` (it holds another runtime's session)."""
        return {**self.__dict__, "reference": None}

    def check_samples(self, data: Any, *, limit: int = 32) -> None:
        """Check a converted model against its own runtime on the first ``limit`` inputs of ``data`` (once),
        recording the agreement in :attr:`load_notes`; a disagreement is a :class:`ModelLoadError`."""
        check, self.reference = self.reference, None
        x = getattr(data, "x", None)
        if check is None or not isinstance(x, torch.Tensor) or tuple(x.shape[1:]) != tuple(self.card.input_shape):
            return
        for key, notes in check(x[:limit]).items():
            self.load_notes.setdefault(key, {}).update(notes)

    @property
    def is_graph(self) -> bool:
        """Whether the model runs as a compiled graph (TorchScript, torch.export) rather than Python modules."""
        return contains_graph(self.module)

    @property
    def supports_hooks(self) -> bool:
        """Whether forward hooks on the model's layers see its activations (not in TorchScript)."""
        return not contains_script(self.module)

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
        The model file, or a Hugging Face folder (``save_pretrained``).
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
        head = b""  # a folder: the formats that read folders (Hugging Face's save_pretrained) claim it
    else:
        check_input(path, "model file", error=ModelLoadError)  # a regular file: not a FIFO, a device, a loop, empty
        head = read_input(path, "model file", limit=None, error=ModelLoadError, head=HEAD_BYTES)
    dev = resolve_device(device)
    request = LoadRequest(card=card, trust_pickle=trust_pickle, trust_ops=trust_ops, shape_hint=shape_hint)
    try:
        bundle = _load(ModelFile(path, head), request, dev)
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
            f"{path} could not be read as a model ({type(err).__name__}: {first_line(err)}); it may be damaged or of another kind"
        ) from err
    check_output(bundle)
    return bundle


def _load(file: ModelFile, request: LoadRequest, device: torch.device) -> ModelBundle:
    """Load ``file`` with the first registered format that claims it (see :mod:`dlaudit.formats`)."""
    fmt, loaded = load_file(file, request)
    full = loaded.card or foreign_card(file.path, request.card, loaded.module, request.shape_hint, loaded.card_fields)
    bundle = ModelBundle(
        normalised(loaded.module, full),
        full,
        device=device,
        source=str(file.path),
        format=loaded.format or fmt.name,
        load_notes=dict(loaded.notes),
        tokenizer=loaded.tokenizer,
    )
    if loaded.check_samples is not None:
        bundle.reference = _on_model_inputs(loaded.check_samples, full)
    return _finish(bundle)


def _on_model_inputs(
    check: Callable[[torch.Tensor], dict[str, Any]], card: ModelCard
) -> Callable[[torch.Tensor], dict[str, Any]]:
    """``check`` fed what the loaded module receives: the inputs behind the card's normalisation, if dlaudit adds one."""
    front = normalised(nn.Identity(), card)
    return lambda x: check(front(x.detach().cpu().float()))


def check_output(bundle: ModelBundle) -> None:
    """Run the model once on two inputs of the card's shape: it must return (2, num_classes) logits.

    One check at load for every format and every command, so no analysis ever reads
    logits of the wrong shape (a model returning one row per batch, a card whose
    ``num_classes`` is not the model's).
    """
    probe = bundle.card.kind.probe(bundle.card.input_shape, bundle.card.value_range).to(bundle.device)
    try:
        with torch.no_grad(), eval_mode(bundle.module):
            out = bundle.module(probe)
    except Exception as err:  # a foreign model can fail in any way
        raise CardError(
            f"{bundle.source}: the model fails on an input of the card's shape {list(bundle.card.input_shape)} "
            f"({type(err).__name__}: {first_line(err)}); check input_shape on the card"
        ) from err
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 2:
        raise CardError(
            f"{bundle.source}: for 2 inputs the model returns {describe(out)}, but dlaudit needs logits of shape (N, classes), here (2, {bundle.card.num_classes}); "
            "return one row of class scores per input"
        )
    if out.shape[1] != bundle.card.num_classes:
        raise CardError(
            f"{bundle.source}: the model returns {out.shape[1]} logits per input, but its card says num_classes={bundle.card.num_classes}; fix the card"
        )


def _finish(bundle: ModelBundle) -> ModelBundle:
    log.info("%s: normalisation %s", bundle.source, bundle.normalisation)
    return _apply_postprocess(bundle)


def _from_checkpoint(path: Path, obj: dict[str, Any], card: Any, device: torch.device) -> ModelBundle:
    """The bundle of a checkpoint dict already read (see :func:`dlaudit.formats.checkpoint.from_checkpoint`)."""
    loaded = from_checkpoint(path, obj, card)
    full = loaded.card
    if full is None:  # pragma: no cover - a checkpoint always carries its card
        raise ModelLoadError(f"{path}: the checkpoint holds no card")
    return ModelBundle(normalised(loaded.module, full), full, device=device, source=str(path), format="checkpoint")


def _apply_postprocess(bundle: ModelBundle) -> ModelBundle:
    spec = bundle.card.postprocess
    if not spec:
        return bundle
    kind = spec.get("kind") if isinstance(spec, dict) else None
    wrap = get_postprocessor(kind) if isinstance(kind, str) else None
    if wrap is None:
        raise ModelLoadError(
            f"{bundle.source}: unknown post-processing {kind!r} on the card; known: {', '.join(list_postprocessors()) or 'none'}"
        )
    bundle.module = wrap(bundle.module, bundle.card).to(bundle.device).eval()
    return bundle


_card_dict = card_dict  # the name dlaudit.api imports
