"""The Modality objects, their registry, and what attacks, explanation methods and analyses ask of them."""

from __future__ import annotations

import pickle
from collections.abc import Iterator, Sequence
from typing import ClassVar

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
from matplotlib.figure import Figure

import dlaudit
from dlaudit import modalities
from dlaudit.analysis import _REGISTRY as ANALYSES
from dlaudit.analysis import Analysis, run_analysis
from dlaudit.card import ModelCard
from dlaudit.data import AuditData
from dlaudit.errors import CardError, ConfigError
from dlaudit.explain.methods import EXPLAIN_METHODS
from dlaudit.explain.quality import perturbation_curves
from dlaudit.modalities import IMAGE, TABULAR, Modality, get_modality, list_modalities, register_modality
from dlaudit.report.model import Section
from dlaudit.robust.attacks import make_attack
from dlaudit.robust.noise import noise_accuracy


class Tokens(Modality):
    """A discrete-token modality (ids in [0, 9]): what text will be, in miniature."""

    name: ClassVar[str] = "tokens"
    title: ClassVar[str] = "token"
    continuous: ClassVar[bool] = False
    masks_with_baseline: ClassVar[bool] = True

    def segments(self, shape: Sequence[int], groups: Sequence[Sequence[int]] = ()) -> torch.Tensor:
        return torch.arange(shape[-1])

    def perturb(self, x: torch.Tensor, noise: torch.Tensor, value_range: Sequence[float]) -> torch.Tensor:
        low, high = self.domain(value_range)
        return torch.where(noise.abs() > 0.5, torch.full_like(x, low), x)

    def draw_example(self, ax, x, value_range) -> None:
        ax.text(0, 0, " ".join(str(int(v)) for v in x.flatten()))

    def draw_attribution(self, ax, values, *, scale=None) -> None:
        ax.bar(range(values.numel()), values.flatten().tolist())


@pytest.fixture()
def tokens() -> Iterator[Modality]:
    """``tokens`` registered for the test, removed after."""
    modality = register_modality(Tokens())
    yield modality
    del modalities._REGISTRY["tokens"]


def test_the_built_in_modalities_are_registered() -> None:
    assert {"image", "tabular"} <= set(list_modalities())
    assert get_modality("image") is IMAGE and get_modality("tabular") is TABULAR
    assert get_modality(IMAGE) is IMAGE


def test_an_unknown_modality_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown modality 'imag' \(did you mean image\?\); choose from: image, "):
        get_modality("imag")


def test_registering_checks_the_object_and_the_name(tokens: Modality) -> None:
    assert get_modality("tokens") is tokens and "tokens" in list_modalities()
    with pytest.raises(ConfigError, match="already registered"):
        register_modality(Tokens())
    assert register_modality(tokens) is tokens  # the same object again is fine
    with pytest.raises(ConfigError, match="takes a Modality instance"):
        register_modality("tokens")  # type: ignore[arg-type]


def test_what_each_modality_says() -> None:
    assert IMAGE.continuous and IMAGE.spatial and not IMAGE.columns and IMAGE.masks_with_baseline
    assert TABULAR.continuous and TABULAR.columns and not TABULAR.spatial and not TABULAR.masks_with_baseline
    assert IMAGE.domain((0, 1)) == (0.0, 1.0)
    with pytest.raises(ValueError, match="low < high"):
        IMAGE.domain((1.0, 0.0))


def test_segments_are_pixels_for_images_and_columns_for_tables() -> None:
    assert IMAGE.segments((2, 2, 2)).tolist() == [0, 1, 2, 3, 0, 1, 2, 3]  # a pixel's channels together
    assert IMAGE.segments((5,)).tolist() == [0, 1, 2, 3, 4]
    # column 0 is feature 0, column 1 the one-hot features 2 and 3; features 1 and 4 are loose
    assert TABULAR.segments((5,), [(0,), (2, 3)]).tolist() == [0, 2, 1, 1, 3]
    assert TABULAR.segments((3,)).tolist() == [0, 1, 2]


def test_mask_and_hide_segments_set_hidden_parts_to_the_baseline() -> None:
    x = torch.tensor([[0.5, 0.75, 0.25]])
    assert IMAGE.mask(x, torch.tensor([[True, False, True]]), 0.0).tolist() == [[0.0, 0.75, 0.0]]
    segments = TABULAR.segments((3,), [(1, 2)])  # [1, 0, 0]
    hidden = torch.tensor([[True, False]])  # the column (features 1 and 2) hidden
    assert TABULAR.hide_segments(x, hidden, segments, -1.0).tolist() == [[0.5, -1.0, -1.0]]


def test_perturb_adds_the_noise_and_clips_to_the_domain() -> None:
    x = torch.tensor([0.2, 0.9])
    assert torch.allclose(IMAGE.perturb(x, torch.tensor([-0.5, 0.05]), (0.0, 1.0)), torch.tensor([0.0, 0.95]))
    assert IMAGE.clip(torch.tensor([-1.0, 2.0]), (0.0, 1.0)).tolist() == [0.0, 1.0]


