"""ROAD: RemOve And Debias (Rong et al. 2022, https://arxiv.org/abs/2202.00449).

Deletion curves fill removed pixels with a constant; the model then sees inputs unlike
any it was trained on, and the shape of the removed region can leak the class
("class information leakage"), so the curve measures the removal as much as the
explanation. ROAD imputes each removed pixel from its neighbours instead: the
removed pixels' values solve the linear system in which each one is the weighted mean
of its 8 neighbours (weight 1/6 for the 4 direct, 1/12 for the 4 diagonal ones; the
weights of neighbours outside the image dropped), plus Gaussian noise (``noise``
times the value range) that hides the imputation's smoothness. The same system as the
authors' ``NoisyLinearImputer`` and Quantus's ``noisy_linear_imputation``.

The system of one image, one set of hidden pixels and one channel is A u = b with
A = diag(sum of the in-image neighbours' weights) - W_hidden,hidden: a graph Laplacian
with the visible pixels as Dirichlet values, symmetric positive definite when at least
one pixel is visible. :func:`solve_imputation` solves all the systems of many images and
hidden sets at once, one of three ways, each within 1e-10 of the others (tested;
about 1e-12 measured), the result of a system never depending on which others share its batch:

- ``"cg"``: matrix-free conjugate gradients in float64 with a Jacobi preconditioner, in
  torch, on the model's device, over every system at once; A applied by the 8-neighbour
  stencil masked to the hidden pixels; each system stops on its own relative residual
  (:data:`CG_TOL`), systems still short of it after :func:`cg_iteration_cap` iterations
  are solved again by ``"sparse"`` (never an unconverged number). Dot products are
  fixed trees of elementwise adds, so a system's iterates are the same bits whatever the
  batch. The choice on CUDA.
- ``"banded"``: in row-major order (column-major when the image is wider than tall) A
  is banded, half-bandwidth min(H, W) + 1: LAPACK's banded Cholesky (``dpbsv``) on the
  whole grids of one image's hidden sets stacked (visible pixels as identity rows), the
  channels as right-hand sides. The choice on the CPU for images up to
  :data:`BANDED_MAX_SIDE` on their short side.
- ``"sparse"``: one block-diagonal sparse system per image (SuperLU, ``spsolve``): the
  choice on the CPU for larger images, and the fallback of ``"cg"``.

Measured at 28x28 (bench/explain.py's 16 digits, 32 hidden sets each: 512 systems), one
thread, a busy 2-core machine (load about 5): banded 0.29 s, sparse 1.11 s, conjugate
gradients 1.78 s (13 s with two threads there: thousands of small operations, each a
parallel region). On the CPU, conjugate gradients lose to a direct solve at these sizes
(about 60 iterations a system on average, 130 at most, each a pass over the images);
their place is the GPU, where the batch is one set of kernels (not yet timed on one).

Curves of the explained class's probability are taken in two orders: MoRF (most
relevant first: a faithful map makes it fall fast, a low AUC) and LeRF (least relevant
first: it should stay high, a high AUC), at the deletion curve's fractions short of
100% (with every pixel removed there is nothing to impute from). The AUC is the
trapezoid area over those fractions divided by their span: a mean probability in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from scipy.linalg import lapack
from scipy.sparse.linalg import spsolve
from torch import nn

from ..utils import model_state, next_device
from ._common import batched_probabilities

__all__ = [
    "BANDED_MAX_SIDE",
    "CG_TOL",
    "NOISE",
    "OFFSETS",
    "RoadCurves",
    "cg_iteration_cap",
    "noisy_linear_imputation",
    "road_curves",
    "solve_imputation",
]

NOISE = 0.01
"""Standard deviation of the noise added to imputed pixels, as a share of the value range (the authors' 0.01)."""

OFFSETS = (
    ((1, 1), 1 / 12),
    ((0, 1), 1 / 6),
    ((-1, 1), 1 / 12),
    ((1, -1), 1 / 12),
    ((0, -1), 1 / 6),
    ((-1, -1), 1 / 12),
    ((1, 0), 1 / 6),
    ((-1, 0), 1 / 6),
)

CG_TOL = 1e-12
"""Conjugate gradients stop when a system's residual is below this share of its right-hand side (2-norms)."""
BANDED_MAX_SIDE = 64
"""On the CPU, images whose short side is at most this are solved by banded Cholesky, larger ones by SuperLU.

Measured (3 channels, 8 hidden sets from 5% to 95%, one thread, busy machine): banded against SuperLU 0.05 s
against 0.07 s at 64x64, 0.18 s against 0.21 s at 96x96, 0.69 s against 0.46 s at 128x128."""
SOLVERS = ("auto", "cg", "banded", "sparse")
# the most one banded Cholesky call's band may hold: a fixed number of hidden sets a call, whatever the budget
_BANDED_CALL_BYTES = 8 * 2**20
_CG_WORK_VECTORS = 10  # float64 images of one system that conjugate gradients hold at once (with temporaries)


def cg_iteration_cap(h: int, w: int) -> int:
    """The most conjugate-gradient iterations a system of an ``h`` x ``w`` image gets before its sparse fallback.

    Measured to :data:`CG_TOL`: at most 164 iterations at 28x28 and 3x32x32 (95% to 99.9% of the pixels hidden,
    one visible pixel), under 300 at 64x64; the cap is 7 to 9 times that.
    """
    return 20 * (h + w) + 100


def _neighbour_weights(h: int, w: int) -> np.ndarray:
    """(h, w): the sum of the weights of each pixel's in-image neighbours (A's diagonal)."""
    r, c = np.arange(h)[:, None], np.arange(w)[None, :]
    d = np.zeros((h, w))
    for (dr, dc), weight in OFFSETS:
        d += weight * ((r + dr >= 0) & (r + dr < h) & (c + dc >= 0) & (c + dc < w))
    return d


def _neighbour_sum_np(v: np.ndarray) -> np.ndarray:
    """(..., h, w): each pixel's weighted sum of its in-image neighbours' values (zero padding)."""
    h, w = v.shape[-2:]
    pad = np.zeros((*v.shape[:-2], h + 2, w + 2))
    pad[..., 1:-1, 1:-1] = v
    out = np.zeros(v.shape)
    for (dr, dc), weight in OFFSETS:
        out += weight * pad[..., 1 + dr : 1 + dr + h, 1 + dc : 1 + dc + w]
    return out


# -- the three solvers -----------------------------------------------------------------------------


def _solve_sparse(x: np.ndarray, hidden: np.ndarray) -> np.ndarray:
    """One image ``x`` (C, H, W), hidden sets ``hidden`` (K, H*W): the solved grids (K, C, H*W), by SuperLU."""
    c, h, w = x.shape
    flat = x.reshape(c, h * w).astype(np.float64)
    out = np.broadcast_to(flat, (len(hidden), c, h * w)).copy()
    rows_k, rows_p = np.nonzero(hidden)
    n_var = len(rows_k)
    if n_var == 0:
        return out
    var_of = np.full(hidden.shape, -1, dtype=np.int64)
    var_of[rows_k, rows_p] = np.arange(n_var)
    r, col = rows_p // w, rows_p % w
    diag = np.zeros(n_var)
    b = np.zeros((n_var, c))
    ai, aj, av = [], [], []
    for (dr, dc), weight in OFFSETS:
        rr, cc = r + dr, col + dc
        valid = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
        ids = np.nonzero(valid)[0]
        q = rr[ids] * w + cc[ids]
        nbr = var_of[rows_k[ids], q]
        diag[ids] -= weight
        unknown = nbr >= 0
        ai.append(ids[unknown])
        aj.append(nbr[unknown])
        av.append(np.full(int(unknown.sum()), weight))
        known = ids[~unknown]
        b[known] -= weight * flat[:, q[~unknown]].T
    a = sp.coo_matrix(
        (
            np.concatenate([*av, diag]),
            (np.concatenate([*ai, np.arange(n_var)]), np.concatenate([*aj, np.arange(n_var)])),
        ),
        shape=(n_var, n_var),
    ).tocsc()
    out[rows_k, :, rows_p] = np.asarray(spsolve(a, b)).reshape(n_var, c)
    return out


def _solve_banded(x: np.ndarray, hidden: np.ndarray) -> np.ndarray:
    """As :func:`_solve_sparse`, by LAPACK's banded Cholesky: the K whole grids stacked in one system (visible
    pixels as identity rows), the channels as right-hand sides."""
    c, h, w = x.shape
    k_rows = len(hidden)
    masks = hidden.reshape(k_rows, h, w)
    if w > h:  # the half-bandwidth is the width + 1: order the pixels along the longer side
        solved = _solve_banded(x.transpose(0, 2, 1), masks.transpose(0, 2, 1).reshape(k_rows, h * w))
        return solved.reshape(k_rows, c, w, h).transpose(0, 1, 3, 2).reshape(k_rows, c, h * w)
    n = h * w
    group = max(1, _BANDED_CALL_BYTES // (n * (w + 2) * 8))
    if k_rows > group:  # a fixed share of the hidden sets a call, whatever the budget: the same numbers
        return np.concatenate([_solve_banded(x, hidden[i : i + group]) for i in range(0, k_rows, group)])
    hk = masks.reshape(-1)  # the K grids stacked: one banded system, no pair crosses from one grid to the next
    ab = np.zeros((w + 2, k_rows * n))
    ab[0] = np.where(hk, np.tile(_neighbour_weights(h, w).ravel(), k_rows), 1.0)
    j = np.arange(n)
    for (dr, dc), weight in OFFSETS:
        off = dr * w + dc
        if off <= 0:
            continue
        first = j[: n - off]
        rj, cj = first // w, first % w
        first = first[(rj + dr >= 0) & (rj + dr < h) & (cj + dc >= 0) & (cj + dc < w)]
        pairs = (np.arange(k_rows)[:, None] * n + first[None, :]).ravel()
        ab[off, pairs[hk[pairs] & hk[pairs + off]]] = -weight
    visible_sum = _neighbour_sum_np(np.where(masks[:, None], 0.0, x[None]))  # (K, C, H, W)
    rhs = np.where(masks[:, None], visible_sum, x[None]).transpose(0, 2, 3, 1).reshape(k_rows * n, c)
    _, sol, info = lapack.dpbsv(ab, np.ascontiguousarray(rhs), lower=1, overwrite_ab=1, overwrite_b=1)
    if info != 0:  # not positive definite to working precision: SuperLU
        return _solve_sparse(x, hidden)
    return sol.reshape(k_rows, n, c).transpose(0, 2, 1).copy()


def _rowsum(t: torch.Tensor) -> torch.Tensor:
    """(S, n) -> (S,): each row's sum by a fixed tree of elementwise adds, the same bits whatever S or the threads
    (torch's own reductions may split one long row across threads)."""
    n = t.shape[1]
    while n > 1:
        half = n // 2
        s = t[:, :half] + t[:, half : 2 * half]
        if n % 2:
            s[:, :1] += t[:, 2 * half :]
        t, n = s, half
    return t[:, 0]


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return _rowsum((a * b).reshape(len(a), -1))


def _neighbour_sum(v: torch.Tensor) -> torch.Tensor:
    """(S, H, W): each pixel's weighted sum of its in-image neighbours' values (the 3x3 stencil, zero padding)."""
    h, w = v.shape[-2:]
    out = torch.zeros_like(v)
    for (dr, dc), weight in OFFSETS:
        r0, r1, c0, c1 = max(0, -dr), h - max(0, dr), max(0, -dc), w - max(0, dc)
        out[:, r0:r1, c0:c1] += weight * v[:, r0 + dr : r1 + dr, c0 + dc : c1 + dc]
    return out


def _solve_cg(x: torch.Tensor, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Systems ``x`` (S, H, W) float64 with hidden pixels ``hidden`` (S, H, W): the solved grids and which converged.

    Jacobi-preconditioned conjugate gradients from 0, each system stopping on its own when its residual is below
    :data:`CG_TOL` times its right-hand side; the systems still running after :func:`cg_iteration_cap` iterations
    come back as they stand, marked unconverged. Every step is an elementwise operation with one rounding (no fused
    multiply-add, whose vectorised and scalar paths may round differently) or a :func:`_rowsum`: a system's bits do
    not depend on which systems share the batch, nor on the threads.
    """
    s, h, w = x.shape
    cap = cg_iteration_cap(h, w)
    diag = torch.from_numpy(_neighbour_weights(h, w)).to(x)
    inv_diag = 1.0 / diag
    m = hidden.to(x.dtype)
    b = _neighbour_sum(x * (1 - m)) * m
    solved = x.clone()
    converged = torch.zeros(s, dtype=torch.bool, device=x.device)
    limit = _dot(b, b) * CG_TOL**2
    active = torch.arange(s, device=x.device)
    u, r = torch.zeros_like(x), b
    z = r * inv_diag
    p = z.clone()
    rz = _dot(r, z)
    done = _dot(r, r) <= limit
    for step in range(cap + 1):
        if bool(done.any()):
            finished = active[done]
            solved[finished] = torch.where(hidden[finished], u[done], x[finished])
            converged[finished] = True
            keep = ~done
            active, u, r, p, rz, limit, m = active[keep], u[keep], r[keep], p[keep], rz[keep], limit[keep], m[keep]
            if len(active) == 0:
                break
        if step == cap:
            solved[active] = torch.where(hidden[active], u, x[active])
            break
        n = len(active)
        ap = (diag * p - _neighbour_sum(p)).mul_(m)
        alpha = (rz / _dot(p, ap)).view(n, 1, 1)
        u += alpha * p
        r = r - alpha * ap
        done = _dot(r, r) <= limit
        z = r * inv_diag
        rz_new = _dot(r, z)
        p = p.mul_((rz_new / rz).view(n, 1, 1)).add_(z)
        rz = rz_new
    return solved, converged


def _auto_solver(device: torch.device, h: int, w: int) -> str:
    if device.type == "cuda":
        return "cg"
    return "banded" if min(h, w) <= BANDED_MAX_SIDE else "sparse"


def solve_imputation(
    x: np.ndarray, hidden: np.ndarray, *, solver: str = "auto", device: torch.device | str | None = None
) -> np.ndarray:
    """Images ``x`` (N, C, H, W) with their hidden sets ``hidden`` (N, K, H*W) imputed, without noise: (N, K, C, H*W).

    ``solver``: ``"cg"``, ``"banded"``, ``"sparse"`` or ``"auto"`` (conjugate gradients on CUDA, else banded
    Cholesky up to :data:`BANDED_MAX_SIDE`, else sparse); ``device`` is where conjugate gradients run (the CPU
    when None). Each hidden set must leave at least one pixel visible.
    """
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {', '.join(SOLVERS)}, got {solver!r}")
    x = np.asarray(x, dtype=np.float64)
    n, c, h, w = x.shape
    hidden = np.asarray(hidden, dtype=bool).reshape(n, -1, h * w)
    if hidden.all(axis=2).any():
        raise ValueError("noisy linear imputation needs at least one visible pixel per row")
    device = torch.device(device) if device is not None else torch.device("cpu")
    if solver == "auto":
        solver = _auto_solver(device, h, w)
    if solver != "cg":
        solve = _solve_banded if solver == "banded" else _solve_sparse
        out = np.empty((n, hidden.shape[1], c, h * w))
        for i in range(n):  # filled in place: a stack of the per-image results would hold them twice
            out[i] = solve(x[i], hidden[i])
        return out
    k = hidden.shape[1]
    xs = torch.from_numpy(x).to(device)[:, None].expand(n, k, c, h, w).reshape(-1, h, w)
    ms = torch.from_numpy(hidden).to(device).view(n, k, 1, h, w).expand(n, k, c, h, w).reshape(-1, h, w)
    solved, converged = _solve_cg(xs, ms)
    out = solved.reshape(n, k, c, h * w).cpu().numpy()
    for i, row in zip(*np.nonzero((~converged).reshape(n, k, c).any(dim=2).cpu().numpy())):
        out[i, row] = _solve_sparse(x[i], hidden[i, row][None])[0]
    return out


def _with_noise(
    x: np.ndarray, hidden: np.ndarray, solved: np.ndarray, noise: float, rng: np.random.Generator
) -> np.ndarray:
    """One image ``x`` (C, H, W): its solved grids (K, C, H*W) with noise on the hidden pixels, (K, C, H, W).

    The noise is one (hidden pixels, C) standard-normal draw, the hidden pixels in row-major (hidden set, pixel)
    order: the draws of every release since ROAD came.
    """
    c, h, w = x.shape
    out = np.broadcast_to(x.reshape(c, h * w).astype(np.float64), (len(hidden), c, h * w)).copy()
    rows_k, rows_p = np.nonzero(hidden)
    if len(rows_k):
        values = solved[rows_k, :, rows_p]
        if noise > 0:
            values = values + noise * rng.standard_normal(values.shape)
        out[rows_k, :, rows_p] = values
    return out.reshape(len(hidden), c, h, w)


def noisy_linear_imputation(
    x: np.ndarray,
    hidden: np.ndarray,
    *,
    noise: float = NOISE,
    rng: np.random.Generator | None = None,
    solver: str = "auto",
    device: torch.device | str | None = None,
) -> np.ndarray:
    """``x`` (C, H, W) with the pixels ``hidden[k]`` (K, H*W booleans) imputed, one copy per row: (K, C, H, W).

    Each row must leave at least one pixel visible. ``solver`` and ``device``: as :func:`solve_imputation`.
    """
    c, h, w = x.shape
    hidden = np.asarray(hidden, dtype=bool).reshape(len(hidden), h * w)
    solved = solve_imputation(x[None], hidden[None], solver=solver, device=device)[0]
    rng = rng if rng is not None else np.random.default_rng(0)
    return _with_noise(x, hidden, solved, noise, rng)


def _auc(p: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    span = float(fractions[-1] - fractions[0])
    if span <= 0:
        return p[..., 0]
    return ((p[..., 1:] + p[..., :-1]) / 2.0 * np.diff(fractions)).sum(axis=-1) / span


@dataclass(frozen=True)
class RoadCurves:
    """Target-class probability after imputing the first ``fractions`` of pixels, most (MoRF) or least (LeRF)
    relevant first; per sample."""

    fractions: np.ndarray  # (k,)
    morf: np.ndarray  # (n, k)
    lerf: np.ndarray  # (n, k)

    @property
    def morf_per_sample(self) -> np.ndarray:
        return _auc(self.morf, self.fractions)

    @property
    def lerf_per_sample(self) -> np.ndarray:
        return _auc(self.lerf, self.fractions)

    @property
    def morf_auc(self) -> float:
        return float(self.morf_per_sample.mean())

    @property
    def lerf_auc(self) -> float:
        return float(self.lerf_per_sample.mean())


def road_curves(
    module: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    order: torch.Tensor,
    counts: np.ndarray,
    *,
    span: float,
    value_range: tuple[float, float] | None = None,
    noise: float = NOISE,
    seed: int = 0,
    batch_size: int = 512,
    max_memory: int | None = None,
    solver: str = "auto",
) -> RoadCurves:
    """MoRF and LeRF ROAD curves of images ``x`` (N, C, H, W) along ``order`` (N, H*W pixels, most relevant first).

    ``counts`` are the numbers of pixels removed at each step (the deletion curve's); counts equal to the number
    of pixels are left out. The noise of sample ``i`` is drawn from ``default_rng([seed, i])``: the same whatever
    the batch. Imputed values are clipped to ``value_range`` when given.

    Samples are imputed together (``solver``: as :func:`solve_imputation`, on the model's device) and their
    imputed images go through the model together, ``batch_size`` rows a pass, as many samples at a time as the
    solver's work and the images fit in a quarter of ``max_memory`` bytes (size ``batch_size`` to half of it: the
    model's pass) (None: :func:`~dlaudit.explain.memory.default_budget`
    of the model's device); neither changes a number.
    """
    from .memory import chunks, default_budget

    n_units = order.shape[1]
    counts = np.asarray([k for k in counts if k < n_units], dtype=np.int64)
    n, c, h, w = x.shape
    device = next_device(module)
    solver = _auto_solver(device, h, w) if solver == "auto" else solver
    # held at once: a chunk of samples' imputed images, one solver call's work and one model pass over
    # ``batch_size`` of them. The caller sizes the pass to half the budget (compute.py); the images and the solver
    # take a quarter (the rest is the allocator's retention, dlaudit._alloc.bound_retention). A chunk of 30
    # samples (20 rows each) already runs the model at full speed: a larger share buys no time.
    solver_bytes = 2 * _BANDED_CALL_BYTES if solver == "banded" else 0  # the band and its right-hand sides
    budget = (max_memory if max_memory is not None else default_budget(device)) // 4 - solver_bytes
    rows = 2 * len(counts)
    # bytes a sample holds: its solved grids and noisy images (float64), their float32 copy, the hidden sets; and
    # conjugate gradients' work vectors (a banded call's band is bounded on its own, _BANDED_CALL_BYTES)
    per_sample = rows * c * h * w * (8 * (_CG_WORK_VECTORS if solver == "cg" else 2) + 4) + rows * n_units
    xs = x.detach().cpu().double().numpy()
    ranks = np.empty((n, n_units), dtype=np.int64)
    np.put_along_axis(ranks, order.cpu().numpy().astype(np.int64), np.arange(n_units)[None, :], axis=1)
    targets = target.cpu().numpy().astype(np.int64)
    morf, lerf = np.empty((n, len(counts))), np.empty((n, len(counts)))
    with model_state(module):
        for part in chunks(n, max(1, budget // per_sample)):
            rank = ranks[part][:, None, :]
            hidden = np.concatenate(
                [rank < counts[None, :, None], rank >= (n_units - counts)[None, :, None]], axis=1
            )  # (samples, MoRF then LeRF rows, pixels)
            solved = solve_imputation(xs[part], hidden, solver=solver, device=device)
            imgs = np.empty((part.stop - part.start, rows, c, h, w))
            for j, i in enumerate(range(part.start, part.stop)):
                imgs[j] = _with_noise(xs[i], hidden[j], solved[j], noise * span, np.random.default_rng([seed, i]))
            del solved
            if value_range is not None:
                np.clip(imgs, *value_range, out=imgs)
            probs = batched_probabilities(
                module, torch.from_numpy(imgs.reshape(-1, c, h, w)).float(), batch_size=batch_size
            )
            del imgs
            p = probs.double().numpy().reshape(part.stop - part.start, rows, -1)
            p = np.take_along_axis(p, targets[part][:, None, None], axis=2)[..., 0]
            morf[part], lerf[part] = p[:, : len(counts)], p[:, len(counts) :]
    return RoadCurves(counts / n_units, morf, lerf)
