"""AutoAttack: the standard ensemble of parameter-free attacks, worst case per sample.

Croce and Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble
of diverse parameter-free attacks", ICML, https://arxiv.org/abs/2003.01690. The
robust accuracy the field accepts: a sample counts as robust only if none of

1. APGD-CE (APGD on the cross-entropy, 100 iterations, 1 restart),
2. APGD-T (APGD on the targeted DLR loss, 100 iterations, 9 target classes, 1 restart each),
3. FAB-T (targeted FAB, 100 iterations, 9 target classes, 1 restart each),
4. Square (the black-box Square attack, 5000 queries, ``p_init = 0.8``)

fools it, run in that order, each only on the samples still robust (as the official
``run_standard_evaluation``). Samples misclassified without attack count as broken and
are not attacked. Every adversarial input an attack reports is checked with a forward
pass (label, budget and value range) before it counts.

``version="rand"`` is the authors' version for models that are random at inference
(dropout left on, randomized defences): APGD-CE and APGD-DLR (untargeted), 100 iterations,
each step averaging the gradient over :data:`RAND_EOT` passes (expectation over
transformation), and every sample judged by the majority of several passes
(:class:`~dlaudit.robust.stochastic.MajorityVote`). An APGD iterate that fools the EoT-averaged
logits stops its sample only when the vote agrees; otherwise the sample stays in the attack
(and in the next one), so the vote alone decides and no sample is counted robust at a point
its vote calls fooled. Every pass is keyed by the sample's global index
(:class:`~dlaudit.robust.stochastic.Keyed`), so the numbers do not depend on the batch size
or on how Ray shards the work.

``version="fast"`` is a CI-sized subset: APGD-CE and APGD-T with :data:`FAST_STEPS`
iterations and :data:`FAST_TARGETS` target classes: 100 APGD iterations per robust
sample instead of 1,000, and no FAB-T (900 more) or Square (5,000 queries). It reads
as an upper bound on the standard robust accuracy, not a replacement for it: report
the standard version.

Random starts are drawn per sample from its global index, so the numbers are the same
for any batch size and the same seed gives the same result. (What the attacks cannot
control is the model's own rounding: CPU conv and matmul kernels give logits that differ
by ~1e-6 between batch sizes. That can move a sample's highest-loss point; in the
tests it never changed which samples are broken, but a sample balanced on a decision
boundary to that precision could in principle flip.) FAB-T and Square come from
:mod:`dlaudit.robust.fab` and :mod:`dlaudit.robust.square`; where those modules are not
installed the ensemble runs without them, records them in ``skipped`` and logs a warning
(the result's ``complete`` is then False).
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from ... import parallel
from ...bundle import ModelBundle
from ...errors import ConfigError
from ...utils import ProgressFn, model_state
from ..batching import choose_batch_size
from ..stochastic import VOTE_PASSES, Keyed, MajorityVote, keyed_rows, seeded
from . import speed
from .base import NORMS, AttackMethod, Batch, Perturbed, make_attack, register_attack
from .engine import budget_problem, check_eps, check_inputs, count_classes, resolve_model

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "FAST_ATTACKS",
    "FAST_STEPS",
    "FAST_TARGETS",
    "RAND_ATTACKS",
    "RAND_EOT",
    "STANDARD_ATTACKS",
    "VERSIONS",
    "AutoAttack",
    "AutoAttackResult",
    "attack_batch",
    "autoattack",
    "ensemble",
]

log = logging.getLogger(__name__)

VERSIONS = ("standard", "fast", "rand")
STANDARD_ATTACKS = ("apgd-ce", "apgd-t", "fab-t", "square")
FAST_ATTACKS = ("apgd-ce", "apgd-t")
RAND_ATTACKS = ("apgd-ce", "apgd-dlr")
RAND_EOT = 20
"""EoT passes per APGD step of the ``rand`` version (the official ``eot_iter``)."""
STANDARD_STEPS = 100
STANDARD_TARGETS = 9
SQUARE_QUERIES = 5000
SQUARE_P_INIT = 0.8
FAST_STEPS = 25
"""APGD iterations of the fast version (a quarter of the standard 100)."""
FAST_TARGETS = 3
"""APGD-T target classes of the fast version (the three most likely wrong classes)."""
_TOLERANCE = 1e-5
"""Slack of the budget check on reported adversarial inputs, relative to max(1, eps)."""


@dataclass(frozen=True)
class AutoAttackResult:
    """What :func:`autoattack` found, on the CPU except ``x_adv`` (on the inputs' device).

    Attributes
    ----------
    eps, norm, version, seed
        The settings it ran with.
    attacks
        The ensemble's attacks in the order they ran (skipped ones included).
    clean_correct
        ``(N,)`` bool: classified correctly without attack.
    robust
        ``(N,)`` bool: classified correctly under every attack that ran.
    breaker
        ``(N,)`` int: ``-1`` robust, ``0`` misclassified without attack, ``j >= 1`` first
        broken by ``attacks[j - 1]`` (see :attr:`broken_by`).
    counts
        Samples each attack broke (that no earlier attack had).
    seconds
        Wall-clock seconds of each attack that ran (checks included).
    skipped
        Attack name -> why it did not run.
    rejected
        Attack name -> reported adversarial inputs that failed the check (should be empty).
    x_adv
        ``(N, ...)`` the first fooling input found per sample (the clean input elsewhere),
        when asked for with ``return_adv=True``.
    batch_size
        Inputs per batch.
    """

    eps: float
    norm: str
    version: str
    seed: int
    attacks: tuple[str, ...]
    clean_correct: torch.Tensor = field(repr=False)
    robust: torch.Tensor = field(repr=False)
    breaker: torch.Tensor = field(repr=False)
    counts: dict[str, int]
    seconds: dict[str, float]
    skipped: dict[str, str]
    rejected: dict[str, int]
    x_adv: torch.Tensor | None = field(default=None, repr=False)
    batch_size: int = 0

    @property
    def n(self) -> int:
        return len(self.robust)

    @property
    def clean_accuracy(self) -> float:
        return int(self.clean_correct.sum()) / self.n if self.n else float("nan")

    @property
    def robust_accuracy(self) -> float:
        """Share of samples no attack fooled (and classified correctly without attack)."""
        return int(self.robust.sum()) / self.n if self.n else float("nan")

    @property
    def complete(self) -> bool:
        """Every attack of the ensemble ran (nothing skipped)."""
        return not self.skipped

    @property
    def broken_by(self) -> list[str | None]:
        """Per sample: ``"clean"`` (misclassified without attack), the first attack that fooled it, or None (robust)."""
        stages = ("clean", *self.attacks)
        return [None if b < 0 else stages[b] for b in self.breaker.tolist()]

    def accuracy_after(self) -> dict[str, float]:
        """Robust accuracy after each stage in order (``clean``, then each attack that ran), as pyautoattack logs it."""
        out = {"clean": self.clean_accuracy}
        for j, name in enumerate(self.attacks, start=1):
            if name not in self.skipped and self.n:
                out[name] = int(((self.breaker < 0) | (self.breaker > j)).sum()) / self.n
        return out

    @property
    def metric_name(self) -> str:
        """The report's metric name, e.g. ``robustness.autoattack_linf.acc@0.3`` (``autoattack_fast_...`` for the fast version)."""
        stem = "autoattack" if self.version == "standard" else f"autoattack_{self.version}"
        return f"robustness.{stem}_{self.norm}.acc@{self.eps:g}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no per-sample tensors)."""
        return {
            "metrics": {self.metric_name: self.robust_accuracy},
            "eps": self.eps, "norm": self.norm, "version": self.version, "seed": self.seed, "n": self.n,
            "clean_accuracy": self.clean_accuracy, "robust_accuracy": self.robust_accuracy,
            "attacks": list(self.attacks), "accuracy_after": self.accuracy_after(), "counts": dict(self.counts),
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()}, "skipped": dict(self.skipped),
            "rejected": dict(self.rejected), "complete": self.complete, "batch_size": self.batch_size,
        }  # fmt: skip


