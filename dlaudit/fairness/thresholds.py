"""Group thresholds: fairlearn's ThresholdOptimizer over a trained torch model, saved as a model.

Hardt, Price and Srebro 2016, "Equality of Opportunity in Supervised Learning",
https://arxiv.org/abs/1610.02413.

:func:`fit_group_thresholds` runs :class:`fairlearn.postprocessing.ThresholdOptimizer`
(``prefit=True``) on a :class:`TorchProbaAdapter`, whose ``predict_proba`` is the
softmax of the model. The fitted rule is, for each group, a randomized mix:

- with probability ``p_ignore`` predict positive with probability ``constant``;
- otherwise, with probability ``p0`` apply ``operation0`` (``score > t0`` or
  ``score < t0``), else ``operation1``.

The rule is stored on the model card as ``postprocess = {"kind": "group-thresholds", ...}``
and applied by :class:`GroupThresholds`, a wrapper registered (in :mod:`dlaudit.analyses`)
as the post-processor ``group-thresholds`` (see :mod:`dlaudit.postprocessors`), so
:func:`dlaudit.load_model` gives back an ordinary (N, 2) logits model.

**Where the group comes from.** The wrapper reads the group from the model's own
input: the one-hot columns of a categorical sensitive feature (``sex=Female``,
``sex=Male``) or, for a binned numeric one (``age``), the min-max scaled column.
A sensitive column that is not a model input cannot be read at prediction time,
so such a model cannot be saved (fit the thresholds in memory with fairlearn, or
use reweighing or exponentiated gradient instead). A sample whose group cannot be
read (a category unseen in training encodes as all zeros) keeps the original
model's decision.

**Determinism.** fairlearn draws the randomized choice from a random generator
at each call. The saved model instead draws it from a seeded hash of the input
(the input quantized to 2^-20 and mixed with SplitMix64 in integer arithmetic,
so the draw does not depend on floating-point rounding): the same input always
gets the same decision, the seed is stored on the card, and over many inputs each
branch is taken with its probability, so group rates match fairlearn's in
expectation (the probability of a positive decision per input is exactly
fairlearn's; see :meth:`GroupThresholds.positive_probability`).

**Logits.** The output is ``[0, m]`` where ``m`` is the margin of the chosen
branch: ``logit(score) - logit(t)`` for ``score > t`` (negated for ``<``), so
attacks and gradient explanations see the real score; a constant branch gives
``m = +/-10``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from torch import nn

from ..bundle import ModelBundle
from ..card import ModelCard
from ..data import AuditData
from ..data.groups import SensitiveFeature, bin_labels
from ..errors import ConfigError, ModelLoadError
from ..utils import batched_logits, model_state

__all__ = [
    "TorchProbaAdapter",
    "GroupThresholds",
    "group_reader_spec",
    "fit_group_thresholds",
    "thresholds_spec",
    "POSTPROCESS_KIND",
    "CONSTRAINTS",
    "check_constraint",
]

POSTPROCESS_KIND = "group-thresholds"
CONSTRAINTS = ("demographic_parity", "equalized_odds")
_BIG = 1e4  # logit of a threshold at or beyond 0 or 1
_CONST_MARGIN = 10.0
_QUANT = float(2**20)
_MASK64 = (1 << 64) - 1


class TorchProbaAdapter(ClassifierMixin, BaseEstimator):
    """A trained torch classifier as a fitted scikit-learn estimator (for ``prefit=True``).

    ``predict_proba`` returns ``[1 - p, p]`` with ``p = sigmoid(z1 - z0)`` computed in
    float64 from the logits, so thresholds on it map exactly onto logit margins.
    """

    def __init__(
        self,
        module: nn.Module | None = None,
        *,
        input_shape: Sequence[int] | None = None,
        batch_size: int = 2048,
        device: str | torch.device = "cpu",
    ) -> None:
        self.module = module
        self.input_shape = input_shape
        self.batch_size = batch_size
        self.device = device

    def __sklearn_is_fitted__(self) -> bool:
        return self.module is not None

    @property
    def classes_(self) -> np.ndarray:
        return np.array([0, 1])

    def fit(self, X: Any, y: Any = None, **_: Any) -> TorchProbaAdapter:
        return self  # prefit: the torch model is already trained

    def margin(self, X: Any) -> np.ndarray:
        x = torch.as_tensor(np.asarray(X, dtype=np.float32))
        if self.input_shape is not None:
            x = x.reshape(len(x), *self.input_shape)
        z = batched_logits(self.module, x, batch_size=self.batch_size, device=torch.device(self.device)).double()
        if z.ndim != 2 or z.shape[1] != 2:
            raise ConfigError(
                f"group thresholds need a binary model with (N, 2) logits; this one gives shape {tuple(z.shape)}"
            )
        return (z[:, 1] - z[:, 0]).numpy()

    def predict_proba(self, X: Any) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-self.margin(X)))
        return np.stack([1.0 - p, p], axis=1)

    def predict(self, X: Any) -> np.ndarray:
        return (self.margin(X) > 0).astype(np.int64)


def check_constraint(constraint: str) -> None:
    """Raise :class:`ConfigError` unless ``constraint`` is one of :data:`CONSTRAINTS`."""
    if constraint not in CONSTRAINTS:
        raise ConfigError(f"unknown constraint {constraint!r}; choose one of: {', '.join(CONSTRAINTS)}")


# -- reading the group from the model input -------------------------------------------------


def group_reader_spec(card: ModelCard, feature: SensitiveFeature) -> dict[str, Any]:
    """How to read ``feature``'s group from an encoded input row, from the card's encoder.

    Raises :class:`ConfigError` when the feature is not a model input (the
    limitation stated in the module docstring).
    """
    enc = card.encoder or {}
    names = list(card.feature_names or [])
    levels = feature.levels
    for c in enc.get("categorical", []):
        if c["name"] == feature.name:
            columns = {v: names.index(f"{c['name']}={v}") for v in c["categories"] if f"{c['name']}={v}" in names}
            missing = [g for g in levels if g not in columns]
            if missing:
                raise ConfigError(
                    f"group(s) {missing} of {feature.name!r} have no one-hot input column in the model; the saved model could not recognise them"
                )
            return {"type": "onehot", "columns": [columns[g] for g in levels], "groups": levels}
    for c in enc.get("numeric", []):
        if c["name"] == feature.name:
            if not feature.edges:
                raise ConfigError(
                    f"{feature.name!r} is a numeric input with few values; bin it (bins={{{feature.name!r}: [...]}}) to use group thresholds"
                )
            return {
                "type": "binned",
                "column": names.index(c["name"]),
                "min": c["min"],
                "max": c["max"],
                "edges": list(feature.edges),
                "groups": levels,
            }
    raise ConfigError(
        f"{feature.name!r} is not an input of this model, so a saved model could not tell a new sample's group, which "
        "ThresholdOptimizer needs at prediction time; use --method reweigh or expgrad, or train with the column as an input"
    )


def _read_groups(x: torch.Tensor, reader: dict[str, Any], all_groups: list[str]) -> torch.Tensor:
    """Index into ``all_groups`` for each row of ``x``; -1 where the group cannot be read."""
    flat = x.reshape(len(x), -1)
    index = torch.tensor([all_groups.index(g) for g in reader["groups"]], dtype=torch.long, device=x.device)
    if reader["type"] == "onehot":
        hot = flat[:, reader["columns"]] > 0.5
        one = hot.sum(dim=1) == 1
        pos = hot.float().argmax(dim=1)
        return torch.where(one, index[pos], torch.full_like(pos, -1))
    raw = reader["min"] + flat[:, reader["column"]].double() * (reader["max"] - reader["min"])
    edges = torch.tensor(reader["edges"], dtype=torch.float64, device=x.device)
    bins = torch.bucketize(raw, edges, right=True)  # bin i is [e_{i-1}, e_i)
    labels = bin_labels(reader["edges"])
    lookup = torch.tensor(
        [all_groups.index(lbl) if lbl in all_groups else -1 for lbl in labels], dtype=torch.long, device=x.device
    )
    return lookup[bins]


# -- the seeded hash --------------------------------------------------------------------------


def _splitmix64(state: int) -> tuple[int, int]:
    state = (state + 0x9E3779B97F4A7C15) & _MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return state, z ^ (z >> 31)


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


@functools.lru_cache(maxsize=32)
def _multipliers(seed: int, d: int) -> tuple[int, ...]:
    """``d`` odd 64-bit multipliers from a SplitMix64 stream seeded by ``seed`` (pure Python, so identical everywhere)."""
    state, out = seed & _MASK64, []
    for _ in range(d):
        state, z = _splitmix64(state)
        out.append(_signed(z | 1))
    return tuple(out)


def _shr(z: torch.Tensor, k: int) -> torch.Tensor:
    """Logical right shift of int64 (torch shifts arithmetically)."""
    return (z >> k) & ((1 << (64 - k)) - 1)


def _mix(z: torch.Tensor) -> torch.Tensor:
    z = (z ^ _shr(z, 30)) * _signed(0xBF58476D1CE4E5B9)
    z = (z ^ _shr(z, 27)) * _signed(0x94D049BB133111EB)
    return z ^ _shr(z, 31)


def _uniform(z: torch.Tensor) -> torch.Tensor:
    return _shr(z, 11).double() / float(1 << 53)


def _hash_uniforms_of(x: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two uniforms in [0, 1) per row of ``x``, a function of the row's values and ``seed`` only."""
    q = torch.round(x.detach().reshape(len(x), -1).double() * _QUANT).long()
    mult = torch.tensor(_multipliers(int(seed), q.shape[1]), dtype=torch.long, device=x.device)
    z1 = _mix((q * mult).sum(dim=1))
    z2 = _mix(z1 ^ _signed(0x632BE59BD9B4E019))
    return _uniform(z1), _uniform(z2)


