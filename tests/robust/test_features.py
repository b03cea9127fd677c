"""Attacks restricted to some input features (a tabular model's numeric columns): every attack keeps the
others at their clean values, the engine checks it, and the section and ``dlaudit attack`` offer it."""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import dlaudit
from dlaudit.errors import ConfigError
from dlaudit.robust.attacks import list_attacks, make_attack, run_attack
from dlaudit.robust.attacks.autoattack import autoattack
from dlaudit.robust.attacks.engine import Attack

FREE = (0, 1, 2, 3, 4)
"""Of 12 input features, the ones the attacks may change."""

SMALL = {
    "fgsm": {},
    "pgd": {"steps": 10},
    "apgd-ce": {"steps": 20},
    "apgd-t": {"steps": 20},
    "apgd-dlr": {"steps": 20},
    "fab-t": {"steps": 20},
    "square": {"queries": 200},
    "autoattack": {"version": "fast"},
}


def _mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 5)).eval()


class _Only(nn.Module):
    """A model that reads only the features in ``keep`` (the others are multiplied by zero)."""

    def __init__(self, keep: tuple[int, ...]) -> None:
        super().__init__()
        self.inner = _mlp(1)
        self.register_buffer("gate", torch.zeros(12))
        self.gate[list(keep)] = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x * self.gate)


