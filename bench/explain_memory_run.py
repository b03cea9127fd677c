"""Benchmark: peak RSS of a whole ``dlaudit explain`` run above the process's baseline, per stage.

The issue's "Done when": a resnet18 explanation run on 1,000 inputs stays within its memory budget. The
model is torchvision's resnet18 with 10 classes and random weights (seed 0), saved as a state_dict and
loaded with ``--arch torchvision:resnet18``; the data 1,000 random 3x32x32 inputs in an ``.npz``. The CLI
runs in this process (``dlaudit.cli.main``) while a thread samples ``VmRSS`` every 20 ms; the baseline
is the RSS when the attributions start (imports, model, data and the predictions that pick the samples
done), and each stage's peak (the attributions, each trust metric, the section with its figures) is
reported over it. "Within the budget" means the peak over that baseline is under ``--max-memory``.

Usage::

    python bench/explain_memory_run.py --budget 256M            # 1,000 inputs, --fast, quality metrics on
    python bench/explain_memory_run.py --budget 1G --no-quality

The RSS includes what glibc keeps of freed blocks (dlaudit raises its trim threshold at start-up, see
``dlaudit/_alloc.py``); set ``DLAUDIT_MALLOC_TUNING=0 MALLOC_MMAP_THRESHOLD_=65536`` to follow the live
tensors more closely. Quote the numbers with the machine's load (printed).

Measured (2 shared cores, ``OMP_NUM_THREADS=1``, methods saliency, ig, smoothgrad, gradcam, ``--fast``,
1,000 inputs; baseline about 1.03-1.11 GiB of RSS when the attributions start):

- 256M, quality on (the same sampler in a wrapper script): attributions +82 MiB, deletion/insertion curves
  of saliency +183 MiB, then +630 MiB from Integrated Gradients' ROAD stage on (the RSS never came down),
  figures +651 MiB: NOT within the budget. 20.5 min wall, load 2.7-5.7.
- 256M, no quality: +95 MiB (82 s, load 2.7). 1G, no quality: +387 MiB (90 s, load 2.4).

- 100 inputs, 256M, quality on: +257 MiB with dlaudit's allocator tuning (93 s, load 2.9); +163 MiB with
  ``DLAUDIT_MALLOC_TUNING=0 MALLOC_MMAP_THRESHOLD_=65536 MALLOC_ARENA_MAX=2`` (112 s, load 2.2), where each
  stage's RSS comes down again (ROAD +54, completeness +42; the sanity check's +163 includes the randomised
  model copy).

After ``--max-memory`` also bounded glibc's retention (``dlaudit._alloc.bound_retention``: trim threshold a
quarter of the budget, top pad an eighth, mmap threshold a 256th, under dlaudit's start-up tuning):

- 100 inputs, 256M, quality on: +161 MiB (was +259 MiB with the tuning's 1 GiB retention; load 1.8).
- 1,000 inputs, 256M, quality on: **+179 MiB, within the budget** (baseline 1,035 MiB; attributions +101,
  deletion/insertion +154, sanity check +179 with its model copy, random logit +159, ROAD +129,
  completeness +156, section and figures +106). 1,012 s wall at load 4.2 (a CI run beside it).

ROAD then imputed many samples at once (batched model calls): with their imputed images sized to half the
budget (and the banded solver's 32 MiB band, copied by LAPACK's wrapper, uncounted) the same run peaked
+383 MiB, then +282 MiB with the model pass at half the budget too (ROAD's stage; deletion curves +245).
Now the images and the solver's work take a quarter of the budget (a chunk of about 30 samples, 20 rows
each, already runs the model at full speed), the band is 8 MiB and solved in place, and a chunk's solved
grids are written into one array (a stack held them twice). ROAD alone (this resnet18, 1,000 inputs, 10
fractions, its pass at 256 rows, ``road_curves`` called directly) peaked +102 MiB over its start at 256M
(from +164), in 18.7 s (19.5 s before: no time lost), with the same AUCs to the bit:

- 1,000 inputs, 256M, quality on: **+170 MiB, within the budget** (baseline 1,086 MiB; attributions +63,
  deletion/insertion +137, sanity check +170 with its model copy, max-sensitivity +89, random logit +152,
  ROAD +156, completeness +111, section and figures +81). 611 s wall, load 1.6 (2026-12-06, one other
  single-threaded bench beside it).

Before that bound, the attribution passes kept to the budget; the trust stage's excess is not explained by what its passes
hold (ROAD's sparse solve of one sample holds about 20 MiB, its forward 32 rows): at 100 inputs it is
freed memory glibc keeps under dlaudit's tuning (shown above); at 1,000 inputs the untuned run was not made.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _rss import rss_mib  # bench/ is on the path of a script run from it

STAGES = (
    "perturbation_curves",
    "road_curves",
    "sanity_check",
    "max_sensitivity",
    "random_logit_similarity",
    "completeness_parts",
)


def _inputs(folder: Path, n: int) -> tuple[Path, Path]:
    import numpy as np
    import torch
    import torchvision

    torch.manual_seed(0)
    model, data = folder / "resnet18.pt", folder / "data.npz"
    torch.save(torchvision.models.resnet18(num_classes=10).state_dict(), model)
    rng = np.random.default_rng(0)
    np.savez(data, x=rng.random((n, 3, 32, 32), dtype=np.float32), y=rng.integers(0, 10, n))
    return model, data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", default="256M", help="dlaudit's --max-memory")
    ap.add_argument("--n", type=int, default=1000, help="inputs explained")
    ap.add_argument("--methods", default="saliency,ig,smoothgrad,gradcam")
    ap.add_argument("--no-quality", action="store_true", help="attributions only")
    args = ap.parse_args()

    import dlaudit.explain.compute as compute
    import dlaudit.explain.section as section
    from dlaudit.cli import cli
    from dlaudit.explain.memory import parse_size

    marks: list[tuple[float, str, float]] = []
    samples: list[tuple[float, float]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append((time.perf_counter(), rss_mib()))
            time.sleep(0.02)

    def watch(owner: Any, name: str) -> None:
        inner = getattr(owner, name)

        def watched(*a: Any, **k: Any) -> Any:
            marks.append((time.perf_counter(), name, 1.0))
            try:
                return inner(*a, **k)
            finally:
                marks.append((time.perf_counter(), name, 0.0))

        setattr(owner, name, watched)

    for name in ("attribute_all", "assess_all"):
        watch(compute.Run, name)
    for name in STAGES:
        watch(compute, name)
    watch(section, "build_section")

    with tempfile.TemporaryDirectory() as tmp:
        model, data = _inputs(Path(tmp), args.n)
        argv = [str(model), "--arch", "torchvision:resnet18", "--input-shape", "3,32,32", "--num-classes", "10"]
        argv += ["--value-range", "0,1", "--data", str(data), "--n", str(args.n), "--method", args.methods]
        argv += ["--fast", "--max-memory", args.budget, "--device", "cpu", "-q", "--json", str(Path(tmp) / "out.json")]
        argv += ["--no-quality"] if args.no_quality else []
        thread = threading.Thread(target=sample, daemon=True)
        start = time.perf_counter()
        thread.start()
        try:
            cli.main(["explain", *argv], prog_name="dlaudit", standalone_mode=False)
        finally:
            done.set()
            thread.join()
    wall = time.perf_counter() - start
    begin = next(t for t, name, opening in marks if name == "attribute_all" and opening)
    baseline = [r for t, r in samples if t <= begin][-1]
    stages: dict[str, float] = {}
    for i, (t, name, opening) in enumerate(marks):
        if not opening:
            continue
        end = next(u for u, other, o in marks[i + 1 :] if other == name and not o)
        inside = [r for u, r in samples if t <= u <= end]
        if inside:
            stages[name] = max(stages.get(name, 0.0), max(inside) - baseline)
    budget = parse_size(args.budget) / 2**20
    peak = max(r for _, r in samples) - baseline
    print(
        json.dumps(
            {
                "inputs": args.n,
                "methods": args.methods,
                "quality": not args.no_quality,
                "budget_mib": budget,
                "baseline_rss_mib": round(baseline),
                "peak_over_baseline_mib": round(peak),
                "within_budget": peak <= budget,
                "stage_peak_over_baseline_mib": {k: round(v) for k, v in stages.items()},
                "wall_s": round(wall, 1),
                "threads": os.environ.get("OMP_NUM_THREADS", "default"),
                "load_average": os.getloadavg()[0],
                "cores": os.cpu_count(),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
