"""Mitigation: reweighing, group thresholds, exponentiated gradient; measured before and after.

Three places to intervene:

- ``reweigh`` (pre-processing, :mod:`.reweigh`): retrain the model's architecture
  with Kamiran-Calders sample weights (Kamiran and Calders 2012);
- ``threshold`` (post-processing, :mod:`.thresholds`): fairlearn's
  ThresholdOptimizer over the trained model (Hardt et al. 2016,
  https://arxiv.org/abs/1610.02413);
- ``expgrad`` (in-processing, :mod:`.expgrad`): fairlearn's ExponentiatedGradient
  with our trainer as the base learner (Agarwal et al. 2018,
  https://arxiv.org/abs/1803.02453);
- ``reject-option`` and ``calibrated-eqodds`` (post-processing, :mod:`.aif_postprocess`):
  AIF360's reject-option classification (Kamiran et al. 2012) and calibrated
  equalized odds (Pleiss et al. 2017), written in dlaudit over the torch model.

Every method is fitted on the training split and every model, the original
included, is measured on the same held-out split, so the table compares like with like.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from dataclasses import replace as dataclasses_replace
from typing import Any, ClassVar

import numpy as np
import torch

from ..bundle import ModelBundle
from ..data import AuditData, Splits
from ..data.groups import SensitiveFeature, resolve_sensitive
from ..errors import ConfigError
from ..parsing import parse_names, round_or_none, split_list
from ..report.model import Finding, Metric, Report, Section, Table
from ..train import train as _train
from ..utils import ProgressFn, model_state
from .aif_postprocess import AIF_METHODS, fit_aif_postprocess
from .expgrad import fit_expgrad
from .metrics import FeatureFairness, group_fairness
from .plots import tradeoff_figure
from .reweigh import reweighing_weights
from .thresholds import CONSTRAINTS, check_constraint, fit_group_thresholds

__all__ = [
    "MITIGATIONS",
    "CONSTRAINTS",
    "MitigationResult",
    "MitigationSettings",
    "mitigate_bundle",
    "reweigh_bundle",
    "evaluate_models",
]

log = logging.getLogger(__name__)

MITIGATIONS = ("reweigh", "threshold", "expgrad", "reject-option", "calibrated-eqodds")
_TRAINERS = ("mlp", "cnn", "numpy-mlp")


@dataclass(frozen=True)
class MitigationSettings:
    """What a mitigation run fits (``dlaudit mitigate``); every field is a keyword of :func:`mitigate_bundle`."""

    methods: tuple[str, ...] = ("reweigh",)
    constraint: str = "demographic_parity"
    epochs: int | None = None
    """Epochs when retraining (reweigh; per round for expgrad); None: the model's."""
    max_iter: int = 20
    """ExponentiatedGradient's rounds."""
    eps: float = 0.01
    """ExponentiatedGradient's constraint slack."""
    n_boot: int = 200
    """Bootstrap resamples of the disparity intervals in the before/after table."""

    SMALL: ClassVar[dict[str, Any]] = {"max_iter": 3, "n_boot": 50}
    """What ``DLAUDIT_SMALL=1`` (the smoke-test configuration) caps, given values included; the retraining
    epochs follow :attr:`dlaudit.train.TrainConfig.SMALL`. Defined here and nowhere else."""

    @classmethod
    def build(cls, *, small: bool = False, **params: Any) -> MitigationSettings:
        """Defaults overridden by ``params`` (None keeps the default), capped under ``small``, validated."""
        from ..train.trainer import TrainConfig

        s = cls(**{k: v for k, v in params.items() if v is not None})
        s = dataclasses_replace(
            s,
            methods=tuple(parse_names(s.methods, MITIGATIONS, "mitigation method(s)")),
            epochs=TrainConfig.small_epochs(s.epochs, small),
            **({k: min(getattr(s, k), cap) for k, cap in cls.SMALL.items()} if small else {}),
        )
        check_constraint(s.constraint)
        if s.epochs is not None and (isinstance(s.epochs, bool) or int(s.epochs) < 1):
            raise ConfigError(f"epochs must be at least 1, got {s.epochs!r}")
        if isinstance(s.max_iter, bool) or int(s.max_iter) < 1:
            raise ConfigError(f"max_iter (exponentiated-gradient rounds) must be at least 1, got {s.max_iter!r}")
        if not (isinstance(s.eps, (int, float)) and s.eps > 0):
            raise ConfigError(f"eps (the constraint slack) must be a number > 0, got {s.eps!r}")
        if isinstance(s.n_boot, bool) or int(s.n_boot) < 0:
            raise ConfigError(f"n_boot (bootstrap resamples) must be a whole number >= 0, got {s.n_boot!r}")
        return s


