"""Figures of the robustness section: accuracy against the budget, and adversarial examples."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from matplotlib.axes import Axes

from ..modalities import IMAGE
from ..report.figures import COLORS, fig_to_png, subplots
from ..report.model import Figure
from .curves import Curve

__all__ = ["curves_figure", "examples_figure"]

_LABELS = {"fgsm_linf": "FGSM (L-inf)", "pgd_linf": "PGD (L-inf)", "fgsm_l2": "FGM (L2)", "pgd_l2": "PGD (L2)"}
_STYLE = {"fgsm": ("s", "--"), "pgd": ("o", "-")}


def curves_figure(
    curves: Sequence[Curve],
    *,
    clean: float,
    chance: float,
    noise: dict[str, dict[float, float]] | None = None,
    majority: float | None = None,
) -> Figure:
    """One panel per norm (and one for random noise): accuracy against eps, one line per attack.

    ``chance`` is 1 / the number of classes (random guessing); ``majority`` the accuracy of always
    predicting the most common class of the attacked samples, drawn too where it differs from chance.
    """
    k = round(1 / chance) if chance > 0 else 0
    show_majority = majority is not None and abs(majority - chance) >= 0.02
    norms = [nm for nm in ("linf", "l2") if any(c.name.endswith(nm) for c in curves)]
    panels = norms + (["noise"] if noise else [])
    fig, axes = subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        if panel == "noise":
            for i, (kind, accs) in enumerate(noise.items()):  # type: ignore[union-attr]
                xs = [0.0, *accs]
                ax.plot(xs, [clean, *accs.values()], marker="^v"[i % 2], color=COLORS[4 + i], label=f"{kind} noise")
            ax.set_xlabel("noise strength (std / half-width)")
            ax.set_title("random noise")
        else:
            for c in (c for c in curves if c.name.endswith(panel)):
                marker, line = _STYLE.get(c.name.split("_")[0], ("o", "-"))
                ax.plot(
                    c.eps,
                    c.accuracy,
                    marker=marker,
                    linestyle=line,
                    color=COLORS[(0 if c.name.startswith("pgd") else 1) + (2 if panel == "l2" else 0)],
                    label=_LABELS.get(c.name, c.name),
                )
            ax.set_xlabel(f"eps ({'L-inf' if panel == 'linf' else 'L2'})")
            ax.set_title(f"{'L-inf' if panel == 'linf' else 'L2'} attacks")
        ax.axhline(clean, color=COLORS[7], linestyle=":", linewidth=1, label=f"clean {clean:.3f}")
        ax.axhline(chance, color="#999999", linestyle="-.", linewidth=1, label=f"chance 1/{k} = {chance:.2f}")
        if show_majority:
            ax.axhline(
                majority, color="#999999", linestyle=(0, (1, 2)), linewidth=1, label=f"majority class {majority:.2f}"
            )
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel("accuracy")
        ax.grid(alpha=0.3)
        ax.legend(
            fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False
        )  # outside the curves
    fig.tight_layout()
    names = ", ".join(_LABELS.get(c.name, c.name) for c in curves)
    return Figure(
        caption="Accuracy against the attack budget, one line per attack (dotted: clean accuracy, dash-dotted: chance, "
        f"1/{k} for {k} classes"
        + (f"; fine dotted: always predicting the most common class, {majority:.2f})" if show_majority else ")")
        + ("; right: accuracy under random noise." if noise else "."),
        data=fig_to_png(fig),
        alt=f"Line charts of accuracy against eps for {names}; accuracy falls as eps grows.",
    )


def examples_figure(
    x: torch.Tensor,
    x_adv: torch.Tensor,
    y: torch.Tensor,
    pred: torch.Tensor,
    pred_adv: torch.Tensor,
    class_names: Sequence[str],
    *,
    eps: float,
    attack: str,
    value_range: tuple[float, float] = (0.0, 1.0),
) -> Figure:
    """Clean images, adversarial images (with both predictions) and the perturbation, one column per sample."""
    k = len(x)
    fig, axes = subplots(3, k, figsize=(1.5 * k + 0.6, 4.9), squeeze=False)
    delta = (x_adv - x).float()
    for j in range(k):
        _show(axes[0, j], x[j], value_range)
        axes[0, j].set_title(f"true {class_names[int(y[j])]}\npred {class_names[int(pred[j])]}", fontsize=8)
        _show(axes[1, j], x_adv[j], value_range)
        fooled = int(pred_adv[j]) != int(y[j])
        axes[1, j].set_title(
            f"pred {class_names[int(pred_adv[j])]}" + (" ✗" if fooled else " ✓"),
            fontsize=8,
            color=COLORS[3] if fooled else COLORS[2],
        )
        d = delta[j].mean(dim=0).numpy() if delta[j].ndim == 3 else delta[j].numpy()
        axes[2, j].imshow(d, cmap="RdBu_r", vmin=-eps, vmax=eps)
    for row, label in enumerate(("clean", "adversarial", "perturbation")):
        axes[row, 0].set_ylabel(label, fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    n_fooled = int((pred_adv != y).sum())
    return Figure(
        caption=f"{attack} at eps {eps:g}: clean images (true class, prediction), adversarial images (prediction; ✗ fooled) "
        f"and the perturbation (red up, blue down, scale ±{eps:g}).",
        data=fig_to_png(fig),
        alt=f"Grid of {k} clean images, their adversarial versions ({n_fooled} of {k} misclassified) and the perturbations.",
    )


def _show(ax: Axes, img: torch.Tensor, value_range: tuple[float, float]) -> None:
    IMAGE.draw_example(ax, img, value_range)
