"""Token IG leaves out trailing padding only where the model masks it, and still equals captum's LayerIntegratedGradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import dlaudit
from dlaudit.errors import AnalysisError
from dlaudit.explain.tokens import _trimmed_width, find_embedding, token_ig
from tests.formats.hf_folders import SENTENCES, tiny_bert

captum_attr = pytest.importorskip("captum.attr")
pytest.importorskip("transformers")


class MeanOverAll(nn.Module):
    """Averages the embeddings of every position, padding included: its logits change when padding is cut."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embedding = nn.Embedding(20, 4)
        self.fc = nn.Linear(4, 2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.fc(self.embedding(ids).mean(dim=1))


def _captum(module: nn.Module, ids: torch.Tensor, target: torch.Tensor, pad: int, steps: int) -> torch.Tensor:
    lig = captum_attr.LayerIntegratedGradients(module, find_embedding(module))
    return lig.attribute(ids, baselines=torch.full_like(ids, pad), target=target, n_steps=steps).sum(-1).detach()


def test_a_bert_folder_is_trimmed_and_equals_captum(tmp_path) -> None:
    bundle = dlaudit.load_model(tiny_bert(tmp_path / "bert"), device="cpu")
    module, pad = bundle.module, bundle.tokenizer.pad_id
    ids = bundle.tokenizer.encode(SENTENCES, min_len=32).ids
    with torch.no_grad():
        out_x, out_b = module(ids), module(torch.full_like(ids, pad))
    assert _trimmed_width(module, ids, pad, out_x, out_b) == int((ids != pad).sum(1).max()) < 32
    target = out_x.argmax(1)
    ours, delta = token_ig(module, ids, target, pad_id=pad, steps=16)
    assert ours.shape == ids.shape and ours[ids == pad].abs().max() == 0
    torch.testing.assert_close(ours, _captum(module, ids, target, pad, 16), rtol=1e-5, atol=1e-5)
    assert all(p.requires_grad for p in module.parameters())  # left as found


def test_a_model_that_reads_its_padding_keeps_the_full_width() -> None:
    module = MeanOverAll().eval()
    ids = torch.tensor([[3, 4, 5, 0, 0, 0], [6, 7, 0, 0, 0, 0]])
    with torch.no_grad():
        out_x, out_b = module(ids), module(torch.zeros_like(ids))
    assert _trimmed_width(module, ids, 0, out_x, out_b) == 6
    target = out_x.argmax(1)
    ours, _ = token_ig(module, ids, target, pad_id=0, steps=8)
    torch.testing.assert_close(ours, _captum(module, ids, target, 0, 8), rtol=1e-5, atol=1e-6)


class FixedWidth(nn.Module):
    """Logits from the flattened embeddings of exactly ``width`` tokens: a shorter input is a shape error."""

    def __init__(self, width: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embedding, self.fc = nn.Embedding(20, 2), nn.Linear(2 * width, 2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.fc(self.embedding(ids).flatten(1))


def test_an_exported_fixed_width_model_keeps_its_full_width() -> None:
    eager = FixedWidth(8).eval()
    ids = torch.tensor([[3, 4, 5, 0, 0, 0, 0, 0], [6, 7, 0, 0, 0, 0, 0, 0]])
    dynamic = {"ids": {0: torch.export.Dim.DYNAMIC}}  # token IG runs texts x steps rows at once
    program = torch.export.export(eager, (ids,), dynamic_shapes=dynamic)
    with torch.no_grad():
        out_x, out_b = eager(ids), eager(torch.zeros_like(ids))
    with pytest.raises(AssertionError, match="Guard failed"):  # what an exported program raises when short
        program.module()(ids[:, :2])
    for module in (program.module(), torch.export.unflatten(program)):
        assert _trimmed_width(module, ids, 0, out_x, out_b) == 8  # a guard's failure means the full width
    target = out_x.argmax(1)
    ours, delta = token_ig(torch.export.unflatten(program), ids, target, pad_id=0, steps=8)
    torch.testing.assert_close(ours, _captum(eager, ids, target, 0, 8), rtol=1e-5, atol=1e-6)
    # the graph of program.module() inlines the embedding, so no hook sees it: one line, not a KeyError
    with pytest.raises(AnalysisError, match="never ran as a module") as info:
        token_ig(program.module(), ids, target, pad_id=0, steps=8)
    assert "\n" not in str(info.value)
