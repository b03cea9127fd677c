"""The robustness section for text models: text attacks and natural text noise.

The L-p attacks, Gaussian noise, certification and randomized smoothing read inputs as values
and do not apply to token ids; text has its own attacks (:mod:`dlaudit.text.attacks`) and noise
(:mod:`dlaudit.text.noise`). Metrics:

``robustness.charswap.acc@K`` / ``robustness.wordswap.acc@K`` / ``robustness.hotflip.acc@K``
    accuracy under DeepWordBug (character edits), embedding-neighbour word substitution and
    HotFlip with at most K words (tokens) changed, for K = 1..budget, with
    ``success_rate@K``, ``words_changed@K`` and ``queries@K`` at the budget. DeepWordBug ranks
    words by replacing each with the tokenizer's unknown token (its own rule, and TextAttack's:
    :func:`~dlaudit.text.vocab.unknown_word`, ``[UNK]`` for a BERT, a word outside the vocabulary
    for dlaudit's word vocabulary), and by deleting it where the tokenizer has no such word (the
    metric's description says which); wordswap ranks by deletion;
``robustness.text_noise.{typos,casing,punctuation}.acc``
    accuracy on texts with natural noise on a share of their words;
``robustness.clean_accuracy``
    accuracy on the attacked sample before any attack.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from ..errors import ConfigError
from ..report.model import Section, Table
from ..stats import wilson_interval
from ..text.model_io import require_text, text_proba

if TYPE_CHECKING:
    from ..bundle import ModelBundle
    from ..data import AuditData

__all__ = ["TextRobustSettings", "robustness_text", "estimate_text", "TEXT_ATTACKS"]

TEXT_ATTACKS = ("charswap", "wordswap", "hotflip")


class DefaultAttacks(tuple):
    """The attacks ``dlaudit attack`` runs when none were named (FGSM and PGD at each norm): a text model,
    which they do not apply to, takes its own default (:data:`TEXT_ATTACKS`) instead of refusing them."""

    __slots__ = ()


@dataclass(frozen=True)
class TextRobustSettings:
    """``n`` texts attacked (a seeded subset), the ``attacks``, the word ``budget`` K, the noise ``noise_rate``."""

    n: int = 200
    attacks: Sequence[str] | str = TEXT_ATTACKS
    budget: int = 3
    noise_rate: float = 0.2

    FAST: ClassVar[dict[str, Any]] = {"n": 64, "budget": 2}

    @classmethod
    def build(cls, *, fast: bool = False, **params: Any) -> TextRobustSettings:
        if params.get("scope") == "certify":
            raise ConfigError(
                "certification (interval bounds, CROWN, randomized smoothing) bounds L-p balls around inputs read as "
                "values; it does not apply to a text model's token ids: audit it with 'dlaudit attack' or 'dlaudit report'"
            )
        known = {f.name for f in fields(cls)}
        if isinstance(params.get("attacks"), DefaultAttacks):  # none named: the text attacks
            params = {k: v for k, v in params.items() if k != "attacks"}
        base: dict[str, Any] = dict(cls.FAST) if fast else {}
        base.update({k: v for k, v in params.items() if k in known and v is not None})
        s = cls(**base)
        names = s.attacks.split(",") if isinstance(s.attacks, str) else list(s.attacks)
        names = list(dict.fromkeys(a.strip().split("_")[0] for a in names if a.strip()))  # `dlaudit attack` adds _NORM
        unknown = [a for a in names if a not in TEXT_ATTACKS]
        if unknown:
            raise ConfigError(
                f"attack(s) {', '.join(unknown)} do not apply to text; choose from: {', '.join(TEXT_ATTACKS)}"
            )
        if int(s.n) < 1 or int(s.budget) < 1:
            raise ConfigError(f"text robustness needs n >= 1 and budget >= 1, got {s.n}, {s.budget}")
        return cls(int(s.n), tuple(names), int(s.budget), float(s.noise_rate))


def robustness_text(
    bundle: ModelBundle,
    data: AuditData,
    *,
    seed: int = 0,
    fast: bool = False,
    progress: Any = None,
    **params: Any,
) -> Section:
    """Text attacks and natural noise on a seeded subset of ``data`` (see the module for the metrics)."""
    from ..text.attacks import attack_metrics, neighbours_of
    from ..text.noise import NOISE_KINDS, noisy_texts
    from ..text.vocab import WordVocab, special_ids_of, special_tokens_of, unknown_word

    tok = require_text(bundle, data, "text attacks")
    s = TextRobustSettings.build(fast=fast, **params)
    n = min(s.n, len(data))
    rows = np.sort(np.random.default_rng(seed).choice(len(data), size=n, replace=False)) if n < len(data) else None
    sub = data.subset(rows) if rows is not None else data
    texts, labels = list(sub.texts or []), sub.y.tolist()
    module, dev = bundle.module, bundle.device
    length = int(sub.x.shape[1])
    specials, spelled = sorted(special_ids_of(tok)), list(special_tokens_of(tok))
    unk = unknown_word(tok)  # charswap ranks words by it (DeepWordBug's rule); by deletion where there is none

    predict_proba = text_proba(module, tok, dev, length)

    sec = Section(
        name="robustness",
        title="Robustness",
        params={"n": n, "attacks": list(s.attacks), "budget": s.budget, "noise_rate": s.noise_rate, "seed": seed},
    )
    clean = float((predict_proba(texts).argmax(axis=1) == np.asarray(labels)).mean())
    sec.add_metric(
        "robustness.clean_accuracy",
        clean,
        ci=wilson_interval(round(clean * n), n),
        description="accuracy on the attacked texts before any attack",
        higher_is_better=True,
    )
    steps = len(s.attacks) + 1
    table: list[list[Any]] = []
    skipped: list[str] = []
    for k, name in enumerate(s.attacks):
        if progress is not None:
            progress(f"text attack {name}", k, steps)
        neighbours: dict[str, list[str]] | None = None
        if name == "wordswap":
            if not isinstance(tok, WordVocab):
                skipped.append(
                    "wordswap (embedding neighbours need a word-level vocabulary; this tokenizer splits words)"
                )
                continue
            words = {w for t in texts for w in tok.tokenize(t)}
            neighbours = neighbours_of(module, tok, words=words)
        job = {
            "name": name,
            "budget": s.budget,
            "seed": seed,
            "length": length,
            "tokenizer": tok,
            "special": specials,
            "spelled": spelled,
            "neighbours": neighbours,
            "unk": unk if name == "charswap" else None,
        }
        result = _attack_sharded(bundle, job, texts, labels, sub.x, progress=progress)
        metrics = attack_metrics(result)
        for metric, value in metrics.items():
            what = metric.split(".")[-1]
            sec.add_metric(
                metric,
                value,
                higher_is_better=what.startswith("acc@") or None,
                description=_describe(name, what, unk),
                note=""
                if np.isfinite(value)
                else "no text was attacked (none was classified correctly, or none succeeded)",
            )
        table.append(
            [
                name,
                *(result.acc_at(b) for b in range(1, s.budget + 1)),
                result.success_rate,
                result.mean_words_changed,
                result.mean_queries,
            ]
        )
    sec.tables.append(
        Table(
            "Accuracy under text attacks",
            ["attack", *(f"acc@{b}" for b in range(1, s.budget + 1)), "success rate", "words changed", "queries"],
            table,
            caption="acc@K: accuracy with at most K words (tokens for hotflip) changed; success rate over the texts "
            "classified correctly before the attack; words changed: mean over successes; queries: mean model calls.",
        )
    )
    if progress is not None:
        progress("text noise", len(s.attacks), steps)
    noise_rows = []
    for kind in NOISE_KINDS:
        noisy = noisy_texts(texts, kind, rate=s.noise_rate, seed=seed)
        acc = float((predict_proba(noisy).argmax(axis=1) == np.asarray(labels)).mean())
        sec.add_metric(
            f"robustness.text_noise.{kind}.acc",
            acc,
            ci=wilson_interval(round(acc * n), n),
            description=f"accuracy on texts with {kind} noise on {s.noise_rate:.0%} of their words",
            higher_is_better=True,
        )
        noise_rows.append([kind, acc, clean - acc, noisy[0][:120] if noisy else ""])
    sec.tables.append(
        Table(
            "Natural text noise",
            ["noise", "accuracy", "accuracy lost", "example"],
            noise_rows,
            caption=f"{s.noise_rate:.0%} of each text's words changed (seeded): typos, casing, punctuation.",
        )
    )
    worst = min((r for r in table), key=lambda r: r[s.budget], default=None)
    if worst is not None and clean - worst[s.budget] > 0.3:
        sec.add_finding(
            "warning",
            f"{worst[0]} with at most {s.budget} word(s) changed drops accuracy from {clean:.2f} to {worst[s.budget]:.2f}",
            check="text-attack",
        )
    not_applied = (
        "L-p attacks, Gaussian noise, certification and randomized smoothing read inputs as values, not token ids"
    )
    sec.summary = (
        f"{len(table)} text attack(s) and 3 kinds of natural noise on {n} text(s). Not applicable to text: {not_applied}."
        + (f" Skipped: {'; '.join(skipped)}." if skipped else "")
    )
    return sec


CANDIDATES = {"charswap": 4, "wordswap": 8, "hotflip": 10}
"""Candidates scored per changed word: DeepWordBug's 4 edits x 1, 8 embedding neighbours, HotFlip's 10 flips."""


def mean_words(data: AuditData) -> float:
    """The mean number of words of (the first 200 of) the texts: what the black-box attacks' queries grow with."""
    return float(np.mean([len(t.split()) for t in (data.texts or [""])[:200]]))