@dataclass
class MitigationResult:
    """The original and the mitigated models, measured on the same held-out data.

    ``rows`` has one dict per model (``model``, ``accuracy``, ``demographic_parity_difference``
    with ``_lo``/``_hi``, ``demographic_parity_ratio``, ``equalized_odds_difference``).
    """

    feature: str
    original: ModelBundle
    models: dict[str, ModelBundle]
    rows: list[dict[str, Any]]
    data: str
    n: int
    info: dict[str, dict[str, Any]] = field(default_factory=dict)
    saved: dict[str, str] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    """How the result was made (command, seed, versions, data, seconds), for the report's footer."""

    @property
    def metrics(self) -> dict[str, float | None]:
        """``mitigation.<model>.accuracy`` and ``mitigation.<model>.<disparity>`` for every row."""
        out: dict[str, float | None] = {}
        for row in self.rows:
            for key in (
                "accuracy",
                "demographic_parity_difference",
                "demographic_parity_ratio",
                "equalized_odds_difference",
            ):
                out[f"mitigation.{row['model']}.{key}"] = row.get(key)
        return out

    def table(self) -> Table:
        base = self.rows[0]
        rows = []
        for row in self.rows:
            dacc = None if row["accuracy"] is None or base["accuracy"] is None else row["accuracy"] - base["accuracy"]
            dpd, dpd0 = row["demographic_parity_difference"], base["demographic_parity_difference"]
            share = None if dpd is None or not dpd0 else dpd / dpd0
            ci = (
                ""
                if row.get("demographic_parity_difference_lo") is None
                else f"[{row['demographic_parity_difference_lo']:.3f}, {row['demographic_parity_difference_hi']:.3f}]"
            )
            rows.append(
                [
                    row["model"],
                    round_or_none(row["accuracy"]),
                    round_or_none(dacc),
                    round_or_none(dpd),
                    ci,
                    round_or_none(share),
                    round_or_none(row["demographic_parity_ratio"]),
                    round_or_none(row["equalized_odds_difference"]),
                ]
            )
        return Table(
            title=f"Before and after mitigation ({self.feature})",
            columns=[
                "model",
                "accuracy",
                "accuracy change",
                "DP difference",
                "95% CI",
                "DP difference / original",
                "DP ratio",
                "EO difference",
            ],
            rows=rows,
            caption=f"All models measured on the same {self.n} held-out samples of {self.data}; DP = demographic parity, EO = equalized odds, over {self.feature}.",
        )

    def section(self) -> Section:
        """A report section: the before/after table and accuracy against disparity."""
        sec = Section(
            name="mitigation",
            title="Fairness mitigation",
            params={"feature": self.feature, "data": self.data, "n": self.n, "methods": self.info},
        )
        for name, value in self.metrics.items():
            sec.metrics.append(
                Metric(name, value, higher_is_better=True if name.endswith((".accuracy", "_ratio")) else False)
            )
        sec.tables.append(self.table())
        sec.figures.append(
            tradeoff_figure(
                [
                    {
                        "model": r["model"],
                        "accuracy": r["accuracy"],
                        "disparity": r["demographic_parity_difference"],
                        "disparity_lo": r.get("demographic_parity_difference_lo"),
                        "disparity_hi": r.get("demographic_parity_difference_hi"),
                    }
                    for r in self.rows
                ],
                feature=self.feature,
            )
        )
        base = self.rows[0]
        for row in self.rows[1:]:
            if row["demographic_parity_difference"] is not None and base["demographic_parity_difference"] is not None:
                sec.add_finding(
                    "info",
                    f"{row['model']}: demographic parity difference {base['demographic_parity_difference']:.3f} -> {row['demographic_parity_difference']:.3f}, "
                    f"accuracy {base['accuracy']:.4f} -> {row['accuracy']:.4f}",
                    check="mitigation",
                )
            for finding in _made_worse(row, base, self.info.get(row["model"], {}), self.feature):
                sec.findings.append(finding)
        sec.summary = f"Original and {len(self.rows) - 1} mitigated model(s) over {self.feature}, on {self.n} held-out samples of {self.data}."
        return sec

    def report(self, *, title: str | None = None) -> Report:
        return Report(
            title=title or f"dlaudit mitigation: {self.feature}",
            card=self.original.card.to_dict(),
            sections=[self.section()],
            provenance=dict(self.provenance),
        )


WORSE_BY = 0.02
"""How much worse (absolute) a fairness metric may get under a mitigation before the report warns."""
_FAIRNESS_METRICS = (  # (row key, label, higher is better)
    ("demographic_parity_difference", "demographic parity difference", False),
    ("demographic_parity_ratio", "demographic parity ratio", True),
    ("equalized_odds_difference", "equalized odds difference", False),
)
_TARGETS = {"demographic_parity": "demographic parity", "equalized_odds": "equalized odds"}


