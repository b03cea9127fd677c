"""Randomized smoothing: PREDICT and CERTIFY of Cohen, Rosenfeld and Kolter 2019.

Cohen et al. 2019, "Certified adversarial robustness via randomized smoothing",
https://arxiv.org/abs/1902.02918. The smoothed classifier ``g(x)`` returns the class
the base classifier ``f`` (the model) most likely returns on ``x + N(0, sigma^2 I)``.
If that class has probability at least ``p_A > 1/2``, ``g`` is constant within the
L2 ball of radius ``sigma * Phi^-1(p_A)`` around ``x`` (their Theorem 1).

- :func:`certify` is their CERTIFY: ``n0`` noisy copies select the top class
  ``c_A``; ``n`` fresh copies estimate its probability; the one-sided
  ``(1 - alpha)`` Clopper-Pearson lower bound ``p_A_lower`` of that probability
  gives the radius ``sigma * Phi^-1(p_A_lower)``, or an abstention when
  ``p_A_lower <= 1/2`` (the paper abstains when ``p_A_lower < 1/2``; at exactly 1/2
  the radius would be 0, which certifies nothing). With probability at least
  ``1 - alpha`` a returned certificate is correct.
- :func:`predict` is their PREDICT: the two-sided binomial test of the top two
  counts ``n_A`` and ``n_B`` of ``n`` noisy copies; ``c_A`` when its p-value is at
  most ``alpha``, else an abstention (a tie always abstains). The probability of
  returning a class other than ``g(x)`` is at most ``alpha``.

Noise is not clipped to the value range, as in Cohen et al.'s code
(``batch + torch.randn_like(batch) * sigma``) and as their theorem is stated: the
base classifier is the model on all of R^d. Train with the same noise (also
unclipped, :class:`~dlaudit.robust.certified_training.GaussianNoiseTraining`).

How it runs: noisy copies of several inputs share each forward pass (``batch_size``
copies, from a forward-only throughput probe unless given), on the model's device,
and their predictions are counted there with ``torch.bincount``. Noise is drawn in
chunks of :data:`DRAW_CHUNK` draws, each chunk from a generator seeded by ``(seed,
phase, input index, chunk)``: an input's noise depends on its index (plus
``index_offset``), the seed and the draw number, never on the batch size or on the
other inputs, so the same seed gives the same certificates however the work is
split. (The numbers are generated on the model's device, so a CPU and a GPU run
draw different noise.)

The Clopper-Pearson bound is ``Beta.ppf(alpha, k, n - k + 1)`` (scipy, vectorised),
identical to ``scipy.stats.binomtest(k, n, alternative="greater")
.proportion_ci(1 - alpha, method="exact").low`` and to the
``proportion_confint(k, n, alpha=2 * alpha, method="beta")[0]`` of Cohen et al.'s code;
PREDICT's p-value is that of ``binomtest(n_A, n_A + n_B, 0.5)`` (two-sided).
"""

from __future__ import annotations

import logging
import math
import time
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy import stats
from torch import nn

from .. import parallel
from ..bundle import ModelBundle
from ..errors import ConfigError, DataError
from ..utils import ProgressFn, model_state
from .attacks import check_inputs, check_logits, count_classes, resolve_model, speed

__all__ = [
    "ABSTAIN",
    "DRAW_CHUNK",
    "SmoothingResult",
    "certify",
    "predict",
    "clopper_pearson_lower",
    "binomial_pvalue",
    "check_settings",
]

log = logging.getLogger(__name__)

ABSTAIN = -1
"""The prediction of an input the smoothed classifier abstains on."""
DRAW_CHUNK = 512
"""Noise draws per seeded chunk (a fixed constant: it decides which numbers each draw gets)."""
PAPER = "Cohen et al. 2019, arXiv:1902.02918"
_SELECT, _ESTIMATE, _PREDICT = 1, 2, 3  # phases: independent noise for CERTIFY's two samples and for PREDICT
_PROBE_CANDIDATES = {"cpu": (256, 1024, 4096), "cuda": (1024, 4096, 16384, 65536)}
PROBE_MARGIN = 1.05
"""A larger batch is taken only when the probe measured it at least this much faster (flat curves: the smaller)."""
_PROBE_ELEMENTS = {"cpu": 1 << 23, "cuda": 1 << 28}
"""The probe tries no batch whose noise alone holds more elements than this."""
_PROBE_CACHE: weakref.WeakKeyDictionary[nn.Module, dict[tuple, int]] = weakref.WeakKeyDictionary()

