"""The ``dlaudit`` command line: each command parses, calls one api function, renders.

Exit codes: 0 success, 1 a gate failed, 2 bad usage or bad input (one line, no traceback).
"""
from __future__ import annotations

import functools
import json
import logging
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from . import __version__
from .errors import DlauditError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


# -- error handling in one place ------------------------------------------------------


class DlauditGroup(click.Group):
    """Turns every :class:`DlauditError` into one line on stderr and exit code 2."""

    def main(self, *args: Any, **kwargs: Any) -> Any:  # noqa: D102
        kwargs.setdefault("standalone_mode", True)
        try:
            return super().main(*args, standalone_mode=False, **{k: v for k, v in kwargs.items() if k != "standalone_mode"})
        except DlauditError as err:
            click.echo(f"dlaudit: error: {_one_line(str(err))}", err=True)
            sys.exit(err.exit_code)
        except click.exceptions.Abort:
            click.echo("dlaudit: aborted", err=True)
            sys.exit(130)
        except click.ClickException as err:
            err.show()
            sys.exit(err.exit_code)
        except click.exceptions.Exit as err:
            sys.exit(err.exit_code)
        except KeyboardInterrupt:
            click.echo("dlaudit: interrupted", err=True)
            sys.exit(130)


def _one_line(text: str) -> str:
    return " ".join(text.split())


# -- progress on the terminal -----------------------------------------------------------


class TerminalProgress:
    """A one-line progress bar on stderr; silent when stderr is not a terminal or with --quiet."""

    def __init__(self, quiet: bool = False) -> None:
        self.enabled = not quiet and sys.stderr.isatty()
        self.started: dict[str, float] = {}
        self.last = 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        self.started.setdefault(stage, now)
        if done < total and now - self.last < 0.1:
            return
        self.last = now
        width = 30
        frac = done / total if total else 1.0
        bar = "#" * int(width * frac) + "-" * (width - int(width * frac))
        line = f"\r{stage:<24.24} [{bar}] {done}/{total} {now - self.started[stage]:5.1f}s"
        click.echo(line, err=True, nl=done >= total)


# -- shared options -------------------------------------------------------------------


