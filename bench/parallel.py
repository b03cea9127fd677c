"""Benchmark: audits sharded over Ray (``--workers``) against the same audit in one process.

Measured on this machine, in one run, on the seed CNN (digits upsampled to 28x28, as in
bench/attacks.py):

- Ray's fixed costs: starting a local runtime with N workers and shipping the model to
  them (the first shard), and the overhead of one shard: the round trip of a shard that
  does nothing, median over many, minus the same call in-process;
- PGD-40 L-inf without early stopping (every step for every sample, so the work is the
  same in every run) on 2,000 inputs: in-process with the default threads, on 1 Ray worker
  with one torch thread, on 2 workers with one thread each, and with ``--workers 2`` as the
  CLI sets it up; each with its ratio to the in-process time, whether the metrics are
  identical to it (they must be: every random draw is keyed by the sample's index), and
  the number of shards and their median seconds of work;
- the target: 2 workers at least 1.7x one worker (one thread each), met or missed by how much.

The in-process default does not shard (no executor work at all without ``--workers`` or
``--checkpoint``), so its time is what it was before sharding existed. On C cores, N workers
get C / N torch threads each, so ``--workers 2`` on 2 cores does the work of one 2-thread
process: expect about 1x here, and about 1/K of the time on K machines or GPUs once a
shard's work dwarfs its overhead.

Usage::

    python bench/parallel.py               # N=2000, 3 repeats (several minutes on 2 cores)
    python bench/parallel.py --quick       # N=200, 10 steps, 1 repeat: checks that everything runs

Quote the ratios from a quiet machine only: the output gives the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

import dlaudit
from dlaudit import parallel
from dlaudit.robust.evaluate import AttackResult, evaluate_attacks


def digits28(n: int) -> tuple[dlaudit.AuditData, torch.Tensor, torch.Tensor]:
    """Digits upsampled to 1x28x28: ``n`` inputs to attack (all 1,797 repeated as needed: this bench
    measures time, not robustness) and the first 1,200 of a seeded permutation to train on."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy((bunch.images / 16.0).astype(np.float32))[:, None]
    x = F.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False).clamp(0, 1)
    y = torch.from_numpy(bunch.target.astype(np.int64))
    order = torch.from_numpy(np.random.default_rng(0).permutation(len(y)))
    attacked = order.repeat(n // len(order) + 1)[:n]
    train = order[:1200]
    return dlaudit.AuditData(x[attacked], y[attacked], name="digits28", split="all"), x[train], y[train]


def train_cnn(x: torch.Tensor, y: torch.Tensor, epochs: int = 5) -> dlaudit.ModelBundle:
    torch.manual_seed(0)
    module = dlaudit.build_model("cnn", (1, 28, 28), 10)
    opt = torch.optim.Adam(module.parameters(), lr=1e-3)
    for _ in range(epochs):
        for s in range(0, len(x), 64):
            opt.zero_grad()
            F.cross_entropy(module(x[s : s + 64]), y[s : s + 64]).backward()
            opt.step()
    module.eval()
    card = dlaudit.ModelCard(input_shape=(1, 28, 28), num_classes=10, architecture="cnn", dataset="digits28")
    return dlaudit.ModelBundle(module, card, device="cpu")


def nothing(bundle: dlaudit.ModelBundle | None, payload: int) -> int:
    """A shard that does no work: its round trip is Ray's overhead per shard."""
    return payload


def overhead(bundle: dlaudit.ModelBundle, workers: int, shards: int) -> dict[str, float]:
    """Start-up, first map (the model shipped to each worker) and the per-shard round trip, in seconds."""
    start = time.perf_counter()
    ex = parallel.executor_for(workers)
    ex._init()
    started = time.perf_counter() - start
    try:
        t = time.perf_counter()
        ex.map(nothing, bundle, list(range(workers)))
        first = time.perf_counter() - t
        rounds = []
        for _ in range(5):
            t = time.perf_counter()
            ex.map(nothing, bundle, list(range(shards)))
            rounds.append((time.perf_counter() - t) / shards)
    finally:
        ex.close()
    local = []
    for _ in range(5):
        t = time.perf_counter()
        parallel.InProcess().map(nothing, bundle, list(range(shards)))
        local.append((time.perf_counter() - t) / shards)
    return {
        "start": started,
        "first": first,
        "per_shard": statistics.median(rounds) - statistics.median(local),
    }


def timed_attack(
    bundle: dlaudit.ModelBundle, data: dlaudit.AuditData, steps: int, executor: parallel.Executor
) -> tuple[float, AttackResult]:
    """PGD L-inf at eps 0.1 and 0.3, every step for every sample, on ``executor``: (seconds, result)."""
    t = time.perf_counter()
    with parallel.using(executor):
        result = evaluate_attacks(bundle, data, attacks="pgd", eps=[0.1, 0.3], steps=steps, early_stop=False, seed=0)
        result.params["parallel"] = executor.describe()
    return time.perf_counter() - t, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2000, help="inputs attacked (digits repeated as needed)")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=3, help="runs of every row (median)")
    ap.add_argument("--shards", type=int, default=200, help="empty shards timed for the per-shard overhead")
    ap.add_argument("--quick", action="store_true", help="N=200, 10 steps, 1 repeat: check that everything runs")
    args = ap.parse_args()
    if args.quick:
        args.n, args.steps, args.shards, args.repeat = 200, 10, 50, 1
    cores = os.cpu_count() or 1
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {cores} cores; medians of {args.repeat} run(s)"
    )
    print(f"load average at start: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    data, xt, yt = digits28(args.n)
    bundle = train_cnn(xt, yt)

    print("\nRay's fixed costs (shards that do nothing)")
    for w in (1, 2):
        o = overhead(bundle, w, args.shards)
        print(
            f"  {w} worker(s): runtime start {o['start']:.2f} s, model to the workers {o['first']:.2f} s, "
            f"{o['per_shard'] * 1000:.1f} ms per shard"
        )

    rows = [
        ("in-process, default threads (no --workers)", lambda: parallel.InProcess()),
        ("Ray, 1 worker, 1 torch thread", lambda: parallel.RayExecutor(workers=1, threads=1)),
        ("Ray, 2 workers, 1 torch thread each", lambda: parallel.RayExecutor(workers=2, threads=1)),
        (
            f"Ray, --workers 2 (cores / workers = {parallel.threads_per_worker(2)} thread(s) each)",
            lambda: parallel.executor_for(2),
        ),
    ]
    print(
        f"\nPGD-{args.steps} L-inf, eps 0.1 and 0.3, no early stop, {len(data.y)} inputs; seconds include Ray's start"
    )
    times: dict[str, list[float]] = {name: [] for name, _ in rows}
    results: dict[str, AttackResult] = {}
    for _ in range(args.repeat):  # interleaved, so a slow moment of the machine hits every row alike
        for name, make in rows:
            ex = make()
            try:
                secs, res = timed_attack(bundle, data, args.steps, ex)
            finally:
                ex.close()
            times[name].append(secs)
            results[name] = res
    base_name = rows[0][0]
    base = statistics.median(times[base_name])
    for name, _ in rows:
        t = statistics.median(times[name])
        p = results[name].params["parallel"]
        same = results[name].metrics == results[base_name].metrics
        shards = f"{p['shards']} shards, median {p['seconds_per_shard_median']} s each" if p["shards"] else "no shards"
        print(f"  {name:<52} {t:7.2f} s  {t / base:5.2f}x  metrics identical: {'yes' if same else 'NO'}  ({shards})")
    one = statistics.median(times[rows[1][0]])
    two = statistics.median(times[rows[2][0]])
    speedup = one / two
    verdict = "met" if speedup >= 1.7 else f"MISSED by {1.7 - speedup:.2f}"
    print(f"\ntarget: 2 workers at least 1.7x one worker (1 thread each): {speedup:.2f}x, {verdict}")
    print(f"load average at end: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
