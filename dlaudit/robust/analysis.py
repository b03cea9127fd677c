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
from .attacks import PGD_STEP_RATIO, Attack, budget_problem, run_attack
from .curves import Curve, clean_predictions, minimal_eps, robustness_curve
from .groups import accuracy_by_group
from .masking import MaskingCheck, check_chance, check_monotone, check_more_effort, check_pgd_vs_fgsm, masking_findings
from .noise import noise_accuracy
from .plots import curves_figure, examples_figure

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


FAST = {"n": 200, "steps": 10, "min_eps_samples": 40, "min_eps_steps": 10, "bisection": 6}


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
    }
    if fast:
        base.update(FAST)
    for key, value in params.items():
        if value is None:
            continue
        base[key] = _as_tuple(key, value) if key in ("attacks", "eps", "eps_l2", "noise") else value
    s = Settings(**base)
    _validate(s)
    return s


def _as_tuple(key: str, value: Any) -> tuple:
    items = value.split(",") if isinstance(value, str) else list(value) if isinstance(value, Sequence) else [value]
    if key == "attacks":
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


def middle_eps(eps: Sequence[float]) -> float | None:
    """The budget the section's summary, examples and effort checks use: the middle positive one (lower middle of an even count)."""
    positive = sorted(e for e in eps if e > 0)
    return positive[(len(positive) - 1) // 2] if positive else None


def _attack_for(name: str, s: Settings) -> Attack:
    method, norm = name.split("_")
    if method == "fgsm":
        return Attack.fgsm(1.0, norm=norm)
    return Attack.pgd(1.0, steps=s.steps, norm=norm, restarts=s.restarts)


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
            _attack_for(name, s),
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
    checks = _masking_checks(bundle, x, y, clean_pred, curves, s, seed, chance, progress) if s.masking else []
    sec.add_metric(
        "robustness.masking.violations",
        sum(1 for c in checks if c.passed is False) if checks else None,
        description="gradient-masking checks that failed",
        higher_is_better=False,
        note="" if checks else "masking checks were switched off",
    )
    sec.findings.extend(masking_findings(checks))
    _groups(sample, curves.get("pgd_linf"), clean_ok, sec)

    _tables(sec, curves, noise, checks, min_eps_row, n)
    sec.figures.append(
        curves_figure(
            list(curves.values()), clean=clean, chance=1 / bundle.card.num_classes, majority=chance, noise=noise or None
        )
    )
    if bundle.card.modality == "image" and s.examples and "pgd_linf" in curves:
        fig = _examples(bundle, x, y, clean_pred, curves["pgd_linf"], s, seed)
        if fig is not None:
            sec.figures.append(fig)
    _headline(sec, bundle, curves, clean, n, data)
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
        "batch_size_chosen_by": "explicit" if s.batch_size else "throughput probe",
    }
    return sec


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
) -> list[MaskingCheck]:
    n = len(y)
    checks: list[MaskingCheck] = []
    if "fgsm_linf" in curves and "pgd_linf" in curves:
        checks.append(check_pgd_vs_fgsm(curves["fgsm_linf"], curves["pgd_linf"], n))
    checks.extend(check_monotone(c, n) for c in curves.values())
    width = bundle.card.value_range[1] - bundle.card.value_range[0]
    large = LARGE_EPS * width
    run = lambda atk, eps: robustness_curve(
        bundle, x, y, atk, [eps], clean_pred=clean_pred, seed=seed, batch_size=s.batch_size
    ).accuracy[0]
    checks.append(check_chance(run(Attack.pgd(large, steps=s.steps), large), large, chance, n))
    pgd = curves.get("pgd_linf")
    e = middle_eps(pgd.eps) if pgd is not None else None
    if pgd is not None and e is not None:
        base = pgd.at(e)
        more = run(Attack.pgd(e, steps=2 * s.steps, restarts=s.restarts), e)
        checks.append(
            check_more_effort(base, more, what=f"{2 * s.steps} steps", base_what=f"{s.steps} steps", eps=e, n=n)
        )
        restarts = s.restarts + 2
        more_r = run(Attack.pgd(e, steps=s.steps, restarts=restarts), e)
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
    out = run_attack(bundle, x[idx], y[idx], Attack.pgd(e, steps=s.steps), seed=seed, batch_size=len(idx))
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
    sec: Section, bundle: ModelBundle, curves: dict[str, Curve], clean: float, n: int, data: AuditData
) -> None:
    training = (bundle.card.training or {}).get("adversarial")
    if isinstance(training, dict) and training.get("method"):
        sec.add_finding(
            "info",
            f"the model was trained adversarially ({training.get('method')}, eps {training.get('eps')})",
            check="training",
        )
    if bundle.card.modality == "tabular":
        sec.add_finding(
            "info",
            "tabular inputs: attacks move scaled and one-hot features continuously, so these numbers bound sensitivity to small feature changes, not to realistic edits of a record",
            check="tabular",
        )
    pgd = curves.get("pgd_linf") or next(iter(curves.values()), None)
    if pgd is None:
        sec.summary = f"Clean accuracy {clean:.1%} on {n} samples of {data.name}."
        return
    e = middle_eps(pgd.eps)
    if e is None:
        sec.summary = f"Clean accuracy {clean:.1%} on {n} samples of {data.name}."
        return
    a = pgd.at(e)
    sec.summary = f"Under {pgd.description} at eps {e:g}, accuracy falls from {clean:.1%} to {a:.1%} ({n} samples of {data.name})."
    if clean > 0 and a < 0.5 * clean:
        sec.add_finding(
            "info",
            f"the model is easily fooled: {pgd.name} at eps {e:g} leaves {a:.1%} accuracy (clean {clean:.1%}); adversarial training "
            f"(dlaudit train ... --adversarial pgd --eps {e:g}; Madry et al. 2018, arXiv:1706.06083) is the standard remedy",
            check="headline",
        )
