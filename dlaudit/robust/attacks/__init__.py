"""Adversarial attacks: one module per attack on a shared engine, found by name in a registry.

- :mod:`.fgsm`, :mod:`.pgd`: FGSM and PGD (the projected-gradient family of :mod:`.engine`);
- :mod:`.apgd`: APGD-CE and APGD-T (Croce and Hein 2020);
- :mod:`.fab`: FAB-T (Croce and Hein 2020);
- :mod:`.square`: the Square Attack (Andriushchenko et al. 2020), score-based black box;
- :mod:`.autoattack`: the standard AutoAttack ensemble, worst case per sample.

``list_attacks()`` names them all; ``make_attack(name, eps, norm=..., **settings)``
builds one; :func:`run_attack` runs any of them in batches with the model left as
found. A new attack is a new module here that calls :func:`register_attack`: this
package imports every module in it.
"""

from __future__ import annotations

import importlib
import pkgutil

from .base import (
    NORMS,
    AttackMethod,
    Batch,
    Perturbed,
    get_attack,
    list_attacks,
    make_attack,
    metric_stem,
    parse_attack_name,
    register_attack,
)
from .engine import (
    ATTACK_METHODS,
    PGD_STEP_RATIO,
    Attack,
    AttackOutput,
    ascend,
    budget_problem,
    check_eps,
    check_inputs,
    check_logits,
    count_classes,
    cross_entropy,
    negative_cross_entropy,
    project,
    resolve_model,
    run_attack,
)

_INFRASTRUCTURE = {"base", "engine"}
_LOADED = False


def _load_all() -> None:
    """Import each attack module once (each registers its attacks)."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_") and info.name not in _INFRASTRUCTURE:
            importlib.import_module(f"{__name__}.{info.name}")


_load_all()

from .apgd import apgd  # noqa: E402
from .autoattack import AutoAttackResult, autoattack  # noqa: E402
from .fab import fab  # noqa: E402
from .fgsm import fgsm  # noqa: E402
from .pgd import pgd  # noqa: E402
from .square import square  # noqa: E402

__all__ = [
    "ATTACK_METHODS",
    "NORMS",
    "PGD_STEP_RATIO",
    "Attack",
    "AttackMethod",
    "AttackOutput",
    "AutoAttackResult",
    "Batch",
    "Perturbed",
    "apgd",
    "ascend",
    "autoattack",
    "budget_problem",
    "check_eps",
    "check_inputs",
    "check_logits",
    "count_classes",
    "cross_entropy",
    "fab",
    "fgsm",
    "get_attack",
    "list_attacks",
    "make_attack",
    "metric_stem",
    "negative_cross_entropy",
    "parse_attack_name",
    "pgd",
    "project",
    "register_attack",
    "resolve_model",
    "run_attack",
    "square",
]
