"""The Python face of dlaudit: every CLI command is a thin layer over one function here."""
from __future__ import annotations

import datetime as _dt
import importlib.metadata
import logging
import platform
import sys
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
) -> ModelBundle:
    """Train a reference model (``cnn``, ``mlp`` or ``numpy-mlp``) on a dataset's training split.

    Returns the bundle; its card records the dataset, the held-out split, the
    training configuration and the held-out accuracy.
    """
    splits = load_splits(data, data_dir=data_dir, target=target, sensitive=sensitive, seed=0)
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
        Which sections (``performance``, ``explain``, ``robustness``, ``fairness``);
        all by default. A check that does not apply is a skipped section with its reason.
    fast
        A cheaper configuration for CI (fewer samples and steps), stated in the report.
    seed
        Every random step is seeded from this: the same seed gives the same numbers.
    params
        Per-check keyword arguments, e.g. ``{"robustness": {"eps": [0.1]}}``.
    """
    dev = resolve_device(device)
    bundle = _bundle(model, device=str(dev), trust_pickle=trust_pickle)
    audit_data = data_for(bundle, data, **data_kwargs)
    wanted = _checks(checks)
    params = params or {}
    report = Report(title=title or f"dlaudit report: {Path(bundle.source).name if bundle.source else bundle.card.architecture or 'model'}")
    report.card = bundle.card.to_dict()
    started = _dt.datetime.now(_dt.timezone.utc)
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
        "model": {"source": bundle.source, "format": bundle.format},
        "data": {"name": audit_data.name, "split": audit_data.split, "n": len(audit_data)},
        "seconds_per_section": {s.name: s.seconds for s in report.sections},
        "versions": library_versions(),
        "malloc_tuning": malloc_tuning_state()["reason"],
        "threads": torch.get_num_threads(),
    }
    return report


def _checks(checks: Sequence[str] | str | None) -> list[str]:
    if checks is None:
        return list(DEFAULT_CHECKS)
    items = [c.strip() for c in checks.split(",")] if isinstance(checks, str) else [str(c).strip() for c in checks]
    items = [c for c in items if c]
    valid = sorted(set(DEFAULT_CHECKS) | set(list_analyses()))
    bad = [c for c in items if c not in valid]
    if bad:
        raise ConfigError(f"unknown check(s) {', '.join(bad)}; choose from: {', '.join(valid)}")
    if not items:
        raise ConfigError(f"no checks selected; choose from: {', '.join(valid)}")
    return items




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
