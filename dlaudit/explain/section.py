"""The explanations section of a report, built from the numbers of a :class:`~dlaudit.explain.compute.Run`.

Findings, tables and figures only read what the computation measured; nothing here
computes an attribution or a trust metric.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from ..bundle import ModelBundle
from ..data import AuditData
from ..errors import AnalysisError
from ..modalities import Modality
from ..report.model import Section, Table
from . import figures
from ._common import Attribution, ExplainContext
from .compute import MethodQuality, Run
from .intervals import Interval, samples_to_settle, verdict
from .methods import EXPLAIN_METHODS
from .quality import Curves
from .saliency import layer_activations

if TYPE_CHECKING:
    from .explanation import Explanation

__all__ = [
    "build_section",
    "SANITY_THRESHOLD",
    "COMPLETENESS_THRESHOLD",
    "SENSITIVITY_THRESHOLD",
    "RANDOM_LOGIT_THRESHOLD",
    "method_verdicts",
]

SANITY_THRESHOLD = 0.5  # rank correlation above this after full randomisation: the maps ignore the model
COMPLETENESS_THRESHOLD = 0.05
SENSITIVITY_THRESHOLD = 0.5  # max-sensitivity above this: noise that keeps the prediction rewrites half the map
RANDOM_LOGIT_THRESHOLD = 0.5  # rank correlation of the maps for two classes above this: the map ignores the class
ADEBAYO = "Adebayo et al. 2018, https://arxiv.org/abs/1810.03292"
SIXT = "Sixt et al. 2020, https://arxiv.org/abs/1912.09818"
ROAD_CAVEAT = (
    "Deletion and insertion fill removed pixels with a constant, so the model sees inputs unlike its training data "
    "and the curve measures the removal as much as the map; ROAD (Rong et al. 2022, https://arxiv.org/abs/2202.00449) "
    "imputes removed pixels from their neighbours with noise instead. Where the two rank methods differently, the "
    "deletion ranking may reflect the removal rather than the map."
)
VERDICT_PARTS = ("faithful", "model-sensitive", "class-sensitive", "stable")
"""The per-method verdicts, each decided on its metric's bootstrap interval: faithful (deletion AUC below a random
order's, paired per sample), model-sensitive (sanity rank correlation), class-sensitive (random-logit similarity),
stable (max-sensitivity)."""


def _part_rule(part: str) -> tuple[str, float]:
    """The interval behind a verdict part and its threshold (each passes below it)."""
    return {
        "faithful": ("deletion_gain", 0.0),
        "model-sensitive": ("sanity_rank_corr", SANITY_THRESHOLD),
        "class-sensitive": ("random_logit_similarity", RANDOM_LOGIT_THRESHOLD),
        "stable": ("sensitivity", SENSITIVITY_THRESHOLD),
    }[part]


def method_verdicts(q: MethodQuality) -> dict[str, tuple[str, int | None]]:
    """Each verdict part -> (``"pass"``, ``"warning"``, ``"inconclusive"`` or ``""`` when not measured, the sample
    size that would settle an inconclusive one)."""
    out: dict[str, tuple[str, int | None]] = {}
    for part in VERDICT_PARTS:
        metric, threshold = _part_rule(part)
        interval = q.intervals.get(metric)
        status = verdict(interval, threshold, passes_below=True)
        out[part] = (status, samples_to_settle(interval, threshold) if status == "inconclusive" else None)
    return out


def _status(q: MethodQuality, part: str, rule: str) -> dict[str, str]:
    metric, threshold = _part_rule(part)
    return _interval_status(q.intervals.get(metric), threshold, rule)


def _interval_status(interval: Interval | None, threshold: float, rule: str) -> dict[str, str]:
    status = verdict(interval, threshold, passes_below=True)
    n = samples_to_settle(interval, threshold) if status == "inconclusive" else None
    if n is not None:
        rule += f"; inconclusive: the interval straddles it (about {n} samples would settle it)"
    return {"status": status, "rule": rule}


def _ci(q: MethodQuality, metric: str) -> tuple[float, float] | None:
    interval = q.intervals.get(metric)
    return None if interval is None else interval.ci


def _input_times(name: str, modality: Modality) -> bool:
    """Whether ``name``'s attributions scale with (input - reference) on ``modality`` (:meth:`Method.scales_with_input`).

    Features equal to the reference (a black background) then get no attribution whatever the weights, so the
    maps keep the input's structure when the weights are randomised (Adebayo et al. 2018).
    """
    return EXPLAIN_METHODS[name].scales_with_input(modality)


def _fmt(v: float | None) -> str:
    return "undefined" if v is None else f"{v:.3f}"


def _add_metrics(sec: Section, name: str, q: MethodQuality, random: Curves | None, res: Attribution) -> None:
    title = EXPLAIN_METHODS[name].title
    if q.curves is not None and random is not None:
        sec.add_metric(
            f"explain.{name}.deletion_auc",
            q.curves.deletion_auc,
            ci=_ci(q, "deletion_auc"),
            description=f"{title}: area under the deletion curve (lower is more faithful)",
            higher_is_better=False,
            **_status(
                q,
                "faithful",
                f"passes when the 95% interval of its per-sample gap to a random order's ({random.deletion_auc:.3f}) "
                "is below 0, warns when it is at or above 0",
            ),
        )
        sec.add_metric(
            f"explain.{name}.insertion_auc",
            q.curves.insertion_auc,
            ci=_ci(q, "insertion_auc"),
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
            ci=_ci(q, "sanity_rank_corr"),
            higher_is_better=False,
            description=f"{title}: rank correlation with the maps of the fully randomised model (near 0 passes)",
            note=q.notes.get(
                "sanity_rank_corr",
                "" if final is not None else "every map was constant, so no rank correlation is defined",
            ),
            **_status(
                q,
                "model-sensitive",
                f"passes when the 95% interval is below {SANITY_THRESHOLD}, warns when it is at or above",
            ),
        )
    if q.stability is not None or "sensitivity" in q.notes:
        dropped = (
            f"; {q.stability.dropped} of {q.stability.draws} noise draws changed the prediction and were left out"
            if q.stability is not None and q.stability.dropped
            else ""
        )
        sec.add_metric(
            f"explain.{name}.sensitivity",
            q.sensitivity,
            ci=_ci(q, "sensitivity"),
            higher_is_better=False,
            note=q.notes.get("sensitivity", "" if q.sensitivity is not None else "no noise draw kept the prediction")
            + dropped,
            description=f"{title}: max-sensitivity (Yeh et al. 2019): largest relative change of the map under small "
            "uniform input noise that keeps the prediction (lower is more stable)",
            **_status(
                q, "stable", f"passes when the 95% interval is below {SENSITIVITY_THRESHOLD}, warns when at or above"
            ),
        )
        if "local_lipschitz" in q.intervals:
            sec.add_metric(
                f"explain.{name}.local_lipschitz",
                q.intervals["local_lipschitz"].value,
                ci=_ci(q, "local_lipschitz"),
                higher_is_better=False,
                note="map units per input unit, so it compares methods on one model, not across models; the same "
                "noise draws as max-sensitivity" + dropped,
                description=f"{title}: local Lipschitz estimate (Alvarez-Melis & Jaakkola 2018): largest "
                "||a(x') - a(x)|| / ||x' - x|| under the same noise draws (lower is more stable)",
            )
    if q.random_logit is not None or "random_logit_similarity" in q.notes:
        sec.add_metric(
            f"explain.{name}.random_logit_similarity",
            None if "random_logit_similarity" not in q.intervals else q.intervals["random_logit_similarity"].value,
            ci=_ci(q, "random_logit_similarity"),
            higher_is_better=False,
            note=q.notes.get("random_logit_similarity", ""),
            description=f"{title}: Spearman rank correlation of the signed maps for the explained class and a random "
            f"other class ({SIXT}); near 1: the map ignores the class",
            **_status(
                q,
                "class-sensitive",
                f"passes when the 95% interval is below {RANDOM_LOGIT_THRESHOLD}, warns when at or above",
            ),
        )
    if q.road is not None:
        sec.add_metric(
            f"explain.{name}.road_morf_auc",
            q.road.morf_auc,
            ci=_ci(q, "road_morf_auc"),
            higher_is_better=False,
            description=f"{title}: ROAD, most relevant pixels imputed first (noisy linear imputation): mean probability "
            "of the explained class (lower is more faithful)",
        )
        sec.add_metric(
            f"explain.{name}.road_lerf_auc",
            q.road.lerf_auc,
            ci=_ci(q, "road_lerf_auc"),
            higher_is_better=True,
            description=f"{title}: ROAD, least relevant pixels imputed first: mean probability of the explained class "
            "(higher is more faithful)",
        )
    if EXPLAIN_METHODS[name].complete and q.curves is not None:
        sec.add_metric(
            f"explain.{name}.completeness_error",
            q.completeness,
            ci=_ci(q, "completeness_error"),
            higher_is_better=False,
            description=f"{title}: |sum of attributions - (f(x) - f(baseline))| relative to |f(x) - f(baseline)|",
            note="" if q.completeness is not None else "the output does not change between baseline and inputs",
            **_interval_status(
                q.intervals.get("completeness_error"),
                COMPLETENESS_THRESHOLD,
                f"passes when the 95% interval is below {COMPLETENESS_THRESHOLD:g}, warns when it is at or above",
            ),
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


def _add_findings(sec: Section, name: str, q: MethodQuality) -> None:
    """The findings that concern one method alone; what several methods share is said once (:func:`_add_synthesis`)."""
    title = EXPLAIN_METHODS[name].title
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


def _and(items: Sequence[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _span(values: Sequence[float]) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:.2f}" if abs(hi - lo) < 0.005 else f"{lo:.2f}–{hi:.2f}"


@dataclass(frozen=True)
class _Verdicts:
    """Each assessed method sorted by what its trust metrics say."""

    trusted: list[str]  # faithful and model-sensitive, both on the whole interval
    insane: list[str]  # failing the sanity check (the whole interval above its threshold)
    unfaithful: list[str]  # no more faithful than a random order (the whole interval)
    unstable: list[str]
    unknown: list[str]  # no sanity result (could not be computed)
    class_blind: list[str] = field(default_factory=list)  # maps barely depend on the explained class
    inconclusive: dict[str, list[tuple[str, int | None]]] = field(default_factory=dict)  # method -> (part, n to settle)


def _verdicts(run: Run) -> _Verdicts:
    v = _Verdicts([], [], [], [], [])
    for name, q in run.quality.items():
        parts = method_verdicts(q)
        for part, (status, n) in parts.items():
            if status == "inconclusive":
                v.inconclusive.setdefault(name, []).append((part, n))
        if parts["faithful"][0] == "warning":
            v.unfaithful.append(name)
        if parts["model-sensitive"][0] == "warning":
            v.insane.append(name)
        elif parts["model-sensitive"][0] == "":
            v.unknown.append(name)
        if parts["faithful"][0] in ("pass", "") and parts["model-sensitive"][0] == "pass":
            v.trusted.append(name)
        if parts["stable"][0] == "warning":
            v.unstable.append(name)
        if parts["class-sensitive"][0] == "warning":
            v.class_blind.append(name)
    return v


def _add_synthesis(sec: Section, run: Run, modality: Modality) -> None:
    """One finding per kind of problem, naming every method it concerns (not one paragraph per method)."""
    v = _verdicts(run)
    title = lambda n: EXPLAIN_METHODS[n].title
    if v.insane:
        corr = {n: run.quality[n].sanity.final for n in v.insane}  # type: ignore[union-attr]
        known = [n for n in v.insane if _input_times(n, modality)]
        message = (
            f"{_and([title(n) for n in v.insane])} fail{'s' if len(v.insane) == 1 else ''} the sanity check: "
            f"{'its' if len(v.insane) == 1 else 'their'} maps barely change when the model's weights are randomised "
            f"(rank correlation {_span(list(corr.values()))} > {SANITY_THRESHOLD}), so they show the input more than the model"
        )
        if known:
            who = "this is" if len(known) == len(v.insane) else f"for {_and([title(n) for n in known])} this is"
            message += (
                f". {who[:1].upper() + who[1:]} a known property: attributions that scale with (input - reference) "
                "give nothing to features equal to the reference (a black background) whatever the weights"
            )
        sec.add_finding(
            "warning",
            message,
            evidence="; ".join(f"{title(n)} {c:.2f}" for n, c in corr.items()) + f"; {ADEBAYO}",
            check="explain-sanity",
        )
    if v.unfaithful and run.random is not None:
        aucs = {n: run.quality[n].curves.deletion_auc for n in v.unfaithful}  # type: ignore[union-attr]
        sec.add_finding(
            "warning",
            f"{_and([title(n) for n in v.unfaithful])} {'is' if len(v.unfaithful) == 1 else 'are'} no more faithful than a "
            "random order: removing the most important features first lowers the explained class's probability no faster "
            f"(deletion AUC {_span(list(aucs.values()))} vs {run.random.deletion_auc:.3f} for random)",
            evidence="; ".join(f"{title(n)} {a:.3f}" for n, a in aucs.items()),
            check="explain-faithfulness",
        )
    if v.class_blind:
        sim = {n: run.quality[n].intervals["random_logit_similarity"] for n in v.class_blind}
        sec.add_finding(
            "warning",
            f"{_and([title(n) for n in v.class_blind])} barely depend{'s' if len(v.class_blind) == 1 else ''} on the "
            f"explained class: the map for a random other class ranks the features alike (Spearman "
            f"{_span([i.value for i in sim.values()])}, whole 95% interval above {RANDOM_LOGIT_THRESHOLD}), so "
            f"{'it shows' if len(v.class_blind) == 1 else 'they show'} what the input looks like, not why this class won",
            evidence="; ".join(f"{title(n)} {i.value:.2f} [{i.lo:.2f}, {i.hi:.2f}]" for n, i in sim.items())
            + f"; {SIXT}",
            check="explain-random-logit",
        )
    if v.inconclusive:
        sec.add_finding(
            "info",
            "Inconclusive (the 95% interval straddles the threshold, so the data cannot tell): "
            + "; ".join(
                f"{title(n)} {', '.join(p + (f' (about {k} samples would settle it)' if k else '') for p, k in parts)}"
                for n, parts in v.inconclusive.items()
            ),
            evidence=f"bootstrap over {len(run.x)} explained samples; explain more samples (n) to settle",
            check="explain-inconclusive",
        )
    if any(q.road is not None for q in run.quality.values()):
        sec.add_finding("info", ROAD_CAVEAT, check="explain-road")
    if v.unstable:
        sens = {n: run.quality[n].sensitivity for n in v.unstable}
        sec.add_finding(
            "info",
            f"{_and([title(n) for n in v.unstable])} {'is' if len(v.unstable) == 1 else 'are'} unstable: small input noise "
            f"changes {'its' if len(v.unstable) == 1 else 'their'} maps by up to "
            + ", ".join(f"{s:.0%} ({title(n)})" for n, s in sens.items())
            + " of their size",
            check="explain-sensitivity",
        )


def _with_ci(q: MethodQuality, metric: str, digits: int = 3) -> str | None:
    """``"0.123 [0.101, 0.150]"``: a metric with its 95% bootstrap interval."""
    i: Interval | None = q.intervals.get(metric)
    if i is None:
        return None
    return f"{i.value:.{digits}f} [{i.lo:.{digits}f}, {i.hi:.{digits}f}]"


def _verdict_text(q: MethodQuality) -> str:
    words = {"pass": "yes", "warning": "no", "inconclusive": "inconclusive"}
    out = []
    for part, (status, n) in method_verdicts(q).items():
        if status:
            out.append(f"{part}: {words[status]}" + (f" (n≈{n})" if status == "inconclusive" and n else ""))
    return "; ".join(out) or "—"


def _trust_table(run: Run) -> Table:
    rows = []
    for name in run.results:
        q = run.quality.get(name, MethodQuality())
        r = run.random
        rows.append(
            [
                EXPLAIN_METHODS[name].title,
                _with_ci(q, "deletion_auc"),
                None if r is None else round(r.deletion_auc, 4),
                _with_ci(q, "insertion_auc"),
                None if r is None else round(r.insertion_auc, 4),
                _with_ci(q, "road_morf_auc"),
                _with_ci(q, "road_lerf_auc"),
                _with_ci(q, "sanity_rank_corr"),
                _with_ci(q, "random_logit_similarity"),
                _with_ci(q, "sensitivity"),
                ("—" if not EXPLAIN_METHODS[name].complete else None)
                if q.completeness is None
                else _with_ci(q, "completeness_error", 4),
                _verdict_text(q),
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
            "ROAD MoRF ↓",
            "ROAD LeRF ↑",
            "sanity rank corr ↓",
            "random-logit similarity ↓",
            "max-sensitivity ↓",
            "completeness error ↓",
            "verdict",
            "seconds",
        ],
        rows,
        caption="Each value with its 95% bootstrap interval over the explained samples (seeded). "
        "Deletion/insertion: RISE-style curves of the explained class's probability (Petsiuk et al. 2018). "
        "ROAD: the same at the deletion curve's fractions short of 100%, removed pixels imputed from their neighbours "
        "with noise (Rong et al. 2022; images only). Sanity: Spearman rank correlation of "
        "|attributions| with those of the fully randomised model (Adebayo et al. 2018), near 0 passes. Random logit: "
        "Spearman rank correlation of the signed maps for the explained class and a random other class (Sixt et al. "
        "2020). Max-sensitivity: Yeh et al. 2019, noise draws that change the prediction left out. "
        "Completeness: for IG and DeepLIFT, whose attributions should sum to f(x) - f(baseline) (— for the other methods). "
        f"Verdict: a part passes only when its whole interval clears its threshold (faithful: the per-sample gap to a "
        f"random order's deletion AUC below 0; model-sensitive below {SANITY_THRESHOLD}; class-sensitive below "
        f"{RANDOM_LOGIT_THRESHOLD}; stable below {SENSITIVITY_THRESHOLD}); inconclusive when it straddles, with the "
        "samples that would settle it (n ≈ n_now × (half-width / gap)²).",
    )


def _layer_label(module: torch.nn.Module, name: str) -> str:
    """``"7 (Linear)"``: a layer's name with its kind, so a column reads without the model's source."""
    layer = dict(module.named_modules()).get(name)
    return f"{name} ({type(layer).__name__})" if layer is not None and name else name


def _sanity_table(run: Run, module: torch.nn.Module, cascade: bool) -> Table | None:
    runs = {n: q.sanity for n, q in run.quality.items() if q.sanity is not None and q.sanity.steps}
    if not runs:
        return None
    layers = [label for label, _ in next(iter(runs.values())).steps]
    rows = [
        [EXPLAIN_METHODS[n].title] + [None if v is None else round(v, 3) for _, v in s.steps] for n, s in runs.items()
    ]
    if cascade and layers != ["all layers"]:
        columns = ["method"] + [
            f"{_layer_label(module, label)} randomised" if i == 0 else f"+ {_layer_label(module, label)}"
            for i, label in enumerate(layers)
        ]
        caption = (
            f"Rank correlation with the original maps as the model's {len(layers)} layers with weights are re-initialised "
            "one at a time from the output down: one column per randomised layer, each adding its layer to those on its "
            f"left (cumulative); the last column, every layer random, is the reported metric. Near 0 passes, above {SANITY_THRESHOLD} warns."
        )
    else:
        columns = ["method", "every layer randomised at once"]
        caption = (
            "Rank correlation with the original maps after re-initialising every layer at once (the fast configuration; "
            f"the full one randomises the layers one at a time from the output down). Near 0 passes, above {SANITY_THRESHOLD} warns."
        )
    return Table("Sanity check: cascading randomisation", columns, rows, caption=caption)


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


def _outputs(module: torch.nn.Module, x: torch.Tensor, target: torch.Tensor, *, probability: bool) -> list[float]:
    """The explained class's output per row (probability or logit, as the method explains): a waterfall's end."""
    from ..utils import model_state, next_device

    with model_state(module), torch.no_grad():
        logits = module(x.to(next_device(module))).float().cpu()
    out = torch.softmax(logits, dim=1) if probability else logits
    return out.gather(1, target[:, None].cpu())[:, 0].tolist()


def _numeric_ranges(encoder: dict[str, Any] | None) -> dict[str, tuple[float, float]]:
    """Numeric column -> (min, max) of the card's min-max encoder, to show a row's values in their own units."""
    if not encoder:
        return {}
    return {c["name"]: (float(c["min"]), float(c["max"])) for c in encoder.get("numeric", []) if "min" in c}


def _add_figures(
    sec: Section,
    exp: Explanation,
    ctx: ExplainContext,
    run: Run,
    names: Sequence[str],
    module: torch.nn.Module,
    encoder: dict[str, Any] | None = None,
) -> None:
    picks = _figure_picks(exp, ctx.settings.figure_samples)
    true = [names[int(exp.y[i])] for i in picks]
    pred = [names[int(exp.pred[i])] for i in picks]
    image = ctx.kind.spatial and exp.x.dim() == 4
    if image:
        for name, res in run.results.items():
            sec.figures.append(
                figures.overlay_grid(
                    EXPLAIN_METHODS[name].title,
                    exp.x[picks],
                    res.values[picks],
                    true,
                    pred,
                    ctx.value_range,
                    scale=ctx.settings.figure_scale,
                )
            )
    elif ctx.columns:
        surrogates = [n for n in run.results if EXPLAIN_METHODS[n].surrogate]
        others = {EXPLAIN_METHODS[n].title: r.values for n, r in run.results.items() if n not in surrogates}
        if others:  # one chart for the gradient-style methods, not one per method
            sec.figures.append(figures.importance_comparison(others, ctx.columns))
        for name in surrogates:  # what shap users expect: a waterfall per row and a beeswarm over rows
            res, title, few = run.results[name], EXPLAIN_METHODS[name].title, picks[:4]
            explains = res.extras.get("explains", EXPLAIN_METHODS[name].explains)
            sec.figures.append(
                figures.waterfall(
                    title,
                    exp.x[few],
                    res.values[few],
                    ctx.columns,
                    _outputs(module, exp.x[few], exp.target[few], probability=explains == "probability"),
                    true[: len(few)],
                    pred[: len(few)],
                    base_label="base value E[f(x)]" if name == "shap" else "intercept",
                    numeric=_numeric_ranges(encoder),
                )
            )
            sec.figures.append(figures.beeswarm(title, exp.x, res.values, ctx.columns, seed=ctx.seed))
    if image:
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
        _add_findings(sec, name, q)
    _add_synthesis(sec, run, ctx.kind)
    sec.tables.append(_samples_table(exp, names))
    if run.quality:
        sec.tables.append(_trust_table(run))
        sanity = _sanity_table(run, bundle.module, ctx.settings.sanity_cascade)
        if sanity is not None:
            sec.tables.append(sanity)
    if run.results:
        _add_figures(sec, exp, ctx, run, names, bundle.module, bundle.card.encoder)
    sec.summary = _summary(exp, data, run, ctx.kind)
    return sec


def _summary(exp: Explanation, data: AuditData, run: Run, modality: Modality) -> str:
    """One synthesis: which methods to trust on this model, which fail and why (each said once), what to use."""
    n_wrong = int((exp.y != exp.pred).sum())
    title = lambda n: EXPLAIN_METHODS[n].title
    text = (
        f"{len(run.results)} method{'s' if len(run.results) != 1 else ''} on {len(exp.y)} samples of {data.name} "
        f"({len(exp.y) - n_wrong} correctly, {n_wrong} wrongly classified)"
    )
    if run.skipped or run.failed:
        text += f"; not run: {', '.join(title(n) for n in [*run.skipped, *run.failed])}"
    text += "."
    if not run.quality or run.random is None:
        return text
    v = _verdicts(run)
    auc = {n: q.curves.deletion_auc for n, q in run.quality.items() if q.curves is not None}
    if v.trusted:
        best = sorted(v.trusted, key=lambda n: auc.get(n, float("inf")))
        text += (
            f" Faithful and model-sensitive on this model: {_and([title(n) for n in best])} (deletion curves fall faster than a "
            f"random order's, {_span([auc[n] for n in best if n in auc])} vs {run.random.deletion_auc:.3f}, and the maps change "
            f"when the weights are randomised, rank correlation at most {SANITY_THRESHOLD})."
        )
    if v.insane:
        known = [n for n in v.insane if _input_times(n, modality)]
        text += (
            f" Failing the sanity check, so showing the input more than the model: {_and([title(n) for n in v.insane])}"
            + (
                ("; that is" if len(known) == len(v.insane) else f"; for {_and([title(n) for n in known])} that is")
                + " expected of attributions that scale with (input - reference) on inputs with a black background"
                " (Adebayo et al. 2018)"
                if known
                else ""
            )
            + "."
        )
    if v.unfaithful:
        text += f" No more faithful than a random order: {_and([title(n) for n in v.unfaithful])}."
    if v.unknown:
        text += f" Sanity check not available: {_and([title(n) for n in v.unknown])}."
    if v.trusted:
        best = min(v.trusted, key=lambda n: auc.get(n, float("inf")))
        text += f" Use {title(best)} to read this model's decisions"
        text += "; treat the other maps as pictures of the input." if v.insane else "."
    else:
        text += " No method is both faithful and model-sensitive here: read every map with care."
    return text
