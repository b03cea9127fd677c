"""Model files that carry their own graph (``torch.export`` programs, TorchScript) as analyses need them.

- :class:`ExportedModule` serves an ``ExportedProgram`` at full speed: a program with a
  dynamic batch dimension takes any batch in its range in one call. One exported with a
  static batch of ``B`` usually has no operator that depends on ``B`` (convolutions,
  norms, ``flatten``): only torch's input check pins it, so with that check removed it
  takes any batch in one call, used when it gives the same outputs and input gradients
  as the loop over chunks on probes of other sizes. Otherwise every batch runs at once
  through :func:`torch.vmap` over chunks of ``B`` (only the last chunk padded), and where
  vmap cannot run the graph, or while a hook watches one of its layers, as a loop over chunks.
- :class:`ConvTap` marks the output of every convolution in an exported graph, so that
  Grad-CAM and activation maps can hook "the last convolution" as they do in eager models;
  :func:`hookable` gives a TorchScript model the same by converting it to an exported graph.
- :func:`clone_module` copies any model for the weight-randomisation sanity check
  (a TorchScript archive by saving it to a buffer and loading it back: dlaudit wrote
  that buffer itself, so it is trusted), and :func:`layer_kind` says what a layer of a
  graph was (``"Conv2d"``) when its class is gone.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import math
import warnings
import weakref
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from .errors import AnalysisError

__all__ = [
    "ConvTap",
    "ExportedModule",
    "exported_module",
    "clone_module",
    "hookable",
    "layer_kind",
    "graph_order",
    "contains_script",
    "contains_graph",
]

log = logging.getLogger(__name__)

_CONV_TARGETS = ("aten.conv2d", "aten.convolution", "aten._convolution", "aten.cudnn_convolution")


class ConvTap(nn.Identity):
    """Passes a convolution's output through unchanged: a module that hooks can watch in a graph."""

    def __init__(self, conv: str) -> None:
        super().__init__()
        self.conv = conv  # the convolution's own name in the original model, e.g. "layer4.1.conv2"


# -- torch.export programs ---------------------------------------------------------------------


class ExportedModule(nn.Module):
    """``ExportedProgram.module()`` with the batch sizes it accepts and a fast path for the rest.

    Parameters
    ----------
    graph
        The program's module (its convolutions tapped, see :func:`exported_module`).
    batch
        ``(low, high)``: the batch sizes the program accepts (``high`` None: no upper
        bound); a static batch ``B`` is ``(B, B)``.
    input_shape
        The shape of one sample, when the program fixes it.

    ``train()``/``eval()`` only record the mode: exported graphs are frozen in the mode
    they were exported in (usually eval) and refuse to switch.
    """

    def __init__(
        self, graph: nn.Module, batch: tuple[int, int | None], input_shape: tuple[int, ...] | None = None
    ) -> None:
        super().__init__()
        self.graph = graph
        self.batch = batch
        self.input_shape = input_shape
        self.vmap = False  # set by exported_module() once vmap has been shown to give the same numbers
        self.served_by = "one call per batch"

    @property
    def static_batch(self) -> int | None:
        low, high = self.batch
        return low if low == high else None

    def train(self, mode: bool = True) -> ExportedModule:
        self.training = mode
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_shape is not None and tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"the exported program takes inputs of shape (N, {', '.join(map(str, self.input_shape))}), got {tuple(x.shape)}"
            )
        low, high = self.batch
        n = len(x)
        if low <= n and (high is None or n <= high):
            return self.graph(x)
        if self.vmap and not self._watched():
            return self._vmapped(x)
        return self._chunked(x)

    def _watched(self) -> bool:
        """Whether a hook watches a layer of the graph (hooks cannot see inside vmap).

        The graph modules' own hooks (torch's checks of the inputs) do not count: they
        look at the whole batch, which vmap shows them.
        """
        return any(
            m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or m._backward_pre_hooks
            for m in self.graph.modules()
            if not isinstance(m, torch.fx.GraphModule)
        )

    def _vmapped(self, x: torch.Tensor) -> torch.Tensor:
        b = self.batch[0]
        n = len(x)
        k = math.ceil(n / b)
        padded = _pad(x, k * b)
        out = torch.vmap(self.graph)(padded.reshape(k, b, *x.shape[1:]))
        return out.reshape(k * b, *out.shape[2:])[:n]

    def _chunked(self, x: torch.Tensor) -> torch.Tensor:
        low, high = self.batch
        size = high if high is not None else max(low, len(x))
        outs = []
        for start in range(0, len(x), size):
            chunk = x[start : start + size]
            outs.append(self.graph(_pad(chunk, max(low, len(chunk))))[: len(chunk)])
        return torch.cat(outs)


