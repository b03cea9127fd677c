"""``dlaudit demo``: three models, three reports and a page comparing them, offline.

Trains (or reuses, when cached beside the reports) a standard digits CNN, a
PGD-adversarially trained digits CNN (Madry et al. 2018,
https://arxiv.org/abs/1706.06083) and an MLP on ``synthetic-credit``, audits
each, and writes ``demo-<name>.html`` / ``.json`` and ``demo-comparison.html``.
By default the audits use the fast configuration, so the whole demo takes a few
minutes at most on two CPU cores (``full=True`` for the full one).

The adversarial model uses ``dlaudit.train(..., adversarial="pgd", eps=, alpha=,
steps=)`` from the robustness work.

:func:`demo` is the public entry point (``dlaudit.demo``, what ``dlaudit demo`` calls);
it sits on top of :mod:`dlaudit.api` (train, audit) and nothing below imports it.
Importing this module is as cheap as ``import dlaudit``: models, torch and the HTML
renderer load when the demo runs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._alloc import tune_malloc
from .api import audit, train
from .errors import ModelLoadError
from .paths import atomic_write
from .report.gates import check_report
from .report.io import save_report
from .report.summary import verdict

if TYPE_CHECKING:
    from .bundle import ModelBundle
    from .utils import ProgressFn

__all__ = ["DemoModel", "DemoResult", "DEMO_MODELS", "demo", "run_demo"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoModel:
    """A model the demo trains: ``dlaudit.train(arch, data, **train_kwargs)``."""

    name: str
    title: str
    arch: str
    data: str
    train_kwargs: dict[str, Any] = field(default_factory=dict)
    gates: tuple[str, ...] = ()


DEMO_MODELS: tuple[DemoModel, ...] = (
    DemoModel("cnn", "digits CNN, standard training", "cnn", "digits", gates=("performance.accuracy < 0.9",)),
    DemoModel(
        "cnn-pgd",
        "digits CNN, PGD adversarial training (eps 0.1)",
        "cnn",
        "digits",
        {"adversarial": "pgd", "eps": 0.1, "alpha": 0.03, "steps": 7},
        gates=("performance.accuracy < 0.9",),
    ),
    DemoModel("credit-mlp", "synthetic-credit MLP", "mlp", "synthetic-credit", gates=("performance.accuracy < 0.75",)),
)


@dataclass
class DemoResult:
    """Where the demo wrote its files, and which models came from the cache."""

    reports: dict[str, Path] = field(default_factory=dict)
    models: dict[str, Path] = field(default_factory=dict)
    reused: list[str] = field(default_factory=list)
    comparison: Path | None = None
    metrics: dict[str, dict[str, float | None]] = field(default_factory=dict)
    health: dict[str, str] = field(default_factory=dict)
    """Each report's health verdict in words (what its findings say, apart from the gates)."""
    verdicts: dict[str, str] = field(default_factory=dict)
    """Each report's gate verdict in words."""


def _model(
    spec: DemoModel, path: Path, *, seed: int, device: str, retrain: bool, progress: ProgressFn | None
) -> tuple[ModelBundle, bool]:
    """The cached model at ``path``, or a freshly trained one saved there."""
    from .bundle import load_model, save_model

    if path.is_file() and not retrain:
        try:
            return load_model(path, device=device), True
        except ModelLoadError as err:
            log.warning("cached demo model %s cannot be read (%s); training it again", path, err)
    bundle = train(spec.arch, spec.data, seed=seed, device=device, progress=progress, **spec.train_kwargs)
    save_model(bundle, path)
    return bundle, False


def run_demo(
    output_dir: str | Path = "reports",
    *,
    seed: int = 0,
    device: str = "auto",
    full: bool = False,
    retrain: bool = False,
    models: Sequence[DemoModel] = DEMO_MODELS,
    checks: Sequence[str] | None = None,
    progress: ProgressFn | None = None,
) -> DemoResult:
    """Train (or reuse) the demo models, audit each and write the reports and the comparison page.

    Parameters
    ----------
    output_dir
        Where models (``demo-<name>.pt``, reused on the next run) and reports go.
    full
        Audit with the full configuration instead of the fast one.
    retrain
        Train the models again even when cached.
    models, checks
        Which models and sections (default: all of both).
    """
    from .report.html import render_comparison_html

    out = Path(output_dir)
    result = DemoResult()
    pages = []
    for spec in models:
        model_path = out / f"demo-{spec.name}.pt"
        bundle, reused = _model(spec, model_path, seed=seed, device=device, retrain=retrain, progress=progress)
        if reused:
            result.reused.append(spec.name)
        report = audit(
            bundle,
            None,
            checks=checks,
            fast=not full,
            seed=seed,
            device=device,
            progress=progress,
            title=f"dlaudit demo: {spec.title}",
            command="dlaudit demo",
        )
        check_report(report, spec.gates, source="demo")
        html = save_report(report, out / f"demo-{spec.name}.html")
        save_report(report, out / f"demo-{spec.name}.json")
        result.models[spec.name] = model_path
        result.reports[spec.name] = html
        result.metrics[spec.name] = report.metrics
        result.health[spec.name] = report.health.text
        result.verdicts[spec.name] = verdict(report).text
        pages.append((spec.title, report, html.name))
    result.comparison = out / "demo-comparison.html"
    with atomic_write(result.comparison, "wb") as fh:
        fh.write(render_comparison_html(pages, title="dlaudit demo: three models compared").encode("utf-8"))
    return result


def demo(
    output_dir: str | Path = "reports",
    *,
    seed: int = 0,
    device: str = "auto",
    full: bool = False,
    retrain: bool = False,
    progress: ProgressFn | None = None,
) -> DemoResult:
    """Train (or reuse) three models and write their reports and a comparison page, offline (``dlaudit demo``).

    Parameters
    ----------
    output_dir
        Where the models (reused on the next run) and the reports go.
    seed, device
        As for :func:`dlaudit.audit`.
    full
        Audit with the full configuration instead of the fast one.
    retrain
        Train the models again even when cached.
    progress
        ``progress(stage, done, total)``, called as training and sections advance.

    Returns
    -------
    DemoResult
        The files written, each report's metrics and verdicts.
    """
    tune_malloc()
    return run_demo(output_dir, seed=seed, device=device, full=full, retrain=retrain, progress=progress)
