"""Tensor helpers shared by the corruptions: separable filters as matrices, resampling, shifts, zoom."""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

__all__ = [
    "gaussian_matrix",
    "separable",
    "box_resize_matrix",
    "clipped_zoom",
    "zoom_matrix",
    "motion_blur",
    "gray",
    "pad_conv",
]


def _fold(j: torch.Tensor, n: int, mode: str) -> torch.Tensor:
    """Indices outside ``[0, n)`` brought back in: ``nearest`` clamps, ``reflect`` mirrors about the edges (scipy's)."""
    if mode == "nearest":
        return j.clamp(0, n - 1)
    period = 2 * n
    j = torch.remainder(j, period)
    return torch.where(j >= n, period - 1 - j, j)


@functools.lru_cache(maxsize=64)
def _gaussian_matrix_cpu(n: int, sigma: float, truncate: float, mode: str) -> torch.Tensor:
    if sigma <= 0:
        return torch.eye(n)
    radius = int(truncate * sigma + 0.5)
    k = torch.arange(-radius, radius + 1, dtype=torch.float64)
    w = torch.exp(-0.5 * (k / sigma) ** 2)
    w = w / w.sum()
    rows = torch.arange(n).unsqueeze(1).expand(n, len(k))
    cols = _fold(rows + k.long().unsqueeze(0), n, mode)
    m = torch.zeros(n, n, dtype=torch.float64)
    m.index_put_((rows.reshape(-1), cols.reshape(-1)), w.repeat(n), accumulate=True)
    return m.float()


def gaussian_matrix(
    n: int, sigma: float, *, truncate: float = 4.0, mode: str = "nearest", device: torch.device | None = None
) -> torch.Tensor:
    """The ``(n, n)`` matrix of a 1-D Gaussian filter (scipy.ndimage's ``gaussian_filter1d`` semantics).

    The kernel's radius is ``int(truncate * sigma + 0.5)``; ``mode`` is ``"nearest"`` (edge
    values repeat) or ``"reflect"`` (half-sample mirror), at any kernel size relative to ``n``.
    """
    return _gaussian_matrix_cpu(int(n), round(float(sigma), 9), float(truncate), mode).to(device)


