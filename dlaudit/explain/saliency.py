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
"""

from __future__ import annotations

import math

import torch
from captum.attr import (
    DeepLift,
    IntegratedGradients,
    LayerActivation,
    LayerAttribution,
    LayerGradCam,
    NoiseTunnel,
    Occlusion,
    Saliency,
)
from torch import nn

from ..errors import AnalysisError, ConfigError
from ._common import Attribution, ExplainContext, chunked
from ._structure import relu_problems, run_order

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

_CONV = (nn.Conv2d,)


def saliency(module: nn.Module, x: torch.Tensor, target: torch.Tensor, ctx: ExplainContext) -> Attribution:
    """The gradient of the target logit with respect to the input (signed, not absolute).

    For a linear model ``f(x) = W x + b`` this is exactly ``W[target]``.
    """
    values = Saliency(module).attribute(x, target=target, abs=False)
    return Attribution(values.detach().cpu())


def integrated_gradients(module: nn.Module, x: torch.Tensor, target: torch.Tensor, ctx: ExplainContext) -> Attribution:
    """Integrated Gradients from the all-``low`` baseline (black for images).

    Examples are processed in chunks so that one forward pass holds at most
    ``settings.internal_batch_size`` rows: memory stays flat as the number of
    examples grows. ``extras["delta"]`` holds captum's convergence delta
    ``sum(attr) - (f(x) - f(baseline))`` per example.
    """
    steps = ctx.settings.ig_steps
    ig = IntegratedGradients(module)

    def run(xc: torch.Tensor, tc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return ig.attribute(
            xc,
            baselines=ctx.baseline(xc),
            target=tc,
            n_steps=steps,
            internal_batch_size=len(xc) * steps,
            return_convergence_delta=True,
        )

    values, delta = chunked(run, x, target, rows_per_example=steps, budget=ctx.settings.internal_batch_size)
    return Attribution(values, extras={"delta": delta, "steps": steps})


def smoothgrad(module: nn.Module, x: torch.Tensor, target: torch.Tensor, ctx: ExplainContext) -> Attribution:
    """SmoothGrad: saliency averaged over copies of the input with Gaussian noise.

    The noise's standard deviation is ``settings.smoothgrad_noise`` of the value
    range (captum's default of 1.0 would drown a [0, 1] image in noise).
    """
    samples = ctx.settings.smoothgrad_samples
    sigma = ctx.settings.smoothgrad_noise * ctx.span
    tunnel = NoiseTunnel(Saliency(module))

    def run(xc: torch.Tensor, tc: torch.Tensor) -> torch.Tensor:
        return tunnel.attribute(
            xc,
            nt_type="smoothgrad",
            nt_samples=samples,
            nt_samples_batch_size=samples,
            stdevs=sigma,
            target=tc,
            abs=False,
        )

    values, _ = chunked(run, x, target, rows_per_example=samples, budget=ctx.settings.internal_batch_size)
    return Attribution(values, extras={"stdev": sigma, "samples": samples})


def conv_layers(module: nn.Module, example: torch.Tensor) -> list[tuple[str, nn.Module]]:
    """The 2-D convolutions of ``module`` in the order one forward pass runs them."""
    named = [(name, m) for name, m in module.named_modules() if isinstance(m, _CONV)]
    if not named:
        return []
    return run_order(module, example, named)


def _need_hooks(module: nn.Module, method: str) -> None:
    if isinstance(module, torch.jit.ScriptModule):
        raise AnalysisError(
            f"{method} needs hooks on the model's layers, which TorchScript modules do not support; explain the eager model (e.g. a dlaudit checkpoint) instead"
        )


def gradcam_layer(module: nn.Module, example: torch.Tensor, name: str | None = None) -> tuple[str, nn.Module]:
    """The layer Grad-CAM looks at: ``name`` if given, else the last convolution run."""
    _need_hooks(module, "Grad-CAM")
    if name:
        modules = dict(module.named_modules())
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
    if ctx.modality != "image" or x.dim() != 4:
        raise AnalysisError("Grad-CAM explains image models (inputs shaped N, C, H, W); this is tabular data")
    name, layer = gradcam_layer(module, x, ctx.gradcam_layer)
    cam = LayerGradCam(module, layer).attribute(x, target=target, relu_attributions=True)
    if cam.dim() != 4:
        raise AnalysisError(f"Grad-CAM needs a layer with 2-D feature maps; {name!r} gives {cam.dim()}-D output")
    up = LayerAttribution.interpolate(cam, tuple(x.shape[2:]), interpolate_mode="bilinear")
    return Attribution(up.expand_as(x).detach().cpu().clone(), extras={"layer": name})


def deeplift(module: nn.Module, x: torch.Tensor, target: torch.Tensor, ctx: ExplainContext) -> Attribution:
    """DeepLIFT (rescale rule) from the all-``low`` baseline.

    captum applies DeepLIFT's rule only to non-linearities that are modules; a
    module used twice makes it fail (the method is then skipped with the reason),
    and a functional ReLU silently gets a plain gradient (a warning says so).
    """
    _need_hooks(module, "DeepLIFT")
    problems = relu_problems(module) or []
    reused = [p for p in problems if "used" in p]
    if reused:
        raise AnalysisError(f"DeepLIFT needs every non-linearity to be its own module used once; {'; '.join(reused)}")
    try:
        values = DeepLift(module).attribute(x, baselines=ctx.baseline(x), target=target)
    except RuntimeError as err:
        if "used more than once" in str(err) or "does not contain some of the input/output attributes" in str(err):
            raise AnalysisError(
                "DeepLIFT needs every non-linearity to be its own module used once; a module is reused in this model"
            ) from err
        raise
    out = Attribution(values.detach().cpu())
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
    tabular inputs: one feature at a time. Perturbations are batched so that one
    forward pass holds about ``settings.internal_batch_size`` rows.
    """
    window, strides = _occlusion_window(ctx, x)
    occ = Occlusion(module)
    per_eval = max(1, ctx.settings.internal_batch_size // max(1, len(x)))
    values = occ.attribute(
        x,
        sliding_window_shapes=window,
        strides=strides,
        baselines=ctx.low,
        target=target,
        perturbations_per_eval=per_eval,
    )
    return Attribution(values.detach().cpu(), extras={"window": list(window), "strides": list(strides)})


def layer_activations(module: nn.Module, x: torch.Tensor, *, max_layers: int = 4) -> list[tuple[str, torch.Tensor]]:
    """Activation maps of the convolutional layers (captum's LayerActivation) for ``x``."""
    if isinstance(module, torch.jit.ScriptModule):
        return []
    layers = conv_layers(module, x)[:max_layers]
    if not layers:
        return []
    acts = LayerActivation(module, [m for _, m in layers]).attribute(x)
    acts = acts if isinstance(acts, list) else [acts]
    return [(name, a.detach().cpu()) for (name, _), a in zip(layers, acts)]
