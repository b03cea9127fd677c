"""Benchmark: weak-segment discovery over UCI Adult's 14 features and their 91 pairs.

dlaudit's ``find_weak_segments`` (one ``np.bincount`` per column and per pair of
columns, the tests and intervals vectorised over every segment) against what a
user would otherwise write: a pandas ``groupby`` per column and per pair,
computing the same counts. The predictions are a seeded stand-in (right on 85%
of rows, on 70% where age > 60 and hours-per-week < 30): the search's cost does
not depend on the model.

Target (issue 26): the 14 features, pairs included, on Adult's 16,281 test rows
in under 10 s on 2 cores.

    python bench/segments.py --data-dir ../shared/data/adult
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's dlaudit, not an installed one

from dlaudit.data.tabular import ADULT_COLUMNS
from dlaudit.fairness.segments import find_weak_segments


def load(data_dir: Path) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    frame = pd.read_csv(
        data_dir / "adult.test", header=None, names=ADULT_COLUMNS, skiprows=1, skipinitialspace=True, na_values="?"
    )
    truth = frame.pop("income").str.startswith(">50K").to_numpy()
    rng = np.random.default_rng(0)
    weak = (frame["age"] > 60) & (frame["hours-per-week"] < 30)
    correct = rng.random(len(frame)) < np.where(weak, 0.70, 0.85)
    return frame, correct, np.where(correct, truth, ~truth)


def pandas_groupby(frame: pd.DataFrame, correct: np.ndarray, pred: np.ndarray) -> int:
    """The same per-segment counts the way a user would get them: one groupby per column and pair."""
    binned = frame.copy()
    for c in frame.columns:
        if pd.api.types.is_numeric_dtype(frame[c]) and frame[c].nunique() > 10:
            binned[c] = pd.qcut(frame[c], 5, duplicates="drop").astype(str)
    binned["_ok"], binned["_pos"] = correct, pred
    cells = 0
    for cols in [[c] for c in frame.columns] + [list(p) for p in itertools.combinations(frame.columns, 2)]:
        g = binned.groupby(cols, observed=True, dropna=False)[["_ok", "_pos"]].agg(["sum", "count"])
        cells += len(g)
    return cells


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "adult"))
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    frame, correct, pred = load(Path(args.data_dir))
    print(f"{len(frame)} rows, {frame.shape[1]} columns ({frame.shape[1] * (frame.shape[1] - 1) // 2} pairs)")

    ours, theirs = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        result = find_weak_segments(frame, correct, predicted_positive=pred)
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        pandas_groupby(frame, correct, pred)
        theirs.append(time.perf_counter() - start)
    a, b = statistics.median(ours), statistics.median(theirs)
    print(
        f"dlaudit find_weak_segments: {a:.3f} s median of {args.repeats} ({result.n_tested} tests, "
        f"{result.n_significant} significant, BH at {result.fdr:g})"
    )
    print(f"pandas groupby (counts only, no tests): {b:.3f} s; ratio {b / a:.1f}x")
    print(f"target: under 10 s -> {'met' if a < 10 else 'NOT met'}")
    for s in [s for s in result.segments if s.metric == "accuracy"][:5]:
        print("  ", s.sentence())


if __name__ == "__main__":
    main()
