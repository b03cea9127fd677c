"""An attack's default batch size: a fixed size, fewer for models whose activations are large.

Round 1 timed a forward+backward pass at several sizes and kept the fastest. Measured on this
project's 2-core CPU with the allocator tuned (:mod:`dlaudit._alloc`), the seed CNN's throughput
was flat from 64 to 250 inputs a batch (11,600-11,900 images/s; 9,500 at 500), so the probe could
not win back its own cost: PGD-40 on 1,000 inputs took 3.71 s with it against torchattacks' 3.45 s
at a fixed 250, and it picked 256 in one run and 512 in the next. A batch size that changes with
the machine's load also makes a run harder to reproduce (results never depend on it: random
starts are drawn per sample).

So the default is fixed: :data:`CPU_BATCH` (256) inputs on a CPU, :data:`CUDA_BATCH` (1024) on a
GPU, fewer when one batch's activations kept for the backward pass would exceed
:data:`CPU_BUDGET` (1 GiB) or a quarter of the GPU's free memory. The activations are measured,
not guessed: one forward pass of 4 inputs under ``torch.autograd.graph.saved_tensors_hooks``
counts the bytes autograd keeps (a deterministic number for a given model, input shape and
device). The seed CNN on 1x28x28 keeps 0.13 MB an input, resnet18 on 3x32x32 0.44 MB (both
get 256); an ImageNet-sized resnet50 85 MB (batch 12). The result is cached per model, input shape and
device.
"""

from __future__ import annotations

import logging
import weakref

import torch
from torch import nn

__all__ = [
    "choose_batch_size",
    "activation_bytes",
    "CPU_BATCH",
    "CUDA_BATCH",
    "CPU_BUDGET",
    "SINGLE_BATCH",
    "clear_cache",
]

log = logging.getLogger(__name__)

CPU_BATCH = 256
CUDA_BATCH = 1024
CPU_BUDGET = 1 << 30
"""Bytes of saved activations one CPU batch may keep for its backward pass."""
SINGLE_BATCH = 64
"""Up to this many inputs run as one batch without measuring."""
PROBE = 4
"""Inputs in the measuring forward pass."""

_CACHE: weakref.WeakKeyDictionary[nn.Module, dict[tuple, int]] = weakref.WeakKeyDictionary()


def clear_cache() -> None:
    """Forget every chosen batch size."""
    _CACHE.clear()


def activation_bytes(module: nn.Module, x: torch.Tensor, device: torch.device) -> int | None:
    """Bytes per input that autograd keeps for the backward pass to the input (parameters not counted).

    None when the model's output does not depend differentiably on its input (the attack says so).
    """
    xb = x[:PROBE].to(device).detach().requires_grad_(True)
    params = {p.data_ptr() for p in module.parameters()} | {b.data_ptr() for b in module.buffers()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        if isinstance(t, torch.Tensor) and t.device.type != "meta":
            try:
                ptr = t.untyped_storage().data_ptr()
                if ptr not in params and ptr != xb.data_ptr():
                    seen[ptr] = max(seen.get(ptr, 0), t.untyped_storage().nbytes())
            except (RuntimeError, NotImplementedError):  # tensors without storage (some subclasses)
                pass
        return t

    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = module(xb)
    if not isinstance(out, torch.Tensor) or not out.requires_grad:
        return None
    return max(1, (sum(seen.values()) + out.numel() * out.element_size()) // len(xb))


def choose_batch_size(module: nn.Module, x: torch.Tensor, device: torch.device) -> int:
    """The default batch size for attacking ``x`` with ``module`` on ``device`` (see the module docstring).

    Parameters
    ----------
    module
        The model, already in the mode the attack runs it in (eval, parameters frozen).
    x
        The inputs (the first few are used to measure).
    device
        Where the attack runs.
    """
    n = len(x)
    if n <= SINGLE_BATCH:
        return max(n, 1)
    key = (tuple(x.shape[1:]), str(device), x.dtype)
    cached = _CACHE.get(module, {}).get(key)
    if cached is not None:
        return min(cached, n)
    cap, budget = CPU_BATCH, CPU_BUDGET
    if device.type == "cuda":
        cap = CUDA_BATCH
        free, _ = torch.cuda.mem_get_info(device)
        budget = free // 4
    per_input = activation_bytes(module, x, device)
    if per_input is None:
        return min(n, cap)  # not differentiable: the attack itself will say so
    size = max(1, min(cap, budget // per_input))
    if size >= 16:
        size -= size % 8
    _CACHE.setdefault(module, {})[key] = size
    log.info("attack batch size %d (%.2f MB of activations an input)", size, per_input / 1e6)
    return min(size, n)
