"""The explanations section for text models: token attributions, their trust checks, highlighted text.

Methods (:mod:`dlaudit.explain.tokens`): ``ig`` (Integrated Gradients on the embedding,
baseline: every token PAD, stated in the section), ``gxi`` (input x gradient on the
embedding), ``occlusion`` (by token, replaced by the mask id) and ``lime`` (LIME text). The
image and tabular explainers (saliency maps, Grad-CAM, Kernel SHAP over columns...) read
inputs as values and do not apply to token ids; the section says so.

Metrics per method (the names of the image and tabular sections): ``explain.{m}.deletion_auc``
and ``explain.{m}.random_deletion_auc`` (target probability as tokens are replaced by the mask
id, highest-scored first / in a seeded random order), ``explain.{m}.insertion_auc`` and
``explain.{m}.random_insertion_auc`` (as they are revealed in a text of mask ids), ``explain.ig.completeness_error`` and
``explain.{ig,gxi}.sanity_rank_corr`` (the weight-randomisation check).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from ..errors import ConfigError
from ..modalities.text import mask_id_of
from ..pipeline import keep
from ..report.model import Figure, Section, Table, judged
from ..text.model_io import require_text
from .explanation import Explanation
from .tokens import (
    completeness_gap,
    deletion_curve,
    find_embedding,
    randomised_weights,
    token_gxi,
    token_ig,
    token_lime,
    token_occlusion,
    token_shap,
)

if TYPE_CHECKING:
    from ..bundle import ModelBundle
    from ..data import AuditData

__all__ = ["TextSettings", "explain_text", "estimate_text", "TEXT_METHODS", "highlighted_svg"]

TEXT_METHODS = {
    "ig": "Integrated Gradients (embedding layer)",
    "gxi": "Input x Gradient (embedding layer)",
    "occlusion": "Occlusion by token",
    "lime": "LIME text",
    "shap": "SHAP Partition (text masker)",
}
DEFAULT_METHODS = ("ig", "gxi", "occlusion", "lime")
"""What runs unless ``methods`` says otherwise; ``shap`` is asked for by name (its first call in a process
compiles shap's partition code, seconds on a small machine)."""
SHORT = {"ig": "IG", "gxi": "Input x Grad", "occlusion": "Occlusion", "lime": "LIME", "shap": "SHAP"}
"""The method labels of the highlighted text (the table and captions give the full names)."""
SANITY_THRESHOLD = 0.5
FRACTIONS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)
SHOWN = 4
"""How many explained texts the section draws as highlighted text."""


@dataclass(frozen=True)
class TextSettings:
    """What the text explanations run: ``n`` texts, the ``methods``, IG ``steps`` and LIME ``lime_samples``."""

    n: int = 16
    methods: Sequence[str] | str | None = None
    steps: int = 32
    lime_samples: int = 500
    quality: bool = True

    FAST: ClassVar[dict[str, Any]] = {"n": 8, "steps": 16, "lime_samples": 200}

    @classmethod
    def build(cls, *, fast: bool = False, **params: Any) -> TextSettings:
        known = {f.name for f in fields(cls)}
        base: dict[str, Any] = dict(cls.FAST) if fast else {}
        base.update({k: v for k, v in params.items() if k in known and v is not None})
        s = cls(**base)
        names = list(DEFAULT_METHODS) if s.methods is None else _names(s.methods)
        unknown = [m for m in names if m not in TEXT_METHODS]
        if unknown:
            raise ConfigError(
                f"explanation method(s) {', '.join(unknown)} do not apply to text; choose from: {', '.join(TEXT_METHODS)}"
            )
        if int(s.n) < 1 or int(s.steps) < 2 or int(s.lime_samples) < 10:
            raise ConfigError("text explanations need n >= 1, steps >= 2 and lime_samples >= 10")
        return cls(int(s.n), tuple(names), int(s.steps), int(s.lime_samples), bool(s.quality))


def estimate_text(
    bundle: ModelBundle, data: AuditData, *, fast: bool = False, params: dict[str, Any] | None = None
) -> tuple[float, str] | None:
    """``(seconds, what it counts)`` of :func:`explain_text`: the passes of its methods and trust checks, priced by
    :func:`dlaudit.text.estimate.text_costs`."""
    from ..text.estimate import priced

    inputs = priced(bundle, data, TextSettings.build, fast, params)
    if inputs is None:
        return None
    s, costs, n = inputs
    forwards, grads = (n * k for k in text_passes(s, mean_tokens(bundle, data)))
    seconds = forwards * costs["forward"] + grads * costs["grad"]
    return (
        seconds,
        f"about {int(forwards):,} text forward passes and {int(grads):,} gradient passes ({', '.join(s.methods)} on {n} texts)",
    )


