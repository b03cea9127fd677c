"""Flat metrics of every command's JSON on reference models: the behaviour-preservation check of issue 21.

Trains three small reference models with fixed seeds (a digits CNN, a digits MLP, a synthetic-credit MLP),
then runs ``dlaudit report --fast``, ``attack``, ``certify``, ``explain`` and ``fairness`` with ``--json``
on them and records each run's flat ``metrics`` object. Run it before and after a refactor and compare::

    python bench/views_metrics.py record /tmp/before.json
    python bench/views_metrics.py record /tmp/after.json
    python bench/views_metrics.py compare /tmp/before.json /tmp/after.json

``compare`` exits 1 when a metric that existed before is missing or has another value (NaN equals NaN,
``null`` equals ``null``), and lists the metrics a run added. Keep ``OMP_NUM_THREADS=1`` for both runs:
thread counts can change the last bits of float reductions.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

MODELS = {
    "cnn": ["cnn", "--data", "digits", "--epochs", "2", "--seed", "0"],
    "mlp": ["mlp", "--data", "digits", "--epochs", "3", "--seed", "0"],
    "credit": ["mlp", "--data", "synthetic-credit", "--epochs", "3", "--seed", "0"],
}
"""``dlaudit train`` arguments of each reference model."""

RUNS: dict[str, tuple[str, list[str]]] = {
    "report-cnn": ("cnn", ["report", "--fast", "--checks", "performance,robustness,explain"]),
    "report-mlp": ("mlp", ["report", "--fast"]),
    "report-credit": ("credit", ["report", "--fast"]),
    "attack-cnn-fast": ("cnn", ["attack", "--fast"]),
    "attack-cnn-mixed": (
        "cnn",
        [
            "attack",
            "--attack",
            "fgsm,pgd,apgd-ce",
            "--norm",
            "linf,l2",
            "--n",
            "40",
            "--steps",
            "5",
            "--eps",
            "0.05,0.1",
        ],
    ),
    "attack-mlp-autoattack": ("mlp", ["attack", "--attack", "autoattack,square", "--version", "fast", "--n", "30"]),
    "attack-credit-numeric": ("credit", ["attack", "--features", "numeric", "--n", "100", "--steps", "10"]),
    "certify-cnn-smoothing": ("cnn", ["certify", "--fast", "--inputs", "20"]),
    "certify-cnn-ibp": ("cnn", ["certify", "--method", "ibp", "--eps", "0.01,0.05", "--inputs", "50"]),
    "certify-mlp-crown": ("mlp", ["certify", "--method", "crown", "--eps", "0.01", "--inputs", "10"]),
    "explain-cnn": ("cnn", ["explain", "--fast", "--n", "4", "--method", "saliency,ig,occlusion"]),
    "explain-mlp": ("mlp", ["explain", "--fast", "--n", "4"]),
    "explain-credit": ("credit", ["explain", "--fast", "--n", "4", "--method", "ig,shap"]),
    "fairness-credit": ("credit", ["fairness", "--fast"]),
}
"""Each run: the model it reads and the command line (``--json`` and ``--seed 0`` are added)."""


def _dlaudit(*args: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "dlaudit", *args], check=True, env=env, stdout=subprocess.DEVNULL)


def record(out: Path, only: list[str] | None = None) -> dict[str, Any]:
    """Train the models and run every command; write ``{run: {metric: value}}`` to ``out``."""
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        models = {}
        for name, args in MODELS.items():
            models[name] = str(Path(tmp) / f"{name}.pt")
            _dlaudit("train", *args, "-o", models[name], "--quiet")
        for run, (model, args) in RUNS.items():
            if only and run not in only:
                continue
            path = Path(tmp) / f"{run}.json"
            extra = ["-o", str(Path(tmp) / f"{run}.html")] if args[0] == "report" else []
            _dlaudit(*args[:1], models[model], *args[1:], *extra, "--seed", "0", "--quiet", "--json", str(path))
            results[run] = json.loads(path.read_text())["metrics"]
            print(f"{run}: {len(results[run])} metrics", file=sys.stderr)
    out.write_text(json.dumps(results, indent=1, sort_keys=True))
    return results


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def compare(before: Path, after: Path) -> int:
    """Print every difference; 0 when every metric that existed before has the same value after."""
    old, new = json.loads(before.read_text()), json.loads(after.read_text())
    bad = 0
    for run, metrics in sorted(old.items()):
        got = new.get(run)
        if got is None:
            print(f"{run}: missing after")
            bad += 1
            continue
        for name, value in sorted(metrics.items()):
            if name not in got:
                print(f"{run}: {name} missing after")
                bad += 1
            elif not _same(value, got[name]):
                print(f"{run}: {name} {value!r} -> {got[name]!r}")
                bad += 1
        added = sorted(set(got) - set(metrics))
        if added:
            print(f"{run}: added {', '.join(added)}")
    total = sum(len(m) for m in old.values())
    print(f"{total - bad} of {total} metrics identical in {len(old)} runs; {bad} differ or are missing")
    return 1 if bad else 0


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "record":
        record(Path(argv[1]), argv[2:] or None)
        return 0
    if len(argv) == 3 and argv[0] == "compare":
        return compare(Path(argv[1]), Path(argv[2]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
