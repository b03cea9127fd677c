"""``dlaudit.explain``: attributions for a sample of inputs and how far to trust them.

Registered as the report's "explain" analysis (order 20). The computation
(:func:`explain`) returns the attributions and a :class:`Section`; figures and
tables are built here from the numbers, never the other way round.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..analysis import register_analysis
from ..bundle import ModelBundle
from ..data import AuditData
from ..errors import AnalysisError, ConfigError, DlauditError
from ..report.model import Section, Table
from ..utils import ProgressFn
from . import figures
from ._common import Attribution, ExplainContext, ExplainSettings, FAST_SETTINGS, columns_for
from .methods import METHODS, attribute, parse_methods
from .quality import (
    Curves,
    SanityResult,
    attribution_order,
    completeness_error,
    feature_units,
    perturbation_curves,
    random_order,
    sanity_check,
    sensitivity,
)
from .saliency import layer_activations
from .shap import SHAP_EXPLAINERS

__all__ = ["explain", "explain_section", "Explanation", "MethodQuality", "resolve_target", "select_samples"]

log = logging.getLogger(__name__)

SANITY_THRESHOLD = 0.5  # rank correlation above this after full randomisation: the maps ignore the model
COMPLETENESS_THRESHOLD = 0.05
SENSITIVITY_THRESHOLD = 0.5
TABULAR_BACKGROUND = 5000  # training rows behind tabular LIME's statistics and Kernel SHAP's k-means summary
# What a method or metric may raise on an unusual model (a TorchScript module refusing hooks,
# an exported graph refusing deepcopy): recorded in the report, never aborting the section.
_METHOD_ERRORS = (RuntimeError, ValueError, TypeError, IndexError, NotImplementedError, AttributeError)
_COMPLETE = ("ig", "deeplift")  # methods whose attributions should sum to f(x) - f(baseline)
_INPUT_TIMES = {  # why a method's maps keep the input's structure under randomisation
    m: "; its attributions scale with (input - reference), so features equal to the reference (e.g. a black background) get none whatever the weights"
    for m in ("ig", "deeplift", "shap", "occlusion", "lime")  # image LIME hides segments with the reference colour
}


@dataclass
class MethodQuality:
    """The trust metrics of one method."""

    curves: Curves | None = None
    sanity: SanityResult | None = None
    sensitivity: float | None = None
    completeness: float | None = None
    seconds: float = 0.0
    notes: dict[str, str] = field(default_factory=dict)  # metric -> why it is undefined


@dataclass
class Explanation:
    """What :func:`explain` returns.

    ``attributions[method]`` has the shape of ``x`` (the explained inputs, CPU);
    ``indices`` are their positions in the data; ``target`` the explained class
    of each. ``skipped`` maps a method that did not apply to the reason.
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

    @property
    def metrics(self) -> dict[str, float | None]:
        return {m.name: m.value for m in self.section.metrics}


# -- choosing what to explain --------------------------------------------------------------


