"""Square Attack: a score-based black-box attack by random search, in plain torch.

Andriushchenko, Croce, Flammarion and Hein 2020, "Square Attack: a query-efficient
black-box adversarial attack via random search", https://arxiv.org/abs/1912.00049
(ECCV 2020); the fourth attack of AutoAttack, https://arxiv.org/abs/2003.01690.
Distance: L-inf or L2.

Only the model's logits are used (no gradients: every pass runs under
``torch.inference_mode()``), so gradient masking does not fool it. Starting from
vertical stripes of ``+-eps`` (L-inf) or a grid of signed L2 "bumps" (L2), each
iteration changes one random square window of side ``s`` per sample: L-inf sets it
to ``x +- eps`` (one sign per channel), L2 moves perturbation mass from a second
random window into the first, keeping the total norm at ``eps``. The candidate is
kept when it lowers the margin loss ``logit_y - max_{k != y} logit_k``; a sample
leaves the batch as soon as its margin is ``<= 0``, so every query is spent on
samples not fooled yet. The window's area is ``p * H * W`` with ``p`` halved on the
paper's piecewise schedule (at 10, 50, 200, 500, 1000, 2000, 4000, 6000 and 8000
of 10,000 iterations, rescaled to ``queries``), starting at ``p_init``.

Defaults are AutoAttack's: 5,000 iterations (each one query per active sample,
plus one query for the starting point, as in the official code), ``p_init=0.8``,
margin loss, one restart. Differences from the official code:

- Random draws are per sample: each active sample gets its own window positions,
  signs (and, for L2, orientation of the window pattern) at every iteration, as
  in the paper's reference implementation, keyed by the sample's global index
  (:mod:`dlaudit.robust._hashrand`) so results do not depend on the batch split.
  AutoAttack's PyTorch code shares one window and one set of signs across the
  batch per iteration, which couples samples to the batch they are in.
- A window's corner is uniform over all ``H - s + 1`` positions; the official code
  draws from ``0 .. H - s - 1`` (a half-open range), so a square never touches the
  last row or column unless it spans the image. On small images that matters: on
  8x8 digits with 300 queries the official range leaves 8 to 12 points more robust
  accuracy; on 28x28 digits the difference is within the run-to-run noise (see
  ``official_range``, which reproduces it, and ``bench/fab_square.py``).
- The box is the model card's value range, not always ``[0, 1]``.
- Inputs of shape ``(N, H, W)`` are treated as one channel and tabular inputs
  ``(N, D)`` as ``1 x D`` images (windows of one row).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from ...errors import ConfigError, DataError
from ...utils import model_state
from .. import _hashrand
from ._args import check_budget, check_count, check_index, check_value_range
from .base import AttackMethod, Batch, Perturbed, feature_mask, register_attack
from .engine import check_inputs, check_logits

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["square", "margin", "p_schedule", "window_pattern", "NORMS"]

log = logging.getLogger(__name__)

NORMS = ("linf", "l2")
_SCHEDULE = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)
"""Iterations (of 10,000) after which the square's area fraction ``p`` halves (the paper's schedule)."""
_STREAMS = 16
"""Random streams per restart: ``_STREAMS * restart + kind``, kinds below."""
_INIT_SIGNS, _INIT_FLIPS, _POSITIONS, _SIGNS, _FLIPS = range(5)


def p_schedule(i: int, queries: int, p_init: float) -> float:
    """The fraction of the image a square covers at iteration ``i`` (0-based) of ``queries``.

    The paper's schedule for 10,000 iterations, rescaled to ``queries``, as in the
    official code: ``p_init`` halves after iterations 10, 50, 200, 500, 1000, 2000,
    4000, 6000 and 8000.
    """
    it = int(i / queries * 10000)
    return p_init / 2 ** sum(it > t for t in _SCHEDULE)


def margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``logit_y - max_{k != y} logit_k`` per sample: at most 0 when ``y`` is not the sole top class."""
    true = logits.gather(1, y.unsqueeze(1)).squeeze(1)
    others = logits.scatter(1, y.unsqueeze(1), -math.inf).amax(dim=1)
    return true - others


