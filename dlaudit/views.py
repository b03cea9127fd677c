"""The audit and its named views: ``audit`` (any analyses), ``attack`` and ``certify`` (the robustness
analysis in one of its scopes), ``robustness``, ``fairness_report`` and ``explain_model``.

Each builds an :class:`~dlaudit.pipeline.AuditSpec` and runs it through :mod:`dlaudit.pipeline`; none holds
analysis logic (that is in the analyses and their settings). Importing this module is cheap (no torch).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import pipeline
from .analysis import parse_checks
from .errors import ConfigError
from .parsing import parse_bins, parse_names, parse_numbers, split_list
from .pipeline import AuditSpec

if TYPE_CHECKING:
    from .bundle import ModelBundle
    from .data import AuditData
    from .explain import Explanation
    from .report.model import Report, Section
    from .utils import ProgressFn

__all__ = ["audit", "attack", "certify", "robustness", "fairness_report", "explain_model"]

DEFAULT_ATTACK_EPS = (0.05, 0.1, 0.3)
"""``dlaudit attack``'s L-inf budgets (input units)."""
DEFAULT_ATTACK_EPS_L2 = (0.5, 1.0, 2.0)
"""``dlaudit attack``'s L2 budgets (input units)."""


# -- the audit -------------------------------------------------------------------------------


def audit(
    model: ModelBundle | str | Path,
    data: AuditData | str | Path | None = None,
    *,
    checks: Sequence[str] | str | None = None,
    fast: bool = False,
    seed: int = 0,
    device: str = "auto",
    progress: ProgressFn | None = None,
    trust_pickle: bool = False,
    params: dict[str, dict[str, Any]] | None = None,
    title: str | None = None,
    command: str | None = None,
    timeout: float | None = None,
    workers: int | None = None,
    ray_address: str | None = None,
    checkpoint: str | Path | None = None,
    compile: bool = False,
    **data_kwargs: Any,
) -> Report:
    """Audit a model: run each check and gather the sections into a :class:`Report`.

    A thin layer over :func:`dlaudit.pipeline.run` (see :class:`dlaudit.pipeline.AuditSpec`).

    Parameters
    ----------
    model
        A model file or a :class:`ModelBundle`.
    data
        A dataset spec, an :class:`AuditData`, or None for the held-out split on the card.
    checks
        Which sections (``performance``, ``explain``, ``robustness``, ``fairness``,
        or any registered analysis; a list or comma-separated); the default ones when
        None. They appear in report order whatever order they are given in. A check
        that does not apply is a skipped section with its reason; one that fails is
        an error section; neither stops the audit.
    fast
        Each analysis' fast profile (fewer samples and steps), stated in the report.
    seed
        Every random step is seeded from this: the same seed gives the same numbers.
    device
        ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
    progress
        ``progress(stage, done, total)``, called as sections advance.
    params
        Per-check settings, e.g. ``{"robustness": {"eps": [0.1]}}``; bad ones fail before any work.
    title, command
        The report's title and the command line recorded in its provenance.
    timeout
        Seconds each section may take; one past it is reported as failed with the
        reason, and the rest still run (see :func:`dlaudit.analysis.run_analysis`).
    workers, ray_address, checkpoint
        Shard the work over a local Ray runtime of ``workers`` processes, or the Ray
        cluster at ``ray_address``, and/or keep finished shards in ``checkpoint`` to resume
        (see :mod:`dlaudit.parallel`); the same numbers as one process.
    compile
        Run the attacks' gradient steps through ``torch.compile`` where the model allows it
        (see :mod:`dlaudit.robust.attacks.speed`); the report's provenance says where it did not.
    data_kwargs
        Passed to :func:`load_data` (``data_dir``, ``target``, ``sensitive``...).

    Returns
    -------
    Report
        ``report.metrics`` (the flat dict), ``report.findings``, ``report.passed``;
        :func:`dlaudit.check_report` checks gates, :func:`dlaudit.save_report` writes it.

    Examples
    --------
    >>> report = dlaudit.audit("cnn.pt", checks="performance,robustness", fast=True)  # doctest: +SKIP
    >>> dlaudit.check_report(report, ["performance.accuracy >= 0.9"])  # doctest: +SKIP
    >>> dlaudit.save_report(report, "reports/cnn.html")  # doctest: +SKIP
    """
    spec = AuditSpec(
        model,
        data,
        data_options=data_kwargs,
        checks=None if checks is None else tuple(parse_checks(checks)),
        params=params or {},
        fast=fast,
        seed=seed,
        device=device,
        trust_pickle=trust_pickle,
        workers=workers,
        ray_address=ray_address,
        checkpoint=checkpoint,
        compile=compile,
        timeout=timeout,
        title=title,
        command=command,
    )
    return pipeline.run(spec, progress)