def select_samples(pred: torch.Tensor, y: torch.Tensor, n: int, *, seed: int = 0) -> torch.Tensor:
    """``n`` sample indices with both correctly and wrongly classified ones (seeded).

    About a quarter are misclassified samples when there are any; the rest
    correct ones. Returned correct first, then wrong, each in data order.
    """
    rng = np.random.default_rng(seed)
    wrong = (pred != y).nonzero().flatten().numpy()
    right = (pred == y).nonzero().flatten().numpy()
    if n >= len(y):
        chosen_right, chosen_wrong = right, wrong
    else:
        n_wrong = min(len(wrong), max(1, n // 4)) if len(wrong) else 0
        n_right = min(len(right), n - n_wrong)
        n_wrong = n - n_right
        chosen_right = np.sort(rng.choice(right, n_right, replace=False)) if n_right else right[:0]
        chosen_wrong = np.sort(rng.choice(wrong, n_wrong, replace=False)) if n_wrong else wrong[:0]
    return torch.from_numpy(np.concatenate([chosen_right, chosen_wrong]).astype(np.int64))


def resolve_target(target: str | int, y: torch.Tensor, pred: torch.Tensor, class_names: Sequence[str]) -> torch.Tensor:
    """The class to explain per sample: ``"predicted"``, ``"true"``, or one named (or numbered) class."""
    if isinstance(target, str) and target.strip().lower() in ("predicted", "pred", "prediction"):
        return pred.clone()
    if isinstance(target, str) and target.strip().lower() in ("true", "label", "labels"):
        return y.clone()
    names = [str(c) for c in class_names]
    if isinstance(target, str) and target in names:
        return torch.full_like(y, names.index(target))
    try:
        index = int(target)
    except (TypeError, ValueError):
        index = -1
    if 0 <= index < len(names):
        return torch.full_like(y, index)
    raise ConfigError(f"unknown explanation target {target!r}; use 'predicted', 'true', or a class: {', '.join(names)}")


def _training_background(bundle: ModelBundle, data: AuditData, *, size: int, seed: int) -> tuple[torch.Tensor, str]:
    """Training samples for SHAP's background and LIME's statistics, and where they came from.

    The training split of the dataset on the model's card when the audited data
    is that dataset; otherwise the audited data itself (said in the report).
    """
    card = bundle.card
    x, source = data.x, f"the audited data ({data.name}, {data.split} split): no training split was available"
    same = card.dataset is not None and (card.dataset == data.name or Path(card.dataset).stem == data.name)
    if same and data.split != "train":
        from ..api import load_data

        try:
            x = load_data(card.dataset, bundle=bundle, split="train", data_dir=card.data_dir).x
            source = f"the training split of {data.name}"
        except DlauditError as err:
            log.info("training split unavailable (%s); using the audited data as background", err)
    elif data.split == "train":
        source = f"the training split of {data.name}"
    if len(x) > size:
        x = x[torch.from_numpy(np.sort(np.random.default_rng(seed).choice(len(x), size, replace=False)))]
    return x.float(), source


# -- the computation ---------------------------------------------------------------------


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
        Fewer samples and steps (:data:`FAST_SETTINGS`), stated in the section.
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
    settings = settings or (FAST_SETTINGS if fast else ExplainSettings())
    notes: list[str] = []
    pred_all = bundle.predict(data.x)
    if n > len(data):
        notes.append(f"asked for {n} samples but the data holds {len(data)}; explaining all of them")
    indices = select_samples(pred_all, data.y, int(n), seed=seed)
    x, y, pred = data.x[indices].float(), data.y[indices], pred_all[indices]
    targets = resolve_target(target, y, pred, bundle.card.names)
    bg = background
    if bg is None:
        bg, bg_source = _training_background(bundle, data, size=settings.shap_background if data.modality == "image" else TABULAR_BACKGROUND, seed=seed)
    else:
        bg_source = "given by the caller"
    ctx = ExplainContext(
        modality=data.modality, value_range=tuple(bundle.card.value_range), background=bg.detach().cpu().float(), settings=settings,
        columns=columns_for(x[0].numel(), data.feature_names or bundle.card.feature_names, data.encoder or bundle.card.encoder) if data.modality == "tabular" else (),
        seed=seed, gradcam_layer=gradcam_layer, shap_explainer=shap_explainer,
    )  # fmt: skip
    run = _Run(bundle, ctx, x, targets, names, progress)
    run.attribute_all()
    if quality:
        run.assess_all()
    exp = Explanation(
        attributions={k: v.values for k, v in run.results.items()}, x=x, y=y, pred=pred, target=targets, indices=indices,
        section=Section(name="explain", title="Explanations"), skipped={**run.skipped, **run.failed}, quality=run.quality, details=run.results,
    )  # fmt: skip
    params = {
        "methods": names, "n": len(indices), "n_requested": int(n), "target": str(target), "seed": seed, "fast": fast,
        "quality": quality, "settings": settings.to_dict(), "background": f"{len(ctx.background)} samples of {bg_source}",
        "baseline": f"{ctx.low:g} (the low end of the value range): IG's and DeepLIFT's baseline, occluded patches, image LIME's hidden segments, removed features in deletion/insertion",
        "explains": {m: r.extras.get("explains", METHODS[m].explains) for m, r in run.results.items()}, "shap_explainer": shap_explainer, "notes": notes,
    }  # fmt: skip
    exp.section = _build_section(exp, bundle, data, ctx, run, params)
    return exp


class _Run:
    """Attributions and trust metrics of every method for one explain() call."""

    def __init__(self, bundle: ModelBundle, ctx: ExplainContext, x: torch.Tensor, target: torch.Tensor, names: list[str], progress: ProgressFn | None) -> None:
        self.bundle, self.ctx, self.x, self.target, self.names = bundle, ctx, x, target, names
        self.progress = progress
        self.results: dict[str, Attribution] = {}
        self.skipped: dict[str, str] = {}
        self.failed: dict[str, str] = {}
        self.seconds: dict[str, float] = {}
        self.quality: dict[str, MethodQuality] = {}
        self.random: Curves | None = None
        self._done = 0

    def _tick(self, stage: str, total: int) -> None:
        self._done += 1
        if self.progress is not None:
            self.progress(stage, self._done, total)

    def attribute_all(self) -> None:
        module = self.bundle.module
        for name in self.names:
            start = time.perf_counter()
            try:
                self.results[name] = attribute(name, module, self.x, self.target, self.ctx)
            except AnalysisError as err:
                self.skipped[name] = str(err)
                log.info("explain: %s skipped: %s", name, err)
            except _METHOD_ERRORS as err:
                self.failed[name] = _one_line(err)
                log.warning("explain: %s failed: %s", name, self.failed[name])
            self.seconds[name] = time.perf_counter() - start
            self._tick("explain:attributions", len(self.names))

    def assess_all(self) -> None:
        self._done = 0
        if not self.results:
            return
        module, ctx, s = self.bundle.module, self.ctx, self.ctx.settings
        units = feature_units(self.x.shape[1:], ctx.columns)
        n_units = int(units.max()) + 1
        curves = lambda order: perturbation_curves(module, self.x, self.target, order, units=units, baseline=ctx.low, steps=s.curve_steps)  # noqa: E731
        randoms = [curves(random_order(len(self.x), n_units, seed=ctx.seed + 1000 + r)) for r in range(max(1, s.random_orders))]
        self.random = Curves(randoms[0].fractions, np.mean([c.deletion for c in randoms], axis=0), np.mean([c.insertion for c in randoms], axis=0))
        k = min(len(self.x), s.sensitivity_samples)
        for name, res in self.results.items():
            start = time.perf_counter()
            q = MethodQuality()
            q.curves = curves(attribution_order(res.values, units, seed=ctx.seed))
            q.sanity = _guarded(q, "sanity_rank_corr", lambda name=name: sanity_check(
                lambda m, xx, tt: attribute(name, m, xx, tt, ctx).values, module, self.x, self.target, res.values,
                units=units, seed=ctx.seed, cascade=s.sanity_cascade,
            ))  # fmt: skip
            q.sensitivity = _guarded(q, "sensitivity", lambda name=name: sensitivity(
                lambda xx, tt: attribute(name, module, xx, tt, ctx).values, self.x[:k], self.target[:k],
                radius=s.sensitivity_radius * ctx.span, value_range=ctx.value_range, perturbations=s.sensitivity_perturbations, seed=ctx.seed,
            ))  # fmt: skip
            if name in _COMPLETE:
                q.completeness = completeness_error(module, self.x, self.target, res.values, baseline=ctx.low)
            q.seconds = time.perf_counter() - start
            self.quality[name] = q
            self._tick("explain:trust", len(self.results))


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:200] if text else ''}"


