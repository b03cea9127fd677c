"""A report's AutoAttack result in the fields of RobustBench's model-info files.

RobustBench (Croce et al. 2021, https://arxiv.org/abs/2010.09670) keeps one JSON file per model
and threat model, ``model_info/<dataset>/<Linf|L2>/<name>.json``, with the fields ``link``,
``name``, ``authors``, ``additional_data``, ``number_forward_passes``, ``dataset``, ``venue``,
``architecture``, ``eps`` (a string such as ``"8/255"``), ``clean_acc``, ``reported`` and
``autoattack_acc`` (accuracies as strings of percentages with two decimals, ``"94.78"``). The
threat model is the file's folder there; here it is a field too, beside what a comparison needs
and those files leave implicit: ``threat_model``, ``n_examples``, ``autoattack_version``
(``standard``, ``rand`` for a model random at inference, or dlaudit's ``fast`` subset, which
RobustBench does not accept) and ``seed``. Fields dlaudit cannot know (``link``, ``authors``,
``venue``, ``reported``) are empty strings for the user to fill in.

One budget per file, as RobustBench's: the middle of the budgets AutoAttack ran at (L-inf when it
ran on L-inf), the one the report's headline uses; every budget is listed in ``all_budgets``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import ConfigError
from .model import Report

__all__ = ["FIELDS", "render_robustbench", "robustbench_info"]

FIELDS = (
    "link", "name", "authors", "additional_data", "number_forward_passes", "dataset", "venue", "architecture",
    "eps", "clean_acc", "reported", "autoattack_acc",
)  # fmt: skip
"""The fields of a RobustBench model-info file, in its order."""
NO_AUTOATTACK = (
    "--robustbench-json needs AutoAttack's robust accuracy, and AutoAttack did not run in this audit; "
    "add it (`dlaudit attack MODEL --attack autoattack`, or leave the robustness section's autoattack on in `dlaudit report`)"
)
_METRIC = re.compile(r"^robustness\.autoattack_(linf|l2)\.acc@(.+)$")
_THREAT = {"linf": "Linf", "l2": "L2"}
VOTE_FORWARD_PASSES = 9
"""Forward passes per prediction of a model judged by majority vote (``dlaudit.robust.stochastic.VOTE_PASSES``)."""


def _percent(value: float) -> str:
    return f"{100.0 * value:.2f}"


def _eps_text(eps: float) -> str:
    """``8/255`` where a budget below 1 that is not a short decimal is a whole number of 255ths
    (RobustBench's way; metric names keep six significant digits, so 0.0313725 reads as 8/255),
    else the number (``0.1``, ``0.2``)."""
    k = eps * 255.0
    short = abs(round(eps, 3) - eps) < 1e-9
    whole = 0 < eps < 1 and not short and abs(k - round(k)) < 1e-4 * k
    return f"{round(k)}/255" if whole else f"{eps:g}"


def robustbench_info(report: Report) -> dict[str, Any]:
    """The RobustBench model-info fields (and the comparison fields) of ``report``'s AutoAttack result.

    Raises :class:`ConfigError` (one line: add AutoAttack) when the report holds no AutoAttack accuracy.
    """
    sec = report.section("robustness")
    runs: list[tuple[str, float, float]] = []
    for m in sec.metrics if sec is not None else []:
        if (hit := _METRIC.match(m.name)) and m.value is not None and float(hit.group(2)) > 0:
            runs.append((hit.group(1), float(hit.group(2)), float(m.value)))
    clean = report.metrics.get("robustness.clean_acc")
    if sec is None or not runs or clean is None:
        raise ConfigError(NO_AUTOATTACK)
    norm = "linf" if any(r[0] == "linf" for r in runs) else "l2"
    mine = sorted(r for r in runs if r[0] == norm)
    _, eps, acc = mine[(len(mine) - 1) // 2]
    p = sec.params
    version = p.get("version") if p.get("scope") == "attacks" else p.get("autoattack")  # dlaudit attack: --version
    card = report.card
    arch = str(card.get("architecture") or card.get("arch") or "")
    return {
        "link": "",
        "name": str(card.get("name") or report.title),
        "authors": "",
        "additional_data": False,
        "number_forward_passes": VOTE_FORWARD_PASSES if version == "rand" else 1,
        "dataset": str(p.get("data") or card.get("dataset") or ""),
        "venue": "",
        "architecture": arch,
        "eps": _eps_text(eps),
        "clean_acc": _percent(float(clean)),
        "reported": "",
        "autoattack_acc": _percent(acc),
        "threat_model": _THREAT[norm],
        "n_examples": p.get("n"),
        "autoattack_version": version,
        "seed": p.get("seed"),
        "all_budgets": [
            {"threat_model": _THREAT[v], "eps": _eps_text(e), "autoattack_acc": _percent(a)} for v, e, a in sorted(runs)
        ],
    }


def render_robustbench(report: Report) -> str:
    """:func:`robustbench_info` as indented JSON."""
    return json.dumps(robustbench_info(report), indent=2) + "\n"
