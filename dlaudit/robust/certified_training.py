"""Training that makes certificates non-trivial: losses for the trainer's ``fit(..., loss_fn=...)``.

- :class:`GaussianNoiseTraining`: cross-entropy on ``x + sigma * N(0, I)``, the
  training of Cohen, Rosenfeld and Kolter 2019, "Certified adversarial robustness
  via randomized smoothing", https://arxiv.org/abs/1902.02918. A model trained at
  the noise level it is smoothed with classifies noisy copies well, so its
  smoothed classifier certifies larger radii. Noise is not clipped (as in their code
  and in :func:`~dlaudit.robust.smoothing.certify`).
- :class:`IBPTraining`: ``kappa * CE(z(x), y) + (1 - kappa) * CE(z_worst, y)``, where
  ``z_worst = -lower(z_y - z_j)`` holds the IBP lower bounds of the margins over the
  L-inf ball of radius ``eps`` in the value range (the specification folded into the
  last Linear layer). Gowal et al. 2018, "On the effectiveness of interval bound
  propagation for training verifiably robust models", https://arxiv.org/abs/1810.12715.
  Their schedule: a warm-up with ``eps = 0`` and ``kappa = 1``, then ``eps`` ramped
  linearly from 0 to its target and ``kappa`` from 1 to ``kappa_end`` (0.5), then both
  held. Here the schedule is counted in epochs (:data:`WARMUP_EPOCHS` and
  :data:`RAMP_EPOCHS`, chosen on digits: 20 to 30 epochs in all); the trainer tells the
  loss the epoch through ``on_epoch(epoch, epochs)``.

Both are :data:`~dlaudit.train.trainer.LossFn` callables with a ``training_info()``
dict for the model card::

    from dlaudit.train.trainer import train

    loss = IBPTraining(0.1)
    bundle = train("cnn", load_splits("digits"), epochs=30, loss_fn=loss,
                   training_info={"certified": loss.training_info()})
"""

from __future__ import annotations

import logging
import math
import weakref
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..train.trainer import weighted_cross_entropy
from .attacks import check_eps
from .bounds import Chain, chain_of, margin_lower_bounds

log = logging.getLogger(__name__)

__all__ = ["GaussianNoiseTraining", "IBPTraining", "WARMUP_EPOCHS", "RAMP_EPOCHS", "KAPPA_END"]

WARMUP_EPOCHS = 2
"""Epochs of clean training (``eps = 0``, ``kappa = 1``) before the ramp (Gowal et al.'s warm-up)."""
RAMP_EPOCHS = 10
"""Epochs over which ``eps`` rises linearly to its target and ``kappa`` falls to ``kappa_end``."""
KAPPA_END = 0.5
"""Gowal et al.'s final weight of the clean cross-entropy."""
PAPERS = {"gaussian_noise": "Cohen et al. 2019, arXiv:1902.02918", "ibp": "Gowal et al. 2018, arXiv:1810.12715"}


