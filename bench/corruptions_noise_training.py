"""Benchmark: does dlaudit's noise training gain on the noise family of common corruptions?

Hendrycks and Dietterich 2019 (https://arxiv.org/abs/1903.12261) report that training on
Gaussian noise helps most on the noise corruptions (Gaussian, shot, impulse) and little
elsewhere. Here: the seed CNN trained by ``dlaudit.train("cnn", "digits", seed=S)`` and the
same model trained with ``noise_sigma=SIGMA``, 3 epochs each on scikit-learn's digits upsampled
to 1x28x28 as in ``bench/corruptions.py`` (``--size 8``: the 8x8 digits, where corruptions are
applied on a 32-pixel copy and only the change is scaled back, so noise is averaged away), (Gaussian-noise augmented inputs; Cohen et al.
2019's recipe, https://arxiv.org/abs/1902.02918), both audited with
:func:`dlaudit.robust.corruptions.corruption_accuracy` on the digits test split, all 15
corruptions at severities 1-5. Prints clean accuracy, the mean per family and per noise
corruption for both, and the gain. One run per model (the numbers depend only on the seed);
the load average is printed so the seconds can be read. The holdout is the first 1,000
shuffled digits (``--n``).

Usage::

    python bench/corruptions_noise_training.py              # sigma 0.25, seed 0
    python bench/corruptions_noise_training.py --sigma 0.5
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sigma", type=float, default=0.25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--size", type=int, default=28)
    ap.add_argument("--n", type=int, default=1000)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    import numpy as np

    import dlaudit
    from dlaudit.robust.corruptions import FAMILIES, corruption_accuracy

    sys.path.insert(0, str(ROOT / "bench"))
    from corruptions import make_data

    print(f"threads {torch.get_num_threads()}, load average at start {os.getloadavg()[0]:.2f}")
    data = Path(tempfile.mkdtemp(prefix="dlaudit-bench-")) / f"digits{args.size}.npz"
    make_data(data, args.n, args.size)
    with np.load(data) as npz:
        x, y = torch.from_numpy(npz["x_test"]), torch.from_numpy(npz["y_test"]).long()
    rows = {}
    for label, extra in (("standard", {}), (f"noise sigma {args.sigma:g}", {"noise_sigma": args.sigma})):
        start = time.perf_counter()
        bundle = dlaudit.train("cnn", str(data), epochs=3, seed=args.seed, device="cpu", **extra)
        trained = time.perf_counter() - start
        start = time.perf_counter()
        res = corruption_accuracy(bundle, x, y, seed=args.seed, value_range=bundle.card.value_range)
        rows[label] = res
        print(f"{label}: trained in {trained:.1f} s, 75 pairs on {res.n} images in {time.perf_counter() - start:.1f} s")
    (a_name, a), (b_name, b) = rows.items()
    print(f"\n{'':24}{a_name:>12}{b_name:>18}{'gain':>10}")
    print(f"{'clean':24}{a.clean_accuracy:12.4f}{b.clean_accuracy:18.4f}{b.clean_accuracy - a.clean_accuracy:+10.4f}")
    for fam in FAMILIES:
        fa, fb = a.by_family[fam], b.by_family[fam]
        print(f"{'family ' + fam:24}{fa:12.4f}{fb:18.4f}{fb - fa:+10.4f}")
    for name in FAMILIES["noise"]:
        ca, cb = a.by_corruption[name], b.by_corruption[name]
        print(f"{'  ' + name:24}{ca:12.4f}{cb:18.4f}{cb - ca:+10.4f}")
    da, db = a.clean_accuracy - a.by_family["noise"], b.clean_accuracy - b.by_family["noise"]
    print(f"{'noise family drop':24}{da:12.4f}{db:18.4f}{db - da:+10.4f}   (clean minus noise family)")
    print(
        f"{'mean over all 75':24}{a.mean_accuracy:12.4f}{b.mean_accuracy:18.4f}{b.mean_accuracy - a.mean_accuracy:+10.4f}"
    )
    print(f"load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
