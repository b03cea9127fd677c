"""``explain``: attributions for a sample of inputs and how far to trust them.

:func:`explain` computes (:mod:`dlaudit.explain.compute`) and builds the report
section (:mod:`dlaudit.explain.section`); :func:`explain_section` is the report's
"explain" analysis (registered in :mod:`dlaudit.analyses`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar

import numpy as np
import torch

from ..analysis import Option
from ..bundle import ModelBundle
from ..data import AuditData
from ..errors import AnalysisError, ConfigError
from ..pipeline import keep
from ..plan import Budget, Level, run_probe
from ..report.model import Report, Section
from ..utils import ProgressFn
from ._common import Attribution, ExplainContext, ExplainSettings, columns_for
from .compute import TABULAR_BACKGROUND, MethodQuality, Run, resolve_target, select_samples, training_background
from .memory import parse_size
from .methods import EXPLAIN_METHODS, parse_methods
from .options import OPTIONS
from .section import build_section
from .shap import SHAP_EXPLAINERS

__all__ = ["explain", "explain_section", "Explanation", "Settings"]


@dataclass
class Explanation:
    """What :func:`explain` returns.

    ``attributions[method]`` has the shape of ``x`` (the explained inputs, CPU);
    ``indices`` are their positions in the data; ``target`` the explained class
    of each. ``skipped`` maps a method that did not apply to the reason.
    :func:`dlaudit.save_explanation` writes it (``explain.html`` and ``attributions.npz``).
    """

    attributions: dict[str, torch.Tensor]
    x: torch.Tensor
    y: torch.Tensor
    pred: torch.Tensor
    target: torch.Tensor
    indices: torch.Tensor
    section: Section
    skipped: dict[str, str] = field(default_factory=dict)
    quality: dict[str, MethodQuality] = field(default_factory=dict)
    details: dict[str, Attribution] = field(default_factory=dict)
    card: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    report: Report | None = None
    """The report holding :attr:`section`, with its provenance, when the explanation came from an audit run
    (:func:`dlaudit.explain_model`, ``dlaudit explain``)."""

    @property
    def metrics(self) -> dict[str, float | None]:
        return {m.name: m.value for m in self.section.metrics}

    def arrays(self) -> dict[str, np.ndarray]:
        """The explained inputs and every method's attributions as NumPy arrays (``attr_<method>``)."""
        out = {
            "x": self.x.numpy(),
            "y": self.y.numpy(),
            "pred": self.pred.numpy(),
            "target": self.target.numpy(),
            "indices": self.indices.numpy(),
        }
        out.update({f"attr_{k}": v.numpy() for k, v in self.attributions.items()})
        return out

    def to_report(self, *, title: str = "dlaudit explain", command: str | None = None) -> Report:
        """A report holding this explanation's section (what ``explain.html`` shows)."""
        if self.report is not None:
            return self.report
        rep = Report(title=title, card=dict(self.card), sections=[self.section])
        rep.provenance = {"command": command or "", "seed": self.seed}
        return rep


