"""Benchmark: ``dlaudit report`` on a real user's model, torchvision's resnet18, in every format it is saved in.

One run, each report in its own process; wall time and peak RSS side by side. The model:
resnet18 (10 classes, 3x32x32 inputs, CIFAR normalisation given as ``--mean``/``--std``),
trained for a few epochs on seeded synthetic CIFAR-sized images whose class sets the
colour and position of a blob (so it reaches high accuracy and the attacks have correctly
classified inputs to work on, as with a real model). The data: N held-out images (200 by
default) written as CIFAR-10 "python version" batches, read with ``--data cifar10``.

Formats (the same weights in each):

- ``torchscript``: ``torch.jit.trace`` (sidecar card with the input shape and normalisation);
- ``pt2 static``: ``torch.export.export`` with an example batch of 1 and no dynamic shapes,
  the program most people write first (served by torch.vmap over chunks of 1);
- ``pt2 dynamic``: exported with ``dynamic_shapes=({0: torch.export.Dim("batch")},)``;
- ``--arch``: ``torch.save(model.state_dict())`` loaded with ``--arch torchvision:resnet18``;
- ``checkpoint``: the same weights as a dlaudit checkpoint (``dlaudit.save_model``), the baseline of
  the ``x ckpt`` column;
- ``onnx``: ``torch.onnx.export`` (dynamo, dynamic batch) of the normalised model, converted by
  dlaudit and checked against onnxruntime;
- ``hf``: a Hugging Face folder (``save_pretrained``) of ``ResNetForImageClassification`` with the
  torchvision weights mapped into it (the same function: checked before the run), the CIFAR
  normalisation in its ``preprocessor_config.json``.

For each: ``dlaudit report --fast`` and the full report (``--no-fast``), with the seconds
of each section from the JSON report, so the table shows which section dominates. Targets
(issue 14): ``pt2 --fast`` at most 1.2x the TorchScript time; the full report on 200 inputs
under 10 minutes on 2 cores with peak RSS under 4 GB. Issue 23: ``onnx`` and ``hf --fast`` at most
1.2x the checkpoint's time (conversion is a one-off cost of seconds).

Usage::

    python bench/realmodels.py                      # N=200, fast and full, every format (about 30 min on 1 thread)
    python bench/realmodels.py --quick              # N=40, --fast only: checks that everything runs
    python bench/realmodels.py --only fast --threads 2
    python bench/realmodels.py --only fast --formats checkpoint,onnx,hf   # the formats of issue 23

Peak RSS is the child's ``ru_maxrss`` (``os.wait4``). The machine's load average is printed:
on a shared machine quote ratios, not seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torchvision
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
MEAN = [0.4914, 0.4822, 0.4465]
STD = [0.2470, 0.2435, 0.2616]
FORMATS = ("torchscript", "pt2 static", "pt2 dynamic", "--arch", "checkpoint", "onnx", "hf")


# -- the model and data (plain torch; the reports run in child processes) ----------------------


def synthetic_cifar(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uint8 images (N, 3, 32, 32): noise plus a coloured blob whose colour and place depend on the class."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 10
    rng.shuffle(y)
    x = rng.normal(0.45, 0.18, (n, 3, 32, 32))
    yy, xx = np.mgrid[:32, :32]
    for i, c in enumerate(y):
        cy, cx = 8 + 16 * (c // 5), 5 + 5.5 * (c % 5)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 18.0)
        colour = np.array([(c * 37) % 100, (c * 59) % 100, (c * 83) % 100]) / 100.0 - 0.5
        x[i] += 0.8 * colour[:, None, None] * blob
    return (np.clip(x, 0, 1) * 255).astype(np.uint8), y.astype(np.int64)


def train_resnet(epochs: int, n_train: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = torchvision.models.resnet18(num_classes=10)
    x, y = synthetic_cifar(n_train, seed)
    xt = (torch.from_numpy(x).float() / 255.0 - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]
    yt = torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(xt))
        for start in range(0, len(xt), 64):
            idx = perm[start : start + 64]
            opt.zero_grad()
            nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    return model.eval()


class _Normalised(nn.Module):
    """What a user ships in TorchScript or torch.export: the normalisation inside the model."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(MEAN)[None, :, None, None])
        self.register_buffer("std", torch.tensor(STD)[None, :, None, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x - self.mean) / self.std)


def write_cifar(root: Path, n_test: int, seed: int) -> None:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(1, 6):
        x, y = synthetic_cifar(40, seed + 100 + i)
        batch = {"data": x.reshape(len(x), -1), "labels": y.tolist()}
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(batch, protocol=2))
    x, y = synthetic_cifar(n_test, seed + 1)
    (folder / "test_batch").write_bytes(pickle.dumps({"data": x.reshape(len(x), -1), "labels": y.tolist()}, protocol=2))


