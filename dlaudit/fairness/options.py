"""The fairness analysis' command-line options (``dlaudit fairness``, and ``dlaudit mitigate``'s).

Declared here, next to :class:`dlaudit.fairness.analysis.Settings` (whose ``OPTIONS`` they are), in a
module that imports no torch, so ``dlaudit --help`` stays quick; the CLI builds its Click options from them.
"""

from __future__ import annotations

from ..analysis import FAST_HELP, Option

__all__ = ["OPTIONS", "MITIGATE_OPTIONS", "ALL"]

OPTIONS = (
    Option("fairness", ("--intersection/--no-intersection",), "intersection",
           "Judge the intersection of the sensitive features (e.g. sex&race) too; by default when two or more are named.",
           type="flag"),
    Option("fairness", ("--bins",), "bins",
           "Bin edges of a continuous feature, COLUMN=EDGE[,EDGE...] (default age=25,60). Repeatable.", multiple=True),
    Option("fairness", ("--n-boot",), "n_boot", "Bootstrap resamples for the intervals (default 1000; 200 with --fast).",
           type="int", min=0),
    Option("fairness", ("--gap-threshold",), "gap_threshold", "Gaps above this are warnings.", type="float",
           default=0.1, show_default=True, min=0),
    Option("fairness", ("--min-group-size",), "min_group_size", "Smaller groups are flagged, not judged.", type="int",
           default=30, show_default=True, min=1),
    Option("fairness", ("--fast",), "fast", FAST_HELP + " Here: 200 bootstrap resamples and PGD-10.", type="flag"),
)  # fmt: skip
"""Every option of ``dlaudit fairness``; each one's help is what ``dlaudit fairness --help`` shows."""

MITIGATE_OPTIONS = (
    Option("mitigate", ("--method",), "method", "reweigh, threshold, expgrad, reject-option or calibrated-eqodds (comma-separated to compare several).",
           required=True),
    Option("mitigate", ("--constraint",), "constraint", "For threshold and expgrad.",
           choices=("demographic_parity", "equalized_odds"), default="demographic_parity", show_default=True),
    Option("mitigate", ("--epochs",), "epochs",
           "Epochs when retraining (reweigh; per round for expgrad); default: the model's.", type="int", min=1),
    Option("mitigate", ("--max-iter",), "max_iter", "Exponentiated-gradient rounds.", type="int", default=20,
           show_default=True, min=1),
    Option("mitigate", ("--bins",), "bins", "Bin edges of a continuous sensitive feature, COLUMN=EDGE[,EDGE...].",
           multiple=True),
)  # fmt: skip
"""``dlaudit mitigate``'s options (keywords of :func:`dlaudit.mitigate`; settings in
:class:`dlaudit.fairness.mitigate.MitigationSettings`), declared with the fairness analysis' own."""
ALL = OPTIONS + MITIGATE_OPTIONS
"""What the fairness analysis registers: its own options and mitigation's."""
