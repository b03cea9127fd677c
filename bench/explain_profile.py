"""Where the time of Integrated Gradients, gradient SHAP and occlusion goes: dlaudit against its peers.

The speed targets of ``bench/explain.py`` part 6 (dlaudit at most 0.5x captum's Integrated Gradients with
its best ``internal_batch_size``, 0.5x shap's ``GradientExplainer`` with ``ranked_outputs=1``, 0.5x captum's
``Occlusion`` with its best ``perturbations_per_eval``) ask for half the time of a peer that runs the same
model the same number of times. This script profiles each pair with ``torch.profiler`` (CPU, one thread) on
the models of part 6 and sorts every operator's own time into four groups:

- **model**: convolutions and dense layers forward, and every backward kernel (only the model's layers
  have gradients here: the convolutions', batch norm's, ReLU's and pooling's backward);
- **layers**: batch norm, ReLU and pooling forward;
- **other**: every other operator: the explanation's own arithmetic (interpolating paths, scaling, noise,
  masks), residual additions, copies and views, autograd's bookkeeping;
- **python**: the rest of the wall time, outside any operator (the profiler's own overhead included).

If the model's share is nearly all of both sides' time and the counts of model calls match, no batching can
bring one under half the other: the work is the same forward and backward passes (at most their batch
shapes differ). Then only doing less of it moves the ratio: folding batch norm into the convolutions (which
``dlaudit.explain.fast`` does for occlusion, LIME and the trust metrics' forward passes, and not for the
gradient methods, whose attributions it moves by up to 6.6e-4 of the largest where a path point falls within
rounding of a ReLU kink) or fewer steps or samples (which change the numbers).

Usage::

    OMP_NUM_THREADS=1 python bench/explain_profile.py [--images 64] [--json out.json]

Run of 2026-12-06 (2-core machine, load 0.9 to 2.4 with one other single-threaded job, one thread; one
profiled call of each side after a warm-up), seconds of wall time, and the model's share (``model`` plus
``layers``):

| model, method | dlaudit | peer | ratio | dlaudit's model work | peer's model work | dlaudit's model work / peer's wall |
|---|---|---|---|---|---|---|
| resnet-like, IG (captum ibs=256) | 2.86 | 3.24 | 0.88 | 2.27 | 2.53 | 0.70 |
| resnet-like, gradient SHAP (shap ranked_outputs=1) | 8.66 | 12.0 | 0.72 | 6.72 | 7.39 | 0.56 |
| resnet-like, occlusion (captum ppe=64) | 2.60 | 6.80 | 0.38 | 1.84 | 5.45 | 0.27 |
| digits CNN, IG | 0.122 | 0.200 | 0.61 | 0.095 | 0.078 | 0.47 |
| digits CNN, gradient SHAP | 0.302 | 3.35 | 0.09 | 0.239 | 0.341 | 0.07 |
| digits CNN, occlusion | 0.024 | 0.050 | 0.49 | 0.009 | 0.036 | 0.19 |

Reading: on the resnet-like CNN, the forward and backward passes of IG and gradient SHAP are the same
work on both sides (convolution backward 0.97 s against 1.06 s, convolution forward 0.77 s against 0.79
s for IG), and dlaudit's share of them alone is 0.70x and 0.56x of the peer's whole call: the 0.5x
targets cannot be met by batching, only by less model work. Occlusion's folded copy has no batch norm
and runs fewer convolution seconds (1.80 s against 4.55 s). Profiled calls are single measurements:
``bench/explain.py --only speed`` gives the medians the README's table quotes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

HEAVY = ("conv", "mkldnn", "addmm", "aten::mm", "aten::bmm", "linear", "matmul")
LAYERS = ("batch_norm", "relu", "threshold", "pool", "aten::mean")


def _group(name: str) -> str:
    """``model``: convolutions and dense layers forward, and every backward kernel (the model's, the only ones
    with gradients here); ``layers``: batch norm, ReLU and pooling forward; ``other``: every other operator
    (the method's arithmetic, residual additions, copies, autograd's bookkeeping)."""
    key = name.lower()
    if "backward" in key or any(h in key for h in HEAVY):
        return "model"
    if any(h in key for h in LAYERS):
        return "layers"
    return "other"


def profile(fn: Callable[[], Any]) -> dict[str, Any]:
    """One call of ``fn`` (after a warm-up call): own seconds per group of operators, the share of each in the
    wall time (``python``: the rest, outside any operator), and the eight costliest operators."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    fn()
    start = time.perf_counter()
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    wall = time.perf_counter() - start
    groups = {"model": 0.0, "layers": 0.0, "other": 0.0}
    top: dict[str, float] = {}
    for evt in prof.key_averages():
        seconds = evt.self_cpu_time_total / 1e6
        if seconds <= 0:
            continue
        g = _group(evt.key)
        groups[g] += seconds
        top[evt.key] = seconds
    groups["python"] = max(0.0, wall - sum(groups.values()))
    return {
        "wall_s": round(wall, 4),
        "seconds": {k: round(v, 4) for k, v in groups.items()},
        "share": {k: round(v / wall, 3) for k, v in groups.items()},
        "top_ops": {k: round(v, 4) for k, v in sorted(top.items(), key=lambda kv: -kv[1])[:8]},
    }


