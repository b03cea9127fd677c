"""Benchmark: dlaudit's FGSM and PGD against a hand-written torch loop, torchattacks, captum and ART.

One run, ratios printed. Model: the seed CNN (Conv 32 3x3, ReLU, MaxPool 2, Dense
128, Dropout 0.5, Dense 10) trained for a few epochs on scikit-learn's digits
upsampled to 28x28 (bilinear): "MNIST-sized" inputs without downloading MNIST.
The attacked inputs are N of those images (the model trained on the other 797).

Parts:

1. Same process, same inputs, same batch size (default 250): robust accuracy and
   seconds of each attack, as a ratio to the hand-written loop. dlaudit runs twice:
   with the loop's exact semantics (``early_stop=False``: every step for every
   sample) and with its defaults (a sample stops once fooled; never weaker).
   All timings include the final forward pass that yields the robust accuracy.
2. Batch size: dlaudit's default (256 on a CPU, fewer for large activations) against
   fixed sizes, and torchattacks at 250.
3. Separate processes: the same hand-written PGD loop with glibc's default malloc
   (``DLAUDIT_MALLOC_TUNING=0``) and with dlaudit's tuning; then ``dlaudit attack``
   as a user runs it, against a plain torchattacks script (which never imports
   dlaudit, so runs with the default allocator), each in its own process.
4. Adversarial training: one epoch of PGD-7 and of fast FGSM training through
   dlaudit's trainer (eager, and with ``compile``) against a hand-written training loop.
5. The issue-15 targets, each as met or missed by how much.

Every in-process time is the median of ``--repeat`` runs (default 3), the rows of a table
taking turns so that a slow spell of the machine hits all of them alike. ``--compile`` rows
are timed after one warm-up run that pays for compiling (its seconds are printed).

Usage::

    python bench/attacks.py                 # full: N=1000, PGD-40, eps 0.3 (about 15 minutes on 2 cores)
    python bench/attacks.py --quick         # N=250, PGD-10, 1 repeat: checks that everything runs

The machine this ran on is noted in the output (threads, load average at start and end): quote ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]


# -- the model and data, without dlaudit (the child processes must not import it) -----------


def seed_cnn() -> nn.Sequential:
    """The seed CNN for 1x28x28 inputs, laid out like dlaudit's (same state_dict keys)."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 13 * 13, 128),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(128, 10),
    )


def load_plain(model_path: str, data_path: str) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    payload = torch.load(model_path, map_location="cpu", weights_only=True)
    model = seed_cnn()
    model.load_state_dict(payload["state_dict"])
    with np.load(data_path) as npz:
        x, y = torch.from_numpy(npz["x_test"]), torch.from_numpy(npz["y_test"]).long()
    return model.eval(), x, y


def make_data(path: Path, n: int) -> None:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy((bunch.images / 16.0).astype(np.float32))[:, None]
    x = F.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False).clamp(0, 1)
    y = bunch.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(y))
    test, train = order[:n], order[n:]
    np.savez(path, x_train=x[train].numpy(), y_train=y[train], x_test=x[test].numpy(), y_test=y[test])


def seed_subject(n: int) -> tuple[Any, nn.Module, torch.Tensor, torch.Tensor, Path, Path]:
    """dlaudit's CNN trained (3 epochs, seed 0) on :func:`make_data`'s digits (``n`` test samples) and loaded back as
    the plain seed CNN, in a new temporary folder: ``(bundle, model, x_test, y_test, data_path, model_path)``."""
    import dlaudit

    tmp = Path(tempfile.mkdtemp(prefix="dlaudit-bench-"))
    data_path, model_path = tmp / "digits28.npz", tmp / "cnn28.pt"
    make_data(data_path, n)
    bundle = dlaudit.train("cnn", str(data_path), epochs=3, seed=0, device="cpu")
    dlaudit.save_model(bundle, model_path)
    model, x, y = load_plain(str(model_path), str(data_path))
    return bundle, model, x, y, data_path, model_path


# -- attacks as a user would write them ----------------------------------------------------


