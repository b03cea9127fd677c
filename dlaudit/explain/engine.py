"""The explanation engine: batched forward and backward passes shared by the methods.

captum and shap run one method at a time through general machinery (input checks,
per-sample Python loops in shap, an ablation mask per perturbation in captum's
occlusion). The kernels here compute the same quantities with every sample, step,
draw and target class of a call stacked along the batch dimension, in passes of a
cache-sized number of rows (:func:`rows_per_pass`), and ask the model only for the
target logit's input gradient (or, for forward-only methods, the target logit under
``torch.inference_mode``, with the convolution weights channels-last: :func:`in_fast_layout`).

The numbers do not depend on how rows are grouped into passes: each row's gradient
and logit depend on that row alone (for a model in eval mode), and sums run in a
fixed order.

- :func:`integrated_gradients_values`: captum's ``IntegratedGradients`` (Gauss-Legendre
  steps, the same alphas and step sizes), Sundararajan et al. 2017, https://arxiv.org/abs/1703.01365
- :func:`expected_gradients_values`: shap's ``GradientExplainer`` with the same random
  draws for the same seed, Erion et al. 2019, https://arxiv.org/abs/1906.10670
- :func:`occlusion_values`: captum's ``Occlusion`` (the same windows, the edge windows
  cut at the border as captum's padding cuts them), Zeiler & Fergus 2014, https://arxiv.org/abs/1311.2901
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import nn

from ..robust.attacks.speed import layout

__all__ = [
    "CACHE_FLOATS",
    "GRADIENTS_CHANNELS_LAST",
    "in_fast_layout",
    "rows_per_pass",
    "target_logits",
    "input_gradients",
    "integrated_gradients_values",
    "shap_draws",
    "expected_gradients_values",
    "occlusion_windows",
    "occlusion_values",
]

CACHE_FLOATS = 1 << 18
"""Input floats per pass (1 MiB): about what keeps a small CNN's activations in cache on one core.

Measured with captum's IG and one thread: the digits CNN (1x8x8) ran fastest in passes of 256
rows, the seed CNN on 3x32x32 in passes of 64; passes of 4,096 rows took 2.9x and 3.4x as long.
"""


GRADIENTS_CHANNELS_LAST = False
"""Whether gradient passes (IG, gradient SHAP) also hold the convolution weights channels-last: no.

A forward pass in the other layout sums in another order, so a logit moves by about 1e-7, which
occlusion's differences carry as they are. A gradient is not continuous in the input where a ReLU
sits at 0 or a max-pool window has two near-equal values: the other order can route one sample's
gradient another way, and over the 12,800 samples of gradient SHAP on the digits CNN one did
(1.8e-4 apart from shap's values, over the 1e-5 the engine keeps). The speed it would buy was
mixed (gradient SHAP on a 3x32x32 resnet-like CNN 0.78x, its IG 1.08x).
"""


def rows_per_pass(x: torch.Tensor, budget: int) -> int:
    """Rows per forward pass: about :data:`CACHE_FLOATS` input floats, at least 16, at most ``budget``."""
    per_row = max(1, int(x[0].numel())) if len(x) else 1
    return max(1, min(int(budget), max(16, CACHE_FLOATS // per_row)))


def in_fast_layout(fn: Callable[[], object], module: nn.Module, x: torch.Tensor, *, channels_last: bool = True):
    """``fn()`` with ``module``'s convolution weights held channels-last (4-D inputs; the attack engine's
    :func:`~dlaudit.robust.attacks.speed.layout`), or as they are when ``channels_last`` is False.

    torch's CPU pooling and convolution kernels run much faster on channels-last activations
    (occlusion on the digits CNN took 0.54x the time, on a 3x32x32 resnet-like CNN 0.84x; one
    thread, a loaded machine). A model that reshapes its
    activations with ``view`` cannot take that layout: it then runs as it is.
    """
    if not channels_last:
        return fn()
    held = False
    try:
        with layout(module, x) as held:
            return fn()
    except RuntimeError as err:
        if not held or "view" not in str(err):
            raise
    return fn()


def _spans(total: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, total, size):
        yield start, min(total, start + size)


def target_logits(module: nn.Module, x: torch.Tensor, target: torch.Tensor, *, rows: int) -> torch.Tensor:
    """``module(x)[i, target[i]]`` for every row, without autograd, ``rows`` rows per pass."""
    out = torch.empty(len(x), dtype=torch.float32, device=x.device)
    with torch.inference_mode():
        for a, b in _spans(len(x), rows):
            out[a:b] = module(x[a:b]).gather(1, target[a:b, None].long())[:, 0].float()
    return out.clone()


def _gradient(module: nn.Module, rows: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    leaf = rows.detach().requires_grad_(True)
    selected = module(leaf).gather(1, target.long()[:, None]).sum()
    (grad,) = torch.autograd.grad(selected, leaf)
    return grad


def input_gradients(module: nn.Module, x: torch.Tensor, target: torch.Tensor, *, rows: int) -> torch.Tensor:
    """The gradient of each row's target logit with respect to that row, ``rows`` rows per pass."""
    out = torch.empty_like(x)
    for a, b in _spans(len(x), rows):
        out[a:b] = _gradient(module, x[a:b], target[a:b])
    return out


