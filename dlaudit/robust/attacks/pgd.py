"""PGD, projected gradient descent on the loss: Madry et al. 2018, "Towards deep learning models resistant
to adversarial attacks", https://arxiv.org/abs/1706.06083. Registered as ``pgd``; runs on the shared engine.

Random starts are drawn per sample from its global index; with ``early_stop`` (the
default) a sample leaves the batch once an iterate fools the model and keeps that
iterate, which is never weaker than plain PGD's final iterate.
"""

from __future__ import annotations

import torch
from torch import nn

from ...bundle import ModelBundle
from .base import register_attack
from .engine import Attack, run_attack

__all__ = ["pgd", "make_pgd"]


@register_attack("pgd")
def make_pgd(
    eps: float,
    *,
    norm: str = "linf",
    steps: int = 40,
    alpha: float | None = None,
    random_start: bool = True,
    restarts: int = 1,
    targeted: bool = False,
    early_stop: bool = True,
    features: tuple[int, ...] | None = None,
) -> Attack:
    """PGD at budget ``eps`` (step size ``2.5 * eps / steps`` unless ``alpha`` is given; on ``features`` only, where given)."""
    return Attack.pgd(
        eps,
        norm=norm,
        steps=steps,
        alpha=alpha,
        random_start=random_start,
        restarts=restarts,
        targeted=targeted,
        early_stop=early_stop,
        features=features,
    )


def pgd(
    model: nn.Module | ModelBundle,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    alpha: float | None = None,
    steps: int = 40,
    norm: str = "linf",
    random_start: bool = True,
    restarts: int = 1,
    targeted: bool = False,
    seed: int = 0,
    early_stop: bool = True,
    value_range: tuple[float, float] | None = None,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """PGD: ``steps`` projected gradient steps on the cross-entropy, from a random start.

    Madry et al. 2018, https://arxiv.org/abs/1706.06083. Distance: L-inf or L2.

    Parameters
    ----------
    model
        ``nn.Module`` returning logits ``(N, classes)``, or a ``ModelBundle``.
    x
        Inputs ``(N, ...)`` in the value range (default ``(0, 1)``, or the card's).
    y
        True labels ``(N,)``, or target labels with ``targeted=True``.
    eps
        Budget in input units, ``>= 0``.
    alpha
        Step size, default ``2.5 * eps / steps``.
    steps
        Gradient steps (default 40).
    norm
        ``"linf"`` (sign steps, box projection) or ``"l2"`` (normalised steps, ball projection).
    random_start
        Start from a random point of the ball.
    restarts
        Random restarts; each sample keeps its worst case.
    targeted
        Descend towards the target labels ``y`` instead of away from the true ones.
    seed
        Seeds the random starts (per sample: independent of the batch size).
    early_stop
        Keep a sample's first fooling iterate and stop perturbing it (never weaker, faster);
        False runs every step for every sample, as plain PGD does.

    Returns
    -------
    torch.Tensor
        Adversarial inputs, same shape and device as ``x``.

    Examples
    --------
    >>> x_adv = pgd(bundle, x, y, eps=0.1, steps=40)  # doctest: +SKIP
    """
    atk = Attack.pgd(
        eps,
        alpha=alpha,
        steps=steps,
        norm=norm,
        random_start=random_start,
        restarts=restarts,
        targeted=targeted,
        early_stop=early_stop,
    )
    out = run_attack(model, x, y, atk, seed=seed, value_range=value_range, batch_size=batch_size, device=device)
    return out.x_adv  # type: ignore[return-value]
