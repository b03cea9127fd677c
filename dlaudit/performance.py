"""The performance section: accuracy, per-class precision and recall, confusion matrix."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from .bundle import ModelBundle
from .data import AuditData
from .parsing import round_or_none
from .report.model import Section, Table
from .report.plots import confusion_matrix_figure
from .stats import wilson_interval

__all__ = ["performance", "wilson_interval"]


def performance(bundle: ModelBundle, data: AuditData, *, batch_size: int = 512, **_: object) -> Section:
    """Held-out accuracy (with a 95% Wilson interval), macro F1, per-class precision/recall, confusion matrix."""
    logits = bundle.logits(data.x, batch_size=batch_size)
    pred = logits.argmax(dim=1).numpy()
    y = data.y.numpy()
    k = bundle.card.num_classes
    names = bundle.card.names
    correct = int((pred == y).sum())
    n = len(y)
    sec = Section(name="performance", title="Performance", params={"n": n, "data": data.name, "split": data.split})
    sec.add_metric(
        "performance.accuracy",
        correct / n,
        ci=wilson_interval(correct, n),
        description="share of correctly classified samples",
        higher_is_better=True,
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
    sec.tables.append(
        Table(
            title="Per-class precision and recall",
            columns=["class", "support", "precision", "recall", "F1"],
            rows=[
                [names[i], int(support[i]), round_or_none(precision[i]), round_or_none(recall[i]), round_or_none(f1[i])]
                for i in labels
            ],
            caption="Undefined (blank) where a class is never predicted (precision) or absent from the data (recall).",
        )
    )
    sec.figures.append(confusion_matrix_figure(confusion_matrix(y, pred, labels=labels), names))
    sec.summary = f"Accuracy {correct / n:.1%} on {n} samples of {data.name} ({data.split} split)."
    worst = [i for i in labels if present[i] and not np.isnan(recall[i]) and recall[i] < 0.8 * (correct / n)]
    for i in worst:
        sec.add_finding(
            "warning",
            f"class {names[i]!r} is recognised far less often than average (recall {recall[i]:.1%} vs accuracy {correct / n:.1%})",
            check="per-class-recall",
        )
    return sec