# -- Integrated Gradients -------------------------------------------------------------------------


def _gauss_legendre(steps: int) -> tuple[list[float], list[float]]:
    """captum's Gauss-Legendre step sizes and alphas (the same floats captum uses)."""
    from captum.attr._utils.approximation_methods import approximation_parameters

    sizes, alphas = approximation_parameters("gausslegendre")
    return list(sizes(steps)), list(alphas(steps))


def integrated_gradients_values(
    module: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    baseline: torch.Tensor,
    *,
    steps: int,
    budget: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Integrated Gradients and captum's convergence delta per example.

    Examples go in groups of at most ``budget // steps`` (so that no more than
    ``budget`` scaled inputs exist at once); each group's ``steps x examples``
    scaled inputs go through the model in passes of :func:`rows_per_pass` rows.
    The path sum is captum's: gradients times step sizes, summed over steps, times
    ``x - baseline``. The delta ``sum(attr) - (f(x) - f(baseline))`` reuses one
    forward pass of the baseline when every example shares it.
    """
    sizes, alphas = _gauss_legendre(steps)
    step_sizes = torch.tensor(sizes, dtype=torch.float32, device=x.device).view(steps, 1)
    alpha = torch.tensor(alphas, dtype=x.dtype, device=x.device).view(steps, *([1] * x.dim()))
    rows = rows_per_pass(x, budget)
    per_group = max(1, budget // steps)
    diff = x - baseline

    def run() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        values = torch.empty_like(x)
        for a, b in _spans(len(x), per_group):
            n = b - a
            scaled = (baseline[a:b].unsqueeze(0) + alpha * diff[a:b].unsqueeze(0)).reshape(steps * n, *x.shape[1:])
            grads = input_gradients(module, scaled, target[a:b].repeat(steps), rows=rows)
            total = (grads.reshape(steps, -1) * step_sizes).view(steps, n, *x.shape[1:]).sum(dim=0)
            values[a:b] = total * diff[a:b]
        end = target_logits(module, x, target, rows=rows)
        if bool((baseline == baseline[:1]).all()):
            with torch.inference_mode():
                logits = module(baseline[:1]).float()[0]
            start = logits.clone()[target.long()]
        else:
            start = target_logits(module, baseline, target, rows=rows)
        return values, end, start

    values, end, start = in_fast_layout(run, module, x, channels_last=GRADIENTS_CHANNELS_LAST)
    delta = values.reshape(len(x), -1).sum(1) - (end - start)
    return values, delta


# -- SHAP's GradientExplainer (expected gradients) ---------------------------------------------------


def shap_draws(seed: int, background: int, rows: int, samples: int) -> tuple[np.ndarray, np.ndarray]:
    """The background indices and interpolation points shap's GradientExplainer draws for ``rows`` rows.

    shap seeds NumPy's global generator with ``seed`` and then, for each row and
    sample in turn, calls ``np.random.choice(background)`` and ``np.random.uniform()``.
    The same numbers come here from the raw 32-bit words of ``RandomState(seed)``,
    decoded as NumPy's legacy generator decodes them (a masked draw, rejected while
    above the range, then a 53-bit double from two words), without touching the global
    generator. Returns ``(index, t)``, each shaped ``(rows, samples)``.
    """
    count = rows * samples
    top = background - 1
    mask = (1 << max(0, top).bit_length()) - 1
    # a draw takes one word with probability (top + 1) / (mask + 1) > 1/2, then two for t
    size = int(count * (2 + 2 * (mask + 1) / background)) + 64
    while True:
        words = np.random.RandomState(seed % 2**32).randint(0, 2**32, size=size, dtype=np.uint32)
        last = _accepted_words(words, top, mask, count)
        if last is not None:
            break
        size *= 2  # ran out of words (very unlikely): draw twice as many and decode again
    index = (words[last] & mask).astype(np.int64) if top > 0 else np.zeros(count, dtype=np.int64)
    high = (words[last + 1] >> 5).astype(np.float64)
    low = (words[last + 2] >> 6).astype(np.float64)
    t = (high * 67108864.0 + low) / 9007199254740992.0
    return index.reshape(rows, samples), t.reshape(rows, samples)


def _accepted_words(words: np.ndarray, top: int, mask: int, count: int) -> np.ndarray | None:
    """Where each of ``count`` draws' index word lies in ``words`` (its two words for t follow); None if too few."""
    size = len(words)
    if top == 0:  # choice(1) takes no word: the draws are t's word pairs back to back
        last = np.arange(count, dtype=np.int64) * 2 - 1
        return last if 2 * count <= size else None
    accepted = (words & mask) <= top
    # after[p]: the first accepted word at or after p (size where there is none)
    after = np.minimum.accumulate(np.where(accepted, np.arange(size), size)[::-1])[::-1].tolist()
    after += [size] * 3
    out, p = [], 0
    for _ in range(count):
        q = after[p]
        if q + 2 >= size:
            return None
        out.append(q)
        p = q + 3
    return np.asarray(out, dtype=np.int64)