def _guarded(q: MethodQuality, metric: str, fn: Any) -> Any:
    """``fn()``, or None with the reason in ``q.notes`` when the model does not allow it."""
    try:
        return fn()
    except (AnalysisError, *_METHOD_ERRORS) as err:
        q.notes[metric] = f"could not be computed on this model ({_one_line(err)})"
        log.warning("explain: %s: %s", metric, q.notes[metric])
        return None


# -- the report section --------------------------------------------------------------------


def _fmt(v: float | None) -> str:
    return "undefined" if v is None else f"{v:.3f}"


def _add_metrics(sec: Section, name: str, q: MethodQuality, random: Curves | None, res: Attribution) -> None:
    title = METHODS[name].title
    if q.curves is not None and random is not None:
        sec.add_metric(f"explain.{name}.deletion_auc", q.curves.deletion_auc, description=f"{title}: area under the deletion curve (lower is more faithful)", higher_is_better=False)
        sec.add_metric(f"explain.{name}.insertion_auc", q.curves.insertion_auc, description=f"{title}: area under the insertion curve (higher is more faithful)", higher_is_better=True)
        sec.add_metric(f"explain.{name}.random_deletion_auc", random.deletion_auc, description="deletion AUC of a random order (the yardstick; the same for every method)")
        sec.add_metric(f"explain.{name}.random_insertion_auc", random.insertion_auc, description="insertion AUC of a random order (the yardstick; the same for every method)")
    if q.sanity is not None or "sanity_rank_corr" in q.notes:
        final = q.sanity.final if q.sanity is not None else None
        sec.add_metric(
            f"explain.{name}.sanity_rank_corr", final, higher_is_better=False,
            description=f"{title}: rank correlation with the maps of the fully randomised model (near 0 passes)",
            note=q.notes.get("sanity_rank_corr", "" if final is not None else "every map was constant, so no rank correlation is defined"),
        )  # fmt: skip
    if q.sensitivity is not None or "sensitivity" in q.notes:
        sec.add_metric(
            f"explain.{name}.sensitivity", q.sensitivity, higher_is_better=False, note=q.notes.get("sensitivity", ""),
            description=f"{title}: largest relative change of the map under small input noise (lower is more stable)",
        )  # fmt: skip
    if name in _COMPLETE and q.curves is not None:
        sec.add_metric(
            f"explain.{name}.completeness_error", q.completeness, higher_is_better=False,
            description=f"{title}: |sum of attributions - (f(x) - f(baseline))| relative to |f(x) - f(baseline)|",
            note="" if q.completeness is not None else "the output does not change between baseline and inputs",
        )  # fmt: skip
    if "local_r2" in res.extras:
        r2 = res.extras["local_r2"].double()
        r2 = r2[~torch.isnan(r2)]
        sec.add_metric(f"explain.{name}.local_r2", float(r2.mean()) if len(r2) else None, description="LIME: weighted R² of the local surrogate on its own samples", higher_is_better=True)
    if "additivity_error" in res.extras:
        sec.add_metric(f"explain.{name}.additivity_error", res.extras["additivity_error"], description="DeepExplainer: relative gap between the SHAP values' sum and the output change", higher_is_better=False)


