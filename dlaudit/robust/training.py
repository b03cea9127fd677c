"""Adversarial training: losses that plug into the trainer's ``fit(..., loss_fn=...)``.

- ``pgd``: train on PGD adversarial examples (random start, ``steps`` steps).
  Madry et al. 2018, "Towards deep learning models resistant to adversarial
  attacks", https://arxiv.org/abs/1706.06083
- ``fgsm``: "fast" adversarial training, one FGSM step of size ``1.25 * eps`` from a
  uniform random start in the eps-ball. Wong, Rice and Kolter 2020, "Fast is better
  than free: revisiting adversarial training", https://arxiv.org/abs/2001.03994
  (without the random start it collapses: "catastrophic overfitting").
- ``trades``: cross-entropy on clean inputs plus ``beta`` times the KL divergence
  between the predictions on clean and adversarial inputs, the adversarial input
  maximising that divergence. Zhang et al. 2019, "Theoretically principled
  trade-off between robustness and accuracy", https://arxiv.org/abs/1901.08573

Adversarial examples are generated with the model in eval mode and its
parameters frozen (only the input needs a gradient), then the loss is computed
in training mode; the same engine as the attacks (:func:`~dlaudit.robust.attacks.ascend`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..train.trainer import LossFn, weighted_cross_entropy
from ..utils import model_state
from .attacks import NORMS, PGD_STEP_RATIO, ascend, check_eps, cross_entropy, speed

__all__ = ["ADVERSARIAL_TRAININGS", "AdversarialTraining", "adversarial_loss", "trades_kl", "training_setup"]

ADVERSARIAL_TRAININGS = ("pgd", "fgsm", "trades")
PAPERS = {
    "pgd": "Madry et al. 2018, arXiv:1706.06083",
    "fgsm": "Wong et al. 2020, arXiv:2001.03994",
    "trades": "Zhang et al. 2019, arXiv:1901.08573",
}
DEFAULT_STEPS = {"pgd": 10, "fgsm": 1, "trades": 10}
FAST_FGSM_STEP = 1.25
"""Wong et al.'s step size for fast FGSM training, as a multiple of eps."""
DEFAULT_WARMUP = 0.3
"""Share of the epochs over which adversarial training ramps its budget up (see :class:`AdversarialTraining`)."""
TRADES_START_STD = 0.001
"""TRADES starts its attack at ``x + 0.001 * N(0, 1)``."""


@dataclass(frozen=True)
class AdversarialTraining:
    """How to train adversarially; :meth:`loss` gives the trainer's loss function.

    Parameters
    ----------
    method
        ``"pgd"``, ``"fgsm"`` (fast FGSM with random start) or ``"trades"``.
    eps
        Training budget in input units (> 0).
    alpha
        Step size; default ``2.5 * eps / steps`` (pgd, trades) or ``1.25 * eps`` (fgsm).
    steps
        Attack steps per batch; default 10 (pgd, trades); fgsm takes one step.
    beta
        TRADES' weight of the robustness term (6 in Zhang et al.).
    norm
        ``"linf"`` or ``"l2"``.
    warmup
        Share of the epochs over which the budget ramps up linearly to ``eps`` (epoch
        ``e`` of ``E`` trains at ``eps * min(1, (e + 1) / ceil(warmup * E))``), as Gowal et
        al. 2018 (arXiv:1810.12715) and Wong et al. 2020 ramp theirs: starting at the full
        budget, a small model often collapses to predicting one class. 0 switches it off.
    """

    method: str
    eps: float
    alpha: float | None = None
    steps: int | None = None
    beta: float = 6.0
    norm: str = "linf"
    warmup: float = DEFAULT_WARMUP

    def __post_init__(self) -> None:
        if self.method not in ADVERSARIAL_TRAININGS:
            raise ConfigError(
                f"unknown adversarial training {self.method!r}; choose from: {', '.join(ADVERSARIAL_TRAININGS)}"
            )
        check_eps(self.eps)
        if self.eps == 0:
            raise ConfigError("adversarial training needs eps > 0 (the training budget, e.g. --eps 0.1)")
        if self.norm not in NORMS:
            raise ConfigError(f"unknown norm {self.norm!r}; choose from: {', '.join(NORMS)}")
        if self.alpha is not None and not (math.isfinite(self.alpha) and self.alpha > 0):
            raise ConfigError(f"alpha (the step size) must be a positive number, got {self.alpha!r}")
        if self.steps is not None and (
            isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1
        ):
            raise ConfigError(f"steps must be an integer of at least 1, got {self.steps!r}")
        if self.method == "fgsm" and self.steps not in (None, 1):
            raise ConfigError(
                f"fast FGSM training takes one step; got steps={self.steps} (use --adversarial pgd for more)"
            )
        if not (isinstance(self.warmup, (int, float)) and 0 <= self.warmup <= 1):
            raise ConfigError(f"warmup must be a share of the epochs from 0 to 1, got {self.warmup!r}")
        if not (math.isfinite(self.beta) and self.beta >= 0):
            raise ConfigError(f"beta must be a number >= 0, got {self.beta!r}")

    @property
    def n_steps(self) -> int:
        return self.steps or DEFAULT_STEPS[self.method]

    @property
    def step_size(self) -> float:
        if self.alpha is not None:
            return float(self.alpha)
        if self.method == "fgsm":
            return FAST_FGSM_STEP * self.eps
        return PGD_STEP_RATIO * self.eps / self.n_steps

    def info(self) -> dict[str, Any]:
        """What the model card records under ``training.adversarial``."""
        out: dict[str, Any] = {
            "method": self.method,
            "eps": self.eps,
            "alpha": self.step_size,
            "steps": self.n_steps,
            "norm": self.norm,
        }
        out["random_start"] = (
            "uniform in the eps-ball" if self.method != "trades" else f"x + {TRADES_START_STD:g} * N(0, 1)"
        )
        if self.method == "trades":
            out["beta"] = self.beta
        out["warmup"] = (
            f"eps ramps up linearly over the first {self.warmup:.0%} of the epochs" if self.warmup else "none"
        )
        out["paper"] = PAPERS[self.method]
        return out

    def loss(self, *, value_range: tuple[float, float] = (0.0, 1.0), seed: int = 0) -> LossFn:
        """The trainer's ``loss_fn(module, x, y, weight)``; its random starts are seeded by ``seed``."""
        return _AdversarialLoss(self, (float(value_range[0]), float(value_range[1])), seed)


