"""The counter-based generator: bit-exact splitmix64, independent of the batch split, uniform."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from dlaudit.robust import _hashrand as hr

_M = (1 << 64) - 1


def _mix(z: int) -> int:
    """splitmix64 on Python integers (mod 2**64): the reference the torch version must match bit for bit."""
    z = (z + 0x9E3779B97F4A7C15) & _M
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M
    return z ^ (z >> 31)


def _reference_word(seed: int, stream: int, index: int, counter: int, column: int) -> int:
    key = _mix((_mix(seed & _M) + stream) & _M)
    key = _mix((key + index) & _M)
    key = _mix((key + counter) & _M)
    return _mix((key + column) & _M)


def test_splitmix64_reference_values() -> None:
    # the first outputs of Vigna's splitmix64.c seeded with 0 (state += gamma before mixing)
    assert _mix(0) == 0xE220A8397B1DCDAF
    assert _mix(0x9E3779B97F4A7C15) == 0x6E789E6AA1B965F4


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**64 - 1),
    stream=st.integers(0, 2**40),
    index=st.lists(st.integers(0, 2**62), min_size=1, max_size=5),
    counter=st.integers(0, 2**40),
)
def test_words_match_the_python_reference_bit_for_bit(seed: int, stream: int, index: list[int], counter: int) -> None:
    got = hr.words(seed, stream, torch.tensor(index), counter, 3)
    for row, i in enumerate(index):
        for col in range(3):
            assert int(got[row, col]) & _M == _reference_word(seed, stream, i, counter, col)


def test_any_batch_split_and_order_gives_the_same_numbers() -> None:
    index = torch.arange(100, 164)
    whole = hr.uniform(7, 3, index, 11, 20)
    perm = torch.randperm(64, generator=torch.Generator().manual_seed(0))
    for part in perm.split(5):
        assert torch.equal(hr.uniform(7, 3, index[part], 11, 20), whole[part])
    assert torch.equal(hr.uniform(7, 3, index[:1], 11, 20), whole[:1])
    # a per-sample counter equals one call per counter value
    counters = torch.tensor([2, 5, 2, 9])
    rows = hr.signs(1, 0, index[:4], counters, 6)
    for r, c in enumerate(counters.tolist()):
        assert torch.equal(rows[r], hr.signs(1, 0, index[r : r + 1], c, 6)[0])


def test_columns_are_a_prefix_property() -> None:
    # drawing more columns extends a row without changing its first ones
    index = torch.arange(5)
    assert torch.equal(hr.uniform(0, 0, index, 0, 10)[:, :4], hr.uniform(0, 0, index, 0, 4))


def test_keys_separate_the_streams() -> None:
    index = torch.arange(2000)
    base = hr.uniform(0, 0, index, 0, 4).flatten().double()
    for other in (
        hr.uniform(1, 0, index, 0, 4),
        hr.uniform(0, 1, index, 0, 4),
        hr.uniform(0, 0, index, 1, 4),
        hr.uniform(0, 0, index + 1, 0, 4),
    ):
        r = torch.corrcoef(torch.stack([base, other.flatten().double()]))[0, 1]
        assert abs(float(r)) < 0.03
        assert not torch.equal(other.flatten(), base.float())


def test_uniform_range_and_exact_grid() -> None:
    u = hr.uniform(3, 0, torch.arange(4096), 0, 64)
    assert u.dtype == torch.float32 and float(u.min()) >= 0.0 and float(u.max()) < 1.0
    assert torch.equal(u * 2**24, (u * 2**24).floor())  # multiples of 2**-24: never rounded up to 1
    d = hr.uniform(3, 0, torch.arange(16), 0, 8, dtype=torch.float64)
    assert d.dtype == torch.float64 and float(d.max()) < 1.0
    # the float32 draw is the float64 draw's top 24 bits
    assert torch.equal(hr.uniform(3, 0, torch.arange(16), 0, 8), (d * 2**24).floor().float() / 2**24)


def test_uniform_passes_chi_square_and_ks() -> None:
    u = hr.uniform(12345, 0, torch.arange(20_000), 0, 10).flatten().double().numpy()
    counts = torch.histc(torch.from_numpy(u), bins=100, min=0.0, max=1.0).numpy()
    assert stats.chisquare(counts).pvalue > 1e-3
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    # consecutive counters of one sample (the pattern Square uses) are uniform too
    seq = torch.cat([hr.uniform(5, 2, torch.tensor([17]), c, 1) for c in range(5000)]).flatten().double().numpy()
    assert stats.kstest(seq, "uniform").pvalue > 1e-3


def test_integers_are_uniform_in_the_range() -> None:
    k = hr.integers(9, 1, torch.arange(30_000), 4, 2, 3, 10)
    assert int(k.min()) == 3 and int(k.max()) == 9 and k.dtype == torch.int64
    counts = torch.bincount(k.flatten() - 3, minlength=7).numpy()
    assert stats.chisquare(counts).pvalue > 1e-3
    # one bound per column and per sample
    cols = hr.integers(9, 1, torch.arange(1000), 4, 2, 0, [2, 5])
    assert int(cols[:, 0].max()) == 1 and int(cols[:, 1].max()) == 4
    rows = hr.integers(9, 1, torch.arange(1000), 4, 3, 0, torch.arange(1, 1001).view(-1, 1))
    assert bool((rows < torch.arange(1, 1001).view(-1, 1)).all())
    with pytest.raises(ValueError, match="high > low"):
        hr.integers(0, 0, torch.arange(3), 0, 1, 5, 5)


def test_signs_are_fair() -> None:
    s = hr.signs(4, 0, torch.arange(50_000), 0, 2)
    assert set(s.unique().tolist()) == {-1.0, 1.0}
    assert stats.binomtest(int((s > 0).sum()), s.numel()).pvalue > 1e-3


def test_normal_passes_ks() -> None:
    z = hr.normal(8, 0, torch.arange(10_000), 3, 5).flatten().double().numpy()
    assert math.isfinite(float(abs(z).max()))
    assert stats.kstest(z, "norm").pvalue > 1e-3


def test_float_index_is_rejected() -> None:
    with pytest.raises(TypeError, match="integers"):
        hr.uniform(0, 0, torch.tensor([0.5]), 0, 1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_same_numbers_on_cuda() -> None:
    index = torch.arange(300)
    assert torch.equal(hr.words(2, 1, index.cuda(), 5, 7).cpu(), hr.words(2, 1, index, 5, 7))
    assert hr.uniform(2, 1, index.cuda(), 5, 7).device.type == "cuda"


def test_a_block_of_counters_equals_one_call_per_counter() -> None:
    index = torch.tensor([0, 5, 2**40, 17])
    block = hr.word_block(11, 4, index, 3, 6, 5)
    assert block.shape == (4, 6, 5)
    for j in range(6):
        assert torch.equal(block[:, j], hr.words(11, 4, index, 3 + j, 5))
    assert torch.equal(hr.as_signs(block[:, 2]), hr.signs(11, 4, index, 5, 5))
    high = torch.tensor([3, 7, 1, 100, 9])
    assert torch.equal(hr.as_integers(block[:, 4], 0, high), hr.integers(11, 4, index, 7, 5, 0, high))
    with pytest.raises(ValueError, match="high > low"):
        hr.as_integers(block[:, 0], 2, 2)
