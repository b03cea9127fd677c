"""FAB, the fast adaptive boundary attack, and its targeted version FAB-T, in plain torch.

Croce and Hein 2020, "Minimally distorted adversarial examples with a fast
adaptive boundary attack", https://arxiv.org/abs/1907.02044 (ICML 2020); FAB-T as
run by AutoAttack: Croce and Hein 2020, "Reliable evaluation of adversarial
robustness with an ensemble of diverse parameter-free attacks",
https://arxiv.org/abs/2003.01690. Distance: L-inf or L2.

FAB looks for the *smallest* perturbation that changes the decision. At each step
it linearises the decision boundary at the current iterate ``x1`` (for FAB-T the
boundary between the true class and one target class; for plain FAB the closest
of all boundaries), projects both ``x1`` and the original ``x0`` onto that
hyperplane intersected with the input box, and moves to a convex combination of
the two projections, biased towards the original (weight ``alpha <= alpha_max``)
and extrapolated by ``eta``. When an iterate is adversarial it is recorded if it is
the closest so far, and the iterate is pulled back towards ``x0`` by ``beta``.

The projection onto ``{z : w.z = b, lo <= z <= hi}`` is solved exactly (see
:func:`project_linf` and :func:`project_l2`): both are one-dimensional monotone
equations in a Lagrange multiplier whose breakpoints are sorted once, so a row
costs one sort of its ``D`` coordinates.

Defaults are AutoAttack's (``FABAttack_PT`` in the standard version): 100
iterations, ``alpha_max=0.1``, ``eta=1.05``, ``beta=0.9``, one restart (no random
start), and for FAB-T the 9 classes of highest clean logit after the true one,
each tried in turn on the samples not broken yet. Differences from the official
code, none of which changes which samples are broken:

- ``early_stop=True`` (default) stops refining a sample once it has an
  adversarial example within ``eps``. FAB minimises the perturbation, so the
  official code keeps refining to the end; success at ``eps`` is the same (a
  sample's trajectory does not depend on the others), the returned example is
  merely not the smallest FAB would find. ``early_stop=False`` runs every step.
- The box is the model card's value range, not always ``[0, 1]``.
- ``n_target_classes`` larger than ``classes - 1`` is reduced to ``classes - 1``
  (the official code fails on an index error).
- Random restarts (``restarts > 1``) draw from a counter-based generator keyed by
  the sample's global index (:mod:`dlaudit.robust._hashrand`), so results do not
  depend on the batch split; the official code draws from torch's global generator.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from ...errors import AnalysisError, ConfigError
from ...utils import model_state
from .. import _hashrand
from ._args import check_budget, check_count, check_index, check_value_range
from .base import AttackMethod, Batch, Perturbed, feature_mask, register_attack
from .engine import check_inputs, check_logits

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["fab", "fab_run", "project_linf", "project_l2", "NORMS"]

log = logging.getLogger(__name__)

NORMS = ("linf", "l2")
_RESTART_STREAM = 1_000
"""Random restarts of FAB draw from stream ``_RESTART_STREAM * target_rank + restart``."""


# -- the exact projections --------------------------------------------------------------


def project_linf(t: torch.Tensor, w: torch.Tensor, b: torch.Tensor, lo: float = 0.0, hi: float = 1.0) -> torch.Tensor:
    """Smallest L-inf step from ``t`` onto the hyperplane ``w.z = b`` inside the box ``[lo, hi]``.

    Solves, for every row, ``min ||d||_inf`` subject to ``w.(t + d) = b`` and
    ``lo <= t + d <= hi``. With ``lam`` the norm of the step, the best step moves
    every coordinate with ``w_i != 0`` by ``min(lam, room_i)`` towards the
    hyperplane (``room_i`` is the distance to the box face in that direction), so
    the violation left is piecewise linear and decreasing in ``lam``: sorting its
    breakpoints ``room_i`` gives the smallest ``lam`` in closed form. Of the many
    minimisers of an L-inf problem this returns that one (the one FAB uses).
    When the hyperplane misses the box the step goes to the box corner closest
    to it (every such coordinate to its face), as in the official code.

    Parameters
    ----------
    t
        Points, shape ``(m, D)``, inside the box.
    w, b
        Hyperplanes, shapes ``(m, D)`` and ``(m,)``.
    lo, hi
        The box.

    Returns
    -------
    torch.Tensor
        The steps ``d``, shape ``(m, D)``: ``t + d`` is the projection.
    """
    return _project(t, w, b, lo, hi, "linf")


def project_l2(t: torch.Tensor, w: torch.Tensor, b: torch.Tensor, lo: float = 0.0, hi: float = 1.0) -> torch.Tensor:
    """Euclidean projection of ``t`` onto the hyperplane ``w.z = b`` inside the box ``[lo, hi]``.

    Solves, for every row, ``min ||d||_2`` subject to ``w.(t + d) = b`` and
    ``lo <= t + d <= hi``. By the KKT conditions ``d = clip(-lam * w, lo - t, hi - t)``
    for a multiplier ``lam >= 0`` (after orienting ``w`` towards the hyperplane);
    the violation left is piecewise linear in ``lam`` with breakpoints
    ``room_i / |w_i|``, solved exactly after one sort. The minimiser is unique.
    When the hyperplane misses the box the step goes to the box corner closest
    to it, as in the official code. Shapes as in :func:`project_linf`.
    """
    return _project(t, w, b, lo, hi, "l2")


def _project(t: torch.Tensor, w: torch.Tensor, b: torch.Tensor, lo: float, hi: float, norm: str) -> torch.Tensor:
    viol = (w * t).sum(dim=1) - b
    w = torch.where((viol < 0).unsqueeze(1), -w, w)  # orient: w.z must decrease by need >= 0
    need = viol.abs()
    aw = w.abs()
    nz = aw > 0
    room = torch.where(w > 0, t - lo, hi - t).clamp_min(0.0)
    inf = torch.full_like(room, math.inf)
    if norm == "linf":
        rate, bp = aw, torch.where(nz, room, inf)  # violation removed per unit of lam; lam at which i saturates
    else:
        rate, bp = aw * aw, torch.where(nz, room / torch.where(nz, aw, torch.ones_like(aw)), inf)
    bp, order = bp.sort(dim=1)
    cap = (aw * room).gather(1, order)
    rate = rate.gather(1, order)
    done = cap.cumsum(dim=1)  # removed by the coordinates saturated up to and including k
    free = rate.flip(1).cumsum(dim=1).flip(1)  # summed rate of coordinates k.. (not saturated before bp_k)
    free_after = torch.cat([free[:, 1:], torch.zeros_like(free[:, :1])], dim=1)
    removed_at_bp = torch.where(torch.isfinite(bp), done + bp * free_after, inf)
    k = (removed_at_bp < need.unsqueeze(1)).sum(dim=1, keepdim=True)  # first breakpoint that removes enough
    feasible = k.squeeze(1) < nz.sum(dim=1)
    kc = k.clamp(max=t.shape[1] - 1)
    prev = (k - 1).clamp(min=0)
    done_prev = torch.where(k > 0, done.gather(1, prev), torch.zeros_like(need).unsqueeze(1))
    bp_prev = torch.where(k > 0, bp.gather(1, prev), torch.zeros_like(need).unsqueeze(1))
    rate_k = free.gather(1, kc)
    lam = (need.unsqueeze(1) - done_prev) / torch.where(rate_k > 0, rate_k, torch.ones_like(rate_k))
    lam = torch.minimum(torch.maximum(lam, bp_prev), bp.gather(1, kc))
    lam = torch.where(feasible.unsqueeze(1), lam, torch.full_like(lam, math.inf))
    move = torch.minimum(lam if norm == "linf" else lam * aw, room)
    return torch.where(nz, -torch.sign(w) * move, torch.zeros_like(move))


# -- the attack -------------------------------------------------------------------------


def _norms(d: torch.Tensor, norm: str) -> torch.Tensor:
    flat = d.flatten(1)
    return flat.abs().amax(dim=1) if norm == "linf" else flat.norm(dim=1)


def _view(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.view(-1, *([1] * (like.ndim - 1)))


def _hyperplane(
    module: nn.Module,
    x1: torch.Tensor,
    y: torch.Tensor,
    target: torch.Tensor | None,
    norm: str,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The linearised boundary at ``x1`` as ``(w, b)``: ``{z : w.z = b}``, ``w`` flattened.

    With ``mask`` (flat, bool) the boundary is that of the model as a function of the
    free features only (the gradient is zero on the others), so steps never move them.

    Targeted: the boundary between ``y`` and ``target``, from one backward pass of
    the logit difference (summed over the batch: samples are independent in eval
    mode). Untargeted: the closest of the boundaries between ``y`` and every other
    class (distance ``|f_k| / ||grad f_k||_dual``), from one backward per class.
    """
    with torch.enable_grad():
        xg = x1.detach().requires_grad_(True)
        logits = check_logits(module(xg), len(xg), None)
        if target is not None:
            diff = (logits.gather(1, target.unsqueeze(1)) - logits.gather(1, y.unsqueeze(1))).squeeze(1)
            _check_differentiable(diff)
            (grad,) = torch.autograd.grad(diff.sum(), xg)
            df, dg = diff.detach(), grad.flatten(1)
            if mask is not None:
                dg = dg * mask
        else:
            _check_differentiable(logits)
            k = logits.shape[1]
            jac = torch.stack(
                [torch.autograd.grad(logits[:, j].sum(), xg, retain_graph=j < k - 1)[0].flatten(1) for j in range(k)],
                dim=1,
            )  # (m, K, D)
            rows = torch.arange(len(xg), device=xg.device)
            f = logits.detach() - logits.detach()[rows, y].unsqueeze(1)
            g = jac - jac[rows, y].unsqueeze(1)
            if mask is not None:
                g = g * mask
            dual = g.abs().sum(dim=2) if norm == "linf" else g.norm(dim=2)
            dist = f.abs() / (dual + 1e-12)
            dist[rows, y] = math.inf
            best = dist.argmin(dim=1)
            df, dg = f[rows, best], g[rows, best]
    x_flat = x1.detach().flatten(1)
    return dg, (dg * x_flat).sum(dim=1) - df


