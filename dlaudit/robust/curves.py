"""Robust accuracy against the attack budget, and the minimal adversarial budget by bisection.

A curve is the accuracy under one attack at each budget of a list. A sample
misclassified without attack counts as broken at every budget (the eps-ball holds
the input itself), so attacks run only on the correctly classified ones, and
robust accuracy never exceeds clean accuracy. Batches stream: no adversarial
input outlives its batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from ..bundle import ModelBundle
from ..errors import ConfigError
from ..utils import ProgressFn, batched_logits, model_state
from .attacks import AttackMethod, check_inputs, make_attack, resolve_model, run_attack
from .stochastic import vote_predictions

__all__ = ["Curve", "clean_predictions", "robustness_curve", "minimal_eps", "worst_case", "first_breaker"]


@dataclass(frozen=True)
class Curve:
    """Accuracy under one attack (``name``, e.g. ``pgd_linf``) at each budget in ``eps``.

    ``correct[i]`` says per sample whether it was still classified correctly at
    ``eps[i]`` (on the CPU); ``batch_size`` is the batch size the attack ran with.
    """

    name: str
    eps: tuple[float, ...]
    accuracy: tuple[float, ...]
    correct: tuple[torch.Tensor, ...] = field(repr=False)
    description: str = ""
    batch_size: int = 0

    def at(self, eps: float) -> float:
        """Accuracy at budget ``eps`` (which must be on the curve)."""
        for e, a in zip(self.eps, self.accuracy):
            if math.isclose(e, eps, rel_tol=1e-9, abs_tol=1e-12):
                return a
        raise KeyError(f"eps {eps:g} is not on the {self.name} curve ({', '.join(f'{e:g}' for e in self.eps)})")


def clean_predictions(
    model: nn.Module | ModelBundle,
    x: torch.Tensor,
    *,
    value_range: tuple[float, float] | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Predictions on the unperturbed inputs (CPU), with the model left as found."""
    module, vr, dev, _ = resolve_model(model, value_range, device)
    with model_state(module, train=False, grad=False):
        return batched_logits(module, x, device=dev).argmax(dim=1)


def robustness_curve(
    model: nn.Module | ModelBundle,
    x: torch.Tensor,
    y: torch.Tensor,
    attack: AttackMethod,
    eps: Sequence[float],
    *,
    clean_pred: torch.Tensor | None = None,
    seed: int = 0,
    value_range: tuple[float, float] | None = None,
    batch_size: int | None = None,
    device: torch.device | str | None = None,
    progress: ProgressFn | None = None,
    carry: bool = False,
) -> Curve:
    """Accuracy under ``attack`` (any registered attack; its ``eps`` replaced) at every budget in ``eps``.

    Parameters
    ----------
    attack
        The attack's settings; its own ``eps`` is ignored.
    eps
        Budgets in input units; 0 gives the clean accuracy.
    clean_pred
        Predictions on ``x`` if already computed (saves a pass).
    carry
        Budgets in increasing order attack only the samples that resisted the smaller
        budget (an input fooled within a smaller ball is fooled within a larger one):
        the same accuracies or lower, for a fraction of the work. Used for expensive
        attacks (AutoAttack); the curve then falls with eps by construction.

    Random draws are keyed by the sample's position in ``x``, so the curve does not
    depend on the batch size or on which samples are attacked together.
    """
    module, vr, dev, _ = resolve_model(model, value_range, device)
    y = check_inputs(x, y, vr)
    if clean_pred is None:
        clean_pred = clean_predictions(module, x, value_range=vr, device=dev)
    clean_ok = clean_pred.cpu() == y.cpu()
    idx = clean_ok.nonzero().flatten()
    accs, corrects, bs = [], [], 0
    order = sorted(range(len(eps)), key=lambda i: eps[i]) if carry else range(len(eps))
    by_position: dict[int, torch.Tensor] = {}
    survivors = clean_ok.clone()
    for done, i in enumerate(order):
        e = eps[i]
        correct = (survivors if carry else clean_ok).clone()
        todo = correct.nonzero().flatten() if carry else idx
        if e > 0 and len(todo):
            out = run_attack(
                model,
                x[todo],
                y[todo],
                attack.with_eps(float(e)),
                index=todo,
                seed=seed,
                value_range=vr,
                batch_size=batch_size,
                device=dev,
                keep_adv=False,
            )
            correct[todo] = ~out.success
            bs = out.batch_size
        if carry:
            survivors = correct
        by_position[i] = correct
        if progress is not None:
            progress(f"robustness:{attack.name}", done + 1, len(eps))
    for i in range(len(eps)):
        correct = by_position[i]
        accs.append(int(correct.sum()) / len(y) if len(y) else float("nan"))
        corrects.append(correct)
    return Curve(attack.name, tuple(float(e) for e in eps), tuple(accs), tuple(corrects), attack.describe(), bs)