def _view(
    name: str,
    model: ModelBundle | str | Path,
    data: Any,
    checks: tuple[str, ...],
    params: dict[str, dict[str, Any]],
    *,
    fast: bool,
    seed: int,
    device: str,
    trust_pickle: bool,
    progress: ProgressFn | None,
    command: str | None = None,
    title: str | None = None,
    strict: bool = True,
    data_options: Mapping[str, Any] | None = None,
    **run: Any,
) -> tuple[Report, dict[str, Any]]:
    """A named view (``attack``, ``certify``, ...): the pipeline on ``checks`` with ``params``."""
    spec = AuditSpec(
        model,
        data,
        data_options=dict(data_options or {}),
        checks=checks,
        params=params,
        fast=fast,
        seed=seed,
        device=device,
        trust_pickle=trust_pickle,
        title=title or f"dlaudit {name}: {pipeline.model_name(model)}",
        command=command,
        strict=strict,
        **run,
    )
    return pipeline.run_keeping(spec, progress)


# -- robustness ------------------------------------------------------------------------------


def attack(
    model: ModelBundle | str | Path,
    data: AuditData | str | Path | None = None,
    *,
    attacks: str | Sequence[str] | None = None,
    norms: str | Sequence[str] = ("linf",),
    eps: str | Sequence[float] = DEFAULT_ATTACK_EPS,
    eps_l2: str | Sequence[float] = DEFAULT_ATTACK_EPS_L2,
    steps: int | None = None,
    alpha: float | None = None,
    restarts: int = 1,
    n: int | None = None,
    batch_size: int | None = None,
    early_stop: bool = True,
    version: str | None = None,
    fast: bool = False,
    seed: int = 0,
    device: str = "auto",
    progress: ProgressFn | None = None,
    trust_pickle: bool = False,
    workers: int | None = None,
    ray_address: str | None = None,
    checkpoint: str | Path | None = None,
    compile: bool = False,
    features: str = "all",
    command: str | None = None,
    **data_kwargs: Any,
) -> Report:
    """Robust accuracy under the attacks asked for, at each budget (``dlaudit attack``).

    The robustness analysis restricted to these attacks (its ``attacks`` scope): a :class:`Report`
    with one ``robustness`` section whose metrics are named as in a full report, e.g.
    ``robustness.pgd_linf.acc@0.1``, plus ``robustness.clean_acc`` and, with several attacks on a
    norm, ``robustness.worst_<norm>.acc@E`` (per sample, the worst case over them).

    ``eps`` are L-inf budgets and ``eps_l2`` L2 budgets, in input units (lists or
    comma-separated strings); ``attacks`` are registry names (fgsm, pgd, apgd-ce, apgd-t,
    fab-t, square, autoattack, or any registered attack) run at each of ``norms``, by default fgsm and
    pgd; a text model takes the text attacks instead (by default charswap, wordswap and hotflip, at
    1..3 words changed); ``n``
    attacks a seeded random subset of that many samples (default all). ``steps`` (default 40),
    ``alpha``, ``restarts`` and ``early_stop`` are PGD's; ``version`` is AutoAttack's
    (``standard`` by default). ``fast`` is the analysis' fast profile: PGD-10 on at most 200
    samples and AutoAttack's fast version (explicit values win). ``compile`` runs the gradient
    steps through ``torch.compile`` where the model allows it (the provenance's ``engine`` says
    where not). ``features="numeric"`` attacks only a tabular model's numeric columns.
    """
    from .robust.text_section import DefaultAttacks

    methods = parse_names(attacks if attacks is not None else ("fgsm", "pgd"), _attack_names(), "attack(s)")
    norm_list = parse_names(norms, ("linf", "l2"), "norm(s)")
    named = [f"{m}_{v}" for v in norm_list for m in methods]
    settings = {
        "scope": "attacks",
        "attacks": named if attacks is not None else DefaultAttacks(named),
        "eps": _budgets(eps, "eps"),
        "eps_l2": _budgets(eps_l2, "eps-l2"),
        "steps": steps,
        "alpha": alpha,
        "restarts": restarts,
        "n": n,
        "batch_size": batch_size,
        "early_stop": early_stop,
        "version": version,
        "features": features,
    }
    return _view(
        "attack", model, data, ("robustness",), {"robustness": settings}, fast=fast, seed=seed, device=device,
        trust_pickle=trust_pickle, progress=progress, command=command, data_options=data_kwargs, workers=workers,
        ray_address=ray_address, checkpoint=checkpoint, compile=compile,
    )[0]  # fmt: skip