def separable(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Apply ``rows`` (``(H', H)``) along the height and ``cols`` (``(W', W)``) along the width of ``(..., H, W)``."""
    return torch.matmul(torch.matmul(rows, x), cols.transpose(0, 1))


@functools.lru_cache(maxsize=64)
def _box_resize_cpu(n_in: int, n_out: int) -> torch.Tensor:
    # PIL's BOX filter: an output pixel averages the input pixels whose centres fall in its footprint
    # (widened to one input pixel when enlarging, which makes enlarging a nearest-neighbour copy).
    scale = n_in / n_out
    support = 0.5 * max(scale, 1.0)
    ss = 1.0 / max(scale, 1.0)
    m = torch.zeros(n_out, n_in, dtype=torch.float64)
    for i in range(n_out):
        center = (i + 0.5) * scale
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), n_in)
        for j in range(lo, hi):
            t = (j - center + 0.5) * ss
            if -0.5 < t <= 0.5:
                m[i, j] = 1.0
        m[i] /= m[i].sum()
    return m.float()


def box_resize_matrix(n_in: int, n_out: int, device: torch.device | None = None) -> torch.Tensor:
    """The ``(n_out, n_in)`` matrix of PIL's ``Image.BOX`` resampling along one axis."""
    return _box_resize_cpu(int(n_in), int(n_out)).to(device)


def pad_conv(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Correlate every channel of ``x`` (N, C, H, W) with one 2-D ``kernel``, mirrored borders (OpenCV's default)."""
    n, c, h, w = x.shape
    kh, kw = kernel.shape
    ph, pw = kh // 2, kw // 2
    mode = "reflect" if ph < h and pw < w else "replicate"
    flat = F.pad(x.reshape(n * c, 1, h, w), (pw, pw, ph, ph), mode=mode)
    return F.conv2d(flat, kernel.to(x)[None, None]).reshape(n, c, h, w)


@functools.lru_cache(maxsize=128)
def _zoom_cpu(n: int, factor: float) -> torch.Tensor:
    out = torch.arange(n, dtype=torch.float64)
    src = ((out + 0.5) - n / 2) / factor + n / 2 - 0.5  # sample position, about the centre
    src = src.clamp(0, n - 1)
    lo = src.floor().long().clamp(max=n - 1)
    hi = (lo + 1).clamp(max=n - 1)
    frac = src - lo
    m = torch.zeros(n, n, dtype=torch.float64)
    m.index_put_((torch.arange(n), lo), 1 - frac, accumulate=True)
    m.index_put_((torch.arange(n), hi), frac, accumulate=True)
    return m.float()


def zoom_matrix(n: int, factor: float, device: torch.device | None = None) -> torch.Tensor:
    """The ``(n, n)`` matrix of a zoom by ``factor`` about the centre along one axis (linear interpolation)."""
    return _zoom_cpu(int(n), round(float(factor), 9)).to(device)


def clipped_zoom(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Zoom into the centre of ``x`` (N, C, H, W) by ``factor``, keeping the size.

    The continuous form of the reference's crop-and-rescale: output pixel ``p`` reads
    the input at ``centre + (p - centre) / factor`` (bilinear; separable, so two small
    matrix products).
    """
    _, _, h, w = x.shape
    return separable(x, zoom_matrix(h, factor, x.device).to(x), zoom_matrix(w, factor, x.device).to(x))


def motion_blur(x: torch.Tensor, radius: float, sigma: float, angle: torch.Tensor) -> torch.Tensor:
    """ImageMagick's one-sided motion blur, one direction per image.

    Output pixel ``p`` is the sum over ``i = 0 .. 2 * ceil(radius)`` of ``k_i * x(p + round(i * u))``,
    ``u = (cos angle, sin angle)`` in (column, row) coordinates, ``k_i`` a half Gaussian of
    standard deviation ``sigma`` normalised to 1; pixels beyond the border repeat the edge.

    Parameters
    ----------
    angle
        Degrees, shape ``(N,)``.
    """
    n, c, h, w = x.shape
    width = 2 * math.ceil(radius) + 1
    i = torch.arange(width, dtype=torch.float32, device=x.device)
    k = torch.exp(-(i**2) / (2 * sigma**2))
    k = (k / k.sum()).to(x.dtype)
    rad = torch.deg2rad(angle.to(torch.float32)).unsqueeze(1)
    ox = torch.ceil(i * torch.cos(rad) - 0.5).long()  # (N, width)
    oy = torch.ceil(i * torch.sin(rad) - 0.5).long()
    rows = torch.arange(h, device=x.device)
    cols = torch.arange(w, device=x.device)
    flat = x.reshape(n, c, h * w)
    out = torch.zeros_like(flat)
    for j in range(width):
        r = (rows.unsqueeze(0) + oy[:, j : j + 1]).clamp(0, h - 1)  # (N, H)
        q = (cols.unsqueeze(0) + ox[:, j : j + 1]).clamp(0, w - 1)  # (N, W)
        idx = (r.unsqueeze(2) * w + q.unsqueeze(1)).reshape(n, 1, h * w).expand(n, c, h * w)
        out.add_(flat.gather(2, idx), alpha=float(k[j]))
    return out.reshape(n, c, h, w)


def gray(x: torch.Tensor) -> torch.Tensor:
    """Luma (ITU-R 601: 0.299 R + 0.587 G + 0.114 B) of RGB images, the image itself otherwise; (N, 1, H, W)."""
    if x.shape[1] == 3:
        wts = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype, device=x.device)
        return (x * wts.view(1, 3, 1, 1)).sum(dim=1, keepdim=True)
    return x.mean(dim=1, keepdim=True)
