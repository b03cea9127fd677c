"""The ``dlaudit`` command line: each command parses its options, calls one public function of
:mod:`dlaudit`, renders the result, and exits.

Exit codes: 0 success, 1 a gate failed, 2 bad usage or bad input (one line, no traceback).
This module imports only Click, the standard library and :mod:`dlaudit` itself (which is
light), and uses only the names in ``dlaudit.__all__`` (``tests/test_layering.py`` checks),
so ``--help`` is quick and the heavy libraries load when a command runs.
"""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

import dlaudit

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


# -- error handling in one place ------------------------------------------------------


class DlauditGroup(click.Group):
    """Turns every :class:`~dlaudit.errors.DlauditError` into one line on stderr and exit code 2,
    and Ctrl-C into one line and exit code 130."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:  # before Click turns it into Abort (and prints an empty line first)
            raise _Interrupted() from None

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.pop("standalone_mode", None)
        try:
            return super().main(*args, standalone_mode=False, **kwargs)
        except dlaudit.DlauditError as err:
            echo(f"dlaudit: error: {_one_line(str(err))}", err=True)
            sys.exit(err.exit_code)
        except OSError as err:  # a file that vanished or a disk that filled up mid-run: still one line, exit 2
            where = f"{err.filename}: " if err.filename else ""
            echo(f"dlaudit: error: {where}{err.strerror or err}; nothing earlier was overwritten", err=True)
            sys.exit(2)
        except (_Interrupted, KeyboardInterrupt, click.exceptions.Abort):
            echo(INTERRUPTED, err=True)
            sys.exit(130)
        except click.ClickException as err:
            shown = io.StringIO()
            err.show(file=shown)  # usage, hint and message, which quote what the user typed
            echo(shown.getvalue().rstrip("\n"), err=True)
            sys.exit(err.exit_code)
        except click.exceptions.Exit as err:
            sys.exit(err.exit_code)


class _Interrupted(Exception):
    """Ctrl-C inside a command (Click would otherwise turn it into Abort)."""


INTERRUPTED = "dlaudit: interrupted (Ctrl-C); outputs not yet written were not written"


def echo(message: Any = "", *, err: bool = False) -> None:
    """Print one line (or block) of output; every character that could control the terminal is escaped
    (a class name, a path or a card field from a file can hold ``\\x1b]0;...\\x07``; see :mod:`dlaudit.terminal`)."""
    click.echo(dlaudit.printable(str(message)), err=err)


def _one_line(text: str) -> str:
    return " ".join(text.split())


# -- progress ---------------------------------------------------------------------------


TerminalProgress = dlaudit.ProgressPrinter
"""Progress on stderr: a bar on a terminal, plain lines at a steady interval elsewhere (CI logs, ``| tee``,
notebooks: section, step, count, elapsed, estimated remaining), a time estimate before an expensive
section, nothing with --quiet (see :mod:`dlaudit.progress`)."""


# -- shared options -------------------------------------------------------------------


def _options(*opts: Callable[[Any], Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        for opt in reversed(opts):
            fn = opt(fn)
        return fn

    return deco


def file_option(*decls: str, help: str) -> Callable[[Any], Any]:
    """An option naming a file (not a folder), None unless given."""
    return click.option(*decls, type=click.Path(dir_okay=False), default=None, help=help)


data_more_options = _options(
    click.option(
        "--data-dir",
        type=click.Path(file_okay=False),
        default=None,
        help="Where a named dataset's files are (or are downloaded to).",
    ),
    click.option("--target", default=None, help="Label column of a csv file."),
    click.option("--sensitive", default=None, help="Sensitive column(s), comma-separated."),
)
data_options = _options(
    click.option(
        "--data",
        "data",
        default=None,
        help="Dataset name (digits, mnist, fashion-mnist, cifar10, cifar100, adult, german, synthetic-credit, synthetic-text), "
        "folder:DIR (one sub-folder of PNG/JPEG images per class) or a .npz/.csv file; default: the held-out split on the model's card.",
    ),
    data_more_options,
    click.option(
        "--text-column",
        default=None,
        help="Column holding the texts of a .csv/.jsonl file (text models; default text).",
    ),
)
"""The options every data-reading command shares (DESIGN.md, CLI conventions)."""

run_options = _options(
    click.option(
        "--seed",
        type=click.IntRange(0, dlaudit.MAX_SEED),
        default=0,
        show_default=True,
        help=f"Seed of every random step (0 to {dlaudit.MAX_SEED}).",
    ),
    click.option(
        "--device",
        type=click.Choice(["auto", "cpu", "cuda"]),
        default="auto",
        show_default=True,
        help="auto: CUDA when available.",
    ),
    click.option("--quiet", "-q", is_flag=True, help="No progress output."),
)

model_options = _options(
    click.option(
        "--trust-pickle", is_flag=True, help="Allow loading a whole pickled nn.Module (runs code from the file)."
    ),
    click.option(
        "--trust-ops",
        is_flag=True,
        help="Let a TorchScript/torch.export model call operators outside torch's own (a custom extension's).",
    ),
    file_option("--card", "card_file", help="Card JSON for a foreign model (default: <model>.card.json beside it)."),
    click.option("--input-shape", default=None, help="Foreign model: input shape of one sample, e.g. 1,28,28."),
    click.option("--num-classes", type=int, default=None, help="Foreign model: number of classes."),
    click.option("--value-range", default=None, help="Foreign model: input value range, e.g. 0,1."),
    click.option("--class-names", default=None, help="Foreign model: class names, comma-separated."),
    click.option(
        "--positive-class",
        default=None,
        help="Binary model: the class the fairness metrics call positive, by name (default: class index 1).",
    ),
    click.option(
        "--arch",
        default=None,
        metavar="SOURCE:NAME",
        help="Bare state_dict: the architecture to load it into, torchvision:NAME (e.g. torchvision:resnet18) or timm:NAME.",
    ),
    click.option(
        "--arch-kwargs",
        default=None,
        metavar="K=V,...",
        help="Keyword arguments of the --arch builder, e.g. dropout=0.2,aux_logits=false.",
    ),
    click.option(
        "--mean",
        default=None,
        help="Normalisation the model expects, per channel (e.g. 0.4914,0.4822,0.4465); dlaudit applies it in front of the model.",
    ),
    click.option("--std", default=None, help="Normalisation's standard deviations, per channel (with --mean)."),
)
"""How a model file is read: trust, and a card for foreign formats."""

parallel_options = _options(
    click.option(
        "--workers",
        type=int,
        default=None,
        help="Shard the work over a local Ray runtime with N workers (same numbers).",
    ),
    click.option("--ray-address", default=None, help="Run on the Ray cluster at ADDR (or DLAUDIT_RAY_ADDRESS)."),
    click.option(
        "--checkpoint",
        "checkpoint_dir",
        type=click.Path(file_okay=False),
        default=None,
        help="Keep finished shards in DIR; run again to resume.",
    ),
)
"""Running on Ray and resuming (DESIGN.md: --workers N / --ray-address ADDR)."""

plan_options = _options(
    click.option(
        "--time-budget",
        default=None,
        metavar="DURATION",
        help="Size the audit to this time (90s, 10m, 1h): measure each section's unit costs, then choose samples, "
        "steps and draws that fit, every section at its minimum first, then the widest interval grows. The plan is "
        "printed first and written into the report; the numbers depend on the plan and seed, never on the clock.",
    ),
    click.option(
        "--plan",
        "plan_path",
        type=click.Path(dir_okay=False),
        default=None,
        help="Replay a plan written by --plan-out: the same settings and seed, no timing (the same numbers anywhere).",
    ),
    click.option(
        "--plan-out",
        "plan_out",
        type=click.Path(dir_okay=False),
        default=None,
        help="Write the plan --time-budget made to this JSON file (replay it with --plan).",
    ),
)
"""``--time-budget``, ``--plan`` and ``--plan-out`` (see :mod:`dlaudit.plan`)."""


def planning(kw: dict[str, Any]) -> Any:
    """The plan the options in ``kw`` ask for, as a context the command runs in (bad options fail on entering it)."""
    return dlaudit.planning(time_budget=kw.get("time_budget"), plan=kw.get("plan_path"), plan_out=kw.get("plan_out"))


def _plan_files(kw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(inputs, outputs) of the plan options, by option name, for :func:`dlaudit.check_paths`."""
    return {"--plan": kw.get("plan_path")}, {"--plan-out": kw.get("plan_out")}