def loop_pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    alpha: float,
    steps: int,
    bs: int,
    norm: str = "linf",
) -> float:
    """The hand-written floor: random start, sign (or normalised) steps, projection, clamp."""
    correct = 0
    for s in range(0, len(x), bs):
        xb, yb = x[s : s + bs], y[s : s + bs]
        if norm == "linf":
            xa = (xb + torch.empty_like(xb).uniform_(-eps, eps)).clamp(0, 1)
        else:
            d = torch.randn_like(xb)
            d = d * (torch.rand(len(xb), 1, 1, 1) * eps / d.flatten(1).norm(dim=1).view(-1, 1, 1, 1))
            xa = (xb + d).clamp(0, 1)
        for _ in range(steps):
            xa.requires_grad_(True)
            loss = F.cross_entropy(model(xa), yb)
            (g,) = torch.autograd.grad(loss, xa)
            if norm == "linf":
                xa = xa.detach() + alpha * g.sign()
                xa = torch.min(torch.max(xa, xb - eps), xb + eps).clamp(0, 1)
            else:
                xa = xa.detach() + alpha * g / g.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
                delta = xa - xb
                factor = (eps / delta.flatten(1).norm(dim=1).clamp_min(1e-12)).clamp(max=1.0).view(-1, 1, 1, 1)
                xa = (xb + delta * factor).clamp(0, 1)
        with torch.no_grad():
            correct += int((model(xa).argmax(1) == yb).sum())
    return correct / len(x)


def loop_fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, bs: int) -> float:
    correct = 0
    for s in range(0, len(x), bs):
        xb, yb = x[s : s + bs].clone().requires_grad_(True), y[s : s + bs]
        (g,) = torch.autograd.grad(F.cross_entropy(model(xb), yb), xb)
        xa = (xb.detach() + eps * g.sign()).clamp(0, 1)
        with torch.no_grad():
            correct += int((model(xa).argmax(1) == yb).sum())
    return correct / len(x)


def batched_accuracy(
    model: nn.Module,
    attack: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    bs: int,
) -> float:
    correct = 0
    for s in range(0, len(x), bs):
        xa = attack(x[s : s + bs], y[s : s + bs])
        with torch.no_grad():
            correct += int((model(xa).argmax(1) == y[s : s + bs]).sum())
    return correct / len(x)


def timed(fn: Callable[[], float]) -> tuple[float, float]:
    start = time.perf_counter()
    acc = fn()
    return time.perf_counter() - start, acc


def medians(
    rows: list[tuple[str, Callable[[], float] | None]], repeat: int
) -> list[tuple[str, float | None, float | None]]:
    """Each row's median seconds over ``repeat`` rounds (rows take turns) and its accuracy (the last run's)."""
    times: dict[str, list[float]] = {name: [] for name, _ in rows}
    accs: dict[str, float | None] = {name: None for name, _ in rows}
    for _ in range(max(1, repeat)):
        for name, fn in rows:
            if fn is None:
                continue
            try:
                sec, acc = timed(fn)
            except (RuntimeError, ValueError) as err:
                print(f"#   {name} crashed: {type(err).__name__}: {str(err).splitlines()[0][:160]}")
                continue
            times[name].append(sec)
            accs[name] = acc
    return [(name, statistics.median(times[name]) if times[name] else None, accs[name]) for name, _ in rows]


RESULTS: dict[str, float] = {}
"""Ratios the targets are judged on, filled in as the parts run."""


# -- child processes ------------------------------------------------------------------------


def child(mode: str, model_path: str, data_path: str, eps: float, steps: int, bs: int) -> None:
    """Run one measurement in this process and print it as JSON."""
    if mode == "loop":
        from dlaudit._alloc import malloc_tuning_state, tune_malloc

        tune_malloc()  # what every dlaudit command does first (a no-op with DLAUDIT_MALLOC_TUNING=0)

        state = malloc_tuning_state()["reason"]
    else:
        state = "glibc default (dlaudit not imported)"
    model, x, y = load_plain(model_path, data_path)
    torch.manual_seed(0)
    if mode == "loop":
        seconds, acc = timed(lambda: loop_pgd(model, x, y, eps, 2.5 * eps / steps, steps, bs))
    else:
        import torchattacks

        atk = torchattacks.PGD(model, eps=eps, alpha=2.5 * eps / steps, steps=steps)
        seconds, acc = timed(lambda: batched_accuracy(model, atk, x, y, bs))
    print(json.dumps({"seconds": seconds, "accuracy": acc, "malloc": state}))