def hf_resnet18(model: nn.Module, folder: Path) -> None:
    """``model`` (torchvision's resnet18) as a Hugging Face ``ResNetForImageClassification`` folder, weights mapped
    key by key (the two are the same network), with the CIFAR normalisation in its processor."""
    from transformers import ConvNextImageProcessor, ResNetConfig, ResNetForImageClassification

    config = ResNetConfig(
        num_channels=3,
        embedding_size=64,
        hidden_sizes=[64, 128, 256, 512],
        depths=[2, 2, 2, 2],
        layer_type="basic",
        hidden_act="relu",
        num_labels=10,
    )
    hf = ResNetForImageClassification(config).eval()

    def key(name: str) -> str:
        name = name.replace("conv1.", "resnet.embedder.embedder.convolution.", 1) if name.startswith("conv1.") else name
        name = name.replace("bn1.", "resnet.embedder.embedder.normalization.", 1) if name.startswith("bn1.") else name
        name = name.replace("fc.", "classifier.1.", 1) if name.startswith("fc.") else name
        if name.startswith("layer"):
            stage, block, rest = name[5:].split(".", 2)
            for a, b in (
                ("conv1.", "layer.0.convolution."),
                ("bn1.", "layer.0.normalization."),
                ("conv2.", "layer.1.convolution."),
                ("bn2.", "layer.1.normalization."),
                ("downsample.0.", "shortcut.convolution."),
                ("downsample.1.", "shortcut.normalization."),
            ):
                if rest.startswith(a):
                    rest = b + rest[len(a) :]
            name = f"resnet.encoder.stages.{int(stage) - 1}.layers.{block}.{rest}"
        return name

    hf.load_state_dict({key(k): v for k, v in model.state_dict().items()}, strict=True)
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(hf(pixel_values=x).logits, model(x), atol=1e-5), "the mapped weights are not resnet18"
    hf.save_pretrained(folder)
    ConvNextImageProcessor(size={"shortest_edge": 32}, crop_pct=1.0, image_mean=MEAN, image_std=STD).save_pretrained(
        folder
    )


