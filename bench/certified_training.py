"""Certified training on digits: standard, Gaussian-noise and IBP-trained CNNs side by side.

The figures of the issue "Certified robustness" (digits, seed 0, held-out split of 450):

1. Randomized smoothing (Cohen et al. 2019, arXiv:1902.02918) at sigma 0.25:
   certified accuracy at L2 radius 0.25 and 0.5 (and 0), abstention rate, of the
   standard CNN and of one trained with Gaussian noise of the same sigma.
2. Verified accuracy at L-inf eps 0.1 by IBP, CROWN-IBP and CROWN, and accuracy
   under PGD-40 and under standard AutoAttack at the same eps, of the standard CNN,
   a PGD-trained one (Madry et al. 2018; ``dlaudit train cnn --adversarial pgd`` with
   its defaults) and an IBP-trained one (Gowal et al. 2018, arXiv:1810.12715; their
   warm-up and linear ramp, in epochs).

Usage::

    python bench/certified_training.py                    # n=10,000 per input on all 450 (minutes on one core)
    python bench/certified_training.py --samples 100000 --smooth-n 100   # the paper's n, on 100 inputs
    python bench/certified_training.py --quick            # n=1,000 on 100 inputs, fewer epochs

Prints Markdown tables (and the settings); timings are the machine's, under its load.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dlaudit
from dlaudit.data import load_splits
from dlaudit.robust import pgd
from dlaudit.robust.attacks.autoattack import autoattack
from dlaudit.robust.certified_training import GaussianNoiseTraining, IBPTraining
from dlaudit.robust.certify import certify_smoothing, verified_accuracy
from dlaudit.train.trainer import train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sigma", type=float, default=0.25)
    ap.add_argument("--samples", type=int, default=10_000, help="CERTIFY's n")
    ap.add_argument("--n0", type=int, default=100)
    ap.add_argument("--alpha", type=float, default=0.001)
    ap.add_argument("--smooth-n", type=int, default=450, help="test inputs certified by smoothing")
    ap.add_argument("--eps", type=float, default=0.1, help="L-inf budget of verification and PGD")
    ap.add_argument("--eps-train", type=float, default=None, help="IBP training budget (default: --eps)")
    ap.add_argument("--ibp-epochs", type=int, default=30)
    ap.add_argument("--noise-epochs", type=int, default=30)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.samples, args.smooth_n, args.ibp_epochs, args.noise_epochs = 1_000, 100, 15, 10
    if args.threads:
        torch.set_num_threads(args.threads)
    splits = load_splits("digits")
    test = splits.test
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}")
    eps_train = args.eps_train or args.eps
    start = time.perf_counter()
    standard = dlaudit.train("cnn", "digits", seed=0, device="cpu")
    noise = GaussianNoiseTraining(args.sigma, seed=0)
    noisy = train(
        "cnn",
        splits,
        epochs=args.noise_epochs,
        seed=0,
        device="cpu",
        loss_fn=noise,
        training_info={"certified": noise.training_info()},
    )
    adversarial = dlaudit.train("cnn", "digits", adversarial="pgd", eps=eps_train, seed=0, device="cpu")
    ibp = IBPTraining(eps_train)
    robust = train(
        "cnn",
        splits,
        epochs=args.ibp_epochs,
        seed=0,
        device="cpu",
        loss_fn=ibp,
        training_info={"certified": ibp.training_info()},
    )
    print(f"# trained in {time.perf_counter() - start:.0f} s: standard (10 epochs), noise sigma {args.sigma} ({args.noise_epochs} epochs), "
          f"PGD eps {eps_train} (the trainer's defaults), "
          f"IBP eps {eps_train} ({args.ibp_epochs} epochs, warm-up {ibp.warmup_epochs}, ramp {ibp.ramp_epochs}, kappa_end {ibp.kappa_end})")  # fmt: skip

    x, y = test.x[: args.smooth_n], test.y[: args.smooth_n]
    print(
        f"\n## Randomized smoothing, sigma {args.sigma}, n0 {args.n0}, n {args.samples:,}, alpha {args.alpha}, {len(x)} test inputs"
    )
    print("| model | clean acc (base) | certified acc r=0 | r=0.25 | r=0.5 | abstain | s/input |")
    print("|---|---|---|---|---|---|---|")
    for name, bundle in (("standard CNN", standard), (f"noise-trained CNN (sigma {args.sigma})", noisy)):
        res = certify_smoothing(bundle, x, y, sigma=args.sigma, n0=args.n0, n=args.samples, alpha=args.alpha, seed=0)
        acc = res.certified_accuracy([0.0, 0.25, 0.5])
        base = bundle.card.metrics["test_accuracy"]
        print(
            f"| {name} | {base:.3f} | {acc[0.0]:.3f} | {acc[0.25]:.3f} | {acc[0.5]:.3f} | {res.abstain_rate:.3f} | {res.seconds_per_input:.3f} |"
        )

    eps = args.eps
    print(f"\n## Verified, PGD-40 and AutoAttack accuracy at L-inf eps {eps}, all {len(test)} test inputs")
    print("| model | clean acc | IBP | CROWN-IBP | CROWN | PGD-40 | AutoAttack |")
    print("|---|---|---|---|---|---|---|")
    models = (
        ("standard CNN", standard),
        (f"PGD-trained CNN (eps {eps_train})", adversarial),
        (f"IBP-trained CNN (eps {eps_train})", robust),
    )
    for name, bundle in models:
        ver = {
            m: verified_accuracy(bundle, test.x, test.y, eps=eps, method=m).accuracy
            for m in ("ibp", "crown-ibp", "crown")
        }
        adv = float((bundle.predict(pgd(bundle, test.x, test.y, eps=eps, steps=40)) == test.y).double().mean())
        aa = autoattack(bundle, test.x, test.y, eps=eps, version="standard", seed=0).robust_accuracy
        print(
            f"| {name} | {bundle.card.metrics['test_accuracy']:.3f} | {ver['ibp']:.3f} | {ver['crown-ibp']:.3f} | {ver['crown']:.3f} | {adv:.3f} | {aa:.3f} |"
        )


if __name__ == "__main__":
    main()
