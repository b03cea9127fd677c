"""The registry of explanation methods and the one way to run them.

:func:`attribute` runs a method with the model in eval mode, without parameter
gradients, seeded, and restores the model afterwards (training mode,
``requires_grad``); the methods themselves leave no hooks behind.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..parsing import parse_names
from ..utils import model_state, next_device
from ._common import Attribution, ExplainContext, quiet, seeded
from .lime import lime
from .saliency import deeplift, gradcam, integrated_gradients, occlusion, saliency, smoothgrad
from .shap import shap_values

__all__ = ["Method", "EXPLAIN_METHODS", "DEFAULT_METHODS", "parse_methods", "attribute"]

MethodFn = Callable[[nn.Module, torch.Tensor, torch.Tensor, ExplainContext], Attribution]


@dataclass(frozen=True)
class Method:
    """An explanation method: its name (the ``--method`` value), title, function and paper."""

    name: str
    title: str
    fn: MethodFn
    paper: str
    explains: str = "logit"


EXPLAIN_METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("saliency", "Saliency (input gradient)", saliency, "https://arxiv.org/abs/1312.6034"),
        Method("ig", "Integrated Gradients", integrated_gradients, "https://arxiv.org/abs/1703.01365"),
        Method("smoothgrad", "SmoothGrad", smoothgrad, "https://arxiv.org/abs/1706.03825"),
        Method("gradcam", "Grad-CAM", gradcam, "https://arxiv.org/abs/1610.02391"),
        Method("deeplift", "DeepLIFT", deeplift, "https://arxiv.org/abs/1704.02685"),
        Method("occlusion", "Occlusion", occlusion, "https://arxiv.org/abs/1311.2901"),
        Method("lime", "LIME", lime, "https://arxiv.org/abs/1602.04938", explains="probability"),
        Method("shap", "SHAP", shap_values, "https://arxiv.org/abs/1705.07874"),
    )
}
DEFAULT_METHODS: tuple[str, ...] = tuple(EXPLAIN_METHODS)


def parse_methods(methods: str | Sequence[str] | None) -> list[str]:
    """Method names from a comma-separated string or a list; all methods when None.

    Raises :class:`ConfigError` listing the valid names for an unknown one.
    """
    if methods is None:
        return list(DEFAULT_METHODS)
    return parse_names(methods, list(EXPLAIN_METHODS), "explanation method(s)")


def attribute(name: str, module: nn.Module, x: torch.Tensor, target: torch.Tensor, ctx: ExplainContext) -> Attribution:
    """Run method ``name`` on ``module``; the model is left exactly as it was found.

    Raises :class:`~dlaudit.errors.AnalysisError` when the method does not apply
    to this model or data (e.g. Grad-CAM without a convolution).
    """
    method = EXPLAIN_METHODS[name]
    device = next_device(module)
    with model_state(module), seeded(ctx.seed, device), quiet(), torch.enable_grad():
        out = method.fn(module, x.detach().to(device), target.to(device), ctx)
    out.values = out.values.detach().cpu().float()
    return out