def explain(
    bundle: ModelBundle,
    data: AuditData,
    *,
    methods: str | Sequence[str] | None = None,
    n: int = 16,
    target: str | int = "predicted",
    seed: int = 0,
    fast: bool = False,
    quality: bool = True,
    settings: ExplainSettings | None = None,
    background: torch.Tensor | None = None,
    gradcam_layer: str | None = None,
    shap_explainer: str = "auto",
    max_memory: str | int | None = None,
    progress: ProgressFn | None = None,
) -> Explanation:
    """Explain ``n`` samples of ``data`` with each method and measure how far to trust it.

    Parameters
    ----------
    methods
        Names (list or comma-separated): saliency, ig, smoothgrad, gradcam,
        deeplift, occlusion, lime, shap; all by default. A method that does not
        apply (Grad-CAM without a convolution) is skipped with the reason.
    n
        How many samples (both correctly and wrongly classified); more than the
        data holds means all of it (with a note).
    target
        ``"predicted"`` (default), ``"true"``, or a class name or index.
    fast
        Fewer samples and steps (:attr:`ExplainSettings.FAST`), stated in the section.
    quality
        Compute the trust metrics (deletion/insertion, sanity, sensitivity,
        completeness); off, only the attributions and their figures.
    background
        Training inputs for SHAP and tabular LIME; by default the training split
        named on the model card.
    gradcam_layer
        Module name of Grad-CAM's layer; by default the last convolution.
    shap_explainer
        ``auto`` (kernel for tabular, gradient for images), ``gradient``, ``deep`` or ``kernel``.
    max_memory
        Memory one pass of a method may hold (bytes, or a size such as ``"2G"``); every method batches
        its internal work to fit (:mod:`dlaudit.explain.memory`). None: ``settings.max_memory``, else
        half the free memory. The attributions do not depend on it.

    Returns
    -------
    Explanation
        Attributions (the inputs' shape) per method and the report section.
    """
    names = parse_methods(methods)
    if int(n) < 1:
        raise ConfigError(f"n must be at least 1 sample, got {n}")
    if shap_explainer not in SHAP_EXPLAINERS:
        raise ConfigError(f"unknown SHAP explainer {shap_explainer!r}; choose from: {', '.join(SHAP_EXPLAINERS)}")
    settings = settings or (ExplainSettings.fast() if fast else ExplainSettings())
    if max_memory is not None:
        settings = replace(settings, max_memory=parse_size(max_memory))
    notes: list[str] = []
    pred_all = bundle.predict(data.x)
    if n > len(data):
        notes.append(f"asked for {n} samples but the data holds {len(data)}; explaining all of them")
    indices = select_samples(pred_all, data.y, int(n), seed=seed)
    x, y, pred = data.x[indices].float(), data.y[indices], pred_all[indices]
    targets = resolve_target(target, y, pred, bundle.card.names)
    bg = background
    if bg is None:
        bg, bg_source = training_background(
            bundle, data, size=TABULAR_BACKGROUND if data.kind.columns else settings.shap_background, seed=seed
        )
    else:
        bg_source = "given by the caller"
    ctx = ExplainContext(
        modality=data.modality,
        value_range=tuple(bundle.card.value_range),
        background=bg.detach().cpu().float(),
        settings=settings,
        columns=columns_for(
            x[0].numel(), data.feature_names or bundle.card.feature_names, data.encoder or bundle.card.encoder
        )
        if data.kind.columns
        else (),
        seed=seed,
        gradcam_layer=gradcam_layer,
        shap_explainer=shap_explainer,
    )
    run = Run(bundle, ctx, x, targets, names, progress)
    run.attribute_all()
    if quality:
        run.assess_all()
    exp = Explanation(
        attributions={k: v.values for k, v in run.results.items()},
        x=x,
        y=y,
        pred=pred,
        target=targets,
        indices=indices,
        section=Section(name="explain", title="Explanations"),
        skipped={**run.skipped, **run.failed},
        quality=run.quality,
        details=run.results,
        card=bundle.card.to_dict(),
        seed=seed,
    )
    params = {
        "methods": names,
        "n": len(indices),
        "n_requested": int(n),
        "target": str(target),
        "seed": seed,
        "fast": fast,
        "quality": quality,
        "settings": settings.to_dict(),
        "background": f"{len(ctx.background)} samples of {bg_source}",
        "baseline": f"{ctx.low:g} (the low end of the value range): IG's and DeepLIFT's baseline, occluded patches, image LIME's hidden segments, removed features in deletion/insertion",
        "explains": {m: r.extras.get("explains", EXPLAIN_METHODS[m].explains) for m, r in run.results.items()},
        "shap_explainer": shap_explainer,
        "notes": notes,
    }
    exp.section = build_section(exp, bundle, data, ctx, run, params)
    return exp


