"""What every command does once: model, data, seed, executor, engine, progress, provenance, timeouts.

Every audit command is a run of this pipeline on an :class:`AuditSpec` naming a subset of the
registered analyses (``dlaudit report`` the default ones, ``attack`` and ``certify`` the robustness
analysis in one of its scopes, ``explain`` the explanation analysis, ``fairness`` performance and
fairness): load the model and the data, check the model's logits, build the executor (in-process
or Ray) and the attack engine, run each analysis (seeded, timed, in eval mode) into a
:class:`~dlaudit.report.model.Report`, and record the provenance. The views in :mod:`dlaudit.api`
only build the spec.

Importing this module is cheap (no torch): what a run needs is imported when it runs.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib.metadata
import logging
import math
import os
import platform
import shlex
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from . import plan as planning
from ._alloc import tune_malloc
from ._version import __version__
from .analysis import get_analysis, list_analyses, parse_checks
from .errors import NONFINITE_LOGITS, ConfigError, DlauditError, ModelOutputError
from .progress import format_seconds

if TYPE_CHECKING:
    from .bundle import ModelBundle
    from .data import AuditData
    from .report.model import Report, Section
    from .utils import ProgressFn

__all__ = [
    "AuditSpec",
    "run",
    "run_keeping",
    "keep",
    "small",
    "provenance",
    "command_line",
    "library_versions",
    "resolve_model",
    "resolve_data",
    "require_finite",
    "model_name",
    "bounded",
    "load_bounded",
    "model_logits",
    "check_workers",
    "json_text",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

_SMALL_WARNED: list[bool] = []


def small() -> bool:
    """Whether ``DLAUDIT_SMALL=1`` asks for the smoke-test configuration.

    Meant for trying commands and for running the README's snippets in CI (``tests/test_readme.py``):
    every audit uses its analyses' fast profiles, and what each settings class caps in its ``SMALL``
    (the explanation analysis' samples, :attr:`dlaudit.train.TrainConfig.SMALL` training epochs,
    :attr:`dlaudit.fairness.mitigate.MitigationSettings.SMALL` mitigation rounds and resamples). The
    numbers then say little about the model; reports record ``"small": true`` in their provenance and say so at the top.
    """
    on = os.environ.get("DLAUDIT_SMALL", "").strip().lower() in ("1", "true", "yes", "on")
    if on and not _SMALL_WARNED:
        _SMALL_WARNED.append(True)
        log.warning("DLAUDIT_SMALL=1: smoke-test configuration (short training, fast audits); the numbers say little")
    return on


def _json_safe(value: Any) -> Any:
    """``value`` with NaN and inf replaced by None (undefined), so strict JSON can hold it."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def json_text(payload: Mapping[str, Any]) -> str:
    """``payload`` as indented, strict JSON (NaN and inf become null)."""
    import json

    return json.dumps(_json_safe(payload), indent=2, allow_nan=False, default=str)