compile_option = click.option(
    "--compile",
    "compile_",
    is_flag=True,
    help="Run attack gradient steps through torch.compile (pays a compile of seconds; falls back with a note where torch cannot).",
)

_CLICK_TYPES: dict[str, Any] = {"str": None, "int": int, "float": float, "path": click.Path(dir_okay=False)}


def _click_option(o: dlaudit.Option) -> Callable[[Any], Any]:
    """An analysis' declared :class:`dlaudit.Option` as a Click option."""
    if o.type == "flag" and any("/" in f for f in o.flags):  # --on/--off: unset (None) unless one is given
        return click.option(*o.flags, o.dest, default=o.default, help=o.help)
    if o.type == "flag":
        default = o.default if o.default is not None else not o.flag_value
        return click.option(*o.flags, o.dest, is_flag=True, flag_value=o.flag_value, default=default, help=o.help)
    if o.choices:
        kind = click.Choice(list(o.choices))
    elif o.min is not None or o.max is not None:
        kind = (click.IntRange if o.type == "int" else click.FloatRange)(o.min, o.max, min_open=o.min_open)
    else:
        kind = _CLICK_TYPES[o.type]
    return click.option(
        *o.flags, o.dest, type=kind, default=o.default, show_default=o.show_default, multiple=o.multiple,
        required=o.required, metavar=o.metavar, help=o.help,
    )  # fmt: skip