def _made_worse(
    row: Mapping[str, Any], base: Mapping[str, Any], info: Mapping[str, Any], feature: str
) -> list[Finding]:
    """A warning for every fairness metric the mitigation made worse than the original (by more than :data:`WORSE_BY`):
    a mitigation aimed at one criterion can trade away another (Kleinberg et al. 2016, https://arxiv.org/abs/1609.05807)."""
    target = _TARGETS.get(str(info.get("constraint", "demographic_parity")), "demographic parity")
    out = []
    for key, label, up in _FAIRNESS_METRICS:
        before, after = base.get(key), row.get(key)
        if before is None or after is None:
            continue
        worse = (before - after) if up else (after - before)
        if worse > WORSE_BY:
            aimed = label.startswith(target)
            out.append(
                Finding(
                    "warning",
                    f"{row['model']} makes the {label} over {feature} worse: {before:.3f} -> {after:.3f}"
                    + (
                        ", although it aims at that criterion"
                        if aimed
                        else f"; it aims at {target}, and fairness criteria can pull against each other"
                    ),
                    evidence=_ci_text(row, key),
                    check="mitigation-worse",
                )
            )
    return out


def _ci_text(row: Mapping[str, Any], key: str) -> str:
    lo, hi = row.get(f"{key}_lo"), row.get(f"{key}_hi")
    return f"{row['model']} 95% CI [{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else ""


# -- the methods --------------------------------------------------------------------------------


def reweigh_bundle(
    bundle: ModelBundle,
    splits: Splits,
    feature: SensitiveFeature,
    *,
    seed: int = 0,
    epochs: int | None = None,
    progress: ProgressFn | None = None,
) -> tuple[ModelBundle, dict[str, Any]]:
    """Retrain ``bundle``'s architecture on the training split with Kamiran-Calders weights."""
    card = bundle.card
    training = card.training or {}
    trainer = training.get("trainer") or card.architecture
    if trainer not in _TRAINERS or not card.architecture:
        raise ConfigError(
            "reweighing retrains the model, which needs a reference model trained by dlaudit (mlp, cnn, numpy-mlp); use --method threshold"
        )
    if not feature.defined:
        raise ConfigError(f"cannot reweigh over {feature.name!r}: {feature.reason}")
    weights = reweighing_weights(feature.groups, splits.train.y.numpy())
    hidden = card.arch_kwargs.get("hidden")
    info = {
        "method": "reweigh",
        "reference": "Kamiran and Calders 2012",
        "feature": feature.name,
        "weight_range": [float(weights.min()), float(weights.max())],
    }
    mitigated = _train(
        trainer,
        splits,
        epochs=epochs or training.get("epochs"),
        lr=training.get("lr"),
        optimizer=training.get("optimizer"),
        batch_size=training.get("batch_size"),
        weight_decay=float(training.get("weight_decay", 0.0)),
        seed=seed,
        device=bundle.device,
        hidden=tuple(hidden) if hidden else None,
        sample_weight=weights,
        training_info={"adversarial": None, "mitigation": info},
        dataset=card.dataset,
        data_dir=card.data_dir,
        data_seed=card.data_seed,
        progress=progress,
    )
    return mitigated, info


def _fit_one(
    method: str,
    bundle: ModelBundle,
    splits: Splits,
    feature: SensitiveFeature,
    *,
    constraint: str,
    seed: int,
    epochs: int | None,
    max_iter: int,
    eps: float,
    progress: ProgressFn | None,
) -> tuple[ModelBundle, dict[str, Any]]:
    if method == "reweigh":
        return reweigh_bundle(bundle, splits, feature, seed=seed, epochs=epochs, progress=progress)
    if method in AIF_METHODS:
        return fit_aif_postprocess(method, bundle, splits.train, feature, seed=seed)
    if method == "threshold":
        mitigated, _ = fit_group_thresholds(bundle, splits.train, feature, constraint=constraint, seed=seed)
        return mitigated, {
            "method": "threshold",
            "reference": "Hardt et al. 2016 (fairlearn ThresholdOptimizer)",
            "feature": feature.name,
            "constraint": constraint,
        }
    mitigated, reduction = fit_expgrad(
        bundle,
        splits.train,
        feature,
        constraint=constraint,
        eps=eps,
        max_iter=max_iter,
        epochs=epochs,
        seed=seed,
        device=bundle.device,
        progress=progress,
    )
    info = {
        "method": "expgrad",
        "reference": "Agarwal et al. 2018 (fairlearn ExponentiatedGradient)",
        "feature": feature.name,
        "constraint": constraint,
        "eps": eps,
        "max_iter": max_iter,
        "rounds": int(len(reduction.predictors_)),
        "members": len(mitigated.card.arch_kwargs["members"]),
    }
    return mitigated, info