def _pad(x: torch.Tensor, rows: int) -> torch.Tensor:
    """``x`` with its last row repeated up to ``rows`` rows (a gradient flows to the real rows only once)."""
    if len(x) >= rows:
        return x
    return torch.cat([x, x[-1:].detach().expand(rows - len(x), *x.shape[1:])])


def _batch_range(program: Any, val: Any) -> tuple[int, int | None]:
    """The batch sizes a program accepts: its first input's dimension 0 and the range of its symbol."""
    dim = val.shape[0]
    if isinstance(dim, int):
        return int(dim), int(dim)
    expr = getattr(getattr(dim, "node", None), "expr", None)
    bounds = program.range_constraints.get(expr) if expr is not None else None
    if bounds is None:
        return 1, None
    low = int(bounds.lower) if math.isfinite(float(bounds.lower)) else 1
    upper = float(bounds.upper)
    return max(1, low), int(bounds.upper) if math.isfinite(upper) else None


def _user_input(program: Any) -> Any:
    names = set(program.graph_signature.user_inputs)
    for node in program.graph.nodes:
        if node.op == "placeholder" and node.name in names:
            return node.meta.get("val")
    return None


def _module_path(node: Any) -> str | None:
    """The name a graph node's layer had: from the module stack export records, else from its weight's name."""
    stack = node.meta.get("nn_module_stack") or {}
    path = list(stack.values())[-1][0] if stack else ""
    if path:
        return path
    weight = node.args[1] if len(node.args) > 1 else None
    if getattr(weight, "op", None) == "get_attr":
        return str(weight.target).rpartition(".")[0] or None
    return None


def insert_conv_taps(graph: torch.fx.GraphModule) -> list[str]:
    """Put a :class:`ConvTap` after every 2-D convolution of ``graph``; returns the taps' names in graph order."""
    taps = []
    modules = dict(graph.named_modules())
    for node in list(graph.graph.nodes):
        if node.op != "call_function" or not str(node.target).startswith(_CONV_TARGETS):
            continue
        val = node.meta.get("val")
        if val is None or getattr(val, "ndim", 0) != 4:
            continue
        conv = _module_path(node) or f"conv{len(taps)}"
        name = f"{conv}.output" if conv in modules else f"{conv.replace('.', '_')}_output"
        graph.add_submodule(name, ConvTap(conv))
        with graph.graph.inserting_after(node):
            tap = graph.graph.call_module(name, (node,))
        node.replace_all_uses_with(tap, delete_user_cb=lambda user, tap=tap: user is not tap)
        taps.append(name)
    if taps:
        graph.recompile()
    return taps


def _mark_kinds(graph: torch.fx.GraphModule) -> None:
    """Record on each container of an exported graph the class its layer had (``"Conv2d"``, ``"BatchNorm2d"``)."""
    modules = dict(graph.named_modules())
    for node in graph.graph.nodes:
        for path, cls in (node.meta.get("nn_module_stack") or {}).values():
            target = modules.get(path)
            if target is not None and path and not hasattr(target, "_dlaudit_kind"):
                target._dlaudit_kind = str(getattr(cls, "__name__", cls)).rsplit(".", 1)[-1]


def _prepared(program: Any) -> torch.fx.GraphModule:
    graph = program.module()
    _mark_kinds(graph)
    insert_conv_taps(graph)
    return graph


_INPUT_CHECK = "_check_input_constraints_pre_hook"


