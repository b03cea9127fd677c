"""No number may depend on a clock: the same report with a clock running 100,000x faster gives the same metrics.

A slow (busy) machine is simulated by a clock that reads over a day for every real second:
``time.perf_counter``, ``time.monotonic`` and ``time.time`` everywhere in the process. Anything
that stopped on elapsed time (randomized smoothing did) or chose work by timing would then
compute less or other work and report other numbers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

import dlaudit


def _scaled(real: Callable[[], float], factor: float) -> Callable[[], float]:
    origin = real()
    return lambda: origin + factor * (real() - origin)


@pytest.fixture
def slow_machine(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("perf_counter", "monotonic", "time"):
        monkeypatch.setattr(time, name, _scaled(getattr(time, name), 100_000.0))
    yield


def _metrics(bundle: dlaudit.ModelBundle) -> dict[str, float | None]:
    report = dlaudit.audit(bundle, "digits", checks="performance,robustness,explain", fast=True, seed=3, device="cpu")
    return report.metrics


@pytest.mark.slow
def test_a_much_slower_clock_gives_the_same_metrics(digits_mlp: dlaudit.ModelBundle, request) -> None:
    quiet = _metrics(digits_mlp)
    assert any(name.startswith("robustness.smoothing_l2.acc@") for name in quiet)  # smoothing ran: it used a clock
    request.getfixturevalue("slow_machine")
    busy = _metrics(digits_mlp)
    assert busy == quiet


def test_smoothing_is_planned_from_counted_work_not_time() -> None:
    from dlaudit.robust.certified import MIN_SMOOTHING_INPUTS, planned_inputs

    assert planned_inputs(100, 1_000, 10_100, 1e13) == (100, "")
    count, why = planned_inputs(100, 74_000_000, 10_100, 1e13)  # resnet18 at 32x32
    assert count == 13 and "planned 13 of 100 inputs" in why
    count, why = planned_inputs(100, 3_600_000_000, 10_100, 1e13)  # resnet18 at 224x224
    assert count == 0 < MIN_SMOOTHING_INPUTS and "dlaudit certify" in why