def mean_tokens(bundle: ModelBundle, data: AuditData) -> float:
    """The mean number of real (not PAD) tokens of the texts: what occlusion and SHAP's passes grow with."""
    return float(data.x.ne(bundle.tokenizer.pad_id).sum(dim=1).float().mean())


def text_passes(s: TextSettings, tokens: float) -> tuple[float, float]:
    """Forward and gradient passes per explained text of :func:`explain_text` with settings ``s`` on texts of
    ``tokens`` tokens (the methods' and, with ``quality``, their trust checks'): what its estimate and its
    ``--time-budget`` ladder price."""
    per_text = {
        "ig": (0.0, s.steps + 1.0),
        "gxi": (0.0, 1.0),
        "occlusion": (tokens + 1, 0.0),
        "lime": (float(s.lime_samples), 0.0),
        "shap": (2.0 * tokens + 1, 0.0),
    }
    forwards = sum(per_text[m][0] for m in s.methods)
    grads = sum(per_text[m][1] for m in s.methods)
    if s.quality:
        forwards += len(s.methods) * 4 * len(FRACTIONS)  # deletion and insertion, ranked and random
        grads += sum(per_text[m][1] for m in s.methods if m in ("ig", "gxi"))  # the randomised-weights check
    return forwards, grads


def _names(methods: Sequence[str] | str) -> list[str]:
    items = methods.split(",") if isinstance(methods, str) else list(methods)
    return [m.strip().lower() for m in items if m.strip()]


