"""Text as the third modality, end to end: train a tiny TextCNN through the CLI, report it, check every section.

Also: token IG through dlaudit against captum's LayerIntegratedGradients, bad text input (one line, exit 2),
and the reference model on the real SMS spam / HateXplain files of ../shared (skipped without them).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import dlaudit
from dlaudit.cli import cli
from dlaudit.explain.tokens import token_gxi, token_ig
from dlaudit.modalities import get_modality
from dlaudit.text.synthetic import synthetic_text_frame


@pytest.fixture(scope="module")
def text_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A TextCNN trained through the CLI on 400 synthetic texts from a csv (a second or two)."""
    folder = tmp_path_factory.mktemp("text")
    csv = folder / "comments.csv"
    synthetic_text_frame(400, seed=1).to_csv(csv, index=False)
    model = folder / "t.pt"
    args = ["train", "textcnn", "--data", str(csv), "--text-column", "text", "--target", "label"]
    r = CliRunner().invoke(cli, [*args, "--sensitive", "identity", "--epochs", "3", "-o", str(model), "-q"])
    assert r.exit_code == 0, r.output
    return model, csv


def test_checkpoint_is_plain_data_and_rebuilds_the_tokenizer(text_model: tuple[Path, Path]) -> None:
    model, _ = text_model
    raw = torch.load(model, weights_only=True)
    card = raw["card"]
    assert card["modality"] == "text" and card["architecture"] == "textcnn"
    assert card["tokenizer"]["tokens"][:3] == ["<pad>", "<unk>", "<mask>"]
    assert card["class_names"] == ["0", "1"]
    bundle = dlaudit.load_model(model)
    assert bundle.tokenizer is not None and len(bundle.tokenizer) == card["arch_kwargs"]["vocab_size"]
    assert bundle.card.kind is get_modality("text") and not bundle.card.kind.continuous


def test_report_runs_every_section_on_text(text_model: tuple[Path, Path], tmp_path: Path) -> None:
    model, _ = text_model
    out = tmp_path / "r.json"
    r = CliRunner().invoke(
        cli, ["report", str(model), "--fast", "-q", "-o", str(tmp_path / "r.html"), "--json", str(out)]
    )
    assert r.exit_code in (0, 1), r.output  # 1: a finding may fail a gate; the sections must all run
    report = json.loads(out.read_text())
    sections = {s["name"]: s for s in report["sections"]}
    assert set(sections) == {"performance", "explain", "robustness", "fairness"}
    assert all(s["status"] == "ok" for s in sections.values()), {k: s["reason"] for k, s in sections.items()}
    metrics = {m["name"]: m["value"] for s in report["sections"] for m in s["metrics"]}
    for name in ("ig", "gxi", "occlusion", "lime"):
        assert metrics[f"explain.{name}.deletion_auc"] < metrics[f"explain.{name}.random_deletion_auc"]
        assert metrics[f"explain.{name}.insertion_auc"] > metrics[f"explain.{name}.random_insertion_auc"]
    assert metrics["explain.ig.completeness_error"] < 0.05
    for attack in ("charswap", "wordswap", "hotflip"):
        assert 0 <= metrics[f"robustness.{attack}.acc@2"] <= metrics[f"robustness.{attack}.acc@1"]
        assert metrics[f"robustness.{attack}.acc@1"] <= metrics["robustness.clean_accuracy"]
    for kind in ("typos", "casing", "punctuation"):
        assert 0 <= metrics[f"robustness.text_noise.{kind}.acc"] <= 1
    assert 0 <= metrics["fairness.counterfactual.flip_rate"] <= 1
    assert "fairness.bias.final_metric" in metrics and "fairness.identity.demographic_parity_difference" in metrics
    html = (tmp_path / "r.html").read_text()
    assert html.count("data:image/svg+xml;base64,") >= 1  # the highlighted texts


def test_highlighted_text_has_a_legend_and_escapes_words() -> None:
    from dlaudit.explain.text_section import highlighted_svg

    svg = highlighted_svg(["<b>", "good"], {"ig": [-0.5, 2.0], "lime": [0.1, 0.0]})
    assert "&lt;b&gt;" in svg and "<b>" not in svg
    assert "full colour = ±2" in svg and "full colour = ±0.1" in svg  # each method's scale, in numbers
    assert "<title>good: +2</title>" in svg  # every word's score on hover


