"""Counterfactual token fairness: does swapping an identity term change the model's prediction?

Garg et al. (2019), "Counterfactual Fairness in Text Classification through Robustness",
https://arxiv.org/abs/1809.10610. Every text that mentions an identity term (the word lists
of :mod:`dlaudit.text.identity`) is rewritten once per other member of the term's category;
the model scores the original and each counterfactual, and per identity pair
(``category``, ``source`` -> ``target``) this module reports:

- ``flip_rate``: the share of counterfactuals whose predicted class differs from the original's;
- ``mean_delta``: the mean change of the positive-class probability, counterfactual minus
  original (positive: the target term raises the score);
- ``mean_abs_delta``: the mean absolute change (Garg et al.'s counterfactual token fairness gap);
- the worst examples: the original texts' indices with the largest absolute change.

No sensitive column is needed, so every text audit can report it. Texts that mention no
identity term contribute nothing (``n_texts_with_identity`` says how many did).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError, ModelOutputError
from ..text.identity import CATEGORIES, IdentityCategory, counterfactuals

__all__ = ["PairResult", "CounterfactualResult", "counterfactual_token_fairness"]

PredictProba = Callable[[list[str]], Any]
"""``texts -> (N, C)`` class probabilities (a tensor or an array)."""


@dataclass(frozen=True)
class PairResult:
    """The effect of swapping ``source`` for ``target`` (members of ``category``) over ``n`` texts."""

    category: str
    source: str
    target: str
    n: int
    flip_rate: float
    mean_delta: float
    mean_abs_delta: float
    worst: tuple[int, ...]
    worst_delta: tuple[float, ...]

    @property
    def name(self) -> str:
        return f"{self.category}.{self.source}_to_{self.target}"


@dataclass(frozen=True)
class CounterfactualResult:
    """Per identity pair and overall; :meth:`metrics` gives the flat, dotted metric names."""

    pairs: tuple[PairResult, ...]
    n_texts: int
    n_texts_with_identity: int
    n_counterfactuals: int
    flip_rate: float
    mean_abs_delta: float
    positive: int

    def metrics(self, prefix: str = "fairness.counterfactual") -> dict[str, float]:
        """``{prefix}.flip_rate``, ``{prefix}.mean_abs_delta`` and, per pair, ``{prefix}.{category}.{source}_to_{target}.{flip_rate,mean_delta}``."""
        out = {f"{prefix}.flip_rate": self.flip_rate, f"{prefix}.mean_abs_delta": self.mean_abs_delta}
        for p in self.pairs:
            out[f"{prefix}.{p.name}.flip_rate"] = p.flip_rate
            out[f"{prefix}.{p.name}.mean_delta"] = p.mean_delta
        return out

    def table(self) -> pd.DataFrame:
        """One row per pair, the largest mean absolute change first."""
        rows = [
            {
                "category": p.category,
                "source": p.source,
                "target": p.target,
                "n": p.n,
                "flip_rate": p.flip_rate,
                "mean_delta": p.mean_delta,
                "mean_abs_delta": p.mean_abs_delta,
                "worst": list(p.worst),
            }
            for p in self.pairs
        ]
        frame = pd.DataFrame(rows)
        return (
            frame.sort_values("mean_abs_delta", ascending=False, kind="mergesort").reset_index(drop=True)
            if rows
            else frame
        )


def _probabilities(predict_proba: PredictProba, texts: list[str], batch_size: int) -> np.ndarray:
    parts = []
    for i in range(0, len(texts), batch_size):
        out = predict_proba(texts[i : i + batch_size])
        out = out.detach().cpu().numpy() if hasattr(out, "detach") else np.asarray(out)
        parts.append(np.asarray(out, dtype=np.float64))
    probs = np.concatenate(parts) if parts else np.zeros((0, 2))
    if probs.ndim != 2 or len(probs) != len(texts):
        raise ConfigError(
            f"predict_proba must return (N, C) probabilities; got shape {probs.shape} for {len(texts)} texts"
        )
    bad = int((~np.isfinite(probs)).any(axis=1).sum())
    if bad:
        raise ModelOutputError(f"the model returns NaN or infinite probabilities for {bad} of {len(texts)} texts")
    return probs


def counterfactual_token_fairness(
    predict_proba: PredictProba,
    texts: Sequence[str],
    *,
    categories: Sequence[IdentityCategory] = CATEGORIES,
    positive: int = 1,
    worst_k: int = 5,
    batch_size: int = 256,
) -> CounterfactualResult:
    """Flip rate and change of the positive-class probability when identity terms are swapped, per pair.

    Parameters
    ----------
    predict_proba
        ``texts -> (N, C)`` class probabilities (e.g. :meth:`dlaudit.text.train.TextClassifier.predict_proba`).
    texts
        The texts to rewrite.
    categories
        The identity word lists (:data:`dlaudit.text.identity.CATEGORIES` by default).
    positive
        The class whose probability change is measured (1: toxic, spam, negative...).
    worst_k
        How many worst examples (indices into ``texts``) each pair keeps.
    batch_size
        Texts per call of ``predict_proba``; originals and counterfactuals share the calls.

    Examples
    --------
    >>> toy = lambda ts: [[0.1, 0.9] if "muslim" in t else [0.8, 0.2] for t in ts]
    >>> r = counterfactual_token_fairness(toy, ["a muslim author"], categories=[RELIGION])  # doctest: +SKIP
    >>> r.pairs[0].flip_rate, r.pairs[0].mean_delta  # muslim -> christian  # doctest: +SKIP
    (1.0, -0.7)
    """
    texts = list(texts)
    cfs = counterfactuals(texts, categories)
    with_identity = sorted({c.index for c in cfs})
    probs = _probabilities(predict_proba, [texts[i] for i in with_identity] + [c.text for c in cfs], batch_size)
    if cfs and not 0 <= positive < probs.shape[1]:
        raise ConfigError(f"positive class {positive} is outside the model's {probs.shape[1]} classes")
    orig = probs[: len(with_identity)]
    row = {i: r for r, i in enumerate(with_identity)}
    cf = probs[len(with_identity) :]
    base = orig[[row[c.index] for c in cfs]] if cfs else np.zeros((0, probs.shape[1]))
    flips = cf.argmax(axis=1) != base.argmax(axis=1) if cfs else np.zeros(0, dtype=bool)
    delta = cf[:, positive] - base[:, positive] if cfs else np.zeros(0)
    groups: dict[tuple[str, str, str], list[int]] = {}
    for k, c in enumerate(cfs):
        groups.setdefault(c.pair, []).append(k)
    pairs = []
    for (category, source, target), ks in groups.items():
        d = delta[ks]
        order = np.argsort(-np.abs(d), kind="mergesort")[:worst_k]
        pairs.append(
            PairResult(
                category=category,
                source=source,
                target=target,
                n=len(ks),
                flip_rate=float(flips[ks].mean()),
                mean_delta=float(d.mean()),
                mean_abs_delta=float(np.abs(d).mean()),
                worst=tuple(cfs[ks[j]].index for j in order),
                worst_delta=tuple(float(d[j]) for j in order),
            )
        )
    return CounterfactualResult(
        pairs=tuple(pairs),
        n_texts=len(texts),
        n_texts_with_identity=len(with_identity),
        n_counterfactuals=len(cfs),
        flip_rate=float(flips.mean()) if cfs else float("nan"),
        mean_abs_delta=float(np.abs(delta).mean()) if cfs else float("nan"),
        positive=positive,
    )
