"""Benchmark: dlaudit's explanations against plain lime, shap and captum calls with their defaults.

One run, medians and ratios printed. Model: the seed CNN trained with dlaudit's
trainer on scikit-learn's digits, either at their own 8x8 or upsampled (bilinear)
to 28x28, "MNIST-sized" inputs without downloading MNIST.

Parts:

1. LIME on N images (default 10) with lime's default 1,000 samples:
   ``lime_image.LimeImageExplainer().explain_instance`` with its defaults (top 5
   labels, batch size 10, segment-mean hiding) against ``dlaudit.explain.lime.lime_images``
   with lime's hiding (``hide_color=None``). Both get the same grid segmentation
   (lime's default quickshift finds a single segment on small digits) and the same
   seed (a fresh ``LimeImageExplainer(random_state=seed)`` per image,
   ``random_seed=seed``), so the segment weights must agree; the top-3 segments of
   the explained (top) class are compared.
2. SHAP: ``GradientExplainer`` and ``DeepExplainer`` over all outputs (their
   default), and with ``ranked_outputs=1``, against dlaudit's target-only SHAP.
3. Integrated Gradients peak memory (peak RSS over the RSS before the call, each
   in its own process) on 100 and on 1,000 images, and the most rows one forward
   pass held: dlaudit chunks examples so a pass holds at most
   ``internal_batch_size`` rows; captum with ``internal_batch_size=512`` for
   comparison (it cannot split below one step for all examples at once). The
   children map every block over 64 KiB on its own (``MALLOC_MMAP_THRESHOLD_``,
   dlaudit's allocator tuning off), so that the RSS follows the live tensors
   rather than what the allocator keeps.
4. The whole explain section on the 8x8 digits CNN: all methods, n=16, trust
   metrics and figures included, as ``dlaudit report`` runs it. Profiled (cProfile
   inside the section's thread, one thread, load 4 to 5): the trust metrics took
   8.8 s, LIME's re-attributions (in the sanity check and the stability metrics)
   4.2 s of it, the sanity check 4.1 s, max-sensitivity 2.3 s, random logit 1.2 s,
   ROAD 0.57 s (1.9 s before its imputation was batched, same session).
6. Speed at matched work (``--skip`` name ``speed``): Integrated Gradients, gradient SHAP
   and occlusion through dlaudit against captum's ``IntegratedGradients`` (its
   ``internal_batch_size`` swept, the best one kept), shap's ``GradientExplainer``
   with ``ranked_outputs=1`` and captum's ``Occlusion`` (``perturbations_per_eval``
   swept), on 64 inputs of the 8x8 digits CNN and of a small resnet-like CNN on
   3x32x32 (random weights, seed 0: the cost does not depend on the weights). Same
   steps (64, Gauss-Legendre), samples (200), windows, target (the predicted class),
   float32, one thread for every run; repeats interleaved (each repeat runs every
   variant once) and the median kept. The attributions are compared too: IG and
   occlusion with the peer's, SHAP with one shap explainer per target class (what
   dlaudit computes; shap's ``ranked_outputs=1`` draws its samples in another order).
   dlaudit's occlusion (and LIME, and the trust metrics' forward passes) runs a copy of the model
   with batch norm folded into its convolutions (``dlaudit/explain/fast.py``); the peers get the
   model as it is. Last run (one thread, a 2-core machine at load 2.0 to 2.8), dlaudit / peer:
   digits CNN IG 0.78, occlusion 0.46, SHAP 0.33; resnet-like IG 0.83, occlusion 0.62 (0.90 before
   the folding), SHAP 0.99 (0.82 in an earlier run: the load). The gradient methods run the model
   as it is (``fast.GRADIENTS_FOLDED``): folded, IG took 0.66x and gradient SHAP 0.67x the plain
   model's time on the resnet-like CNN (load 1.5 to 2.4), but moved by 6.6e-4 and 1.0e-3 of the
   largest attribution where a path point fell within rounding of a ReLU kink.
5. Every trust metric, dlaudit's functions against Quantus 0.6's own loops on the same model,
   inputs, saliency maps and explanation function (``--skip`` name ``quantus``; skipped without
   quantus): pixel flipping (16 steps; dlaudit's curve gives insertion too, twice the forward
   passes), ROAD (the deletion curve's 16 fractions; dlaudit takes MoRF and LeRF, Quantus MoRF), the
   random-logit check (Spearman), max-sensitivity (8 draws), and the sanity check against Quantus's
   ``MPRT`` (cascading from the logits down, one layer a step at this CNN's 3 weighted layers, |map|,
   Spearman; both re-run the same gradient saliency on each randomised model, and Quantus explains
   the unchanged model once more); plus dlaudit's bootstrap intervals of the 8 metrics measured (1,000
   resamples each), which Quantus lacks, so they count on dlaudit's side only. dlaudit's random-order
   deletion baseline (shared by all methods in the section) is not in it. ``--threads 1``, repeats
   interleaved (each repeat runs every variant once), medians; ``four_metrics`` and
   ``all_trust_metrics`` are medians of each repeat's summed time. MPRT agreement: Quantus reseeds
   every layer with ``seed + 1``, dlaudit layer k with ``seed + k``; with Quantus's seed one below
   dlaudit's the first step draws the same weights and its mean correlation agrees exactly (0.5412
   both), later steps draw other weights for the lower layers: final means 0.143 against 0.126,
   per sample within 0.12. Last runs (28x28, 16 images, one thread, 5, 7 and 7 repeats, a 2-core
   machine at load 3 to 4.5), dlaudit / Quantus: all trust metrics 0.46, 0.40 and 0.44 (0.45 s
   against 0.97 s; 0.48 against 1.21; 0.81 against 1.84); the four shared metrics 0.46, 0.41, 0.44;
   sanity check / MPRT 0.51, 0.55, 0.51; ROAD 0.29, 0.24, 0.29; pixel flipping 2.4, 1.3, 1.9; random
   logit 0.63, 0.79, 0.56; max-sensitivity 0.64, 0.65, 0.76; the intervals 1.5 ms. dlaudit's time
   goes to ROAD (40 to 48%), pixel flipping (22 to 27%), max-sensitivity (14 to 21%) and the sanity
   check (6 to 14%); Quantus's to ROAD (67 to 74%). The sanity check's rank correlation ranks all
   rows in one call: 0.026 s against 0.033 s with the per-row loop (same session, median of 9).

Usage::

    python bench/explain.py                    # 28x28, 10 images, 3 repeats
    python bench/explain.py --size 8 --repeats 1 --quick    # a quick check that everything runs

Quote ratios: the machine (threads, load average) is printed with the results.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dlaudit
from dlaudit.explain import ExplainContext, ExplainSettings, attribute
from dlaudit.explain.lime import lime_images, segment_image


def median_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


# -- model and data ----------------------------------------------------------------------


def make_npz(path: Path, size: int) -> None:
    """Digits upsampled to ``size`` x ``size`` as uint8, with a fixed split."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy((bunch.images / 16.0).astype(np.float32))[:, None]
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)
    x = (x[:, 0].numpy() * 255).round().astype(np.uint8)
    y = bunch.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(y))
    test, train = order[:450], order[450:]
    np.savez(path, x_train=x[train], y_train=y[train], x_test=x[test], y_test=y[test])


