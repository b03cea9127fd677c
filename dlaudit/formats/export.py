"""``torch.export`` programs (``torch.export.save``, usually ``.pt2``): audited before torch reads them,
their graph's operators checked before it runs, then served by :class:`~dlaudit.graphs.ExportedModule`."""

from __future__ import annotations

import logging
import pickle

import torch

from ..archive import EXPORT
from ..errors import ModelLoadError
from ..graphs import ExportedModule, exported_module
from ..operators import check_fx_graph
from . import Loaded, LoadRequest, ModelFile, ModelFormat, register_format
from ._common import first_line, pickle_refused

__all__ = ["FORMAT"]

log = logging.getLogger(__name__)


def detect(file: ModelFile) -> bool:
    """A zip archive with torch.export's format marker, serialized program or model JSON."""
    return any(
        n.endswith("archive_format") or "serialized_exported_program" in n or n.endswith(".json") and "/models/" in n
        for n in file.zip_names or []
    )


def load(file: ModelFile, request: LoadRequest) -> Loaded:
    try:
        program = torch.export.load(str(file.path))
    except ModelLoadError:
        raise
    except pickle.UnpicklingError as err:  # the guard stopped an unpickling the audit did not foresee
        raise pickle_refused(file.path, f"pickled Python objects ({first_line(err)})") from err
    except Exception as err:  # torch raises many types here (RuntimeError, KeyError, ...)
        raise ModelLoadError(f"torch.export program {file.path} could not be loaded: {first_line(err)}") from err
    return Loaded(program)


def _wrap(loaded: Loaded, file: ModelFile) -> Loaded:
    """Serve the (checked) program as a module; the input shape it records goes to the card unless given."""
    module: ExportedModule = exported_module(loaded.module)
    log.info("torch.export program %s: batches are served by %s", file.path, module.served_by)
    fields = dict(loaded.card_fields)
    if module.input_shape:
        fields["input_shape"] = list(module.input_shape)
    return Loaded(module, card=loaded.card, card_fields=fields, format=loaded.format, notes=loaded.notes)


FORMAT = register_format(
    ModelFormat(
        "torch.export",
        detect,
        load,
        order=20,
        archive=EXPORT,
        check_operators=lambda program, trust_ops: check_fx_graph(program.graph_module, trust_ops=trust_ops),
        wrap=_wrap,
        is_graph=True,
        description="torch.export program (torch.export.save, .pt2)",
    )
)
