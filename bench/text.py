"""Text models: token IG through dlaudit against captum's direct call, and a full report's time.

1. Integrated Gradients on the embedding layer of the reference TextCNN (synthetic-text, seed 0):
   ``dlaudit.explain.tokens.token_ig`` (texts and steps batched together) against captum's
   ``LayerIntegratedGradients.attribute`` at the same steps and baseline (all PAD), on the same
   texts: the largest difference and the time ratio (best of ``--repeat`` runs each).
2. SHAP Partition with a text masker on 8 texts (``explain`` with ``methods="shap"``, not in the
   default methods): its additivity error (word values + base value - probability) and time,
   which includes numba compiling shap's partition code once per process.
3. ``dlaudit report`` of that model on its 500 held-out texts (every section, full settings
   unless ``--fast``): the wall time.

Usage::

    python bench/text.py                 # 64 texts, 32 steps, a full report (a minute or two on 2 cores)
    python bench/text.py --fast          # the report with --fast

Prints a Markdown table. Timings depend on the machine and its load: quote ratios from one run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch
from captum.attr import LayerIntegratedGradients

import dlaudit
from dlaudit.explain.tokens import token_ig


def _best(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=64)
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fast", action="store_true", help="run the report with --fast")
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        bundle = dlaudit.train("textcnn", "synthetic-text", seed=0, device="cpu")
        train_s = time.perf_counter() - start
        path = Path(tmp) / "t.pt"
        dlaudit.save_model(bundle, path)
        bundle = dlaudit.load_model(path, device="cpu")
        data = dlaudit.load_data(bundle=bundle).head(args.texts)
        module, ids = bundle.module, data.x
        with torch.no_grad():
            target = module(ids).argmax(dim=1)
        pad = bundle.tokenizer.pad_id
        ours_s, (ours, _) = _best(lambda: token_ig(module, ids, target, pad_id=pad, steps=args.steps), args.repeat)
        lig = LayerIntegratedGradients(module, module.embedding)
        theirs_s, theirs = _best(
            lambda: lig.attribute(ids, baselines=torch.full_like(ids, pad), target=target, n_steps=args.steps),
            args.repeat,
        )
        diff = float((ours - theirs.sum(dim=-1).detach()).abs().max())
        start = time.perf_counter()
        shap_rep = dlaudit.audit(bundle, data.head(8), checks="explain", params={"explain": {"methods": "shap"}})
        shap_s = time.perf_counter() - start
        additivity = shap_rep.metrics.get("explain.shap.additivity_error")
        start = time.perf_counter()
        rep = dlaudit.run_report(path, None, fast=args.fast, device="cpu")
        report_s = time.perf_counter() - start
    print("| what | value |\n|---|---|")
    print(f"| training textcnn on synthetic-text (1,500 texts) | {train_s:.1f} s |")
    print(f"| token IG, {args.texts} texts x {args.steps} steps: dlaudit | {ours_s * 1000:.1f} ms |")
    print(f"| token IG, same: captum LayerIntegratedGradients | {theirs_s * 1000:.1f} ms |")
    print(f"| dlaudit / captum time | {ours_s / theirs_s:.2f} |")
    print(f"| largest difference of the attributions | {diff:.2e} |")
    print(f"| SHAP Partition (text masker), 8 texts: additivity error | {additivity:.1e} |")
    print(f"| SHAP Partition, 8 texts: time (numba compilation included) | {shap_s:.1f} s |")
    print(
        f"| dlaudit report{' --fast' if args.fast else ''} on {len(dlaudit.load_data(bundle=bundle))} texts | {report_s:.1f} s |"
    )
    print(f"| sections | {', '.join(f'{s.name}: {s.status}' for s in rep.sections)} |")


if __name__ == "__main__":
    main()