def trained_model(workdir: Path, size: int, epochs: int) -> tuple[dlaudit.ModelBundle, Path, Path]:
    data = workdir / f"digits{size}.npz"
    make_npz(data, size)
    bundle = dlaudit.train("cnn", data, epochs=epochs, seed=0, device="cpu")
    model = dlaudit.save_model(bundle, workdir / f"cnn{size}.pt")
    return bundle, model, data


def classifier(module: torch.nn.Module) -> Callable[[np.ndarray], np.ndarray]:
    """lime's classifier_fn: (N, H, W, 3) grey-as-RGB images -> class probabilities."""

    def classify(images: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(images[..., 0], dtype=np.float32))[:, None]
        with torch.no_grad():
            return torch.softmax(module(x), dim=1).numpy()

    return classify


# -- 1. LIME ---------------------------------------------------------------------------------


def bench_lime(bundle: dlaudit.ModelBundle, x: torch.Tensor, repeats: int, seed: int = 0) -> dict[str, Any]:
    from lime import lime_image

    module = bundle.module.eval()
    segments = [segment_image(img.numpy()) for img in x]
    classify = classifier(module)

    def plain() -> list[tuple[int, list[int]]]:
        out = []
        for img, seg in zip(x, segments):
            exp = lime_image.LimeImageExplainer(random_state=seed).explain_instance(
                img[0].double().numpy(), classify, segmentation_fn=lambda _i, s=seg: s, random_seed=seed
            )
            label = int(exp.top_labels[0])
            out.append((label, [int(k) for k, _ in exp.local_exp[label][:3]]))
        return out

    target = bundle.predict(x)

    def ours() -> list[tuple[int, list[int]]]:
        res = lime_images(module, x, target, num_samples=1000, seed=seed, hide_color=None, segments=segments)
        return list(zip(target.tolist(), res.top_segments(3)))

    import contextlib
    import io

    with contextlib.redirect_stderr(io.StringIO()):  # lime's tqdm progress bar
        t_plain, top_plain = median_time(plain, repeats)
    t_ours, top_ours = median_time(ours, repeats)
    same = sum(a == b for a, b in zip(top_plain, top_ours))
    return {
        "images": len(x),
        "segments": int(segments[0].max() + 1),
        "lime_s_per_image": t_plain / len(x),
        "dlaudit_s_per_image": t_ours / len(x),
        "speedup": t_plain / t_ours,
        "same_top3_segments": f"{same}/{len(x)}",
    }


