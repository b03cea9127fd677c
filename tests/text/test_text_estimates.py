"""The text sections estimate their time and announce it before they run, like the image sections."""

from __future__ import annotations

import io
import re

import pytest
from click.testing import CliRunner

import dlaudit
from dlaudit.analysis import get_analysis
from dlaudit.cli import cli
from dlaudit.progress import ProgressPrinter


@pytest.fixture(scope="module")
def bag(tmp_path_factory: pytest.TempPathFactory) -> dlaudit.ModelBundle:
    model = tmp_path_factory.mktemp("bag") / "bag.pt"
    r = CliRunner().invoke(
        cli, ["train", "embedding-bag", "--data", "synthetic-text", "--epochs", "1", "-o", str(model), "-q"]
    )
    assert r.exit_code == 0, r.output
    return dlaudit.load_model(model, device="cpu")


def test_text_sections_estimate_their_passes(bag: dlaudit.ModelBundle) -> None:
    data = dlaudit.load_data(bundle=bag)
    robust = get_analysis("robustness").time_estimate(bag, data, params={"n": 50, "budget": 2})
    assert robust is not None and robust[0] > 0
    assert "3 attack(s) on 50 texts" in robust[1] and "gradient passes" in robust[1]
    small = get_analysis("robustness").time_estimate(bag, data, params={"n": 5, "budget": 2})
    passes = lambda what: [int(v.replace(",", "")) for v in re.findall(r"[\d,]+(?= (?:text forward|gradient))", what)]
    assert passes(robust[1]) == pytest.approx([10 * v for v in passes(small[1])], abs=10)  # counted per text
    explain = get_analysis("explain").time_estimate(bag, data, fast=True, params={})
    assert explain is not None and "ig, gxi, occlusion, lime on 8 texts" in explain[1]
    assert get_analysis("robustness").time_estimate(bag, data, params={"attacks": "pgd"}) is None  # bad settings


def test_the_audit_announces_a_text_estimate_first(bag: dlaudit.ModelBundle) -> None:
    import dlaudit.pipeline as est

    out = io.StringIO()
    original = est.EXPENSIVE
    est.EXPENSIVE = 0.0  # announce even this small audit
    try:
        dlaudit.audit(
            bag,
            checks="robustness",
            fast=True,
            progress=ProgressPrinter(stream=out, tty=False, interval=1e9),
            params={"robustness": {"n": 8, "attacks": "charswap"}},
        )
    finally:
        est.EXPENSIVE = original
    lines = out.getvalue().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("dlaudit: [robustness] estimated "))
    assert lines[at + 1] == "dlaudit: [robustness] started" and "1 attack(s) on 8 texts" in lines[at]


def test_scored_texts_are_priced_as_queries_and_hotflips_candidates_at_full_width(bag, monkeypatch) -> None:
    """The black-box attacks and the noise score texts through text_proba (``query``: each at its own width, a BERT's
    last layer at [CLS] alone); HotFlip scores its candidates at the model's full width (``forward``)."""
    import dlaudit.text.estimate as te
    from dlaudit.robust.text_section import TextRobustSettings, attack_passes, estimate_text, mean_words
    from dlaudit.text.vocab import WordVocab

    data = dlaudit.load_data(bundle=bag)
    monkeypatch.setattr(te, "text_costs", lambda b, d: {"forward": 1.0, "grad": 100.0, "query": 0.001})
    params = {"n": 10, "budget": 2}
    seconds, _ = estimate_text(bag, data, params=params)
    s = TextRobustSettings.build(**params)
    word_level = isinstance(bag.tokenizer, WordVocab)
    forwards, grads = attack_passes(s, mean_words(data), word_level=word_level)
    flips = 1 + s.budget * 10  # HotFlip's first pass and its candidates
    assert "hotflip" in s.attacks
    assert seconds == pytest.approx(10 * (flips * 1.0 + (forwards - flips) * 0.001 + grads * 100.0))
    no_flip = estimate_text(bag, data, params={**params, "attacks": "charswap"})[0]
    assert no_flip == pytest.approx(
        10
        * attack_passes(
            TextRobustSettings.build(**params, attacks="charswap"), mean_words(data), word_level=word_level
        )[0]
        * 0.001
    )


def test_text_costs_measure_a_query_through_text_proba(bag) -> None:
    from dlaudit.text.estimate import text_costs

    costs = text_costs(bag, dlaudit.load_data(bundle=bag))
    assert set(costs) == {"forward", "grad", "query"} and all(v > 0 for v in costs.values())
