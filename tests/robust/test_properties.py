"""Invariants of every attack, as property tests (hypothesis)."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from robust_models import assert_attack_invariants, property_case, tiny_mlp

from dlaudit.robust import Attack, run_attack
from dlaudit.robust.attacks import list_attacks, make_attack


@st.composite
def cases(draw: st.DrawFn) -> dict:
    norm = draw(st.sampled_from(["linf", "l2"]))
    method = draw(st.sampled_from(["fgsm", "pgd"]))
    lo = draw(st.sampled_from([0.0, -1.0]))
    hi = lo + draw(st.sampled_from([1.0, 2.0]))
    width = hi - lo
    eps = draw(st.floats(0.0, 1.2 * width if norm == "linf" else 3.0 * width, allow_nan=False))
    return {
        "seed": draw(st.integers(0, 2**16)),
        "n": draw(st.integers(1, 9)),
        "lo": lo,
        "hi": hi,
        "norm": norm,
        "method": method,
        "eps": eps,
        "steps": draw(st.integers(1, 4)),
        "alpha": draw(st.one_of(st.none(), st.floats(1e-3, 2.0 * width))),
        "restarts": draw(st.integers(1, 2)),
        "random_start": draw(st.booleans()),
        "targeted": draw(st.booleans()),
        "early_stop": draw(st.booleans()),
        "train_mode": draw(st.booleans()),
        "frozen": draw(st.booleans()),
        "dropout": draw(st.booleans()),
        "batch_size": draw(st.integers(1, 10)),
    }


@settings(max_examples=60, deadline=None)
@given(cases())
def test_attack_invariants(case: dict) -> None:
    model, flags, x, y = property_case(case, 3)
    lo, hi = case["lo"], case["hi"]
    if case["method"] == "fgsm":
        attack = Attack.fgsm(case["eps"], norm=case["norm"], targeted=case["targeted"])
    else:
        attack = Attack.pgd(
            case["eps"],
            alpha=case["alpha"],
            steps=case["steps"],
            norm=case["norm"],
            random_start=case["random_start"],
            restarts=case["restarts"],
            targeted=case["targeted"],
            early_stop=case["early_stop"],
        )
    out = run_attack(model, x, y, attack, value_range=(lo, hi), seed=case["seed"], batch_size=case["batch_size"])
    x_adv = out.x_adv
    assert_attack_invariants(model, x, x_adv, case, flags)
    # the reported prediction is the eval-mode prediction on the returned input
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x_adv).argmax(dim=1), out.pred)


# -- every registered attack, through one table ----------------------------------------------------


SMALL_SETTINGS = {  # fast settings per attack; every other registered attack runs with its defaults
    "pgd": {"steps": 3},
    "apgd-ce": {"steps": 5},
    "apgd-dlr": {"steps": 5},
    "apgd-t": {"steps": 5, "n_target_classes": 2},
    "fab-t": {"steps": 5, "n_target_classes": 2},
    "square": {"queries": 30},
    "autoattack": {"version": "fast"},
}


@settings(max_examples=25, deadline=None)
@given(
    key=st.sampled_from(list_attacks()),
    norm=st.sampled_from(["linf", "l2"]),
    eps=st.floats(0.0, 0.6),
    seed=st.integers(0, 2**16),
    n=st.integers(1, 7),
    train_mode=st.booleans(),
    frozen=st.booleans(),
)
def test_every_registered_attack_keeps_the_contract(
    key: str, norm: str, eps: float, seed: int, n: int, train_mode: bool, frozen: bool
) -> None:
    model = tiny_mlp(seed, 4)
    model.train(train_mode)
    if frozen:
        model[1].weight.requires_grad_(False)
    flags = [p.requires_grad for p in model.parameters()]
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 3, 4, generator=gen)
    y = torch.randint(0, 4, (n,), generator=gen)
    attack = make_attack(key, eps, norm=norm, **SMALL_SETTINGS.get(key, {}))
    out = run_attack(model, x, y, attack, seed=seed, batch_size=3)
    delta = (out.x_adv.double() - x.double()).flatten(1)
    size = delta.abs().amax(dim=1) if norm == "linf" else delta.norm(dim=1)
    assert float(size.max()) <= eps + 1e-5, key
    assert float(out.x_adv.min()) >= 0.0 and float(out.x_adv.max()) <= 1.0
    assert model.training == train_mode and [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())
    again = run_attack(model, x, y, attack, seed=seed, batch_size=5)
    assert torch.equal(out.success, again.success), f"{key}: same seed, different result for another batch size"
    model.eval()
    with torch.no_grad():
        fooled = model(out.x_adv).argmax(dim=1) != y
    assert bool((fooled | ~out.success).all()), f"{key}: a claimed success does not fool the model"