def run_child(args: list[str], env: dict[str, str], repeat: int = 1, json_out: Path | None = None) -> dict[str, Any]:
    """Run a child ``repeat`` times; seconds and wall time are medians (the last run's other fields)."""
    runs = [_run_child_once(args, env, json_out) for _ in range(max(1, repeat))]
    out = dict(runs[-1])
    out["seconds"] = statistics.median(r["seconds"] for r in runs)
    out["wall"] = statistics.median(r["wall"] for r in runs)
    return out


def _run_child_once(args: list[str], env: dict[str, str], json_out: Path | None) -> dict[str, Any]:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    if out.returncode != 0:
        raise RuntimeError(f"child {args} failed: {out.stderr[-2000:]}")
    if json_out is not None:  # a dlaudit attack --json file
        payload = json.loads(json_out.read_text())
        return {"seconds": payload["seconds"], "wall": wall, "payload": payload}
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    result = json.loads(lines[-1]) if lines else {}
    result["wall"] = wall
    return result


# -- the benchmark --------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=250)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--eps", type=float, default=0.3)
    ap.add_argument("--eps-l2", type=float, default=2.0)
    ap.add_argument("--acc-eps", type=float, default=0.1, help="L-inf eps of the extra robust-accuracy comparison")
    ap.add_argument("--quick", action="store_true", help="N=250, 10 steps, 1 repeat: check that everything runs")
    ap.add_argument("--repeat", type=int, default=3, help="runs of every measurement (median)")
    ap.add_argument("--skip", default="", help="parts to skip, comma-separated: peers,batch,processes,training")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--model", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--data", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.model, args.data, args.eps, args.steps, args.batch)
        return
    if args.quick:
        args.n, args.steps, args.repeat = 250, 10, 1
    skip = set(filter(None, args.skip.split(",")))

    sys.path.insert(0, str(ROOT))
    from dlaudit._alloc import malloc_tuning_state

    bundle, model, x, y, data_path, model_path = seed_subject(args.n)
    print(
        f"# torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}, "
        f"malloc tuning in this process: {malloc_tuning_state()['reason']}; medians of {args.repeat} run(s)"
    )
    print(
        f"# seed CNN on {args.n} digits upsampled to 1x28x28 (clean accuracy {bundle.card.metrics['test_accuracy']:.3f}); "
        f"batch {args.batch}; PGD-{args.steps} eps {args.eps} (L2 eps {args.eps_l2}), alpha 2.5*eps/steps, random start"
    )

    if "peers" not in skip:
        peers(bundle, model, x, y, args)
    if "batch" not in skip:
        batch_sizes(bundle, model, x, y, args)
    if "processes" not in skip:
        processes(model_path, data_path, args)
    if "training" not in skip:
        training(args, data_path)
    targets()
    print(f"# load average at the end: {os.getloadavg()[0]:.2f}")


def _report(title: str, rows: list[tuple[str, float | None, float | None]]) -> None:
    base = rows[0][1]
    print(f"\n## {title}")
    print(f"{'method':<48} {'seconds':>8} {'x loop':>7} {'robust acc':>10}")
    for name, sec, acc in rows:
        if sec is None or base is None:
            print(f"{name:<48} {'-':>8} {'-':>7} {'-':>10}")
            continue
        print(f"{name:<48} {sec:8.2f} {sec / base:7.2f} {acc:10.4f}")


def _ratio(rows: list[tuple[str, float | None, float | None]], name: str) -> float | None:
    base = rows[0][1]
    sec = {r[0]: r[1] for r in rows}.get(name)
    return None if sec is None or not base else sec / base


