"""Benchmark: group fairness metrics with 1,000 bootstrap resamples.

dlaudit's ``group_fairness`` (MetricFrame for the point estimates, a vectorised
bincount bootstrap for the intervals) against fairlearn's own bootstrap
(``MetricFrame(n_boot=...)``, which recomputes every metric per resample), on the
same labels, predictions and sensitive features. fairlearn's run is timed at a
smaller number of resamples and scaled linearly (its cost is per resample).

Target (issue 5): 50,000 rows, 2 sensitive features, 1,000 resamples in under
30 s on 2 cores.

    python bench/fairness.py                 # 50,000 rows, 1,000 resamples
    python bench/fairness.py --rows 5000 --boot 100 --peer-boot 5   # quick check
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate, true_positive_rate
from sklearn.metrics import accuracy_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's dlaudit, not an installed one

from dlaudit.data.groups import sensitive_feature
from dlaudit.fairness.metrics import group_fairness


def make_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    sex = rng.choice(["Female", "Male"], size=n, p=[0.33, 0.67])
    race = rng.choice(
        ["White", "Black", "Asian-Pac-Islander", "Amer-Indian-Eskimo", "Other"],
        size=n,
        p=[0.85, 0.09, 0.03, 0.01, 0.02],
    )
    y = (rng.random(n) < np.where(sex == "Male", 0.31, 0.11)).astype(np.int64)
    pred = np.where(rng.random(n) < 0.85, y, 1 - y)
    return y, pred, pd.DataFrame({"sex": sex, "race": race})


def run_dlaudit(y: np.ndarray, pred: np.ndarray, frame: pd.DataFrame, n_boot: int) -> float:
    features = [sensitive_feature(c, frame[c]) for c in frame.columns]
    start = time.perf_counter()
    group_fairness(y, pred, features, class_names=["<=50K", ">50K"], n_boot=n_boot, seed=0)
    return time.perf_counter() - start


def run_fairlearn(y: np.ndarray, pred: np.ndarray, frame: pd.DataFrame, n_boot: int) -> float:
    metrics = {
        "accuracy": accuracy_score,
        "selection_rate": selection_rate,
        "tpr": true_positive_rate,
        "fpr": false_positive_rate,
    }
    start = time.perf_counter()
    for col in frame.columns:
        mf = MetricFrame(
            metrics=metrics,
            y_true=y,
            y_pred=pred,
            sensitive_features=frame[col],
            n_boot=n_boot,
            ci_quantiles=[0.025, 0.975],
            random_state=0,
        )
        mf.difference()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=50_000)
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--peer-boot", type=int, default=20, help="fairlearn resamples actually run (scaled to --boot)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    y, pred, frame = make_data(args.rows)
    ours = [run_dlaudit(y, pred, frame, args.boot) for _ in range(args.repeats)]
    peer = [
        run_fairlearn(y, pred, frame, args.peer_boot) * args.boot / args.peer_boot
        for _ in range(max(1, args.repeats - 1))
    ]
    med_ours, med_peer = statistics.median(ours), statistics.median(peer)
    print(f"rows={args.rows} features=2 boot={args.boot}")
    print(f"dlaudit group_fairness          median {med_ours:8.2f} s  (runs: {', '.join(f'{t:.2f}' for t in ours)})")
    print(f"fairlearn MetricFrame(n_boot)   median {med_peer:8.2f} s  (scaled from {args.peer_boot} resamples)")
    print(f"ratio fairlearn / dlaudit       {med_peer / med_ours:8.1f}x")
    print(f"target < 30 s: {'met' if med_ours < 30 else 'NOT met'}")


if __name__ == "__main__":
    main()
