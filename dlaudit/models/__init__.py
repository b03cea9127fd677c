"""Reference architectures: ``mlp``, ``cnn``, ``textcnn``, ``embedding-bag`` (torch) and ``numpy-mlp`` (NumPy backprop)."""

from __future__ import annotations

from . import cnn as _cnn  # noqa: F401  (registers "cnn")
from . import ensemble as _ensemble  # noqa: F401  (registers "ensemble")
from . import mlp as _mlp  # noqa: F401  (registers "mlp")
from . import text as _text  # noqa: F401  (registers "textcnn", "embedding-bag")
from .cnn import CNN
from .ensemble import Ensemble
from .layers import Normalize, Normalized
from .mlp import MLP
from .numpy_mlp import NumpyMLP
from .registry import build_model, list_models, register_model

__all__ = [
    "CNN",
    "Ensemble",
    "MLP",
    "Normalize",
    "Normalized",
    "NumpyMLP",
    "build_model",
    "list_models",
    "register_model",
]
