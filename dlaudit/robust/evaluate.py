"""Robust accuracy under chosen attacks and budgets: what ``dlaudit attack`` computes.

The full report section (noise, minimal budgets, masking checks, groups, figures)
is :func:`~dlaudit.robust.analysis.robustness`; this is the quick, focused run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..bundle import ModelBundle
from ..data import AuditData
from ..errors import ConfigError
from ..parsing import parse_names
from ..report.model import Finding
from ..stats import wilson_interval
from ..utils import ProgressFn
from .analysis import FEATURES, attack_features
from .attacks import NORMS, PGD_STEP_RATIO, budget_problem, check_eps, list_attacks, make_attack
from .curves import Curve, clean_predictions, robustness_curve, worst_case
from .masking import check_monotone, check_pgd_vs_fgsm, masking_findings

__all__ = ["AttackResult", "evaluate_attacks", "DEFAULT_ATTACK_EPS", "DEFAULT_ATTACK_EPS_L2"]

DEFAULT_ATTACK_EPS = (0.05, 0.1, 0.3)
DEFAULT_ATTACK_EPS_L2 = (0.5, 1.0, 2.0)


@dataclass
class AttackResult:
    """Robust accuracies by metric name, one row per (attack, eps), findings and settings."""

    metrics: dict[str, float | None]
    rows: list[dict[str, Any]]
    findings: list[Finding] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with the flat ``metrics`` object."""
        return {
            "metrics": dict(self.metrics),
            "results": [dict(r) for r in self.rows],
            "findings": [f.to_dict() for f in self.findings],
            "params": dict(self.params),
            "seconds": round(self.seconds, 3),
        }


def _settings(
    method: str, steps: int, alpha: float | None, restarts: int, early_stop: bool, version: str
) -> dict[str, Any]:
    """The options of ``dlaudit attack`` that apply to ``method``."""
    if method == "pgd":
        return {"steps": steps, "alpha": alpha, "restarts": restarts, "early_stop": early_stop}
    if method == "autoattack":
        return {"version": version}
    return {}


