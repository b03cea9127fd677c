"""Sound bounds (IBP, CROWN-IBP, CROWN): soundness as property tests, tightness, the layer walk, errors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from robust_models import LinearMargin
from torch import nn

import dlaudit
from dlaudit.errors import AnalysisError, ConfigError, DataError
from dlaudit.models import Normalize
from dlaudit.robust import bounds, pgd
from dlaudit.robust.bounds import chain_of, interval_bounds, linear_bounds, margin_lower_bounds
from dlaudit.robust.certify import verified_accuracy

METHODS = ("ibp", "crown-ibp", "crown")


# -- random networks of every supported layer ------------------------------------------------


def _randomise_bn(bn: nn.Module, gen: torch.Generator) -> None:
    with torch.no_grad():
        bn.running_mean.uniform_(-0.5, 0.5, generator=gen)
        bn.running_var.uniform_(0.3, 2.0, generator=gen)
        bn.weight.uniform_(-1.5, 1.5, generator=gen)
        bn.bias.uniform_(-0.5, 0.5, generator=gen)


@st.composite
def networks(draw: st.DrawFn) -> tuple[nn.Module, tuple[int, ...]]:
    seed = draw(st.integers(0, 2**16))
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    image = draw(st.booleans())
    layers: list[nn.Module] = []
    if image:
        c, h = draw(st.integers(1, 2)), draw(st.integers(5, 7))
        shape: tuple[int, ...] = (c, h, h)
        if draw(st.booleans()):
            layers.append(Normalize([0.4] * c, [0.3 + 0.2 * i for i in range(c)], ndim=3))
        out = draw(st.integers(2, 4))
        conv = [
            nn.Conv2d(c, out, draw(st.integers(1, 3)), stride=draw(st.integers(1, 2)), padding=draw(st.integers(0, 1))),
            nn.ReLU(),
        ]
        if draw(st.booleans()):
            bn = nn.BatchNorm2d(out)
            _randomise_bn(bn, gen)
            conv.insert(1, bn)
        layers.append(nn.Sequential(*conv) if draw(st.booleans()) else conv[0])
        if not isinstance(layers[-1], nn.Sequential):
            layers += conv[1:]
        pool = draw(st.sampled_from(["max", "max-overlap", "avg", "avg-ceil", "adaptive", "none"]))
        if pool == "max":
            layers.append(nn.MaxPool2d(2))
        elif pool == "max-overlap":
            layers.append(nn.MaxPool2d(2, stride=1, padding=1))
        elif pool == "avg":
            layers.append(nn.AvgPool2d(2, stride=1, padding=1))
        elif pool == "avg-ceil":
            layers.append(nn.AvgPool2d(2, ceil_mode=True))
        elif pool == "adaptive":
            layers.append(nn.AdaptiveAvgPool2d(2))
        if draw(st.booleans()):
            layers += [nn.Conv2d(out, 3, 2, padding=1), nn.ReLU()]
        if draw(st.booleans()):
            layers.append(nn.Dropout2d(0.3))
        layers.append(nn.Flatten())
    else:
        shape = (draw(st.integers(2, 6)),)
        if draw(st.booleans()):
            layers.append(Normalize([0.5] * shape[0], [0.25] * shape[0], ndim=1))
    with torch.no_grad():
        width = nn.Sequential(*layers)(torch.zeros(1, *shape)).flatten(1).shape[1] if layers else shape[0]
    if not layers:
        layers.append(nn.Identity())
    for _ in range(draw(st.integers(1, 2))):
        hidden = draw(st.integers(3, 8))
        block: list[nn.Module] = [nn.Linear(width, hidden), nn.ReLU()]
        if draw(st.booleans()):
            bn = nn.BatchNorm1d(hidden)
            _randomise_bn(bn, gen)
            block.append(bn)
        if draw(st.booleans()):
            block.append(nn.Dropout(0.5))
        layers.append(nn.Sequential(*block) if draw(st.booleans()) else nn.Sequential(nn.Identity(), *block))
        width = hidden
    layers.append(nn.Linear(width, draw(st.integers(2, 4))))
    return nn.Sequential(*layers).double().eval(), shape


def _points(xl: torch.Tensor, xu: torch.Tensor, gen: torch.Generator, count: int = 64) -> torch.Tensor:
    """Random points of the box: uniform inside, and random vertices."""
    b = len(xl)
    u = torch.rand((count, *xl.shape), generator=gen, dtype=xl.dtype)
    u[count // 2 :] = (u[count // 2 :] > 0.5).to(xl.dtype)
    return (xl + (xu - xl) * u).reshape(count * b, *xl.shape[1:])


def _margins(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (z.gather(1, y.view(-1, 1)) - z).scatter(1, y.view(-1, 1), math.inf)


@settings(max_examples=100, deadline=None)
@given(networks(), st.floats(0.0, 0.3), st.integers(0, 2**16))
def test_bounds_contain_every_point_of_the_ball(
    net_shape: tuple[nn.Module, tuple[int, ...]], eps: float, seed: int
) -> None:
    net, shape = net_shape
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand((3, *shape), generator=gen, dtype=torch.float64)
    with torch.no_grad():
        k = net(x).shape[1]
    y = torch.randint(0, k, (3,), generator=gen)
    xl, xu = (x - eps).clamp(0, 1), (x + eps).clamp(0, 1)
    with torch.no_grad():
        lo, hi = interval_bounds(net, xl, xu)
        chain = chain_of(net, x)
        margins = {m: margin_lower_bounds(chain, xl, xu, y, k, m) for m in METHODS}
        logit_lin = {m: linear_bounds(net, xl, xu, method=m) for m in ("crown-ibp", "crown")}
        boxes = chain.intervals(xl, xu)
        raw = bounds._backward_lower(
            chain, boxes, len(chain.ops), bounds.margin_spec(y, k, dtype=x.dtype)
        )  # CROWN-IBP before the max with IBP
    raw = raw.scatter(1, y.view(-1, 1), math.inf)
    x_adv = pgd(net, x, y, eps=eps, steps=10, value_range=(0.0, 1.0), seed=seed) if eps > 0 else x
    assert float((x_adv - x).abs().max()) <= eps + 1e-7
    x_adv = torch.minimum(torch.maximum(x_adv, xl), xu)  # PGD holds eps in float32: up to 1e-8 outside the float64 box
    pts = torch.cat([_points(xl, xu, gen), x_adv, x])
    owner = torch.cat([torch.arange(3).repeat(64), torch.arange(3), torch.arange(3)])
    with torch.no_grad():
        z = net(pts)
    tol = 1e-9 * (1 + z.abs().max())
    assert bool((z >= lo[owner] - tol).all() and (z <= hi[owner] + tol).all()), "a logit left the IBP bounds"
    m = _margins(z, y[owner])
    for method, lower in (*margins.items(), ("crown-ibp (raw)", raw)):
        assert bool((m >= lower[owner] - tol).all()), f"a margin fell below its {method} bound"
    for method, (low, up) in logit_lin.items():
        assert bool((z >= low[owner] - tol).all() and (z <= up[owner] + tol).all()), f"a logit left the {method} bounds"
        assert bool((low >= lo - tol).all() and (up <= hi + tol).all()), f"{method} looser than IBP on a logit"
    finite = torch.isfinite(margins["ibp"])
    assert bool((margins["crown-ibp"][finite] >= margins["ibp"][finite]).all())
    assert bool((margins["crown"][finite] >= margins["ibp"][finite] - tol).all())


def test_bounds_are_exact_on_a_linear_model() -> None:
    """A single Linear layer: IBP is exact, and so is the folded margin ``(w_y - w_j) . x + b_y - b_j``."""
    net = nn.Sequential(nn.Linear(2, 2)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, -2.0], [0.5, 1.0]]))
        net[0].bias.copy_(torch.tensor([0.25, -0.5]))
    x = torch.tensor([[0.5, 0.5]], dtype=torch.float64)
    xl, xu = x - 0.1, x + 0.1
    lo, hi = interval_bounds(net, xl, xu)
    assert torch.allclose(lo, torch.tensor([[-0.25 - 0.3, 0.25 - 0.15]], dtype=torch.float64))
    assert torch.allclose(hi, torch.tensor([[-0.25 + 0.3, 0.25 + 0.15]], dtype=torch.float64))
    # margin z_1 - z_0 = (-0.5, 3) . x - 0.75 = 0.5 at x; over the box it falls by 0.1 * 3.5 = 0.35
    for method in METHODS:
        m = margin_lower_bounds(chain_of(net), xl, xu, torch.tensor([1]), 2, method)
        assert m[0, 0].item() == pytest.approx(0.5 - 0.35)
        assert m[0, 1].item() == math.inf


def test_crown_is_exact_where_ibp_is_loose() -> None:
    """Two Linear layers with no ReLU between: CROWN composes them exactly, IBP does not."""
    net = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Linear(2, 1, bias=False)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 1.0], [1.0, -1.0]]))
        net[1].weight.copy_(torch.tensor([[1.0, -1.0]]))  # the composite is 2 * x_2
    xl, xu = torch.zeros(1, 2, dtype=torch.float64), torch.ones(1, 2, dtype=torch.float64)
    lo, hi = interval_bounds(net, xl, xu)
    assert (lo.item(), hi.item()) == (-1.0, 3.0)  # h1 in [0, 2], h2 in [-1, 1]
    lo, hi = linear_bounds(net, xl, xu, method="crown-ibp")
    assert (lo.item(), hi.item()) == (0.0, 2.0)


def test_relu_relaxation_by_hand() -> None:
    """relu(x) on [-1, 3]: the upper line is 0.75 (x + 1); the adaptive lower slope is 1 (u >= -l)."""
    relu = bounds._ReLU("r")
    lo, hi = torch.tensor([[-1.0]]), torch.tensor([[3.0]])
    lam, bias = relu.backward(torch.tensor([[[1.0], [-1.0]]]), lo, hi)
    assert lam.tolist() == [[[1.0], [-0.75]]]  # lower bound of relu: x; lower bound of -relu: -0.75 x - 0.75
    assert bias.tolist() == [[0.0, -0.75]]


def test_maxpool_relaxation_by_hand() -> None:
    """A dominant element makes the pool exact; otherwise the upper side is the largest upper bound."""
    pool = bounds._MaxPool("p", nn.MaxPool2d(2))
    lo = torch.tensor([[[[2.0, 0.0], [0.0, 0.5]]]])
    hi = torch.tensor([[[[3.0, 1.0], [1.0, 2.5]]]])
    lam, bias = pool.backward(
        torch.tensor([[[[[-1.0]]]]]), lo, hi
    )  # lower bound of -max: not dominant (0.5..2.5 overlaps 2..3)
    assert lam.abs().sum().item() == 0.0 and bias.item() == -3.0
    hi[0, 0, 1, 1] = 1.5  # now element 0 dominates: max = x_0 exactly
    lam, bias = pool.backward(torch.tensor([[[[[-1.0]]]]]), lo, hi)
    assert lam.view(-1).tolist() == [-1.0, 0.0, 0.0, 0.0] and bias.item() == 0.0


# -- the layer walk ------------------------------------------------------------------------------


class ChainNet(nn.Module):
    """A forward written by hand, but a chain: fx tracing accepts it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.fc = nn.Linear(3 * 4 * 4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv(x))
        x = x.view(x.size(0), -1)
        return self.fc(x)


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(F.relu(self.a(x)) + x)