def _rectangles(a: int, b: int) -> torch.Tensor:
    """Concentric rectangles of weight ``1 / (k + 1)**2`` around the centre of an ``a x b`` window, unit L2 norm."""
    if a == 0:
        return torch.zeros(0, b, dtype=torch.float64)
    rows = (torch.arange(a) - a // 2).abs().view(-1, 1)
    cols = (torch.arange(b) - b // 2).abs().view(1, -1)
    ring = torch.maximum(rows, cols)  # which rectangles cover the cell: rings ring .. top
    top = max(a // 2, b // 2) + 1
    weights = 1.0 / torch.arange(1, top + 1, dtype=torch.float64) ** 2
    tail = weights.flip(0).cumsum(0).flip(0)  # tail[k] = sum of weights k..top-1
    delta = tail[ring]
    return delta / delta.norm()


@lru_cache(maxsize=64)
def _pattern(s: int) -> torch.Tensor:
    top = _rectangles(s // 2, s)
    bottom = -_rectangles(s - s // 2, s)
    whole = torch.cat([top, bottom], dim=0)
    return whole / whole.norm()


def window_pattern(s: int, *, device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The L2 window update of side ``s``: positive rectangles above, negative below, unit L2 norm.

    The official code's ``eta(s)`` before its random transposition; shape ``(s, s)``.
    """
    return _pattern(int(s)).to(device=device, dtype=dtype)


def _windows(corner: torch.Tensor, s: int, size: int) -> torch.Tensor:
    """``(m, size)`` bool: positions ``corner .. corner + s - 1`` along one axis."""
    pos = torch.arange(size, device=corner.device)
    return (pos >= corner.unsqueeze(1)) & (pos < (corner + s).unsqueeze(1))


def _window_mask(vh: torch.Tensor, vw: torch.Tensor, s: int, h: int, w: int) -> torch.Tensor:
    return (_windows(vh, s, h).unsqueeze(2) & _windows(vw, s, w).unsqueeze(1)).unsqueeze(1)  # (m, 1, h, w)


def _place(tiles: torch.Tensor, vh: torch.Tensor, vw: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Per-sample ``(m, s, s)`` tiles placed with their corners at ``(vh, vw)`` in ``(m, 1, h, w)`` zeros."""
    m, s = tiles.shape[0], tiles.shape[1]
    li = torch.arange(h, device=tiles.device).unsqueeze(0) - vh.unsqueeze(1)  # (m, h)
    lj = torch.arange(w, device=tiles.device).unsqueeze(0) - vw.unsqueeze(1)  # (m, w)
    inside = ((li >= 0) & (li < s)).unsqueeze(2) & ((lj >= 0) & (lj < s)).unsqueeze(1)
    rows = torch.arange(m, device=tiles.device).view(-1, 1, 1)
    vals = tiles[rows, li.clamp(0, s - 1).unsqueeze(2), lj.clamp(0, s - 1).unsqueeze(1)]
    return torch.where(inside, vals, torch.zeros_like(vals)).unsqueeze(1)


def _l2_normalise(d: torch.Tensor) -> torch.Tensor:
    return d / (d.flatten(1).norm(dim=1).view(-1, 1, 1, 1) + 1e-12)


def _side(p: float, c: int, h: int, w: int, norm: str) -> int:
    """The square's side for area fraction ``p``, as in the official code."""
    s = int(round(math.sqrt(p * (c * h * w) / c)))
    if norm == "linf":
        return min(max(s, 1), h, w)
    s = max(s, 3)
    s += s % 2 == 0  # odd, so the pattern has a centre row
    return min(s, h, w)


# -- starting points ------------------------------------------------------------------------


def _init_linf(
    x: torch.Tensor, index: torch.Tensor, eps: float, lo: float, hi: float, seed: int, stream: int,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:  # fmt: skip
    """Vertical stripes: one sign per (channel, column), ``x +- eps`` (on the features of ``mask``)."""
    n, c, _, w = x.shape
    sgn = _hashrand.signs(seed, stream + _INIT_SIGNS, index, 0, c * w, dtype=x.dtype).view(n, c, 1, w)
    out = (x + eps * sgn).clamp(lo, hi)
    return out if mask is None else torch.where(mask, out, x)


def _init_l2(
    x: torch.Tensor, index: torch.Tensor, eps: float, lo: float, hi: float, seed: int, stream: int,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:  # fmt: skip
    """The official L2 start: a grid of ``H // 5``-sized windows, each the L2 pattern with a random sign per channel."""
    n, c, h, w = x.shape
    s = max(h // 5, 1)
    start = max((h - 5 * s) // 2, 0)  # the official code offsets rows and columns by the same (row-based) margin
    nbh, nbw = h // s, w // s
    rows = torch.arange(h, device=x.device) - start
    cols = torch.arange(w, device=x.device) - start
    bi, bj = rows.div(s, rounding_mode="floor"), cols.div(s, rounding_mode="floor")
    inside = ((rows >= 0) & (bi < nbh)).view(-1, 1) & ((cols >= 0) & (bj < nbw)).view(1, -1)  # (h, w)
    block = (bi.clamp(0, nbh - 1).view(-1, 1) * nbw + bj.clamp(0, nbw - 1).view(1, -1)).flatten()  # (h*w,)
    li, lj = rows.remainder(s).view(-1, 1).expand(h, w).flatten(), cols.remainder(s).view(1, -1).expand(h, w).flatten()
    tile = window_pattern(s, device=x.device, dtype=x.dtype)
    n_blocks = nbh * nbw
    flip = _hashrand.signs(seed, stream + _INIT_FLIPS, index, 0, n_blocks) > 0  # (n, blocks): transpose the tile
    flip_px = flip[:, block]  # (n, h*w)
    vals = torch.where(flip_px, tile[lj, li].unsqueeze(0), tile[li, lj].unsqueeze(0))  # (n, h*w)
    sgn = _hashrand.signs(seed, stream + _INIT_SIGNS, index, 0, c * n_blocks, dtype=x.dtype).view(n, c, n_blocks)
    delta = vals.unsqueeze(1) * sgn[:, :, block]  # (n, c, h*w)
    delta = (delta * inside.flatten().to(x.dtype)).view(n, c, h, w)
    if mask is not None:  # the budget goes to the free features only
        delta = delta * mask
    return (x + _l2_normalise(delta) * eps).clamp(lo, hi)


# -- one candidate per sample ----------------------------------------------------------------


class _Draws:
    """Every iteration's random numbers for the samples still active, drawn a block of iterations at a time.

    Iteration ``it``'s window corners, signs and (L2) transpositions of sample ``i`` are the words
    ``(seed, stream + kind, index[i], it, column)`` (:mod:`dlaudit.robust._hashrand`), exactly as one
    call per iteration would draw them; drawing ``block`` iterations in one call per kind makes the
    generator's cost per iteration a few slices instead of a few dozen tensor operations (on small
    models it was most of Square's time). A sample that leaves the batch leaves the block with it.
    """

    _ELEMENTS = 1 << 18
    """Words one block may hold (per kind); the block has at most 64 iterations."""

    def __init__(
        self, idx: torch.Tensor, *, norm: str, c: int, h: int, w: int, queries: int, p_init: float, seed: int,
        stream: int, official_range: bool, dtype: torch.dtype,
    ) -> None:  # fmt: skip
        self.idx, self.norm, self.c, self.h, self.w = idx, norm, c, h, w
        self.queries, self.p_init, self.seed, self.stream = queries, p_init, seed, stream
        self.official_range, self.dtype = official_range, dtype
        self.count = 1 if norm == "linf" else 2  # windows per candidate
        self.first = self.stop = 0
        self.block: list[torch.Tensor] = []

    def side(self, it: int) -> int:
        return _side(p_schedule(it, self.queries, self.p_init), self.c, self.h, self.w, self.norm)

    def _refill(self, it: int) -> None:
        per_sample = 2 * self.count + self.c + (self.norm == "l2")
        size = max(1, min(64, self._ELEMENTS // max(1, len(self.idx) * per_sample), self.queries - it))
        h, w = self.h, self.w
        spans = []
        for j in range(it, it + size):
            s = self.side(j)
            spans.append(
                ([max(h - s, 1), max(w - s, 1)] if self.official_range else [h - s + 1, w - s + 1]) * self.count
            )
        seed, stream, idx = self.seed, self.stream, self.idx
        corners = _hashrand.as_integers(
            _hashrand.word_block(seed, stream + _POSITIONS, idx, it, size, 2 * self.count), 0, torch.tensor(spans)
        )
        signs = _hashrand.as_signs(_hashrand.word_block(seed, stream + _SIGNS, idx, it, size, self.c), dtype=self.dtype)
        self.block = [corners, signs]
        if self.norm == "l2":
            self.block.append(_hashrand.word_block(seed, stream + _FLIPS, idx, it, size, 1).squeeze(2) < 0)
        self.first, self.stop = it, it + size

    def at(self, it: int) -> list[torch.Tensor]:
        """Iteration ``it``'s ``[corners (m, 2 * count), signs (m, c), (L2) transpose (m,) bool]``."""
        if not self.first <= it < self.stop:
            self._refill(it)
        return [part[:, it - self.first] for part in self.block]

    def keep(self, keep: torch.Tensor) -> None:
        """Only the samples ``keep`` marks stay active."""
        self.idx = self.idx[keep]
        self.block = [part[keep] for part in self.block]


def _candidate_linf(
    xc: torch.Tensor, best: torch.Tensor, drawn: list[torch.Tensor], s: int, eps: float, lo: float, hi: float,
    features: torch.Tensor | None = None,
) -> torch.Tensor:  # fmt: skip
    m, c, h, w = xc.shape
    corner, sgn = drawn[0], drawn[1].view(m, c, 1, 1)
    mask = _window_mask(corner[:, 0], corner[:, 1], s, h, w)
    if features is not None:
        mask = mask & features
    return torch.where(mask, (xc + eps * sgn).clamp(lo, hi), best)


def _candidate_l2(
    xc: torch.Tensor, best: torch.Tensor, drawn: list[torch.Tensor], s: int, eps: float, lo: float, hi: float,
    features: torch.Tensor | None = None,
) -> torch.Tensor:  # fmt: skip
    m, c, h, w = xc.shape
    delta = best - xc
    corner, sgn, flip = drawn[0], drawn[1].view(m, c, 1, 1), drawn[2]
    into = _window_mask(corner[:, 0], corner[:, 1], s, h, w)  # the window that receives the new mass
    out_of = _window_mask(corner[:, 2], corner[:, 3], s, h, w)  # the window whose mass moves
    sq = (delta * delta).sum(dim=(-2, -1), keepdim=True)
    norm_into = ((delta * into) ** 2).sum(dim=(-2, -1), keepdim=True).sqrt()  # (m, c, 1, 1)
    norm_both = ((delta * (into | out_of)) ** 2).sum(dim=(-2, -1), keepdim=True).sqrt()
    norm_all = sq.sum(dim=1, keepdim=True).sqrt()  # (m, 1, 1, 1)
    tile = window_pattern(s, device=xc.device, dtype=xc.dtype)
    tiles = torch.where(flip.view(-1, 1, 1), tile.T, tile)  # the official random transposition, per sample
    new = _place(tiles, corner[:, 0], corner[:, 1], h, w) * sgn + delta * into / (1e-12 + norm_into)
    new_norm = (new * new).sum(dim=(-2, -1), keepdim=True).sqrt()
    budget = ((eps**2 - norm_all**2).clamp_min(0.0) / c + norm_both**2).sqrt()
    new = new / (1e-12 + new_norm) * budget
    delta = torch.where(into, new, torch.where(out_of, torch.zeros_like(delta), delta))
    if features is not None:  # the budget goes to the free features only
        delta = delta * features
    return (xc + _l2_normalise(delta) * eps).clamp(lo, hi)


# -- the search ------------------------------------------------------------------------------


def _run(
    module: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    index: torch.Tensor,
    *,
    eps: float,
    norm: str,
    queries: int,
    p_init: float,
    lo: float,
    hi: float,
    seed: int,
    stream: int,
    shape: tuple[int, ...],
    official_range: bool,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One restart on 4-D inputs ``x``: ``(best point, its margin)`` per sample; ``mask`` (one input as
    ``(C, H, W)``, bool) marks the features it may change."""
    _, c, h, w = x.shape

    def margin_of(z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return margin(module(z.view(-1, *shape)), labels)

    init = _init_linf if norm == "linf" else _init_l2
    candidate = _candidate_linf if norm == "linf" else _candidate_l2
    best_all = init(x, index, eps, lo, hi, seed, stream, mask)
    marg_all = margin_of(best_all, y)
    live = (marg_all > 0).nonzero().flatten()
    xc, best, yc, marg = x[live], best_all[live], y[live], marg_all[live]
    draws = _Draws(index[live], norm=norm, c=c, h=h, w=w, queries=queries, p_init=p_init, seed=seed, stream=stream,
                   official_range=official_range, dtype=x.dtype)  # fmt: skip
    for it in range(queries):
        if len(live) == 0:
            break
        new = candidate(xc, best, draws.at(it), draws.side(it), eps, lo, hi, mask)
        m_new = margin_of(new, yc)
        take = (m_new < marg) | (m_new <= 0)
        marg = torch.where(take, m_new, marg)
        best = torch.where(take.view(-1, 1, 1, 1), new, best)
        fooled = marg <= 0
        if bool(fooled.any()):
            best_all[live[fooled]], marg_all[live[fooled]] = best[fooled], marg[fooled]
            keep = ~fooled
            live, xc, best, yc, marg = live[keep], xc[keep], best[keep], yc[keep], marg[keep]
            draws.keep(keep)
    best_all[live], marg_all[live] = best, marg
    return best_all, marg_all


def square(
    module: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    norm: str = "linf",
    queries: int = 5000,
    p_init: float = 0.8,
    restarts: int = 1,
    value_range: tuple[float, float] = (0.0, 1.0),
    seed: int = 0,
    index: torch.Tensor | None = None,
    official_range: bool = False,
    features: tuple[int, ...] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Square Attack: random search on the margin loss, forward passes only.

    Andriushchenko et al. 2020, https://arxiv.org/abs/1912.00049; as in AutoAttack,
    https://arxiv.org/abs/2003.01690. Distance: L-inf or L2. One batch on ``x``'s
    device; the model is put in eval mode with its parameters frozen for the call
    and left as it was found.

    Parameters
    ----------
    module
        ``nn.Module`` returning logits ``(N, classes)``, on ``x``'s device.
    x
        Inputs ``(N, C, H, W)`` (or ``(N, H, W)``, or ``(N, D)`` as ``1 x D``
        images) in ``value_range``.
    y
        True labels ``(N,)``.
    eps
        The budget (``>= 0``), L-inf or L2, in input units.
    norm
        ``"linf"`` or ``"l2"``.
    queries
        Iterations per restart (default 5,000): one model query per sample still
        robust, plus one for the starting point.
    p_init
        Initial fraction of the image a square covers, in ``(0, 1]`` (default 0.8).
    restarts
        Independent runs on the samples not fooled yet (default 1).
    value_range
        The box ``(low, high)`` of valid inputs.
    seed
        Seeds every random draw.
    index
        Global index of each sample (default ``arange(N)``): draws are keyed by
        ``(seed, restart, index, iteration)``, so results do not depend on the batch
        size or on which other samples are still active.
    official_range
        Draw window corners from ``0 .. H - s - 1`` as the official code does (for
        comparisons with it), instead of from all ``H - s + 1`` positions. On 8x8
        digits the official range leaves the last row and column out of every
        one-pixel square and lets 8 to 12 points more robust accuracy through.
    features
        Flat indices of the input features the attack may change (default all); the
        others keep their clean values, and squares change only the free features.

    Returns
    -------
    tuple[torch.Tensor, torch.Tensor]
        ``x_adv`` (same shape and device as ``x``; the clean input where the
        attack did not succeed) and ``success`` ``(N,)`` bool: the model
        misclassifies ``x_adv``, which is within ``eps`` of ``x`` and in the box.
        A sample misclassified to begin with is a success with ``x_adv = x``.

    Examples
    --------
    >>> x_adv, fooled = square(model, x, y, eps=0.3, queries=1000)  # doctest: +SKIP
    """
    eps, (lo, hi) = _check_args(
        eps=eps, norm=norm, queries=queries, p_init=p_init, restarts=restarts, value_range=value_range
    )
    y = check_inputs(x, y, (lo, hi)).to(x.device)
    index = check_index(index, len(x), x.device)
    shape = tuple(x.shape[1:])
    x4 = _as_images(x)
    mask = feature_mask(features, x)
    mask4 = None if mask is None else _as_images(mask.unsqueeze(0))
    x_adv = x.detach().clone()
    success = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    if len(x) == 0:
        return x_adv, success
    with model_state(module, train=False, grad=False), torch.inference_mode():
        logits = check_logits(module(x), len(x), None, y)
        success = logits.argmax(dim=1) != y
        flat_adv = x_adv.view(len(x), -1)
        for restart in range(restarts):
            todo = (~success).nonzero().flatten()
            if len(todo) == 0:
                break
            best, marg = _run(module, x4[todo], y[todo], index[todo], eps=eps, norm=norm, queries=queries, p_init=p_init,
                              lo=lo, hi=hi, seed=seed, stream=_STREAMS * restart, shape=shape, official_range=official_range,
                              mask=mask4)  # fmt: skip
            cand = (marg <= 0).nonzero().flatten()
            if len(cand):
                ok = module(best[cand].view(-1, *shape)).argmax(dim=1) != y[todo[cand]]
                hit = todo[cand[ok]]
                flat_adv[hit] = best[cand[ok]].flatten(1)
                success[hit] = True
            if log.isEnabledFor(logging.DEBUG):  # counting syncs with the device: only when asked for
                log.debug("Square %s restart %d: %d of %d fooled", norm, restart, int(success[todo].sum()), len(todo))
    return x_adv, success.clone()  # a normal tensor (one made under inference_mode cannot enter autograd later)


def _as_images(x: torch.Tensor) -> torch.Tensor:
    if x.ndim == 4:
        return x.detach()
    if x.ndim == 3:
        return x.detach().unsqueeze(1)
    if x.ndim == 2:
        return x.detach().view(len(x), 1, 1, -1)
    raise DataError(
        f"Square Attack needs images (N, C, H, W) or (N, H, W), or tabular inputs (N, D); got shape {tuple(x.shape)}"
    )


def _check_args(
    *, eps: object, norm: str, queries: int, p_init: float, restarts: int, value_range: object
) -> tuple[float, tuple[float, float]]:
    """Check Square Attack's settings; return ``eps`` as a float and the box."""
    if norm not in NORMS:
        raise ConfigError(f"unknown norm {norm!r} for Square Attack; choose from: {', '.join(NORMS)}")
    budget = check_budget(eps)
    check_count("queries", queries)
    check_count("restarts", restarts)
    if isinstance(p_init, bool) or not isinstance(p_init, (int, float)) or not 0.0 < p_init <= 1.0:
        raise ConfigError(
            f"p_init (the initial fraction of the image a square covers) must be a number in (0, 1], got {p_init!r}"
        )
    return budget, check_value_range(value_range)


# -- in the registry ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Square(AttackMethod):
    """The Square Attack (score-based black box) as a registered attack: ``square``."""

    queries: int = 5000
    p_init: float = 0.8
    restarts: int = 1

    key: ClassVar[str] = "square"
    gradient_free: ClassVar[bool] = True

    def describe(self) -> str:
        return f"Square {self.norm} ({self.queries} queries, p_init {self.p_init:g})"

    def perturb(
        self, module: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: torch.Tensor, **batch: Unpack[Batch]
    ) -> Perturbed:
        return self.call_batch(
            square, module, x, y, eps, batch, queries=self.queries, p_init=self.p_init, restarts=self.restarts
        )


@register_attack("square")
def make_square(eps: float, *, norm: str = "linf", **settings: Any) -> Square:
    """Square at budget ``eps`` (Andriushchenko et al. 2020, arXiv:1912.00049)."""
    return Square(eps, norm, **settings)
