"""The Python face of dlaudit: every CLI command is a thin layer over one function here.

Loading, information, the ``report`` command's configuration, gates and baseline, and the output helpers
live here; the audit and its named views are in :mod:`dlaudit.views`, training in
:mod:`dlaudit.train.reference`, mitigation in :mod:`dlaudit.mitigation` (re-exported here). None holds
analysis logic: that is in the analyses and their settings.

Importing this module is cheap (no torch, no analysis): each function imports what
it needs when called, so ``dlaudit --help`` starts in a fraction of a second.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import pipeline
from ._alloc import tune_malloc
from ._version import __version__
from .analysis import default_analyses, get_analysis, list_analyses, parse_checks
from .bounded import catch_interrupts, exit_now, interrupted
from .errors import (
    AnalysisError,
    CardError,
    ConfigError,
    DataError,
    DlauditError,
    GateError,
    ModelLoadError,
    ModelOutputError,
)
from .mitigation import mitigate
from .parsing import parse_kwargs, parse_names, parse_numbers, parse_shape, parse_value_range, split_list
from .paths import Folder, atomic_write, check_paths, method_outputs, run_inputs
from .pipeline import AuditSpec, command_line, json_text, library_versions, small
from .progress import ProgressPrinter
from .terminal import printable
from .train.reference import train
from .views import attack, audit, certify, explain_model, fairness_report, robustness

if TYPE_CHECKING:
    from .bundle import ModelBundle
    from .card import ModelCard
    from .data import AuditData
    from .explain import Explanation
    from .report.model import Report
    from .utils import ProgressFn

__all__ = [
    "__version__",
    "load_model",
    "save_model",
    "card_overrides",
    "load_data",
    "data_for",
    "train",
    "info",
    "audit",
    "report",
    "attack",
    "certify",
    "robustness",
    "fairness_report",
    "mitigate",
    "explain_model",
    "save_explanation",
    "library_versions",
    "AuditSpec",
    "list_analyses",
    "default_analyses",
    "command_line",
    "save_json",
    "json_text",
    "parse_gates",
    "tune_malloc",
    "format_number",
    "verdict_text",
    "health_text",
    "gate_line",
    "render_terminal",
    "render_training",
    "render_info",
    "render_demo",
    "TRAINABLE",
    "small",
    "DlauditError",
    "AnalysisError",
    "CardError",
    "ConfigError",
    "DataError",
    "GateError",
    "ModelLoadError",
    "ModelOutputError",
    "parse_names",
    "parse_numbers",
    "split_list",
    "check_paths",
    "run_inputs",
    "Folder",
    "method_outputs",
    "ProgressPrinter",
    "printable",
    "catch_interrupts",
    "interrupted",
    "exit_now",
]

log = logging.getLogger(__name__)


MAX_SEED = 2**32 - 1
"""Seeds are 0 .. 2**32 - 1 (see :func:`dlaudit.utils.check_seed`)."""
TRAINABLE = ("cnn", "mlp", "numpy-mlp", "textcnn", "embedding-bag")
"""The reference architectures ``dlaudit train`` builds."""


def save_json(path: str | Path, payload: Mapping[str, Any]) -> Path:
    """Write ``payload`` as indented, strict JSON, atomically (NaN and inf become null)."""
    path = Path(path)
    with atomic_write(path, "w") as fh:
        fh.write(json_text(payload) + "\n")
    return path


def parse_gates(texts: Sequence[str]) -> list[Any]:
    """``--fail-on`` conditions as gates; a malformed one is a :class:`GateError`."""
    from .report.gates import parse_gates as _parse

    return _parse(texts)


def format_number(value: Any) -> str:
    """A number as every dlaudit output prints it (four significant digits; None is "undefined")."""
    from .report.numbers import fmt_number

    return fmt_number(value)


def verdict_text(report: Report) -> str:
    """The report's one-line verdict on its gates (what CI acts on)."""
    from .report.summary import verdict

    return verdict(report).text


def health_text(report: Report) -> str:
    """The report's one-line health verdict: what its findings say, apart from the gates."""
    return report.health.text


