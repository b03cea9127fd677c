"""LIME: segments, agreement with lime itself, batching, the tabular path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from explain_helpers import linear_module, tabular_context
from torch import nn

from dlaudit.explain import ExplainContext, ExplainSettings, attribute
from dlaudit.explain._common import columns_for
from dlaudit.explain.lime import grid_segments, lime_images, segment_image
from dlaudit.models import CNN


def test_grid_segments_on_small_images() -> None:
    seg = segment_image(np.zeros((1, 8, 8)))
    assert seg.max() == 15  # a 4x4 grid of 2x2 squares (lime's quickshift finds a single segment here)
    assert (seg[:2, :2] == 0).all() and (seg[6:, 6:] == 15).all()
    assert np.array_equal(grid_segments(3, 5, 2), [[0, 0, 1, 1, 2], [0, 0, 1, 1, 2], [3, 3, 4, 4, 5]])
    assert segment_image(np.zeros((1, 28, 28))).max() == 48  # 7x7 squares of 4x4


def test_slic_segments_on_larger_images() -> None:
    rng = np.random.default_rng(0)
    img = np.zeros((3, 48, 48))
    img[0, :24], img[1, 24:] = 1.0, 1.0
    seg = segment_image(img + 0.05 * rng.random(img.shape))
    assert seg.shape == (48, 48)
    assert 4 <= seg.max() + 1 <= 100
    assert set(np.unique(seg)) == set(range(seg.max() + 1))  # numbered 0..S-1


def test_lime_weights_match_lime_image_with_its_defaults() -> None:
    """Same seed and segmentation: the same segment weights as lime_image (to float precision)."""
    from lime import lime_image

    torch.manual_seed(0)
    model = CNN((1, 8, 8), 10, channels=4, hidden=16).eval()
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    seg = segment_image(x[0].numpy())

    def classify(images: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return torch.softmax(model(torch.from_numpy(images[..., 0]).float()[:, None]), dim=1).numpy()

    expected, labels = [], []
    for img in x:
        exp = lime_image.LimeImageExplainer(random_state=0).explain_instance(
            img[0].double().numpy(),
            classify,
            segmentation_fn=lambda _i: seg,
            random_seed=0,
            num_samples=300,
            top_labels=1,
        )
        labels.append(exp.top_labels[0])
        weights = dict(exp.local_exp[exp.top_labels[0]])
        expected.append([weights[k] for k in range(seg.max() + 1)])
    ours = lime_images(model, x, torch.tensor(labels), num_samples=300, seed=0, hide_color=None)
    np.testing.assert_allclose(np.stack(ours.coefficients), np.array(expected), atol=1e-6)


def test_lime_finds_the_only_segment_that_matters() -> None:
    """A model whose class-1 logit is 20 x (mean of the top-left 2x2 block): segment 0 explains it."""

    class TopLeft(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            s = 20 * x[:, 0, :2, :2].mean(dim=(1, 2)) - 10
            return torch.stack([torch.zeros_like(s), s], dim=1)

    x = torch.ones(1, 1, 8, 8)
    ctx = ExplainContext("image", (0.0, 1.0), torch.zeros(2, 1, 8, 8))
    res = attribute("lime", TopLeft(), x, torch.tensor([1]), ctx)
    lime_map = res.values[0, 0]
    assert lime_map[0, 0] > 0.5
    assert lime_map[:2, :2].min() > lime_map[2:, 2:].abs().max() * 10
    assert res.extras["segments"] == 16


def test_lime_classifies_in_batches_of_at_least_256() -> None:
    model = CNN((1, 8, 8), 3, channels=2, hidden=4).eval()
    sizes: list[int] = []
    handle = model.register_forward_hook(lambda _m, inp, _o: sizes.append(len(inp[0])))
    ctx = ExplainContext(
        "image", (0.0, 1.0), torch.zeros(2, 1, 8, 8), settings=ExplainSettings(lime_samples=600, lime_batch_size=256)
    )
    try:
        attribute("lime", model, torch.rand(2, 1, 8, 8), torch.tensor([0, 1]), ctx)
    finally:
        handle.remove()
    assert sizes == [1] + [256, 256, 88] * 2  # first, one row: the memory a row takes (dlaudit.explain.memory)


def test_tabular_lime_on_a_linear_model() -> None:
    bg = torch.rand(200, 4, generator=torch.Generator().manual_seed(0))
    ctx = tabular_context(bg, settings=ExplainSettings(lime_tabular_samples=500))
    x = torch.tensor([[0.9, 0.1, 0.9, 0.1]])
    res = attribute("lime", linear_module(), x, torch.tensor([2]), ctx)
    assert res.values.shape == (1, 4)
    # class 2's logit is -a + 2c + d: feature c (weight 2) matters most, with a positive sign
    assert int(res.values[0].abs().argmax()) == 2 and res.values[0, 2] > 0


def test_tabular_lime_puts_a_categorical_weight_on_the_active_one_hot_feature() -> None:
    encoder = {
        "numeric": [{"name": "n", "min": 0.0, "max": 1.0}],
        "categorical": [{"name": "colour", "categories": ["blue", "red", "green"]}],
        "target": "t",
        "classes": ["0", "1"],
    }
    columns = columns_for(4, None, encoder)
    assert [(c.name, c.features, c.categorical) for c in columns] == [("n", (0,), False), ("colour", (1, 2, 3), True)]
    model = nn.Sequential(nn.Linear(4, 2)).eval()
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.5, -1.0, 3.0, 0.0]]))
        model[0].bias.zero_()
    gen = torch.Generator().manual_seed(0)
    bg = torch.cat(
        [
            torch.rand(100, 1, generator=gen),
            torch.nn.functional.one_hot(torch.randint(0, 3, (100,), generator=gen), 3).float(),
        ],
        dim=1,
    )
    ctx = ExplainContext("tabular", (0.0, 1.0), bg, settings=ExplainSettings(lime_tabular_samples=500), columns=columns)
    x = torch.tensor([[0.5, 0.0, 1.0, 0.0]])  # colour = red
    res = attribute("lime", model, x, torch.tensor([1]), ctx)
    assert res.values[0, 1] == 0 and res.values[0, 3] == 0  # inactive categories get nothing
    assert res.values[0, 2] > 0  # red raises class 1


@pytest.mark.parametrize("seed", [0, 1])
def test_lime_is_seeded(seed: int) -> None:
    model = CNN((1, 8, 8), 3, channels=2, hidden=4).eval()
    x = torch.rand(2, 1, 8, 8)
    ctx = ExplainContext(
        "image", (0.0, 1.0), torch.zeros(2, 1, 8, 8), seed=seed, settings=ExplainSettings(lime_samples=200)
    )
    a = attribute("lime", model, x, torch.tensor([0, 1]), ctx).values
    b = attribute("lime", model, x, torch.tensor([0, 1]), ctx).values
    assert torch.equal(a, b)
