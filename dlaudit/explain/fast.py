"""A fast copy of an image model for the explanation methods: batch norm folded into the convolution before it.

A ``Conv2d`` followed by an eval-mode ``BatchNorm2d`` is one affine map; folding the norm's scale
and shift into the convolution's weight and bias (``torch.fx.experimental.optimization.fuse``)
leaves one kernel where there were two passes over the activations, forward and backward. The
copy computes the same function up to float32 rounding (the folded weight is rounded once): logits
about 3e-7 apart, relative, as far from float64 as the model's own.

Measured with one thread, forward and input gradient of a batch, interleaved medians, time relative
to the model as it is (a loaded 2-core machine): bench/explain.py's resnet-like CNN on 3x32x32 0.84,
resnet18 on 224x224 0.89, on 3x32x32 0.84; the digits CNN (no batch norm) 0.99 to 0.82 by size.

The rule is static, never a timing: the copy is made for 4-D inputs when the model is in eval
mode, has a ``BatchNorm2d``, carries no hooks, and ``torch.fx`` can trace it; otherwise (or when
tracing or folding fails, or nothing was folded) the methods get the model itself. The user's
model is never changed (:func:`fuse` works on a deep copy). One copy is kept per model while its
parameters and buffers stay the same tensors at the same versions (an in-place update, such as an
optimiser step, makes a new one).

Only for methods that treat the model as a function of its input, and of those, for now, only the
forward-only passes (occlusion; every pass of
:func:`~dlaudit.explain._common.batched_probabilities` on images: image LIME and the trust metrics'
forward passes, pixel flipping, ROAD, stability): their outputs are continuous in the model's arithmetic, so
the folded copy's attributions stay at float32 rounding from the model's own (occlusion on the
bench's resnet-like CNN: 2.1e-5 of the largest attribution from float64, the model itself 1.6e-5;
3e-8 absolute). The gradient methods (saliency, Integrated Gradients, SmoothGrad, gradient SHAP)
call :func:`fast_module` with ``gradients=True`` and get the model itself while
:data:`GRADIENTS_FOLDED` is False. Methods that hook layers or apply rules per module (Grad-CAM,
DeepLIFT, DeepLiftShap) never call it. Kernel SHAP explains tabular rows (not 4-D).

Channels-last activations are not used for the gradient methods (see
:data:`~dlaudit.explain.engine.GRADIENTS_CHANNELS_LAST`); occlusion already runs channels-last.
"""

from __future__ import annotations

import weakref

import torch
from torch import nn

__all__ = ["GRADIENTS_FOLDED", "fast_module", "foldable"]

GRADIENTS_FOLDED = False
"""Whether the gradient methods run on the folded copy too: no, for the reason channels-last is off for them.

An input gradient is not continuous where a ReLU's input sits at 0: the folded copy sums in another
order, so at a point of an IG path or a SHAP draw within rounding of a kink it can route the gradient
another way. On the bench's resnet-like CNN (3x32x32, 16 inputs, 64 steps) the folded copy's IG was
6.6e-4 of the largest attribution from float64's (one path point of 64 routed another way, its
gradient 3% off), the model's own 7.5e-5 (another point); gradient SHAP moved by 1.0e-3 against the
plain model. Everywhere else the gradients agreed to 3.5e-7. The speed it would buy (64 inputs, one
thread, 3 interleaved repeats, a 2-core machine at load 1.5 to 2.4): IG 0.66x the plain model's time,
gradient SHAP 0.67x.
"""

_CACHE: weakref.WeakKeyDictionary[nn.Module, tuple[tuple, nn.Module | None]] = weakref.WeakKeyDictionary()
"""Per model: its fingerprint and its folded copy (None when it could not be folded)."""


def _fingerprint(module: nn.Module) -> tuple:
    return tuple((id(t), t.data_ptr(), t._version) for t in (*module.parameters(), *module.buffers()))


def _hooked(module: nn.Module) -> bool:
    names = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
    return any(getattr(m, n, None) for m in module.modules() for n in names)


def foldable(module: nn.Module, x: torch.Tensor) -> bool:
    """Whether :func:`fast_module` tries to fold ``module`` for inputs like ``x`` (the static rule, before tracing)."""
    if x.dim() != 4 or not isinstance(module, nn.Module) or isinstance(module, torch.jit.ScriptModule):
        return False
    mods = list(module.modules())
    if any(m.training for m in mods) or _hooked(module):
        return False
    return any(isinstance(m, nn.BatchNorm2d) for m in mods) and any(isinstance(m, nn.Conv2d) for m in mods)


UNTRACEABLE = (torch.fx.proxy.TraceError, TypeError, ValueError, RuntimeError, NotImplementedError, AttributeError,
               AssertionError, KeyError, IndexError)  # fmt: skip
"""What torch.fx's symbolic tracing raises on a model it cannot trace (a proxy used as a bool, an int, an index,
an attribute it does not have...); anything else is a bug and propagates."""


def _fold(module: nn.Module) -> nn.Module:
    from torch.fx.experimental.optimization import fuse

    before = sum(isinstance(m, nn.BatchNorm2d) for m in module.modules())
    try:
        fused = fuse(module, inplace=False)
    except UNTRACEABLE:  # e.g. data-dependent control flow, a shape read as a Python int: run it as it is
        return module
    if sum(isinstance(m, nn.BatchNorm2d) for m in fused.modules()) >= before:
        return module  # nothing folded (every norm follows something other than a lone convolution)
    for p in fused.parameters():
        p.requires_grad_(False)  # the methods need input gradients only
    return fused.eval()


def fast_module(module: nn.Module, x: torch.Tensor, *, gradients: bool = False) -> nn.Module:
    """``module`` with batch norm folded into its convolutions where :func:`foldable` allows, else ``module``.

    ``gradients``: the caller takes input gradients; then the copy only when :data:`GRADIENTS_FOLDED`.
    """
    if (gradients and not GRADIENTS_FOLDED) or not foldable(module, x):
        return module
    key = _fingerprint(module)
    hit = _CACHE.get(module)
    if hit is not None and hit[0] == key:
        return module if hit[1] is None else hit[1]
    fused = _fold(module)
    _CACHE[module] = (key, None if fused is module else fused)
    return fused
