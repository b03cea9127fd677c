"""Session fixtures shared by every test package."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import dlaudit
from dlaudit.data import Splits, load_splits

# The suite's models are tiny: one thread is faster than two spinning against each other
# (and keeps timings sane on a shared 2-core CI machine). Numbers stay seeded either way.
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The UCI Adult and German Credit files (../shared/data from the project root)."""
    if not (SHARED_DATA / "adult" / "adult.data").is_file():
        pytest.skip(f"UCI data files not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def digits_splits() -> Splits:
    return load_splits("digits")


@pytest.fixture(scope="session")
def digits_cnn(digits_splits: Splits) -> dlaudit.ModelBundle:
    """The reference CNN trained on digits (seed 0, CPU, about a second). Do not mutate it."""
    return dlaudit.train("cnn", "digits", seed=0, device="cpu")


@pytest.fixture(scope="session")
def digits_mlp() -> dlaudit.ModelBundle:
    return dlaudit.train("mlp", "digits", seed=0, device="cpu")
