"""What this machine can hold and run: memory, CPUs and GPUs, checked before the work asks for them.

A size a user (or a file) gives, a hidden layer of 200,000 units, 10,000 workers, a data
member of 3 GiB, is checked here against what the machine has, before anything is
allocated or started, and refused with a :class:`~dlaudit.errors.DlauditError` that says
the most it can be. The numbers are read once per call (memory changes as a run goes on).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from .errors import ConfigError, DlauditError

log = logging.getLogger(__name__)

__all__ = [
    "available_memory",
    "memory_share",
    "check_memory",
    "format_bytes",
    "cpu_count",
    "gpu_count",
    "max_workers",
    "check_model_size",
    "MEMORY_SHARE",
    "TRAIN_BYTES_PER_PARAMETER",
    "AUDIT_BYTES_PER_PARAMETER",
]

MEMORY_SHARE = 0.5
"""The share of the memory available now that one request (a model, a data array) may take."""

TRAIN_BYTES_PER_PARAMETER = 16
"""float32 weights, their gradients and Adam's two moments."""

AUDIT_BYTES_PER_PARAMETER = 8
"""float32 weights and their gradients (attacks and saliency take gradients; some checks copy the model)."""


def available_memory() -> int:
    """Bytes of memory this process can still take: ``MemAvailable`` on Linux (capped by a cgroup limit),
    else the physical memory; 0 when it cannot be told (then nothing is refused on its account)."""
    candidates = [m for m in (_meminfo_available(), _cgroup_room()) if m]
    if candidates:
        return min(candidates)
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return 0


def _meminfo_available() -> int:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError, UnicodeDecodeError):
        pass
    return 0


def _cgroup_room() -> int:
    """Bytes left under a cgroup v2 memory limit (a container's), or 0 when there is none."""
    base = Path("/sys/fs/cgroup")
    try:
        limit = (base / "memory.max").read_text().strip()
        if limit == "max":
            return 0
        return max(int(limit) - int((base / "memory.current").read_text().strip()), 1)
    except (OSError, ValueError):
        return 0


def memory_share() -> int:
    """Bytes one request may take: :data:`MEMORY_SHARE` of :func:`available_memory` (0: unknown, no limit)."""
    return int(available_memory() * MEMORY_SHARE)


def format_bytes(n: float) -> str:
    """``1.5 GB``, ``300 MB``, ``12 kB`` (powers of 1000, as disk and memory sizes are quoted)."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} bytes"


def check_memory(
    needed: float, what: str, advice: str, *, error: type[DlauditError] = ConfigError, room: int | None = None
) -> None:
    """Refuse ``what`` when it needs more than :func:`memory_share` bytes.

    ``advice`` says what to do instead; ``room`` overrides the share (tests, or a caller that knows).
    """
    room = memory_share() if room is None else room
    if room and needed > room:
        raise error(
            f"{what} needs about {format_bytes(needed)} of memory, more than this machine can give it "
            f"({format_bytes(room)}, half of the {format_bytes(room / MEMORY_SHARE)} available); {advice}"
        )


def check_model_size(
    build: Callable[[], object],
    what: str,
    advice: str,
    *,
    bytes_per_parameter: int = AUDIT_BYTES_PER_PARAMETER,
    room: int | None = None,
) -> int:
    """Build ``build()`` on torch's meta device (shapes only, no memory) and refuse it when its parameters
    would not fit; returns the parameter count.

    Any module builder works this way, registered or third-party: the count is exact, not estimated.
    ``bytes_per_parameter`` is :data:`AUDIT_BYTES_PER_PARAMETER` to audit it,
    :data:`TRAIN_BYTES_PER_PARAMETER` to train it.
    """
    import torch

    if torch.get_default_device().type == "meta":  # a check inside another one's skeleton: the outer one counts
        return 0
    try:
        with torch.device("meta"):
            module = build()
    except (RuntimeError, NotImplementedError) as err:  # a builder that reads its own tensors' values: not countable
        log.debug("%s: no size check, the builder needs real tensors (%s)", what, err)
        return 0
    parameters = sum(p.numel() for p in module.parameters()) + sum(b.numel() for b in module.buffers())
    check_memory(parameters * bytes_per_parameter, f"{what} ({parameters:,} parameters)", advice, room=room)
    return parameters


def cpu_count() -> int:
    """CPUs this process may run on (its affinity mask, not the machine's total)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):
        return max(os.cpu_count() or 1, 1)


def gpu_count() -> int:
    """CUDA devices visible to this process (0 without torch's CUDA)."""
    import torch

    try:
        return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0
    except RuntimeError:
        return 0


def max_workers() -> int:
    """The most local Ray workers dlaudit starts: one per CPU this process may use (the workers run on CPUs and
    share any GPU), and never fewer than 2, so that a parallel run can be checked against one process anywhere."""
    return max(cpu_count(), 2)
