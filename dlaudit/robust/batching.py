"""Pick an attack's batch size by measured throughput.

On a CPU the fastest batch is often small: one forward and backward pass of the
seed CNN on MNIST-sized inputs ran at 7,200 images/s in batches of 100 but 4,400
in batches of 250 on a 2-core machine (caches, and glibc handing big buffers back
to the OS). On a GPU larger batches win. :func:`choose_batch_size` times a
forward+backward pass (after a warm-up, fastest of two) at a few sizes and keeps the fastest; the
result is cached per model, input shape and device, so a curve over many budgets
probes once. Random starts are drawn per sample, so the batch size never changes
which random numbers a sample gets.
"""

from __future__ import annotations

import logging
import time
import weakref

import torch
from torch import nn

__all__ = ["choose_batch_size", "CPU_CANDIDATES", "CUDA_CANDIDATES", "clear_cache"]

log = logging.getLogger(__name__)

CPU_CANDIDATES = (32, 64, 128, 256, 512)
CUDA_CANDIDATES = (128, 256, 512, 1024, 2048, 4096)
SINGLE_BATCH = 64
"""Up to this many inputs run as one batch without probing."""

_CACHE: weakref.WeakKeyDictionary[nn.Module, dict[tuple, int]] = weakref.WeakKeyDictionary()


def clear_cache() -> None:
    """Forget every probed batch size."""
    _CACHE.clear()


def choose_batch_size(
    module: nn.Module, x: torch.Tensor, device: torch.device, *, candidates: tuple[int, ...] | None = None
) -> int:
    """The batch size with the highest measured throughput of one forward+backward pass.

    Parameters
    ----------
    module
        The model, already in the mode the attack runs it in (eval, parameters frozen).
    x
        The inputs (the first ``max(candidates)`` are used to probe).
    device
        Where the attack runs.
    candidates
        Sizes to try, ascending; default :data:`CPU_CANDIDATES` or :data:`CUDA_CANDIDATES`.
    """
    n = len(x)
    if n <= SINGLE_BATCH:
        return max(n, 1)
    key = (tuple(x.shape[1:]), str(device), x.dtype)
    cached = _CACHE.get(module, {}).get(key)
    if cached is not None:
        return min(cached, n)
    sizes = candidates or (CUDA_CANDIDATES if device.type == "cuda" else CPU_CANDIDATES)
    sizes = tuple(s for s in sizes if s < n) + ((n,) if n <= max(sizes) else ())
    best, best_rate = sizes[0], 0.0
    for size in sizes:
        rate = _throughput(module, x[:size].to(device), device)
        if rate is None:
            return min(n, 256)  # not differentiable: the attack itself will say so
        log.debug("batch-size probe: %d inputs -> %.0f inputs/s", size, rate)
        if rate > best_rate:
            best, best_rate = size, rate
        elif rate < 0.8 * best_rate:
            break  # throughput is falling off; larger batches will not help
    _CACHE.setdefault(module, {})[key] = best
    log.info("attack batch size %d (%.0f inputs/s in the probe)", best, best_rate)
    return best


def _throughput(module: nn.Module, xb: torch.Tensor, device: torch.device, *, timed: int = 2) -> float | None:
    """Inputs per second of a forward+backward pass to the input: one warm-up pass, then the
    fastest of ``timed`` passes (noise from other work only ever slows a pass down)."""
    best = float("inf")
    for i in range(1 + timed):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        xg = xb.detach().requires_grad_(True)
        loss = module(xg).float().logsumexp(dim=1).sum()
        if not loss.requires_grad:
            return None
        torch.autograd.grad(loss, xg)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i > 0:
            best = min(best, time.perf_counter() - start)
    return len(xb) / max(best, 1e-9)
