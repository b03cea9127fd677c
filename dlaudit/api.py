"""The Python face of dlaudit: every CLI command is a thin layer over one function here."""
from __future__ import annotations

import datetime as _dt
import importlib.metadata
import logging
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from . import __version__
from ._alloc import malloc_tuning_state
from .analysis import list_analyses, run_analysis
from .bundle import ModelBundle, load_model, save_model
from .data import AuditData, load_splits
from .data import load_data as _load_data
from .data.validate import check_fits
from .errors import ConfigError
from .report.model import Report, Section
from .train import train as _train
from .utils import ProgressFn, resolve_device, seed_everything

__all__ = ["load_model", "save_model", "load_data", "data_for", "train", "audit", "info", "explain", "DEFAULT_CHECKS", "library_versions"]

log = logging.getLogger(__name__)

DEFAULT_CHECKS = ("performance", "explain", "robustness", "fairness")
_CHECK_TITLES = {"performance": "Performance", "explain": "Explanations", "robustness": "Robustness", "fairness": "Fairness"}


def load_data(
    spec: str | Path | None = None,
    *,
    bundle: ModelBundle | None = None,
    split: str = "test",
    data_dir: str | Path | None = None,
    target: str | None = None,
    sensitive: str | Sequence[str] | None = None,
    seed: int | None = None,
    limit: int | None = None,
) -> AuditData:
    """Load data, by default the dataset and held-out split recorded on ``bundle``'s card.

    With a bundle, the data is checked against the model (input shape, label
    range, value range) and tabular data is encoded with the card's encoder.
    """
    card = bundle.card if bundle is not None else None
    if spec is None:
        if card is None or not card.dataset:
            raise ConfigError("no data given and the model card names no dataset; pass --data (e.g. --data digits or a .npz/.csv file)")
        spec = card.dataset
        data_dir = data_dir or card.data_dir
        split = split or card.split
    same_dataset = card is not None and card.dataset is not None and str(spec) == card.dataset
    data = _load_data(
        spec,
        split=split,
        data_dir=data_dir,
        target=target or (card.target if card is not None else None),
        sensitive=sensitive if sensitive is not None else (card.sensitive if same_dataset else None),
        seed=seed if seed is not None else (card.data_seed if same_dataset else 0),
        encoder=card.encoder if card is not None and card.encoder else None,
        limit=limit,
    )
    if card is not None:
        check_fits(card, data)
    return data


def data_for(bundle: ModelBundle, data: AuditData | str | Path | None, **kwargs: Any) -> AuditData:
    """``data`` as :class:`AuditData`: loaded from a spec (or the card) and checked against the model."""
    if isinstance(data, AuditData):
        check_fits(bundle.card, data)
        return data
    return load_data(data, bundle=bundle, **kwargs)


def _bundle(model: ModelBundle | str | Path, *, device: str, trust_pickle: bool = False) -> ModelBundle:
    if isinstance(model, ModelBundle):
        return model.to(device) if device != "auto" else model
    return load_model(model, device=device, trust_pickle=trust_pickle)


def train(
    arch: str,
    data: str | Path = "digits",
    *,
    data_dir: str | Path | None = None,
    target: str | None = None,
    sensitive: str | Sequence[str] | None = None,
    epochs: int | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    optimizer: str | None = None,
    weight_decay: float = 0.0,
    hidden: Sequence[int] | None = None,
    seed: int = 0,
    device: str = "auto",
    sample_weight: Any = None,
    progress: ProgressFn | None = None,
    adversarial: str | None = None,
    eps: float | None = None,
    alpha: float | None = None,
    steps: int | None = None,
    beta: float | None = None,
) -> ModelBundle:
    """Train a reference model (``cnn``, ``mlp`` or ``numpy-mlp``) on a dataset's training split.

    Returns the bundle; its card records the dataset, the held-out split, the
    training configuration and the held-out accuracy.

    ``adversarial`` trains on adversarial examples: ``"pgd"`` (Madry et al. 2018,
    arXiv:1706.06083), ``"fgsm"`` (fast FGSM with random start, Wong et al. 2020,
    arXiv:2001.03994) or ``"trades"`` (Zhang et al. 2019, arXiv:1901.08573), with
    budget ``eps``, step size ``alpha``, ``steps`` attack steps and TRADES' ``beta``
    (see :class:`dlaudit.robust.training.AdversarialTraining`).
    """
    from .robust.training import training_setup

    splits = load_splits(data, data_dir=data_dir, target=target, sensitive=sensitive, seed=0)
    loss_fn, training_info = training_setup(adversarial, eps=eps, alpha=alpha, steps=steps, beta=beta, value_range=splits.train.value_range, seed=seed)
    data_dir_s = str(Path(data_dir).resolve()) if data_dir else None
    is_file = Path(str(data)).suffix.lower() in (".npz", ".csv")
    return _train(
        arch,
        splits,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        optimizer=optimizer,
        weight_decay=weight_decay,
        hidden=tuple(hidden) if hidden else None,
        seed=seed,
        device=device,
        sample_weight=sample_weight,
        loss_fn=loss_fn,
        training_info=training_info,
        dataset=str(Path(data).resolve()) if is_file else str(data),
        data_dir=data_dir_s,
        progress=progress,
    )