def command_line() -> str:
    """The command line of this process as ``dlaudit ...`` (recorded in reports' provenance)."""
    return "dlaudit " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def library_versions() -> dict[str, str]:
    """Versions of Python, dlaudit and the libraries it builds on (for the provenance footer)."""
    out = {"python": platform.python_version(), "dlaudit": __version__}
    for pkg in ("torch", "torchvision", "captum", "shap", "lime", "fairlearn", "numpy", "pandas", "scikit-learn"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def provenance(
    bundle: ModelBundle,
    data: AuditData,
    *,
    started: float,
    seconds: float,
    seed: int,
    device: str,
    command: str | None = None,
    **more: Any,
) -> dict[str, Any]:
    """How a result was made, as every command records it: when (``started``, a :func:`time.time`), the command
    line, seed, device, model, data, seconds, library versions, ``small`` under ``DLAUDIT_SMALL=1``, and ``more``
    (an audit's fast flag, threads, seconds per section, executor and engine; a mitigation's methods)."""
    import datetime as dt

    out: dict[str, Any] = {
        "generated": dt.datetime.fromtimestamp(started, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "command": command or command_line(),
        "seed": seed,
        "device": device,
        "model": {
            "source": bundle.source,
            "format": bundle.format,
            "normalisation": bundle.normalisation,
            **({"load": bundle.load_notes} if bundle.load_notes else {}),  # e.g. an ONNX conversion's agreement
        },
        "data": {
            "name": data.name,
            "split": data.split,
            "n": len(data),
            **(
                {"notes": list(data.notes)} if getattr(data, "notes", None) else {}
            ),  # e.g. texts truncated to max length
        },
        **more,
        "total_seconds": round(seconds, 3),
        "versions": library_versions(),
    }
    if small():
        out["small"] = True
    return out


@dataclass(frozen=True)
class AuditSpec:
    """Everything one audit run needs: what to audit, on what, which analyses with which settings, and how.

    Parameters
    ----------
    model
        A model file or a :class:`~dlaudit.bundle.ModelBundle`.
    data
        A dataset spec, an :class:`~dlaudit.data.AuditData`, or None for the held-out split on the card.
    data_options
        Keywords of :func:`dlaudit.api.load_data` (``data_dir``, ``target``, ``sensitive``).
    checks
        Registered analyses to run (in report order whatever order they are given in); None: the defaults.
    params
        Per-analysis settings, e.g. ``{"robustness": {"eps": [0.1]}}``, validated before any work.
    fast
        Each analysis' fast profile (cheaper, stated in the report); ``DLAUDIT_SMALL=1`` turns it on.
    seed, device, trust_pickle, trust_ops
        Every random step is seeded from ``seed``; ``auto``, ``cpu`` or ``cuda``; allow whole pickled modules;
        let a graph call operators outside torch's own (see :mod:`dlaudit.operators`).
    workers, ray_address, checkpoint
        Shard the work over Ray and/or keep finished shards to resume (:mod:`dlaudit.parallel`).
    compile
        Run attack gradient steps through ``torch.compile`` where the model allows it.
    timeout
        Seconds loading the model (with its first forward pass) and each analysis may take (see
        :func:`load_bounded` and :func:`dlaudit.analysis.run_analysis`).
    title, command
        The report's title and the command line recorded in its provenance.
    strict
        What a named view (``attack``, ``certify``, ``explain``) wants: bad settings raise before any
        work, an analysis that does not apply or fails raises its error instead of becoming a
        skipped or failed section, and a model with non-finite logits on the data raises
        :class:`~dlaudit.errors.ModelOutputError` before any work (an audit instead records bad
        settings as a failed section, and reports every number of every section as undefined).
    """

    model: Any
    data: Any = None
    data_options: Mapping[str, Any] = field(default_factory=dict)
    checks: tuple[str, ...] | None = None
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    fast: bool = False
    seed: int = 0
    device: str = "auto"
    trust_pickle: bool = False
    trust_ops: bool = False
    workers: int | None = None
    ray_address: str | None = None
    checkpoint: str | Path | None = None
    compile: bool = False
    timeout: float | None = None
    title: str | None = None
    command: str | None = None
    strict: bool = False


_KEPT: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("dlaudit_kept", default=None)


def keep(name: str, value: Any) -> None:
    """Hand an in-memory result of an analysis (e.g. the attributions) to the view that runs it.

    Outside :func:`run_keeping` this does nothing: a report holds only what its sections hold.
    """
    kept = _KEPT.get()
    if kept is not None:
        kept[name] = value


def run(spec: AuditSpec, progress: ProgressFn | None = None) -> Report:
    """Run the analyses ``spec`` names and gather their sections into a :class:`~dlaudit.report.model.Report`."""
    return run_keeping(spec, progress)[0]


def run_keeping(spec: AuditSpec, progress: ProgressFn | None = None) -> tuple[Report, dict[str, Any]]:
    """:func:`run`, and what the analyses handed over with :func:`keep` (by name)."""
    import time

    import torch

    from ._alloc import malloc_tuning_state
    from .report.model import Report
    from .utils import resolve_device

    tune_malloc()
    fast = spec.fast or small()
    wanted = parse_checks(spec.checks)
    params = {k: dict(v) for k, v in (spec.params or {}).items()}
    unknown = sorted(set(params) - set(list_analyses()))
    if unknown:
        raise ConfigError(
            f"params given for unknown check(s) {', '.join(unknown)}; choose from: {', '.join(list_analyses())}"
        )
    if small():
        params = {**params, **{name: get_analysis(name).small_params(params.get(name, {})) for name in wanted}}
    dev = resolve_device(spec.device)
    check_workers(spec.workers, spec.ray_address)  # before the model loads, and before Ray starts
    bundle = resolve_model(
        spec.model, device=str(dev), trust_pickle=spec.trust_pickle, trust_ops=spec.trust_ops, timeout=spec.timeout
    )
    if spec.strict:  # a view refuses bad settings before any work; an audit reports them in the section
        for name in wanted:
            get_analysis(name).check_settings(bundle, fast=fast, params=params.get(name, {}))
    audit_data = resolve_data(bundle, spec.data, **dict(spec.data_options))
    logits = model_logits(bundle, audit_data, timeout=spec.timeout)
    if spec.strict:
        require_finite(logits, audit_data)
    bad = _nonfinite_rows(logits)
    seed, plan_doc, fast_by = spec.seed, None, {}
    request = planning.current()
    if request is not None:  # --time-budget or --plan: the plan fixes every section's settings and the seed
        spent = time.perf_counter() - request.started  # loading the model and data, from the request on
        plan_doc, params, fast_by, seed = _planned(bundle, audit_data, wanted, params, fast, seed, progress, spent)
    report = Report(title=spec.title or f"dlaudit report: {model_name(bundle)}")
    report.card = bundle.card.to_dict()
    started = time.time()
    clock = time.perf_counter()
    executor = _parallel_executor(
        spec.workers,
        spec.ray_address,
        spec.checkpoint,
        bundle=bundle,
        data=audit_data,
        run={"kind": "audit", "checks": wanted, "fast": fast, "seed": seed, "params": params, "fast_by": fast_by},
    )
    kept: dict[str, Any] = {}
    token = _KEPT.set(kept)
    try:
        with _using(executor), _engine(spec.compile) as engine:
            stuck = _run_sections(
                report,
                wanted,
                bundle,
                audit_data,
                seed=seed,
                fast=fast,
                progress=progress,
                timeout=spec.timeout,
                params=params,
                bad=bad,
                strict=spec.strict,
                fast_by=fast_by,
            )
    finally:
        _KEPT.reset(token)
    report.provenance = provenance(
        bundle,
        audit_data,
        started=started,
        seconds=time.perf_counter() - clock,
        seed=seed,
        device=str(dev),
        command=spec.command,
        fast=fast,
        threads=torch.get_num_threads(),
        seconds_per_section={s.name: s.seconds for s in report.sections},
        malloc_tuning=malloc_tuning_state()["reason"],
        parallel=executor.describe(),
        engine=engine(),
    )
    if plan_doc is not None:
        report.provenance["plan"] = plan_doc
        report.provenance["plan_bought"] = planning.bought(report)  # the widest 95 % interval of each section
        report.provenance["time_budget"] = planning.summary(plan_doc, report.provenance["plan_bought"])
    if stuck:
        log.warning("a section did not stop after its timeout: %s", stuck)
    return report, kept


def _planned(
    bundle: ModelBundle,
    data: AuditData,
    wanted: Sequence[str],
    params: dict[str, dict[str, Any]],
    fast: bool,
    seed: int,
    progress: ProgressFn | None,
    spent: float,
) -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, bool], int]:
    """The plan of this run (made for ``--time-budget``, or the ``--plan`` replayed: see :mod:`dlaudit.plan`),
    announced and written before any work; returns it with the sections' parameters, fast flags and the seed."""
    request = planning.current()
    if request is None or (request.plan is None and request.budget is None):
        raise DlauditError(
            "an audit was planned without --time-budget or --plan; this is a bug in dlaudit, please report it"
        )
    if request.plan is not None:
        plan_doc = dict(request.plan)
        planning.apply_plan(plan_doc, bundle, data, wanted, request.source)
    else:
        plan_doc = planning.make_plan(
            bundle, data, wanted, params, fast=fast, seed=seed, budget=request.budget, spent=spent
        )
    announce = getattr(progress, "announce", None)
    text = planning.plan_text(plan_doc)
    if request.plan is not None:
        text = f"replaying the plan {request.source} (nothing timed; its settings and seed {plan_doc['seed']}):\n{text}"
    if announce is not None:
        announce(text)
    else:
        log.info("%s", text)
    if request.plan_out is not None:
        planning.write_plan(plan_doc, request.plan_out)
    sections = plan_doc["sections"]
    planned = {name: dict(sections[name]["params"]) for name in wanted}
    return plan_doc, planned, {name: bool(sections[name]["fast"]) for name in wanted}, int(plan_doc["seed"])


