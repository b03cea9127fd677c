"""Benchmark: does noise training gain on the noise family of common corruptions, where it matters?

Hendrycks and Dietterich 2019 (https://arxiv.org/abs/1903.12261) report that training on
Gaussian noise helps most on the noise corruptions (Gaussian, shot, impulse) and little
elsewhere. Here: the seed CNN trained on scikit-learn's digits upsampled to 1x28x28 (as in
``bench/corruptions.py``; ``--n`` held out) by dlaudit's trainer, once on clean batches
("standard") and once with noise on half of every batch ("noise-trained": the second half of
each batch gets ``x + s * N(0, I)`` clipped to [0, 1], ``s`` drawn per image uniformly in
``[0, SIGMA]``, so the model sees every strength of the Gaussian family up to SIGMA and clean
images too), ``--epochs`` each, same seed. Both are audited with
:func:`dlaudit.robust.corruptions.corruption_accuracy` on the noise family at severities 1-5
with both parameter tables: ``cifar`` (CIFAR-10-C's: Gaussian sigma 0.04-0.10, where a digit
classifier barely degrades) and ``imagenet`` (ImageNet-C's: sigma 0.08-0.38, impulse 3-27%,
shot noise 60 down to 3 photons, where it does). Prints one table per table and corruption
(accuracy per severity, both models, the gain), the family means, and the mean over all 75
pairs (``auto`` table) to show what noise training costs elsewhere. The default SIGMA, 0.4,
spans ImageNet-C's Gaussian range. One run per model (the numbers depend only on the seed); the
load average is printed so the seconds can be read.

Usage::

    python bench/corruptions_noise_training.py                     # sigma 0.4, 10 epochs, seed 0
    python bench/corruptions_noise_training.py --sigma 0.25 --epochs 5
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class HalfNoise:
    """Cross-entropy on a batch whose second half carries Gaussian noise of a per-image strength in [0, sigma]."""

    def __init__(self, sigma: float, seed: int) -> None:
        self.sigma = sigma
        self.gen = torch.Generator().manual_seed(seed)

    def __call__(
        self, module: nn.Module, x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None
    ) -> torch.Tensor:
        from dlaudit.train.trainer import weighted_cross_entropy

        half = len(x) // 2
        s = torch.rand(len(x) - half, generator=self.gen) * self.sigma
        z = torch.randn(x[half:].shape, generator=self.gen)
        noisy = (x[half:] + s.view(-1, *[1] * (x.dim() - 1)).to(x) * z.to(x)).clamp(0.0, 1.0)
        return weighted_cross_entropy(module, torch.cat([x[:half], noisy]), y, weight)

    def training_info(self) -> dict[str, Any]:
        return {"method": "half-batch gaussian noise", "sigma_max": self.sigma}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sigma", type=float, default=0.4)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--size", type=int, default=28)
    ap.add_argument("--n", type=int, default=1000)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    import numpy as np

    from dlaudit.data import load_splits
    from dlaudit.robust.corruptions import FAMILIES, SEVERITIES, corruption_accuracy
    from dlaudit.train.trainer import train

    sys.path.insert(0, str(ROOT / "bench"))
    from corruptions import make_data

    print(f"threads {torch.get_num_threads()}, load average at start {os.getloadavg()[0]:.2f}")
    data = Path(tempfile.mkdtemp(prefix="dlaudit-bench-")) / f"digits{args.size}.npz"
    make_data(data, args.n, args.size)
    splits = load_splits(str(data))
    with np.load(data) as npz:
        x, y = torch.from_numpy(npz["x_test"]), torch.from_numpy(npz["y_test"]).long()
    noise = FAMILIES["noise"]
    results: dict[str, dict[str, Any]] = {}
    for label, loss in (("standard", None), ("noise-trained", HalfNoise(args.sigma, args.seed))):
        start = time.perf_counter()
        bundle = train("cnn", splits, epochs=args.epochs, seed=args.seed, device="cpu", loss_fn=loss)
        trained = time.perf_counter() - start
        start = time.perf_counter()
        results[label] = {
            ref: corruption_accuracy(bundle, x, y, names=noise, seed=args.seed, reference=ref)
            for ref in ("cifar", "imagenet")
        }
        results[label]["all"] = corruption_accuracy(bundle, x, y, seed=args.seed)
        print(
            f"{label}: trained {args.epochs} epochs in {trained:.1f} s, audited in {time.perf_counter() - start:.1f} s"
        )
    a, b = results["standard"], results["noise-trained"]
    print(f"\nclean accuracy: standard {a['all'].clean_accuracy:.4f}, noise-trained {b['all'].clean_accuracy:.4f}")
    head = "".join(f"{'sev ' + str(s):>8}" for s in SEVERITIES)
    for ref in ("cifar", "imagenet"):
        print(f"\n## noise family, {ref} parameters (accuracy per severity)")
        print(f"{'':34}{head}{'mean':>8}")
        for name in noise:
            for label, r in (("standard", a[ref]), ("noise-trained", b[ref])):
                accs = [r.accuracy[(name, s)] for s in SEVERITIES]
                print(f"{name + ' ' + label:34}" + "".join(f"{v:8.3f}" for v in accs) + f"{np.mean(accs):8.3f}")
            gains = [b[ref].accuracy[(name, s)] - a[ref].accuracy[(name, s)] for s in SEVERITIES]
            print(f"{name + ' gain':34}" + "".join(f"{g:+8.3f}" for g in gains) + f"{np.mean(gains):+8.3f}")
        print(
            f"{'family mean':34}{'':{8 * len(SEVERITIES)}}{a[ref].by_family['noise']:8.3f} -> {b[ref].by_family['noise']:.3f}"
        )
    print("\n## all 15 corruptions x 5 severities (auto parameters), mean per family")
    for fam in FAMILIES:
        print(f"{fam:34}{a['all'].by_family[fam]:8.3f} -> {b['all'].by_family[fam]:.3f}")
    print(f"{'mean over all 75':34}{a['all'].mean_accuracy:8.3f} -> {b['all'].mean_accuracy:.3f}")
    print(f"load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
