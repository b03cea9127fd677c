"""The robustness estimate prices early stopping from the steps its probe counted (no clock in these tests)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest
import torch

from dlaudit.data import for_card


def test_the_engine_counts_the_steps_it_takes(digits_mlp) -> None:
    from dlaudit.robust.attacks import pgd
    from dlaudit.robust.attacks.engine import counting_steps

    data = for_card(digits_mlp.card, "digits", split="audit")
    x, y = data.x[:16].float(), data.y[:16]
    with counting_steps() as every:
        pgd(digits_mlp, x, y, eps=0.3, steps=5, seed=0, early_stop=False)
    assert every == [16 * 5, 5]  # every sample, every step, one batch
    with counting_steps() as early:
        adv = pgd(digits_mlp, x, y, eps=0.3, steps=5, seed=0)
    with torch.no_grad():
        robust = int((digits_mlp.module(adv).argmax(1) == y).sum())
    assert 5 * robust <= early[0] < 16 * 5 and early[1] <= 5  # a fooled sample leaves, a robust one runs every step
    with counting_steps() as outside:
        pass
    pgd(digits_mlp, x, y, eps=0.3, steps=5, seed=0)  # nothing counts outside the block
    assert outside == [0, 0]


def test_early_stopping_pgd_is_priced_from_the_counted_steps(digits_mlp) -> None:
    from dlaudit.robust.analysis import CALL_FACTOR, Settings, _work

    data = for_card(digits_mlp.card, "digits", split="audit")
    s = Settings.build(digits_mlp, fast=True, scope="attacks", attacks=["pgd_linf"], eps=(0.1,), n=64)
    costs = {"grad": 1e-4, "forward": 1e-5, "call": 1e-3, "batch": 256.0, "clean_acc": 0.75, "survive_linf@0.1": 0.0}
    half = _work(digits_mlp, data, s, costs)[0]  # not counted: fooled inputs run half the steps
    counted = {**costs, "steps_linf@0.1": 0.2, "iterations_linf@0.1": 0.5}
    share = 0.75 * 0.2 + 0.25 / 10  # a misclassified input leaves after one step
    assert _work(digits_mlp, data, s, counted)[0] == pytest.approx(
        64 * 10 * share * 1e-4 + 10 * 0.5 * CALL_FACTOR * 1e-3
    )
    assert _work(digits_mlp, data, s, counted)[0] < half
    robust = {**counted, "survive_linf@0.1": 0.1}  # 64 inputs, a tenth of 0.75 robust: a batch runs every step
    full = 1 - (1 - 0.075) ** 64
    calls = 10 * (full + (1 - full) * 0.5)
    assert _work(digits_mlp, data, s, robust)[0] == pytest.approx(64 * 10 * share * 1e-4 + calls * CALL_FACTOR * 1e-3)
    restarts = Settings.build(
        digits_mlp, fast=True, scope="attacks", attacks=["pgd_linf"], eps=(0.1,), n=64, restarts=3
    )
    more = _work(digits_mlp, data, restarts, robust)[0] - _work(digits_mlp, data, s, robust)[0]
    assert more == pytest.approx(2 * 64 * 10 * 0.075 * 1e-4 + 2 * 10 * full * CALL_FACTOR * 1e-3)  # on the robust


def test_the_masking_checks_and_autoattack_are_priced_from_the_counted_steps(digits_mlp) -> None:
    from dlaudit.robust.analysis import Settings, _autoattack_work, _work

    data = for_card(digits_mlp.card, "digits", split="audit")
    s = Settings.build(digits_mlp, fast=True, eps=(0.1, 0.3), n=64, smoothing=False)
    costs = {"grad": 1e-4, "forward": 0.0, "call": 0.0, "batch": 256.0, "clean_acc": 1.0}
    shares = {f"survive_{k}": 0.0 for k in ("linf@0.1", "linf@0.3", "l2@0.5", "l2@1", "l2@1.5", "l2@2")}
    counted = {**costs, **shares, **{k.replace("survive", "steps"): 0.1 for k in shares}}

    def masking(c: dict[str, float]) -> float:
        return _work(digits_mlp, data, s, c)[0] - _work(digits_mlp, data, dataclasses.replace(s, masking=False), c)[0]

    assert masking({**costs, **shares}) == pytest.approx(64 * 10 * 4 * 1e-4)  # not counted: every step, 4 runs
    # counted: the large budget at the largest one's share, twice the steps and three restarts at the middle one's
    # (the restarts after the first only on the inputs left robust: none here)
    assert masking(counted) == pytest.approx(64 * 10 * (0.1 + 2 * 0.1 + 0.1) * 1e-4)
    aa = Settings.build(digits_mlp, fast=False, eps=(0.1,), autoattack="fast")  # APGD-CE 25, APGD-T 3 x 25
    few = {**costs, "survive_linf@0.1": 0.25, "steps_linf@0.1": 0.4}
    assert _autoattack_work(aa, 512, 10, few)[0] == round(25 * 512 * 0.4) + 128 * 75  # APGD-CE exits early too
    assert _autoattack_work(aa, 512, 10, {**few, "steps_linf@0.1": 0.1})[0] == 128 * 25 + 128 * 75  # the robust run all


def test_the_probe_counts_pgd_steps_at_each_budget(digits_mlp) -> None:
    from dlaudit.robust.analysis import Settings, overhead_costs

    data = for_card(digits_mlp.card, "digits", split="audit")
    s = Settings.build(digits_mlp, fast=True, eps=(0.1, 0.3), eps_l2=(), n=40, autoattack=None)
    costs = overhead_costs(digits_mlp, data, s)
    for eps in ("0.1", "0.3"):
        assert costs[f"survive_linf@{eps}"] <= costs[f"steps_linf@{eps}"] <= 1.0
        assert 0.0 < costs[f"iterations_linf@{eps}"] <= 1.0
    assert costs["steps_linf@0.3"] <= costs["steps_linf@0.1"]  # a larger budget fools sooner


def test_a_busy_machine_slows_the_estimate_by_what_the_probe_did_not_feel(digits_mlp) -> None:
    from dlaudit.robust.analysis import Settings, estimate, slowdown

    assert slowdown(1.0, 0.5, 2) == 1.0  # a quiet machine: a core for each
    assert slowdown(1.0, 4.0, 2) == pytest.approx(2.5)  # four others want a core: a fair share is 2 / 5 of one
    assert slowdown(0.4, 4.0, 2) == 1.0  # the probe got its share already (long passes): not slowed twice
    assert slowdown(0.6, 4.0, 2) == pytest.approx(1.5)
    assert slowdown(1.7, 0.0, 16) == 1.0  # several threads read over 1: at most a core
    data = for_card(digits_mlp.card, "digits", split="audit")
    s = Settings.build(digits_mlp, fast=True, scope="attacks", attacks=["pgd_linf"], eps=(0.1,), n=64)
    costs = {"grad": 1e-4, "forward": 1e-5, "call": 1e-3, "batch": 256.0, "clean_acc": 1.0, "survive_linf@0.1": 0.0}
    quiet, what = estimate(digits_mlp, data, s, costs)
    busy, busy_what = estimate(digits_mlp, data, s, {**costs, "slowdown": 2.5})
    assert busy == pytest.approx(2.5 * quiet) and "times 2.5 for the machine's load" in busy_what
    assert "load" not in what


@pytest.mark.skipif(not Path("/proc/loadavg").exists(), reason="reads Linux's /proc")
def test_the_load_is_the_threads_of_other_processes_that_want_a_cpu_now() -> None:
    """Another process spinning is counted whatever the one-minute load average says; this process is not."""
    import subprocess
    import sys

    from dlaudit.plan import _runnable_now, competing_load

    runnable, own = _runnable_now()
    assert own >= 1 and runnable >= own
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.2)
        assert competing_load() >= 1.0
    finally:
        spin.kill()
        spin.wait()


def test_without_proc_the_load_is_the_load_average(monkeypatch) -> None:
    import os

    import dlaudit.plan as plan

    monkeypatch.setattr(plan, "_runnable_now", lambda: None)
    monkeypatch.setattr(os, "getloadavg", lambda: (3.5, 2.0, 1.0))
    assert plan.competing_load() == 3.5


def test_the_minimal_budget_search_is_priced_on_the_correctly_classified_samples(digits_mlp) -> None:
    """``_min_eps`` searches only the samples the model gets right: a model right on a quarter of them costs a
    quarter of the search (a barely trained resnet18, right on 26%, was priced 20,000 steps for about 4,600)."""
    from dlaudit.robust.analysis import Settings, _work

    data = for_card(digits_mlp.card, "digits", split="audit")
    s = Settings.build(digits_mlp, fast=True, n=64)
    s = dataclasses.replace(
        s, attacks=(), autoattack=None, smoothing=False, corruptions=False, certify=None, masking=False
    )
    assert s.min_eps_samples > 16
    costs = {"grad": 1e-4, "forward": 1e-5, "call": 0.0, "batch": 256.0}
    right = _work(digits_mlp, data, s, {**costs, "clean_acc": 1.0})[0]
    quarter = _work(digits_mlp, data, s, {**costs, "clean_acc": 0.25})[0]
    searched = (s.bisection + 2) * s.min_eps_steps * costs["grad"]
    assert right - quarter == pytest.approx((min(s.min_eps_samples, 64) - 16) * searched)


def test_the_minimal_budget_search_is_priced_from_the_probes_survival_curve(digits_mlp) -> None:
    """Samples fooled at every probed budget fall early in most bisection rounds; samples robust at every budget run
    one full search at ``eps_max`` and leave; without a probe every step of every run is priced (the old bound)."""
    from dlaudit.robust.analysis import Settings, _min_eps_work

    s = Settings.build(digits_mlp, fast=True)
    m, runs = 40, s.bisection + 2
    bound = m * runs * s.min_eps_steps
    assert _min_eps_work(m, s, 0.5, {"batch": 256.0})[0] == bound
    probe = {"batch": 256.0}
    for e in s.eps:
        if e > 0:
            probe.update({f"survive_linf@{e:g}": 0.0, f"steps_linf@{e:g}": 0.1})
    weak = _min_eps_work(m, s, 0.5, probe)[0]
    assert m * (s.bisection + 1) * s.min_eps_steps * 0.1 <= weak < 0.6 * bound
    robust = {k: (1.0 if k.startswith("survive") else v) for k, v in probe.items()}
    assert _min_eps_work(m, s, 0.5, robust)[0] == pytest.approx(m * s.min_eps_steps)  # one full run, no bisection
    budgets = sorted(e for e in s.eps if e > 0)
    assert len(budgets) >= 2
    later = dict(probe)  # budgets spread over the probed range: more midpoints fall below them, and run every step
    for i, e in enumerate(budgets):
        later[f"survive_linf@{e:g}"] = 1.0 - (i + 1) / len(budgets)
    assert weak < _min_eps_work(m, s, 0.5, later)[0] < bound


def test_the_minimal_budget_price_follows_the_steps_the_search_takes(digits_mlp) -> None:
    """Priced from the probe's survival curve, the search's steps are within a factor 1.5 of the ones it takes (the
    old bound, every step of every run, was 2.0x them on this model: 3,200 for 1,600, now 2,021)."""
    from dlaudit.robust.analysis import LARGE_EPS, Settings, _min_eps_work, overhead_costs, unit_costs
    from dlaudit.robust.attacks.engine import counting_steps
    from dlaudit.robust.curves import clean_predictions, minimal_eps

    data = for_card(digits_mlp.card, "digits", split="audit")
    s = Settings.build(digits_mlp, fast=True, n=64)
    costs = {**unit_costs(digits_mlp, data), **overhead_costs(digits_mlp, data, s)}
    x, y = data.x[:64].float(), data.y[:64]
    ok = clean_predictions(digits_mlp.module, x, value_range=digits_mlp.card.value_range) == y
    idx = ok.nonzero().flatten()[: s.min_eps_samples]
    eps_max = LARGE_EPS * (digits_mlp.card.value_range[1] - digits_mlp.card.value_range[0])
    with counting_steps() as taken:
        minimal_eps(digits_mlp, x[idx], y[idx], eps_max=eps_max, steps=s.min_eps_steps, iterations=s.bisection)
    priced = _min_eps_work(len(idx), s, eps_max, costs)[0]
    assert taken[0] / 1.5 <= priced <= 1.5 * taken[0], (priced, taken)


def test_bounds_a_model_with_residual_connections_cannot_take_are_not_priced() -> None:
    """A model the certified bounds refuse (a residual connection) skips them at once: its estimate prices none."""
    from torch import nn

    import dlaudit
    from dlaudit.card import ModelCard
    from dlaudit.data import AuditData
    from dlaudit.robust.analysis import Settings, _certifiable, _work

    class Residual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b, self.head = nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = torch.relu(self.a(x))
            return self.head(h + torch.relu(self.b(h)))

    chain = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))
    x, y = torch.rand(32, 8), torch.randint(0, 3, (32,))
    costs = {"grad": 1e-4, "forward": 1e-4, "call": 0.0, "batch": 256.0}
    seconds = {}
    for name, module in (("residual", Residual()), ("chain", chain)):
        card = ModelCard(input_shape=(8,), num_classes=3, modality="tabular", architecture=None)
        bundle = dlaudit.ModelBundle(module, card, device="cpu")
        data = AuditData(x, y, name="residual", modality="tabular")
        s = Settings.build(bundle, fast=True, n=32)
        s = dataclasses.replace(s, attacks=(), autoattack=None, smoothing=False, corruptions=False, masking=False)
        s = dataclasses.replace(s, min_eps_samples=0, noise=())
        with_bounds = _work(bundle, data, dataclasses.replace(s, certify="crown-ibp"), costs)[0]
        seconds[name] = with_bounds - _work(bundle, data, dataclasses.replace(s, certify=None), costs)[0]
        assert _certifiable(bundle, data) is (name == "chain")
    assert seconds["residual"] == 0.0 and seconds["chain"] > 0.0
