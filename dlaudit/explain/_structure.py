"""What an explanation method needs to know about a model's structure.

DeepLIFT-style methods (captum's DeepLift, shap's DeepExplainer) apply their rule
through hooks on non-linearity *modules*; a functional call (``F.relu``) or one
module object used twice escapes or breaks them. The sanity check needs the
layers with weights in the order the forward pass runs them.
"""

from __future__ import annotations

import logging
from collections import Counter

import torch
import torch.nn.functional as F
from torch import nn

from ..graphs import graph_order

__all__ = ["relu_problems", "weighted_layers", "run_order"]

log = logging.getLogger(__name__)

_NONLINEAR_MODULES = (
    nn.ReLU,
    nn.LeakyReLU,
    nn.ELU,
    nn.SELU,
    nn.GELU,
    nn.Sigmoid,
    nn.Tanh,
    nn.Softplus,
    nn.ReLU6,
    nn.SiLU,
)
_NONLINEAR_FUNCTIONS = {
    F.relu,
    F.relu_,
    F.leaky_relu,
    F.elu,
    F.selu,
    F.gelu,
    F.silu,
    F.softplus,
    F.relu6,
    F.hardtanh,
    torch.relu,
    torch.relu_,
    torch.sigmoid,
    torch.tanh,
    F.sigmoid,
    F.tanh,
}
_NONLINEAR_METHODS = {"relu", "relu_", "sigmoid", "sigmoid_", "tanh", "tanh_", "clamp", "clamp_min"}


def relu_problems(module: nn.Module) -> list[str] | None:
    """Non-linearities that DeepLIFT-style hooks cannot see: functional calls and reused modules.

    Traced with ``torch.fx``; for a model that cannot be traced (TorchScript,
    data-dependent control flow) the answer is ``None`` (unknown), and callers
    rely on a numerical check instead.
    """
    try:
        graph = torch.fx.symbolic_trace(module).graph
    except Exception as err:  # fx raises many types (TraceError, TypeError, RuntimeError, ...)  # noqa: BLE001
        log.debug("fx trace failed: %s", err)
        return None
    problems: list[str] = []
    calls: Counter[str] = Counter()
    modules = dict(module.named_modules())
    for node in graph.nodes:
        if node.op == "call_function" and node.target in _NONLINEAR_FUNCTIONS:
            problems.append(f"functional {getattr(node.target, '__name__', node.target)} at {node.name}")
        elif node.op == "call_method" and node.target in _NONLINEAR_METHODS:
            problems.append(f"tensor method .{node.target}() at {node.name}")
        elif node.op == "call_module" and isinstance(modules.get(str(node.target)), _NONLINEAR_MODULES):
            calls[str(node.target)] += 1
    problems += [f"module {name!r} is used {count} times" for name, count in calls.items() if count > 1]
    return problems


def weighted_layers(module: nn.Module, example: torch.Tensor) -> list[tuple[str, nn.Module]]:
    """Modules that hold weights themselves, in the order a forward pass runs them."""
    named = [(name, m) for name, m in module.named_modules() if any(True for _ in m.parameters(recurse=False))]
    return run_order(module, example, named)


def run_order(
    module: nn.Module, example: torch.Tensor, named: list[tuple[str, nn.Module]]
) -> list[tuple[str, nn.Module]]:
    """``named`` submodules sorted by when one forward pass on ``example[:1]`` runs them.

    Layers of a graph (a ``torch.export`` program's, whose layers never run as modules)
    follow in the order the graph reads their weights; modules that did not run come
    last, in registration order; when hooks cannot be attached (TorchScript) the
    registration order is kept.
    """
    if not named:
        return []
    order: list[str] = []
    handles = []
    try:
        for name, m in named:
            handles.append(m.register_forward_hook(_recorder(order, name)))
        with torch.no_grad():
            module(example[:1])
    except (RuntimeError, AttributeError, TypeError) as err:
        log.debug("could not record layer order: %s", err)
        order = []
    finally:
        for h in handles:
            h.remove()
    by_name = dict(named)
    ran = [n for n in dict.fromkeys(order) if n in by_name]
    ran += [n for n in graph_order(module) if n in by_name and n not in ran]
    rest = [n for n, _ in named if n not in ran]
    return [(n, by_name[n]) for n in ran + rest]


def _recorder(order: list[str], name: str):
    def hook(_mod: nn.Module, _inp: object, _out: object) -> None:
        order.append(name)

    return hook
