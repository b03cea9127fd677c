"""Token attributions for text models (ids in, logits out) and their trust checks.

Every method returns ``(N, L)`` scores, one per token position (zero on padding):

- :func:`token_ig`: Integrated Gradients on the embedding layer's output (Sundararajan et al.
  2017, https://arxiv.org/abs/1703.01365), as captum's ``LayerIntegratedGradients``: the
  embedding output is moved from the baseline's (every token PAD) to the input's while the
  model reads the input ids (its padding mask unchanged), captum's Gauss-Legendre nodes; the
  attribution of a token is the sum over its embedding dimensions. Texts and steps run
  together in one batch per chunk;
- :func:`token_gxi`: input x gradient on the embedding (captum's ``LayerGradientXActivation``);
- :func:`token_occlusion`: the drop in the target probability when one token is replaced by
  the mask (or unknown) id (Zeiler & Fergus 2014, https://arxiv.org/abs/1311.2901, by token);
- :func:`token_lime`: LIME's ``LimeTextExplainer`` (Ribeiro et al. 2016,
  https://arxiv.org/abs/1602.04938) over the words of the raw text, mapped onto tokens;
- :func:`token_shap`: shap's Partition explainer with a ``Text`` masker over the same words
  (Lundberg & Lee 2017, https://arxiv.org/abs/1705.07874), mapped onto tokens.

Trust: :func:`deletion_curve` (replace the highest-scored tokens by the mask id, in order),
:func:`completeness_gap` (IG's sum against ``f(x) - f(baseline)``) and
:func:`randomised_weights` (the model with re-drawn weights, for the sanity check of Adebayo
et al. 2018, https://arxiv.org/abs/1810.03292).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import SHORT_WIDTH_ERRORS, AnalysisError

__all__ = [
    "find_embedding",
    "token_ig",
    "token_gxi",
    "token_occlusion",
    "token_lime",
    "token_shap",
    "deletion_curve",
    "completeness_gap",
    "randomised_weights",
    "target_probability",
]


def find_embedding(module: nn.Module) -> nn.Module:
    """The token embedding of a text model: ``get_input_embeddings()`` (Hugging Face), ``.embedding``, or the first ``nn.Embedding``."""
    getter = getattr(module, "get_input_embeddings", None)
    if callable(getter):
        found = getter()
        if isinstance(found, nn.Module):
            return found
    own = getattr(module, "embedding", None)
    if isinstance(own, nn.Module):
        return own
    for sub in module.modules():
        if isinstance(sub, nn.Embedding):
            return sub
    raise AnalysisError("the model has no token embedding layer (nn.Embedding) for token attributions")


def _replace_output(layer: nn.Module, value: torch.Tensor) -> Any:
    return layer.register_forward_hook(lambda _m, _a, _out: value)


def _embedded(module: nn.Module, layer: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """The layer's output on ``ids`` (one forward pass, no gradients)."""
    return _embedded_and_logits(module, layer, ids)[0]