def peers(bundle: Any, model: nn.Module, x: torch.Tensor, y: torch.Tensor, args: argparse.Namespace) -> None:
    import torchattacks
    from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescent
    from art.estimators.classification import PyTorchClassifier
    from captum.robust import FGSM as CaptumFGSM
    from captum.robust import PGD as CaptumPGD

    from dlaudit.robust import Attack, run_attack
    from dlaudit.robust.attacks import speed

    eps, steps, bs, r = args.eps, args.steps, args.batch, args.repeat
    alpha = 2.5 * eps / steps
    ce = nn.CrossEntropyLoss(reduction="none")
    art_clf = PyTorchClassifier(
        model=model,
        loss=nn.CrossEntropyLoss(),
        input_shape=(1, 28, 28),
        nb_classes=10,
        clip_values=(0.0, 1.0),
        device_type="cpu",
    )
    xn, yn = x.numpy(), y.numpy()

    def art_acc(attack: Any) -> float:
        adv = attack.generate(xn, yn)
        return float((art_clf.predict(adv, batch_size=bs).argmax(1) == yn).mean())

    def dl(atk: Any, batch: int | None = bs, **engine: bool) -> Callable[[], float]:
        def go() -> float:
            with speed.using(**engine):
                return run_attack(bundle, x, y, atk, seed=0, batch_size=batch, keep_adv=False).accuracy(y)

        return go

    def captum_pgd(norm: str, e: float, random_start: bool) -> Callable[[], float]:
        pgd = CaptumPGD(model, loss_func=ce, lower_bound=0.0, upper_bound=1.0)
        return lambda: batched_accuracy(
            model,
            lambda a, b: pgd.perturb(
                a, radius=e, step_size=2.5 * e / steps, step_num=steps, target=b, random_start=random_start, norm=norm
            ),
            x,
            y,
            bs,
        )

    torch.manual_seed(0)
    loop_pgd(model, x[:bs], y[:bs], eps, alpha, 2, bs)  # warm-up
    same = Attack.pgd(eps, steps=steps, early_stop=False)
    warm, _ = timed(dl(same, compile=True))  # compiles (cached for the timed runs)
    warm_stop, _ = timed(dl(Attack.pgd(eps, steps=steps), compile=True))
    print(f"# --compile warm-up (compiling included): same semantics {warm:.2f} s, default {warm_stop:.2f} s")
    ta = torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps)
    art = ProjectedGradientDescent(
        art_clf, norm=np.inf, eps=eps, eps_step=alpha, max_iter=steps, num_random_init=1, batch_size=bs, verbose=False
    )
    rows = medians(
        [
            ("hand-written torch loop", lambda: loop_pgd(model, x, y, eps, alpha, steps, bs)),
            ("dlaudit, same semantics (early_stop=False)", dl(same)),
            ("  same, contiguous layout (channels_last off)", dl(same, channels_last=False)),
            ("  same, --compile (after warm-up)", dl(same, compile=True)),
            ("dlaudit, default (stop a sample once fooled)", dl(Attack.pgd(eps, steps=steps))),
            ("  default, --compile (after warm-up)", dl(Attack.pgd(eps, steps=steps), compile=True)),
            ("torchattacks.PGD", lambda: batched_accuracy(model, ta, x, y, bs)),
            ("captum.robust.PGD (CE loss, random start)", captum_pgd("Linf", eps, True)),
            ("ART ProjectedGradientDescent", lambda: art_acc(art)),
        ],
        r,
    )
    _report(f"PGD-{steps} L-inf, eps {eps}", rows)
    RESULTS["same"] = _ratio(rows, "dlaudit, same semantics (early_stop=False)")
    RESULTS["same_compile"] = _ratio(rows, "  same, --compile (after warm-up)")
    RESULTS["torchattacks"] = _ratio(rows, "torchattacks.PGD")
    RESULTS["compile_warmup"] = warm

    cf = CaptumFGSM(model, loss_func=ce, lower_bound=0.0, upper_bound=1.0)
    rows = medians(
        [
            ("hand-written torch loop", lambda: loop_fgsm(model, x, y, eps, bs)),
            ("dlaudit", dl(Attack.fgsm(eps))),
            ("torchattacks.FGSM", lambda: batched_accuracy(model, torchattacks.FGSM(model, eps=eps), x, y, bs)),
            (
                "captum.robust.FGSM (CE loss)",
                lambda: batched_accuracy(model, lambda a, b: cf.perturb(a, epsilon=eps, target=b), x, y, bs),
            ),
            (
                "ART FastGradientMethod",
                lambda: art_acc(FastGradientMethod(art_clf, norm=np.inf, eps=eps, batch_size=bs)),
            ),
        ],
        r,
    )
    _report(f"FGSM L-inf, eps {eps}", rows)

    e2 = args.eps_l2
    art2 = ProjectedGradientDescent(
        art_clf,
        norm=2,
        eps=e2,
        eps_step=2.5 * e2 / steps,
        max_iter=steps,
        num_random_init=1,
        batch_size=bs,
        verbose=False,
    )
    pgdl2 = torchattacks.PGDL2(model, eps=e2, alpha=2.5 * e2 / steps, steps=steps)
    rows = medians(
        [
            ("hand-written torch loop", lambda: loop_pgd(model, x, y, e2, 2.5 * e2 / steps, steps, bs, norm="l2")),
            (
                "dlaudit, same semantics (early_stop=False)",
                dl(Attack.pgd(e2, steps=steps, norm="l2", early_stop=False)),
            ),
            ("dlaudit, default (stop a sample once fooled)", dl(Attack.pgd(e2, steps=steps, norm="l2"))),
            ("torchattacks.PGDL2", lambda: batched_accuracy(model, pgdl2, x, y, bs)),
            ("captum.robust.PGD L2 (random start)", captum_pgd("L2", e2, True)),
            ("captum.robust.PGD L2 (no random start)", captum_pgd("L2", e2, False)),
            ("ART ProjectedGradientDescent (L2)", lambda: art_acc(art2)),
        ],
        r,
    )
    _report(f"PGD-{steps} L2, eps {e2}", rows)
    print("# captum's L2 PGD takes sign steps (an L-inf step inside an L2 ball), so its numbers are not comparable.")

    e = args.acc_eps  # eps 0.3 breaks every input of an undefended model; compare accuracies where they are informative
    a = alpha_e = 2.5 * e / steps
    ta_e = torchattacks.PGD(model, eps=e, alpha=alpha_e, steps=steps)
    rows = medians(
        [
            ("hand-written torch loop", lambda: loop_pgd(model, x, y, e, a, steps, bs)),
            ("dlaudit, same semantics (early_stop=False)", dl(Attack.pgd(e, steps=steps, early_stop=False))),
            ("  same, --compile", dl(Attack.pgd(e, steps=steps, early_stop=False), compile=True)),
            ("dlaudit, default (stop a sample once fooled)", dl(Attack.pgd(e, steps=steps))),
            ("torchattacks.PGD", lambda: batched_accuracy(model, ta_e, x, y, bs)),
        ],
        r,
    )
    _report(f"PGD-{steps} L-inf, eps {e} (robust accuracy check)", rows)


