"""Crafted inputs that ask for too much, or that used to end in a traceback: each gives its exit code
and a one-line message, and changes nothing the user had (issue 20, items 4 and 5).

The table runs in-process (Click's runner) like :mod:`tests.hostile.test_corpus`; what needs a
real process (Ctrl-C, a model that never returns, a timeout that abandons a thread) runs
``python -m dlaudit`` in a subprocess, with a bounded wait.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

import dlaudit
from dlaudit.cli import cli
from tests.hostile.crafted import digest, run_crafted
from tests.hostile.test_corpus import _digits_like, _npz

ROOT = Path(__file__).resolve().parents[2]

# -- shared files -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small digits MLP checkpoint (trained once for the module)."""
    path = tmp_path_factory.mktemp("model") / "m.pt"
    dlaudit.save_model(dlaudit.train("mlp", "digits", epochs=1, seed=0, device="cpu"), path)
    return path


@pytest.fixture(scope="module")
def credit_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic-credit MLP checkpoint: its card holds a tabular encoder."""
    path = tmp_path_factory.mktemp("credit") / "credit.pt"
    dlaudit.save_model(dlaudit.train("mlp", "synthetic-credit", epochs=1, seed=0, device="cpu"), path)
    return path


def _checkpoint(m: Path, d: Path, name: str, edit: Callable[[dict], None]) -> Path:
    """A copy of the checkpoint ``m`` with its stored card edited by ``edit`` (deep cards need a deeper stack to save)."""
    ckpt = torch.load(m, weights_only=True)
    edit(ckpt["card"])
    path = d / name
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 50_000))
    try:
        torch.save(ckpt, path)
    finally:
        sys.setrecursionlimit(limit)
    return path


def _nested(depth: int) -> list:
    out: list = []
    for _ in range(depth):
        out = [out]
    return out


def _shared(depth: int) -> list:
    """A list holding one list twice, ``depth`` deep: 2**depth values once expanded, a few bytes pickled."""
    out: list = ["x"]
    for _ in range(depth):
        out = [out, out]
    return out


def _baseline(d: Path, edit: Callable[[dict], None]) -> Path:
    """A well-formed baseline report (one performance section) with ``edit`` applied to its JSON."""
    doc = {
        "schema_version": 1,
        "title": "old",
        "sections": [
            {
                "name": "performance",
                "title": "Performance",
                "metrics": [{"name": "performance.accuracy", "value": 0.9, "ci": [0.85, 0.95]}],
                "params": {"n": 450},
            }
        ],
        "gates": [],
        "provenance": {},
    }
    edit(doc)
    path = d / "old.json"
    path.write_text(json.dumps(doc))
    return path


def _metric(doc: dict) -> dict:
    return doc["sections"][0]["metrics"][0]


def _report(m: Path, d: Path, *extra: str) -> list[str]:
    return ["report", str(m), "--checks", "performance", "-o", str(d / "r.html"), *extra]


# -- the builders: folder, digits model, credit model -> argv -----------------------------------------

Builder = Callable[[Path, Path, Path], list[str]]


def train_hidden_200000(d: Path, m: Path, c: Path) -> list[str]:
    return ["train", "mlp", "--hidden", "200000,200000", "-o", str(d / "big.pt")]


def train_numpy_hidden_200000(d: Path, m: Path, c: Path) -> list[str]:
    return ["train", "numpy-mlp", "--hidden", "200000,200000", "-o", str(d / "big.pt")]


def checkpoint_card_hidden_200000(d: Path, m: Path, c: Path) -> list[str]:
    path = _checkpoint(m, d, "big.pt", lambda card: card["arch_kwargs"].update(hidden=[200000, 200000]))
    return ["info", str(path)]


def workers_10000(d: Path, m: Path, c: Path) -> list[str]:
    return _report(m, d, "--workers", "10000")


def config_tool_is_a_string(d: Path, m: Path, c: Path) -> list[str]:
    (d / "c.toml").write_text('tool = "x"\n')
    return _report(m, d, "--config", str(d / "c.toml"))


def pyproject_tool_is_a_number(d: Path, m: Path, c: Path) -> list[str]:
    (d / "pyproject.toml").write_text("tool = 5\n")  # the test runs in d: the implicit config
    return _report(m, d)


def baseline_ci_a_number(d: Path, m: Path, c: Path) -> list[str]:
    return _report(m, d, "--baseline", str(_baseline(d, lambda doc: _metric(doc).update(ci=5))))


def baseline_ci_three_numbers(d: Path, m: Path, c: Path) -> list[str]:
    return _report(m, d, "--baseline", str(_baseline(d, lambda doc: _metric(doc).update(ci=[1, 2, 3]))))


def baseline_metric_name_a_number(d: Path, m: Path, c: Path) -> list[str]:
    return _report(m, d, "--baseline", str(_baseline(d, lambda doc: _metric(doc).update(name=5))))


def baseline_metric_name_a_list(d: Path, m: Path, c: Path) -> list[str]:
    return _report(m, d, "--baseline", str(_baseline(d, lambda doc: _metric(doc).update(name=["a"]))))


def baseline_params_a_list(d: Path, m: Path, c: Path) -> list[str]:
    return _report(m, d, "--baseline", str(_baseline(d, lambda doc: doc["sections"][0].update(params=[1]))))


def baseline_params_a_string(d: Path, m: Path, c: Path) -> list[str]:
    return _report(m, d, "--baseline", str(_baseline(d, lambda doc: doc["sections"][0].update(params="x"))))


def baseline_provenance_a_list(d: Path, m: Path, c: Path) -> list[str]:
    return _report(m, d, "--baseline", str(_baseline(d, lambda doc: doc.update(provenance=[1]))))


def baseline_headline_a_string(d: Path, m: Path, c: Path) -> list[str]:
    return _report(m, d, "--baseline", str(_baseline(d, lambda doc: _metric(doc).update(headline="yes"))))


def baseline_gate_threshold_a_string(d: Path, m: Path, c: Path) -> list[str]:
    gate = {"gate": "g", "metric": "performance.accuracy", "op": "<", "threshold": "x", "value": 1, "passed": True}
    return _report(m, d, "--baseline", str(_baseline(d, lambda doc: doc.update(gates=[gate]))))


def card_nested_20000_deep(d: Path, m: Path, c: Path) -> list[str]:
    return ["info", str(_checkpoint(m, d, "deep.pt", lambda card: card["training"].update(deep=_nested(20_000))))]


def card_class_names_20000_deep(d: Path, m: Path, c: Path) -> list[str]:
    return ["info", str(_checkpoint(m, d, "deep.pt", lambda card: card.update(class_names=_nested(20_000))))]


def card_shared_references_2_to_the_25(d: Path, m: Path, c: Path) -> list[str]:
    return ["info", str(_checkpoint(m, d, "bomb.pt", lambda card: card["training"].update(bomb=_shared(25))))]


def _encoder(c: Path, d: Path, edit: Callable[[dict], None]) -> list[str]:
    def change(card: dict) -> None:
        enc = copy.deepcopy(card["encoder"])
        edit(enc)
        card["encoder"] = enc

    return ["info", str(_checkpoint(c, d, "enc.pt", change))]


def encoder_a_string(d: Path, m: Path, c: Path) -> list[str]:
    return ["info", str(_checkpoint(c, d, "enc.pt", lambda card: card.update(encoder="x")))]


def encoder_without_numeric(d: Path, m: Path, c: Path) -> list[str]:
    return _encoder(c, d, lambda enc: enc.pop("numeric"))


def encoder_min_a_string(d: Path, m: Path, c: Path) -> list[str]:
    return _encoder(c, d, lambda enc: enc["numeric"][0].update(min="low"))


def encoder_max_equal_to_min(d: Path, m: Path, c: Path) -> list[str]:
    return _encoder(c, d, lambda enc: enc["numeric"][0].update(max=enc["numeric"][0]["min"]))


def encoder_categories_a_number(d: Path, m: Path, c: Path) -> list[str]:
    return _encoder(c, d, lambda enc: enc["categorical"][0].update(categories=5))


def encoder_one_class(d: Path, m: Path, c: Path) -> list[str]:
    return _encoder(c, d, lambda enc: enc.update(classes=["no"]))


def encoder_one_feature_too_many(d: Path, m: Path, c: Path) -> list[str]:
    return _encoder(c, d, lambda enc: enc["categorical"][0]["categories"].append("other"))


def encoder_target_not_in_the_data(d: Path, m: Path, c: Path) -> list[str]:
    return _encoder(c, d, lambda enc: enc.update(target="nope"))


def card_split_with_a_terminal_escape(d: Path, m: Path, c: Path) -> list[str]:
    return ["info", str(_checkpoint(m, d, "esc.pt", lambda card: card.update(split="test\x1b]0;pwned\x07")))]


def sensitive_column_with_a_terminal_escape(d: Path, m: Path, c: Path) -> list[str]:
    return ["fairness", str(c), "--sensitive", "sex\x1b]0;pwned\x07", "-o", str(d / "f.html")]


def npz_unused_member_unreadable(d: Path, m: Path, c: Path) -> list[str]:
    path = _npz(d, "junk.npz", **_digits_like(40), junk=np.arange(1000, dtype=np.int64))
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        at = zf.getinfo("junk.npy").header_offset  # its local header: 30 bytes, then its name and extra field
    start = (
        at + 30 + int.from_bytes(raw[at + 26 : at + 28], "little") + int.from_bytes(raw[at + 28 : at + 30], "little")
    )
    raw[start + 500] ^= 0xFF  # its data fails the CRC check when read; its header does not
    path.write_bytes(bytes(raw))
    return ["info", str(m), "--data", str(path)]


CASES: dict[str, tuple[Builder, int, str]] = {
    "train --hidden 200000,200000": (train_hidden_200000, 2, "choose smaller layer sizes (e.g. --hidden 128,64)"),
    "train numpy-mlp --hidden 200000,200000": (train_numpy_hidden_200000, 2, "more than this machine can give it"),
    "checkpoint card hidden 200000,200000": (  # compared on the meta device: nothing of its size is allocated
        checkpoint_card_hidden_200000,
        2,
        "3.weight is (64, 128) but the card's shapes need (200000, 200000)",
    ),
    "--workers 10000": (workers_10000, 2, "--workers 10000 is more than this machine can run: at most"),
    'config tool = "x"': (config_tool_is_a_string, 2, "tool must be a table"),
    "pyproject.toml tool = 5": (pyproject_tool_is_a_number, 2, "pyproject.toml: tool must be a table"),
    "baseline ci 5": (baseline_ci_a_number, 2, "sections[0].metrics[0].ci must be null or a list of two numbers"),
    "baseline ci [1, 2, 3]": (baseline_ci_three_numbers, 2, "ci must be null or a list of two numbers"),
    "baseline metric name 5": (baseline_metric_name_a_number, 2, "sections[0].metrics[0].name must be a string"),
    'baseline metric name ["a"]': (baseline_metric_name_a_list, 2, "metrics[0].name must be a string"),
    "baseline params [1]": (baseline_params_a_list, 2, "sections[0].params must be an object"),
    'baseline params "x"': (baseline_params_a_string, 2, "sections[0].params must be an object"),
    "baseline provenance [1]": (baseline_provenance_a_list, 2, "provenance must be an object"),
    'baseline headline "yes"': (baseline_headline_a_string, 2, "headline must be true or false"),
    'baseline gate threshold "x"': (baseline_gate_threshold_a_string, 2, "gates[0].threshold must be a number"),
    "checkpoint card nested 20,000 deep": (card_nested_20000_deep, 2, "nested more than 32 levels deep"),
    "checkpoint class_names nested 20,000 deep": (card_class_names_20000_deep, 2, "nested more than 32 levels"),
    "checkpoint card of 2^25 shared values": (card_shared_references_2_to_the_25, 2, "more than 2,000,000 values"),
    'card encoder "x"': (encoder_a_string, 2, "enc.pt: model card: encoder must be an object"),
    "card encoder without numeric": (encoder_without_numeric, 2, "enc.pt: model card: encoder must be an object"),
    'card encoder min "low"': (encoder_min_a_string, 2, "model card: encoder: numeric[0] must be"),
    "card encoder max = min": (encoder_max_equal_to_min, 2, "model card: encoder: numeric[0] must be"),
    "card encoder categories 5": (encoder_categories_a_number, 2, "model card: encoder: categorical[0] must be"),
    "card encoder of one class": (encoder_one_class, 2, "model card: encoder: classes must list the 2 class labels"),
    "card encoder of 7 features for 6 inputs": (encoder_one_feature_too_many, 2, "encodes 7 features but the model"),
    "card encoder target not in the data": (encoder_target_not_in_the_data, 2, "the label column the model's card"),
    "card split with a terminal escape": (card_split_with_a_terminal_escape, 0, "test\\x1b]0;pwned\\x07"),
    "--sensitive with a terminal escape": (
        sensitive_column_with_a_terminal_escape,
        0,
        "column 'sex\\x1b]0;pwned\\x07' is not in the data",
    ),
    "npz with an unreadable member it does not use": (npz_unused_member_unreadable, 0, "on 40 samples of junk"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_crafted_input(
    case: str, tmp_path: Path, digits_model: Path, credit_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build, code, fragment = CASES[case]
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    model = work / "m.pt"
    model.write_bytes(digits_model.read_bytes())
    credit = work / "credit.pt"
    credit.write_bytes(credit_model.read_bytes())
    out = run_crafted(build(work, model, credit), work, code, fragment)
    assert not any(ch in out for ch in "\x1b\x07\x9b\r"), "a control character reached the terminal"
    if code == 2:
        assert out.startswith("dlaudit: error:") and len(out.splitlines()) == 1, out


# -- memory: sizes checked before anything is read or built --------------------------------------------


def test_npz_larger_than_memory_is_refused_before_it_is_read(
    tmp_path: Path, digits_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Arrays whose declared (inflated) sizes need more memory than there is are refused from their headers."""
    import dlaudit.limits

    path = tmp_path / "big.npz"
    np.savez_compressed(path, x=np.zeros((20_000, 1, 8, 8), np.uint8), y=np.arange(20_000) % 10)
    monkeypatch.setattr(dlaudit.limits, "available_memory", lambda: 4_000_000)
    monkeypatch.setattr(np.lib.format, "read_array", _never_called)  # nothing is read past the headers
    before = digest(tmp_path)
    res = CliRunner().invoke(cli, ["info", str(digits_model), "--data", str(path)], catch_exceptions=False)
    assert res.exit_code == 2, res.output
    assert "big.npz (arrays x 20000x1x8x8 uint8, y 20000 int64) needs about" in res.output
    assert "audit a sample of it" in res.output and len(res.output.strip().splitlines()) == 1
    assert digest(tmp_path) == before


