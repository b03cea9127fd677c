"""The analysis registry, and the contract every analysis keeps.

An analysis is a function ``(bundle, data, *, seed, fast, progress, **params) -> Section``
registered under the name ``--checks`` uses. The contract, checked for every
registered analysis by ``tests/test_analysis_contract.py``:

- it leaves the model as it found it (training mode, ``requires_grad``, hooks); :func:`run_analysis`
  runs it with the model in eval mode and restores each submodule's mode after;
- every metric it reports is named ``<section name>.*``;
- the same seed gives the same numbers; ``fast=True`` is accepted;
- it raises :class:`~dlaudit.errors.AnalysisError` when it does not apply (the report
  shows it as skipped with the reason) and any other error when it fails;
  :func:`run_analysis` turns both into a section, so no analysis aborts a report.

The built-in analyses are registered in one place, :mod:`dlaudit.analyses`, by import
path: nothing is imported until an analysis runs (``dlaudit --help`` stays light).
A new analysis is one module, one :func:`register_analysis` line and one test file;
another package adds one through an entry point in the ``dlaudit.analyses`` group
(see :mod:`dlaudit.plugins`), loaded when the registry is first consulted.
"""

from __future__ import annotations

import contextvars
import importlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .bounded import interrupted
from .errors import AnalysisError, ConfigError, DlauditError

if TYPE_CHECKING:
    from .bundle import ModelBundle
    from .data import AuditData
    from .modalities import Modality
    from .report.model import Section
    from .utils import ProgressFn

__all__ = [
    "Analysis",
    "Option",
    "FAST_HELP",
    "command_options",
    "register_analysis",
    "list_analyses",
    "default_analyses",
    "get_analysis",
    "run_analysis",
    "parse_checks",
]

log = logging.getLogger(__name__)

AnalysisFn = Callable[..., "Section"]

FAST_HELP = "A cheaper configuration for CI (fewer samples and steps); the output says so."
"""How every command words ``--fast``; an analysis' ``--fast`` option adds what its profile changes."""


@dataclass(frozen=True)
class Option:
    """A command-line option an analysis declares next to its settings; the CLI turns each into a Click option.

    ``command`` is the command that shows it (``report``, or a view: ``attack``, ``certify``, ``explain``,
    ``fairness``). Its value reaches the run one of two ways: ``setting`` names a field of the analysis'
    settings (``report`` options only: the value goes into ``params[analysis][setting]``, and is validated by
    the settings' ``build`` before any work), or ``keyword`` names a keyword of the command's API function (``dlaudit.attack(...,
    eps=...)``; by default ``dest``). ``dest`` is the name Click gives the value. ``type`` is ``str``, ``int``,
    ``float``, ``path`` (a file) or ``flag`` (an on/off switch; ``flag_value`` is what giving it sets);
    ``choices`` restricts a ``str``; ``min``/``max`` (with ``min_open``) bound a number. ``multiple``
    repeats it; ``required`` makes it mandatory. ``help``, ``default``, ``show_default`` and ``metavar`` are as Click shows them.

    >>> Option("report", ("--latency-runs",), "latency_runs", "Timed forward passes.", type="int",
    ...        default=None, min=1, setting="runs")  # doctest: +SKIP
    """

    command: str
    flags: tuple[str, ...]
    dest: str
    help: str = ""
    type: str = "str"
    default: Any = None
    show_default: bool = False
    choices: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    min_open: bool = False
    multiple: bool = False
    required: bool = False
    flag_value: Any = True
    metavar: str | None = None
    setting: str | None = None
    keyword: str | None = None

    def __post_init__(self) -> None:
        if self.type not in OPTION_TYPES:
            raise ConfigError(f"option {self.flags}: type must be one of {', '.join(OPTION_TYPES)}, got {self.type!r}")
        if not self.flags or not all(f.startswith("-") for f in self.flags):
            raise ConfigError(f"option {self.dest!r}: flags must start with '-', got {self.flags!r}")
        if self.setting is not None and self.keyword is not None:
            raise ConfigError(f"option {self.flags[-1]}: give setting or keyword, not both")
        if self.setting is not None and self.command != "report":
            raise ConfigError(
                f"option {self.flags[-1]}: a setting option belongs to the report command, not {self.command!r}"
            )

    @property
    def target(self) -> str:
        """The settings field or API keyword the value fills."""
        return self.setting or self.keyword or self.dest


OPTION_TYPES = ("str", "int", "float", "path", "flag")