def make_models(work: Path, args: argparse.Namespace) -> dict[str, list[str]]:
    """Write the model in every format; returns each one's model arguments for ``dlaudit report``."""
    model = train_resnet(args.epochs, args.train, args.seed)
    wrapped = _Normalised(model).eval()
    example = torch.rand(1, 3, 32, 32)
    card = {"input_shape": [3, 32, 32], "num_classes": 10, "value_range": [0, 1]}
    torch.save(model.state_dict(), work / "resnet18.pt")
    torch.jit.save(torch.jit.trace(wrapped, example), work / "resnet18_ts.pt")
    torch.export.save(torch.export.export(wrapped, (example,)), work / "resnet18_static.pt2")
    dyn = torch.export.export(wrapped, (torch.rand(4, 3, 32, 32),), dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(dyn, work / "resnet18_dynamic.pt2")
    for name in ("resnet18_ts", "resnet18_static", "resnet18_dynamic"):
        (work / f"{name}.card.json").write_text(json.dumps(card))
    arch = ["--arch", "torchvision:resnet18", "--num-classes", "10", "--mean", ",".join(map(str, MEAN))]
    sys.path.insert(0, str(ROOT))
    import dlaudit

    bundle = dlaudit.load_model(
        work / "resnet18.pt", arch="torchvision:resnet18", num_classes=10, input_shape=(3, 32, 32), mean=MEAN, std=STD
    )
    dlaudit.save_model(bundle, work / "resnet18_ckpt.pt")
    dyn_onnx = {"dynamic_shapes": ({0: torch.export.Dim("batch")},)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapped, (torch.rand(4, 3, 32, 32),), str(work / "resnet18.onnx"), dynamo=True, **dyn_onnx)
    hf_resnet18(model, work / "resnet18-hf")
    return {
        "checkpoint": [str(work / "resnet18_ckpt.pt")],
        "onnx": [str(work / "resnet18.onnx")],
        "hf": [str(work / "resnet18-hf")],
        "torchscript": [str(work / "resnet18_ts.pt")],
        "pt2 static": [str(work / "resnet18_static.pt2")],
        "pt2 dynamic": [str(work / "resnet18_dynamic.pt2")],
        "--arch": [str(work / "resnet18.pt"), *arch, "--std", ",".join(map(str, STD))],
    }


# -- one report in its own process ------------------------------------------------------------


def run_report(model_args: list[str], data_dir: Path, fast: bool, out: Path, threads: int) -> dict:
    cmd = [sys.executable, "-m", "dlaudit", "report", *model_args, "--data", "cifar10", "--data-dir", str(data_dir)]
    cmd += ["--fast" if fast else "--no-fast", "--quiet", "-o", str(out.with_suffix(".html")), "--json", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 1) or not out.is_file():
        print(f"#   failed (exit {proc.returncode}): {output.strip().splitlines()[-1:]}")
        return {"wall": wall, "rss_mb": usage.ru_maxrss / 1024, "sections": {}, "status": {}}
    report = json.loads(out.read_text())
    return {
        "wall": wall,
        "rss_mb": usage.ru_maxrss / 1024,  # Linux: kilobytes
        "sections": report["provenance"]["seconds_per_section"],
        "status": {s["name"]: s["status"] for s in report["sections"]},
        "accuracy": report["metrics"].get("performance.accuracy"),
        "load": report["provenance"]["model"].get("load", {}),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200, help="held-out images audited")
    ap.add_argument("--train", type=int, default=2000, help="synthetic training images")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of each report")
    ap.add_argument("--only", choices=("fast", "full", "both"), default="both")
    ap.add_argument("--formats", default=",".join(FORMATS), help="comma-separated: " + ", ".join(FORMATS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="N=40, --fast only")
    ap.add_argument("--workdir", default=None, help="where the models and reports go (default: a temporary folder)")
    args = ap.parse_args()
    if args.quick:
        args.n, args.only, args.train, args.epochs = 40, "fast", 500, 1
    torch.set_num_threads(args.threads)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="dlaudit-realmodels-"))
    work.mkdir(parents=True, exist_ok=True)
    print(
        f"# dlaudit report on resnet18 (3x32x32, 10 classes), N={args.n}; {args.threads} thread(s) per report; "
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; torch {torch.__version__}"
    )
    start = time.perf_counter()
    models = make_models(work, args)
    write_cifar(work / "data", args.n, args.seed)
    print(f"# trained and saved in {time.perf_counter() - start:.1f} s; files in {work}")
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    modes = {"fast": [True], "full": [False], "both": [True, False]}[args.only]
    rows = []
    for fast in modes:
        for fmt in formats:
            res = run_report(
                models[fmt], work / "data", fast, work / f"{fmt.replace(' ', '_').strip('-')}-{fast}.json", args.threads
            )
            rows.append((fmt, fast, res))
            secs = ", ".join(f"{k} {v:.1f}" for k, v in res["sections"].items())
            for kind, notes in res.get("load", {}).items():  # e.g. the ONNX conversion's agreement with onnxruntime
                print(f"#   {fmt}: {kind} " + ", ".join(f"{k} {v}" for k, v in notes.items()))
            print(
                f"#   {fmt:<12} {'--fast' if fast else 'full':<6} {res['wall']:7.1f} s  {res['rss_mb']:6.0f} MB  ({secs})"
            )
    print(f"\n## dlaudit report, resnet18, {args.n} CIFAR-sized inputs, {args.threads} thread(s)")
    print(
        f"{'format':<12} {'mode':<6} {'wall s':>7} {'x TS':>5} {'x ckpt':>6} {'peak RSS MB':>11} {'performance':>11} {'explain':>8} {'robustness':>10} {'fairness':>8}  accuracy"
    )
    base = {fast: r["wall"] for fmt, fast, r in rows if fmt == "torchscript"}
    ckpt = {fast: r["wall"] for fmt, fast, r in rows if fmt == "checkpoint"}
    for fmt, fast, r in rows:
        s = r["sections"]
        ratio = r["wall"] / base[fast] if fast in base else float("nan")
        to_ckpt = r["wall"] / ckpt[fast] if fast in ckpt else float("nan")
        acc = r.get("accuracy")
        print(
            f"{fmt:<12} {'fast' if fast else 'full':<6} {r['wall']:7.1f} {ratio:5.2f} {to_ckpt:6.2f} {r['rss_mb']:11.0f} "
            + " ".join(
                f"{s.get(k, float('nan')):{w}.1f}"
                for k, w in (("performance", 11), ("explain", 8), ("robustness", 10), ("fairness", 8))
            )
            + f"  {acc if acc is None else round(acc, 4)}"
        )
    print(f"# load average at the end {os.getloadavg()[0]:.2f}")
    bad = [(f, fast, st) for f, fast, r in rows for st in [r["status"]] if any(v == "error" for v in st.values())]
    if bad:
        print(f"# sections that failed: {bad}")


if __name__ == "__main__":
    main()
