"""ONNX models (``torch.onnx.export``), converted to a torch module and checked against onnxruntime.

The graph is converted by a maintained converter, so gradients, attacks, bounds and
explanations work on it: ``onnx2pytorch`` first (it converts what torch's default
exporter writes, opset 18-20), then ``onnx2torch``; the first whose module agrees with
onnxruntime is used. Agreement is measured on probe inputs (:data:`PROBE_BATCHES` seeded
random batches in the card's value range): the largest absolute logit difference is
recorded in the report's provenance (``model.load.onnx``), and again on the first 32 inputs of the
audited data once it is known (``data_max_abs_logit_diff``); above :data:`RELATIVE_TOLERANCE`
times the largest logit (at least 1) the model is refused, since an audit of a different
function would be a lie.

Nothing in an ONNX file is unpickled (it is protobuf), but it is read with bounds: at most
:data:`MAX_BYTES`, declared tensor and input shapes of at most :data:`MAX_ELEMENTS`
elements, operators of the standard ONNX domain only, and external-data files that lie
inside the model's folder (checked before any is read). Before conversion, ``Identity``
nodes are folded away (torch's legacy exporter writes them between weights and layers,
which neither converter follows).

Needs the optional extra: ``pip install dlaudit[onnx]`` (onnx, onnxscript, onnxruntime,
onnx2pytorch, onnx2torch).
"""

from __future__ import annotations

import logging
import math
import os
import re
import warnings
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import CardError, ModelLoadError
from . import Loaded, LoadRequest, ModelFile, ModelFormat, register_format
from ._common import card_dict, first_line, sidecar_dict

__all__ = ["FORMAT", "RELATIVE_TOLERANCE", "PROBE_BATCHES", "MAX_BYTES", "MAX_ELEMENTS", "CONVERTERS"]

log = logging.getLogger(__name__)

RELATIVE_TOLERANCE = 1e-4
"""Largest accepted |torch - onnxruntime| logit difference, relative to the largest logit (at least 1)."""
PROBE_BATCHES = 3
PROBE_ROWS = 4
MAX_BYTES = 2 * 2**30
"""Largest ONNX file (protobuf's own limit; larger models keep their weights in external data)."""
MAX_ELEMENTS = 2**31
"""Largest number of elements of one declared tensor (an initializer) or of one input."""
_EXTRA = "pip install dlaudit[onnx]"
_PROTO_FIELDS = {0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42}
"""The tags that follow ``ir_version`` in a ModelProto: producer, version, domain, model version, doc, graph, opsets."""


def detect(file: ModelFile) -> bool:
    """A protobuf ModelProto: ``ir_version`` (field 1, a small varint) first, then one of its other fields."""
    head = file.head
    return len(head) >= 3 and head[0] == 0x08 and 1 <= head[1] <= 30 and head[2] in _PROTO_FIELDS


def _libraries() -> Any:
    try:
        import onnx
        import onnxruntime
    except ImportError as err:
        raise ModelLoadError(f"reading ONNX models needs the onnx extra: {_EXTRA} ({first_line(err)})") from err
    return onnx, onnxruntime


def _refused(path: Path, what: str) -> ModelLoadError:
    return ModelLoadError(f"{path}: {what}")


def _check_external_data(onnx: Any, model: Any, path: Path) -> None:
    """Every external-data file must lie inside the model's folder (symlinks resolved), checked before any is read."""
    folder = path.parent.resolve()
    for tensor in onnx.external_data_helper._get_all_tensors(model):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        target = (folder / location).resolve()
        if not location or os.path.isabs(location) or not target.is_relative_to(folder):
            raise _refused(
                path,
                f"initializer {tensor.name[:80]!r} keeps its data in {location[:120]!r}, outside the model's folder; "
                "dlaudit reads external data only from the model's own folder",
            )
        if not target.is_file():
            raise _refused(
                path, f"initializer {tensor.name[:80]!r} keeps its data in {location[:120]!r}, which is missing"
            )


