"""Audits sized to the time you have: measure, plan, then run the plan (``--time-budget``, ``--plan``).

A **plan** is a plain JSON object naming, for every section of one audit, the settings it runs
(sample counts, steps, restarts, smoothing draws, as explicit parameters, and whether its fast
profile is the base), the seed, and fingerprints of the model and the data it was made for. It is
made in two steps:

1. **Measure.** Each budgeted analysis contributes a :class:`Budget` next to its ``Settings``: a
   ``probe`` that times its unit costs on a few inputs (a forward pass, a gradient step, one
   explanation...), a ``levels`` ladder of settings from its minimum to its full configuration, and a
   ``cost`` that turns a level and the measured unit costs into seconds.
2. **Choose**, in this order of priority (:func:`choose`):

   a. every budgeted section at its minimum level (its first rung), whatever the budget;
   b. then, again and again, the section whose interval is widest (fewest samples behind its
      numbers: the 95 % interval of an accuracy from ``n`` samples is at most ``1.96 * sqrt(0.25 / n)``
      either side) moves to its next level when that still fits in what is left of the budget; ties
      go to the section earlier in the report; a section whose next level does not fit stays where it
      is while the others may still grow;
   c. stop when no section's next level fits. What is planned is :data:`SAFETY` (90 %) of the budget left
      after loading the model and data and measuring (the rest absorbs estimates that run long, and the
      report's writing). The budget never buys more than the configuration an
      audit without ``--time-budget`` runs (each ladder ends there).

The measured costs only choose the plan; everything after uses the plan, so **the numbers depend on
the plan and the seed, never on the clock**: ``--plan plan.json`` replays a plan exactly on another
machine (no timing is measured; a plan for another model or data is refused).

A run asks for planning through :func:`requested` (the CLI's ``--time-budget``, ``--plan`` and
``--plan-out``); :mod:`dlaudit.pipeline` consults :func:`current` once the model and data are loaded.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import json
import math
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import AnalysisError, ConfigError

if TYPE_CHECKING:
    from .bundle import ModelBundle
    from .data import AuditData

__all__ = [
    "Budget",
    "Level",
    "Request",
    "requested",
    "current",
    "parse_duration",
    "load_plan",
    "make_plan",
    "choose",
    "halfwidth",
    "competing_load",
    "plan_text",
    "apply_plan",
    "bought",
    "summary",
    "PLAN_FORMAT",
]

PLAN_FORMAT = 1
"""The ``dlaudit_plan`` version of the plan files this module writes and reads."""
PLAN_LIMIT = 1_000_000
"""Bytes a plan file may have (a plan is a few kilobytes)."""
Z95 = 1.96
SAFETY = 0.9
"""Share of the budget left after loading and measuring that the sections are planned to fill: the rest absorbs
estimates that run long and writing the report (on the digits CNN, 2 minutes: about 8 s of 120 after the sections)."""


@dataclass(frozen=True)
class Level:
    """One rung of a section's ladder: the parameters it sets (over the ones given), whether the
    analysis' fast profile is its base, and the samples behind its numbers (which set its interval)."""

    params: Mapping[str, Any]
    fast: bool
    samples: int


@dataclass(frozen=True)
class Budget:
    """An analysis' planning hooks (each a function or its ``"module:function"`` path).

    ``probe(bundle, data, params) -> dict[str, float]``: unit costs in seconds, measured on a few inputs with the
    parameters the run was given (e.g. the explanation methods asked for).
    ``levels(bundle, data, params) -> list[Level]``: from the minimum to the full configuration,
    samples never decreasing; ``params`` are the parameters the run was given (a level leaves a
    parameter given explicitly as it is).
    ``cost(bundle, data, level, params, costs) -> float``: seconds the section takes at ``level``.
    """

    probe: Any
    levels: Any
    cost: Any

    def call(self, hook: str, *args: Any) -> Any:
        from .analysis import _resolve

        return _resolve(getattr(self, hook))(*args)


def halfwidth(samples: int) -> float:
    """The widest 95 % interval half-width of a proportion measured on ``samples`` samples (normal approximation)."""
    return Z95 * math.sqrt(0.25 / samples) if samples > 0 else 1.0