def batch_sizes(bundle: Any, model: nn.Module, x: torch.Tensor, y: torch.Tensor, args: argparse.Namespace) -> None:
    """dlaudit's default batch size against fixed ones (same semantics: every step for every sample)."""
    import torchattacks

    from dlaudit.robust import Attack, run_attack
    from dlaudit.robust.batching import choose_batch_size, clear_cache

    eps, steps = args.eps, args.steps
    ta = torchattacks.PGD(model, eps=eps, alpha=2.5 * eps / steps, steps=steps)
    atk = Attack.pgd(eps, steps=steps, early_stop=False)
    clear_cache()
    start = time.perf_counter()
    default = choose_batch_size(bundle.module, x, bundle.device)
    choose = time.perf_counter() - start

    def dl(batch: int | None) -> Callable[[], float]:
        return lambda: run_attack(bundle, x, y, atk, seed=0, batch_size=batch, keep_adv=False).accuracy(y)

    sizes = [s for s in (32, 64, 128, 250, 512) if s <= len(x)]
    rows = medians(
        [("torchattacks.PGD, batch 250", lambda: batched_accuracy(model, ta, x, y, 250))]
        + [(f"dlaudit, default batch ({default})", dl(None))]
        + [(f"dlaudit, batch {s}", dl(s)) for s in sizes],
        args.repeat,
    )
    _report(f"Batch size (PGD-{steps} L-inf eps {eps}, every step; ratios to torchattacks)", rows)
    print(f"# choosing the default took {choose * 1000:.1f} ms (one forward pass of 4 inputs)")