# -- the wrapper ---------------------------------------------------------------------------------


def _logit(t: float) -> float:
    if t <= 0.0:
        return -_BIG
    if t >= 1.0:
        return _BIG
    return math.log(t / (1.0 - t))


class GroupThresholds(nn.Module):
    """Applies a stored group-threshold rule to a binary model's logits.

    Its ``state_dict`` is the base model's: the rule lives on the card, so a
    dlaudit checkpoint of a post-processed model rebuilds the base architecture
    and the loader wraps it again.
    """

    def __init__(self, base: nn.Module, spec: dict[str, Any]) -> None:
        super().__init__()
        self.base = base
        self.spec = spec
        groups = list(spec["groups"])
        rules = [spec["rules"][g] for g in groups]
        self.group_names = groups

        def buf(name: str, values: Sequence[float]) -> None:
            self.register_buffer(name, torch.tensor(values, dtype=torch.float64), persistent=False)

        buf("p_ignore", [r["p_ignore"] for r in rules])
        buf("constant", [r["constant"] for r in rules])
        buf("p0", [r["p0"] for r in rules])
        buf("sign0", [1.0 if r["op0"] == ">" else -1.0 for r in rules])
        buf("sign1", [1.0 if r["op1"] == ">" else -1.0 for r in rules])
        buf("logit0", [_logit(r["t0"]) for r in rules])
        buf("logit1", [_logit(r["t1"]) for r in rules])

    # the checkpoint holds the base model's weights only
    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        return self.base.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:  # type: ignore[override]
        return self.base.load_state_dict(state_dict, strict=strict, assign=assign)

    def _params(self, g: torch.Tensor) -> dict[str, torch.Tensor]:
        safe = g.clamp_min(0)
        return {
            name: getattr(self, name).to(g.device)[safe]
            for name in ("p_ignore", "constant", "p0", "sign0", "sign1", "logit0", "logit1")
        }

    def positive_probability(self, x: torch.Tensor) -> torch.Tensor:
        """fairlearn's probability of a positive decision for each row (NaN where the group is unknown)."""
        with torch.no_grad():
            z = self.base(x).double()
        margin = z[:, 1] - z[:, 0]
        g = _read_groups(x, self.spec["reader"], self.group_names)
        p = self._params(g)
        op0 = (p["sign0"] * (margin - p["logit0"]) > 0).double()
        op1 = (p["sign1"] * (margin - p["logit1"]) > 0).double()
        prob = p["p_ignore"] * p["constant"] + (1 - p["p_ignore"]) * (p["p0"] * op0 + (1 - p["p0"]) * op1)
        return torch.where(g >= 0, prob, torch.full_like(prob, float("nan")))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.base(x)
        margin = (z[:, 1] - z[:, 0]).double()
        g = _read_groups(x, self.spec["reader"], self.group_names)
        p = self._params(g)
        u1, u2 = _hash_uniforms_of(x, int(self.spec.get("seed", 0)))
        m = torch.where(u2 < p["p0"], p["sign0"] * (margin - p["logit0"]), p["sign1"] * (margin - p["logit1"]))
        ignored = u1 < p["p_ignore"]
        const_positive = u1 < p["p_ignore"] * p["constant"]  # given ignored, u1 / p_ignore is uniform
        m = torch.where(ignored, torch.where(const_positive, _CONST_MARGIN, -_CONST_MARGIN).to(m.dtype), m)
        m = torch.where(g >= 0, m, margin).to(z.dtype)
        return torch.stack([torch.zeros_like(m), m], dim=1)


