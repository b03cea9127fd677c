"""The robustness analysis' command-line options: ``dlaudit attack`` (its ``attacks`` scope), ``dlaudit certify``
(its ``certify`` scope) and what it adds to ``dlaudit report``.

Declared here, next to :class:`dlaudit.robust.analysis.Settings` (whose ``OPTIONS`` they are), in a module
that imports no torch, so ``dlaudit --help`` stays quick; the CLI builds its Click options from them.
"""

from __future__ import annotations

from ..analysis import FAST_HELP, Option

__all__ = ["OPTIONS"]

OPTIONS = (
    # dlaudit attack: keywords of dlaudit.attack
    Option("attack", ("--attack",), "attacks", "Attacks, comma-separated: fgsm, pgd, apgd-ce, apgd-t, fab-t, square, autoattack "
           "(default fgsm,pgd); for text models charswap, wordswap, hotflip (default all three)."),
    Option("attack", ("--version",), "aa_version",
           "AutoAttack's version (default standard; fast with --fast): standard (the four attacks, the official settings), "
           "fast (APGD-CE and APGD-T, 25 iterations) or rand (for a model random at inference: APGD-CE and APGD-DLR with "
           "20 EoT passes per step, judged by the majority of 9 passes; chosen by itself for a model found stochastic).",
           choices=("standard", "fast", "rand"), keyword="version"),
    Option("attack", ("--norm",), "norms", "Norms, comma-separated: linf, l2.", default="linf", show_default=True),
    Option("attack", ("--eps",), "eps", "L-inf budgets (input units), comma-separated.", default="0.05,0.1,0.3",
           show_default=True),
    Option("attack", ("--eps-l2",), "eps_l2", "L2 budgets (input units), comma-separated.", default="0.5,1,2",
           show_default=True),
    Option("attack", ("--steps",), "steps", "PGD steps (default 40; 10 with --fast).", type="int"),
    Option("attack", ("--alpha",), "alpha", "PGD step size (default 2.5*eps/steps).", type="float"),
    Option("attack", ("--restarts",), "restarts", "PGD random restarts (each sample keeps its worst case).", type="int",
           default=1, show_default=True),
    Option("attack", ("--n",), "n", "Attack a seeded random subset of N samples (default all).", type="int"),
    Option("attack", ("--batch-size",), "batch_size", "Inputs per batch (default: 256 on CPU, fewer for large inputs).",
           type="int"),
    Option("attack", ("--no-early-stop",), "early_stop",
           "Run every PGD step on every sample (plain PGD; slower, never stronger).", type="flag", flag_value=False),
    Option("attack", ("--fast",), "fast", FAST_HELP + " Here: PGD-10 on at most 200 samples.", type="flag"),
    Option("attack", ("--features",), "features",
           "Input features the attacks may change: all, or numeric (a tabular model's numeric columns; one-hot categories keep their values).",
           choices=("all", "numeric"), default="all", show_default=True),
    # dlaudit certify: keywords of dlaudit.certify
    Option("certify", ("--method",), "method",
           "smoothing (randomized smoothing, L2, Cohen et al. 2019), or verified accuracy by ibp, crown-ibp, crown (L-inf).",
           choices=("smoothing", "ibp", "crown-ibp", "crown"), default="smoothing", show_default=True),
    Option("certify", ("--sigma",), "sigma", "Smoothing: noise standard deviation (input units).", type="float",
           default=0.25, show_default=True),
    Option("certify", ("--radii",), "radii", "Smoothing: L2 radii of the certified-accuracy curve.",
           default="0,0.25,0.5,1", show_default=True),
    Option("certify", ("--eps",), "eps", "Bounds: L-inf budgets, comma-separated.", default="0.1", show_default=True),
    Option("certify", ("--n",), "n",
           "Smoothing: noise samples per input that estimate p_A (default 100,000; 1,000 with --fast).", type="int"),
    Option("certify", ("--n0",), "n0", "Smoothing: noise samples per input that select the class.", type="int",
           default=100, show_default=True),
    Option("certify", ("--alpha",), "alpha", "Smoothing: each certificate fails with probability alpha.", type="float",
           default=0.001, show_default=True),
    Option("certify", ("--inputs",), "inputs", "Certify a seeded random subset of this many samples (default all).",
           type="int"),
    Option("certify", ("--batch-size",), "batch_size", "Noisy copies (smoothing) or inputs (bounds) per batch.",
           type="int"),
    Option("certify", ("--fast",), "fast", FAST_HELP + " Here: n = 1,000 and at most 50 inputs.", type="flag"),
    # dlaudit report: a keyword of dlaudit.run_report
    Option("report", ("--attack-features",), "attack_features",
           "Input features the robustness section's attacks may change: all, or numeric (a tabular model's numeric columns).",
           choices=("all", "numeric"), default="all", show_default=True),
)  # fmt: skip
"""Every option, by command; each one's help is what ``dlaudit COMMAND --help`` shows."""
