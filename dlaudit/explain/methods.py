"""The registry of explanation methods and the one way to run them.

:func:`attribute` runs a method with the model in eval mode, without parameter
gradients, seeded, and restores the model afterwards (training mode,
``requires_grad``); the methods themselves leave no hooks behind.

A new method is a function ``(module, x, target, ctx) -> Attribution`` and one
:func:`register_method` call with its :class:`Method` (what it is declared there),
or a :class:`Method` named by an entry point in the ``dlaudit.explainers`` group.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..modalities import Modality
from ..parsing import parse_names
from ..utils import model_state, next_device
from ._common import Attribution, ExplainContext, quiet, seeded
from .lime import lime
from .saliency import deeplift, gradcam, integrated_gradients, occlusion, saliency, smoothgrad
from .shap import kernel_per_row, shap_values

__all__ = [
    "Method",
    "EXPLAIN_METHODS",
    "DEFAULT_METHODS",
    "register_method",
    "get_method",
    "list_methods",
    "parse_methods",
    "attribute",
]

MethodFn = Callable[[nn.Module, torch.Tensor, torch.Tensor, ExplainContext], Attribution]


@dataclass(frozen=True)
class Method:
    """An explanation method: its name (the ``--method`` value), title, function and paper, and what it is.

    What it is, declared here (as captum declares ``multiplies_by_inputs``) and asked by
    the computation and the report section instead of lists of names:

    ``explains``
        ``"logit"`` or ``"probability"``: the output its attributions decompose.
    ``multiplies_by_inputs``
        Its attributions scale with ``input - baseline`` (IG, DeepLIFT, SHAP, occlusion):
        features equal to the baseline get nothing whatever the weights.
    ``masks_inputs``
        It hides parts of the input the modality's way (LIME): on a modality that hides
        with the baseline (``Modality.masks_with_baseline``) it then scales with the input too.
    ``complete``
        Its attributions should sum to ``f(x) - f(baseline)`` (completeness is measured).
    ``per_row``
        It explains each row on its own (so rows may go to shards): a bool, or a function
        of the :class:`ExplainContext` when that depends on the settings (SHAP's explainer).
    ``surrogate``
        It fits a model-agnostic surrogate to perturbed inputs (LIME, SHAP): on tabular data
        the section draws a waterfall and a beeswarm for it.
    ``gradients``
        It needs the input gradient, so continuous inputs.
    ``spatial``
        It needs pictures shaped ``(C, H, W)`` (Grad-CAM).
    ``modalities``
        The modality names it applies to; None (the default): any that the two above allow.
    ``default``
        Whether it runs when no method is named.
    """

    name: str
    title: str
    fn: MethodFn
    paper: str
    explains: str = "logit"
    multiplies_by_inputs: bool = False
    masks_inputs: bool = False
    complete: bool = False
    per_row: bool | Callable[[ExplainContext], bool] = False
    surrogate: bool = False
    gradients: bool = False
    spatial: bool = False
    modalities: tuple[str, ...] | None = None
    default: bool = True

    def applies_to(self, modality: Modality) -> str | None:
        """None when the method can explain inputs of ``modality``; otherwise why not (one sentence)."""
        if self.modalities is not None and modality.name not in self.modalities:
            return f"{self.title} explains {', '.join(self.modalities)} data; this is {modality.title} data"
        if self.spatial and not modality.spatial:
            return f"{self.title} explains image models (inputs shaped N, C, H, W); this is {modality.title} data"
        if self.gradients and not modality.continuous:
            return f"{self.title} needs input gradients, and {modality.title} inputs are discrete"
        return None

    def scales_with_input(self, modality: Modality) -> bool:
        """Whether its attributions scale with ``input - baseline`` on ``modality`` (Adebayo et al. 2018's caveat)."""
        return self.multiplies_by_inputs or (self.masks_inputs and modality.masks_with_baseline)

    def runs_per_row(self, ctx: ExplainContext) -> bool:
        """Whether it explains each row on its own under ``ctx``."""
        return self.per_row(ctx) if callable(self.per_row) else bool(self.per_row)


EXPLAIN_METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("saliency", "Saliency (input gradient)", saliency, "https://arxiv.org/abs/1312.6034", gradients=True),
        Method(
            "ig",
            "Integrated Gradients",
            integrated_gradients,
            "https://arxiv.org/abs/1703.01365",
            multiplies_by_inputs=True,
            complete=True,
            gradients=True,
        ),
        Method("smoothgrad", "SmoothGrad", smoothgrad, "https://arxiv.org/abs/1706.03825", gradients=True),
        Method("gradcam", "Grad-CAM", gradcam, "https://arxiv.org/abs/1610.02391", gradients=True, spatial=True),
        Method(
            "deeplift",
            "DeepLIFT",
            deeplift,
            "https://arxiv.org/abs/1704.02685",
            multiplies_by_inputs=True,
            complete=True,
            gradients=True,
        ),
        Method("occlusion", "Occlusion", occlusion, "https://arxiv.org/abs/1311.2901", multiplies_by_inputs=True),
        Method(
            "lime",
            "LIME",
            lime,
            "https://arxiv.org/abs/1602.04938",
            explains="probability",
            masks_inputs=True,
            per_row=True,
            surrogate=True,
        ),
        Method(
            "shap",
            "SHAP",
            shap_values,
            "https://arxiv.org/abs/1705.07874",
            multiplies_by_inputs=True,
            per_row=kernel_per_row,
            surrogate=True,
        ),
    )
}
"""Every registered method by name (the built-in ones, then plug-ins once :func:`list_methods` or a lookup ran)."""
DEFAULT_METHODS: tuple[str, ...] = tuple(EXPLAIN_METHODS)
"""The built-in methods, in report order."""