def data_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The options every data-reading command shares (DESIGN.md, CLI conventions)."""
    opts = [
        click.option("--data", "data", default=None, help="Dataset name (digits, mnist, fashion-mnist, adult, german, synthetic-credit) or a .npz/.csv file; default: the held-out split on the model's card."),
        click.option("--data-dir", type=click.Path(file_okay=False), default=None, help="Where a named dataset's files are (or are downloaded to)."),
        click.option("--target", default=None, help="Label column of a csv file."),
        click.option("--sensitive", default=None, help="Sensitive column(s), comma-separated."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def run_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    opts = [
        click.option("--seed", type=int, default=0, show_default=True, help="Seed of every random step."),
        click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True, help="auto: CUDA when available."),
        click.option("--quiet", "-q", is_flag=True, help="No progress output."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def model_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """How a model file is read: trust, and a card for foreign formats."""
    opts = [
        click.option("--trust-pickle", is_flag=True, help="Allow loading a whole pickled nn.Module (runs code from the file)."),
        click.option("--card", "card_path", type=click.Path(dir_okay=False), default=None, help="Card JSON for a foreign model (default: <model>.card.json beside it)."),
        click.option("--input-shape", default=None, help="Foreign model: input shape of one sample, e.g. 1,28,28."),
        click.option("--num-classes", type=int, default=None, help="Foreign model: number of classes."),
        click.option("--value-range", default=None, help="Foreign model: input value range, e.g. 0,1."),
        click.option("--class-names", default=None, help="Foreign model: class names, comma-separated."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def _floats(text: str, what: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"{what} must be comma-separated numbers, got {text!r}") from None


def load_bundle(model: str, kw: dict[str, Any]) -> Any:
    """Load MODEL with the model options in ``kw`` (popped from it)."""
    from .api import load_model
    from .card import ModelCard

    card: dict[str, Any] = {}
    path = kw.pop("card_path", None)
    if path:
        card.update(ModelCard.from_json(path).to_dict())
    if (shape := kw.pop("input_shape", None)) is not None:
        card["input_shape"] = [int(v) for v in _floats(shape, "--input-shape")]
    if (k := kw.pop("num_classes", None)) is not None:
        card["num_classes"] = k
    if (vr := kw.pop("value_range", None)) is not None:
        card["value_range"] = _floats(vr, "--value-range")
    if (names := kw.pop("class_names", None)) is not None:
        card["class_names"] = [n.strip() for n in names.split(",")]
    return load_model(model, card=card or None, trust_pickle=kw.pop("trust_pickle", False), device=kw.get("device", "auto"))


def data_kwargs(kw: dict[str, Any]) -> dict[str, Any]:
    return {"data_dir": kw.get("data_dir"), "target": kw.get("target"), "sensitive": kw.get("sensitive")}


def write_json(path: str | Path, payload: dict[str, Any]) -> None:
    from .utils import atomic_write

    with atomic_write(path, "w") as fh:
        json.dump(payload, fh, indent=2, allow_nan=False, default=str)
        fh.write("\n")


def echo_json(payload: dict[str, Any]) -> None:
    click.echo(json.dumps(payload, indent=2, allow_nan=False, default=str))


def _setup_logging(quiet: bool) -> None:
    logging.basicConfig(level=logging.WARNING if not quiet else logging.ERROR, format="dlaudit: %(levelname)s: %(message)s")


# -- commands -------------------------------------------------------------------------


@click.group(cls=DlauditGroup, context_settings=CONTEXT)
@click.version_option(__version__, prog_name="dlaudit")
def cli() -> None:
    """Audit PyTorch classifiers: explanations, adversarial robustness, fairness.

    Start with `dlaudit demo`, or `dlaudit train cnn -o cnn.pt && dlaudit report cnn.pt`.
    """


@cli.command(context_settings=CONTEXT)
@click.argument("arch", type=click.Choice(["cnn", "mlp", "numpy-mlp"]))
@data_options
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Training epochs (default per model).")
@click.option("--lr", type=float, default=None, help="Learning rate (default per model).")
@click.option("--batch-size", type=click.IntRange(min=1), default=None)
@click.option("--optimizer", type=click.Choice(["adam", "sgd"]), default=None)
@click.option("--weight-decay", type=click.FloatRange(min=0), default=0.0, show_default=True)
@click.option("--hidden", default=None, help="Hidden sizes of mlp / numpy-mlp, e.g. 128,64.")
@run_options
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Where to write the model (a dlaudit checkpoint).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None, help="Write the card and metrics as JSON.")
def train(arch: str, output: str, json_path: str | None, hidden: str | None, quiet: bool, **kw: Any) -> None:
    """Train a reference model on a dataset's training split and save it."""
    from .api import save_model
    from .api import train as api_train

    _setup_logging(quiet)
    bundle = api_train(
        arch,
        kw.pop("data") or "digits",
        hidden=[int(h) for h in _floats(hidden, "--hidden")] if hidden else None,
        progress=TerminalProgress(quiet),
        **kw,
    )
    save_model(bundle, output)
    m = bundle.card.metrics
    if json_path:
        write_json(json_path, {"model": output, "card": bundle.card.to_dict(), "accuracy": m["test_accuracy"]})
    if not quiet:
        click.echo(f"trained {arch} on {bundle.card.dataset}: held-out accuracy {m['test_accuracy']:.4f} (train {m['train_accuracy']:.4f}) in {m['train_seconds']:.1f} s -> {output}")


@cli.command(context_settings=CONTEXT)
@click.argument("model", type=click.Path())
@data_options
@model_options
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object (with \"accuracy\").")
def info(model: str, data: str | None, as_json: bool, **kw: Any) -> None:
    """Show a model's card and its held-out accuracy."""
    from .api import info as api_info

    bundle = load_bundle(model, kw)
    out = api_info(bundle, data, **data_kwargs(kw))
    if as_json:
        echo_json(out)
        return
    card = out["card"]
    click.echo(f"model      {model} ({out['format']}, {out['parameters']:,} parameters)")
    for key in ("architecture", "arch_kwargs", "modality", "input_shape", "num_classes", "value_range", "class_names", "dataset", "split", "training", "metrics"):
        if card.get(key) not in (None, {}, []):
            click.echo(f"{key:<10} {card[key]}")
    click.echo(f"accuracy   {out['accuracy']:.4f} on {out['data']['n']} samples of {out['data']['name']} ({out['data']['split']})")


@cli.command(context_settings=CONTEXT)
@click.argument("model", type=click.Path())
@data_options
@model_options
@run_options
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="HTML report path (default reports/<model>.html).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None, help="Also write the report as JSON (flat 'metrics' object).")
@click.option("--checks", default=None, help="Sections to run, comma-separated: performance,explain,robustness,fairness (default all).")
@click.option("--fast", is_flag=True, help="A cheaper configuration for CI (fewer samples and steps).")
@click.option("--fail-on", "fail_on", multiple=True, help="Gate 'METRIC OP NUMBER'; exit 1 when one fails. Repeatable.")
def report(model: str, output: str | None, json_path: str | None, checks: str | None, fast: bool, fail_on: tuple[str, ...], quiet: bool, **kw: Any) -> None:
    """Audit MODEL and write an HTML report (and JSON with --json)."""
    from .api import audit
    from .report.gates import parse_gate

    _setup_logging(quiet)
    gates = [parse_gate(g) for g in fail_on]  # malformed gates fail before any work
    bundle = load_bundle(model, kw)
    rep = audit(
        bundle,
        kw.pop("data"),
        checks=checks,
        fast=fast,
        seed=kw["seed"],
        device=kw["device"],
        progress=TerminalProgress(quiet),
        command="dlaudit " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        **data_kwargs(kw),
    )
    if gates:
        rep.check(gates)
    out = Path(output) if output else Path("reports") / f"{Path(model).stem}.html"
    rep.save(out)
    if json_path:
        rep.save(json_path, format="json")
    if not quiet:
        acc = rep.metrics.get("performance.accuracy")
        click.echo(f"report -> {out}" + (f" (accuracy {acc:.4f})" if acc is not None else ""))
        for g in rep.gates:
            click.echo(f"{'PASS' if g.passed else 'FAIL'}  {g.gate}  (value {g.value if g.value is not None else 'undefined'})")
    if not rep.passed:
        sys.exit(1)


