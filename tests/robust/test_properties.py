"""Invariants of every attack, as property tests (hypothesis)."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from dlaudit.robust import Attack, run_attack


def _model(seed: int, dropout: bool) -> nn.Module:
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Flatten(), nn.Linear(12, 8), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(0.5))
    layers.append(nn.Linear(8, 3))
    return nn.Sequential(*layers)


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
    gen = torch.Generator().manual_seed(case["seed"])
    model = _model(case["seed"], case["dropout"])
    model.train(case["train_mode"])
    if case["frozen"]:
        model[1].weight.requires_grad_(False)
    flags = [p.requires_grad for p in model.parameters()]
    lo, hi = case["lo"], case["hi"]
    x = lo + (hi - lo) * torch.rand(case["n"], 1, 3, 4, generator=gen)
    x[0, 0, 0, :2] = torch.tensor([lo, hi])  # values on the edges of the range
    y = torch.randint(0, 3, (case["n"],), generator=gen)
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
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype
    delta = (x_adv.double() - x.double()).flatten(1)
    size = delta.abs().max(dim=1).values if case["norm"] == "linf" else delta.norm(dim=1)
    assert float(size.max()) <= case["eps"] + 1e-6
    assert float(x_adv.min()) >= lo and float(x_adv.max()) <= hi
    # the model is left as found: mode, requires_grad, no gradients
    assert model.training == case["train_mode"]
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())
    assert not x_adv.requires_grad and x.grad is None
    # the reported prediction is the eval-mode prediction on the returned input
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x_adv).argmax(dim=1), out.pred)