def minimal_eps(
    model: nn.Module | ModelBundle,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    norm: str = "linf",
    eps_max: float = 0.5,
    steps: int = 20,
    iterations: int = 8,
    seed: int = 0,
    value_range: tuple[float, float] | None = None,
    batch_size: int | None = None,
    device: torch.device | str | None = None,
    progress: ProgressFn | None = None,
    features: tuple[int, ...] | None = None,
    keyed: bool = False,
) -> torch.Tensor:
    """Per sample, the smallest budget at which PGD fools the model, found by bisection.

    Each sample gets its own interval ``[0, eps_max]``; every iteration runs PGD
    with per-sample budgets at the midpoints and halves each interval. The result
    (CPU, shape ``(N,)``) is the upper end of each final interval: a budget at which
    an adversarial input was found, within ``eps_max / 2**iterations`` of the
    smallest such budget PGD finds. Samples misclassified without attack get 0;
    samples PGD does not fool at ``eps_max`` get ``inf``. ``keyed`` (a model random at inference):
    every pass keyed by the sample's position in ``x`` and judged by a keyed majority vote
    (:class:`~dlaudit.robust.stochastic.Keyed`), so the result does not depend on the batch size.
    """
    module, vr, dev, _ = resolve_model(model, value_range, device)
    y = check_inputs(x, y, vr)
    n = len(x)
    result = torch.zeros(n)
    if n == 0:
        return result
    if keyed:
        clean_ok = vote_predictions(module, x, seed=seed) == y.cpu()
    else:
        clean_ok = clean_predictions(module, x, value_range=vr, device=dev) == y.cpu()
    atk = make_attack("pgd", eps_max, steps=steps, norm=norm, features=features)
    if keyed:
        atk = replace(atk, keyed=True)
    if not eps_max > 0:
        raise ConfigError(f"eps_max must be positive, got {eps_max!r}")
    idx = clean_ok.nonzero().flatten()
    found = run_attack(
        model,
        x[idx],
        y[idx],
        atk,
        index=idx,
        seed=seed,
        value_range=vr,
        batch_size=batch_size,
        device=dev,
        keep_adv=False,
    ).success
    lo = torch.zeros(len(idx))
    hi = torch.where(found, torch.full((len(idx),), float(eps_max)), torch.full((len(idx),), math.inf))
    active = found.nonzero().flatten()
    for it in range(1, iterations + 1):
        if progress is not None:
            progress(f"robustness:min_eps_{norm}", it, iterations + 1)
        if len(active) == 0:
            continue
        mid = (lo[active] + hi[active]) / 2
        out = run_attack(
            model,
            x[idx[active]],
            y[idx[active]],
            atk,
            eps=mid,
            index=idx[active],
            seed=seed + it,
            value_range=vr,
            batch_size=batch_size,
            device=dev,
            keep_adv=False,
        )
        hi[active] = torch.where(out.success, mid, hi[active])
        lo[active] = torch.where(out.success, lo[active], mid)
    if progress is not None:
        progress(f"robustness:min_eps_{norm}", iterations + 1, iterations + 1)
    result[idx] = hi
    return result


def worst_case(curves: Sequence[Curve], n: int) -> Curve | None:
    """Per sample, the worst case over every curve of one norm: robust only if no attack fooled it.

    Budgets are those the curves share (in the first curve's order); the curve is
    ``worst_<norm>``, e.g. ``worst_linf``. None when there is no curve or no shared budget.
    """
    if not curves:
        return None
    norm = curves[0].name.rsplit("_", 1)[-1]
    shared = [
        e
        for e in curves[0].eps
        if all(any(math.isclose(e, f, rel_tol=1e-9, abs_tol=1e-12) for f in c.eps) for c in curves)
    ]
    if not shared:
        return None
    accs, corrects = [], []
    for e in shared:
        correct = None
        for c in curves:
            i = next(i for i, f in enumerate(c.eps) if math.isclose(e, f, rel_tol=1e-9, abs_tol=1e-12))
            correct = c.correct[i].clone() if correct is None else correct & c.correct[i]
        corrects.append(correct)
        accs.append(int(correct.sum()) / n if n else float("nan"))
    names = ", ".join(c.name for c in curves)
    return Curve(f"worst_{norm}", tuple(shared), tuple(accs), tuple(corrects), f"worst case per sample over {names}", 0)


def first_breaker(curves: Sequence[Curve], eps: float) -> dict[str, int]:
    """At ``eps``: how many samples each curve's attack fooled that no curve listed before it did."""
    broken = None
    out: dict[str, int] = {}
    for c in curves:
        i = next((i for i, f in enumerate(c.eps) if math.isclose(eps, f, rel_tol=1e-9, abs_tol=1e-12)), None)
        if i is None:
            continue
        fooled = ~c.correct[i]
        new = fooled if broken is None else fooled & ~broken
        out[c.name] = int(new.sum())
        broken = fooled if broken is None else broken | fooled
    return out
