"""Common corruptions of images: 15 corruptions in 4 families at 5 severities.

Hendrycks and Dietterich 2019, "Benchmarking neural network robustness to common
corruptions and perturbations" (ICLR 2019), https://arxiv.org/abs/1903.12261: noise
(gaussian, shot, impulse), blur (defocus, glass, motion, zoom), weather (snow, frost,
fog) and digital (brightness, contrast, elastic transform, pixelate, JPEG). Written in
torch after the paper's reference code (``make_cifar_c.py`` and ``make_imagenet_c.py``
in https://github.com/hendrycks/robustness): batched, on the input's device, and
deterministic under a seed.

Parameters and image sizes
--------------------------
The reference code has two parameter tables: CIFAR-10-C (written for 32x32 images) and
ImageNet-C (224x224). ``reference="auto"`` uses CIFAR-10-C's for images whose shorter
side is below 128 pixels (digits, MNIST, CIFAR, Tiny ImageNet) and ImageNet-C's from
128 on; either can be forced. Let ``s`` be the shorter side over the table's size
(32 or 224).

- Per-pixel corruptions (the noise family, brightness, contrast, JPEG) use the
  table's values at every size. Pixelate shrinks to the table's fraction of the size.
  Zoom blur's factors and fog's fractal (one map over the whole image) are relative
  to the image already.
- Spatial corruptions (blur, snow, frost, fog, elastic) at ``s >= 1`` multiply their
  lengths in pixels by ``s``: disk, streak and elastic radii and sigmas, glass blur's
  displacement (rounded, at least 1), snow's flake zoom.
- Spatial corruptions at ``s < 1`` (an 8x8 digit, a 28x28 MNIST image under the CIFAR
  table) run on the image upsampled bilinearly to the table's size, with the table's
  values unchanged, and the change they make is averaged back to the image's pixels:
  ``x + area_down(C(up(x)) - up(x))``. An 8x8 digit thus gets the blur a 32x32 copy of
  it would get, seen at 8x8: a severity is the same fraction of the image at every size.
  Pixel-level effects (glass blur's swaps, snow's fine flakes) are averaged away more
  at 8x8 than at 32x32, so these corruptions are milder on tiny images.

Randomness
----------
Every random number an image gets is a function of (seed, corruption, severity, the
image's global index, what the number is for), drawn per fixed chunk of image indices
with :mod:`dlaudit.robust._random` (the helper the noise and attacks use). The same
image is corrupted identically in any batch and in any order; the numbers are drawn on
the CPU and moved to the images' device.

Deviations from the reference code
----------------------------------
- Frost: the paper blends crops of six frost photographs, which are not shipped here.
  A seeded procedural texture stands in (ridged multi-octave noise, tinted blue, with
  the photographs' mean, spread and fineness as the reference crops them); the blend
  weights are the paper's. Numbers under frost are therefore close to, not equal to,
  the paper's.
- Shot noise: Poisson counts are exact below a rate of 16; above, a rounded normal
  approximation (there the two CDFs differ by about 1% at most).
- Glass blur: the reference swaps pixels one at a time in a fixed sweep; here the same
  swaps are applied in phases of pixels far enough apart not to interact (vectorised),
  so their order differs.
- Motion blur and snow: ImageMagick's motion blur is reimplemented (as the
  ``imagecorruptions`` package does): a one-sided half-Gaussian streak, edges repeated.
- Elastic transform: the affine warp and the displacement field are composed into one
  bilinear resampling (the reference resamples twice), borders mirrored.
- Zoom blur: a continuous zoom about the centre (the reference crops to a whole number
  of pixels first).
- JPEG: PIL's encoder, as in the reference (torchvision's ``jpeg`` would do the same
  through libjpeg, but torchvision 0.29 deprecates its image encoding); it runs on the
  CPU, image by image, and the result is moved back.
- Severity is monotone in the mean absolute pixel change for every corruption except
  where the reference's own parameters are not (the tests list them): CIFAR-10-C's
  elastic transform moves pixels most at severity 1 (a large affine jitter, no
  displacement field), ImageNet-C's moves them most at severity 2; snow, frost and
  fog (random textures drawn anew per severity) and glass, motion blur and pixelate at
  some sizes grow only on average (see ``tests/robust/test_corruptions.py``).

Public API: :data:`CORRUPTIONS`, :data:`FAMILIES`, :func:`corrupt`,
:func:`corruption_accuracy` and its :class:`CorruptionResult`.
"""

from __future__ import annotations

from . import blur, digital, noise, weather  # noqa: F401  (registers the corruptions)
from .api import (
    CORRUPTIONS,
    FAMILIES,
    REFERENCES,
    SEVERITIES,
    CorruptionResult,
    corrupt,
    corruption_accuracy,
    reference_for,
)

__all__ = [
    "CORRUPTIONS",
    "FAMILIES",
    "REFERENCES",
    "SEVERITIES",
    "CorruptionResult",
    "corrupt",
    "corruption_accuracy",
    "reference_for",
]