class CustomLinear(nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) * 2


def test_a_traced_chain_bounds_like_its_sequential() -> None:
    torch.manual_seed(0)
    net = ChainNet().double().eval()
    seq = nn.Sequential(net.conv, nn.ReLU(), nn.Flatten(), net.fc)
    x = torch.rand(4, 1, 4, 4, dtype=torch.float64)
    xl, xu = (x - 0.05).clamp(0, 1), (x + 0.05).clamp(0, 1)
    for method in ("ibp", "crown-ibp"):
        a = linear_bounds(net, xl, xu, method=method)
        b = linear_bounds(seq, xl, xu, method=method)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


@pytest.mark.parametrize(
    ("model", "names"),
    [
        (nn.Sequential(nn.Linear(4, 4), nn.LSTM(4, 4)), ["layer '1' (LSTM)"]),
        (
            nn.Sequential(nn.Linear(4, 4), nn.Sequential(nn.ReLU(), nn.Sigmoid()), nn.Linear(4, 2)),
            ["layer '1.1' (Sigmoid)"],
        ),
        (nn.Sequential(CustomLinear(4, 2)), ["layer '0' (CustomLinear, a Linear with its own forward)"]),
        (
            nn.Sequential(nn.Flatten(), nn.BatchNorm1d(4, track_running_stats=False), nn.Linear(4, 2)),
            ["layer '1' (BatchNorm1d)"],
        ),
        (LinearMargin([1.0, 2.0, 3.0, 4.0]), ["operation 'zeros_like' (torch.zeros_like)"]),
        (Residual(), ["more than once", "residual"]),
    ],
)
def test_unsupported_models_raise_naming_the_layer(model: nn.Module, names: list[str]) -> None:
    x = torch.rand(2, 4)
    with pytest.raises(AnalysisError) as err:
        interval_bounds(model, x, x + 0.1)
    for name in names:
        assert name in str(err.value)
    assert "randomized smoothing" in str(err.value)


