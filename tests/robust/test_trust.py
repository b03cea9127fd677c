"""AutoAttack in the report, the worst case per sample, degenerate models and strong masking evidence."""

from __future__ import annotations

import torch
from click.testing import CliRunner
from torch import nn

import dlaudit
from dlaudit.card import ModelCard
from dlaudit.cli import cli
from dlaudit.robust.curves import Curve, first_breaker, worst_case
from dlaudit.robust.masking import check_black_box, check_gradients
from dlaudit.robust.trust import degenerate_reason


def _curve(name: str, eps: list[float], correct: list[list[bool]]) -> Curve:
    tensors = tuple(torch.tensor(c) for c in correct)
    return Curve(name, tuple(eps), tuple(float(t.float().mean()) for t in tensors), tensors, name)


def test_worst_case_is_per_sample_and_first_breaker_counts_new_breaks() -> None:
    pgd = _curve("pgd_linf", [0, 0.1], [[True, True, True, False], [True, False, True, False]])
    aa = _curve("autoattack_linf", [0, 0.1], [[True, True, True, False], [False, True, True, False]])
    worst = worst_case([pgd, aa], 4)
    assert worst is not None and worst.name == "worst_linf"
    assert worst.accuracy == (0.75, 0.25)  # sample 0 only AutoAttack fools, sample 1 only PGD
    assert first_breaker([pgd, aa], 0.1) == {"pgd_linf": 2, "autoattack_linf": 1}


