"""The result of a text attack, and accuracy under attack at each budget."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["TextAttackResult", "attack_metrics"]


@dataclass(frozen=True)
class TextAttackResult:
    """Per-sample outcome of a text attack run with budget ``budget`` (words or tokens changed).

    Attributes
    ----------
    name
        The attack's metric name (``charswap``, ``wordswap``, ``hotflip``).
    labels
        The true classes.
    initially_correct
        Whether the model was right before the attack (only those are attacked).
    success
        Whether the attack changed a right prediction into a wrong one within the budget.
    words_changed
        Words (or tokens) changed: at success, or when the attack gave up.
    queries
        Model evaluations spent per sample (one text scored once is one query; HotFlip's
        gradient pass counts as one).
    adv_texts, adv_ids
        The final texts (black-box attacks) or token ids (HotFlip); a failed attack leaves
        its last, unsuccessful state.
    """

    name: str
    budget: int
    labels: np.ndarray
    initially_correct: np.ndarray
    success: np.ndarray
    words_changed: np.ndarray
    queries: np.ndarray
    adv_texts: list[str] | None = None
    adv_ids: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def clean_accuracy(self) -> float:
        return float(self.initially_correct.mean())

    def acc_at(self, budget: int | None = None) -> float:
        """Accuracy under attack when at most ``budget`` words may change (the run's budget by default).

        Exact for any ``budget <= self.budget``: a greedy attack with a smaller budget stops
        on the same path, earlier.
        """
        k = self.budget if budget is None else min(int(budget), self.budget)
        broken = self.success & (self.words_changed <= k)
        return float((self.initially_correct & ~broken).mean())

    @property
    def accuracy(self) -> float:
        return self.acc_at()

    @property
    def success_rate(self) -> float:
        """Successes among the samples the model got right (NaN when it got none right)."""
        n = int(self.initially_correct.sum())
        return float(self.success.sum() / n) if n else float("nan")

    @property
    def mean_words_changed(self) -> float:
        """Mean words changed over the successful attacks (NaN without one)."""
        return float(self.words_changed[self.success].mean()) if self.success.any() else float("nan")

    @property
    def mean_queries(self) -> float:
        """Mean queries over the attacked samples (NaN when none was attacked)."""
        return float(self.queries[self.initially_correct].mean()) if self.initially_correct.any() else float("nan")


def attack_metrics(
    result: TextAttackResult, budgets: Iterable[int] | None = None, *, prefix: str = "robustness"
) -> dict[str, float]:
    """Flat metric names of an attack result.

    ``{prefix}.{name}.acc@{K}`` for each budget K (accuracy under attack with at most K words
    changed; ``budgets`` default to ``1..result.budget``), and at the run's budget
    ``{prefix}.{name}.success_rate@{K}``, ``{prefix}.{name}.words_changed@{K}`` (mean over
    successes) and ``{prefix}.{name}.queries@{K}`` (mean over attacked samples).
    """
    ks = sorted(set(budgets)) if budgets is not None else list(range(1, result.budget + 1))
    base = f"{prefix}.{result.name}"
    out = {f"{base}.acc@{k}": result.acc_at(k) for k in ks if k <= result.budget}
    k = result.budget
    out[f"{base}.success_rate@{k}"] = result.success_rate
    out[f"{base}.words_changed@{k}"] = result.mean_words_changed
    out[f"{base}.queries@{k}"] = result.mean_queries
    return out