def attack_passes(s: TextRobustSettings, words: float, *, word_level: bool) -> tuple[float, float]:
    """At most the forward and gradient passes per attacked text of :func:`robustness_text` with settings ``s`` on
    texts of ``words`` words (clean accuracy, three kinds of noise, each attack; ``wordswap`` only with a
    ``word_level`` tokenizer): what its estimate and its ``--time-budget`` ladder price."""
    forwards, grads = 1.0 + 3.0, 0.0  # clean accuracy and three kinds of noise
    for name in s.attacks:
        if name == "wordswap" and not word_level:
            continue
        if name == "hotflip":
            forwards += 1 + s.budget * CANDIDATES[name]
            grads += s.budget
        else:
            forwards += 1 + words + s.budget * CANDIDATES[name]
    return forwards, grads


def estimate_text(
    bundle: ModelBundle, data: AuditData, *, fast: bool = False, params: dict[str, Any] | None = None
) -> tuple[float, str] | None:
    """``(seconds, what it counts)`` of :func:`robustness_text`: the model passes its attacks and noise take, priced
    by :func:`dlaudit.text.estimate.text_costs` (scored texts at ``query``, HotFlip's gradients at ``grad``; an
    upper bound: an attack stops at its first success)."""
    from ..text.estimate import priced
    from ..text.vocab import WordVocab

    inputs = priced(bundle, data, TextRobustSettings.build, fast, params)
    if inputs is None:
        return None
    s, costs, n = inputs
    word_level = isinstance(bundle.tokenizer, WordVocab)
    forwards, grads = (n * k for k in attack_passes(s, mean_words(data), word_level=word_level))
    flips = 0.0  # HotFlip scores its candidates at the full width, the others through text_proba (``query``)
    if "hotflip" in s.attacks:
        flips = n * (attack_passes(replace(s, attacks=("hotflip",)), 0.0, word_level=word_level)[0] - 4.0)
    seconds = (
        flips * costs["forward"] + (forwards - flips) * costs.get("query", costs["forward"]) + grads * costs["grad"]
    )
    return (
        seconds,
        f"at most {int(forwards):,} text forward passes and {int(grads):,} gradient passes ({len(s.attacks)} attack(s) on {n} texts)",
    )


