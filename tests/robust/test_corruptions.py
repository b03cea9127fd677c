"""Common corruptions (Hendrycks and Dietterich 2019): contract, determinism, severity order, exact cases."""

from __future__ import annotations

import importlib
import os
import sys
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

from dlaudit.errors import ConfigError, DataError
from dlaudit.robust.corruptions import (
    CORRUPTIONS,
    FAMILIES,
    CorruptionResult,
    _ops,
    corrupt,
    corruption_accuracy,
    reference_for,
)
from dlaudit.robust.corruptions._registry import REGISTRY, Draw
from dlaudit.robust.corruptions.blur import glass_shuffle
from dlaudit.robust.corruptions.noise import poisson

RANDOM = tuple(n for n in CORRUPTIONS if REGISTRY[n].random)

# -- images ---------------------------------------------------------------------------------


def _digits(n: int, size: int) -> torch.Tensor:
    d = torch.tensor(load_digits().images[:n], dtype=torch.float32)[:, None] / 16
    return d if size == 8 else F.interpolate(d, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)


def _natural(n: int, c: int, size: int, seed: int = 0) -> torch.Tensor:
    """CIFAR-like stand-ins: multi-octave smooth noise plus a few hard-edged rectangles, in [0.1, 0.9]."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, c, size, size)
    cells, wt = 3, 1.0
    while cells <= size:
        z = torch.rand(n, c, cells, cells, generator=g) - 0.5
        x += wt * F.interpolate(z, size=(size, size), mode="bicubic", align_corners=False)
        cells, wt = cells * 2, wt * 0.6
    for _ in range(3):
        r = (torch.rand(n, 4, generator=g) * size).long().sort(dim=1).values
        m = torch.zeros(n, 1, size, size)
        for i in range(n):
            m[i, :, r[i, 0] : r[i, 2] + 1, r[i, 1] : r[i, 3] + 1] = 1
        x += m * (torch.rand(n, c, 1, 1, generator=g) - 0.5)
    lo, hi = x.amin((1, 2, 3), keepdim=True), x.amax((1, 2, 3), keepdim=True)
    return 0.1 + 0.8 * (x - lo) / (hi - lo)


_CACHE: dict[int, torch.Tensor] = {}


def images(size: int) -> torch.Tensor:
    """8x8x1 and 28x28x1 digits, 32x32x3 and (two) 224x224x3 natural-ish images."""
    if size not in _CACHE:
        _CACHE[size] = {
            8: lambda: _digits(96, 8),
            28: lambda: _digits(24, 28),
            32: lambda: _natural(24, 3, 32),
            224: lambda: _natural(3, 3, 224),
        }[size]()
    return _CACHE[size]


SIZES = (8, 28, 32, 224)

# -- the registry ---------------------------------------------------------------------------


def test_registry_lists_the_papers_fifteen_corruptions_in_four_families():
    assert len(CORRUPTIONS) == 15 and len(set(CORRUPTIONS)) == 15
    assert list(FAMILIES) == ["noise", "blur", "weather", "digital"]
    assert [n for f in FAMILIES.values() for n in f] == list(CORRUPTIONS)
    assert FAMILIES["weather"] == ("snow", "frost", "fog")


def test_reference_table_follows_the_image_size():
    assert reference_for(8, 8) == reference_for(32, 32) == reference_for(127, 200) == "cifar"
    assert reference_for(128, 128) == reference_for(224, 224) == "imagenet"
    assert reference_for(224, 224, "cifar") == "cifar"
    with pytest.raises(ConfigError, match="unknown reference 'tiny'; choose from: auto, cifar, imagenet"):
        reference_for(32, 32, "tiny")


# -- the contract: every corruption x severity x size ------------------------------------------


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", CORRUPTIONS)
def test_every_severity_keeps_shape_dtype_device_and_range(name, size):
    x = images(size)[:12]
    for s in range(1, 6):
        y = corrupt(x, name, s, seed=0)
        assert y.shape == x.shape and y.dtype == x.dtype and y.device == x.device
        assert bool(torch.isfinite(y).all())
        assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
        assert float((y - x).abs().mean()) > 0, f"{name}@{s} left {size}x{size} images unchanged"


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_value_range_is_respected_and_equivalent_to_unit_range(name):
    x = images(32)[:3]
    y01 = corrupt(x, name, 3, seed=1)
    y = corrupt(x * 2 - 1, name, 3, seed=1, value_range=(-1, 1))
    assert float(y.min()) >= -1 and float(y.max()) <= 1
    torch.testing.assert_close(y, y01 * 2 - 1, atol=1e-5, rtol=0)


def test_half_precision_in_half_precision_out():
    x = images(32)[:2].half()
    y = corrupt(x, "gaussian_noise", 2, seed=0)
    assert y.dtype == torch.float16 and y.shape == x.shape


def test_other_channel_counts_and_non_square_images():
    x = torch.rand(2, 2, 20, 36)
    for name in CORRUPTIONS:
        y = corrupt(x, name, 5, seed=0)
        assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 1, name


def test_empty_batch():
    x = torch.rand(0, 3, 32, 32)
    assert corrupt(x, "snow", 1, seed=0).shape == x.shape


# -- determinism -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", (28, 32))
@pytest.mark.parametrize("name", CORRUPTIONS)
def test_same_seed_same_images_whatever_the_batch_or_order(name, size):
    x = images(size)[:5]
    whole = corrupt(x, name, 4, seed=7, index_offset=10)
    torch.testing.assert_close(corrupt(x, name, 4, seed=7, index_offset=10), whole, atol=0, rtol=0)
    one_by_one = torch.cat([corrupt(x[i : i + 1], name, 4, seed=7, index_offset=10 + i) for i in range(5)])
    torch.testing.assert_close(one_by_one, whole, atol=1e-6, rtol=0)
    order = torch.tensor([3, 0, 4, 1, 2])
    shuffled = corrupt(x[order], name, 4, seed=7, index=order + 10)
    torch.testing.assert_close(shuffled, whole[order], atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", RANDOM)
def test_different_seeds_and_images_differ(name):
    x = images(32)[:3]
    a, b = corrupt(x, name, 3, seed=0), corrupt(x, name, 3, seed=1)
    assert float((a - b).abs().max()) > 1e-3, f"{name}: seeds 0 and 1 gave the same images"
    # the same image at another global index gets other numbers
    same = x[:1].expand(2, -1, -1, -1)
    c = corrupt(same, name, 3, seed=0)
    assert float((c[0] - c[1]).abs().max()) > 1e-3


@pytest.mark.parametrize("name", [n for n in CORRUPTIONS if n not in RANDOM])
def test_deterministic_corruptions_ignore_the_seed(name):
    x = images(32)[:2]
    torch.testing.assert_close(corrupt(x, name, 3, seed=0), corrupt(x, name, 3, seed=99), atol=0, rtol=0)


# -- severity order ------------------------------------------------------------------------------

# Where the reference's own parameters do not grow the mean pixel change at every step,
# a weaker order is tested ("non-decreasing on average"), and elastic not at all:
# - snow: severities 2 and 3 change images about equally in both tables (the ImageNet-C
#   code, run through `imagecorruptions`, shows the same on these images);
# - fog: a new fractal per severity; at 224 the ImageNet-C code's changes are not ordered either;
# - frost: the image's weight falls and the frost's rises, and each severity draws other
#   textures, so the change is noisy on mid-grey images (also with the photographs);
# - glass blur (CIFAR): severities 1-3 differ only in the blur around the same swaps;
# - motion blur (CIFAR): severities 3 and 4 are the same streak (sigma 2: taps past 6 px weigh ~1%);
# - pixelate on 8x8 and 28x28: int(size * c) is the same for neighbouring severities;
# - elastic transform: CIFAR-10-C's affine jitter shrinks from severity 1 to 5 (the
#   displacement field grows but stays below a pixel); ImageNet-C's severities 1-2 warp far
#   more than 3-5. Its severities are not ordered by pixel change in the reference.
WEAK = {"snow", "frost", "fog", "glass_blur", "motion_blur", "pixelate"}
UNORDERED = {"elastic_transform"}


def _change(x: torch.Tensor, name: str) -> list[float]:
    return [float((corrupt(x, name, s, seed=0) - x).abs().mean()) for s in range(1, 6)]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", [n for n in CORRUPTIONS if n not in UNORDERED])
def test_mean_pixel_change_grows_with_severity(name, size):
    ch = _change(images(size), name)
    if name in WEAK:
        assert ch[4] > ch[0] and (ch[3] + ch[4]) > (ch[0] + ch[1]) * 0.95, f"{name} at {size}: {np.round(ch, 4)}"
    else:
        assert all(b > a for a, b in zip(ch, ch[1:])), f"{name} at {size}: {np.round(ch, 4)}"


def test_frost_hides_more_of_the_image_as_severity_grows():
    x = images(32)
    xc = x - x.mean(dim=(1, 2, 3), keepdim=True)

    def corr(s: int) -> float:
        y = corrupt(x, "frost", s, seed=0)
        yc = y - y.mean(dim=(1, 2, 3), keepdim=True)
        return float(((xc * yc).sum((1, 2, 3)) / (xc.flatten(1).norm(dim=1) * yc.flatten(1).norm(dim=1))).mean())

    cs = [corr(s) for s in range(1, 6)]
    assert cs[4] < cs[0] and cs[3] < cs[1], np.round(cs, 3)


# -- exact cases ------------------------------------------------------------------------------


def test_brightness_adds_to_hsv_value_not_a_multiply():
    x = torch.tensor([[0.5, 0.0], [0.25, 0.0], [0.0, 0.0]]).view(1, 3, 1, 2)  # an orange pixel and a black one
    y = corrupt(x, "brightness", 1, seed=0)  # CIFAR table: V + 0.05
    torch.testing.assert_close(y[0, :, 0, 0], torch.tensor([0.55, 0.275, 0.0]))
    torch.testing.assert_close(y[0, :, 0, 1], torch.tensor([0.05, 0.05, 0.05]))
    g = corrupt(torch.full((1, 1, 4, 4), 0.98), "brightness", 5, seed=0)
    torch.testing.assert_close(g, torch.ones(1, 1, 4, 4))


def test_contrast_shrinks_each_channel_towards_its_mean():
    x = torch.tensor([0.0, 1.0, 0.5, 0.5]).view(1, 1, 2, 2)
    y = corrupt(x, "contrast", 2, seed=0)  # CIFAR: factor 0.5 around the mean 0.5
    torch.testing.assert_close(y.flatten(), torch.tensor([0.25, 0.75, 0.5, 0.5]))


def test_pixelate_is_pil_box_down_and_up():
    m = _ops.box_resize_matrix(4, 2)
    torch.testing.assert_close(m, torch.tensor([[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]]))
    up = _ops.box_resize_matrix(2, 4)
    torch.testing.assert_close(up, torch.tensor([[1.0, 0], [1, 0], [0, 1], [0, 1]]))


def test_gaussian_matrix_matches_scipy_modes():
    from scipy.ndimage import gaussian_filter1d

    v = np.random.default_rng(0).random(7)
    for mode in ("nearest", "reflect"):
        for sigma, truncate in ((0.8, 4.0), (5.0, 3.0)):  # the second kernel is wider than the signal
            ref = gaussian_filter1d(v, sigma, mode=mode, truncate=truncate)
            ours = _ops.gaussian_matrix(7, sigma, truncate=truncate, mode=mode).double() @ torch.tensor(v)
            np.testing.assert_allclose(ours.numpy(), ref, atol=1e-6)


def test_poisson_sampler_mean_and_variance():
    g = torch.Generator().manual_seed(0)
    for lam in (0.3, 3.0, 40.0):
        rate = torch.full((200_000,), lam)
        k = poisson(rate, torch.rand(200_000, generator=g), torch.randn(200_000, generator=g))
        assert torch.equal(k, k.round()) and float(k.min()) >= 0
        assert abs(float(k.mean()) - lam) < 0.02 * lam + 0.01
        assert abs(float(k.var()) - lam) < 0.05 * lam + 0.01


def _reference_sweep(size: int, delta: int, rng: np.random.RandomState) -> float:
    """The reference's sequential pixel swaps (on indices); mean L1 displacement of a pixel."""
    x = np.arange(size * size).reshape(size, size)
    for h in range(size - delta, delta, -1):
        for w in range(size - delta, delta, -1):
            dx, dy = rng.randint(-delta, delta, size=(2,))
            x[h, w], x[h + dy, w + dx] = x[h + dy, w + dx], x[h, w]
    src = np.arange(size * size).reshape(size, size)
    return float((np.abs(x // size - src // size) + np.abs(x % size - src % size)).mean())


def test_glass_blur_swaps_are_a_permutation_with_the_references_displacement():
    perm = glass_shuffle(8, 32, 32, 1, 1, Draw(0, "glass_blur", 1, torch.arange(8)), torch.device("cpu"))
    assert all(torch.equal(p.sort().values, torch.arange(32 * 32)) for p in perm)
    src = torch.arange(32 * 32)
    ours = float(((perm // 32 - src // 32).abs() + (perm % 32 - src % 32).abs()).float().mean())
    ref = np.mean([_reference_sweep(32, 1, np.random.RandomState(i)) for i in range(4)])
    assert abs(ours - ref) < 0.15 * ref, (ours, ref)


# -- errors -------------------------------------------------------------------------------------


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ConfigError) as err:
        corrupt(torch.rand(1, 1, 8, 8), "rain", 1, seed=0)
    assert str(err.value) == f"unknown corruption 'rain'; choose from: {', '.join(CORRUPTIONS)}"


@pytest.mark.parametrize("severity", [0, 6, 2.5, True, "3"])
def test_severity_outside_one_to_five(severity):
    with pytest.raises(ConfigError, match="severity must be an integer from 1 to 5"):
        corrupt(torch.rand(1, 1, 8, 8), "fog", severity, seed=0)


def test_bad_inputs():
    with pytest.raises(DataError, match=r"float images of shape \(N, C, H, W\)"):
        corrupt(torch.rand(8, 8), "fog", 1, seed=0)
    with pytest.raises(DataError, match="float images"):
        corrupt(torch.zeros(1, 1, 8, 8, dtype=torch.uint8), "fog", 1, seed=0)
    with pytest.raises(ConfigError, match="low < high"):
        corrupt(torch.rand(1, 1, 8, 8), "fog", 1, seed=0, value_range=(1, 0))
    with pytest.raises(ConfigError, match="index_offset"):
        corrupt(torch.rand(1, 1, 8, 8), "fog", 1, seed=0, index_offset=-1)
    with pytest.raises(ConfigError, match="one integer per image"):
        corrupt(torch.rand(2, 1, 8, 8), "fog", 1, seed=0, index=torch.tensor([0]))


# -- accuracy over corruptions ------------------------------------------------------------------


class Bright(nn.Module):
    """Class 1 when the mean pixel is above 0.5: corruptions that brighten flip class 0."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(20.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x.mean(dim=(1, 2, 3)) - 0.5
        return torch.stack([-m, m], dim=1) * self.scale


def test_corruption_accuracy_all_pairs_batch_independent_and_model_left_as_found():
    x = torch.cat([torch.full((6, 1, 8, 8), 0.3), torch.full((6, 1, 8, 8), 0.7)]) + 0.05 * images(8)[:12]
    x = x.clamp(0, 1)
    y = torch.tensor([0] * 6 + [1] * 6)
    model = Bright().train()
    calls = []
    res = corruption_accuracy(model, x, y, seed=3, batch_size=5, progress=lambda *a: calls.append(a))
    assert model.training and model.scale.requires_grad
    assert isinstance(res, CorruptionResult) and res.n == 12 and res.reference == "cifar"
    assert len(res.accuracy) == 75 and set(res.names) == set(CORRUPTIONS) and res.severities == (1, 2, 3, 4, 5)
    assert res.clean_accuracy == 1.0
    assert all(0.0 <= a <= 1.0 for a in res.accuracy.values())
    assert res.accuracy["brightness", 5] < 1.0  # +0.3 brightness pushes the dark class over 0.5
    assert calls[-1] == ("robustness:corruption", 12 * 75, 12 * 75)
    again = corruption_accuracy(model, x, y, seed=3, batch_size=64)
    assert again.accuracy == res.accuracy
    assert res.mean_accuracy == pytest.approx(sum(res.accuracy.values()) / 75)
    assert res.relative_error["brightness"] == pytest.approx(1.0 - res.by_corruption["brightness"])
    assert res.mean_relative_error == pytest.approx(res.clean_accuracy - res.mean_accuracy)
    assert set(res.by_family) == set(FAMILIES) and set(res.seconds) == set(CORRUPTIONS)
    m = res.metrics()
    assert m["robustness.corruption.brightness.acc@5"] == res.accuracy["brightness", 5]
    assert m["robustness.corruption.mean_acc"] == res.mean_accuracy
    assert m["robustness.corruption.relative_error"] == res.mean_relative_error
    assert len(m) == 77


def test_corruption_accuracy_takes_a_function_and_a_subset():
    x, y = images(32)[:4], torch.zeros(4, dtype=torch.long)
    res = corruption_accuracy(
        lambda t: torch.stack([t.mean((1, 2, 3)), 1 - t.mean((1, 2, 3))], 1),
        x,
        y,
        names=["fog", "contrast"],
        severities=(1, 5),
        seed=0,
    )
    assert list(res.accuracy) == [("fog", 1), ("fog", 5), ("contrast", 1), ("contrast", 5)]
    assert set(res.by_family) == {"weather", "digital"}


def test_corruption_accuracy_validates_its_arguments():
    x, y = images(8)[:2], torch.zeros(2, dtype=torch.long)
    with pytest.raises(ConfigError, match="choose from"):
        corruption_accuracy(Bright(), x, y, names=["rain"])
    with pytest.raises(ConfigError, match="from 1 to 5"):
        corruption_accuracy(Bright(), x, y, severities=(0,))
    with pytest.raises(ConfigError, match="batch_size"):
        corruption_accuracy(Bright(), x, y, batch_size=0)


# -- against the reference implementation (imagecorruptions) ---------------------------------------


def _pkg_resources_shim() -> types.ModuleType:
    """The one ``pkg_resources`` function imagecorruptions 1.1.2 uses (its frost images' paths), for this test
    only: setuptools >= 81 has no ``pkg_resources``, and imagecorruptions imports it at its top."""
    shim = types.ModuleType("pkg_resources")

    def resource_filename(package: str, name: str) -> str:
        return os.path.join(os.path.dirname(sys.modules[package].__file__ or ""), name)

    shim.resource_filename = resource_filename  # type: ignore[attr-defined]
    return shim


def _imagecorruptions():
    """``imagecorruptions`` (bethgelab), importable, or skip; ``IMAGECORRUPTIONS_PATH`` may name a --target folder."""
    extra = os.environ.get("IMAGECORRUPTIONS_PATH")
    for p in (extra or "").split(os.pathsep):
        if p and p not in sys.path:
            sys.path.append(p)
    shimmed = False
    try:
        importlib.import_module("pkg_resources")
    except ImportError:
        sys.modules["pkg_resources"], shimmed = _pkg_resources_shim(), True
    try:
        return importlib.import_module("imagecorruptions")
    except Exception as err:  # noqa: BLE001  (ImportError, or its own imports failing: cv2, numpy 2)
        if shimmed:
            sys.modules.pop("pkg_resources", None)
        pytest.skip(
            f"imagecorruptions is not importable ({type(err).__name__}: {err}); pip install imagecorruptions to compare"
        )


def _theirs(ic, x: torch.Tensor, name: str, severity: int) -> torch.Tensor:
    out = []
    for im in (x.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8):
        out.append(np.asarray(ic.corrupt(im, corruption_name=name, severity=severity), dtype=np.float32) / 255)
    return torch.tensor(np.stack(out)).permute(0, 3, 1, 2)


# mean absolute difference from imagecorruptions (ImageNet-C parameters), in [0, 1] units. Theirs
# are rounded to 8 bits (a mean of 0.5/255 = 0.002 from rounding alone); both JPEGs are PIL's
# (measured: 0.002 for contrast, brightness and defocus, 0.0013-0.0016 for pixelate, 0 for JPEG)
_TOLERANCE = {
    "contrast": 0.003,
    "brightness": 0.003,
    "pixelate": 0.003,
    "jpeg_compression": 0.002,
    "defocus_blur": 0.003,
}


@pytest.mark.parametrize("name", ["contrast", "brightness", "pixelate", "jpeg_compression"])
def test_matches_imagecorruptions_on_32x32(name):
    ic = _imagecorruptions()
    x = (torch.round(images(32)[:6] * 255) / 255).float()
    for s in (1, 3, 5):
        ours = corrupt(x, name, s, seed=0, reference="imagenet")  # their parameters: ImageNet-C's, at any size
        diff = float((ours - _theirs(ic, x, name, s)).abs().mean())
        assert diff < _TOLERANCE[name], f"{name}@{s}: mean |ours - imagecorruptions| = {diff:.4f}"


def test_defocus_blur_matches_imagecorruptions_on_224x224():
    ic = _imagecorruptions()
    x = (torch.round(images(224)[:2] * 255) / 255).float()
    for s in (1, 5):
        diff = float((corrupt(x, "defocus_blur", s, seed=0) - _theirs(ic, x, "defocus_blur", s)).abs().mean())
        assert diff < _TOLERANCE["defocus_blur"], f"defocus_blur@{s}: {diff:.4f}"
