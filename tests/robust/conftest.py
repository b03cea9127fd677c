"""Fixtures for the robustness tests: tiny models whose attacks can be worked out by hand."""

from __future__ import annotations

import pytest
import torch
from robust_models import LinearMargin, RoundedMean
from torch import nn

import dlaudit
from dlaudit.card import ModelCard
from dlaudit.data import AuditData


@pytest.fixture(autouse=True)
def _one_thread():
    """These tiny models gain nothing from intra-op threads, and on a busy shared machine OpenMP's
    spinning threads made the tests eight times slower (2 threads, load 6 on 2 cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def linear_model() -> LinearMargin:
    return LinearMargin([1.0, -2.0, 0.5, 0.5], b=-0.25)


@pytest.fixture
def masked_bundle_and_data() -> tuple[dlaudit.ModelBundle, AuditData]:
    gen = torch.Generator().manual_seed(0)
    y = torch.arange(40) % 2
    x = (0.05 + 0.9 * y.float()).view(-1, 1, 1, 1).expand(40, 1, 4, 4).clone()
    x += torch.empty_like(x).uniform_(-0.04, 0.04, generator=gen)
    card = ModelCard(input_shape=(1, 4, 4), num_classes=2, modality="image", architecture=None)
    return dlaudit.ModelBundle(RoundedMean(), card, device="cpu"), AuditData(
        x, y, name="two-levels", class_names=["dark", "bright"]
    )


def _snapshot(module: nn.Module) -> tuple[bool, list[bool], list[bool]]:
    return (
        module.training,
        [p.requires_grad for p in module.parameters()],
        [p.grad is not None for p in module.parameters()],
    )


@pytest.fixture
def snapshot():
    """``snapshot(module)``: training mode, requires_grad flags and which parameters hold a gradient."""
    return _snapshot
