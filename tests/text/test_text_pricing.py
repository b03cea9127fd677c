"""How the text sections' ``--time-budget`` probes price a section, with scripted costs (no model runs): a cheap
model is priced past a batch, an expensive one on few texts; the text fairness section's fixed part follows a line
in texts and one resample is the median of repeats; a model and its data are timed once; a text attack plan prints
no PGD restarts."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from dlaudit.fairness import text_budget as fairness_budget
from dlaudit.plan import plan_text
from dlaudit.robust import text_budget as robust_budget
from dlaudit.text import budget, estimate


def batched(n: int, *, call: float, row: float, batch: int = 64) -> float:
    """Seconds of a section whose work comes in batches of ``batch`` texts, a model call for each text width a batch
    meets (up to 32 widths), at ``call`` seconds a call and ``row`` a text."""
    return 0.01 + call * min(n, 32) * math.ceil(n / batch) + row * n


class Data:
    """Texts enough for the probes (``len`` is all :func:`budget.section_costs` reads)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n


def scripted(monkeypatch: pytest.MonkeyPatch, seconds: Any) -> list[int]:
    """``run_probe`` replaced by ``seconds(n)``; returns the text counts it was asked for, in order."""
    asked: list[int] = []

    def run(fn: Any, bundle: Any, data: Any, **kwargs: Any) -> float:
        asked.append(int(kwargs["n"]))
        return seconds(int(kwargs["n"]))

    monkeypatch.setattr(budget, "run_probe", run)
    return asked


def price(costs: dict[str, float], n: int) -> float:
    return costs["fixed"] + n * costs["per_text"]


def test_a_cheap_model_is_priced_past_a_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    cost = lambda n: batched(n, call=0.004, row=0.0005)
    asked = scripted(monkeypatch, cost)
    costs = budget.section_costs(lambda: None, None, Data(500), {}, small=4, large=12, fill=64)
    assert asked == [4, 4, 64, 128]
    assert abs(price(costs, 200) / cost(200) - 1) < 0.25
    # the line through 4 and 12 texts (what the probe did before) prices 200 texts well above their cost
    slope = (cost(12) - cost(4)) / 8
    assert (cost(4) + 196 * slope) / cost(200) > 1.4


def test_an_expensive_model_keeps_the_small_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = scripted(monkeypatch, lambda n: 0.5 + 0.3 * n)  # 0.3 s a text: 128 texts would take 38 s
    costs = budget.section_costs(lambda: None, None, Data(500), {}, small=4, large=12, fill=64)
    assert asked == [4, 12] and costs == pytest.approx({"fixed": 0.5, "per_text": 0.3})


