"""The Python face of dlaudit: every CLI command is a thin layer over one function here.

Importing this module is cheap (no torch, no analysis): each function imports what
it needs when called, so ``dlaudit --help`` starts in a fraction of a second.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import math
import os
import platform
import shlex
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ._alloc import tune_malloc
from ._version import __version__
from .analysis import default_analyses, list_analyses, parse_checks
from .bounded import catch_interrupts, exit_now, interrupted
from .errors import (
    NONFINITE_LOGITS,
    AnalysisError,
    CardError,
    ConfigError,
    DataError,
    DlauditError,
    GateError,
    ModelLoadError,
    ModelOutputError,
)
from .parsing import parse_kwargs, parse_names, parse_numbers, parse_shape, parse_value_range, split_list
from .paths import Folder, atomic_write, check_paths, method_outputs, run_inputs
from .progress import ProgressPrinter, format_seconds
from .terminal import printable

if TYPE_CHECKING:
    from .bundle import ModelBundle
    from .card import ModelCard
    from .data import AuditData
    from .demo import DemoResult
    from .explain import Explanation
    from .fairness.mitigate import MitigationResult
    from .report.model import Report, Section
    from .robust.evaluate import AttackResult
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
    "demo",
    "library_versions",
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
    "TRAINABLE",
    "small",
    "SMALL",
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

T = TypeVar("T")

log = logging.getLogger(__name__)


def command_line() -> str:
    """The command line of this process as ``dlaudit ...`` (recorded in reports' provenance)."""
    return "dlaudit " + " ".join(shlex.quote(a) for a in sys.argv[1:])


MAX_SEED = 2**32 - 1
"""Seeds are 0 .. 2**32 - 1 (see :func:`dlaudit.utils.check_seed`)."""
TRAINABLE = ("cnn", "mlp", "numpy-mlp")
"""The reference architectures ``dlaudit train`` builds."""


SMALL = {"epochs": 2, "max_iter": 3, "n_boot": 50, "explain_n": 8}
"""What ``DLAUDIT_SMALL=1`` caps (besides switching every audit to the fast configuration)."""
_SMALL_WARNED: list[bool] = []


def small() -> bool:
    """Whether ``DLAUDIT_SMALL=1`` asks for the smoke-test configuration.

    Meant for trying commands and for running the README's snippets in CI (``tests/test_readme.py``):
    training stops after :data:`SMALL` ``["epochs"]`` epochs, every audit, attack and explanation uses
    the fast configuration, mitigation runs fewer rounds and resamples. The numbers then say little
    about the model; reports record ``"small": true`` in their provenance and say so at the top.
    """
    on = os.environ.get("DLAUDIT_SMALL", "").strip().lower() in ("1", "true", "yes", "on")
    if on and not _SMALL_WARNED:
        _SMALL_WARNED.append(True)
        log.warning("DLAUDIT_SMALL=1: smoke-test configuration (short training, fast audits); the numbers say little")
    return on


def _small_epochs(epochs: int | None) -> int | None:
    return min(epochs, SMALL["epochs"]) if epochs is not None and small() else SMALL["epochs"] if small() else epochs


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

    Loading (with the model's first forward pass) runs where Ctrl-C stops it at once, and
    ``timeout`` (seconds) bounds it: past it :class:`dlaudit.bounded.Timeout` is raised (exit 2).

    Examples
    --------
    >>> bundle = dlaudit.load_model("resnet18.pt", arch="torchvision:resnet18", num_classes=10,
    ...     input_shape=(3, 32, 32), mean=[0.4914, 0.4822, 0.4465], std=[0.2470, 0.2435, 0.2616])  # doctest: +SKIP
    """
    from .bundle import _card_dict
    from .bundle import load_model as _load
    from .paths import shown

    fields = _card_dict(card) if card is not None else {}
    fields.update(card_overrides(**overrides))
    return bounded(
        lambda: _load(
            path,
            card=fields or None,
            trust_pickle=trust_pickle,
            device=device,
            shape_hint=_shape_hint(data, data_dir),
        ),
        timeout=timeout,
        what=f"loading {shown(path)} (with its first forward pass)",
        advice="the model may never return (a loop in its forward?); check it, or give a longer --timeout",
    )


def bounded(fn: Callable[[], T], *, timeout: float | None = None, what: str, advice: str = "") -> T:
    """``fn()`` where Ctrl-C stops it at once and ``timeout`` bounds it (see :func:`dlaudit.bounded.call`)."""
    from .bounded import call

    if timeout is not None and not (
        isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and timeout > 0
    ):
        raise ConfigError(f"timeout must be a number of seconds > 0, got {timeout!r}")
    return call(fn, timeout=timeout, what=what, advice=advice)


def _logits(bundle: ModelBundle, data: AuditData, *, timeout: float | None = None) -> Any:
    """The model's logits on every input of ``data``, interruptible and bounded by ``timeout``."""
    return bounded(
        lambda: bundle.logits(data.x),
        timeout=timeout,
        what=f"the model's forward pass over {len(data)} inputs of {data.name}",
        advice="the model may never return on some inputs; check it, or give a longer --timeout",
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


def _bundle(
    model: ModelBundle | str | Path, *, device: str, trust_pickle: bool = False, timeout: float | None = None
) -> ModelBundle:
    from .bundle import ModelBundle

    if isinstance(model, ModelBundle):
        return model.to(device) if device != "auto" else model
    return load_model(model, device=device, trust_pickle=trust_pickle, timeout=timeout)


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

    What every audit command reads (``split="audit"`` of :func:`dlaudit.data.for_card`): the
    held-out split of the model's own dataset, or every row of any other dataset file.
    """
    from .data import AuditData
    from .data.validate import check_fits

    if isinstance(data, AuditData):
        check_fits(bundle.card, data)
        return data
    return load_data(data, bundle=bundle, **{"split": "audit", **kwargs})


# -- training --------------------------------------------------------------------------------


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
    hidden: str | Sequence[int] | None = None,
    seed: int = 0,
    device: str = "auto",
    sample_weight: Any = None,
    progress: ProgressFn | None = None,
    adversarial: str | None = None,
    eps: float | None = None,
    alpha: float | None = None,
    steps: int | None = None,
    beta: float | None = None,
    warmup: float | None = None,
    lr_schedule: str | None = None,
    certified: str | None = None,
    noise_sigma: float | None = None,
    compile: bool = False,
) -> ModelBundle:
    """Train a reference model (``cnn``, ``mlp`` or ``numpy-mlp``) on a dataset's training split.

    Returns the bundle; its card records the dataset, the held-out split, the
    training configuration and the held-out accuracy.

    ``adversarial`` trains on adversarial examples: ``"pgd"`` (Madry et al. 2018,
    arXiv:1706.06083), ``"fgsm"`` (fast FGSM with random start, Wong et al. 2020,
    arXiv:2001.03994) or ``"trades"`` (Zhang et al. 2019, arXiv:1901.08573), with
    budget ``eps``, step size ``alpha``, ``steps`` attack steps and TRADES' ``beta``
    (see :class:`dlaudit.robust.training.AdversarialTraining`); its budget ramps up over
    the first ``warmup`` share of the epochs (default 0.3) and the learning rate follows a
    cosine schedule (``lr_schedule``: ``constant`` or ``cosine``; cosine is the default for
    adversarial and certified training). Every epoch ends with a collapse check recorded on
    the card (``training.monitor``). ``certified="ibp"`` trains with interval bounds
    (Gowal et al. 2018, arXiv:1810.12715; 30 epochs by default) at budget ``eps``;
    ``noise_sigma`` trains on Gaussian-noise augmented inputs (Cohen et al. 2019,
    arXiv:1902.02918), for randomized smoothing. ``hidden`` is a list of layer sizes or
    a string such as ``"128,64"``. ``compile`` runs the attack's gradient steps through
    ``torch.compile`` (see :mod:`dlaudit.robust.attacks.speed`).
    """
    tune_malloc()
    from .data import load_splits
    from .robust.training import training_setup
    from .train import train as _train

    epochs = _small_epochs(epochs)

    if isinstance(hidden, str):
        hidden = [int(h) for h in parse_numbers(hidden, "--hidden", minimum=1, integer=True)]
    splits = load_splits(data, data_dir=data_dir, target=target, sensitive=sensitive, seed=0)
    loss_fn, training_info = training_setup(
        adversarial, eps=eps, alpha=alpha, steps=steps, beta=beta, value_range=splits.train.value_range, seed=seed,
        warmup=warmup, certified=certified, noise_sigma=noise_sigma,
    )  # fmt: skip
    if training_info is not None and "epochs" in training_info:
        default_epochs = training_info.pop("epochs")
        epochs = epochs if epochs is not None else default_epochs
    is_file = Path(str(data)).suffix.lower() in (".npz", ".csv")
    with _engine(compile):
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
            data_dir=str(Path(data_dir).resolve()) if data_dir else None,
            progress=progress,
            lr_schedule=lr_schedule,
        )


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
    if data is None and not bundle.card.dataset:
        return {**out, "accuracy": None, "data": None}
    audit_data = data_for(bundle, data, **data_kwargs)
    logits = _logits(bundle, audit_data)
    _require_finite(logits, audit_data)
    out["accuracy"] = float((logits.argmax(dim=1) == audit_data.y).float().mean())
    out["data"] = {"name": audit_data.name, "split": audit_data.split, "n": len(audit_data)}
    return out


def _nonfinite_rows(logits: Any) -> int:
    return int((~logits.isfinite()).any(dim=1).sum()) if len(logits) else 0


def _nonfinite_text(bad: int, data: AuditData, consequence: str) -> str:
    what = f"inputs of {data.name} ({data.split})"
    return NONFINITE_LOGITS.format(bad=bad, n=len(data), what=what, consequence=consequence)


def _require_finite(logits: Any, data: AuditData) -> None:
    """Raise :class:`ModelOutputError` (exit 1) when the model's logits on ``data`` are not all finite.

    What ``info``, ``attack``, ``certify`` and ``explain`` do before any number is computed:
    an argmax of NaN is not a prediction, so nothing from such a model is reported.
    """
    bad = _nonfinite_rows(logits)
    if bad:
        raise ModelOutputError(_nonfinite_text(bad, data, "no number from it would mean anything, so none is reported"))


def library_versions() -> dict[str, str]:
    """Versions of Python, dlaudit and the libraries it builds on (for the provenance footer)."""
    out = {"python": platform.python_version(), "dlaudit": __version__}
    for pkg in ("torch", "torchvision", "captum", "shap", "lime", "fairlearn", "numpy", "pandas", "scikit-learn"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = "not installed"
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
        ``report.metrics`` (the flat dict), ``report.findings``,
        ``report.check(gates)``, ``report.passed``, ``report.save(path)``.

    Examples
    --------
    >>> report = dlaudit.audit("cnn.pt", checks="performance,robustness", fast=True)  # doctest: +SKIP
    >>> report.check(["performance.accuracy >= 0.9"])  # doctest: +SKIP
    >>> report.save("reports/cnn.html")  # doctest: +SKIP
    """
    import datetime as dt
    import time

    import torch

    from ._alloc import malloc_tuning_state
    from .report.model import Report
    from .utils import resolve_device

    tune_malloc()
    fast = fast or small()
    wanted = parse_checks(checks)
    params = params or {}
    unknown = sorted(set(params) - set(list_analyses()))
    if unknown:
        raise ConfigError(
            f"params given for unknown check(s) {', '.join(unknown)}; choose from: {', '.join(list_analyses())}"
        )
    dev = resolve_device(device)
    _check_workers(workers, ray_address)
    bundle = _bundle(model, device=str(dev), trust_pickle=trust_pickle, timeout=timeout)
    audit_data = data_for(bundle, data, **data_kwargs)
    bad = _nonfinite_rows(_logits(bundle, audit_data, timeout=timeout))
    report = Report(
        title=title
        or f"dlaudit report: {Path(bundle.source).name if bundle.source else bundle.card.architecture or 'model'}"
    )
    report.card = bundle.card.to_dict()
    started = dt.datetime.now(dt.timezone.utc)
    clock = time.perf_counter()
    executor = _parallel_executor(
        workers,
        ray_address,
        checkpoint,
        bundle=bundle,
        data=audit_data,
        run={"kind": "audit", "checks": wanted, "fast": fast, "seed": seed, "params": params},
    )
    with _using(executor), _engine(compile) as engine:
        stuck = _run_sections(
            report,
            wanted,
            bundle,
            audit_data,
            seed=seed,
            fast=fast,
            progress=progress,
            timeout=timeout,
            params=params,
            bad=bad,
        )
    report.provenance = {
        "generated": started.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "command": command or command_line(),
        "seed": seed,
        "fast": fast,
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "model": {"source": bundle.source, "format": bundle.format, "normalisation": bundle.normalisation},
        "data": {"name": audit_data.name, "split": audit_data.split, "n": len(audit_data)},
        "total_seconds": round(time.perf_counter() - clock, 3),
        "seconds_per_section": {s.name: s.seconds for s in report.sections},
        "versions": library_versions(),
        "malloc_tuning": malloc_tuning_state()["reason"],
        "parallel": executor.describe(),
        "engine": engine(),
    }
    if small():
        report.provenance["small"] = True
    if stuck:
        log.warning("a section did not stop after its timeout: %s", stuck)
    return report


@contextlib.contextmanager
def _engine(compile: bool) -> Iterator[Callable[[], dict[str, Any]]]:
    """The attack engine's speed settings for the work inside; yields what to record in provenance."""
    from .robust.attacks import speed

    if not isinstance(compile, bool):
        raise ConfigError(f"compile must be True or False, got {compile!r}")
    with speed.using(compile=compile) as settings:
        yield lambda: speed.describe(settings)


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


def _check_workers(workers: int | None, ray_address: str | None) -> None:
    from .parallel import check_workers

    check_workers(workers, ray_address)


def _using(executor: Any) -> Any:
    from . import parallel

    return parallel.using(executor)


def _run_sections(
    report: Report,
    wanted: list[str],
    bundle: ModelBundle,
    audit_data: AuditData,
    *,
    seed: int,
    fast: bool,
    progress: ProgressFn | None,
    timeout: float | None,
    params: dict[str, dict[str, Any]],
    bad: int,
) -> str:
    """Each analysis in turn into ``report``; returns why the rest was abandoned ('' normally)."""
    from .analysis import Stuck, get_analysis, run_analysis
    from .report.model import GateResult, Section
    from .utils import seed_everything

    stuck = ""
    announce = getattr(progress, "announce", None)
    for name in wanted:
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
                    **params.get(name, {}),
                )
            except Stuck as err:
                stuck = str(err)
                section = Section.failed(name, get_analysis(name).title, f"{err}; it was abandoned")
        if bad:
            _undefine_section(
                report, section, _nonfinite_text(bad, audit_data, "every number of this section is undefined")
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


def _announce_estimate(
    announce: Any, name: str, bundle: ModelBundle, data: AuditData, *, fast: bool, params: dict[str, Any]
) -> None:
    """Tell the person waiting how long an expensive section may take (see :mod:`dlaudit.estimate`)."""
    from .estimate import EXPENSIVE, section_estimate

    estimate = section_estimate(name, bundle, data, fast=fast, params=params)
    if estimate is not None and estimate[0] >= EXPENSIVE:
        announce(f"[{name}] estimated {format_seconds(estimate[0])} on this machine: {estimate[1]}")


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
    inputs: Mapping[str, str | Path | Folder | None] | None = None,
    outputs: Mapping[str, str | Path | None] | None = None,
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
    robustness section attack only a tabular model's numeric columns.

    ``outputs`` (option name -> path) are the files the caller will write: before the audit, one that
    is an input of the run is refused (:func:`check_paths`): the model and its cards, the data, the
    dataset the model's card names, the configuration read (``config`` or ``./pyproject.toml``), the
    baselines (given or named in the configuration), the checkpoint folder, and ``inputs``.
    """
    from .report.config import load_config
    from .report.gates import parse_gates
    from .report.model import DEFAULT_MAX_DROP, Report

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
        Report.load(
            baseline_file,
            label="baseline report" if baseline is not None else f"the baseline report named in {cfg.source}",
        )
        if baseline_file is not None
        else None
    )
    parse_checks(checks if checks is not None else cfg.checks)  # an unknown check fails before the model loads
    _check_workers(workers, ray_address)
    bundle = (
        model
        if not isinstance(model, (str, Path))
        else load_model(
            model,
            card=dict(card) if card else None,
            trust_pickle=trust_pickle,
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
    rep = audit(
        bundle,
        data,
        checks=checks if checks is not None else cfg.checks,
        fast=fast if fast is not None else bool(cfg.fast),
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
        params={"robustness": {"features": attack_features}} if attack_features != "all" else None,
        **data_kwargs,
    )
    for source, group in (("config", cfg.gates), ("fail-on", extra_gates)):
        try:
            rep.check(group, source=source)
        except GateError as err:
            rep.errors.append(str(err))
    if old is not None:
        drop = max_drop if max_drop is not None else (cfg.max_drop if cfg.max_drop is not None else DEFAULT_MAX_DROP)
        rep.compare(old, max_drop=drop, label=str(baseline_file))
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
    eps: str | Sequence[float] = (0.05, 0.1, 0.3),
    eps_l2: str | Sequence[float] = (0.5, 1.0, 2.0),
    steps: int = 40,
    alpha: float | None = None,
    restarts: int = 1,
    n: int | None = None,
    batch_size: int | None = None,
    early_stop: bool = True,
    version: str = "standard",
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
    **data_kwargs: Any,
) -> AttackResult:
    """Robust accuracy under FGSM and/or PGD at each budget (``dlaudit attack``).

    ``eps`` are L-inf budgets and ``eps_l2`` L2 budgets, in input units (lists or
    comma-separated strings); ``n`` attacks a seeded random subset of that many
    samples. ``fast`` is the report's cheaper configuration: PGD-10 on at most 200
    samples and AutoAttack's fast version (explicit ``n`` and ``steps`` below those win);
    ``attacks`` are registry names (fgsm, pgd, apgd-ce, apgd-t, fab-t, square,
    autoattack) and ``version`` is AutoAttack's (standard or fast). Returns an
    :class:`~dlaudit.robust.evaluate.AttackResult` whose ``metrics`` map names such
    as ``robustness.pgd_linf.acc@0.1`` to accuracies. ``compile`` runs the gradient steps
    through ``torch.compile`` where the model allows it (``params["engine"]`` says where not).
    ``features="numeric"`` attacks only a tabular model's numeric columns (its one-hot
    categories keep their values); ``all`` (the default) every input feature.
    """
    tune_malloc()
    from .robust.analysis import FAST, sample_data
    from .robust.evaluate import evaluate_attacks
    from .utils import resolve_device

    eps = parse_numbers(eps, "eps", minimum=0) if isinstance(eps, str) else list(eps)
    eps_l2 = parse_numbers(eps_l2, "eps-l2", minimum=0) if isinstance(eps_l2, str) else list(eps_l2)
    fast = fast or small()
    if fast:
        steps = min(steps, FAST["steps"])
        n = min(n, FAST["n"]) if n is not None else FAST["n"]
        version = "fast"
    _check_workers(workers, ray_address)
    bundle = _bundle(model, device=str(resolve_device(device)), trust_pickle=trust_pickle)
    all_data = data_for(bundle, data, **data_kwargs)
    _require_finite(_logits(bundle, all_data), all_data)
    audit_data = sample_data(all_data, n, seed)
    executor = _parallel_executor(
        workers, ray_address, checkpoint, bundle=bundle, data=audit_data,
        run={"kind": "attack", "attacks": attacks, "norms": norms, "eps": eps, "eps_l2": eps_l2, "steps": steps, "alpha": alpha,
             "restarts": restarts, "early_stop": early_stop, "version": version, "seed": seed, "batch_size": batch_size,
             "features": features},
    )  # fmt: skip
    with _using(executor), _engine(compile) as engine:
        result = evaluate_attacks(
            bundle, audit_data, attacks=attacks, norms=norms, eps=eps, eps_l2=eps_l2, steps=steps, alpha=alpha,
            restarts=restarts, early_stop=early_stop, version=version, batch_size=batch_size, seed=seed, progress=progress,
            features=features,
        )  # fmt: skip
        result.params["parallel"] = executor.describe()
    result.params["engine"] = engine()
    result.params["fast"] = fast
    return result


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
    tune_malloc()
    from .robust.analysis import robustness as _robustness
    from .utils import resolve_device, seed_everything

    bundle = _bundle(model, device=str(resolve_device(device)), trust_pickle=trust_pickle)
    audit_data = data_for(bundle, data, data_dir=data_dir, target=target, sensitive=sensitive)
    seed_everything(seed)
    return _robustness(bundle, audit_data, seed=seed, fast=fast or small(), progress=progress, **params)


def certify(
    model: ModelBundle | str | Path,
    data: AuditData | str | Path | None = None,
    *,
    method: str = "smoothing",
    sigma: float = 0.25,
    radii: str | Sequence[float] = (0.0, 0.25, 0.5, 1.0),
    eps: str | Sequence[float] = (0.1,),
    n: int = 100_000,
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
    **data_kwargs: Any,
) -> Any:
    """Certified robustness (``dlaudit certify``): a proven lower bound where attacks give an upper one.

    ``method="smoothing"``: randomized smoothing (Cohen et al. 2019, arXiv:1902.02918)
    with noise ``sigma``, ``n0`` selection and ``n`` estimation samples, level ``alpha``;
    certified accuracy at the L2 ``radii``. ``"ibp"``, ``"crown-ibp"``, ``"crown"``:
    verified accuracy of the model itself at the L-inf budgets ``eps``. ``inputs`` certifies
    a seeded subset of that many samples; ``fast`` uses ``n = 1000`` and at most 50 inputs.
    Returns a :class:`~dlaudit.robust.certify.CertifyResult` whose ``metrics`` hold
    ``robustness.smoothing_l2.acc@R`` or ``robustness.certified_linf.acc@E``.
    """
    tune_malloc()
    from .robust.analysis import sample_data
    from .robust.certify import evaluate_certification
    from .utils import resolve_device

    fast = fast or small()
    radii = parse_numbers(radii, "radius", minimum=0) if isinstance(radii, str) else list(radii)
    eps = parse_numbers(eps, "eps", minimum=0) if isinstance(eps, str) else list(eps)
    if fast:
        n = min(n, 1000)
        inputs = min(inputs, 50) if inputs is not None else 50
    if inputs is not None and (isinstance(inputs, bool) or int(inputs) < 1):
        raise ConfigError(f"inputs (samples to certify) must be at least 1, got {inputs!r}")
    _check_workers(workers, ray_address)
    bundle = _bundle(model, device=str(resolve_device(device)), trust_pickle=trust_pickle)
    all_data = data_for(bundle, data, **data_kwargs)
    _require_finite(_logits(bundle, all_data), all_data)
    audit_data = sample_data(all_data, inputs, seed)
    executor = _parallel_executor(
        workers, ray_address, checkpoint, bundle=bundle, data=audit_data,
        run={"kind": "certify", "method": method, "sigma": sigma, "radii": radii, "eps": eps, "n": n, "n0": n0, "alpha": alpha, "seed": seed},
    )  # fmt: skip
    with _using(executor):
        result = evaluate_certification(
            bundle, audit_data.x, audit_data.y, method=method, sigma=sigma, radii=tuple(radii), eps=tuple(eps), n0=n0, n=n,
            alpha=alpha, batch_size=batch_size, seed=seed, progress=progress,
        )  # fmt: skip
        result.params["parallel"] = executor.describe()
    result.params.update({"data": audit_data.name, "split": audit_data.split, "fast": fast})
    return result


# -- fairness --------------------------------------------------------------------------------


def fairness_report(
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
        "sensitive": sensitive,
        "intersection": intersection,
        "bins": bins,
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
    tune_malloc()
    import datetime as dt
    import time

    from .data import AuditData, for_card
    from .fairness.mitigate import mitigate_bundle

    started, clock = dt.datetime.now(dt.timezone.utc), time.perf_counter()
    if small():
        epochs, max_iter, n_boot = _small_epochs(epochs), min(max_iter, SMALL["max_iter"]), min(n_boot, SMALL["n_boot"])
    bundle = _bundle(model, device=device, trust_pickle=trust_pickle)
    if isinstance(data, AuditData):
        raise ConfigError(
            "mitigation needs the model's training split as well as held-out data; pass a dataset name or file, not AuditData"
        )
    splits = for_card(
        bundle.card, data, split="both", data_dir=data_dir, target=target, sensitive=split_list(sensitive)
    )
    result = mitigate_bundle(
        bundle,
        splits,
        sensitive=sensitive,
        methods=split_list(method),
        constraint=constraint,
        seed=seed,
        epochs=epochs,
        max_iter=max_iter,
        eps=eps,
        bins=bins,
        n_boot=n_boot,
        progress=progress,
    )
    if output is not None:
        for name, path in method_outputs(str(output), list(result.models)).items():
            save_model(result.models[name], path)
            result.saved[name] = path
    result.provenance = {
        "generated": started.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "command": command_line(),
        "seed": seed,
        "device": str(bundle.device),
        "model": {"source": bundle.source, "format": bundle.format},
        "data": {"name": splits.test.name, "split": splits.test.split, "n": len(splits.test)},
        "mitigation": {
            "feature": sensitive,
            "methods": list(result.models),
            "constraint": constraint,
            "fitted on": f"{len(splits.train)} samples of the training split",
            "saved": dict(result.saved),
        },
        "total_seconds": round(time.perf_counter() - clock, 3),
        "versions": library_versions(),
    }
    if small():
        result.provenance["small"] = True
    return result


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
    **params: Any,
) -> Explanation:
    """Explain ``n`` samples with captum, LIME and SHAP methods, and measure how far to trust each.

    Returns a :class:`dlaudit.explain.Explanation`: ``attributions[method]``
    (the inputs' shape), the explained samples, and ``section`` (metrics such as
    ``explain.ig.deletion_auc``, findings, figures); ``save(dir)`` writes
    ``attributions.npz`` and ``explain.html``. ``data_options`` are the
    data-loading keywords (``data_dir``, ``target`` column, ``sensitive``);
    further keywords go to :func:`dlaudit.explain.explain` (``gradcam_layer``,
    ``shap_explainer``, ``settings``, ``background``).
    """
    tune_malloc()
    from .explain.explanation import explain
    from .explain.methods import parse_methods
    from .utils import resolve_device, seed_everything

    parse_methods(methods)  # an unknown method fails before the model loads
    if small():
        fast, n = True, min(n, SMALL["explain_n"])
    seed_everything(seed)
    bundle = _bundle(model, device=str(resolve_device(device)), trust_pickle=trust_pickle)
    audit_data = data_for(bundle, data, **(data_options or {}))
    _require_finite(_logits(bundle, audit_data), audit_data)
    return explain(
        bundle,
        audit_data,
        methods=methods,
        n=n,
        target=target,
        seed=seed,
        fast=fast,
        quality=quality,
        progress=progress,
        **params,
    )


# -- the demo --------------------------------------------------------------------------------


def demo(
    output_dir: str | Path = "reports",
    *,
    seed: int = 0,
    device: str = "auto",
    full: bool = False,
    retrain: bool = False,
    progress: ProgressFn | None = None,
) -> DemoResult:
    """Train (or reuse) three models and write their reports and a comparison page, offline (``dlaudit demo``)."""
    tune_malloc()
    from .demo import run_demo

    return run_demo(output_dir, seed=seed, device=device, full=full, retrain=retrain, progress=progress)
