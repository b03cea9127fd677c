"""``corrupt`` (one corruption at one severity) and ``corruption_accuracy`` (a model over all of them)."""

from __future__ import annotations

import numbers
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ...bundle import ModelBundle
from ...errors import ConfigError, DataError
from ...utils import ProgressFn, model_state
from ..attacks import check_inputs, check_logits, resolve_model, speed
from ..stochastic import keyed_rows
from ._registry import FAMILY_ORDER, ORDER, REGISTRY, Corruption, Draw

__all__ = ["CORRUPTIONS", "FAMILIES", "REFERENCES", "SEVERITIES", "corrupt", "corruption_accuracy", "CorruptionResult"]

#: The 15 corruption names, in the paper's order.
CORRUPTIONS: tuple[str, ...] = ORDER
#: Family -> its corruption names (noise, blur, weather, digital).
FAMILIES: dict[str, tuple[str, ...]] = {f: tuple(n for n in ORDER if REGISTRY[n].family == f) for f in FAMILY_ORDER}
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)
#: Parameter tables and the image side they were written for.
REFERENCES: dict[str, int] = {"cifar": 32, "imagenet": 224}
_AUTO_IMAGENET_FROM = 128  # images whose shorter side is at least this use the ImageNet-C table


def _lookup(name: str) -> Corruption:
    if not isinstance(name, str) or name not in REGISTRY:
        raise ConfigError(f"unknown corruption {name!r}; choose from: {', '.join(CORRUPTIONS)}")
    return REGISTRY[name]


def _check_severity(severity: object) -> int:
    if isinstance(severity, bool) or not isinstance(severity, numbers.Integral) or not 1 <= int(severity) <= 5:
        raise ConfigError(f"corruption severity must be an integer from 1 to 5, got {severity!r}")
    return int(severity)


def _check_range(value_range: Sequence[float]) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value_range)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"value_range must be (low, high), got {value_range!r}") from err
    if not lo < hi:
        raise ConfigError(f"value_range must be (low, high) with low < high, got {(lo, hi)}")
    return lo, hi


def reference_for(h: int, w: int, reference: str = "auto") -> str:
    """The parameter table used for ``h x w`` images: ``reference`` itself, or for ``"auto"`` CIFAR-10-C
    below a shorter side of 128 pixels and ImageNet-C from 128 on."""
    if reference == "auto":
        return "imagenet" if min(h, w) >= _AUTO_IMAGENET_FROM else "cifar"
    if reference not in REFERENCES:
        raise ConfigError(f"unknown reference {reference!r}; choose from: auto, {', '.join(REFERENCES)}")
    return reference


def corrupt(
    x: torch.Tensor,
    name: str,
    severity: int,
    *,
    seed: int,
    index_offset: int = 0,
    index: torch.Tensor | None = None,
    value_range: Sequence[float] = (0.0, 1.0),
    reference: str = "auto",
) -> torch.Tensor:
    """Apply one common corruption at one severity to a batch of images.

    Hendrycks and Dietterich 2019, "Benchmarking neural network robustness to common
    corruptions and perturbations", https://arxiv.org/abs/1903.12261. How the
    parameters map to image sizes is described in :mod:`dlaudit.robust.corruptions`.

    Parameters
    ----------
    x
        Float images ``(N, C, H, W)``, any ``C`` (RGB-specific steps need ``C == 3``;
        other channel counts are treated channel by channel as grey), any size,
        on any device.
    name
        One of :data:`CORRUPTIONS`.
    severity
        1 (mildest) to 5.
    seed
        With the corruption, the severity and each image's global index, this fixes
        every random number the image gets.
    index_offset, index
        The global index of ``x[i]`` is ``index_offset + i``, or ``index[i]`` when
        ``index`` (``N`` non-negative integers) is given: an image gets the same
        corruption whatever batch it is in and in whatever order.
    value_range
        The range of the inputs; outputs are clipped to it.
    reference
        ``"auto"`` (CIFAR-10-C parameters below 128 pixels, ImageNet-C from 128),
        ``"cifar"`` or ``"imagenet"``.

    Returns
    -------
    torch.Tensor
        The corrupted images: same shape, dtype and device as ``x``.

    Examples
    --------
    >>> x = torch.rand(4, 3, 32, 32)
    >>> corrupt(x, "fog", 3, seed=0).shape
    torch.Size([4, 3, 32, 32])
    """
    spec = _lookup(name)
    sev = _check_severity(severity)
    lo, hi = _check_range(value_range)
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim != 4:
        got = f"{x.dtype} of shape {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise DataError(f"corruptions need float images of shape (N, C, H, W), got {got}")
    n, _, h, w = x.shape
    if n == 0 or h == 0 or w == 0:
        return x.clone()
    table = reference_for(h, w, reference)
    idx = _global_index(n, index_offset, index, x.device)
    x01 = ((x.detach().float() - lo) / (hi - lo)).clamp(0, 1)
    params = getattr(spec, table)[sev - 1]
    draw = Draw(seed, spec.name, sev, idx)
    scale = min(h, w) / REFERENCES[table]
    if spec.spatial and scale < 1:
        out = _at_reference_size(spec, x01, params, REFERENCES[table], draw)
    else:
        out = spec.fn(x01, params, scale if spec.spatial else 1.0, draw)
    return (out.clamp(0, 1) * (hi - lo) + lo).to(x.dtype)


