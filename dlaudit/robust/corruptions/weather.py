"""The weather family: snow, frost and fog."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import _ops
from ._registry import Draw, register

__all__ = ["snow", "frost", "fog", "plasma_fractal", "frost_texture"]


@register(
    "snow",
    family="weather",
    cifar=(
        (0.1, 0.2, 1, 0.6, 8, 3, 0.95),
        (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
        (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
        (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
        (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8),
    ),
    imagenet=(
        (0.1, 0.3, 3, 0.5, 10, 4, 0.8),
        (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
        (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
        (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
        (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55),
    ),
    spatial=True,
)
def snow(x: torch.Tensor, c: tuple[float, ...], scale: float, draw: Draw) -> torch.Tensor:
    """Falling snow: a thresholded, zoomed Gaussian field streaked by motion blur, over a whitened image.

    ``c`` = (field mean, field std, zoom, threshold, streak radius, streak sigma, image weight).
    """
    loc, std, zoom, threshold, radius, sigma, keep = c
    n, _, h, w = x.shape
    layer = (loc + std * draw.normal(0, h * w)).to(x).view(n, 1, h, w)
    layer = _ops.clipped_zoom(layer, zoom * scale)
    layer = torch.where(layer < threshold, torch.zeros_like(layer), layer)
    layer = torch.floor(layer.clamp(0, 1) * 255) / 255  # the reference writes the layer as an 8-bit PNG
    angle = draw.uniform(1, 1, -135.0, -45.0)[:, 0].to(x.device)
    layer = _ops.motion_blur(layer, radius * scale, sigma * scale, angle)
    x = keep * x + (1 - keep) * torch.maximum(x, _ops.gray(x) * 1.5 + 0.5)
    return x + layer + layer.flip(-1, -2)


def frost_texture(n: int, h: int, w: int, channels: int, draw: Draw, device: torch.device) -> torch.Tensor:
    """Seeded procedural frost, ``(N, C, H, W)`` in [0, 1], one texture per image.

    A stand-in for the paper's six frost photographs (not shipped here): ridged
    multi-octave value noise (thin bright veins, like ice crystals) with a per-image
    brightness, matched to the photographs' statistics as the reference crops them
    (mean about 0.6, standard deviation about 0.13, mean neighbour difference about
    half the standard deviation at 32x32) and tinted blue (R < G < B, as in the photographs).
    """
    out = torch.zeros(n, 1, h, w, device=device)
    size = max(h, w)
    cells, k, total = 4, 0, 0.0
    while cells <= 2 * size:
        wt = 0.75**k
        u = draw.uniform(10 + k, cells * cells).to(device).view(n, 1, cells, cells)
        up = F.interpolate(u, size=(h, w), mode="bicubic", align_corners=False)
        out += wt * (1 - (2 * up - 1).abs()) ** 3  # ridges: bright thin veins where the noise crosses 0.5
        total += wt
        cells, k = cells * 2, k + 1
    out = out / total
    out = (out - out.mean(dim=(2, 3), keepdim=True)) / out.std(dim=(2, 3), keepdim=True).clamp_min(1e-6)
    level = draw.uniform(9, 1, 0.45, 0.8).to(device).view(n, 1, 1, 1)
    tex = level + 0.13 * out
    if channels == 3:
        tint = torch.tensor([-0.06, 0.0, 0.05], device=device).view(1, 3, 1, 1)
        tex = tex + tint
    else:
        tex = tex.expand(n, channels, h, w)
    return tex.clamp(0, 1)


@register(
    "frost",
    family="weather",
    cifar=((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)),
    imagenet=((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)),
    spatial=True,
)
def frost(x: torch.Tensor, c: tuple[float, float], scale: float, draw: Draw) -> torch.Tensor:
    """``c[0] * image + c[1] * frost``: frost on a lens or window (procedural texture, see :func:`frost_texture`)."""
    n, ch, h, w = x.shape
    return c[0] * x + c[1] * frost_texture(n, h, w, ch, draw, x.device).to(x)


def plasma_fractal(n: int, mapsize: int, decay: float, draw: Draw, device: torch.device) -> torch.Tensor:
    """Diamond-square height maps, ``(N, mapsize, mapsize)`` in [0, 1] (the reference's ``plasma_fractal``, batched).

    ``mapsize`` is a power of two; the random perturbation starts at 100 (times
    U(-100, 100)) and is divided by ``decay`` at every halving of the step.
    """
    grid = torch.zeros(n, mapsize, mapsize, dtype=torch.float64, device=device)
    step, wibble, level = mapsize, 100.0, 0

    def wibbled(a: torch.Tensor, counter: int) -> torch.Tensor:
        u = draw.uniform(3 * level + counter, a[0].numel(), -1.0, 1.0).to(device=device, dtype=a.dtype)
        return a / 4 + wibble * wibble * u.view_as(a)

    while step >= 2:
        half = step // 2
        # squares: centre of each square = mean of its corners + noise
        corners = grid[:, 0:mapsize:step, 0:mapsize:step]
        acc = corners + torch.roll(corners, shifts=-1, dims=1)
        acc = acc + torch.roll(acc, shifts=-1, dims=2)
        grid[:, half:mapsize:step, half:mapsize:step] = wibbled(acc, 0)
        # diamonds: edge midpoints = mean of their four neighbours + noise
        dr = grid[:, half:mapsize:step, half:mapsize:step]
        ul = grid[:, 0:mapsize:step, 0:mapsize:step]
        lt = dr + torch.roll(dr, 1, dims=1) + ul + torch.roll(ul, -1, dims=2)
        grid[:, 0:mapsize:step, half:mapsize:step] = wibbled(lt, 1)
        tt = dr + torch.roll(dr, 1, dims=2) + ul + torch.roll(ul, -1, dims=1)
        grid[:, half:mapsize:step, 0:mapsize:step] = wibbled(tt, 2)
        step, wibble, level = half, wibble / decay, level + 1
    flat = grid.reshape(n, -1)
    flat = flat - flat.min(dim=1, keepdim=True).values
    flat = flat / flat.max(dim=1, keepdim=True).values.clamp_min(1e-12)
    return flat.reshape(n, mapsize, mapsize).float()


@register(
    "fog",
    family="weather",
    cifar=((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)),
    imagenet=((1.5, 2), (2, 2), (2.5, 1.7), (2.5, 1.5), (3, 1.4)),
    spatial=True,
)
def fog(x: torch.Tensor, c: tuple[float, float], scale: float, draw: Draw) -> torch.Tensor:
    """Add ``c[0]`` times a plasma fractal (decay ``c[1]``), then rescale by ``max / (max + c[0])``."""
    n, _, h, w = x.shape
    mapsize = 1 << max(1, (max(h, w) - 1).bit_length())
    plasma = plasma_fractal(n, mapsize, c[1], draw, x.device)[:, None, :h, :w].to(x)
    top = x.reshape(n, -1).max(dim=1).values.view(n, 1, 1, 1)
    return (x + c[0] * plasma) * top / (top + c[0])
