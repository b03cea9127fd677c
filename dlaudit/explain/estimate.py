"""What an explanation section will cost, announced before it runs: its model passes counted, priced per sample.

The image and tabular explanation section (:func:`dlaudit.explain.explanation.explain_section`) spends its time in
model passes: each method's own (IG's steps, SmoothGrad's noisy copies, LIME's and occlusion's perturbed inputs,
SHAP's samples) and, with the trust metrics on, the same method run again on every sample of the randomised model
(the sanity check, once per cascade stage), on a few perturbed copies (max-sensitivity) and for a random class
(random logit), plus forward-only curves (deletion and insertion, ROAD, completeness). :func:`passes` counts them
from the settings and the input's shape; :func:`estimate` prices them with the robustness section's unit costs
(:func:`dlaudit.robust.analysis.step_seconds`: a gradient step and a forward pass of a sample at the engine's batch)
and adds :data:`METHOD_OVERHEAD` a method for what is not the model (figures, LIME's segmentation and regressions,
the bootstrap intervals).

Estimates only tell the person waiting how long the section may take; no number of a report depends on them.
``--time-budget`` sizes the section with its own probe (:data:`dlaudit.explain.explanation.BUDGET`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..bundle import ModelBundle
    from ..data import AuditData
    from ._common import ExplainSettings
    from .explanation import Settings

__all__ = [
    "CURVES_FIGURES",
    "LIME_RUN",
    "LIME_SAMPLE",
    "METHOD_OVERHEAD",
    "SECTION_OVERHEAD",
    "estimate",
    "method_rows",
    "method_runs",
    "model_facts",
    "passes",
    "price",
]

METHOD_OVERHEAD = 0.05
"""Seconds a method costs besides its model passes and figures (its trust metrics' bookkeeping and bootstrap
intervals, LIME's segmentations and regressions)."""
LIME_RUN, LIME_SAMPLE = 0.004, 1e-6
"""Seconds LIME spends on one explained input besides the model: a fixed part (its segmentation or discretisation)
and a part per perturbed sample (its weights and ridge regression), fitted to LIME's own seconds less its model
passes (2-core machine): tabular 5,000 samples 9 ms and 1,000 samples 6 ms an input (synthetic-credit MLP), images
1,000 samples 5 ms (digits CNN)."""
SECTION_OVERHEAD = 0.7
"""Seconds of the section besides its methods and figures (choosing the samples, the background, the synthesis and
tables): 0.4 to 1.1 s on the reference models."""
CURVES_FIGURES = 5.0
"""The deletion and insertion curves of every method (two panels, a line a method) cost this many simple line plots
(the digits CNN: 0.32 s, a line plot 0.064 s)."""


def method_rows(name: str, s: ExplainSettings, shape: Sequence[int], *, tabular: bool) -> tuple[float, float]:
    """(forward rows, gradient rows) one sample costs method ``name`` with settings ``s`` on inputs of ``shape``
    (without the batch dimension)."""
    if name in ("saliency", "gradcam"):
        return 0.0, 1.0
    if name == "ig":
        return 0.0, float(s.ig_steps)
    if name == "smoothgrad":
        return 0.0, float(s.smoothgrad_samples)
    if name == "deeplift":
        return 0.0, 2.0  # the input and its baseline
    if name == "occlusion":
        if len(shape) == 3:
            side = s.occlusion_window or max(2, math.ceil(min(shape[1:]) / 7))
            stride = max(1, side // 2)
            windows = math.prod((dim - side) // stride + 1 for dim in shape[1:])
        else:
            windows = math.prod(shape)
        return float(windows + 1), 0.0
    if name == "lime":
        return float(s.lime_tabular_samples if tabular else s.lime_samples), 0.0
    if name == "shap":
        if tabular:  # Kernel SHAP: shap's "auto" samples (2 M + 2048) against each background centre
            features = math.prod(shape)
            return float((s.kernel_samples or 2 * features + 2048) * s.kernel_centres), 0.0
        return 0.0, float(s.shap_samples)
    return 0.0, 1.0


def method_runs(s: ExplainSettings, n: int, *, quality: bool, stages: int) -> float:
    """How many inputs each method explains: the ``n`` samples and, with ``quality``, again on the randomised model
    (at each of ``stages`` cascade stages, or once), on max-sensitivity's perturbed copies, and for a random class."""
    if not quality:
        return float(n)
    sanity = stages if s.sanity_cascade else 1
    return float(n + n * sanity + min(n, s.sensitivity_samples) * max(1, s.sensitivity_perturbations) + n)


def passes(
    names: Sequence[str], s: ExplainSettings, n: int, shape: Sequence[int], *, tabular: bool, quality: bool, stages: int
) -> tuple[float, float]:
    """(forward rows, gradient rows) of the section: every method on ``n`` samples and, with ``quality``, its trust
    metrics (``stages`` sanity-cascade stages; one without the cascade)."""
    forwards = grads = 0.0
    units = math.prod(shape[1:]) if len(shape) == 3 else math.prod(shape)
    steps = max(1, min(s.curve_steps, units))
    curve = 2.0 * (steps + 1)  # deletion and insertion, a forward pass at each step
    runs = method_runs(s, n, quality=quality, stages=stages)
    for name in names:
        f, g = method_rows(name, s, shape, tabular=tabular)
        if quality:
            forwards += n * curve
            if len(shape) == 3 and s.road:
                forwards += n * 2.0 * steps  # ROAD: most and least relevant first
            if name in ("ig", "deeplift"):
                forwards += 2.0 * n  # completeness: the input and the baseline
        forwards += runs * f
        grads += runs * g
    if quality and names:
        forwards += max(1, s.random_orders) * n * curve  # the random orders' curves
    return forwards, grads


def model_facts(bundle: ModelBundle, data: AuditData) -> dict[str, float]:
    """What the count needs of the model: its layers with weights (``layers``: the sanity cascade's steps) and whether
    DeepLIFT runs on it (``deeplift``: 0 where a non-linearity module is used twice and the section skips it)."""
    from ._structure import relu_problems, weighted_layers

    reused = any("used" in p for p in relu_problems(bundle.module) or [])
    layers = weighted_layers(bundle.module, data.x[:1].float())
    return {"layers": float(max(1, len(layers))), "deeplift": 0.0 if reused else 1.0}


def price(
    bundle: ModelBundle, data: AuditData, settings: Settings, costs: dict[str, float]
) -> tuple[float, float, float, list[str], int]:
    """``(seconds, forward rows, gradient rows, methods, samples)`` of the section with ``settings``, at ``costs``'
    ``grad`` and ``forward`` seconds a sample and :func:`model_facts`' ``layers`` and ``deeplift``."""
    from ._common import ExplainSettings
    from .methods import parse_methods

    names = parse_methods(settings.methods)
    if not costs.get("deeplift", 1.0):
        names = [m for m in names if m != "deeplift"]
    s = settings.settings or (ExplainSettings.fast() if settings.fast else ExplainSettings())
    n = min(int(settings.n), len(data))
    shape = tuple(data.x.shape[1:])
    tabular = bool(data.kind.columns)
    layers = int(costs.get("layers", 1.0))
    stages = min(layers, s.sanity_stages) if s.sanity_stages else layers
    f, g = passes(names, s, n, shape, tabular=tabular, quality=settings.quality, stages=stages)
    seconds = f * costs["forward"] + g * costs["grad"] + METHOD_OVERHEAD * len(names)
    seconds += _figures(bundle, data, names, settings.quality) + SECTION_OVERHEAD
    if "lime" in names:
        lime = s.lime_tabular_samples if tabular else s.lime_samples
        seconds += method_runs(s, n, quality=settings.quality, stages=stages) * (LIME_RUN + LIME_SAMPLE * lime)
    return seconds, f, g, names, n


def estimate(bundle: ModelBundle, data: AuditData, settings: Settings) -> tuple[float, str] | None:
    """``(seconds, what it counts)`` of the explanation section with ``settings`` on ``data``, or None where a pass
    cannot be timed. DeepLIFT is left out for a model that reuses a non-linearity module (the section skips it at
    once and says why)."""
    from ..robust.analysis import step_seconds

    if len(data) == 0 or data.x.dim() < 2:
        return None
    try:
        grad, forward = step_seconds(bundle, data)
        costs = {**model_facts(bundle, data), "grad": grad, "forward": forward}
    except (RuntimeError, ValueError, TypeError):
        return None
    seconds, f, g, names, n = price(bundle, data, settings, costs)
    return seconds, f"about {int(f):,} forward and {int(g):,} gradient passes ({', '.join(names)} on {n} samples)"


def _figures(bundle: ModelBundle, data: AuditData, names: Sequence[str], quality: bool) -> float:
    """Seconds of the section's figures, at the robustness estimate's measured rendering costs
    (:func:`dlaudit.robust.analysis._render_costs`, once a process): for images a grid of overlays per method (on the
    digits CNN 0.33 s each, the measured grid 0.29 s) and a figure of activation maps, for tabular data one chart of
    the gradient methods and a waterfall and a beeswarm for each of LIME and SHAP; with ``quality`` the deletion and
    insertion curves (:data:`CURVES_FIGURES` line plots)."""
    from ..robust.analysis import _render_costs

    costs = _render_costs(bundle, data)
    if data.kind.spatial and data.x.dim() == 4:
        seconds = len(names) * costs["grid"] + costs["figure"]
    else:
        seconds = (1 + 2 * len([m for m in names if m in ("lime", "shap")])) * costs["figure"]
    return seconds + (CURVES_FIGURES * costs["figure"] if quality else 0.0)