def _never_called(*args: object, **kwargs: object) -> None:
    raise AssertionError("an array was read")


def test_the_model_size_check_counts_every_parameter_without_allocating() -> None:
    from dlaudit.errors import ConfigError
    from dlaudit.limits import TRAIN_BYTES_PER_PARAMETER, check_model_size

    n = check_model_size(lambda: nn.Linear(10, 5), "a linear layer", "smaller", room=10_000)
    assert n == 55
    with pytest.raises(ConfigError, match=r"a linear layer \(55 parameters\) needs about 880 bytes"):
        check_model_size(
            lambda: nn.Linear(10, 5),
            "a linear layer",
            "smaller",
            bytes_per_parameter=TRAIN_BYTES_PER_PARAMETER,
            room=800,
        )
    start = time.perf_counter()
    with pytest.raises(ConfigError, match="needs about 800 GB"):  # 10^11 parameters: built on the meta device
        check_model_size(lambda: nn.Linear(100_000, 1_000_000, bias=False), "huge", "smaller", room=10**9)
    assert time.perf_counter() - start < 5


# -- output size: the HTML page shows a bounded number of rows ------------------------------------------


def test_a_baseline_of_20000_metrics_keeps_the_html_small_and_the_json_whole(
    tmp_path: Path, digits_model: Path
) -> None:
    from dlaudit.report.html import MAX_HTML_ROWS
    from dlaudit.report.model import Report, Section

    section = Section(name="performance", title="Performance")
    for i in range(20_000):
        section.add_metric(f"performance.extra_{i}", 0.5, headline=True, higher_is_better=True)
    old = tmp_path / "old.json"
    dlaudit.save_report(Report(title="old", sections=[section]), old)
    html, js = tmp_path / "r.html", tmp_path / "r.json"
    res = CliRunner().invoke(
        cli, _report(digits_model, tmp_path, "--baseline", str(old), "--json", str(js), "-q"), catch_exceptions=False
    )
    assert res.exit_code in (0, 1), res.output
    assert "Traceback" not in res.output and len(res.output.splitlines()) < 120
    page = html.read_text()
    assert html.stat().st_size < 1_000_000, html.stat().st_size
    rows = json.loads(js.read_text())["baseline"]["rows"]
    assert len(rows) > 20_000  # every metric stays in the JSON
    headline = sum(r["headline"] for r in rows)
    assert (
        f"{headline - MAX_HTML_ROWS:,} more rows not shown here; the JSON report (--json) has all {headline:,}." in page
    )
    # each vanished headline metric is a regression: shown at most in the gates, the diff table and the summary's list
    assert page.count("performance.extra_") <= 2 * MAX_HTML_ROWS + 10