@dataclass(frozen=True)
class Settings:
    """What the explanation analysis runs; every field is a keyword parameter of :func:`explain_section`.

    The methods' own sample counts and steps are :class:`~dlaudit.explain._common.ExplainSettings`
    (``settings``); ``fast`` selects their cheaper profile, :attr:`~dlaudit.explain._common.ExplainSettings.FAST`.
    """

    methods: str | Sequence[str] | None = None
    n: int = 16
    target: str | int = "predicted"
    quality: bool = True
    settings: ExplainSettings | None = None
    background: torch.Tensor | None = None
    gradcam_layer: str | None = None
    shap_explainer: str = "auto"
    max_memory: str | int | None = None
    fast: bool = False

    FAST: ClassVar[dict[str, Any]] = {"n": 8}
    """The fast profile (``fast=True``): 8 samples, and the methods' :attr:`ExplainSettings.FAST`; explicit values win."""
    OPTIONS: ClassVar[tuple[Option, ...]] = OPTIONS
    """Its command-line options (``dlaudit explain``), declared in :mod:`dlaudit.explain.options`."""
    SMALL: ClassVar[dict[str, Any]] = {"n": 8}
    """``DLAUDIT_SMALL=1`` (the smoke-test configuration) caps these, explicit values included (see
    :func:`dlaudit.pipeline.small`)."""

    @classmethod
    def build(cls, bundle: ModelBundle | None = None, *, fast: bool = False, **params: Any) -> Settings:
        """Defaults, the fast profile, then ``params`` (None keeps the default), validated."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ConfigError(f"unknown explain parameter(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
        base: dict[str, Any] = {**cls.FAST, "fast": True} if fast else {}
        base.update({k: v for k, v in params.items() if v is not None})
        s = cls(**base)
        parse_methods(s.methods)
        if isinstance(s.n, bool) or int(s.n) < 1:
            raise ConfigError(f"n must be at least 1 sample, got {s.n}")
        if s.shap_explainer not in SHAP_EXPLAINERS:
            raise ConfigError(f"unknown SHAP explainer {s.shap_explainer!r}; choose from: {', '.join(SHAP_EXPLAINERS)}")
        if s.max_memory is not None:
            parse_size(s.max_memory)
        return s


def explain_section(
    bundle: ModelBundle,
    data: AuditData,
    *,
    seed: int = 0,
    fast: bool = False,
    progress: ProgressFn | None = None,
    methods: str | Sequence[str] | None = None,
    n: int | None = None,
    target: str | int = "predicted",
    **params: Any,
) -> Section:
    """The report's explanations section: every method on ``n`` samples (16; 8 with ``fast``) with its trust metrics.

    ``params`` are the rest of :class:`Settings`.
    """
    s = Settings.build(fast=fast, methods=methods, n=n, target=target, **params)
    exp = explain(
        bundle,
        data,
        methods=s.methods,
        n=s.n,
        target=s.target,
        seed=seed,
        fast=fast,
        quality=s.quality,
        settings=s.settings,
        background=s.background,
        gradcam_layer=s.gradcam_layer,
        shap_explainer=s.shap_explainer,
        max_memory=s.max_memory,
        progress=progress,
    )
    if not exp.attributions:
        raise AnalysisError(
            "no explanation method applies to this model: " + "; ".join(f"{k}: {v}" for k, v in exp.skipped.items())
        )
    keep("explanation", exp)
    return exp.section


# -- what --time-budget needs (see dlaudit.plan) --------------------------------------------------

LADDER = (2, 4, 8, 16, 32, 64, 128)
"""Samples explained at the rungs of the ladder (up to the configured count)."""
PROBE_N = 4
"""Samples of the probe's larger run (the difference from one sample is the cost per sample)."""
FULL_RATIO = 1.5
"""The full profile's seconds over the fast one's for the same samples: measured 1.3x (synthetic-credit MLP) and
1.3-1.4x (digits CNN, 2-8 samples) on a busy 2-core machine; rounded up."""
PROBE_LONG = 5.0
"""Seconds of the warm one-sample run beyond which the probe runs nothing more (priced as a large model)."""
LARGE_FLOPS = 10_000_000
"""Floating-point operations of one forward pass (counted, not timed) from which a model is large: its probe is the
one-sample run alone. The reference models count 18 thousand (synthetic-credit MLP) and 170 thousand (digits CNN), a
resnet18 at 3x32x32 74 million. (Timing the first run instead mistook the credit MLP for a large model on a busy
machine: its first run, which pays the libraries' imports, took 5.7 s.)"""


def _large(bundle: ModelBundle, data: AuditData) -> bool:
    from ..robust.certified import forward_flops

    try:
        return len(data) > 0 and forward_flops(bundle.module, data.x[:1]) >= LARGE_FLOPS
    except (RuntimeError, ValueError, TypeError):  # a model the counter cannot follow: judged by its time
        return False


