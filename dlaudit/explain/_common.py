"""What every explanation method shares: settings, context, results, seeding, batching."""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ..modalities import Modality, get_modality

__all__ = [
    "Attribution",
    "Column",
    "ExplainContext",
    "ExplainSettings",
    "batched_probabilities",
    "chunked",
    "columns_for",
    "quiet",
    "seeded",
    "spread_to_features",
]


@dataclass(frozen=True)
class ExplainSettings:
    """Sample counts and steps of every method and trust metric.

    The defaults follow each library's own defaults where they are sound
    (lime's 1,000 image / 5,000 tabular samples, shap's 200 gradient samples);
    :attr:`FAST` is the cheaper configuration for CI (``fast=True``), :meth:`fast` the settings it makes.
    """

    ig_steps: int = 64
    internal_batch_size: int = 512  # the most rows one pass holds; the memory budget may lower it
    max_memory: int | None = None  # bytes one pass may hold (see dlaudit.explain.memory); None: a share of free memory
    smoothgrad_samples: int = 16
    smoothgrad_noise: float = 0.15
    occlusion_window: int | None = None
    lime_samples: int = 1000
    lime_tabular_samples: int = 5000
    lime_batch_size: int = 256  # measured: 1,000 28x28 images through the seed CNN take 0.26 s in one batch, 0.10 s in batches of 250 (cache)
    shap_samples: int = 200
    shap_background: int = 100
    kernel_centres: int = 10
    kernel_samples: int | None = None
    curve_steps: int = 32
    random_orders: int = 4
    sanity_cascade: bool = True
    sanity_stages: int | None = 8  # cascade steps at most: deep models are randomised a block of layers at a time
    sensitivity_samples: int = 4
    sensitivity_perturbations: int = 8
    sensitivity_radius: float = 0.02
    bootstrap_resamples: int = 1000  # resamples of the explained samples behind every trust metric's interval
    road: bool = True  # ROAD curves (images): every sample's imputations solved together (dlaudit.explain.road)
    figure_samples: int = 8
    figure_scale: str = "shared"  # saliency figures: "shared" (one scale, samples compare) or "sample" (each its own)

    def __post_init__(self) -> None:
        from ..errors import ConfigError

        if self.figure_scale not in ("shared", "sample"):
            raise ConfigError(f"figure_scale must be 'shared' or 'sample', got {self.figure_scale!r}")
        if self.max_memory is not None and (isinstance(self.max_memory, bool) or int(self.max_memory) < 1):
            raise ConfigError(f"max_memory must be a number of bytes (at least 1), got {self.max_memory!r}")

    FAST: ClassVar[dict[str, Any]] = {
        "ig_steps": 32,
        "smoothgrad_samples": 8,
        "lime_samples": 500,
        "lime_tabular_samples": 1000,
        "shap_samples": 100,
        "shap_background": 50,
        "curve_steps": 16,
        "random_orders": 2,
        "sanity_cascade": False,
        "sensitivity_samples": 4,
        "sensitivity_perturbations": 4,
    }
    """The fast profile (``fast=True``): what it changes; defined here and nowhere else."""

    @classmethod
    def fast(cls) -> ExplainSettings:
        """The settings of the fast profile (:attr:`FAST` over the defaults)."""
        return cls(**cls.FAST)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Column:
    """A raw tabular column and the model-input features that encode it."""

    name: str
    features: tuple[int, ...]
    categorical: bool = False
    categories: tuple[str, ...] = ()