@cli.command(context_settings=CONTEXT)
@click.option("-o", "--output-dir", type=click.Path(file_okay=False), default="reports", show_default=True)
@run_options
def demo(output_dir: str, quiet: bool, seed: int, device: str) -> None:
    """Train a CNN on the embedded digits data and write a report (offline, about a minute)."""
    from .api import audit, load_model, save_model
    from .api import train as api_train

    _setup_logging(quiet)
    out = Path(output_dir)
    model_path = out / "demo-cnn.pt"
    progress = TerminalProgress(quiet)
    if model_path.is_file():
        bundle = load_model(model_path, device=device)
        if not quiet:
            click.echo(f"reusing {model_path}")
    else:
        bundle = api_train("cnn", "digits", seed=seed, device=device, progress=progress)
        save_model(bundle, model_path)
    rep = audit(bundle, None, seed=seed, device=device, progress=progress, title="dlaudit demo: digits CNN", command="dlaudit demo")
    html = rep.save(out / "demo-cnn.html")
    rep.save(out / "demo-cnn.json", format="json")
    if not quiet:
        click.echo(f"demo report -> {html} (accuracy {rep.metrics['performance.accuracy']:.4f})")


# -- fairness (dlaudit/fairness) -------------------------------------------------------


def _bins(values: tuple[str, ...]) -> dict[str, list[float]] | None:
    """``--bins age=25,60`` (repeatable) as ``{"age": [25.0, 60.0]}``."""
    out: dict[str, list[float]] = {}
    for text in values:
        name, sep, edges = text.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"--bins takes COLUMN=EDGE[,EDGE...], e.g. age=25,60; got {text!r}")
        out[name.strip()] = _floats(edges, f"--bins {name.strip()}")
    return out or None


def _cell(value: Any, width: int = 10) -> str:
    if value is None:
        return f"{'undefined':>{width}}"
    if isinstance(value, float):
        return f"{value:>{width}.4f}"
    return f"{str(value):>{width}}"


def _echo_table(columns: list[str], rows: list[list[Any]]) -> None:
    widths = [max(len(str(c)), *(len(_cell(r[i]).strip()) for r in rows)) if rows else len(str(c)) for i, c in enumerate(columns)]
    click.echo("  ".join(f"{str(c):>{w}}" for c, w in zip(columns, widths)))
    for r in rows:
        click.echo("  ".join(_cell(v, w) for v, w in zip(r, widths)))


@cli.command(context_settings=CONTEXT)
@click.argument("model", type=click.Path())
@data_options
@model_options
@run_options
@click.option("--intersection", is_flag=True, help="Also judge the intersection of the sensitive features (e.g. sex&race).")
@click.option("--bins", "bins", multiple=True, help="Bin edges of a continuous feature, COLUMN=EDGE[,EDGE...] (default age=25,60). Repeatable.")
@click.option("--n-boot", type=click.IntRange(min=0), default=None, help="Bootstrap resamples for the intervals (default 1000; 200 with --fast).")
@click.option("--gap-threshold", type=click.FloatRange(min=0), default=0.1, show_default=True, help="Gaps above this are warnings.")
@click.option("--min-group-size", type=click.IntRange(min=1), default=30, show_default=True, help="Smaller groups are flagged, not judged.")
@click.option("--fast", is_flag=True, help="Fewer bootstrap resamples.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="Also write an HTML report.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None, help="Write the result as JSON (flat 'metrics' object).")
@click.option("--fail-on", "fail_on", multiple=True, help="Gate 'METRIC OP NUMBER'; exit 1 when one fails. Repeatable.")
def fairness(model: str, sensitive: str | None, intersection: bool, bins: tuple[str, ...], n_boot: int | None, gap_threshold: float, min_group_size: int, fast: bool, output: str | None, json_path: str | None, fail_on: tuple[str, ...], quiet: bool, **kw: Any) -> None:
    """Group fairness of MODEL over sensitive features (fairlearn metrics with bootstrap intervals)."""
    from .api import fairness as api_fairness
    from .report.gates import parse_gate

    _setup_logging(quiet)
    gates = [parse_gate(g) for g in fail_on]
    bundle = load_bundle(model, kw)
    rep = api_fairness(
        bundle, kw.pop("data"), sensitive=sensitive, intersection=intersection, bins=_bins(bins), n_boot=n_boot,
        gap_threshold=gap_threshold, min_group_size=min_group_size, seed=kw["seed"], fast=fast, device=kw["device"],
        progress=TerminalProgress(quiet), command="dlaudit " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        data_dir=kw.get("data_dir"), target=kw.get("target"),
    )  # fmt: skip
    if gates:
        rep.check(gates)
    if output:
        rep.save(output)
    if json_path:
        rep.save(json_path, format="json")
    if not quiet:
        _echo_fairness(rep)
    if not rep.passed:
        sys.exit(1)