@pytest.fixture(scope="module")
def batch() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    model = _mlp()
    x = torch.rand(48, 12, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        y = model(x).argmax(dim=1)
    return model, x, y


def test_every_attack_is_covered() -> None:
    assert set(SMALL) == set(list_attacks())


@pytest.mark.parametrize("norm,eps", [("linf", 0.3), ("l2", 1.0)])
@pytest.mark.parametrize("key", sorted(SMALL))
def test_other_features_keep_their_clean_values(key: str, norm: str, eps: float, batch, caplog) -> None:
    model, x, y = batch
    caplog.set_level(logging.WARNING)
    out = run_attack(model, x, y, make_attack(key, eps, norm=norm, features=FREE, **SMALL[key]))
    delta = out.x_adv - x
    assert torch.equal(delta[:, 5:], torch.zeros_like(delta[:, 5:]))  # exactly, not approximately
    assert float(delta[:, :5].abs().max()) > 0  # the free features did move
    size = delta.abs().amax(dim=1) if norm == "linf" else delta.norm(dim=1)
    assert float(size.max()) <= eps + 1e-5
    with torch.no_grad():
        assert torch.equal(model(out.x_adv).argmax(dim=1), out.pred)
    assert torch.equal(out.success, out.pred != y)
    # the attack honoured the mask itself: the engine's check had nothing to reset
    assert not [r for r in caplog.records if "changed features outside" in r.getMessage()]


@pytest.mark.parametrize("key", ["pgd", "apgd-ce", "square"])
def test_a_model_of_the_pinned_features_cannot_be_fooled(key: str) -> None:
    model = _Only(tuple(range(5, 12)))
    x = torch.rand(32, 12, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        y = model(x).argmax(dim=1)
    out = run_attack(model, x, y, make_attack(key, 0.5, features=FREE, **SMALL[key]))
    assert out.accuracy(y) == 1.0
    free = run_attack(model, x, y, make_attack(key, 0.5, **SMALL[key]))
    assert free.accuracy(y) < 1.0  # the same attack on every feature does fool it


def test_a_model_of_the_free_features_sees_the_same_attack() -> None:
    """L-inf PGD on a model that ignores the pinned features: restricting the attack changes nothing."""
    model = _Only(FREE)
    x = torch.rand(64, 12, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        y = model(x).argmax(dim=1)
    atk = make_attack("pgd", 0.2, steps=10, early_stop=False)
    masked = run_attack(model, x, y, dataclasses.replace(atk, features=FREE))
    full = run_attack(model, x, y, atk)
    assert torch.equal(masked.pred, full.pred)
    assert torch.allclose(masked.x_adv[:, :5], full.x_adv[:, :5])


def test_autoattack_counts_only_successes_within_the_features(batch) -> None:
    model, x, y = batch
    restricted = autoattack(model, x, y, eps=0.3, version="fast", features=FREE)
    unrestricted = autoattack(model, x, y, eps=0.3, version="fast")
    assert restricted.rejected == {}
    assert restricted.robust_accuracy >= unrestricted.robust_accuracy
    assert restricted.robust_accuracy < 1.0


@dataclasses.dataclass(frozen=True)
class _Careless(Attack):
    """PGD that forgets its mask (moves every feature): the engine must reset them and classify again."""

    def perturb(self, module, x, y, eps, **kw):
        return Attack.perturb(dataclasses.replace(self, features=None), module, x, y, eps, **kw)


def test_the_engine_resets_features_an_attack_changed(batch, caplog) -> None:
    model, x, y = batch
    atk = _Careless(0.3, "linf", method="pgd", steps=10, random_start=True, features=FREE)
    caplog.set_level(logging.WARNING)
    out = run_attack(model, x, y, atk)
    assert torch.equal(out.x_adv[:, 5:], x[:, 5:])
    with torch.no_grad():
        assert torch.equal(model(out.x_adv).argmax(dim=1), out.pred)
    assert torch.equal(out.success, out.pred != y)
    assert any("changed features outside" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("bad", [(), (-1,), (1, 1), (0.5,), [0, 1], (True,)])
def test_bad_features_are_config_errors(bad) -> None:
    with pytest.raises(ConfigError, match="features"):
        make_attack("pgd", 0.1, features=bad)


def test_an_index_beyond_the_input_is_a_config_error(batch) -> None:
    model, x, y = batch
    with pytest.raises(ConfigError, match="only 12 features"):
        run_attack(model, x, y, make_attack("pgd", 0.1, features=(0, 12)))


@pytest.fixture(scope="module")
def credit() -> dlaudit.ModelBundle:
    return dlaudit.train("mlp", "synthetic-credit", epochs=30, batch_size=256, seed=0, device="cpu")


def test_the_section_attacks_only_the_numeric_columns(credit) -> None:
    numeric = len(credit.card.encoder["numeric"])
    assert 0 < numeric < credit.card.input_shape[0]
    kw = {"n": 120, "autoattack": "fast", "certify": "none", "smoothing": False, "masking": False}
    sec = dlaudit.robustness(credit, fast=True, features="numeric", **kw)
    full = dlaudit.robustness(credit, fast=True, **kw)
    tab = next(f for f in sec.findings if f.check == "tabular")
    assert f"only the {numeric} numeric column(s)" in tab.message
    assert "features=numeric" in next(f for f in full.findings if f.check == "tabular").message
    values = {m.name: m.value for m in sec.metrics}
    full_values = {m.name: m.value for m in full.metrics}
    for name in ("robustness.pgd_linf.acc@0.1", "robustness.autoattack_linf.acc@0.1"):
        restricted, unrestricted = values[name], full_values[name]
        assert restricted is not None and unrestricted is not None
        assert restricted >= unrestricted  # fewer features to change: never easier to fool


def test_numeric_needs_a_tabular_encoder(digits_cnn) -> None:
    with pytest.raises(ConfigError, match="features=numeric needs a tabular model"):
        dlaudit.robustness(digits_cnn, fast=True, features="numeric", n=20)
    with pytest.raises(ConfigError, match="features must be one of"):
        dlaudit.robustness(digits_cnn, fast=True, features="pixels", n=20)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dlaudit", *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )


def test_cli_attack_features_numeric(tmp_path: Path, credit) -> None:
    dlaudit.save_model(credit, tmp_path / "credit.pt")
    r = _cli("attack", "credit.pt", "--features", "numeric", "--fast", "--n", "60", "--json", "a.json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    params = json.loads((tmp_path / "a.json").read_text())["sections"][0]["params"]
    assert params["features"] == "numeric" and params["scope"] == "attacks"
    dlaudit.save_model(dlaudit.train("cnn", "digits", epochs=1, device="cpu"), tmp_path / "cnn.pt")
    r = _cli("attack", "cnn.pt", "--features", "numeric", "--fast", cwd=tmp_path)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "features=numeric needs a tabular model" in r.stderr


def test_cli_report_attack_features(tmp_path: Path, credit) -> None:
    dlaudit.save_model(credit, tmp_path / "credit.pt")
    r = _cli(
        "report", "credit.pt", "--fast", "--checks", "robustness", "--attack-features", "numeric",
        "-o", "r.html", "--json", "r.json", cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    sec = next(s for s in json.loads((tmp_path / "r.json").read_text())["sections"] if s["name"] == "robustness")
    assert sec["params"]["features"] == "numeric"
    assert any("only the 4 numeric column(s)" in f["message"] for f in sec["findings"])
    dlaudit.save_model(dlaudit.train("cnn", "digits", epochs=1, device="cpu"), tmp_path / "cnn.pt")
    r = _cli("report", "cnn.pt", "--fast", "--attack-features", "numeric", "-o", "c.html", cwd=tmp_path)
    assert r.returncode == 2 and not (tmp_path / "c.html").exists()
    assert "Traceback" not in r.stderr and "features=numeric needs a tabular model" in r.stderr
