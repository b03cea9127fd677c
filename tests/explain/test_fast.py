"""The explanation methods' fast copy: batch norm folded, the same attributions, the user's model untouched."""

from __future__ import annotations

import copy

import pytest
import torch
from captum.attr import IntegratedGradients, Occlusion
from torch import nn

import dlaudit.explain.fast as fast
from dlaudit.explain import ExplainContext, ExplainSettings, attribute
from dlaudit.explain.fast import fast_module, foldable
from dlaudit.models import CNN


class _Block(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width)
        self.conv2, self.bn2 = nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))


def _resnet() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, bias=False),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        _Block(4),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 3),
    )
    for m in model.modules():  # running statistics as after training
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


@pytest.fixture(scope="module")
def case() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    module = _resnet()
    x = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        target = module(x).argmax(1)
    return module, x, target


def _ctx(x: torch.Tensor, **settings) -> ExplainContext:
    return ExplainContext("image", (0.0, 1.0), x, settings=ExplainSettings(**settings), seed=3)


def _close(a: torch.Tensor, b: torch.Tensor, rel: float = 1e-5) -> None:
    assert float((a - b).abs().max()) <= rel * float(b.abs().max()), float((a - b).abs().max() / b.abs().max())


def test_the_copy_folds_batch_norm_and_leaves_the_model_as_it_was(case) -> None:
    module, x, _ = case
    before = copy.deepcopy(module.state_dict())
    folded = fast_module(module, x)
    assert folded is not module
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in module.modules()) == 3
    assert all(torch.equal(v, module.state_dict()[k]) for k, v in before.items())
    assert fast_module(module, x) is folded  # one copy per model
    with torch.no_grad():
        _close(folded(x), module(x))


def test_occlusion_on_the_copy_equals_captums_on_the_model(case) -> None:
    module, x, target = case
    ref = Occlusion(module).attribute(
        x, sliding_window_shapes=(3, 2, 2), strides=(3, 1, 1), baselines=0.0, target=target
    )
    out = attribute("occlusion", module, x, target, _ctx(x, occlusion_window=2))
    _close(out.values, ref)


def test_gradient_methods_run_on_the_model_itself_and_stay_complete(case) -> None:
    module, x, target = case
    assert fast_module(module, x, gradients=True) is module
    ref = IntegratedGradients(module).attribute(x, baselines=torch.zeros_like(x), target=target, n_steps=16)
    out = attribute("ig", module, x, target, _ctx(x, ig_steps=16))
    _close(out.values, ref)
    assert float(out.extras["delta"].abs().max()) < 1e-2 * float(out.values.abs().sum((1, 2, 3)).max())


def test_folded_gradients_agree_when_switched_on(case, monkeypatch) -> None:
    module, x, target = case
    plain = attribute("ig", module, x, target, _ctx(x, ig_steps=16))
    monkeypatch.setattr(fast, "GRADIENTS_FOLDED", True)
    assert fast_module(module, x, gradients=True) is not module
    folded = attribute("ig", module, x, target, _ctx(x, ig_steps=16))
    _close(folded.values, plain.values)
    _close(folded.extras["delta"], plain.extras["delta"], rel=1e-3)


class _Branchy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn, self.fc = nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.bn(self.conv(x))
        if h.sum() > 0:  # data-dependent control flow: torch.fx cannot trace it
            h = h * 2
        return self.fc(h.mean((2, 3)))


def test_the_model_itself_when_it_cannot_or_must_not_be_folded(case) -> None:
    module, x, _ = case
    branchy = _Branchy().eval()
    assert foldable(branchy, torch.rand(2, 1, 4, 4))
    assert fast_module(branchy, torch.rand(2, 1, 4, 4)) is branchy
    digits = CNN((1, 8, 8), 3).eval()
    assert fast_module(digits, torch.rand(2, 1, 8, 8)) is digits  # no batch norm
    training = _resnet().train()
    assert fast_module(training, x) is training
    hooked = _resnet()
    handle = hooked[0].register_forward_hook(lambda *a: None)
    assert fast_module(hooked, x) is hooked
    handle.remove()
    assert fast_module(module, x.flatten(1)) is module  # not images


def test_an_in_place_update_makes_a_new_copy() -> None:
    module = _resnet()
    x = torch.rand(2, 3, 8, 8)
    first = fast_module(module, x)
    with torch.no_grad():
        module[0].weight.mul_(2.0)
        expected = module(x)
    second = fast_module(module, x)
    assert second is not first
    with torch.no_grad():
        _close(second(x), expected)


def test_probabilities_for_lime_and_the_trust_metrics_come_from_the_copy(case) -> None:
    from dlaudit.explain._common import batched_probabilities

    module, x, _ = case
    with torch.no_grad():
        ref = torch.softmax(module(x), dim=1)
    probs = batched_probabilities(module, x, batch_size=3)
    _close(probs, ref)
    assert fast._CACHE[module][1] is not None  # a folded copy was made and kept for it