def adversarial_loss(
    method: str,
    *,
    eps: float,
    alpha: float | None = None,
    steps: int | None = None,
    beta: float = 6.0,
    norm: str = "linf",
    value_range: tuple[float, float] = (0.0, 1.0),
    seed: int = 0,
) -> LossFn:
    """Shorthand for ``AdversarialTraining(...).loss(value_range=..., seed=...)``."""
    return AdversarialTraining(method, eps, alpha=alpha, steps=steps, beta=beta, norm=norm).loss(
        value_range=value_range, seed=seed
    )


def trades_kl(logits: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
    """Per-sample KL(target || softmax(logits)), the divergence TRADES' attack maximises."""
    return F.kl_div(F.log_softmax(logits, dim=1), target_probs, reduction="none").sum(dim=1)


class _AdversarialLoss:
    """A :data:`~dlaudit.train.trainer.LossFn` that trains on adversarial examples."""

    lr_schedule = "cosine"
    """The trainer's default schedule for this loss: adversarial training with a constant rate collapses more often."""

    def __init__(self, config: AdversarialTraining, value_range: tuple[float, float], seed: int) -> None:
        self.config = config
        self.value_range = value_range
        self.gen = torch.Generator().manual_seed(seed)
        self.scale = 1.0  # the share of eps the current epoch trains at (the warm-up)
        self.budgets: list[float] = []

    def on_epoch(self, epoch: int, epochs: int) -> None:
        """Called by the trainer at the start of each epoch: the warm-up's budget for this one."""
        ramp = math.ceil(self.config.warmup * epochs) if self.config.warmup > 0 else 0
        self.scale = 1.0 if ramp == 0 else min(1.0, (epoch + 1) / ramp)
        self.budgets.append(self.config.eps * self.scale)

    @property
    def eps(self) -> float:
        return self.config.eps * self.scale

    def training_info(self) -> dict[str, Any]:
        return {"eps_per_epoch": [round(b, 6) for b in self.budgets]}

    def __call__(
        self, module: nn.Module, x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None
    ) -> torch.Tensor:
        cfg = self.config
        if cfg.method == "trades":
            return self._trades(module, x, y, weight)
        with model_state(module, train=False, grad=False), speed.layout(module, x):
            x_adv = self._perturb(module, x, y, self._random_start(x), cross_entropy)
        return weighted_cross_entropy(module, x_adv, y, weight)

    def _random_start(self, x: torch.Tensor) -> torch.Tensor:
        lo, hi = self.value_range
        eps = self.eps
        if self.config.norm == "linf":
            noise = torch.empty(x.shape).uniform_(-eps, eps, generator=self.gen)
        else:
            direction = torch.empty(x.shape).normal_(generator=self.gen)
            radius = torch.empty(len(x)).uniform_(0, eps, generator=self.gen)
            noise = direction * (radius / direction.flatten(1).norm(dim=1).clamp_min(1e-12)).view(
                -1, *([1] * (x.ndim - 1))
            )
        return (x + noise.to(device=x.device, dtype=x.dtype)).clamp_(lo, hi)

    def _perturb(
        self, module: nn.Module, x: torch.Tensor, target: torch.Tensor, start: torch.Tensor, loss_fn: Any
    ) -> torch.Tensor:
        cfg = self.config
        n = len(x)
        eps = torch.full((n,), float(self.eps), device=x.device, dtype=x.dtype)
        alpha = torch.full(
            (n,), cfg.step_size * (self.scale if cfg.alpha is None else 1.0), device=x.device, dtype=x.dtype
        )
        adv, _, _ = ascend(
            module,
            x,
            target,
            start,
            eps=eps,
            alpha=alpha,
            steps=cfg.n_steps,
            norm=cfg.norm,
            value_range=self.value_range,
            loss_fn=loss_fn,
        )
        return adv.detach()

    def _trades(self, module: nn.Module, x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
        lo, hi = self.value_range
        with model_state(module, train=False, grad=False), speed.layout(module, x):
            with torch.no_grad():
                target = F.softmax(module(x), dim=1)
            noise = torch.empty(x.shape).normal_(generator=self.gen).mul_(TRADES_START_STD)
            start = (x + noise.to(device=x.device, dtype=x.dtype)).clamp_(lo, hi)
            x_adv = self._perturb(module, x, target, start, trades_kl)
        logits = module(x)
        natural = F.cross_entropy(logits, y, reduction="none")
        robust = trades_kl(module(x_adv), F.softmax(logits, dim=1))
        per_sample = natural + self.config.beta * robust
        if weight is None:
            return per_sample.mean()
        return (per_sample * weight).sum() / weight.sum().clamp_min(1e-12)


CERTIFIED_TRAININGS = ("ibp",)
CERTIFIED_EPOCHS = 30
"""Default epochs of IBP training: its schedule (warm-up and ramp) needs more than a standard run's."""


def training_setup(
    adversarial: str | None,
    *,
    eps: float | None = None,
    alpha: float | None = None,
    steps: int | None = None,
    beta: float | None = None,
    value_range: tuple[float, float] = (0.0, 1.0),
    seed: int = 0,
    warmup: float | None = None,
    certified: str | None = None,
    noise_sigma: float | None = None,
) -> tuple[LossFn | None, dict[str, Any] | None]:
    """``(loss_fn, training_info)`` for the trainer, from the options of ``dlaudit train``.

    At most one of ``adversarial`` (pgd, fgsm, trades), ``certified`` (ibp: Gowal et al.
    2018) and ``noise_sigma`` (Gaussian data augmentation: Cohen et al. 2019) applies;
    none is standard training, and then eps, alpha, steps, beta and warmup must not be
    given. ``training_info["epochs"]``, when present, is the default number of epochs
    the method needs (the caller's explicit choice wins).
    """
    off = lambda v: v is None or str(v).lower() == "none"
    chosen = [
        name
        for name, v in (("--adversarial", adversarial), ("--certified", certified), ("--noise-sigma", noise_sigma))
        if not off(v)
    ]
    if len(chosen) > 1:
        raise ConfigError(f"{' and '.join(chosen)} are different trainings; choose one")
    if not chosen:
        given = [
            name
            for name, v in (("eps", eps), ("alpha", alpha), ("steps", steps), ("beta", beta), ("warmup", warmup))
            if v is not None
        ]
        if given:
            raise ConfigError(
                f"{', '.join(given)} only apply to adversarial training; add --adversarial pgd (or fgsm, trades), "
                "or --certified ibp for certified training"
            )
        return None, None
    if not off(noise_sigma):
        from .certified_training import GaussianNoiseTraining

        loss = GaussianNoiseTraining(noise_sigma, seed=seed)  # type: ignore[arg-type]
        return loss, {"noise": loss.training_info()}
    if not off(certified):
        from .certified_training import IBPTraining

        method = str(certified).lower()
        if method not in CERTIFIED_TRAININGS:
            raise ConfigError(
                f"unknown certified training {certified!r}; choose from: {', '.join(CERTIFIED_TRAININGS)}"
            )
        if eps is None:
            raise ConfigError(
                "certified training (ibp) needs a budget: pass eps (--eps), e.g. 0.1 for inputs in [0, 1]"
            )
        extra = [
            name
            for name, v in (("alpha", alpha), ("steps", steps), ("beta", beta), ("warmup", warmup))
            if v is not None
        ]
        if extra:
            raise ConfigError(f"{', '.join(extra)} apply to adversarial training, not to IBP training")
        loss = IBPTraining(eps, value_range=value_range)
        return loss, {"certified": loss.training_info(), "epochs": CERTIFIED_EPOCHS}
    method = str(adversarial).lower()
    if eps is None:
        raise ConfigError(
            f"adversarial training ({method}) needs a budget: pass eps (--eps), e.g. 0.1 for inputs in [0, 1] (Madry et al. used 0.3 on MNIST)"
        )
    if beta is not None and method != "trades":
        raise ConfigError(f"beta only applies to TRADES (--adversarial trades), not to {method}")
    cfg = AdversarialTraining(
        method,
        eps,
        alpha=alpha,
        steps=steps,
        beta=6.0 if beta is None else beta,
        warmup=DEFAULT_WARMUP if warmup is None else warmup,
    )
    return cfg.loss(value_range=value_range, seed=seed), {"adversarial": cfg.info()}