# -- what a run asks for --------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """What a run asks of the planner: a budget (seconds) to plan for, or a plan to replay; and where to write it."""

    budget: float | None = None
    plan: Mapping[str, Any] | None = None
    plan_out: str | Path | None = None
    source: str = ""
    started: float = field(default_factory=time.perf_counter)
    """When the request was made (a command makes it first thing): the budget counts from here."""


_REQUEST: contextvars.ContextVar[Request | None] = contextvars.ContextVar("dlaudit_plan", default=None)


@contextlib.contextmanager
def requested(
    *, time_budget: str | float | None = None, plan: str | Path | None = None, plan_out: str | Path | None = None
) -> Iterator[Request | None]:
    """Plan the audits run inside for ``time_budget`` (``"90s"``, ``"10m"``, or seconds), or replay the plan file
    ``plan``; write the plan to ``plan_out``. Bad values raise :class:`~dlaudit.errors.ConfigError` at once.

    >>> with dlaudit.plan.requested(time_budget="2m", plan_out="plan.json"):  # doctest: +SKIP
    ...     report = dlaudit.audit("cnn.pt")
    """
    if time_budget is not None and plan is not None:
        raise ConfigError("--time-budget and --plan exclude each other: a plan already fixes the work; give one")
    if plan_out is not None and time_budget is None and plan is None:
        raise ConfigError("--plan-out writes the plan a --time-budget makes; add --time-budget (e.g. 10m)")
    request = None
    if time_budget is not None:
        request = Request(budget=parse_duration(time_budget), plan_out=plan_out)
    elif plan is not None:
        request = Request(plan=load_plan(plan), plan_out=plan_out, source=str(plan))
    token = _REQUEST.set(request)
    try:
        yield request
    finally:
        _REQUEST.reset(token)


def current() -> Request | None:
    """The planning request of the run in progress (None: the configuration is fixed, full or fast)."""
    return _REQUEST.get()


_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(s|sec|secs|seconds?|m|min|mins|minutes?|h|hours?)?\s*$", re.I)
_UNIT = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str | float) -> float:
    """``"90s"``, ``"10m"``, ``"1.5h"`` or a number of seconds, as seconds > 0 (else :class:`ConfigError`)."""
    if isinstance(text, bool):
        raise ConfigError(f"--time-budget must be a duration such as 90s or 10m, got {text!r}")
    if isinstance(text, (int, float)):
        seconds = float(text)
    else:
        match = _DURATION.match(str(text))
        if match is None:
            raise ConfigError(f"--time-budget must be a duration such as 90s, 10m or 1h, got {text!r}")
        seconds = float(match.group(1)) * _UNIT[(match.group(2) or "s")[0].lower()]
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(f"--time-budget must be more than 0 seconds, got {text!r}; give e.g. 90s or 10m")
    return seconds


# -- plan files -----------------------------------------------------------------------------------


def _bad_plan(path: str | Path, why: str) -> ConfigError:
    from .paths import shown

    return ConfigError(
        f"--plan {shown(path)} is not a dlaudit plan ({why}); write one with --time-budget and --plan-out"
    )


def load_plan(path: str | Path) -> dict[str, Any]:
    """The plan in the JSON file ``path``, checked for shape (not yet against a model: :func:`apply_plan` does)."""
    from .paths import read_input

    raw = read_input(path, "--plan", limit=PLAN_LIMIT)
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise _bad_plan(path, f"not JSON: {str(err).splitlines()[0]}") from None
    if not isinstance(doc, dict) or doc.get("dlaudit_plan") != PLAN_FORMAT:
        raise _bad_plan(path, f'no "dlaudit_plan": {PLAN_FORMAT} at its top')
    for key, kind in (("model", str), ("data", str), ("seed", int), ("checks", list), ("sections", dict)):
        if not isinstance(doc.get(key), kind) or isinstance(doc.get(key), bool):
            raise _bad_plan(path, f'"{key}" is missing or not a {kind.__name__}')
    for name, entry in doc["sections"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("params"), dict):
            raise _bad_plan(path, f'section "{name}" has no "params" object')
        if not isinstance(entry.get("fast"), bool):
            raise _bad_plan(path, f'section "{name}" has no "fast": true or false')
    if sorted(doc["sections"]) != sorted(doc["checks"]):
        raise _bad_plan(path, '"sections" and "checks" do not name the same sections')
    return doc