# -- 2. SHAP ---------------------------------------------------------------------------------


def bench_shap(
    bundle: dlaudit.ModelBundle, x: torch.Tensor, background: torch.Tensor, repeats: int, seed: int = 0
) -> dict[str, Any]:
    import copy

    import shap

    module = bundle.module.eval()
    target = bundle.predict(x)
    out: dict[str, Any] = {"images": len(x), "background": len(background)}
    for kind in ("gradient", "deep"):

        def plain_all(kind: str = kind) -> Any:
            m = copy.deepcopy(module)
            if kind == "gradient":
                return shap.GradientExplainer(m, background).shap_values(x, rseed=seed)
            return shap.DeepExplainer(m, background).shap_values(x, check_additivity=False)

        def plain_top1(kind: str = kind) -> Any:
            m = copy.deepcopy(module)
            if kind == "gradient":
                return shap.GradientExplainer(m, background).shap_values(x, ranked_outputs=1, rseed=seed)
            return shap.DeepExplainer(m, background).shap_values(x, ranked_outputs=1, check_additivity=False)

        ctx = ExplainContext(
            "image",
            (0.0, 1.0),
            background,
            settings=ExplainSettings(shap_background=len(background)),
            shap_explainer=kind,
            seed=seed,
        )
        t_all, _ = median_time(plain_all, repeats)
        t_top, _ = median_time(plain_top1, repeats)
        t_ours, res = median_time(lambda ctx=ctx: attribute("shap", module, x, target, ctx), repeats)
        out[kind] = {
            "all_outputs_s_per_image": t_all / len(x),
            "ranked_outputs1_s_per_image": t_top / len(x),
            "dlaudit_s_per_image": t_ours / len(x),
            "speedup_vs_all_outputs": t_all / t_ours,
            "dlaudit_explainer": res.extras["explainer"],
        }
    return out


# -- 3. IG memory (child processes) ------------------------------------------------------------


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(field)


