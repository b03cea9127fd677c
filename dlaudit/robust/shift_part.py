"""The tabular-shift part of the robustness section (see :mod:`dlaudit.robust.shift`).

Metrics ``robustness.shift.<kind>.acc@<level>`` for kind ``noise`` (Gaussian noise, a fraction
of each numeric feature's spread), ``missing`` (a rate of missing values, filled as the card's
encoder fills them), ``flip`` (a rate of categorical values changed to another category) and
``covariate`` (one numeric feature moved by a multiple of its spread; the worst feature), and
``robustness.shift.noise.worst_feature_acc@<level>`` (noise on the single numeric feature that
hurts most); a table and a finding that names that feature.
"""

from __future__ import annotations

from typing import Any

import torch

from ..bundle import ModelBundle
from ..report.model import Section, Table
from ..stats import wilson_interval
from .shift import KINDS, shift_accuracy

__all__ = ["shift_part"]

_WHAT = {
    "noise": "Gaussian noise of {level:g} x each numeric feature's spread",
    "missing": "{level:.0%} of values missing",
    "flip": "{level:.0%} of categorical values flipped to another category",
    "covariate": "one numeric feature moved by {level:g} x its spread (the worst feature)",
}


def shift_part(
    sec: Section, bundle: ModelBundle, x: torch.Tensor, y: torch.Tensor, encoder: dict[str, Any], *, seed: int
) -> None:
    """Add the shift metrics, table and finding for encoded tabular inputs ``x`` with labels ``y`` to ``sec``."""
    res = shift_accuracy(bundle.predict, x, y, encoder, seed=seed)
    n = res.n
    for kind in KINDS:
        for level, acc in res.accuracy.get(kind, {}).items():
            sec.add_metric(
                f"robustness.shift.{kind}.acc@{level:g}",
                acc,
                ci=wilson_interval(round(acc * n), n),
                description=f"accuracy with {_WHAT[kind].format(level=level)}",
                higher_is_better=True,
            )
    worst = res.worst_noise_feature
    if worst is not None:
        acc = res.feature_noise[worst]
        sec.add_metric(
            f"robustness.shift.noise.worst_feature_acc@{res.feature_level:g}",
            acc,
            ci=wilson_interval(round(acc * n), n),
            description=f"accuracy with noise of {res.feature_level:g} x its spread on the single numeric feature "
            f"that hurts most ({worst})",
            higher_is_better=True,
        )
    rows = [
        [kind, f"{level:g}", round(acc, 4), round(acc - res.clean_accuracy, 4)]
        for kind in KINDS
        for level, acc in res.accuracy.get(kind, {}).items()
    ]
    if rows:
        sec.tables.append(
            Table(
                "Accuracy under tabular distribution shift",
                ["shift", "level", "accuracy", "change"],
                rows,
                caption=f"{n} samples, clean accuracy {res.clean_accuracy:.4f}. noise: Gaussian, level x each numeric "
                "feature's standard deviation, clipped as the encoder clips; missing: a rate of values missing, a "
                "category encoded as all zeros (the encoder's unseen category)"
                + (
                    ", a number filled with the column's median (the encoder has no fill for numbers)"
                    if res.imputed
                    else ""
                )
                + "; flip: a rate of categories changed to another; covariate: one numeric feature moved by level x "
                "its spread, the worst feature. The same seed gives the same shifted inputs.",
            )
        )
    if res.feature_noise:
        sec.tables.append(
            Table(
                "Accuracy with noise on one numeric feature",
                [
                    "feature",
                    f"noise {res.feature_level:g} x spread",
                    *[f"moved {lv:g} x spread" for lv in _levels(res)],
                ],
                [
                    [name, round(acc, 4), *[round(res.covariate[name][lv], 4) for lv in _levels(res)]]
                    for name, acc in res.feature_noise.items()
                ],
                caption="Each numeric feature alone under noise, and alone moved (covariate shift).",
            )
        )
    if rows:
        lowest = min(((k, lv, a) for k in res.accuracy for lv, a in res.accuracy[k].items()), key=lambda t: t[2])
        sec.add_finding(
            "info",
            f"tabular shift: clean accuracy {res.clean_accuracy:.1%}; lowest {lowest[2]:.1%} under {lowest[0]} at "
            f"{lowest[1]:g}"
            + (f"; the feature whose noise hurts most is {worst} ({res.feature_noise[worst]:.1%})" if worst else ""),
            check="tabular-shift",
        )
    sec.params["shift"] = {"n": n, "levels": {k: list(v) for k, v in res.accuracy.items()}}


def _levels(res: Any) -> list[float]:
    first = next(iter(res.covariate.values()), {})
    return list(first)