def _spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def explain_text(
    bundle: ModelBundle,
    data: AuditData,
    *,
    seed: int = 0,
    fast: bool = False,
    progress: Any = None,
    **params: Any,
) -> Section:
    """Token attributions of the first ``n`` texts for the predicted class, their quality checks, highlighted text."""
    tok = require_text(bundle, data, "text explanations")
    s = TextSettings.build(fast=fast, **params)
    sub = data.head(s.n)
    module, dev = bundle.module, bundle.device
    ids = sub.x.to(dev)
    pad, mask = int(tok.pad_id), mask_id_of(tok)
    layer = find_embedding(module)
    with torch.no_grad():
        target = module(ids).argmax(dim=1)
    sec = Section(
        name="explain",
        title="Explanations",
        params={
            "n": len(sub),
            "methods": list(s.methods),
            "target": "predicted class",
            "ig_steps": s.steps,
            "ig_baseline": f"every token PAD (id {pad}): the embedding of an empty text",
            "hidden_token": f"mask id {mask}",
            "lime_samples": s.lime_samples,
        },
    )
    scores: dict[str, torch.Tensor] = {}
    total = len(s.methods)

    def predict(texts: list[str]) -> np.ndarray:
        x = tok.encode(texts, max_len=ids.shape[1], min_len=ids.shape[1]).ids.to(dev)
        with torch.no_grad():
            return torch.softmax(module(x).float(), dim=1).cpu().numpy()

    delta = fx_fb = None
    for k, name in enumerate(s.methods):
        if progress is not None:
            progress(f"explain {name}", k, total)
        if name == "ig":
            scores[name], delta = token_ig(module, ids, target, pad_id=pad, steps=s.steps, layer=layer)
            fx_fb = scores[name].sum(dim=1) - delta
        elif name == "gxi":
            scores[name] = token_gxi(module, ids, target, layer=layer)
        elif name == "occlusion":
            scores[name] = token_occlusion(module, ids, target, mask_id=mask, pad_id=pad)
        elif name == "shap":
            enc = tok.encode(sub.texts, max_len=ids.shape[1], min_len=ids.shape[1])
            scores[name], base = token_shap(
                predict,
                sub.texts,
                target.tolist(),
                enc.offsets,
                ids.shape[1],
                class_names=bundle.card.names,
                max_evals=s.lime_samples,
                seed=seed,
            )
            prob = predict(list(sub.texts))[np.arange(len(sub)), target.cpu().numpy()]
            gap = float(np.abs(scores[name].sum(dim=1).numpy() + base - prob).max())
            sec.add_metric(
                "explain.shap.additivity_error",
                gap,
                higher_is_better=False,
                description="SHAP: largest |sum of word values + base value - probability of the class|",
            )
        elif name == "lime":
            enc = tok.encode(sub.texts, max_len=ids.shape[1], min_len=ids.shape[1])
            scores[name] = token_lime(
                predict,
                sub.texts,
                target.tolist(),
                enc.offsets,
                ids.shape[1],
                class_names=bundle.card.names,
                num_samples=s.lime_samples,
                seed=seed,
            )
    if progress is not None:
        progress("explain quality", total, total)
    rows = []
    gen = torch.Generator().manual_seed(seed)
    random_scores = torch.rand(ids.shape, generator=gen)

    def area(sc: torch.Tensor, kind: str) -> float:
        curve = deletion_curve(
            module,
            ids,
            target,
            sc.to(dev),
            mask_id=mask,
            pad_id=pad,
            fractions=FRACTIONS,
            insertion=kind == "insertion",
        )
        return float(np.trapezoid(curve, FRACTIONS))

    random_auc = {kind: area(random_scores, kind) for kind in ("deletion", "insertion")} if s.quality else {}
    for name, sc in scores.items():
        title = TEXT_METHODS[name]
        row: list[Any] = [title]
        if s.quality:
            for kind in ("deletion", "insertion"):
                auc = area(sc, kind)
                sec.add_metric(
                    f"explain.{name}.{kind}_auc",
                    auc,
                    higher_is_better=kind == "insertion",
                    description=f"{title}: mean target probability as the top tokens are "
                    + (
                        "replaced by the mask id (area)"
                        if kind == "deletion"
                        else "revealed in an all-mask text (area)"
                    ),
                )
                sec.add_metric(
                    f"explain.{name}.random_{kind}_auc",
                    random_auc[kind],
                    higher_is_better=kind == "insertion",
                    description="the same curve for tokens taken in a seeded random order (the reference)",
                )
                row += [auc, random_auc[kind]]
        else:
            row += [None, None, None, None]
        if s.quality and name in ("ig", "gxi"):
            fn = token_ig if name == "ig" else token_gxi
            rnd = randomised_weights(module, seed=seed)
            kwargs = {"pad_id": pad, "steps": s.steps} if name == "ig" else {}
            other = fn(rnd, ids, target, layer=find_embedding(rnd), **kwargs)
            other = other[0] if isinstance(other, tuple) else other
            real = (ids != pad).cpu()
            corr = _spearman(sc.abs()[real].numpy(), other.abs()[real].numpy())
            sec.add_metric(
                f"explain.{name}.sanity_rank_corr",
                corr,
                higher_is_better=False,
                description=f"{title}: rank correlation of |scores| with those of the model with random weights",
                note="" if corr is not None else "constant scores: no rank correlation",
                **judged(
                    corr, warning=corr is not None and corr > SANITY_THRESHOLD, rule=f"warns above {SANITY_THRESHOLD}"
                ),
            )
            if corr is not None and corr > SANITY_THRESHOLD:
                sec.add_finding(
                    "warning",
                    f"{title}: the scores barely change when the model's weights are randomised "
                    f"(rank correlation {corr:.2f}); they describe the text more than the model",
                    check="explain-sanity",
                )
            row.append(corr)
        else:
            row.append(None)
        if name == "ig" and delta is not None and fx_fb is not None:
            gap = completeness_gap(delta, fx_fb)
            sec.add_metric(
                "explain.ig.completeness_error",
                gap,
                higher_is_better=False,
                description="IG: largest |sum of scores - (f(x) - f(baseline))| relative to |f(x) - f(baseline)|",
                **judged(gap, warning=gap > 0.05, rule="warns above 0.05"),
            )
            if gap > 0.05:
                sec.add_finding(
                    "warning",
                    f"Integrated Gradients misses completeness by up to {gap:.1%}; raise steps (now {s.steps})",
                    check="explain-completeness",
                )
            row.append(gap)
        else:
            row.append(None)
        rows.append(row)
    sec.tables.append(
        Table(
            "Token attribution quality",
            [
                "method",
                "deletion AUC",
                "random deletion AUC",
                "insertion AUC",
                "random insertion AUC",
                "sanity rank corr.",
                "completeness error",
            ],
            rows,
            caption="Deletion: mean probability of the predicted class as the highest-scored tokens are replaced "
            "by the mask id (lower than random order is faithful); insertion: as they are revealed in a text "
            "of mask ids (higher than random order is faithful).",
        )
    )
    enc = tok.encode(sub.texts[:SHOWN], max_len=ids.shape[1], min_len=ids.shape[1])
    names = bundle.card.names
    for i in range(min(SHOWN, len(sub))):
        words, values = _words(sub.texts[i], enc.offsets[i], enc.word_ids[i], {m: sc[i] for m, sc in scores.items()})
        label = names[int(target[i])]
        sec.figures.append(
            Figure(
                f"Text {i + 1}: token attributions for the predicted class {label!r} (red: towards it, blue: against)",
                highlighted_svg(words, values),
                mime="image/svg+xml",
                alt=sub.texts[i][:300],
            )
        )
    not_applied = (
        "saliency maps, Grad-CAM, SmoothGrad, DeepLIFT and column-wise SHAP read inputs as values; token ids are not"
    )
    sec.summary = (
        f"{len(s.methods)} token attribution method(s) on {len(sub)} text(s), for the predicted class; "
        f"IG baseline: all PAD. Not applicable to text: {not_applied}."
    )
    keep(
        "explanation",
        Explanation(
            attributions=scores,
            x=sub.x.cpu(),
            y=sub.y.cpu(),
            pred=target.cpu(),
            target=target.cpu(),
            indices=torch.arange(len(sub)),
            section=sec,
            card=bundle.card.to_dict(),
            seed=seed,
        ),
    )  # what `dlaudit explain` saves: per-token scores (N, L) of every method
    return sec


