"""HotFlip: gradient-guided token flips through the embedding (a white-box attack).

Ebrahimi, Rao, Lowd and Dou (2018), "HotFlip: White-Box Adversarial Examples for Text
Classification", https://arxiv.org/abs/1712.06751. Flipping the token at position ``i``
from ``a`` to ``b`` changes the loss by about ``(e_b - e_a) . dL/de_i`` (first order, with
``e`` the embedding rows). Each step takes one gradient pass for a batch of texts, ranks
every (position, token) flip by that estimate, scores the ``n_candidates`` best flips
exactly (the paper's beam search, with width 1 over steps), and keeps the best if it lowers
the true-class probability. A text stops at a wrong prediction, after ``budget`` flips or
when no flip helps. Positions are flipped at most once; positions holding PAD or any of the
``special`` ids (a Hugging Face tokenizer's ``[CLS]``, ``[SEP]``, ``[MASK]``...) are never
flipped, and neither the ``forbidden`` nor the ``special`` ids are ever flipped to. Metric names: ``robustness.hotflip.acc@K``.

The model is left as found: eval mode during the attack (its training mode is restored),
the hook on the embedding removed, and gradients taken with ``torch.autograd.grad`` (no
parameter's ``.grad`` is written).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ...errors import ConfigError
from .result import TextAttackResult

__all__ = ["hotflip"]


class _Capture:
    """A forward hook that swaps the embedding output for a tensor that collects gradients."""

    def __init__(self) -> None:
        self.output: torch.Tensor | None = None

    def __call__(self, module: nn.Module, args: object, output: torch.Tensor) -> torch.Tensor:
        self.output = output.detach().requires_grad_(True)
        return self.output


def _flip_scores(grad: torch.Tensor, weight: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """First-order loss increase of every flip: ``(e_b - e_a) . g_i`` as an ``(L, V)`` tensor for one text."""
    return grad @ weight.T - (grad * weight[ids]).sum(dim=1, keepdim=True)


def hotflip(
    module: nn.Module,
    ids: torch.Tensor,
    labels: Sequence[int] | torch.Tensor,
    *,
    budget: int = 3,
    n_candidates: int = 10,
    pad_id: int = 0,
    forbidden: Sequence[int] = (0, 1, 2),
    special: Sequence[int] = (),
    embedding: nn.Embedding | None = None,
    batch_size: int = 64,
) -> TextAttackResult:
    """Attack token ids with HotFlip: at most ``budget`` tokens flipped per text.

    Parameters
    ----------
    module
        The model, ``(N, L)`` token ids -> ``(N, C)`` logits.
    ids
        ``(N, L)`` long tensor of token ids (right-padded with ``pad_id``).
    labels
        The true classes; texts the model gets wrong are not attacked.
    budget
        The most tokens flipped per text (K in ``robustness.hotflip.acc@K``).
    n_candidates
        Flips per step scored exactly, the best first-order estimates.
    pad_id, forbidden
        The padding id (never flipped) and the ids never flipped to (PAD, UNK, MASK of a
        :class:`~dlaudit.text.vocab.WordVocab` by default).
    special
        The tokenizer's special ids (:func:`~dlaudit.text.vocab.special_ids_of`): positions that
        hold one are never flipped, and no token is flipped to one.
    embedding
        The token embedding (``module.embedding`` by default).
    batch_size
        Texts per gradient pass.

    Returns
    -------
    TextAttackResult
        With ``adv_ids``; decode them with the vocabulary for the texts.
    """
    if budget < 1 or n_candidates < 1:
        raise ConfigError(f"budget and n_candidates must be at least 1, got {budget} and {n_candidates}")
    embedding = embedding if embedding is not None else getattr(module, "embedding", None)
    if not isinstance(embedding, nn.Embedding):
        raise ConfigError("HotFlip needs the model's token embedding (an nn.Embedding, e.g. module.embedding)")
    ids = torch.as_tensor(ids, dtype=torch.long)
    y = torch.as_tensor(labels, dtype=torch.long)
    if ids.ndim != 2 or len(ids) != len(y):
        raise ConfigError(f"HotFlip takes (N, L) token ids and N labels, got {tuple(ids.shape)} and {len(y)}")
    was_training = module.training
    module.eval()
    capture = _Capture()
    handle = embedding.register_forward_hook(capture)
    try:
        parts = [
            _attack_batch(
                module,
                embedding,
                capture,
                ids[i : i + batch_size],
                y[i : i + batch_size],
                budget,
                n_candidates,
                pad_id,
                forbidden,
                special,
            )
            for i in range(0, len(ids), batch_size)
        ]
    finally:
        handle.remove()
        module.train(was_training)
    cat = lambda k: np.concatenate([p[k] for p in parts])
    return TextAttackResult(
        name="hotflip",
        budget=budget,
        labels=y.numpy(),
        initially_correct=cat("correct"),
        success=cat("success"),
        words_changed=cat("changed"),
        queries=cat("queries"),
        adv_ids=torch.cat([p["adv"] for p in parts]),
    )


def _attack_batch(
    module: nn.Module,
    embedding: nn.Embedding,
    capture: _Capture,
    ids: torch.Tensor,
    y: torch.Tensor,
    budget: int,
    n_candidates: int,
    pad_id: int,
    forbidden: Sequence[int],
    special: Sequence[int],
) -> dict[str, object]:
    device = embedding.weight.device
    cur, y = ids.clone().to(device), y.to(device)
    n = len(cur)
    weight = embedding.weight.detach()
    with torch.no_grad():
        prob = torch.softmax(module(cur), dim=1)
    correct = (prob.argmax(1) == y).cpu().numpy()
    p_true = prob[torch.arange(n), y].clone()
    queries = np.ones(n, dtype=np.int64)
    changed = np.zeros(n, dtype=np.int64)
    success = np.zeros(n, dtype=bool)
    active = correct.copy()
    flipped = torch.zeros_like(cur, dtype=torch.bool)
    banned = torch.zeros(weight.shape[0], dtype=torch.bool, device=device)
    banned[[i for i in sorted({*map(int, forbidden), *map(int, special)}) if 0 <= i < len(banned)]] = True
    fixed = torch.isin(cur, torch.tensor(sorted({int(pad_id), *map(int, special)}), dtype=torch.long, device=device))
    for _ in range(budget):
        rows = np.flatnonzero(active)
        if not len(rows):
            break
        sub = cur[rows]
        with torch.enable_grad():
            logits = module(sub)
            loss = nn.functional.cross_entropy(logits, y[rows], reduction="sum")
            (grad,) = torch.autograd.grad(loss, capture.output)
        queries[rows] += 1
        cand_ids, owners, flips = [], [], []
        for r, row in enumerate(rows):
            score = _flip_scores(grad[r], weight, sub[r])  # (L, V)
            blocked = fixed[row] | flipped[row]
            score[blocked] = -float("inf")
            score[:, banned] = -float("inf")
            score[torch.arange(len(sub[r])), sub[r]] = -float("inf")
            flat = score.flatten()
            k = min(n_candidates, int(torch.isfinite(flat).sum()))
            if k == 0:
                active[row] = False
                continue
            top = torch.topk(flat, k).indices
            for t in top.tolist():
                pos, tok = divmod(t, score.shape[1])
                new = sub[r].clone()
                new[pos] = tok
                cand_ids.append(new)
                owners.append(row)
                flips.append(pos)
        if not cand_ids:
            break
        with torch.no_grad():
            probs = torch.softmax(module(torch.stack(cand_ids)), dim=1)
        owners_arr = np.asarray(owners)
        for row in np.unique(owners_arr):
            js = np.flatnonzero(owners_arr == row)
            queries[row] += len(js)
            pt = probs[js, y[row]]
            best = int(torch.argmin(pt))  # first of ties
            j = int(js[best])
            if pt[best] >= p_true[row]:
                active[row] = False
                continue
            cur[row] = cand_ids[j]
            flipped[row, flips[j]] = True
            p_true[row] = pt[best]
            changed[row] += 1
            if int(probs[j].argmax()) != int(y[row]):
                success[row] = True
                active[row] = False
    return {"correct": correct, "success": success, "changed": changed, "queries": queries, "adv": cur.cpu()}
