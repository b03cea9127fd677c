"""Benchmark: peak memory of Integrated Gradients under dlaudit's memory budget, beside captum's default call.

The issue's case: IG with 200 steps on 64 resnet18 inputs (3x224x224, torchvision's resnet18 with random
weights, seed 0). Each run is a child process that measures its own peak RSS (``getrusage``) over its RSS
before the call, and the most rows one forward pass held:

- ``dlaudit``: ``attribute("ig", ...)`` with ``ExplainSettings(ig_steps=200, max_memory=BUDGET)``: the
  examples and, where one example's 200 steps do not fit, its steps are chunked to the budget
  (:mod:`dlaudit.explain.memory`);
- ``captum``: ``IntegratedGradients(model).attribute(x, baselines=0, target=t, n_steps=200)``, captum's
  default call without ``internal_batch_size`` (all 64 x 200 rows in one pass).

A chunked run's peak depends on its chunk, not on how many inputs it explains; on a small machine
``--run-inputs`` explains fewer of them (the same chunk) to finish in minutes, and says so. Every child
runs under an address-space limit (``--limit``, ``RLIMIT_DATA``) so a call that needs more memory than
the machine has fails with an allocation error in its own process instead of waking the OOM killer;
the failure is reported with the size it asked for. The children map every block over 64 KiB on its own
(``MALLOC_MMAP_THRESHOLD_``), so the RSS follows the live tensors rather than what the allocator keeps.

Usage::

    python bench/explain_memory.py                              # 64 inputs, 200 steps, 224x224, budget 2G
    python bench/explain_memory.py --run-inputs 2 --limit 8G    # on a small CPU machine

Quote numbers with the machine's load (printed).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _rss import rss_mib  # bench/ is on the path of a script run from it

CHILD_ENV = {"DLAUDIT_MALLOC_TUNING": "0", "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_ARENA_MAX": "2"}


def child(args: argparse.Namespace) -> dict:
    """One measured run in this process: its peak RSS over the RSS before the call."""
    import torch
    import torchvision
    from captum.attr import IntegratedGradients

    from dlaudit.explain import ExplainContext, ExplainSettings, attribute
    from dlaudit.explain.memory import activation_bytes, parse_size

    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    n = args.run_inputs or args.inputs
    x = torch.rand(n, 3, args.size, args.size, generator=torch.Generator().manual_seed(1))
    target = torch.arange(n) % 1000
    rows: list[int] = []
    model.register_forward_hook(lambda _m, inp, _o: rows.append(len(inp[0])))
    per_row = activation_bytes(model, x)
    with torch.no_grad():
        model(x[:1])  # warm: the first pass's one-off allocations are not the method's
    rows.clear()
    before = rss_mib()
    start = time.perf_counter()
    out: dict = {"inputs": n, "per_row_activation_mib": per_row / 2**20}
    try:
        if args.mode == "dlaudit":
            ctx = ExplainContext(
                "image",
                (0.0, 1.0),
                x[:1],
                settings=ExplainSettings(ig_steps=args.steps, max_memory=parse_size(args.budget)),
            )
            values = attribute("ig", model, x, target, ctx).values
        else:
            values = IntegratedGradients(model).attribute(
                x, baselines=torch.zeros_like(x), target=target, n_steps=args.steps
            )
        out.update(ok=True, shape=list(values.shape))
    except (RuntimeError, MemoryError) as err:
        out.update(ok=False, error=f"{type(err).__name__}: {str(err).splitlines()[0][:200]}")
    out.update(
        seconds=time.perf_counter() - start,
        rss_before_mib=before,
        peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        max_rows_per_pass=max(rows) if rows else None,
    )
    out["peak_over_before_mib"] = out["peak_rss_mib"] - before
    return out


def run_child(mode: str, args: argparse.Namespace, run_inputs: int | None) -> dict:
    from dlaudit.explain.memory import parse_size

    cmd = [sys.executable, __file__, "--child", mode, "--inputs", str(args.inputs), "--steps", str(args.steps)]
    cmd += ["--size", str(args.size), "--budget", args.budget]
    if run_inputs:
        cmd += ["--run-inputs", str(run_inputs)]
    limit = parse_size(args.limit)
    env = {**os.environ, **CHILD_ENV, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))

    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, preexec_fn=cap)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
        return {"ok": False, "error": f"child exited {proc.returncode}: {tail[0][:200]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inputs", type=int, default=64)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--budget", default="2G", help="dlaudit's --max-memory")
    ap.add_argument("--limit", default="16G", help="the most memory (RLIMIT_DATA) each child may map")
    ap.add_argument("--run-inputs", type=int, default=None, help="explain only this many with dlaudit (same chunk)")
    ap.add_argument("--child", choices=("dlaudit", "captum"), default=None)
    ap.add_argument("--mode", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        args.mode = args.child
        print(json.dumps(child(args)))
        return
    print(
        f"IG, {args.steps} steps, {args.inputs} resnet18 inputs 3x{args.size}x{args.size}; dlaudit budget "
        f"{args.budget}; each child capped at {args.limit}; threads {os.environ.get('OMP_NUM_THREADS', 'default')}; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    results = {
        "captum (default, no internal_batch_size)": run_child("captum", args, None),
        "dlaudit": run_child("dlaudit", args, args.run_inputs),
    }
    for name, r in results.items():
        if r.get("ok"):
            print(
                f"  {name}: {r['inputs']} inputs, {r['seconds']:.1f} s, peak RSS {r['peak_rss_mib']:.0f} MiB "
                f"({r['peak_over_before_mib']:.0f} MiB over the {r['rss_before_mib']:.0f} MiB before), "
                f"at most {r['max_rows_per_pass']} rows a pass ({r['per_row_activation_mib']:.1f} MiB of activations a row)"
            )
        else:
            print(f"  {name}: failed: {r['error']}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
