"""The computation behind explanations: which samples, which class, which background,
and every method's attributions and trust metrics (:class:`Run`).

The report section is built from these numbers in :mod:`dlaudit.explain.section`;
:func:`dlaudit.explain.explanation.explain` ties the two together.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from .. import parallel
from ..bundle import ModelBundle
from ..data import AuditData, for_card, same_dataset
from ..errors import AnalysisError, ConfigError, DlauditError
from ..utils import ProgressFn
from ._common import Attribution, ExplainContext
from .intervals import Interval, bootstrap_mean, bootstrap_ratio
from .memory import row_budget
from .methods import attribute, get_method
from .quality import (
    Curves,
    SanityResult,
    _step_counts,
    attribution_order,
    completeness_parts,
    perturbation_curves,
    random_order,
    sanity_check,
)
from .road import RoadCurves, road_curves
from .stability import StabilityResult, max_sensitivity, random_logit_similarity

__all__ = [
    "MethodQuality",
    "Run",
    "select_samples",
    "resolve_target",
    "training_background",
    "TABULAR_BACKGROUND",
]

log = logging.getLogger(__name__)

TABULAR_BACKGROUND = 5000  # training rows behind tabular LIME's statistics and Kernel SHAP's k-means summary
# What a method or metric may raise on an unusual model (a TorchScript module refusing hooks,
# an exported graph refusing deepcopy): recorded in the report, never aborting the section.
_METHOD_ERRORS = (RuntimeError, ValueError, TypeError, IndexError, NotImplementedError, AttributeError, AssertionError)
"""What a method may raise on a model it does not fit (captum checks its inputs with assert): a finding, not a crash."""


@dataclass
class MethodQuality:
    """The trust metrics of one method."""

    curves: Curves | None = None
    sanity: SanityResult | None = None
    stability: StabilityResult | None = None
    completeness_terms: tuple[np.ndarray, np.ndarray] | None = None  # per-sample |gap| and |f(x) - f(b)|
    random_logit: np.ndarray | None = None  # per-sample similarity of the maps for the explained and another class
    road: RoadCurves | None = None
    seconds: float = 0.0
    notes: dict[str, str] = field(default_factory=dict)  # metric -> why it is undefined
    intervals: dict[str, Interval] = field(default_factory=dict)  # metric (short name) -> bootstrap interval

    @property
    def sensitivity(self) -> float | None:
        """Mean max-sensitivity over the samples where it is defined."""
        i = self.intervals.get("sensitivity")
        return None if i is None else i.value

    @property
    def completeness(self) -> float | None:
        i = self.intervals.get("completeness_error")
        return None if i is None else i.value

    def compute_intervals(self, random: Curves | None, *, seed: int, resamples: int) -> None:
        """Bootstrap intervals (seeded) of every metric measured, and of the paired deletion gain over a random order."""
        per_sample: dict[str, np.ndarray | None] = {
            "deletion_auc": None if self.curves is None else self.curves.deletion_per_sample,
            "insertion_auc": None if self.curves is None else self.curves.insertion_per_sample,
            "sanity_rank_corr": None
            if self.sanity is None or not self.sanity.samples
            else np.asarray(self.sanity.samples),
            "sensitivity": None if self.stability is None else self.stability.per_sample,
            "random_logit_similarity": self.random_logit,
            "road_morf_auc": None if self.road is None else self.road.morf_per_sample,
            "road_lerf_auc": None if self.road is None else self.road.lerf_per_sample,
            "local_lipschitz": None
            if self.stability is None
            else self.stability.lipschitz,  # last: the seeds above stay
        }
        if self.curves is not None and random is not None:
            per_sample["deletion_gain"] = self.curves.deletion_per_sample - random.deletion_per_sample
        for i, (metric, values) in enumerate(per_sample.items()):
            interval = (
                None if values is None else bootstrap_mean(values, seed=seed + 7919 * (i + 1), resamples=resamples)
            )
            if interval is not None:
                self.intervals[metric] = interval
        if self.completeness_terms is not None:
            interval = bootstrap_ratio(*self.completeness_terms, seed=seed + 7919 * 99, resamples=resamples)
            if interval is not None:
                self.intervals["completeness_error"] = interval


def select_samples(pred: torch.Tensor, y: torch.Tensor, n: int, *, seed: int = 0) -> torch.Tensor:
    """``n`` sample indices with both correctly and wrongly classified ones (seeded).

    About a quarter are misclassified samples when there are any; the rest
    correct ones. Returned correct first, then wrong, each in data order.
    """
    rng = np.random.default_rng(seed)
    wrong = (pred != y).nonzero().flatten().numpy()
    right = (pred == y).nonzero().flatten().numpy()
    if n >= len(y):
        chosen_right, chosen_wrong = right, wrong
    else:
        n_wrong = min(len(wrong), max(1, n // 4)) if len(wrong) else 0
        n_right = min(len(right), n - n_wrong)
        n_wrong = n - n_right
        chosen_right = np.sort(rng.choice(right, n_right, replace=False)) if n_right else right[:0]
        chosen_wrong = np.sort(rng.choice(wrong, n_wrong, replace=False)) if n_wrong else wrong[:0]
    return torch.from_numpy(np.concatenate([chosen_right, chosen_wrong]).astype(np.int64))


def resolve_target(target: str | int, y: torch.Tensor, pred: torch.Tensor, class_names: Sequence[str]) -> torch.Tensor:
    """The class to explain per sample: ``"predicted"``, ``"true"``, or one named (or numbered) class."""
    if isinstance(target, str) and target.strip().lower() in ("predicted", "pred", "prediction"):
        return pred.clone()
    if isinstance(target, str) and target.strip().lower() in ("true", "label", "labels"):
        return y.clone()
    names = [str(c) for c in class_names]
    if isinstance(target, str) and target in names:
        return torch.full_like(y, names.index(target))
    try:
        index = int(target)
    except (TypeError, ValueError):
        index = -1
    if 0 <= index < len(names):
        return torch.full_like(y, index)
    raise ConfigError(f"unknown explanation target {target!r}; use 'predicted', 'true', or a class: {', '.join(names)}")


def training_background(bundle: ModelBundle, data: AuditData, *, size: int, seed: int) -> tuple[torch.Tensor, str]:
    """Training samples for SHAP's background and LIME's statistics, and where they came from.

    The training split of the dataset on the model's card when the audited data
    is that dataset; otherwise the audited data itself (said in the report).
    """
    card = bundle.card
    x, source = data.x, f"the audited data ({data.name}, {data.split} split): no training split was available"
    if same_dataset(card, data.name) and data.split != "train":
        try:
            x = for_card(card, card.dataset, split="train").x
            source = f"the training split of {data.name}"
        except DlauditError as err:
            log.info("training split unavailable (%s); using the audited data as background", err)
    elif data.split == "train":
        source = f"the training split of {data.name}"
    if len(x) > size:
        x = x[torch.from_numpy(np.sort(np.random.default_rng(seed).choice(len(x), size, replace=False)))]
    return x.float(), source


class Run:
    """Attributions and trust metrics of every method for one explain() call."""

    def __init__(
        self,
        bundle: ModelBundle,
        ctx: ExplainContext,
        x: torch.Tensor,
        target: torch.Tensor,
        names: list[str],
        progress: ProgressFn | None,
    ) -> None:
        self.bundle, self.ctx, self.x, self.target, self.names = bundle, ctx, x, target, names
        self.progress = progress
        self.results: dict[str, Attribution] = {}
        self.skipped: dict[str, str] = {}
        self.failed: dict[str, str] = {}
        self.seconds: dict[str, float] = {}
        self.quality: dict[str, MethodQuality] = {}
        self.random: Curves | None = None
        self._done = 0
        self._warnings: dict[str, list[str]] = defaultdict(list)  # message -> the methods it was said for

    def _warn(self, message: str, method: str) -> None:
        """Note a warning about ``method``; :meth:`_flush_warnings` logs each message once, with a count."""
        self._warnings[message].append(method)

    def _flush_warnings(self) -> None:
        for message, methods in self._warnings.items():
            if len(methods) == 1:
                log.warning("explain: %s: %s", methods[0], message)
            else:
                log.warning("explain: %s (%d times: %s)", message, len(methods), ", ".join(dict.fromkeys(methods)))
        self._warnings.clear()

    def _tick(self, stage: str, total: int) -> None:
        self._done += 1
        if self.progress is not None:
            self.progress(stage, self._done, total)

    def attribute_all(self) -> None:
        module = self.bundle.module
        for name in self.names:
            start = time.perf_counter()
            try:
                reason = get_method(name).applies_to(self.ctx.kind)
                if reason is not None:
                    raise AnalysisError(reason)
                self.results[name] = self._attribute(name, module)
            except AnalysisError as err:
                self.skipped[name] = str(err)
                log.info("explain: %s skipped: %s", name, err)
            except _METHOD_ERRORS as err:
                self.failed[name] = _one_line(err)
                self._warn(f"failed: {self.failed[name]}", name)
            self.seconds[name] = time.perf_counter() - start
            self._tick("explain:attributions", len(self.names))
        self._flush_warnings()

    def _attribute(self, name: str, module: torch.nn.Module) -> Attribution:
        """One method's attributions; the per-row methods (LIME, Kernel SHAP) go over shards when the executor shards."""
        per_row = get_method(name).runs_per_row(self.ctx)
        ranges = parallel.plan_shards(len(self.x)) if per_row else []
        if not ranges:
            return attribute(name, module, self.x, self.target, self.ctx)
        parts = parallel.map_samples(
            explain_shard,
            self.bundle,
            ranges,
            lambda a, b: {
                "name": name,
                "x": self.x[a:b],
                "target": self.target[a:b],
                "ctx": replace(self.ctx, row_offset=a, cache={}),
            },
            key=lambda p: ("explain", name, self.ctx.seed, p["ctx"].row_offset, p["x"], p["target"]),
            rows=("values",),
            row_shapes={"values": tuple(self.x.shape[1:])},
            stage=f"explain:{name}",
            progress=self.progress,
        )
        return _merge(parts)

    def assess_all(self) -> None:
        self._done = 0
        if not self.results:
            return
        module, ctx, s = self.bundle.module, self.ctx, self.ctx.settings
        units = ctx.kind.segments(self.x.shape[1:], [c.features for c in ctx.columns])
        n_units = int(units.max()) + 1
        # every trust metric's forward passes hold at most the rows the memory budget allows (no backward here;
        # the methods they call again chunk their own passes)
        rows = row_budget(module, self.x, ctx, backward=False)
        # the sanity check holds a randomised copy of the model beside it: its methods get the budget less the copy
        copy = sum(t.numel() * t.element_size() for t in (*module.parameters(), *module.buffers()))
        sanity_ctx = ctx
        if s.max_memory is not None:
            sanity_ctx = replace(ctx, settings=replace(s, max_memory=max(1, s.max_memory - copy)))
        curves = lambda order: perturbation_curves(
            module,
            self.x,
            self.target,
            order,
            units=units,
            baseline=ctx.low,
            steps=s.curve_steps,
            modality=ctx.kind,
            batch_size=rows,
        )
        randoms = [
            curves(random_order(len(self.x), n_units, seed=ctx.seed + 1000 + r)) for r in range(max(1, s.random_orders))
        ]
        self.random = Curves(
            randoms[0].fractions,
            np.mean([c.deletion for c in randoms], axis=0),
            np.mean([c.insertion for c in randoms], axis=0),
        )
        k = min(len(self.x), s.sensitivity_samples)
        counts = _step_counts(n_units, s.curve_steps)
        road_ok = ctx.kind.spatial and self.x.dim() == 4 and s.road
        n_classes = int(self.bundle.card.num_classes)
        for name, res in self.results.items():
            start = time.perf_counter()
            q = MethodQuality()
            order = attribution_order(res.values, units, seed=ctx.seed)
            q.curves = curves(order)
            fn = lambda xx, tt, name=name: attribute(name, module, xx, tt, ctx).values
            q.sanity = self._guarded(
                name,
                q,
                "sanity_rank_corr",
                lambda name=name, res=res: sanity_check(
                    lambda m, xx, tt: attribute(name, m, xx, tt, sanity_ctx).values,
                    module,
                    self.x,
                    self.target,
                    res.values,
                    units=units,
                    seed=ctx.seed,
                    cascade=s.sanity_cascade,
                    stages=s.sanity_stages,
                ),
            )
            q.stability = self._guarded(
                name,
                q,
                "sensitivity",
                lambda fn=fn, res=res: max_sensitivity(
                    fn,
                    module,
                    self.x[:k],
                    self.target[:k],
                    res.values[:k],
                    radius=s.sensitivity_radius * ctx.span,
                    value_range=ctx.value_range,
                    perturbations=s.sensitivity_perturbations,
                    seed=ctx.seed,
                    batch_size=rows,
                ),
            )
            if n_classes >= 2:
                q.random_logit = self._guarded(
                    name,
                    q,
                    "random_logit_similarity",
                    lambda fn=fn, res=res: random_logit_similarity(
                        fn, self.x, self.target, res.values, n_classes, units=units, seed=ctx.seed
                    ),
                )
            if road_ok:
                q.road = road_curves(
                    module,
                    self.x,
                    self.target,
                    order,
                    counts,
                    span=ctx.span,
                    value_range=ctx.value_range,
                    seed=ctx.seed,
                    batch_size=max(1, rows // 2),  # ROAD's imputed images hold the other half of the budget
                    max_memory=s.max_memory,
                )
            if get_method(name).complete:
                q.completeness_terms = completeness_parts(
                    module, self.x, self.target, res.values, baseline=ctx.low, batch_size=rows
                )
            q.compute_intervals(self.random, seed=ctx.seed, resamples=s.bootstrap_resamples)
            q.seconds = time.perf_counter() - start
            self.quality[name] = q
            self._tick("explain:trust", len(self.results))
        self._flush_warnings()

    def _guarded(self, method: str, q: MethodQuality, metric: str, fn: Any) -> Any:
        """``fn()``, or None with the reason in ``q.notes`` when the model does not allow it (warned once per reason)."""
        try:
            return fn()
        except (AnalysisError, *_METHOD_ERRORS) as err:
            q.notes[metric] = f"could not be computed on this model ({_one_line(err)})"
            self._warn(f"{metric} {q.notes[metric]}", method)
            return None


def explain_shard(bundle: ModelBundle, p: dict[str, Any]) -> dict[str, Any]:
    """One shard of a per-row method (on a worker): its values and extras, as plain tensors, arrays and numbers."""
    with parallel.local():
        res = attribute(p["name"], bundle.module, p["x"], p["target"], p["ctx"])
    return {"values": res.values, "extras": res.extras, "findings": list(res.findings)}


def _merge(parts: list[dict[str, Any]]) -> Attribution:
    """Shards of one method back into one :class:`Attribution` (per-row extras joined, the rest from the first)."""
    extras: dict[str, Any] = {}
    for key, first in parts[0]["extras"].items():
        if isinstance(first, (torch.Tensor, np.ndarray)) and first.ndim >= 1:
            extras[key] = parallel.cat([p["extras"] for p in parts], key)
        elif key == "segments":
            extras[key] = max(p["extras"][key] for p in parts)
        else:
            extras[key] = first
    findings = list(dict.fromkeys(f for p in parts for f in map(tuple, p["findings"])))
    return Attribution(parallel.cat(parts, "values"), extras=extras, findings=findings)


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:200] if text else ''}"