def _resolve(target: Any) -> Any:
    """``target``, or what its ``"module:attribute"`` import path names (imported on first use)."""
    if not isinstance(target, str):
        return target
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class Analysis:
    """A registered analysis: its ``--checks`` name, section title, function (or its
    ``"module:function"`` import path), place in the report, whether it runs by default,
    what it is configured by, and the modality names it applies to (None: every modality; on
    others the section is skipped).

    ``settings`` is the analysis' frozen settings class (or its import path): it holds every
    parameter with its default, its ``FAST`` profile (the cheaper configuration ``fast=True``
    selects; defined there and nowhere else), optionally its ``SMALL`` caps (what ``DLAUDIT_SMALL=1``
    caps, given values included) and ``build(bundle, *, fast, **params)``, which
    validates the parameters against the model and raises :class:`~dlaudit.errors.ConfigError`
    on a bad one, so an audit refuses bad settings before any work. ``estimate`` (or its import
    path) is ``estimate(bundle, data, settings) -> (seconds, what) | None``: the time the analysis
    will take with those settings, announced before an expensive one starts.
    """

    name: str
    title: str
    target: AnalysisFn | str
    order: int = 100
    default: bool = True
    settings: Any = None
    estimate: Any = None
    modalities: tuple[str, ...] | None = None
    budget: Any = None
    """Its :class:`dlaudit.plan.Budget` (or import path): how ``--time-budget`` measures and sizes it; None: not budgeted."""
    options: Any = ()
    """The command-line :class:`Option` s it declares (a sequence, or its ``"module:NAME"`` import path in a
    module light enough for ``dlaudit --help``: no torch)."""

    @property
    def budget_hooks(self) -> Any:
        """The :class:`dlaudit.plan.Budget` (None when the analysis declares none)."""
        return _resolve(self.budget) if self.budget is not None else None

    def budget_for(self, modality: Modality) -> Any:
        """The :class:`dlaudit.plan.Budget` that sizes this analysis on data of ``modality``: the modality's own
        where it answers the analysis with a builder of its own (:meth:`~dlaudit.modalities.Modality.section_budget`,
        None if it declares none), else :attr:`budget_hooks`."""
        if modality.section_builder(self.name) is not None:
            own = modality.section_budget(self.name)
            return _resolve(own) if own else None
        return self.budget_hooks

    def applies_to(self, modality: Modality) -> str | None:
        """None when the analysis runs on data of ``modality``; otherwise why not (the skipped section's reason)."""
        if self.modalities is None or modality.name in self.modalities:
            return None
        return f"{self.title} applies to {', '.join(self.modalities)} data; this is {modality.title} data"

    @property
    def fn(self) -> AnalysisFn:
        """The analysis function (imported on first use when registered by path)."""
        return _resolve(self.target)

    @property
    def settings_class(self) -> Any:
        """The settings class (None when the analysis declares none)."""
        return _resolve(self.settings) if self.settings is not None else None

    @property
    def cli_options(self) -> tuple[Option, ...]:
        """The options it declares, for every command (imported on first use when given by path)."""
        return tuple(_resolve(self.options)) if self.options else ()

    @property
    def fast(self) -> dict[str, Any]:
        """The fast profile: the settings ``fast=True`` changes, and their values."""
        cls = self.settings_class
        return dict(getattr(cls, "FAST", {})) if cls is not None else {}

    def small_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """``params`` under ``DLAUDIT_SMALL=1``: each setting the settings class caps in its ``SMALL``
        (defined there and nowhere else) at most its cap, given or not."""
        cls = self.settings_class
        caps = dict(getattr(cls, "SMALL", {})) if cls is not None else {}
        return {**params, **{k: cap if params.get(k) is None else min(params[k], cap) for k, cap in caps.items()}}

    def make_settings(self, bundle: ModelBundle, *, fast: bool = False, params: dict[str, Any] | None = None) -> Any:
        """The validated settings for ``params`` on ``bundle`` (None when the analysis declares none).

        None too where the bundle's modality answers the analysis with a builder of its own
        (:meth:`~dlaudit.modalities.Modality.section_builder`): that builder checks its parameters.
        """
        if bundle is not None and bundle.card.kind.section_builder(self.name) is not None:
            return None
        cls = self.settings_class
        return cls.build(bundle, fast=fast, **(params or {})) if cls is not None else None

    def check_settings(self, bundle: ModelBundle, *, fast: bool = False, params: dict[str, Any] | None = None) -> None:
        """Raise :class:`~dlaudit.errors.ConfigError` when ``params`` are not valid settings for ``bundle``."""
        self.make_settings(bundle, fast=fast, params=params)

    def time_estimate(
        self, bundle: ModelBundle, data: AuditData, *, fast: bool = False, params: dict[str, Any] | None = None
    ) -> tuple[float, str] | None:
        """``(seconds, what it counts)`` for these settings, or None (no estimate, or settings it cannot judge)."""
        if len(data) and data.kind.section_builder(self.name) is not None:  # the modality's own builder
            own = data.kind.section_estimate(self.name)
            return _resolve(own)(bundle, data, fast=fast, params=params or {}) if own else None
        if self.estimate is None or self.settings is None or len(data) == 0:
            return None
        try:
            settings = self.make_settings(bundle, fast=fast, params=params)
        except DlauditError:  # the run itself says what is wrong
            return None
        return _resolve(self.estimate)(bundle, data, settings)


