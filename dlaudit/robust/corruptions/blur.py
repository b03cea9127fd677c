"""The blur family: defocus, glass, motion and zoom blur."""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from . import _ops
from ._registry import Draw, register

__all__ = ["defocus_blur", "glass_blur", "motion_blur", "zoom_blur", "disk_kernel", "glass_shuffle"]


@functools.lru_cache(maxsize=32)
def _disk_cpu(radius: float, alias_blur: float) -> torch.Tensor:
    if radius <= 8:
        half, ksize = 8, 3
    else:
        half, ksize = math.ceil(radius), 5
    grid = torch.arange(-half, half + 1, dtype=torch.float64)
    yy, xx = torch.meshgrid(grid, grid, indexing="ij")
    disk = (xx**2 + yy**2 <= radius**2).to(torch.float64)
    disk /= disk.sum()
    # OpenCV's GaussianBlur of the aliased disk (ksize x ksize, mirrored borders): the anti-aliasing
    k = torch.arange(ksize, dtype=torch.float64) - ksize // 2
    g = torch.exp(-(k**2) / (2 * alias_blur**2))
    g /= g.sum()
    kernel = _ops.pad_conv(disk[None, None], torch.outer(g, g))[0, 0]
    nz = (kernel > 0).nonzero()
    (r0, c0), (r1, c1) = nz.min(dim=0).values.tolist(), nz.max(dim=0).values.tolist()
    # the support is symmetric about the centre: crop it so the kernel stays centred
    m = max(half - r0, r1 - half, half - c0, c1 - half)
    return kernel[half - m : half + m + 1, half - m : half + m + 1].float()


def disk_kernel(radius: float, alias_blur: float) -> torch.Tensor:
    """The reference's defocus kernel: an aliased disk of ``radius`` pixels, Gaussian-smoothed (``alias_blur``)."""
    return _disk_cpu(round(float(radius), 9), float(alias_blur))


@register(
    "defocus_blur",
    family="blur",
    cifar=((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)),
    imagenet=((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)),
    spatial=True,
    random=False,
)
def defocus_blur(x: torch.Tensor, c: tuple[float, float], scale: float, draw: Draw) -> torch.Tensor:
    """Convolve with a disk of radius ``c[0] * scale`` (an out-of-focus lens)."""
    return _ops.pad_conv(x, disk_kernel(c[0] * scale, c[1]))


def glass_shuffle(
    n: int, h: int, w: int, delta: int, iterations: int, draw: Draw, device: torch.device
) -> torch.Tensor:
    """Per image, the pixel order after the reference's local swaps: ``(N, H * W)`` source indices.

    The reference visits pixels ``(h, w)`` for ``h, w`` from ``size - delta`` down to
    ``delta + 1`` and swaps each with the pixel ``(h + dy, w + dx)``, ``dx, dy`` uniform
    in ``[-delta, delta)``. Here the visits run in ``(2 delta)^2`` phases of pixels ``2 delta``
    apart, whose swaps cannot touch the same pixel, so each phase is one vectorised
    step; the swaps are the same kind, only their order differs.
    """
    perm = torch.arange(h * w, device=device).repeat(n, 1)
    hs = torch.arange(h - delta, delta, -1, device=device)
    ws = torch.arange(w - delta, delta, -1, device=device)
    if len(hs) == 0 or len(ws) == 0:
        return perm
    period = 2 * delta
    for it in range(iterations):
        offs = draw.integers(it, 2 * h * w, -delta, delta).to(device)  # (N, 2 H W): dy then dx per pixel
        dy, dx = offs[:, : h * w], offs[:, h * w :]
        for a in range(period):
            for b in range(period):
                rs, cs = hs[hs % period == (h - delta - a) % period], ws[ws % period == (w - delta - b) % period]
                if len(rs) == 0 or len(cs) == 0:
                    continue
                pos = (rs.unsqueeze(1) * w + cs.unsqueeze(0)).reshape(-1)  # (K,)
                partner = pos.unsqueeze(0) + dy[:, pos] * w + dx[:, pos]  # (N, K)
                here = perm[:, pos]
                there = perm.gather(1, partner)
                perm[:, pos] = there
                perm.scatter_(1, partner, here)
    return perm


@register(
    "glass_blur",
    family="blur",
    cifar=((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)),
    imagenet=((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)),
    spatial=True,
)
def glass_blur(x: torch.Tensor, c: tuple[float, int, int], scale: float, draw: Draw) -> torch.Tensor:
    """Gaussian blur, quantise to 8 bits, shuffle pixels locally, blur again (frosted glass)."""
    n, ch, h, w = x.shape
    sigma, delta, iterations = c[0] * scale, max(1, round(c[1] * scale)), int(c[2])
    gh = _ops.gaussian_matrix(h, sigma, device=x.device)
    gw = _ops.gaussian_matrix(w, sigma, device=x.device)
    y = torch.floor(_ops.separable(x, gh, gw).clamp(0, 1) * 255) / 255
    perm = glass_shuffle(n, h, w, delta, iterations, draw, x.device)
    y = y.reshape(n, ch, h * w).gather(2, perm.unsqueeze(1).expand(n, ch, h * w)).reshape(n, ch, h, w)
    return _ops.separable(y, gh, gw)


@register(
    "motion_blur",
    family="blur",
    cifar=((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)),
    imagenet=((10, 3), (15, 5), (15, 8), (15, 12), (20, 15)),
    spatial=True,
)
def motion_blur(x: torch.Tensor, c: tuple[float, float], scale: float, draw: Draw) -> torch.Tensor:
    """A one-sided Gaussian streak (radius, sigma) at an angle uniform in [-45, 45] degrees."""
    angle = draw.uniform(0, 1, -45.0, 45.0)[:, 0].to(x.device)
    return _ops.motion_blur(x, c[0] * scale, c[1] * scale, angle)


def _zoom_factors(stop: float, step: float) -> list[float]:
    return [float(z) for z in np.arange(1, stop, step)]  # np.arange's length, as in the reference


@register(
    "zoom_blur",
    family="blur",
    cifar=((1.06, 0.01), (1.11, 0.01), (1.16, 0.01), (1.21, 0.01), (1.26, 0.01)),
    imagenet=((1.11, 0.01), (1.16, 0.01), (1.21, 0.02), (1.26, 0.02), (1.31, 0.03)),
    spatial=True,
    random=False,
)
def zoom_blur(x: torch.Tensor, c: tuple[float, float], scale: float, draw: Draw) -> torch.Tensor:
    """The mean of the image and its zooms into the centre by each factor in ``arange(1, stop, step)``."""
    factors = _zoom_factors(*c)
    out = x.clone()
    for z in factors:
        out += x if z == 1.0 else _ops.clipped_zoom(x, z)
    return out / (len(factors) + 1)