def wrap_group_thresholds(module: nn.Module, card: ModelCard) -> nn.Module:
    spec = card.postprocess or {}
    missing = [k for k in ("groups", "rules", "reader") if k not in spec]
    if missing:
        raise ModelLoadError(
            f"the card's group-thresholds post-processing lacks {', '.join(missing)}; save the mitigated model again"
        )
    if card.num_classes != 2:
        raise ModelLoadError(f"group thresholds apply to binary models; this card has {card.num_classes} classes")
    return GroupThresholds(module, spec)


# -- fitting ---------------------------------------------------------------------------------------


def _threshold(t: float) -> float:
    """A JSON-safe threshold (fairlearn uses +/-inf for always/never)."""
    return 2.0 if t == math.inf else (-1.0 if t == -math.inf else float(t))


def thresholds_spec(
    optimizer: Any, *, reader: dict[str, Any], feature: str, constraint: str, seed: int
) -> dict[str, Any]:
    """The card's ``postprocess`` dict from a fitted ThresholdOptimizer."""
    rules = {}
    for group, rule in optimizer.interpolated_thresholder_.interpolation_dict.items():
        rules[str(group)] = {
            "p_ignore": float(rule.get("p_ignore", 0.0)),
            "constant": float(rule.get("prediction_constant", 0.0)),
            "p0": float(rule.p0),
            "op0": rule.operation0.operator,
            "t0": _threshold(rule.operation0.threshold),
            "p1": float(rule.p1),
            "op1": rule.operation1.operator,
            "t1": _threshold(rule.operation1.threshold),
        }
    missing = [g for g in reader["groups"] if g not in rules]
    if missing:
        raise ConfigError(f"ThresholdOptimizer found no rule for group(s) {missing} of {feature!r}")
    return {
        "kind": POSTPROCESS_KIND,
        "method": "fairlearn.postprocessing.ThresholdOptimizer",
        "constraint": constraint,
        "feature": feature,
        "groups": list(reader["groups"]),
        "rules": rules,
        "reader": reader,
        "seed": int(seed),
        "randomization": "seeded hash of the input (deterministic per input)",
    }