def profile_model(name: str, module: torch.nn.Module, x: torch.Tensor, background: torch.Tensor) -> dict[str, Any]:
    import shap
    from captum.attr import IntegratedGradients, Occlusion

    from dlaudit.explain import ExplainContext, ExplainSettings, attribute
    from dlaudit.explain.saliency import _occlusion_window

    for p in module.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        target = module(x).argmax(1)
    settings = ExplainSettings(shap_background=len(background))
    ctx = ExplainContext("image", (0.0, 1.0), background, settings=settings, shap_explainer="gradient", seed=0)
    zeros = torch.zeros_like(x)
    ig = IntegratedGradients(module)
    window, strides = _occlusion_window(ctx, x)
    occ = Occlusion(module)
    explainer = shap.GradientExplainer(module, background)
    pairs: dict[str, dict[str, Callable[[], Any]]] = {
        "ig": {
            "dlaudit": lambda: attribute("ig", module, x, target, ctx).values,
            # the peer at the internal batch size that bench/explain.py found fastest at these shapes
            "captum ibs=256": lambda: ig.attribute(
                x, baselines=zeros, target=target, n_steps=settings.ig_steps, internal_batch_size=256
            ),
        },
        "shap": {
            "dlaudit": lambda: attribute("shap", module, x, target, ctx).values,
            "shap ranked_outputs=1": lambda: explainer.shap_values(
                x, nsamples=settings.shap_samples, ranked_outputs=1, rseed=0
            ),
        },
        "occlusion": {
            "dlaudit": lambda: attribute("occlusion", module, x, target, ctx).values,
            "captum ppe=64": lambda: occ.attribute(
                x,
                sliding_window_shapes=window,
                strides=strides,
                baselines=0.0,
                target=target,
                perturbations_per_eval=64,
            ),
        },
    }
    out: dict[str, Any] = {"model": name, "inputs": len(x), "input_shape": list(x.shape[1:])}
    for method, sides in pairs.items():
        out[method] = {side: profile(fn) for side, fn in sides.items()}
        print(name, method, json.dumps(out[method]), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)

    from explain import small_resnet

    import dlaudit

    load_before = os.getloadavg()
    bundle = dlaudit.train("cnn", "digits", seed=0, device="cpu")
    data = dlaudit.load_data(bundle=bundle)
    train = dlaudit.load_data(bundle=bundle, split="train")
    results = {"threads": torch.get_num_threads(), "load_average_before": load_before}
    results["digits_cnn"] = profile_model("digits_cnn", bundle.module.eval(), data.x[: args.images], train.x[:100])
    g = torch.Generator().manual_seed(1)
    x32, bg32 = torch.rand(args.images, 3, 32, 32, generator=g), torch.rand(100, 3, 32, 32, generator=g)
    results["resnet_3x32x32"] = profile_model("resnet_3x32x32", small_resnet(), x32, bg32)
    results["load_average_after"] = os.getloadavg()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
