"""A 4-layer, 256-wide BERT-style text classifier: token IG against captum, and a full ``dlaudit report``.

The model is built from a ``BertConfig`` (4 layers, hidden 256, 4 heads, intermediate 1024,
128 positions), with a WordPiece tokenizer trained locally with ``tokenizers`` on
synthetic-text, briefly fine-tuned on synthetic-text (``--train-steps``; 0 keeps the random
weights) and written with ``save_pretrained``: nothing is downloaded.

1. Token Integrated Gradients on its word embeddings: ``dlaudit.explain.tokens.token_ig``
   against captum's ``LayerIntegratedGradients.attribute`` (same steps, all-PAD baseline),
   best of ``--repeat`` runs each, interleaved; the largest difference of the attributions.
2. ``dlaudit report FOLDER --data texts.csv --text-column text --target label --sensitive identity``
   on ``--texts`` texts (200), run as a user runs it (a subprocess of the CLI): its wall time,
   with its estimate and progress lines (stderr) kept in ``--log``.

Usage::

    OMP_NUM_THREADS=2 python bench/text_bert.py                    # IG on 16 texts x 32 steps, then the report
    OMP_NUM_THREADS=2 python bench/text_bert.py --no-report        # IG only

Prints a Markdown table. Timings depend on the machine and its load: quote ratios from one run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch

import dlaudit
from dlaudit.explain.tokens import find_embedding, token_ig
from dlaudit.text.synthetic import synthetic_text_frame
from tests.formats.hf_folders import bert_classifier, wordpiece_tokenizer  # the tests' BERT builders, larger


def build(folder: Path, *, train_steps: int, seed: int = 0) -> tuple[float, float]:
    """Write the BERT folder; return (seconds to build and train, training accuracy of the last steps)."""
    start = time.perf_counter()
    frame = synthetic_text_frame(2000, seed=seed)
    hf_tok = wordpiece_tokenizer(frame["text"].tolist(), vocab_size=2000, max_length=64, train=True)
    model = bert_classifier(
        hf_tok, ("non-toxic", "toxic"), hidden=256, layers=4, heads=4, intermediate=1024, positions=128, seed=seed
    )
    acc = float("nan")
    if train_steps:
        opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
        texts, labels = frame["text"].tolist(), torch.tensor(frame["label"].to_numpy())
        g = torch.Generator().manual_seed(seed)
        model.train()
        hits = []
        for _ in range(train_steps):
            rows = torch.randint(0, len(texts), (32,), generator=g)
            batch = hf_tok([texts[i] for i in rows], padding=True, truncation=True, max_length=64, return_tensors="pt")
            out = model(**batch, labels=labels[rows])
            opt.zero_grad()
            out.loss.backward()
            opt.step()
            hits.append(float((out.logits.argmax(1) == labels[rows]).float().mean()))
        acc = sum(hits[-10:]) / len(hits[-10:])
    model.eval().save_pretrained(folder)
    hf_tok.save_pretrained(folder)
    return time.perf_counter() - start, acc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=200, help="texts of the report")
    parser.add_argument("--ig-texts", type=int, default=16)
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--train-steps", type=int, default=60)
    parser.add_argument("--no-report", action="store_true")
    parser.add_argument("--log", type=Path, default=Path("bench_text_bert.log"))
    parser.add_argument("--keep", type=Path, default=None, help="write the folder and texts.csv here (kept)")
    args = parser.parse_args()
    from captum.attr import LayerIntegratedGradients

    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.keep or Path(scratch)
        tmp.mkdir(parents=True, exist_ok=True)
        folder = Path(tmp) / "bert-4x256"
        build_s, acc = build(folder, train_steps=args.train_steps)
        rows.append(
            (
                f"build + {args.train_steps} training steps (batch 32)",
                f"{build_s:.1f} s (last-10-step train acc {acc:.2f})",
            )
        )
        bundle = dlaudit.load_model(folder, device="cpu")
        csv = Path(tmp) / "texts.csv"
        synthetic_text_frame(args.texts, seed=7).to_csv(csv, index=False)
        data = dlaudit.load_data(csv, bundle=bundle, split="all", text_column="text", target="label")
        module, ids = bundle.module, data.x[: args.ig_texts]
        with torch.no_grad():
            target = module(ids).argmax(dim=1)
        pad = bundle.tokenizer.pad_id
        lig = LayerIntegratedGradients(module, find_embedding(module))
        ours_s = theirs_s = float("inf")
        for _ in range(args.repeat):  # interleaved, best of each: load changes hit both
            start = time.perf_counter()
            ours, _ = token_ig(module, ids, target, pad_id=pad, steps=args.steps)
            ours_s = min(ours_s, time.perf_counter() - start)
            start = time.perf_counter()
            theirs = lig.attribute(ids, baselines=torch.full_like(ids, pad), target=target, n_steps=args.steps)
            theirs_s = min(theirs_s, time.perf_counter() - start)
        diff = float((ours - theirs.sum(dim=-1).detach()).abs().max())
        scale = float(ours.abs().max())
        rows += [
            (f"token IG, {len(ids)} texts x {args.steps} steps ({ids.shape[1]} tokens): dlaudit", f"{ours_s:.2f} s"),
            ("token IG, same: captum LayerIntegratedGradients", f"{theirs_s:.2f} s"),
            ("dlaudit / captum time", f"{ours_s / theirs_s:.2f}"),
            ("largest difference of the attributions (largest attribution)", f"{diff:.1e} ({scale:.1e})"),
        ]
        if not args.no_report:
            cmd = [sys.executable, "-m", "dlaudit", "report", str(folder), "--data", str(csv), "--text-column", "text"]
            cmd += ["--target", "label", "--sensitive", "identity", "-o", str(Path(tmp) / "r.html")]
            cmd += ["--json", str(Path(tmp) / "r.json")]
            start = time.perf_counter()
            run = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
            report_s = time.perf_counter() - start
            args.log.write_text(run.stderr + run.stdout)
            estimates = [line for line in run.stderr.splitlines() if "estimated" in line]
            rows.append((f"dlaudit report on {args.texts} texts (exit {run.returncode})", f"{report_s:.0f} s"))
            rows += [("  estimate printed first", e.removeprefix("dlaudit: ")) for e in estimates]
    print("| what | value |\n|---|---|")
    for what, value in rows:
        print(f"| {what} | {value} |")


if __name__ == "__main__":
    main()
