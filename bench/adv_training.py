"""Adversarial training on digits: standard, fast FGSM, PGD and TRADES CNNs side by side.

The issue's target (digits, seed 0, L-inf eps 0.2 for training and attack): the
PGD-trained CNN's PGD-40 accuracy is at least 30 points above the standard CNN's,
and its clean accuracy at most 5 points below.

Usage::

    python bench/adv_training.py                   # 30 epochs of adversarial training (minutes)
    python bench/adv_training.py --epochs 5        # a quicker look

Prints a Markdown table: clean accuracy, FGSM and PGD-40 accuracy at eps 0.2 (and
PGD-40 at 0.1), and training time of each model, then whether the target holds.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dlaudit
from dlaudit.robust import Attack, run_attack


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--eps", type=float, default=0.2)
    ap.add_argument(
        "--epochs", type=int, default=30, help="epochs of adversarial training (the standard CNN uses its default)"
    )
    ap.add_argument("--steps", type=int, default=10, help="PGD / TRADES attack steps during training")
    ap.add_argument("--alpha", type=float, default=0.02, help="PGD / TRADES step size during training")
    ap.add_argument("--beta", type=float, default=6.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    eps = args.eps
    test = dlaudit.load_data("digits")
    runs = {
        "standard": {},
        "fgsm (Wong et al. 2020)": {"adversarial": "fgsm", "eps": eps, "epochs": args.epochs},
        "pgd (Madry et al. 2018)": {
            "adversarial": "pgd",
            "eps": eps,
            "alpha": args.alpha,
            "steps": args.steps,
            "epochs": args.epochs,
        },
        "trades (Zhang et al. 2019)": {
            "adversarial": "trades",
            "eps": eps,
            "alpha": args.alpha,
            "steps": args.steps,
            "beta": args.beta,
            "epochs": args.epochs,
        },
    }
    print(f"# digits, seed {args.seed}, L-inf eps {eps}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    print(f"| training | epochs | train s | clean | FGSM@{eps:g} | PGD-40@{eps:g} | PGD-40@{eps / 2:g} |")
    print("|---|---|---|---|---|---|---|")
    results = {}
    for name, kw in runs.items():
        start = time.perf_counter()
        bundle = dlaudit.train("cnn", "digits", seed=args.seed, device="cpu", **kw)
        seconds = time.perf_counter() - start
        acc = {
            "clean": bundle.card.metrics["test_accuracy"],
            "fgsm": run_attack(bundle, test.x, test.y, Attack.fgsm(eps), keep_adv=False).accuracy(test.y),
            "pgd": run_attack(
                bundle, test.x, test.y, Attack.pgd(eps, steps=40), seed=args.seed, keep_adv=False
            ).accuracy(test.y),
            "pgd_half": run_attack(
                bundle, test.x, test.y, Attack.pgd(eps / 2, steps=40), seed=args.seed, keep_adv=False
            ).accuracy(test.y),
        }
        results[name] = acc
        epochs = bundle.card.training["epochs"]
        print(
            f"| {name} | {epochs} | {seconds:.0f} | {acc['clean']:.3f} | {acc['fgsm']:.3f} | {acc['pgd']:.3f} | {acc['pgd_half']:.3f} |",
            flush=True,
        )
    std, pgd = results["standard"], results["pgd (Madry et al. 2018)"]
    gap, drop = pgd["pgd"] - std["pgd"], std["clean"] - pgd["clean"]
    print(
        f"\nPGD-trained vs standard: PGD-40 accuracy {gap:+.3f} (target >= +0.30: {'met' if gap >= 0.30 else 'NOT met'}), "
        f"clean accuracy {-drop:+.3f} (target >= -0.05: {'met' if drop <= 0.05 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