def _budgets(values: str | Sequence[float], label: str) -> list[float]:
    """Budgets or radii given as ``"0.1,0.3"`` (parsed, each >= 0) or as numbers."""
    return parse_numbers(values, label, minimum=0) if isinstance(values, str) else [float(v) for v in values]


def _attack_names() -> list[str]:
    from .robust.attacks import list_attacks
    from .robust.text_section import TEXT_ATTACKS

    return list_attacks() + [a for a in TEXT_ATTACKS if a not in list_attacks()]


def robustness(
    model: ModelBundle | str | Path,
    data: AuditData | str | Path | None = None,
    *,
    fast: bool = False,
    seed: int = 0,
    device: str = "auto",
    progress: ProgressFn | None = None,
    trust_pickle: bool = False,
    data_dir: str | Path | None = None,
    target: str | None = None,
    sensitive: str | Sequence[str] | None = None,
    **params: Any,
) -> Section:
    """The robustness section of a report on its own (curves, noise, minimal eps, masking checks, groups).

    ``params`` are the analysis' settings (see :class:`dlaudit.robust.analysis.Settings`),
    e.g. ``eps=[0, 0.1]``, ``steps=20``, ``n=500``. Raises the analysis' error
    instead of returning a skipped section.
    """
    rep, _ = _view(
        "robustness", model, data, ("robustness",), {"robustness": params}, fast=fast, seed=seed, device=device,
        trust_pickle=trust_pickle, progress=progress,
        data_options={"data_dir": data_dir, "target": target, "sensitive": sensitive},
    )  # fmt: skip
    return rep.sections[0]


def certify(
    model: ModelBundle | str | Path,
    data: AuditData | str | Path | None = None,
    *,
    method: str = "smoothing",
    sigma: float = 0.25,
    radii: str | Sequence[float] = (0.0, 0.25, 0.5, 1.0),
    eps: str | Sequence[float] = (0.1,),
    n: int | None = None,
    n0: int = 100,
    alpha: float = 0.001,
    inputs: int | None = None,
    batch_size: int | None = None,
    fast: bool = False,
    seed: int = 0,
    device: str = "auto",
    progress: ProgressFn | None = None,
    trust_pickle: bool = False,
    workers: int | None = None,
    ray_address: str | None = None,
    checkpoint: str | Path | None = None,
    command: str | None = None,
    **data_kwargs: Any,
) -> Report:
    """Certified robustness (``dlaudit certify``): a proven lower bound where attacks give an upper one.

    The robustness analysis restricted to one certificate (its ``certify`` scope): a
    :class:`Report` with one ``robustness`` section. ``method="smoothing"``: randomized
    smoothing (Cohen et al. 2019, arXiv:1902.02918) with noise ``sigma``, ``n0`` selection and
    ``n`` estimation samples (default 100,000), level ``alpha``; metrics
    ``robustness.smoothing_l2.acc@R`` at the L2 ``radii`` and ``robustness.smoothing_l2.abstain_rate``.
    ``"ibp"``, ``"crown-ibp"``, ``"crown"``: verified accuracy of the model itself at the L-inf
    budgets ``eps``, ``robustness.certified_linf.acc@E``. ``inputs`` certifies a seeded subset of
    that many samples (default all); ``fast`` (the analysis' fast profile) uses ``n = 1000`` and
    at most 50 inputs (explicit values win).
    """
    if inputs is not None and (isinstance(inputs, bool) or int(inputs) < 1):
        raise ConfigError(f"inputs (samples to certify) must be at least 1, got {inputs!r}")
    settings = {
        "scope": "certify",
        "certify": method,
        "smoothing_sigma": sigma,
        "radii": _budgets(radii, "radius"),
        "eps": _budgets(eps, "eps"),
        "smoothing_n": n,
        "smoothing_n0": n0,
        "smoothing_alpha": alpha,
        "n": inputs,
        "batch_size": batch_size,
    }
    return _view(
        "certify", model, data, ("robustness",), {"robustness": settings}, fast=fast, seed=seed, device=device,
        trust_pickle=trust_pickle, progress=progress, command=command, data_options=data_kwargs, workers=workers,
        ray_address=ray_address, checkpoint=checkpoint,
    )[0]  # fmt: skip


