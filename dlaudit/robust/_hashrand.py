"""Counter-based random numbers keyed by (seed, stream, sample index, counter).

An attack that draws fresh random numbers for every active sample at every
iteration (Square Attack draws square positions and signs; FAB draws its random
restarts) must not let those numbers depend on how the work is batched or on
which other samples are still active. Stateful generators cannot give that: the
``k``-th number a generator hands out depends on everything drawn before it.

Here every number is a pure function of its key: a 64-bit word is the splitmix64
hash (Steele, Lea and Flood 2014, "Fast splittable pseudorandom number
generators", https://doi.org/10.1145/2714064.2660195; the finaliser of
Vigna's ``splitmix64.c``, https://prng.di.unimi.it/splitmix64.c) of the key
``(seed, stream, index, counter, column)``, chained one component at a time. A
sample's numbers are therefore identical on any batch split, on any device, and
whichever samples are drawn alongside it.

The arithmetic is vectorised int64 torch on the index's device. torch's ``>>`` on
int64 is arithmetic (it copies the sign bit), so the logical shifts splitmix64
needs are an arithmetic shift followed by a mask; multiplication wraps modulo
2**64 in two's complement, which is what the hash wants (the tests check every
word against a pure-Python reference).

Conventions: ``stream`` separates independent uses (a restart, or the kind of
draw: positions versus signs); ``counter`` is the iteration; columns ``0..n-1``
are the numbers drawn for one (sample, counter).
"""

from __future__ import annotations

import math

import torch

__all__ = ["words", "word_block", "as_integers", "as_signs", "uniform", "integers", "signs", "normal"]

_MASK64 = (1 << 64) - 1


def _signed(v: int) -> int:
    """A 64-bit unsigned constant as the int64 with the same bits."""
    v &= _MASK64
    return v - (1 << 64) if v >= 1 << 63 else v


_GOLDEN = _signed(0x9E3779B97F4A7C15)
_MUL1 = _signed(0xBF58476D1CE4E5B9)
_MUL2 = _signed(0x94D049BB133111EB)


def _shr(z: torch.Tensor, k: int) -> torch.Tensor:
    """Logical right shift of int64 words (``>>`` alone is arithmetic)."""
    return (z >> k) & ((1 << (64 - k)) - 1)


def _mix(z: torch.Tensor) -> torch.Tensor:
    """splitmix64: add the golden gamma, then the variant-13 finaliser."""
    z = z + _GOLDEN
    z = (z ^ _shr(z, 30)) * _MUL1
    z = (z ^ _shr(z, 27)) * _MUL2
    return z ^ _shr(z, 31)


def _as_index(index: torch.Tensor | int) -> torch.Tensor:
    idx = torch.as_tensor(index)
    if idx.is_floating_point() or idx.dtype == torch.bool:
        raise TypeError(f"index must hold integers, got dtype {idx.dtype}")
    return idx.reshape(-1).to(torch.int64)


def _key(seed: int, stream: int, device: torch.device) -> torch.Tensor:
    base = torch.tensor(_signed(int(seed)), dtype=torch.int64, device=device)
    return _mix(_mix(base) + _signed(int(stream)))


def words(seed: int, stream: int, index: torch.Tensor, counter: int | torch.Tensor, n: int) -> torch.Tensor:
    """Raw 64-bit words, shape ``(len(index), n)``, int64 on the index's device.

    Parameters
    ----------
    seed, stream
        Integers (any size; taken modulo 2**64).
    index
        Global sample indices, shape ``(m,)``.
    counter
        The iteration: an integer, or one per sample (shape ``(m,)``).
    n
        Words per sample (the columns).
    """
    idx = _as_index(index)
    k = _mix(_key(seed, stream, idx.device) + idx)
    if isinstance(counter, torch.Tensor):
        ctr = counter.reshape(-1).to(device=idx.device, dtype=torch.int64)
    else:
        ctr = torch.tensor(_signed(int(counter)), dtype=torch.int64, device=idx.device)
    k = _mix(k + ctr)
    cols = torch.arange(int(n), dtype=torch.int64, device=idx.device)
    return _mix(k.unsqueeze(1) + cols.unsqueeze(0))


