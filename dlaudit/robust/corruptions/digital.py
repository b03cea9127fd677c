"""The digital family: brightness, contrast, elastic transform, pixelate and JPEG compression."""

from __future__ import annotations

import io

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from . import _ops
from ._registry import Draw, register

__all__ = ["brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression"]


@register(
    "brightness",
    family="digital",
    cifar=(0.05, 0.1, 0.15, 0.2, 0.3),
    imagenet=(0.1, 0.2, 0.3, 0.4, 0.5),
    spatial=False,
    random=False,
)
def brightness(x: torch.Tensor, c: float, scale: float, draw: Draw) -> torch.Tensor:
    """Add ``c`` to the HSV value (V = max(R, G, B)), clipped at 1: hue and saturation stay.

    With hue and saturation fixed, RGB is proportional to V, so the pixel scales by
    ``V' / V``; a black pixel (V = 0, no hue) becomes grey ``V'``. Not torchvision's
    ``adjust_brightness``, which multiplies. One-channel images: ``x + c``.
    """
    if x.shape[1] != 3:
        return x + c
    v = x.amax(dim=1, keepdim=True)
    v_new = (v + c).clamp(max=1.0)
    ratio = v_new / v.clamp_min(1e-12)
    return torch.where(v > 0, x * ratio, v_new.expand_as(x))


@register(
    "contrast",
    family="digital",
    cifar=(0.75, 0.5, 0.4, 0.3, 0.15),
    imagenet=(0.4, 0.3, 0.2, 0.1, 0.05),
    spatial=False,
    random=False,
)
def contrast(x: torch.Tensor, c: float, scale: float, draw: Draw) -> torch.Tensor:
    """Shrink every channel towards its image mean by the factor ``c``."""
    mean = x.mean(dim=(2, 3), keepdim=True)
    return (x - mean) * c + mean


def _affine_from_points(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """The (N, 3, 3) affine maps taking the three points ``src`` (3, 2) to ``dst`` (N, 3, 2)."""
    a = torch.cat([src, torch.ones(3, 1, dtype=src.dtype, device=src.device)], dim=1)  # (3, 3)
    m = torch.linalg.solve(a, dst)  # (N, 3, 2): rows of [x, y, 1] @ m = dst
    out = torch.zeros(dst.shape[0], 3, 3, dtype=dst.dtype, device=dst.device)
    out[:, :2, :] = m.transpose(1, 2)
    out[:, 2, 2] = 1.0
    return out


_S = 32  # the CIFAR code's IMSIZE; the ImageNet code multiplies by 244 (its comment: "should have been 224")
_I = 244


@register(
    "elastic_transform",
    family="digital",
    cifar=tuple(
        (_S * a, _S * s, _S * r)
        for a, s, r in ((0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05), (0.1, 0.03, 0.03))
    ),
    imagenet=tuple(
        (_I * a, _I * s, _I * r)
        for a, s, r in ((2, 0.7, 0.1), (2, 0.08, 0.2), (0.05, 0.01, 0.02), (0.07, 0.01, 0.02), (0.12, 0.01, 0.02))
    ),
    spatial=True,
)
def elastic_transform(x: torch.Tensor, c: tuple[float, float, float], scale: float, draw: Draw) -> torch.Tensor:
    """A random affine warp, then a smooth random displacement field (Simard et al. 2003).

    ``c`` = (displacement scale alpha, smoothing sigma, affine jitter), in pixels at the
    reference size. The affine moves three points around the centre by U(-jitter, jitter);
    the field is U(-1, 1) per pixel, Gaussian-smoothed (sigma, mirrored borders, truncated
    at 3 sigma), times alpha. Both warps are composed into one bilinear resampling
    (the reference resamples twice); borders mirror.
    """
    alpha, sigma, jitter = (v * scale for v in c)
    n, _, h, w = x.shape
    dev = x.device
    centre = torch.tensor([w // 2, h // 2], dtype=torch.float32, device=dev)
    sq = min(h, w) // 3
    src = torch.stack([centre + sq, torch.stack([centre[0] + sq, centre[1] - sq]), centre - sq])  # (x, y) points
    dst = src.unsqueeze(0) + draw.uniform(0, 6, -jitter, jitter).to(dev).view(n, 3, 2)
    inv = torch.linalg.inv(_affine_from_points(src, dst))  # output -> input of the affine warp
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=torch.float32, device=dev),
        torch.arange(w, dtype=torch.float32, device=dev),
        indexing="ij",
    )
    px, py = xs.expand(n, h, w), ys.expand(n, h, w)
    if alpha > 0 and sigma > 0:
        gh = _ops.gaussian_matrix(h, sigma, truncate=3.0, mode="reflect", device=dev)
        gw = _ops.gaussian_matrix(w, sigma, truncate=3.0, mode="reflect", device=dev)
        field = draw.uniform(1, 2 * h * w, -1.0, 1.0).to(dev).view(n, 2, h, w)
        field = _ops.separable(field, gh, gw) * alpha
        py, px = py + field[:, 0], px + field[:, 1]
    sx = inv[:, 0, 0, None, None] * px + inv[:, 0, 1, None, None] * py + inv[:, 0, 2, None, None]
    sy = inv[:, 1, 0, None, None] * px + inv[:, 1, 1, None, None] * py + inv[:, 1, 2, None, None]
    grid = torch.stack([(2 * sx + 1) / w - 1, (2 * sy + 1) / h - 1], dim=-1).to(x)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


@register(
    "pixelate",
    family="digital",
    cifar=(0.95, 0.9, 0.85, 0.75, 0.65),
    imagenet=(0.6, 0.5, 0.4, 0.3, 0.25),
    spatial=False,
    random=False,
)
def pixelate(x: torch.Tensor, c: float, scale: float, draw: Draw) -> torch.Tensor:
    """Shrink to ``int(c * size)`` and enlarge back, both with PIL's BOX filter."""
    _, _, h, w = x.shape
    sh, sw = max(1, int(h * c)), max(1, int(w * c))
    dev = x.device
    down = _ops.separable(x, _ops.box_resize_matrix(h, sh, dev), _ops.box_resize_matrix(w, sw, dev))
    return _ops.separable(down, _ops.box_resize_matrix(sh, h, dev), _ops.box_resize_matrix(sw, w, dev))


@register(
    "jpeg_compression",
    family="digital",
    cifar=(80, 65, 58, 50, 40),
    imagenet=(25, 18, 15, 10, 7),
    spatial=False,
    random=False,
)
def jpeg_compression(x: torch.Tensor, c: int, scale: float, draw: Draw) -> torch.Tensor:
    """Encode as an 8-bit JPEG at quality ``c`` and decode, with PIL as the reference does (on the CPU).

    RGB images are encoded in colour (PIL's default 4:2:0 chroma subsampling), one-channel
    images as greyscale, other channel counts channel by channel.
    """
    q = (x.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    out = np.empty_like(q)
    for i, img in enumerate(q):
        planes = [img.transpose(1, 2, 0)] if img.shape[0] == 3 else list(img)
        for j, plane in enumerate(planes):
            buf = io.BytesIO()
            Image.fromarray(np.ascontiguousarray(plane)).save(buf, format="JPEG", quality=int(c))
            buf.seek(0)
            dec = np.asarray(Image.open(buf))
            if img.shape[0] == 3:
                out[i] = dec.transpose(2, 0, 1)
            else:
                out[i, j] = dec
    return torch.from_numpy(out).to(device=x.device, dtype=x.dtype) / 255