def _probe(bundle: ModelBundle, data: AuditData, params: dict[str, Any]) -> dict[str, float]:
    """Seconds of the section (with the methods and options given, fast profile) on one and on four samples: a
    fixed part and a part per sample, split into the part every sample costs (``fast_sample``) and the figures'
    part (``fast_figure``), which stops growing at ``figure_samples`` (8) samples: a third run on four samples
    with figures for one prices it (on the digits CNN figures were 0.6 s of the 0.64 s a sample cost up to 8
    samples; extrapolating the 1-to-4 slope put 16 samples at 1.8x their time). A first run on one sample
    warms up (the libraries' imports, caches: on the synthetic-credit MLP it took 1.8 s, the next 1.3 s, busy 2-core
    machine) and is not priced; the full profile is priced
    at :data:`FULL_RATIO` times the fast one (not measured: a probe of it would cost as much as a small budget).
    A large model (:data:`LARGE_FLOPS`) runs no sample: its model passes are most of the work, so each rung's are
    counted and priced (:func:`_counted_costs`; before, every sample was priced as a whole one-sample run, fixed
    part and warm-up included, which read 2.8x long on a resnet18 at 3x32x32, and its one- and two-sample runs took
    62 s, half a 2-minute budget, on a busy 2-core machine). A model whose warm one-sample run takes over
    :data:`PROBE_LONG` gets no other run: each sample is priced as that whole run."""
    given = {k: v for k, v in params.items() if k not in ("n", "fast", "seed")}
    base = given.get("settings") or ExplainSettings.fast()
    if _large(bundle, data):  # its model passes are the work: counted and priced (dlaudit.explain.estimate)
        return _counted_costs(bundle, data)
    one = run_probe(explain_section, bundle, data, fast=True, **given, n=1)
    one = run_probe(explain_section, bundle, data, fast=True, **given, n=1)  # that run warmed up; time a warm one
    if one >= PROBE_LONG:  # slow all the same: priced as the large models are
        return _unit_costs(one, 2 * one, 2 * one, 2, base.figure_samples)
    more = run_probe(explain_section, bundle, data, fast=True, **given, n=PROBE_N)
    few = {**given, "settings": replace(base, figure_samples=1)}  # the same run, figures for one sample only
    bare = run_probe(explain_section, bundle, data, fast=True, **few, n=PROBE_N)
    return _unit_costs(one, more, bare, PROBE_N, base.figure_samples)


def _counted_costs(bundle: ModelBundle, data: AuditData) -> dict[str, float]:
    """A large model's probe: seconds of a gradient step and a forward pass of a sample (the median of a few, as the
    robustness probe measures them) and :func:`dlaudit.explain.estimate.model_facts`, from which
    :func:`dlaudit.explain.estimate.price` prices each rung's counted passes (``counted``). A resnet18 at 3x32x32
    (quiet 2-core machine) measured in about a second, where its one-sample run took 7.9-22 s and priced its
    2-minute plan's explanations 2.8x long (one sample's run for each sample, fixed part and warm-up included)."""
    from ..robust.analysis import step_seconds
    from .estimate import model_facts

    grad, forward = step_seconds(bundle, data)
    return {"counted": 1.0, "grad": grad, "forward": forward, **model_facts(bundle, data)}


def _unit_costs(one: float, more: float, bare: float, k: int, figure_samples: int) -> dict[str, float]:
    """The probe's arithmetic: seconds on one sample, on ``k`` samples, and on ``k`` samples with figures for one
    -> the fixed part, the part per sample, the figures' part per sample (up to ``figure_samples``)."""
    figure = max(more - bare, 0.0) / (k - 1)
    per = max(bare - one, 0.0) / (k - 1)
    if per + figure < 0.1 * one:  # a busy machine can blur the differences; never below a tenth in all
        per = 0.1 * one - figure
    return {
        "fast_fixed": max(one - per - figure, 0.0),
        "fast_sample": per,
        "fast_figure": figure,
        "figure_samples": float(figure_samples),
        "full_ratio": FULL_RATIO,
    }


def _levels(bundle: ModelBundle, data: AuditData, params: dict[str, Any]) -> list[Level]:
    """The fast profile on more and more samples up to the configured count, then the full profile on it."""
    top = min(int(params.get("n") or Settings.n), len(data))
    counts = sorted({k for k in LADDER if k < top} | {top})
    return [Level({"n": k}, True, k) for k in counts] + [Level({"n": top}, False, top)]


def _cost(bundle: ModelBundle, data: AuditData, level: Level, params: dict[str, Any], costs: dict[str, float]) -> float:
    n = int(level.params["n"])
    if costs.get("counted"):  # a large model: the rung's passes counted and priced
        from .estimate import price

        given = {k: v for k, v in params.items() if k not in ("n", "fast", "seed")}
        return price(bundle, data, Settings.build(bundle, fast=level.fast, **given, n=n), costs)[0]
    fast = costs["fast_fixed"] + n * costs["fast_sample"]
    figured = min(n, int(costs.get("figure_samples", n)))  # figures are drawn for the first few samples only
    fast += figured * costs.get("fast_figure", 0.0)
    if level.fast:
        return fast
    return fast * costs["full_ratio"]  # the full profile: the fast one's shape, FULL_RATIO times slower


BUDGET = Budget(probe=_probe, levels=_levels, cost=_cost)
"""How ``--time-budget`` sizes the section: samples explained first, then the methods' full settings."""
