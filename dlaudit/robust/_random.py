"""Per-sample random numbers that do not depend on the batch size.

Attacks and noise draw their randomness in fixed chunks of :data:`CHUNK` samples,
each chunk from its own generator seeded by ``(seed, stream, chunk index)``. A
sample's random start or noise is therefore the same whatever batch size the
work is split into (including a batch size picked by a timing probe), so the same
seed gives the same numbers.

:func:`uniform` and :func:`normal` draw a contiguous range of samples;
:func:`uniform_at` and :func:`normal_at` draw the same rows for any set of global
sample indices (for attacks that run only on the samples still unbroken), and
generate only the chunks those indices fall in.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["l2_ball_at", "CHUNK", "uniform", "normal", "l2_ball", "uniform_at", "normal_at"]

CHUNK = 64
_KINDS = ("uniform", "normal")


def _chunk_seed(seed: int, stream: int, chunk: int) -> int:
    return (int(seed) * 1_000_003 + int(stream) * 7_919 + int(chunk) * 104_729 + 0x5DEECE66D) % (2**63 - 1)


def _draw(kind: str, sample_shape: Sequence[int], start: int, stop: int, seed: int, stream: int) -> torch.Tensor:
    """Samples ``start..stop`` of an endless per-sample stream, on the CPU (float32)."""
    if kind not in _KINDS:
        raise ValueError(f"unknown noise kind {kind!r}")
    parts = []
    first, last = start // CHUNK, (stop - 1) // CHUNK
    for chunk in range(first, last + 1):
        gen = torch.Generator().manual_seed(_chunk_seed(seed, stream, chunk))
        block = torch.empty((CHUNK, *sample_shape))
        if kind == "uniform":
            block.uniform_(-1.0, 1.0, generator=gen)
        else:
            block.normal_(generator=gen)
        parts.append(block)
    whole = parts[0] if len(parts) == 1 else torch.cat(parts)
    offset = start - first * CHUNK
    return whole[offset : offset + (stop - start)]


def uniform(sample_shape: Sequence[int], start: int, stop: int, *, seed: int, stream: int = 0) -> torch.Tensor:
    """U(-1, 1) noise for samples ``start..stop`` (shape ``(stop - start, *sample_shape)``)."""
    return _draw("uniform", sample_shape, start, stop, seed, stream)


def normal(sample_shape: Sequence[int], start: int, stop: int, *, seed: int, stream: int = 0) -> torch.Tensor:
    """N(0, 1) noise for samples ``start..stop``."""
    return _draw("normal", sample_shape, start, stop, seed, stream)


def l2_ball(sample_shape: Sequence[int], start: int, stop: int, *, seed: int, stream: int = 0) -> torch.Tensor:
    """Points in the unit L2 ball: a uniform direction times a radius drawn from U(0, 1).

    This is the random start torchattacks' ``PGDL2`` uses, drawn per sample.
    """
    direction = _draw("normal", sample_shape, start, stop, seed, 2 * stream)
    radius = _draw("uniform", (), start, stop, seed, 2 * stream + 1).abs()
    norms = direction.flatten(1).norm(dim=1).clamp_min(1e-12)
    scale = (radius / norms).view(-1, *([1] * len(sample_shape)))
    return direction * scale


def _block(kind: str, sample_shape: Sequence[int], seed: int, stream: int, chunk: int) -> torch.Tensor:
    """The whole of one chunk: ``CHUNK`` rows, exactly as :func:`_draw` generates them."""
    gen = torch.Generator().manual_seed(_chunk_seed(seed, stream, chunk))
    block = torch.empty((CHUNK, *sample_shape))
    if kind == "uniform":
        return block.uniform_(-1.0, 1.0, generator=gen)
    return block.normal_(generator=gen)


def _draw_at(kind: str, sample_shape: Sequence[int], index: torch.Tensor, seed: int, stream: int) -> torch.Tensor:
    """Rows ``index`` of the endless per-sample stream, on the CPU (float32), in the order given."""
    if kind not in _KINDS:
        raise ValueError(f"unknown noise kind {kind!r}")
    index = torch.as_tensor(index).detach().to(device="cpu")
    if index.ndim != 1 or index.is_floating_point() or index.dtype == torch.bool:
        raise ValueError(
            f"index must be a 1-D integer tensor of sample indices, got {index.dtype} of shape {tuple(index.shape)}"
        )
    index = index.long()
    if len(index) == 0:
        return torch.empty((0, *sample_shape))
    if int(index.min()) < 0:
        raise ValueError("sample indices must be >= 0")
    chunk_of = index // CHUNK
    chunks = torch.unique(chunk_of)  # sorted: only the chunks the indices fall in
    whole = torch.cat([_block(kind, sample_shape, seed, stream, c) for c in chunks.tolist()])
    rows = torch.searchsorted(chunks, chunk_of) * CHUNK + index % CHUNK
    return whole[rows]


def uniform_at(sample_shape: Sequence[int], index: torch.Tensor, *, seed: int, stream: int = 0) -> torch.Tensor:
    """U(-1, 1) noise for the samples with global indices ``index`` (shape ``(len(index), *sample_shape)``).

    Row ``i`` equals ``uniform(sample_shape, index[i], index[i] + 1, seed=seed, stream=stream)[0]``:
    a sample gets the same numbers whichever other samples are drawn with it.
    """
    return _draw_at("uniform", sample_shape, index, seed, stream)


def normal_at(sample_shape: Sequence[int], index: torch.Tensor, *, seed: int, stream: int = 0) -> torch.Tensor:
    """N(0, 1) noise for the samples with global indices ``index``; the rows :func:`normal` gives them."""
    return _draw_at("normal", sample_shape, index, seed, stream)


def l2_ball_at(sample_shape: Sequence[int], index: torch.Tensor, *, seed: int, stream: int = 0) -> torch.Tensor:
    """Points in the unit L2 ball for the samples with global indices ``index``; the rows :func:`l2_ball` gives them."""
    direction = _draw_at("normal", sample_shape, index, seed, 2 * stream)
    radius = _draw_at("uniform", (), index, seed, 2 * stream + 1).abs()
    norms = direction.flatten(1).norm(dim=1).clamp_min(1e-12)
    scale = (radius / norms).view(-1, *([1] * len(sample_shape)))
    return direction * scale