HOTFLIP_BATCH = 64
"""Texts per HotFlip gradient pass; shards are multiples of it, so sharded batches are the one-piece run's."""


def _attack_sharded(
    bundle: ModelBundle,
    job: dict[str, Any],
    texts: list[str],
    labels: list[int],
    ids: torch.Tensor,
    *,
    progress: Any = None,
) -> Any:
    """One text attack on every text, in shards on the current executor (``--workers``) or in one piece here.

    Every text's random draws are keyed by its index in the attacked sample (``start``), the
    black-box searches compare probabilities rounded to a few decimals and HotFlip's batches are
    the same in shards as in one piece, so 1 and N workers give the same numbers.
    """
    from .. import parallel
    from ..text.attacks import TextAttackResult

    n = len(texts)
    ranges = parallel.plan_shards(n, align=HOTFLIP_BATCH)
    payload = lambda a, b: {**job, "start": a, "texts": texts[a:b], "labels": labels[a:b], "ids": ids[a:b].cpu()}
    if not ranges:
        parts = [_attack_shard(bundle, payload(0, n))]
    else:
        parts = parallel.map_samples(
            _attack_shard,
            bundle,
            ranges,
            payload,
            key=lambda p: (
                "text-attack",
                p["name"],
                p.get("unk"),
                p["budget"],
                p["seed"],
                p["start"],
                p["length"],
                p["ids"],
                "\x1f".join(p["texts"]),
                list(p["labels"]),
            ),
            rows=("labels", "correct", "success", "changed", "queries"),
            stage=f"text attack {job['name']}",
            progress=progress,
        )
    adv_ids = [p["adv_ids"] for p in parts if p.get("adv_ids") is not None]
    return TextAttackResult(
        name=parts[0]["name"],
        budget=int(job["budget"]),
        labels=parallel.cat(parts, "labels").numpy(),
        initially_correct=parallel.cat(parts, "correct").numpy(),
        success=parallel.cat(parts, "success").numpy(),
        words_changed=parallel.cat(parts, "changed").numpy(),
        queries=parallel.cat(parts, "queries").numpy(),
        adv_texts=[t for p in parts for t in (p.get("adv_texts") or [])] or None,
        adv_ids=torch.cat(adv_ids) if adv_ids else None,
    )


