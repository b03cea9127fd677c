"""The corruption registry and the per-image random numbers every corruption draws from."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .. import _random

__all__ = ["ORDER", "FAMILY_ORDER", "Corruption", "Draw", "REGISTRY", "register"]

#: The paper's 15 corruptions, in its order (Hendrycks and Dietterich 2019, figure 1).
ORDER = (
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "glass_blur",
    "motion_blur",
    "zoom_blur",
    "snow",
    "frost",
    "fog",
    "brightness",
    "contrast",
    "elastic_transform",
    "pixelate",
    "jpeg_compression",
)
FAMILY_ORDER = ("noise", "blur", "weather", "digital")

# A corruption's function: (images in [0, 1] as float32 (N, C, H, W), the severity's parameters,
# the spatial scale, the per-image random numbers) -> corrupted images (clipped by the caller).
CorruptionFn = Callable[[torch.Tensor, Any, float, "Draw"], torch.Tensor]


@dataclass(frozen=True)
class Corruption:
    """One corruption: its name, family and its parameters at severities 1-5 for both reference sizes.

    ``cifar`` holds the parameters of the CIFAR-10-C code (32x32 images), ``imagenet``
    those of the ImageNet-C code (224x224). ``spatial`` corruptions act on neighbourhoods
    of pixels: their size-dependent parameters scale with the image, and images smaller
    than the reference are corrupted at the reference size (see the package docstring).
    """

    name: str
    family: str
    fn: CorruptionFn
    cifar: tuple[Any, ...]
    imagenet: tuple[Any, ...]
    spatial: bool
    random: bool


REGISTRY: dict[str, Corruption] = {}


def register(
    name: str, *, family: str, cifar: Sequence[Any], imagenet: Sequence[Any], spatial: bool, random: bool = True
) -> Callable[[CorruptionFn], CorruptionFn]:
    """Register a corruption function under ``name`` (a decorator)."""
    if name not in ORDER or family not in FAMILY_ORDER:
        raise ValueError(f"{name!r} ({family!r}) is not one of the paper's corruptions")
    if len(cifar) != 5 or len(imagenet) != 5:
        raise ValueError(f"{name}: parameters for 5 severities needed")

    def wrap(fn: CorruptionFn) -> CorruptionFn:
        REGISTRY[name] = Corruption(name, family, fn, tuple(cifar), tuple(imagenet), spatial, random)
        return fn

    return wrap


class Draw:
    """Random numbers for a batch of images, each row a function of (seed, corruption, severity, image index).

    Drawn with :mod:`dlaudit.robust._random` (fixed chunks of images, each chunk from a
    generator seeded by the seed and the stream), so an image gets the same numbers
    whatever batch it is corrupted in and in whatever order. ``counter`` separates the
    independent draws one corruption makes (noise field, angle, ...). The numbers are
    drawn on the CPU and moved to the images' device.
    """

    def __init__(self, seed: int, name: str, severity: int, index: torch.Tensor) -> None:
        self.seed = int(seed)
        self.stream = (zlib.crc32(name.encode()) * 8 + int(severity)) * 256
        self.index = index

    @property
    def n(self) -> int:
        return len(self.index)

    def _stream(self, counter: int) -> int:
        if not 0 <= counter < 256:
            raise ValueError(f"counter must be in [0, 256), got {counter}")
        return self.stream + counter

    def uniform(self, counter: int, n: int, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
        """Uniform numbers in ``[low, high)``, shape ``(N, n)`` (float32, on the index's device)."""
        u = _random.uniform_at((n,), self.index, seed=self.seed, stream=self._stream(counter))  # U(-1, 1)
        u = (u + 1.0) * 0.5
        return (low + (high - low) * u).to(self.index.device)

    def normal(self, counter: int, n: int) -> torch.Tensor:
        """Standard normal numbers, shape ``(N, n)`` (float32, on the index's device)."""
        return _random.normal_at((n,), self.index, seed=self.seed, stream=self._stream(counter)).to(self.index.device)

    def integers(self, counter: int, n: int, low: int, high: int) -> torch.Tensor:
        """Integers in ``[low, high)``, shape ``(N, n)`` (int64, on the index's device)."""
        u = self.uniform(counter, n)
        return (low + torch.floor(u * (high - low))).long().clamp_(low, high - 1)
