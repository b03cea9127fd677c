"""The fairness section for text models: counterfactual token fairness always, Jigsaw bias AUCs, group metrics.

- Counterfactual token fairness (Garg et al. 2019, https://arxiv.org/abs/1809.10610): identity
  terms of dlaudit's word lists (:mod:`dlaudit.text.identity`) swapped in every text that has
  one; ``fairness.counterfactual.*`` (flip rate, mean absolute change of the positive class's
  probability; per pair in a table, with the worst examples). Needs no sensitive column.
- Jigsaw unintended-bias AUCs (Borkan et al. 2019, https://arxiv.org/abs/1903.04561), for a
  binary model, where the data has identity columns (a categorical column such as
  ``synthetic-text``'s ``identity``, or 0/1 columns): ``fairness.bias.*`` with bootstrap intervals.
- Group metrics over ``--sensitive`` columns, as for tabular data (``fairness.<feature>.*``).

Both bootstraps (the bias AUCs' and the group metrics') take ``n_boot`` by the tabular section's rule,
:meth:`dlaudit.fairness.analysis.Settings.build`: 1000 resamples, 200 with ``fast``, ``--n-boot`` over both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..parsing import split_list
from ..report.model import Section, Table
from ..text.model_io import require_text, text_proba
from .analysis import Settings
from .counterfactual_text import counterfactual_token_fairness
from .text_bias import identity_groups, jigsaw_bias_aucs

if TYPE_CHECKING:
    from ..bundle import ModelBundle
    from ..data import AuditData

__all__ = ["fairness_text", "identity_frame", "sensitive_columns"]

FLIP_WARNING = 0.05
JIGSAW_RESAMPLES = {fast: Settings.build(fast=fast).n_boot for fast in (True, False)}
"""The bootstrap resamples of the Jigsaw bias AUCs and the group metrics alike under the fast profile (True) and the
full one, unless ``n_boot`` says: the tabular section's (200 and 1000)."""


def identity_frame(sensitive: pd.DataFrame | None) -> pd.DataFrame | None:
    """Identity membership columns (0/1) from the sensitive columns: 0/1 (or [0, 1] fraction) columns as they are,
    a categorical column one column per value (``none`` left out); None when there are none."""
    if sensitive is None or not len(sensitive.columns):
        return None
    parts = []
    for col in sensitive.columns:
        values = sensitive[col]
        numeric = pd.to_numeric(values, errors="coerce")
        if numeric.notna().all() and numeric.between(0, 1).all():
            parts.append(pd.DataFrame({str(col): numeric.to_numpy()}))
        else:
            parts.append(identity_groups(values))
    frame = pd.concat(parts, axis=1) if parts else None
    return frame if frame is not None and len(frame.columns) else None


def sensitive_columns(data: AuditData, sensitive: str | Sequence[str] | None) -> pd.DataFrame | None:
    """The data's sensitive columns; where ``sensitive`` names columns (``dlaudit fairness --sensitive COL``), those,
    found among the sensitive columns and the file's other columns (``data.raw``), as the group metrics find them."""
    names = split_list(sensitive)
    if not names:
        return data.sensitive
    frames = [f for f in (data.sensitive, data.raw) if f is not None]
    found = {n: next(f[n] for f in frames if n in f.columns) for n in names if any(n in f.columns for f in frames)}
    return pd.DataFrame({n: col.reset_index(drop=True) for n, col in found.items()}) if found else None


