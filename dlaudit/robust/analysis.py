"""The robustness section: attack curves, noise, minimal budgets, masking checks, groups, certificates.

Registered as the ``robustness`` analysis (``dlaudit report --checks robustness``). Its
:class:`Settings` (with the fast profile) are the one place its configuration is defined; its
``scope`` makes the named views: ``dlaudit attack`` is the section restricted to the attacks
asked for (``scope="attacks"``), ``dlaudit certify`` the section restricted to one
certificate (``scope="certify"``). The time estimate is :func:`estimate`.
"""

from __future__ import annotations

import dataclasses
import math
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from ..analysis import Option
from ..bundle import ModelBundle
from ..data import AuditData
from ..data.groups import MIN_GROUP_SIZE, resolve_sensitive
from ..errors import ConfigError
from ..parsing import round_or_none
from ..plan import Budget, Level, competing_load
from ..report.model import Section, Table
from ..stats import wilson_interval
from ..utils import ProgressFn
from .attacks import NORMS, PGD_STEP_RATIO, Attack, AttackMethod, budget_problem, list_attacks, make_attack, run_attack
from .bounds_plot import bounds_figure
from .certified import certified_part
from .certify import CERTIFY_METHODS, CertifyResult, evaluate_certification
from .curves import Curve, clean_predictions, first_breaker, minimal_eps, robustness_curve, worst_case
from .groups import accuracy_by_group
from .masking import (
    MaskingCheck,
    check_black_box,
    check_chance,
    check_gradients,
    check_monotone,
    check_more_effort,
    check_pgd_vs_fgsm,
    masking_findings,
)
from .natural import corruption_part
from .noise import noise_accuracy
from .options import OPTIONS
from .plots import curves_figure, examples_figure
from .shift_part import shift_part
from .stochastic import (
    EOT_ITERATIONS,
    KEY_CHUNK,
    VOTE_PASSES,
    Keyed,
    MajorityVote,
    Stochasticity,
    detect,
    seeded,
    vote_predictions,
)
from .trust import (
    AutoAttackCurve,
    autoattack_curve,
    black_box_evidence,
    degenerate_reason,
    gradient_problems,
    undefine_attack_metrics,
)

__all__ = [
    "Settings",
    "settings",
    "robustness",
    "estimate",
    "SCOPES",
    "sample_data",
    "DEFAULT_EPS",
    "DEFAULT_EPS_L2",
    "DEFAULT_NOISE",
    "ATTACKS",
]

DEFAULT_EPS = (0.0, 0.05, 0.1, 0.2, 0.3)
"""L-inf budgets as fractions of the value range (so 0.1 is 0.1 for [0, 1] inputs)."""
DEFAULT_EPS_L2 = (0.0, 0.5, 1.0, 1.5, 2.0)
"""L2 budgets, in units of the value range's width."""
DEFAULT_NOISE = (0.05, 0.1, 0.2, 0.3)
"""Noise strengths, as fractions of the value range."""
ATTACKS = ("fgsm_linf", "pgd_linf", "pgd_l2")
FEATURES = ("all", "numeric")
SCOPES = ("full", "attacks", "certify")
"""What the section computes: ``full`` (the report's section), ``attacks`` (clean accuracy, the listed
attacks at their budgets and the worst case over them: ``dlaudit attack``) or ``certify`` (one
certificate, smoothing or bounds, on every sampled input: ``dlaudit certify``)."""
DEFAULT_RADII = (0.0, 0.25, 0.5, 1.0)
"""Randomized smoothing's L2 radii in the ``certify`` scope."""
GRADIENT_SAMPLES = 256
"""Correctly classified samples whose input gradient the masking check inspects."""
LARGE_EPS = 0.5
"""The masking check's large L-inf budget, as a fraction of the value range."""


@dataclass(frozen=True)
class Settings:
    """What the robustness analysis runs; every field is a keyword parameter of the analysis.

    Budgets and noise strengths are in input units (the defaults are scaled to the
    card's value range).
    """

    n: int | None = 1000
    """Samples attacked (a seeded random subset); None (or ``"all"`` as a parameter): every one."""
    steps: int = 40
    restarts: int = 1
    alpha: float | None = None
    """PGD's step size (default ``2.5 * eps / steps``)."""
    early_stop: bool = True
    """PGD stops attacking a sample once it is fooled (False: every step on every sample)."""
    attacks: tuple[str, ...] = ATTACKS
    """``<attack>_<norm>``, any registered attack (``fgsm_linf``, ``pgd_l2``, ``apgd-ce_linf``, ``square_linf``, ...)."""
    version: str = "standard"
    """AutoAttack's version where ``attacks`` lists it (``autoattack_linf``): ``standard``, ``fast`` or ``rand``
    (chosen by itself for a model found random at inference)."""
    eps: tuple[float, ...] = DEFAULT_EPS
    eps_l2: tuple[float, ...] = DEFAULT_EPS_L2
    noise: tuple[float, ...] = DEFAULT_NOISE
    min_eps_samples: int = 100
    min_eps_steps: int = 20
    bisection: int = 8
    masking: bool = True
    examples: int = 8
    batch_size: int | None = None
    autoattack: str | None = "standard"
    """AutoAttack at every positive budget of ``autoattack_norms``: ``standard``, ``fast``, ``rand`` or None (off)."""
    autoattack_norms: tuple[str, ...] = ("linf",)
    autoattack_n: int | None = None
    """The full section's AutoAttack on the first this many of the attacked samples only (None: on all); its metrics'
    intervals are then those of this many samples. ``--time-budget`` plans it to buy standard AutoAttack on part of
    the samples where all of them do not fit (samples outside it count, in the worst case, by the other attacks)."""
    certify: str | None = "crown-ibp"
    """Verified accuracy at every positive L-inf budget: ``ibp``, ``crown-ibp``, ``crown`` or None (off)."""
    smoothing: bool = True
    """Randomized smoothing on the first ``smoothing_samples`` inputs (see :mod:`dlaudit.robust.certified`)."""
    smoothing_sigma: float = 0.25
    smoothing_n: int = 10_000
    smoothing_n0: int = 100
    smoothing_alpha: float = 0.001
    smoothing_samples: int = 100
    smoothing_max_flops: float = 1e13
    """Counted forward-pass work (FLOP) smoothing may plan for; the inputs certified follow from it, not from a clock."""
    features: str = "all"
    """Which input features the attacks may change: ``all``, or ``numeric`` (a tabular model's
    numeric columns; its one-hot categories keep their values)."""
    scope: str = "full"
    """See :data:`SCOPES`."""
    radii: tuple[float, ...] = DEFAULT_RADII
    """Smoothing's L2 radii in the ``certify`` scope (the full section certifies at its ``eps_l2``)."""
    corruptions: bool = True
    """The 15 common corruptions at severities 1-5 on the attacked images (image models; see
    :mod:`dlaudit.robust.natural`)."""
    shift: bool = True
    """Tabular distribution shift (noise, missing values, flipped categories, covariate shift) on the attacked
    samples, for tabular models with an encoder on their card (see :mod:`dlaudit.robust.shift`)."""

    FAST: ClassVar[dict[str, Any]] = {
        "n": 200,
        "steps": 10,
        "min_eps_samples": 40,
        "min_eps_steps": 10,
        "bisection": 6,
        "autoattack": "fast",
        "version": "fast",
        "certify": "ibp",
        "smoothing_n": 1000,
        "smoothing_samples": 20,
        "smoothing_max_flops": 1e12,
    }
    """The fast profile (``fast=True``): what it changes; explicit parameters win over it."""
    FAST_SCOPE: ClassVar[dict[str, dict[str, Any]]] = {"certify": {"n": 50}}
    """What the fast profile changes besides :attr:`FAST` in a scope: ``certify`` certifies at most 50 inputs."""
    SCOPE_DEFAULTS: ClassVar[dict[str, dict[str, Any]]] = {
        "attacks": {"n": None},
        "certify": {"n": None, "smoothing_n": 100_000},
    }
    """Defaults that differ in a scope: the views attack (certify) every sample unless told otherwise, and
    ``dlaudit certify`` estimates smoothing's ``p_A`` from 100,000 noise samples (Cohen et al.'s setting)."""

    OPTIONS: ClassVar[tuple[Option, ...]] = OPTIONS
    """Its command-line options (``dlaudit attack``, ``certify``, ``report``), declared in :mod:`dlaudit.robust.options`."""

    @classmethod
    def build(cls, bundle: ModelBundle, *, fast: bool = False, **params: Any) -> Settings:
        """The settings for ``params`` on ``bundle``, validated against it (a :class:`ConfigError` names what is wrong)."""
        s = settings(fast, bundle.card.value_range, **params)
        attack_features(bundle, s.features)
        if s.scope == "attacks":
            _check_budgets(s, bundle.card.value_range, tuple(bundle.card.input_shape))
        return s