# -- fairness --------------------------------------------------------------------------------


def fairness_report(
    model: ModelBundle | str | Path,
    data: AuditData | str | Path | None = None,
    *,
    sensitive: str | Sequence[str] | None = None,
    intersection: bool | None = None,
    bins: Mapping[str, Sequence[float]] | Sequence[str] | None = None,
    n_boot: int | None = None,
    ci: float = 0.95,
    gap_threshold: float = 0.1,
    min_group_size: int = 30,
    seed: int = 0,
    fast: bool = False,
    device: str = "auto",
    trust_pickle: bool = False,
    progress: ProgressFn | None = None,
    title: str | None = None,
    command: str | None = None,
    **data_kwargs: Any,
) -> Report:
    """Group fairness of a model: a report with the performance and fairness sections (``dlaudit fairness``).

    Parameters
    ----------
    model, data
        As for :func:`audit` (``data`` left out: the held-out split on the card).
    sensitive
        Sensitive columns (``"sex,race"`` or a list), looked up among the data's
        sensitive and raw columns; one that is missing, constant or has NaN is
        reported as undefined with its reason. Default: the data's sensitive columns.
    intersection
        Also judge the intersection of the features (``sex&race``); None (the default): when two or
        more features are named.
    bins
        Bin edges for continuous features, e.g. ``{"age": [25, 60]}`` or ``["age=25,60"]`` (as ``--bins``).
    n_boot, ci
        Bootstrap resamples (default 1000; 200 with ``fast``) and confidence level.
    gap_threshold, min_group_size
        Gaps over the threshold are warnings; smaller groups are not judged.

    Returns
    -------
    Report
        ``report.metrics`` holds ``performance.accuracy`` and the
        ``fairness.<feature>.*`` metrics, e.g. ``fairness.sex.demographic_parity_difference``.
    """
    params: dict[str, Any] = {
        "sensitive": sensitive,
        "intersection": intersection,
        "bins": parse_bins(bins),
        "n_boot": n_boot,
        "ci": ci,
        "gap_threshold": gap_threshold,
        "min_group_size": min_group_size,
    }
    return audit(
        model,
        data,
        checks=["performance", "fairness"],
        fast=fast,
        seed=seed,
        device=device,
        progress=progress,
        trust_pickle=trust_pickle,
        params={"fairness": params},
        title=title or "dlaudit fairness",
        command=command,
        **data_kwargs,
    )


# -- explanations ----------------------------------------------------------------------------


def explain_model(
    model: ModelBundle | str | Path,
    data: AuditData | str | Path | None = None,
    *,
    methods: Sequence[str] | str | None = None,
    n: int = 16,
    target: str | int = "predicted",
    seed: int = 0,
    fast: bool = False,
    quality: bool = True,
    device: str = "auto",
    trust_pickle: bool = False,
    progress: ProgressFn | None = None,
    data_options: dict[str, Any] | None = None,
    command: str | None = None,
    **params: Any,
) -> Explanation:
    """Explain ``n`` samples with captum, LIME and SHAP methods, and measure how far to trust each.

    The explanation analysis on its own (``dlaudit explain``). Returns a
    :class:`dlaudit.explain.Explanation`: ``attributions[method]`` (the inputs' shape), the
    explained samples, ``section`` (metrics such as ``explain.ig.deletion_auc``, findings,
    figures) and ``report`` (the :class:`Report` holding it, as every command returns);
    :func:`save_explanation` writes ``attributions.npz`` and ``explain.html``. ``data_options`` are the
    data-loading keywords (``data_dir``, ``target`` column, ``sensitive``); further keywords go
    to :func:`dlaudit.explain.explain` (``gradcam_layer``, ``shap_explainer``, ``settings``,
    ``background``).
    """
    from .explain.methods import parse_methods
    from .explain.text_section import TEXT_METHODS

    if methods is None or not set(split_list(methods)) <= set(TEXT_METHODS):  # text methods are checked on text models
        parse_methods(methods)  # an unknown method fails before the model loads
    settings = {"methods": methods, "n": n, "target": target, "quality": quality, **params}
    rep, kept = _view(
        "explain", model, data, ("explain",), {"explain": settings}, fast=fast, seed=seed, device=device,
        trust_pickle=trust_pickle, progress=progress, command=command, data_options=data_options,
    )  # fmt: skip
    exp = kept["explanation"]
    exp.report = rep
    return exp
