"""Gradient and perturbation attributions through captum.

Every function has the same shape, ``(module, x, target, ctx) -> Attribution``:
``x`` and ``target`` are on the module's device, the attributions come back on
the CPU with ``x``'s shape. Each explains the target class's *logit*.

- Saliency: Simonyan et al. 2013, https://arxiv.org/abs/1312.6034
- Integrated Gradients: Sundararajan et al. 2017, https://arxiv.org/abs/1703.01365
- SmoothGrad: Smilkov et al. 2017, https://arxiv.org/abs/1706.03825
- Grad-CAM: Selvaraju et al. 2017, https://arxiv.org/abs/1610.02391
- DeepLIFT: Shrikumar et al. 2017, https://arxiv.org/abs/1704.02685
- Occlusion: Zeiler & Fergus 2014, https://arxiv.org/abs/1311.2901

Grad-CAM and the activation maps hook "the last convolution" in every format: an
eager model's ``nn.Conv2d``, an exported graph's convolution outputs (tapped at load,
see :class:`dlaudit.graphs.ConvTap`), and a TorchScript model's through a copy
converted to an exported graph (:func:`dlaudit.graphs.hookable`).
"""

from __future__ import annotations

import math

import torch
from captum.attr import (
    DeepLift,
    LayerActivation,
    LayerAttribution,
    LayerGradCam,
    Saliency,
)
from torch import nn

from ..errors import AnalysisError, ConfigError
from ..graphs import ConvTap, ExportedModule, contains_graph, hookable
from ._common import Attribution, ExplainContext, chunked, row_seed
from ._structure import relu_problems, run_order
from .engine import integrated_gradients_values, occlusion_values
from .fast import fast_module
from .memory import chunks, row_budget

__all__ = [
    "saliency",
    "integrated_gradients",
    "smoothgrad",
    "gradcam",
    "deeplift",
    "occlusion",
    "conv_layers",
    "gradcam_layer",
    "layer_activations",
]

_CONV = (nn.Conv2d, ConvTap)


def saliency(module: nn.Module, x: torch.Tensor, target: torch.Tensor, ctx: ExplainContext) -> Attribution:
    """The gradient of the target logit with respect to the input (signed, not absolute).

    For a linear model ``f(x) = W x + b`` this is exactly ``W[target]``.
    """
    module = fast_module(module, x, gradients=True)  # itself unless fast.GRADIENTS_FOLDED
    sal = Saliency(module)
    values, _ = chunked(
        lambda xc, tc: sal.attribute(xc, target=tc, abs=False), x, target, rows_per_example=1,
        budget=row_budget(module, x, ctx),
    )  # fmt: skip
    return Attribution(values)


def integrated_gradients(module: nn.Module, x: torch.Tensor, target: torch.Tensor, ctx: ExplainContext) -> Attribution:
    """Integrated Gradients from the all-``low`` baseline (black for images).

    captum's Gauss-Legendre rule with ``settings.ig_steps`` steps, computed by the
    engine (:func:`dlaudit.explain.engine.integrated_gradients_values`): every
    example's steps stacked in cache-sized passes of at most
    :func:`~dlaudit.explain.memory.row_budget` rows (the memory budget), so memory stays
    flat as the number of examples or steps grows. ``extras["delta"]`` holds captum's convergence
    delta ``sum(attr) - (f(x) - f(baseline))`` per example.
    """
    module = fast_module(module, x, gradients=True)  # itself unless fast.GRADIENTS_FOLDED
    steps = ctx.settings.ig_steps
    values, delta = integrated_gradients_values(
        module, x, target, ctx.baseline(x), steps=steps, budget=row_budget(module, x, ctx)
    )
    return Attribution(values.detach().cpu(), extras={"delta": delta.detach().cpu(), "steps": steps})