def _check_differentiable(out: torch.Tensor) -> None:
    if not out.requires_grad:
        raise AnalysisError(
            "the model's output has no gradient with respect to its input (is forward() under torch.no_grad, or does it detach?); "
            "FAB needs a differentiable model"
        )


def _predict(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return module(x).argmax(dim=1)


def _random_start(
    x0: torch.Tensor,
    index: torch.Tensor,
    eps: float,
    norm: str,
    lo: float,
    hi: float,
    *,
    seed: int,
    stream: int,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """The official restart: a random point at half of ``eps`` (L-inf: on the box of radius eps/2; L2: on the sphere)."""
    dims = x0[0].numel()
    if norm == "linf":
        t = 2.0 * _hashrand.uniform(seed, stream, index, 0, dims, dtype=x0.dtype) - 1.0
        scale = t.abs().amax(dim=1, keepdim=True)
    else:
        t = _hashrand.normal(seed, stream, index, 0, dims, dtype=x0.dtype)
        scale = t.norm(dim=1, keepdim=True)
    step = (0.5 * eps) * t / scale.clamp_min(1e-12)
    if mask is not None:
        step = step * mask
    return (x0 + step.view_as(x0)).clamp(lo, hi)


def fab_run(
    module: nn.Module,
    x0: torch.Tensor,
    y: torch.Tensor,
    target: torch.Tensor | None,
    x1: torch.Tensor,
    *,
    eps: float,
    norm: str,
    steps: int,
    alpha_max: float,
    eta: float,
    beta: float,
    lo: float,
    hi: float,
    early_stop: bool,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One FAB run from ``x1`` on samples classified correctly: ``(closest adversarial, its distance)``.

    ``mask`` (flat, bool; None: all) marks the features FAB may change; ``x1`` must
    equal ``x0`` elsewhere, and every iterate does.

    The distance is ``inf`` (and the example ``x0``) where no adversarial iterate was
    found. With ``early_stop`` a sample stops once its distance is at most ``eps``
    (checking costs one device sync per iteration; without it the loop has none).
    Each iteration costs one forward and one backward pass (the linearisation at
    ``x1``) and one forward pass (is the new iterate adversarial?), as in the
    official code.
    """
    n = len(x0)
    best = x0.clone()
    res = torch.full((n,), math.inf, dtype=x0.dtype, device=x0.device)
    live = torch.arange(n, device=x0.device)
    xo, yy, tt = x0, y, target
    best_w, res_w = best.clone(), res.clone()
    for _ in range(steps):
        w, b = _hyperplane(module, x1, yy, tt, norm, mask)
        m = len(xo)
        d = _project(torch.cat([x1.flatten(1), xo.flatten(1)]), torch.cat([w, w]), torch.cat([b, b]), lo, hi, norm)
        size = _norms(d, norm).clamp_min(1e-8)
        d1, d2 = d[:m].view_as(xo), d[m:].view_as(xo)
        alpha = _view((size[:m] / (size[:m] + size[m:])).clamp(0.0, alpha_max), xo)
        x1 = ((x1 + eta * d1) * (1 - alpha) + (xo + eta * d2) * alpha).clamp(lo, hi)
        if mask is not None:  # exactly the clean values (the convex combination rounds)
            x1 = torch.where(mask.view(xo.shape[1:]), x1, xo)
        hit = _predict(module, x1) != yy
        dist = _norms(x1 - xo, norm)
        better = hit & (dist < res_w)
        res_w = torch.where(better, dist, res_w)
        best_w = torch.where(_view(better, xo), x1, best_w)
        x1 = torch.where(_view(hit, xo), xo + (x1 - xo) * beta, x1)
        if early_stop:
            stop = res_w <= eps
            if bool(stop.any()):
                best[live], res[live] = best_w, res_w
                keep = ~stop
                live, xo, x1, yy, best_w, res_w = live[keep], xo[keep], x1[keep], yy[keep], best_w[keep], res_w[keep]
                tt = None if tt is None else tt[keep]
                if len(live) == 0:
                    return best, res
    best[live], res[live] = best_w, res_w
    return best, res


def fab(
    module: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    norm: str = "linf",
    targeted: bool = True,
    n_target_classes: int = 9,
    steps: int = 100,
    restarts: int = 1,
    alpha_max: float = 0.1,
    eta: float = 1.05,
    beta: float = 0.9,
    value_range: tuple[float, float] = (0.0, 1.0),
    seed: int = 0,
    index: torch.Tensor | None = None,
    early_stop: bool = True,
    features: tuple[int, ...] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """FAB-T (default) or FAB: minimal adversarial perturbations, counted as successes within ``eps``.

    Croce and Hein 2020, https://arxiv.org/abs/1907.02044; the targeted version as
    in AutoAttack, https://arxiv.org/abs/2003.01690. Distance: L-inf or L2. One
    batch on ``x``'s device; the model is put in eval mode with its parameters
    frozen for the call and left as it was found.

    Parameters
    ----------
    module
        ``nn.Module`` returning logits ``(N, classes)``, on ``x``'s device.
    x
        Inputs ``(N, ...)`` in ``value_range``.
    y
        True labels ``(N,)``.
    eps
        The budget (``>= 0``): a sample counts as broken when FAB finds an
        adversarial example at distance at most ``eps``; also the radius of the
        random restarts (half of it, as in the official code).
    norm
        ``"linf"`` or ``"l2"``.
    targeted
        FAB-T: for ``k = 2 .. n_target_classes + 1`` attack the boundary between the
        true class and the class of ``k``-th highest clean logit, on the samples not
        broken yet. False: plain FAB (closest boundary at every step; one backward
        pass per class).
    n_target_classes
        Target classes for FAB-T (default 9; at most ``classes - 1`` are used).
    steps
        Iterations per run (default 100).
    restarts
        Runs per target class; the first starts at ``x``, later ones at a random
        point at distance ``eps / 2``.
    alpha_max, eta, beta
        Largest weight of the projection of the original (0.1), extrapolation
        (1.05), and the backward step after an adversarial iterate (0.9).
    value_range
        The box ``(low, high)`` of valid inputs.
    seed
        Seeds the random restarts (only used when ``restarts > 1``).
    index
        Global index of each sample (default ``arange(N)``): random draws are keyed
        by it, so results do not depend on the batch split.
    early_stop
        Stop refining a sample once it is broken within ``eps`` (same successes,
        fewer passes); False runs every step and returns the smallest perturbation
        found, as the official code does.
    features
        Flat indices of the input features FAB may change (default all); the others
        keep their clean values.

    Returns
    -------
    tuple[torch.Tensor, torch.Tensor]
        ``x_adv`` (same shape and device as ``x``; the clean input where the
        attack did not succeed) and ``success`` ``(N,)`` bool: the model
        misclassifies ``x_adv`` and ``||x_adv - x|| <= eps``. A sample misclassified
        to begin with is a success with ``x_adv = x``.

    Examples
    --------
    >>> x_adv, broken = fab(model, x, y, eps=8 / 255)  # doctest: +SKIP
    >>> robust_accuracy = 1 - broken.float().mean()  # doctest: +SKIP
    """
    eps, (lo, hi) = _check_args(eps=eps, norm=norm, n_target_classes=n_target_classes, steps=steps, restarts=restarts,
                                alpha_max=alpha_max, eta=eta, beta=beta, value_range=value_range)  # fmt: skip
    y = check_inputs(x, y, (lo, hi)).to(x.device)
    index = check_index(index, len(x), x.device)
    x_adv = x.detach().clone()
    if len(x) == 0:
        return x_adv, torch.zeros(0, dtype=torch.bool, device=x.device)
    mask = feature_mask(features, x)
    flat = None if mask is None else mask.flatten()
    with model_state(module, train=False, grad=False):
        with torch.no_grad():
            logits = check_logits(module(x), len(x), None, y)
        success = logits.argmax(dim=1) != y
        if targeted:
            ranks = range(2, min(int(n_target_classes), logits.shape[1] - 1) + 2)
            order = logits.sort(dim=1).indices  # ascending: -1 is the top class, -k the k-th highest
        else:
            ranks = range(1, 2)
        for rank in ranks:
            for restart in range(restarts):
                todo = (~success).nonzero().flatten()
                if len(todo) == 0:
                    return x_adv, success
                x0, yt = x[todo].detach(), y[todo]
                target = order[todo, -rank] if targeted else None
                x1 = x0.clone()
                if restart > 0:
                    x1 = _random_start(
                        x0,
                        index[todo],
                        eps,
                        norm,
                        lo,
                        hi,
                        seed=seed,
                        stream=_RESTART_STREAM * rank + restart,
                        mask=flat,
                    )
                adv, dist = fab_run(module, x0, yt, target, x1, eps=eps, norm=norm, steps=steps, alpha_max=alpha_max,
                                    eta=eta, beta=beta, lo=lo, hi=hi, early_stop=early_stop, mask=flat)  # fmt: skip
                ok = (dist <= eps) & (_predict(module, adv) != yt)
                x_adv[todo[ok]] = adv[ok]
                success[todo[ok]] = True
                if log.isEnabledFor(logging.DEBUG):  # counting syncs with the device: only when asked for
                    log.debug(
                        "FAB%s %s rank %d restart %d: %d of %d broken",
                        "-T" if targeted else "",
                        norm,
                        rank,
                        restart,
                        int(ok.sum()),
                        len(todo),
                    )
    return x_adv, success


# -- arguments --------------------------------------------------------------------------


def _check_args(
    *, eps: object, norm: str, n_target_classes: int, steps: int, restarts: int, alpha_max: float, eta: float, beta: float,
    value_range: object,
) -> tuple[float, tuple[float, float]]:  # fmt: skip
    """Check FAB's settings; return ``eps`` as a float and the box."""
    if norm not in NORMS:
        raise ConfigError(f"unknown norm {norm!r} for FAB; choose from: {', '.join(NORMS)}")
    budget = check_budget(eps)
    for name, v in (("steps", steps), ("restarts", restarts), ("n_target_classes", n_target_classes)):
        check_count(name, v)
    for name, v, ok, valid in (
        ("alpha_max", alpha_max, lambda a: 0.0 <= a <= 1.0, "in [0, 1]"),
        ("eta", eta, lambda a: a >= 1.0, "of at least 1 (the overshoot past the boundary)"),
        ("beta", beta, lambda a: 0.0 < a <= 1.0, "in (0, 1]"),
    ):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not ok(float(v)):
            raise ConfigError(f"{name} must be a number {valid}, got {v!r}")
    return budget, check_value_range(value_range)


# -- in the registry ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FABT(AttackMethod):
    """FAB-T (targeted FAB, AutoAttack's settings) as a registered attack: ``fab-t``."""

    n_target_classes: int = 9
    steps: int = 100
    restarts: int = 1
    alpha_max: float = 0.1
    eta: float = 1.05
    beta: float = 0.9

    key: ClassVar[str] = "fab-t"

    def describe(self) -> str:
        return f"FAB-T {self.norm} ({self.steps} iterations, {self.n_target_classes} target classes)"

    def perturb(
        self, module: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: torch.Tensor, **batch: Unpack[Batch]
    ) -> Perturbed:
        return self.call_batch(
            fab, module, x, y, eps, batch, targeted=True,
            n_target_classes=min(self.n_target_classes, batch["num_classes"] - 1), steps=self.steps,
            restarts=self.restarts, alpha_max=self.alpha_max, eta=self.eta, beta=self.beta,
        )  # fmt: skip


@register_attack("fab-t")
def make_fab_t(eps: float, *, norm: str = "linf", **settings: Any) -> FABT:
    """FAB-T at budget ``eps`` (Croce and Hein 2020, arXiv:1907.02044)."""
    return FABT(eps, norm, **settings)
