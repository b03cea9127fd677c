"""The text modality: discrete ids, one segment per token, masking by id, its own section builders."""

from __future__ import annotations

import torch
from matplotlib.figure import Figure

from dlaudit.analysis import get_analysis
from dlaudit.modalities import IMAGE, TEXT, get_modality
from dlaudit.modalities.text import mask_id_of
from dlaudit.text.vocab import WordVocab


def test_text_is_registered_and_discrete() -> None:
    assert get_modality("text") is TEXT
    assert not TEXT.continuous and not TEXT.spatial and not TEXT.columns


def test_masking_and_noise_substitute_ids() -> None:
    x = torch.tensor([[5, 6, 7, 0]])
    hidden = torch.tensor([[False, True, False, False]])
    masked = TEXT.hide_segments(x, hidden, TEXT.segments((4,)), baseline=2)
    assert masked.tolist() == [[5, 2, 7, 0]] and masked.dtype == torch.long
    noisy = TEXT.perturb(x, torch.tensor([[0.0, 9.4, 0.0, 40.0]]), (0, 20))
    assert noisy.tolist() == [[5, 9, 7, 20]]  # replaced where the noise is non-zero, clipped into the ids
    assert TEXT.probe((3,), (0, 20)).tolist() == [[0, 0, 0], [0, 0, 0]]
    assert TEXT.probe((3,), (0, 20)).dtype == torch.long


def test_mask_id_falls_back_to_unknown() -> None:
    vocab = WordVocab.build(["a b"], min_count=1)
    assert mask_id_of(vocab) == vocab.mask_id

    class NoMask:
        pad_id, unk_id, mask_id = 0, 1, None

    assert mask_id_of(NoMask()) == 1


def test_text_answers_the_value_analyses_with_its_own_builders() -> None:
    for name in ("explain", "robustness", "fairness"):
        builder = TEXT.section_builder(name)
        assert builder is not None and builder.endswith(("explain_text", "robustness_text", "fairness_text"))
        assert IMAGE.section_builder(name) is None
        assert get_analysis(name).applies_to(TEXT) is None
    assert TEXT.section_builder("performance") is None


def test_drawing() -> None:
    fig = Figure()
    ax = fig.subplots()
    TEXT.draw_example(ax, torch.tensor([4, 5, 0]), (0, 9))
    TEXT.draw_attribution(ax, torch.tensor([0.5, -1.0, 0.0]))
    assert ax.get_ylim() == (-1.0, 1.0)