def test_more_rows_than_shown_are_counted_under_a_section_table() -> None:
    from dlaudit.report.html import MAX_HTML_ROWS, render_html
    from dlaudit.report.model import Report, Section, Table

    section = Section(name="performance", title="Performance")
    section.tables.append(Table("Many", ["i"], [[i] for i in range(MAX_HTML_ROWS + 7)]))
    page = render_html(Report(title="t", sections=[section]))
    assert f"7 more rows not shown here; the JSON report (--json) has all {MAX_HTML_ROWS + 7:,}." in page


# -- a real process: a model that never returns, Ctrl-C ------------------------------------------------


class _Spin(nn.Module):
    """A forward pass that does not return for minutes (TorchScript's interpreter loop, in C++)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        i = 0
        n = int(x.numel()) * 0 + 20_000_000_000
        while i < n:
            i += 1
        return self.fc(x.flatten(1))


@pytest.fixture(scope="module")
def spinning_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("spin") / "spin.pt"
    torch.jit.save(torch.jit.script(_Spin().eval()), path)
    path.with_suffix(".card.json").write_text(json.dumps({"input_shape": [1, 8, 8], "num_classes": 10}))
    return path


_AS_AT_A_TERMINAL = (
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); sys.argv[0] = 'dlaudit'; "
    "runpy.run_module('dlaudit', run_name='__main__', alter_sys=True)"
)
"""``python -m dlaudit`` with Ctrl-C as a terminal delivers it: a test run started in the background of a
non-interactive shell (``cmd &``) inherits SIGINT ignored, and Python keeps it ignored in every child, so
without this the Ctrl-C tests would measure the shell that started pytest, not dlaudit (dlaudit itself rightly
leaves an ignored SIGINT alone: :func:`dlaudit.bounded.catch_interrupts`)."""


def _dlaudit(*args: str, cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "DLAUDIT_PROGRESS_INTERVAL": "0.2"}
    return subprocess.Popen(
        [sys.executable, "-c", _AS_AT_A_TERMINAL, *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen[str], timeout: float) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"dlaudit did not end within {timeout} s")
    return proc.returncode, err


def test_timeout_covers_loading_a_model_that_never_returns(tmp_path: Path, spinning_model: Path) -> None:
    start = time.perf_counter()
    proc = _dlaudit(
        "report", str(spinning_model), "--data", "digits", "--checks", "performance", "--timeout", "2", "-o", "r.html",
        cwd=tmp_path,
    )  # fmt: skip
    code, err = _finish(proc, 90)
    assert code == 2, err
    assert err.strip().splitlines() == [
        "dlaudit: error: loading "
        + str(spinning_model)
        + " (with its first forward pass) took more than --timeout 2 s and was stopped; "
        "the model may never return (a loop in its forward?); check it, or give a longer --timeout"
    ]
    assert time.perf_counter() - start < 60
    assert not (tmp_path / "r.html").exists()


def test_ctrl_c_while_the_model_loads_ends_at_once_with_130(tmp_path: Path, spinning_model: Path) -> None:
    proc = _dlaudit("info", str(spinning_model), "--data", "digits", cwd=tmp_path)
    time.sleep(6)  # importing torch and reading the file take a few seconds; then its forward pass spins
    assert proc.poll() is None, proc.communicate()
    sent = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    code, err = _finish(proc, 20)
    assert code == 130, err
    assert err.strip().splitlines()[-1].startswith("dlaudit: interrupted (Ctrl-C)")
    assert "Traceback" not in err and "terminate called" not in err
    assert time.perf_counter() - sent < 10


@pytest.mark.parametrize("delay", [0.2, 1.0])
def test_ctrl_c_during_the_explanation_section_exits_130(tmp_path: Path, digits_model: Path, delay: float) -> None:
    """It ended in SIGABRT ("terminate called without an active exception") in 4 of 16 runs: the interpreter
    tore down the section's worker thread in the middle of its C++ work."""
    proc = _dlaudit("report", str(digits_model), "--checks", "explain", "-o", "r.html", cwd=tmp_path)
    assert proc.stderr is not None
    lines = []
    deadline = time.perf_counter() + 120
    for line in proc.stderr:  # progress lines (stderr is not a terminal): wait for the section to start
        lines.append(line)
        if "[explain] started" in line or time.perf_counter() > deadline:
            break
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    code, err = _finish(proc, 30)
    err = "".join(lines) + err
    assert code == 130, err
    assert err.strip().splitlines()[-1] == "dlaudit: interrupted (Ctrl-C); outputs not yet written were not written"
    assert "Traceback" not in err and "terminate called" not in err
    assert not (tmp_path / "r.html").exists()