MSG_SIGMA = "sigma (the noise level) must be a finite number > 0, e.g. 0.25 for inputs in [0, 1]; got {value!r}"
MSG_ALPHA = "alpha (the failure probability) must be a number strictly between 0 and 1, e.g. 0.001; got {value!r}"
MSG_COUNT = "{name} (a number of noise samples) must be an integer of at least 1; got {value!r}"
MSG_BATCH = (
    "batch_size must be an integer of at least 1 (noisy copies per forward pass), or None to probe; got {value!r}"
)
MSG_RADIUS = "radii must be numbers >= 0 (L2 distances in input units); got {value!r}"
MSG_LABELS = "certified accuracy needs the true labels: pass y to certify()"


# -- results -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmoothingResult:
    """CERTIFY's outcome for each input, on the CPU.

    Attributes
    ----------
    prediction
        ``(N,)`` class of the smoothed classifier, or :data:`ABSTAIN` (-1).
    p_lower
        ``(N,)`` the ``(1 - alpha)`` lower confidence bound on ``p_A`` (float64).
    radius
        ``(N,)`` certified L2 radius ``sigma * Phi^-1(p_lower)``; 0.0 where it abstains
        (as in Cohen et al.'s logs).
    counts
        ``(N,)`` how many of the ``n`` estimation samples were classified as ``c_A``.
    labels
        ``(N,)`` the true labels, if given.
    seconds_per_input
        Wall time of the whole certification divided by ``N``.
    """

    sigma: float
    n0: int
    n: int
    alpha: float
    prediction: torch.Tensor
    p_lower: torch.Tensor
    radius: torch.Tensor
    counts: torch.Tensor
    labels: torch.Tensor | None
    seconds_per_input: float
    batch_size: int

    @property
    def abstain_rate(self) -> float:
        """Share of inputs the smoothed classifier abstains on."""
        return float((self.prediction == ABSTAIN).double().mean()) if len(self.prediction) else math.nan

    @property
    def correct(self) -> torch.Tensor:
        """``(N,)`` whether the smoothed prediction is the label (an abstention is not)."""
        if self.labels is None:
            raise ConfigError(MSG_LABELS)
        return self.prediction == self.labels

    @property
    def clean_accuracy(self) -> float:
        """Accuracy of the smoothed classifier on the inputs themselves (certified accuracy at radius 0)."""
        return self.certified_accuracy([0.0])[0.0]

    def certified_accuracy(self, radii: Sequence[float] | float) -> dict[float, float]:
        """``{r: share of inputs classified correctly with a certified radius >= r}`` (a curve over ``radii``)."""
        values = [radii] if isinstance(radii, (int, float)) else list(radii)
        for r in values:
            if isinstance(r, bool) or not isinstance(r, (int, float)) or not math.isfinite(r) or r < 0:
                raise ConfigError(MSG_RADIUS.format(value=r))
        correct = self.correct
        n = len(correct)
        return {float(r): float((correct & (self.radius >= r)).double().sum()) / n if n else math.nan for r in values}

    def info(self) -> dict[str, float | int | str]:
        """The settings, for a report: sigma, n0, n, alpha, paper."""
        return {
            "method": "randomized smoothing",
            "sigma": self.sigma,
            "n0": self.n0,
            "n": self.n,
            "alpha": self.alpha,
            "paper": PAPER,
        }


# -- statistics ----------------------------------------------------------------------------


