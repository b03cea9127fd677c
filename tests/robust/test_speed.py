"""The engine's speed settings change how it runs, never what it finds.

Channels-last weights and ``torch.compile`` are checked against the contiguous eager engine and
against a hand-written PGD loop with the same per-sample random starts (round 1's semantics), on
fixed models: every per-sample prediction must agree, so every robust-accuracy number does.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from torch import nn

import dlaudit
from dlaudit.cli import cli
from dlaudit.robust import Attack, _random, run_attack
from dlaudit.robust.attacks import speed
from dlaudit.robust.attacks.apgd import APGDCE


def _reference_pgd(
    module: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int, seed: int
) -> torch.Tensor:
    """Plain PGD, every step for every sample, from the engine's per-sample uniform starts: predictions."""
    alpha = 2.5 * eps / steps
    noise = _random.uniform_at(tuple(x.shape[1:]), torch.arange(len(x)), seed=seed, stream=0)
    xa = (x + noise * eps).clamp(0, 1)
    lower, upper = (x - eps).clamp(0, 1), (x + eps).clamp(0, 1)
    for _ in range(steps):
        xa = xa.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(F.cross_entropy(module(xa), y, reduction="sum"), xa)
        xa = torch.minimum(torch.maximum(xa.detach() + alpha * g.sign(), lower), upper)
    with torch.no_grad():
        return module(xa).argmax(dim=1)


@pytest.fixture(scope="module")
def colour_cnn() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A fixed 3-channel CNN (seeded weights) and inputs it classifies: where channels-last changes kernels."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(16 * 8 * 8, 5),
    ).eval()  # fmt: skip
    x = torch.rand(96, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x).argmax(dim=1)
    return model, x, y


def test_channels_last_holds_the_weights_and_gives_them_back(colour_cnn) -> None:
    model, x, _ = colour_cnn
    before = [(p, p.data, p.data.data_ptr(), p.data.stride()) for p in model.parameters()]
    with speed.layout(model, x) as applied:
        assert applied
        conv = model[0].weight
        assert conv.data.is_contiguous(memory_format=torch.channels_last) and conv.data.data_ptr() != before[0][2]
        assert model[0](x).is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(conv.data, before[0][1], rtol=0, atol=0)
    for p, _, ptr, stride in before:
        assert p.data.data_ptr() == ptr and p.data.stride() == stride  # the very same storage back
    with speed.using(channels_last=False), speed.layout(model, x) as applied:
        assert not applied
    mlp = nn.Sequential(nn.Linear(4, 3))
    with speed.layout(mlp, torch.rand(2, 4)) as applied:
        assert not applied  # no convolution, no 4-D input


def test_one_input_channel_is_restrided_too() -> None:
    """A weight with one input channel already passes is_contiguous(channels_last); it must still be restrided."""
    conv = nn.Conv2d(1, 8, 3)
    x = torch.rand(4, 1, 10, 10)
    with speed.layout(conv, x) as applied:
        assert applied and conv(x).is_contiguous(memory_format=torch.channels_last) and conv(x).stride()[1] == 1


@pytest.mark.parametrize("norm,eps", [("linf", 0.1), ("linf", 0.3), ("l2", 1.0)])
@pytest.mark.parametrize("early_stop", [False, True])
def test_channels_last_changes_no_prediction(digits_cnn, digits_splits, norm, eps, early_stop) -> None:
    x, y = digits_splits.test.x, digits_splits.test.y
    attack = Attack.pgd(eps, steps=20, norm=norm, early_stop=early_stop)
    with speed.using(channels_last=False):
        before = run_attack(digits_cnn, x, y, attack, seed=3, batch_size=128, keep_adv=False)
    with speed.using(channels_last=True):
        after = run_attack(digits_cnn, x, y, attack, seed=3, batch_size=128, keep_adv=False)
    assert torch.equal(before.pred, after.pred) and torch.equal(before.success, after.success)


def test_engine_agrees_with_a_hand_written_loop(digits_cnn, digits_splits, colour_cnn) -> None:
    for module, x, y in ((digits_cnn.module, digits_splits.test.x, digits_splits.test.y), colour_cnn):
        for eps in (0.05, 0.2):
            expected = _reference_pgd(module, x, y, eps, 10, seed=5)
            out = run_attack(module, x, y, Attack.pgd(eps, steps=10, early_stop=False), seed=5, batch_size=64)
            assert torch.equal(out.pred, expected)


def test_apgd_is_unchanged_by_channels_last(colour_cnn) -> None:
    model, x, y = colour_cnn
    attack = APGDCE(0.03, "linf", steps=20)
    with speed.using(channels_last=False):
        before = run_attack(model, x, y, attack, seed=0, keep_adv=False)
    after = run_attack(model, x, y, attack, seed=0, keep_adv=False)
    assert torch.equal(before.pred, after.pred)


@pytest.mark.slow
def test_compile_changes_no_prediction_or_says_why(colour_cnn) -> None:
    """Compiled gradients give the same predictions; where torch cannot compile here, a note says why."""
    model, x, y = colour_cnn
    for attack in (Attack.pgd(0.03, steps=8, early_stop=False), Attack.pgd(0.03, steps=8)):
        eager = run_attack(model, x, y, attack, seed=1, keep_adv=False)
        with speed.using(compile=True):
            compiled = run_attack(model, x, y, attack, seed=1, keep_adv=False)
        assert torch.equal(eager.pred, compiled.pred)
    assert model in speed._COMPILED or speed.notes()  # compiled graphs were used, or the note says why not


def test_torchscript_runs_eagerly_with_a_note(colour_cnn) -> None:
    model, x, y = colour_cnn
    scripted = torch.jit.script(model)
    attack = Attack.pgd(0.03, steps=4, early_stop=False)
    eager = run_attack(scripted, x, y, attack, seed=1, keep_adv=False)
    with speed.using(compile=True):
        compiled = run_attack(scripted, x, y, attack, seed=1, keep_adv=False)
        described = speed.describe()
    assert torch.equal(eager.pred, compiled.pred)
    assert speed.compile_problem(scripted) and "TorchScript" in speed.compile_problem(scripted)
    assert any("TorchScript" in why for why in described["compile_fallbacks"].values())


def test_compile_flag_reaches_the_engine_and_the_results(tmp_path, digits_cnn) -> None:
    path = tmp_path / "cnn.pt"
    dlaudit.save_model(digits_cnn, path)
    out = tmp_path / "a.json"
    res = CliRunner().invoke(
        cli,
        ["attack", str(path), "--attack", "fgsm", "--eps", "0.1", "--n", "40", "--compile", "--json", str(out), "-q"],
    )
    assert res.exit_code == 0, res.output
    import json

    engine = json.loads(out.read_text())["provenance"]["engine"]
    assert engine["compile"] is True and engine["channels_last"] is True
    with pytest.raises(dlaudit.errors.ConfigError, match="compile must be True or False"):
        dlaudit.attack(digits_cnn, compile="yes", attacks="fgsm", n=10)