# -- model and data -----------------------------------------------------------------------------


def resolve_model(
    model: ModelBundle | str | Path,
    *,
    device: str = "auto",
    trust_pickle: bool = False,
    trust_ops: bool = False,
    timeout: float | None = None,
) -> ModelBundle:
    """``model`` as a bundle on ``device``: a bundle as given (moved unless ``auto``), a file loaded
    (interruptibly, within ``timeout`` seconds: see :func:`load_bounded`)."""
    from .bundle import ModelBundle
    from .bundle import load_model as _load

    if isinstance(model, ModelBundle):
        return model.to(device) if device != "auto" else model
    return load_bounded(
        lambda: _load(model, card=None, trust_pickle=trust_pickle, trust_ops=trust_ops, device=device, shape_hint=None),
        model,
        timeout=timeout,
    )


def bounded(fn: Callable[[], T], *, timeout: float | None = None, what: str, advice: str = "") -> T:
    """``fn()`` where Ctrl-C stops it at once and ``timeout`` bounds it (see :func:`dlaudit.bounded.call`)."""
    from .bounded import call

    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
        raise ConfigError(f"timeout must be a number of seconds > 0, got {timeout!r}")
    return call(fn, timeout=timeout, what=what, advice=advice)


def load_bounded(load: Callable[[], ModelBundle], path: str | Path, *, timeout: float | None = None) -> ModelBundle:
    """``load()`` of the model file ``path``, with its first forward pass, under Ctrl-C and ``timeout``:
    past it :class:`dlaudit.bounded.Timeout` (exit 2) says so."""
    from .paths import shown

    return bounded(
        load,
        timeout=timeout,
        what=f"loading {shown(path)} (with its first forward pass)",
        advice="the model may never return (a loop in its forward?); check it, or give a longer --timeout",
    )