def smoothgrad(module: nn.Module, x: torch.Tensor, target: torch.Tensor, ctx: ExplainContext) -> Attribution:
    """SmoothGrad: saliency averaged over copies of the input with Gaussian noise.

    The noise's standard deviation is ``settings.smoothgrad_noise`` of the value
    range (captum's default of 1.0 would drown a [0, 1] image in noise). Each
    example's noise comes from its own generator (seeded by the seed and the
    example's row), so the noisy copies, and the map, are the same whichever
    examples and how many copies share a pass (captum's NoiseTunnel draws one
    stream per batch, so its maps change with the batch size). The ``samples x
    examples`` noisy rows go through the model in chunks of
    :func:`~dlaudit.explain.memory.row_budget` rows.
    """
    module = fast_module(module, x, gradients=True)  # itself unless fast.GRADIENTS_FOLDED
    samples = ctx.settings.smoothgrad_samples
    sigma = ctx.settings.smoothgrad_noise * ctx.span
    sal = Saliency(module)
    shape = tuple(x.shape[1:])
    xs = x.detach().cpu()

    def noisy(i: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(row_seed(ctx.seed, ctx.row_offset + i))
        return xs[i] + sigma * torch.randn((samples, *shape), generator=gen, dtype=xs.dtype)

    total = torch.zeros(xs.shape, dtype=torch.float64)
    for part in chunks(len(x) * samples, row_budget(module, x, ctx)):
        first, last = part.start // samples, (part.stop - 1) // samples
        pieces, owners = [], []
        for i in range(first, last + 1):
            lo, hi = max(part.start - i * samples, 0), min(part.stop - i * samples, samples)
            pieces.append(noisy(i)[lo:hi])
            owners.append(torch.full((hi - lo,), i, dtype=torch.long))
        owner = torch.cat(owners)
        grads = sal.attribute(torch.cat(pieces).to(x.device), target=target[owner.to(target.device)], abs=False)
        total.index_add_(0, owner, grads.detach().cpu().double())
    values = (total / samples).float()
    return Attribution(values, extras={"stdev": sigma, "samples": samples})


def conv_layers(module: nn.Module, example: torch.Tensor) -> list[tuple[str, nn.Module]]:
    """The 2-D convolutions of ``module`` (or the taps on their outputs in a graph) in the order one forward pass runs them."""
    named = [(name, m) for name, m in module.named_modules() if isinstance(m, _CONV)]
    if not named:
        return []
    return run_order(module, example, named)


def _module_nonlinearities(module: nn.Module, method: str) -> None:
    """DeepLIFT's rule works through hooks on non-linearity modules, which TorchScript and exported graphs do not have."""
    if contains_graph(module):
        raise AnalysisError(
            f"{method} applies its rule through hooks on the model's non-linearity modules, and a TorchScript or "
            "torch.export graph runs its non-linearities as operators (its maps would be plain gradients under "
            "DeepLIFT's name); explain the eager model (a state_dict with --arch, or a dlaudit checkpoint) for DeepLIFT"
        )


def hook_batch(module: nn.Module) -> int | None:
    """The static batch of an exported program inside ``module``: hooks see one batch only when every call is one."""
    for m in module.modules():
        if isinstance(m, ExportedModule) and m.static_batch is not None:
            return m.static_batch
    return None


def _in_static_batches(fn, module: nn.Module, *tensors: torch.Tensor):
    """``fn(*tensors)`` in chunks of the module's static batch (each padded to it), concatenated; once when there is none."""
    b = hook_batch(module)
    n = len(tensors[0])
    if b is None or n == b:
        return fn(*tensors)
    outs = []
    for start in range(0, n, b):
        parts = [t[start : start + b] for t in tensors]
        rows = len(parts[0])
        padded = [torch.cat([p, p[-1:].expand(b - rows, *p.shape[1:])]) if rows < b else p for p in parts]
        out = fn(*padded)
        outs.append([o[:rows] for o in out] if isinstance(out, (list, tuple)) else out[:rows])
    if isinstance(outs[0], list):
        return [torch.cat(group) for group in zip(*outs)]
    return torch.cat(outs)


def gradcam_layer(module: nn.Module, example: torch.Tensor, name: str | None = None) -> tuple[str, nn.Module]:
    """The layer Grad-CAM looks at: ``name`` if given, else the last convolution run.

    ``module`` must be hookable (see :func:`dlaudit.graphs.hookable`); in a graph, a
    convolution's name (``layer4.1.conv2``) finds the tap on its output.
    """
    if name:
        modules = dict(module.named_modules())
        taps = {m.conv: n for n, m in modules.items() if isinstance(m, ConvTap)}
        name = name if name in modules else taps.get(name, name)
        if name not in modules:
            convs = [n for n, _ in conv_layers(module, example)]
            raise ConfigError(
                f"Grad-CAM layer {name!r} is not a module of this model; convolutional layers: {', '.join(convs) or '(none)'}"
            )
        return name, modules[name]
    layers = conv_layers(module, example)
    if not layers:
        raise AnalysisError("Grad-CAM needs a 2-D convolutional layer and this model has none")
    return layers[-1]


def gradcam(module: nn.Module, x: torch.Tensor, target: torch.Tensor, ctx: ExplainContext) -> Attribution:
    """Grad-CAM on the last convolutional layer (or ``ctx.gradcam_layer``), upsampled to the input.

    The map (ReLU of the gradient-weighted activations) is bilinearly
    interpolated to the input's height and width and repeated over its channels.
    """
    if not ctx.kind.spatial or x.dim() != 4:
        raise AnalysisError(f"Grad-CAM explains image models (inputs shaped N, C, H, W); this is {ctx.kind.title} data")
    module = hookable(module, x)
    name, layer = gradcam_layer(module, x, ctx.gradcam_layer)
    grad_cam = LayerGradCam(module, layer)
    cam, _ = chunked(
        lambda xc, tc: _in_static_batches(
            lambda xb, tb: grad_cam.attribute(xb, target=tb, relu_attributions=True).detach(), module, xc, tc
        ),
        x, target, rows_per_example=1, budget=row_budget(module, x, ctx),
    )  # fmt: skip
    if cam.dim() != 4:
        raise AnalysisError(f"Grad-CAM needs a layer with 2-D feature maps; {name!r} gives {cam.dim()}-D output")
    up = LayerAttribution.interpolate(cam, tuple(x.shape[2:]), interpolate_mode="bilinear")
    shown = layer.conv if isinstance(layer, ConvTap) else name
    return Attribution(up.expand_as(x).detach().cpu().clone(), extras={"layer": shown})


def deeplift(module: nn.Module, x: torch.Tensor, target: torch.Tensor, ctx: ExplainContext) -> Attribution:
    """DeepLIFT (rescale rule) from the all-``low`` baseline.

    captum applies DeepLIFT's rule only to non-linearities that are modules; a
    module used twice makes it fail (the method is then skipped with the reason),
    and a functional ReLU silently gets a plain gradient (a warning says so).
    """
    _module_nonlinearities(module, "DeepLIFT")
    problems = relu_problems(module) or []
    reused = [p for p in problems if "used" in p]
    if reused:
        raise AnalysisError(f"DeepLIFT needs every non-linearity to be its own module used once; {'; '.join(reused)}")
    dl = DeepLift(module)
    try:  # captum runs the inputs and their baselines in one pass: two rows per example
        values, _ = chunked(
            lambda xc, tc: dl.attribute(xc, baselines=ctx.baseline(xc), target=tc), x, target, rows_per_example=2,
            budget=row_budget(module, x, ctx),
        )  # fmt: skip
    except RuntimeError as err:
        if "used more than once" in str(err) or "does not contain some of the input/output attributes" in str(err):
            raise AnalysisError(
                "DeepLIFT needs every non-linearity to be its own module used once; a module is reused in this model"
            ) from err
        raise
    out = Attribution(values)
    if problems:
        out.findings.append(
            (
                "warning",
                f"DeepLIFT's rescale rule was not applied to functional non-linearities ({'; '.join(problems)}); those parts use plain gradients",
            )
        )
    return out


def _occlusion_window(ctx: ExplainContext, x: torch.Tensor) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Window and stride: a patch about a seventh of the image side, moved by half a patch."""
    if x.dim() == 4:
        side = ctx.settings.occlusion_window or max(2, math.ceil(min(x.shape[2:]) / 7))
        stride = max(1, side // 2)
        return (x.shape[1], side, side), (x.shape[1], stride, stride)
    return (1,) * (x.dim() - 1), (1,) * (x.dim() - 1)


def occlusion(module: nn.Module, x: torch.Tensor, target: torch.Tensor, ctx: ExplainContext) -> Attribution:
    """Occlusion: the drop in the target logit when a patch (or a feature) is set to ``low``.

    Images: square patches about a seventh of the side, stride half a patch;
    tabular inputs: one feature at a time. captum's Occlusion computed by the engine
    (:func:`dlaudit.explain.engine.occlusion_values`): every (example, window) pair one
    row, in cache-sized passes of at most
    :func:`~dlaudit.explain.memory.row_budget` rows (the memory budget), target
    logit only, under ``torch.inference_mode``.
    """
    module = fast_module(module, x)  # batch norm folded (dlaudit.explain.fast)
    window, strides = _occlusion_window(ctx, x)
    values = occlusion_values(
        module, x, target, ctx.low, window=window, strides=strides, budget=row_budget(module, x, ctx, backward=False)
    )
    return Attribution(values.detach().cpu(), extras={"window": list(window), "strides": list(strides)})


def layer_activations(module: nn.Module, x: torch.Tensor, *, max_layers: int = 4) -> list[tuple[str, torch.Tensor]]:
    """Activation maps of the first convolutional layers (captum's LayerActivation) for ``x``, in any format.

    Raises :class:`AnalysisError` when a TorchScript model cannot be converted to a
    graph whose convolutions can be hooked.
    """
    module = hookable(module, x)
    layers = conv_layers(module, x)[:max_layers]
    if not layers:
        return []
    activation = LayerActivation(module, [m for _, m in layers])
    acts = _in_static_batches(lambda xc: _as_list(activation.attribute(xc)), module, x)
    return [(m.conv if isinstance(m, ConvTap) else name, a.detach().cpu()) for (name, m), a in zip(layers, acts)]


def _as_list(out: torch.Tensor | list[torch.Tensor]) -> list[torch.Tensor]:
    return [o.detach() for o in out] if isinstance(out, (list, tuple)) else [out.detach()]