_REGISTRY: dict[str, Analysis] = {}
_BUILTINS_LOADED = False


def register_analysis(
    name: str,
    target: AnalysisFn | str | None = None,
    *,
    title: str | None = None,
    order: int = 100,
    default: bool = True,
    settings: Any = None,
    estimate: Any = None,
    modalities: tuple[str, ...] | None = None,
    budget: Any = None,
    options: Any = (),
) -> Any:
    """Register an analysis under ``name`` (the ``--checks`` name and its metrics' prefix).

    ``target`` is the function or its ``"module:function"`` path; left out, this
    returns a decorator. ``default=False`` analyses run only when ``--checks`` names them.
    ``settings`` and ``estimate`` (objects or import paths) are described on :class:`Analysis`;
    ``modalities`` (names) restricts it to those kinds of data; ``budget`` is its
    :class:`dlaudit.plan.Budget` (how ``--time-budget`` sizes it); ``options`` are the :class:`Option` s
    it adds to the command line (or their import path).

    >>> @register_analysis("latency", title="Latency", order=50, default=False)  # doctest: +SKIP
    ... def latency(bundle, data, *, seed=0, fast=False, progress=None): ...
    """
    if not name or not name.replace("_", "").replace("-", "").isalnum():
        raise ConfigError(f"an analysis name must be a word (letters, digits, - or _), got {name!r}")

    def add(fn: AnalysisFn | str) -> AnalysisFn | str:
        _REGISTRY[name] = Analysis(
            name,
            title or name.capitalize(),
            fn,
            order,
            default,
            settings,
            estimate,
            None if modalities is None else tuple(modalities),
            budget,
            options,
        )
        return fn

    return add if target is None else add(target)


def _registry() -> dict[str, Analysis]:
    global _BUILTINS_LOADED
    if not _BUILTINS_LOADED:
        _BUILTINS_LOADED = True
        importlib.import_module(f"{__package__}.analyses")
        from .plugins import load_plugins

        load_plugins("dlaudit.analyses", _take)
    return _REGISTRY


def _take(name: str, obj: Any) -> bool:
    """An entry point naming an :class:`Analysis` registers it."""
    if isinstance(obj, Analysis):
        _REGISTRY[obj.name] = obj
        return True
    return False


def list_analyses() -> list[str]:
    """Every registered analysis, in report order."""
    return [a.name for a in sorted(_registry().values(), key=lambda a: (a.order, a.name))]


def default_analyses() -> list[str]:
    """The analyses a report runs when ``--checks`` is not given, in report order."""
    return [name for name in list_analyses() if _registry()[name].default]


_COMMANDS = {"train": "dlaudit.train.options:OPTIONS"}
"""The options of commands that no analysis runs, by the package that does their work (import paths)."""


def command_options(command: str) -> list[tuple[str, Option]]:
    """``(owner, option)`` for every option declared for ``command``: the registered analyses' (plug-ins
    included; the owner is the analysis' name), in report order, then those of :data:`_COMMANDS`."""
    found: list[tuple[str, Option]] = []
    for name in list_analyses():
        try:
            declared = _registry()[name].cli_options
        except Exception as err:  # noqa: BLE001 - a plug-in's broken declaration is one warning line, never a crash
            log.warning("the options of analysis %r were not loaded: %s: %s", name, type(err).__name__, err)
            continue
        found += [(name, o) for o in declared if isinstance(o, Option) and o.command == command]
    if command in _COMMANDS:
        found += [(command, o) for o in _resolve(_COMMANDS[command]) if o.command == command]
    return found


def get_analysis(name: str) -> Analysis:
    try:
        return _registry()[name]
    except KeyError:
        raise ConfigError(f"unknown check {name!r}; choose from: {', '.join(list_analyses())}") from None


def parse_checks(checks: str | Any | None) -> list[str]:
    """``--checks`` (comma-separated or a list) as registered names in report order; None: the defaults."""
    if checks is None:
        return default_analyses()
    from .parsing import parse_names, split_list

    order = list_analyses()
    if not split_list(checks):
        raise ConfigError(f"no checks selected; choose from: {', '.join(order)}")
    items = parse_names(checks, order, "check(s)")
    return sorted(items, key=order.index)


