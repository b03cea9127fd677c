"""The explanation analysis' command-line options (``dlaudit explain``).

Declared here, next to :class:`dlaudit.explain.explanation.Settings` (whose ``OPTIONS`` they are), in a
module that imports no torch, so ``dlaudit --help`` stays quick; the CLI builds its Click options from them.
"""

from __future__ import annotations

from ..analysis import FAST_HELP, Option

__all__ = ["OPTIONS"]

MAX_MEMORY_HELP = (
    "Memory one explanation pass may hold, e.g. 2G or 500M: IG's steps, SmoothGrad's and SHAP's samples, occlusion's "
    "patches and LIME's perturbations are batched to fit, from the model's measured activations (default: half the "
    "free RAM, or of the GPU's free memory)."
)

OPTIONS = (
    Option("explain", ("--method",), "methods",
           "Methods, comma-separated: saliency,ig,smoothgrad,gradcam,deeplift,occlusion,lime,shap (default all)."),
    Option("explain", ("--n",), "n", "How many samples to explain (correct and misclassified ones).", type="int",
           default=16, show_default=True, min=1),
    Option("explain", ("--explain-target",), "explain_target", "Class to explain: predicted, true, or a class name.",
           default="predicted", show_default=True, keyword="target"),
    Option("explain", ("--shap-explainer",), "shap_explainer", "auto: kernel for tabular models, gradient for images.",
           choices=("auto", "gradient", "deep", "kernel"), default="auto", show_default=True),
    Option("explain", ("--gradcam-layer",), "gradcam_layer",
           "Module name of Grad-CAM's layer (default: the last convolution)."),
    Option("explain", ("--fast",), "fast", FAST_HELP, type="flag"),
    Option("explain", ("--no-quality",), "quality", "Only the attributions, without the trust metrics.", type="flag",
           flag_value=False),
    Option("explain", ("--max-memory",), "max_memory", MAX_MEMORY_HELP, metavar="SIZE"),
    Option("report", ("--max-memory",), "max_memory", MAX_MEMORY_HELP, metavar="SIZE", setting="max_memory"),
)  # fmt: skip
"""Every option of ``dlaudit explain``; each one's help is what ``dlaudit explain --help`` shows."""
