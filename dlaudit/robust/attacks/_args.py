"""Argument checks shared by the FAB and Square attacks."""

from __future__ import annotations

import math

import torch

from ...errors import ConfigError, DataError

__all__ = ["check_budget", "check_count", "check_value_range", "check_index"]


def check_budget(eps: object) -> float:
    """``eps`` must be one finite number ``>= 0``; returned as a float."""
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps < 0:
        raise ConfigError(f"eps (the attack budget) must be a finite number >= 0, got {eps!r}")
    return float(eps)


def check_count(name: str, value: object) -> int:
    """``value`` must be an integer of at least 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be an integer of at least 1, got {value!r}")
    return int(value)


def check_value_range(value_range: object) -> tuple[float, float]:
    """``value_range`` must be two finite numbers ``(low, high)`` with ``low < high``."""
    try:
        lo, hi = (float(v) for v in value_range)  # type: ignore[union-attr]
    except (TypeError, ValueError) as err:
        raise ConfigError(
            f"value_range must be (low, high), two finite numbers with low < high, got {value_range!r}"
        ) from err
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ConfigError(f"value_range must be (low, high), two finite numbers with low < high, got {value_range!r}")
    return lo, hi


def check_index(index: torch.Tensor | None, n: int, device: torch.device) -> torch.Tensor:
    """The samples' global indices (default ``arange(n)``), int64 on ``device``."""
    if index is None:
        return torch.arange(n, device=device)
    idx = torch.as_tensor(index)
    if idx.is_floating_point() or idx.dtype == torch.bool or idx.ndim != 1 or len(idx) != n:
        raise DataError(
            f"index must be a 1-D integer tensor with one global index per input ({n}), got dtype {idx.dtype}, shape {tuple(idx.shape)}"
        )
    if n and int(idx.min()) < 0:
        raise DataError(f"index must hold global sample indices >= 0, found {int(idx.min())}")
    return idx.to(device=device, dtype=torch.int64)