# -- the ensemble -----------------------------------------------------------------------------


def ensemble(
    version: str,
    *,
    eps: float,
    norm: str,
    num_classes: int,
    features: tuple[int, ...] | None = None,
    eot: int = RAND_EOT,
) -> list[tuple[str, AttackMethod | None, str | None]]:
    """``(name, attack or None, why skipped)`` for each attack of the version, in order, from the registry;
    each changes only ``features`` (None: all); ``eot`` passes per step in the ``rand`` version."""
    f = {"features": features}
    if version == "rand":
        plan: list[tuple[str, AttackMethod | None, str | None]] = [
            ("apgd-ce", make_attack("apgd-ce", eps, norm=norm, steps=STANDARD_STEPS, restarts=1, eot=eot, vote=VOTE_PASSES, **f), None)
        ]  # fmt: skip
        if num_classes >= 3:
            dlr = make_attack(
                "apgd-dlr", eps, norm=norm, steps=STANDARD_STEPS, restarts=1, eot=eot, vote=VOTE_PASSES, **f
            )
            plan.append(("apgd-dlr", dlr, None))
        else:
            plan.append(("apgd-dlr", None, f"the DLR loss needs at least 3 classes; the model has {num_classes}"))
        return plan
    steps, targets = (STANDARD_STEPS, STANDARD_TARGETS) if version == "standard" else (FAST_STEPS, FAST_TARGETS)
    n_targets = min(targets, num_classes - 1)
    plan = [("apgd-ce", make_attack("apgd-ce", eps, norm=norm, steps=steps, restarts=1, **f), None)]
    if num_classes >= 4:
        plan.append(
            (
                "apgd-t",
                make_attack("apgd-t", eps, norm=norm, steps=steps, restarts=1, n_target_classes=n_targets, **f),
                None,
            )
        )
    else:
        plan.append(("apgd-t", None, f"the targeted DLR loss needs at least 4 classes; the model has {num_classes}"))
    if version == "fast":
        return plan
    plan.append(
        (
            "fab-t",
            make_attack("fab-t", eps, norm=norm, steps=STANDARD_STEPS, restarts=1, n_target_classes=n_targets, **f),
            None,
        )
    )
    plan.append(
        ("square", make_attack("square", eps, norm=norm, queries=SQUARE_QUERIES, p_init=SQUARE_P_INIT, **f), None)
    )
    return plan


