"""Text attacks shard like image attacks: two shards (an in-process executor with a checkpoint shards exactly as
two Ray workers would) give the numbers of the one-piece run; a second run resumes every shard."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from click.testing import CliRunner

import dlaudit
from dlaudit import parallel
from dlaudit.cli import cli
from dlaudit.robust.text_section import robustness_text


@pytest.fixture(scope="module")
def bag(tmp_path_factory: pytest.TempPathFactory) -> tuple[dlaudit.ModelBundle, dlaudit.AuditData]:
    model = tmp_path_factory.mktemp("bag") / "bag.pt"
    args = ["train", "embedding-bag", "--data", "synthetic-text", "--epochs", "2", "-o", str(model), "-q"]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    bundle = dlaudit.load_model(model, device="cpu")
    return bundle, dlaudit.load_data(bundle=bundle).head(80)


def _metrics(section: object) -> dict[str, float]:
    return {m.name: round(float(m.value), 12) for m in section.metrics if math.isfinite(float(m.value))}


def test_two_shards_give_the_one_piece_numbers(
    bag: tuple[dlaudit.ModelBundle, dlaudit.AuditData], tmp_path: Path
) -> None:
    bundle, data = bag
    params = {"n": 80, "budget": 2, "attacks": "charswap,wordswap,hotflip"}
    one = robustness_text(bundle, data, seed=3, **params)
    ex = parallel.InProcess(workers=2, checkpoint=parallel.Checkpoint(tmp_path / "ck", {"run": "text"}))
    assert parallel.plan_shards(80, align=64, executor=ex) == [(0, 64), (64, 80)]
    with parallel.active(ex):
        two = robustness_text(bundle, data, seed=3, **params)
    assert ex.stats["shards"] == 6  # 3 attacks x 2 shards
    a, b = _metrics(one), _metrics(two)
    assert a == b and any(k.startswith("robustness.hotflip.acc@") for k in a)
    assert a["robustness.charswap.success_rate@2"] > 0  # the attacks did something to compare
    again = parallel.InProcess(workers=2, checkpoint=parallel.Checkpoint(tmp_path / "ck", {"run": "text"}))
    with parallel.active(again):
        assert _metrics(robustness_text(bundle, data, seed=3, **params)) == a
    assert again.stats["reused"] == 6


def test_the_report_ranks_charswap_words_by_the_unknown_word(
    bag: tuple[dlaudit.ModelBundle, dlaudit.AuditData], monkeypatch: pytest.MonkeyPatch
) -> None:
    """DeepWordBug's own ranking (replace each word by the unknown token), with deletion where there is no such word."""
    from dlaudit.robust import text_section
    from dlaudit.text.attacks import attack_metrics, deepwordbug
    from dlaudit.text.vocab import unknown_word

    bundle, data = bag
    unk = unknown_word(bundle.tokenizer)
    texts, labels = list(data.texts), data.y.tolist()
    assert unk == "unk" and not any(unk in t.split() for t in texts)
    seen: list[str] = []
    original = text_section.text_proba

    def recording(*args: object, **kw: object) -> object:
        inner = original(*args, **kw)
        return lambda batch: seen.extend(batch) or inner(batch)

    monkeypatch.setattr(text_section, "text_proba", recording)
    section = robustness_text(bundle, data, seed=3, n=80, budget=2, attacks="charswap")
    monkeypatch.undo()
    assert sum(unk in t.split() for t in seen) > 0.5 * len(texts)  # the ranking queries hold the unknown word
    described = next(m.description for m in section.metrics if m.name == "robustness.charswap.acc@2")
    assert f"unknown token {unk}" in described
    predict = original(bundle.module, bundle.tokenizer, "cpu", int(data.x.shape[1]))
    alone = deepwordbug(predict, texts, labels, budget=2, seed=3, scoring="unk", unk=unk)
    report = {k: v for k, v in _metrics(section).items() if ".charswap." in k}
    assert report == {k: round(float(v), 12) for k, v in attack_metrics(alone).items() if math.isfinite(v)}
    assert "deleting" in text_section._describe("charswap", "acc@2", None)