def model_logits(bundle: ModelBundle, data: AuditData, *, timeout: float | None = None) -> Any:
    """The model's logits on every input of ``data``, under Ctrl-C and ``timeout``."""
    return bounded(
        lambda: bundle.logits(data.x),
        timeout=timeout,
        what=f"the model's forward pass over {len(data)} inputs of {data.name}",
        advice="the model may never return on some inputs; check it, or give a longer --timeout",
    )


def check_workers(workers: int | None, ray_address: str | None) -> None:
    """Refuse a ``--workers`` count this machine cannot run (see :func:`dlaudit.parallel.check_workers`)."""
    from .parallel import check_workers as _check

    _check(workers, ray_address)


def resolve_data(bundle: ModelBundle, data: AuditData | str | Path | None, **kwargs: Any) -> AuditData:
    """``data`` as :class:`~dlaudit.data.AuditData`: loaded from a spec (or the card) and checked against the model.

    What every audit command reads (``split="audit"`` of :func:`dlaudit.data.for_card`): the
    held-out split of the model's own dataset, or every row of any other dataset file.
    """
    from .data import AuditData, for_card
    from .data.validate import check_fits

    if isinstance(data, AuditData):
        check_fits(bundle.card, data)
    else:
        data = for_card(bundle.card, data, **{"split": "audit", "tokenizer": bundle.tokenizer, **kwargs})
    bundle.check_samples(data)  # a converted model against its own runtime on real inputs (ONNX)
    return data


def model_name(model: ModelBundle | str | Path) -> str:
    """How titles name a model: its file name, else its architecture."""
    if isinstance(model, (str, Path)):
        return Path(model).name
    return Path(model.source).name if model.source else model.card.architecture or "model"


def _nonfinite_rows(logits: Any) -> int:
    return int((~logits.isfinite()).any(dim=1).sum()) if len(logits) else 0


def nonfinite_text(bad: int, data: AuditData, consequence: str) -> str:
    """The message for ``bad`` inputs of ``data`` with non-finite logits, ending in ``consequence``."""
    what = f"inputs of {data.name} ({data.split})"
    return NONFINITE_LOGITS.format(bad=bad, n=len(data), what=what, consequence=consequence)


def require_finite(logits: Any, data: AuditData) -> None:
    """Raise :class:`ModelOutputError` (exit 1) when the model's logits on ``data`` are not all finite.

    What ``info`` and the named views (``attack``, ``certify``, ``explain``) do before any number is
    computed: an argmax of NaN is not a prediction, so nothing from such a model is reported.
    """
    bad = _nonfinite_rows(logits)
    if bad:
        raise ModelOutputError(nonfinite_text(bad, data, "no number from it would mean anything, so none is reported"))


# -- executor and engine ------------------------------------------------------------------------


@contextlib.contextmanager
def _engine(compile: bool) -> Iterator[Callable[[], dict[str, Any]]]:
    """The attack engine's speed settings for the work inside; yields what to record in provenance."""
    from .robust.attacks import speed

    if not isinstance(compile, bool):
        raise ConfigError(f"compile must be True or False, got {compile!r}")
    with speed.using(compile=compile) as settings:
        yield lambda: speed.describe(settings)


def engine(compile: bool) -> contextlib.AbstractContextManager[Callable[[], dict[str, Any]]]:
    """The attack engine for work outside an audit run (training): see :func:`_engine`."""
    return _engine(compile)


