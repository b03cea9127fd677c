"""APGD, auto-PGD: PGD with momentum and a step size that adapts per sample, without tuning.

Croce and Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble
of diverse parameter-free attacks", ICML, https://arxiv.org/abs/2003.01690
(Algorithm 1 and Section 3). Two of AutoAttack's four attacks are APGD runs:

- **APGD-CE**: untargeted, on the cross-entropy;
- **APGD-T**: targeted, on the targeted DLR loss, once for each of the top
  ``n_target_classes`` classes of the clean logits (other than the true one).

Inputs are in the value range and normalisation happens inside the model, so
``eps`` is in input units. Every adversarial input stays in the value range and
within ``eps`` of its original (L-inf, or L2).

The algorithm, as the paper and the authors' code (``autopgd_base.py``) run it:

- start from ``x + eps * u / ||u||`` clipped to the value range, ``u`` uniform in
  ``[-1, 1]^d`` (L-inf; divided by its largest entry, so the start touches the
  boundary of the ball) or standard normal (L2, a point of the sphere);
- step size ``2 * eps`` for every sample at first;
- ``z = P(x_k + eta * s(grad))`` and ``x_{k+1} = P(x_k + a (z - x_k) + (1 - a)(x_k - x_{k-1}))``
  with momentum ``a = 0.75`` (``a = 1`` on the first step); ``s`` is the sign (L-inf) or
  the L2-normalised gradient, ``P`` the projection on the ball and the value range
  (for L2 as the official code does it: scale into the ball, then clip);
- checkpoints at fractions ``p_0 = 0``, ``p_1 = 0.22``, ``p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)``
  of the iterations (computed in whole iterations as the official code does, see
  :func:`checkpoint_windows`). At a checkpoint a sample's step size is halved, and the
  sample restarts from its best point, if (1) its loss rose in at most ``rho`` of the
  iterations since the last checkpoint, or (2) its step was not halved at the last
  checkpoint and its best loss has not improved since.

Where dlaudit differs, and why:

- *Early exit* (``early_stop=True``): a sample stops being iterated at the first
  iterate that fools the model, and that iterate is kept. APGD only ever reports
  whether a sample was fooled, so this never weakens it; it saves most of the work
  on undefended models. Only the samples still active are computed on.
- *Per-sample randomness*: the random start of sample ``i`` is drawn from its global
  index ``i`` (see :mod:`dlaudit.robust._random`), so results do not depend on the
  batch size or on which samples are still being attacked.
- *Unbroken samples*: the official code returns the clean input for a sample it did
  not fool; dlaudit returns the point of highest loss found (still inside the ball),
  which is the more useful worst case.

Kept from the official code on purpose, so that dlaudit's iterates are the official
ones bit for bit from the same start (the tests check this against ``pyautoattack``):
condition (1) tests ``<= rho * window`` (the paper writes ``<``; they differ only where
``rho * window`` is a whole number, e.g. a window of 16), and in the first window the
first iterate's loss is compared with 0, not with the start's loss (the official loss
history is read one entry before its start there, an entry still 0). That changes the
count of rises by at most one, in the first window only.

Device use: the loop runs on the inputs' device, with one host synchronisation per
iteration (whether a sample finished, the price of early exit; none with
``early_stop=False``); random starts are drawn on the CPU once per run and moved over.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ConfigError, DataError
from ...utils import model_state
from .. import _random
from ..stochastic import Keyed, MajorityVote, keyed_rows
from . import speed
from .base import AttackMethod, Batch, Perturbed, feature_mask, register_attack
from .engine import check_eps, check_inputs, check_logits

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "LOSSES",
    "NORMS",
    "apgd",
    "checkpoint_windows",
    "dlr_loss",
    "targeted_dlr_loss",
]

log = logging.getLogger(__name__)

LOSSES = ("ce", "dlr")
NORMS = ("linf", "l2")
STREAM_BASE = 0xA96D
"""Offset of APGD's random streams in :mod:`dlaudit.robust._random` (PGD uses streams 0, 1, ...)."""

