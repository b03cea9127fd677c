"""The HTML renderer on hand-built reports: self-contained, escaped, collapsing, in reading order."""

from __future__ import annotations

import re
from collections.abc import Callable

from markupsafe import escape

from dlaudit import compare_to_baseline
from dlaudit.report import Report
from dlaudit.report.html import card_rows, card_summary, render_comparison_html, render_html

from .report_samples import EVIL


def test_self_contained_no_scripts_no_network(report: Report) -> None:
    html = render_html(report)
    assert "<script" not in html.lower()
    assert "<link" not in html.lower()
    assert not re.search(r"https?://", html)
    assert "default-src 'none'; img-src data:" in html  # the CSP forbids any request and any script
    srcs = re.findall(r'src="([^"]*)"', html)
    assert len(srcs) == 2 and all(s.startswith(("data:image/png;base64,", "data:image/svg+xml;base64,")) for s in srcs)


def test_user_strings_never_become_markup(make_report: Callable[..., Report]) -> None:
    report = make_report(class_name=EVIL)
    html = render_html(report)
    assert "<script>" not in html
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert html.count(escaped) >= 8  # title, card, table cell, finding, reason, command, model file ...
    assert f"<title>dlaudit report: {escaped}.pt</title>" in html


def test_reading_order_scorecard_first_provenance_last(report: Report) -> None:
    html = render_html(report)
    marks = [
        'id="scorecard"',
        'id="model-card"',
        'id="section-performance"',
        'id="section-explain"',
        'id="section-robustness"',
        'id="section-fairness"',
        'id="provenance"',
    ]
    positions = [html.index(m) for m in marks]
    assert positions == sorted(positions)


def test_scorecard_shows_every_gate_and_headline_metric_with_words_not_only_colour(report: Report) -> None:
    html = render_html(report)
    card = html[html.index('id="scorecard"') : html.index('id="model-card"')]
    for g in report.gates:
        assert f"<code>{escape(g.gate)}</code>" in card
    assert card.count("> PASS</span>") == 1 + 1  # one gate holds, and the headline metric it guards
    assert card.count("> FAIL</span>") == 2 + 2  # two fail; one guards a point of a curve (the point and the curve)
    for name in (
        "performance.accuracy",
        "explain.ig.deletion_auc",
        "robustness.pgd_linf.acc@",
        "robustness.noise.acc@",
    ):
        assert f"<code>{name}</code>" in card
    curve = card[card.index("<code>robustness.pgd_linf.acc@</code>") :].split("</tr>", 1)[0]  # a curve reads on one row
    points = re.findall(r'<span class="at">@([0-9.]+)</span> <span class="value">([0-9.]+)</span>', curve)
    assert points == [("0.05", "0.95"), ("0.1", "0.75"), ("0.2", "0.55"), ("0.3", "0.35"), ("0.4", "0.15")]
    assert curve.count("> FAIL</span>") == 2  # the gate at 0.1, on its point and in the curve's gate column
    assert "performance.mean_confidence" not in card  # not a headline metric
    assert html.index("Gates failed: 2 of 3 gates failed.") < html.index('id="scorecard"')  # the verdict opens the page


def test_skipped_and_failed_sections_say_why(report: Report) -> None:
    html = render_html(report)
    assert "<strong>Skipped:</strong> the data has no sensitive features" in html
    assert "<strong>Failed:</strong> RuntimeError: shapes (3,) and (4,) do not match" in html


def test_long_tables_and_metric_lists_collapse(report: Report) -> None:
    html = render_html(report)
    assert '<details class="table"><summary>Adversarial examples (40 rows, collapsed)' in html
    assert '<details class="table" open><summary>Per-class precision and recall (2 rows)' in html
    assert '<details class="metrics"><summary>Metrics (15)' in html  # robustness
    assert '<details class="metrics" open><summary>Metrics (3)' in html


def test_figures_have_captions_and_alt_text(report: Report) -> None:
    html = render_html(report)
    figures = re.findall(r'<figure><img src="[^"]+" alt="([^"]+)"[^>]*><figcaption>([^<]+)</figcaption></figure>', html)
    assert figures == [
        ("An 8 by 8 heat map", "Integrated-gradients attribution map."),
        ("Two falling curves: accuracy under PGD and FGSM as eps grows", "Accuracy against the attack budget."),
    ]


def test_undefined_metrics_read_undefined_with_their_note(report: Report) -> None:
    html = render_html(report)
    assert "undefined: LIME needs at least two samples per class" in html
    row = html[html.index("<code>explain.lime.stability</code></td>") :][:200]
    assert '<td class="num">undefined</td>' in row


def test_provenance_footer(report: Report) -> None:
    html = render_html(report)
    footer = html[html.index('id="provenance"') :]
    for text in (
        "command",
        "<code>dlaudit report cat.pt --fail-on &#39;performance.accuracy &lt; 0.9&#39;</code>",
        "seed",
        "device",
        "12.5 s",
        "versions",
        "2.4.0",
    ):
        assert text in footer


def test_fast_configuration_is_stated(report: Report) -> None:
    assert "Fast configuration." not in render_html(report)
    report.provenance["fast"] = True
    html = render_html(report)
    assert "Fast configuration." in html and "yes: fewer samples and steps (--fast)" in html


def test_baseline_diff_table(make_report: Callable[..., Report]) -> None:
    old, new = make_report(gates=False), make_report(gates=False)
    new.sections[0].metrics[0] = type(new.sections[0].metrics[0])("performance.accuracy", 0.90, higher_is_better=True)
    compare_to_baseline(new, old, max_drop=0.02, label="baseline.json")
    html = render_html(new)
    assert html.index('id="scorecard"') < html.index('id="baseline"') < html.index('id="model-card"')
    section = html[html.index('id="baseline"') : html.index('id="model-card"')]
    assert "<code>baseline.json</code>" in section and "1 regressed" in section
    assert "−0.0778" in section


def test_comparison_page(make_report: Callable[..., Report]) -> None:
    a, b = make_report(), make_report(class_name=EVIL)
    b.sections = b.sections[:1]
    html = render_comparison_html([("model a", a, "a.html"), (f"model {EVIL}", b, "b.html")], title="compare")
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert '<a href="a.html">model a</a>' in html
    assert "<code>robustness.pgd_linf.acc@0.1</code>" in html
    assert html.count('<span class="muted">—</span>') >= 15  # b has no robustness metrics


def test_model_card_rows() -> None:
    card = {
        "architecture": "mlp",
        "arch_kwargs": {"hidden": [128, 64]},
        "input_shape": [104],
        "encoder": {"big": 1},
        "feature_names": [f"f{i}" for i in range(30)],
        "postprocess": None,
    }
    rows = {r.label: r for r in card_rows(card)}
    assert list(rows) == [
        "architecture",
        "arch kwargs",
        "input shape",
        "feature names",
    ]  # encoder hidden, empty left out
    assert rows["arch kwargs"].pairs == (("hidden", "128, 64"),)
    assert rows["feature names"].long and len(rows["feature names"].items) == 30
    assert (
        card_summary({"architecture": "cnn", "input_shape": [1, 8, 8], "num_classes": 10})
        == "cnn · 10 classes · input 1 × 8 × 8"
    )