def _weighted_mean(per_sample: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    if weight is None:
        return per_sample.mean()
    return (per_sample * weight).sum() / weight.sum().clamp_min(1e-12)


class GaussianNoiseTraining:
    """Gaussian data augmentation: cross-entropy on ``x + sigma * N(0, I)`` (Cohen et al. 2019, arXiv:1902.02918).

    Parameters
    ----------
    sigma
        Noise standard deviation in input units (> 0); train at the sigma you certify with.
    seed
        Seeds the noise (a generator on the batch's device): the same seed gives the same model.
    """

    def __init__(self, sigma: float, *, seed: int = 0) -> None:
        if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not math.isfinite(sigma) or sigma <= 0:
            raise ConfigError(f"sigma (the training noise level) must be a finite number > 0, e.g. 0.25; got {sigma!r}")
        self.sigma = float(sigma)
        self.seed = int(seed)
        self._gens: dict[str, torch.Generator] = {}

    def _generator(self, device: torch.device) -> torch.Generator:
        key = str(device)
        if key not in self._gens:
            self._gens[key] = torch.Generator(device=device).manual_seed(self.seed)
        return self._gens[key]

    def __call__(
        self, module: nn.Module, x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None
    ) -> torch.Tensor:
        noise = torch.randn(x.shape, generator=self._generator(x.device), device=x.device, dtype=x.dtype)
        return weighted_cross_entropy(module, x + self.sigma * noise, y, weight)

    def training_info(self) -> dict[str, Any]:
        """What the model card records about this training."""
        return {
            "method": "gaussian_noise",
            "sigma": self.sigma,
            "clipped": False,
            "seed": self.seed,
            "paper": PAPERS["gaussian_noise"],
        }


class IBPTraining:
    """IBP training (Gowal et al. 2018, arXiv:1810.12715) with their warm-up and linear ramp, in epochs.

    Loss per batch: ``kappa * CE(z(x), y) + (1 - kappa) * CE(-lower(z_y - z_j), y)``,
    the margin bounds by IBP over the L-inf ball of the current ``eps`` in the value
    range. The clean term runs the model as the trainer left it (training mode: dropout
    active); the bounds are of the model in eval mode (dropout as identity, BatchNorm
    with its running statistics). During the warm-up (``kappa = 1``) no bounds are computed.

    Parameters
    ----------
    eps
        Target training budget in input units (> 0). Gowal et al. train at a budget at
        least the one they verify (0.4 for MNIST at 0.3).
    kappa_end
        Weight of the clean loss once the ramp is over, in [0, 1] (default 0.5).
    warmup_epochs
        Epochs with ``eps = 0`` and ``kappa = 1`` (default :data:`WARMUP_EPOCHS`).
    ramp_epochs
        Epochs of the linear ramp (default :data:`RAMP_EPOCHS`); in epoch ``e`` of the ramp
        (1-based) ``eps`` is ``e / ramp_epochs`` of the target.
    value_range
        The inputs' range; the ball is clipped to it.

    Before the trainer calls :meth:`on_epoch` (used outside ``fit``), the loss is the
    schedule's end: full ``eps`` and ``kappa_end``.
    """

    def __init__(
        self,
        eps: float,
        *,
        kappa_end: float = KAPPA_END,
        warmup_epochs: int = WARMUP_EPOCHS,
        ramp_epochs: int = RAMP_EPOCHS,
        value_range: tuple[float, float] = (0.0, 1.0),
    ) -> None:
        check_eps(eps)
        if eps == 0:
            raise ConfigError("IBP training needs eps > 0 (the training budget, e.g. 0.1 for inputs in [0, 1])")
        if isinstance(kappa_end, bool) or not isinstance(kappa_end, (int, float)) or not 0 <= kappa_end <= 1:
            raise ConfigError(f"kappa_end (the final weight of the clean loss) must be in [0, 1], got {kappa_end!r}")
        for name, value in (("warmup_epochs", warmup_epochs), ("ramp_epochs", ramp_epochs)):
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "warmup_epochs" else 1):
                raise ConfigError(f"{name} must be an integer >= {0 if name == 'warmup_epochs' else 1}, got {value!r}")
        lo, hi = float(value_range[0]), float(value_range[1])
        if not lo < hi:
            raise ConfigError(f"value_range must be (low, high) with low < high, got {tuple(value_range)}")
        self.eps = float(eps)
        self.kappa_end = float(kappa_end)
        self.warmup_epochs = warmup_epochs
        self.ramp_epochs = ramp_epochs
        self.value_range = (lo, hi)
        self.progress = 1.0  # share of the ramp done; 1 until the trainer says otherwise
        self._chains: weakref.WeakKeyDictionary[nn.Module, Chain] = weakref.WeakKeyDictionary()

    def on_epoch(self, epoch: int, epochs: int) -> None:
        """Set the schedule for ``epoch`` (0-based) of ``epochs``; the trainer calls it."""
        self.progress = min(1.0, max(0.0, (epoch - self.warmup_epochs + 1) / self.ramp_epochs))
        if epoch == 0 and epochs < self.warmup_epochs + self.ramp_epochs:
            log.warning(
                "IBP training for %d epochs ends before its schedule does (%d warm-up + %d ramp): it never trains at the full eps %g",
                epochs, self.warmup_epochs, self.ramp_epochs, self.eps,
            )  # fmt: skip

    @property
    def current_eps(self) -> float:
        return self.eps * self.progress

    @property
    def current_kappa(self) -> float:
        return 1.0 - (1.0 - self.kappa_end) * self.progress

    def _chain(self, module: nn.Module, x: torch.Tensor) -> Chain:
        chain = self._chains.get(module)
        if chain is None:
            probe = x[:3].detach() if len(x) > 1 else x.detach().expand(2, *x.shape[1:])
            chain = self._chains[module] = chain_of(module, probe)
        return chain

    def __call__(
        self, module: nn.Module, x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None
    ) -> torch.Tensor:
        logits = module(x)
        clean = F.cross_entropy(logits, y, reduction="none")
        kappa, eps = self.current_kappa, self.current_eps
        if kappa >= 1.0 or eps == 0:
            return _weighted_mean(clean, weight)
        lo, hi = self.value_range
        chain = self._chain(module, x)
        margins = margin_lower_bounds(
            chain, (x - eps).clamp(lo, hi), (x + eps).clamp(lo, hi), y, logits.shape[1], "ibp", fill=0.0
        )
        robust = F.cross_entropy(-margins, y, reduction="none")
        return _weighted_mean(kappa * clean + (1.0 - kappa) * robust, weight)

    def training_info(self) -> dict[str, Any]:
        """What the model card records about this training."""
        return {
            "method": "ibp",
            "eps": self.eps,
            "norm": "linf",
            "kappa_end": self.kappa_end,
            "schedule": {
                "warmup_epochs": self.warmup_epochs,
                "ramp_epochs": self.ramp_epochs,
                "ramp": "linear, per epoch",
            },
            "paper": PAPERS["ibp"],
        }
