"""Memory-bounded batching: how many input rows one forward (and backward) pass of an explanation may hold.

Every method with steps or samples (IG, SmoothGrad, GradientShap, DeepLiftShap, occlusion, LIME, Kernel
SHAP) and the one-pass gradient methods (saliency, Grad-CAM, DeepLIFT) split their internal work into
chunks of at most :func:`row_budget` rows, so 1,000 resnet18 inputs or IG with 200 steps never hold more
than the budget, whatever the number of inputs. The chunking never changes a number: every method's
result for one input does not depend on which other inputs or steps share its pass (tested to 1e-6).

The budget is ``ExplainSettings.max_memory`` bytes (``--max-memory 2G``); left out,
:data:`DEFAULT_SHARE` of the memory free when the method starts (``MemAvailable`` on the CPU, the
device's free memory on CUDA). What one row costs is measured once per model and input shape
(:func:`activation_bytes`): one forward pass on one input with a forward hook on every module, summing
the bytes of every distinct tensor they output (the input included), times :data:`BACKWARD_FACTOR` for
a method that back-propagates (the activations kept for the backward pass, their gradients, and the
input gradient). ``ExplainSettings.internal_batch_size`` stays the most rows a pass holds (larger
passes stop paying off); the budget can only lower it.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..errors import ConfigError

if TYPE_CHECKING:
    from ._common import ExplainContext

__all__ = [
    "BACKWARD_FACTOR",
    "DEFAULT_SHARE",
    "activation_bytes",
    "chunks",
    "default_budget",
    "format_size",
    "parse_size",
    "row_budget",
]

log = logging.getLogger(__name__)

BACKWARD_FACTOR = 3
"""A backward pass's cost over a forward pass's activations: the activations kept for it, their gradients
(about as large), and the transient buffers of the convolutions' and matrix products' backward. Measured on
a 10-class resnet18 at 3x32x32 (SmoothGrad, passes of 205 rows, 64 inputs): 115 MiB of RSS over the
baseline with every block over 64 KiB mapped on its own (1.35 times the forward activations), 166 MiB with
dlaudit's allocator tuning (glibc keeps freed blocks, :mod:`dlaudit._alloc`): 3 leaves room for both.
What the budget does not count: the sanity check's randomised copy of the model (its methods get the
budget less the copy), the inputs and maps of all explained rows (one input's size each), and the
figures."""
DEFAULT_SHARE = 0.5
"""The share of the free memory (RAM, or the CUDA device's) a method may use when no budget is given."""
UNHOOKED_FACTOR = 32
"""A model whose layers cannot be hooked (a TorchScript or exported graph) is charged this many times its
input and output per row: a resnet18's activations are about 25 times its 224x224 input."""

_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*$", re.IGNORECASE)
BAD_SIZE = "--max-memory takes a size such as 2G, 500M or 1.5GB (bytes, or K/M/G/T in powers of 1024), got {!r}"


def parse_size(value: str | int | float) -> int:
    """Bytes of a size: an integer, or a number with K, M, G or T (powers of 1024; ``B``/``iB`` allowed).

    >>> parse_size("2G"), parse_size("500M"), parse_size("1.5GB"), parse_size(4096)
    (2147483648, 524288000, 1610612736, 4096)

    Raises :class:`ConfigError` for anything else, or a size under one byte.
    """
    if isinstance(value, bool):
        raise ConfigError(BAD_SIZE.format(value))
    if isinstance(value, (int, float)):
        number, unit = float(value), ""
    else:
        match = _SIZE.match(str(value))
        if not match:
            raise ConfigError(BAD_SIZE.format(value))
        number, unit = float(match.group(1)), match.group(2).upper()
    size = int(number * _UNITS[unit])
    if size < 1:
        raise ConfigError(BAD_SIZE.format(value) + "; give at least one byte")
    return size


def format_size(size: int) -> str:
    """``size`` bytes for people: ``2.0 GiB``, ``512 MiB``."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size} B"


def _free_ram() -> int:
    """Bytes of RAM available to a new allocation (``MemAvailable``; all physical memory where unknown)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 4 * 2**30


def default_budget(device: torch.device) -> int:
    """:data:`DEFAULT_SHARE` of the memory free now: the CUDA device's on CUDA, RAM otherwise."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return max(1, int(free * DEFAULT_SHARE))
    return max(1, int(_free_ram() * DEFAULT_SHARE))


def _tensors(out: object) -> Iterator[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        yield out
    elif isinstance(out, (list, tuple)):
        for o in out:
            yield from _tensors(o)
    elif isinstance(out, dict):
        for o in out.values():
            yield from _tensors(o)


def activation_bytes(module: nn.Module, example: torch.Tensor) -> int:
    """Bytes one input row of ``example``'s shape holds in a forward pass of ``module``, measured.

    One forward pass (without gradients) on one row (or on the model's static batch, divided by it) with a
    forward hook on every module; each distinct storage the outputs live in counts once (a container's
    output is its last child's, a view or an in-place result its input's), the input too. A model that
    holds a TorchScript or exported graph (whose operators no hook sees) is charged
    :data:`UNHOOKED_FACTOR` times its input and output, or what the hooks saw where that is more. The
    model and its hooks are left as they were.
    """
    from ..graphs import contains_graph
    from .saliency import hook_batch

    rows = hook_batch(module) or 1
    x = example[:1].expand(rows, *example.shape[1:]).contiguous()
    seen: dict[int, int] = {}
    kept: list[torch.Tensor] = []  # alive until the end, as a pass with gradients keeps them: no address is reused
    fired = [0]

    def hook(_mod: nn.Module, _inp: object, out: object) -> None:
        fired[0] += 1
        for t in _tensors(out):
            kept.append(t)
            storage = t.untyped_storage()
            seen[storage.data_ptr()] = storage.nbytes()

    handles = []
    try:
        for m in module.modules():
            if m is not module and not isinstance(m, torch.jit.ScriptModule):  # a script module takes no hooks
                handles.append(m.register_forward_hook(hook))
        with torch.no_grad():
            out = module(x)
    finally:
        for h in handles:
            h.remove()
    kept.clear()
    base = x.numel() * x.element_size() + sum(t.numel() * t.element_size() for t in _tensors(out))
    hooked = x.numel() * x.element_size() + sum(seen.values())
    if not fired[0] or contains_graph(module):  # a graph's operators run unseen: charge the stated factor
        return max(1, max(base * UNHOOKED_FACTOR, hooked) // rows)
    return max(1, hooked // rows)


def row_budget(module: nn.Module, x: torch.Tensor, ctx: ExplainContext, *, backward: bool = True) -> int:
    """The most rows of ``x``'s shape one pass of ``module`` may hold under the context's memory budget.

    ``backward``: the pass back-propagates (charged :data:`BACKWARD_FACTOR` times the forward
    activations). At least 1 (a budget under one row runs a row at a time, with a log line), at most
    ``ctx.settings.internal_batch_size``. The measurement is cached on the context per architecture (class and parameter count) and shape.
    """
    # keyed by architecture, not object: the sanity check's randomised copies cost what the model costs
    n_params = sum(p.numel() for p in module.parameters())
    key = ("activation_bytes", type(module).__qualname__, n_params, tuple(x.shape[1:]), x.dtype)
    if key not in ctx.cache:
        ctx.cache[key] = activation_bytes(module, x)
    per_row = ctx.cache[key] * (BACKWARD_FACTOR if backward else 1)
    device = next((p.device for p in module.parameters()), x.device)
    budget = ctx.settings.max_memory if ctx.settings.max_memory is not None else default_budget(device)
    rows = budget // per_row
    if rows < 1:
        log.warning(
            "the memory budget (%s) is under one input's %s; explaining one row at a time",
            format_size(budget),
            format_size(per_row),
        )
    return int(max(1, min(ctx.settings.internal_batch_size, rows)))


def chunks(n: int, size: int) -> Iterator[slice]:
    """Slices ``[0, size), [size, 2 size), ...`` covering ``range(n)``: the one way explanations split work."""
    size = max(1, int(size))
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))