def analysis_options(command: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The options the registered analyses (plug-ins included) declare for ``command``, next to their settings."""
    return _options(*(_click_option(o) for _, o in dlaudit.command_options(command)))


def declared(command: str, kw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The values of the options declared for ``command``, popped from ``kw``: the API function's keywords,
    and per-check settings (``{analysis: {setting: value}}``, for the options that name a setting and were given)."""
    keywords: dict[str, Any] = {}
    params: dict[str, dict[str, Any]] = {}
    for name, o in dlaudit.command_options(command):
        value = kw.pop(o.dest, None)
        if o.setting is None:
            keywords[o.keyword or o.dest] = value
        elif value is not None and value != ():
            params.setdefault(name, {})[o.setting] = value
    return keywords, params


_REPORT_FILES = (
    ("--json", "json_path", "Write the report as JSON (flat 'metrics' object, sections, findings, provenance)."),
    ("--markdown", "markdown_path", "Write a Markdown summary."),
    ("--junit", "junit_path", "Write JUnit XML, one testcase per gate."),
)


ROBUSTBENCH_FILE = (
    "--robustbench-json",
    "robustbench_path",
    "Write clean and AutoAttack accuracy, threat model, eps, examples and AutoAttack version in "
    "RobustBench's model-info fields (needs AutoAttack).",
)


def report_options(html: bool = True, robustbench: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """What every audit view writes and gates on, as ``dlaudit report`` does: the same Report, the same files."""
    html_option = file_option("-o", "--output", help="Write an HTML report.")
    files = (*_REPORT_FILES, *((ROBUSTBENCH_FILE,) if robustbench else ()))
    return _options(
        *([html_option] if html else []),
        *(file_option(flag, dest, help=text) for flag, dest, text in files),
        click.option(
            "--fail-on",
            "fail_on",
            multiple=True,
            metavar="GATE",
            help="Fail (exit 1) when 'METRIC OP NUMBER' is true, e.g. 'robustness.pgd_linf.acc@0.1 < 0.6'. Repeatable.",
        ),
    )


def _report_paths(kw: dict[str, Any]) -> dict[str, str | None]:
    """The report files a view writes, by format (popped from ``kw``)."""
    return {
        "html": kw.pop("output", None),
        **{f: kw.pop(f"{f}_path", None) for f in ("json", "markdown", "junit", "robustbench")},
    }


_OPTION = {"html": "-o", "robustbench": "--robustbench-json"}


def _outputs(paths: dict[str, Any]) -> dict[str, Any]:
    """The report files by option name (for :func:`dlaudit.check_paths`)."""
    return {_OPTION.get(fmt, f"--{fmt}"): path for fmt, path in paths.items()}


def finish(
    rep: Any,
    paths: dict[str, Any],
    gates: list[Any],
    quiet: bool,
    *,
    detail: bool = True,
    written: dict[str, Any] | None = None,
) -> None:
    """What every audit command does with its report: gate it, write its files, print it, exit 1 when a gate failed."""
    if dlaudit.interrupted():  # a Ctrl-C a library swallowed: nothing is written, the run ends as interrupted
        raise KeyboardInterrupt
    errors = list(rep.errors)
    if gates:
        try:
            dlaudit.check_report(rep, gates, source="fail-on")
        except dlaudit.GateError as err:
            errors.append(str(err))
    for fmt, path in sorted(paths.items(), key=lambda item: item[0] != "robustbench"):  # the one that can refuse first
        if path:
            dlaudit.save_report(rep, path, format=fmt)
    if errors:
        raise dlaudit.GateError(errors[0])
    if not quiet:
        echo(dlaudit.render_terminal(rep, paths={**paths, **(written or {})}, detail=detail))
    if not rep.passed:
        sys.exit(1)


def parallel_kwargs(kw: dict[str, Any]) -> dict[str, Any]:
    return {
        "workers": kw.pop("workers", None),
        "ray_address": kw.pop("ray_address", None),
        "checkpoint": kw.pop("checkpoint_dir", None),
    }


_MODEL_KEYS = (
    "card_file",
    "input_shape",
    "num_classes",
    "value_range",
    "class_names",
    "positive_class",
    "arch",
    "arch_kwargs",
    "mean",
    "std",
)
_DATA_KEYS = ("data_dir", "target", "sensitive", "text_column")


def load_bundle(model: str, kw: dict[str, Any]) -> dlaudit.ModelBundle:
    """Load MODEL with the model options in ``kw`` (popped from it)."""
    overrides = {k: kw.pop(k, None) for k in _MODEL_KEYS}
    return dlaudit.load_model(
        model,
        trust_pickle=kw.pop("trust_pickle", False),
        trust_ops=kw.pop("trust_ops", False),
        device=kw.get("device", "auto"),
        data=kw.get("data"),
        data_dir=kw.get("data_dir"),
        **overrides,
    )


def _inputs(model: str | None, kw: dict[str, Any], **more: str | None) -> dict[str, Any]:
    """The files a command reads, by option name (for :func:`dlaudit.check_paths`): see :func:`dlaudit.run_inputs`."""
    found = dlaudit.run_inputs(
        model,
        card_file=kw.get("card_file"),
        data=kw.get("data"),
        data_dir=kw.get("data_dir"),
        checkpoint=kw.get("checkpoint_dir"),
    )
    return {**found, **_plan_files(kw)[0], **more}


def load_checked(model: str, kw: dict[str, Any], outputs: dict[str, Any]) -> dlaudit.ModelBundle:
    """Refuse an output that is an input (before loading MODEL, and again with the dataset its card names), then load it.

    The model options in ``kw`` are popped, as :func:`load_bundle` does.
    """
    inputs = _inputs(model, kw)
    dlaudit.check_paths(inputs, outputs)
    bundle = load_bundle(model, kw)
    dlaudit.check_paths({**inputs, **dlaudit.run_inputs(data_dir=kw.get("data_dir"), card=bundle.card)}, outputs)
    return bundle


def data_kwargs(kw: dict[str, Any]) -> dict[str, Any]:
    return {k: kw.get(k) for k in _DATA_KEYS}


class _PrintableFormatter(logging.Formatter):
    """Log lines with their control characters escaped, as every other line the CLI prints."""

    def format(self, record: logging.LogRecord) -> str:
        return dlaudit.printable(super().format(record))


def _setup_logging(quiet: bool) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(_PrintableFormatter("dlaudit: %(levelname)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING if not quiet else logging.ERROR, handlers=[handler])


# -- commands -------------------------------------------------------------------------


@click.group(cls=DlauditGroup, context_settings=CONTEXT)
@click.version_option(dlaudit.__version__, prog_name="dlaudit")
def cli() -> None:
    """Audit PyTorch classifiers: explanations, adversarial robustness, fairness.

    Start with `dlaudit demo`, or `dlaudit train cnn -o cnn.pt && dlaudit report cnn.pt`.
    """


@cli.command(context_settings=CONTEXT)
@click.argument("arch", type=click.Choice(dlaudit.TRAINABLE))
@click.option(
    "--data",
    "data",
    default="digits",
    show_default=True,
    help="Dataset to train on: a name (digits, mnist, fashion-mnist, adult, german, synthetic-credit, synthetic-text) "
    "or a .npz/.csv file (.csv/.jsonl with --text-column for textcnn and embedding-bag).",
)
@data_more_options
@click.option("--text-column", default=None, help="Column holding the texts of a .csv/.jsonl file (text models).")
@analysis_options("train")
@compile_option
@run_options
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="Where to write the model (a dlaudit checkpoint).",
)
@file_option("--json", "json_path", help="Write the card and metrics as JSON.")
def train(arch: str, data: str, output: str, json_path: str | None, quiet: bool, **kw: Any) -> None:
    """Train a reference model on a dataset's training split and save it."""
    _setup_logging(quiet)
    dlaudit.check_paths(
        _inputs(None, {"data": data, "data_dir": kw.get("data_dir")}), {"-o": output, "--json": json_path}
    )
    bundle = dlaudit.train(arch, data, progress=TerminalProgress(quiet), compile=kw.pop("compile_"), **kw)
    dlaudit.save_model(bundle, output)
    m = bundle.card.metrics
    if json_path:
        dlaudit.save_json(json_path, {"model": output, "card": bundle.card.to_dict(), "accuracy": m["test_accuracy"]})
    if not quiet:
        echo(dlaudit.render_training(bundle, arch, output))


@cli.command(context_settings=CONTEXT)
@click.argument("model", type=click.Path())
@data_options
@model_options
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto")
@click.option(
    "--json",
    "json_path",
    is_flag=False,
    flag_value="-",
    default=None,
    metavar="PATH",
    help="Write the card and accuracy as JSON to PATH (alone, or '-': print it).",
)
def info(model: str, data: str | None, json_path: str | None, **kw: Any) -> None:
    """Show a model's card and its held-out accuracy."""
    bundle = load_checked(model, {**kw, "data": data}, {"--json": None if json_path == "-" else json_path})
    out = dlaudit.info(bundle, data, **data_kwargs(kw))
    if json_path == "-":
        echo(dlaudit.json_text(out))
        return
    if json_path:
        dlaudit.save_json(json_path, out)
    echo(dlaudit.render_info(out, model))


@cli.command(context_settings=CONTEXT)
@click.argument("model", type=click.Path())
@data_options
@model_options
@run_options
@_options(
    *(
        file_option(*flags, help=text)
        for flags, text in (
            (("-o", "--output"), "HTML report path (default reports/<model>.html)."),
            (("--json", "json_path"), "Also write the whole report as JSON (schema 1, flat 'metrics' object)."),
            (
                ("--markdown", "markdown_path"),
                "Also write a Markdown summary (for a PR comment or $GITHUB_STEP_SUMMARY).",
            ),
            (("--junit", "junit_path"), "Also write JUnit XML, one testcase per gate."),
            (ROBUSTBENCH_FILE[:2], ROBUSTBENCH_FILE[2]),
        )
    )
)
@click.option(
    "--checks",
    default=None,
    help="Sections to run, comma-separated (default: " + ",".join(dlaudit.default_analyses()) + ").",
)
@click.option("--fast/--no-fast", default=None, help=dlaudit.FAST_HELP)
@click.option(
    "--fail-on",
    "fail_on",
    multiple=True,
    metavar="GATE",
    help="Fail (exit 1) when 'METRIC OP NUMBER' is true, e.g. 'performance.accuracy < 0.95'. Repeatable.",
)
@file_option(
    "--config", "config_path", help="TOML file with a [tool.dlaudit] table (default: ./pyproject.toml when it has one)."
)
@file_option(
    "--baseline",
    "baseline_path",
    help="An earlier JSON report: exit 1 when a headline metric regressed beyond --max-drop.",
)
@click.option(
    "--max-drop",
    type=click.FloatRange(min=0),
    default=None,
    help="How much a headline metric may get worse than the baseline (absolute; default 0.02).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="Seconds loading the model and each section may take; a load past it is an error, a section past it fails with the reason and the rest still run.",
)
@analysis_options("report")
@plan_options
@parallel_options
@compile_option
def report(
    model: str,
    output: str | None,
    checks: str | None,
    fast: bool | None,
    fail_on: tuple[str, ...],
    config_path: str | None,
    baseline_path: str | None,
    max_drop: float | None,
    quiet: bool,
    **kw: Any,
) -> None:
    """Audit MODEL and write an HTML report (and JSON, Markdown, JUnit on request).

    Exit status: 0 when every gate passes (no --fail-on condition is met), 1 when
    one fails (or the baseline regressed), 2 on bad usage or bad input.
    """
    _setup_logging(quiet)
    paths = {
        "html": output or str(Path("reports") / f"{Path(model).stem}.html"),
        **{f: kw.pop(f"{f}_path") for f in ("json", "markdown", "junit", "robustbench")},
    }
    inputs = _inputs(model, kw, **{"--baseline": baseline_path, "--config": config_path})
    outputs = _outputs(paths)
    outputs.update(_plan_files(kw)[1])
    dlaudit.check_paths(inputs, outputs)
    card = dlaudit.card_overrides(**{k: kw.pop(k, None) for k in _MODEL_KEYS})
    with planning(kw):  # the budget counts from here, loading included
        keywords, params = declared("report", kw)
        rep = dlaudit.run_report(
            model,
            kw.pop("data"),
            checks=checks,
            fast=fast,
            gates=fail_on,
            config=config_path,
            baseline=baseline_path,
            max_drop=max_drop,
            card=card,
            seed=kw["seed"],
            device=kw["device"],
            trust_pickle=kw["trust_pickle"],
            trust_ops=kw["trust_ops"],
            progress=TerminalProgress(quiet),
            timeout=kw["timeout"],
            compile=kw["compile_"],
            params=params,
            inputs=inputs,
            outputs=outputs,
            **keywords,
            **parallel_kwargs(kw),
            **data_kwargs(kw),
        )
    finish(rep, paths, [], quiet, detail=False)


@cli.command(context_settings=CONTEXT)
@click.option(
    "-o",
    "--output-dir",
    type=click.Path(file_okay=False),
    default="reports",
    show_default=True,
    help="Where the models and reports go.",
)
@click.option("--full", is_flag=True, help="Audit with the full configuration instead of the fast one (slower).")
@click.option("--retrain", is_flag=True, help="Train the models again even when cached in the output directory.")
@run_options
def demo(output_dir: str, full: bool, retrain: bool, quiet: bool, seed: int, device: str) -> None:
    """Train three models (or reuse them) and write their reports and a comparison page, offline.

    A standard digits CNN, a PGD-adversarially trained one, and an MLP on
    synthetic-credit: reports/demo-*.html and reports/demo-comparison.html.
    """
    _setup_logging(quiet)
    result = dlaudit.demo(
        output_dir, seed=seed, device=device, full=full, retrain=retrain, progress=TerminalProgress(quiet)
    )
    if not quiet:
        echo(dlaudit.render_demo(result))


@cli.command(context_settings=CONTEXT)
@click.argument("model", type=click.Path())
@data_options
@model_options
@run_options
@analysis_options("attack")
@report_options(robustbench=True)
@plan_options
@parallel_options
@compile_option
def attack(model: str, fail_on: tuple[str, ...], quiet: bool, **kw: Any) -> None:
    """Robust accuracy of MODEL under FGSM and PGD (or any registered attack) at each budget.

    The robustness section restricted to the attacks asked for: the same report, JSON and gates as
    `dlaudit report` (exit 1 when a --fail-on gate fails).
    """
    _view("attack", dlaudit.attack, model, fail_on, quiet, kw, compile=kw.pop("compile_"))


@cli.command(context_settings=CONTEXT)
@click.argument("model", type=click.Path())
@data_options
@model_options
@run_options
@analysis_options("certify")
@report_options()
@plan_options
@parallel_options
def certify(model: str, fail_on: tuple[str, ...], quiet: bool, **kw: Any) -> None:
    """Certified robustness of MODEL: a proven lower bound of robust accuracy (attacks give the upper one).

    The robustness section restricted to one certificate: the same report, JSON and gates as `dlaudit report`.
    """
    _view("certify", dlaudit.certify, model, fail_on, quiet, kw)


def _view(
    command: str, run: Callable[..., Any], model: str, fail_on: tuple[str, ...], quiet: bool, kw: dict[str, Any],
    **more: Any,
) -> None:  # fmt: skip
    """A view of one analysis (attack, certify, fairness): its declared options -> one public call -> the report."""
    _setup_logging(quiet)
    gates = dlaudit.parse_gates(fail_on)
    paths = _report_paths(kw)
    with planning(kw):  # the budget counts from here, loading included (no plan options: nothing planned)
        bundle = load_checked(model, kw, {**_outputs(paths), **_plan_files(kw)[1]})
        keywords, _ = declared(command, kw)
        rep = run(
            bundle, kw.pop("data"), seed=kw["seed"], device=kw["device"], progress=TerminalProgress(quiet),
            **keywords, **more, **data_kwargs(kw), **parallel_kwargs(kw),
        )  # fmt: skip
    finish(rep, paths, gates, quiet)


# -- fairness -------------------------------------------------------------------------


@cli.command(context_settings=CONTEXT)
@click.argument("model", type=click.Path())
@data_options
@model_options
@run_options
@analysis_options("fairness")
@report_options()
@parallel_options
def fairness(model: str, fail_on: tuple[str, ...], quiet: bool, **kw: Any) -> None:
    """Group fairness of MODEL over sensitive features (fairlearn metrics with bootstrap intervals)."""
    _view("fairness", dlaudit.fairness_report, model, fail_on, quiet, kw)


@cli.command(context_settings=CONTEXT)
@click.argument("model", type=click.Path())
@data_options
@model_options
@run_options
@analysis_options("mitigate")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="Where to write the mitigated model (<stem>-<method>.pt for each of several).",
)
@file_option(
    "--report", "report_path", help="Write the before/after comparison as a report (.html, .json, .md by extension)."
)
@report_options(html=False)
def mitigate(
    model: str, sensitive: str | None, output: str, report_path: str | None, fail_on: tuple[str, ...], quiet: bool,
    **kw: Any,
) -> None:  # fmt: skip
    """Mitigate MODEL's unfairness over one sensitive feature, save the result, print before/after.

    The before/after comparison is a report like every command's: the same JSON, Markdown, JUnit and gates.
    """
    _setup_logging(quiet)
    if not sensitive:
        raise click.UsageError("mitigate needs --sensitive COLUMN (one column, e.g. --sensitive sex)")
    gates = dlaudit.parse_gates(fail_on)
    paths = _report_paths(kw)
    methods = dlaudit.method_outputs(output, dlaudit.split_list(kw["method"]))
    outputs = {**{f"-o ({m})": p for m, p in methods.items()}, "--report": report_path, **_outputs(paths)}
    bundle = load_checked(model, kw, outputs)
    keywords, _ = declared("mitigate", kw)
    result = dlaudit.mitigate(
        bundle, kw.pop("data"), sensitive=sensitive, output=output, seed=kw["seed"], device=kw["device"],
        data_dir=kw.get("data_dir"), target=kw.get("target"), progress=TerminalProgress(quiet), **keywords,
    )  # fmt: skip
    rep = result.report()
    if report_path:
        dlaudit.save_report(rep, report_path)
    if not quiet:
        echo(f"on {result.n} held-out samples of {result.data}")
    finish(rep, paths, gates, quiet, written={"report": report_path, **result.saved})


@cli.command(context_settings=CONTEXT)
@click.argument("model", type=click.Path())
@data_options
@model_options
@run_options
@analysis_options("explain")
@click.option(
    "-o",
    "--output-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Write explain.html and attributions.npz into this folder.",
)
@report_options(html=False)
@plan_options
def explain(model: str, output_dir: str | None, fail_on: tuple[str, ...], quiet: bool, **kw: Any) -> None:
    """Explain MODEL's decisions with captum, LIME and SHAP, and measure how far to trust each method.

    The explanation section on its own: the same report, JSON and gates as `dlaudit report`.
    """
    _setup_logging(quiet)
    gates = dlaudit.parse_gates(fail_on)
    out_dir = Path(output_dir) if output_dir else None
    paths = _report_paths(kw)
    outputs = {
        "-o (explain.html)": out_dir / "explain.html" if out_dir else None,
        "-o (attributions.npz)": out_dir / "attributions.npz" if out_dir else None,
        **_outputs(paths),
        **_plan_files(kw)[1],
    }
    with planning(kw):  # the budget counts from here, loading included
        bundle = load_checked(model, kw, outputs)
        keywords, _ = declared("explain", kw)
        result = dlaudit.explain_model(
            bundle, kw.pop("data"), seed=kw["seed"], device=kw["device"], progress=TerminalProgress(quiet),
            data_options=data_kwargs(kw), **keywords,
        )  # fmt: skip
    written = dlaudit.save_explanation(result, output_dir) if output_dir else {}
    finish(result.report, paths, gates, quiet, written=written)


def main() -> None:
    """Console-script entry point; dlaudit's own heavy work starts here, so the allocator tuning does too.

    Ctrl-C ends the run with exit code 130 whenever it comes (even where a library swallowed it), and a
    worker thread still running (a model's forward pass that never returns) does not keep the process
    alive or abort it on the way out (see :func:`dlaudit.bounded.exit_now`, through the API).
    """
    dlaudit.catch_interrupts()
    try:
        dlaudit.tune_malloc()
        cli.main(prog_name="dlaudit")
        code = 0
    except SystemExit as end:
        code = end.code if isinstance(end.code, int) else (0 if end.code is None else 1)
    except KeyboardInterrupt:  # outside any command (while Click parses, or while it shuts down)
        code = 130
        echo(INTERRUPTED, err=True)
    if dlaudit.interrupted() and code != 130:
        echo(INTERRUPTED, err=True)
        code = 130
    dlaudit.exit_now(code)


if __name__ == "__main__":  # pragma: no cover
    main()