def _embedded_and_logits(module: nn.Module, layer: nn.Module, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The layer's output and the model's logits on ``ids``, from one forward pass without gradients."""
    seen: dict[str, torch.Tensor] = {}

    def keep(_m: nn.Module, _a: Any, out: torch.Tensor) -> None:
        seen["out"] = out.detach()

    handle = layer.register_forward_hook(keep)
    try:
        with torch.no_grad():
            logits = module(ids)
    finally:
        handle.remove()
    if "out" not in seen:
        raise AnalysisError(
            "the model's token embedding layer never ran as a module (a torch.export graph inlines its layers); "
            "for token attributions pass the eager model, or torch.export.unflatten(program)"
        )
    return seen["out"], logits


TRIM_RTOL, TRIM_ATOL = 1e-6, 1e-6
"""How close the logits without the trailing padding must be to the full inputs' for IG to leave it out."""


def _trimmed_width(module: nn.Module, ids: torch.Tensor, pad_id: int, out_x: torch.Tensor, out_b: torch.Tensor) -> int:
    """The width without the columns that are padding in every text, where the model's logits on the inputs and on
    the baseline do not change without them (checked with one forward pass of each); else the full width."""
    full = ids.shape[1]
    used = (ids != pad_id).any(dim=0).nonzero()
    width = int(used.max()) + 1 if len(used) else full
    if width >= full:
        return full
    try:
        with torch.no_grad():
            short_x = module(ids[:, :width])
            short_b = module(torch.full_like(ids[:, :width], pad_id))
    except SHORT_WIDTH_ERRORS:  # a model that needs its full width (a wide convolution, an exported program's guard)
        return full
    same = lambda a, b: a.shape == b.shape and torch.allclose(a.float(), b.float(), rtol=TRIM_RTOL, atol=TRIM_ATOL)
    return width if same(short_x, out_x) and same(short_b, out_b) else full


class _FrozenParameters:
    """Parameters' ``requires_grad`` off for a block (then as they were): the path's backward pass then builds
    and runs the graph to the embedding output only, no weight-gradient branches."""

    def __init__(self, module: nn.Module) -> None:
        self.params = [p for p in module.parameters() if p.requires_grad]

    def __enter__(self) -> None:
        for p in self.params:
            p.requires_grad_(False)

    def __exit__(self, *exc: object) -> None:
        for p in self.params:
            p.requires_grad_(True)


def _target_logit(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return out.gather(1, target.view(-1, 1)).sum()


def token_ig(
    module: nn.Module,
    ids: torch.Tensor,
    target: torch.Tensor,
    *,
    pad_id: int,
    steps: int = 32,
    layer: nn.Module | None = None,
    chunk: int = 2048,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Integrated Gradients of the target logit on the embedding output: ``(N, L)`` scores and ``(N,)`` deltas.

    The baseline is every position's id set to ``pad_id``; the delta is
    ``sum(scores) - (f(x) - f(baseline))`` for the target logit (completeness, 0 for exact IG).
    Trailing columns that are padding in every text are left out of the path when the model's
    logits on the inputs and on the baseline are the same without them (a model that masks its
    padding, as a Hugging Face one does; :func:`_trimmed_width`): their attributions are 0 either
    way (input and baseline hold the same PAD id there), and the path is shorter.
    ``chunk`` bounds the interpolated rows per forward pass (texts x steps).
    """
    from captum.attr._utils.approximation_methods import approximation_parameters

    layer = layer or find_embedding(module)
    step_sizes_fn, alphas_fn = approximation_parameters("gausslegendre")
    weights = torch.tensor(step_sizes_fn(steps), dtype=torch.float32)
    alphas = torch.tensor(alphas_fn(steps), dtype=torch.float32)
    full = ids.shape[1]
    base_ids = torch.full_like(ids, int(pad_id))
    emb_x, out_x = _embedded_and_logits(module, layer, ids)  # f(x) and f(baseline) come with the embeddings
    emb_b, out_b = _embedded_and_logits(module, layer, base_ids)
    width = _trimmed_width(module, ids, int(pad_id), out_x, out_b)
    if width < full:
        ids, base_ids = ids[:, :width], base_ids[:, :width]
        emb_x, emb_b = emb_x[:, :width], emb_b[:, :width]
    weights, alphas = weights.to(emb_x.device), alphas.to(emb_x.device)
    per = max(1, chunk // steps)
    grads_total = torch.zeros_like(emb_x)
    with _FrozenParameters(module):
        for start in range(0, len(ids), per):
            sl = slice(start, start + per)
            n = len(ids[sl])
            diff = emb_x[sl] - emb_b[sl]
            path = emb_b[sl].unsqueeze(0) + alphas.view(-1, 1, 1, 1) * diff.unsqueeze(0)  # (steps, n, L, E)
            path = path.reshape(steps * n, *emb_x.shape[1:]).requires_grad_(True)
            handle = _replace_output(layer, path)
            try:
                with torch.enable_grad():
                    out = module(ids[sl].repeat(steps, 1))
                    (grad,) = torch.autograd.grad(_target_logit(out, target[sl].repeat(steps)), path)
            finally:
                handle.remove()
            grad = grad.view(steps, n, *emb_x.shape[1:])
            grads_total[sl] = (weights.view(-1, 1, 1, 1) * grad).sum(dim=0)
    attributions = ((emb_x - emb_b) * grads_total).sum(dim=-1)
    if width < full:
        attributions = torch.nn.functional.pad(attributions, (0, full - width))
    fx = out_x.gather(1, target.view(-1, 1)).squeeze(1)
    fb = out_b.gather(1, target.view(-1, 1)).squeeze(1)
    delta = attributions.sum(dim=1) - (fx - fb)
    return attributions.detach().cpu(), delta.detach().cpu()


def token_gxi(
    module: nn.Module, ids: torch.Tensor, target: torch.Tensor, *, layer: nn.Module | None = None
) -> torch.Tensor:
    """Input x gradient on the embedding output, summed over its dimensions: ``(N, L)``."""
    layer = layer or find_embedding(module)
    emb = _embedded(module, layer, ids).clone().requires_grad_(True)
    handle = _replace_output(layer, emb)
    try:
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(_target_logit(module(ids), target), emb)
    finally:
        handle.remove()
    return (emb.detach() * grad).sum(dim=-1).cpu()


@torch.no_grad()
def target_probability(module: nn.Module, ids: torch.Tensor, target: torch.Tensor, *, batch: int = 512) -> torch.Tensor:
    """Softmax probability of ``target`` per row of ``ids``."""
    parts = []
    for s in range(0, len(ids), batch):
        p = torch.softmax(module(ids[s : s + batch]).float(), dim=1)
        parts.append(p.gather(1, target[s : s + batch].view(-1, 1)).squeeze(1).cpu())
    return torch.cat(parts)


def token_occlusion(
    module: nn.Module, ids: torch.Tensor, target: torch.Tensor, *, mask_id: int, pad_id: int
) -> torch.Tensor:
    """For each real token, the target probability's drop when that token alone is replaced by ``mask_id``."""
    n, length = ids.shape
    base = target_probability(module, ids, target)
    real = ids != pad_id
    out = torch.zeros(n, length)
    rows, cols = real.nonzero(as_tuple=True)
    if not len(rows):
        return out
    hidden = ids[rows].clone()
    hidden[torch.arange(len(rows)), cols] = mask_id
    probs = target_probability(module, hidden, target[rows])
    out[rows.cpu(), cols.cpu()] = base[rows.cpu()] - probs
    return out


def _word_of_token(offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]) -> list[int | None]:
    """For each token (its character span), the index of the word span that holds its start."""
    out: list[int | None] = []
    w = 0
    for a, _b in offsets:
        while w < len(spans) and spans[w][1] <= a:
            w += 1
        out.append(w if w < len(spans) and spans[w][0] <= a else None)
    return out


def _words_to_tokens(
    offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]], length: int, weight: Callable[[int], float]
) -> torch.Tensor:
    """``(length,)`` token scores: each token gets ``weight(w)`` of the word ``w`` it starts in (0 outside words)."""
    row = torch.zeros(length)
    for t, w in enumerate(_word_of_token(offsets, spans)[:length]):
        if w is not None:
            row[t] = float(weight(w))
    return row