def fingerprints(bundle: ModelBundle, data: AuditData) -> tuple[str, str]:
    """(model, data) keys a plan is bound to: the weights and card; the inputs and labels."""
    from .parallel import stable_key

    weights = [t for _, t in sorted(bundle.module.state_dict().items())]
    model = stable_key(*weights, json.dumps(bundle.card.to_dict(), sort_keys=True, default=str))
    return model, stable_key(data.x, data.y)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ConfigError(
        f"a planned parameter holds {type(value).__name__}, which a plan file cannot; pass it as a number"
    )


# -- choosing -------------------------------------------------------------------------------------


@dataclass
class _Ladder:
    name: str
    levels: list[Level]
    costs: list[float]
    at: int = 0
    notes: list[str] = field(default_factory=list)


def choose(ladders: Sequence[_Ladder], seconds: float) -> float:
    """Move each ladder's ``at`` up in the documented order of priority (see the module); returns the planned seconds."""
    total = sum(ladder.costs[0] for ladder in ladders)
    while True:
        growable = [
            (ladder.levels[ladder.at].samples, i, ladder)
            for i, ladder in enumerate(ladders)
            if ladder.at + 1 < len(ladder.levels)
            and total - ladder.costs[ladder.at] + ladder.costs[ladder.at + 1] <= seconds
        ]
        if not growable:
            return total
        _, _, ladder = min(growable, key=lambda t: (t[0], t[1]))  # the widest interval first, then report order
        total += ladder.costs[ladder.at + 1] - ladder.costs[ladder.at]
        ladder.at += 1


def make_plan(
    bundle: ModelBundle,
    data: AuditData,
    checks: Sequence[str],
    params: Mapping[str, Mapping[str, Any]],
    *,
    fast: bool,
    seed: int,
    budget: float,
    spent: float = 0.0,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, Any]:
    """Measure each budgeted section's unit costs and choose its settings for ``budget`` seconds (see the module).

    ``spent`` seconds of the budget went before (loading the model and data); what is left after the probes,
    times :data:`SAFETY`, is planned.

    A section without a :class:`Budget` (a plug-in that declares none), or whose probe finds it does
    not apply, keeps the settings it was given and is planned at no cost.
    """
    from .analysis import get_analysis

    started = clock()
    ladders: list[_Ladder] = []
    fixed: dict[str, dict[str, Any]] = {}
    units: dict[str, dict[str, float]] = {}
    for name in checks:
        analysis = get_analysis(name)
        given = dict(params.get(name, {}))
        hooks = analysis.budget_for(data.kind)  # a modality's own section has its own budget (text)
        why = analysis.applies_to(data.kind)
        if hooks is None or why is not None:
            fixed[name] = {"params": given, "fast": fast, "budgeted": False, "why": why or "declares no budget hooks"}
            continue
        try:
            costs = dict(hooks.call("probe", bundle, data, given))
            levels = list(hooks.call("levels", bundle, data, given))
            seconds = [float(hooks.call("cost", bundle, data, lvl, given, costs)) for lvl in levels]
            # a rung does at least the work of the one below it (samples never decrease): a price that falls is
            # the probe's timing noise (a busy machine), so each rung costs at least what the one below does
            seconds = list(itertools.accumulate(seconds, max))
        except (AnalysisError, ConfigError) as err:  # the section itself will say so when it runs
            fixed[name] = {"params": given, "fast": fast, "budgeted": False, "why": str(err)}
            continue
        units[name] = {k: float(f"{v:.4g}") for k, v in costs.items()}
        ladders.append(_Ladder(name, levels, seconds))
    probe_seconds = clock() - started
    left = SAFETY * (budget - spent - probe_seconds)
    planned = choose(ladders, left)
    model_key, data_key = fingerprints(bundle, data)
    sections: dict[str, Any] = {}
    for name in checks:
        if name in fixed:
            entry = fixed[name]
            sections[name] = {**entry, "params": _jsonable(entry["params"])}
            continue
        ladder = next(item for item in ladders if item.name == name)
        level = ladder.levels[ladder.at]
        sections[name] = {
            "params": _jsonable({**params.get(name, {}), **level.params}),
            "fast": level.fast,
            "budgeted": True,
            "level": f"{ladder.at + 1} of {len(ladder.levels)}",
            "samples": level.samples,
            "interval_halfwidth": round(halfwidth(level.samples), 4),
            "estimated_seconds": round(ladder.costs[ladder.at], 2),
            "minimum_seconds": round(ladder.costs[0], 2),
            "full_seconds": round(ladder.costs[-1], 2),
        }
    over = bool(ladders) and planned > left
    return {
        "dlaudit_plan": PLAN_FORMAT,
        "model": model_key,
        "data": data_key,
        "data_name": f"{data.name} ({data.split}, {len(data)} inputs)",
        "seed": seed,
        "checks": list(checks),
        "budget_seconds": round(budget, 3),
        "spent_before_seconds": round(spent, 3),
        "probe_seconds": round(probe_seconds, 3),
        "planned_for_seconds": round(max(left, 0.0), 3),
        "estimated_seconds": round(planned, 2),
        "over_budget": over,
        "order": "every section at its minimum; then the widest interval grows while its next level fits; "
        "never past the full configuration",
        "unit_costs": units,
        "sections": sections,
    }