class Cancelled(Exception):
    """Raised inside an analysis (at its next progress report) when its run was cancelled: timeout or Ctrl-C."""


class Stuck(DlauditError):
    """An analysis passed its timeout and did not stop; nothing else may run beside it on the same model."""


def run_analysis(
    name: str,
    bundle: ModelBundle,
    data: AuditData,
    *,
    timeout: float | None = None,
    progress: ProgressFn | None = None,
    raise_errors: bool = False,
    **params: Any,
) -> Section:
    """Run one analysis; an error becomes a skipped or failed section, never an exception
    (with ``raise_errors``, a :class:`~dlaudit.errors.DlauditError` is raised instead: what a
    named view such as ``dlaudit attack`` wants).

    Without ``timeout``, called from the main thread, the analysis runs in it (Ctrl-C stops it
    between two operations; torch runs a section started in a thread of its own up to 1.8x slower,
    see the code). Otherwise it runs in a worker thread while this thread waits, so Ctrl-C is
    answered at once even when a model's forward pass is slow, and ``timeout``
    (seconds) bounds it: past it the analysis is cancelled at its next progress
    report and the section fails with the reason. An analysis that does not stop
    within :data:`GRACE` seconds more raises :class:`Stuck` (the audit then marks the
    remaining sections as not run: they would share the model with it).
    """
    from .report.model import Section

    analysis = get_analysis(name)
    why = analysis.applies_to(data.kind)
    if why is not None:
        section = Section.skipped(name, analysis.title, why)
        section.seconds = 0.0
        return section
    if timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ConfigError(f"timeout must be a number of seconds > 0, got {timeout!r}")
    start = time.perf_counter()
    cancel = threading.Event()
    outcome: dict[str, Any] = {}

    def checked_progress(stage: str, done: int, total: int) -> None:
        if cancel.is_set():
            raise Cancelled(stage)
        if progress is not None:
            progress(stage, done, total)

    def work() -> None:
        from .utils import eval_mode

        try:
            with eval_mode(bundle.module):  # an audit measures the model as deployed: no dropout, running BN statistics
                own = data.kind.section_builder(name)  # a modality may answer an analysis with a builder of its own
                fn = _resolve(own) if own is not None else analysis.fn
                outcome["section"] = fn(bundle, data, progress=checked_progress, **params)
        except BaseException as err:  # noqa: BLE001 - handed to the waiting thread, which sorts it out
            outcome["error"] = err

    if timeout is None and threading.current_thread() is threading.main_thread():
        # No deadline to keep: the work runs in this thread. torch's OpenMP threads run a section started from a
        # thread of its own up to 1.8x slower once the main thread has run parallel work of its own (loading,
        # probes): the digits CNN's robustness section took 86 s in a thread and 51 s here (2 cores, quiet).
        work()
        worker = None
    else:
        context = contextvars.copy_context()  # the executor (dlaudit.parallel) and other context travel with it
        worker = threading.Thread(target=context.run, args=(work,), name=f"dlaudit-{name}", daemon=True)
        worker.start()
    try:
        while worker is not None and worker.is_alive():
            worker.join(0.1)
            if timeout is not None and time.perf_counter() - start > timeout:
                cancel.set()
                worker.join(GRACE)
                if worker.is_alive():
                    raise Stuck(f"the {name} section ran past its timeout of {timeout:g} s and did not stop")
                outcome = {"error": Cancelled(f"timed out after {timeout:g} s (--timeout)")}
                break
    except KeyboardInterrupt:
        cancel.set()
        raise
    if interrupted():  # a Ctrl-C that a library swallowed (a callback, a finalizer) ends the run here all the same
        raise KeyboardInterrupt
    err = outcome.get("error")
    if err is None:
        section = outcome["section"]
    elif isinstance(err, Cancelled):
        section = Section.failed(
            name, analysis.title, f"timed out after {timeout:g} s (--timeout); the other sections still ran"
        )
    elif raise_errors and isinstance(err, DlauditError):
        raise err
    elif isinstance(err, AnalysisError):
        section = Section.skipped(name, analysis.title, str(err))
    elif isinstance(err, DlauditError):
        section = Section.failed(name, analysis.title, str(err))
    elif isinstance(err, Exception):  # an analysis bug must not abort the whole report
        log.debug("analysis %s failed", name, exc_info=err)
        section = Section.failed(name, analysis.title, f"{type(err).__name__}: {err}")
    else:  # KeyboardInterrupt or SystemExit inside the worker
        raise err
    section.seconds = round(time.perf_counter() - start, 3)
    return section


GRACE = 10.0
"""Seconds a cancelled analysis gets to reach its next progress report and stop."""