def _global_index(n: int, offset: int, index: torch.Tensor | None, device: torch.device) -> torch.Tensor:
    if index is None:
        if isinstance(offset, bool) or not isinstance(offset, numbers.Integral) or offset < 0:
            raise ConfigError(f"index_offset must be an integer >= 0, got {offset!r}")
        return torch.arange(int(offset), int(offset) + n, device=device)
    idx = torch.as_tensor(index)
    if idx.ndim != 1 or len(idx) != n or idx.is_floating_point() or idx.dtype == torch.bool:
        raise ConfigError(f"index must hold one integer per image ({n}), got {idx.dtype} of shape {tuple(idx.shape)}")
    if len(idx) and int(idx.min()) < 0:
        raise ConfigError("index must hold global image indices >= 0")
    return idx.to(device=device, dtype=torch.int64)


def _at_reference_size(spec: Corruption, x01: torch.Tensor, params: object, ref: int, draw: Draw) -> torch.Tensor:
    """Corrupt an image smaller than the reference as its upsampled copy, and bring back only the change.

    ``x + area_down(C(up(x)) - up(x))``: the corruption of the bilinear upsampling to a
    shorter side of ``ref``, averaged back to the image's pixels. Where the corruption
    changes nothing, neither does this (the round trip's own blur cancels out).
    """
    _, _, h, w = x01.shape
    f = ref / min(h, w)
    size = (max(1, round(h * f)), max(1, round(w * f)))
    up = F.interpolate(x01, size=size, mode="bilinear", align_corners=False)
    change = spec.fn(up, params, 1.0, draw).clamp(0, 1) - up
    return x01 + F.adaptive_avg_pool2d(change, (h, w))


# -- accuracy over corruptions -------------------------------------------------------------


@dataclass(frozen=True)
class CorruptionResult:
    """Accuracy of a model under each (corruption, severity), and its clean accuracy.

    The paper's mean corruption error (mCE) divides each corruption's error by
    AlexNet's, which dlaudit does not have; :attr:`relative_error` is the unnormalised
    "relative corruption error": the mean over severities of ``err_c,s - err_clean``,
    i.e. ``clean_accuracy - accuracy``, the accuracy a corruption costs (0 = none;
    negative when a corruption happens to help).
    """

    accuracy: dict[tuple[str, int], float]
    clean_accuracy: float
    n: int
    seed: int
    reference: str
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(name for name, _ in self.accuracy))

    @property
    def severities(self) -> tuple[int, ...]:
        return tuple(sorted({s for _, s in self.accuracy}))

    @property
    def mean_accuracy(self) -> float:
        """Mean accuracy over every (corruption, severity) evaluated."""
        vals = list(self.accuracy.values())
        return sum(vals) / len(vals) if vals else float("nan")

    @property
    def by_corruption(self) -> dict[str, float]:
        """Each corruption's accuracy averaged over the severities."""
        return {n: _mean(a for (m, _), a in self.accuracy.items() if m == n) for n in self.names}

    @property
    def by_family(self) -> dict[str, float]:
        """Each family's accuracy averaged over its corruptions and severities (families evaluated only)."""
        fams = {f: [n for n in names if n in self.names] for f, names in FAMILIES.items()}
        return {f: _mean(self.by_corruption[n] for n in ns) for f, ns in fams.items() if ns}

    @property
    def relative_error(self) -> dict[str, float]:
        """Each corruption's mean over severities of ``err_corrupted - err_clean`` (see the class docstring)."""
        return {n: self.clean_accuracy - a for n, a in self.by_corruption.items()}

    @property
    def mean_relative_error(self) -> float:
        """:attr:`relative_error` averaged over the corruptions (``clean_accuracy - mean_accuracy``)."""
        return _mean(self.relative_error.values())

    def metrics(self, prefix: str = "robustness.corruption") -> dict[str, float]:
        """Flat metrics: ``<prefix>.<name>.acc@<severity>``, ``<prefix>.mean_acc``, ``<prefix>.relative_error``."""
        out = {f"{prefix}.{n}.acc@{s}": a for (n, s), a in self.accuracy.items()}
        out[f"{prefix}.mean_acc"] = self.mean_accuracy
        out[f"{prefix}.relative_error"] = self.mean_relative_error
        return out


