"""Certified robustness: proofs, not attacks. The public face of smoothing.py and bounds.py.

An attack's robust accuracy is an upper bound on the true robust accuracy (a
stronger attack may lower it); a certificate is a lower bound that no attack can
break. Two kinds:

- **Randomized smoothing** (Cohen, Rosenfeld and Kolter 2019,
  https://arxiv.org/abs/1902.02918): :func:`certify_smoothing` certifies an L2
  radius for the *smoothed* classifier (the model's majority vote under Gaussian
  noise), with probability ``1 - alpha``; :func:`predict_smoothed` is its
  prediction. Works for any model; costs ``n0 + n`` forward passes per input.
  Metric: ``robustness.smoothing_l2.acc@R``.
- **Verified accuracy** of the model itself over an L-inf ball intersected with
  the value range, by sound bounds on the margins ``z_y - z_j``:
  :func:`verified_accuracy` with ``method="ibp"`` (Gowal et al. 2018,
  https://arxiv.org/abs/1810.12715), ``"crown-ibp"`` (Zhang et al. 2020,
  https://arxiv.org/abs/1906.06316) or ``"crown"`` (Zhang et al. 2018,
  https://arxiv.org/abs/1811.00866). Needs a chain of supported layers
  (:data:`~dlaudit.robust.bounds.SUPPORTED`); any other model raises
  :class:`~dlaudit.errors.AnalysisError` naming the first layer it cannot bound.
  Metric: ``robustness.certified_linf.acc@EPS``. Lower level:
  :func:`interval_bounds` and :func:`linear_bounds`.

Verified accuracy is at most the accuracy under any attack at the same budget
(a verified sample cannot be fooled), and both are at most clean accuracy.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import torch
from torch import nn

from ..bundle import ModelBundle
from ..errors import ConfigError
from ..utils import ProgressFn, model_state
from .attacks import check_eps, check_inputs, count_classes, resolve_model, speed
from .bounds import BOUND_METHODS, SUPPORTED, chain_of, interval_bounds, linear_bounds, margin_lower_bounds
from .smoothing import ABSTAIN, SmoothingResult
from .smoothing import certify as certify_smoothing
from .smoothing import predict as predict_smoothed

__all__ = [
    "ABSTAIN",
    "BOUND_METHODS",
    "SUPPORTED",
    "SmoothingResult",
    "VerifiedResult",
    "certify_smoothing",
    "predict_smoothed",
    "verified_accuracy",
    "interval_bounds",
    "linear_bounds",
    "CertifyResult",
    "CERTIFY_METHODS",
    "evaluate_certification",
]

log = logging.getLogger(__name__)

PAPERS = {
    "ibp": "Gowal et al. 2018, arXiv:1810.12715",
    "crown-ibp": "Zhang et al. 2020, arXiv:1906.06316",
    "crown": "Zhang et al. 2018, arXiv:1811.00866",
}
DEFAULT_BATCH = {"ibp": 512, "crown-ibp": 256, "crown": 64}


@dataclass(frozen=True)
class VerifiedResult:
    """What :func:`verified_accuracy` proved, on the CPU.

    Attributes
    ----------
    verified
        ``(N,)`` bool: the lower bound of every margin ``z_y - z_j`` (``j != y``) is > 0,
        so no input in the ball changes the prediction from the label.
    margin_lower
        ``(N, K)`` lower bounds of ``z_y - z_j``; ``+inf`` at ``j = y``.
    """

    method: str
    eps: float
    value_range: tuple[float, float]
    verified: torch.Tensor
    margin_lower: torch.Tensor
    seconds: float

    @property
    def accuracy(self) -> float:
        """Verified accuracy: the share of verified inputs (a proven lower bound of robust accuracy)."""
        return float(self.verified.double().mean()) if len(self.verified) else math.nan

    @property
    def worst_margin(self) -> torch.Tensor:
        """``(N,)`` the smallest margin lower bound of each input (> 0 exactly where verified)."""
        return self.margin_lower.min(dim=1).values

    def info(self) -> dict[str, object]:
        return {
            "method": self.method,
            "eps": self.eps,
            "norm": "linf",
            "value_range": list(self.value_range),
            "paper": PAPERS[self.method],
        }


def verified_accuracy(
    model: nn.Module | ModelBundle,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    method: str = "ibp",
    value_range: tuple[float, float] | None = None,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    progress: ProgressFn | None = None,
) -> VerifiedResult:
    """Which inputs are provably classified correctly everywhere in their L-inf ball.

    The ball is ``{x' : ||x' - x||_inf <= eps}`` intersected with the value range
    (the box ``[max(x - eps, lo), min(x + eps, hi)]``); the model in eval mode.

    Parameters
    ----------
    model
        A chain of supported layers (:data:`~dlaudit.robust.bounds.SUPPORTED`), or a
        ``ModelBundle`` of one (its card gives the value range and device).
    x, y
        Inputs ``(N, ...)`` in the value range and their labels ``(N,)``.
    eps
        L-inf budget in input units (>= 0).
    method
        ``"ibp"`` (Gowal et al. 2018, arXiv:1810.12715; the specification folded into
        the last Linear layer), ``"crown-ibp"`` (Zhang et al. 2020, arXiv:1906.06316) or
        ``"crown"`` (Zhang et al. 2018, arXiv:1811.00866); the linear methods keep the
        tighter of their bound and IBP's for each margin.
    batch_size
        Inputs per bound computation (default 512 for ibp, 256 crown-ibp, 64 crown).

    Raises
    ------
    AnalysisError
        The model has a layer (or a forward) the bounds cannot handle; the message names it.

    Examples
    --------
    >>> res = verified_accuracy(bundle, x, y, eps=0.1, method="crown-ibp")  # doctest: +SKIP
    >>> res.accuracy  # doctest: +SKIP
    """
    if method not in BOUND_METHODS:
        raise ConfigError(f"unknown bound method {method!r}; choose from: {', '.join(BOUND_METHODS)}")
    check_eps(eps)
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ConfigError(f"batch_size must be an integer of at least 1, got {batch_size!r}")
    module, (lo, hi), dev, k = resolve_model(model, value_range, device)
    labels = check_inputs(x, y, (lo, hi))
    n = len(x)
    start = time.perf_counter()
    if n == 0:
        return VerifiedResult(method, float(eps), (lo, hi), torch.empty(0, dtype=torch.bool), torch.empty(0, 0), 0.0)
    bs = batch_size or DEFAULT_BATCH[method]
    margins = []
    # channels-last convolution weights, as for attacks: the bounds' convolutions ran 1.7x faster
    with model_state(module, train=False, grad=False), speed.layout(module, x), torch.no_grad():
        k = count_classes(module, x, labels, dev, k)
        chain = chain_of(module, x[: min(n, 3)].to(dev) if n > 1 else x.to(dev).expand(2, *x.shape[1:]))
        for s in range(0, n, bs):
            xb, yb = x[s : s + bs].to(dev), labels[s : s + bs].to(dev)
            xl, xu = (xb - eps).clamp_(lo, hi), (xb + eps).clamp_(lo, hi)
            margins.append(margin_lower_bounds(chain, xl, xu, yb, k, method).cpu())
            if progress is not None:
                progress(f"certify:{method}", min(s + bs, n), n)
    margin = torch.cat(margins)
    verified = margin.min(dim=1).values > 0
    seconds = time.perf_counter() - start
    log.info("%s at eps %g: %d of %d inputs verified (%.2f s)", method, eps, int(verified.sum()), n, seconds)
    return VerifiedResult(method, float(eps), (lo, hi), verified, margin, seconds)


# -- what ``dlaudit certify`` computes ---------------------------------------------------------


@dataclass
class CertifyResult:
    """Certified accuracies by metric name, one row per radius or budget, and the settings."""

    metrics: dict[str, float | None]
    rows: list[dict[str, object]]
    params: dict[str, object]
    seconds: float

    def to_dict(self) -> dict[str, object]:
        """JSON-ready, with the flat ``metrics`` object."""
        return {
            "metrics": dict(self.metrics),
            "results": [dict(r) for r in self.rows],
            "params": dict(self.params),
            "seconds": round(self.seconds, 3),
        }


CERTIFY_METHODS = ("smoothing", *BOUND_METHODS)


def evaluate_certification(
    bundle: ModelBundle,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    method: str = "smoothing",
    sigma: float = 0.25,
    radii: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0),
    eps: tuple[float, ...] = (0.1,),
    n0: int = 100,
    n: int = 100_000,
    alpha: float = 0.001,
    batch_size: int | None = None,
    seed: int = 0,
    progress: ProgressFn | None = None,
) -> CertifyResult:
    """Certified accuracy of ``bundle`` on ``(x, y)``: randomized smoothing at L2 ``radii``, or verified
    accuracy (``ibp``, ``crown-ibp``, ``crown``) at L-inf budgets ``eps``."""
    if method not in CERTIFY_METHODS:
        raise ConfigError(f"unknown certification method {method!r}; choose from: {', '.join(CERTIFY_METHODS)}")
    for r in (*radii, *eps):
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not math.isfinite(r) or r < 0:
            raise ConfigError(f"radii and eps must be numbers >= 0, got {r!r}")
    start = time.perf_counter()
    metrics: dict[str, float | None] = {}
    rows: list[dict[str, object]] = []
    params: dict[str, object] = {"method": method, "inputs": len(x), "seed": seed, "device": str(bundle.device)}
    if method == "smoothing":
        res = certify_smoothing(
            bundle, x, y, sigma=sigma, n0=n0, n=n, alpha=alpha, batch_size=batch_size, seed=seed, progress=progress
        )
        for r, acc in res.certified_accuracy(list(radii)).items():
            metrics[f"robustness.smoothing_l2.acc@{r:g}"] = acc
            rows.append({"radius": r, "certified_accuracy": acc})
        metrics["robustness.smoothing_l2.abstain_rate"] = res.abstain_rate
        params.update(res.info())
        params["seconds_per_input"] = round(res.seconds_per_input, 4)
    else:
        for e in eps:
            res_v = verified_accuracy(bundle, x, y, eps=e, method=method, batch_size=batch_size, progress=progress)
            metrics[f"robustness.certified_linf.acc@{e:g}"] = res_v.accuracy
            rows.append({"eps": e, "verified_accuracy": res_v.accuracy, "seconds": round(res_v.seconds, 3)})
        params["paper"] = PAPERS[method]
        params["eps"] = list(eps)
    return CertifyResult(metrics, rows, params, time.perf_counter() - start)