def _add_findings(sec: Section, name: str, q: MethodQuality, random: Curves | None, modality: str) -> None:
    title = METHODS[name].title
    final = q.sanity.final if q.sanity else None
    if final is not None and final > SANITY_THRESHOLD:
        why = "" if name == "lime" and modality == "tabular" else _INPUT_TIMES.get(name, "")
        sec.add_finding(
            "warning", f"{title} fails the sanity check: its maps barely change when the model's weights are randomised "
            f"(rank correlation {final:.2f} > {SANITY_THRESHOLD}), so they show the input more than the model{why}",
            evidence="Adebayo et al. 2018, https://arxiv.org/abs/1810.03292", check="explain-sanity",
        )  # fmt: skip
    if q.curves is not None and random is not None and q.curves.deletion_auc >= random.deletion_auc:
        sec.add_finding(
            "warning", f"{title} is no more faithful than a random order: removing its most important features first lowers the "
            f"explained class's probability no faster (deletion AUC {q.curves.deletion_auc:.3f} vs {random.deletion_auc:.3f} for random)",
            check="explain-faithfulness",
        )  # fmt: skip
    if q.completeness is not None and q.completeness > COMPLETENESS_THRESHOLD:
        advice = "use more steps (ig_steps)" if name == "ig" else "its rules were not applied to every non-linearity (functional or fused ReLUs get plain gradients)"
        sec.add_finding("warning", f"{title}'s attributions do not add up to the output change (completeness error {q.completeness:.1%}): {advice}", check="explain-completeness")
    if q.sensitivity is not None and q.sensitivity > SENSITIVITY_THRESHOLD:
        sec.add_finding("info", f"{title} is unstable: small input noise changes its maps by up to {q.sensitivity:.0%} of their size", check="explain-sensitivity")