def _echo_fairness(rep: Any) -> None:
    sec = rep.section("fairness")
    acc = rep.metrics.get("performance.accuracy")
    if acc is not None:
        click.echo(f"accuracy {acc:.4f}")
    if sec is None or sec.status != "ok":
        click.echo(f"fairness {sec.status if sec else 'missing'}: {sec.reason if sec else ''}")
        return
    click.echo(sec.summary)
    for table in sec.tables:
        click.echo(f"\n{table.title}")
        _echo_table(table.columns, table.rows)
    click.echo(f"\n{'metric':<52} {'value':>10}   95% CI")
    last_note = ""
    for m in sec.metrics:
        if "@" in m.name:
            continue
        ci = f"[{m.ci[0]:.3f}, {m.ci[1]:.3f}]" if m.ci else ""
        note = m.note if m.value is None and m.note != last_note else ""
        last_note = m.note if m.value is None else ""
        click.echo(f"{m.name:<52} {_cell(m.value)}   {ci}" + (f"  ({note})" if note else ""))
    if sec.findings:
        click.echo("")
    for f in sec.findings:
        click.echo(f"{f.severity.upper():<8} {f.message}")
    for g in rep.gates:
        click.echo(f"{'PASS' if g.passed else 'FAIL'}  {g.gate}  (value {g.value if g.value is not None else 'undefined'})")


@cli.command(context_settings=CONTEXT)
@click.argument("model", type=click.Path())
@data_options
@model_options
@run_options
@click.option("--method", required=True, help="reweigh, threshold or expgrad (comma-separated to compare several).")
@click.option("--constraint", type=click.Choice(["demographic_parity", "equalized_odds"]), default="demographic_parity", show_default=True, help="For threshold and expgrad.")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Epochs when retraining (reweigh; per round for expgrad); default: the model's.")
@click.option("--max-iter", type=click.IntRange(min=1), default=20, show_default=True, help="Exponentiated-gradient rounds.")
@click.option("--bins", "bins", multiple=True, help="Bin edges of a continuous sensitive feature, COLUMN=EDGE[,EDGE...].")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Where to write the mitigated model (<stem>-<method>.pt for each of several).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), default=None, help="Write the before/after comparison as a report (.html, .json, .md by extension).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None, help="Write the comparison as JSON (flat 'metrics' object).")
def mitigate(model: str, sensitive: str | None, method: str, constraint: str, epochs: int | None, max_iter: int, bins: tuple[str, ...], output: str, report_path: str | None, json_path: str | None, quiet: bool, **kw: Any) -> None:
    """Mitigate MODEL's unfairness over one sensitive feature, save the result, print before/after."""
    from .api import mitigate as api_mitigate

    _setup_logging(quiet)
    if not sensitive:
        raise click.UsageError("mitigate needs --sensitive COLUMN (one column, e.g. --sensitive sex)")
    bundle = load_bundle(model, kw)
    result = api_mitigate(
        bundle, kw.pop("data"), sensitive=sensitive, method=method, constraint=constraint, output=output, seed=kw["seed"],
        device=kw["device"], epochs=epochs, max_iter=max_iter, bins=_bins(bins), data_dir=kw.get("data_dir"),
        target=kw.get("target"), progress=TerminalProgress(quiet),
    )  # fmt: skip
    rep = result.report()
    if report_path:
        rep.save(report_path)
    if json_path:
        rep.save(json_path, format="json")
    if not quiet:
        table = result.table()
        click.echo(f"{table.title}, on {result.n} held-out samples of {result.data}")
        _echo_table(table.columns, table.rows)
        for name, path in result.saved.items():
            click.echo(f"{name} -> {path}")


def main() -> None:
    """Console-script entry point."""
    cli.main(prog_name="dlaudit")


if __name__ == "__main__":  # pragma: no cover
    main()