def _elements(dims: Any) -> int:
    return math.prod(int(d) for d in dims) if dims else 1


def _check_bounds(onnx: Any, model: Any, path: Path) -> None:
    """Declared shapes within bounds: initializers, and the inputs' static dimensions."""
    for tensor in onnx.external_data_helper._get_all_tensors(model):
        if any(d < 0 for d in tensor.dims) or _elements(tensor.dims) > MAX_ELEMENTS:
            raise _refused(
                path, f"initializer {tensor.name[:80]!r} declares shape {list(tensor.dims)[:8]}, beyond bounds"
            )
    for value in model.graph.input:
        dims = [d.dim_value for d in value.type.tensor_type.shape.dim if d.HasField("dim_value")]
        if any(d < 0 for d in dims) or _elements(dims) > MAX_ELEMENTS:
            raise _refused(path, f"input {value.name[:80]!r} declares shape {dims[:8]}, beyond bounds")


def _check_operators(model: Any, path: Path) -> None:
    """Only operators of the standard ONNX domain: another domain's are whatever a runtime extension registered."""
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx"):
            raise _refused(
                path,
                f"unsupported operator {node.domain[:60]}::{node.op_type[:60]} (node {node.name[:80]!r}); "
                "dlaudit converts operators of the standard ONNX domain only",
            )


def _fold_identities(model: Any) -> None:
    """Remove ``Identity`` nodes, pointing their consumers at their inputs (not those that feed a graph output)."""
    graph = model.graph
    outputs = {o.name for o in graph.output}
    alias = {
        n.output[0]: n.input[0]
        for n in graph.node
        if n.op_type == "Identity" and n.domain in ("", "ai.onnx") and n.output[0] not in outputs
    }
    if not alias:
        return

    def resolve(name: str) -> str:
        seen = 0
        while name in alias and seen < len(alias):
            name, seen = alias[name], seen + 1
        return name

    keep = [n for n in graph.node if not (n.op_type == "Identity" and n.output[0] in alias)]
    for node in keep:
        for i, name in enumerate(node.input):
            node.input[i] = resolve(name)
    del graph.node[:]
    graph.node.extend(keep)


def _input_info(model: Any, path: Path) -> tuple[str, list[int | None]]:
    initializers = {t.name for t in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in initializers]
    if len(inputs) != 1:
        raise _refused(path, f"the graph takes {len(inputs)} inputs; dlaudit audits classifiers of one input tensor")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in inputs[0].type.tensor_type.shape.dim]
    return inputs[0].name, dims


def _card_fields(dims: list[int | None]) -> dict[str, Any]:
    """What the graph says about the card: the input shape, when every dimension but the batch is static."""
    if len(dims) >= 2 and all(d is not None and d > 0 for d in dims[1:]):
        return {"input_shape": [int(d) for d in dims[1:]]}
    return {}


def _probe_spec(
    path: Path, request: LoadRequest, from_graph: dict[str, Any]
) -> tuple[tuple[int, ...], tuple[float, float]]:
    fields = {**from_graph, **sidecar_dict(path), **card_dict(request.card)}
    shape = fields.get("input_shape")
    if shape is None and request.shape_hint is not None:
        shape = request.shape_hint()
    if shape is None:
        raise CardError(
            f"{path}: the graph's input shape is not static and no card gives one; pass --input-shape C,H,W "
            "or put input_shape in a sidecar .card.json"
        )
    low, high = fields.get("value_range") or (0.0, 1.0)
    return tuple(int(s) for s in shape), (float(low), float(high))


class _PoolValues:
    """A max-pooling layer that returns its values alone, as a 1-tuple (what onnx2pytorch reads from it).

    onnx2pytorch builds every ``MaxPool`` with ``return_indices=True`` and takes the values from the
    pair even when the graph never uses the indices; a layer returning two tensors defeats
    hook-based methods (captum's DeepLIFT refuses modules with more than one output).
    """

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        return (super().forward(x),)  # type: ignore[misc]


