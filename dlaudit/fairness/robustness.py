"""Robust accuracy per group in the fairness section: does an attack hurt one group more than another?

The per-sample results and the grouping are the robustness package's
(:func:`dlaudit.robust.groups.per_sample_correct`, :func:`dlaudit.robust.groups.accuracy_by_group`),
the same rules as the robustness section's group table; this module only names the
fairness section's metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..bundle import ModelBundle
from ..data import AuditData
from ..data.groups import MIN_GROUP_SIZE, SensitiveFeature, metric_key
from ..report.model import Metric, Table
from ..robust.groups import PER_GROUP_STEPS, accuracy_by_group, per_sample_correct

__all__ = ["RobustByGroup", "robust_accuracy_by_group"]


@dataclass(frozen=True)
class RobustByGroup:
    """Robust accuracy per group (``skipped`` says why it was not computed)."""

    metrics: list[Metric] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    skipped: str = ""


def robust_accuracy_by_group(
    bundle: ModelBundle,
    data: AuditData,
    features: Sequence[SensitiveFeature],
    *,
    eps: float = 0.1,
    seed: int = 0,
    steps: int = PER_GROUP_STEPS,
    min_group_size: int = MIN_GROUP_SIZE,
) -> RobustByGroup:
    """Accuracy under PGD L-inf (budget ``eps``, ``steps`` steps) for each group of each defined feature.

    Metrics ``fairness.<feature>.robust_accuracy@<group>`` and
    ``fairness.<feature>.robust_accuracy_gap`` (over groups with at least
    ``min_group_size`` samples).
    """
    defined = [f for f in features if f.defined]
    if not defined:
        return RobustByGroup(skipped="no sensitive feature is defined")
    correct = per_sample_correct(bundle, data, eps=eps, seed=seed, steps=steps)
    metrics, tables = [], []
    for f in defined:
        key = metric_key(f.name)
        g = accuracy_by_group(correct, f, min_group_size=min_group_size)
        rows = []
        for group, n, acc in zip(g.groups, g.sizes, g.accuracy):
            note = "" if n >= min_group_size else f"too small to judge (n={n} < {min_group_size})"
            metrics.append(
                Metric(
                    f"fairness.{key}.robust_accuracy@{metric_key(group)}",
                    acc,
                    description=f"accuracy on group {group!r} under attack (eps {eps:g})",
                    note=note,
                    higher_is_better=True,
                )
            )
            rows.append([group, n, acc, note])
        metrics.append(
            Metric(
                f"fairness.{key}.robust_accuracy_gap",
                g.gap,
                description=f"largest minus smallest group accuracy under attack (eps {eps:g})",
                note="" if g.gap is not None else "undefined: fewer than two groups large enough to judge",
                higher_is_better=False,
            )
        )
        tables.append(
            Table(
                title=f"Robust accuracy by {f.name} (eps {eps:g})",
                columns=["group", "n", "robust accuracy", "note"],
                rows=rows,
                caption=f"Share of each group still classified correctly under PGD L-inf at eps {eps:g} (dlaudit.robust.groups.per_sample_correct).",
            )
        )
    return RobustByGroup(metrics=metrics, tables=tables)