def _with_mitigation_card(
    mitigated: ModelBundle, original: ModelBundle, info: dict[str, Any], accuracy: float | None
) -> None:
    training = dict(mitigated.card.training or original.card.training or {})
    training["mitigation"] = info
    # a retrained model's card has its own training metrics; a post-processed or ensemble one would show the original's
    metrics = dict(mitigated.card.metrics or {}) if info.get("method") == "reweigh" else {}
    if accuracy is not None:
        metrics["test_accuracy"] = accuracy
    original_acc = (original.card.metrics or {}).get("test_accuracy")
    if original_acc is not None:
        metrics["original_test_accuracy"] = original_acc
    mitigated.card = mitigated.card.replace(training=training, metrics=metrics)


def evaluate_models(
    models: Mapping[str, ModelBundle], data: AuditData, feature: SensitiveFeature, *, n_boot: int = 200, seed: int = 0
) -> list[dict[str, Any]]:
    """Accuracy and disparities of each model on ``data``, over ``feature``."""
    rows = []
    for name, bundle in models.items():
        with model_state(bundle.module):
            pred = bundle.predict(data.x).numpy()
        y = data.y.numpy()
        fair: FeatureFairness = group_fairness(
            y, pred, [feature], class_names=bundle.card.names, n_boot=n_boot, seed=seed
        ).features[0]
        row: dict[str, Any] = {"model": name, "accuracy": float((pred == y).mean())}
        for short in ("demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference"):
            m = fair.metric(short)
            row[short] = None if m is None else m.value
            if m is not None and m.ci is not None:
                row[f"{short}_lo"], row[f"{short}_hi"] = m.ci
        rows.append(row)
    return rows


def mitigate_bundle(
    bundle: ModelBundle,
    splits: Splits,
    *,
    sensitive: str,
    methods: Sequence[str] = ("reweigh",),
    constraint: str = "demographic_parity",
    seed: int = 0,
    epochs: int | None = None,
    max_iter: int = 20,
    eps: float = 0.01,
    bins: Mapping[str, Sequence[float]] | None = None,
    n_boot: int = 200,
    progress: ProgressFn | None = None,
) -> MitigationResult:
    """Mitigate ``bundle`` over one sensitive feature with each of ``methods``.

    Parameters
    ----------
    splits
        The model's training split (to fit each method) and a held-out split
        (to measure every model), encoded with the model's encoder.
    sensitive
        One sensitive column (looked up in the sensitive or raw columns).
    methods
        Any of ``reweigh``, ``threshold``, ``expgrad``, ``reject-option``, ``calibrated-eqodds``.
    constraint
        ``demographic_parity`` or ``equalized_odds`` (threshold and expgrad).
    epochs
        Epochs when retraining (reweigh; per round for expgrad); default: the card's.
    max_iter, eps
        ExponentiatedGradient's rounds and constraint slack.
    n_boot
        Bootstrap resamples for the disparity intervals in the table.
    """
    methods = parse_names(methods, MITIGATIONS, "mitigation method(s)")
    check_constraint(constraint)
    names = split_list(sensitive)
    if len(names) != 1:
        raise ConfigError(
            f"mitigation works on one sensitive feature at a time; got {names or 'none'} (e.g. --sensitive sex)"
        )
    train_feature = resolve_sensitive(splits.train, names, bins=bins)[0]
    if not train_feature.defined:
        raise ConfigError(f"cannot mitigate over {names[0]!r}: {train_feature.reason}")
    same_bins = {names[0]: list(train_feature.edges)} if train_feature.edges else None
    test_feature = resolve_sensitive(splits.test, names, bins=same_bins)[0]
    if not test_feature.defined:
        raise ConfigError(f"cannot measure fairness over {names[0]!r} on the held-out split: {test_feature.reason}")
    models: dict[str, ModelBundle] = {}
    info: dict[str, dict[str, Any]] = {}
    for method in methods:
        if progress is not None:
            progress(f"mitigate:{method}", 0, 1)
        torch.manual_seed(seed)
        np.random.seed(seed % (2**32))
        mitigated, details = _fit_one(
            method,
            bundle,
            splits,
            train_feature,
            constraint=constraint,
            seed=seed,
            epochs=epochs,
            max_iter=max_iter,
            eps=eps,
            progress=progress,
        )
        models[method] = mitigated
        info[method] = details
        if progress is not None:
            progress(f"mitigate:{method}", 1, 1)
    rows = evaluate_models({"original": bundle, **models}, splits.test, test_feature, n_boot=n_boot, seed=seed)
    for row in rows[1:]:
        _with_mitigation_card(models[row["model"]], bundle, info[row["model"]], row["accuracy"])
    return MitigationResult(names[0], bundle, models, rows, splits.test.name, len(splits.test), info)
