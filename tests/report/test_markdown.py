"""The Markdown summary (PR comment / $GITHUB_STEP_SUMMARY)."""

from __future__ import annotations

from collections.abc import Callable

from dlaudit import compare_to_baseline
from dlaudit.report import Finding, Report
from dlaudit.report.markdown import MAX_FINDINGS, code, render_markdown, text

from .report_samples import EVIL


def _table_rows(md: str, heading: str) -> list[str]:
    block = md.split(f"### {heading}\n\n", 1)[1].split("\n\n", 1)[0]
    return block.splitlines()


def test_summary_has_verdicts_gates_headline_metrics_sections_and_findings(report: Report) -> None:
    md = render_markdown(report)
    assert md.startswith(
        "## ❌ dlaudit report: cat.pt\n\n**Gates failed: 2 of 3 gates failed.**\n\n"
        "❌ Health: fail — 2 failing findings and 2 warnings; worst: Explanations: guided backprop barely changes"
    )
    gates = _table_rows(md, "Gates")
    assert gates[0] == "| result | gate (fails when its condition is true) | from |"
    assert gates[2] == "| ✅ pass | fails when `performance.accuracy < 0.95`; value 0.9778: pass | fail-on |"
    assert (
        gates[3] == "| ❌ **FAIL** | fails when `robustness.pgd_linf.acc@0.1 < 0.8`; value 0.75: **FAIL** | fail-on |"
    )
    assert (
        gates[4]
        == "| ❌ **FAIL** | fails when `explain.lime.stability <= 0.5`; value undefined: **FAIL** (metric is undefined) | config |"
    )
    headline = _table_rows(md, "Headline metrics by section")
    assert (
        "| Share of correctly classified samples<br>`performance.accuracy` | 0.9778 | 0.96 – 0.988 | ↑ higher | – | ✅ pass |"
        in headline
    )
    assert "| **Explanations** (completed, findings: ❌ fail) |  |  |  |  |  |" in headline
    assert len(headline) == 2 + 3 + 4 + 3  # header, rule, 3 sections with headline metrics, 4 single metrics, 3 curves
    assert (
        "| Pgd linf · acc<br>`robustness.pgd_linf.acc@` | @0.05: 0.95 · @0.1: 0.75 ❌ · @0.2: 0.55 · @0.3: 0.35 · @0.4: 0.15 |  | ↑ higher | – | ❌ **FAIL** |"
        in headline
    )
    sections = _table_rows(md, "Sections")
    assert (
        "| Explanations | ✅ completed | ❌ fail | 1 ❌ fail, 1 info | Integrated gradients is the most faithful method. |"
        in sections
    )
    assert (
        "| Fairness | ⏭️ skipped | – | none | the data has no sensitive features; pass --sensitive COL (e.g. cat) |"
        in sections
    )
    assert "| Calibration | ❌ failed | – | 1 ❌ fail | RuntimeError: shapes (3,) and (4,) do not match |" in sections
    assert "<details><summary>4 findings to look at</summary>" in md
    assert "- ❌ fail (Explanations): guided backprop barely changes when the weights are randomised" in md
    assert md.rstrip().endswith("dlaudit report cat.pt --fail-on 'performance.accuracy &lt; 0.9'</sub>")


def test_user_text_is_inert(make_report: Callable[..., Report]) -> None:
    md = render_markdown(make_report(class_name=EVIL + "|[x](http://e.vil)*"))
    assert "<script>" not in md and "[x](http" not in md and "\\[x\\](http" in md
    for line in md.splitlines():
        if line.startswith("| "):  # every table row keeps its number of cells
            cells = line.replace("\\|", "").count("|")
            assert cells in (4, 6, 7, 8, 9), line
    assert text("a|b <i> *c*") == "a\\|b &lt;i&gt; \\*c\\*"
    assert code("x`|y") == "`x'\\|y`"


def test_fast_no_gates_and_baseline(make_report: Callable[..., Report]) -> None:
    rep = make_report(gates=False)
    rep.provenance["fast"] = True
    md = render_markdown(rep)
    assert "No gates were set." in md and "_Fast configuration" in md and md.startswith("## ℹ️ ")
    old = make_report(gates=False)
    rep.sections[0].metrics[0] = type(rep.sections[0].metrics[0])("performance.accuracy", 0.5, higher_is_better=True)
    compare_to_baseline(rep, old, label="main.json")
    md = render_markdown(rep)
    assert "### Baseline: ❌ 1 regression" in md
    assert "baseline main.json: 21 metrics compared, 1 regression." in md
    assert "| `performance.accuracy` | 0.9778 | 0.5 | −0.478 | ❌ **regression** |" in md
    assert md.count("❌ **regression**") == 1  # the regressions, not every compared metric


def test_long_finding_lists_are_cut(make_report: Callable[..., Report]) -> None:
    rep = make_report()
    rep.sections[0].findings.extend(Finding("warning", f"w{i}") for i in range(30))
    md = render_markdown(rep)
    assert md.count("\n- ") == MAX_FINDINGS + 1 and "… and 14 more in the HTML report" in md