def fairness_text(
    bundle: ModelBundle,
    data: AuditData,
    *,
    seed: int = 0,
    fast: bool = False,
    progress: Any = None,
    sensitive: str | Sequence[str] | None = None,
    n_boot: int | None = None,
    **_: object,
) -> Section:
    """Counterfactual token fairness, Jigsaw bias AUCs and group metrics of a text model on ``data``."""
    tok = require_text(bundle, data, "text fairness checks")
    module, dev = bundle.module, bundle.device
    length = int(data.x.shape[1])
    n_boot = Settings.build(fast=fast, n_boot=n_boot).n_boot  # the tabular rule: 1000, 200 fast, n_boot over both
    positive = bundle.card.positive_index
    positive = 1 if positive is None else positive  # P(class 1) for the counterfactuals of a multi-class model

    predict_proba = text_proba(module, tok, dev, length)

    sec = Section(
        name="fairness",
        title="Fairness",
        params={
            "data": data.name,
            "split": data.split,
            "n": len(data),
            "positive_class": bundle.card.names[positive],
            "n_boot": n_boot,
            "seed": seed,
        },
    )
    if progress is not None:
        progress("counterfactual tokens", 0, 3)
    cf = counterfactual_token_fairness(predict_proba, data.texts, positive=positive)
    for name, value in cf.metrics().items():
        sec.add_metric(
            name,
            value,
            higher_is_better=False,
            description={
                "fairness.counterfactual.flip_rate": "share of identity-swapped texts whose predicted class changes",
                "fairness.counterfactual.mean_abs_delta": f"mean |change| of P({bundle.card.names[positive]}) when an identity term is swapped",
            }.get(name, name),
            note="" if np.isfinite(value) else "no text mentions an identity term of dlaudit's word lists",
        )
    rows = []
    for p in sorted(cf.pairs, key=lambda p: -p.mean_abs_delta):
        worst = "; ".join(f"{data.texts[i][:80]!r} ({d:+.3f})" for i, d in zip(p.worst[:2], p.worst_delta[:2]))
        rows.append([p.category, p.source, p.target, p.n, p.flip_rate, p.mean_delta, worst])
    sec.tables.append(
        Table(
            "Counterfactual token fairness: identity terms swapped",
            [
                "category",
                "from",
                "to",
                "texts",
                "flip rate",
                f"mean change of P({bundle.card.names[positive]})",
                "worst examples",
            ],
            rows[:40],
            caption=f"{cf.n_texts_with_identity} of {cf.n_texts} texts mention an identity term; {cf.n_counterfactuals} "
            "counterfactuals (whole-word, case-preserving swaps over dlaudit's documented word lists).",
        )
    )
    if np.isfinite(cf.flip_rate) and cf.flip_rate > FLIP_WARNING:
        worst = max(cf.pairs, key=lambda p: p.flip_rate)
        sec.add_finding(
            "warning",
            f"swapping identity terms changes {cf.flip_rate:.1%} of predictions; worst pair {worst.source} -> "
            f"{worst.target} ({worst.flip_rate:.1%} of {worst.n})",
            check="counterfactual-tokens",
        )
    if progress is not None:
        progress("bias AUCs", 1, 3)
    identities = identity_frame(sensitive_columns(data, sensitive))
    notes = []
    if bundle.card.num_classes != 2:
        notes.append("the Jigsaw bias AUCs need a binary model")
    elif identities is None:
        notes.append("no identity columns (pass --sensitive with identity columns) for the Jigsaw bias AUCs")
    else:
        probs = predict_proba(data.texts)[:, positive]
        bias = jigsaw_bias_aucs(data.y.numpy() == positive, probs, identities, n_boot=n_boot, seed=seed)
        lookup = {
            (b.identity, k): b.interval.get(k)
            for b in bias.identities
            for k in ("subgroup_auc", "bpsn_auc", "bnsp_auc")
        }
        for name, value in bias.metrics().items():
            parts = name.split(".")
            ci = lookup.get((parts[2], parts[3])) if len(parts) == 4 else None
            ci = ci if ci is not None and all(np.isfinite(ci)) else None
            sec.add_metric(
                name, value, ci=ci, higher_is_better=True, description="Jigsaw unintended-bias AUC (Borkan et al. 2019)"
            )
        table = bias.table()
        sec.tables.append(
            Table(
                "Jigsaw bias AUCs per identity",
                [str(c) for c in table.columns],
                table.to_numpy().tolist(),
                caption=f"overall AUC {bias.overall_auc:.3f}; final bias metric (power mean p={bias.power:g}) {bias.final_metric:.3f}; "
                f"{int(bias.confidence * 100)}% bootstrap intervals ({bias.n_boot} resamples).",
            )
        )
        w = bias.worst("bpsn_auc")
        if w is not None and np.isfinite(w.bpsn_auc) and w.bpsn_auc < bias.overall_auc - 0.05:
            sec.add_finding(
                "warning",
                f"BPSN AUC for {w.identity!r} is {w.bpsn_auc:.3f} against an overall AUC of {bias.overall_auc:.3f}: "
                "non-toxic texts mentioning it score like toxic ones",
                check="jigsaw-bias",
            )
    if progress is not None:
        progress("group metrics", 2, 3)
    if data.sensitive is not None or sensitive is not None:
        _group_part(sec, bundle, data, sensitive=sensitive, seed=seed, n_boot=n_boot)
    sec.summary = f"counterfactual token fairness on {cf.n_texts_with_identity} text(s) with identity terms" + (
        "" if not notes else f"; {notes[0]}"
    )
    return sec


def _group_part(sec: Section, bundle: ModelBundle, data: AuditData, *, sensitive: Any, seed: int, n_boot: int) -> None:
    """Group metrics over the sensitive columns, as the tabular fairness section computes them."""
    from ..data.groups import resolve_sensitive
    from .analysis import add_group_results, group_results

    features = resolve_sensitive(data, sensitive)
    if not features:
        return
    _, result = group_results(bundle, data, features, n_boot=n_boot, seed=seed)
    add_group_results(sec, result)
    sec.params["features"] = [f.name for f in features]