def expected_gradients_values(
    module: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    background: torch.Tensor,
    *,
    samples: int,
    seed: int,
    budget: int,
) -> torch.Tensor:
    """shap.GradientExplainer's values of the target logit, every class and row in one stack of passes.

    dlaudit explains each target class with its own explainer over the rows of that
    class (each seeded with ``seed``), so a row's draws are those of its place among
    the rows of its class. Sample ``k`` of row ``j`` is ``t x_j + (1 - t) b`` (float32,
    as shap builds it) and contributes ``grad * (x_j - b)``; the values are the mean
    over the samples in float64, as shap's.
    """
    n = len(x)
    index = np.empty((n, samples), dtype=np.int64)
    t = np.empty((n, samples), dtype=np.float64)
    for cls in torch.unique(target).tolist():
        rows_of = (target == cls).nonzero().flatten().cpu().numpy()
        idx, tt = shap_draws(seed, len(background), len(rows_of), samples)
        index[rows_of], t[rows_of] = idx, tt
    flat_index = torch.from_numpy(index.reshape(-1)).to(x.device)
    flat_t = torch.from_numpy(t.reshape(-1))
    scale = flat_t.float().to(x.device)
    rest = (1.0 - flat_t).float().to(x.device)  # shap multiplies by the Python floats t and 1 - t
    owner = torch.arange(n, device=x.device).repeat_interleave(samples)
    shape = (-1, *([1] * (x.dim() - 1)))
    rows = rows_per_pass(x, budget)

    def run() -> torch.Tensor:
        total = torch.zeros(n, *x.shape[1:], dtype=torch.float64, device=x.device)
        for a, b in _spans(n * samples, rows):
            xs, bs = x[owner[a:b]], background[flat_index[a:b]]
            inputs = scale[a:b].view(shape) * xs + rest[a:b].view(shape) * bs
            grad = _gradient(module, inputs, target[owner[a:b]])
            total.index_add_(0, owner[a:b], grad.double() * (xs - bs).double())
        return total

    total = in_fast_layout(run, module, x, channels_last=GRADIENTS_CHANNELS_LAST)
    return (total / samples).float()


# -- occlusion ------------------------------------------------------------------------------------------


def occlusion_windows(shape: tuple[int, ...], window: tuple[int, ...], strides: tuple[int, ...]) -> torch.Tensor:
    """Every window captum's Occlusion slides over an input of ``shape``, as a bool mask ``(windows, *shape)``.

    Per dimension ``ceil((size - window) / stride) + 1`` positions; the last one may
    run past the border, where captum's padding cuts it (so it is smaller), as here.
    Windows are in captum's order (the first dimension moves fastest).
    """
    counts = [math.ceil((s - w) / st) + 1 for s, w, st in zip(shape, window, strides)]
    total = math.prod(counts)
    masks = torch.zeros((total, *shape), dtype=torch.bool)
    for f in range(total):
        rest, where = f, []
        for c, w, st in zip(counts, window, strides):
            start = (rest % c) * st
            rest //= c
            where.append(slice(start, start + w))
        masks[(f, *where)] = True
    return masks


def occlusion_values(
    module: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    low: float,
    *,
    window: tuple[int, ...],
    strides: tuple[int, ...],
    budget: int,
) -> torch.Tensor:
    """captum's Occlusion: per feature, the mean drop of the target logit over the windows that hide it.

    Every (example, window) pair is one row; the rows go through the model in
    passes of :func:`rows_per_pass` rows under ``torch.inference_mode``, and only
    the target logit is kept.
    """
    masks = occlusion_windows(tuple(x.shape[1:]), window, strides).to(x.device)
    n, f = len(x), len(masks)
    rows = rows_per_pass(x, budget)
    example = torch.arange(n, device=x.device).repeat_interleave(f)
    which = torch.arange(f, device=x.device).repeat(n)
    fill = torch.tensor(low, dtype=x.dtype, device=x.device)

    def logits() -> tuple[torch.Tensor, torch.Tensor]:
        initial = target_logits(module, x, target, rows=rows)
        drops = torch.empty(n * f, dtype=torch.float32, device=x.device)
        with torch.inference_mode():
            for a, b in _spans(n * f, rows):
                hidden = torch.where(masks[which[a:b]], fill, x[example[a:b]])
                drops[a:b] = module(hidden).gather(1, target[example[a:b], None].long())[:, 0].float()
        return initial, drops.clone()

    initial, drops = in_fast_layout(logits, module, x)
    drops = initial.view(n, 1) - drops.view(n, f)
    flat = masks.view(f, -1).float()
    return ((drops @ flat) / flat.sum(0)).view(x.shape)  # float32, as captum gives it