def fit_group_thresholds(
    bundle: ModelBundle,
    data: AuditData,
    feature: SensitiveFeature,
    *,
    constraint: str = "demographic_parity",
    seed: int = 0,
    grid_size: int = 1000,
) -> tuple[ModelBundle, Any]:
    """Fit ThresholdOptimizer on ``data`` (normally the training split) and wrap the model.

    Returns the post-processed bundle (card with ``postprocess``) and the fitted
    fairlearn ThresholdOptimizer.
    """
    from fairlearn.postprocessing import ThresholdOptimizer

    check_constraint(constraint)
    if bundle.card.num_classes != 2:
        raise ConfigError(
            f"ThresholdOptimizer needs a binary model; this one has {bundle.card.num_classes} classes; use --method reweigh"
        )
    if bundle.card.postprocess:
        raise ConfigError(
            f"this model is already post-processed ({bundle.card.postprocess.get('kind')}); mitigate the original model instead"
        )
    if not feature.defined:
        raise ConfigError(f"cannot fit group thresholds over {feature.name!r}: {feature.reason}")
    reader = group_reader_spec(bundle.card, feature)
    adapter = TorchProbaAdapter(bundle.module, input_shape=bundle.card.input_shape, device=bundle.device)
    optimizer = ThresholdOptimizer(
        estimator=adapter,
        constraints=constraint,
        objective="accuracy_score",
        prefit=True,
        predict_method="predict_proba",
        grid_size=grid_size,
    )
    x = data.x.reshape(len(data), -1).numpy()
    with model_state(bundle.module):
        optimizer.fit(x, data.y.numpy(), sensitive_features=feature.groups.astype(str).to_numpy())
    spec = thresholds_spec(optimizer, reader=reader, feature=feature.name, constraint=constraint, seed=seed)
    card = bundle.card.replace(postprocess=spec)
    module = GroupThresholds(bundle.module, spec)
    return ModelBundle(module, card, device=bundle.device, source=None, format="in-memory"), optimizer