def info(model: ModelBundle | str | Path, data: AuditData | str | Path | None = None, *, device: str = "auto", trust_pickle: bool = False, **data_kwargs: Any) -> dict[str, Any]:
    """The model card and the accuracy on the held-out split (or on ``data``)."""
    bundle = _bundle(model, device=device, trust_pickle=trust_pickle)
    out: dict[str, Any] = {"source": bundle.source, "format": bundle.format, "card": bundle.card.to_dict()}
    audit_data = data_for(bundle, data, **data_kwargs)
    pred = bundle.predict(audit_data.x)
    out["accuracy"] = float((pred == audit_data.y).float().mean())
    out["data"] = {"name": audit_data.name, "split": audit_data.split, "n": len(audit_data)}
    out["parameters"] = sum(p.numel() for p in bundle.module.parameters())
    return out


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "dlaudit": __version__}
    for pkg in ("torch", "torchvision", "captum", "shap", "lime", "fairlearn", "numpy", "pandas", "scikit-learn"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


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
    **data_kwargs: Any,
) -> Report:
    """Audit a model: run each check and gather the sections into a :class:`Report`.

    Parameters
    ----------
    model
        A model file or a :class:`ModelBundle`.
    data
        A dataset spec, an :class:`AuditData`, or None for the held-out split on the card.
    checks
        Which sections (``performance``, ``explain``, ``robustness``, ``fairness``,
        as a list or comma-separated); all by default. They appear in that order
        whatever order they are given in. A check that does not apply (or is not
        available) is a skipped section with its reason; one that fails is an
        error section; neither stops the audit.
    fast
        A cheaper configuration for CI (fewer samples and steps), stated in the report.
    seed
        Every random step is seeded from this: the same seed gives the same numbers.
    device
        ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
    progress
        ``progress(stage, done, total)``, called as sections advance.
    params
        Per-check keyword arguments, e.g. ``{"robustness": {"eps": [0.1]}}``.
    title, command
        The report's title and the command line recorded in its provenance.
    data_kwargs
        Passed to :func:`load_data` (``data_dir``, ``target``, ``sensitive``...).

    Returns
    -------
    Report
        ``report.metrics`` (the flat dict), ``report.findings``,
        ``report.check(gates)``, ``report.passed``, ``report.save(path)``.

    Examples
    --------
    >>> report = dlaudit.audit("cnn.pt", checks="performance,robustness", fast=True)  # doctest: +SKIP
    >>> report.check(["performance.accuracy >= 0.9"])  # doctest: +SKIP
    >>> report.save("reports/cnn.html")  # doctest: +SKIP
    """
    dev = resolve_device(device)
    bundle = _bundle(model, device=str(dev), trust_pickle=trust_pickle)
    audit_data = data_for(bundle, data, **data_kwargs)
    wanted = _checks(checks)
    params = params or {}
    unknown = sorted(set(params) - set(_check_order()))
    if unknown:
        raise ConfigError(f"params given for unknown check(s) {', '.join(unknown)}; choose from: {', '.join(_check_order())}")
    report = Report(title=title or f"dlaudit report: {Path(bundle.source).name if bundle.source else bundle.card.architecture or 'model'}")
    report.card = bundle.card.to_dict()
    started = _dt.datetime.now(_dt.timezone.utc)
    clock = time.perf_counter()
    for name in wanted:
        seed_everything(seed)
        if name not in list_analyses():
            report.sections.append(Section.skipped(name, _CHECK_TITLES.get(name, name), "this analysis is not available in this dlaudit build"))
            continue
        log.info("running %s", name)
        if progress is not None:
            progress(f"check:{name}", 0, 1)
        section = run_analysis(name, bundle, audit_data, seed=seed, fast=fast, progress=progress, **params.get(name, {}))
        report.sections.append(section)
        if progress is not None:
            progress(f"check:{name}", 1, 1)
    report.provenance = {
        "generated": started.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "command": command or " ".join(sys.argv),
        "seed": seed,
        "fast": fast,
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "model": {"source": bundle.source, "format": bundle.format},
        "data": {"name": audit_data.name, "split": audit_data.split, "n": len(audit_data)},
        "total_seconds": round(time.perf_counter() - clock, 3),
        "seconds_per_section": {s.name: s.seconds for s in report.sections},
        "versions": library_versions(),
        "malloc_tuning": malloc_tuning_state()["reason"],
    }
    return report