def test_terminal_escapes_in_every_printed_line_are_escaped() -> None:
    from dlaudit.terminal import printable

    assert printable("a\x1b]0;t\x07b\x9b2J\r\u202e\udcff\n\tz") == "a\\x1b]0;t\\x07b\\x9b2J\\x0d\\u202e\\xff\n\tz"


def test_a_ctrl_c_swallowed_by_a_callback_is_not_printed_but_other_errors_are(monkeypatch) -> None:
    """A Ctrl-C landing in a weak reference's callback is "unraisable": Python would print it with a traceback.
    dlaudit counts it (the run ends as interrupted) and keeps it quiet; any other unraisable error still goes to the
    hook that was there before."""
    import sys
    import types

    from dlaudit import bounded

    seen: list[type] = []
    monkeypatch.setitem(bounded._hooks, "unraisable", lambda u: seen.append(u.exc_type))
    quiet = lambda exc: types.SimpleNamespace(exc_type=type(exc), exc_value=exc, exc_traceback=None, object=None)
    bounded._quiet_unraisable(quiet(KeyboardInterrupt()))
    bounded._quiet_unraisable(quiet(ValueError("a finalizer's own bug")))
    assert seen == [ValueError]
    monkeypatch.setattr(sys, "unraisablehook", sys.unraisablehook)
    monkeypatch.setattr(bounded.signal, "signal", lambda *a: None)  # the test process keeps its own SIGINT handler
    monkeypatch.setattr(bounded.signal, "getsignal", lambda sig: bounded.signal.default_int_handler)
    bounded.catch_interrupts()
    assert sys.unraisablehook is bounded._quiet_unraisable


def test_a_swallowed_ctrl_c_stops_the_run_after_the_section_and_writes_nothing(
    monkeypatch, tmp_path: Path, digits_model: Path
) -> None:
    """A Ctrl-C that a library swallowed lets the section finish, but the run stops there: no further section, and
    no report file (in CI, one landed in a callback 1 s into the explanation section and the report was written)."""
    from click.testing import CliRunner

    import dlaudit
    from dlaudit import bounded
    from dlaudit.cli import cli

    bundle = dlaudit.load_model(digits_model, device="cpu")
    monkeypatch.setitem(bounded._interrupts, "count", 1)
    with pytest.raises(KeyboardInterrupt):
        dlaudit.audit(bundle, checks="performance", fast=True)
    out = tmp_path / "r.html"
    result = CliRunner().invoke(cli, ["report", str(digits_model), "--checks", "performance", "-o", str(out)])
    assert result.exit_code == 130, result.output
    assert not out.exists()