def clopper_pearson_lower(k: np.ndarray | int, n: int, alpha: float) -> np.ndarray:
    """One-sided ``(1 - alpha)`` Clopper-Pearson lower bound on a binomial proportion, vectorised over ``k``."""
    k = np.asarray(k, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        low = stats.beta.ppf(alpha, k, n - k + 1)
    return np.where(k > 0, low, 0.0)


def binomial_pvalue(n_a: np.ndarray | int, n_b: np.ndarray | int) -> np.ndarray:
    """Two-sided p-value of ``n_a`` successes in ``n_a + n_b`` trials under ``p = 1/2`` (``binomtest(...).pvalue``)."""
    n_a, n_b = np.asarray(n_a, dtype=np.int64), np.asarray(n_b, dtype=np.int64)
    low = np.minimum(n_a, n_b)
    return np.minimum(1.0, 2.0 * stats.binom.cdf(low, n_a + n_b, 0.5))


# -- validation ----------------------------------------------------------------------------


def _count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(MSG_COUNT.format(name=name, value=value))
    return int(value)


def check_settings(sigma: float, alpha: float, batch_size: int | None, **counts: int) -> None:
    """Raise :class:`ConfigError` for sigma <= 0, alpha outside (0, 1), a count < 1 or a bad batch size."""
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not math.isfinite(sigma) or sigma <= 0:
        raise ConfigError(MSG_SIGMA.format(value=sigma))
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise ConfigError(MSG_ALPHA.format(value=alpha))
    for name, value in counts.items():
        _count(name, value)
    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1
    ):
        raise ConfigError(MSG_BATCH.format(value=batch_size))


# -- sampling ------------------------------------------------------------------------------


_MASK = (1 << 64) - 1


def _mix(*keys: int) -> int:
    """A 63-bit seed from integer keys (splitmix64 over each key): distinct keys give unrelated seeds."""
    h = 0x9E3779B97F4A7C15
    for k in keys:
        h = (h ^ (int(k) & _MASK)) & _MASK
        h = (h + 0x9E3779B97F4A7C15) & _MASK
        h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & _MASK
        h ^= h >> 31
    return h & ((1 << 63) - 1)


def _noise_chunks(
    shape: tuple[int, ...],
    n_inputs: int,
    draws: int,
    *,
    seed: int,
    phase: int,
    offset: int,
    device: torch.device,
    dtype: torch.dtype,
) -> Iterator[torch.Tensor]:
    """N(0, I) noise in chunks, in order: input 0's ``draws`` draws, then input 1's, ..."""
    gen = torch.Generator(device=device)
    for i in range(n_inputs):
        for c, start in enumerate(range(0, draws, DRAW_CHUNK)):
            gen.manual_seed(_mix(seed, phase, offset + i, c))
            yield torch.randn((min(DRAW_CHUNK, draws - start), *shape), generator=gen, device=device, dtype=dtype)


