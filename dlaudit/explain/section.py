"""The explanations section of a report, built from the numbers of a :class:`~dlaudit.explain.compute.Run`.

Findings, tables and figures only read what the computation measured; nothing here
computes an attribution or a trust metric.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from ..bundle import ModelBundle
from ..data import AuditData
from ..errors import AnalysisError
from ..report.model import Section, Table
from . import figures
from ._common import Attribution, ExplainContext
from .compute import COMPLETE, MethodQuality, Run
from .methods import EXPLAIN_METHODS
from .quality import Curves
from .saliency import layer_activations

if TYPE_CHECKING:
    from .explanation import Explanation

__all__ = ["build_section", "SANITY_THRESHOLD", "COMPLETENESS_THRESHOLD", "SENSITIVITY_THRESHOLD"]

SANITY_THRESHOLD = 0.5  # rank correlation above this after full randomisation: the maps ignore the model
COMPLETENESS_THRESHOLD = 0.05
SENSITIVITY_THRESHOLD = 0.5
_INPUT_TIMES = dict.fromkeys(  # why a method's maps keep the input's structure under randomisation
    ("ig", "deeplift", "shap", "occlusion", "lime"),  # image LIME hides segments with the reference colour
    "; its attributions scale with (input - reference), so features equal to the reference (e.g. a black background) get none whatever the weights",
)


def _fmt(v: float | None) -> str:
    return "undefined" if v is None else f"{v:.3f}"


def _add_metrics(sec: Section, name: str, q: MethodQuality, random: Curves | None, res: Attribution) -> None:
    title = EXPLAIN_METHODS[name].title
    if q.curves is not None and random is not None:
        sec.add_metric(
            f"explain.{name}.deletion_auc",
            q.curves.deletion_auc,
            description=f"{title}: area under the deletion curve (lower is more faithful)",
            higher_is_better=False,
        )
        sec.add_metric(
            f"explain.{name}.insertion_auc",
            q.curves.insertion_auc,
            description=f"{title}: area under the insertion curve (higher is more faithful)",
            higher_is_better=True,
        )
        sec.add_metric(
            f"explain.{name}.random_deletion_auc",
            random.deletion_auc,
            description="deletion AUC of a random order (the yardstick; the same for every method)",
        )
        sec.add_metric(
            f"explain.{name}.random_insertion_auc",
            random.insertion_auc,
            description="insertion AUC of a random order (the yardstick; the same for every method)",
        )
    if q.sanity is not None or "sanity_rank_corr" in q.notes:
        final = q.sanity.final if q.sanity is not None else None
        sec.add_metric(
            f"explain.{name}.sanity_rank_corr",
            final,
            higher_is_better=False,
            description=f"{title}: rank correlation with the maps of the fully randomised model (near 0 passes)",
            note=q.notes.get(
                "sanity_rank_corr",
                "" if final is not None else "every map was constant, so no rank correlation is defined",
            ),
        )
    if q.sensitivity is not None or "sensitivity" in q.notes:
        sec.add_metric(
            f"explain.{name}.sensitivity",
            q.sensitivity,
            higher_is_better=False,
            note=q.notes.get("sensitivity", ""),
            description=f"{title}: largest relative change of the map under small input noise (lower is more stable)",
        )
    if name in COMPLETE and q.curves is not None:
        sec.add_metric(
            f"explain.{name}.completeness_error",
            q.completeness,
            higher_is_better=False,
            description=f"{title}: |sum of attributions - (f(x) - f(baseline))| relative to |f(x) - f(baseline)|",
            note="" if q.completeness is not None else "the output does not change between baseline and inputs",
        )
    if "local_r2" in res.extras:
        r2 = res.extras["local_r2"].double()
        r2 = r2[~torch.isnan(r2)]
        sec.add_metric(
            f"explain.{name}.local_r2",
            float(r2.mean()) if len(r2) else None,
            description="LIME: weighted R² of the local surrogate on its own samples",
            higher_is_better=True,
        )
    if "additivity_error" in res.extras:
        sec.add_metric(
            f"explain.{name}.additivity_error",
            res.extras["additivity_error"],
            description="DeepExplainer: relative gap between the SHAP values' sum and the output change",
            higher_is_better=False,
        )


def _add_findings(sec: Section, name: str, q: MethodQuality, random: Curves | None, modality: str) -> None:
    title = EXPLAIN_METHODS[name].title
    final = q.sanity.final if q.sanity else None
    if final is not None and final > SANITY_THRESHOLD:
        why = "" if name == "lime" and modality == "tabular" else _INPUT_TIMES.get(name, "")
        sec.add_finding(
            "warning",
            f"{title} fails the sanity check: its maps barely change when the model's weights are randomised "
            f"(rank correlation {final:.2f} > {SANITY_THRESHOLD}), so they show the input more than the model{why}",
            evidence="Adebayo et al. 2018, https://arxiv.org/abs/1810.03292",
            check="explain-sanity",
        )
    if q.curves is not None and random is not None and q.curves.deletion_auc >= random.deletion_auc:
        sec.add_finding(
            "warning",
            f"{title} is no more faithful than a random order: removing its most important features first lowers the "
            f"explained class's probability no faster (deletion AUC {q.curves.deletion_auc:.3f} vs {random.deletion_auc:.3f} for random)",
            check="explain-faithfulness",
        )
    if q.completeness is not None and q.completeness > COMPLETENESS_THRESHOLD:
        advice = (
            "use more steps (ig_steps)"
            if name == "ig"
            else "its rules were not applied to every non-linearity (functional or fused ReLUs get plain gradients)"
        )
        sec.add_finding(
            "warning",
            f"{title}'s attributions do not add up to the output change (completeness error {q.completeness:.1%}): {advice}",
            check="explain-completeness",
        )
    if q.sensitivity is not None and q.sensitivity > SENSITIVITY_THRESHOLD:
        sec.add_finding(
            "info",
            f"{title} is unstable: small input noise changes its maps by up to {q.sensitivity:.0%} of their size",
            check="explain-sensitivity",
        )


def _trust_table(run: Run) -> Table:
    rows = []
    for name in run.results:
        q = run.quality.get(name, MethodQuality())
        c, r = q.curves, run.random
        rows.append(
            [
                EXPLAIN_METHODS[name].title,
                None if c is None else round(c.deletion_auc, 4),
                None if r is None else round(r.deletion_auc, 4),
                None if c is None else round(c.insertion_auc, 4),
                None if r is None else round(r.insertion_auc, 4),
                None if q.sanity is None or q.sanity.final is None else round(q.sanity.final, 3),
                None if q.sensitivity is None else round(q.sensitivity, 3),
                ("—" if name not in COMPLETE else None) if q.completeness is None else round(q.completeness, 4),
                round(run.seconds.get(name, 0.0) + q.seconds, 2),
            ]
        )
    return Table(
        "How far to trust each method",
        [
            "method",
            "deletion AUC ↓",
            "random deletion AUC",
            "insertion AUC ↑",
            "random insertion AUC",
            "sanity rank corr ↓",
            "sensitivity ↓",
            "completeness error ↓",
            "seconds",
        ],
        rows,
        caption="Deletion/insertion: RISE-style curves of the explained class's probability (Petsiuk et al. 2018). Sanity: Spearman rank correlation of "
        "|attributions| with those of the fully randomised model (Adebayo et al. 2018), near 0 passes. Sensitivity: captum's sensitivity_max. "
        "Completeness: for IG and DeepLIFT, whose attributions should sum to f(x) - f(baseline) (— for the other methods).",
    )


def _sanity_table(run: Run) -> Table | None:
    runs = {n: q.sanity for n, q in run.quality.items() if q.sanity is not None and q.sanity.steps}
    if not runs:
        return None
    layers = [label for label, _ in next(iter(runs.values())).steps]
    rows = [
        [EXPLAIN_METHODS[n].title] + [None if v is None else round(v, 3) for _, v in s.steps] for n, s in runs.items()
    ]
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


def _add_figures(
    sec: Section, exp: Explanation, ctx: ExplainContext, run: Run, names: Sequence[str], module: torch.nn.Module
) -> None:
    picks = _figure_picks(exp, ctx.settings.figure_samples)
    true = [names[int(exp.y[i])] for i in picks]
    pred = [names[int(exp.pred[i])] for i in picks]
    for name, res in run.results.items():
        title = EXPLAIN_METHODS[name].title
        if ctx.modality == "image" and exp.x.dim() == 4:
            sec.figures.append(
                figures.overlay_grid(title, exp.x[picks], res.values[picks], true, pred, ctx.value_range)
            )
        elif ctx.columns:
            sec.figures.append(figures.column_importance(title, res.values, ctx.columns))
            if name in ("lime", "shap"):
                few = picks[:4]
                sec.figures.append(
                    figures.sample_columns(
                        title, exp.x[few], res.values[few], ctx.columns, true[: len(few)], pred[: len(few)]
                    )
                )
    if ctx.modality == "image" and exp.x.dim() == 4:
        from ..utils import model_state, next_device

        try:
            with model_state(module):
                acts = layer_activations(module, exp.x[:1].to(next_device(module)))
        except AnalysisError as err:
            acts = []
            sec.add_finding("info", f"Activation maps skipped: {err}", check="explain-activations")
        if acts:
            sec.figures.append(
                figures.activation_maps(acts, label=f"sample {int(exp.indices[0])} (true {names[int(exp.y[0])]})")
            )
    if run.random is not None and run.quality:
        sec.figures.append(
            figures.curves_figure(
                {n: q.curves for n, q in run.quality.items() if q.curves is not None},
                run.random,
                {n: EXPLAIN_METHODS[n].title for n in EXPLAIN_METHODS},
            )
        )


def build_section(
    exp: Explanation, bundle: ModelBundle, data: AuditData, ctx: ExplainContext, run: Run, params: dict[str, Any]
) -> Section:
    names = bundle.card.display_names
    sec = Section(name="explain", title="Explanations", params=params)
    for note in params["notes"]:
        sec.add_finding("info", note, check="explain-samples")
    for name, reason in run.skipped.items():
        sec.add_finding("info", f"{EXPLAIN_METHODS[name].title} skipped: {reason}", check="explain-skipped")
    for name, reason in run.failed.items():
        sec.add_finding(
            "warning", f"{EXPLAIN_METHODS[name].title} failed on this model: {reason}", check="explain-failed"
        )
    for name, res in run.results.items():
        for severity, message in res.findings:
            sec.add_finding(severity, f"{EXPLAIN_METHODS[name].title}: {message}", check=f"explain-{name}")
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


def _summary(exp: Explanation, data: AuditData, run: Run) -> str:
    n_wrong = int((exp.y != exp.pred).sum())
    text = f"{len(run.results)} method(s) on {len(exp.y)} samples of {data.name} ({len(exp.y) - n_wrong} correctly, {n_wrong} wrongly classified)"
    if run.skipped or run.failed:
        text += f"; skipped: {', '.join([*run.skipped, *run.failed])}"
    faithful = {n: q.curves.deletion_auc for n, q in run.quality.items() if q.curves is not None}
    if faithful and run.random is not None:
        best = min(faithful, key=faithful.get)
        text += f". Most faithful by deletion: {EXPLAIN_METHODS[best].title} (AUC {faithful[best]:.3f} vs {run.random.deletion_auc:.3f} for a random order)"
    failing = [
        EXPLAIN_METHODS[n].title
        for n, q in run.quality.items()
        if q.sanity and q.sanity.final is not None and q.sanity.final > SANITY_THRESHOLD
    ]
    if failing:
        text += f". Failing the sanity check: {', '.join(failing)}"
    return text + "."