def test_numeric_features_come_from_a_tabular_encoder() -> None:
    encoder = {"numeric": [{"name": "age"}, {"name": "income"}], "categorical": []}
    assert TABULAR.numeric_features(encoder) == (0, 1)
    assert TABULAR.numeric_features(None) is None
    assert IMAGE.numeric_features(encoder) is None


def test_drawing_an_example_and_an_attribution() -> None:
    fig = Figure()
    image_ax, image_map, row_ax, row_map = (fig.add_subplot(1, 4, i) for i in range(1, 5))
    IMAGE.draw_example(image_ax, torch.rand(1, 4, 4), (0.0, 1.0))
    IMAGE.draw_attribution(image_map, torch.randn(3, 4, 4))
    TABULAR.draw_example(row_ax, torch.tensor([0.1, 0.5, 0.9]), (0.0, 1.0))
    TABULAR.draw_attribution(row_map, torch.tensor([0.3, -0.2, 0.0]), scale=0.5)
    assert len(image_ax.images) == 1 and image_ax.images[0].get_array().shape == (4, 4)
    assert image_map.images[0].get_clim() == pytest.approx(
        (-image_map.images[0].get_clim()[1], image_map.images[0].get_clim()[1])
    )
    assert len(row_ax.patches) == 3 and len(row_map.patches) == 3 and row_map.get_xlim() == (-0.5, 0.5)


def test_a_modality_pickles_as_the_registered_object() -> None:
    assert pickle.loads(pickle.dumps(TABULAR)) is TABULAR


def test_cards_and_data_name_a_registered_modality_and_return_its_object(tokens: Modality) -> None:
    card = ModelCard(input_shape=(4,), num_classes=2, modality="tokens", value_range=(0.0, 9.0))
    assert card.kind is tokens
    data = AuditData(torch.zeros(3, 4), torch.zeros(3, dtype=torch.long), name="t", modality="tabular")
    assert data.kind is TABULAR
    with pytest.raises(CardError, match="modality must be one of"):
        ModelCard(input_shape=(4,), num_classes=2, modality="sound")


def test_attacks_and_explanation_methods_say_whether_they_apply(tokens: Modality) -> None:
    pgd = make_attack("pgd", 0.1)
    assert pgd.applies_to(IMAGE) is None and pgd.applies_to(TABULAR) is None
    assert pgd.applies_to(tokens) == "pgd moves inputs within an L-p ball and token inputs are discrete"
    gradcam, lime, saliency = EXPLAIN_METHODS["gradcam"], EXPLAIN_METHODS["lime"], EXPLAIN_METHODS["saliency"]
    assert gradcam.applies_to(IMAGE) is None
    assert gradcam.applies_to(TABULAR) == (
        "Grad-CAM explains image models (inputs shaped N, C, H, W); this is tabular data"
    )
    assert (
        saliency.applies_to(tokens) == "Saliency (input gradient) needs input gradients, and token inputs are discrete"
    )
    assert lime.applies_to(tokens) is None  # LIME masks tokens; it needs no gradient
    # image LIME hides segments with the baseline colour, tabular LIME draws columns from the data
    assert lime.scales_with_input(IMAGE) and not lime.scales_with_input(TABULAR)
    assert EXPLAIN_METHODS["ig"].scales_with_input(TABULAR) and not saliency.scales_with_input(IMAGE)


def test_an_analysis_restricted_to_some_modalities_is_skipped_on_others(
    monkeypatch: pytest.MonkeyPatch, digits_cnn: dlaudit.ModelBundle
) -> None:
    def tabular_only(bundle, data, **params) -> Section:
        raise AssertionError("must not run on images")

    monkeypatch.setitem(ANALYSES, "columns", Analysis("columns", "Columns", tabular_only, modalities=("tabular",)))
    data = dlaudit.load_data("digits", bundle=digits_cnn, limit=8)
    section = run_analysis("columns", digits_cnn, data)
    assert (section.status, section.reason) == ("skipped", "Columns applies to tabular data; this is image data")


def test_masking_and_noise_through_a_modality_give_the_same_numbers_as_before(
    digits_cnn: dlaudit.ModelBundle,
) -> None:
    data = dlaudit.load_data("digits", bundle=digits_cnn, limit=16)
    order = torch.stack([torch.randperm(64, generator=torch.Generator().manual_seed(i)) for i in range(16)])
    kw = {"order": order, "baseline": 0.0, "steps": 8}
    plain = perturbation_curves(digits_cnn.module, data.x, data.y, **kw)
    through = perturbation_curves(digits_cnn.module, data.x, data.y, modality=IMAGE, **kw)
    assert (plain.deletion == through.deletion).all() and (plain.insertion == through.insertion).all()
    noise = noise_accuracy(digits_cnn, data.x, data.y, strengths=(0.1, 0.3), seed=0)
    assert noise_accuracy(digits_cnn, data.x, data.y, strengths=(0.1, 0.3), seed=0, modality=IMAGE) == noise