def token_lime(
    predict_proba: Callable[[list[str]], np.ndarray],
    texts: Sequence[str],
    targets: Sequence[int],
    offsets: Sequence[Sequence[tuple[int, int]]],
    length: int,
    *,
    class_names: Sequence[str],
    num_samples: int = 500,
    seed: int = 0,
) -> torch.Tensor:
    """LIME text weights per word (``LimeTextExplainer``, words in order, ``bow=False``), given to each word's tokens.

    A word's weight goes to every token that starts inside it (a word split into sub-words
    shares its weight), so the scores are per token like the other methods'.
    """
    from lime.lime_text import LimeTextExplainer

    from ..text.vocab import TOKEN_PATTERN, word_spans

    out = torch.zeros(len(texts), length)
    for i, (text, label) in enumerate(zip(texts, targets)):
        explainer = LimeTextExplainer(
            class_names=list(class_names),
            split_expression=lambda s: TOKEN_PATTERN.findall(s),
            bow=False,
            random_state=seed + i,
        )
        spans = word_spans(text)
        exp = explainer.explain_instance(
            text, predict_proba, labels=(int(label),), num_features=max(1, len(spans)), num_samples=num_samples
        )
        weights = dict(exp.as_map()[int(label)])
        out[i] = _words_to_tokens(offsets[i], spans, length, lambda w, weights=weights: weights.get(w, 0.0))
    return out


