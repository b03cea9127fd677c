"""Gates: parsing, the four operators, undefined and missing metrics."""

from __future__ import annotations

import operator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlaudit.errors import GateError
from dlaudit.report.gates import MALFORMED, Gate, check_gates, parse_gate


@pytest.mark.parametrize(
    ("text", "gate"),
    [
        ("performance.accuracy >= 0.95", Gate("performance.accuracy", ">=", 0.95)),
        ("robustness.pgd_linf.acc@0.1<0.6", Gate("robustness.pgd_linf.acc@0.1", "<", 0.6)),
        (
            "  fairness.sex.demographic_parity_difference <= .1 ",
            Gate("fairness.sex.demographic_parity_difference", "<=", 0.1),
        ),
        ("explain.ig.deletion_auc > -1e-3", Gate("explain.ig.deletion_auc", ">", -0.001)),
    ],
)
def test_parse(text: str, gate: Gate) -> None:
    assert parse_gate(text) == gate


@pytest.mark.parametrize(
    "text",
    [
        "performance.accuracy",
        "performance.accuracy == 0.9",
        "performance.accuracy >= high",
        ">= 0.9",
        "a b >= 1",
        "a >= 1 2",
    ],
)
def test_malformed_gate_is_an_error_with_the_documented_message(text: str) -> None:
    with pytest.raises(GateError) as err:
        parse_gate(text)
    assert str(err.value) == MALFORMED.format(gate=text)


@pytest.mark.parametrize(
    ("op", "fn"), [("<", operator.lt), ("<=", operator.le), (">", operator.gt), (">=", operator.ge)]
)
@pytest.mark.parametrize("value", [0.4, 0.5, 0.6])
def test_operators(op: str, fn: object, value: float) -> None:
    (result,) = check_gates([f"m {op} 0.5"], {"m": value})
    assert result.passed is not fn(value, 0.5)  # the gate is the condition to fail on
    assert result.value == value and result.threshold == 0.5 and result.gate == f"m {op} 0.5"


def test_undefined_metric_fails_its_gate() -> None:
    (result,) = check_gates(["m >= 0"], {"m": None})
    assert not result.passed and result.value is None and result.message == "metric is undefined"


def test_missing_metric_is_an_error_naming_close_ones_or_the_reason() -> None:
    metrics = {"robustness.pgd_linf.acc@0.1": 0.5, "robustness.pgd_linf.acc@0.2": 0.3}
    with pytest.raises(
        GateError,
        match=r"names metric 'robustness.pgd_linf.acc@0.3', which was not computed; computed ones like it: robustness.pgd_linf.acc@0.1",
    ):
        check_gates(["robustness.pgd_linf.acc@0.3 < 0.1"], metrics)
    with pytest.raises(GateError, match="the fairness section was skipped: no sensitive features"):
        check_gates(
            ["fairness.sex.demographic_parity_difference > 0.1"],
            metrics,
            missing_reasons={"fairness": "the fairness section was skipped: no sensitive features"},
        )
    with pytest.raises(GateError, match=r"run the check that computes it \(--checks\)"):
        check_gates(["explain.ig.deletion_auc > 0.3"], metrics)


def test_no_gate_is_evaluated_when_one_names_a_missing_metric() -> None:
    with pytest.raises(GateError):
        check_gates(["m >= 0", "x >= 0"], {"m": 1.0})


names = st.from_regex(r"[a-z]{1,8}(\.[a-z_]{1,8}){0,2}(@0\.[0-9]{1,2})?", fullmatch=True)
thresholds = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@given(name=names, op=st.sampled_from(["<", "<=", ">", ">="]), threshold=thresholds, value=thresholds)
def test_a_gate_reads_back_from_its_text_and_agrees_with_python(
    name: str, op: str, threshold: float, value: float
) -> None:
    gate = Gate(name, op, threshold)
    again = parse_gate(str(gate))
    assert again == gate
    fn = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}[op]
    assert gate.fails(value) is fn(value, threshold)