def render_terminal(report: Report, *, paths: Mapping[str, Any] | None = None, detail: bool = True) -> str:
    """What a command prints about ``report`` (see :func:`dlaudit.report.terminal.render_terminal`)."""
    from .report.terminal import render_terminal as _render

    return _render(report, paths=paths, detail=detail)


def render_training(bundle: ModelBundle, arch: str, output: Any) -> str:
    """What ``dlaudit train`` prints about the model it trained (see :mod:`dlaudit.report.terminal`)."""
    from .report.terminal import render_training as _render

    return _render(bundle.card.to_dict(), arch, output)


def render_info(out: Mapping[str, Any], model: Any) -> str:
    """What ``dlaudit info`` prints about :func:`info`'s answer (see :mod:`dlaudit.report.terminal`)."""
    from .report.terminal import render_info as _render

    return _render(out, model)


def render_demo(result: Any) -> str:
    """What ``dlaudit demo`` prints about its reports (see :mod:`dlaudit.report.terminal`)."""
    from .report.terminal import render_demo as _render

    return _render(result)


def gate_line(gate: Any) -> str:
    """A gate result as every output words it: ``fails when METRIC OP N; value V: pass``."""
    from .report.summary import gate_line as _line

    return _line(gate)


# -- models ----------------------------------------------------------------------------------


def card_overrides(
    *,
    card_file: str | Path | None = None,
    input_shape: str | Sequence[int] | None = None,
    num_classes: int | None = None,
    value_range: str | Sequence[float] | None = None,
    class_names: str | Sequence[str] | None = None,
    arch: str | None = None,
    arch_kwargs: str | Mapping[str, Any] | None = None,
    mean: str | Sequence[float] | None = None,
    std: str | Sequence[float] | None = None,
    positive_class: str | None = None,
) -> dict[str, Any]:
    """Card fields from a card file and the model options.

    Options win over the file. Strings are parsed strictly: ``"188"`` is one
    dimension, ``8.7`` is refused, ``--value-range 0,1,2`` is refused.

    Parameters
    ----------
    card_file
        A card JSON (``--card``).
    input_shape, num_classes, value_range, class_names
        ``--input-shape 3,32,32``, ``--num-classes 10``, ``--value-range 0,1``, ``--class-names a,b,...``.
    arch, arch_kwargs
        For a bare state_dict: the architecture to load it into (``--arch torchvision:resnet18``
        or ``timm:NAME``) and its builder's keyword arguments (``--arch-kwargs dropout=0.2``).
    mean, std
        The normalisation the model expects (``--mean 0.4914,0.4822,0.4465``): dlaudit puts
        ``(x - mean) / std`` in front of the model, so attacks and explanations work in the
        card's value range (pixels in [0, 1]).
    positive_class
        A binary model's positive class, by name (``--positive-class toxic``): what the fairness
        metrics call positive (default: class index 1).
    """
    from .architectures import split_architecture
    from .card import ModelCard

    card: dict[str, Any] = {}
    if card_file:
        card.update(ModelCard.from_json(card_file).to_dict())
    if input_shape is not None:
        card["input_shape"] = parse_shape(input_shape, "--input-shape")
    if num_classes is not None:
        if isinstance(num_classes, bool) or int(num_classes) != num_classes or int(num_classes) < 2:
            raise ConfigError(f"--num-classes must be a whole number of at least 2, got {num_classes!r}")
        card["num_classes"] = int(num_classes)
    if value_range is not None:
        card["value_range"] = parse_value_range(value_range, "--value-range")
    if class_names is not None:
        names = split_list(class_names)
        if not names:
            raise ConfigError("--class-names needs at least two names, comma-separated")
        card["class_names"] = names
    if arch is not None:
        split_architecture(arch)  # SOURCE:NAME, or a message saying so
        card["architecture"] = str(arch).strip()
    if arch_kwargs is not None:
        card["arch_kwargs"] = parse_kwargs(arch_kwargs)
    for key, value in (("mean", mean), ("std", std)):
        if value is not None:
            card[key] = parse_numbers(value, f"--{key}") if isinstance(value, str) else [float(v) for v in value]
    if positive_class is not None:
        if not str(positive_class).strip():
            raise ConfigError("--positive-class needs a class name, e.g. --positive-class toxic")
        card["positive_class"] = str(positive_class).strip()
    return card


