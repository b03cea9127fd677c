"""AIF360's post-processing, written in dlaudit for torch models: reject-option classification and
calibrated equalized odds.

- **Reject-option classification** (Kamiran, Karim and Zhang 2012, "Decision Theory
  for Discrimination-Aware Classification", https://doi.org/10.1109/ICDM.2012.45):
  near the decision threshold ``t`` (scores within ``t - m < s <= t + m``) the
  unprivileged group gets the favourable label and the privileged group the
  unfavourable one. That is a group threshold: the unprivileged group predicts
  positive where ``s > t - m``, the privileged group where ``s > t + m``. ``t`` and
  ``m`` are chosen as AIF360's ``RejectOptionClassification.fit`` does: a grid of
  100 thresholds in [0.01, 0.99] times 50 margins in [0, min(t, 1 - t)], the best
  balanced accuracy among the pairs whose statistical parity difference
  (unprivileged minus privileged selection rate) lies in [-0.05, 0.05]; when none
  does, the pair with the smallest difference. The grid is evaluated at once from
  sorted scores (``np.searchsorted``), not one prediction pass per pair.
- **Calibrated equalized odds** (Pleiss et al. 2017, "On Fairness and Calibration",
  https://arxiv.org/abs/1709.02012): the group whose weighted generalized error
  (false positives and false negatives weighted 1:1, AIF360's ``cost_constraint=
  "weighted"``) is lower has its score replaced, with probability ``mix_rate``, by
  its base rate, until its cost matches the other group's; the decision is
  ``score >= 0.5``. Fitted as AIF360's ``CalibratedEqOddsPostprocessing.fit``.

Both give a rule per group in the format of :mod:`.thresholds`, so the mitigated
model is saved and loaded as a ``group-thresholds`` post-processed model (the
group read from the model's own input; the random mix drawn from a seeded hash of
the input, so the same input always gets the same decision).

The privileged group is the one the original model selects most often on the
fitting data (stated in the result); the other groups are unprivileged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..bundle import ModelBundle
from ..data import AuditData
from ..data.groups import SensitiveFeature
from ..errors import ConfigError
from ..utils import model_state
from .thresholds import POSTPROCESS_KIND, GroupThresholds, group_reader_spec

__all__ = [
    "RejectOption",
    "CalibratedEqOdds",
    "fit_reject_option",
    "fit_calibrated_eqodds",
    "fit_aif_postprocess",
    "AIF_METHODS",
]

AIF_METHODS = ("reject-option", "calibrated-eqodds")


@dataclass(frozen=True)
class RejectOption:
    """A fitted reject-option rule: threshold ``t``, margin ``m``, and the grid's numbers at that pair."""

    threshold: float
    margin: float
    balanced_accuracy: float
    parity_difference: float
    satisfied: bool


@dataclass(frozen=True)
class CalibratedEqOdds:
    """A fitted calibrated-equalized-odds rule: base rates and mix rates of the two sides."""

    base_rate_priv: float
    base_rate_unpriv: float
    priv_mix_rate: float
    unpriv_mix_rate: float


def _count_above(sorted_scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """How many scores are strictly above each threshold."""
    return len(sorted_scores) - np.searchsorted(sorted_scores, thresholds, side="right")


def fit_reject_option(
    scores: np.ndarray,
    y: np.ndarray,
    privileged: np.ndarray,
    *,
    low: float = 0.01,
    high: float = 0.99,
    n_thresholds: int = 100,
    n_margins: int = 50,
    bound: float = 0.05,
) -> RejectOption:
    """Reject-option classification's threshold and margin (AIF360's grid and choice, vectorised).

    Parameters
    ----------
    scores
        The model's probability of the favourable (positive) class per sample.
    y
        True labels (1 favourable).
    privileged
        Whether each sample is in the privileged group.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(y).astype(bool)
    priv = np.asarray(privileged, dtype=bool)
    if not priv.any() or priv.all():
        raise ConfigError("reject-option classification needs both privileged and unprivileged samples")
    ts, ms = [], []
    for t in np.linspace(low, high, n_thresholds):
        top = t if t <= 0.5 else 1.0 - t
        for m in np.linspace(0.0, top, n_margins):
            ts.append(t)
            ms.append(m)
    t_arr, m_arr = np.array(ts), np.array(ms)
    thr_u, thr_p = t_arr - m_arr, t_arr + m_arr
    parts = {}
    for name, mask in (("u", ~priv), ("p", priv)):
        thr = thr_u if name == "u" else thr_p
        parts[name] = (
            _count_above(np.sort(s[mask]), thr),  # selected
            _count_above(np.sort(s[mask & y]), thr),  # true positives
            _count_above(np.sort(s[mask & ~y]), thr),  # false positives
        )
    n_u, n_p = (~priv).sum(), priv.sum()
    pos, neg = y.sum(), (~y).sum()
    tp = parts["u"][1] + parts["p"][1]
    fp = parts["u"][2] + parts["p"][2]
    balanced = 0.5 * (tp / pos + (neg - fp) / neg)
    spd = parts["u"][0] / n_u - parts["p"][0] / n_p
    ok = (spd >= -bound) & (spd <= bound)
    if ok.any():
        rel = np.flatnonzero(ok)
        best = rel[np.flatnonzero(balanced[rel] == balanced[rel].max())[0]]
    else:
        best = int(np.flatnonzero(spd == spd.min())[0])
    return RejectOption(float(t_arr[best]), float(m_arr[best]), float(balanced[best]), float(spd[best]), bool(ok.any()))


def _weighted_cost(scores: np.ndarray, y: np.ndarray) -> float:
    """AIF360's ``weighted_cost`` with fp and fn rates 1: generalized FPR times (1 - base rate)
    plus generalized FNR times the base rate, over one group."""
    base = y.mean()
    gfpr = scores[~y].sum() / max((~y).sum(), 1)
    gfnr = (1.0 - scores[y]).sum() / max(y.sum(), 1)
    return float(0.5 * gfpr * (1.0 - base) + 0.5 * gfnr * base)


def fit_calibrated_eqodds(scores: np.ndarray, y: np.ndarray, privileged: np.ndarray) -> CalibratedEqOdds:
    """Calibrated equalized odds' base rates and mix rates (AIF360's fit, ``cost_constraint="weighted"``)."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(y).astype(bool)
    priv = np.asarray(privileged, dtype=bool)
    if not priv.any() or priv.all():
        raise ConfigError("calibrated equalized odds needs both privileged and unprivileged samples")
    br_p, br_u = float(y[priv].mean()), float(y[~priv].mean())
    cost_p, cost_u = _weighted_cost(s[priv], y[priv]), _weighted_cost(s[~priv], y[~priv])
    triv_p = _weighted_cost(np.full(priv.sum(), br_p), y[priv])
    triv_u = _weighted_cost(np.full((~priv).sum(), br_u), y[~priv])
    if cost_u > cost_p:
        priv_mix, unpriv_mix = (cost_u - cost_p) / (triv_p - cost_p), 0.0
    else:
        priv_mix, unpriv_mix = 0.0, (cost_p - cost_u) / (triv_u - cost_u)
    return CalibratedEqOdds(br_p, br_u, float(priv_mix), float(unpriv_mix))