def test_unsupported_layer_message_lists_what_is_supported() -> None:
    with pytest.raises(AnalysisError) as err:
        chain_of(nn.Sequential(nn.Linear(4, 4), nn.Tanh()))
    assert str(err.value) == bounds.MSG_UNSUPPORTED.format(what="layer '1' (Tanh)", supported=bounds.SUPPORTED)


def test_torchscript_and_hooks_are_refused() -> None:
    net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    with pytest.raises(AnalysisError, match="RecursiveScriptModule"):
        chain_of(torch.jit.script(net))
    handle = net[1].register_forward_hook(lambda m, i, o: o * 2)
    try:
        with pytest.raises(AnalysisError, match="forward hook on layer '1' \\(ReLU\\)"):
            chain_of(net)
    finally:
        handle.remove()
    chain_of(net)


class Mixer(nn.Module):
    """Reshapes a batch so that rows mix samples: no per-sample bound is possible."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.reshape(-1, 2))


class Wrapper(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.flatten(1))


def test_traced_reshapes_must_keep_samples_apart_and_hooks_inside_traced_modules_count() -> None:
    with pytest.raises(AnalysisError, match="mixing samples"):
        interval_bounds(Mixer(), torch.zeros(3, 4), torch.ones(3, 4))
    inner = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    chain_of(Wrapper(inner), torch.rand(2, 4))
    handle = inner[0].register_forward_pre_hook(lambda m, i: (i[0] * 0,))
    try:
        with pytest.raises(AnalysisError, match="forward hook on layer 'inner.0' \\(Linear\\)"):
            chain_of(Wrapper(inner))
    finally:
        handle.remove()


def test_a_chain_that_does_not_reproduce_the_model_is_refused() -> None:
    net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    handle = torch.nn.modules.module.register_module_forward_hook(
        lambda m, i, o: o + 1 if isinstance(m, nn.Linear) else o
    )
    try:
        with pytest.raises(AnalysisError, match="do not reproduce its output"):
            interval_bounds(net, torch.zeros(2, 4), torch.ones(2, 4))
    finally:
        handle.remove()


# -- verified accuracy ------------------------------------------------------------------------


@pytest.mark.parametrize("eps", [0.01, 0.03])
def test_verified_accuracy_never_exceeds_pgd_accuracy(
    digits_cnn: dlaudit.ModelBundle, digits_splits, eps: float
) -> None:
    x, y = digits_splits.test.x[:200], digits_splits.test.y[:200]
    robust = digits_cnn.predict(pgd(digits_cnn, x, y, eps=eps, steps=20)) == y
    results = {m: verified_accuracy(digits_cnn, x, y, eps=eps, method=m) for m in METHODS}
    for method, res in results.items():
        assert not bool((res.verified & ~robust).any()), f"{method} verified a sample PGD fooled"
        assert res.accuracy <= float(robust.double().mean())
        assert res.verified.shape == (200,) and res.margin_lower.shape == (200, 10)
        assert torch.equal(res.verified, res.worst_margin > 0)
    assert results["crown-ibp"].accuracy >= results["ibp"].accuracy
    assert bool((results["crown-ibp"].margin_lower >= results["ibp"].margin_lower).all())
    if eps == 0.03:  # measured on 200 digits: IBP 0.07, CROWN-IBP 0.77, CROWN 0.86, PGD-20 0.95
        assert results["crown-ibp"].accuracy > results["ibp"].accuracy + 0.2


def test_verified_accuracy_at_eps_zero_is_clean_accuracy(digits_mlp: dlaudit.ModelBundle, digits_splits) -> None:
    x, y = digits_splits.test.x[:100], digits_splits.test.y[:100]
    res = verified_accuracy(digits_mlp, x, y, eps=0.0, method="crown-ibp")
    assert torch.equal(res.verified, digits_mlp.predict(x) == y)


def test_verified_accuracy_leaves_the_model_as_found(digits_splits, snapshot) -> None:
    net = dlaudit.build_model("cnn", (1, 8, 8), 10).train()
    before = snapshot(net)
    verified_accuracy(net, digits_splits.test.x[:10], digits_splits.test.y[:10], eps=0.05, method="crown")
    assert snapshot(net) == before


def test_same_bounds_whatever_the_batch_size(digits_cnn: dlaudit.ModelBundle, digits_splits) -> None:
    x, y = digits_splits.test.x[:40], digits_splits.test.y[:40]
    a = verified_accuracy(digits_cnn, x, y, eps=0.02, method="crown-ibp", batch_size=7)
    b = verified_accuracy(digits_cnn, x, y, eps=0.02, method="crown-ibp", batch_size=40)
    assert torch.equal(a.verified, b.verified)
    assert torch.allclose(a.margin_lower, b.margin_lower, atol=1e-5)


def test_bad_input_is_an_error_that_says_what_is_valid(digits_cnn: dlaudit.ModelBundle, digits_splits) -> None:
    x, y = digits_splits.test.x[:4], digits_splits.test.y[:4]
    with pytest.raises(ConfigError, match="unknown bound method 'lp'; choose from: ibp, crown-ibp, crown"):
        verified_accuracy(digits_cnn, x, y, eps=0.1, method="lp")
    with pytest.raises(ConfigError, match="eps .* must be a number >= 0"):
        verified_accuracy(digits_cnn, x, y, eps=-0.1)
    with pytest.raises(ConfigError, match="batch_size must be an integer of at least 1"):
        verified_accuracy(digits_cnn, x, y, eps=0.1, batch_size=0)
    with pytest.raises(DataError, match="outside the value range"):
        verified_accuracy(digits_cnn, x + 2, y, eps=0.1)
    with pytest.raises(DataError, match="x_lower must be <= x_upper"):
        interval_bounds(digits_cnn.module, x, x - 0.1)
    with pytest.raises(DataError, match="spec must have shape"):
        linear_bounds(digits_cnn.module, x, x + 0.1, torch.ones(2, 3, 10))