def test_token_ig_equals_captum(text_model: tuple[Path, Path]) -> None:
    from captum.attr import LayerGradientXActivation, LayerIntegratedGradients

    bundle = dlaudit.load_model(text_model[0])
    data = dlaudit.load_data(bundle=bundle).head(6)
    module, ids = bundle.module, data.x
    target = module(ids).argmax(dim=1)
    ours, delta = token_ig(module, ids, target, pad_id=bundle.tokenizer.pad_id, steps=24)
    lig = LayerIntegratedGradients(module, module.embedding)
    theirs, their_delta = lig.attribute(
        ids, baselines=torch.zeros_like(ids), target=target, n_steps=24, return_convergence_delta=True
    )
    torch.testing.assert_close(ours, theirs.sum(dim=-1).detach(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(delta, their_delta.detach().float(), atol=1e-5, rtol=1e-4)
    gxa = LayerGradientXActivation(module, module.embedding).attribute(ids, target=target)
    torch.testing.assert_close(token_gxi(module, ids, target), gxa.sum(dim=-1).detach(), atol=1e-5, rtol=1e-5)


def _bad(args: list[str]) -> str:
    r = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert r.exit_code == 2, (args, r.output)
    assert "Traceback" not in r.output
    return r.output.strip()


def test_bad_text_input_is_one_line_and_exit_2(text_model: tuple[Path, Path], tmp_path: Path) -> None:
    model, csv = text_model
    latin = tmp_path / "latin.csv"
    latin.write_bytes("text,label\ncaf\xe9 ok,1\nbad,0\n".encode("latin-1"))
    empty = tmp_path / "empty.csv"
    empty.write_text("text,label\n ,1\n,0\n  ,1\n ,0\n")
    out = str(tmp_path / "r.html")
    assert "not UTF-8" in _bad(["report", str(model), "--data", str(latin), "--text-column", "text", "-o", out])
    assert "empty in every row" in _bad(
        ["report", str(model), "--data", str(empty), "--text-column", "text", "-o", out]
    )
    assert "unknown text column" in _bad(["report", str(model), "--data", str(csv), "--text-column", "body", "-o", out])
    assert "reads text" in _bad(["report", str(model), "--data", "synthetic-credit", "-o", out])
    assert "reads text" in _bad(["train", "textcnn", "--data", "digits", "-o", str(tmp_path / "x.pt")])
    mlp = tmp_path / "mlp.pt"
    dlaudit.save_model(dlaudit.train("mlp", "synthetic-credit", epochs=1, device="cpu"), mlp)
    assert "reads no text" in _bad(["report", str(mlp), "--data", "synthetic-text", "-o", out])
    mitigate = [
        "mitigate",
        str(model),
        "--method",
        "threshold",
        "--sensitive",
        "identity",
        "-o",
        str(tmp_path / "m.pt"),
    ]
    assert "does not support text models" in _bad(mitigate)


def test_truncated_texts_are_counted(text_model: tuple[Path, Path], tmp_path: Path) -> None:
    bundle = dlaudit.load_model(text_model[0])
    long = tmp_path / "long.csv"
    words = " ".join(["good"] * (bundle.card.input_shape[0] + 5))
    rows = [f"{words},0"] + [
        f"{w} film,{i % 2}" for i, w in enumerate(["bad", "fine", "awful", "nice", "dull", "great", "poor"])
    ]
    long.write_text("text,label\n" + "\n".join(rows) + "\n")
    data = dlaudit.load_data(long, bundle=bundle, text_column="text", split="all")
    assert data.x.shape == (8, bundle.card.input_shape[0])
    assert any("1 of 8 text(s) were longer than" in n for n in data.notes)


def test_real_sms_spam(shared_text: Path, tmp_path: Path) -> None:
    """The embedding-bag model on the real SMS Spam Collection: it learns it, and the report runs on it."""
    bundle = dlaudit.train("embedding-bag", str(shared_text / "sms_spam.csv.gz"), epochs=2, device="cpu")
    assert bundle.card.metrics["test_accuracy"] > 0.9  # 87.6% of the messages are ham
    data = dlaudit.load_data(bundle=bundle, limit=150)
    rep = dlaudit.audit(bundle, data, checks="performance,fairness", fast=True)
    assert rep.section("fairness").status == "ok"
    assert rep.metrics["performance.accuracy"] > 0.9


def test_neighbours_restricted_to_words_are_the_full_neighbours() -> None:
    from dlaudit.text.attacks.wordswap import embedding_neighbours
    from dlaudit.text.vocab import WordVocab

    vocab = WordVocab.build(["a b c d e f g h , ."], min_count=1)
    weight = torch.randn(len(vocab), 5, generator=torch.Generator().manual_seed(0))
    full = embedding_neighbours(weight, vocab, k=3)
    part = embedding_neighbours(weight, vocab, k=3, words=["c", "E", "zz"])
    assert set(part) == {"c", "e"} and part == {w: full[w] for w in part}


def test_views_on_a_text_model(text_model: tuple[Path, Path], tmp_path: Path) -> None:
    model, _ = text_model
    rep = dlaudit.attack(model, attacks="charswap,hotflip", fast=True, device="cpu")
    names = {m.name for m in rep.section("robustness").metrics}
    assert {"robustness.charswap.acc@1", "robustness.hotflip.acc@2"} <= names
    assert not any(n.startswith("robustness.wordswap") for n in names)
    named = ["attack", str(model), "--attack", "fgsm,pgd", "-o", str(tmp_path / "a.html")]
    assert "do not apply to text" in _bad(named)
    default = dlaudit.attack(model, fast=True, n=8, device="cpu")  # none named: the text attacks, not fgsm and pgd
    names = {m.name for m in default.section("robustness").metrics}
    assert {"robustness.charswap.acc@1", "robustness.wordswap.acc@1", "robustness.hotflip.acc@1"} <= names
    assert "does not apply" in _bad(["certify", str(model), "--fast", "-o", str(tmp_path / "c.html")])
    exp = dlaudit.explain_model(model, methods="ig,gxi", n=3, device="cpu")
    assert set(exp.attributions) == {"ig", "gxi"} and exp.attributions["ig"].shape == exp.x.shape


def test_text_sections_leave_the_model_as_found(text_model: tuple[Path, Path]) -> None:
    bundle = dlaudit.load_model(text_model[0], device="cpu")
    module = bundle.module
    module.train()  # the audit switches to eval and back
    module.fc.weight.requires_grad_(False)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    data = dlaudit.load_data(bundle=bundle).head(40)
    rep = dlaudit.audit(bundle, data, checks="explain,robustness,fairness", fast=True)
    assert all(s.status == "ok" for s in rep.sections)
    assert module.training and not module.fc.weight.requires_grad and module.embedding.weight.requires_grad
    assert not module.embedding._forward_hooks and not module._forward_hooks
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())