class _WordTokenizer:
    """What shap's ``Text`` masker calls: the words of a text (dlaudit's token pattern) with their offsets."""

    def __call__(self, text: str, return_offsets_mapping: bool = True) -> dict[str, list[Any]]:
        from ..text.vocab import word_spans

        spans = word_spans(text)
        return {"input_ids": list(range(len(spans))), "offset_mapping": spans}


def token_shap(
    predict_proba: Callable[[list[str]], np.ndarray],
    texts: Sequence[str],
    targets: Sequence[int],
    offsets: Sequence[Sequence[tuple[int, int]]],
    length: int,
    *,
    class_names: Sequence[str],
    max_evals: int = 500,
    seed: int = 0,
) -> tuple[torch.Tensor, np.ndarray]:
    """SHAP values per word (Partition explainer, ``Text`` masker hiding words as an unknown word), given to each word's tokens.

    Returns the ``(N, L)`` token scores and, per text, the explainer's base value of the target
    (all words hidden), so that ``scores.sum() + base`` is the target probability (additivity).
    """
    import shap

    from ..text.vocab import word_spans

    masker = shap.maskers.Text(_WordTokenizer(), mask_token="UNKWORDZ", collapse_mask_token=False)
    explainer = shap.Explainer(
        lambda batch: predict_proba([str(t) for t in batch]), masker, output_names=list(class_names), seed=seed
    )
    values = explainer(list(texts), max_evals=max_evals, batch_size=64, silent=True)
    out = torch.zeros(len(texts), length)
    base = np.zeros(len(texts))
    for i, (text, label) in enumerate(zip(texts, targets)):
        per_word = np.asarray(values[i].values)[:, int(label)]
        base[i] = float(np.asarray(values[i].base_values)[int(label)])
        out[i] = _words_to_tokens(
            offsets[i], word_spans(text), length, lambda w, v=per_word: v[w] if w < len(v) else 0.0
        )
    return out, base


def _ranks(ids: torch.Tensor, scores: torch.Tensor, pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per token its rank by score within its text (0: highest; ties in text order), the real-token mask and counts."""
    real = ids != pad_id
    order = torch.argsort(torch.where(real, scores, torch.tensor(-float("inf"))), dim=1, descending=True, stable=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(ids.shape[1], device=ids.device).expand_as(order).contiguous())
    return rank, real, real.sum(dim=1, keepdim=True).float()


def deletion_curve(
    module: nn.Module,
    ids: torch.Tensor,
    target: torch.Tensor,
    scores: torch.Tensor,
    *,
    mask_id: int,
    pad_id: int,
    fractions: Sequence[float] = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0),
    insertion: bool = False,
) -> np.ndarray:
    """Mean target probability as the highest-scored share of each text's tokens is replaced by ``mask_id``.

    Ties keep text order; ``fractions[k]`` of a text's real tokens (rounded up) are hidden at step ``k``.
    A faithful attribution makes the curve fall fast (a low area under it). With ``insertion``, every
    real token starts hidden and the highest-scored share is revealed instead (a high area is faithful).
    """
    rank, real, n_real = _ranks(ids, scores, pad_id)
    curve = []
    for f in fractions:
        top = (rank < torch.ceil(n_real * float(f))) & real
        hidden = (real & ~top) if insertion else top
        masked = torch.where(hidden, torch.full_like(ids, mask_id), ids)
        curve.append(float(target_probability(module, masked, target).mean()))
    return np.asarray(curve)


def completeness_gap(delta: torch.Tensor, fx_minus_fb: torch.Tensor) -> float:
    """The largest ``|delta|`` relative to ``|f(x) - f(baseline)|`` (at least 1e-6): 0 for exact IG."""
    return float((delta.abs() / fx_minus_fb.abs().clamp_min(1e-6)).max()) if len(delta) else float("nan")


def randomised_weights(module: nn.Module, *, seed: int = 0) -> nn.Module:
    """A copy of ``module`` with every parameter re-drawn from a normal of the same mean and spread (seeded)."""
    clone = copy.deepcopy(module)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in clone.parameters():
            std = float(p.detach().float().std()) if p.numel() > 1 else 1.0
            noise = torch.randn(p.shape, generator=gen) * (std if std > 0 else 1.0)
            p.copy_(noise.to(p.device, p.dtype))
    return clone.eval()
