"""Benchmark: the 15 common corruptions x 5 severities (Hendrycks and Dietterich 2019) on 1,000 images.

https://arxiv.org/abs/1903.12261. Model: the seed CNN trained by ``dlaudit.train("cnn", ...)``
for 3 epochs on scikit-learn's digits upsampled to 1x28x28 (bilinear; the other 797
images), so the inputs are MNIST-sized without downloading MNIST. (The CNN trained on
``"digits"`` itself takes 8x8 inputs; ``--size 8`` runs that one instead.)

Prints, in one process:

1. ``corruption_accuracy`` over all 75 (corruption, severity) pairs: total seconds (the
   issue-25 target: within 30 s on 2 cores), clean and mean corruption accuracy;
2. per corruption: seconds in ``corruption_accuracy`` (corrupting and classifying, 5
   severities), seconds corrupting alone, and accuracy at severities 1-5;
   every time is the median of ``--repeat`` runs (default 3);
3. the floor: 75 forward passes of the model over the clean images;
4. if ``imagecorruptions`` (bethgelab, the NumPy/OpenCV port of the paper's code) is
   importable (``IMAGECORRUPTIONS_PATH`` may name a ``pip install --target`` folder), its
   seconds per image at severity 3 on 32x32 images (its minimum size) against dlaudit's on
   the same images, as a ratio.

Usage::

    python bench/corruptions.py                # N=1000, batch 256
    python bench/corruptions.py --quick        # N=200: checks that everything runs
    python bench/corruptions.py --threads 1    # on a busy machine: OpenMP's spinning threads cost more than they give

The machine is noted in the output (threads, load average at start and end): quote ratios.
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_data(path: Path, n: int, size: int) -> None:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy((bunch.images / 16.0).astype(np.float32))[:, None]
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)
    y = bunch.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(y))
    test, train = order[:n], order[n:]
    np.savez(path, x_train=x[train].numpy(), y_train=y[train], x_test=x[test].numpy(), y_test=y[test])


def _imagecorruptions():
    for p in os.environ.get("IMAGECORRUPTIONS_PATH", "").split(os.pathsep):
        if p and p not in sys.path:
            sys.path.append(p)
    try:
        importlib.import_module("pkg_resources")
    except ImportError:  # setuptools >= 81 has none; imagecorruptions 1.1.2 uses only resource_filename (frost's files)
        shim = types.ModuleType("pkg_resources")
        shim.resource_filename = lambda pkg, name: os.path.join(os.path.dirname(sys.modules[pkg].__file__ or ""), name)  # type: ignore[attr-defined]
        sys.modules["pkg_resources"] = shim
    try:
        return importlib.import_module("imagecorruptions")
    except Exception as err:  # noqa: BLE001  (its own imports fail in several ways: cv2, numpy 2)
        print(f"# imagecorruptions not importable ({type(err).__name__}: {err}): no comparison")
        return None


def compare_imagecorruptions(ic, x: torch.Tensor, names: list[str], n: int) -> None:
    from dlaudit.robust.corruptions import corrupt

    if not hasattr(np, "float_"):
        np.float_ = np.float64  # imagecorruptions' fog still uses the alias NumPy 2 removed
    x32 = F.interpolate(x[:n], size=(32, 32), mode="bilinear", align_corners=False).clamp(0, 1).expand(-1, 3, -1, -1)
    imgs = (x32.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    print(f"\n## imagecorruptions {getattr(ic, '__version__', '')} vs dlaudit: {n} images 3x32x32, severity 3")
    print(f"{'corruption':<20} {'theirs ms/img':>13} {'ours ms/img':>11} {'ratio':>7}")
    tot_t = tot_o = 0.0
    broken = []
    for name in names:
        np.random.seed(0)
        t0 = time.perf_counter()
        try:
            for im in imgs:
                ic.corrupt(im, corruption_name=name, severity=3)
        except Exception as err:  # noqa: BLE001  (it breaks on current scikit-image / NumPy in places)
            broken.append(f"{name} ({type(err).__name__}: {err})")
            continue
        theirs = (time.perf_counter() - t0) / n
        t0 = time.perf_counter()
        corrupt(x32.contiguous(), name, 3, seed=0)
        ours = (time.perf_counter() - t0) / n
        tot_t, tot_o = tot_t + theirs, tot_o + ours
        print(f"{name:<20} {theirs * 1e3:13.3f} {ours * 1e3:11.3f} {theirs / ours:7.1f}")
    print(f"{'all of the above':<20} {tot_t * 1e3:13.3f} {tot_o * 1e3:11.3f} {tot_t / tot_o:7.1f}")
    for b in broken:
        print(f"# imagecorruptions failed: {b}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--size", type=int, default=28, choices=(8, 28))
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default, one per core)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--ic-n", type=int, default=50, help="images for the imagecorruptions comparison")
    args = ap.parse_args()
    if args.quick:
        args.n, args.ic_n, args.repeat = 200, 10, 1

    if args.threads:
        torch.set_num_threads(args.threads)  # on a busy shared machine 1 thread beats 2 spinning ones

    import dlaudit
    from dlaudit.robust.attacks import speed
    from dlaudit.robust.corruptions import CORRUPTIONS, corrupt, corruption_accuracy

    tmp = Path(tempfile.mkdtemp(prefix="dlaudit-bench-"))
    data = tmp / f"digits{args.size}.npz"
    make_data(data, args.n, args.size)
    bundle = dlaudit.train("cnn", str(data), epochs=3, seed=0, device="cpu")
    with np.load(data) as npz:
        x, y = torch.from_numpy(npz["x_test"]), torch.from_numpy(npz["y_test"]).long()
    print(
        f"# torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}; "
        f"seed CNN on {len(x)} digits 1x{args.size}x{args.size}, batch {args.batch}"
    )
    corruption_accuracy(bundle, x[:16], y[:16], severities=(1,), seed=0)  # warm-up (first calls, caches)

    module = bundle.module.eval()
    totals, floors, per_name, alone = [], [], {n: [] for n in CORRUPTIONS}, {n: [] for n in CORRUPTIONS}
    for _ in range(args.repeat):  # the rows take turns, so a slow spell of the shared machine hits all alike
        t0 = time.perf_counter()
        res = corruption_accuracy(bundle, x, y, seed=0, batch_size=args.batch)
        totals.append(time.perf_counter() - t0)
        for n in CORRUPTIONS:
            per_name[n].append(res.seconds[n])
        t0 = time.perf_counter()
        with torch.no_grad(), speed.layout(module, x):  # the layout corruption_accuracy runs the model in
            for _ in range(75):
                for b in range(0, len(x), args.batch):
                    module(x[b : b + args.batch])
        floors.append(time.perf_counter() - t0)
        with torch.no_grad():
            for name in CORRUPTIONS:
                t0 = time.perf_counter()
                for s in range(1, 6):
                    for b in range(0, len(x), args.batch):
                        corrupt(x[b : b + args.batch], name, s, seed=0, index_offset=b)
                alone[name].append(time.perf_counter() - t0)
    med = statistics.median
    total, floor = med(totals), med(floors)
    seconds = {n: med(v) for n, v in per_name.items()}
    alone = {n: med(v) for n, v in alone.items()}

    print(f"\n## per corruption ({len(x)} images, severities 1-5, {res.reference} parameters)")
    print(f"{'corruption':<20} {'seconds':>8} {'corrupt only':>12}  accuracy at severity 1..5")
    for name in sorted(CORRUPTIONS, key=lambda n: -seconds[n]):
        accs = " ".join(f"{res.accuracy[name, s]:.3f}" for s in range(1, 6))
        print(f"{name:<20} {seconds[name]:8.2f} {alone[name]:12.2f}  {accs}")
    print(
        f"\n## 75 pairs on {len(x)} images 1x{args.size}x{args.size} (medians of {args.repeat}: {np.round(totals, 2)})"
    )
    print(f"corruption_accuracy total   {total:8.2f} s   (target: within 30 s on 2 cores)")
    print(f"corrupting alone            {sum(alone.values()):8.2f} s")
    print(f"75 clean forward passes     {floor:8.2f} s   (the floor: the model alone)")
    print(
        f"clean accuracy {res.clean_accuracy:.3f}, mean corruption accuracy {res.mean_accuracy:.3f}, "
        f"relative corruption error {res.mean_relative_error:.3f}"
    )
    worst = sorted(res.by_corruption.items(), key=lambda kv: kv[1])[:3]
    print("hardest: " + ", ".join(f"{n} {a:.3f}" for n, a in worst))

    ic = _imagecorruptions()
    if ic is not None:
        compare_imagecorruptions(ic, x, list(CORRUPTIONS), min(args.ic_n, len(x)))
    print(f"\n# load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
