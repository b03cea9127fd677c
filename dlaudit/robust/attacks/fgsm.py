"""FGSM, the fast gradient sign method: Goodfellow, Shlens and Szegedy 2015, "Explaining and harnessing
adversarial examples", https://arxiv.org/abs/1412.6572 (with ``norm="l2"`` the fast gradient method: one
step along the L2-normalised gradient). Registered as ``fgsm``; runs on the shared engine.
"""

from __future__ import annotations

import torch
from torch import nn

from ...bundle import ModelBundle
from .base import register_attack
from .engine import Attack, run_attack

__all__ = ["fgsm", "make_fgsm"]


@register_attack("fgsm")
def make_fgsm(
    eps: float,
    *,
    norm: str = "linf",
    targeted: bool = False,
    early_stop: bool = False,
    features: tuple[int, ...] | None = None,
) -> Attack:
    """FGSM at budget ``eps``: one step of size ``eps``, no random start (on ``features`` only, where given)."""
    return Attack.fgsm(eps, norm=norm, targeted=targeted, early_stop=early_stop, features=features)


def fgsm(
    model: nn.Module | ModelBundle,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    norm: str = "linf",
    targeted: bool = False,
    value_range: tuple[float, float] | None = None,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """FGSM: one step of size ``eps`` along the gradient's sign (L-inf) or direction (L2).

    Goodfellow et al. 2015, https://arxiv.org/abs/1412.6572. Distance: L-inf (or L2).

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

    Returns
    -------
    torch.Tensor
        Adversarial inputs, same shape and device as ``x``.

    Examples
    --------
    >>> x_adv = fgsm(model, x, y, eps=0.1)  # doctest: +SKIP
    """
    atk = Attack.fgsm(eps, norm=norm, targeted=targeted)
    out = run_attack(model, x, y, atk, value_range=value_range, batch_size=batch_size, device=device)
    return out.x_adv  # type: ignore[return-value]