@dataclass
class ExplainContext:
    """What a method needs besides the model, the inputs and the targets.

    ``background`` holds training samples on the CPU (SHAP's background, LIME's
    tabular statistics); ``columns`` the tabular columns (empty for images).
    ``cache`` keeps deterministic, model-independent work (e.g. a k-means summary)
    across the repeated calls the trust metrics make.
    """

    modality: str
    value_range: tuple[float, float]
    background: torch.Tensor
    settings: ExplainSettings = field(default_factory=ExplainSettings)
    columns: tuple[Column, ...] = ()
    seed: int = 0
    gradcam_layer: str | None = None
    shap_explainer: str = "auto"
    cache: dict[str, Any] = field(default_factory=dict)
    row_offset: int = 0
    """Position of the first explained row among all explained rows: per-row randomness (tabular LIME,
    Kernel SHAP) is keyed by it, so a shard of the rows gets what the whole run gives them."""

    @property
    def kind(self) -> Modality:
        """The registered :class:`~dlaudit.modalities.Modality` named by ``modality``."""
        return get_modality(self.modality)

    @property
    def low(self) -> float:
        """The baseline value: the low end of the value range (black for images)."""
        return float(self.value_range[0])

    @property
    def span(self) -> float:
        return float(self.value_range[1] - self.value_range[0])

    def baseline(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full_like(x, self.low)


@dataclass
class Attribution:
    """One method's attributions (CPU, the inputs' shape) and what it noticed.

    ``extras`` holds method-specific numbers (IG's convergence deltas, LIME's
    local fit); ``findings`` holds ``(severity, message)`` pairs for the report.
    """

    values: torch.Tensor
    extras: dict[str, Any] = field(default_factory=dict)
    findings: list[tuple[str, str]] = field(default_factory=list)


def columns_for(
    n_features: int, feature_names: Sequence[str] | None, encoder: dict[str, Any] | None
) -> tuple[Column, ...]:
    """The raw columns of a tabular model's inputs: one-hot groups from the encoder spec.

    Without an encoder every input feature is its own numeric column.
    """
    if not encoder:
        names = list(feature_names or [f"x{i}" for i in range(n_features)])
        return tuple(Column(str(names[i]), (i,)) for i in range(n_features))
    from ..data import TabularEncoder

    enc = TabularEncoder.from_spec(encoder)
    out = [Column(c["name"], (i,)) for i, c in enumerate(enc.numeric)]
    for c, idx in zip(enc.categorical, enc.categorical_indices):
        out.append(Column(c["name"], tuple(idx), True, tuple(str(v) for v in c["categories"])))
    return tuple(out)


def spread_to_features(column_values: np.ndarray, x: torch.Tensor, columns: Sequence[Column]) -> torch.Tensor:
    """Per-column attributions ``(n, n_columns)`` as per-feature ones ``(n, n_features)``.

    A numeric column's value goes to its feature; a categorical column's value to
    the one-hot feature that is active in that sample (the first one when none is).
    """
    out = torch.zeros(x.shape, dtype=torch.float32)
    xs = x.detach().cpu()
    for j, col in enumerate(columns):
        idx = list(col.features)
        if len(idx) == 1:
            out[:, idx[0]] = torch.as_tensor(column_values[:, j], dtype=torch.float32)
            continue
        active = xs[:, idx].argmax(dim=1)
        for i in range(len(xs)):
            out[i, idx[int(active[i])]] = float(column_values[i, j])
    return out


@contextlib.contextmanager
def seeded(seed: int, device: torch.device | None = None) -> Iterator[np.random.RandomState]:
    """Seed torch (CPU and ``device``) and NumPy's global generator; restore both after.

    Libraries that draw from the global generators (captum's NoiseTunnel, shap)
    become reproducible without disturbing the caller's random state.
    """
    devices = [device] if device is not None and device.type == "cuda" else []
    np_state = np.random.get_state()
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        np.random.seed(seed % (2**32))
        try:
            yield np.random.RandomState(seed % (2**32))
        finally:
            np.random.set_state(np_state)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence the libraries' chatter that says nothing to a dlaudit user.

    captum warns that inputs did not require gradients (it sets them) and that
    hooks will be removed afterwards; shap warns about modules it passes through.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*did not already require gradients.*")
        warnings.filterwarnings("ignore", message=".*hooks and attributes will be removed.*")
        warnings.filterwarnings("ignore", message=".*unrecognized nn.Module.*")
        warnings.filterwarnings("ignore", message=".*Setting forward, backward hooks and attributes.*")
        warnings.filterwarnings("ignore", message=".*Using a non-full backward hook.*")
        warnings.filterwarnings("ignore", category=FutureWarning, module="captum")
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="shap")
        yield


def chunked(
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor | tuple[torch.Tensor, torch.Tensor]],
    x: torch.Tensor,
    target: torch.Tensor,
    *,
    rows_per_example: int,
    budget: int,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Run ``fn`` on chunks of examples so one forward pass holds at most ``budget`` rows.

    Peak memory then depends on ``budget``, not on how many examples there are.
    ``fn`` returns attributions, or ``(attributions, per-example extra)``.
    """
    from .memory import chunks

    per_chunk = max(1, budget // max(1, rows_per_example))
    values, extras = [], []
    for part in chunks(len(x), per_chunk):
        out = fn(x[part], target[part])
        if isinstance(out, tuple):
            out, extra = out
            extras.append(extra.detach().cpu())
        values.append(out.detach().cpu())
    return torch.cat(values), (torch.cat(extras) if extras else None)


def batched_probabilities(module: nn.Module, x: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor:
    """Softmax outputs of ``module`` on ``x``, in batches, without gradients, on the CPU.

    Images go through the model's fast copy (batch norm folded, :func:`dlaudit.explain.fast.fast_module`).
    """
    from .fast import fast_module

    module = fast_module(module, x)
    device = _device_of(module)
    outs = []
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            logits = module(x[start : start + batch_size].to(device))
            outs.append(torch.softmax(logits.float(), dim=1).cpu())
    return torch.cat(outs)


def _device_of(module: nn.Module) -> torch.device:
    from ..utils import next_device

    return next_device(module)


def row_seed(seed: int, row: int) -> int:
    """The seed of one explained row's random draws: the same whatever rows are explained with it."""
    return int(np.random.SeedSequence([int(seed), int(row)]).generate_state(1)[0])
