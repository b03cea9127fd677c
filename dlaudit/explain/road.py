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
from scipy.sparse.linalg import spsolve
from torch import nn

from ..utils import model_state
from ._common import batched_probabilities

__all__ = ["RoadCurves", "noisy_linear_imputation", "road_curves", "NOISE", "OFFSETS"]

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


def noisy_linear_imputation(
    x: np.ndarray, hidden: np.ndarray, *, noise: float = NOISE, rng: np.random.Generator | None = None
) -> np.ndarray:
    """``x`` (C, H, W) with the pixels ``hidden[k]`` (K, H*W booleans) imputed, one copy per row: (K, C, H, W).

    All K systems are solved at once as one block-diagonal sparse system (one right-hand side per channel).
    Each row must leave at least one pixel visible.
    """
    c, h, w = x.shape
    hidden = np.asarray(hidden, dtype=bool).reshape(len(hidden), h * w)
    if (hidden.all(axis=1)).any():
        raise ValueError("noisy linear imputation needs at least one visible pixel per row")
    flat = x.reshape(c, h * w).astype(np.float64)
    out = np.broadcast_to(flat, (len(hidden), c, h * w)).copy()
    rows_k, rows_p = np.nonzero(hidden)
    n_var = len(rows_k)
    if n_var == 0:
        return out.reshape(len(hidden), c, h, w)
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
    solution = np.asarray(spsolve(a, b)).reshape(n_var, c)
    if noise > 0:
        rng = rng if rng is not None else np.random.default_rng(0)
        solution = solution + noise * rng.standard_normal(solution.shape)
    out[rows_k, :, rows_p] = solution
    return out.reshape(len(hidden), c, h, w)


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
) -> RoadCurves:
    """MoRF and LeRF ROAD curves of images ``x`` (N, C, H, W) along ``order`` (N, H*W pixels, most relevant first).

    ``counts`` are the numbers of pixels removed at each step (the deletion curve's); counts equal to the number
    of pixels are left out. The noise of sample ``i`` is drawn from ``default_rng([seed, i])``: the same whatever
    the batch. Imputed values are clipped to ``value_range`` when given.
    """
    n_units = order.shape[1]
    counts = np.asarray([k for k in counts if k < n_units], dtype=np.int64)
    morf, lerf = [], []
    xs = x.detach().cpu().double().numpy()
    with model_state(module):
        for i, (xi, oi) in enumerate(zip(xs, order.cpu().numpy())):
            rank = np.empty(n_units, dtype=np.int64)
            rank[oi] = np.arange(n_units)
            hidden = np.concatenate([rank[None, :] < counts[:, None], rank[None, :] >= (n_units - counts)[:, None]])
            imgs = noisy_linear_imputation(xi, hidden, noise=noise * span, rng=np.random.default_rng([seed, i]))
            if value_range is not None:
                imgs = np.clip(imgs, *value_range)
            probs = batched_probabilities(module, torch.from_numpy(imgs).float(), batch_size=batch_size)
            p = probs[:, int(target[i])].double().numpy()
            morf.append(p[: len(counts)])
            lerf.append(p[len(counts) :])
    return RoadCurves(counts / n_units, np.stack(morf), np.stack(lerf))