def processes(model_path: Path, data_path: Path, args: argparse.Namespace) -> None:
    me = [str(Path(__file__).resolve())]
    common = [
        "--model",
        str(model_path),
        "--data",
        str(data_path),
        "--eps",
        str(args.eps),
        "--steps",
        str(args.steps),
        "--batch",
        str(args.batch),
    ]
    env0 = {**os.environ, "DLAUDIT_MALLOC_TUNING": "0"}
    env1 = {k: v for k, v in os.environ.items() if k != "DLAUDIT_MALLOC_TUNING"}
    env1["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env1.get("PYTHONPATH")]))
    env0["PYTHONPATH"] = env1["PYTHONPATH"]
    print(
        f"\n## Separate processes (PGD-{args.steps} L-inf eps {args.eps}, {args.n} inputs; median of {args.repeat} run(s) each)"
    )
    r = args.repeat
    off = run_child([*me, "--child", "loop", *common], env0, r)
    on = run_child([*me, "--child", "loop", *common], env1, r)
    print(f"hand-written loop, glibc default malloc : {off['seconds']:.2f} s  ({off['malloc']})")
    print(
        f"hand-written loop, dlaudit malloc tuning: {on['seconds']:.2f} s  ({on['malloc']}) -> {off['seconds'] / on['seconds']:.2f}x faster"
    )
    ta = run_child([*me, "--child", "torchattacks", *common], env1, r)
    cli = [
        "-m",
        "dlaudit",
        "attack",
        str(model_path),
        "--data",
        str(data_path),
        "--attack",
        "pgd",
        "--norm",
        "linf",
        "--eps",
        str(args.eps),
        "--steps",
        str(args.steps),
        "-q",
    ]
    results = {}
    for label, extra, env in (
        ("dlaudit attack (defaults)", [], env1),
        ("dlaudit attack --batch-size B --no-early-stop", ["--batch-size", str(args.batch), "--no-early-stop"], env1),
        ("  same, DLAUDIT_MALLOC_TUNING=0", ["--batch-size", str(args.batch), "--no-early-stop"], env0),
    ):
        out_json = Path(tempfile.mkdtemp()) / "a.json"
        res = run_child([*cli, *extra, "--json", str(out_json)], env, r, out_json)
        payload = res["payload"]
        results[label] = (
            res["seconds"],
            res["wall"],
            payload["metrics"][f"robustness.pgd_linf.acc@{args.eps:g}"],
            payload["params"]["batch_size"],
        )
    print(
        f"torchattacks script (batch {args.batch})        : attack {ta['seconds']:.2f} s, process {ta['wall']:.2f} s, robust acc {ta['accuracy']:.4f}"
    )
    for label, (sec, wall, acc, bs) in results.items():
        print(
            f"{label:<44}: attack {sec:.2f} s, process {wall:.2f} s, robust acc {acc:.4f}, batch {bs} -> {ta['seconds'] / sec:.2f}x torchattacks (attack time), {ta['wall'] / wall:.2f}x (process)"
        )
    RESULTS["cli"] = ta["seconds"] / results["dlaudit attack (defaults)"][0]


def training(args: argparse.Namespace, data_path: Path | None = None) -> None:
    """One epoch of adversarial training through dlaudit's trainer vs a hand-written loop.

    Round 1's configuration: the digits CNN on 8x8 inputs, batch 32, PGD-7 at eps 0.2 (what the
    target is judged on); then the seed CNN on the 28x28 digits at batch 128.
    """
    from dlaudit.data import load_splits
    from dlaudit.models import build_model
    from dlaudit.robust.attacks import speed
    from dlaudit.robust.training import AdversarialTraining
    from dlaudit.train.trainer import TrainConfig, fit

    eps = 0.2
    reps = max(5, args.repeat)

    def run(train: Any, shape: tuple[int, ...], batch: int) -> dict[str, tuple[float, float]]:
        """Per row: a model and optimizer built once, one untimed warm-up epoch (it compiles, for
        ``--compile``), then the median of ``reps`` timed epochs, rows taking turns."""
        config = TrainConfig(epochs=1, lr=3e-3, batch_size=batch, seed=0)

        def ours(method: str | None, steps: int | None = None, compile: bool = False) -> Callable[[], float]:
            torch.manual_seed(0)
            module = build_model("cnn", shape, 10)
            loss = None if method is None else AdversarialTraining(method, eps, steps=steps).loss()

            def go() -> float:
                start = time.perf_counter()
                with speed.using(compile=compile):
                    fit(module, train, config, device="cpu", **({"loss_fn": loss} if loss else {}))
                return time.perf_counter() - start

            go()
            return go

        def hand(method: str | None, steps: int = 1) -> Callable[[], float]:
            torch.manual_seed(0)
            module = build_model("cnn", shape, 10)
            opt = torch.optim.Adam(module.parameters(), lr=3e-3)
            gen = torch.Generator().manual_seed(0)
            alpha = 1.25 * eps if method == "fgsm" else 2.5 * eps / steps

            def go() -> float:
                start = time.perf_counter()
                order = torch.randperm(len(train), generator=gen)
                for s in range(0, len(train), batch):
                    xb, yb = train.x[order[s : s + batch]], train.y[order[s : s + batch]]
                    if method is not None:
                        module.eval()
                        xa = (xb + torch.empty_like(xb).uniform_(-eps, eps)).clamp(0, 1)
                        for _ in range(steps):
                            xa.requires_grad_(True)
                            (g,) = torch.autograd.grad(F.cross_entropy(module(xa), yb), xa)
                            xa = torch.min(torch.max(xa.detach() + alpha * g.sign(), xb - eps), xb + eps).clamp(0, 1)
                        module.train()
                        xb = xa.detach()
                    loss = F.cross_entropy(module(xb), yb)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                return time.perf_counter() - start

            go()
            return go

        fns = {
            "standard": (hand(None), ours(None)),
            "PGD-7 (Madry)": (hand("pgd", 7), ours("pgd", 7)),
            "PGD-7, --compile": (hand("pgd", 7), ours("pgd", 7, compile=True)),
            "fast FGSM (Wong)": (hand("fgsm"), ours("fgsm")),
        }
        times: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in fns}
        for _ in range(reps):
            for k, (h, o) in fns.items():
                times[k][0].append(h())
                times[k][1].append(o())
        return {k: (statistics.median(h), statistics.median(o)) for k, (h, o) in times.items()}

    configs = [("digits CNN, 8x8, batch 32 (round 1's)", load_splits("digits").train, (1, 8, 8), 32)]
    if data_path is not None:
        configs.append(("seed CNN, 28x28 digits, batch 128", load_splits(str(data_path)).train, (1, 28, 28), 128))
    for title, train, shape, batch in configs:
        res = run(train, shape, batch)
        std = res["standard"][1]
        print(f"\n## Adversarial training, one epoch: {title} (median of {reps})")
        print(f"{'':<22} {'hand loop':>10} {'dlaudit':>10} {'ratio':>6} {'x standard epoch':>17}")
        for name, (h, o) in res.items():
            print(f"{name:<22} {h:10.3f} {o:10.3f} {o / h:6.2f} {o / std:17.1f}")
        if "round 1" in title:
            RESULTS["training"] = res["PGD-7 (Madry)"][1] / res["PGD-7 (Madry)"][0]
            RESULTS["training_compile"] = res["PGD-7, --compile"][1] / res["PGD-7, --compile"][0]


