"""mitigate: every method fitted on train, every model measured on the same held-out data."""

from __future__ import annotations

import pytest

import dlaudit
from dlaudit.errors import ConfigError, DataError
from dlaudit.fairness.mitigate import mitigate_bundle
from dlaudit.paths import method_outputs as output_paths


def test_reweigh_and_threshold_cut_the_injected_disparity(credit_mlp, credit_splits, tmp_path):
    result = dlaudit.mitigate(
        credit_mlp, sensitive="sex", method="reweigh,threshold", output=tmp_path / "m.pt", n_boot=100
    )
    assert [r["model"] for r in result.rows] == ["original", "reweigh", "threshold"]
    base = result.rows[0]
    for row in result.rows[1:]:
        assert row["demographic_parity_difference"] < base["demographic_parity_difference"] / 2, row
        assert row["accuracy"] >= base["accuracy"] - 0.03
    assert result.saved == {"reweigh": str(tmp_path / "m-reweigh.pt"), "threshold": str(tmp_path / "m-threshold.pt")}
    for method, path in result.saved.items():
        loaded = dlaudit.load_model(path, device="cpu")
        assert loaded.card.training["mitigation"]["method"] == method
        assert loaded.card.metrics["test_accuracy"] == pytest.approx(
            next(r["accuracy"] for r in result.rows if r["model"] == method)
        )
        assert (loaded.predict(credit_splits.test.x) == result.models[method].predict(credit_splits.test.x)).all()
    metrics = result.metrics
    assert metrics["mitigation.original.accuracy"] == base["accuracy"]
    assert "mitigation.threshold.demographic_parity_difference" in metrics
    sec = result.section()
    assert sec.tables[0].columns[:4] == ["model", "accuracy", "accuracy change", "DP difference"]
    assert len(sec.figures) == 1 and "accuracy against" in sec.figures[0].caption.lower()
    html = dlaudit.save_report(result.report(), tmp_path / "m.html")
    assert "Before and after mitigation" in html.read_text()


def test_mitigation_takes_one_existing_feature(credit_mlp, credit_splits):
    with pytest.raises(ConfigError, match="one sensitive feature at a time"):
        mitigate_bundle(credit_mlp, credit_splits, sensitive="sex,age", methods=["threshold"])
    with pytest.raises(ConfigError, match="unknown mitigation method"):
        mitigate_bundle(credit_mlp, credit_splits, sensitive="sex", methods=["magic"])
    with pytest.raises(ConfigError, match="cannot mitigate over 'zip'"):
        mitigate_bundle(credit_mlp, credit_splits, sensitive="zip", methods=["threshold"])
    with pytest.raises(DataError, match="unknown sensitive column"):
        dlaudit.mitigate(credit_mlp, sensitive="zip", method="threshold")


def test_output_paths():
    assert output_paths("out/m.pt", ["threshold"]) == {"threshold": "out/m.pt"}
    assert output_paths("out/m.pt", ["reweigh", "expgrad"]) == {
        "reweigh": "out/m-reweigh.pt",
        "expgrad": "out/m-expgrad.pt",
    }


def test_a_mitigation_that_makes_another_fairness_metric_worse_is_a_warning(credit_mlp):
    from dlaudit.fairness.mitigate import MitigationResult

    rows = [
        {
            "model": "original",
            "accuracy": 0.86,
            "demographic_parity_difference": 0.20,
            "demographic_parity_ratio": 0.70,
            "equalized_odds_difference": 0.09,
        },
        {
            "model": "threshold",
            "accuracy": 0.84,
            "demographic_parity_difference": 0.02,
            "demographic_parity_ratio": 0.97,
            "equalized_odds_difference": 0.30,
            "equalized_odds_difference_lo": 0.25,
            "equalized_odds_difference_hi": 0.35,
        },
    ]
    info = {"threshold": {"method": "threshold", "constraint": "demographic_parity"}}
    result = MitigationResult("sex", credit_mlp, {}, rows, "synthetic-credit", 1000, info, provenance={"seed": 0})
    warnings = [f for f in result.section().findings if f.severity == "warning"]
    assert [f.message for f in warnings] == [
        "threshold makes the equalized odds difference over sex worse: 0.090 -> 0.300; it aims at demographic parity, "
        "and fairness criteria can pull against each other"
    ]
    assert warnings[0].evidence == "threshold 95% CI [0.250, 0.350]" and warnings[0].check == "mitigation-worse"
    rep = result.report()
    assert rep.health.status == "warning" and rep.provenance == {"seed": 0}


def test_the_mitigation_report_has_its_provenance(credit_mlp, tmp_path):
    result = dlaudit.mitigate(credit_mlp, sensitive="sex", method="threshold", n_boot=20)
    p = result.report().provenance
    assert p["seed"] == 0 and p["data"]["name"] == "synthetic-credit" and p["data"]["split"] == "test"
    assert p["mitigation"]["methods"] == ["threshold"] and p["mitigation"]["constraint"] == "demographic_parity"
    assert "torch" in p["versions"] and p["generated"].endswith("UTC") and p["total_seconds"] >= 0
    html = dlaudit.save_report(result.report(), tmp_path / "m.html").read_text()
    footer = html[html.index('id="provenance"') :]
    assert "synthetic-credit" in footer and "demographic_parity" in footer