def load_model(
    path: str | Path,
    *,
    card: ModelCard | Mapping[str, Any] | str | Path | None = None,
    trust_pickle: bool = False,
    device: str = "auto",
    data: str | Path | None = None,
    data_dir: str | Path | None = None,
    trust_ops: bool = False,
    timeout: float | None = None,
    **overrides: Any,
) -> ModelBundle:
    """Load a model file of any supported format (see :func:`dlaudit.bundle.load_model`).

    ``card`` is a :class:`ModelCard`, a dict of fields or a card JSON path;
    ``overrides`` are :func:`card_overrides`' keywords (``card_file``, ``input_shape``,
    ``num_classes``, ``value_range``, ``class_names``, ``arch``, ``arch_kwargs``,
    ``mean``, ``std``) and win over ``card``. ``data`` (and ``data_dir``) name the data
    the model will be audited on: a foreign model whose card gives no input shape
    takes that data's (``--arch torchvision:resnet18 --data cifar10`` is 3x32x32).
    ``trust_ops`` lets a graph call operators outside torch's own (see :mod:`dlaudit.operators`).
    Loading (with the model's first forward pass) runs where Ctrl-C stops it at once, and ``timeout``
    (seconds) bounds it: past it :class:`dlaudit.bounded.Timeout` is raised (exit 2).

    Examples
    --------
    >>> bundle = dlaudit.load_model("resnet18.pt", arch="torchvision:resnet18", num_classes=10,
    ...     input_shape=(3, 32, 32), mean=[0.4914, 0.4822, 0.4465], std=[0.2470, 0.2435, 0.2616])  # doctest: +SKIP
    """
    from .bundle import _card_dict
    from .bundle import load_model as _load

    fields = _card_dict(card) if card is not None else {}
    fields.update(card_overrides(**overrides))
    return pipeline.load_bounded(
        lambda: _load(
            path,
            card=fields or None,
            trust_pickle=trust_pickle,
            trust_ops=trust_ops,
            device=device,
            shape_hint=_shape_hint(data, data_dir),
        ),
        path,
        timeout=timeout,
    )


def _shape_hint(data: Any, data_dir: str | Path | None) -> Any:
    """A function giving the sample shape of the data spec ``data`` (None when it is not a spec)."""
    if not isinstance(data, (str, Path)):
        return None
    from .data import sample_shape

    return lambda: sample_shape(data, data_dir=data_dir)


def save_model(bundle: ModelBundle, path: str | Path) -> Path:
    """Write a dlaudit checkpoint (card + state_dict) atomically; it loads with ``weights_only=True``."""
    from .bundle import save_model as _save

    return _save(bundle, path)


def _bundle(model: ModelBundle | str | Path, *, device: str, trust_pickle: bool = False) -> ModelBundle:
    return pipeline.resolve_model(model, device=device, trust_pickle=trust_pickle)


# -- data ------------------------------------------------------------------------------------


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
    text_column: str | None = None,
) -> AuditData:
    """Load data, by default the dataset and held-out split recorded on ``bundle``'s card.

    With a bundle, the data is checked against the model (input shape, label
    range, value range) and tabular data is encoded with the card's encoder
    (:func:`dlaudit.data.for_card` decides dataset, split, folder and seed). ``split``
    is ``"test"``, ``"train"``, ``"all"`` (every row of a single-table file) or ``"audit"``
    (what the audit commands read: the held-out split of the card's dataset, else all rows).
    """
    from .data import for_card

    if bundle is None and spec is None:
        raise ConfigError("no data given; pass a dataset name (e.g. digits) or a .npz/.csv file")
    return for_card(
        bundle.card if bundle is not None else None,
        spec,
        tokenizer=bundle.tokenizer if bundle is not None else None,
        split=split,
        data_dir=data_dir,
        target=target,
        sensitive=sensitive,
        seed=seed,
        limit=limit,
        text_column=text_column,
    )


def data_for(bundle: ModelBundle, data: AuditData | str | Path | None, **kwargs: Any) -> AuditData:
    """``data`` as :class:`AuditData`: loaded from a spec (or the card) and checked against the model.

    What every audit command reads (see :func:`dlaudit.pipeline.resolve_data`): the held-out split
    of the model's own dataset, or every row of any other dataset file.
    """
    return pipeline.resolve_data(bundle, data, **kwargs)