def _rule(threshold: float, *, mix: float = 0.0, constant: float = 0.0) -> dict[str, Any]:
    """A group's rule in :mod:`.thresholds`' format: ``score > threshold``, or with probability ``mix`` a constant."""
    t = min(max(float(threshold), -1.0), 2.0)
    # AIF360 replaces a score where a uniform draw is <= mix, so a mix rate over 1 (which its fit can give) acts as 1
    return {
        "p_ignore": float(min(max(mix, 0.0), 1.0)),
        "constant": float(constant),
        "p0": 1.0,
        "op0": ">",
        "t0": t,
        "p1": 0.0,
        "op1": ">",
        "t1": t,
    }


def _scores(bundle: ModelBundle, data: AuditData) -> np.ndarray:
    with model_state(bundle.module), torch.no_grad():
        logits = bundle.module(data.x.to(bundle.device)).double()
    return torch.softmax(logits, dim=1)[:, 1].cpu().numpy()


def fit_aif_postprocess(
    method: str, bundle: ModelBundle, data: AuditData, feature: SensitiveFeature, *, seed: int = 0
) -> tuple[ModelBundle, dict[str, Any]]:
    """Fit ``reject-option`` or ``calibrated-eqodds`` on ``data`` (the training split) and wrap the model."""
    if method not in AIF_METHODS:
        raise ConfigError(f"unknown post-processing {method!r}; choose from {', '.join(AIF_METHODS)}")
    if bundle.card.num_classes != 2:
        raise ConfigError(f"{method} needs a binary model; this one has {bundle.card.num_classes} classes")
    if bundle.card.postprocess:
        raise ConfigError(
            f"this model is already post-processed ({bundle.card.postprocess.get('kind')}); mitigate the original model instead"
        )
    if not feature.defined:
        raise ConfigError(f"cannot fit {method} over {feature.name!r}: {feature.reason}")
    reader = group_reader_spec(bundle.card, feature)
    scores = _scores(bundle, data)
    y = data.y.numpy() == 1
    groups = feature.groups.astype(str).to_numpy()
    levels = list(reader["groups"])
    rates = {g: float((scores[groups == g] > 0.5).mean()) for g in levels if (groups == g).any()}
    top = max(rates, key=lambda g: (rates[g], g))
    priv = groups == top
    info: dict[str, Any] = {"method": method, "feature": feature.name, "privileged": top}
    if method == "reject-option":
        fit = fit_reject_option(scores, y, priv)
        rules = {g: _rule(fit.threshold + fit.margin if g == top else fit.threshold - fit.margin) for g in levels}
        info.update(
            reference="Kamiran et al. 2012 (as AIF360 RejectOptionClassification)",
            constraint="demographic_parity",
            threshold=fit.threshold,
            margin=fit.margin,
            balanced_accuracy=fit.balanced_accuracy,
            parity_difference=fit.parity_difference,
            constraint_met=fit.satisfied,
        )
    else:
        fit = fit_calibrated_eqodds(scores, y, priv)
        rules = {
            g: _rule(
                0.5,
                mix=fit.priv_mix_rate if g == top else fit.unpriv_mix_rate,
                constant=float((fit.base_rate_priv if g == top else fit.base_rate_unpriv) >= 0.5),
            )
            for g in levels
        }
        info.update(
            reference="Pleiss et al. 2017 (as AIF360 CalibratedEqOddsPostprocessing, weighted cost)",
            constraint="equalized_odds",
            base_rate_priv=fit.base_rate_priv,
            base_rate_unpriv=fit.base_rate_unpriv,
            priv_mix_rate=fit.priv_mix_rate,
            unpriv_mix_rate=fit.unpriv_mix_rate,
        )
    spec = {
        "kind": POSTPROCESS_KIND,
        "method": method,
        "feature": feature.name,
        "groups": levels,
        "rules": rules,
        "reader": reader,
        "seed": int(seed),
        "randomization": "seeded hash of the input (deterministic per input)",
        "privileged": top,
    }
    card = bundle.card.replace(postprocess=spec)
    module = GroupThresholds(bundle.module, spec)
    return ModelBundle(module, card, device=bundle.device, source=None, format="in-memory"), info
