"""Small helpers shared across dlaudit: devices, seeds, batching, atomic writes."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import nn

from .errors import ConfigError
from .paths import atomic_write

__all__ = [
    "resolve_device",
    "seed_everything",
    "batched_logits",
    "atomic_write",
    "model_state",
    "eval_mode",
    "next_device",
    "ProgressFn",
]

ProgressFn = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: how library code reports progress."""

_DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` means CUDA when available, else CPU; ``"cuda:1"`` etc. pass through."""
    if isinstance(device, torch.device):
        return device
    name = (device or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.split(":")[0] not in _DEVICES[1:]:
        raise ConfigError(f"unknown device {device!r}; use one of: auto, cpu, cuda (or cuda:N)")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} was asked for but CUDA is not available here; use --device cpu or auto")
    return torch.device(name)


MAX_SEED = 2**32 - 1
"""Seeds are 0 .. 2**32 - 1: what NumPy, torch and Python all accept."""


def check_seed(seed: object) -> int:
    """``seed`` as an int in 0 .. :data:`MAX_SEED`, or a :class:`ConfigError`."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"seed must be a whole number from 0 to {MAX_SEED}, got {seed!r}")
    return seed


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a CPU generator seeded the same."""
    check_seed(seed)
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def batched_logits(
    module: nn.Module, x: torch.Tensor, *, batch_size: int = 512, device: torch.device | None = None
) -> torch.Tensor:
    """Logits of ``module`` on ``x`` in batches, without gradients, returned on the CPU."""
    device = device or next_device(module)
    outs = []
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            outs.append(module(x[start : start + batch_size].to(device)).float().cpu())
    if not outs:
        return torch.empty(0)
    return torch.cat(outs)


def next_device(module: nn.Module) -> torch.device:
    """The device of a module's first parameter or buffer (CPU when it has none)."""
    for t in module.parameters():
        return t.device
    for t in module.buffers():
        return t.device
    return torch.device("cpu")


@contextlib.contextmanager
def model_state(module: nn.Module, *, train: bool = False, grad: bool = False) -> Iterator[nn.Module]:
    """Run with ``module`` in a given mode; restore training mode and ``requires_grad`` after.

    Analyses leave the model as they found it (STYLE.md rule 4).
    """
    was_training = module.training
    flags = [(p, p.requires_grad) for p in module.parameters()]
    module.train(train)
    for p, _ in flags:
        p.requires_grad_(grad)
    try:
        yield module
    finally:
        module.train(was_training)
        for p, flag in flags:
            p.requires_grad_(flag)
            if not grad:
                continue
            p.grad = None


@contextlib.contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Run with ``module`` (and every submodule) in eval mode; restore each one's mode after."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for m, mode in modes:
            m.training = mode