def _reset_peak_rss() -> float:
    """Reset the kernel's peak-RSS mark (Linux: write 5 to clear_refs); return the current RSS in MiB."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass  # the lifetime peak then still counts (a lower bound on the increase)
    return _status_mb("VmRSS")


def _peak_rss_mb() -> float:
    try:
        return _status_mb("VmHWM")
    except (OSError, KeyError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ig_worker(model: str, data: str, count: int, impl: str) -> None:
    """Child: peak RSS increase of IG on ``count`` images, as JSON on stdout."""
    bundle = dlaudit.load_model(model, device="cpu")
    with np.load(data) as npz:
        pool = np.concatenate([npz["x_train"], npz["x_test"]])
    x = torch.from_numpy(pool[:count].astype(np.float32) / 255.0)[:, None]
    target = bundle.predict(x)
    ctx = ExplainContext("image", (0.0, 1.0), x[:10])
    module = bundle.module.eval()
    warm = min(16, count)  # warm up with two full chunks: libraries loaded, the allocator at its working size
    if impl == "dlaudit":
        attribute("ig", module, x[:warm], target[:warm], ctx)
    else:
        from captum.attr import IntegratedGradients

        IntegratedGradients(module).attribute(
            x[:warm], baselines=torch.zeros_like(x[:warm]), target=target[:warm], n_steps=64, internal_batch_size=512
        )

    rows: list[int] = []
    handle = module.register_forward_pre_hook(lambda _m, inp: rows.append(len(inp[0])))
    before = _reset_peak_rss()
    start = time.perf_counter()
    if impl == "dlaudit":
        attribute("ig", module, x, target, ctx)
    else:
        from captum.attr import IntegratedGradients

        IntegratedGradients(module).attribute(
            x, baselines=torch.zeros_like(x), target=target, n_steps=64, internal_batch_size=512
        )
    seconds = time.perf_counter() - start
    peak = _peak_rss_mb()
    handle.remove()
    print(
        json.dumps(
            {
                "impl": impl,
                "count": count,
                "peak_increase_mb": round(peak - before, 1),
                "max_rows_per_pass": max(rows),
                "seconds": round(seconds, 2),
            }
        )
    )


# The children's allocator: every block over 64 KiB is its own mapping, returned to the kernel when
# freed, so the RSS follows the live tensors; otherwise freed memory stays in the process (glibc's
# arenas, or on purpose with dlaudit's tuning) and the RSS peak measures the allocator's history.
MEASURE_ALLOCATOR = {"DLAUDIT_MALLOC_TUNING": "0", "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_ARENA_MAX": "2"}


def bench_ig_memory(model: Path, data: Path, counts: tuple[int, int] = (100, 1000)) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for impl in ("dlaudit", "captum"):
        for count in counts:
            cmd = [
                sys.executable,
                __file__,
                "--worker",
                "ig",
                "--model",
                str(model),
                "--data",
                str(data),
                "--count",
                str(count),
                "--impl",
                impl,
            ]
            env = {**os.environ, "PYTHONPATH": str(ROOT), **MEASURE_ALLOCATOR}
            proc = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
            out[f"{impl}@{count}"] = json.loads(proc.stdout.strip().splitlines()[-1])
    for impl in ("dlaudit", "captum"):
        small, big = out[f"{impl}@{counts[0]}"], out[f"{impl}@{counts[1]}"]
        out[f"{impl}_ratio"] = max(big["peak_increase_mb"], 1.0) / max(small["peak_increase_mb"], 1.0)
    return out


# -- 4. the whole section -------------------------------------------------------------------------


def bench_section(repeats: int) -> dict[str, Any]:
    bundle = dlaudit.train("cnn", "digits", seed=0, device="cpu")
    data = dlaudit.load_data(bundle=bundle)
    cpu0 = time.process_time()
    t, exp = median_time(lambda: dlaudit.explain_model(bundle, data, n=16, seed=0), repeats)
    cpu = (time.process_time() - cpu0) / repeats
    per = {r[0]: r[-1] for r in exp.section.tables[1].rows}
    return {
        "seconds": t,
        "cpu_seconds": cpu,
        "methods": len(exp.attributions),
        "seconds_per_method": per,
        "metrics": len(exp.metrics),
    }


def _saliency(model: torch.nn.Module, xx: Any, tt: Any) -> torch.Tensor:
    """The gradient of the target logit: the explanation every metric of part 5 re-runs, on whichever model."""
    xx = torch.as_tensor(np.asarray(xx) if not isinstance(xx, torch.Tensor) else xx).clone().float()
    xx.requires_grad_(True)
    model(xx).gather(1, torch.as_tensor(np.asarray(tt)).long()[:, None]).sum().backward()
    return xx.grad.detach()


def bench_quantus(bundle: dlaudit.ModelBundle, x: torch.Tensor, repeats: int, seed: int = 0) -> dict[str, Any]:
    """Part 5: every trust metric on the saliency maps, dlaudit's functions against Quantus's loops, interleaved."""
    try:
        import quantus
    except ImportError:
        return {"skipped": "quantus is not installed"}
    from dlaudit.explain.compute import MethodQuality
    from dlaudit.explain.intervals import RESAMPLES
    from dlaudit.explain.quality import _step_counts, perturbation_curves, sanity_check
    from dlaudit.explain.road import road_curves
    from dlaudit.explain.stability import max_sensitivity, random_logit_similarity

    module = bundle.module.eval()
    with torch.no_grad():
        y = module(x).argmax(1)

    def grad(xx: torch.Tensor, tt: torch.Tensor) -> torch.Tensor:
        return _saliency(module, xx, tt)

    def explain_func(model, inputs, targets, **kwargs):  # Quantus calls it with these names, model randomised in MPRT
        return _saliency(model, inputs, targets).numpy()

    a = grad(x, y)
    n_px = x.shape[2] * x.shape[3]
    counts = _step_counts(n_px, 16)
    order = torch.argsort(-a.sum(1).reshape(len(x), -1), dim=1)
    pct = [100.0 * k / n_px for k in counts[1:-1]]
    xn, yn, an = x.numpy(), y.numpy(), a.numpy()
    classes = bundle.card.num_classes
    # MPRT: cascading from the logits down, |map|, Spearman, as dlaudit's sanity check (8 stages at most: this CNN
    # has 3 weighted layers, one a stage). Quantus seeds every layer's reset with seed + 1, dlaudit layer k with
    # seed + k: with Quantus's seed at dlaudit's - 1 the first step draws the same weights, the later ones differ.
    mprt = quantus.MPRT(
        similarity_func=quantus.similarity_func.correlation_spearman,
        layer_order="top_down",
        seed=seed - 1,
        abs=True,
        normalise=False,
        disable_warnings=True,
    )
    pairs: dict[str, tuple[Callable[[], Any], Callable[[], Any] | None]] = {
        "pixel_flipping": (
            lambda: perturbation_curves(module, x, y, order, baseline=0.0, steps=16),
            lambda: quantus.PixelFlipping(features_in_step=n_px // 16, perturb_baseline=0.0, disable_warnings=True)(
                model=module, x_batch=xn, y_batch=yn, a_batch=an, softmax=True
            ),
        ),
        "road": (
            lambda: road_curves(module, x, y, order, counts, span=1.0),
            lambda: quantus.ROAD(percentages=pct, disable_warnings=True)(
                model=module, x_batch=xn, y_batch=yn, a_batch=an, softmax=True
            ),
        ),
        "random_logit": (
            lambda: random_logit_similarity(grad, x, y, a, classes),
            lambda: quantus.RandomLogit(
                num_classes=classes,
                similarity_func=quantus.similarity_func.correlation_spearman,
                normalise=False,
                disable_warnings=True,
            )(model=module, x_batch=xn, y_batch=yn, a_batch=an, explain_func=explain_func),
        ),
        "max_sensitivity": (
            lambda: max_sensitivity(grad, module, x, y, a, radius=0.02, value_range=(0.0, 1.0), perturbations=8),
            lambda: quantus.MaxSensitivity(nr_samples=8, lower_bound=0.02, normalise=False, disable_warnings=True)(
                model=module, x_batch=xn, y_batch=yn, a_batch=an, explain_func=explain_func
            ),
        ),
        "sanity_mprt": (
            lambda: sanity_check(_saliency, module, x, y, a, seed=seed, cascade=True, stages=8),
            lambda: mprt(model=module, x_batch=xn, y_batch=yn, a_batch=an, explain_func=explain_func),
        ),
    }
    outs: dict[str, Any] = {}

    def intervals() -> MethodQuality:  # Quantus has none: dlaudit's side only
        q = MethodQuality(
            curves=outs["pixel_flipping/dlaudit"],
            sanity=outs["sanity_mprt/dlaudit"],
            stability=outs["max_sensitivity/dlaudit"],
            random_logit=outs["random_logit/dlaudit"],
            road=outs["road/dlaudit"],
        )
        q.compute_intervals(None, seed=seed, resamples=RESAMPLES)
        return q

    variants = {f"{k}/{side}": fn for k, pair in pairs.items() for side, fn in zip(("dlaudit", "quantus"), pair)}
    variants["intervals/dlaudit"] = intervals
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(repeats):
        for name, fn in variants.items():
            start = time.perf_counter()
            outs[name] = fn()
            times[name].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in times.items()}

    def total(keys: list[str], side: str) -> float:  # median over repeats of the repeat's summed time
        return statistics.median(sum(times[f"{k}/{side}"][r] for k in keys) for r in range(repeats))

    out: dict[str, Any] = {"images": len(x), "repeats": repeats}
    for name in pairs:
        out[name] = {
            "dlaudit_s": round(med[f"{name}/dlaudit"], 4),
            "quantus_s": round(med[f"{name}/quantus"], 4),
            "ratio": round(med[f"{name}/dlaudit"] / med[f"{name}/quantus"], 3),
        }
    out["intervals"] = {
        "dlaudit_s": round(med["intervals/dlaudit"], 4),
        "count": len(outs["intervals/dlaudit"].intervals),
        "note": f"{RESAMPLES} bootstrap resamples per metric; Quantus has no intervals",
    }
    four = ["pixel_flipping", "road", "random_logit", "max_sensitivity"]
    for row, keys, extra in (
        ("four_metrics", four, []),
        ("all_trust_metrics", [*four, "sanity_mprt"], ["intervals"]),
    ):
        ours = statistics.median(sum(times[f"{k}/dlaudit"][r] for k in [*keys, *extra]) for r in range(repeats))
        theirs = total(keys, "quantus")
        out[row] = {"dlaudit_s": round(ours, 4), "quantus_s": round(theirs, 4), "ratio": round(ours / theirs, 3)}
    out["mprt_agreement"] = _mprt_agreement(outs["sanity_mprt/dlaudit"], outs["sanity_mprt/quantus"])
    return out


def _mprt_agreement(sanity: Any, scores: dict[str, list[float]]) -> dict[str, Any]:
    """dlaudit's sanity steps against Quantus's MPRT scores (one list per randomised layer, "original" first).

    The first step randomises the same layer with the same draw, so its mean must agree to rounding; later steps
    draw other weights for the lower layers (Quantus reseeds every layer with one seed), so they agree only as
    far as the draw does not matter.
    """
    layers = [k for k in scores if k != "original"]
    quantus_means = [float(np.nanmean(scores[k])) for k in layers]
    ours = [v for _, v in sanity.steps]
    final_gap = np.abs(np.asarray(sanity.samples) - np.asarray(scores[layers[-1]], dtype=np.float64))
    return {
        "layers": layers,
        "dlaudit_step_means": [None if v is None else round(v, 4) for v in ours],
        "quantus_step_means": [round(v, 4) for v in quantus_means],
        "first_step_gap": None if ours[0] is None else abs(ours[0] - quantus_means[0]),
        "final_mean_gap": None if ours[-1] is None else round(abs(ours[-1] - quantus_means[-1]), 4),
        "final_per_sample_max_gap": round(float(np.nanmax(final_gap)), 4),
        "quantus_original_mean": round(float(np.nanmean(scores["original"])), 6),
    }


# -- 6. speed at matched work -------------------------------------------------------------------------


class _Block(torch.nn.Module):
    def __init__(self, channels: int, stride: int) -> None:
        super().__init__()
        out = channels * stride
        self.conv1 = torch.nn.Conv2d(channels, out, 3, stride, 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(out)
        self.relu1 = torch.nn.ReLU()
        self.conv2 = torch.nn.Conv2d(out, out, 3, 1, 1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(out)
        self.relu2 = torch.nn.ReLU()
        self.skip = (
            torch.nn.Sequential(torch.nn.Conv2d(channels, out, 1, stride, bias=False), torch.nn.BatchNorm2d(out))
            if stride != 1
            else torch.nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu2(self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x))))) + self.skip(x))


def small_resnet(classes: int = 10, width: int = 16) -> torch.nn.Module:
    """A resnet-like CNN for 3x32x32 inputs: a stem, two residual stages (32x32, 16x16), pooling, a dense layer."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, width, 3, 1, 1, bias=False),
        torch.nn.BatchNorm2d(width),
        torch.nn.ReLU(),
        _Block(width, 1),
        _Block(width, 2),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(2 * width, classes),
    )
    for m in model.modules():  # non-trivial running statistics, as after training
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def _interleaved(variants: dict[str, Callable[[], Any]], repeats: int) -> tuple[dict[str, float], dict[str, Any]]:
    times: dict[str, list[float]] = {k: [] for k in variants}
    outs: dict[str, Any] = {}
    for _ in range(repeats):
        for name, fn in variants.items():
            start = time.perf_counter()
            outs[name] = fn()
            times[name].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}, outs


