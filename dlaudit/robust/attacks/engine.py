"""The shared attack engine, and FGSM and PGD's settings and steps, in plain torch: batched, device-aware, exact.

- FGSM, the fast gradient sign method: Goodfellow, Shlens and Szegedy 2015,
  "Explaining and harnessing adversarial examples", https://arxiv.org/abs/1412.6572
  (with ``norm="l2"`` the fast gradient method: one step along the L2-normalised gradient).
- PGD, projected gradient descent on the loss: Madry et al. 2018, "Towards deep
  learning models resistant to adversarial attacks", https://arxiv.org/abs/1706.06083

Inputs are in the model card's value range and normalisation happens inside the
model, so ``eps`` is in input units (e.g. pixel values in [0, 1]). Every adversarial
input stays in the value range and within ``eps`` of its original (L-inf or L2).

Both attacks run on one engine (:func:`run_attack`): projected gradient ascent on
the cross-entropy, on the bundle's device, batch by batch (memory is flat in the
number of inputs), with the model in eval mode, its parameters frozen (only the
input needs a gradient) and restored afterwards. With ``early_stop`` (the default
for PGD) a sample leaves the batch as soon as an iterate fools the model, and that
iterate is kept: the attack is never weaker than plain PGD's final iterate, and an
undefended model costs a fraction of the steps. Over ``restarts`` each sample keeps
its worst case: a fooling input if any restart found one, else the one of highest loss.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ... import parallel
from ...bundle import ModelBundle
from ...errors import NONFINITE_LOGITS, CardError, ConfigError, DataError, ModelOutputError
from ...utils import ProgressFn, model_state, next_device, resolve_device
from .. import _random
from ..batching import choose_batch_size
from ..stochastic import Keyed, MajorityVote, keyed_rows
from . import speed
from .base import NORMS, AttackMethod, Batch, Perturbed, check_features

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "Attack",
    "AttackOutput",
    "NORMS",
    "ATTACK_METHODS",
    "run_attack",
    "check_inputs",
    "check_logits",
    "count_classes",
    "ascend",
    "project",
    "cross_entropy",
    "negative_cross_entropy",
    "budget_problem",
    "resolve_model",
]

log = logging.getLogger(__name__)

ATTACK_METHODS = ("fgsm", "pgd")
PGD_STEP_RATIO = 2.5
"""Default PGD step size ``alpha = 2.5 * eps / steps`` (Madry et al.'s robustness library)."""

LossOnLogits = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``loss(logits, target) -> (N,)`` per-sample losses; the attack ascends their sum."""
SuccessFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# -- settings -------------------------------------------------------------------------


@dataclass(frozen=True)
class Attack(AttackMethod):
    """Settings of the projected-gradient family (FGSM and PGD), checked on construction.

    Parameters
    ----------
    eps
        The budget: largest L-inf or L2 distance from the original, in input units.
    norm
        ``"linf"`` or ``"l2"``.
    method
        ``"fgsm"`` (one step of size ``eps``, no random start) or ``"pgd"``.
    steps
        Gradient steps (1 for FGSM).
    alpha
        Step size; default ``eps`` for FGSM, ``2.5 * eps / steps`` for PGD.
    random_start
        Start PGD from a uniform point of the eps-ball (L-inf) or a random point of
        the L2 ball, as in Madry et al.
    restarts
        Independent random starts; each sample keeps its worst case.
    targeted
        Labels given to the attack are targets to reach, not labels to move away from.
    early_stop
        Stop perturbing a sample once an iterate fools the model and keep that iterate.
    keyed
        For a model random at inference: every pass is keyed by the samples' global indices
        (:class:`~dlaudit.robust.stochastic.Keyed`, one call tag per restart) and the attacked
        inputs are judged by a keyed majority vote, so the result does not depend on the batch
        size or the workers. ``early_stop`` is then ignored: a stopping decision on one random
        pass says little, and the batch must keep its rows to stay keyed.
    """

    method: str = "pgd"
    steps: int = 1
    alpha: float | None = None
    random_start: bool = False
    restarts: int = 1
    targeted: bool = False
    early_stop: bool = True
    keyed: bool = False

    per_sample_eps: ClassVar[bool] = True
    returns_pred: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if self.method not in ATTACK_METHODS:
            raise ConfigError(f"unknown attack {self.method!r}; choose from: {', '.join(ATTACK_METHODS)}")
        if self.norm not in NORMS:
            raise ConfigError(f"unknown norm {self.norm!r}; choose from: {', '.join(NORMS)}")
        check_eps(self.eps)
        check_features(self.features)
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ConfigError(f"steps must be an integer of at least 1, got {self.steps!r}")
        if isinstance(self.restarts, bool) or not isinstance(self.restarts, int) or self.restarts < 1:
            raise ConfigError(f"restarts must be an integer of at least 1, got {self.restarts!r}")
        if self.alpha is not None and not (
            isinstance(self.alpha, (int, float)) and math.isfinite(self.alpha) and self.alpha > 0
        ):
            raise ConfigError(f"alpha (the step size) must be a positive number, got {self.alpha!r}")

    @classmethod
    def fgsm(
        cls,
        eps: float,
        *,
        norm: str = "linf",
        targeted: bool = False,
        early_stop: bool = False,
        features: tuple[int, ...] | None = None,
    ) -> Attack:
        """FGSM (Goodfellow et al. 2015, arXiv:1412.6572)."""
        return cls(eps, norm, method="fgsm", steps=1, targeted=targeted, early_stop=early_stop, features=features)

    @classmethod
    def pgd(
        cls,
        eps: float,
        *,
        alpha: float | None = None,
        steps: int = 40,
        norm: str = "linf",
        random_start: bool = True,
        restarts: int = 1,
        targeted: bool = False,
        early_stop: bool = True,
        features: tuple[int, ...] | None = None,
    ) -> Attack:
        """PGD (Madry et al. 2018, arXiv:1706.06083)."""
        return cls(
            eps,
            norm,
            method="pgd",
            steps=steps,
            alpha=alpha,
            random_start=random_start,
            restarts=restarts,
            targeted=targeted,
            early_stop=early_stop,
            features=features,
        )

    @property
    def key(self) -> str:  # type: ignore[override]
        return self.method

    @property
    def effort(self) -> tuple[str, ...]:  # type: ignore[override]
        """PGD takes the robustness section's ``steps`` and ``restarts``; FGSM is one step."""
        return ("steps", "restarts") if self.method == "pgd" else ()

    @property
    def name(self) -> str:
        """The metric stem: ``fgsm_linf``, ``pgd_l2``, ..."""
        return f"{self.method}_{self.norm}"

    def step_size(self, eps: torch.Tensor) -> torch.Tensor:
        """Per-sample step size for per-sample budgets ``eps``."""
        if self.alpha is not None:
            return torch.full_like(eps, float(self.alpha))
        if self.method == "fgsm":
            return eps.clone()
        return eps * (PGD_STEP_RATIO / self.steps)

    def describe(self) -> str:
        if self.method == "fgsm":
            return f"FGSM {self.norm}"
        alpha = f"alpha {self.alpha:g}" if self.alpha is not None else f"alpha {PGD_STEP_RATIO:g}*eps/steps"
        extra = f", {self.restarts} restarts" if self.restarts > 1 else ""
        return f"PGD-{self.steps} {self.norm} ({alpha}{', random start' if self.random_start else ''}{extra})"

    def perturb(
        self, module: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: torch.Tensor, **batch: Unpack[Batch]
    ) -> Perturbed:
        return _attack_batch(module, x, y, eps, self, **batch)


def check_eps(eps: Any) -> None:
    """eps must be a finite number >= 0 (or a tensor of them)."""
    if isinstance(eps, torch.Tensor):
        if eps.numel() and (not bool(torch.isfinite(eps).all()) or bool((eps < 0).any())):
            raise ConfigError("eps must be finite and >= 0 for every sample")
        return
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps < 0:
        raise ConfigError(f"eps (the attack budget) must be a number >= 0, got {eps!r}")


def budget_problem(
    eps: float, norm: str, value_range: tuple[float, float], sample_shape: tuple[int, ...]
) -> str | None:
    """Why a budget is beyond the value range (the ball covers every input), or None."""
    lo, hi = value_range
    width = hi - lo
    if norm == "linf" and eps >= width:
        return f"L-inf eps {eps:g} is at least the whole value range [{lo:g}, {hi:g}]: any input can be reached, so accuracy there says nothing about robustness"
    dims = math.prod(sample_shape)
    if norm == "l2" and eps >= width * math.sqrt(dims):
        return f"L2 eps {eps:g} is at least the diameter of the input box ({width * math.sqrt(dims):.3g}): any input can be reached"
    return None


# -- inputs, model and outputs ------------------------------------------------------------


def resolve_model(
    model: nn.Module | ModelBundle, value_range: tuple[float, float] | None, device: str | torch.device | None
) -> tuple[nn.Module, tuple[float, float], torch.device, int | None]:
    """(module, value range, device, number of classes or None) of a module or a bundle."""
    if isinstance(model, ModelBundle):
        vr = value_range or model.card.value_range
        dev = resolve_device(device) if device is not None else model.device
        return model.module, (float(vr[0]), float(vr[1])), dev, model.card.num_classes
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model must be a torch nn.Module or a dlaudit ModelBundle, got {type(model).__name__}")
    vr = value_range or (0.0, 1.0)
    if not float(vr[0]) < float(vr[1]):
        raise ConfigError(f"value_range must be (low, high) with low < high, got {tuple(vr)}")
    dev = resolve_device(device) if device is not None else next_device(model)
    return model, (float(vr[0]), float(vr[1])), dev, None


def check_inputs(x: torch.Tensor, y: torch.Tensor, value_range: tuple[float, float]) -> torch.Tensor:
    """Check inputs and labels; return the labels as a long tensor."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise DataError(
            f"inputs must be a floating-point tensor, got {type(x).__name__ if not isinstance(x, torch.Tensor) else x.dtype}"
        )
    if x.ndim < 2:
        raise DataError(f"inputs must be batched, shape (N, ...), got shape {tuple(x.shape)}")
    y = torch.as_tensor(y)
    if y.ndim != 1 or len(y) != len(x):
        raise DataError(f"labels must be a 1-D tensor with one label per input ({len(x)}), got shape {tuple(y.shape)}")
    if y.is_floating_point() or y.dtype == torch.bool:
        raise DataError(f"labels must be integer class indices, got dtype {y.dtype}")
    if len(x) == 0:
        return y.long()
    if not bool(torch.isfinite(x).all()):
        raise DataError("inputs hold NaN or infinite values; clean them before attacking")
    lo, hi = value_range
    xmin, xmax = float(x.min()), float(x.max())
    tol = 1e-5 * max(1.0, hi - lo)
    if xmin < lo - tol or xmax > hi + tol:
        raise DataError(
            f"inputs span [{xmin:g}, {xmax:g}], outside the value range [{lo:g}, {hi:g}] the model expects; "
            "scale them to that range (normalisation belongs inside the model), or fix value_range on the model card"
        )
    if int(y.min()) < 0:
        raise DataError(f"labels must be class indices >= 0, found {int(y.min())}")
    return y.long()


def check_logits(out: Any, n: int, num_classes: int | None, labels: torch.Tensor | None = None) -> torch.Tensor:
    """The model's output must be finite logits of shape (N, classes).

    A wrong shape is a :class:`CardError` naming it; NaN or infinite logits (on the data or on
    perturbed or noisy copies of it) are a :class:`ModelOutputError` (the audit fails, exit 1).
    """
    expected = f"({n}, {num_classes if num_classes else 'classes'})"
    if not isinstance(out, torch.Tensor):
        raise CardError(
            f"the model returned a {type(out).__name__}, but attacks need logits: a tensor of shape (N, classes), here {expected}; "
            "make forward() return the logits tensor (wrap a model that returns a dict or tuple)"
        )
    if out.ndim != 2 or out.shape[0] != n or out.shape[1] < 2:
        raise CardError(
            f"for {n} input(s) the model returned a tensor of shape {tuple(out.shape)}, but attacks need logits of shape (N, classes), here {expected}; "
            "return one row of class scores per input (not probabilities of one class, not a flat vector)"
        )
    if num_classes is not None and out.shape[1] != num_classes:
        raise CardError(
            f"the model returned {out.shape[1]} logits per input, but its card says num_classes={num_classes}; fix the card"
        )
    bad = int((~out.detach().isfinite()).any(dim=1).sum())
    if bad:
        raise ModelOutputError(
            NONFINITE_LOGITS.format(
                bad=bad,
                n=n,
                what="inputs in one batch (the data, or perturbed or noisy copies of it)",
                consequence="no accuracy, attack or certificate computed from them would mean anything",
            )
        )
    if labels is not None and len(labels) and int(labels.max()) >= out.shape[1]:
        raise DataError(
            f"labels go up to {int(labels.max())}, but the model has only {out.shape[1]} classes (0..{out.shape[1] - 1})"
        )
    return out


def count_classes(module: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device, known: int | None) -> int:
    """The model's number of classes, from one forward pass; checks the output shape and the labels."""
    probe = x[:2].to(device)
    with torch.no_grad():
        out = module(probe)
    out = check_logits(out, len(probe), known)
    check_logits(out, len(probe), out.shape[1], y)
    return int(out.shape[1])


# -- the engine ------------------------------------------------------------------------


def cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample cross-entropy: the loss untargeted PGD ascends."""
    return F.cross_entropy(logits, target, reduction="none")


def negative_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample negative cross-entropy: a targeted attack ascends it (descends towards the target)."""
    return -F.cross_entropy(logits, target, reduction="none")


def _misclassified(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return logits.argmax(dim=1) != target


def _reached(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return logits.argmax(dim=1) == target


def _view(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.view(-1, *([1] * (like.ndim - 1)))


def project(x_adv: torch.Tensor, x: torch.Tensor, eps: torch.Tensor, norm: str, lo: float, hi: float) -> torch.Tensor:
    """Project ``x_adv`` onto the eps-ball around ``x`` (per-sample ``eps``) and the value range."""
    if norm == "linf":
        e = _view(eps, x)
        return torch.maximum(torch.minimum(x_adv, x + e), x - e).clamp_(lo, hi)
    delta = x_adv - x
    norms = delta.flatten(1).norm(dim=1)
    factor = torch.where(norms > eps, eps / norms.clamp_min(1e-12), torch.ones_like(norms))
    return (x + delta * _view(factor, x)).clamp_(lo, hi)


_SAMPLE_STEPS: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("dlaudit_sample_steps", default=None)


@contextlib.contextmanager
def counting_steps() -> Iterator[list[int]]:
    """Count what :func:`ascend` does inside: the list it yields holds, once the block ends, the gradient steps (one
    per sample still attacked at each iteration) and the iterations (one per step on a batch). The time-budget probe
    prices early stopping with them."""
    seen: list[int] = [0, 0]
    token = _SAMPLE_STEPS.set(seen)
    try:
        yield seen
    finally:
        _SAMPLE_STEPS.reset(token)


def ascend(
    module: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    x_adv: torch.Tensor,
    *,
    eps: torch.Tensor,
    alpha: torch.Tensor,
    steps: int,
    norm: str,
    value_range: tuple[float, float],
    loss_fn: LossOnLogits = cross_entropy,
    success: SuccessFn | None = None,
    num_classes: int | None = None,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``steps`` steps of projected gradient ascent on ``loss_fn(module(x_adv), target)``.

    ``x_adv`` (inside the ball and the value range) is the start; it is modified.
    ``mask`` (one input's shape, bool) limits the ascent to the features it marks; the
    start must already equal ``x`` elsewhere.
    With ``success`` (early stopping), a sample whose current iterate succeeds is
    taken out of the batch and that iterate kept. Returns ``(x_adv, pred, done)``:
    the adversarial inputs, the prediction on the kept iterate of the samples
    that succeeded early (``-1`` elsewhere), and which samples those are.
    """
    lo, hi = value_range
    n = len(x)
    pred = torch.full((n,), -1, dtype=torch.long, device=x.device)
    done = torch.zeros(n, dtype=torch.bool, device=x.device)
    out = x_adv
    idx = None  # positions of the active samples in ``out``; None while all are active
    xo, tgt, e, a = x, target, _view(eps, x), _view(alpha, x)
    lower = upper = None
    if norm == "linf":
        lower, upper = (x - e).clamp_(lo, hi), (x + e).clamp_(lo, hi)
        if mask is not None:  # a box of width 0 pins the other features: no cost per step
            lower, upper = torch.where(mask, lower, x), torch.where(mask, upper, x)
    grad_mask = mask if norm == "l2" else None  # L2 steps normalise the gradient over the free features only
    xa = x_adv

    def check(logits: Any) -> torch.Tensor:
        return check_logits(logits, len(xa), num_classes)

    eager = isinstance(module, Keyed)  # keyed randomness runs eagerly (Python per chunk), never compiled
    counted = _SAMPLE_STEPS.get()
    for step in range(steps):
        if counted is not None:
            counted[0] += len(xa)
            counted[1] += 1
        logits, _, grad = speed.value_and_grad(module, loss_fn, xa, tgt, first=step == 0 or eager, check=check)
        xa = xa.detach()
        if grad_mask is not None:
            grad = grad * grad_mask
        if success is not None:
            hit = success(logits, tgt)
            if bool(hit.any()):
                pos = torch.arange(n, device=x.device) if idx is None else idx
                out[pos[hit]] = xa[hit]
                pred[pos[hit]] = logits[hit].argmax(dim=1)
                done[pos[hit]] = True
                keep = ~hit
                if not bool(keep.any()):
                    return out, pred, done
                idx = pos[keep]
                xa, grad, xo, tgt, e, a = xa[keep], grad[keep], xo[keep], tgt[keep], e[keep], a[keep]
                if lower is not None:
                    lower, upper = lower[keep], upper[keep]
        xa = _step(xa, grad, xo, e, a, lower, upper, norm, lo, hi)
    if idx is None:
        return xa, pred, done
    out[idx] = xa
    return out, pred, done


def _step(
    xa: torch.Tensor,
    grad: torch.Tensor,
    x: torch.Tensor,
    eps: torch.Tensor,
    alpha: torch.Tensor,
    lower: torch.Tensor | None,
    upper: torch.Tensor | None,
    norm: str,
    lo: float,
    hi: float,
) -> torch.Tensor:
    if norm == "linf":
        xa.addcmul_(grad.sign_(), alpha)
        return xa.clamp_(lower, upper)
    gnorm = grad.flatten(1).norm(dim=1).clamp_min(1e-12)
    xa.addcmul_(grad, alpha / _view(gnorm, grad))
    return project(xa, x, eps.flatten(), "l2", lo, hi)


def _start(
    x: torch.Tensor,
    eps: torch.Tensor,
    attack: Attack,
    lo: float,
    hi: float,
    *,
    index: torch.Tensor,
    seed: int,
    restart: int,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """The first iterate: ``x`` itself, or a random point of the eps-ball (in the value range), drawn
    for each sample from its global index (on the features of ``mask`` only, where given)."""
    if not attack.random_start:
        return x.clone()
    shape = tuple(x.shape[1:])
    if attack.norm == "linf":
        noise = _random.uniform_at(shape, index, seed=seed, stream=restart)
    else:
        noise = _random.l2_ball_at(shape, index, seed=seed, stream=restart)
    noise = noise.to(device=x.device, dtype=x.dtype)
    if mask is not None:
        noise = noise * mask
    return (x + noise * _view(eps, x)).clamp_(lo, hi)


def _attack_batch(
    module: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: torch.Tensor,
    attack: Attack,
    *,
    value_range: tuple[float, float],
    index: torch.Tensor,
    seed: int,
    num_classes: int | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One batch: (x_adv, prediction on x_adv, success) with each sample's worst case over restarts."""
    lo, hi = value_range
    alpha = attack.step_size(eps)
    loss_fn: LossOnLogits = negative_cross_entropy if attack.targeted else cross_entropy
    success_fn: SuccessFn = _reached if attack.targeted else _misclassified
    best = x.clone()
    best_pred = torch.full((len(x),), -1, dtype=torch.long, device=x.device)
    best_ok = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    best_loss = torch.full((len(x),), -math.inf, device=x.device)
    mask = attack.feature_mask(x)
    todo = None  # indices still without a success; None means all
    keyed = attack.keyed
    if keyed:  # a stochastic model: passes keyed by the samples, no early stop, judged by a keyed vote
        module = Keyed(module, seed)
    for restart in range(attack.restarts):
        xs, ys, es, als = (x, y, eps, alpha) if todo is None else (x[todo], y[todo], eps[todo], alpha[todo])
        x0 = _start(x, eps, attack, lo, hi, index=index, seed=seed, restart=restart, mask=mask)
        x0 = x0 if todo is None else x0[todo]
        rows = index.cpu() if todo is None else index.cpu()[todo.cpu()]
        with keyed_rows(rows, attack.method, restart) if keyed else contextlib.nullcontext():
            adv, pred, done = ascend(
                module,
                xs,
                ys,
                x0,
                eps=es,
                alpha=als,
                steps=attack.steps,
                norm=attack.norm,
                value_range=value_range,
                loss_fn=loss_fn,
                success=success_fn if attack.early_stop and not keyed else None,
                num_classes=num_classes,
                mask=mask,
            )
        ok, loss = done.clone(), torch.full((len(xs),), -math.inf, device=x.device)
        rest = ~done
        if bool(rest.any()):
            if keyed:  # the verdict of a keyed majority vote (vote counts stand in for logits below)
                with keyed_rows(rows[rest.cpu()]), torch.no_grad():
                    logits = check_logits(MajorityVote(module)(adv[rest]), int(rest.sum()), num_classes)
            else:
                with torch.inference_mode():
                    logits = check_logits(module(adv[rest]), int(rest.sum()), num_classes)
            pred[rest] = logits.argmax(dim=1)
            ok[rest] = success_fn(logits, ys[rest])
            if attack.restarts > 1:
                loss[rest] = loss_fn(logits, ys[rest])
        pos = torch.arange(len(x), device=x.device) if todo is None else todo
        better = ok | (~best_ok[pos] & (loss > best_loss[pos]))
        if restart == 0:
            better = torch.ones_like(ok)
        take = pos[better]
        best[take], best_pred[take], best_ok[take], best_loss[take] = (
            adv[better],
            pred[better],
            ok[better],
            loss[better],
        )
        todo = (~best_ok).nonzero().flatten()
        if len(todo) == 0:
            break
    return best, best_pred, best_ok


@dataclass(frozen=True)
class AttackOutput:
    """What :func:`run_attack` found, on the CPU except ``x_adv`` (on the inputs' device).

    ``pred`` is the model's prediction on each adversarial input; ``success``
    whether it is misclassified (untargeted) or classified as the target (targeted).
    """

    attack: AttackMethod
    pred: torch.Tensor
    success: torch.Tensor
    x_adv: torch.Tensor | None
    batch_size: int

    def accuracy(self, labels: torch.Tensor) -> float:
        """Share of adversarial inputs still classified as ``labels``."""
        if len(self.pred) == 0:
            return float("nan")
        return int((self.pred == torch.as_tensor(labels).cpu()).sum()) / len(self.pred)


def run_attack(
    model: nn.Module | ModelBundle,
    x: torch.Tensor,
    y: torch.Tensor,
    attack: AttackMethod,
    *,
    eps: torch.Tensor | None = None,
    index: torch.Tensor | None = None,
    value_range: tuple[float, float] | None = None,
    seed: int = 0,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    keep_adv: bool = True,
    progress: ProgressFn | None = None,
) -> AttackOutput:
    """Run ``attack`` (any registered attack) on ``x`` (labels or targets ``y``) in batches: the shared engine.

    Parameters
    ----------
    model
        An ``nn.Module`` returning logits, or a :class:`~dlaudit.ModelBundle` (its
        card gives the value range, the device and the number of classes). It runs in
        eval mode with frozen parameters and is left as found.
    eps
        Per-sample budgets (shape ``(N,)``), overriding ``attack.eps`` (attacks with
        ``per_sample_eps`` only).
    index
        The samples' global indices (default ``0..N-1``): every random draw of the
        attack is keyed by them, so a sample's result does not depend on the batch
        size, on which other samples are attacked with it, or on how the work is sharded.
    batch_size
        Inputs per batch; None takes the default, 256 on a CPU, fewer for large activations
        (see :func:`~dlaudit.robust.batching.choose_batch_size`).
    keep_adv
        Return the adversarial inputs; False keeps only predictions (flat memory).
    """
    module, vr, dev, k = resolve_model(model, value_range, device)
    y = check_inputs(x, y, vr)
    n = len(x)
    eps_all = _eps_vector(attack.eps if eps is None else eps, n)
    if not attack.per_sample_eps and n and bool((eps_all != eps_all[0]).any()):
        raise ConfigError(f"{attack.key} takes one budget for every sample, not per-sample eps")
    idx_all = torch.arange(n) if index is None else torch.as_tensor(index).long().cpu()
    if len(idx_all) != n:
        raise ConfigError(f"index has {len(idx_all)} entries for {n} inputs")
    if n == 0:
        return AttackOutput(
            attack,
            torch.empty(0, dtype=torch.long),
            torch.empty(0, dtype=torch.bool),
            x.clone() if keep_adv else None,
            0,
        )
    if batch_size is not None and (isinstance(batch_size, bool) or int(batch_size) < 1):
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    stage = f"attack:{attack.name}"
    ex = parallel.current()
    if ex.shards_work and isinstance(model, ModelBundle):
        with model_state(module, train=False, grad=False):
            count_classes(module, x, y, dev, k)
            bs = int(batch_size) if batch_size else choose_batch_size(module, x, dev)
        if ranges := parallel.plan_shards(n, align=bs, executor=ex):
            return _sharded(model, x, y, attack, eps_all, idx_all, ranges, vr, seed, bs, keep_adv, stage, progress)
    preds, oks, advs = [], [], []
    with model_state(module, train=False, grad=False), speed.layout(module, x):
        k = count_classes(module, x, y, dev, k)
        bs = int(batch_size) if batch_size else choose_batch_size(module, x, dev)
        for s in range(0, n, bs):
            xb = x[s : s + bs].to(dev, non_blocking=True)
            yb = y[s : s + bs].to(dev, non_blocking=True)
            eb = eps_all[s : s + bs].to(device=dev, dtype=xb.dtype)
            adv, pred, ok = attack.perturb(
                module, xb, yb, eb, index=idx_all[s : s + bs], seed=seed, value_range=vr, num_classes=k
            )
            if (mask := attack.feature_mask(xb)) is not None:
                adv, pred, ok = _pinned(module, attack, xb, yb, adv, pred, ok, mask, k)
            if pred is None:
                with torch.inference_mode():
                    pred = check_logits(module(adv), len(adv), k).argmax(dim=1)
            preds.append(pred.cpu())
            oks.append(ok.cpu())
            if keep_adv:
                advs.append(adv.to(x.device))
            if progress is not None:
                progress(stage, min(s + bs, n), n)
    return AttackOutput(attack, torch.cat(preds), torch.cat(oks), torch.cat(advs) if keep_adv else None, bs)


def _pinned(
    module: nn.Module,
    attack: AttackMethod,
    x: torch.Tensor,
    y: torch.Tensor,
    adv: torch.Tensor,
    pred: torch.Tensor | None,
    ok: torch.Tensor,
    mask: torch.Tensor,
    num_classes: int,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """The engine's check of ``attack.features``: features outside ``mask`` back at their clean values.

    Every attack keeps them there itself; should one not, the prediction and success are
    measured again on the corrected inputs, so a reported number never rests on a change
    the user excluded.
    """
    fixed = torch.where(mask, adv, x)
    if bool(torch.equal(fixed, adv)):
        return adv, pred, ok
    log.warning(
        "%s changed features outside attack.features; they were reset and the inputs classified again", attack.key
    )
    with torch.inference_mode():
        pred = check_logits(module(fixed), len(fixed), num_classes).argmax(dim=1)
    targets = isinstance(attack, Attack) and attack.targeted
    return fixed, pred, (pred == y) if targets else (pred != y)


def _sharded(
    bundle: ModelBundle,
    x: torch.Tensor,
    y: torch.Tensor,
    attack: AttackMethod,
    eps: torch.Tensor,
    index: torch.Tensor,
    ranges: list[tuple[int, int]],
    value_range: tuple[float, float],
    seed: int,
    batch_size: int,
    keep_adv: bool,
    stage: str,
    progress: ProgressFn | None,
) -> AttackOutput:
    """run_attack over shards of samples (on Ray, or in-process with a checkpoint); the same result as one run."""
    outs = parallel.map_samples(
        attack_shard,
        bundle,
        ranges,
        lambda a, b: {"attack": attack, "x": x[a:b].cpu(), "y": y[a:b].cpu(), "eps": eps[a:b], "index": index[a:b],
                      "seed": seed, "value_range": value_range, "batch_size": batch_size, "keep_adv": keep_adv},
        key=lambda p: ("attack", repr(attack), seed, value_range, batch_size, keep_adv, p["x"], p["y"], p["eps"], p["index"]),
        rows=("pred", "success", *(("x_adv",) if keep_adv else ())),
        row_shapes={"x_adv": tuple(x.shape[1:])},
        stage=stage,
        progress=progress,
    )  # fmt: skip
    x_adv = parallel.cat(outs, "x_adv").to(x.device) if keep_adv else None
    return AttackOutput(attack, parallel.cat(outs, "pred"), parallel.cat(outs, "success"), x_adv, batch_size)


def attack_shard(bundle: ModelBundle, p: dict[str, Any]) -> dict[str, torch.Tensor]:
    """One shard of :func:`run_attack` (on a worker): plain tensors back, so checkpoints load with weights_only."""
    with parallel.local():
        out = run_attack(
            bundle, p["x"], p["y"], p["attack"], eps=p["eps"], index=p["index"], seed=p["seed"], value_range=p["value_range"],
            batch_size=p["batch_size"], keep_adv=p["keep_adv"],
        )  # fmt: skip
    result = {"pred": out.pred, "success": out.success}
    if out.x_adv is not None:
        result["x_adv"] = out.x_adv.cpu()
    return result


def _eps_vector(eps: float | torch.Tensor, n: int) -> torch.Tensor:
    check_eps(eps)
    if isinstance(eps, torch.Tensor):
        v = eps.detach().to(device="cpu", dtype=torch.float32).flatten()
        if v.numel() == 1:
            return v.expand(n).clone()
        if len(v) != n:
            raise ConfigError(f"per-sample eps has {len(v)} values for {n} inputs")
        return v
    return torch.full((n,), float(eps))