def _mean(values: object) -> float:
    vals = list(values)  # type: ignore[call-overload]
    return sum(vals) / len(vals) if vals else float("nan")


class _Callable(nn.Module):
    """A plain function ``x -> logits`` as a module (no parameters, nothing to put in eval mode)."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


def corruption_accuracy(
    model: nn.Module | ModelBundle | Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    names: Sequence[str] | None = None,
    severities: Sequence[int] = SEVERITIES,
    seed: int = 0,
    batch_size: int = 256,
    value_range: Sequence[float] | None = None,
    reference: str = "auto",
    device: torch.device | str | None = None,
    progress: ProgressFn | None = None,
) -> CorruptionResult:
    """Accuracy of ``model`` on ``x`` under every corruption and severity (Hendrycks and Dietterich 2019).

    https://arxiv.org/abs/1903.12261. Each batch is corrupted once per pair with
    :func:`corrupt` (global indices = positions in ``x``, so the numbers do not depend
    on ``batch_size``) and classified; the model is left in the mode it was in.

    Parameters
    ----------
    model
        An ``nn.Module``, a :class:`~dlaudit.ModelBundle` (its card gives the value
        range), or a function from images to logits.
    x, y
        Images ``(N, C, H, W)`` in ``value_range`` and their integer labels.
    names
        Corruptions to run (default: all 15, :data:`CORRUPTIONS`).
    severities
        Severities to run (default 1-5).
    seed
        Fixes every corrupted image (see :func:`corrupt`).
    batch_size
        Images corrupted and classified at a time.
    value_range
        The inputs' range (default: the bundle's card, else ``(0, 1)``).
    reference
        Parameter table: ``"auto"``, ``"cifar"`` or ``"imagenet"`` (see :func:`corrupt`).
    progress
        Called as ``progress("robustness:corruption", done, total)`` in images x pairs.

    Returns
    -------
    CorruptionResult
        Accuracies by ``(name, severity)``, clean accuracy, means and relative errors,
        and the seconds each corruption took (corrupting and classifying).
    """
    names = tuple(CORRUPTIONS if names is None else names)
    for nm in names:
        _lookup(nm)
    sevs = tuple(_check_severity(s) for s in severities)
    if not names or not sevs:
        raise ConfigError("corruption_accuracy needs at least one corruption name and one severity")
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not isinstance(model, (nn.Module, ModelBundle)):
        if not callable(model):
            raise ConfigError(f"model must be an nn.Module, a ModelBundle or a function, got {type(model).__name__}")
        model = _Callable(model)
        device = device if device is not None else (x.device if isinstance(x, torch.Tensor) else None)
    module, (lo, hi), dev, k = resolve_model(model, tuple(value_range) if value_range else None, device)
    y = check_inputs(x, y, (lo, hi))
    if x.ndim != 4:
        raise DataError(f"corruptions need images of shape (N, C, H, W), got shape {tuple(x.shape)}")
    n = len(x)
    table = reference_for(x.shape[2], x.shape[3], reference)
    correct = dict.fromkeys(((nm, s) for nm in names for s in sevs), 0)
    seconds = dict.fromkeys(names, 0.0)
    clean = 0
    total, done = n * len(names) * len(sevs), 0
    with model_state(module, train=False, grad=False), speed.layout(module, x), torch.no_grad():
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            xb, yb = x[start:stop].to(dev), y[start:stop].to(dev)
            rows = torch.arange(start, stop)  # a Keyed model's passes keyed by the samples (any batch size)
            with keyed_rows(rows, "corruption-clean"):
                clean += int((check_logits(module(xb), len(xb), k, yb).argmax(dim=1) == yb).sum())
            for nm in names:
                t0 = time.perf_counter()
                for s in sevs:
                    xc = corrupt(xb, nm, s, seed=seed, index_offset=start, value_range=(lo, hi), reference=table)
                    with keyed_rows(rows, "corruption", nm, s):
                        correct[nm, s] += int((check_logits(module(xc), len(xb), k).argmax(dim=1) == yb).sum())
                    done += len(xb)
                    if progress is not None:
                        progress("robustness:corruption", done, total)
                seconds[nm] += time.perf_counter() - t0
    acc = {key: c / n if n else float("nan") for key, c in correct.items()}
    return CorruptionResult(
        accuracy=acc,
        clean_accuracy=clean / n if n else float("nan"),
        n=n,
        seed=int(seed),
        reference=table,
        seconds=seconds,
    )