def _parallel_executor(
    workers: int | None,
    ray_address: str | None,
    checkpoint: str | Path | None,
    *,
    bundle: ModelBundle,
    data: AuditData,
    run: dict[str, Any],
) -> Any:
    """The :mod:`dlaudit.parallel` executor for these options; a checkpoint's fingerprint names the model, data and run."""
    from . import parallel

    fingerprint = None
    if checkpoint is not None:
        weights = [t for _, t in sorted(bundle.module.state_dict().items())]
        fingerprint = {
            "dlaudit": __version__,
            "model": parallel.stable_key(*weights),
            "card": parallel.stable_key(json_text(bundle.card.to_dict())),
            "data": parallel.stable_key(data.x, data.y),
            **{k: json_text(v) if isinstance(v, (dict, list)) else v for k, v in run.items()},
        }
    return parallel.executor_for(workers, ray_address, checkpoint=checkpoint, fingerprint=fingerprint)


def _using(executor: Any) -> Any:
    from . import parallel

    return parallel.using(executor)


# -- the sections -------------------------------------------------------------------------------


def _run_sections(
    report: Report,
    wanted: Sequence[str],
    bundle: ModelBundle,
    audit_data: AuditData,
    *,
    seed: int,
    fast: bool,
    progress: ProgressFn | None,
    timeout: float | None,
    params: dict[str, dict[str, Any]],
    bad: int,
    strict: bool = False,
    fast_by: Mapping[str, bool] | None = None,
) -> str:
    """Each analysis in turn into ``report``; returns why the rest was abandoned ('' normally).

    ``fast_by`` (a plan's) says, per analysis, whether its fast profile is the base of its settings."""
    from .analysis import Stuck, run_analysis
    from .report.model import GateResult, Section
    from .utils import seed_everything

    stuck = ""
    announce = getattr(progress, "announce", None)
    default_fast = fast
    for name in wanted:
        fast = (fast_by or {}).get(name, default_fast)
        seed_everything(seed)
        log.info("running %s", name)
        if announce is not None and not stuck:
            _announce_estimate(announce, name, bundle, audit_data, fast=fast, params=params.get(name, {}))
        if progress is not None:
            progress(f"check:{name}", 0, 1)
        if stuck:
            section = Section.failed(name, get_analysis(name).title, f"not run: {stuck}, and it would share the model")
        else:
            try:
                section = run_analysis(
                    name,
                    bundle,
                    audit_data,
                    seed=seed,
                    fast=fast,
                    progress=progress,
                    timeout=timeout,
                    raise_errors=strict,
                    **params.get(name, {}),
                )
            except Stuck as err:
                stuck = str(err)
                section = Section.failed(name, get_analysis(name).title, f"{err}; it was abandoned")
        if bad:
            _undefine_section(
                report, section, nonfinite_text(bad, audit_data, "every number of this section is undefined")
            )
        report.sections.append(section)
        if section.status == "error":  # an incomplete audit must not pass: the failure is a failing check everywhere
            report.gates.append(
                GateResult(f"section {name} completed", name, "completed", 0.0, None, False, section.reason, "section")
            )
        if progress is not None:
            progress(f"check:{name}", 1, 1)
    return stuck


def _undefine_section(report: Report, section: Section, why: str) -> None:
    """A section computed on a model whose logits are not finite: every metric undefined (``why`` as its note),
    no table, figure or finding of its own (they quote its numbers) but a failing one that says why, and a failed
    section check, so the run fails whatever the gates. A section that failed keeps its reason."""
    from dataclasses import replace

    from .report.model import GateResult

    section.metrics[:] = [replace(m, value=None, ci=None, status="", note=f"undefined: {why}") for m in section.metrics]
    section.tables.clear()
    section.figures.clear()
    if section.status == "ok":
        section.findings.clear()
    section.summary = f"undefined: {why}"
    section.add_finding("fail", why, check="nonfinite-logits")
    report.gates.append(
        GateResult(
            f"section {section.name}: the model's logits are finite",
            section.name,
            "finite",
            0.0,
            None,
            False,
            why,
            "section",
        )
    )


EXPENSIVE = 20.0
"""Sections estimated to take longer than this (seconds) are announced with their estimate."""


def _announce_estimate(
    announce: Any, name: str, bundle: ModelBundle, data: AuditData, *, fast: bool, params: dict[str, Any]
) -> None:
    """Tell the person waiting how long an expensive section may take (each analysis estimates its own)."""
    estimate = get_analysis(name).time_estimate(bundle, data, fast=fast, params=params)
    if estimate is not None and estimate[0] >= EXPENSIVE:
        announce(f"[{name}] estimated {format_seconds(estimate[0])} on this machine: {estimate[1]}")