def _attack_shard(bundle: ModelBundle, p: dict[str, Any]) -> dict[str, Any]:
    """One attack on one shard of texts (a module-level function: it travels to Ray workers by name)."""
    from ..explain.tokens import find_embedding
    from ..text.attacks import deepwordbug, hotflip, word_substitution

    tok, module, dev, length = p["tokenizer"], bundle.module, bundle.device, int(p["length"])
    texts, labels = list(p["texts"]), list(p["labels"])

    predict_proba = text_proba(module, tok, dev, length)

    common = {"budget": int(p["budget"]), "protected": p["spelled"], "seed": int(p["seed"]), "start": int(p["start"])}
    if p["name"] == "charswap":
        unk = p.get("unk")
        result = deepwordbug(predict_proba, texts, labels, scoring="unk" if unk else "delete", unk=unk, **common)
    elif p["name"] == "wordswap":
        result = word_substitution(predict_proba, texts, labels, p["neighbours"], **common)
    else:
        forbidden = sorted({int(tok.pad_id), int(tok.unk_id), int(getattr(tok, "mask_id", tok.unk_id))})
        result = hotflip(
            module,
            p["ids"].to(dev),
            torch.as_tensor(labels, dtype=torch.long),
            budget=int(p["budget"]),
            pad_id=int(tok.pad_id),
            forbidden=forbidden,
            special=p["special"],
            embedding=find_embedding(module),
            batch_size=HOTFLIP_BATCH,
        )
    as_tensor = lambda a, dtype: torch.as_tensor(np.asarray(a), dtype=dtype)  # plain tensors: a checkpoint stores them
    return {
        "name": result.name,
        "labels": as_tensor(result.labels, torch.long),
        "correct": as_tensor(result.initially_correct, torch.bool),
        "success": as_tensor(result.success, torch.bool),
        "changed": as_tensor(result.words_changed, torch.long),
        "queries": as_tensor(result.queries, torch.long),
        "adv_texts": result.adv_texts,
        "adv_ids": result.adv_ids,
    }


def _describe(attack: str, what: str, unk: str | None = None) -> str:
    ranked = (
        f"words ranked by replacing each with the unknown token {unk}"
        if unk
        else "words ranked by deleting each: the tokenizer has no word it reads as its unknown token"
    )
    names = {
        "charswap": f"DeepWordBug character edits ({ranked})",
        "wordswap": "embedding-neighbour word swaps",
        "hotflip": "HotFlip token flips",
    }
    kind, _, k = what.partition("@")
    words = {
        "acc": f"accuracy under {names[attack]} with at most {k} word(s) changed",
        "success_rate": f"share of correctly classified texts that {names[attack]} (at most {k} words) fooled",
        "words_changed": f"mean words changed by a successful {names[attack]} attack",
        "queries": f"mean model queries per attacked text ({names[attack]})",
    }
    return words.get(kind, what)
