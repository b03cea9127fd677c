"""Model formats as plug-ins: one loader module per format, registered here, tried in a stated order.

A format is a :class:`ModelFormat`: a name (``bundle.format``, and ``"format"`` in
``dlaudit info --json``), ``detect(file) -> bool`` on a :class:`ModelFile` (the path,
its first bytes, and reads of its content shared by every format, so that the file is
read once), and ``load(file, request)`` returning a :class:`Loaded` (the module, and
either the complete card or what the file says about it). :func:`load_file` tries the
formats in :func:`list_formats` order and loads the file with the first that claims it.

What every format that reads an archive must do is done here, not by each loader: a
format that declares ``archive=`` (an archive kind of :mod:`dlaudit.archive`) is
audited with :func:`~dlaudit.archive.audit_archive` (pickles, declared sizes, operators)
before its ``load`` runs, which then runs under :func:`~dlaudit.archive.guarded_loading`;
and a format whose graphs run declares ``check_operators``, which runs on what ``load``
read before anything wraps or runs it (``trust_pickle=True`` skips both and keeps the
size checks). A format that declares an archive without an operator check cannot be
registered.

Third-party formats register through the entry-point group ``dlaudit.formats``: each
entry point names a :class:`ModelFormat` (or a function returning one). A plug-in that
fails to import or is not a format is one warning line, never a crash.
"""

from __future__ import annotations

import importlib
import logging
import pickle
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..card import ModelCard
from ..errors import ModelLoadError
from ._common import audited, checked_operators, first_line

__all__ = [
    "ModelFile",
    "ModelFormat",
    "LoadRequest",
    "Loaded",
    "TorchSave",
    "register_format",
    "list_formats",
    "get_format",
    "detect_format",
    "load_file",
    "ENTRY_POINT_GROUP",
    "HEAD_BYTES",
]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "dlaudit.formats"
HEAD_BYTES = 64
"""How many leading bytes of the file :attr:`ModelFile.head` holds (magic numbers, headers)."""


@dataclass(frozen=True)
class TorchSave:
    """What ``torch.load(weights_only=True)`` made of a file: the object, or why it could not."""

    obj: Any = None
    needs_pickle: BaseException | None = None
    """Set when the file holds pickled Python objects (weights_only refused them)."""
    error: BaseException | None = None
    """Set when the file is damaged or no ``torch.save`` file at all."""


class ModelFile:
    """A model file as the formats' ``detect`` functions see it; content reads are done once and shared.

    Parameters
    ----------
    path
        The file (or folder, for formats that are folders).
    head
        Its first :data:`HEAD_BYTES` bytes (empty for a folder).
    """

    def __init__(self, path: Path, head: bytes) -> None:
        self.path = path
        self.head = head

    @cached_property
    def zip_names(self) -> list[str] | None:
        """The member names when the file is a zip archive, else None (also for a truncated one, see :attr:`head`)."""
        if self.path.is_dir() or not zipfile.is_zipfile(self.path):
            return None
        try:
            with zipfile.ZipFile(self.path) as zf:
                return zf.namelist()
        except (zipfile.BadZipFile, OSError) as err:
            raise ModelLoadError(f"model file {self.path} is a damaged zip archive ({err}); save it again") from err

    @property
    def maybe_torch_save(self) -> bool:
        """Whether the file can be a ``torch.save`` file: a zip archive, or a raw pickle stream (torch's legacy format)."""
        return self.zip_names is not None or self.head[:1] == b"\x80"

    @cached_property
    def torch_save(self) -> TorchSave:
        """The file read with ``torch.load(weights_only=True)``, which cannot run code (once, for every format)."""
        if not self.maybe_torch_save:
            return TorchSave(error=ValueError("not a torch.save file"))
        try:
            return TorchSave(obj=torch.load(str(self.path), map_location="cpu", weights_only=True))
        except pickle.UnpicklingError as err:
            return TorchSave(needs_pickle=err)
        except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as err:
            return TorchSave(error=err)


