"""LIME: a weighted linear surrogate fitted around each input.

Ribeiro et al. 2016, "Why Should I Trust You?", https://arxiv.org/abs/1602.04938

Images: the surrogate lives on segments (a grid on small images, SLIC on larger
ones). The sampling, kernel and ridge regression follow ``lime_image`` with its
defaults exactly (1,000 samples, cosine distance, kernel width 0.25, Ridge with
alpha 1), so the same seed gives the same segment weights, but only the target
class is explained, perturbed images are built and classified in batches of
``settings.lime_batch_size``, and everything that does not depend on the image
(the random on/off design, its kernel weights, the regression's factorisation)
is computed once and shared across images.

Tabular inputs: ``lime.lime_tabular.LimeTabularExplainer`` on the raw columns
(categorical columns as one feature each, with the training data's statistics),
its weights mapped back onto the one-hot features.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..errors import AnalysisError
from ._common import Attribution, Column, ExplainContext, batched_probabilities, row_seed, spread_to_features
from .memory import row_budget

__all__ = ["lime", "lime_images", "lime_tabular", "segment_image", "grid_segments", "LimeImageResult"]

KERNEL_WIDTH = 0.25  # lime_image's default
RIDGE_ALPHA = 1.0  # lime's default surrogate: Ridge(alpha=1)
GRID_BELOW = 32  # images smaller than this (pixels a side) get a grid, larger ones SLIC


def lime(module: nn.Module, x: torch.Tensor, target: torch.Tensor, ctx: ExplainContext) -> Attribution:
    """LIME for the model's modality: segments for images, columns for tabular data."""
    if ctx.kind.columns:
        return lime_tabular(module, x, target, ctx)
    if x.dim() != 4:
        raise AnalysisError(f"image LIME needs inputs shaped (N, C, H, W); these are {tuple(x.shape[1:])} per sample")
    res = lime_images(
        module,
        x,
        target,
        num_samples=ctx.settings.lime_samples,
        seed=ctx.seed,
        hide_color=ctx.low,
        value_range=ctx.value_range,
        batch_size=min(ctx.settings.lime_batch_size, row_budget(module, x, ctx, backward=False)),
    )
    return Attribution(
        res.attributions(x),
        extras={"local_r2": torch.as_tensor(res.r2), "segments": int(max(s.max() for s in res.segments) + 1)},
    )


# -- images ---------------------------------------------------------------------------


def grid_segments(height: int, width: int, cell: int) -> np.ndarray:
    """A grid of ``cell`` x ``cell`` squares, numbered row by row from 0."""
    rows = np.arange(height) // cell
    cols = np.arange(width) // cell
    ncols = math.ceil(width / cell)
    return (rows[:, None] * ncols + cols[None, :]).astype(np.int64)