def targets() -> None:
    """Issue 15's targets, each met or missed by how much."""
    print("\n## Targets (issue 15)")

    def line(label: str, value: float | None, goal: float, below: bool = True, unit: str = "x") -> None:
        if value is None:
            print(f"{label:<70} not measured (part skipped)")
            return
        ok = value <= goal if below else value >= goal
        how = "met" if ok else f"MISSED by {abs(value - goal):.2f}{unit}"
        sign = "<=" if below else ">="
        print(f"{label:<70} {value:5.2f}{unit} (target {sign} {goal:.2f}{unit}): {how}")

    same, ta = RESULTS.get("same"), RESULTS.get("torchattacks")
    line("PGD-40 same semantics, batch 250, x hand-written loop", same, 0.80)
    if same is not None and ta is not None:
        print(
            f"{'  ... and below torchattacks in the same run':<70} {same:5.2f}x vs {ta:.2f}x: {'met' if same < ta else 'MISSED'}"
        )
    line("PGD-40 same semantics with --compile, x hand-written eager loop", RESULTS.get("same_compile"), 0.60)
    if RESULTS.get("compile_warmup") is not None:
        print(f"{'  (compiling itself, paid once per model and process)':<70} {RESULTS['compile_warmup']:.2f} s")
    line("adversarial training epoch (PGD-7) through the trainer, x hand loop", RESULTS.get("training"), 0.70)
    line("  same with --compile", RESULTS.get("training_compile"), 0.70)
    line("dlaudit attack (defaults) vs a torchattacks script, separate processes", RESULTS.get("cli"), 5.0, below=False)


if __name__ == "__main__":
    main()