@dataclass(frozen=True)
class LoadRequest:
    """What the caller of :func:`dlaudit.load_model` asked for, passed to every format's ``load``."""

    card: ModelCard | dict[str, Any] | str | Path | None = None
    trust_pickle: bool = False
    trust_ops: bool = False
    shape_hint: Callable[[], tuple[int, ...] | None] | None = None


@dataclass
class Loaded:
    """What a format's ``load`` returns.

    Attributes
    ----------
    module
        The model as read from the file. For a format with ``check_operators``, what that
        check reads (e.g. an ``ExportedProgram``); its ``wrap`` then makes the ``nn.Module``.
    card
        The complete card, for formats that carry one (a dlaudit checkpoint) or build it
        (a state_dict with ``--arch``); None: the card is built from ``card_fields``, the
        sidecar JSON and the caller's fields, in that order of precedence (the caller's win).
    card_fields
        What the file itself says about the card (an input shape read from a graph, class names).
    format
        The format's name, when a loader reads several (a trusted pickle holding a checkpoint).
    notes
        Facts about the load for the report's provenance (e.g. an agreement with another runtime).
    tokenizer
        A text model's tokenizer (:class:`dlaudit.text.vocab.Tokenizer`), which becomes ``bundle.tokenizer``.
    check_samples
        ``check_samples(x) -> notes``: compares the loaded module with the format's own runtime on
        real inputs ``x`` (as the module receives them), once the data is known; returns what to add
        to ``notes``, and raises :class:`~dlaudit.errors.ModelLoadError` when they disagree.
    """

    module: Any
    card: ModelCard | None = None
    card_fields: dict[str, Any] = field(default_factory=dict)
    format: str | None = None
    notes: dict[str, Any] = field(default_factory=dict)
    tokenizer: Any = None
    check_samples: Callable[[torch.Tensor], dict[str, Any]] | None = None


Detect = Callable[[ModelFile], bool]
Load = Callable[[ModelFile, LoadRequest], Loaded]


@dataclass(frozen=True)
class ModelFormat:
    """One model format: how to recognise it, how to load it, and what its models can do.

    Attributes
    ----------
    name
        Its name in ``bundle.format`` and ``dlaudit info --json`` (public: do not change it).
    detect
        ``detect(file) -> bool``: whether the file is of this format, by content.
    load
        ``load(file, request) -> Loaded``.
    order
        Where it is tried: lower first (built-ins use 10-100; a plug-in picks its place).
    archive
        The archive kind (:data:`dlaudit.archive.TORCHSCRIPT`, :data:`~dlaudit.archive.EXPORT`)
        when the file is a zip that torch reads with pickles: then it is audited before
        ``load`` runs, and ``load`` runs under the guard.
    check_operators
        ``check_operators(loaded.module, trust_ops)``: the operator allow-list on what
        ``load`` read, run before ``wrap`` and any forward pass. Required with ``archive``.
    wrap
        ``wrap(loaded, file) -> Loaded`` after the operator check: makes the ``nn.Module``
        (e.g. serving an ``ExportedProgram``) and may add what it tells about the card.
    is_graph
        Its models run as compiled graphs (TorchScript, torch.export) rather than Python
        modules: layers cannot be hooked directly, ``torch.compile`` may not trace them.
    description
        One line for ``list_formats`` and error messages.
    """

    name: str
    detect: Detect
    load: Load
    order: int = 50
    archive: str | None = None
    check_operators: Callable[[Any, bool], None] | None = None
    wrap: Callable[[Loaded, ModelFile], Loaded] | None = None
    is_graph: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ValueError("a model format needs a name")
        if self.archive is not None and self.check_operators is None:
            raise ValueError(
                f"format {self.name!r} reads a {self.archive} archive, so it must declare check_operators "
                "(the operator allow-list runs on every graph dlaudit loads)"
            )


_FORMATS: dict[str, ModelFormat] = {}
_BUILTINS = ("checkpoint", "torchscript", "export", "state_dict", "safetensors", "onnx", "huggingface", "pickled")
_loaded_builtins = False