def segment_image(image: np.ndarray, value_range: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """Segments of one ``(C, H, W)`` image, numbered 0..S-1.

    lime's default (quickshift) finds a single segment on an 8x8 image, so small
    images (under 32 pixels a side) get a grid of squares about a seventh of the
    side (2x2 on 8x8, 4x4 on 28x28), larger ones SLIC with about 64 segments.
    """
    _, h, w = image.shape
    if min(h, w) < GRID_BELOW:
        return grid_segments(h, w, max(1, math.ceil(min(h, w) / 7)))
    from skimage.segmentation import slic

    lo, hi = value_range
    img = np.clip((np.moveaxis(image, 0, -1) - lo) / (hi - lo), 0.0, 1.0).astype(np.float64)
    rgb = img.shape[-1] == 3
    labels = slic(
        img if rgb else img[..., 0],
        n_segments=64,
        compactness=10.0 if rgb else 0.1,
        start_label=0,
        channel_axis=-1 if rgb else None,
    )
    return np.unique(labels, return_inverse=True)[1].reshape(h, w).astype(np.int64)


@dataclass(frozen=True)
class _Design:
    """The random on/off samples of S segments and the weighted ridge solved once for them."""

    z: np.ndarray  # (num_samples, S) 0/1, first row all ones
    weights: np.ndarray  # (num_samples,) kernel weights
    projector: np.ndarray  # (S, num_samples): coef = projector @ y
    z_mean: np.ndarray  # weighted mean of z's columns


def _design(
    n_segments: int, num_samples: int, seed: int, kernel_width: float = KERNEL_WIDTH, alpha: float = RIDGE_ALPHA
) -> _Design:
    """lime_image's neighbourhood for ``n_segments`` segments, and its ridge solution operator.

    The samples are ``RandomState(seed).randint(0, 2, ...)`` with the first row
    all ones, as lime draws them; the kernel is ``sqrt(exp(-d^2 / width^2))`` of
    the cosine distance to the all-ones row, which for 0/1 rows is
    ``1 - sqrt(ones / S)``. The weighted ridge with intercept
    ``min sum_i w_i (y_i - b - z_i c)^2 + alpha |c|^2`` has the solution
    ``c = (Zc^T W Zc + alpha I)^-1 Zc^T W y`` with ``Zc`` the weighted-centred
    design: one matrix for every image that shares the segment count.
    """
    rs = np.random.RandomState(seed % (2**32))
    z = rs.randint(0, 2, num_samples * n_segments).reshape(num_samples, n_segments)
    z[0, :] = 1
    dist = 1.0 - np.sqrt(z.sum(axis=1) / n_segments)
    weights = np.sqrt(np.exp(-(dist**2) / kernel_width**2))
    z_mean = weights @ z / weights.sum()
    zc = z - z_mean
    gram = zc.T @ (weights[:, None] * zc) + alpha * np.eye(n_segments)
    projector = np.linalg.solve(gram, (weights[:, None] * zc).T)
    return _Design(z.astype(np.float64), weights, projector, z_mean)


def _fudged(image: torch.Tensor, segments: torch.Tensor, hide_color: float | None) -> torch.Tensor:
    """What a switched-off segment shows: ``hide_color``, or (None) each segment's mean colour."""
    if hide_color is not None:
        return torch.full_like(image, float(hide_color))
    flat = image.reshape(image.shape[0], -1)
    onehot = torch.nn.functional.one_hot(segments.flatten(), int(segments.max()) + 1).to(image.dtype)
    means = (flat @ onehot) / onehot.sum(0).clamp_min(1)
    return means[:, segments.flatten()].reshape(image.shape)


def _target_probabilities(
    module: nn.Module,
    image: torch.Tensor,
    segments: torch.Tensor,
    fudged: torch.Tensor,
    design: _Design,
    target: int,
    batch_size: int,
) -> np.ndarray:
    """The target class's probability on every perturbed image, built and classified in batches."""
    on = torch.from_numpy(design.z).bool()
    out = []
    for start in range(0, len(on), batch_size):
        mask = on[start : start + batch_size][:, segments]  # (B, H, W)
        batch = torch.where(mask[:, None], image[None], fudged[None])
        out.append(batched_probabilities(module, batch, batch_size=batch_size)[:, target])
    return torch.cat(out).double().numpy()


@dataclass(frozen=True)
class LimeImageResult:
    """Per image: its segments, the weight of each segment for the target, the surrogate's R^2."""

    segments: list[np.ndarray]
    coefficients: list[np.ndarray]
    r2: list[float]

    def attributions(self, x: torch.Tensor) -> torch.Tensor:
        """Each pixel gets its segment's weight, repeated over channels."""
        maps = [torch.from_numpy(c[s]).float() for s, c in zip(self.segments, self.coefficients)]
        return torch.stack(maps)[:, None].expand(x.shape).clone()

    def top_segments(self, k: int = 3) -> list[list[int]]:
        """The ``k`` segments with the largest absolute weight, per image (as lime sorts them)."""
        return [[int(i) for i in np.argsort(-np.abs(c), kind="stable")[:k]] for c in self.coefficients]


def lime_images(
    module: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    *,
    num_samples: int = 1000,
    seed: int = 0,
    hide_color: float | None = 0.0,
    value_range: tuple[float, float] = (0.0, 1.0),
    batch_size: int = 256,
    segments: list[np.ndarray] | None = None,
) -> LimeImageResult:
    """LIME segment weights for the ``target`` class of each image in ``x`` (N, C, H, W).

    Parameters
    ----------
    num_samples
        Perturbed images per input (lime's default 1,000).
    seed
        Seed of the on/off design (lime's ``RandomState(seed)``).
    hide_color
        Value of switched-off segments; ``None`` uses each segment's mean colour
        (lime_image's default). dlaudit's report uses the low end of the value range.
    segments
        One ``(H, W)`` label array per image; by default :func:`segment_image`.
    """
    xs = x.detach().cpu().float()
    segs = segments if segments is not None else [segment_image(img.numpy(), value_range) for img in xs]
    designs: dict[int, _Design] = {}
    coefs, r2s = [], []
    for img, seg, t in zip(xs, segs, target.tolist()):
        n_seg = int(seg.max()) + 1
        if n_seg not in designs:
            designs[n_seg] = _design(n_seg, num_samples, seed)
        design = designs[n_seg]
        seg_t = torch.from_numpy(seg)
        y = _target_probabilities(module, img, seg_t, _fudged(img, seg_t, hide_color), design, int(t), batch_size)
        coef = design.projector @ y
        coefs.append(coef)
        r2s.append(_weighted_r2(design, y, coef))
    return LimeImageResult(segs, coefs, r2s)


def _weighted_r2(design: _Design, y: np.ndarray, coef: np.ndarray) -> float:
    """The surrogate's weighted R^2 on its own samples (lime's ``score``)."""
    w = design.weights
    y_mean = w @ y / w.sum()
    pred = y_mean + (design.z - design.z_mean) @ coef
    total = float(w @ (y - y_mean) ** 2)
    return float(1.0 - (w @ (y - pred) ** 2) / total) if total > 0 else float("nan")


# -- tabular --------------------------------------------------------------------------


def _decode(x: np.ndarray, columns: tuple[Column, ...]) -> np.ndarray:
    """Model inputs as raw columns: numeric values as they are, categories as their index."""
    out = np.empty((len(x), len(columns)), dtype=np.float64)
    for j, col in enumerate(columns):
        idx = list(col.features)
        out[:, j] = x[:, idx].argmax(axis=1) if col.categorical else x[:, idx[0]]
    return out


def _encode(rows: np.ndarray, columns: tuple[Column, ...], n_features: int) -> np.ndarray:
    """Raw columns back into model inputs (one-hot for categorical columns)."""
    out = np.zeros((len(rows), n_features), dtype=np.float32)
    for j, col in enumerate(columns):
        idx = np.asarray(col.features)
        if col.categorical:
            k = np.clip(np.rint(rows[:, j]).astype(np.int64), 0, len(idx) - 1)
            out[np.arange(len(rows)), idx[k]] = 1.0
        else:
            out[:, idx[0]] = rows[:, j]
    return out


def lime_tabular(module: nn.Module, x: torch.Tensor, target: torch.Tensor, ctx: ExplainContext) -> Attribution:
    """LimeTabularExplainer on the raw columns, the target class only.

    All columns enter the surrogate (``feature_selection="none"``: lime's "auto"
    would pick the same columns by forward selection, refitting the ridge
    regression once per candidate column).

    The explainer learns its statistics (quartiles, category frequencies) from
    ``ctx.background`` (the training data when available); categorical columns
    come from the model card's encoder. Each column's weight is placed on the
    one-hot feature active in the sample.
    """
    from lime.lime_tabular import LimeTabularExplainer

    if x.dim() != 2:
        raise AnalysisError(
            f"tabular LIME needs inputs shaped (N, features); these are {tuple(x.shape[1:])} per sample"
        )
    cols = ctx.columns
    cat = [j for j, c in enumerate(cols) if c.categorical]
    explainer = LimeTabularExplainer(
        _decode(ctx.background.numpy(), cols),
        mode="classification",
        feature_names=[c.name for c in cols],
        categorical_features=cat,
        categorical_names={j: list(cols[j].categories) for j in cat},
        discretize_continuous=True,
        feature_selection="none",
        random_state=ctx.seed,
    )
    n_features = x.shape[1]
    batch = min(ctx.settings.lime_batch_size, row_budget(module, x, ctx, backward=False))

    def predict(rows: np.ndarray) -> np.ndarray:
        enc = torch.from_numpy(_encode(rows, cols, n_features))
        return batched_probabilities(module, enc, batch_size=batch).double().numpy()

    rows = _decode(x.detach().cpu().numpy(), cols)
    weights = np.zeros((len(rows), len(cols)))
    r2 = []
    for i, t in enumerate(target.tolist()):
        # the explainer's parts share one RandomState: reseeded per row, any split of the rows gives the same draws
        explainer.random_state.seed(row_seed(ctx.seed, ctx.row_offset + i) % 2**32)
        exp = explainer.explain_instance(
            rows[i],
            predict,
            labels=(t,),
            top_labels=None,
            num_features=len(cols),
            num_samples=ctx.settings.lime_tabular_samples,
        )
        for j, w in exp.as_map()[t]:
            weights[i, j] = w
        r2.append(float(exp.score))
    return Attribution(
        spread_to_features(weights, x, cols), extras={"local_r2": torch.tensor(r2), "column_weights": weights}
    )
