"""The demo: models cached and reused, one report per model and a comparison page."""

from __future__ import annotations

from pathlib import Path

import dlaudit
from dlaudit.demo import DEMO_MODELS, DemoModel, run_demo

CHEAP = [
    DemoModel("cnn", "digits CNN", "cnn", "digits"),
    DemoModel("credit-mlp", "credit MLP", "mlp", "synthetic-credit", {"epochs": 2}),
]


def test_demo_writes_reports_and_a_comparison_and_reuses_models(
    tmp_path: Path, digits_cnn: dlaudit.ModelBundle
) -> None:
    dlaudit.save_model(digits_cnn, tmp_path / "demo-cnn.pt")  # as if cached by an earlier run
    (tmp_path / "demo-credit-mlp.pt").write_bytes(b"")  # a damaged cache file is trained again
    first = run_demo(tmp_path, models=CHEAP, checks=["performance", "fairness"], device="cpu")
    assert first.reused == ["cnn"]
    assert (tmp_path / "demo-credit-mlp.pt").stat().st_size > 0
    assert sorted(p.name for p in tmp_path.glob("demo-*")) == [
        "demo-cnn.html",
        "demo-cnn.json",
        "demo-cnn.pt",
        "demo-comparison.html",
        "demo-credit-mlp.html",
        "demo-credit-mlp.json",
        "demo-credit-mlp.pt",
    ]
    page = (tmp_path / "demo-comparison.html").read_text()
    assert '<a href="demo-cnn.html">' in page and '<a href="demo-credit-mlp.html">' in page
    assert "<code>performance.accuracy</code>" in page
    assert first.metrics["credit-mlp"]["performance.accuracy"] > 0.6
    assert dlaudit.load_report(tmp_path / "demo-cnn.json").fast  # the demo audits in the fast configuration
    second = run_demo(tmp_path, models=CHEAP[1:], checks=["performance"], device="cpu")
    assert second.reused == ["credit-mlp"]
    assert second.metrics["credit-mlp"]["performance.accuracy"] == first.metrics["credit-mlp"]["performance.accuracy"]


def test_the_demo_models() -> None:
    assert [(m.name, m.arch, m.data) for m in DEMO_MODELS] == [
        ("cnn", "cnn", "digits"),
        ("cnn-pgd", "cnn", "digits"),
        ("credit-mlp", "mlp", "synthetic-credit"),
    ]
    assert DEMO_MODELS[1].train_kwargs["adversarial"] == "pgd"
