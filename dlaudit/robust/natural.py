"""The common-corruptions part of the robustness section (Hendrycks and Dietterich 2019, arXiv:1903.12261).

The 15 corruptions of :mod:`dlaudit.robust.corruptions` at severities 1-5 on the samples the
attacks saw, for image models: accuracy per corruption and severity
(``robustness.corruption.<name>.acc@<severity>``), the mean over all 75 pairs
(``robustness.corruption.mean_acc``, a gate like ``robustness.corruption.mean_acc < 0.8`` works)
and the accuracy lost to them (``robustness.corruption.relative_error``: clean accuracy minus the
mean; the paper's mCE divides by AlexNet's errors, which an audit does not have). A table, a
figure (one line per severity) and a grid of corrupted examples go with them.
"""

from __future__ import annotations

import torch

from ..bundle import ModelBundle
from ..report.figures import COLORS, fig_to_png, subplots
from ..report.model import Figure, Section, Table
from ..stats import wilson_interval
from ..utils import ProgressFn
from .corruptions import CORRUPTIONS, FAMILIES, corrupt, corruption_accuracy

__all__ = ["corruption_part"]

EXAMPLE_SEVERITY = 3
"""The severity of the example grid (the middle one)."""


def corruption_part(
    sec: Section,
    bundle: ModelBundle,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    seed: int,
    batch_size: int | None = None,
    progress: ProgressFn | None = None,
    judge: torch.nn.Module | None = None,
) -> None:
    """Add the corruption metrics, table and figures for images ``x`` (N, C, H, W) with labels ``y`` to ``sec``.

    ``judge`` classifies instead of the bundle's module (a stochastic model's keyed majority vote,
    :class:`~dlaudit.robust.stochastic.MajorityVote` of a :class:`~dlaudit.robust.stochastic.Keyed` model)."""
    vr = bundle.card.value_range
    res = corruption_accuracy(
        bundle if judge is None else judge, x, y, seed=seed, batch_size=batch_size or 256, value_range=vr,
        device=bundle.device, progress=progress,
    )  # fmt: skip
    n = res.n
    family_of = {name: family for family, names in FAMILIES.items() for name in names}
    for (name, severity), acc in res.accuracy.items():
        sec.add_metric(
            f"robustness.corruption.{name}.acc@{severity}",
            acc,
            ci=wilson_interval(round(acc * n), n),
            description=f"accuracy under {name.replace('_', ' ')} ({family_of.get(name, '')}) at severity {severity} of 5",
            higher_is_better=True,
        )
    sec.add_metric(
        "robustness.corruption.mean_acc",
        res.mean_accuracy,
        description=f"mean accuracy over the {len(res.accuracy)} corruption-severity pairs (Hendrycks and Dietterich 2019)",
        higher_is_better=True,
    )
    sec.add_metric(
        "robustness.corruption.relative_error",
        res.mean_relative_error,
        description="clean accuracy minus the mean corruption accuracy: the accuracy common corruptions cost "
        "(not the paper's mCE, which divides by AlexNet's errors)",
        higher_is_better=False,
    )
    by_corruption = res.by_corruption
    worst = min(by_corruption, key=lambda k: (by_corruption[k], k))
    by_family = res.by_family
    weakest = min(by_family, key=lambda k: (by_family[k], k))
    sec.add_finding(
        "info",
        f"common corruptions: mean accuracy {res.mean_accuracy:.1%} against {res.clean_accuracy:.1%} clean; worst "
        f"{worst.replace('_', ' ')} ({by_corruption[worst]:.1%} over its 5 severities), weakest family {weakest} "
        f"({by_family[weakest]:.1%})",
        check="corruptions",
    )
    severities = res.severities
    sec.tables.append(
        Table(
            "Accuracy under common corruptions",
            ["corruption", "family", *[f"severity {s}" for s in severities], "mean"],
            [
                [
                    name,
                    family_of.get(name, ""),
                    *[round(res.accuracy[(name, s)], 4) for s in severities],
                    round(by_corruption[name], 4),
                ]
                for name in res.names
            ],
            caption=f"{n} images, clean accuracy {res.clean_accuracy:.4f}; parameters of the paper's "
            f"{'ImageNet-C' if res.reference == 'imagenet' else 'CIFAR-10-C'} code (arXiv:1903.12261), frost from a "
            "seeded procedural texture instead of the paper's photographs; the same seed gives the same images.",
        )
    )
    sec.figures.append(_accuracy_figure(res.accuracy, res.names, severities, res.clean_accuracy))
    keep = (bundle.predict(x[: min(len(x), 64)]) == y[: min(len(y), 64)]).nonzero().flatten()
    if len(keep):
        sec.figures.append(_examples_figure(bundle, x, int(keep[0]), seed))
    sec.params["corruptions"] = {
        "n": n,
        "severities": list(severities),
        "reference": res.reference,
        "seconds": round(sum(res.seconds.values()), 2),
    }


def _accuracy_figure(
    accuracy: dict[tuple[str, int], float], names: tuple[str, ...], severities: tuple[int, ...], clean: float
) -> Figure:
    fig, ax = subplots(figsize=(max(6.0, 0.55 * len(names)), 4.0))
    xs = list(range(len(names)))
    for i, s in enumerate(severities):
        ax.plot(xs, [accuracy[(n, s)] for n in names], marker="o", color=COLORS[i % len(COLORS)], label=f"severity {s}")
    ax.axhline(clean, color=COLORS[7], linestyle=":", linewidth=1, label=f"clean {clean:.3f}")
    ax.set_xticks(xs, [n.replace("_", " ") for n in names], rotation=60, ha="right", fontsize=8)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=3, loc="lower left")
    fig.tight_layout()
    return Figure(
        caption="Accuracy under each common corruption, one line per severity (dotted: clean accuracy).",
        data=fig_to_png(fig),
        alt=f"Line chart of accuracy under {len(names)} corruptions at severities {severities[0]}-{severities[-1]}.",
    )


def _examples_figure(bundle: ModelBundle, x: torch.Tensor, index: int, seed: int) -> Figure:
    vr = bundle.card.value_range
    image = x[index : index + 1].float()
    shown = [("original", image)] + [
        (name, corrupt(image, name, EXAMPLE_SEVERITY, seed=seed, index_offset=index, value_range=vr))
        for name in CORRUPTIONS
    ]
    cols = 4
    rows = -(-len(shown) // cols)
    fig, axes = subplots(rows, cols, figsize=(2.0 * cols, 2.1 * rows), squeeze=False)
    kind = bundle.card.kind
    for ax, (title, img) in zip(axes.flat, shown):
        kind.draw_example(ax, img[0].cpu(), vr)
        ax.set_title(title.replace("_", " "), fontsize=8)
        ax.axis("off")
    for ax in list(axes.flat)[len(shown) :]:
        ax.axis("off")
    fig.tight_layout()
    return Figure(
        caption=f"One correctly classified image under each corruption at severity {EXAMPLE_SEVERITY} of 5 (first: the original).",
        data=fig_to_png(fig),
        alt="A grid of the same image under 15 common corruptions.",
    )