def _words(
    text: str, offsets: Sequence[tuple[int, int]], word_ids: Sequence[int | None], per_method: dict[str, torch.Tensor]
) -> tuple[list[str], dict[str, list[float]]]:
    """The words of ``text`` (the tokens' spans merged by word id) and each method's per-word sums."""
    from ..text.vocab import merge_to_words

    spans: dict[int, list[int]] = {}
    for (a, b), w in zip(offsets, word_ids):
        if w is not None:
            spans.setdefault(w, [a, b])[1] = b
    words = [text[a:b] for _, (a, b) in sorted(spans.items())]
    values = {m: merge_to_words(sc[: len(word_ids)], list(word_ids))[: len(words)] for m, sc in per_method.items()}
    return words, values


def _colour(v: float, top: float) -> str:
    x = max(-1.0, min(1.0, v / top)) if top > 0 else 0.0
    if x >= 0:
        r, g, b = 255, int(255 - 140 * x), int(255 - 160 * x)
    else:
        r, g, b = int(255 + 160 * x), int(255 + 110 * x), 255
    return f"#{r:02x}{g:02x}{b:02x}"


def highlighted_svg(words: Sequence[str], values: dict[str, Sequence[float]], *, width: int = 900) -> str:
    """One line of highlighted words per method (background by the word's score, scaled per method), with a legend.

    Every string is XML-escaped; the legend gives each method's scale (the score of full colour).
    """
    char_w, line_h, label_w, legend_w = 7.2, 22, 80, 130
    lines: list[str] = []
    y = 18
    out_h = 0
    for method, vals in values.items():
        top = float(np.max(np.abs(vals))) if len(vals) else 0.0
        lines.append(
            f'<text x="4" y="{y + 4}" font-size="11" font-family="sans-serif">{html.escape(SHORT.get(method, method))}</text>'
        )
        x = float(label_w)
        for word, v in zip(words, vals):
            w = char_w * len(word) + 6
            if x + w > width - legend_w:
                y += line_h
                x = float(label_w)
            lines.append(
                f'<rect x="{x:.1f}" y="{y - 11}" width="{w:.1f}" height="18" fill="{_colour(float(v), top)}">'
                f"<title>{html.escape(word)}: {float(v):+.4g}</title></rect>"
            )
            lines.append(
                f'<text x="{x + 3:.1f}" y="{y + 3}" font-size="12" font-family="monospace">{html.escape(word)}</text>'
            )
            x += w + 2
        lines.append(
            f'<text x="{width - 4}" y="{y + 4}" font-size="10" text-anchor="end" font-family="sans-serif">'
            f"full colour = ±{top:.3g}</text>"
        )
        y += line_h + 6
    # legend: a colour bar from -1 to +1 (relative to each method's scale)
    for k in range(21):
        v = -1 + k / 10
        lines.append(f'<rect x="{label_w + 12 * k}" y="{y}" width="12" height="10" fill="{_colour(v, 1.0)}"/>')
    lines.append(f'<text x="{label_w - 4}" y="{y + 9}" font-size="10" text-anchor="end">-scale</text>')
    lines.append(f'<text x="{label_w + 12 * 21 + 4}" y="{y + 9}" font-size="10">+scale (towards the class)</text>')
    out_h = y + 20
    body = "".join(lines)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{out_h}" viewBox="0 0 {width} {out_h}">'
        f'<rect width="100%" height="100%" fill="white"/>{body}</svg>'
    )