_LOCK = threading.Lock()
_PLUGINS_LOADED = False


def register_method(method: Method, *, replace: bool = False) -> Method:
    """Register an explanation method under ``method.name`` (a taken name is an error unless ``replace``).

    >>> register_method(Method("gxi", "Gradient x Input", gxi, "https://arxiv.org/abs/1605.01713",
    ...                        multiplies_by_inputs=True, gradients=True))  # doctest: +SKIP
    """
    if not isinstance(method, Method):
        raise ConfigError(f"register_method takes a Method, got {type(method).__name__}")
    if not method.name or not method.name.replace("_", "").replace("-", "").isalnum():
        raise ConfigError(f"an explanation method's name must be a word (letters, digits, - or _), got {method.name!r}")
    if method.name in EXPLAIN_METHODS and EXPLAIN_METHODS[method.name] is not method and not replace:
        raise ConfigError(f"explanation method {method.name!r} is already registered; pass replace=True to replace it")
    EXPLAIN_METHODS[method.name] = method
    return method


def _load_plugins() -> None:
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED:
        return
    with _LOCK:
        if not _PLUGINS_LOADED:
            _PLUGINS_LOADED = True
            from ..plugins import load_plugins

            load_plugins("dlaudit.explainers", _take)


def _take(name: str, obj: Any) -> bool:
    if isinstance(obj, Method):
        register_method(obj)
        return True
    return False


def list_methods() -> list[str]:
    """Every registered method's name, built-in ones first, in report order."""
    _load_plugins()
    return list(EXPLAIN_METHODS)


def get_method(name: str) -> Method:
    """The method registered as ``name``; an unknown name lists the valid ones."""
    _load_plugins()
    if name not in EXPLAIN_METHODS:
        raise ConfigError(f"unknown explanation method {name!r}; choose from: {', '.join(EXPLAIN_METHODS)}")
    return EXPLAIN_METHODS[name]


def parse_methods(methods: str | Sequence[str] | None) -> list[str]:
    """Method names from a comma-separated string or a list; the default ones (every ``default`` method) when None.

    Raises :class:`ConfigError` listing the valid names for an unknown one.
    """
    names = list_methods()
    if methods is None:
        return [n for n in names if EXPLAIN_METHODS[n].default]
    return parse_names(methods, names, "explanation method(s)")


def attribute(name: str, module: nn.Module, x: torch.Tensor, target: torch.Tensor, ctx: ExplainContext) -> Attribution:
    """Run method ``name`` on ``module``; the model is left exactly as it was found.

    Raises :class:`~dlaudit.errors.AnalysisError` when the method does not apply
    to this model or data (e.g. Grad-CAM without a convolution).
    """
    method = get_method(name)
    device = next_device(module)
    with model_state(module), seeded(ctx.seed, device), quiet(), torch.enable_grad():
        out = method.fn(module, x.detach().to(device), target.to(device), ctx)
    out.values = out.values.detach().cpu().float()
    return out