def _check_order() -> list[str]:
    """Every check name, in report order: the four standard ones, then any other registered analysis."""
    return list(dict.fromkeys([*DEFAULT_CHECKS, *list_analyses()]))


def _checks(checks: Sequence[str] | str | None) -> list[str]:
    if checks is None:
        return list(DEFAULT_CHECKS)
    items = [c.strip() for c in checks.split(",")] if isinstance(checks, str) else [str(c).strip() for c in checks]
    items = [c for c in items if c]
    order = _check_order()
    bad = [c for c in items if c not in order]
    if bad:
        raise ConfigError(f"unknown check(s) {', '.join(bad)}; choose from: {', '.join(order)}")
    if not items:
        raise ConfigError(f"no checks selected; choose from: {', '.join(order)}")
    return sorted(set(items), key=order.index)


# -- robustness ----------------------------------------------------------------------

__all__ += ["attack", "robustness"]

from typing import TYPE_CHECKING  # noqa: E402

if TYPE_CHECKING:
    from .robust.evaluate import AttackResult


def attack(
    model: ModelBundle | str | Path,
    data: AuditData | str | Path | None = None,
    *,
    attacks: str | Sequence[str] = ("fgsm", "pgd"),
    norms: str | Sequence[str] = ("linf",),
    eps: Sequence[float] = (0.05, 0.1, 0.3),
    eps_l2: Sequence[float] = (0.5, 1.0, 2.0),
    steps: int = 40,
    alpha: float | None = None,
    restarts: int = 1,
    n: int | None = None,
    batch_size: int | None = None,
    early_stop: bool = True,
    seed: int = 0,
    device: str = "auto",
    progress: ProgressFn | None = None,
    trust_pickle: bool = False,
    **data_kwargs: Any,
) -> AttackResult:
    """Robust accuracy under FGSM and/or PGD at each budget (``dlaudit attack``).

    ``eps`` are L-inf budgets and ``eps_l2`` L2 budgets, in input units; ``n``
    attacks a seeded random subset of that many samples. Returns an
    :class:`~dlaudit.robust.evaluate.AttackResult` whose ``metrics`` map names such
    as ``robustness.pgd_linf.acc@0.1`` to accuracies.
    """
    from .robust.analysis import sample_data
    from .robust.evaluate import evaluate_attacks

    bundle = _bundle(model, device=str(resolve_device(device)), trust_pickle=trust_pickle)
    audit_data = sample_data(data_for(bundle, data, **data_kwargs), n, seed)
    return evaluate_attacks(
        bundle, audit_data, attacks=attacks, norms=norms, eps=eps, eps_l2=eps_l2, steps=steps, alpha=alpha,
        restarts=restarts, early_stop=early_stop, batch_size=batch_size, seed=seed, progress=progress,
    )  # fmt: skip


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
    from .robust.analysis import robustness as _robustness

    bundle = _bundle(model, device=str(resolve_device(device)), trust_pickle=trust_pickle)
    audit_data = data_for(bundle, data, data_dir=data_dir, target=target, sensitive=sensitive)
    seed_everything(seed)
    return _robustness(bundle, audit_data, seed=seed, fast=fast, progress=progress, **params)


# -- fairness (dlaudit/fairness) ------------------------------------------------------------

from typing import TYPE_CHECKING  # noqa: E402

if TYPE_CHECKING:  # pragma: no cover
    from .fairness.mitigate import MitigationResult


