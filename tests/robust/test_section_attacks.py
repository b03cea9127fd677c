"""The robustness section runs any registered attack by name, as its capabilities say."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch

import dlaudit
from dlaudit.errors import ConfigError
from dlaudit.robust.analysis import settings
from dlaudit.robust.attacks import AttackMethod, parse_attack_name, register_attack
from dlaudit.robust.attacks import base as attack_base

SMALL = {"fast": True, "n": 40, "eps": [0, 0.1], "noise": [], "min_eps_samples": 0, "examples": 0, "masking": False}


@dataclass(frozen=True)
class Darken(AttackMethod):
    """Moves every feature down by the budget (clipped): a gradient-free attack whose answer is known."""

    key: ClassVar[str] = "darken"
    norms: ClassVar[tuple[str, ...]] = ("linf",)
    gradient_free: ClassVar[bool] = True

    def perturb(self, module, x, y, eps, *, index, seed, value_range, num_classes):
        adv = (x - eps.view(-1, *[1] * (x.dim() - 1))).clamp(*value_range)
        with torch.no_grad():
            pred = module(adv).argmax(dim=1)
        return adv, pred, pred != y


@dataclass(frozen=True)
class TablesOnly(Darken):
    key: ClassVar[str] = "tables-only"
    modalities: ClassVar[tuple[str, ...] | None] = ("tabular",)


@pytest.fixture()
def registered() -> Iterator[None]:
    register_attack("darken")(Darken)
    register_attack("tables-only")(TablesOnly)
    yield
    del attack_base._REGISTRY["darken"], attack_base._REGISTRY["tables-only"]


def test_a_newly_registered_attack_is_a_curve_of_the_section(registered: None, digits_cnn: dlaudit.ModelBundle) -> None:
    sec = dlaudit.robustness(digits_cnn, attacks="darken_linf,pgd_linf", steps=4, **SMALL)
    metrics = {m.name: m.value for m in sec.metrics}
    assert {"robustness.darken_linf.acc@0", "robustness.darken_linf.acc@0.1", "robustness.worst_linf.acc@0.1"} <= set(
        metrics
    )
    data = dlaudit.load_data(bundle=digits_cnn)
    x = data.x[torch.randperm(len(data), generator=torch.Generator().manual_seed(0))[:40].sort().values]
    y = data.y[torch.randperm(len(data), generator=torch.Generator().manual_seed(0))[:40].sort().values]
    with torch.no_grad():
        clean = digits_cnn.module(x).argmax(dim=1) == y
        dark = digits_cnn.module((x - 0.1).clamp(0, 1)).argmax(dim=1) == y
    assert metrics["robustness.darken_linf.acc@0.1"] == pytest.approx(float((clean & dark).float().mean()))
    assert metrics["robustness.worst_linf.acc@0.1"] <= min(
        metrics["robustness.darken_linf.acc@0.1"], metrics["robustness.pgd_linf.acc@0.1"]
    )
    assert sec.params["attacks"] == ["darken_linf", "pgd_linf"]


def test_an_attack_that_does_not_apply_to_the_data_is_skipped_with_the_reason(
    registered: None, digits_cnn: dlaudit.ModelBundle
) -> None:
    sec = dlaudit.robustness(digits_cnn, attacks="tables-only_linf,fgsm_linf", **SMALL)
    names = {m.name for m in sec.metrics}
    assert "robustness.fgsm_linf.acc@0.1" in names and not any("tables_only" in n for n in names)
    assert any(
        f.check == "attack-skipped"
        and f.message == "tables-only_linf was not run: tables-only attacks tabular data; this is image data"
        for f in sec.findings
    )


def test_attack_names_are_a_registered_attack_and_a_norm() -> None:
    assert parse_attack_name("pgd_linf") == ("pgd", "linf")
    assert parse_attack_name("apgd-ce_l2") == ("apgd-ce", "l2")
    assert parse_attack_name("apgd_ce_l2") == ("apgd-ce", "l2")
    s = settings(True, (0.0, 1.0), attacks="fgsm_l2,apgd-ce_linf,square_linf")
    assert s.attacks == ("fgsm_l2", "apgd-ce_linf", "square_linf")  # as given; the metrics spell them apgd_ce_linf


@pytest.mark.parametrize(
    ("attacks", "message"),
    [
        ("cw_linf", r"unknown attack\(s\) cw_linf; give ATTACK_NORM"),
        ("pgd", r"unknown attack\(s\) pgd;"),
        ("pgd_l3", r"unknown attack\(s\) pgd_l3;"),
        ("autoattack_linf", "runs AutoAttack itself"),
    ],
)
def test_bad_attack_names_are_errors(attacks: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings(False, (0.0, 1.0), attacks=attacks)


def test_a_norm_the_attack_does_not_support_is_an_error(registered: None) -> None:
    with pytest.raises(ConfigError, match="darken does not support norm 'l2'; choose from: linf"):
        settings(False, (0.0, 1.0), attacks="darken_l2")


def test_the_section_gives_pgd_its_steps_and_other_attacks_keep_their_papers_settings(
    digits_cnn: dlaudit.ModelBundle,
) -> None:
    from dlaudit.robust.analysis import _attack_for

    s = settings(True, (0.0, 1.0), steps=7, restarts=2, attacks="fgsm_linf,pgd_linf,apgd-ce_linf,square_linf")
    fgsm, pgd, apgd, square = (_attack_for(a, s, None) for a in s.attacks)
    # PGD takes the section's steps and restarts; APGD keeps its paper's 100 steps, as under `dlaudit attack`
    assert (fgsm.steps, pgd.steps, pgd.restarts, apgd.steps, apgd.restarts) == (1, 7, 2, 100, 1)
    assert square.queries == 5000 and square.restarts == 1  # its own settings
    assert pgd.effort == ("steps", "restarts") and fgsm.effort == ()