def word_block(seed: int, stream: int, index: torch.Tensor, first: int, count: int, n: int) -> torch.Tensor:
    """The words of ``count`` consecutive counters at once, shape ``(len(index), count, n)``.

    ``word_block(...)[:, j]`` equals ``words(seed, stream, index, first + j, n)`` bit for bit: an
    iterative attack draws a block of iterations in one call (a few dozen tensor operations for the
    whole block instead of for every iteration) and slices an iteration's numbers out of it.
    """
    idx = _as_index(index)
    k = _mix(_key(seed, stream, idx.device) + idx)
    ctr = torch.arange(int(first), int(first) + int(count), dtype=torch.int64, device=idx.device)
    k = _mix(k.unsqueeze(1) + ctr.unsqueeze(0))  # (m, count)
    cols = torch.arange(int(n), dtype=torch.int64, device=idx.device)
    return _mix(k.unsqueeze(2) + cols.view(1, 1, -1))


def as_integers(w: torch.Tensor, low: int, high: int | torch.Tensor) -> torch.Tensor:
    """:func:`integers` from words ``w`` already drawn (``high`` broadcastable to ``w``'s shape)."""
    span = torch.as_tensor(high).to(torch.int64) - int(low)
    if bool((span < 1).any()):
        raise ValueError(f"integers needs high > low, got low={low}, high={high}")
    return torch.remainder(_shr(w, 1), span.to(w.device)) + int(low)


def as_signs(w: torch.Tensor, *, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """:func:`signs` from words ``w`` already drawn."""
    return (2 * _shr(w, 63) - 1).to(dtype)


def uniform(
    seed: int,
    stream: int,
    index: torch.Tensor,
    counter: int | torch.Tensor,
    n: int,
    *,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Uniform numbers in ``[0, 1)``, shape ``(len(index), n)``.

    The top 24 bits (float32, float16 and bfloat16 get them rounded down to their
    precision, never up to 1) or 53 bits (float64) of each word, so every value
    is an exact multiple of ``2**-24`` (``2**-53``) below 1.
    """
    bits = 53 if dtype == torch.float64 else 24
    top = _shr(words(seed, stream, index, counter, n), 64 - bits)
    u = top.to(torch.float64 if bits == 53 else torch.float32) * (2.0**-bits)
    return u.to(dtype)


def integers(
    seed: int, stream: int, index: torch.Tensor, counter: int | torch.Tensor, n: int, low: int, high: int | torch.Tensor
) -> torch.Tensor:
    """Integers uniform in ``[low, high)`` (int64), shape ``(len(index), n)``.

    ``high`` is an integer or a tensor broadcastable to ``(len(index), n)``: one
    bound per column (shape ``(n,)``) or per sample (shape ``(m, 1)``). The word's
    top 63 bits are reduced modulo the span, so the bias is below ``span / 2**63``.
    """
    return as_integers(words(seed, stream, index, counter, n), low, high)


def signs(
    seed: int,
    stream: int,
    index: torch.Tensor,
    counter: int | torch.Tensor,
    n: int,
    *,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Random signs, -1 or +1 with probability 1/2 each, shape ``(len(index), n)``."""
    return as_signs(words(seed, stream, index, counter, n), dtype=dtype)


def normal(
    seed: int,
    stream: int,
    index: torch.Tensor,
    counter: int | torch.Tensor,
    n: int,
    *,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Standard normal numbers, shape ``(len(index), n)`` (Box-Muller on two uniforms per number).

    Computed in float64 and cast, so the values do not depend on ``dtype``'s
    rounding of the intermediate logarithm.
    """
    u = words(seed, stream, index, counter, 2 * int(n))
    u1 = (_shr(u[:, 0::2], 11).to(torch.float64) + 1.0) * (2.0**-53)  # (0, 1]: the logarithm is finite
    u2 = _shr(u[:, 1::2], 11).to(torch.float64) * (2.0**-53)
    z = torch.sqrt(-2.0 * torch.log(u1)) * torch.cos((2.0 * math.pi) * u2)
    return z.to(dtype)