def evaluate_attacks(
    bundle: ModelBundle,
    data: AuditData,
    *,
    attacks: str | Sequence[str] = ("fgsm", "pgd"),
    norms: str | Sequence[str] = ("linf",),
    eps: Sequence[float] = DEFAULT_ATTACK_EPS,
    eps_l2: Sequence[float] = DEFAULT_ATTACK_EPS_L2,
    steps: int = 40,
    alpha: float | None = None,
    restarts: int = 1,
    early_stop: bool = True,
    version: str = "standard",
    batch_size: int | None = None,
    seed: int = 0,
    progress: ProgressFn | None = None,
    features: str = "all",
) -> AttackResult:
    """Accuracy of ``bundle`` on ``data`` under each attack and norm at each budget.

    ``eps`` are the L-inf budgets and ``eps_l2`` the L2 ones, in input units; ``attacks``
    are registry names (:func:`~dlaudit.robust.attacks.list_attacks`). ``steps``, ``alpha``,
    ``restarts`` and ``early_stop`` are PGD's; the other attacks use their papers' settings,
    and ``version`` is AutoAttack's (``standard`` or ``fast``). ``features="numeric"`` lets the
    attacks change only a tabular model's numeric columns (``all``: every feature). With more than one attack,
    ``robustness.worst_<norm>.acc@E`` is the worst case per sample over all of them.
    FGSM: Goodfellow et al. 2015, arXiv:1412.6572; PGD: Madry et al. 2018, arXiv:1706.06083;
    AutoAttack: Croce and Hein 2020, arXiv:2003.01690.
    """
    if features not in FEATURES:
        raise ConfigError(f"features must be one of {', '.join(FEATURES)}, got {features!r}")
    feats = attack_features(bundle, features)
    methods = parse_names(attacks, list_attacks(), "attack(s)")
    norm_list = parse_names(norms, NORMS, "norm(s)")
    for e in (*eps, *eps_l2):
        check_eps(e)
    lo, hi = bundle.card.value_range
    width, dims = hi - lo, math.prod(bundle.card.input_shape)
    if "linf" in norm_list and any(e > width for e in eps):
        raise ConfigError(
            f"L-inf budget(s) {', '.join(f'{e:g}' for e in eps if e > width)} exceed the value range [{lo:g}, {hi:g}]; "
            f"give eps from 0 to {width:g} (e.g. 0.1 for 8-bit images scaled to [0, 1])"
        )
    if "l2" in norm_list and any(e > width * math.sqrt(dims) for e in eps_l2):
        raise ConfigError(
            f"L2 budget(s) {', '.join(f'{e:g}' for e in eps_l2 if e > width * math.sqrt(dims))} exceed the diameter of the "
            f"input box ({width * math.sqrt(dims):.3g}); give smaller --eps-l2 values"
        )
    start = time.perf_counter()
    x, y = data.x, data.y
    n = len(y)
    clean_pred = clean_predictions(bundle, x)
    clean_ok = int((clean_pred == y).sum())
    metrics: dict[str, float | None] = {"robustness.clean_acc": clean_ok / n}
    rows: list[dict[str, Any]] = [
        {
            "attack": "clean",
            "norm": None,
            "eps": 0.0,
            "accuracy": clean_ok / n,
            "ci": list(wilson_interval(clean_ok, n)),
        }
    ]
    findings: list[Finding] = []
    curves: dict[str, Curve] = {}
    bs = batch_size
    for norm in norm_list:
        budgets = [float(e) for e in (eps if norm == "linf" else eps_l2)]
        for method in methods:
            atk = make_attack(
                method, 1.0, norm=norm, features=feats, **_settings(method, steps, alpha, restarts, early_stop, version)
            )
            curve = robustness_curve(
                bundle, x, y, atk, budgets, clean_pred=clean_pred, seed=seed, batch_size=batch_size, progress=progress,
                carry=atk.ensemble,
            )  # fmt: skip
            curves[curve.name] = curve
            bs = curve.batch_size or bs
            for e, a in zip(curve.eps, curve.accuracy):
                metrics[f"robustness.{curve.name}.acc@{e:g}"] = a
                rows.append(
                    {
                        "attack": curve.name,
                        "norm": norm,
                        "eps": e,
                        "accuracy": a,
                        "ci": list(wilson_interval(round(a * n), n)),
                        "settings": curve.description,
                    }
                )
        for e in budgets:
            if (why := budget_problem(e, norm, bundle.card.value_range, tuple(x.shape[1:]))) is not None:
                findings.append(Finding("warning", f"eps {e:g} was computed, but {why}", check="eps-range"))
        worst = worst_case([c for c in curves.values() if c.name.endswith(f"_{norm}")], n)
        if worst is not None and len(methods) > 1:
            curves[worst.name] = worst
            for e, a in zip(worst.eps, worst.accuracy):
                metrics[f"robustness.{worst.name}.acc@{e:g}"] = a
                rows.append(
                    {
                        "attack": worst.name,
                        "norm": norm,
                        "eps": e,
                        "accuracy": a,
                        "ci": list(wilson_interval(round(a * n), n)),
                        "settings": worst.description,
                    }
                )
    checks = [check_monotone(c, n) for c in curves.values() if not c.name.startswith("worst_")]
    if "fgsm_linf" in curves and "pgd_linf" in curves:
        checks.append(check_pgd_vs_fgsm(curves["fgsm_linf"], curves["pgd_linf"], n))
    if "fgsm_l2" in curves and "pgd_l2" in curves:
        checks.append(check_pgd_vs_fgsm(curves["fgsm_l2"], curves["pgd_l2"], n))
    findings.extend(masking_findings(checks))
    params = {
        "n": n,
        "data": data.name,
        "split": data.split,
        "attacks": methods,
        "norms": norm_list,
        "eps": list(eps),
        "eps_l2": list(eps_l2),
        "steps": steps,
        "autoattack_version": version,
        "alpha": alpha if alpha is not None else f"{PGD_STEP_RATIO:g} * eps / steps",
        "restarts": restarts,
        "random_start": True,
        "early_stop": early_stop,
        "features": features if feats is None else f"{features} (input features {', '.join(map(str, feats))})",
        "seed": seed,
        "batch_size": bs,
        "batch_size_chosen_by": "explicit" if batch_size else "default (see dlaudit.robust.batching)",
        "device": str(bundle.device),
    }
    return AttackResult(metrics, rows, findings, params, time.perf_counter() - start)