def register_format(fmt: ModelFormat, *, replace: bool = False) -> ModelFormat:
    """Register ``fmt`` (one line in the format's module: ``FORMAT = register_format(ModelFormat(...))``).

    Raises
    ------
    ValueError
        When a format of that name is registered already and ``replace`` is False.
    """
    if fmt.name in _FORMATS and not replace and _FORMATS[fmt.name] is not fmt:
        raise ValueError(f"a model format named {fmt.name!r} is registered already")
    _FORMATS[fmt.name] = fmt
    return fmt


def _load_builtins() -> None:
    global _loaded_builtins
    if _loaded_builtins:
        return
    _loaded_builtins = True
    for name in _BUILTINS:
        importlib.import_module(f"{__name__}.{name}")


def _load_plugins() -> None:
    """Formats of installed packages (entry-point group ``dlaudit.formats``), through :func:`dlaudit.plugins.load_plugins`:
    a broken one is one warning line."""
    from ..plugins import load_plugins

    def take(name: str, obj: object) -> bool:
        fmt = obj() if callable(obj) and not isinstance(obj, (type, ModelFormat)) else obj  # an object or its factory
        if not isinstance(fmt, ModelFormat):
            raise TypeError(f"it gives a {type(fmt).__name__}, not a dlaudit.formats.ModelFormat")
        register_format(fmt)
        return True

    load_plugins(ENTRY_POINT_GROUP, take)


def list_formats() -> list[ModelFormat]:
    """Every registered format, in the order :func:`load_file` tries them."""
    _load_builtins()
    _load_plugins()
    return sorted(_FORMATS.values(), key=lambda f: (f.order, f.name))


def get_format(name: str) -> ModelFormat:
    """The format called ``name``; an unknown name raises a ``KeyError`` that lists the known ones."""
    formats = {f.name: f for f in list_formats()}
    if name not in formats:
        raise KeyError(f"unknown model format {name!r}; known: {', '.join(formats)}")
    return formats[name]


def detect_format(file: ModelFile) -> ModelFormat:
    """The first format (in :func:`list_formats` order) that claims ``file``; one-line errors when none does."""
    for fmt in list_formats():
        if fmt.detect(file):
            return fmt
    raise _unknown(file)


def _unknown(file: ModelFile) -> ModelLoadError:
    path = file.path
    if file.path.is_dir():
        return ModelLoadError(
            f"{path} is a directory, not a model file (dlaudit reads a Hugging Face folder with config.json)"
        )
    if file.maybe_torch_save:
        read = file.torch_save
        if read.error is not None:
            return ModelLoadError(
                f"{path} could not be read as a torch file ({first_line(read.error)}); it may be truncated or corrupt"
            )
        return ModelLoadError(
            f"{path} holds a {type(read.obj).__name__}, not a model: dlaudit reads its own checkpoints, TorchScript, "
            "torch.export programs, and (with --trust-pickle) pickled nn.Modules"
        )
    if file.head[:2] == b"PK":
        return ModelLoadError(
            f"model file {path} looks like a truncated zip archive (no end-of-archive record); it was probably cut off while copying; save or copy it again"
        )
    return ModelLoadError(
        f"{path} is not a model file dlaudit can read (not a torch.save, TorchScript or torch.export archive); "
        "give a dlaudit checkpoint, a TorchScript or a torch.export file"
    )


def load_file(file: ModelFile, request: LoadRequest) -> tuple[ModelFormat, Loaded]:
    """Detect the format of ``file`` and load it, with the archive audit and operator check it declares.

    Returns the format and what it loaded, ``module`` already wrapped (an ``nn.Module``).
    """
    fmt = detect_format(file)
    if fmt.archive is not None:
        with audited(file.path, fmt.archive, request.trust_pickle, request.trust_ops):
            loaded = fmt.load(file, request)
    else:
        loaded = fmt.load(file, request)
    if fmt.check_operators is not None and not request.trust_pickle:
        check = fmt.check_operators
        checked_operators(file.path, lambda: check(loaded.module, request.trust_ops))
    if fmt.wrap is not None:
        loaded = fmt.wrap(loaded, file)
    if not isinstance(loaded.module, nn.Module):
        raise ModelLoadError(f"{file.path}: format {fmt.name!r} loaded a {type(loaded.module).__name__}, not a model")
    return fmt, loaded