class MaxPool1dValues(_PoolValues, nn.MaxPool1d):
    pass


class MaxPool2dValues(_PoolValues, nn.MaxPool2d):
    pass


class MaxPool3dValues(_PoolValues, nn.MaxPool3d):
    pass


_POOLS = {nn.MaxPool1d: MaxPool1dValues, nn.MaxPool2d: MaxPool2dValues, nn.MaxPool3d: MaxPool3dValues}


def _values_only_pools(module: nn.Module) -> nn.Module:
    """Swap onnx2pytorch's single-output max-pooling layers (a bare ``MaxPoolNd`` with indices) for :class:`_PoolValues`
    ones; a pool whose indices the graph uses is wrapped by onnx2pytorch and left as it is."""
    for name, child in list(module.named_modules()):
        if type(child) in _POOLS and child.return_indices:
            values = _POOLS[type(child)](
                child.kernel_size, child.stride, child.padding, child.dilation, ceil_mode=child.ceil_mode
            )
            parent, _, attr = name.rpartition(".")
            setattr(module.get_submodule(parent) if parent else module, attr, values)
    return module


def _onnx2pytorch(model: Any) -> nn.Module:
    from onnx2pytorch import ConvertModel

    return _values_only_pools(ConvertModel(model, experimental=True))


def _onnx2torch(model: Any) -> nn.Module:
    from onnx2torch import convert

    return convert(model)


CONVERTERS: tuple[tuple[str, Callable[[Any], nn.Module]], ...] = (
    ("onnx2pytorch", _onnx2pytorch),
    ("onnx2torch", _onnx2torch),
)
"""The converters tried, in order; the first whose module agrees with onnxruntime is used."""


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "?"


_UNSUPPORTED = re.compile(r"op_type=(\w+)|operation_type='(\w+)'")


def _unsupported(model: Any, err: BaseException) -> str | None:
    """The operator and node a converter's NotImplementedError names, in words, or None."""
    found = _UNSUPPORTED.search(str(err))
    if not found:
        return None
    op = found.group(1) or found.group(2)
    node = next((n.name for n in model.graph.node if n.op_type == op), "?")
    return f"unsupported operator {op} (node {node[:80]!r})"


def _probes(shape: tuple[int, ...], value_range: tuple[float, float], batch: int | None) -> list[np.ndarray]:
    gen = torch.Generator().manual_seed(0)
    low, high = value_range
    rows = batch or PROBE_ROWS
    return [(low + (high - low) * torch.rand((rows, *shape), generator=gen)).numpy() for _ in range(PROBE_BATCHES)]


def _agreement(module: nn.Module, session: Any, name: str, probes: list[np.ndarray]) -> tuple[float, float]:
    """Largest |torch - onnxruntime| logit difference over the probes, and the largest |logit|."""
    diff, scale = 0.0, 0.0
    device = next(iter(module.parameters()), torch.empty(0)).device
    with torch.no_grad():
        for x in probes:
            (ref,) = session.run(None, {name: x})[:1]
            out = module(torch.from_numpy(x).to(device)).cpu()
            if not isinstance(out, torch.Tensor) or tuple(out.shape) != tuple(ref.shape):
                raise ValueError(f"it returns {tuple(getattr(out, 'shape', ()))}, onnxruntime {tuple(ref.shape)}")
            ref_t = torch.from_numpy(np.asarray(ref, dtype=np.float32))
            diff = max(diff, float((out.float() - ref_t).abs().max()))
            scale = max(scale, float(ref_t.abs().max()))
    return diff, scale


