"""The noise family: Gaussian, shot (Poisson) and impulse (salt-and-pepper) noise, per pixel.

Noise acts on each pixel alone, so its parameters do not depend on the image size.
"""

from __future__ import annotations

import torch

from ._registry import Draw, register

__all__ = ["gaussian_noise", "shot_noise", "impulse_noise", "poisson"]

# Below this rate a Poisson draw is exact (inverse CDF); above it, a rounded normal approximation.
_POISSON_EXACT_BELOW = 16.0


@register(
    "gaussian_noise",
    family="noise",
    cifar=(0.04, 0.06, 0.08, 0.09, 0.10),
    imagenet=(0.08, 0.12, 0.18, 0.26, 0.38),
    spatial=False,
)
def gaussian_noise(x: torch.Tensor, c: float, scale: float, draw: Draw) -> torch.Tensor:
    """Add N(0, c^2) to every value."""
    z = draw.normal(0, x[0].numel()).view_as(x).to(x)
    return x + c * z


def poisson(rate: torch.Tensor, u: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Poisson counts of ``rate`` from a uniform ``u`` and a standard normal ``z`` of the same shape.

    Exact by inverse CDF where the rate is below 16; above, ``round(rate + sqrt(rate) * z)``
    (at rate 16 the approximation's CDF is within about 1% of the Poisson's; the
    difference shrinks as the rate grows).
    """
    out = torch.clamp(torch.floor(rate + rate.clamp_min(0).sqrt() * z + 0.5), min=0.0)
    small = rate < _POISSON_EXACT_BELOW
    if bool(small.any()):
        lam, us = rate[small], u[small]
        p = torch.exp(-lam)
        cdf = p.clone()
        k = torch.zeros_like(lam)
        step = 0
        while True:
            above = us > cdf
            if not bool(above.any()) or step > 200:
                break
            step += 1
            k += above.to(k.dtype)
            p = p * lam / step
            cdf = cdf + p
        out[small] = k
    return out


@register("shot_noise", family="noise", cifar=(500, 250, 100, 75, 50), imagenet=(60, 25, 12, 5, 3), spatial=False)
def shot_noise(x: torch.Tensor, c: float, scale: float, draw: Draw) -> torch.Tensor:
    """Poisson(c * x) / c: photon noise of a sensor that counts ``c`` photons at full intensity."""
    m = x[0].numel()
    u = draw.uniform(0, m).view_as(x).to(x)
    z = draw.normal(1, m).view_as(x).to(x)
    return poisson(x * c, u, z) / c


@register(
    "impulse_noise",
    family="noise",
    cifar=(0.01, 0.02, 0.03, 0.05, 0.07),
    imagenet=(0.03, 0.06, 0.09, 0.17, 0.27),
    spatial=False,
)
def impulse_noise(x: torch.Tensor, c: float, scale: float, draw: Draw) -> torch.Tensor:
    """Salt and pepper: each value becomes 0 or 1 (equally likely) with probability ``c``."""
    u = draw.uniform(0, x[0].numel()).view_as(x).to(x)
    out = torch.where(u < c, (u < 0.5 * c).to(x.dtype), x)
    return out