def fairness(
    model: ModelBundle | str | Path,
    data: AuditData | str | Path | None = None,
    *,
    sensitive: str | Sequence[str] | None = None,
    intersection: bool = False,
    bins: dict[str, Sequence[float]] | None = None,
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
    """Group fairness of a model: a report with the performance and fairness sections.

    Parameters
    ----------
    model, data
        As for :func:`audit` (``data`` left out: the held-out split on the card).
    sensitive
        Sensitive columns (``"sex,race"`` or a list), looked up among the data's
        sensitive and raw columns; one that is missing, constant or has NaN is
        reported as undefined with its reason. Default: the data's sensitive columns.
    intersection
        Also judge the intersection of the features (``sex&race``).
    bins
        Bin edges for continuous features, e.g. ``{"age": [25, 60]}``.
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
        "sensitive": sensitive, "intersection": intersection, "bins": bins, "n_boot": n_boot, "ci": ci,
        "gap_threshold": gap_threshold, "min_group_size": min_group_size,
    }  # fmt: skip
    return audit(
        model, data, checks=["performance", "fairness"], fast=fast, seed=seed, device=device, progress=progress,
        trust_pickle=trust_pickle, params={"fairness": params}, title=title or "dlaudit fairness", command=command, **data_kwargs,
    )  # fmt: skip


def mitigate(
    model: ModelBundle | str | Path,
    data: str | Path | None = None,
    *,
    sensitive: str,
    method: str | Sequence[str] = "reweigh",
    constraint: str = "demographic_parity",
    output: str | Path | None = None,
    seed: int = 0,
    device: str = "auto",
    epochs: int | None = None,
    max_iter: int = 20,
    eps: float = 0.01,
    bins: dict[str, Sequence[float]] | None = None,
    n_boot: int = 200,
    data_dir: str | Path | None = None,
    target: str | None = None,
    trust_pickle: bool = False,
    progress: ProgressFn | None = None,
) -> MitigationResult:
    """Mitigate a model's unfairness over one sensitive feature, and measure before and after.

    Parameters
    ----------
    model
        A model file or a :class:`ModelBundle`.
    data
        A dataset name or file (default: the one on the model's card). Its
        training split fits the method; its held-out split measures every model.
    sensitive
        The sensitive column, e.g. ``"sex"``.
    method
        ``reweigh`` (retrain with Kamiran-Calders weights), ``threshold``
        (fairlearn ThresholdOptimizer; the column must be a model input) or
        ``expgrad`` (fairlearn ExponentiatedGradient, saved as an ensemble); a
        list or comma-separated string runs several.
    constraint
        ``demographic_parity`` or ``equalized_odds`` (threshold, expgrad).
    output
        Where to save the mitigated model (``<stem>-<method>.pt`` for each of
        several methods); it loads back with :func:`load_model`.

    Returns
    -------
    dlaudit.fairness.mitigate.MitigationResult
        ``models`` (bundles by method), ``rows``, ``table()``, ``section()``, ``report()``.
    """
    from .data.validate import check_fits as _check_fits
    from .fairness.mitigate import mitigate_bundle, output_paths

    bundle = _bundle(model, device=device, trust_pickle=trust_pickle)
    card = bundle.card
    if isinstance(data, AuditData):
        raise ConfigError("mitigation needs the model's training split as well as held-out data; pass a dataset name or file, not AuditData")
    spec = data if data is not None else card.dataset
    if spec is None:
        raise ConfigError("no data given and the model card names no dataset; pass --data (e.g. --data adult --data-dir DIR)")
    same = card.dataset is not None and str(spec) == card.dataset
    splits = load_splits(
        spec, data_dir=data_dir or (card.data_dir if same else None), target=target or card.target,
        sensitive=[s.strip() for s in str(sensitive).split(",") if s.strip()], seed=card.data_seed if same else 0, encoder=card.encoder,
    )  # fmt: skip
    _check_fits(card, splits.train)
    _check_fits(card, splits.test)
    methods = [m.strip() for m in method.split(",")] if isinstance(method, str) else list(method)
    result = mitigate_bundle(
        bundle, splits, sensitive=sensitive, methods=methods, constraint=constraint, seed=seed, epochs=epochs,
        max_iter=max_iter, eps=eps, bins=bins, n_boot=n_boot, progress=progress,
    )  # fmt: skip
    if output is not None:
        for name, path in output_paths(str(output), list(result.models)).items():
            save_model(result.models[name], path)
            result.saved[name] = path
    return result


__all__ += ["fairness", "mitigate"]


def explain(
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
    **params: Any,
) -> Any:
    """Explain ``n`` samples with captum, LIME and SHAP methods, and measure how far to trust each.

    Returns a :class:`dlaudit.explain.Explanation`: ``attributions[method]``
    (the inputs' shape), the explained samples, and ``section`` (metrics such as
    ``explain.ig.deletion_auc``, findings, figures). ``data_options`` are the
    data-loading keywords (``data_dir``, ``target`` column, ``sensitive``);
    further keywords go to :func:`dlaudit.explain.explain` (``gradcam_layer``,
    ``shap_explainer``, ``settings``, ``background``).
    """
    from .explain.analysis import explain as _explain

    seed_everything(seed)
    bundle = _bundle(model, device=str(resolve_device(device)), trust_pickle=trust_pickle)
    audit_data = data_for(bundle, data, **(data_options or {}))
    return _explain(bundle, audit_data, methods=methods, n=n, target=target, seed=seed, fast=fast, quality=quality, progress=progress, **params)