def _gap(ours: torch.Tensor, ref: Any) -> float:
    ref = torch.as_tensor(np.asarray(ref), dtype=torch.float64)
    return float((ours.double() - ref).abs().max())


def bench_speed_model(
    name: str, module: torch.nn.Module, x: torch.Tensor, background: torch.Tensor, repeats: int
) -> dict[str, Any]:
    import shap
    from captum.attr import IntegratedGradients, Occlusion

    from dlaudit.explain.saliency import _occlusion_window
    from dlaudit.explain.shap import TargetOutput

    for p in module.parameters():
        p.requires_grad_(False)  # what dlaudit's attribute() does; the peers get the same model
    with torch.no_grad():
        target = module(x).argmax(1)
    settings = ExplainSettings(shap_background=len(background))
    ctx = ExplainContext("image", (0.0, 1.0), background, settings=settings, shap_explainer="gradient", seed=0)
    steps, n = settings.ig_steps, len(x)
    out: dict[str, Any] = {"model": name, "inputs": n, "input_shape": list(x.shape[1:])}

    ig = IntegratedGradients(module)
    zeros = torch.zeros_like(x)
    variants: dict[str, Callable[[], Any]] = {}
    for ibs in (None, 16, 64, 256):
        label = f"captum ibs={ibs or 'all'}"
        variants[label] = lambda ibs=ibs: ig.attribute(
            x, baselines=zeros, target=target, n_steps=steps, internal_batch_size=ibs
        )
    variants["dlaudit"] = lambda: attribute("ig", module, x, target, ctx).values
    times, outs = _interleaved(variants, repeats)
    best = min((k for k in times if k != "dlaudit"), key=times.get)
    out["ig"] = {
        "steps": steps,
        "seconds": {k: round(v, 4) for k, v in times.items()},
        "best_peer": best,
        "ratio": round(times["dlaudit"] / times[best], 3),
        "max_abs_diff": _gap(outs["dlaudit"], outs[best].detach()),
        "max_abs_value": float(outs[best].abs().max()),
    }
    print(name, "ig", json.dumps(out["ig"]), flush=True)

    window, strides = _occlusion_window(ctx, x)
    occ = Occlusion(module)
    variants = {}
    for ppe in (1, 8, 64):
        variants[f"captum ppe={ppe}"] = lambda ppe=ppe: occ.attribute(
            x, sliding_window_shapes=window, strides=strides, baselines=0.0, target=target, perturbations_per_eval=ppe
        )
    variants["dlaudit"] = lambda: attribute("occlusion", module, x, target, ctx).values
    times, outs = _interleaved(variants, repeats)
    best = min((k for k in times if k != "dlaudit"), key=times.get)
    out["occlusion"] = {
        "window": list(window),
        "strides": list(strides),
        "seconds": {k: round(v, 4) for k, v in times.items()},
        "best_peer": best,
        "ratio": round(times["dlaudit"] / times[best], 3),
        "max_abs_diff": _gap(outs["dlaudit"], outs[best].detach()),
        "max_abs_value": float(outs[best].abs().max()),
    }
    print(name, "occlusion", json.dumps(out["occlusion"]), flush=True)

    samples = settings.shap_samples
    explainer = shap.GradientExplainer(module, background)
    variants = {
        "shap ranked_outputs=1": lambda: explainer.shap_values(x, nsamples=samples, ranked_outputs=1, rseed=0),
        "dlaudit": lambda: attribute("shap", module, x, target, ctx).values,
    }
    times, outs = _interleaved(variants, repeats)
    ref = np.zeros(tuple(x.shape))  # what dlaudit computes: one shap explainer per class, untimed
    for cls in torch.unique(target).tolist():
        idx = (target == cls).nonzero().flatten()
        vals = shap.GradientExplainer(TargetOutput(module, cls), background).shap_values(
            x[idx], nsamples=samples, rseed=0
        )
        ref[idx.numpy()] = np.asarray(vals).reshape(len(idx), *x.shape[1:])
    ranked = np.asarray(outs["shap ranked_outputs=1"][1])
    out["shap"] = {
        "samples": samples,
        "background": len(background),
        "seconds": {k: round(v, 4) for k, v in times.items()},
        "same_targets_as_ranked": bool((ranked[:, 0] == target.numpy()).all()),
        "ratio": round(times["dlaudit"] / times["shap ranked_outputs=1"], 3),
        "max_abs_diff_vs_shap_per_class": _gap(outs["dlaudit"], ref),
        "max_abs_value": float(np.abs(ref).max()),
    }
    print(name, "shap", json.dumps(out["shap"]), flush=True)
    return out


