"""Benchmark: certified robustness. Randomized smoothing against the reference loop; bounds against a forward pass.

One run, ratios printed (medians over ``--repeat`` runs). Model: the seed CNN (or
the MLP) trained for a few epochs on scikit-learn's digits, at 8x8 or upsampled to
28x28 (``--size 28``: MNIST-sized inputs without downloading MNIST).

Parts:

1. Randomized smoothing (Cohen et al. 2019, arXiv:1902.02918), CERTIFY with ``n0``
   selection and ``n`` estimation samples per input: inputs certified per second by
   ``dlaudit.robust.certify_smoothing`` (noisy copies of several inputs per forward
   pass, counts by ``torch.bincount`` on the device, batch size from its probe)
   against the loop of Cohen et al.'s code (``core.Smooth._sample_noise``: one input
   at a time, ``x.repeat`` into batches of 100, ``randn_like``, then their
   ``_count_arr`` Python loop over the predictions), and against the same loop with
   ``np.bincount`` (the plain loop). Target: at least 3x the plain loop. The
   certificates must agree closely (different noise, same statistics).
2. Bounds: seconds of IBP (and CROWN-IBP, CROWN) margin bounds on ``--bounds-n``
   inputs (1,000), as a ratio of one forward pass over the same inputs in the same
   batches. Target: IBP under 4x. Both the raw bound computation and
   ``verified_accuracy`` end to end (input checks, layer walk and its check, batches).

Usage::

    python bench/certify.py                       # n=10,000 samples for 20 inputs; bounds on 1,000 inputs
    python bench/certify.py --quick               # n=2,000 for 5 inputs: checks that everything runs
    python bench/certify.py --size 28 --n 100000  # MNIST-sized inputs and the paper's n

The machine is noted in the output (threads, load average): quote ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import stats
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dlaudit
from dlaudit.data import AuditData, Splits
from dlaudit.robust.bounds import chain_of, margin_lower_bounds
from dlaudit.robust.certify import certify_smoothing, verified_accuracy
from dlaudit.train.trainer import train


def digits(size: int) -> tuple[Splits, torch.Tensor, torch.Tensor]:
    """Digits splits (upsampled to ``size`` if not 8) and all 1,797 images (for timing on 1,000 inputs)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy((bunch.images / 16.0).astype(np.float32))[:, None]
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)
    y = torch.from_numpy(bunch.target.astype(np.int64))
    order = torch.from_numpy(np.random.default_rng(0).permutation(len(y)))
    test, tr = order[:450], order[450:]
    splits = Splits(AuditData(x[tr], y[tr], name="digits"), AuditData(x[test], y[test], name="digits"))
    return splits, x, y


# -- the reference loop ----------------------------------------------------------------------------


def _count_arr(arr: np.ndarray, length: int) -> np.ndarray:
    counts = np.zeros(length, dtype=int)
    for idx in arr:
        counts[idx] += 1
    return counts


def sample_noise(
    model: nn.Module, x: torch.Tensor, num: int, sigma: float, batch_size: int, k: int, python_count: bool
) -> np.ndarray:
    """Cohen et al.'s ``Smooth._sample_noise`` (``python_count``: their ``_count_arr``; else ``np.bincount``)."""
    with torch.no_grad():
        counts = np.zeros(k, dtype=int)
        remaining = num
        for _ in range(int(np.ceil(num / batch_size))):
            this = min(batch_size, remaining)
            remaining -= this
            batch = x.repeat((this, *([1] * x.ndim)))
            noise = torch.randn_like(batch) * sigma
            pred = model(batch + noise).argmax(1).cpu().numpy()
            counts += _count_arr(pred, k) if python_count else np.bincount(pred, minlength=k)
        return counts


def reference_certify(
    model: nn.Module, x: torch.Tensor, *, sigma: float, n0: int, n: int, alpha: float, k: int, python_count: bool
) -> tuple[list[int], list[float]]:
    """Cohen et al.'s ``Smooth.certify``, one input at a time, batches of 100."""
    preds, radii = [], []
    for xi in x:
        c = int(sample_noise(model, xi, n0, sigma, 100, k, python_count).argmax())
        n_a = sample_noise(model, xi, n, sigma, 100, k, python_count)[c]
        p = stats.beta.ppf(alpha, n_a, n - n_a + 1) if n_a > 0 else 0.0
        preds.append(c if p >= 0.5 else -1)
        radii.append(sigma * stats.norm.ppf(p) if p >= 0.5 else 0.0)
    return preds, radii


