"""Progress a person can see: plain lines at a steady interval off a terminal, a bar on one, nothing when quiet."""

from __future__ import annotations

import io

import dlaudit
from dlaudit.progress import ProgressPrinter, format_seconds


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_plain_lines_at_a_steady_interval_with_section_step_count_elapsed_and_remaining() -> None:
    out, clock = io.StringIO(), Clock()
    p = ProgressPrinter(stream=out, tty=False, interval=10, clock=clock)
    assert p.mode == "lines"
    p("check:robustness", 0, 1)
    p("robustness:pgd_linf", 1, 5)  # a new step: printed at once
    for done in range(2, 5):
        clock.now += 4
        p("robustness:pgd_linf", done, 5)  # 4 s apart: only the one 10 s or more after the last line
    clock.now += 4
    p("robustness:noise_gaussian", 50, 200)
    clock.now += 1
    p("check:robustness", 1, 1)
    lines = out.getvalue().splitlines()
    assert lines == [
        "dlaudit: [robustness] started",
        "dlaudit: [robustness] pgd_linf 1/5 (20%) · 0.0 s elapsed · section 0.0 s",
        "dlaudit: [robustness] pgd_linf 4/5 (80%) · 12 s elapsed · about 3.0 s left · section 12 s",
        "dlaudit: [robustness] noise_gaussian 50/200 (25%) · 0.0 s elapsed · section 16 s",
        "dlaudit: [robustness] done in 17 s",
    ]


def test_a_time_estimate_is_its_own_line_and_quiet_prints_nothing() -> None:
    out = io.StringIO()
    ProgressPrinter(stream=out, tty=False).announce("[robustness] estimated 2 min 05 s on this machine")
    assert out.getvalue() == "dlaudit: [robustness] estimated 2 min 05 s on this machine\n"
    quiet = io.StringIO()
    p = ProgressPrinter(True, stream=quiet, tty=False)
    p("check:explain", 0, 1)
    p("explain:attributions", 1, 8)
    p.announce("x")
    assert quiet.getvalue() == "" and not p.enabled


def test_a_bar_on_a_terminal() -> None:
    out, clock = io.StringIO(), Clock()
    p = ProgressPrinter(stream=out, tty=True, clock=clock)
    p("train", 1, 4)
    clock.now += 2
    p("train", 4, 4)
    text = out.getvalue()
    assert text.startswith("\rtrain") and "[" + "#" * 24 + "] 4/4" in text and text.endswith("\n")


def test_the_interval_comes_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("DLAUDIT_PROGRESS_INTERVAL", "2.5")
    assert ProgressPrinter(tty=False).interval == 2.5
    monkeypatch.setenv("DLAUDIT_PROGRESS_INTERVAL", "soon")
    assert ProgressPrinter(tty=False).interval == 10.0


def test_format_seconds() -> None:
    assert [format_seconds(s) for s in (3.21, 42, 185, 3725)] == ["3.2 s", "42 s", "3 min 05 s", "1 h 02 min"]


def test_the_audit_announces_an_estimate_before_an_expensive_section(digits_cnn) -> None:
    out = io.StringIO()
    p = ProgressPrinter(stream=out, tty=False, interval=1e9)
    from dlaudit.analysis import get_analysis

    data = dlaudit.load_data(bundle=digits_cnn)
    robustness = get_analysis("robustness")  # each analysis estimates its own time
    seconds, what = robustness.time_estimate(digits_cnn, data, fast=True, params={})
    assert seconds > 0 and "gradient steps (PGD-10 on 200 samples)" in what
    assert get_analysis("performance").time_estimate(digits_cnn, data, fast=True, params={}) is None
    assert robustness.time_estimate(digits_cnn, data, fast=True, params={"bogus": 1}) is None
    attacks = robustness.time_estimate(digits_cnn, data, params={"scope": "attacks", "attacks": "pgd_linf", "n": 10})
    assert attacks is not None and "PGD-40 on 10 samples" in attacks[1] and "AutoAttack" not in attacks[1]
    import dlaudit.pipeline as est

    original = est.EXPENSIVE
    est.EXPENSIVE = 0.0  # announce even this small audit
    try:
        dlaudit.audit(
            digits_cnn, checks="performance,robustness", fast=True, progress=p, params={"robustness": {"n": 20}}
        )
    finally:
        est.EXPENSIVE = original
    lines = out.getvalue().splitlines()
    estimate = next(i for i, line in enumerate(lines) if line.startswith("dlaudit: [robustness] estimated "))
    assert lines.index("dlaudit: [robustness] started") == estimate + 1  # before the section starts
    assert "on this machine: up to" in lines[estimate]


def test_each_section_and_each_run_of_a_step_has_its_own_clock() -> None:
    out, clock = io.StringIO(), Clock()
    p = ProgressPrinter(stream=out, tty=False, interval=1e9, clock=clock)
    p("train", 1, 30)
    clock.now += 50
    p("train", 30, 30)
    p("train", 1, 30)  # a second training run: its clock starts again
    p("check:robustness", 0, 1)
    p("robustness:pgd_linf", 1, 5)
    p("check:robustness", 1, 1)
    clock.now += 30
    p("check:robustness", 0, 1)  # the next model's audit
    p("robustness:pgd_linf", 1, 5)
    lines = out.getvalue().splitlines()
    assert lines[0] == "dlaudit: train 1/30 (3%) · 0.0 s elapsed" and lines[1] == lines[0]  # not "50 s elapsed"
    assert lines[-1] == "dlaudit: [robustness] pgd_linf 1/5 (20%) · 0.0 s elapsed · section 0.0 s"