def _sample_counts(
    module: nn.Module,
    x: torch.Tensor,
    draws: int,
    *,
    sigma: float,
    seed: int,
    phase: int,
    offset: int,
    batch_size: int,
    num_classes: int,
    progress: ProgressFn | None = None,
    stage: str = "",
) -> torch.Tensor:
    """``(N, K)`` counts (on ``x``'s device) of the classes the model gives ``draws`` noisy copies of each input.

    The noisy copies form one stream, input-major (input 0's draws, then input 1's, ...), cut into
    forward passes of ``batch_size``: copy ``f`` of the stream belongs to input ``f // draws``, so no
    pass needs to ask the device which inputs it holds.
    """
    n, k = len(x), num_classes
    counts = torch.zeros(n * k, dtype=torch.long, device=x.device)
    noise: list[torch.Tensor] = []
    pending, pos, total = 0, 0, n * draws  # pos: stream index of the first pending copy

    def classify(eps: torch.Tensor, first: int) -> None:
        who = torch.arange(first, first + len(eps), device=x.device).div_(draws, rounding_mode="floor")
        batch = eps.mul_(sigma).add_(x.index_select(0, who))
        pred = check_logits(module(batch), len(batch), k).argmax(dim=1)
        lo, hi = first // draws, (first + len(eps) - 1) // draws + 1
        counts[lo * k : hi * k] += torch.bincount((who - lo) * k + pred, minlength=(hi - lo) * k)

    for eps in _noise_chunks(
        tuple(x.shape[1:]), n, draws, seed=seed, phase=phase, offset=offset, device=x.device, dtype=x.dtype
    ):
        noise.append(eps)
        pending += len(eps)
        if pending < batch_size:
            continue
        stream = torch.cat(noise) if len(noise) > 1 else noise[0]
        cut = (pending // batch_size) * batch_size
        for s in range(0, cut, batch_size):
            classify(stream[s : s + batch_size], pos + s)
        noise = [stream[cut:]] if cut < pending else []
        pending -= cut
        pos += cut
        if progress is not None:
            progress(stage, pos, total)
    if pending:
        classify(torch.cat(noise) if len(noise) > 1 else noise[0], pos)
        if progress is not None:
            progress(stage, total, total)
    return counts.view(n, k)


def _probe_batch_size(module: nn.Module, x: torch.Tensor, total: int) -> int:
    """The forward-only batch size of highest measured throughput (noisy copies per pass), cached per model."""
    dev = x.device
    sample = math.prod(x.shape[1:])
    key = (tuple(x.shape[1:]), str(dev), x.dtype)
    cached = _PROBE_CACHE.get(module, {}).get(key)
    if cached is not None:
        return max(1, min(cached, total))
    kind = "cuda" if dev.type == "cuda" else "cpu"
    sizes = [s for s in _PROBE_CANDIDATES[kind] if s * sample <= _PROBE_ELEMENTS[kind]] or [
        max(1, _PROBE_ELEMENTS[kind] // max(sample, 1))
    ]
    best, best_rate = sizes[0], 0.0
    for size in sizes:
        batch = x[:1].expand(size, *x.shape[1:]).contiguous()
        try:
            rate = _forward_rate(module, batch)
        except torch.OutOfMemoryError:
            break
        log.debug("smoothing batch-size probe: %d copies -> %.0f copies/s", size, rate)
        if rate > PROBE_MARGIN * best_rate:  # a larger batch must clearly win: timings of near-equal sizes are noise
            best, best_rate = size, rate
        elif rate < 0.9 * best_rate:
            break
    _PROBE_CACHE.setdefault(module, {})[key] = best
    log.info("smoothing batch size %d (%.0f noisy copies/s in the probe)", best, best_rate)
    return max(1, min(best, total))


def _forward_rate(module: nn.Module, batch: torch.Tensor, timed: int = 2) -> float:
    best = math.inf
    for i in range(1 + timed):
        if batch.device.type == "cuda":
            torch.cuda.synchronize(batch.device)
        start = time.perf_counter()
        module(batch).argmax(dim=1)
        if batch.device.type == "cuda":
            torch.cuda.synchronize(batch.device)
        if i > 0:
            best = min(best, time.perf_counter() - start)
    return len(batch) / max(best, 1e-9)


def _prepare(
    model: nn.Module | ModelBundle,
    x: torch.Tensor,
    y: torch.Tensor | None,
    value_range: tuple[float, float] | None,
    device: str | torch.device | None,
) -> tuple[nn.Module, torch.device, int | None, torch.Tensor | None]:
    module, vr, dev, k = resolve_model(model, value_range, device)
    known_range = value_range is not None or isinstance(model, ModelBundle)
    if y is None:
        if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim < 2:
            raise DataError("inputs must be a batched floating-point tensor, shape (N, ...)")
        if len(x) and not bool(torch.isfinite(x).all()):
            raise DataError("inputs hold NaN or infinite values; clean them before certifying")
        if known_range and len(x):
            check_inputs(x, torch.zeros(len(x), dtype=torch.long), vr)
        return module, dev, k, None
    labels = check_inputs(x, y, vr if known_range else (-math.inf, math.inf))
    return module, dev, k, labels


def _start(module: nn.Module, x: torch.Tensor, labels: torch.Tensor | None, dev: torch.device, k: int | None) -> int:
    return count_classes(module, x, labels if labels is not None else torch.zeros(len(x), dtype=torch.long), dev, k)


# -- PREDICT and CERTIFY -------------------------------------------------------------------------


def certify(
    model: nn.Module | ModelBundle,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    *,
    sigma: float,
    n0: int = 100,
    n: int = 100_000,
    alpha: float = 0.001,
    batch_size: int | None = None,
    seed: int = 0,
    index_offset: int = 0,
    value_range: tuple[float, float] | None = None,
    device: str | torch.device | None = None,
    progress: ProgressFn | None = None,
) -> SmoothingResult:
    """Cohen et al.'s CERTIFY on each input: the smoothed prediction and its certified L2 radius.

    Cohen, Rosenfeld and Kolter 2019, https://arxiv.org/abs/1902.02918. Distance: L2.

    Parameters
    ----------
    model
        ``nn.Module`` returning logits ``(N, classes)`` (the base classifier), or a ``ModelBundle``.
    x
        Inputs ``(N, ...)``; with a bundle or ``value_range`` they must lie in that range.
    y
        True labels ``(N,)`` (optional; needed for the accuracy helpers of the result).
    sigma
        Standard deviation of the Gaussian noise, in input units (> 0).
    n0
        Noise samples that select the top class (default 100).
    n
        Noise samples that estimate its probability (default 100,000).
    alpha
        Failure probability: each certificate holds with probability ``1 - alpha`` (default 0.001).
    batch_size
        Noisy copies per forward pass; None picks it by a forward-only throughput probe.
    seed
        Seeds the noise (per input: the same seed gives the same certificates at any batch size).
    index_offset
        Index of ``x[0]`` in the whole dataset, so certifying a slice draws the noise the whole would.

    Returns
    -------
    SmoothingResult
        Predictions (-1: abstain), ``p_A`` lower bounds, radii, and accuracy helpers.

    Examples
    --------
    >>> res = certify(bundle, x, y, sigma=0.25, n=10_000)  # doctest: +SKIP
    >>> res.certified_accuracy([0.25, 0.5])  # doctest: +SKIP
    """
    check_settings(sigma, alpha, batch_size, n0=n0, n=n)
    module, dev, k, labels = _prepare(model, x, y, value_range, device)
    start = time.perf_counter()
    count = len(x)
    if count == 0:
        empty = torch.empty(0)
        return SmoothingResult(
            float(sigma),
            n0,
            n,
            float(alpha),
            empty.long(),
            empty.double(),
            empty.double(),
            empty.long(),
            labels,
            0.0,
            0,
        )
    ex = parallel.current()
    if ex.shards_work and isinstance(model, ModelBundle) and count > 1:
        ranges = parallel.shard_ranges(count, ex.workers)
        if len(ranges) > 1 or ex.checkpoint is not None:
            return _sharded(
                ex,
                model,
                x,
                labels,
                ranges,
                sigma=float(sigma),
                n0=n0,
                n=n,
                alpha=float(alpha),
                batch_size=batch_size,
                seed=seed,
                offset=index_offset,
                start=start,
                progress=progress,
            )
    with model_state(module, train=False, grad=False), speed.layout(module, x), torch.no_grad():
        k = _start(module, x, labels, dev, k)
        xd = x.to(dev)
        bs = int(batch_size) if batch_size else _probe_batch_size(module, xd, count * max(n0, n))
        common = {
            "sigma": float(sigma),
            "seed": seed,
            "offset": index_offset,
            "batch_size": bs,
            "num_classes": k,
            "progress": progress,
        }
        counts0 = _sample_counts(module, xd, n0, phase=_SELECT, stage="certify:select", **common)
        top = counts0.argmax(dim=1)
        counts = _sample_counts(module, xd, n, phase=_ESTIMATE, stage="certify:estimate", **common)
        n_a = counts.gather(1, top.view(-1, 1)).view(-1).cpu()
    p_lower = torch.from_numpy(clopper_pearson_lower(n_a.numpy(), n, alpha))
    certified = p_lower > 0.5
    radius = torch.where(
        certified, sigma * torch.from_numpy(stats.norm.ppf(p_lower.numpy())), torch.zeros_like(p_lower)
    )
    prediction = torch.where(certified, top.cpu(), torch.full_like(top.cpu(), ABSTAIN))
    seconds = (time.perf_counter() - start) / count
    log.info("certified %d inputs (sigma %g, n0 %d, n %d, alpha %g): %.3f s per input, %.1f%% abstained",
             count, sigma, n0, n, alpha, seconds, 100 * float((~certified).double().mean()))  # fmt: skip
    return SmoothingResult(float(sigma), n0, n, float(alpha), prediction, p_lower, radius, n_a, labels, seconds, bs)


def predict(
    model: nn.Module | ModelBundle,
    x: torch.Tensor,
    *,
    sigma: float,
    n: int = 100_000,
    alpha: float = 0.001,
    batch_size: int | None = None,
    seed: int = 0,
    index_offset: int = 0,
    value_range: tuple[float, float] | None = None,
    device: str | torch.device | None = None,
    progress: ProgressFn | None = None,
) -> torch.Tensor:
    """Cohen et al.'s PREDICT: the smoothed classifier's class for each input, or -1 (abstain).

    Cohen, Rosenfeld and Kolter 2019, https://arxiv.org/abs/1902.02918. Counts the
    classes of ``n`` noisy copies; returns the top class ``c_A`` when the two-sided
    binomial test of its count ``n_A`` against the runner-up's ``n_B`` (``p = 1/2``
    over ``n_A + n_B`` trials) has p-value ``<= alpha``, else abstains. The chance of
    returning a class other than the smoothed classifier's is at most ``alpha``.

    Parameters are those of :func:`certify`. Returns ``(N,)`` long, on the CPU.
    """
    check_settings(sigma, alpha, batch_size, n=n)
    module, dev, k, _ = _prepare(model, x, None, value_range, device)
    if len(x) == 0:
        return torch.empty(0, dtype=torch.long)
    with model_state(module, train=False, grad=False), speed.layout(module, x), torch.no_grad():
        k = _start(module, x, None, dev, k)
        xd = x.to(dev)
        bs = int(batch_size) if batch_size else _probe_batch_size(module, xd, len(x) * n)
        counts = _sample_counts(module, xd, n, sigma=float(sigma), seed=seed, phase=_PREDICT, offset=index_offset, batch_size=bs,
                                num_classes=k, progress=progress, stage="predict:smoothing")  # fmt: skip
        top2 = counts.topk(2, dim=1)
    values, classes = top2.values.cpu().numpy(), top2.indices[:, 0].cpu()
    keep = torch.from_numpy(binomial_pvalue(values[:, 0], values[:, 1]) <= alpha)
    return torch.where(keep, classes, torch.full_like(classes, ABSTAIN))


def _sharded(
    ex: parallel.Executor,
    bundle: ModelBundle,
    x: torch.Tensor,
    labels: torch.Tensor | None,
    ranges: list[tuple[int, int]],
    *,
    sigma: float,
    n0: int,
    n: int,
    alpha: float,
    batch_size: int | None,
    seed: int,
    offset: int,
    start: float,
    progress: ProgressFn | None,
) -> SmoothingResult:
    """CERTIFY over shards of inputs; each input's noise is keyed by its global index, so the result is one run's."""
    payloads = [
        {"x": x[a:b].cpu(), "y": None if labels is None else labels[a:b].cpu(), "sigma": sigma, "n0": n0, "n": n, "alpha": alpha,
         "batch_size": batch_size, "seed": seed, "offset": offset + a}
        for a, b in ranges
    ]  # fmt: skip
    keys = [parallel.stable_key("smoothing", sigma, n0, n, alpha, seed, p["offset"], p["x"]) for p in payloads]
    checks = [
        parallel.rows_check(len(p["x"]), ("prediction", "p_lower", "radius", "counts"), kinds={"batch_size": int})
        for p in payloads
    ]
    outs = ex.map(
        certify_shard, bundle, payloads, keys=keys, checks=checks, stage="certify:smoothing", progress=progress
    )
    seconds = (time.perf_counter() - start) / len(x)
    return SmoothingResult(
        sigma,
        n0,
        n,
        alpha,
        torch.cat([o["prediction"] for o in outs]),
        torch.cat([o["p_lower"] for o in outs]),
        torch.cat([o["radius"] for o in outs]),
        torch.cat([o["counts"] for o in outs]),
        labels,
        seconds,
        int(outs[0]["batch_size"]),
    )


def certify_shard(bundle: ModelBundle, p: dict[str, Any]) -> dict[str, Any]:
    """One shard of :func:`certify` (on a worker): plain tensors back."""
    with parallel.local():
        r = certify(
            bundle, p["x"], p["y"], sigma=p["sigma"], n0=p["n0"], n=p["n"], alpha=p["alpha"], batch_size=p["batch_size"],
            seed=p["seed"], index_offset=p["offset"],
        )  # fmt: skip
    return {
        "prediction": r.prediction,
        "p_lower": r.p_lower,
        "radius": r.radius,
        "counts": r.counts,
        "batch_size": r.batch_size,
    }