def apply_plan(
    plan: Mapping[str, Any], bundle: ModelBundle, data: AuditData, checks: Sequence[str], source: str = "the plan"
) -> None:
    """Refuse (:class:`ConfigError`) a plan made for another model, data or set of sections than this run's."""
    from .paths import shown

    model_key, data_key = fingerprints(bundle, data)
    where = shown(source) if source else "the plan"
    if plan["model"] != model_key:
        raise ConfigError(f"--plan {where} was made for another model (its weights or card differ); plan again")
    if plan["data"] != data_key:
        raise ConfigError(f"--plan {where} was made for other data ({plan.get('data_name', '?')}); plan again")
    if list(plan["checks"]) != list(checks):
        raise ConfigError(
            f"--plan {where} plans the sections {', '.join(plan['checks'])}, this run has {', '.join(checks)}; "
            "replay it with the command that made it"
        )


def plan_text(plan: Mapping[str, Any]) -> str:
    """The plan in a few lines (printed on stderr before the work)."""
    lines = []
    if "budget_seconds" in plan:
        from .progress import format_seconds

        head = (
            f"plan for {format_seconds(plan['budget_seconds'])}: estimated {format_seconds(plan['estimated_seconds'])}"
            f" (measuring took {format_seconds(plan['probe_seconds'])})"
        )
        if plan.get("over_budget"):
            head += "; the budget is below every section's minimum, so each runs at its minimum"
        lines.append(head)
    for name, entry in plan["sections"].items():
        if not entry.get("budgeted"):
            lines.append(f"  {name}: as configured ({entry.get('why', 'not budgeted')})")
            continue
        shown = ", ".join(f"{k}={v}" for k, v in sorted(entry["params"].items()) if k in _SHOWN and v is not None)
        profile = "fast" if entry["fast"] else "full"
        lines.append(
            f"  {name}: level {entry['level']} ({profile} profile{', ' + shown if shown else ''}), "
            f"{entry['samples']} samples (interval +/-{entry['interval_halfwidth']:.3f}), "
            f"about {entry['estimated_seconds']:.1f} s"
        )
    return "\n".join(lines)


_SHOWN = {
    "n",
    "steps",
    "restarts",
    "smoothing_n",
    "smoothing_samples",
    "n_boot",
    "autoattack_n",
    "lime_samples",
    "budget",
}


def bought(report: Any) -> dict[str, float]:
    """The precision a plan bought: the widest 95 % interval of each section's metrics (where they have one)."""
    widths: dict[str, float] = {}
    for section in report.sections:
        spans = [m.ci[1] - m.ci[0] for m in section.metrics if getattr(m, "ci", None) and None not in m.ci]
        if spans:
            widths[section.name] = round(max(spans), 4)
    return widths


