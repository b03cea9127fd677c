"""SHAP values through the shap library, for the target class only.

Lundberg & Lee 2017, "A Unified Approach to Interpreting Model Predictions",
https://arxiv.org/abs/1705.07874 (KernelExplainer, DeepExplainer) and expected
gradients, Erion et al. 2019, https://arxiv.org/abs/1906.10670 (GradientExplainer).

shap explains every output unless told otherwise (ten times the work for ten
classes); here the model is wrapped so that it has a single output, the target
class's logit (GradientExplainer, DeepExplainer) or probability (Kernel), and
samples are grouped by target class.

- ``gradient`` (GradientExplainer): the default for torch image models.
- ``deep`` (DeepExplainer): needs every non-linearity to be its own module used
  once; otherwise, or when its SHAP values do not add up to the output, it falls
  back to GradientExplainer and says so. It runs on a copy of the model because
  it leaves attributes on the layers it hooks.
- ``kernel`` (KernelExplainer): the default for tabular models, on the raw
  columns (one-hot groups kept together), with a k-means summary of the
  training data as background.
"""

from __future__ import annotations

import copy
import logging

import numpy as np
import torch
from torch import nn

from ..errors import AnalysisError, ConfigError
from ._common import Attribution, ExplainContext, row_seed, spread_to_features
from ._structure import relu_problems
from .engine import expected_gradients_values
from .fast import fast_module
from .memory import chunks, row_budget

__all__ = [
    "shap_values",
    "resolve_explainer",
    "kernel_per_row",
    "gradient_shap",
    "deep_shap",
    "kernel_shap",
    "SHAP_EXPLAINERS",
    "TargetOutput",
]

log = logging.getLogger(__name__)

SHAP_EXPLAINERS = ("auto", "gradient", "deep", "kernel")
ADDITIVITY_TOLERANCE = 0.01  # relative: |sum(phi) - (f(x) - E f)| / mean |f(x) - E f|


class TargetOutput(nn.Module):
    """``module``'s output ``index`` as a single-output model, shape (N, 1)."""

    def __init__(self, module: nn.Module, index: int) -> None:
        super().__init__()
        self.module = module
        self.index = int(index)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)[:, self.index : self.index + 1]


def resolve_explainer(ctx: ExplainContext) -> str:
    """The SHAP explainer ``ctx.shap_explainer`` names; ``auto``: kernel where the inputs are columns, gradient otherwise."""
    kind = ctx.shap_explainer
    if kind not in SHAP_EXPLAINERS:
        raise ConfigError(f"unknown SHAP explainer {kind!r}; choose from: {', '.join(SHAP_EXPLAINERS)}")
    if kind == "auto":
        return "kernel" if ctx.kind.columns else "gradient"
    return kind


def kernel_per_row(ctx: ExplainContext) -> bool:
    """Whether SHAP runs Kernel SHAP here, which explains each row on its own (so its rows may go to shards)."""
    return ctx.shap_explainer in ("auto", "kernel") and ctx.kind.columns


def shap_values(module: nn.Module, x: torch.Tensor, target: torch.Tensor, ctx: ExplainContext) -> Attribution:
    """SHAP with the explainer ``ctx.shap_explainer`` (``auto``: kernel for tabular, gradient for images)."""
    kind = resolve_explainer(ctx)
    if kind == "kernel":
        if not ctx.kind.columns:
            raise AnalysisError(
                "KernelExplainer is for tabular models (on images it needs millions of forward passes); use the gradient or deep explainer"
            )
        return kernel_shap(module, x, target, ctx)
    if kind == "deep":
        return deep_shap(module, x, target, ctx)
    return gradient_shap(module, x, target, ctx)


def _background(ctx: ExplainContext, device: torch.device) -> torch.Tensor:
    return ctx.background[: ctx.settings.shap_background].to(device)


def _squeeze(values: object, shape: tuple[int, ...]) -> np.ndarray:
    """shap returns (n, *input, 1), a list of one array, or (n, *input): make it (n, *input)."""
    arr = np.asarray(values[0] if isinstance(values, list) else values, dtype=np.float64)
    return arr.reshape(shape)


def gradient_shap(module: nn.Module, x: torch.Tensor, target: torch.Tensor, ctx: ExplainContext) -> Attribution:
    """Expected gradients (shap.GradientExplainer) of the target logit, ``settings.shap_samples`` samples each.

    The values are those of one ``shap.GradientExplainer`` per target class over the
    rows of that class (``rseed=ctx.seed``), computed by the engine
    (:func:`dlaudit.explain.engine.expected_gradients_values`) with shap's own draws,
    every class and sample in one stack of cache-sized passes.
    """
    module = fast_module(module, x, gradients=True)  # itself unless fast.GRADIENTS_FOLDED
    values = expected_gradients_values(
        module,
        x,
        target,
        _background(ctx, x.device),
        samples=ctx.settings.shap_samples,
        seed=ctx.seed,
        budget=row_budget(module, x, ctx),
    )
    return Attribution(values.detach().cpu(), extras={"explainer": "gradient"})