def _trust_table(run: _Run) -> Table:
    rows = []
    for name in run.results:
        q = run.quality.get(name, MethodQuality())
        c, r = q.curves, run.random
        rows.append([
            METHODS[name].title,
            None if c is None else round(c.deletion_auc, 4), None if r is None else round(r.deletion_auc, 4),
            None if c is None else round(c.insertion_auc, 4), None if r is None else round(r.insertion_auc, 4),
            None if q.sanity is None or q.sanity.final is None else round(q.sanity.final, 3),
            None if q.sensitivity is None else round(q.sensitivity, 3),
            ("—" if name not in _COMPLETE else None) if q.completeness is None else round(q.completeness, 4),
            round(run.seconds.get(name, 0.0) + q.seconds, 2),
        ])  # fmt: skip
    return Table(
        "How far to trust each method",
        ["method", "deletion AUC ↓", "random deletion AUC", "insertion AUC ↑", "random insertion AUC", "sanity rank corr ↓", "sensitivity ↓", "completeness error ↓", "seconds"],
        rows,
        caption="Deletion/insertion: RISE-style curves of the explained class's probability (Petsiuk et al. 2018). Sanity: Spearman rank correlation of "
        "|attributions| with those of the fully randomised model (Adebayo et al. 2018), near 0 passes. Sensitivity: captum's sensitivity_max. "
        "Completeness: for IG and DeepLIFT, whose attributions should sum to f(x) - f(baseline) (— for the other methods).",
    )


def _sanity_table(run: _Run) -> Table | None:
    runs = {n: q.sanity for n, q in run.quality.items() if q.sanity is not None and q.sanity.steps}
    if not runs:
        return None
    layers = [label for label, _ in next(iter(runs.values())).steps]
    rows = [[METHODS[n].title] + [None if v is None else round(v, 3) for _, v in s.steps] for n, s in runs.items()]
    return Table(
        "Sanity check: cascading randomisation",
        ["method"] + [f"… + {label}" if i else f"{label} randomised" for i, label in enumerate(layers)],
        rows,
        caption="Rank correlation with the original maps as layers are re-initialised from the output down (cumulative, left to right).",
    )


def _samples_table(exp: Explanation, names: Sequence[str]) -> Table:
    rows = [
        [int(i), names[int(t)], names[int(p)], names[int(g)], "yes" if int(t) == int(p) else "no"]
        for i, t, p, g in zip(exp.indices, exp.y, exp.pred, exp.target)
    ]
    return Table("Explained samples", ["index in data", "true", "predicted", "explained class", "correct"], rows)


