"""Session fixtures shared by every test package."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Under ``pytest -n 2`` two workers share the cores: each torch (and each dlaudit process a
    # test starts) gets one thread, so they never oversubscribe. Set before torch is imported.
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = "1"

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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that reads ``../shared`` (through :func:`shared_data`, or the README's blocks) as ``shared``.

    CI runs ``pytest -m shared`` once more in a clone without ``../shared``: a newcomer's case,
    where those tests must skip with a reason or pass without the data, never fail.
    """
    for item in items:
        names = getattr(item, "fixturenames", ())
        if "shared_data" in names or "shared_text" in names or item.path.name == "test_readme.py":
            item.add_marker(pytest.mark.shared)
    # The README's blocks run in order in one process and take longer than any other file: first, so that
    # under ``pytest -n 2`` (one file per worker) one worker starts them at once while the other takes the rest.
    items.sort(key=lambda item: item.path.name != "test_readme.py")


@pytest.fixture(autouse=True)
def _malloc_retention() -> Iterator[None]:
    """A test that explains under ``--max-memory`` bounds what glibc keeps of freed memory for the whole
    process (dlaudit._alloc.bound_retention); undo it so later tests in the worker run as tuned."""
    yield
    from dlaudit._alloc import unbound_retention

    unbound_retention()
