"""The robustness section: attack curves, noise, minimal budgets, masking checks, groups.

Registered as the ``robustness`` analysis (``dlaudit report --checks robustness``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..bundle import ModelBundle
from ..data import AuditData
from ..data.groups import MIN_GROUP_SIZE, resolve_sensitive
from ..errors import ConfigError
from ..parsing import round_or_none
from ..report.model import Section, Table
from ..stats import wilson_interval
from ..utils import ProgressFn
from .attacks import PGD_STEP_RATIO, AttackMethod, budget_problem, make_attack, run_attack
from .bounds_plot import bounds_figure
from .certified import certified_part
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
from .noise import noise_accuracy
from .plots import curves_figure, examples_figure
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

    n: int = 1000
    steps: int = 40
    restarts: int = 1
    attacks: tuple[str, ...] = ATTACKS
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
    """AutoAttack at every positive budget of ``autoattack_norms``: ``standard``, ``fast`` or None (off)."""
    autoattack_norms: tuple[str, ...] = ("linf",)
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


FAST = {
    "n": 200,
    "steps": 10,
    "min_eps_samples": 40,
    "min_eps_steps": 10,
    "bisection": 6,
    "autoattack": "fast",
    "certify": "ibp",
    "smoothing_n": 1000,
    "smoothing_samples": 20,
    "smoothing_max_flops": 1e12,
}


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
    if fast:
        base.update(FAST)
    for key, value in params.items():
        if value is None:
            continue
        base[key] = _as_tuple(key, value) if key in ("attacks", "eps", "eps_l2", "noise", "autoattack_norms") else value
    for key in ("autoattack", "certify"):  # given as "off" etc.: off; not given: the default stays
        if key in base and str(base[key]).lower() in ("none", "off", "false", ""):
            base[key] = None
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


def _validate(s: Settings) -> None:
    bad = [a for a in s.attacks if a not in ("fgsm_linf", "fgsm_l2", "pgd_linf", "pgd_l2")]
    if bad:
        raise ConfigError(f"unknown attack(s) {', '.join(bad)}; choose from: fgsm_linf, fgsm_l2, pgd_linf, pgd_l2")
    for key in ("eps", "eps_l2", "noise"):
        values = getattr(s, key)
        if any(not (math.isfinite(v) and v >= 0) for v in values):
            raise ConfigError(f"robustness parameter {key} must be numbers >= 0, got {values}")
    for key in ("n", "steps", "restarts", "min_eps_steps"):
        if int(getattr(s, key)) < 1:
            raise ConfigError(f"robustness parameter {key} must be at least 1, got {getattr(s, key)}")
    if s.bisection < 0 or s.min_eps_samples < 0 or s.examples < 0:
        raise ConfigError("robustness parameters bisection, min_eps_samples and examples must be >= 0")
    if s.features not in FEATURES:
        raise ConfigError(f"robustness parameter features must be one of {', '.join(FEATURES)}, got {s.features!r}")
    if s.autoattack is not None and s.autoattack not in ("standard", "fast"):
        raise ConfigError(f"robustness parameter autoattack must be standard, fast or none, got {s.autoattack!r}")
    if s.certify is not None and s.certify not in ("ibp", "crown-ibp", "crown"):
        raise ConfigError(f"robustness parameter certify must be ibp, crown-ibp, crown or none, got {s.certify!r}")
    if not (s.smoothing_sigma > 0 and s.smoothing_n >= 1 and s.smoothing_n0 >= 1 and 0 < s.smoothing_alpha < 1):
        raise ConfigError("smoothing needs sigma > 0, n and n0 >= 1 and alpha in (0, 1)")
    bad_norms = [v for v in s.autoattack_norms if v not in ("linf", "l2")]
    if bad_norms:
        raise ConfigError(f"robustness parameter autoattack_norms must be linf and/or l2, got {', '.join(bad_norms)}")


def middle_eps(eps: Sequence[float]) -> float | None:
    """The budget the section's summary, examples and effort checks use: the middle positive one (lower middle of an even count)."""
    positive = sorted(e for e in eps if e > 0)
    return positive[(len(positive) - 1) // 2] if positive else None


def _attack_for(name: str, s: Settings, features: tuple[int, ...] | None) -> AttackMethod:
    method, norm = name.split("_")
    if method == "fgsm":
        return make_attack("fgsm", 1.0, norm=norm, features=features)
    return make_attack("pgd", 1.0, steps=s.steps, norm=norm, restarts=s.restarts, features=features)


def attack_features(bundle: ModelBundle, which: str) -> tuple[int, ...] | None:
    """The flat input indices the attacks may change: None for ``all``; for ``numeric``, a tabular
    model's numeric columns (from the encoder on its card)."""
    if which == "all":
        return None
    encoder = bundle.card.encoder
    if bundle.card.modality != "tabular" or not encoder:
        raise ConfigError(
            "features=numeric needs a tabular model whose card has its encoder (one trained by dlaudit on csv, adult or german data); "
            "use features=all for this model"
        )
    numeric = len(encoder.get("numeric") or [])
    if numeric == 0:
        raise ConfigError("features=numeric: the model's encoder has no numeric columns to attack; use features=all")
    return tuple(range(numeric))


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
    vr = bundle.card.value_range
    s = settings(fast, vr, **params)
    feats = attack_features(bundle, s.features)
    sample = sample_data(data, s.n, seed)
    x, y = sample.x, sample.y
    n = len(y)
    clean_pred = clean_predictions(bundle, x)
    clean_ok = clean_pred == y
    clean = int(clean_ok.sum()) / n
    chance = float(torch.bincount(y, minlength=bundle.card.num_classes).max()) / n

    sec = Section(name="robustness", title="Robustness")
    sec.add_metric(
        "robustness.clean_acc",
        clean,
        ci=wilson_interval(int(clean_ok.sum()), n),
        description=f"accuracy without attack on the {n} samples attacked",
        higher_is_better=True,
    )

    curves: dict[str, Curve] = {}
    for name in s.attacks:
        eps_list = s.eps if name.endswith("linf") else s.eps_l2
        curves[name] = robustness_curve(
            bundle,
            x,
            y,
            _attack_for(name, s, feats),
            eps_list,
            clean_pred=clean_pred,
            seed=seed,
            batch_size=s.batch_size,
            progress=progress,
        )
        for e, a in zip(curves[name].eps, curves[name].accuracy):
            k = round(a * n)
            sec.add_metric(
                _metric_name(name, e),
                a,
                ci=wilson_interval(k, n),
                description=f"accuracy under {curves[name].description} at eps {e:g}",
                higher_is_better=True,
            )
            if (why := budget_problem(e, name.split("_")[1], vr, tuple(x.shape[1:]))) is not None:
                sec.add_finding("warning", f"{name} at eps {e:g} was computed, but {why}", check="eps-range")

    aa_runs = _autoattack(bundle, x, y, clean_ok, s, seed, sec, curves, progress, feats)
    worst = _worst_cases(sec, curves, n)

    noise = (
        {
            kind: noise_accuracy(bundle, x, y, kind=kind, strengths=s.noise, seed=seed, progress=progress)
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

    min_eps_row = _min_eps(bundle, x, y, clean_ok, s, seed, sec, progress)
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
    if bundle.card.modality == "image" and s.examples and "pgd_linf" in curves:
        fig = _examples(bundle, x, y, clean_pred, curves["pgd_linf"], s, seed)
        if fig is not None:
            sec.figures.append(fig)
    _headline(sec, bundle, curves, worst, clean, n, data, s.features)
    bs = next((c.batch_size for c in curves.values() if c.batch_size), s.batch_size)
    sec.params = {
        "n": n,
        "data": data.name,
        "split": data.split,
        "fast": fast,
        "seed": seed,
        "steps": s.steps,
        "restarts": s.restarts,
        "alpha": f"{PGD_STEP_RATIO:g} * eps / steps",
        "random_start": True,
        "early_stop": True,
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
    }
    return sec


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
    n = len(y)
    for norm in s.autoattack_norms:
        eps_list = s.eps if norm == "linf" else s.eps_l2
        run = autoattack_curve(
            bundle,
            x,
            y,
            clean_ok,
            eps_list,
            norm=norm,
            version=s.autoattack,
            seed=seed,
            batch_size=s.batch_size,
            progress=progress,
            features=features,
        )
        runs[norm] = run
        curves[run.curve.name] = run.curve
        for e, a in zip(run.curve.eps, run.curve.accuracy):
            res = run.results.get(e)
            detail = (
                "" if res is None else "; broken per attack: " + ", ".join(f"{k} {v}" for k, v in res.counts.items())
            )
            sec.add_metric(
                _metric_name(run.curve.name, e),
                a,
                ci=wilson_interval(round(a * n), n),
                description=f"accuracy under {run.curve.description} at eps {e:g}{detail}",
                higher_is_better=True,
            )
    return runs


def _worst_cases(sec: Section, curves: dict[str, Curve], n: int) -> dict[str, Curve]:
    """``robustness.worst_<norm>.acc@E``: per sample, the worst case over every attack that ran (the headline)."""
    out: dict[str, Curve] = {}
    for norm in ("linf", "l2"):
        attacked = [c for c in curves.values() if c.name.endswith(f"_{norm}")]
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
            caption=f"On {n} samples; a sample misclassified without attack counts as broken at every eps.",
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
    if bundle.card.modality == "tabular" and features == "numeric":
        k = len(attack_features(bundle, "numeric") or ())
        sec.add_finding(
            "info",
            f"tabular inputs: the attacks change only the {k} numeric column(s), scaled to [0, 1]; every one-hot category keeps its value, "
            "so each adversarial record is one a user could submit, up to the budget (noise and the certified bounds still cover every feature)",
            check="tabular",
        )
    elif bundle.card.modality == "tabular":
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