def deep_shap(module: nn.Module, x: torch.Tensor, target: torch.Tensor, ctx: ExplainContext) -> Attribution:
    """DeepExplainer of the target logit, or GradientExplainer with a finding where it cannot work."""

    problems = relu_problems(module)  # None: untraceable, the additivity check below decides
    if problems:
        return _fallback(
            module,
            x,
            target,
            ctx,
            f"DeepExplainer needs every non-linearity to be its own module used once ({'; '.join(problems)})",
        )
    work = copy.deepcopy(module)
    bg = _background(ctx, x.device)
    # each example runs with the whole background in one pass (its copies beside the background: 2 rows each)
    parts = max(1, row_budget(module, x, ctx) // 2)
    out = np.zeros(tuple(x.shape), dtype=np.float64)
    gaps, scale = [], []
    for cls in torch.unique(target).tolist():
        idx = (target == cls).nonzero().flatten()
        wrapped = TargetOutput(work, cls)
        try:
            vals, expected = _deep_values(wrapped, bg, x[idx], parts)
        except (RuntimeError, ValueError, IndexError) as err:
            return _fallback(
                module,
                x,
                target,
                ctx,
                f"DeepExplainer failed on this model ({type(err).__name__}: {str(err).splitlines()[0][:120]})",
            )
        with torch.no_grad():
            change = wrapped(x[idx])[:, 0].double().cpu().numpy() - expected
        gaps.append(np.abs(vals.reshape(len(idx), -1).sum(axis=1) - change))
        scale.append(np.abs(change))
        out[idx.cpu().numpy()] = vals
    error = float(np.concatenate(gaps).mean() / max(np.concatenate(scale).mean(), 1e-12))
    if error > ADDITIVITY_TOLERANCE:
        return _fallback(
            module,
            x,
            target,
            ctx,
            f"DeepExplainer's SHAP values do not add up to the output (relative error {error:.1%})",
        )
    return Attribution(torch.from_numpy(out).float(), extras={"explainer": "deep", "additivity_error": error})


def _deep_values(wrapped: nn.Module, bg: torch.Tensor, x: torch.Tensor, part: int) -> tuple[np.ndarray, float]:
    """DeepExplainer's SHAP values of ``x`` over ``bg``, the background ``part`` rows at a time, and its expected value.

    Its values are the mean over the background rows of one attribution per reference row (each pass pairs a
    copy of the input with one reference), and its expected value the mean output over them: the weighted
    mean over parts of the background is the same numbers, with passes of ``2 * part`` rows.
    """
    import shap

    vals = np.zeros((len(x), *x.shape[1:]), dtype=np.float64)
    expected = 0.0
    for rows in chunks(len(bg), part):
        piece = bg[rows]
        explainer = shap.DeepExplainer(wrapped, piece)
        share = len(piece) / len(bg)
        vals += share * _squeeze(explainer.shap_values(x, check_additivity=False), (len(x), *x.shape[1:]))
        expected += share * float(np.asarray(explainer.expected_value).ravel()[0])
    return vals, expected


def _fallback(module: nn.Module, x: torch.Tensor, target: torch.Tensor, ctx: ExplainContext, why: str) -> Attribution:
    log.info("SHAP: %s; using GradientExplainer", why)
    out = gradient_shap(module, x, target, ctx)
    out.extras["explainer"] = "gradient (fallback from deep)"
    out.findings.append(("warning", f"{why}; SHAP fell back to GradientExplainer (expected gradients)"))
    return out


def _kmeans_background(ctx: ExplainContext) -> object:
    """k-means centres of the training data as shap's background, one-hot groups kept valid.

    Cached on the context: it does not depend on the model.
    """
    if "kernel_background" in ctx.cache:
        return ctx.cache["kernel_background"]
    import shap
    from shap.utils._legacy import DenseData

    data = ctx.background.numpy().astype(np.float64)
    k = min(ctx.settings.kernel_centres, len(data))
    summary = shap.kmeans(data, k, round_values=True)
    centres = np.array(summary.data, dtype=np.float64)
    for col in ctx.columns:
        if col.categorical:
            idx = list(col.features)
            hot = centres[:, idx].argmax(axis=1)
            centres[:, idx] = 0.0
            centres[np.arange(len(centres)), np.asarray(idx)[hot]] = 1.0
    groups = [np.asarray(c.features) for c in ctx.columns]
    out = DenseData(centres, [c.name for c in ctx.columns], groups, np.asarray(summary.weights))
    ctx.cache["kernel_background"] = out
    return out


def kernel_shap(module: nn.Module, x: torch.Tensor, target: torch.Tensor, ctx: ExplainContext) -> Attribution:
    """KernelExplainer of the target class's probability over the raw columns."""
    import shap

    from ._common import batched_probabilities

    if not ctx.columns:
        raise AnalysisError("KernelExplainer needs tabular columns (the model card's features)")
    background = _kmeans_background(ctx)
    xs = x.detach().cpu().numpy().astype(np.float64)
    phi = np.zeros((len(xs), len(ctx.columns)))
    nsamples = ctx.settings.kernel_samples or "auto"
    batch_rows = min(256, row_budget(module, x, ctx, backward=False))
    for cls in torch.unique(target).tolist():
        idx = (target == cls).nonzero().flatten().cpu().numpy()

        def prob(rows: np.ndarray, cls: int = cls, batch: int = batch_rows) -> np.ndarray:
            return (
                batched_probabilities(module, torch.from_numpy(np.asarray(rows, dtype=np.float32)), batch_size=batch)[
                    :, cls
                ]
                .double()
                .numpy()
            )

        explainer = shap.KernelExplainer(prob, background)
        state = (
            np.random.get_state()
        )  # shap samples coalitions from NumPy's global generator: seed it per row, restore it after
        try:
            for i in idx.tolist():
                np.random.seed(row_seed(ctx.seed, ctx.row_offset + i) % 2**32)
                vals = explainer.shap_values(xs[i : i + 1], nsamples=nsamples, l1_reg=False, silent=True)
                phi[i] = np.asarray(vals, dtype=np.float64).reshape(len(ctx.columns))
        finally:
            np.random.set_state(state)
    return Attribution(
        spread_to_features(phi, x, ctx.columns),
        extras={"explainer": "kernel", "explains": "probability", "column_values": phi},
    )