# -- information -----------------------------------------------------------------------------


def info(
    model: ModelBundle | str | Path,
    data: AuditData | str | Path | None = None,
    *,
    device: str = "auto",
    trust_pickle: bool = False,
    **data_kwargs: Any,
) -> dict[str, Any]:
    """The model card and the accuracy on the held-out split (or on ``data``).

    With no ``data`` and a card that names no dataset (a bare state_dict loaded with ``arch=``),
    there is nothing to measure accuracy on: ``accuracy`` and ``data`` are ``None``.
    """
    bundle = _bundle(model, device=device, trust_pickle=trust_pickle)
    out: dict[str, Any] = {"source": bundle.source, "format": bundle.format, "card": bundle.card.to_dict()}
    out["parameters"] = sum(p.numel() for p in bundle.module.parameters())
    if bundle.load_notes:
        out["load"] = bundle.load_notes
    if data is None and not bundle.card.dataset:
        return {**out, "accuracy": None, "data": None}
    audit_data = data_for(bundle, data, **data_kwargs)
    logits = pipeline.model_logits(bundle, audit_data)
    pipeline.require_finite(logits, audit_data)
    out["accuracy"] = float((logits.argmax(dim=1) == audit_data.y).float().mean())
    out["data"] = {"name": audit_data.name, "split": audit_data.split, "n": len(audit_data)}
    return out