def load(file: ModelFile, request: LoadRequest) -> Loaded:
    path = file.path
    onnx, ort = _libraries()
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise _refused(path, f"an ONNX file of {size:,} bytes, more than protobuf allows ({MAX_BYTES:,})")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # protobuf's DecodeError and others: a damaged file, in one line
        raise _refused(path, f"not a readable ONNX model ({type(err).__name__}: {first_line(err)})") from err
    if not model.graph.node:
        raise _refused(path, "an ONNX file without a graph")
    _check_bounds(onnx, model, path)
    _check_external_data(onnx, model, path)
    _check_operators(model, path)
    try:
        onnx.load_external_data_for_model(model, str(path.parent))
        onnx.checker.check_model(model)
    except Exception as err:  # onnx's ValidationError and others
        raise _refused(path, f"an invalid ONNX model ({type(err).__name__}: {first_line(err)})") from err
    name, dims = _input_info(model, path)
    from_graph = _card_fields(dims)
    shape, value_range = _probe_spec(path, request, from_graph)
    try:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own types
        raise _refused(path, f"onnxruntime cannot run it ({type(err).__name__}: {first_line(err)})") from err
    batch = dims[0] if dims and isinstance(dims[0], int) and dims[0] > 0 else None
    probes = _probes(shape, value_range, batch)
    _fold_identities(model)
    failures: list[str] = []
    for converter, convert in CONVERTERS:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                module = convert(model).eval()
                diff, scale = _agreement(module, session, name, probes)
        except ImportError as err:
            failures.append(f"{converter} is not installed ({_EXTRA})")
            log.info("%s: %s", path, err)
            continue
        except Exception as err:  # noqa: BLE001  a converter can fail in any way on a graph: try the next
            failures.append(f"{converter}: {_unsupported(model, err) or f'{type(err).__name__}: {first_line(err)}'}")
            continue
        tolerance = RELATIVE_TOLERANCE * max(1.0, scale)
        if not math.isfinite(diff) or diff > tolerance:
            failures.append(
                f"{converter}: its logits differ from onnxruntime's by up to {diff:.3g} (tolerance {tolerance:.3g})"
            )
            continue
        log.info("%s: converted by %s; logits within %.3g of onnxruntime", path, converter, diff)
        notes = {
            "converter": f"{converter} {_version(converter)}",
            "runtime": f"onnxruntime {_version('onnxruntime')}",
            "opset": max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=None),
            "max_abs_logit_diff": diff,
            "tolerance": tolerance,
            "probes": f"{PROBE_BATCHES} seeded random batches of {len(probes[0])} in value_range {list(value_range)}",
        }
        check = _sample_check(path, module, session, name, batch)
        return Loaded(module, card_fields=from_graph, notes={"onnx": notes}, check_samples=check)
    raise _refused(path, f"no converter reproduces this ONNX model: {'; '.join(failures)}")


def _sample_check(
    path: Path, module: nn.Module, session: Any, name: str, batch: int | None
) -> Callable[[torch.Tensor], dict[str, Any]]:
    """The agreement check on real samples (the data's first inputs, as the converted module receives them)."""

    def check(x: torch.Tensor) -> dict[str, Any]:
        rows = x.detach().cpu().float().numpy()
        size = batch or len(rows)
        batches = [rows[i : i + size] for i in range(0, len(rows) - size + 1, size)]  # a static batch: whole ones
        if not batches:
            return {}
        diff, scale = _agreement(module, session, name, batches)
        tolerance = RELATIVE_TOLERANCE * max(1.0, scale)
        if not math.isfinite(diff) or diff > tolerance:
            raise _refused(
                path,
                f"on {sum(map(len, batches))} inputs of the data its converted logits differ from onnxruntime's by up "
                f"to {diff:.3g} (tolerance {tolerance:.3g}), so the audit would not be of this model; "
                "report it with the file to the converter's authors",
            )
        return {"onnx": {"data_max_abs_logit_diff": diff, "data_samples": sum(map(len, batches))}}

    return check


FORMAT = register_format(
    ModelFormat(
        "onnx",
        detect,
        load,
        order=50,
        description="ONNX model (torch.onnx.export), converted and checked against onnxruntime",
    )
)