class _OneClass(nn.Module):
    """Predicts class 1 whatever the input (a collapsed model), with a gradient that is not zero."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = 1e-3 * x.flatten(1)[:, :10]
        return z + torch.tensor([0.0, 10.0] + [0.0] * 8)


def test_a_collapsed_model_is_never_robust_and_its_gates_fail(tmp_path, digits_splits) -> None:
    card = ModelCard(input_shape=(1, 8, 8), num_classes=10, modality="image")
    bundle = dlaudit.ModelBundle(_OneClass(), card, device="cpu")
    sec = dlaudit.robustness(bundle, digits_splits.test, fast=True, n=100, noise=[0.1], min_eps_samples=0, examples=0)
    degenerate = [f for f in sec.findings if f.check == "degenerate-model"]
    assert (
        degenerate
        and degenerate[0].severity == "fail"
        and "predicts class '1' for 100% of inputs" in degenerate[0].message
    )
    metrics = {m.name: m for m in sec.metrics}
    assert (
        metrics["robustness.pgd_linf.acc@0.3"].value is None
        and "degenerate model" in metrics["robustness.pgd_linf.acc@0.3"].note
    )
    assert metrics["robustness.worst_linf.acc@0.3"].value is None
    # through the CLI: the gate that would pass on 10% "robust accuracy" fails
    path = tmp_path / "collapsed.pt"
    torch.jit.save(torch.jit.script(_OneClass()), path)
    path.with_suffix(".card.json").write_text('{"input_shape": [1, 8, 8], "num_classes": 10}')
    res = CliRunner().invoke(
        cli,
        ["report", str(path), "--data", "digits", "--checks", "robustness", "--fast", "-o", str(tmp_path / "r.html"),
         "--fail-on", "robustness.pgd_linf.acc@0.3 < 0.1"],
    )  # fmt: skip
    assert res.exit_code == 1, res.output
    assert "FAIL" in res.output and "undefined" in res.output


def test_report_runs_autoattack_and_headlines_the_worst_case(digits_cnn: dlaudit.ModelBundle) -> None:
    sec = dlaudit.robustness(digits_cnn, fast=True, n=60, eps=[0, 0.05, 0.1], noise=[], min_eps_samples=0, examples=0)
    m = {x.name: x for x in sec.metrics}
    for e in ("0.05", "0.1"):
        worst = m[f"robustness.worst_linf.acc@{e}"]
        assert worst.headline and worst.value <= min(
            m[f"robustness.{a}_linf.acc@{e}"].value for a in ("fgsm", "pgd", "autoattack")
        )
    assert sec.params["autoattack"] == "fast"
    assert "worst case" in sec.summary
    assert any(t.title.startswith("AutoAttack (L-inf") for t in sec.tables)


def test_degenerate_reasons() -> None:
    y = torch.arange(100) % 10
    assert "predicts class '3' for 100%" in degenerate_reason(
        torch.full((100,), 3), y, 10, [str(i) for i in range(10)], [], (0.0, 1.0)
    )
    imbalanced = torch.zeros(100, dtype=torch.long)
    assert (
        degenerate_reason(imbalanced, imbalanced, 10, [str(i) for i in range(10)], [], (0.0, 1.0)) == ""
    )  # the data is one class too
    good = y.clone()
    flat = _curve("pgd_linf", [0, 0.3], [[True] * 100, [True] * 100])
    assert "no attack changes" in degenerate_reason(good, y, 10, [str(i) for i in range(10)], [flat], (0.0, 1.0))
    assert degenerate_reason(good, y, 10, [str(i) for i in range(10)], [flat], (0.0, 1.0), unchanged=False) == ""


def test_strong_masking_checks() -> None:
    assert check_black_box(0.1, 1, 500).passed is True
    bad = check_black_box(0.1, 12, 500)
    assert bad.passed is False and bad.severity == "fail" and "gradient masking suspected" in bad.finding().message
    assert check_gradients(0, 0, 100).passed is True
    grads = check_gradients(30, 2, 100)
    assert grads.passed is False and grads.finding().severity == "fail"


def test_attack_cli_runs_autoattack_by_name(tmp_path, digits_cnn: dlaudit.ModelBundle) -> None:
    model = tmp_path / "cnn.pt"
    dlaudit.save_model(digits_cnn, model)
    res = CliRunner().invoke(
        cli,
        [
            "attack",
            str(model),
            "--attack",
            "autoattack",
            "--version",
            "fast",
            "--eps",
            "0.1",
            "--n",
            "40",
            "--json",
            str(tmp_path / "a.json"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "autoattack_linf" in res.output
    bad = CliRunner().invoke(cli, ["attack", str(model), "--attack", "autoatack", "--n", "10"])
    assert bad.exit_code == 2 and "did you mean autoattack" in bad.output


def test_attack_blanks_a_collapsed_model_and_fails_its_gate(tmp_path) -> None:
    """``dlaudit attack`` keeps the report's honesty rules: a constant model's attack metrics are undefined."""
    path = tmp_path / "collapsed.pt"
    torch.jit.save(torch.jit.script(_OneClass()), path)
    path.with_suffix(".card.json").write_text('{"input_shape": [1, 8, 8], "num_classes": 10}')
    res = CliRunner().invoke(
        cli,
        ["attack", str(path), "--data", "digits", "--attack", "fgsm", "--n", "60", "--eps", "0.1",
         "--json", str(tmp_path / "a.json"), "--fail-on", "robustness.fgsm_linf.acc@0.1 < 0.05"],
    )  # fmt: skip
    assert res.exit_code == 1, res.output
    saved = dlaudit.load_report(tmp_path / "a.json")
    assert saved.metrics["robustness.fgsm_linf.acc@0.1"] is None
    assert any(f.check == "degenerate-model" and f.severity == "fail" for f in saved.findings)


def test_attack_blanks_masked_gradients(masked_bundle_and_data) -> None:
    """A model behind a rounding step (zero input gradients): the attack scope says so and blanks its metrics."""
    bundle, data = masked_bundle_and_data
    rep = dlaudit.attack(bundle, data, attacks="pgd", eps=[0.1, 0.3], steps=5)
    sec = rep.sections[0]
    assert rep.metrics["robustness.clean_acc"] == 1.0
    assert rep.metrics["robustness.pgd_linf.acc@0.3"] is None
    note = next(m.note for m in sec.metrics if m.name == "robustness.pgd_linf.acc@0.3")
    assert "gradient masking suspected" in note
    assert any(f.severity == "fail" and "gradient" in f.message for f in sec.findings)