LossFn = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None"], torch.Tensor]
"""``loss(logits, labels, targets) -> (N,)`` per-sample losses; APGD ascends their sum."""


# -- losses -------------------------------------------------------------------------------


def dlr_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample untargeted DLR loss, ``-(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3 + 1e-12)``.

    ``z_pi1 >= z_pi2 >= ...`` are the sorted logits (Croce and Hein 2020, eq. 5). The loss
    is invariant to shifting and scaling the logits; it needs at least 3 classes.
    """
    top = logits.topk(3, dim=1)
    z_y = logits.gather(1, y[:, None]).squeeze(1)
    z_other = torch.where(top.indices[:, 0] == y, top.values[:, 1], top.values[:, 0])
    return -(z_y - z_other) / (top.values[:, 0] - top.values[:, 2] + 1e-12)


def targeted_dlr_loss(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample targeted DLR loss, ``-(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2 + 1e-12)`` (needs 4 classes)."""
    top = logits.topk(4, dim=1).values
    z_y = logits.gather(1, y[:, None]).squeeze(1)
    z_t = logits.gather(1, target[:, None]).squeeze(1)
    return -(z_y - z_t) / (top[:, 0] - 0.5 * (top[:, 2] + top[:, 3]) + 1e-12)


def _ce(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    return F.cross_entropy(logits, y, reduction="none")


def _ce_targeted(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    return -F.cross_entropy(logits, target, reduction="none")  # type: ignore[arg-type]


def _dlr(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    return dlr_loss(logits, y)


def _dlr_targeted(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    return targeted_dlr_loss(logits, y, target)  # type: ignore[arg-type]


_LOSS_FNS: dict[tuple[str, bool], LossFn] = {
    ("ce", False): _ce,
    ("ce", True): _ce_targeted,
    ("dlr", False): _dlr,
    ("dlr", True): _dlr_targeted,
}
_MIN_CLASSES = {("ce", False): 2, ("ce", True): 2, ("dlr", False): 3, ("dlr", True): 4}


# -- the step-size schedule -------------------------------------------------------------------


def checkpoint_windows(steps: int) -> list[int]:
    """Lengths of the windows between APGD's checkpoints, in iterations, for ``steps`` iterations.

    The official code's whole-iteration reading of ``p_1 = 0.22``,
    ``p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)``: the first window is
    ``max(int(0.22 * steps), 1)`` iterations and each next one is ``max(int(0.03 * steps), 1)``
    shorter, but never shorter than ``max(int(0.06 * steps), 1)``. For 100 steps:
    22, 19, 16, 13, 10, 7, 6, 6 (checkpoints after iterations 22, 41, 57, 70, 80, 87, 93, 99).
    """
    first, shrink, shortest = max(int(0.22 * steps), 1), max(int(0.03 * steps), 1), max(int(0.06 * steps), 1)
    windows, done, k = [], 0, first
    while done + k <= steps:
        windows.append(k)
        done += k
        k = max(k - shrink, shortest)
    return windows


# -- settings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Settings:
    eps: float
    norm: str
    steps: int
    rho: float
    momentum: float
    lo: float
    hi: float
    early_stop: bool
    mask: torch.Tensor | None = None
    """The features the attack may change (one input's shape, bool); None: all."""
    eot: int = 1
    """Forward-backward passes whose losses and gradients each step averages (expectation over transformation)."""
    vote: int = 0
    """Passes of the majority vote that must confirm an iterate's success before the sample stops (0: none)."""


def _check_int(name: str, value: object, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ConfigError(f"{name} must be an integer of at least {least}, got {value!r}")
    return value


def _check_fraction(name: str, value: object, what: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0.0 <= value <= 1.0
    ):
        raise ConfigError(f"{name} ({what}) must be a number in [0, 1], got {value!r}")
    return float(value)


def _check_settings(
    *, eps: float, norm: str, loss: str, steps: int, restarts: int, n_target_classes: int, rho: float, momentum: float,
    value_range: tuple[float, float], early_stop: bool,
) -> _Settings:  # fmt: skip
    if norm not in NORMS:
        raise ConfigError(f"unknown norm {norm!r} for APGD; choose from: {', '.join(NORMS)}")
    if loss not in LOSSES:
        raise ConfigError(f"unknown loss {loss!r} for APGD; choose from: {', '.join(LOSSES)}")
    check_eps(eps)
    if isinstance(eps, torch.Tensor):
        raise ConfigError("APGD takes one eps for the whole batch (a number), not a tensor")
    _check_int("steps", steps, 1)
    _check_int("restarts", restarts, 1)
    _check_int("n_target_classes", n_target_classes, 1)
    _check_fraction("rho", rho, "the share of rising-loss iterations at or below which the step is halved")
    _check_fraction("momentum", momentum, "the weight of the new step against the last one")
    try:
        lo, hi = (float(v) for v in value_range)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"value_range must be a pair (low, high) of numbers, got {value_range!r}") from err
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ConfigError(f"value_range must be (low, high) with low < high, got {tuple(value_range)}")
    return _Settings(float(eps), norm, steps, float(rho), float(momentum), lo, hi, bool(early_stop))


def _check_index(index: torch.Tensor | None, n: int) -> torch.Tensor:
    """Global sample indices as a CPU long tensor (default ``0..n-1``)."""
    if index is None:
        return torch.arange(n)
    index = torch.as_tensor(index)
    if index.ndim != 1 or len(index) != n or index.is_floating_point() or index.dtype == torch.bool:
        raise DataError(
            f"index must be a 1-D integer tensor with one global sample index per input ({n}), got {index.dtype} of shape {tuple(index.shape)}"
        )
    index = index.detach().to("cpu", torch.long)
    if n and int(index.min()) < 0:
        raise DataError("index holds negative sample indices; give each input its position in the whole data set")
    return index


def _stream(rank: int, restart: int) -> int:
    """The random stream of one run: target rank (0 untargeted) and restart, paired one-to-one."""
    return STREAM_BASE + (rank + restart) * (rank + restart + 1) // 2 + rank


# -- one run ----------------------------------------------------------------------------------


def _view(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.view(-1, *([1] * (like.ndim - 1)))


def _start(x: torch.Tensor, s: _Settings, index: torch.Tensor, seed: int, stream: int) -> torch.Tensor:
    """The official random start, drawn per sample from its global index."""
    shape = tuple(x.shape[1:])
    if s.norm == "linf":
        u = _random.uniform_at(shape, index, seed=seed, stream=stream)
        size = u.flatten(1).abs().amax(dim=1)
    else:
        u = _random.normal_at(shape, index, seed=seed, stream=stream)
        size = _l2(u)
    u = (u / _view(size + 1e-12, u)).to(device=x.device, dtype=x.dtype)
    if s.mask is not None:
        u = u * s.mask
    return (x + s.eps * u).clamp_(s.lo, s.hi)


def _l2(v: torch.Tensor) -> torch.Tensor:
    """Per-sample L2 norms, as ``sqrt(sum(v**2))`` (the official code's rounding)."""
    return (v * v).flatten(1).sum(dim=1).sqrt()


def _l2_normalise(v: torch.Tensor) -> torch.Tensor:
    return v / _view(_l2(v) + 1e-12, v)


def _project(
    v: torch.Tensor, x: torch.Tensor, lower: torch.Tensor | None, upper: torch.Tensor | None, s: _Settings
) -> torch.Tensor:
    """Onto the eps-ball around ``x`` and the value range (L2: scale into the ball, then clip)."""
    if s.norm == "linf":
        return torch.clamp(v, lower, upper)
    d = v - x
    size = _l2(d)
    return (x + _l2_normalise(d) * _view(size.clamp(max=s.eps), d)).clamp_(s.lo, s.hi)


def _value_and_grad(
    module: nn.Module,
    xa: torch.Tensor,
    y: torch.Tensor,
    t: torch.Tensor | None,
    loss_fn: LossFn,
    *,
    first: bool = False,
    mask: torch.Tensor | None = None,
    eot: int = 1,
    keys: tuple[torch.Tensor, tuple[object, ...]] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logits, per-sample losses and the gradient of their sum w.r.t. the input (compiled when asked for),
    zero outside ``mask`` where one is given; with ``eot > 1`` each the mean over ``eot`` passes.
    ``keys`` (the rows' global indices and the call's tag) key a :class:`Keyed` model's randomness."""

    def check(logits: object) -> torch.Tensor:
        return check_logits(logits, len(xa), None)

    first = first or isinstance(module, Keyed)  # keyed randomness runs eagerly (Python per chunk)
    with keyed_rows(*keys[:1], *keys[1]) if keys is not None else contextlib.nullcontext():
        logits, loss, grad = speed.value_and_grad(module, loss_fn, xa, y, t, first=first, check=check)
        if eot > 1:
            for _ in range(eot - 1):
                more = speed.value_and_grad(module, loss_fn, xa, y, t, first=first, check=check)
                logits, loss, grad = logits + more[0], loss + more[1], grad + more[2]
            logits, loss, grad = logits / eot, loss / eot, grad / eot
    if mask is not None:
        grad = grad * mask
    return logits, loss, grad


def _succeeded(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    """Misclassified (``target`` None) or classified as the target."""
    pred = logits.argmax(dim=1)
    return pred != y if target is None else pred == target


def _confirmed(
    module: nn.Module, point: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None, hit: torch.Tensor,
    rows: torch.Tensor, votes: int,
) -> torch.Tensor:  # fmt: skip
    """``hit`` where the majority of ``votes`` passes (keyed by the samples ``rows``) agrees the iterate succeeds."""
    at = hit.nonzero().flatten()
    if votes < 1 or len(at) == 0:
        return hit
    with keyed_rows(rows[at].cpu()):
        pred = MajorityVote(module, votes)(point[at]).argmax(dim=1)
    ok = pred != y[at] if target is None else pred == target[at]
    return hit.index_put((at,), ok)


def _run(
    module: nn.Module, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None, success_target: torch.Tensor | None,
    x0: torch.Tensor, loss_fn: LossFn, s: _Settings, rows: torch.Tensor | None = None, tag: tuple[object, ...] = (),
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
    """One APGD run from ``x0``: ``(x_adv, success, loss)`` per sample.

    ``target`` feeds a targeted loss; ``success_target`` (None: any misclassification)
    is what counts as success. ``x_adv`` is the first succeeding iterate, or else the
    point of highest loss (whose loss is returned; ``-inf`` for the samples that succeeded).
    ``rows`` (the samples' global indices) and ``tag`` key a :class:`Keyed` model's passes;
    with ``s.vote`` an iterate succeeds only when the majority vote agrees, so a sample whose
    EoT-averaged logits are fooled but whose vote is not stays in the attack.
    """
    rows = torch.arange(len(x)) if rows is None else rows
    rows = rows.to(x.device)
    keyed = isinstance(module, Keyed)  # only a keyed model needs the rows on the host each step
    n = len(x)
    out_x = x0.clone()
    out_ok = torch.zeros(n, dtype=torch.bool, device=x.device)
    lower = upper = None
    if s.norm == "linf":
        lower, upper = (x - s.eps).clamp_(s.lo, s.hi), (x + s.eps).clamp_(s.lo, s.hi)
        if s.mask is not None:  # a box of width 0 pins the features the attack may not change
            lower, upper = torch.where(s.mask, lower, x), torch.where(s.mask, upper, x)
    grad_mask = s.mask if s.norm == "l2" else None  # L2 steps: the gradient normalised over the free features

    logits, loss, grad = _value_and_grad(
        module,
        x0,
        y,
        target,
        loss_fn,
        first=True,
        mask=grad_mask,
        eot=s.eot,
        keys=(rows.cpu(), (*tag, 0)) if keyed else None,
    )
    out_loss = torch.full((n,), -math.inf, device=x.device, dtype=loss.dtype)
    state: dict[str, torch.Tensor | None] = {
        "x": x, "y": y, "t": target, "st": success_target, "lower": lower, "upper": upper,
        "cur": x0, "prev": x0, "grad": grad,
        "best_x": x0, "best_grad": grad, "best_loss": loss, "best_at_check": loss,
        "prev_loss": torch.zeros_like(loss),  # the official code's first comparison is with 0 (see the module docstring)
        "step": torch.full((n,), 2.0 * s.eps, device=x.device, dtype=x.dtype),
        "rises": torch.zeros(n, dtype=torch.long, device=x.device),
        "halved_last": torch.ones(n, dtype=torch.bool, device=x.device),  # as the official code: condition 2 waits a checkpoint
        "pos": torch.arange(n, device=x.device), "rows": rows,
    }  # fmt: skip
    found = torch.zeros(n, dtype=torch.bool, device=x.device)  # early_stop=False: who succeeded already
    windows = iter(checkpoint_windows(s.steps))
    window, since = next(windows, 0), 0

    point, hit = x0, _succeeded(logits, y, success_target)  # the last evaluated iterate and whether it succeeds
    hit = _confirmed(module, point, y, success_target, hit, rows, s.vote)
    for i in range(s.steps + 1):
        if i > 0:
            st = state
            cur, prev, grad = st["cur"], st["prev"], st["grad"]
            a = s.momentum if i > 1 else 1.0
            with torch.no_grad():
                direction = grad.sign() if s.norm == "linf" else _l2_normalise(grad)
                z = _project(cur + _view(st["step"], cur) * direction, st["x"], st["lower"], st["upper"], s)
                new = _project(cur + (z - cur) * a + (cur - prev) * (1.0 - a), st["x"], st["lower"], st["upper"], s)
            keys = (st["rows"].cpu(), (*tag, i)) if keyed else None  # type: ignore[union-attr]
            logits, loss, grad = _value_and_grad(
                module, new, st["y"], st["t"], loss_fn, mask=grad_mask, eot=s.eot, keys=keys
            )
            point, hit = new, _succeeded(logits, st["y"], st["st"])
            hit = _confirmed(module, point, st["y"], st["st"], hit, st["rows"], s.vote)  # type: ignore[arg-type]
            st["prev"], st["cur"], st["grad"] = cur, new, grad
            st["rises"] = st["rises"] + (loss > st["prev_loss"])
            st["prev_loss"] = loss
            better = loss > st["best_loss"]
            st["best_loss"] = torch.where(better, loss, st["best_loss"])
            st["best_x"] = torch.where(_view(better, new), new, st["best_x"])
            st["best_grad"] = torch.where(_view(better, grad), grad, st["best_grad"])
            since += 1
            if since == window:
                _checkpoint(st, window, s.rho)
                window, since = next(windows, 0), 0
        if not s.early_stop:
            newly = hit & ~found
            out_x = torch.where(_view(newly, out_x), point, out_x)
            found |= hit
            continue
        done = hit.nonzero().flatten()
        if len(done) == 0:
            continue
        pos = state["pos"]
        out_x[pos[done]] = point[done]
        out_ok[pos[done]] = True
        if len(done) == len(pos):
            return out_x, out_ok, out_loss
        keep = (~hit).nonzero().flatten()
        state = {k: (None if v is None else v[keep]) for k, v in state.items()}
    if not s.early_stop:
        out_x = torch.where(_view(found, out_x), out_x, state["best_x"])
        out_loss = torch.where(found, out_loss, state["best_loss"])
        return out_x, found, out_loss
    pos = state["pos"]
    out_x[pos] = state["best_x"]
    out_loss[pos] = state["best_loss"]
    return out_x, out_ok, out_loss


def _checkpoint(st: dict[str, torch.Tensor | None], window: int, rho: float) -> None:
    """Halve the step of the samples that (1) rose too rarely or (2) stalled; they restart from their best point."""
    halve = (st["rises"] <= window * rho) | (~st["halved_last"] & (st["best_at_check"] >= st["best_loss"]))  # type: ignore[operator]
    st["halved_last"] = halve
    st["best_at_check"] = st["best_loss"]
    st["step"] = torch.where(halve, st["step"] / 2.0, st["step"])  # type: ignore[operator]
    st["cur"] = torch.where(_view(halve, st["cur"]), st["best_x"], st["cur"])  # type: ignore[arg-type]
    st["grad"] = torch.where(_view(halve, st["grad"]), st["best_grad"], st["grad"])  # type: ignore[arg-type]
    st["rises"] = torch.zeros_like(st["rises"])  # type: ignore[arg-type]


def _top_targets(logits: torch.Tensor, y: torch.Tensor, n: int) -> torch.Tensor:
    """``(N, n)``: per sample the ``n`` classes of highest clean logit other than its label, highest first."""
    top = logits.topk(n + 1, dim=1).indices
    keep = top != y[:, None]
    keep &= keep.cumsum(dim=1) <= n
    return top[keep].view(len(y), n)


# -- the attack -------------------------------------------------------------------------------


def apgd(
    module: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    norm: str = "linf",
    loss: str = "ce",
    targeted: bool = False,
    n_target_classes: int = 9,
    steps: int = 100,
    restarts: int = 1,
    rho: float = 0.75,
    momentum: float = 0.75,
    value_range: tuple[float, float] = (0.0, 1.0),
    seed: int = 0,
    index: torch.Tensor | None = None,
    early_stop: bool = True,
    targets: torch.Tensor | None = None,
    features: tuple[int, ...] | None = None,
    eot: int = 1,
    vote: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """APGD on one batch: auto-PGD on the cross-entropy or the DLR loss (untargeted or targeted).

    Croce and Hein 2020, https://arxiv.org/abs/2003.01690 (Algorithm 1). Distance:
    L-inf or L2. AutoAttack's APGD-CE is ``apgd(..., loss="ce")``, its APGD-T
    ``apgd(..., loss="dlr", targeted=True)`` (9 target classes, 1 restart each).

    Parameters
    ----------
    module
        ``nn.Module`` returning logits ``(N, classes)``, on the device of ``x``. It is
        run in eval mode with its parameters frozen, and left as found.
    x
        Inputs ``(N, ...)`` in ``value_range``; the attack runs on their device.
    y
        True labels ``(N,)``.
    eps
        Budget in input units, ``>= 0``.
    norm
        ``"linf"`` (sign steps) or ``"l2"`` (normalised-gradient steps).
    loss
        ``"ce"`` (cross-entropy) or ``"dlr"`` (difference of logits ratio, at least 3
        classes; 4 when targeted).
    targeted
        Ascend a targeted loss. Without ``targets`` this is APGD-T: one run for each of
        the ``n_target_classes`` classes of highest clean logit other than ``y`` (fewer
        if the model has fewer classes), each on the samples not yet fooled; success is
        any misclassification, as AutoAttack counts it.
    n_target_classes
        Target classes of APGD-T (default 9).
    steps
        Iterations per run (default 100).
    restarts
        Random restarts per run (per target class for APGD-T), each on the samples not
        yet fooled (default 1).
    rho
        A sample's step size is halved at a checkpoint when its loss rose in at most
        this share of the iterations since the last one (default 0.75).
    momentum
        Weight of the new step against the last one (default 0.75).
    value_range
        ``(low, high)`` of valid inputs (default ``(0, 1)``).
    seed
        Seeds the random starts, drawn per sample from its global index.
    index
        Global sample indices of the rows of ``x`` (default ``0..N-1``): a sample gets
        the same random start in any batch.
    early_stop
        Stop iterating a sample at its first fooling iterate and keep it (never weaker,
        faster); False runs every iteration for every sample of a run, as the official code.
    targets
        Explicit target classes ``(N,)`` with ``targeted=True``: one targeted run (per
        restart) towards them; success then means being classified as the target.
    features
        Flat indices of the input features the attack may change (default all); the
        others keep their clean values.
    eot
        Expectation over transformation for a model that is random at inference: each step
        averages the loss and gradient of ``eot`` forward-backward passes (AutoAttack's
        ``rand`` version takes 20; default 1, one pass). The random starts do not change.
    vote
        Passes of a majority vote (:class:`~dlaudit.robust.stochastic.MajorityVote`) that must
        agree an iterate fools the model before its sample stops (0, the default: the iterate's
        own logits decide). A sample whose vote is not fooled stays in the attack and ends at its
        point of highest loss. On a :class:`~dlaudit.robust.stochastic.Keyed` model every pass is
        keyed by the sample's ``index``, so the numbers do not depend on the batch.

    Returns
    -------
    tuple[torch.Tensor, torch.Tensor]
        ``x_adv`` (shape and device of ``x``): a fooling input where one was found (the
        clean input for samples misclassified already), else the input of highest loss
        found; and ``success`` ``(N,)`` bool: misclassified (or, with ``targets``,
        classified as the target) at ``x_adv``.

    Raises
    ------
    ConfigError
        An unknown loss or norm, ``steps`` or ``restarts`` below 1, a negative ``eps``,
        ``rho`` or ``momentum`` outside ``[0, 1]``, or a loss the model has too few classes for.

    Examples
    --------
    >>> x_adv, fooled = apgd(model, x, y, eps=8 / 255)  # doctest: +SKIP
    >>> x_adv, fooled = apgd(model, x, y, eps=8 / 255, loss="dlr", targeted=True)  # doctest: +SKIP
    """
    s = _check_settings(
        eps=eps, norm=norm, loss=loss, steps=steps, restarts=restarts, n_target_classes=n_target_classes, rho=rho, momentum=momentum,
        value_range=value_range, early_stop=early_stop,
    )  # fmt: skip
    if targets is not None and not targeted:
        raise ConfigError("targets were given but targeted=False; pass targeted=True to attack towards them")
    y = check_inputs(x, y, (s.lo, s.hi)).to(x.device)
    if targets is not None:
        targets = check_inputs(x, targets, (s.lo, s.hi)).to(x.device)
    idx = _check_index(index, len(x))
    if len(x) == 0:
        return x.clone(), torch.zeros(0, dtype=torch.bool, device=x.device)
    s = replace(s, mask=feature_mask(features, x), eot=_check_int("eot", eot, 1), vote=_check_int("vote", vote, 0))
    with model_state(module, train=False, grad=False):
        return _apgd(
            module,
            x.detach(),
            y,
            s,
            loss=loss,
            targeted=targeted,
            n_target_classes=n_target_classes,
            restarts=restarts,
            seed=seed,
            index=idx,
            targets=targets,
        )


def _apgd(
    module: nn.Module, x: torch.Tensor, y: torch.Tensor, s: _Settings, *, loss: str, targeted: bool, n_target_classes: int,
    restarts: int, seed: int, index: torch.Tensor, targets: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    with torch.no_grad(), keyed_rows(index, "apgd-clean"):
        clean = check_logits(module(x), len(x), None, y if targets is None else torch.cat([y, targets]))
    k = clean.shape[1]
    need = _MIN_CLASSES[(loss, targeted)]
    if k < need:
        kind = "targeted DLR" if targeted else "DLR"
        raise ConfigError(f"the {kind} loss needs at least {need} classes, but the model has {k}; use loss='ce'")
    loss_fn = _LOSS_FNS[(loss, targeted)]
    success = _confirmed(module, x, y, targets, _succeeded(clean, y, targets), index, s.vote)
    x_adv = x.clone()
    if s.eps == 0:
        return x_adv, success
    best = torch.full((len(x),), -math.inf, device=x.device, dtype=clean.dtype)
    if targeted and targets is None:
        ranked = _top_targets(clean, y, min(n_target_classes, k - 1))
        runs = [(rank + 1, ranked[:, rank]) for rank in range(ranked.shape[1])]
    else:
        runs = [(0, targets)]
    for rank, target in runs:
        for restart in range(restarts):
            todo = (~success).nonzero().flatten()
            if len(todo) == 0:
                return x_adv, success
            x0 = _start(x[todo], s, index[todo.cpu()], seed, _stream(rank, restart))
            t = None if target is None else target[todo]
            adv, ok, run_loss = _run(
                module, x[todo], y[todo], t, None if targets is None else t, x0, loss_fn, s,
                rows=index[todo.cpu()], tag=("apgd", loss, targeted, rank, restart),
            )  # fmt: skip
            take = ok | (run_loss > best[todo])
            x_adv[todo[take]] = adv[take]
            best[todo] = torch.maximum(best[todo], run_loss)
            success[todo] = ok
            log.debug(
                "APGD %s%s rank %d restart %d: %d of %d fooled",
                loss,
                "-T" if targeted else "",
                rank,
                restart,
                int(ok.sum()),
                len(todo),
            )
    return x_adv, success


# -- in the registry ----------------------------------------------------------------------------


@dataclass(frozen=True)
class APGDCE(AttackMethod):
    """APGD on the cross-entropy (AutoAttack's APGD-CE), as a registered attack: ``apgd-ce``."""

    steps: int = 100
    restarts: int = 1
    rho: float = 0.75
    momentum: float = 0.75
    early_stop: bool = True
    eot: int = 1
    vote: int = 0

    key: ClassVar[str] = "apgd-ce"
    effort: ClassVar[tuple[str, ...]] = ("steps", "restarts")
    loss: ClassVar[str] = "ce"
    targeted: ClassVar[bool] = False

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_int("steps", self.steps, 1)
        _check_int("restarts", self.restarts, 1)
        _check_int("eot", self.eot, 1)
        _check_int("vote", self.vote, 0)

    def describe(self) -> str:
        eot = f", {self.eot} EoT passes" if self.eot > 1 else ""
        return f"APGD-{self.loss.upper()} {self.norm} ({self.steps} iterations, {self.restarts} restart{'s' if self.restarts > 1 else ''}{eot})"

    def perturb(
        self, module: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: torch.Tensor, **batch: Unpack[Batch]
    ) -> Perturbed:
        extra = {"n_target_classes": min(self.n_target_classes, batch["num_classes"] - 1)} if self.targeted else {}
        return self.call_batch(
            apgd, module, x, y, eps, batch, loss=self.loss, targeted=self.targeted, steps=self.steps,
            restarts=self.restarts, rho=self.rho, momentum=self.momentum, early_stop=self.early_stop, eot=self.eot, vote=self.vote,
            **extra,
        )  # fmt: skip


@dataclass(frozen=True)
class APGDDLR(APGDCE):
    """APGD on the untargeted DLR loss (AutoAttack's ``rand`` version runs it with EoT): ``apgd-dlr``."""

    key: ClassVar[str] = "apgd-dlr"
    loss: ClassVar[str] = "dlr"


@dataclass(frozen=True)
class APGDT(APGDCE):
    """APGD on the targeted DLR loss over the top ``n_target_classes`` classes (AutoAttack's APGD-T): ``apgd-t``."""

    n_target_classes: int = 9

    key: ClassVar[str] = "apgd-t"
    loss: ClassVar[str] = "dlr"
    targeted: ClassVar[bool] = True

    def describe(self) -> str:
        return f"APGD-T {self.norm} ({self.steps} iterations, {self.n_target_classes} target classes)"


@register_attack("apgd-ce")
def make_apgd_ce(eps: float, *, norm: str = "linf", **settings: Any) -> APGDCE:
    """APGD-CE at budget ``eps`` (Croce and Hein 2020, arXiv:2003.01690)."""
    return APGDCE(eps, norm, **settings)


@register_attack("apgd-dlr")
def make_apgd_dlr(eps: float, *, norm: str = "linf", **settings: Any) -> APGDDLR:
    """APGD-DLR (untargeted) at budget ``eps`` (Croce and Hein 2020, arXiv:2003.01690)."""
    return APGDDLR(eps, norm, **settings)


@register_attack("apgd-t")
def make_apgd_t(eps: float, *, norm: str = "linf", **settings: Any) -> APGDT:
    """APGD-T at budget ``eps`` (Croce and Hein 2020, arXiv:2003.01690)."""
    return APGDT(eps, norm, **settings)
