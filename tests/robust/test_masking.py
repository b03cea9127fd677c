"""Gradient-masking checks: pure functions on hand-made numbers, and a model that masks by construction."""

from __future__ import annotations

import torch

import dlaudit
from dlaudit.robust.curves import Curve
from dlaudit.robust.masking import (
    check_chance,
    check_monotone,
    check_more_effort,
    check_pgd_vs_fgsm,
    masking_findings,
    tolerance,
)


def _curve(name: str, eps: list[float], acc: list[float]) -> Curve:
    return Curve(name, tuple(eps), tuple(acc), tuple(torch.ones(1, dtype=torch.bool) for _ in eps))


def test_tolerance() -> None:
    assert tolerance(1000) == 0.01
    assert tolerance(100) == 0.02


def test_pgd_weaker_than_fgsm_is_a_warning() -> None:
    fgsm = _curve("fgsm_linf", [0, 0.1, 0.3], [0.9, 0.5, 0.2])
    good = check_pgd_vs_fgsm(fgsm, _curve("pgd_linf", [0, 0.1, 0.3], [0.9, 0.4, 0.205]), 1000)
    assert good.passed is True and good.finding() is None
    bad = check_pgd_vs_fgsm(fgsm, _curve("pgd_linf", [0, 0.1, 0.3], [0.9, 0.4, 0.35]), 1000)
    assert bad.passed is False
    finding = bad.finding()
    assert finding.severity == "warning"
    assert "PGD is weaker than FGSM at eps 0.3 (accuracy 0.350 against 0.200)" in finding.message
    assert "overstate" in finding.message and "arXiv:1802.00420" in finding.evidence


def test_accuracy_rising_with_eps_is_a_warning() -> None:
    assert check_monotone(_curve("pgd_l2", [0, 0.5, 1], [0.9, 0.5, 0.1]), 500).passed is True
    bad = check_monotone(_curve("pgd_l2", [0, 0.5, 1], [0.9, 0.3, 0.5]), 500)
    assert bad.passed is False
    assert "rises from 0.300 at eps 0.5 to 0.500 at eps 1" in bad.finding().message


def test_chance_and_more_effort() -> None:
    assert check_chance(0.15, 0.5, 0.1, 1000).passed is True
    high = check_chance(0.6, 0.5, 0.1, 1000)
    assert high.passed is False and "far above chance (0.100)" in high.meaning
    assert check_more_effort(0.4, 0.405, what="80 steps", base_what="40 steps", eps=0.1, n=1000).passed is True
    worse = check_more_effort(0.4, 0.5, what="3 restarts", base_what="1 restart", eps=0.1, n=1000)
    assert worse.name == "more-restarts" and worse.passed is False
    assert len(masking_findings([high, worse, check_chance(0.1, 0.5, 0.1, 1000)])) == 2


def test_masked_model_is_flagged(masked_bundle_and_data) -> None:
    bundle, data = masked_bundle_and_data
    sec = dlaudit.robustness(bundle, data, fast=True, noise=[], min_eps_samples=0, examples=0)
    metrics = {m.name: m.value for m in sec.metrics}
    assert metrics["robustness.clean_acc"] == 1.0
    # zero gradients: PGD cannot move, so its 1.0 is no robustness figure: undefined, with the measured value in the note
    pgd = next(m for m in sec.metrics if m.name == "robustness.pgd_linf.acc@0.3")
    assert pgd.value is None and "gradient masking suspected" in pgd.note and "measured 1.0000" in pgd.note
    assert metrics["robustness.worst_linf.acc@0.3"] is None
    assert metrics["robustness.masking.violations"] >= 1
    messages = [f.message for f in sec.findings if f.check == "masking:large-eps"]
    assert messages and "gradient masking suspected" in messages[0] and "far above chance (0.500)" in messages[0]
    grads = next(f for f in sec.findings if f.check == "masking:gradients")
    assert grads.severity == "fail" and "zero or not finite" in grads.message