def test_few_texts_probe_at_what_there_is(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = scripted(monkeypatch, lambda n: 0.01 + 0.001 * n)
    costs = budget.section_costs(lambda: None, None, Data(40), {}, small=4, large=12, fill=64)
    assert asked == [4, 4, 20, 40] and costs == pytest.approx({"fixed": 0.01, "per_text": 0.001})


def test_text_fairness_carries_a_line_in_texts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Its fixed part grows less than its texts (the reference TextCNN: 0.56 s on 128 texts, 0.85 s on 500)."""
    runs: list[tuple[int, bool, int]] = []

    def run(fn: Any, bundle: Any, data: Any, *, fast: bool, n_boot: int, **kwargs: Any) -> float:
        runs.append((len(data), fast, n_boot))
        return 0.4 + 0.001 * len(data)

    monkeypatch.setattr(fairness_budget, "run_probe", run)
    monkeypatch.setattr(fairness_budget, "_resample", lambda bundle, data, sensitive: 0.002)
    data = type("D", (), {"head": lambda self, k: list(range(min(k, 500))), "__len__": lambda self: 500})()
    costs = fairness_budget._probe(None, data, {})
    assert runs == [(16, True, 0), (128, True, 0), (64, True, 0)]
    assert costs == pytest.approx({"fixed": 0.9, "resample": 0.002})
    levels = fairness_budget._levels(None, data, {})
    assert [fairness_budget._cost(None, data, lvl, {}, costs) for lvl in levels] == pytest.approx([1.3, 2.9])


def test_a_resample_is_the_median_of_repeats(monkeypatch: pytest.MonkeyPatch) -> None:
    """One repeat slowed 10x by a busy machine does not move the price."""
    clock = [0.0]
    slow = iter([1, 1, 10, 1, 1, 1, 1, 1])  # the warm-up, then (resamples, none) per repeat: the first is slowed

    def aucs(labels: Any, scores: Any, identities: Any, *, n_boot: int, seed: int) -> None:
        clock[0] += next(slow) * (0.05 + 0.002 * n_boot)

    monkeypatch.setattr(fairness_budget, "jigsaw_bias_aucs", aucs)
    monkeypatch.setattr(fairness_budget, "time", SimpleNamespace(perf_counter=lambda: clock[0]))
    monkeypatch.setattr(fairness_budget, "identity_frame", lambda sensitive: object())
    bundle = SimpleNamespace(card=SimpleNamespace(num_classes=2, positive_index=1, names=("a", "b")))
    data = type("D", (), {"sensitive": None, "raw": None, "y": torch.zeros(30), "__len__": lambda self: 30})()
    assert fairness_budget._resample(bundle, data, None) == pytest.approx(0.002)
    bundle.card.num_classes = 3  # no Jigsaw AUCs for a model that is not binary, no sensitive columns: no resamples
    assert fairness_budget._resample(bundle, data, None) == 0.0


def test_a_model_and_its_data_are_timed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    measured: list[int] = []
    monkeypatch.setattr(estimate, "_measure", lambda bundle, data: measured.append(1) or {"forward": 1.0, "grad": 2.0})
    monkeypatch.setattr(estimate, "_LAST", [])

    class Data:
        def __init__(self) -> None:
            self.x = torch.zeros(3, 5)

    bundle, data = SimpleNamespace(module=torch.nn.Linear(2, 2)), Data()
    assert estimate.text_costs(bundle, data) == estimate.text_costs(bundle, data) == {"forward": 1.0, "grad": 2.0}
    assert len(measured) == 1
    estimate.text_costs(bundle, Data())  # other data: timed again
    estimate.text_costs(SimpleNamespace(module=torch.nn.Linear(2, 2)), data)  # another model: timed again
    assert len(measured) == 3


def test_a_text_attack_plan_prints_no_restarts() -> None:
    """``dlaudit attack`` passes PGD's restarts; the text rungs clear them, so the printed plan names none."""
    given = {"scope": "attacks", "restarts": 1, "n": 12}
    levels = robust_budget._levels(None, Data(100), given)
    assert all(level.params["restarts"] is None for level in levels)
    assert all("restarts" not in level.params for level in robust_budget._levels(None, Data(100), {"n": 12}))
    entry = {
        "params": {**given, **levels[-1].params},
        "fast": False,
        "budgeted": True,
        "level": "3 of 3",
        "samples": 12,
        "interval_halfwidth": 0.28,
        "estimated_seconds": 1.0,
    }
    line = plan_text({"sections": {"robustness": entry}})
    assert "restarts" not in line and "budget=3, n=12" in line


def test_a_cheap_models_full_explanations_are_timed(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a cheap model the full profile's price per text is measured (its passes priced it short on the reference
    TextCNN); on an expensive one it stays priced from its passes, and no full run is made."""
    from dlaudit.explain import text_budget as explain_budget

    runs: list[tuple[int, bool]] = []
    per_text = {True: 0.03, False: 0.09}  # the full profile takes 3x per text; its passes would price it at 2.2x

    def run(fn: Any, bundle: Any, data: Any, *, fast: bool, n: int, **kwargs: Any) -> float:
        runs.append((n, fast))
        return 0.05 + per_text[fast] * n

    monkeypatch.setattr(explain_budget, "run_probe", run)
    monkeypatch.setattr(estimate, "text_costs", lambda bundle, data: {"forward": 0.001, "grad": 0.002})
    monkeypatch.setattr(explain_budget, "mean_tokens", lambda bundle, data: 12.0)
    bundle, data = SimpleNamespace(tokenizer=object()), type("D", (), {"texts": ["a"], "__len__": lambda self: 50})()
    cheap = {"fixed": 0.05, "per_text": 0.03}
    monkeypatch.setattr(explain_budget, "section_costs", lambda *a, **k: dict(cheap))
    costs = explain_budget._probe(bundle, data, {})
    assert runs == [(8, False)] and costs["full_ratio"] == pytest.approx(3.0)
    full = explain_budget._levels(bundle, data, {})[-1]
    assert explain_budget.BUDGET.cost(bundle, data, full, {}, costs) == pytest.approx(0.05 + 16 * 0.09)

    runs.clear()
    per_text.update({True: 1.5, False: 4.5})  # 1.5 s a text: the full profile on 8 texts would take 36 s
    monkeypatch.setattr(explain_budget, "section_costs", lambda *a, **k: {"fixed": 0.05, "per_text": 1.5})
    costs = explain_budget._probe(bundle, data, {})
    assert runs == [] and "full_ratio" not in costs
    assert explain_budget._full_ratio(bundle, data, {}, costs) == pytest.approx(2.2, abs=0.3)