def write_plan(plan: Mapping[str, Any], path: str | Path) -> Path:
    """Write ``plan`` as JSON to ``path`` (atomically, as every dlaudit output)."""
    from .paths import atomic_write

    with atomic_write(path, "w") as fh:
        fh.write(json.dumps(plan, indent=2, allow_nan=False) + "\n")
    return Path(path)


def timed(fn: Callable[..., Any], bundle: ModelBundle, *args: Any, **kwargs: Any) -> float:
    """Seconds ``fn(bundle, *args, **kwargs)`` takes with the model in eval mode (what a probe measures with)."""
    from .utils import eval_mode

    start = time.perf_counter()
    with eval_mode(bundle.module):
        fn(bundle, *args, **kwargs)
    return time.perf_counter() - start


def _runnable_now() -> tuple[int, int] | None:
    """(threads the kernel has runnable now, this process's own runnable threads), from ``/proc``; None where it
    has none (macOS, Windows)."""
    try:
        with open("/proc/loadavg", encoding="ascii") as f:
            runnable = int(f.read().split()[3].split("/")[0])
        own = 0
        for task in Path("/proc/self/task").iterdir():
            with contextlib.suppress(OSError, IndexError):
                own += (task / "stat").read_text(encoding="ascii", errors="replace").rsplit(")", 1)[1].split()[0] == "R"
    except (OSError, ValueError, IndexError):
        return None
    return runnable, max(own, 1)  # this thread is running while it reads


def competing_load(readings: int = 9, gap: float = 0.02) -> float:
    """Threads of other processes that want a CPU now: the median over ``readings`` readings ``gap`` seconds apart
    of the kernel's runnable threads less this process's own (Linux's ``/proc``). Where there is no ``/proc``, the
    one-minute load average (which lags a minute behind, and counts this process once it has run a while).

    What a time estimate scales its probes by (:func:`dlaudit.robust.analysis.slowdown`): on the 2-core
    machine, with the one-minute load average at 2.1 a minute after another job had ended, a report alone on
    it was priced 1.55x slow and took 0.57x its robustness estimate (digits CNN, ``--time-budget 2m``)."""
    seen: list[int] = []
    for i in range(readings):
        now = _runnable_now()
        if now is None:
            import os

            return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
        seen.append(max(now[0] - now[1], 0))
        if i + 1 < readings:
            time.sleep(gap)
    return float(sorted(seen)[len(seen) // 2])


def run_probe(fn: Callable[..., Any], bundle: ModelBundle, *args: Any, **kwargs: Any) -> float:
    """:func:`timed`, with any failure other than a :class:`~dlaudit.errors.DlauditError` turned into an
    :class:`~dlaudit.errors.AnalysisError` (the section is then planned as configured and says what is wrong)."""
    try:
        return timed(fn, bundle, *args, **kwargs)
    except (AnalysisError, ConfigError):
        raise
    except Exception as err:
        raise AnalysisError(f"its probe failed ({type(err).__name__}: {err})") from err


def summary(plan: Mapping[str, Any], widths: Mapping[str, float]) -> dict[str, str]:
    """What the plan bought, one line a section (the report's provenance shows it): its rung, samples, the interval
    they allow and the widest interval the section's metrics then had."""
    out: dict[str, str] = {}
    if "budget_seconds" in plan:
        out["budget"] = f"{plan['budget_seconds']:g} s, estimated {plan['estimated_seconds']:g} s"
    for name, entry in plan["sections"].items():
        if not entry.get("budgeted"):
            out[name] = "as configured (not budgeted)"
            continue
        line = f"level {entry['level']} ({'fast' if entry['fast'] else 'full'} profile), {entry['samples']} samples"
        line += f", interval at most +/-{entry['interval_halfwidth']:.3f}"
        part = entry["params"].get("autoattack_n")
        if isinstance(part, int) and part < entry["samples"]:  # a planned part of the samples: a wider interval
            line += f" (AutoAttack on the first {part} of them: +/-{halfwidth(part):.3f})"
        if name in widths:
            line += f"; widest 95% interval measured {widths[name]:.3f}"
        out[name] = line
    return out