def settings(fast: bool, value_range: tuple[float, float], **params: Any) -> Settings:
    """Defaults (cheaper with ``fast``) overridden by ``params``; unknown names are an error."""
    known = {f.name for f in dataclasses.fields(Settings)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ConfigError(f"unknown robustness parameter(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
    width = value_range[1] - value_range[0]
    base: dict[str, Any] = {
        "eps": tuple(e * width for e in DEFAULT_EPS),
        "eps_l2": tuple(e * width for e in DEFAULT_EPS_L2),
        "noise": tuple(s * width for s in DEFAULT_NOISE),
        "smoothing_sigma": 0.25 * width,
    }
    scope = str(params.get("scope") or "full")
    base.update(Settings.SCOPE_DEFAULTS.get(scope, {}))
    if fast:
        base.update(Settings.FAST)
        base.update(Settings.FAST_SCOPE.get(scope, {}))
    for key, value in params.items():
        if value is None:
            continue
        tuples = ("attacks", "eps", "eps_l2", "noise", "autoattack_norms", "radii")
        base[key] = _as_tuple(key, value) if key in tuples else value
    for key in ("autoattack", "certify"):  # given as "off" etc.: off; not given: the default stays
        if key in base and str(base[key]).lower() in ("none", "off", "false", ""):
            base[key] = None
    if str(base.get("n")).lower() == "all":
        base["n"] = None
    s = Settings(**base)
    _validate(s)
    return s


def _as_tuple(key: str, value: Any) -> tuple:
    items = value.split(",") if isinstance(value, str) else list(value) if isinstance(value, Sequence) else [value]
    if key in ("attacks", "autoattack_norms"):
        return tuple(str(v).strip() for v in items if str(v).strip())
    try:
        return tuple(float(v) for v in items)
    except (TypeError, ValueError):
        raise ConfigError(f"robustness parameter {key} must be numbers, got {value!r}") from None


def _split_attack(name: str) -> tuple[str, str]:
    """``apgd-ce_linf`` as ``("apgd-ce", "linf")``."""
    method, _, norm = name.rpartition("_")
    return method, norm


def _validate(s: Settings) -> None:
    if s.scope not in SCOPES:
        raise ConfigError(f"robustness parameter scope must be one of {', '.join(SCOPES)}, got {s.scope!r}")
    known = list_attacks()
    bad = [a for a in s.attacks if _split_attack(a)[0] not in known or _split_attack(a)[1] not in NORMS]
    if bad:
        raise ConfigError(
            f"unknown attack(s) {', '.join(bad)}; give ATTACK_NORM with an attack from {', '.join(known)} "
            f"and a norm from {', '.join(NORMS)} (e.g. pgd_linf, apgd-ce_l2)"
        )
    if s.autoattack and s.scope == "full" and any(_split_attack(a)[0] == "autoattack" for a in s.attacks):
        raise ConfigError(
            "the full robustness section runs AutoAttack itself (autoattack=standard or fast); do not list it in attacks"
        )
    if s.version not in ("standard", "fast", "rand"):
        raise ConfigError(f"AutoAttack's version must be standard, fast or rand, got {s.version!r}")
    for name in s.attacks:  # each attack checks its own settings (PGD's steps and alpha, ...)
        _attack_for(name, s, None)
    for key in ("eps", "eps_l2", "noise", "radii"):
        values = getattr(s, key)
        if any(not (math.isfinite(v) and v >= 0) for v in values):
            raise ConfigError(f"robustness parameter {key} must be numbers >= 0, got {values}")
    for key in ("n", "steps", "restarts", "min_eps_steps", "autoattack_n"):
        value = getattr(s, key)
        if value is not None and (isinstance(value, bool) or int(value) < 1):
            raise ConfigError(f"robustness parameter {key} must be at least 1, got {value}")
    if s.bisection < 0 or s.min_eps_samples < 0 or s.examples < 0:
        raise ConfigError("robustness parameters bisection, min_eps_samples and examples must be >= 0")
    if s.features not in FEATURES:
        raise ConfigError(f"robustness parameter features must be one of {', '.join(FEATURES)}, got {s.features!r}")
    if s.autoattack is not None and s.autoattack not in ("standard", "fast", "rand"):
        raise ConfigError(f"robustness parameter autoattack must be standard, fast, rand or none, got {s.autoattack!r}")
    if s.scope == "certify" and s.certify not in CERTIFY_METHODS:
        raise ConfigError(f"the certify scope needs certify= one of {', '.join(CERTIFY_METHODS)}, got {s.certify!r}")
    if s.scope != "certify" and s.certify is not None and s.certify not in ("ibp", "crown-ibp", "crown"):
        raise ConfigError(f"robustness parameter certify must be ibp, crown-ibp, crown or none, got {s.certify!r}")
    if not s.smoothing_sigma > 0:
        raise ConfigError(f"smoothing's noise sigma must be > 0, got {s.smoothing_sigma!r}")
    for key, what in (
        ("smoothing_n", "n (noise samples that estimate p_A)"),
        ("smoothing_n0", "n0 (noise samples that select the class)"),
    ):
        if isinstance(getattr(s, key), bool) or int(getattr(s, key)) < 1:
            raise ConfigError(f"smoothing's {what} must be at least 1, got {getattr(s, key)!r}")
    if not 0 < s.smoothing_alpha < 1:
        raise ConfigError(
            f"smoothing's alpha (the chance a certificate fails) must be in (0, 1), got {s.smoothing_alpha!r}"
        )
    bad_norms = [v for v in s.autoattack_norms if v not in ("linf", "l2")]
    if bad_norms:
        raise ConfigError(f"robustness parameter autoattack_norms must be linf and/or l2, got {', '.join(bad_norms)}")


def _check_budgets(s: Settings, value_range: tuple[float, float], shape: tuple[int, ...]) -> None:
    """The attacks scope refuses budgets beyond the input box (the full section warns about them instead)."""
    lo, hi = value_range
    width, dims = hi - lo, math.prod(shape)
    norms = {_split_attack(a)[1] for a in s.attacks}
    if "linf" in norms and any(e > width for e in s.eps):
        raise ConfigError(
            f"L-inf budget(s) {', '.join(f'{e:g}' for e in s.eps if e > width)} exceed the value range [{lo:g}, {hi:g}]; "
            f"give eps from 0 to {width:g} (e.g. 0.1 for 8-bit images scaled to [0, 1])"
        )
    if "l2" in norms and any(e > width * math.sqrt(dims) for e in s.eps_l2):
        raise ConfigError(
            f"L2 budget(s) {', '.join(f'{e:g}' for e in s.eps_l2 if e > width * math.sqrt(dims))} exceed the diameter of the "
            f"input box ({width * math.sqrt(dims):.3g}); give smaller --eps-l2 values"
        )


def middle_eps(eps: Sequence[float]) -> float | None:
    """The budget the section's summary, examples and effort checks use: the middle positive one (lower middle of an even count)."""
    positive = sorted(e for e in eps if e > 0)
    return positive[(len(positive) - 1) // 2] if positive else None


def _attack_for(name: str, s: Settings, features: tuple[int, ...] | None) -> AttackMethod:
    """The attack ``<key>_<norm>`` with the settings that apply to it (PGD's steps, AutoAttack's version)."""
    method, norm = _split_attack(name)
    options: dict[str, Any] = {}
    if method == "pgd":
        options = {"steps": s.steps, "alpha": s.alpha, "restarts": s.restarts, "early_stop": s.early_stop}
    elif method == "autoattack":
        options = {"version": s.version}
    return make_attack(method, 1.0, norm=norm, features=features, **options)


def attack_features(bundle: ModelBundle, which: str) -> tuple[int, ...] | None:
    """The flat input indices the attacks may change: None for ``all``; for ``numeric``, a tabular
    model's numeric columns (from the encoder on its card)."""
    if which == "all":
        return None
    numeric = bundle.card.kind.numeric_features(bundle.card.encoder)
    if numeric is None:
        raise ConfigError(
            "features=numeric needs a tabular model whose card has its encoder (one trained by dlaudit on csv, adult or german data); "
            "use features=all for this model"
        )
    if not numeric:
        raise ConfigError("features=numeric: the model's encoder has no numeric columns to attack; use features=all")
    return numeric


def _metric_name(curve: str, eps: float) -> str:
    return f"robustness.{curve}.acc@{eps:g}"


def sample_data(data: AuditData, n: int | None, seed: int) -> AuditData:
    """A seeded random subset of ``n`` samples (in their original order), or all of them."""
    if n is None or n >= len(data):
        return data
    if n < 1:
        raise ConfigError(f"n (samples to attack) must be at least 1, got {n}")
    idx = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n].sort().values
    return data.subset(idx)


def robustness(
    bundle: ModelBundle,
    data: AuditData,
    *,
    seed: int = 0,
    fast: bool = False,
    progress: ProgressFn | None = None,
    **params: Any,
) -> Section:
    """Robust accuracy under FGSM and PGD (L-inf, L2) at several budgets, accuracy under
    random noise, the median minimal adversarial budget, gradient-masking checks, and
    robust accuracy per group of each sensitive feature.

    FGSM: Goodfellow et al. 2015, arXiv:1412.6572. PGD: Madry et al. 2018, arXiv:1706.06083.
    Masking checks: Athalye et al. 2018, arXiv:1802.00420; Carlini et al. 2019, arXiv:1902.06705.
    """
    s = Settings.build(bundle, fast=fast, **params)
    sample = sample_data(data, s.n, seed)
    if s.scope == "certify":
        return _certify_section(bundle, sample, s, seed=seed, fast=fast, progress=progress)
    stochastic = detect(bundle.module, sample.x, seed=seed) if bundle.card.kind.continuous else None
    if stochastic is None:
        return _robustness(bundle, data, sample, s, seed=seed, fast=fast, progress=progress)
    s = dataclasses.replace(s, autoattack="rand" if s.autoattack else None, version="rand")
    with seeded(seed, bundle.device):
        sec = _robustness(bundle, data, sample, s, seed=seed, fast=fast, progress=progress, stochastic=stochastic)
    return sec


def _stochastic_finding(sec: Section, stochastic: Stochasticity) -> None:
    """Why a stochastic model is evaluated with EoT and majority votes, and what that costs in repeatability."""
    sec.add_finding(
        "warning",
        f"the model is random at inference: {stochastic.reason()}. A stochastic model attacked and judged on one "
        "pass looks more robust than it is, so AutoAttack runs its rand version (APGD-CE and APGD-DLR, "
        f"{EOT_ITERATIONS} passes of expectation over transformation per step) and every accuracy here counts a "
        f"sample as correct when the majority of {VOTE_PASSES} passes classify it correctly; FGSM and PGD curves "
        "are single-pass gradients (weaker; PGD runs every step, without early stopping, since a stopping decision "
        "on one random pass says little): trust the AutoAttack figure. The clean accuracy, AutoAttack, the FGSM and "
        "PGD curves, the minimal budget, noise and corruptions key each sample's random passes by the sample, so "
        "the same seed gives the same numbers for any batch size or number of Ray workers; the other attacks "
        "(Square, FAB) and the masking checks draw from torch's global generator seeded from the audit's seed "
        "(the same seed, plan and batch size give the same numbers there)",
        evidence=f"max logit difference {stochastic.max_difference:.3g} on {stochastic.differing} of {stochastic.tried} inputs",
        check="stochastic-model",
    )


def _robustness(
    bundle: ModelBundle,
    data: AuditData,
    sample: AuditData,
    s: Settings,
    *,
    seed: int,
    fast: bool,
    progress: ProgressFn | None,
    stochastic: Stochasticity | None = None,
) -> Section:
    """The full and ``attacks`` scopes on ``sample`` (a stochastic model: majority votes, AutoAttack rand)."""
    feats = attack_features(bundle, s.features)
    x, y = sample.x, sample.y
    n = len(y)
    if stochastic is None:
        clean_pred = clean_predictions(bundle, x)
    else:
        clean_pred = vote_predictions(bundle.module, x, seed=seed)
    clean_ok = clean_pred == y
    clean = int(clean_ok.sum()) / n
    chance = float(torch.bincount(y, minlength=bundle.card.num_classes).max()) / n

    sec = Section(name="robustness", title="Robustness")
    if stochastic is not None:
        _stochastic_finding(sec, stochastic)
    sec.add_metric(
        "robustness.clean_acc",
        clean,
        ci=wilson_interval(int(clean_ok.sum()), n),
        description=f"accuracy without attack on the {n} samples attacked",
        higher_is_better=True,
    )
    curves = _attack_curves(bundle, x, y, clean_pred, s, seed, sec, progress, feats, keyed=stochastic is not None)
    if s.scope == "attacks":
        return _attacks_only(
            sec,
            bundle,
            data,
            curves,
            s,
            x=x,
            y=y,
            clean_pred=clean_pred,
            clean=clean,
            chance=chance,
            seed=seed,
            fast=fast,
        )

    aa_runs = _autoattack(bundle, x, y, clean_ok, s, seed, sec, curves, progress, feats)
    worst = _worst_cases(sec, curves, n)

    # a stochastic model: forward-only parts judged by a keyed majority vote (same numbers for any batch size)
    judge = MajorityVote(Keyed(bundle.module, seed)) if stochastic is not None else None
    noise = (
        {
            kind: noise_accuracy(
                bundle if judge is None else judge,
                x,
                y,
                kind=kind,
                strengths=s.noise,
                seed=seed,
                progress=progress,
                modality=bundle.card.kind,
                value_range=bundle.card.value_range,
                device=bundle.device,
            )  # fmt: skip
            for kind in ("gaussian", "uniform")
        }
        if s.noise
        else {}
    )
    for kind, accs in noise.items():
        stem = "robustness.noise" if kind == "gaussian" else "robustness.noise_uniform"
        for strength, a in accs.items():
            what = (
                f"Gaussian noise of standard deviation {strength:g}"
                if kind == "gaussian"
                else f"uniform noise in [-{strength:g}, {strength:g}]"
            )
            sec.add_metric(
                f"{stem}.acc@{strength:g}",
                a,
                ci=wilson_interval(round(a * n), n),
                description=f"accuracy under {what}",
                higher_is_better=True,
            )

    min_eps_row = _min_eps(bundle, x, y, clean_ok, s, seed, sec, progress, keyed=stochastic is not None)
    checks = _masking_checks(bundle, x, y, clean_pred, curves, s, seed, chance, progress, aa_runs) if s.masking else []
    sec.add_metric(
        "robustness.masking.violations",
        sum(1 for c in checks if c.passed is False) if checks else None,
        description="gradient-masking checks that failed",
        higher_is_better=False,
        note="" if checks else "masking checks were switched off",
    )
    sec.findings.extend(masking_findings(checks))
    _trust(sec, bundle, clean_pred, y, curves, checks)
    _groups(sample, curves.get("pgd_linf"), clean_ok, sec)

    _tables(sec, curves, noise, checks, min_eps_row, n)
    _trust_tables(sec, curves, worst, aa_runs, n)
    bounds = (
        certified_part(
            sec, bundle, x, y, worst.get("linf"), eps=s.eps, method=s.certify, seed=seed, progress=progress,
            smoothing={"sigma": s.smoothing_sigma, "n": s.smoothing_n, "n0": s.smoothing_n0, "alpha": s.smoothing_alpha,
                       "samples": s.smoothing_samples, "max_flops": s.smoothing_max_flops} if s.smoothing else None,
        )
        if s.certify
        else None
    )  # fmt: skip
    sec.figures.append(
        curves_figure(
            list(curves.values()), clean=clean, chance=1 / bundle.card.num_classes, majority=chance, noise=noise or None
        )
    )
    if bounds is not None and (fig := bounds_figure(bounds, clean=clean)) is not None:
        sec.figures.append(fig)
    if bundle.card.kind.spatial and s.examples and "pgd_linf" in curves:
        fig = _examples(bundle, x, y, clean_pred, curves["pgd_linf"], s, seed)
        if fig is not None:
            sec.figures.append(fig)
    _headline(sec, bundle, curves, worst, clean, n, data, s.features)
    sec.params = _params(s, data, n, curves, fast=fast, seed=seed)
    if s.corruptions and bundle.card.kind.spatial and x.dim() == 4:
        corruption_part(sec, bundle, x, y, seed=seed, batch_size=s.batch_size, progress=progress, judge=judge)
    if s.shift and bundle.card.kind.columns and bundle.card.encoder:
        shift_part(sec, bundle, x, y, bundle.card.encoder, seed=seed)
    return sec


def _attack_curves(
    bundle: ModelBundle,
    x: torch.Tensor,
    y: torch.Tensor,
    clean_pred: torch.Tensor,
    s: Settings,
    seed: int,
    sec: Section,
    progress: ProgressFn | None,
    features: tuple[int, ...] | None,
    *,
    keyed: bool = False,
) -> dict[str, Curve]:
    """Accuracy under each attack of ``s.attacks`` at each budget of its norm, as metrics of ``sec`` (by curve name).

    The one code path of every attack metric: the report's section and ``dlaudit attack`` both come here.
    AutoAttack listed as an attack carries survivors from budget to budget (see :func:`robustness_curve`).
    ``keyed`` (a stochastic model): FGSM and PGD key each sample's passes by the sample (:class:`Attack`'s ``keyed``).
    """
    n = len(y)
    curves: dict[str, Curve] = {}
    for name in s.attacks:
        attack = _attack_for(name, s, features)
        if keyed and isinstance(attack, Attack):
            attack = dataclasses.replace(attack, keyed=True)
        if (why := attack.applies_to(bundle.card.kind)) is not None:
            sec.add_finding("info", f"{name} was not run: {why}", check="attack-skipped")
            continue
        norm = attack.norm
        curve = robustness_curve(
            bundle,
            x,
            y,
            attack,
            s.eps if norm == "linf" else s.eps_l2,
            clean_pred=clean_pred,
            seed=seed,
            batch_size=s.batch_size,
            progress=progress,
            carry=attack.ensemble,
        )
        curves[curve.name] = curve
        for e, a in zip(curve.eps, curve.accuracy):
            sec.add_metric(
                _metric_name(curve.name, e),
                a,
                ci=wilson_interval(round(a * n), n),
                description=f"accuracy under {curve.description} at eps {e:g}",
                higher_is_better=True,
            )
            if (why := budget_problem(e, norm, bundle.card.value_range, tuple(x.shape[1:]))) is not None:
                sec.add_finding("warning", f"{curve.name} at eps {e:g} was computed, but {why}", check="eps-range")
    return curves


def _attacks_only(
    sec: Section,
    bundle: ModelBundle,
    data: AuditData,
    curves: dict[str, Curve],
    s: Settings,
    *,
    x: torch.Tensor,
    y: torch.Tensor,
    clean_pred: torch.Tensor,
    clean: float,
    chance: float,
    seed: int,
    fast: bool,
) -> Section:
    """The ``attacks`` scope (``dlaudit attack``): the worst case where several attacks ran on a norm, the cheap
    consistency checks (input gradients finite and non-zero, accuracy falls with eps, PGD at least as strong as
    FGSM), the report's honesty rules (a degenerate model or masked gradients blank the attack metrics, with a
    failing finding), the table, the figure."""
    n = len(y)
    worst = _worst_cases(sec, curves, n, at_least=2)
    ok = (clean_pred == y).nonzero().flatten()[:GRADIENT_SAMPLES]
    checks = [check_gradients(*gradient_problems(bundle, x[ok], y[ok]))]
    checks.extend(check_monotone(c, n) for c in curves.values())
    for norm in NORMS:
        if f"fgsm_{norm}" in curves and f"pgd_{norm}" in curves:
            checks.append(check_pgd_vs_fgsm(curves[f"fgsm_{norm}"], curves[f"pgd_{norm}"], n))
    sec.findings.extend(masking_findings(checks))
    _trust(sec, bundle, clean_pred, y, curves, checks)
    shown = {**curves, **{w.name: w for w in worst.values()}}
    sec.params = _params(s, data, n, curves, fast=fast, seed=seed)
    p = sec.params
    methods = {_split_attack(a)[0] for a in s.attacks}
    detail = (
        " "
        + (f"PGD-{s.steps} alpha {p['alpha']}, " if "pgd" in methods else "")
        + (f"AutoAttack {s.version}, " if "autoattack" in methods else "")
        + f"batch size {p['batch_size']} ({p['batch_size_chosen_by']})"
        + (" (--fast)" if fast else "")
        + "."
    )
    _tables(sec, shown, {}, checks, [], n, where=f" of {data.name} ({data.split})", detail=detail)
    if curves:
        sec.figures.append(
            curves_figure(list(curves.values()), clean=clean, chance=1 / bundle.card.num_classes, majority=chance)
        )
    _headline(sec, bundle, curves, worst, clean, n, data, s.features)
    return sec


def _certify_section(
    bundle: ModelBundle, sample: AuditData, s: Settings, *, seed: int, fast: bool, progress: ProgressFn | None
) -> Section:
    """The ``certify`` scope (``dlaudit certify``): one certificate on every sampled input.

    Randomized smoothing (Cohen et al. 2019, arXiv:1902.02918) at the L2 ``radii``, or verified accuracy
    (IBP, CROWN-IBP, CROWN) at the L-inf ``eps``: see :func:`dlaudit.robust.certify.evaluate_certification`.
    """
    method = s.certify or "smoothing"
    res: CertifyResult = evaluate_certification(
        bundle, sample.x, sample.y, method=method, sigma=s.smoothing_sigma, radii=tuple(s.radii), eps=tuple(s.eps),
        n0=s.smoothing_n0, n=s.smoothing_n, alpha=s.smoothing_alpha, batch_size=s.batch_size, seed=seed,
        progress=progress,
    )  # fmt: skip
    n = len(sample)
    sec = Section(name="robustness", title="Robustness")
    p = {**res.params, "data": sample.name, "split": sample.split, "fast": fast, "scope": s.scope}
    sec.params = p
    for name, value in res.metrics.items():
        if name.endswith("abstain_rate"):
            sec.add_metric(
                name,
                value,
                description="share of inputs on which the smoothed classifier abstains",
                higher_is_better=False,
            )
            continue
        sec.add_metric(
            name,
            value,
            ci=wilson_interval(round(value * n), n) if value is not None and n else None,
            description=f"certified accuracy ({PAPERS_BY_METHOD.get(method, method)}) at {name.rsplit('@', 1)[-1]}",
            higher_is_better=True,
        )
    if method == "smoothing":
        abstain = res.metrics["robustness.smoothing_l2.abstain_rate"]
        caption = (
            f"{p['inputs']} inputs of {sample.name} ({sample.split}), sigma {p['sigma']:g}, n0 {p['n0']}, n {p['n']:,}, "
            f"alpha {p['alpha']:g}; abstained on {abstain:.1%}; {p['seconds_per_input']:.3f} s per input"
        )
        table = Table(
            "Randomized smoothing (L2)",
            ["L2 radius", "certified accuracy"],
            [[r["radius"], round_or_none(r["certified_accuracy"])] for r in res.rows],
            caption=caption,
        )
        sec.summary = (
            f"Randomized smoothing (sigma {p['sigma']:g}) certifies "
            + ", ".join(f"{r['certified_accuracy']:.1%} at L2 radius {r['radius']:g}" for r in res.rows)
            + f" of {n} inputs."
        )
    else:
        table = Table(
            f"Verified accuracy ({method})",
            ["eps", "verified accuracy", "seconds"],
            [[r["eps"], round_or_none(r["verified_accuracy"]), r["seconds"]] for r in res.rows],
            caption=f"{p['inputs']} inputs of {sample.name} ({sample.split}); {res.seconds:.1f} s; {p['paper']}.",
        )
        sec.summary = (
            f"{method} proves "
            + ", ".join(f"{r['verified_accuracy']:.1%} robust at L-inf eps {r['eps']:g}" for r in res.rows)
            + f" of {n} inputs."
        )
    sec.tables.append(table)
    return sec


PAPERS_BY_METHOD = {"smoothing": "randomized smoothing, Cohen et al. 2019"}
"""How the certify scope's metric descriptions name a method (the bounds name themselves)."""


def _params(s: Settings, data: AuditData, n: int, curves: dict[str, Curve], *, fast: bool, seed: int) -> dict[str, Any]:
    """The section's settings as its ``params`` (what ran, on what)."""
    bs = next((c.batch_size for c in curves.values() if c.batch_size), s.batch_size)
    return {
        "n": n,
        "data": data.name,
        "split": data.split,
        "fast": fast,
        "seed": seed,
        "scope": s.scope,
        "steps": s.steps,
        "restarts": s.restarts,
        "alpha": f"{PGD_STEP_RATIO:g} * eps / steps" if s.alpha is None else s.alpha,
        "random_start": True,
        "early_stop": s.early_stop,
        "version": s.version,
        "attacks": list(s.attacks),
        "eps": list(s.eps),
        "eps_l2": list(s.eps_l2),
        "noise": list(s.noise),
        "min_eps_samples": s.min_eps_samples,
        "min_eps_steps": s.min_eps_steps,
        "bisection": s.bisection,
        "batch_size": bs,
        "batch_size_chosen_by": "explicit" if s.batch_size else "default (see dlaudit.robust.batching)",
        "autoattack": s.autoattack or "off",
        "certify": s.certify or "off",
        "autoattack_norms": list(s.autoattack_norms) if s.autoattack else [],
        "features": s.features,
    } | ({"autoattack_n": min(s.autoattack_n, n)} if s.autoattack and s.autoattack_n is not None else {})


def _autoattack(
    bundle: ModelBundle,
    x: torch.Tensor,
    y: torch.Tensor,
    clean_ok: torch.Tensor,
    s: Settings,
    seed: int,
    sec: Section,
    curves: dict[str, Curve],
    progress: ProgressFn | None,
    features: tuple[int, ...] | None,
) -> dict[str, AutoAttackCurve]:
    """AutoAttack at every budget of each of ``s.autoattack_norms`` (Croce and Hein 2020, arXiv:2003.01690)."""
    runs: dict[str, AutoAttackCurve] = {}
    if not s.autoattack:
        return runs
    total = len(y)
    n = min(s.autoattack_n, total) if s.autoattack_n is not None else total  # the first n (a planned count)
    part = f" on the first {n} of the {total} samples" if n < total else ""
    for norm in s.autoattack_norms:
        eps_list = s.eps if norm == "linf" else s.eps_l2
        run = autoattack_curve(
            bundle,
            x[:n],
            y[:n],
            clean_ok[:n],
            eps_list,
            norm=norm,
            version=s.autoattack,
            seed=seed,
            batch_size=s.batch_size,
            progress=progress,
            features=features,
        )
        runs[norm] = run
        curves[run.curve.name] = _padded(run.curve, total)
        for e, a in zip(run.curve.eps, run.curve.accuracy):
            res = run.results.get(e)
            detail = (
                "" if res is None else "; broken per attack: " + ", ".join(f"{k} {v}" for k, v in res.counts.items())
            )
            sec.add_metric(
                _metric_name(run.curve.name, e),
                a,
                ci=wilson_interval(round(a * n), n),
                description=f"accuracy under {run.curve.description} at eps {e:g}{part}{detail}",
                higher_is_better=True,
            )
    return runs


def _padded(curve: Curve, total: int) -> Curve:
    """``curve`` (run on the first samples) with the samples it did not attack counted as not fooled by it, so the
    per-sample worst case over the attacks takes them from the other attacks; its accuracy stays its own."""
    short = total - len(curve.correct[0]) if curve.correct else 0
    if short <= 0:
        return curve
    rest = torch.ones(short, dtype=torch.bool)
    return dataclasses.replace(curve, correct=tuple(torch.cat([c, rest]) for c in curve.correct))


def _worst_cases(sec: Section, curves: dict[str, Curve], n: int, *, at_least: int = 1) -> dict[str, Curve]:
    """``robustness.worst_<norm>.acc@E``: per sample, the worst case over every attack that ran (the headline),
    for each norm at least ``at_least`` attacks ran on."""
    out: dict[str, Curve] = {}
    for norm in ("linf", "l2"):
        attacked = [c for c in curves.values() if c.name.endswith(f"_{norm}")]
        if len(attacked) < at_least:
            continue
        worst = worst_case(attacked, n)
        if worst is None:
            continue
        out[norm] = worst
        for e, a in zip(worst.eps, worst.accuracy):
            sec.add_metric(
                _metric_name(worst.name, e),
                a,
                ci=wilson_interval(round(a * n), n),
                description=f"robust accuracy at eps {e:g}: a sample counts only if no attack fooled it ({worst.description})",
                higher_is_better=True,
                headline=True,
            )
    return out


def _trust(
    sec: Section,
    bundle: ModelBundle,
    clean_pred: torch.Tensor,
    y: torch.Tensor,
    curves: dict[str, Curve],
    checks: list[MaskingCheck],
) -> None:
    """Degenerate models and suspected gradient masking: failing findings, and attack accuracies made undefined."""
    card = bundle.card
    masked = [c for c in checks if c.passed is False and c.severity == "fail"]
    why = degenerate_reason(
        clean_pred,
        y,
        card.num_classes,
        card.display_names,
        list(curves.values()),
        card.value_range,
        unchanged=not masked,
    )
    if why:
        sec.add_finding(
            "fail",
            f"degenerate model: it {why}; its robust accuracy is how often that answer happens to be right, not robustness",
            evidence="a model that ignores its input cannot be fooled, so attacks leave its accuracy where it is",
            check="degenerate-model",
        )
        undefine_attack_metrics(sec, f"degenerate model ({why})", prefixes=("",))
        return
    if masked:
        stems = {c.name.rsplit("_", 1)[0] for c in curves.values()} | {"worst"}
        undefine_attack_metrics(
            sec,
            f"gradient masking suspected ({', '.join(c.title for c in masked)})",
            prefixes=tuple(f"{p}_" for p in stems),
        )


def _trust_tables(
    sec: Section, curves: dict[str, Curve], worst: dict[str, Curve], aa_runs: dict[str, AutoAttackCurve], n: int
) -> None:
    for norm, w in worst.items():
        attacked = [c for c in curves.values() if c.name.endswith(f"_{norm}") and not c.name.startswith("worst_")]
        pgd = curves.get(f"pgd_{norm}")
        rows = []
        for e, a in zip(w.eps, w.accuracy):
            if e <= 0:
                continue
            first = first_breaker(attacked, e)
            over = None if pgd is None else round(pgd.at(e) - a, 4)
            rows.append(
                [
                    e,
                    round_or_none(a),
                    None if pgd is None else round_or_none(pgd.at(e)),
                    over,
                    ", ".join(f"{k} {v}" for k, v in first.items()),
                ]
            )
        if rows:
            sec.tables.append(
                Table(
                    f"Worst case per sample ({'L-inf' if norm == 'linf' else 'L2'})",
                    ["eps", "worst-case accuracy", "PGD alone", "PGD overstated by", "samples fooled first by"],
                    rows,
                    caption="A sample counts as robust only if no attack that ran fooled it. 'Fooled first by' lists each attack's "
                    "new breaks in the order the attacks are listed, so a large count after PGD is what PGD missed.",
                )
            )
    for norm, run in aa_runs.items():
        rows = [
            [
                e,
                round_or_none(run.curve.at(e)),
                *(res.counts.get(a, "skipped") for a in res.attacks),
                round(sum(res.seconds.values()), 2),
            ]
            for e, res in sorted(run.results.items())
        ]
        if rows:
            attacks = list(next(iter(run.results.values())).attacks)
            sec.tables.append(
                Table(
                    f"AutoAttack ({'L-inf' if norm == 'linf' else 'L2'}, {run.curve.description.split('(')[-1].rstrip(')')})",
                    ["eps", "robust accuracy", *(f"broken by {a}" for a in attacks), "seconds"],
                    rows,
                    caption="Croce and Hein 2020 (arXiv:2003.01690). Each attack runs on the samples the earlier ones did not fool; "
                    "a larger budget attacks only the samples that resisted the smaller one.",
                )
            )


def _min_eps(
    bundle: ModelBundle,
    x: torch.Tensor,
    y: torch.Tensor,
    clean_ok: torch.Tensor,
    s: Settings,
    seed: int,
    sec: Section,
    progress: ProgressFn | None,
    *,
    keyed: bool = False,
) -> list[Any]:
    """Median minimal L-inf budget over (up to) ``min_eps_samples`` correctly classified samples."""
    name = "robustness.pgd_linf.median_min_eps"
    desc = "median over correctly classified samples of the smallest L-inf eps at which PGD fools the model (bisection)"
    idx = clean_ok.nonzero().flatten()[: s.min_eps_samples]
    if s.min_eps_samples == 0 or len(idx) == 0:
        sec.add_metric(
            name,
            None,
            description=desc,
            note="no correctly classified samples" if len(idx) == 0 and s.min_eps_samples else "switched off",
        )
        return []
    width = bundle.card.value_range[1] - bundle.card.value_range[0]
    eps_max = LARGE_EPS * width
    found = minimal_eps(
        bundle,
        x[idx],
        y[idx],
        eps_max=eps_max,
        steps=s.min_eps_steps,
        iterations=s.bisection,
        seed=seed,
        batch_size=s.batch_size,
        progress=progress,
        features=attack_features(bundle, s.features),
        keyed=keyed,
    )
    median = float(found.median())
    resolution = eps_max / 2**s.bisection
    if math.isinf(median):
        sec.add_metric(
            name,
            None,
            description=desc,
            note=f"more than half of the {len(idx)} samples resist PGD-{s.min_eps_steps} at eps {eps_max:g}",
        )
    else:
        sec.add_metric(name, median, description=f"{desc}; resolution {resolution:.2g}", higher_is_better=True)
    finite = found[torch.isfinite(found)]
    q = [float(finite.quantile(p)) if len(finite) else None for p in (0.25, 0.5, 0.75)]
    return [len(idx), len(finite), q[0], median if math.isfinite(median) else None, q[2], eps_max, resolution]


def _masking_checks(
    bundle: ModelBundle,
    x: torch.Tensor,
    y: torch.Tensor,
    clean_pred: torch.Tensor,
    curves: dict[str, Curve],
    s: Settings,
    seed: int,
    chance: float,
    progress: ProgressFn | None,
    aa_runs: dict[str, AutoAttackCurve] | None = None,
) -> list[MaskingCheck]:
    n = len(y)
    checks: list[MaskingCheck] = []
    ok = (clean_pred == y).nonzero().flatten()[:GRADIENT_SAMPLES]
    checks.append(check_gradients(*gradient_problems(bundle, x[ok], y[ok])))
    if aa_runs and "linf" in aa_runs:
        white = [c for k, c in curves.items() if k in ("fgsm_linf", "pgd_linf")]
        e, missed = black_box_evidence(aa_runs["linf"], white)
        if any("square" in r.attacks and "square" not in r.skipped for r in aa_runs["linf"].results.values()):
            checks.append(check_black_box(e, missed, n))
    if "fgsm_linf" in curves and "pgd_linf" in curves:
        checks.append(check_pgd_vs_fgsm(curves["fgsm_linf"], curves["pgd_linf"], n))
    checks.extend(check_monotone(c, n) for c in curves.values())
    width = bundle.card.value_range[1] - bundle.card.value_range[0]
    large = LARGE_EPS * width
    f = {"features": attack_features(bundle, s.features)}
    run = lambda atk, eps: robustness_curve(
        bundle, x, y, atk, [eps], clean_pred=clean_pred, seed=seed, batch_size=s.batch_size
    ).accuracy[0]
    checks.append(check_chance(run(make_attack("pgd", large, steps=s.steps, **f), large), large, chance, n))
    pgd = curves.get("pgd_linf")
    e = middle_eps(pgd.eps) if pgd is not None else None
    if pgd is not None and e is not None:
        base = pgd.at(e)
        more = run(make_attack("pgd", e, steps=2 * s.steps, restarts=s.restarts, **f), e)
        checks.append(
            check_more_effort(base, more, what=f"{2 * s.steps} steps", base_what=f"{s.steps} steps", eps=e, n=n)
        )
        restarts = s.restarts + 2
        more_r = run(make_attack("pgd", e, steps=s.steps, restarts=restarts, **f), e)
        checks.append(
            check_more_effort(
                base,
                more_r,
                what=f"{restarts} restarts",
                base_what=f"{s.restarts} restart{'s' if s.restarts > 1 else ''}",
                eps=e,
                n=n,
            )
        )
    if progress is not None:
        progress("robustness:masking", 1, 1)
    return checks


def _groups(sample: AuditData, pgd: Curve | None, clean_ok: torch.Tensor, sec: Section) -> None:
    if sample.sensitive is None or pgd is None:
        return
    eps_pos = [(e, c) for e, c in zip(pgd.eps, pgd.correct) if e > 0]
    for sf in resolve_sensitive(sample):
        feature = sf.name
        if not sf.defined:
            sec.add_finding("info", f"robust accuracy by {feature} not computed: {sf.reason}", check="group-gap")
            continue
        clean_g = accuracy_by_group(clean_ok, sf)
        per_eps = [(e, accuracy_by_group(c, sf)) for e, c in eps_pos]
        for e, g in per_eps:
            sec.add_metric(
                f"robustness.{feature}.pgd_linf.acc_gap@{e:g}",
                g.gap,
                description=f"largest difference in PGD L-inf accuracy at eps {e:g} between groups of {feature} (groups of at least {MIN_GROUP_SIZE})",
                higher_is_better=False,
                note=""
                if g.gap is not None
                else f"fewer than two groups of {feature} with at least {MIN_GROUP_SIZE} samples",
            )
        rows = [
            [grp, size, round_or_none(clean_g.accuracy[i]), *(round_or_none(g.accuracy[i]) for _, g in per_eps)]
            for i, (grp, size) in enumerate(zip(clean_g.groups, clean_g.sizes))
        ]
        sec.tables.append(
            Table(
                title=f"Robust accuracy by {feature} (PGD L-inf)",
                columns=["group", "n", "clean", *(f"eps {e:g}" for e, _ in per_eps)],
                rows=rows,
                caption=f"Accuracy of each group of {feature} under PGD; the gap metric is the largest difference between groups of at least {MIN_GROUP_SIZE} samples."
                + (f" {sf.note}." if sf.note else ""),
            )
        )
        gaps = [(g.gap, e, g) for e, g in per_eps if g.gap is not None]
        if gaps:
            gap, e, g = max(gaps, key=lambda t: t[0])
            if gap > 0.10 and clean_g.gap is not None and gap > clean_g.gap + 0.05:
                sec.add_finding(
                    "warning",
                    f"group {g.worst!r} of {feature} is much easier to fool: PGD L-inf accuracy differs by {gap:.1%} between groups at eps {e:g} "
                    f"(without attack {clean_g.gap:.1%})",
                    evidence=", ".join(
                        f"{grp}: {'undefined' if a is None else f'{a:.3f}'} (n={sz})"
                        for grp, sz, a in zip(g.groups, g.sizes, g.accuracy)
                    ),
                    check="group-gap",
                )


def _examples(
    bundle: ModelBundle, x: torch.Tensor, y: torch.Tensor, clean_pred: torch.Tensor, pgd: Curve, s: Settings, seed: int
) -> Any:
    e = middle_eps(pgd.eps)
    if e is None:
        return None
    idx = (clean_pred == y).nonzero().flatten()[: s.examples]
    if len(idx) == 0:
        return None
    out = run_attack(
        bundle,
        x[idx],
        y[idx],
        make_attack("pgd", e, steps=s.steps, features=attack_features(bundle, s.features)),
        index=idx,
        seed=seed,
        batch_size=len(idx),  # fmt: skip
    )
    return examples_figure(
        x[idx],
        out.x_adv,
        y[idx],
        clean_pred[idx],
        out.pred,
        bundle.card.display_names,
        eps=e,
        attack=f"PGD-{s.steps} L-inf",
        value_range=bundle.card.value_range,
    )


def _tables(
    sec: Section,
    curves: dict[str, Curve],
    noise: dict[str, dict[float, float]],
    checks: list[MaskingCheck],
    min_eps_row: list[Any],
    n: int,
    where: str = "",
    detail: str = "",
) -> None:
    rows = []
    for c in curves.values():
        for e, a in zip(c.eps, c.accuracy):
            lo, hi = wilson_interval(round(a * n), n)
            rows.append([c.name, e, round_or_none(a), f"{lo:.3f} – {hi:.3f}", c.description if e > 0 else "no attack"])
    sec.tables.append(
        Table(
            "Robust accuracy",
            ["attack", "eps", "accuracy", "95% CI", "attack settings"],
            rows,
            caption=f"On {n} samples{where}; a sample misclassified without attack counts as broken at every eps.{detail}",
        )
    )
    if noise:
        sec.tables.append(
            Table(
                "Accuracy under random noise",
                ["noise", "strength", "accuracy"],
                [[k, st, round_or_none(a)] for k, accs in noise.items() for st, a in accs.items()],
                caption="Gaussian: standard deviation; uniform: half-width. Noisy inputs are clipped to the value range.",
            )
        )
    if checks:
        sec.tables.append(
            Table(
                "Gradient-masking checks",
                ["check", "result", "evidence"],
                [[c.title, c.status, c.evidence] for c in checks],
                caption="Athalye et al. 2018 (arXiv:1802.00420); Carlini et al. 2019 (arXiv:1902.06705). A warning means the attack, not the model, may be weak.",
            )
        )
    if min_eps_row:
        sec.tables.append(
            Table(
                "Minimal adversarial eps (PGD L-inf, bisection)",
                ["samples", "fooled at eps max", "25%", "median", "75%", "eps max", "resolution"],
                [[*min_eps_row[:2], *(round_or_none(v) for v in min_eps_row[2:])]],
                caption="Quantiles over the samples PGD fooled within eps max; the median metric counts the others as above eps max.",
            )
        )


def _headline(
    sec: Section,
    bundle: ModelBundle,
    curves: dict[str, Curve],
    worst: dict[str, Curve],
    clean: float,
    n: int,
    data: AuditData,
    features: str = "all",
) -> None:
    monitor = (bundle.card.training or {}).get("monitor") or {}
    if isinstance(monitor, dict) and monitor.get("collapsed"):
        sec.add_finding(
            "fail",
            f"the model collapsed in training: at the last epoch {monitor['collapsed']} (recorded on its card); "
            "no robustness figure of a collapsed model means anything; retrain with a smaller eps, more epochs or a lower lr",
            check="training-collapse",
        )
    elif isinstance(monitor, dict) and monitor.get("collapsed_epochs"):
        sec.add_finding(
            "info",
            f"training collapsed at epoch(s) {', '.join(map(str, monitor['collapsed_epochs']))} and recovered",
            check="training-collapse",
        )
    training = (bundle.card.training or {}).get("adversarial")
    if isinstance(training, dict) and training.get("method"):
        sec.add_finding(
            "info",
            f"the model was trained adversarially ({training.get('method')}, eps {training.get('eps')})",
            check="training",
        )
    columns = bundle.card.kind.columns
    if columns and features == "numeric":
        k = len(attack_features(bundle, "numeric") or ())
        sec.add_finding(
            "info",
            f"tabular inputs: the attacks change only the {k} numeric column(s), scaled to [0, 1]; every one-hot category keeps its value, "
            "so each adversarial record is one a user could submit, up to the budget (noise and the certified bounds still cover every feature)",
            check="tabular",
        )
    elif columns:
        sec.add_finding(
            "info",
            "tabular inputs: attacks move scaled and one-hot features continuously, so these numbers bound sensitivity to small feature changes, not to realistic edits of a record; "
            "the robustness parameter features=numeric attacks only the numeric columns (dlaudit attack --features numeric)",
            check="tabular",
        )
    head = worst.get("linf") or curves.get("pgd_linf") or next(iter(curves.values()), None)
    e = middle_eps(head.eps) if head is not None else None
    if head is None or e is None:
        sec.summary = f"Clean accuracy {clean:.1%} on {n} samples of {data.name}."
        return
    a = head.at(e)
    attacked = [c for c in curves.values() if c.name.endswith("_linf")]
    if head.name.startswith("worst_"):
        sec.summary = (
            f"Under the worst case of {', '.join(c.description.split(' (')[0] for c in attacked)} at eps {e:g}, accuracy falls "
            f"from {clean:.1%} to {a:.1%} ({n} samples of {data.name})."
        )
        pgd = curves.get("pgd_linf")
        if pgd is not None and pgd.at(e) > a:
            found = first_breaker(attacked, e)
            beyond = {k: v for k, v in found.items() if v and k not in ("fgsm_linf", "pgd_linf")}
            sec.summary += f" PGD alone would report {pgd.at(e):.1%}, {100 * (pgd.at(e) - a):.1f} points too high" + (
                f"; {', '.join(f'{k} found {v}' for k, v in beyond.items())} sample(s) it missed." if beyond else "."
            )
    else:
        sec.summary = f"Under {head.description} at eps {e:g}, accuracy falls from {clean:.1%} to {a:.1%} ({n} samples of {data.name})."
    if clean > 0 and a < 0.5 * clean:
        sec.add_finding(
            "info",
            f"the model is easily fooled: {head.name} at eps {e:g} leaves {a:.1%} accuracy (clean {clean:.1%}); adversarial training "
            f"(dlaudit train ... --adversarial pgd --eps {e:g}; Madry et al. 2018, arXiv:1706.06083) is the standard remedy",
            check="headline",
        )


# -- the time estimate ---------------------------------------------------------------------------
#
# One measured gradient step on a batch of the audited inputs (the engine's default batch size, at most
# 256) times the number of gradient steps and forward passes the settings imply. PGD's share is an upper
# bound (a sample stops being attacked once it is fooled); AutoAttack's attacks at each budget the inputs that
# resisted the smaller one, its later attacks on the share PGD-10 left robust on the probe's inputs (else
# :data:`SURVIVING`); randomized smoothing counts its noisy copies as forward passes, on the
# inputs its plan allows. On the digits CNN the full section read 29.7 s and took 33 s (AutoAttack 32 s
# of it). Nothing here changes what the section computes.

_PROBE_MAX = 256
"""Inputs of the timed passes at most: the engine's default batch (per-input cost falls with the batch)."""
SURVIVING = 0.5
"""Share of samples assumed to outlast APGD-CE: AutoAttack's later attacks run only on those, which
cannot be known before the section runs. On the digits CNN (budgets 0.05-0.3) the measured share
averaged about 0.4."""
CALL_FACTOR = 4.0
"""An attack iteration on a batch costs about this many single-input forward-and-backward calls
(:func:`call_seconds`) besides its per-sample work: the attack's own bookkeeping (step sizes, projections).
Measured (busy 2-core machine, 256 inputs, 100 iterations, after the per-sample gradient steps): PGD and APGD-CE
3.9 and 3.8 on the synthetic-credit MLP, APGD-CE 4.3 on the digits CNN. (It was 7, measured on an earlier engine
with Square's queries inside: the credit MLP's full estimate then erred long by 2x.) Square's queries and a
stochastic model's keyed passes are priced apart (:data:`SQUARE_CALLS`, :data:`EAGER_CALLS`)."""
FORWARD_CALLS = 1.5 / CALL_FACTOR
"""A forward-only batch of randomized smoothing's noisy copies costs about 1.5 single-input calls besides its
forward passes (here: in :data:`CALL_FACTOR` units): the synthetic-credit MLP's 100 inputs x 10,100 draws took
about 0.9 s in 4,000 batches (busy 2-core machine); priced as attack iterations they read 2.4 s."""
EAGER_CALLS = 7.0
"""A keyed pass (a stochastic model: Python per chunk, never compiled) on a batch: single-input calls besides its
per-sample work, the factor its chunks were fitted with (:data:`KEYED_CHUNK`)."""
SQUARE_CALLS = 1.2 / CALL_FACTOR
"""A Square query on a full batch of live inputs costs about 1.2 single-input calls besides its forward pass (here:
in :data:`CALL_FACTOR` units): the synthetic-credit MLP on a quiet 2-core machine, 500 queries on 256 live inputs,
1.15 (0.201 ms a query; a call 0.110 ms). On a busy machine the same measure read 2.0-2.9, but a busy machine is
priced by the estimate's slowdown (:func:`slowdown`), not here: with 3.0 and 1.1 the MLP's AutoAttack was priced
9.3 s for 5.8 s taken on the quiet machine."""
SQUARE_FEW = 0.9 / CALL_FACTOR
"""A Square query on a batch with few live inputs (AutoAttack's survivors): about 0.9 single-input calls (the
same measure: 0.99 on 64 live inputs, 0.97 on 32, 0.91 on 8); between the two, in proportion to the live share of
the engine's batch."""


def _square_calls(live: float, costs: Mapping[str, float]) -> float:
    """Calls (in :data:`CALL_FACTOR` units) of one Square query on a batch with ``live`` inputs still unfooled."""
    share = min(max(live / max(costs.get("batch", _PROBE_MAX), 1.0), 0.0), 1.0)
    return SQUARE_FEW + (SQUARE_CALLS - SQUARE_FEW) * share


CERTIFY_FORWARDS = {"ibp": 5, "crown-ibp": 72, "crown": 1600}
"""One input's bound in forward passes of it, end to end (``bench/certify.py`` on the digits CNN: IBP 2.7-5.3x,
CROWN-IBP 65-74x, CROWN 1,590-1,670x; CROWN grows with the square of the layers' widths, so more on wider models)."""


STEP_MEASURES, STEP_SECONDS = 3, 1.0
""":func:`step_seconds` takes the median of this many forward-and-backward passes, fewer once its passes took this
long: a single pass on a busy machine read the synthetic-credit MLP's step 10x slow once (2.3e-5 s a sample for
1.5e-6)."""


def step_seconds(bundle: ModelBundle, data: AuditData) -> tuple[float, float]:
    """Seconds per sample of one forward-and-backward pass (the median of :data:`STEP_MEASURES`, after a warm-up)
    and of one forward pass (the faster of two), measured on a few inputs."""
    import statistics
    import time

    from ..utils import model_state, next_device
    from .attacks import speed
    from .batching import choose_batch_size

    module = bundle.module
    dev = next_device(module)
    with model_state(module):
        size = choose_batch_size(module, data.x[: 2 * _PROBE_MAX].float(), dev)  # the engine's batch
    x = data.x[: min(size, _PROBE_MAX)].float().to(dev)
    with model_state(module), speed.layout(module, x):
        seen: list[float] = []
        for _ in range(1 + STEP_MEASURES):  # the first pass warms caches and allocators up, and is not counted
            start = time.perf_counter()
            xg = x.clone().requires_grad_(True)
            module(xg).sum().backward()
            seen.append(time.perf_counter() - start)
            if sum(seen) > STEP_SECONDS and len(seen) > 1:  # a large model: long passes, less noise
                break
        grad = statistics.median(seen[1:])
        forward = float("inf")
        for _ in range(2):  # the faster of two (other work only ever slows a pass down)
            start = time.perf_counter()
            with torch.no_grad():
                module(x)
            forward = min(forward, time.perf_counter() - start)
        for p in module.parameters():
            p.grad = None
    n = len(x)
    return grad / n, forward / n


def call_seconds(bundle: ModelBundle, data: AuditData) -> float:
    """Seconds of one forward-and-backward call on a single input through a two-layer stand-in of the model (the
    inputs' shape, its classes): the fixed cost of every attack iteration on a batch (Python, dispatch, allocation),
    which dominates on small models (the median of five, after a warm-up). A stand-in, not the model: on a large
    model a single-input pass is mostly the model's own compute, which the per-sample costs already count (on a
    resnet18 at 3x32x32 the model's call was 10x its per-sample gradient step and put the estimate 5x too high)."""
    import statistics
    import time

    from torch import nn

    x = data.x[:1].float()
    stand_in = nn.Sequential(
        nn.Flatten(), nn.Linear(x[0].numel(), 16), nn.ReLU(), nn.Linear(16, bundle.card.num_classes or 10)
    )
    seen = []
    for _ in range(6):
        start = time.perf_counter()
        stand_in(x.clone().requires_grad_(True)).sum().backward()
        seen.append(time.perf_counter() - start)
    return statistics.median(seen[1:])


def unit_costs(bundle: ModelBundle, data: AuditData) -> dict[str, float]:
    """What :func:`estimate` prices work with: seconds per sample of a gradient step (``grad``) and of a forward
    pass (``forward``), seconds of one call (``call``), and the batch the engine runs (``batch``)."""
    import os
    import time

    from ..utils import model_state, next_device
    from .batching import choose_batch_size

    wall, cpu = time.perf_counter(), time.process_time()
    grad, forward = step_seconds(bundle, data)
    share = (time.process_time() - cpu) / max(time.perf_counter() - wall, 1e-9)
    with model_state(bundle.module):
        size = choose_batch_size(bundle.module, data.x[: 2 * _PROBE_MAX].float(), next_device(bundle.module))
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return {
        "grad": grad,
        "forward": forward,
        "call": call_seconds(bundle, data),
        "batch": float(min(size, _PROBE_MAX)),
        "slowdown": slowdown(share, competing_load(), cpus),
    }


def slowdown(share: float, load: float, cpus: int) -> float:
    """How much slower than its probes the section will run on a busy machine: the share of a core the probe's
    passes got (CPU seconds over wall seconds, at most 1) over the share a long run can expect, ``cpus / (load +
    1)`` of a core with ``load`` other threads already wanting one (:func:`dlaudit.plan.competing_load`), at most
    1; never below 1.

    The probes' passes last milliseconds and mostly run at full speed between the other processes' time slices,
    while the section runs for seconds or minutes at its fair share: on the shared 2-core machine (load average
    4-5) the report processes got 0.40-0.53 of a core (CPU over wall seconds) and the robustness sections of the
    synthetic-credit MLP took 1.6-2.3x their estimates, 0.65-0.96x at that share. A large model's longer passes get
    their share in the probe already (share below 1), and are not slowed twice."""
    expected = min(1.0, cpus / (max(load, 0.0) + 1.0))
    return max(1.0, min(max(share, 0.0), 1.0) / expected)


OVERHEAD_INPUTS = 32
"""Inputs the overhead probe corrupts (each under every corruption at the example severity, after an untimed call
on two): the section corrupts its samples a batch at a time, and on 8 inputs a corruption cost 2-3x more an input
than on 32 or 200 (the digits CNN's fast estimate read 1.7x long on its corruptions)."""
SURVIVAL_INPUTS, SURVIVAL_STEPS = 32, 10
"""The probe's PGD (steps) on this many correctly classified inputs at each budget of PGD and AutoAttack: the share
it leaves robust predicts the share that reaches AutoAttack's later attacks (APGD-CE is at least as strong, so it
errs long) and how many of PGD's steps early stopping saves."""


def overhead_costs(bundle: ModelBundle, data: AuditData, s: Settings | None = None) -> dict[str, float]:
    """Seconds of what the section does besides attacking, for ``--time-budget`` (:func:`estimate` prices each):
    rendering a line plot (``figure``) and a 4 x 4 grid of inputs (``grid``, the examples figures), corrupting one
    input under one corruption (``corrupt``, images only), the share of inputs the model classifies correctly
    (``clean_acc``: AutoAttack attacks only those) and, at each AutoAttack budget, the share of them PGD-10 leaves
    robust (``survive_NORM@EPS``). Measured once each, on the audited model and inputs (rendering once a process).
    A fraction of a second on the reference models."""
    import time

    from ..utils import model_state, next_device

    out = dict(_render_costs(bundle, data))
    if bundle.card.kind.spatial and data.x.dim() == 4:
        from .corruptions import CORRUPTIONS, corrupt

        for name in CORRUPTIONS:  # untimed: a corruption's first call pays for its set-up
            corrupt(data.x[:2].float(), name, 3, seed=0, value_range=bundle.card.value_range)
        x = data.x[:OVERHEAD_INPUTS].float()
        seen = []
        for _ in range(3):  # the median of three: one measure on a busy machine can be off by 2x
            start = time.perf_counter()
            for name in CORRUPTIONS:
                corrupt(x, name, 3, seed=0, value_range=bundle.card.value_range)
            seen.append((time.perf_counter() - start) / (len(x) * len(CORRUPTIONS)))
        out["corrupt"] = sorted(seen)[1]
    n = min(s.n, len(data)) if s is not None and s.n is not None else len(data)
    dev = next_device(bundle.module)
    with model_state(bundle.module, train=False, grad=False), torch.no_grad():
        right = (
            torch.cat([bundle.module(xb.float().to(dev)).argmax(1).cpu() for xb in data.x[:n].split(256)]) == data.y[:n]
        )
    out["clean_acc"] = float(right.float().mean()) if n else 1.0
    if bundle.card.kind.columns and bundle.card.encoder and data.x.dim() == 2 and n:
        out.update(_shift_costs(bundle, data.x[: min(n, _PROBE_MAX)]))
    norms = set(s.autoattack_norms if s is not None and s.autoattack else ())
    norms |= {m_norm[1] for m_norm in map(_split_attack, s.attacks if s is not None else ()) if m_norm[0] == "pgd"}
    norms |= {norm for method, norm in map(_split_attack, s.attacks if s is not None else ()) if method == "autoattack"}
    if s is not None and bundle.card.kind.continuous:
        from .attacks import pgd
        from .attacks.engine import counting_steps

        x, y = data.x[:n][right][:SURVIVAL_INPUTS].float(), data.y[:n][right][:SURVIVAL_INPUTS]
        for norm in sorted(norms):
            for eps in (e for e in (s.eps if norm == "linf" else s.eps_l2) if e > 0):
                if len(x) == 0:
                    continue
                with counting_steps() as counted:
                    adv = pgd(bundle, x, y, eps=eps, norm=norm, steps=SURVIVAL_STEPS, seed=0)
                with model_state(bundle.module, train=False, grad=False), torch.no_grad():
                    kept = bundle.module(adv.to(dev)).argmax(1).cpu() == y
                out[f"survive_{norm}@{eps:g}"] = float(kept.float().mean())
                if counted[1]:  # nothing counted: the attack ran in another process (a worker), priced as before
                    out[f"steps_{norm}@{eps:g}"] = counted[0] / (len(x) * SURVIVAL_STEPS)
                    out[f"iterations_{norm}@{eps:g}"] = counted[1] / SURVIVAL_STEPS
    return out


def _shift_costs(bundle: ModelBundle, x: torch.Tensor) -> dict[str, float]:
    """Seconds per input of one pass of the tabular-shift part (see :func:`.shift.passes`): shifting with random
    draws (Gaussian noise) and predicting (``shift_drawn``), and moving one column and predicting (``shift_moved``);
    the faster of two measures each, after an untimed pass."""
    import time

    from .shift import layout, shift

    lay = layout(bundle.card.encoder or {})
    x = x.detach().cpu().float()
    m = len(lay.numeric)
    common = {
        "seed": 0,
        "index": torch.arange(len(x)),
        "spread": x[:, :m].std(dim=0, unbiased=False),
        "median": x[:, :m].median(dim=0).values,
    }
    kinds = {"shift_drawn": ("noise", None) if m else ("missing", None), "shift_moved": ("covariate", 0)}
    out: dict[str, float] = {}
    for key, (kind, feature) in kinds.items():
        if kind == "covariate" and not m:
            out[key] = out["shift_drawn"]
            continue
        seen = []
        for _ in range(3):  # the first pass is untimed (caches, allocators)
            start = time.perf_counter()
            bundle.predict(shift(x, kind, 0.25, lay, feature=feature, **common)).cpu()
            seen.append(time.perf_counter() - start)
        out[key] = min(seen[1:]) / len(x)
    return out


_RENDERED: dict[tuple[str, tuple[int, ...]], dict[str, float]] = {}


def _render_costs(bundle: ModelBundle, data: AuditData) -> dict[str, float]:
    """Seconds to render a line plot (``figure``) and a 4 x 4 grid of inputs (``grid``): measured once a process
    for each kind of input and shape (rendering does not depend on the model)."""
    import time

    from ..report.figures import fig_to_png, subplots

    key = (type(bundle.card.kind).__name__, tuple(data.x.shape[1:]))
    if key not in _RENDERED:
        start = time.perf_counter()
        fig, ax = subplots(1, 1, figsize=(6.0, 4.0))
        ax.plot([0.0, 0.1, 0.3], [0.9, 0.5, 0.1], marker="o", label="probe")
        ax.legend()
        fig_to_png(fig)
        figure = time.perf_counter() - start
        start = time.perf_counter()
        fig, axes = subplots(4, 4, figsize=(8.0, 8.4), squeeze=False)
        for a in axes.flat:  # titled, as the examples figures are (their layout is most of the cost)
            bundle.card.kind.draw_example(a, data.x[0], bundle.card.value_range)
            a.set_title("probe", fontsize=8)
            a.axis("off")
        fig.tight_layout()
        fig_to_png(fig)
        _RENDERED[key] = {"figure": figure, "grid": time.perf_counter() - start}
    return _RENDERED[key]


def estimate(
    bundle: ModelBundle, data: AuditData, s: Settings, costs: Mapping[str, float] | None = None
) -> tuple[float, str] | None:
    """``(seconds, what it counts)`` of the section with settings ``s`` on ``data`` (the analysis' estimate);
    ``costs`` are :func:`unit_costs` measured earlier, else measured now."""
    if len(data) == 0:
        return None
    try:
        costs = costs if costs is not None else {**unit_costs(bundle, data), **overhead_costs(bundle, data, s)}
        keyed = bool(costs["keyed"]) if "keyed" in costs else _stochastic(bundle, data)
        if s.autoattack and keyed:
            s = dataclasses.replace(s, autoattack="rand")  # a stochastic model gets AutoAttack's rand version
    except (RuntimeError, ValueError, TypeError):  # the section itself will say what is wrong
        return None
    seconds, what = _work(bundle, data, s, costs, keyed=keyed)
    busy = costs.get("slowdown", 1.0)  # the machine's load, measured with the unit costs (see slowdown)
    if busy > 1.05:
        what += f", times {busy:.1f} for the machine's load"
    return seconds * busy, what


def _stochastic(bundle: ModelBundle, data: AuditData) -> bool:
    """Whether the section will treat the model as random at inference (keyed passes, majority votes)."""
    return bool(bundle.card.kind.continuous) and detect(bundle.module, data.x) is not None


def _batches(samples: int, costs: Mapping[str, float]) -> int:
    return math.ceil(samples / max(costs.get("batch", _PROBE_MAX), 1.0)) if samples > 0 else 0


def _chunks(samples: float, costs: Mapping[str, float]) -> float:
    """Calls (in attack-iteration units) of one keyed pass on ``samples``: a call a batch, and
    :data:`KEYED_CHUNK` of one for each further chunk of :data:`KEY_CHUNK` samples the pass runs apart."""
    count = round(samples)
    batches = _batches(count, costs)
    keyed = batches + KEYED_CHUNK * max(-(-count // KEY_CHUNK) - batches, 0)
    return keyed * EAGER_CALLS / CALL_FACTOR if count > 0 else 0.0


KEYED_CHUNK = 0.4
"""A keyed pass's further chunk costs this share of its batch's calls (:data:`EAGER_CALLS`): fitted to
rand AutoAttack on the digits CNN with dropout left on (busy 2-core machine): 2.3 ms a pass on 16 samples (two
chunks), 45 s on 32; a full iteration a chunk priced them 1.5x and 1.9x long."""


def _work(
    bundle: ModelBundle, data: AuditData, s: Settings, costs: Mapping[str, float], *, keyed: bool = False
) -> tuple[float, str]:
    """The estimate's arithmetic: sample-steps times their cost, plus calls (iterations on a batch) times theirs.

    ``keyed`` (a model random at inference): FGSM and PGD run every step (no early stopping), each pass a call per
    chunk of :data:`KEY_CHUNK` samples, and each attacked input is judged by a vote of :data:`VOTE_PASSES` passes;
    the minimal budget's steps, noise and corruptions are keyed and voted alike."""
    grad, forward = costs["grad"], costs["forward"]
    call = CALL_FACTOR * costs.get("call", 0.0)
    n = min(s.n, len(data)) if s.n is not None else len(data)
    nb = _batches(n, costs)
    if s.scope == "certify":
        if s.certify in CERTIFY_FORWARDS:
            forwards = n * len([e for e in s.eps if e > 0]) * CERTIFY_FORWARDS[s.certify]
            return forwards * forward, f"about {forwards:,} forward passes ({s.certify} bounds on {n} inputs)"
        forwards = n * (s.smoothing_n0 + s.smoothing_n)
        calls = n * _batches(s.smoothing_n0 + s.smoothing_n, costs) * FORWARD_CALLS
        return forwards * forward + calls * call, f"{forwards:,} forward passes (randomized smoothing on {n} inputs)"
    steps = calls = forwards = 0
    for attack in s.attacks:
        method, norm = _split_attack(attack)
        budgets = len([e for e in (s.eps if norm == "linf" else s.eps_l2) if e > 0])
        if method == "autoattack":  # priced at each of its budgets (its later attacks depend on the survivors)
            one = dataclasses.replace(s, autoattack=s.version, autoattack_norms=(norm,))
            a_steps, a_forwards, a_calls = _autoattack_work(one, n, bundle.card.num_classes or 10, costs)
            steps, forwards, calls = steps + a_steps, forwards + a_forwards, calls + a_calls
            continue
        a_steps, a_forwards, a_calls = _attack_work(method, norm, s, n, bundle.card.num_classes or 10, costs)
        if keyed and method in ("fgsm", "pgd"):  # keyed passes: calls per chunk, every step, a vote per restart
            count, votes = a_steps // max(n, 1), n * VOTE_PASSES * (s.restarts if method == "pgd" else 1)
            a_calls = _chunks(n, costs) * (count + VOTE_PASSES * (s.restarts if method == "pgd" else 1))
            a_forwards += votes
        elif method == "pgd" and s.early_stop and _measured(norm, _budgets(s, norm), costs):
            eps = _budgets(s, norm)  # a sample leaves once it is fooled, a batch once all its samples are
            a_steps, a_calls = _pgd_work(n, s.steps, s.restarts, [(norm, e) for e in eps], costs)
            steps, calls = steps + round(a_steps), calls + a_calls
            continue
        elif method == "pgd" and s.early_stop:  # a sample leaves once it is fooled
            a_steps = round(a_steps * _attacked_share(s, norm, costs))
        steps, forwards, calls = steps + budgets * a_steps, forwards + budgets * a_forwards, calls + budgets * a_calls
    what = f"up to {steps:,} gradient steps (PGD-{s.steps} on {n} samples)"
    if s.scope == "attacks":
        return steps * grad + forwards * forward + calls * call, what
    m = min(s.min_eps_samples, round(n * costs.get("clean_acc", 1.0)))  # it searches correctly classified samples only
    if keyed:  # keyed passes (every step), a call per chunk, and a vote on each bisection's inputs
        steps += m * (s.bisection + 2) * s.min_eps_steps
        calls += _chunks(m, costs) * (s.bisection + 2) * (s.min_eps_steps + VOTE_PASSES)
        forwards += m * (s.bisection + 2) * VOTE_PASSES
    else:
        width = bundle.card.value_range[1] - bundle.card.value_range[0]
        m_steps, m_calls = _min_eps_work(m, s, LARGE_EPS * width, costs)
        steps, calls = steps + round(m_steps), calls + m_calls
    middle = [e] if "pgd_linf" in s.attacks and (e := middle_eps(s.eps)) is not None else []
    if s.masking and not keyed and s.early_stop and _measured("linf", _budgets(s, "linf") + middle, costs):
        # PGD at the large budget (priced as at the largest one probed: a larger budget fools sooner), then at the
        # middle budget with twice the steps and with two more restarts
        runs = [(s.steps, 1, max(_budgets(s, "linf")))]
        runs += [(2 * s.steps, s.restarts, e) for e in middle] + [(s.steps, s.restarts + 2, e) for e in middle]
        for count, restarts, at in runs:
            m_steps, m_calls = _pgd_work(n, count, restarts, [("linf", at)], costs)
            steps, calls = steps + round(m_steps), calls + m_calls
    elif s.masking:
        steps += n * s.steps * 4  # the large-budget, more-steps and more-restarts checks
        calls += nb * s.steps * 4
    what = f"up to {steps:,} gradient steps (PGD-{s.steps} on {n} samples)"
    forwards += 2 * n * len(s.noise) * (VOTE_PASSES if keyed else 1)
    calls += _chunks(n, costs) * len(s.noise) * VOTE_PASSES if keyed else 0.0
    if s.autoattack:
        aa_n = min(s.autoattack_n, n) if s.autoattack_n is not None else n
        aa_steps, aa_forwards, aa_calls = _autoattack_work(s, aa_n, bundle.card.num_classes or 10, costs)
        steps += aa_steps
        forwards += aa_forwards
        calls += aa_calls
        survivors = "as many as PGD-10 left on a few" if any(k.startswith("survive_") for k in costs) else "half"
        what += f", about {aa_steps:,} for AutoAttack ({s.autoattack}"
        what += f" on {aa_n} samples" if aa_n < n else ""
        what += f", if {survivors} of the samples outlast APGD-CE)"
    if s.certify and _certifiable(bundle, data):  # else the bounds are skipped at once (a finding says why)
        forwards += n * len([e for e in s.eps if e > 0]) * CERTIFY_FORWARDS.get(s.certify, 1)
    smoothing = 0.0
    if s.smoothing:
        from .certified import forward_flops, planned_inputs

        flops = forward_flops(bundle.module, data.x[:1])
        wanted = min(s.smoothing_samples, n)
        samples, _ = planned_inputs(wanted, flops, s.smoothing_n0 + s.smoothing_n, s.smoothing_max_flops)
        smoothing = samples * (s.smoothing_n0 + s.smoothing_n) * forward
        calls += samples * _batches(s.smoothing_n0 + s.smoothing_n, costs) * FORWARD_CALLS
        if samples:
            what += f", randomized smoothing on {samples} inputs"
    overhead = costs.get("figure", 0.0) * (1 + bool(s.certify))  # the curves and the certified bounds
    if bundle.card.kind.spatial and s.examples:
        overhead += costs.get("grid", 0.0)
    if s.corruptions and bundle.card.kind.spatial and data.x.dim() == 4:
        from .corruptions import CORRUPTIONS, SEVERITIES

        votes = VOTE_PASSES if keyed else 1  # a stochastic model: a keyed vote per input and severity
        forwards += n * len(CORRUPTIONS) * len(SEVERITIES) * votes
        calls += (_chunks(n, costs) if keyed else nb) * len(CORRUPTIONS) * len(SEVERITIES) * votes
        overhead += (n * len(SEVERITIES) + 1) * len(CORRUPTIONS) * costs.get("corrupt", 0.0)  # and the examples
        overhead += 2 * costs.get("figure", 0.0) + costs.get("grid", 0.0)  # the accuracy chart: 15 ticks, 5 lines
        what += f", {len(CORRUPTIONS) * len(SEVERITIES)} corruption-severity pairs"
    if s.shift and bundle.card.kind.columns and bundle.card.encoder and "shift_drawn" in costs:
        from .shift import layout, passes

        drawn, moved = passes(layout(bundle.card.encoder))
        overhead += n * (drawn * costs["shift_drawn"] + moved * costs.get("shift_moved", costs["shift_drawn"]))
        what += f", {drawn + moved} tabular-shift passes"  # priced as measured (shifting and predicting)
    what += f" and {forwards:,} forward passes"
    return steps * grad + forwards * forward + smoothing + calls * call + overhead, what


def _budgets(s: Settings, norm: str) -> list[float]:
    return [e for e in (s.eps if norm == "linf" else s.eps_l2) if e > 0]


_CERTIFIABLE: weakref.WeakKeyDictionary[torch.nn.Module, bool] = weakref.WeakKeyDictionary()
"""Whether each model audited in this process is a chain of layers the certified bounds follow."""


def _certifiable(bundle: ModelBundle, data: AuditData) -> bool:
    """Whether :func:`~dlaudit.robust.certify.verified_accuracy` can bound ``bundle``'s model (a chain of layers,
    :func:`~dlaudit.robust.bounds.chain_of`): a model with branches or residual connections is refused at once and
    its bounds cost nothing (on a resnet18 the estimate priced 57,600 forward passes of bounds it never ran, 20 s
    of its 94). Traced once per model; True where the trace fails otherwise (priced, as an upper bound)."""
    from ..errors import AnalysisError
    from ..utils import model_state
    from .attacks import resolve_model
    from .bounds import chain_of

    if bundle.module in _CERTIFIABLE:
        return _CERTIFIABLE[bundle.module]
    module, _, dev, _ = resolve_model(bundle, None, None)
    x = data.x[:2] if len(data) > 1 else data.x[:1].expand(2, *data.x.shape[1:])
    try:
        with model_state(module, train=False, grad=False), torch.no_grad():
            chain_of(module, x.to(dev))
        ok = True
    except AnalysisError:
        ok = False
    except (RuntimeError, ValueError, TypeError):
        ok = True
    try:
        _CERTIFIABLE[bundle.module] = ok
    except TypeError:
        pass
    return ok


MIN_EPS_QUANTILES = 64
"""Samples' minimal budgets :func:`_min_eps_work` follows through the bisection (quantiles of the probe's curve)."""


def _min_eps_work(m: int, s: Settings, eps_max: float, costs: Mapping[str, float]) -> tuple[float, float]:
    """(gradient steps, calls) of the minimal-budget search on ``m`` correctly classified samples: PGD-``min_eps_steps``
    at ``eps_max``, then ``bisection`` rounds at each sample's midpoint, every run stopping at a sample's first
    success (:func:`~dlaudit.robust.curves.minimal_eps`).

    The samples' minimal budgets are taken from the probe's survival curve (``survive_linf@EPS``: the share robust
    at each budget; 1 at 0, straight lines between, the largest budget's share robust at ``eps_max`` too, as an
    upper bound), at :data:`MIN_EPS_QUANTILES` quantiles, and each is followed through the bisection: a midpoint
    below its budget runs every step, one above it the probe's share of steps at that budget (``steps_linf@EPS``)
    or the share its budget over the midpoint's, whichever is larger (a midpoint close to a sample's budget takes
    more steps). A batch runs every step in a round where it holds a sample that does. Every step of every run
    (``m * (bisection + 2)`` runs, the former price) where the probe measured none of the budgets. Counted against
    the steps the search took (quiet 2-core machine): a barely trained resnet18, whose samples fall to tiny budgets,
    5,498 priced for 2,485 taken (10,400 before); the digits CNN 14,529 for 11,669 (20,000); the digits MLP's fast
    profile 2,021 for 1,600 (3,200)."""
    full_runs = s.bisection + 1
    probed = [e for e in _budgets(s, "linf") if f"survive_linf@{e:g}" in costs and f"steps_linf@{e:g}" in costs]
    if m <= 0:
        return 0.0, 0.0
    if not probed:
        return float(m * (s.bisection + 2) * s.min_eps_steps), float(
            _batches(m, costs) * (s.bisection + 2) * s.min_eps_steps
        )
    probed = sorted(probed)
    eps = [0.0, *probed]
    robust = [1.0, *(min(costs[f"survive_linf@{e:g}"], 1.0) for e in probed)]
    for i in range(1, len(robust)):  # a survival curve does not rise
        robust[i] = min(robust[i], robust[i - 1])
    shares = [costs[f"steps_linf@{e:g}"] for e in probed]

    def share_at(e: float) -> float:
        if e <= probed[0]:
            return shares[0]
        if e >= probed[-1]:
            return shares[-1]
        i = next(k for k in range(1, len(probed)) if probed[k] >= e)
        w = (e - probed[i - 1]) / (probed[i] - probed[i - 1])
        return shares[i - 1] + w * (shares[i] - shares[i - 1])

    def budget_of(q: float) -> float:  # the budget a share q of the samples still resists: S^-1(q)
        if q < robust[-1]:
            return math.inf
        for i in range(1, len(eps)):
            if robust[i] <= q:
                drop = robust[i - 1] - robust[i]
                return eps[i - 1] + (eps[i] - eps[i - 1]) * ((robust[i - 1] - q) / drop if drop > 0 else 1.0)
        return eps[-1]

    k = MIN_EPS_QUANTILES
    budgets = [budget_of(1.0 - (j + 0.5) / k) for j in range(k)]
    size = min(max(m, 1), max(int(costs.get("batch", _PROBE_MAX)), 1))
    sample_steps = 0.0
    rounds: list[tuple[float, float]] = []  # per run: (share of samples that run every step, largest fooled share)
    lo, hi = [0.0] * k, [eps_max] * k
    for r in range(full_runs):
        full = fooled_max = 0.0
        for j, t in enumerate(budgets):
            if r > 0 and math.isinf(t):
                continue  # not fooled at eps_max: left out of the bisection
            at = eps_max if r == 0 else (lo[j] + hi[j]) / 2
            if at < t:
                share = 1.0
                full += 1.0 / k
                lo[j] = at
            else:
                share = max(share_at(at), min(t / at, 1.0) if at > 0 else 1.0)
                fooled_max = max(fooled_max, share)
                hi[j] = at
            sample_steps += share / k
        rounds.append((full, fooled_max))
    calls = 0.0
    for full, fooled_max in rounds:
        held = 1.0 - (1.0 - full) ** size  # a batch holds a sample that runs every step
        calls += held + (1.0 - held) * fooled_max
    return m * s.min_eps_steps * sample_steps, _batches(m, costs) * s.min_eps_steps * calls


def _measured(norm: str, eps: Sequence[float | None], costs: Mapping[str, float]) -> bool:
    """Whether the probe counted PGD's steps at each of these budgets (:func:`overhead_costs`)."""
    return bool(eps) and all(e is not None and f"steps_{norm}@{e:g}" in costs for e in eps)


def _pgd_work(
    n: int, steps: int, restarts: int, budgets: Sequence[tuple[str, float]], costs: Mapping[str, float]
) -> tuple[float, float]:
    """(gradient steps, calls) of an early-stopping PGD on ``n`` samples at each of ``budgets`` (norm, eps), as the
    probe counted them (``steps_NORM@EPS``: the share of PGD-10's sample-steps its inputs ran; ``iterations_...``:
    the share of its steps the batch ran): a misclassified input leaves after its first step, a correctly
    classified one after the share the probe counted (PGD-10's share is an upper bound on PGD-40's, whose steps are
    shorter in proportion: on the synthetic-credit MLP at eps 0.1, 0.49 and 0.40), and a further restart runs on
    the inputs the probe left robust. A batch runs every step when it holds one of those (each is one with the
    share the probe left robust), else the share of steps the probe's batch ran."""
    acc = costs.get("clean_acc", 1.0)
    size = min(max(n, 1), max(int(costs.get("batch", _PROBE_MAX)), 1))
    nb = _batches(n, costs)
    sample_steps = calls = 0.0
    for norm, eps in budgets:
        key = f"{norm}@{eps:g}"
        robust = acc * costs.get(f"survive_{key}", 1.0)
        share = acc * costs[f"steps_{key}"] + (1.0 - acc) / max(steps, 1)
        sample_steps += n * steps * (share + (restarts - 1) * robust)
        full = 1.0 - (1.0 - robust) ** size  # a batch holds an input no step fools
        ran = full + (1.0 - full) * costs.get(f"iterations_{key}", 1.0)
        calls += nb * steps * (ran + (restarts - 1) * full)
    return sample_steps, calls


def _attacked_share(s: Settings, norm: str, costs: Mapping[str, float]) -> float:
    """The share of PGD's sample-steps an early-stopping attack runs, averaged over the budgets: misclassified
    inputs stop at once, the ones the probe's PGD-10 left robust run every step, the others (fooled on the way)
    half of them on average. 1 (the upper bound) where the probe measured nothing."""
    budgets = [e for e in (s.eps if norm == "linf" else s.eps_l2) if e > 0]
    keys = [f"survive_{norm}@{e:g}" for e in budgets]
    if not budgets or any(k not in costs for k in keys):
        return 1.0
    acc = costs.get("clean_acc", 1.0)
    return sum(acc * (costs[k] + (1.0 - costs[k]) / 2) for k in keys) / len(keys)


def _attack_work(
    method: str, norm: str, s: Settings, n: int, num_classes: int, costs: Mapping[str, float]
) -> tuple[int, int, int]:
    """(gradient steps, forward passes, calls) of one listed attack at one budget on ``n`` samples: an upper
    bound (an attack stops on a sample once it is fooled), at the attacks' default iterations."""
    from .attacks.autoattack import SQUARE_QUERIES, STANDARD_STEPS, STANDARD_TARGETS

    nb = _batches(n, costs)
    targets = min(STANDARD_TARGETS, num_classes - 1)
    if method == "autoattack":
        one = dataclasses.replace(s, autoattack=s.version, autoattack_norms=(norm,), eps=(1.0,), eps_l2=(1.0,))
        return _autoattack_work(one, n, num_classes, costs)
    iters = {
        "fgsm": 1,
        "pgd": s.steps * s.restarts,
        "apgd-ce": STANDARD_STEPS,
        "apgd-t": STANDARD_STEPS * targets if num_classes >= 4 else 0,
        "fab-t": STANDARD_STEPS * targets * 2,
    }
    if method == "square":
        return 0, n * SQUARE_QUERIES, nb * SQUARE_QUERIES * _square_calls(n / max(nb, 1), costs)
    count = iters.get(method, s.steps * s.restarts)  # another registered attack: priced as PGD
    return n * count, 0, nb * count


def _autoattack_work(s: Settings, n: int, num_classes: int, costs: Mapping[str, float]) -> tuple[int, int, float]:
    """(gradient steps, forward passes, calls) of AutoAttack at every budget, on the correctly classified share of
    the samples (``costs["clean_acc"]``, measured by the plan's probe; else all). As the section runs it
    (:func:`~dlaudit.robust.trust.autoattack_curve`), a larger budget attacks only the inputs that resisted the
    smaller one, and the later attacks run on the ones APGD-CE leaves: both shares are the ones PGD-10 left robust
    on the probe's inputs (``survive_NORM@EPS``; none robust there reads as :data:`UNSEEN`, what 32 inputs cannot
    tell from none), else :data:`SURVIVING`. A batch with no survivor runs no later attack: a batch of ``m`` has
    one with chance ``1 - (1 - p)^m``."""
    from .attacks.autoattack import FAST_STEPS, FAST_TARGETS, RAND_EOT, SQUARE_QUERIES, STANDARD_STEPS, STANDARD_TARGETS

    rand = s.autoattack == "rand"
    standard = s.autoattack == "standard"
    iters, targets = (STANDARD_STEPS, STANDARD_TARGETS) if standard else (FAST_STEPS, FAST_TARGETS)
    targets = min(targets, num_classes - 1)
    if not rand:
        n = round(n * costs.get("clean_acc", 1.0))  # AutoAttack attacks the correctly classified inputs only
    apgd_t = targets if num_classes >= 4 else 0  # the targeted DLR loss needs 4 classes
    steps = forwards = 0
    calls = 0.0
    for norm in s.autoattack_norms:
        attacked = float(n)  # inputs the budget attacks: the ones that resisted the smaller budget
        for eps in sorted(e for e in (s.eps if norm == "linf" else s.eps_l2) if e > 0):
            share = costs.get(f"survive_{norm}@{eps:g}", SURVIVING) * n
            later = min(max(share, attacked * UNSEEN), attacked)  # outlast APGD-CE
            p = later / attacked if attacked else 0.0
            nb, lb = _batches(round(attacked), costs), _with_survivor(round(attacked), p, costs)
            if rand:  # APGD-CE on all, APGD-DLR on the survivors, RAND_EOT passes a step; keyed passes: chunks
                steps += round(attacked + later) * STANDARD_STEPS * RAND_EOT
                calls += (_chunks(attacked, costs) + _chunks(later, costs)) * STANDARD_STEPS * RAND_EOT
            else:
                ce, ce_calls = attacked * iters, nb * iters  # APGD-CE on all, APGD-T on the survivors
                if f"steps_{norm}@{eps:g}" in costs:  # early exit: at most the sample-steps the probe's PGD ran
                    ce = iters * min(attacked, max(later, n * costs[f"steps_{norm}@{eps:g}"]))
                    full = 1.0 - (1.0 - p) ** min(max(round(attacked), 1), max(int(costs.get("batch", _PROBE_MAX)), 1))
                    ce_calls *= full + (1.0 - full) * costs.get(f"iterations_{norm}@{eps:g}", 1.0)
                steps += round(ce + later * apgd_t * iters)
                calls += ce_calls + lb * apgd_t * iters
                if standard:
                    steps += round(later * targets * iters * 2)  # FAB-T: a forward-backward pass for each of two logits
                    forwards += round(later * SQUARE_QUERIES)  # Square: one forward pass a query
                    square = _square_calls(later / lb, costs) if lb else 0.0  # live inputs a batch
                    calls += lb * (targets * iters * 2 + SQUARE_QUERIES * square)
            attacked = later
    return steps, forwards, calls


UNSEEN = 0.5 / SURVIVAL_INPUTS
"""The share of the inputs a budget attacks that outlast APGD-CE where the probe saw none of its 32 do: half of one
in 32 (on the synthetic-credit MLP at eps 0.3 the probe saw none, and 14 inputs reached the budget, 3 survived)."""


def _with_survivor(count: int, p: float, costs: Mapping[str, float]) -> float:
    """Expected batches, of ``count`` inputs in the engine's batches, that hold an input outlasting APGD-CE (each
    does with chance ``p``)."""
    if count <= 0 or p <= 0:
        return 0.0
    size = max(int(costs.get("batch", _PROBE_MAX)), 1)
    full, rest = divmod(count, size)
    return full * (1 - (1 - p) ** size) + (1 - (1 - p) ** rest if rest else 0.0)


# -- what --time-budget needs (see dlaudit.plan) --------------------------------------------------

LADDER = (25, 50, 100, 200, 500, 1000, 2000, 5000, 10_000)
"""Samples attacked (certified) at the rungs of the ladder, up to the configured count."""
PROBES = 5
"""Measures of the unit costs the probe takes the median of."""
PROBE_SECONDS = 2.0
"""The probe stops measuring again once its measures took this long (a resnet18's five took 13 s)."""
SMOOTHING_MIDDLE = 10_000
"""``dlaudit certify``'s rung between the fast profile's 1,000 noise draws and the full 100,000."""


def _probe(bundle: ModelBundle, data: AuditData, params: Mapping[str, Any]) -> dict[str, float]:
    """:func:`unit_costs`, each the median of :data:`PROBES` measures (one measure on a busy machine can be off by
    2x either way)."""
    import statistics
    import time

    from ..plan import run_probe

    seen: list[dict[str, float]] = []

    def measure(b: ModelBundle, d: AuditData) -> None:
        seen.append(unit_costs(b, d))

    started = time.perf_counter()
    for _ in range(PROBES):
        run_probe(measure, bundle, data)
        if time.perf_counter() - started > PROBE_SECONDS:  # a large model: long passes, less noise, fewer measures
            break
    costs = {k: statistics.median(c[k] for c in seen) for k in seen[0]}

    def extra(b: ModelBundle, d: AuditData) -> None:
        costs.update(overhead_costs(b, d, Settings.build(b, fast=True, **params)))
        costs["keyed"] = float(_stochastic(b, d))  # a model random at inference: keyed passes and votes

    run_probe(extra, bundle, data)
    return costs


def _levels(bundle: ModelBundle, data: AuditData, params: Mapping[str, Any]) -> list[Level]:
    """The fast profile on more and more samples up to the configured count, then (``dlaudit certify`` with
    smoothing) 10,000 noise draws on them, then the full profile: samples first, then strength."""
    fast, full = Settings.build(bundle, fast=True, **params), Settings.build(bundle, fast=False, **params)
    top = min(full.n or len(data), len(data))
    bottom = min(fast.n or len(data), LADDER[0], top)
    counts = sorted({k for k in LADDER if bottom < k < top} | {bottom, top})
    levels = [Level({"n": k}, True, k) for k in counts]
    draws = params.get("smoothing_n")
    if (
        full.scope == "certify"
        and full.certify == "smoothing"
        and draws is None
        and full.smoothing_n > SMOOTHING_MIDDLE
    ):
        levels.append(Level({"n": top, "smoothing_n": SMOOTHING_MIDDLE}, True, top))
    strength: dict[str, Any] = {"n": top}
    for rung in {"full": STRENGTH, "attacks": STRENGTH[:1]}.get(full.scope, ()):  # one group after another
        strength.update({k: getattr(full, k) for k in rung if k not in params})
        levels.append(Level(dict(strength), True, top))
    if full.scope == "full" and full.autoattack and "autoattack_n" not in params:  # standard AutoAttack on a part
        for k in sorted({round(top * f) for f in AUTOATTACK_PARTS} - {0, top}):
            levels.append(Level({"n": top, "autoattack_n": k}, False, top))
    levels.append(Level({"n": top}, False, top))
    return _distinct(bundle, params, levels)


AUTOATTACK_PARTS = (0.25, 0.5, 0.75)
"""Shares of the samples the rungs between the last strength rung and the full profile run the full profile's
AutoAttack on (the first ones): on the digits CNN the full profile's AutoAttack alone is about 90 s of the 118 s, a
step no 2-minute budget could take at once."""
STRENGTH = (
    ("steps", "min_eps_samples", "min_eps_steps", "bisection"),
    ("certify", "smoothing_n", "smoothing_samples", "smoothing_max_flops"),
)
"""Groups of settings the ladder raises to the full profile's, in this order, between the fast profile on every
sample and the full profile (whose remaining step is AutoAttack's standard version): the cheap strength first, so a
budget that cannot buy standard AutoAttack still buys PGD's full steps and the full certification."""


def _distinct(bundle: ModelBundle, params: Mapping[str, Any], levels: list[Level]) -> list[Level]:
    """``levels`` without a rung whose settings equal the one before it (a group the scope does not use)."""
    out: list[Level] = []
    seen = None
    for level in levels:
        built = Settings.build(bundle, fast=level.fast, **{**params, **level.params})
        if built != seen:
            out.append(level)
        seen = built
    return out


def _cost(
    bundle: ModelBundle, data: AuditData, level: Level, params: Mapping[str, Any], costs: Mapping[str, float]
) -> float:
    s = Settings.build(bundle, fast=level.fast, **{**params, **level.params})
    found = estimate(bundle, data, s, costs)
    return found[0] if found is not None else 0.0


BUDGET = Budget(probe=_probe, levels=_levels, cost=_cost)
"""How ``--time-budget`` sizes the section: its ladder (:func:`_levels`) priced by :func:`estimate`."""