def _unguarded(graph: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """``graph`` without torch's checks of its input shapes (the pre-hook and the ``_guards_fn`` node)."""
    for key, hook in list(graph._forward_pre_hooks.items()):
        if getattr(hook, "__name__", "") == _INPUT_CHECK:
            del graph._forward_pre_hooks[key]
            graph._forward_pre_hooks_with_kwargs.pop(key, None)
    for node in list(graph.graph.nodes):
        if node.op == "call_module" and str(node.target).startswith("_guards_fn") and not node.users:
            graph.graph.erase_node(node)
    graph.recompile()
    return graph


def exported_module(program: Any, *, probe: bool = True) -> ExportedModule:
    """An :class:`ExportedModule` for ``program``: convolutions tapped, batch range read, the fast path checked.

    For a static batch ``B``, the unchecked graph is used for every batch only when it
    gives the same outputs and input gradients as the loop over chunks on two probes
    (seeded random inputs of ``B + 1`` and ``2B + 3`` rows); vmap only when it does so on
    one. Otherwise batches run as a loop over chunks of ``B``.
    """
    graph = _prepared(program)
    val = _user_input(program)
    batch = _batch_range(program, val) if val is not None else (1, None)
    shape = (
        tuple(int(s) for s in val.shape[1:])
        if val is not None and all(isinstance(s, int) for s in val.shape[1:])
        else None
    )
    module = ExportedModule(graph, batch, shape)
    if module.static_batch is not None:
        b = module.static_batch
        module.served_by = f"a loop over chunks of its static batch {b}"
        if probe and shape is not None:
            free = ExportedModule(_unguarded(_prepared(program)), (1, None), shape)
            reason = _mismatch(free.forward, module._chunked, shape, (b + 1, 2 * b + 3))
            if reason is None:
                free.served_by = f"one call per batch: no operator uses its static batch {b} (checked against the loop)"
                return free
            log.info("torch.export program: its operators depend on the batch size %d (%s)", b, reason)
            reason = _mismatch(module._vmapped, module._chunked, shape, (b + 1,))
            if reason is None:
                module.vmap = True
                module.served_by = f"torch.vmap over chunks of its static batch {b}"
            else:
                log.info("torch.export program: vmap cannot run it (%s); batches run as a loop over chunks", reason)
    elif batch != (1, None):
        module.served_by = f"one call per batch of {batch[0]} to {batch[1] or 'any number of'} rows"
    return module


def _mismatch(fast: Any, loop: Any, shape: tuple[int, ...], sizes: tuple[int, ...]) -> str | None:
    """Why ``fast`` does not reproduce ``loop`` (outputs and input gradients) on probes of ``sizes`` rows (None: it does)."""
    gen = torch.Generator().manual_seed(0)
    for rows in sizes:
        probe = torch.rand((rows, *shape), generator=gen)
        try:
            x1 = probe.clone().requires_grad_()
            ref = loop(x1)
            (g1,) = torch.autograd.grad(ref.sum(), x1)
            x2 = probe.clone().requires_grad_()
            out = fast(x2)
            (g2,) = torch.autograd.grad(out.sum(), x2)
        except Exception as err:  # noqa: BLE001  a graph can fail here in any way (no batching rule, a shape it pins): fall back
            return f"{type(err).__name__}: {(str(err).splitlines() or [''])[0][:200]}"
        ref, out, g1, g2 = ref.detach(), out.detach(), g1.detach(), g2.detach()
        if out.shape != ref.shape or float((out - ref).abs().max()) > 1e-4 * (float(ref.abs().max()) + 1e-6):
            return f"its outputs on {rows} rows differ from the loop's"
        if float((g1 - g2).abs().max()) > 1e-4 * (float(g1.abs().max()) + 1e-6):
            return f"its input gradients on {rows} rows differ from the loop's"
    return None


# -- TorchScript -------------------------------------------------------------------------------


def contains_script(module: nn.Module) -> bool:
    """Whether ``module`` is or holds a TorchScript module (which hooks cannot watch)."""
    return any(isinstance(m, torch.jit.ScriptModule) for m in module.modules())


def contains_graph(module: nn.Module) -> bool:
    """Whether ``module`` is or holds a compiled graph (TorchScript or a served ``torch.export`` program),
    whose operators run without Python modules (no hooks on its non-linearities, no ``torch.compile`` tracing)."""
    return any(isinstance(m, (torch.jit.ScriptModule, ExportedModule)) for m in module.modules())


def _clone_script(module: torch.jit.ScriptModule) -> torch.jit.ScriptModule:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(module, buffer)
        buffer.seek(0)
        device = next((p.device for p in module.parameters()), torch.device("cpu"))
        return torch.jit.load(buffer, map_location=device)  # our own archive, written a line above: trusted


def clone_module(module: nn.Module) -> nn.Module:
    """An independent copy of ``module`` whose parameters can be changed in place.

    TorchScript modules (also nested ones) are copied by saving them to a buffer and
    loading it back; everything else by ``copy.deepcopy``.
    """
    if isinstance(module, torch.jit.ScriptModule):
        return _clone_script(module)
    memo = {id(m): _clone_script(m) for m in module.modules() if isinstance(m, torch.jit.ScriptModule)}
    return copy.deepcopy(module, memo)


def layer_kind(module: nn.Module) -> str:
    """What a layer is: its class name, TorchScript's ``original_name``, or the class an exported graph recorded."""
    kind = getattr(module, "_dlaudit_kind", None)
    if kind:
        return str(kind)
    if isinstance(module, torch.jit.ScriptModule):
        return str(getattr(module, "original_name", type(module).__name__))
    return type(module).__name__


@contextlib.contextmanager
def _quiet_conversion() -> Iterator[None]:
    loggers = [logging.getLogger(n) for n in ("torch._export", "torch.export", "torch._dynamo", "torch.fx")]
    levels = [lg.level for lg in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)


_CONVERTED: weakref.WeakKeyDictionary[nn.Module, tuple[ExportedModule, tuple[int, ...]]] = weakref.WeakKeyDictionary()


def _versions(module: nn.Module) -> tuple[int, ...]:
    return tuple(t._version for t in (*module.parameters(), *module.buffers()))


def _convert_script(module: torch.jit.ScriptModule, example: torch.Tensor) -> ExportedModule:
    """The TorchScript module as an exported graph with tapped convolutions (torch's TS2EP converter)."""
    cached = _CONVERTED.get(module)
    if cached is not None and cached[1] == _versions(module):
        return cached[0]
    sample = example[:2] if len(example) >= 2 else example.expand(2, *example.shape[1:])
    try:
        from torch._export.converter import TS2EPConverter

        with _quiet_conversion(), torch.no_grad():
            program = TS2EPConverter(module, (sample.detach().cpu().clone(),)).convert()
        converted = exported_module(program, probe=False)
    except Exception as err:  # torch's converter is experimental and may raise anything on a model
        raise AnalysisError(
            "its layers cannot be hooked in a TorchScript model, and torch could not convert it to a graph that can be "
            f"({type(err).__name__}: {(str(err).splitlines() or [''])[0][:160]}); save it with torch.export (.pt2) "
            "or as a state_dict with --arch"
        ) from err
    device = next((p.device for p in module.parameters()), torch.device("cpu"))
    converted = converted.to(device)
    _CONVERTED[module] = (converted, _versions(module))
    return converted


def hookable(module: nn.Module, example: torch.Tensor) -> nn.Module:
    """``module``, or an equivalent one whose layers forward hooks can watch.

    TorchScript modules refuse hooks; they (or TorchScript children of a wrapper, such as
    dlaudit's normalisation) are converted to exported graphs, whose convolutions are
    :class:`ConvTap`\\ ped. Raises :class:`AnalysisError` with the reason when torch cannot convert one.
    """
    if isinstance(module, torch.jit.ScriptModule):
        return _convert_script(module, example)
    if not contains_script(module):
        return module
    out = copy.copy(module)
    out._modules = dict(module._modules)
    for name, child in module._modules.items():
        if child is not None and contains_script(child):
            out._modules[name] = hookable(child, example)
    return out


def graph_order(module: nn.Module) -> list[str]:
    """Names of the submodules of ``module`` in the order graphs inside it use them (empty without graphs).

    A layer of an exported graph never runs as a module (its weights are read by the
    graph), so this order stands in for the order a forward pass runs the layers.
    """
    order: list[str] = []
    for prefix, sub in module.named_modules():
        if not isinstance(sub, torch.fx.GraphModule):
            continue
        base = f"{prefix}." if prefix else ""
        for node in sub.graph.nodes:
            if node.op == "get_attr":
                order.append(base + str(node.target).rpartition(".")[0])
            elif node.op == "call_module":
                order.append(base + str(node.target))
    return list(dict.fromkeys(order))