def _verified(
    module: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    adv: torch.Tensor,
    claimed: torch.Tensor,
    *,
    eps: float,
    norm: str,
    value_range: tuple[float, float],
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Which claimed successes really are: misclassified, within ``eps``, inside the value range
    and (with ``mask``) unchanged outside the features the attacks may change."""
    lo, hi = value_range
    tol = _TOLERANCE * max(1.0, eps)
    delta = (adv - x).flatten(1)
    size = delta.abs().amax(dim=1) if norm == "linf" else delta.norm(dim=1)
    flat = adv.flatten(1)
    inside = (size <= eps + tol) & (flat.amin(dim=1) >= lo - tol) & (flat.amax(dim=1) <= hi + tol)
    if mask is not None:
        inside &= (delta[:, ~mask.flatten()] == 0).all(dim=1)
    with torch.no_grad():
        fooled = module(adv).argmax(dim=1) != y
    return claimed & fooled & inside


def autoattack(
    model: nn.Module | ModelBundle,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    norm: str = "linf",
    version: str = "standard",
    value_range: tuple[float, float] | None = None,
    seed: int = 0,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    progress: ProgressFn | None = None,
    return_adv: bool = False,
    index: torch.Tensor | None = None,
    features: tuple[int, ...] | None = None,
    eot: int = RAND_EOT,
) -> AutoAttackResult:
    """Robust accuracy under AutoAttack: APGD-CE, APGD-T, FAB-T and Square, worst case per sample.

    Croce and Hein 2020, https://arxiv.org/abs/2003.01690. Distance: L-inf or L2.

    Parameters
    ----------
    model
        ``nn.Module`` returning logits ``(N, classes)``, or a :class:`~dlaudit.ModelBundle`
        (its card gives the value range and the device). Left as found.
    x
        Inputs ``(N, ...)`` in the value range.
    y
        True labels ``(N,)``.
    eps
        Budget in input units, ``>= 0``.
    norm
        ``"linf"`` or ``"l2"``.
    version
        ``"standard"`` (the four attacks with the official settings) or ``"fast"``
        (APGD-CE and APGD-T, :data:`FAST_STEPS` iterations, :data:`FAST_TARGETS` targets;
        for CI, an upper bound on the standard figure), or ``"rand"`` for a model random at
        inference (APGD-CE and APGD-DLR with ``eot`` passes per step, samples judged by the
        majority of several passes).
    value_range
        ``(low, high)`` of valid inputs; default the card's, or ``(0, 1)`` for a module.
    seed
        Seeds every attack's randomness, drawn per sample: any batch size gives the same numbers.
    batch_size
        Inputs per batch; None takes the default, 256 on a CPU, fewer for large activations
        (:func:`~dlaudit.robust.batching.choose_batch_size`).
    device
        Where to run; default the bundle's or the module's.
    progress
        ``progress(stage, done, total)`` after each batch, stage ``autoattack:<attack>``.
    return_adv
        Keep the adversarial inputs in the result.
    index
        The samples' global indices (default ``0..N-1``), which key every random draw:
        attacking a subset gives each sample what attacking everything gives it.
    features
        Flat indices of the input features the attacks may change (default all), e.g. a
        tabular model's numeric columns; a claimed success that changed another is not counted.
    eot
        Passes per APGD step in the ``rand`` version (default :data:`RAND_EOT`, the official 20).

    Returns
    -------
    AutoAttackResult
        Per-sample robust flags, which attack broke each sample, per-attack counts and
        seconds, what was skipped and why.

    Examples
    --------
    >>> result = autoattack(bundle, x, y, eps=0.3)  # doctest: +SKIP
    >>> result.robust_accuracy, result.counts  # doctest: +SKIP
    """
    if norm not in NORMS:
        raise ConfigError(f"unknown norm {norm!r} for AutoAttack; choose from: {', '.join(NORMS)}")
    if version not in VERSIONS:
        raise ConfigError(f"unknown AutoAttack version {version!r}; choose from: {', '.join(VERSIONS)}")
    check_eps(eps)
    if isinstance(eps, torch.Tensor):
        raise ConfigError("AutoAttack takes one eps (a number), not a tensor")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ConfigError(f"batch_size must be an integer of at least 1, got {batch_size!r}")
    module, vr, dev, known = resolve_model(model, value_range, device)
    y = check_inputs(x, y, vr)
    eps = float(eps)
    n = len(x)
    global_index = torch.arange(n) if index is None else torch.as_tensor(index).long().cpu()
    if len(global_index) != n:
        raise ConfigError(f"index has {len(global_index)} entries for {n} inputs")
    names = {"standard": STANDARD_ATTACKS, "fast": FAST_ATTACKS, "rand": RAND_ATTACKS}[version]
    if n == 0:
        empty = torch.zeros(0, dtype=torch.bool)
        return AutoAttackResult(
            eps,
            norm,
            version,
            seed,
            names,
            empty,
            empty.clone(),
            torch.zeros(0, dtype=torch.long),
            {},
            {},
            {},
            {},
            x.clone() if return_adv else None,
            0,
        )
    if (why := budget_problem(eps, norm, vr, tuple(x.shape[1:]))) is not None:
        log.warning("AutoAttack at eps %g: %s", eps, why)
    ex = parallel.current()
    if ex.shards_work and isinstance(model, ModelBundle):
        with model_state(module, train=False, grad=False):
            count_classes(module, x, y, dev, known)
            bs = batch_size or choose_batch_size(module, x, dev)
        if ranges := parallel.plan_shards(n, align=bs, executor=ex):
            return _sharded(
                model, x, y, global_index, ranges, eps, norm, version, seed, bs, return_adv, progress, features, eot
            )
    rand = version == "rand"
    with (
        model_state(module, train=False, grad=False),
        speed.layout(module, x),
        seeded(seed, dev) if rand else contextlib.nullcontext(),
    ):
        k = count_classes(module, x, y, dev, known)
        bs = batch_size or choose_batch_size(module, x, dev)
        plan = ensemble(version, eps=eps, norm=norm, num_classes=k, features=features, eot=eot)
        attacked = Keyed(module, seed) if rand else module  # rand: each sample's passes keyed by its index
        judge = MajorityVote(attacked) if rand else module
        skipped = {name: why or "not available" for name, attack, why in plan if attack is None}
        for name, why in skipped.items():
            log.warning(
                "AutoAttack: %s skipped (%s); the robust accuracy is an upper bound on the full ensemble's", name, why
            )
        clean_ok = _clean_correct(judge, x, y, dev, bs, global_index)
        robust = clean_ok.clone()
        breaker = torch.where(clean_ok, -1, 0).long()
        x_adv = x.detach().clone() if return_adv else None
        counts = {name: 0 for name, attack, _ in plan if attack is not None}
        seconds = dict.fromkeys(counts, 0.0)
        rejected: dict[str, int] = {}
        todo = clean_ok.nonzero().flatten()
        for s in range(0, len(todo), bs):
            idx = todo[s : s + bs]
            adv, code, stats = attack_batch(
                attacked,
                x[idx].to(dev),
                y[idx].to(dev),
                plan,
                index=global_index[idx],
                seed=seed,
                value_range=vr,
                num_classes=k,
                judge=judge,
            )
            hit = code > 0
            robust[idx[hit]] = False
            breaker[idx[hit]] = code[hit]
            if x_adv is not None:
                x_adv[idx[hit]] = adv[hit.to(adv.device)].to(x_adv.device, x_adv.dtype)
            for name, (broke, bad, sec) in stats.items():
                counts[name] += broke
                seconds[name] += sec
                if bad:
                    rejected[name] = rejected.get(name, 0) + bad
            if progress is not None:
                progress("autoattack", min(s + bs, len(todo)), len(todo))
        for name, bad in rejected.items():
            if rand:  # expected: the attack judged its iterates on its own passes, the majority of fresh ones disagreed
                log.info("AutoAttack rand: %s: %d input(s) the majority vote did not confirm; not counted", name, bad)
                continue
            log.warning(
                "AutoAttack: %s reported %d adversarial input(s) that are not (misclassified, within eps %g, in range); not counted",
                name,
                bad,
                eps,
            )
    return AutoAttackResult(
        eps,
        norm,
        version,
        seed,
        tuple(p[0] for p in plan),
        clean_ok,
        robust,
        breaker,
        counts,
        seconds,
        skipped,
        rejected,
        x_adv,
        bs,
    )


def attack_batch(
    module: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    plan: list[tuple[str, AttackMethod | None, str | None]],
    *,
    index: torch.Tensor,
    seed: int,
    value_range: tuple[float, float],
    num_classes: int,
    judge: nn.Module | None = None,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, tuple[int, int, float]]]:
    """The ensemble on one batch of correctly classified samples, each attack on the ones still robust.

    Returns the first fooling input per sample (the input itself where none), the code
    of the attack that found it (``j >= 1`` for ``plan[j - 1]``, ``-1`` robust) and per
    attack ``(broken, rejected, seconds)``. Every claimed success is checked, on ``judge``
    (default ``module``; a :class:`~dlaudit.robust.stochastic.MajorityVote` for a stochastic model).
    """
    judge = module if judge is None else judge
    eps_value = next((a.eps for _, a, _ in plan if a is not None), 0.0)
    norm = next((a.norm for _, a, _ in plan if a is not None), "linf")
    mask = next((a.feature_mask(x) for _, a, _ in plan if a is not None), None)
    adv_all = x.detach().clone()
    code = torch.full((len(x),), -1, dtype=torch.long)
    stats: dict[str, tuple[int, int, float]] = {}
    for j, (name, attack, _) in enumerate(plan, start=1):
        if attack is None:
            continue
        start = time.perf_counter()
        live = (code < 0).nonzero().flatten()
        if len(live) == 0:
            stats[name] = (0, 0, 0.0)
            continue
        xs, ys = x[live], y[live]
        eps_vec = torch.full((len(live),), eps_value, device=x.device, dtype=x.dtype)
        adv, _, claimed = attack.perturb(
            module, xs, ys, eps_vec, index=index[live], seed=seed, value_range=value_range, num_classes=num_classes
        )
        with keyed_rows(index[live.cpu()]):  # a keyed vote: the verdict the attack's own votes saw
            ok = _verified(
                judge, xs, ys, adv, claimed.to(x.device), eps=eps_value, norm=norm, value_range=value_range, mask=mask
            ).cpu()
        got = live[ok]
        code[got] = j
        adv_all[got.to(x.device)] = adv[ok.to(adv.device)].to(adv_all.dtype)
        stats[name] = (len(got), int(claimed.cpu().sum()) - int(ok.sum()), time.perf_counter() - start)
    return adv_all, code, stats


@dataclass(frozen=True)
class AutoAttack(AttackMethod):
    """The AutoAttack ensemble as a registered attack: ``autoattack`` (``version`` standard or fast).

    Per batch, each attack runs on the samples still robust; a sample counts as broken
    when any attack fools it (checked). Randomness is keyed by global index, so running
    the ensemble batch by batch gives what running it over all samples gives.
    """

    version: str = "standard"

    key: ClassVar[str] = "autoattack"
    ensemble: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.version not in VERSIONS:
            raise ConfigError(f"unknown AutoAttack version {self.version!r}; choose from: {', '.join(VERSIONS)}")

    def describe(self) -> str:
        what = {
            "standard": "APGD-CE, APGD-T, FAB-T, Square",
            "fast": f"fast: APGD-CE and APGD-T, {FAST_STEPS} iterations",
            "rand": f"rand: APGD-CE and APGD-DLR, {RAND_EOT} EoT passes, majority of passes",
        }[self.version]
        return f"AutoAttack {self.norm} ({what})"

    def perturb(
        self, module: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: torch.Tensor, **batch: Unpack[Batch]
    ) -> Perturbed:
        plan = ensemble(
            self.version,
            eps=self.batch_eps(eps),
            norm=self.norm,
            num_classes=batch["num_classes"],
            features=self.features,
        )
        if self.version == "rand":
            module = Keyed(module, batch["seed"])
        judge = MajorityVote(module) if self.version == "rand" else module
        with torch.no_grad(), keyed_rows(batch["index"]):
            clean = judge(x).argmax(dim=1) == y
        adv = x.detach().clone()
        success = ~clean
        live = clean.nonzero().flatten()
        if len(live):
            got, code, _ = attack_batch(
                module,
                x[live],
                y[live],
                plan,
                index=batch["index"][live.cpu()],
                seed=batch["seed"],
                value_range=batch["value_range"],
                num_classes=batch["num_classes"],
                judge=judge,
            )
            hit = (code > 0).to(x.device)
            adv[live[hit]] = got[hit]
            success[live[hit]] = True
        if self.version == "rand":  # the engine would judge the adversarial inputs by one pass; the majority does
            with torch.no_grad(), keyed_rows(batch["index"]):
                return adv, judge(adv).argmax(dim=1), success
        return adv, None, success


@register_attack("autoattack")
def make_autoattack(
    eps: float, *, norm: str = "linf", version: str = "standard", features: tuple[int, ...] | None = None
) -> AutoAttack:
    """Standard AutoAttack (or its fast version) at budget ``eps`` (Croce and Hein 2020, arXiv:2003.01690)."""
    return AutoAttack(eps, norm, version=version, features=features)


def _sharded(
    bundle: ModelBundle,
    x: torch.Tensor,
    y: torch.Tensor,
    index: torch.Tensor,
    ranges: list[tuple[int, int]],
    eps: float,
    norm: str,
    version: str,
    seed: int,
    batch_size: int,
    return_adv: bool,
    progress: ProgressFn | None,
    features: tuple[int, ...] | None,
    eot: int = RAND_EOT,
) -> AutoAttackResult:
    """AutoAttack over shards of samples; each sample's fate depends on itself alone, so the result is one run's."""
    outs = parallel.map_samples(
        autoattack_shard,
        bundle,
        ranges,
        lambda a, b: {"x": x[a:b].cpu(), "y": y[a:b].cpu(), "index": index[a:b], "eps": eps, "norm": norm,
                      "version": version, "seed": seed, "batch_size": batch_size, "return_adv": return_adv,
                      "features": features, "eot": eot},
        key=lambda p: ("autoattack", eps, norm, version, seed, batch_size, return_adv, p["x"], p["y"], p["index"], eot,
                       *(() if features is None else (repr(features),))),
        rows=("clean_correct", "robust", "breaker", *(("x_adv",) if return_adv else ())),
        row_shapes={"x_adv": tuple(x.shape[1:])},
        kinds={"attacks": (tuple, list), "skipped": dict, "counts": dict, "seconds": dict, "rejected": dict},
        stage=f"autoattack {norm} eps {eps:g}",
        progress=progress,
    )  # fmt: skip
    attacks = tuple(outs[0]["attacks"])
    names = [a for a in attacks if a not in outs[0]["skipped"]]
    counts = {a: int(sum(int(o["counts"][a]) for o in outs)) for a in names}
    seconds = {a: float(sum(float(o["seconds"][a]) for o in outs)) for a in names}
    rejected = {a: int(sum(int(o["rejected"].get(a, 0)) for o in outs)) for a in names}
    return AutoAttackResult(
        eps,
        norm,
        version,
        seed,
        attacks,
        parallel.cat(outs, "clean_correct"),
        parallel.cat(outs, "robust"),
        parallel.cat(outs, "breaker"),
        counts,
        seconds,
        dict(outs[0]["skipped"]),
        {a: v for a, v in rejected.items() if v},
        parallel.cat(outs, "x_adv").to(x.device) if return_adv else None,
        batch_size,
    )


def autoattack_shard(bundle: ModelBundle, p: dict[str, Any]) -> dict[str, Any]:
    """One shard of :func:`autoattack` (on a worker): tensors, ints, floats and strings back."""
    with parallel.local():
        r = autoattack(
            bundle, p["x"], p["y"], eps=p["eps"], norm=p["norm"], version=p["version"], seed=p["seed"],
            batch_size=p["batch_size"], return_adv=p["return_adv"], index=p["index"], features=p.get("features"),
            eot=p.get("eot", RAND_EOT),
        )  # fmt: skip
    out: dict[str, Any] = {
        "attacks": list(r.attacks), "clean_correct": r.clean_correct, "robust": r.robust, "breaker": r.breaker,
        "counts": dict(r.counts), "seconds": dict(r.seconds), "skipped": dict(r.skipped), "rejected": dict(r.rejected),
    }  # fmt: skip
    if r.x_adv is not None:
        out["x_adv"] = r.x_adv.cpu()
    return out


def _clean_correct(
    module: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device, bs: int, index: torch.Tensor
) -> torch.Tensor:
    out = []
    with torch.no_grad():
        for s in range(0, len(x), bs):
            with keyed_rows(index[s : s + bs]):
                out.append(module(x[s : s + bs].to(device)).argmax(dim=1).cpu() == y[s : s + bs].cpu())
    return torch.cat(out)