def report(
    model: ModelBundle | str | Path,
    data: AuditData | str | Path | None = None,
    *,
    checks: Sequence[str] | str | None = None,
    fast: bool | None = None,
    gates: Sequence[str] = (),
    config: str | Path | None = None,
    baseline: str | Path | None = None,
    max_drop: float | None = None,
    card: Mapping[str, Any] | None = None,
    seed: int = 0,
    device: str = "auto",
    progress: ProgressFn | None = None,
    trust_pickle: bool = False,
    command: str | None = None,
    timeout: float | None = None,
    workers: int | None = None,
    ray_address: str | None = None,
    checkpoint: str | Path | None = None,
    compile: bool = False,
    attack_features: str = "all",
    params: Mapping[str, Mapping[str, Any]] | None = None,
    inputs: Mapping[str, str | Path | Folder | None] | None = None,
    outputs: Mapping[str, str | Path | None] | None = None,
    trust_ops: bool = False,
    **data_kwargs: Any,
) -> Report:
    """What ``dlaudit report`` does: configuration, gates and baseline first, then the audit, then the verdict.

    The project configuration (``config``, or ``./pyproject.toml`` when it has a
    ``[tool.dlaudit]`` table) supplies checks, fast, gates, baseline and max-drop;
    arguments given here win, and ``gates`` are added to the configured ones.
    Malformed gates, configuration or baseline fail before any work. A gate on a
    metric that was not computed does not raise: the report records it in
    :attr:`Report.errors` (its files can still be written to look into it).
    ``card`` holds card fields for a foreign model (see :func:`card_overrides`);
    ``timeout`` bounds loading the model and each section (seconds); ``attack_features="numeric"`` has the
    robustness section attack only a tabular model's numeric columns. ``params`` are per-check settings
    (``{"robustness": {"steps": 20}}``: what the analyses' ``report`` options set); unlike :func:`audit`,
    a bad one fails before any work (:class:`ConfigError`).

    ``outputs`` (option name -> path) are the files the caller will write: before the audit, one that
    is an input of the run is refused (:func:`check_paths`): the model and its cards, the data, the
    dataset the model's card names, the configuration read (``config`` or ``./pyproject.toml``), the
    baselines (given or named in the configuration), the checkpoint folder, and ``inputs``.
    """
    from .report.baseline import compare_to_baseline
    from .report.config import load_config
    from .report.gates import check_report, parse_gates
    from .report.io import load_report
    from .report.model import DEFAULT_MAX_DROP

    cfg = load_config(config)
    extra_gates = parse_gates(gates)
    baseline_file = baseline if baseline is not None else cfg.baseline
    if max_drop is not None and baseline_file is None:
        raise ConfigError("--max-drop needs a baseline to compare with; add --baseline old.json")
    run = {
        **(inputs or {}),
        **run_inputs(
            model if isinstance(model, (str, Path)) else None,
            data=data if isinstance(data, (str, Path)) else None,
            data_dir=data_kwargs.get("data_dir"),
            configs=_configs_read(config),
            baselines={"--baseline": baseline, f"the baseline named in {cfg.source}": cfg.baseline},
            checkpoint=checkpoint,
        ),
    }
    if outputs:
        check_paths(run, outputs)
    old = (
        load_report(
            baseline_file,
            label="baseline report" if baseline is not None else f"the baseline report named in {cfg.source}",
        )
        if baseline_file is not None
        else None
    )
    parse_checks(checks if checks is not None else cfg.checks)  # an unknown check fails before the model loads
    pipeline.check_workers(workers, ray_address)
    bundle = (
        model
        if not isinstance(model, (str, Path))
        else load_model(
            model,
            card=dict(card) if card else None,
            trust_pickle=trust_pickle,
            trust_ops=trust_ops,
            device=device,
            data=data if isinstance(data, (str, Path)) else None,
            data_dir=data_kwargs.get("data_dir"),
            timeout=timeout,
        )
    )
    if outputs:
        check_paths({**run, **run_inputs(data_dir=data_kwargs.get("data_dir"), card=bundle.card)}, outputs)
    from .robust.analysis import FEATURES
    from .robust.analysis import attack_features as _features

    if attack_features not in FEATURES:
        raise ConfigError(f"--attack-features must be one of {', '.join(FEATURES)}, got {attack_features!r}")
    _features(bundle, attack_features)  # a model it does not apply to fails here, before any work
    settings = {name: dict(p) for name, p in (params or {}).items()}
    if attack_features != "all":
        settings.setdefault("robustness", {})["features"] = attack_features
    run_fast = fast if fast is not None else bool(cfg.fast)
    for name, given in settings.items():  # options typed by the user: a bad one is an error, not a failed section
        get_analysis(name).check_settings(bundle, fast=run_fast, params=given)
    rep = audit(
        bundle,
        data,
        checks=checks if checks is not None else cfg.checks,
        fast=run_fast,
        seed=seed,
        device=device,
        progress=progress,
        trust_pickle=trust_pickle,
        command=command,
        timeout=timeout,
        workers=workers,
        ray_address=ray_address,
        checkpoint=checkpoint,
        compile=compile,
        params=settings or None,
        **data_kwargs,
    )
    for source, group in (("config", cfg.gates), ("fail-on", extra_gates)):
        try:
            check_report(rep, group, source=source)
        except GateError as err:
            rep.errors.append(str(err))
    if old is not None:
        drop = max_drop if max_drop is not None else (cfg.max_drop if cfg.max_drop is not None else DEFAULT_MAX_DROP)
        compare_to_baseline(rep, old, max_drop=drop, label=str(baseline_file))
    return rep


def _configs_read(config: str | Path | None) -> dict[str, str | Path | None]:
    """The configuration files a report reads: ``config``, or ``./pyproject.toml`` when there is one."""
    if config is not None:
        return {"--config": config}
    return {"the default config ./pyproject.toml": "pyproject.toml"} if os.path.lexists("pyproject.toml") else {}


# -- outputs ----------------------------------------------------------------------------------


def save_explanation(
    explanation: Explanation, directory: str | Path, *, title: str = "dlaudit explain", command: str | None = None
) -> dict[str, Path]:
    """Write an explanation's ``explain.html`` and ``attributions.npz`` into ``directory``, each atomically.

    Parameters
    ----------
    explanation
        What :func:`explain_model` returned.
    directory
        The folder (created when missing).
    title, command
        The HTML page's title and the command line recorded in its provenance.

    Returns
    -------
    dict of str to Path
        The paths written, by kind (``"html"``, ``"npz"``).
    """
    import numpy as np

    from .report.io import save_report

    out = Path(directory)
    paths = {
        "html": save_report(explanation.to_report(title=title, command=command), out / "explain.html"),
        "npz": out / "attributions.npz",
    }
    with atomic_write(paths["npz"]) as fh:
        np.savez_compressed(fh, **explanation.arrays())
    return paths