def _figure_picks(exp: Explanation, k: int) -> list[int]:
    """Up to ``k`` positions: misclassified ones (up to half) and correct ones."""
    right = [i for i in range(len(exp.y)) if int(exp.y[i]) == int(exp.pred[i])]
    wrong = [i for i in range(len(exp.y)) if int(exp.y[i]) != int(exp.pred[i])]
    n_wrong = min(len(wrong), k // 2)
    return right[: k - n_wrong] + wrong[:n_wrong]


def _add_figures(sec: Section, exp: Explanation, ctx: ExplainContext, run: _Run, names: Sequence[str], module: torch.nn.Module) -> None:
    picks = _figure_picks(exp, ctx.settings.figure_samples)
    true = [names[int(exp.y[i])] for i in picks]
    pred = [names[int(exp.pred[i])] for i in picks]
    for name, res in run.results.items():
        title = METHODS[name].title
        if ctx.modality == "image" and exp.x.dim() == 4:
            sec.figures.append(figures.overlay_grid(title, exp.x[picks], res.values[picks], true, pred, ctx.value_range))
        elif ctx.columns:
            sec.figures.append(figures.column_importance(title, res.values, ctx.columns))
            if name in ("lime", "shap"):
                few = picks[:4]
                sec.figures.append(figures.sample_columns(title, exp.x[few], res.values[few], ctx.columns, true[: len(few)], pred[: len(few)]))
    if ctx.modality == "image" and exp.x.dim() == 4:
        from ..utils import model_state, next_device

        with model_state(module):
            acts = layer_activations(module, exp.x[:1].to(next_device(module)))
        if acts:
            sec.figures.append(figures.activation_maps(acts, label=f"sample {int(exp.indices[0])} (true {names[int(exp.y[0])]})"))
    if run.random is not None and run.quality:
        sec.figures.append(figures.curves_figure({n: q.curves for n, q in run.quality.items() if q.curves is not None}, run.random, {n: METHODS[n].title for n in METHODS}))


def _build_section(exp: Explanation, bundle: ModelBundle, data: AuditData, ctx: ExplainContext, run: _Run, params: dict[str, Any]) -> Section:
    names = bundle.card.names
    sec = Section(name="explain", title="Explanations", params=params)
    for note in params["notes"]:
        sec.add_finding("info", note, check="explain-samples")
    for name, reason in run.skipped.items():
        sec.add_finding("info", f"{METHODS[name].title} skipped: {reason}", check="explain-skipped")
    for name, reason in run.failed.items():
        sec.add_finding("warning", f"{METHODS[name].title} failed on this model: {reason}", check="explain-failed")
    for name, res in run.results.items():
        for severity, message in res.findings:
            sec.add_finding(severity, f"{METHODS[name].title}: {message}", check=f"explain-{name}")
        q = run.quality.get(name, MethodQuality())
        _add_metrics(sec, name, q, run.random, res)
        _add_findings(sec, name, q, run.random, ctx.modality)
    sec.tables.append(_samples_table(exp, names))
    if run.quality:
        sec.tables.append(_trust_table(run))
        sanity = _sanity_table(run)
        if sanity is not None:
            sec.tables.append(sanity)
    if run.results:
        _add_figures(sec, exp, ctx, run, names, bundle.module)
    sec.summary = _summary(exp, data, run)
    return sec


def _summary(exp: Explanation, data: AuditData, run: _Run) -> str:
    n_wrong = int((exp.y != exp.pred).sum())
    text = f"{len(run.results)} method(s) on {len(exp.y)} samples of {data.name} ({len(exp.y) - n_wrong} correctly, {n_wrong} wrongly classified)"
    if run.skipped or run.failed:
        text += f"; skipped: {', '.join([*run.skipped, *run.failed])}"
    faithful = {n: q.curves.deletion_auc for n, q in run.quality.items() if q.curves is not None}
    if faithful and run.random is not None:
        best = min(faithful, key=faithful.get)
        text += f". Most faithful by deletion: {METHODS[best].title} (AUC {faithful[best]:.3f} vs {run.random.deletion_auc:.3f} for a random order)"
    failing = [METHODS[n].title for n, q in run.quality.items() if q.sanity and q.sanity.final is not None and q.sanity.final > SANITY_THRESHOLD]
    if failing:
        text += f". Failing the sanity check: {', '.join(failing)}"
    return text + "."


# -- the registered analysis -------------------------------------------------------------------


@register_analysis("explain", "Explanations", order=20)
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
    """The report's explanations section: every method on ``n`` samples (16; 8 with ``fast``) with its trust metrics."""
    exp = explain(bundle, data, methods=methods, n=n or (8 if fast else 16), target=target, seed=seed, fast=fast, progress=progress, **params)
    if not exp.attributions:
        raise AnalysisError("no explanation method applies to this model: " + "; ".join(f"{k}: {v}" for k, v in exp.skipped.items()))
    return exp.section