def median_time(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


# -- the parts ---------------------------------------------------------------------------------------


def smoothing(bundle: dlaudit.ModelBundle, x: torch.Tensor, y: torch.Tensor, args: argparse.Namespace) -> None:
    model, k = bundle.module, bundle.card.num_classes
    common = {"sigma": args.sigma, "n0": args.n0, "n": args.samples, "alpha": args.alpha}
    certify_smoothing(bundle, x[:1], y[:1], **{**common, "n": 200})  # warm-up, and the batch-size probe (cached)
    torch.manual_seed(0)
    rows = []
    t_plain, (p_plain, r_plain) = median_time(
        lambda: reference_certify(model, x, k=k, python_count=False, **common), args.repeat
    )
    rows.append(("plain loop (np.bincount), batches of 100", t_plain, p_plain, r_plain))
    if not args.skip_python_count:
        t_ref, (p_ref, r_ref) = median_time(
            lambda: reference_certify(model, x, k=k, python_count=True, **common), args.repeat
        )
        rows.append(("Cohen et al.'s loop (_count_arr)", t_ref, p_ref, r_ref))
    for label, bs in (("dlaudit, probed batch", None), ("dlaudit, batch 100", 100)):
        t, res = median_time(
            lambda bs=bs: certify_smoothing(bundle, x, y, batch_size=bs, seed=0, **common), args.repeat
        )
        rows.append((f"{label} ({res.batch_size})", t, res.prediction.tolist(), res.radius.tolist()))
    print(f"\n## Randomized smoothing CERTIFY: {len(x)} inputs, sigma {args.sigma}, n0 {args.n0}, n {args.samples:,}, alpha {args.alpha} "
          f"(median of {args.repeat})")  # fmt: skip
    print(f"{'method':<46} {'seconds':>8} {'inputs/s':>9} {'x plain':>8} {'abstain':>8} {'mean radius':>12}")
    for name, sec, preds, radii in rows:
        abstain = sum(p == -1 for p in preds) / len(preds)
        print(
            f"{name:<46} {sec:8.2f} {len(x) / sec:9.2f} {t_plain / sec:8.2f} {abstain:8.2f} {statistics.mean(radii):12.4f}"
        )
    print("# target: dlaudit (probed batch) at least 3x the plain loop's inputs per second")


def bounds(bundle: dlaudit.ModelBundle, x: torch.Tensor, y: torch.Tensor, args: argparse.Namespace) -> None:
    model, k, eps = bundle.module, bundle.card.num_classes, args.eps
    bs = args.bounds_batch
    chain = chain_of(model, x[:3])
    xl, xu = (x - eps).clamp(0, 1), (x + eps).clamp(0, 1)

    def forward() -> None:
        with torch.no_grad():
            for s in range(0, len(x), bs):
                model(x[s : s + bs])

    def raw(method: str) -> Callable[[], None]:
        def run() -> None:
            with torch.no_grad():
                for s in range(0, len(x), bs):
                    margin_lower_bounds(chain, xl[s : s + bs], xu[s : s + bs], y[s : s + bs], k, method)

        return run

    forward()  # warm-up
    t_fwd, _ = median_time(forward, args.repeat)
    print(
        f"\n## Bounds on {len(x)} inputs, L-inf eps {eps}, batches of {bs} (median of {args.repeat}); one forward pass: {t_fwd * 1000:.1f} ms"
    )
    print(
        f"{'method':<12} {'raw ms':>9} {'x forward':>10} {'end-to-end ms':>14} {'x forward':>10} {'verified acc':>13}"
    )
    methods = ("ibp", "crown-ibp") if args.skip_crown else ("ibp", "crown-ibp", "crown")
    for method in methods:
        repeat = args.repeat if method != "crown" else 1
        t_raw, _ = median_time(raw(method), repeat)
        t_all, res = median_time(
            lambda m=method: verified_accuracy(
                bundle, x, y, eps=eps, method=m, batch_size=bs if m != "crown" else None
            ),
            repeat,
        )
        print(
            f"{method:<12} {t_raw * 1000:9.1f} {t_raw / t_fwd:10.2f} {t_all * 1000:14.1f} {t_all / t_fwd:10.2f} {res.accuracy:13.4f}"
        )
    print("# target: IBP under 4x one forward pass")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", default="cnn", choices=["cnn", "mlp"])
    ap.add_argument("--size", type=int, default=8, help="image side: 8 (digits) or e.g. 28 (upsampled)")
    ap.add_argument("--n", type=int, default=20, help="inputs to certify by smoothing")
    ap.add_argument("--samples", type=int, default=10_000, help="CERTIFY's n (estimation samples per input)")
    ap.add_argument("--n0", type=int, default=100)
    ap.add_argument("--sigma", type=float, default=0.25)
    ap.add_argument("--alpha", type=float, default=0.001)
    ap.add_argument("--eps", type=float, default=0.02, help="L-inf budget of the bounds")
    ap.add_argument("--bounds-n", type=int, default=1000)
    ap.add_argument("--bounds-batch", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--skip-python-count", action="store_true", help="skip Cohen et al.'s slow _count_arr loop")
    ap.add_argument("--skip-crown", action="store_true")
    ap.add_argument("--quick", action="store_true", help="5 inputs, n=2,000, one repeat: checks that everything runs")
    args = ap.parse_args()
    if args.quick:
        args.n, args.samples, args.repeat = 5, 2_000, 1
    if args.threads:
        torch.set_num_threads(args.threads)
    splits, x_all, y_all = digits(args.size)
    bundle = train(args.arch, splits, epochs=3 if args.arch == "cnn" else 20, seed=0, device="cpu")
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}")
    print(
        f"# {args.arch} on digits at {args.size}x{args.size} (clean accuracy {bundle.card.metrics['test_accuracy']:.3f})"
    )
    smoothing(bundle, splits.test.x[: args.n], splits.test.y[: args.n], args)
    bounds(bundle, x_all[: args.bounds_n], y_all[: args.bounds_n], args)


if __name__ == "__main__":
    main()
