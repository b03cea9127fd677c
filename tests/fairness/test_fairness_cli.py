"""The fairness and mitigate commands, end to end."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import dlaudit
from dlaudit.cli import cli


@pytest.fixture(scope="module")
def credit_model(credit_mlp, tmp_path_factory):
    return str(dlaudit.save_model(credit_mlp, tmp_path_factory.mktemp("m") / "credit.pt"))


def _run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_fairness_command_writes_flat_metrics(credit_model, tmp_path):
    out = tmp_path / "f.json"
    res = _run(
        "fairness",
        credit_model,
        "--sensitive",
        "sex,race",
        "--n-boot",
        "100",
        "--json",
        str(out),
        "-o",
        str(tmp_path / "f.html"),
    )
    assert res.exit_code == 0, res.output
    assert "Groups by sex" in res.output and "four-fifths" in res.output
    metrics = json.loads(out.read_text())["metrics"]
    assert metrics["performance.accuracy"] > 0.7
    assert metrics["fairness.sex.demographic_parity_difference"] > 0.1
    assert metrics["fairness.race.demographic_parity_difference"] is None  # no such column: undefined, not a crash
    assert "column 'race' is not in the data" in res.output
    assert (tmp_path / "f.html").is_file()


def test_fairness_gate_fails_with_exit_1(credit_model):
    res = _run(
        "fairness",
        credit_model,
        "--sensitive",
        "sex",
        "--n-boot",
        "0",
        "--fail-on",
        "fairness.sex.demographic_parity_difference >= 0.05",
    )
    assert res.exit_code == 1 and "FAIL" in res.output


def test_fairness_bins_option(credit_model, tmp_path):
    out = tmp_path / "b.json"
    res = _run("fairness", credit_model, "--sensitive", "age", "--bins", "age=40", "--n-boot", "0", "--json", str(out))
    assert res.exit_code == 0, res.output
    assert {"fairness.age.selection_rate@under_40", "fairness.age.selection_rate@40_and_over"} <= set(
        json.loads(out.read_text())["metrics"]
    )
    assert _run("fairness", credit_model, "--bins", "age").exit_code == 2


def test_two_named_features_get_their_intersection_unless_switched_off(credit_model, tmp_path):
    def metrics(*extra):
        out = tmp_path / "i.json"
        res = _run("fairness", credit_model, "--sensitive", "sex,age", "--n-boot", "0", "--json", str(out), *extra)
        assert res.exit_code in (0, 1), res.output
        return json.loads(out.read_text())["metrics"]

    both = metrics()
    assert "fairness.sex&age.demographic_parity_difference" in both
    assert both["fairness.sex.demographic_parity_difference"] is not None
    assert not any(k.startswith("fairness.sex&age.") for k in metrics("--no-intersection"))
    one = tmp_path / "one.json"
    assert _run("fairness", credit_model, "--sensitive", "sex", "--n-boot", "0", "--json", str(one)).exit_code in (0, 1)
    assert not any("&" in k for k in json.loads(one.read_text())["metrics"])


def test_fairness_on_image_data_is_skipped(untrained_cnn, tmp_path):
    path = str(dlaudit.save_model(untrained_cnn, tmp_path / "cnn.pt"))
    res = _run("fairness", path)
    assert res.exit_code == 0 and "fairness skipped" in res.output and "image data" in res.output


def test_mitigate_command(credit_model, tmp_path):
    out = tmp_path / "thr.pt"
    res = _run(
        "mitigate",
        credit_model,
        "--sensitive",
        "sex",
        "--method",
        "threshold",
        "-o",
        str(out),
        "--json",
        str(tmp_path / "m.json"),
    )
    assert res.exit_code == 0, res.output
    assert "Before and after mitigation (sex)" in res.output and "threshold" in res.output
    loaded = dlaudit.load_model(out, device="cpu")
    assert loaded.card.postprocess["kind"] == "group-thresholds"
    saved = json.loads((tmp_path / "m.json").read_text())
    metrics = saved["metrics"]
    assert (
        metrics["mitigation.threshold.demographic_parity_difference"]
        < metrics["mitigation.original.demographic_parity_difference"]
    )
    # the same JSON shape as every command: flat metrics, sections (with findings), provenance
    assert {"metrics", "sections", "provenance", "gates", "health"} <= set(saved)
    assert saved["sections"][0]["name"] == "mitigation" and "findings" in saved["sections"][0]
    assert {"command", "seed", "model", "data", "versions", "mitigation"} <= set(saved["provenance"])


def test_mitigate_gates_like_every_command(credit_model, tmp_path):
    res = _run(
        "mitigate", credit_model, "--sensitive", "sex", "--method", "threshold", "-o", str(tmp_path / "t.pt"),
        "--fail-on", "mitigation.threshold.accuracy > 1.5", "--fail-on", "mitigation.original.accuracy < 1.5",
    )  # fmt: skip
    assert res.exit_code == 1, res.output
    assert "mitigation.original.accuracy < 1.5" in res.output and "FAIL" in res.output


def test_mitigate_needs_a_sensitive_column(credit_model, tmp_path):
    res = CliRunner().invoke(cli, ["mitigate", credit_model, "--method", "threshold", "-o", str(tmp_path / "x.pt")])
    assert res.exit_code == 2 and "--sensitive" in res.output
