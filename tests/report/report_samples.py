"""Hand-built reports (no audit runs), shaped like the real sections, for the renderer tests.

Used through the ``report`` and ``make_report`` fixtures in conftest.py.

Like pip-audit's format tests: each renderer is a pure function of a Report, so
it is tested on reports built here. They hold what the explain, robustness and
fairness sections will hold: metrics with CIs, undefined metrics, findings of
every severity, short and long tables, PNG and SVG figures, and skipped and
failed sections.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from dlaudit import check_report
from dlaudit.report import Figure, Report, Section, Table
from dlaudit.report.figures import COLORS, fig_to_png

EVIL = "<script>alert(1)</script>"
"""A user string that must never become markup."""


def _png_curve() -> Figure:
    fig, ax = plt.subplots(figsize=(4, 3))
    eps = [0, 0.05, 0.1, 0.2, 0.3]
    ax.plot(eps, [0.98, 0.8, 0.45, 0.1, 0.02], marker="o", color=COLORS[0], label="PGD L-inf")
    ax.plot(eps, [0.98, 0.85, 0.6, 0.3, 0.1], marker="s", linestyle="--", color=COLORS[1], label="FGSM L-inf")
    ax.set_xlabel("eps")
    ax.set_ylabel("accuracy")
    ax.legend()
    return Figure(
        caption="Accuracy against the attack budget.",
        data=fig_to_png(fig),
        alt="Two falling curves: accuracy under PGD and FGSM as eps grows",
    )


def _svg_map() -> Figure:
    fig, ax = plt.subplots(figsize=(3, 3))
    ax.imshow(np.linspace(0, 1, 64).reshape(8, 8), cmap="viridis")
    ax.set_axis_off()
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    plt.close(fig)
    return Figure(
        caption="Integrated-gradients attribution map.",
        data=buf.getvalue(),
        mime="image/svg+xml",
        alt="An 8 by 8 heat map",
    )


def build_report(*, class_name: str = "cat", gates: bool = True) -> Report:
    """A report with every kind of content a real one has."""
    perf = Section(name="performance", title="Performance", summary="Accuracy 97.8% on 450 samples.", params={"n": 450})
    perf.add_metric(
        "performance.accuracy",
        0.9778,
        ci=(0.9597, 0.9879),
        description="share of correctly classified samples",
        higher_is_better=True,
    )
    perf.add_metric("performance.macro_f1", 0.977, higher_is_better=True)
    perf.add_metric("performance.mean_confidence", 0.96)
    perf.tables.append(
        Table(
            "Per-class precision and recall",
            ["class", "support", "precision", "recall"],
            [[class_name, 45, 1.0, 0.95], ["dog", 40, None, 0.0]],
        )
    )
    perf.add_finding(
        "warning", f"class {class_name!r} is recognised far less often than average", check="per-class-recall"
    )

    explain = Section(
        name="explain",
        title="Explanations",
        summary="Integrated gradients is the most faithful method.",
        seconds=3.2,
        params={"methods": ["ig", "saliency"], "samples": 32},
    )
    explain.add_metric(
        "explain.ig.deletion_auc", 0.21, ci=(0.18, 0.25), description="lower is more faithful", higher_is_better=False
    )
    explain.add_metric("explain.saliency.sanity_rank_corr", 0.04, description="near 0 passes the randomisation check")
    explain.add_metric("explain.lime.stability", None, note="undefined: LIME needs at least two samples per class")
    explain.add_finding(
        "fail",
        "guided backprop barely changes when the weights are randomised",
        evidence="rank correlation 0.93 (Adebayo et al. 2018)",
        check="sanity",
    )
    explain.add_finding("info", "SHAP used 100 background samples", check="shap")
    explain.figures.append(_svg_map())

    robust = Section(
        name="robustness",
        title="Robustness",
        summary="PGD at eps 0.1 brings accuracy to 45%.",
        seconds=12.5,
        params={"eps": [0.05, 0.1, 0.2, 0.3], "steps": 10},
    )
    for attack in ("fgsm_linf", "pgd_linf", "noise"):
        for i, eps in enumerate((0.05, 0.1, 0.2, 0.3, 0.4)):
            robust.add_metric(
                f"robustness.{attack}.acc@{eps:g}",
                max(0.0, 0.95 - 0.2 * i),
                ci=(max(0.0, 0.9 - 0.2 * i), min(1.0, 0.99 - 0.2 * i)),
                higher_is_better=True,
            )
    robust.add_finding("warning", "accuracy under PGD at eps 0.1 is below 50%", check="pgd")
    robust.add_finding("info", "no sign of gradient masking: PGD beats FGSM at every eps", check="masking")
    robust.figures.append(_png_curve())
    robust.tables.append(
        Table(
            "Adversarial examples",
            ["index", "true", "predicted", "eps"],
            [[i, class_name, "dog", 0.1] for i in range(40)],
            caption="Each row an example that flips.",
        )
    )

    fairness = Section.skipped(
        "fairness", "Fairness", f"the data has no sensitive features; pass --sensitive COL (e.g. {class_name})"
    )
    broken = Section.failed("calibration", "Calibration", "RuntimeError: shapes (3,) and (4,) do not match")

    report = Report(
        title=f"dlaudit report: {class_name}.pt",
        card={
            "architecture": "cnn",
            "dataset": "digits",
            "split": "test",
            "num_classes": 2,
            "input_shape": [1, 8, 8],
            "class_names": [class_name, "dog"],
            "training": {"epochs": 10, "adversarial": None},
            "encoder": {"hidden": True},
        },
        sections=[perf, explain, robust, fairness, broken],
        provenance={
            "generated": "2024-05-01 12:00:00 UTC",
            "command": f"dlaudit report {class_name}.pt --fail-on 'performance.accuracy < 0.9'",
            "seed": 0,
            "fast": False,
            "device": "cpu",
            "model": {"source": f"{class_name}.pt", "format": "dlaudit"},
            "data": {"name": "digits", "split": "test", "n": 450},
            "total_seconds": 16.0,
            "seconds_per_section": {
                "performance": 0.3,
                "explain": 3.2,
                "robustness": 12.5,
                "fairness": None,
                "calibration": 0.0,
            },
            "versions": {"dlaudit": "0.1.0", "torch": "2.4.0"},
        },
    )
    if gates:
        check_report(report, ["performance.accuracy < 0.95", "robustness.pgd_linf.acc@0.1 < 0.8"], source="fail-on")
        check_report(report, ["explain.lime.stability <= 0.5"], source="config")
    return report
