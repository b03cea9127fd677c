"""The performance section: accuracy, per-class precision and recall, confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from .bundle import ModelBundle
from .data import AuditData
from .parsing import round_or_none
from .plan import Budget, Level
from .report.figures import fig_to_png, subplots
from .report.model import Figure, Section, Table, judged
from .stats import wilson_interval

__all__ = ["performance", "wilson_interval"]


MAX_MATRIX = 30
"""Up to this many classes the section draws a confusion matrix; above, it lists the top confusions."""
MAX_CLASS_ROWS = 50
MAX_CLASS_FINDINGS = 10
MAX_CONFUSIONS = 20


def performance(bundle: ModelBundle, data: AuditData, *, batch_size: int = 512, **_: object) -> Section:
    """Held-out accuracy (with a 95% Wilson interval), macro F1, per-class precision/recall, confusion matrix."""
    logits = bundle.logits(data.x, batch_size=batch_size)
    pred = logits.argmax(dim=1).numpy()
    y = data.y.numpy()
    k = bundle.card.num_classes
    names = bundle.card.display_names
    correct = int((pred == y).sum())
    n = len(y)
    sec = Section(name="performance", title="Performance", params={"n": n, "data": data.name, "split": data.split})
    ci = wilson_interval(correct, n)
    counts = np.bincount(y, minlength=k)
    majority = int(counts.argmax())
    chance = max(1.0 / k, counts[majority] / n)
    at_chance = ci[0] <= chance
    sec.add_metric(
        "performance.accuracy",
        correct / n,
        ci=ci,
        description="share of correctly classified samples",
        higher_is_better=True,
        **judged(correct / n, fail=at_chance, rule=f"fails when its interval reaches chance ({chance:.1%})"),
    )
    labels = list(range(k))
    precision, recall, f1, support = precision_recall_fscore_support(y, pred, labels=labels, zero_division=np.nan)
    present = support > 0
    sec.add_metric(
        "performance.macro_f1",
        float(np.nanmean(f1[present])) if present.any() else None,
        description="F1 averaged over classes present in the data",
        higher_is_better=True,
    )
    probs = torch.softmax(logits, dim=1).numpy()
    sec.add_metric(
        "performance.mean_confidence", float(probs.max(axis=1).mean()), description="mean top-class probability"
    )
    shown = labels
    caption = "Undefined (blank) where a class is never predicted (precision) or absent from the data (recall)."
    if k > MAX_CLASS_ROWS:  # the classes recognised worst, not thousands of rows
        shown = sorted((i for i in labels if present[i]), key=lambda i: (recall[i], i))[:MAX_CLASS_ROWS]
        caption = f"The {len(shown)} of {k} classes with the lowest recall (all classes: the JSON metrics). " + caption
    sec.tables.append(
        Table(
            title="Per-class precision and recall",
            columns=["class", "support", "precision", "recall", "F1"],
            rows=[
                [names[i], int(support[i]), round_or_none(precision[i]), round_or_none(recall[i]), round_or_none(f1[i])]
                for i in shown
            ],
            caption=caption,
        )
    )
    if k <= MAX_MATRIX:
        sec.figures.append(confusion_matrix_figure(confusion_matrix(y, pred, labels=labels), names))
    else:
        sec.tables.append(_top_confusions(y, pred, names))
    sec.summary = f"Accuracy {correct / n:.1%} on {n} samples of {data.name} ({data.split} split)."
    if at_chance:
        sec.add_finding(
            "fail",
            f"accuracy {correct / n:.1%} (95% CI {ci[0]:.1%}–{ci[1]:.1%}) is no better than chance: {1 / k:.1%} by guessing "
            f"among {k} classes, {counts[majority] / n:.1%} by always predicting the most common class {names[majority]!r}; "
            "the model has not learned this task (or this is not the data it was trained for), so no other number of this report means much",
            check="chance-accuracy",
        )
    worst = [i for i in labels if present[i] and not np.isnan(recall[i]) and recall[i] < 0.8 * (correct / n)]
    worst.sort(key=lambda i: (recall[i], i))
    for i in worst[:MAX_CLASS_FINDINGS]:
        sec.add_finding(
            "warning",
            f"class {names[i]!r} is recognised far less often than average (recall {recall[i]:.1%} vs accuracy {correct / n:.1%})",
            check="per-class-recall",
        )
    if len(worst) > MAX_CLASS_FINDINGS:
        sec.add_finding(
            "warning",
            f"{len(worst) - MAX_CLASS_FINDINGS} more classes are recognised far less often than average (recall under 80% of the accuracy)",
            check="per-class-recall",
        )
    return sec


def _top_confusions(y: np.ndarray, pred: np.ndarray, names: list[str]) -> Table:
    """The most frequent (true, predicted) mistakes, counted without a k-by-k matrix."""
    wrong = y != pred
    pairs, counts = np.unique(np.stack([y[wrong], pred[wrong]], axis=1), axis=0, return_counts=True)
    order = np.argsort(-counts, kind="stable")[:MAX_CONFUSIONS]
    support = np.bincount(y, minlength=len(names))
    rows = [
        [names[t], names[p], int(c), round(int(c) / max(int(support[t]), 1), 4)]
        for (t, p), c in zip(pairs[order], counts[order])
    ]
    return Table(
        "Most frequent confusions",
        ["true", "predicted", "count", "share of the true class"],
        rows,
        caption=f"{len(names)} classes are too many for a confusion matrix; the {len(rows)} most frequent mistakes instead.",
    )


def confusion_matrix_figure(
    matrix: np.ndarray, class_names: Sequence[str], *, title: str = "Confusion matrix"
) -> Figure:
    k = len(class_names)
    size = min(2.5 + 0.45 * k, 12.0)
    fig, ax = subplots(figsize=(size, size * 0.85))
    row_sums = matrix.sum(axis=1, keepdims=True).clip(min=1)
    im = ax.imshow(matrix / row_sums, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(
        range(k), [str(c) for c in class_names], rotation=45 if k > 6 else 0, ha="right" if k > 6 else "center"
    )
    ax.set_yticks(range(k), [str(c) for c in class_names])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if k <= 20:
        for i in range(k):
            for j in range(k):
                frac = matrix[i, j] / row_sums[i, 0]
                ax.text(
                    j,
                    i,
                    str(int(matrix[i, j])),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if frac > 0.5 else "black",
                )
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
    return Figure(
        caption=f"{title}: rows are true classes, columns predictions; colour is the share of each true class.",
        data=fig_to_png(fig),
        alt=f"{title} heat map over {k} classes",
    )


def _probe(bundle: ModelBundle, data: AuditData, params: dict[str, object]) -> dict[str, float]:
    """The section's seconds, measured by running it (a forward pass over the data: cheap)."""
    from .plan import run_probe

    return {"section": run_probe(performance, bundle, data)}


def _levels(bundle: ModelBundle, data: AuditData, params: dict[str, object]) -> list[Level]:
    return [Level({}, False, len(data))]


def _cost(bundle: ModelBundle, data: AuditData, level: Level, params: dict[str, object], costs: dict) -> float:
    return costs["section"]


BUDGET = Budget(probe=_probe, levels=_levels, cost=_cost)
"""How ``--time-budget`` sizes the section (see :mod:`dlaudit.plan`): it has no knob, so one level, timed once."""
