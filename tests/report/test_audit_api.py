"""``dlaudit.audit``: sections in report order, skipped with reasons, provenance."""

from __future__ import annotations

import pytest

import dlaudit
from dlaudit.analysis import Analysis, get_analysis
from dlaudit.errors import AnalysisError, ConfigError


def unavailable(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Make the registered analysis ``name`` refuse to run, as one missing from a build would."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AnalysisError("this analysis is not available in this dlaudit build")

    a = get_analysis(name)
    monkeypatch.setitem(dlaudit.analysis._REGISTRY, name, Analysis(a.name, a.title, refuse, a.order, a.default))


def test_audit_orders_sections_and_records_provenance(
    digits_cnn: dlaudit.ModelBundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    unavailable(monkeypatch, "fairness")  # as on main before the other sections land
    report = dlaudit.audit(digits_cnn, checks="fairness, performance", fast=True, seed=7, device="cpu", command="test")
    assert [(s.name, s.status) for s in report.sections] == [("performance", "ok"), ("fairness", "skipped")]
    assert report.sections[1].reason == "this analysis is not available in this dlaudit build"
    p = report.provenance
    assert (p["seed"], p["fast"], p["device"], p["command"]) == (7, True, "cpu", "test")
    assert p["data"] == {"name": "digits", "split": "test", "n": len(dlaudit.load_data("digits"))}
    assert set(p["seconds_per_section"]) == {"performance", "fairness"} and p["total_seconds"] >= 0
    assert p["versions"]["dlaudit"] == dlaudit.__version__ and "torch" in p["versions"]
    assert report.fast and report.passed
    assert report.card["architecture"] == "cnn"


def test_audit_takes_audit_data_and_records_progress(digits_cnn: dlaudit.ModelBundle) -> None:
    data = dlaudit.load_data("digits", bundle=digits_cnn, limit=60)
    stages: list[tuple[str, int, int]] = []
    report = dlaudit.audit(digits_cnn, data, checks=["performance"], device="cpu", progress=lambda *a: stages.append(a))
    assert report.provenance["data"]["n"] == 60
    assert ("check:performance", 0, 1) in stages and ("check:performance", 1, 1) in stages


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"checks": "performance,speed"},
            "unknown check(s) speed; choose from: performance, explain, robustness, fairness",
        ),
        ({"checks": " , "}, "no checks selected"),
        ({"checks": "performance", "params": {"sped": {}}}, "params given for unknown check(s) sped"),
    ],
)
def test_bad_checks(digits_cnn: dlaudit.ModelBundle, kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        dlaudit.audit(digits_cnn, device="cpu", **kwargs)
    assert message in str(err.value)
