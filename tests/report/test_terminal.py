"""The terminal renderer (what every command prints), on hand-built reports: no audit runs."""

from __future__ import annotations

import dlaudit
from dlaudit.report import Report, Section, Table
from dlaudit.report.terminal import render_section, render_table, render_terminal


def _attack_report() -> Report:
    sec = Section(name="robustness", title="Robustness", summary="Under PGD-10 linf at eps 0.1, accuracy falls.")
    sec.add_metric("robustness.clean_acc", 0.9, ci=(0.85, 0.94))
    sec.add_metric("robustness.pgd_linf.acc@0.1", 0.25, ci=(0.2, 0.3))
    sec.tables.append(
        Table(
            "Robust accuracy",
            ["attack", "eps", "accuracy"],
            [["pgd_linf", 0.1, 0.25], ["worst_linf", 0.1, None]],
            caption="On 200 samples of digits (test).",
        )
    )
    sec.add_finding("warning", "pgd_linf at eps 0.3 was computed, but the ball covers every input", check="eps-range")
    return Report(title="dlaudit attack: cnn.pt", sections=[sec])


def test_a_table_is_aligned_under_its_title_with_its_caption_after() -> None:
    text = render_table(Table("T", ["name", "value"], [["a", 0.5], ["long name", None]], caption="Why."))
    assert text.splitlines() == [
        "T",
        "     name      value",
        "        a     0.5000",
        "long name  undefined",
        "Why.",
    ]


def test_a_view_prints_its_section_in_full_then_the_gates_and_verdicts() -> None:
    rep = _attack_report()
    dlaudit.check_report(rep, ["robustness.pgd_linf.acc@0.1 < 0.5"], source="fail-on")
    text = render_terminal(rep, paths={"json": "a.json", "html": None})
    lines = text.splitlines()
    assert lines[0] == "Under PGD-10 linf at eps 0.1, accuracy falls."
    assert "Robust accuracy" in lines and "On 200 samples of digits (test)." in lines
    assert any(line.split() == ["worst_linf", "0.1000", "undefined"] for line in lines)
    # the curve the table shows is not listed again; the other metrics are, with their interval
    metric_lines = [line for line in lines if line.startswith("robustness.")]
    assert [line.split() for line in metric_lines] == [["robustness.clean_acc", "0.9000", "[0.850,", "0.940]"]]
    assert "WARNING  pgd_linf at eps 0.3 was computed, but the ball covers every input" in lines
    assert "json     -> a.json" in lines and not any(line.startswith("html") for line in lines)
    assert lines[-3] == "gate     fails when robustness.pgd_linf.acc@0.1 < 0.5; value 0.25: FAIL"
    assert lines[-2].startswith("Gates failed") and lines[-1].startswith("Health:")


def test_the_outcome_names_the_files_the_skipped_sections_and_the_verdicts() -> None:
    perf = Section(name="performance", title="Performance")
    perf.add_metric("performance.accuracy", 0.98765)
    rep = Report(title="r", sections=[perf, Section.skipped("fairness", "Fairness", "no sensitive features")])
    text = render_terminal(rep, paths={"html": "r.html", "json": "r.json"}, detail=False)
    assert text.splitlines() == [
        "report -> r.html (accuracy 0.9877)",
        "json     -> r.json",
        "skipped  Fairness: no sensitive features",
        "No gates set: nothing for CI to pass or fail.",
        rep.health.text,
    ]


def test_a_section_that_did_not_run_is_one_line_with_its_reason() -> None:
    assert render_section(Section.failed("robustness", "Robustness", "the model has a GRU")) == (
        "robustness error: the model has a GRU"
    )


def test_undefined_metrics_say_why_once_and_user_strings_stay_text() -> None:
    sec = Section(name="fairness", title="Fairness")
    for name in ("fairness.<b>.gap", "fairness.<b>.ratio"):
        sec.add_metric(name, None, note="fewer than two groups")
    text = render_section(sec)
    assert text.count("(fewer than two groups)") == 1 and "fairness.<b>.gap" in text
