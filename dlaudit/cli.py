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


@cli.command(context_settings=CONTEXT)
@click.argument("model", type=click.Path())
@data_options
@model_options
@run_options
@click.option("--method", "methods", default=None, help="Methods, comma-separated: saliency,ig,smoothgrad,gradcam,deeplift,occlusion,lime,shap (default all).")
@click.option("--n", "n", type=click.IntRange(min=1), default=16, show_default=True, help="How many samples to explain (correct and misclassified ones).")
@click.option("--explain-target", default="predicted", show_default=True, help="Class to explain: predicted, true, or a class name.")
@click.option("--shap-explainer", type=click.Choice(["auto", "gradient", "deep", "kernel"]), default="auto", show_default=True, help="auto: kernel for tabular models, gradient for images.")
@click.option("--gradcam-layer", default=None, help="Module name of Grad-CAM's layer (default: the last convolution).")
@click.option("--fast", is_flag=True, help="Fewer samples and steps (for CI).")
@click.option("--no-quality", is_flag=True, help="Only the attributions, without the trust metrics.")
@click.option("-o", "--output-dir", type=click.Path(file_okay=False), default=None, help="Write explain.html and attributions.npz into this folder.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None, help="Write the metrics (flat 'metrics' object) and findings as JSON.")
def explain(model: str, methods: str | None, n: int, explain_target: str, output_dir: str | None, json_path: str | None, quiet: bool, **kw: Any) -> None:
    """Explain MODEL's decisions with captum, LIME and SHAP, and measure how far to trust each method."""
    from .api import explain as api_explain
    from .explain import parse_methods
    from .report.model import Report

    _setup_logging(quiet)
    parse_methods(methods)  # an unknown method fails before any work
    bundle = load_bundle(model, kw)
    result = api_explain(
        bundle, kw.pop("data"), methods=methods, n=n, target=explain_target, seed=kw["seed"], fast=kw["fast"],
        quality=not kw["no_quality"], device=kw["device"], progress=TerminalProgress(quiet), data_options=data_kwargs(kw),
        shap_explainer=kw["shap_explainer"], gradcam_layer=kw["gradcam_layer"],
    )  # fmt: skip
    sec = result.section
    if output_dir:
        import numpy as np

        out = Path(output_dir)
        rep = Report(title=f"dlaudit explain: {Path(model).name}", card=bundle.card.to_dict(), sections=[sec])
        rep.provenance = {"command": "dlaudit " + " ".join(shlex.quote(a) for a in sys.argv[1:]), "seed": kw["seed"]}
        rep.save(out / "explain.html")
        arrays = {f"attr_{k}": v.numpy() for k, v in result.attributions.items()}
        np.savez_compressed(out / "attributions.npz", x=result.x.numpy(), y=result.y.numpy(), pred=result.pred.numpy(), target=result.target.numpy(), indices=result.indices.numpy(), **arrays)
    if json_path:
        write_json(json_path, {"model": model, "metrics": result.metrics, "skipped": result.skipped, "section": sec.to_dict(include_figures=False)})
    if not quiet:
        click.echo(sec.summary)
        for m in sec.metrics:
            click.echo(f"  {m.name:<42} {'undefined' if m.value is None else f'{m.value:.4f}'}")
        for f in sec.findings:
            click.echo(f"{f.severity.upper():<8} {f.message}")
        if output_dir:
            click.echo(f"explanations -> {Path(output_dir) / 'explain.html'}, {Path(output_dir) / 'attributions.npz'}")


def main() -> None:
    """Console-script entry point."""
    cli.main(prog_name="dlaudit")


if __name__ == "__main__":  # pragma: no cover
    main()
