"""Keep glibc's malloc from handing torch's activation buffers back to the OS.

With glibc's defaults, large tensors freed after every forward/backward step are
returned to the kernel (trimmed or unmapped) and faulted in again on the next
step; on a 2-core machine this was measured at 40% of CPU time in a PGD loop.
Raising M_TRIM_THRESHOLD, M_TOP_PAD and M_MMAP_THRESHOLD once at start-up keeps
the memory in the process. This is a no-op where the C library is not glibc, and
is skipped when ``DLAUDIT_MALLOC_TUNING=0`` is set or when the user already set
any of glibc's ``MALLOC_*`` variables (theirs win).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import platform

__all__ = ["bound_retention", "malloc_tuning_state", "tune_malloc", "unbound_retention"]

log = logging.getLogger(__name__)

# mallopt parameter numbers from glibc's malloc.h
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3

TRIM_THRESHOLD = 1 << 30  # 1 GiB
TOP_PAD = 256 << 20  # 256 MiB
MMAP_THRESHOLD = 32 << 20  # 32 MiB (glibc's maximum is 32 MiB on 64-bit)

_USER_VARS = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_THRESHOLD_")
_state = {"applied": False, "reason": "not attempted"}


def tune_malloc() -> bool:
    """Apply the allocator tuning once; return whether it is in effect."""
    if _state["reason"] != "not attempted":
        return bool(_state["applied"])
    if os.environ.get("DLAUDIT_MALLOC_TUNING", "1").strip().lower() in {"0", "false", "no", "off"}:
        _state["reason"] = "disabled by DLAUDIT_MALLOC_TUNING=0"
        return False
    if any(v in os.environ for v in _USER_VARS):
        _state["reason"] = "user set glibc MALLOC_* variables"
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        _state["reason"] = "C library is not glibc"
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError) as err:
        _state["reason"] = f"mallopt unavailable: {err}"
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = all(
        mallopt(param, value) == 1
        for param, value in (
            (_M_MMAP_THRESHOLD, MMAP_THRESHOLD),
            (_M_TRIM_THRESHOLD, TRIM_THRESHOLD),
            (_M_TOP_PAD, TOP_PAD),
        )
    )
    _state["applied"] = ok
    _state["reason"] = "applied" if ok else "mallopt refused a parameter"
    log.debug("malloc tuning: %s", _state["reason"])
    return ok


def bound_retention(budget: int) -> bool:
    """Keep what the tuning lets the process hold of freed memory within a memory budget the user gave.

    :func:`tune_malloc` lets glibc keep up to ``TRIM_THRESHOLD`` of freed memory at the top of the heap
    (and pad each growth by ``TOP_PAD``): with ``--max-memory 256M`` that retention alone would exceed the
    budget, so the process's resident memory would not follow the work. This lowers both to a quarter and
    an eighth of ``budget`` (never raises them, so the smallest budget asked for wins). A no-op where the
    tuning is not in effect (glibc's own thresholds are far smaller). Returns whether it applied.
    """
    if not _state["applied"] or budget <= 0:
        return False
    trim, pad = min(TRIM_THRESHOLD, budget // 4), min(TOP_PAD, budget // 8)
    mmap = min(MMAP_THRESHOLD, max(64 << 10, budget // 256))
    if _state.get("bound") is not None and int(_state["bound"]) <= trim:  # type: ignore[call-overload]
        return True
    ok = _set_retention(trim, pad, mmap)
    if ok:
        _state["bound"] = trim
        log.debug("malloc retention bounded to %d bytes for a memory budget of %d", trim, budget)
    return ok


def unbound_retention() -> None:
    """Undo :func:`bound_retention`: the start-up tuning's retention again (where it is in effect)."""
    if _state["applied"] and _state.pop("bound", None) is not None:
        _set_retention(TRIM_THRESHOLD, TOP_PAD, MMAP_THRESHOLD)


def _set_retention(trim: int, pad: int, mmap: int) -> bool:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt.restype = ctypes.c_int
    return all(
        libc.mallopt(p, v) == 1 for p, v in ((_M_MMAP_THRESHOLD, mmap), (_M_TRIM_THRESHOLD, trim), (_M_TOP_PAD, pad))
    )


def malloc_tuning_state() -> dict[str, object]:
    """What :func:`tune_malloc` did, for the report's provenance footer."""
    return dict(_state)
