"""The Python face of dlaudit: every CLI command is a thin layer over one function here.

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
from .parsing import parse_bins, parse_kwargs, parse_names, parse_numbers, parse_shape, parse_value_range, split_list
from .paths import Folder, atomic_write, check_paths, method_outputs, run_inputs
from .pipeline import AuditSpec, command_line, json_text, library_versions, small
from .progress import ProgressPrinter
from .terminal import printable
from .train.reference import train

if TYPE_CHECKING:
    from .bundle import ModelBundle
    from .card import ModelCard
    from .data import AuditData
    from .explain import Explanation
    from .report.model import Report, Section
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
TRAINABLE = ("cnn", "mlp", "numpy-mlp")
"""The reference architectures ``dlaudit train`` builds."""
DEFAULT_ATTACK_EPS = (0.05, 0.1, 0.3)
"""``dlaudit attack``'s L-inf budgets (input units)."""
DEFAULT_ATTACK_EPS_L2 = (0.5, 1.0, 2.0)
"""``dlaudit attack``'s L2 budgets (input units)."""


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
        split=split,
        data_dir=data_dir,
        target=target,
        sensitive=sensitive,
        seed=seed,
        limit=limit,
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


# -- robustness ------------------------------------------------------------------------------


def attack(
    model: ModelBundle | str | Path,
    data: AuditData | str | Path | None = None,
    *,
    attacks: str | Sequence[str] = ("fgsm", "pgd"),
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
    fab-t, square, autoattack, or any registered attack) run at each of ``norms``; ``n``
    attacks a seeded random subset of that many samples (default all). ``steps`` (default 40),
    ``alpha``, ``restarts`` and ``early_stop`` are PGD's; ``version`` is AutoAttack's
    (``standard`` by default). ``fast`` is the analysis' fast profile: PGD-10 on at most 200
    samples and AutoAttack's fast version (explicit values win). ``compile`` runs the gradient
    steps through ``torch.compile`` where the model allows it (the provenance's ``engine`` says
    where not). ``features="numeric"`` attacks only a tabular model's numeric columns.
    """
    methods = parse_names(attacks, _attack_names(), "attack(s)")
    norm_list = parse_names(norms, ("linf", "l2"), "norm(s)")
    settings = {
        "scope": "attacks",
        "attacks": [f"{m}_{v}" for v in norm_list for m in methods],
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

    return list_attacks()


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
    intersection: bool = False,
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
        Also judge the intersection of the features (``sex&race``).
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

    parse_methods(methods)  # an unknown method fails before the model loads
    settings = {"methods": methods, "n": n, "target": target, "quality": quality, **params}
    rep, kept = _view(
        "explain", model, data, ("explain",), {"explain": settings}, fast=fast, seed=seed, device=device,
        trust_pickle=trust_pickle, progress=progress, command=command, data_options=data_options,
    )  # fmt: skip
    exp = kept["explanation"]
    exp.report = rep
    return exp


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
