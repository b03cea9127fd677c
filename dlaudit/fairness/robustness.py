"""Robust accuracy per group: does an attack hurt one group more than another?

This is the one place the fairness section touches the robustness package. It
needs ``dlaudit.robust.per_sample_correct(bundle, data, *, eps, seed, fast)``
returning one boolean per sample (still correctly classified under the attack).
When ``dlaudit.robust`` or that function is missing, the part is skipped and the
reason is stated in the report.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..bundle import ModelBundle
from ..data import AuditData
from ..report.model import Metric, Table
from .groups import SensitiveFeature, metric_key

__all__ = ["RobustByGroup", "robust_accuracy_by_group", "ROBUST_HOOK"]

ROBUST_HOOK = ("dlaudit.robust", "per_sample_correct")
"""Module and function that give per-sample correctness under attack."""


@dataclass(frozen=True)
class RobustByGroup:
    """Robust accuracy per group (``skipped`` says why it was not computed)."""

    metrics: list[Metric] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    skipped: str = ""


def _hook() -> tuple[Callable[..., np.ndarray] | None, str]:
    module_name, fn_name = ROBUST_HOOK
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None, f"robust accuracy per group needs {module_name}, which this dlaudit build lacks"
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        return None, f"robust accuracy per group needs {module_name}.{fn_name}(bundle, data, *, eps, seed, fast), which this build lacks"
    return fn, ""


def robust_accuracy_by_group(
    bundle: ModelBundle,
    data: AuditData,
    features: Sequence[SensitiveFeature],
    *,
    eps: float = 0.1,
    seed: int = 0,
    fast: bool = False,
    min_group_size: int = 30,
) -> RobustByGroup:
    """Accuracy under attack (budget ``eps``) for each group of each defined feature.

    Metrics ``fairness.<feature>.robust_accuracy@<group>`` and
    ``fairness.<feature>.robust_accuracy_gap`` (over groups with at least
    ``min_group_size`` samples).
    """
    fn, reason = _hook()
    if fn is None:
        return RobustByGroup(skipped=reason)
    correct = np.asarray(fn(bundle, data, eps=eps, seed=seed, fast=fast), dtype=bool).ravel()
    if len(correct) != len(data):
        return RobustByGroup(skipped=f"{'.'.join(ROBUST_HOOK)} returned {len(correct)} results for {len(data)} samples")
    metrics, tables = [], []
    for f in features:
        if not f.defined:
            continue
        key = metric_key(f.name)
        rows, judged = [], []
        for group in f.levels:
            mask = (f.groups.astype(str) == group).to_numpy()
            n = int(mask.sum())
            acc = float(correct[mask].mean()) if n else None
            small = n < min_group_size
            note = f"too small to judge (n={n} < {min_group_size})" if small else ""
            metrics.append(Metric(f"fairness.{key}.robust_accuracy@{metric_key(group)}", acc, description=f"accuracy on group {group!r} under attack (eps {eps:g})", note=note, higher_is_better=True))
            rows.append([group, n, acc, note])
            if not small and acc is not None:
                judged.append(acc)
        gap = max(judged) - min(judged) if len(judged) >= 2 else None
        metrics.append(Metric(f"fairness.{key}.robust_accuracy_gap", gap, description=f"largest minus smallest group accuracy under attack (eps {eps:g})", note="" if gap is not None else "undefined: fewer than two groups large enough to judge", higher_is_better=False))
        tables.append(Table(title=f"Robust accuracy by {f.name} (eps {eps:g})", columns=["group", "n", "robust accuracy", "note"], rows=rows, caption=f"Share of each group still classified correctly under {'.'.join(ROBUST_HOOK)} at eps {eps:g}."))
    return RobustByGroup(metrics=metrics, tables=tables)
