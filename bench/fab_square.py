"""Agreement benchmark: dlaudit's FAB-T and Square Attack against the official AutoAttack code.

Same model, same inputs, same settings, one process: robust accuracy and seconds of
``dlaudit.robust.attacks.fab.fab`` against ``pyautoattack``'s ``FABAttack_PT`` (targeted, 9
target classes, one restart) and of ``dlaudit.robust.attacks.square.square`` against its
``SquareAttack`` (margin loss, ``p_init`` 0.8, one restart), L-inf and L2.

Model: the seed CNN trained for 3 epochs on scikit-learn's digits upsampled to
28x28 (as in ``bench/attacks.py``); the attacked inputs are N held-out images.
A sample counts as robust when it is classified correctly after the attack, or
(FAB, which minimises the perturbation) when the adversarial example found is
farther than eps.

Square runs twice on our side: with its default (square corners drawn from every
position) and with ``official_range=True`` (the official code's half-open range of
positions), which is the like-for-like comparison; its random draws differ from
the official code's, so expect agreement to a few points, not to the sample.

Usage::

    python bench/fab_square.py                  # N=200, FAB 100 steps, Square 1,000 queries
    python bench/fab_square.py --n 500 --queries 5000

Timings on a shared machine are noisy: quote the ratios.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def _norm_of(d: torch.Tensor, norm: str) -> torch.Tensor:
    flat = d.flatten(1)
    return flat.abs().amax(1) if norm == "linf" else flat.norm(dim=1)


def _robust(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, x_adv: torch.Tensor, eps: float, norm: str, bs: int
) -> float:
    ok = []
    with torch.no_grad():
        for s in range(0, len(x), bs):
            xa, xc, yc = x_adv[s : s + bs], x[s : s + bs], y[s : s + bs]
            ok.append((model(xa).argmax(1) == yc) | (_norm_of(xa - xc, norm) > eps + 1e-6))
    return torch.cat(ok).float().mean().item()


def _timed(fn: Callable[..., torch.Tensor], *args: object) -> tuple[torch.Tensor, float]:
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def _batched(
    attack: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    bs: int,
) -> torch.Tensor:
    return torch.cat(
        [attack(x[s : s + bs], y[s : s + bs], torch.arange(s, min(s + bs, len(x)))) for s in range(0, len(x), bs)]
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200, help="attacked inputs (default 200)")
    ap.add_argument("--batch", type=int, default=250)
    ap.add_argument("--eps", type=float, default=0.1, help="L-inf budget (default 0.1)")
    ap.add_argument("--eps-l2", type=float, default=1.0, help="L2 budget (default 1.0)")
    ap.add_argument("--steps", type=int, default=100, help="FAB iterations (default 100, AutoAttack's)")
    ap.add_argument(
        "--queries", type=int, default=1000, help="Square iterations (default 1,000; AutoAttack uses 5,000)"
    )
    ap.add_argument("--norms", default="linf,l2")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))

    from attacks import seed_subject  # bench/attacks.py: the 28x28 digits and the seed CNN

    bundle, model, x, y, _, _ = seed_subject(args.n)
    with torch.no_grad():
        clean = (model(x).argmax(1) == y).float().mean().item()
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}")
    print(f"# seed CNN on {args.n} digits upsampled to 1x28x28, clean accuracy {clean:.3f}; batch {args.batch}")
    print(f"# FAB-T {args.steps} steps, 9 targets, 1 restart; Square {args.queries} queries, p_init 0.8, 1 restart")
    print(
        f"\n{'attack':<10} {'norm':<5} {'eps':>5} {'implementation':<34} {'seconds':>8} {'x official':>10} {'robust acc':>10}"
    )

    for norm in args.norms.split(","):
        compare(model, x, y, norm, args.eps if norm == "linf" else args.eps_l2, args)


def compare(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, norm: str, eps: float, args: argparse.Namespace
) -> None:
    """One norm: the official FAB-T and Square, then ours, on the same inputs and batches."""
    from pyautoattack.fab_pt import FABAttack_PT
    from pyautoattack.square import SquareAttack

    from dlaudit.robust.attacks.fab import fab
    from dlaudit.robust.attacks.square import square

    bs, official_norm = args.batch, ("Linf" if norm == "linf" else "L2")

    def row(attack: str, name: str, sec: float, adv: torch.Tensor, base: float) -> None:
        acc = _robust(model, x, y, adv, eps, norm, bs)
        print(f"{attack:<10} {norm:<5} {eps:5.2f} {name:<34} {sec:8.2f} {sec / base:10.2f} {acc:10.4f}")

    def ours_fab(early_stop: bool) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
        return lambda a, b, i: fab(model, a, b, eps=eps, norm=norm, steps=args.steps, index=i, early_stop=early_stop)[0]

    def ours_square(official_range: bool) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
        return lambda a, b, i: square(model, a, b, eps=eps, norm=norm, queries=args.queries, seed=args.seed, index=i,
                                      official_range=official_range)[0]  # fmt: skip

    fab_off = FABAttack_PT(model, norm=official_norm, n_restarts=1, n_iter=args.steps, eps=eps, seed=args.seed,
                           targeted=True, n_target_classes=9)  # fmt: skip
    adv, base = _timed(_batched, lambda a, b, _: fab_off.perturb(a, b), x, y, bs)
    row("FAB-T", "pyautoattack FABAttack_PT", base, adv, base)
    for name, early_stop in (("dlaudit fab", True), ("dlaudit fab (early_stop=False)", False)):
        adv, sec = _timed(_batched, ours_fab(early_stop), x, y, bs)
        row("FAB-T", name, sec, adv, base)

    sq_off = SquareAttack(
        model, norm=official_norm, n_queries=args.queries, eps=eps, p_init=0.8, n_restarts=1, seed=args.seed
    )
    adv, base = _timed(_batched, lambda a, b, _: sq_off.perturb(a, b), x, y, bs)
    row("Square", "pyautoattack SquareAttack", base, adv, base)
    for name, official_range in (("dlaudit square", False), ("dlaudit square (official_range)", True)):
        adv, sec = _timed(_batched, ours_square(official_range), x, y, bs)
        row("Square", name, sec, adv, base)


if __name__ == "__main__":
    main()
