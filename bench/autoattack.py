"""Benchmark: dlaudit's standard AutoAttack against the official code (pyautoattack), same models and inputs.

One process, medians over repeats, ratios printed. Models: the seed CNN trained on
scikit-learn's digits upsampled to 28x28 (bilinear; "MNIST-sized" inputs without
downloading MNIST), once normally and once with PGD adversarial training (Madry et
al. 2018; PGD-7 at eps 0.1 for 15 epochs, about 91% clean accuracy: at eps 0.3 the
trainer stays at chance on 1,300 training images). The attacked inputs are N of those
images (the models trained on the rest).

For each model and L-inf budget it prints:

- robust accuracy under dlaudit's ``autoattack(version="standard")`` and under
  ``pyautoattack.AutoAttack(version="standard")``, the difference in points, and how
  many points the official code broke that dlaudit did not (and the other way round);
- where dlaudit's ensemble ran without some attacks (FAB-T or Square not installed:
  see the ``skipped`` line), also pyautoattack restricted to the attacks dlaudit ran,
  which is the like-for-like comparison of the code that did run;
- seconds per attack (the official ones read from its log: cumulative time after each
  attack) and the ratio of the totals.

Target: within 0.5 points of the official robust accuracy, in at most half its time.

Usage::

    python bench/autoattack.py                  # N=500, eps 0.1 and 0.3 (long on 2 cores: Square's 5000 queries)
    python bench/autoattack.py --n 60 --adv-epochs 3    # checks that everything runs (a minute or two)

Quote the ratios, and only from a quiet machine: the output notes threads and load average.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


class _OfficialLog(logging.Handler):
    """Collects pyautoattack's 'robust accuracy after X: ... (total time T s)' lines."""

    PATTERN = re.compile(r"robust accuracy after (\S+): ([\d.]+)% \(total time ([\d.]+) s\)")

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.after: dict[str, tuple[float, float]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        m = self.PATTERN.search(record.getMessage())
        if m:
            self.after[m.group(1).lower()] = (float(m.group(2)) / 100, float(m.group(3)))


def official(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, bs: int, attacks: list[str] | None
) -> dict[str, Any]:
    """pyautoattack's standard evaluation (or a custom one with ``attacks``, AutoAttack's standard settings)."""
    from pyautoattack import AutoAttack

    if attacks is None:
        aa = AutoAttack(model, eps=eps, norm="Linf", seed=0, version="standard")
    else:
        aa = AutoAttack(model, eps=eps, norm="Linf", seed=0, version="custom", attacks=attacks)
        aa.apgd.n_restarts, aa.apgd_targeted.n_target_classes, aa.apgd_targeted.n_restarts = 1, 9, 1
        aa.fab.n_restarts, aa.fab.n_target_classes, aa.square.n_queries = 1, 9, 5000
    handler = _OfficialLog()
    aa.logger.handlers = [handler]
    aa.logger.setLevel(logging.DEBUG)
    aa.logger.propagate = False
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, y_adv = aa.run_standard_evaluation(x.clone(), y.clone(), batch_size=bs)
    total = time.perf_counter() - start
    seconds, last = {}, 0.0
    for name, (_, cumulative) in handler.after.items():
        seconds[name] = cumulative - last
        last = cumulative
    return {"robust": (y_adv == y), "seconds": seconds, "total": total}


def ours(bundle: Any, x: torch.Tensor, y: torch.Tensor, eps: float, bs: int | None) -> dict[str, Any]:
    from dlaudit.robust.attacks.autoattack import autoattack

    start = time.perf_counter()
    r = autoattack(bundle, x, y, eps=eps, norm="linf", version="standard", seed=0, batch_size=bs)
    return {
        "robust": r.robust,
        "seconds": dict(r.seconds),
        "total": time.perf_counter() - start,
        "skipped": dict(r.skipped),
        "batch": r.batch_size,
    }


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out = dict(runs[-1])
    out["total"] = statistics.median(r["total"] for r in runs)
    out["seconds"] = {k: statistics.median(r["seconds"].get(k, 0.0) for r in runs) for k in runs[-1]["seconds"]}
    return out


def compare(label: str, bundle: Any, x: torch.Tensor, y: torch.Tensor, eps: float, args: argparse.Namespace) -> None:
    model = bundle.module.eval()
    dl = medians([ours(bundle, x, y, eps, args.dl_batch) for _ in range(args.repeat)])
    ran = [a for a in ("apgd-ce", "apgd-t", "fab-t", "square") if a not in dl["skipped"]]
    aa = medians([official(model, x, y, eps, args.batch, None) for _ in range(args.repeat)])
    rows = [("pyautoattack standard", aa)]
    if dl["skipped"]:
        rows.append(
            (
                f"pyautoattack, only {'+'.join(ran)}",
                medians([official(model, x, y, eps, args.batch, ran) for _ in range(args.repeat)]),
            )
        )
    n = len(y)
    acc_dl = float(dl["robust"].float().mean())
    print(
        f"\n## {label}, L-inf eps {eps:g}, {n} inputs (clean accuracy {float((bundle.predict(x) == y).float().mean()):.4f})"
    )
    if dl["skipped"]:
        print(f"# dlaudit skipped: {'; '.join(f'{k}: {v}' for k, v in dl['skipped'].items())}")
    names = ["apgd-ce", "apgd-t", "fab-t", "square"]
    print(
        f"{'run':<40} {'robust acc':>10} {'vs dlaudit':>11} {'they broke, we did not':>23} {'we broke, they did not':>23} "
        + " ".join(f"{a:>8}" for a in names)
        + f" {'total s':>8} {'x dlaudit':>9}"
    )
    print(f"{'dlaudit autoattack (batch ' + str(dl['batch']) + ')':<40} {acc_dl:10.4f} {'':>11} {'':>23} {'':>23} "
          + " ".join(f"{dl['seconds'][a]:8.2f}" if a in dl["seconds"] else f"{'-':>8}" for a in names) + f" {dl['total']:8.2f} {1.0:9.2f}")  # fmt: skip
    for name, res in rows:
        acc = float(res["robust"].float().mean())
        missed = int((~res["robust"] & dl["robust"]).sum())
        extra = int((res["robust"] & ~dl["robust"]).sum())
        print(f"{name + ' (batch ' + str(args.batch) + ')':<40} {acc:10.4f} {100 * (acc - acc_dl):+10.2f}pt {missed:23d} {extra:23d} "
              + " ".join(f"{res['seconds'][a]:8.2f}" if a in res["seconds"] else f"{'-':>8}" for a in names)
              + f" {res['total']:8.2f} {res['total'] / dl['total']:9.2f}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=500, help="attacked inputs")
    ap.add_argument("--eps", default="0.1,0.3", help="L-inf budgets, comma-separated")
    ap.add_argument("--batch", type=int, default=250, help="pyautoattack's batch size")
    ap.add_argument(
        "--dl-batch",
        type=int,
        default=None,
        help="dlaudit's batch size (default: its default, see dlaudit.robust.batching)",
    )
    ap.add_argument("--repeat", type=int, default=1, help="runs of each measurement (median of the seconds)")
    ap.add_argument("--epochs", type=int, default=3, help="epochs of the standard CNN")
    ap.add_argument("--adv-epochs", type=int, default=15, help="epochs of the PGD-trained CNN")
    ap.add_argument(
        "--train-eps",
        type=float,
        default=0.1,
        help="PGD training budget (0.3 does not train on 1.3k digits: chance accuracy)",
    )
    ap.add_argument("--train-steps", type=int, default=7, help="PGD steps per training batch")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 on a shared machine)")
    ap.add_argument("--skip", default="", help="models to skip, comma-separated: standard,pgd")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    logging.getLogger("dlaudit.robust.attacks.autoattack").setLevel(logging.ERROR)  # skipped attacks are printed below
    skip = set(filter(None, args.skip.split(",")))
    budgets = [float(e) for e in args.eps.split(",") if e.strip()]

    sys.path.insert(0, str(ROOT))
    import pyautoattack
    from attacks import make_data  # bench/attacks.py: digits upsampled to 1x28x28, the first n the test split

    import dlaudit

    tmp = Path(tempfile.mkdtemp(prefix="dlaudit-bench-aa-"))
    data_path = tmp / "digits28.npz"
    make_data(data_path, args.n)
    with np.load(data_path) as npz:
        x, y = torch.from_numpy(npz["x_test"]), torch.from_numpy(npz["y_test"]).long()
    print(
        f"# torch {torch.__version__}, pyautoattack {pyautoattack.__version__}, {torch.get_num_threads()} thread(s), load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"# seed CNN on digits upsampled to 1x28x28; {args.n} attacked inputs; AutoAttack standard (APGD-CE, APGD-T, FAB-T, Square), seed 0"
    )
    models = []
    if "standard" not in skip:
        start = time.perf_counter()
        models.append(
            (
                f"standard CNN ({args.epochs} epochs)",
                dlaudit.train("cnn", str(data_path), epochs=args.epochs, seed=0, device="cpu"),
            )
        )
        print(f"# trained the standard CNN in {time.perf_counter() - start:.1f} s")
    if "pgd" not in skip:
        start = time.perf_counter()
        bundle = dlaudit.train(
            "cnn",
            str(data_path),
            epochs=args.adv_epochs,
            seed=0,
            device="cpu",
            adversarial="pgd",
            eps=args.train_eps,
            steps=args.train_steps,
        )
        models.append(
            (f"PGD-trained CNN (eps {args.train_eps:g}, PGD-{args.train_steps}, {args.adv_epochs} epochs)", bundle)
        )
        print(f"# trained the PGD CNN in {time.perf_counter() - start:.1f} s")
    for label, bundle in models:
        for eps in budgets:
            compare(label, bundle, x, y, eps, args)


if __name__ == "__main__":
    main()