def bench_speed(repeats: int, images: int) -> dict[str, Any]:
    """Part 6 on the digits CNN (1x8x8, trained) and a small resnet-like CNN (3x32x32), one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        bundle = dlaudit.train("cnn", "digits", seed=0, device="cpu")
        data = dlaudit.load_data(bundle=bundle)
        train = dlaudit.load_data(bundle=bundle, split="train")
        out: dict[str, Any] = {"threads": torch.get_num_threads(), "load_average_before": os.getloadavg()}
        module = bundle.module.eval()
        out["digits_cnn"] = bench_speed_model("digits_cnn", module, data.x[:images], train.x[:100], repeats)
        g = torch.Generator().manual_seed(1)
        x32, bg32 = torch.rand(images, 3, 32, 32, generator=g), torch.rand(100, 3, 32, 32, generator=g)
        out["resnet_3x32x32"] = bench_speed_model("resnet_3x32x32", small_resnet(), x32, bg32, repeats)
        return out
    finally:
        torch.set_num_threads(threads)


def bench_own_model(args: argparse.Namespace, skip: set[str], results: dict[str, Any]) -> None:
    """Parts 1, 2, 3 and 5 on the bench's own CNN (digits at ``--size``), trained in a temporary folder."""
    with tempfile.TemporaryDirectory() as tmp:
        bundle, model, data = trained_model(Path(tmp), args.size, args.epochs)
        results["model"] = {"size": args.size, "test_accuracy": round(bundle.card.metrics["test_accuracy"], 4)}
        test = dlaudit.load_data(data, bundle=bundle)
        x = test.x[: args.images]
        if "lime" not in skip:
            results["lime"] = bench_lime(bundle, x, args.repeats)
            print("lime", json.dumps(results["lime"]), flush=True)
        if "shap" not in skip:
            train = dlaudit.load_data(data, bundle=bundle, split="train")
            results["shap"] = bench_shap(bundle, x, train.x[:100], args.repeats)
            print("shap", json.dumps(results["shap"]), flush=True)
        if "quantus" not in skip:
            results["quantus"] = bench_quantus(bundle, test.x[:16], args.repeats)
            print("quantus", json.dumps(results["quantus"]), flush=True)
        if "ig" not in skip:
            results["ig_memory"] = bench_ig_memory(model, data, (50, 200) if args.quick else (100, 1000))
            print("ig_memory", json.dumps(results["ig_memory"]), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=28, help="image side: 8 (digits) or e.g. 28 (upsampled, MNIST-sized)")
    p.add_argument("--images", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--epochs", type=int, default=3, help="training epochs of the benchmark CNN")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--skip", default="", help="parts to skip, comma-separated: lime,shap,ig,section,quantus,speed")
    p.add_argument("--only", default="", help="run only these parts, comma-separated (same names as --skip)")
    p.add_argument("--speed-images", type=int, default=64, help="inputs per model in part 6 (speed)")
    p.add_argument("--quick", action="store_true", help="IG memory on 50 and 200 images")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--count", type=int, help=argparse.SUPPRESS)
    p.add_argument("--impl", help=argparse.SUPPRESS)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.worker == "ig":
        ig_worker(args.model, args.data, args.count, args.impl)
        return
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if args.only:
        parts = {"lime", "shap", "ig", "section", "quantus", "speed"}
        skip |= parts - {s.strip() for s in args.only.split(",")}
    results: dict[str, Any] = {
        "machine": {
            "threads": torch.get_num_threads(),
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
            "note": "shared machines are noisy: quote ratios",
        }
    }
    if not {"lime", "shap", "quantus", "ig"} <= skip:
        bench_own_model(args, skip, results)
    if "speed" not in skip:
        results["speed"] = bench_speed(args.repeats, args.speed_images)
    if "section" not in skip:
        results["section"] = bench_section(1 if args.quick else max(1, args.repeats // 2))
        print("section", json.dumps(results["section"]), flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
