"""What every attack is, and the registry that finds attacks by name.

An attack is a frozen settings object (a subclass of :class:`AttackMethod`) with a
``perturb`` that attacks one batch. Everything else (batching, the model's state,
checking inputs and outputs, per-sample randomness by global index, progress) is the
shared engine's, :func:`dlaudit.robust.attacks.run_attack`. Curves, the report
section, ``dlaudit attack`` and the masking checks ask for attacks by name only
(:func:`make_attack`), so a new attack is one module in this package with one
:func:`register_attack` call, one test file, and nothing else: the package imports
every module in it.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar, TypedDict

import torch
from torch import nn

from ...errors import ConfigError
from ...modalities import Modality

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "AttackMethod",
    "Batch",
    "Perturbed",
    "NORMS",
    "register_attack",
    "list_attacks",
    "get_attack",
    "make_attack",
    "metric_stem",
    "parse_attack_name",
]

NORMS = ("linf", "l2")


class Batch(TypedDict):
    """What the engine tells :meth:`AttackMethod.perturb` about a batch besides its inputs, labels and budgets.

    ``index``: the samples' global indices, which key every random draw; ``seed``; ``value_range``:
    the inputs' ``(low, high)``; ``num_classes``: the model's number of classes.
    """

    index: torch.Tensor
    seed: int
    value_range: tuple[float, float]
    num_classes: int


Perturbed = tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]
"""What :meth:`AttackMethod.perturb` returns: ``(x_adv, pred or None, success)``."""


@dataclass(frozen=True)
class AttackMethod:
    """An attack's settings; subclasses add their own fields and implement :meth:`perturb`.

    ``eps`` is the budget in input units in the norm ``norm``. Class attributes say
    what the attack is, so that the engine, the report and the CLI ask it rather than
    keep lists of names: ``key`` (the registry name), ``norms`` it supports,
    ``per_sample_eps`` (whether ``perturb`` takes a different budget per sample),
    ``gradient_free`` (a black-box attack: the masking checks compare it with the
    white-box ones), ``returns_pred`` (``perturb`` already knows the prediction on
    each adversarial input, so the engine need not run the model again),
    ``continuous`` (it moves inputs within an L-p ball, so it needs a modality with
    continuous inputs), ``modalities`` (the modality names it applies to; None: any
    that ``continuous`` allows), ``effort`` (which of the robustness section's
    ``steps`` and ``restarts`` settings it takes, so ``fast`` makes it cheaper) and
    ``ensemble`` (it runs other attacks itself, as AutoAttack does: the robustness
    section runs it through its own ``autoattack`` setting, not as a curve).

    ``features`` (keyword only) restricts the attack to some input features: the flat
    indices (into one input, ``x[0].flatten()``) of the features it may change, e.g. a
    tabular model's numeric columns; None (the default) changes any. Every attack keeps
    the others at their clean values, and the engine checks that it did.
    """

    eps: float
    norm: str = "linf"
    features: tuple[int, ...] | None = field(default=None, kw_only=True)

    key: ClassVar[str] = ""
    norms: ClassVar[tuple[str, ...]] = NORMS
    per_sample_eps: ClassVar[bool] = False
    gradient_free: ClassVar[bool] = False
    returns_pred: ClassVar[bool] = False
    continuous: ClassVar[bool] = True
    modalities: ClassVar[tuple[str, ...] | None] = None
    effort: ClassVar[tuple[str, ...]] = ()
    ensemble: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if self.norm not in self.norms:
            raise ConfigError(f"{self.key} does not support norm {self.norm!r}; choose from: {', '.join(self.norms)}")
        if (
            isinstance(self.eps, bool)
            or not isinstance(self.eps, (int, float))
            or not math.isfinite(self.eps)
            or self.eps < 0
        ):
            raise ConfigError(f"eps (the attack budget) must be a number >= 0, got {self.eps!r}")
        check_features(self.features)

    def applies_to(self, modality: Modality) -> str | None:
        """None when the attack can run on inputs of ``modality``; otherwise why not (one sentence)."""
        if self.modalities is not None and modality.name not in self.modalities:
            return f"{self.key} attacks {', '.join(self.modalities)} data; this is {modality.title} data"
        if self.continuous and not modality.continuous:
            return f"{self.key} moves inputs within an L-p ball and {modality.title} inputs are discrete"
        return None

    def batch_eps(self, eps: torch.Tensor) -> float:
        """The one budget of a batch for attacks without ``per_sample_eps`` (``self.eps`` for an empty batch)."""
        return float(eps[0]) if len(eps) else self.eps

    def feature_mask(self, x: torch.Tensor) -> torch.Tensor | None:
        """The features the attack may change, as a bool tensor of one input's shape on ``x``'s device (None: all)."""
        return feature_mask(self.features, x)

    @property
    def name(self) -> str:
        """The metric stem: ``pgd_linf``, ``apgd_ce_l2``, ``autoattack_linf``..."""
        return f"{metric_stem(self.key)}_{self.norm}"

    def with_eps(self, eps: float) -> AttackMethod:
        """The same attack at another budget."""
        return replace(self, eps=float(eps))

    def describe(self) -> str:
        """A short human description of the settings (for tables and captions)."""
        return f"{self.key} {self.norm}"

    def perturb(
        self, module: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: torch.Tensor, **batch: Unpack[Batch]
    ) -> Perturbed:
        """Attack one batch on its device: ``(x_adv, pred or None, success)``.

        ``module`` is in eval mode with frozen parameters; ``eps`` holds one budget per
        sample (all equal unless :attr:`per_sample_eps`); ``batch`` the keywords of
        :class:`Batch`: ``index`` (the samples' global indices, which key every random
        draw), ``seed``, ``value_range`` and ``num_classes``.
        """
        raise NotImplementedError

    def call_batch(
        self,
        attack: Callable[..., tuple[torch.Tensor, torch.Tensor]],
        module: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        eps: torch.Tensor,
        batch: Batch,
        **settings: Any,
    ) -> Perturbed:
        """:meth:`perturb` as one call of a functional attack at the batch's one budget (APGD, FAB, Square).

        ``attack(module, x, y, eps=, norm=, value_range=, seed=, index=, features=, **settings)``
        returns ``(x_adv, success)``; the engine then judges ``x_adv`` itself.
        """
        adv, ok = attack(
            module, x, y, eps=self.batch_eps(eps), norm=self.norm, value_range=batch["value_range"],
            seed=batch["seed"], index=batch["index"], features=self.features, **settings,
        )  # fmt: skip
        return adv, None, ok


def check_features(features: Any) -> None:
    """``features`` must be None or a non-empty tuple of distinct feature indices ``>= 0``."""
    if features is None:
        return
    if (
        not isinstance(features, tuple)
        or not features
        or any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in features)
        or len(set(features)) != len(features)
    ):
        raise ConfigError(
            f"features (the input features an attack may change) must be a non-empty tuple of distinct indices >= 0, got {features!r}"
        )


def feature_mask(features: tuple[int, ...] | None, x: torch.Tensor) -> torch.Tensor | None:
    """``features`` as a bool mask of one input of ``x`` (shape ``x.shape[1:]``, on its device); None stays None."""
    if features is None:
        return None
    check_features(features)
    size = math.prod(x.shape[1:])
    if max(features) >= size:
        raise ConfigError(
            f"features name index {max(features)}, but an input has only {size} features; give indices below {size}"
        )
    mask = torch.zeros(size, dtype=torch.bool)
    mask[list(features)] = True
    return mask.view(x.shape[1:]).to(x.device)


_REGISTRY: dict[str, Callable[..., AttackMethod]] = {}


def register_attack(key: str) -> Callable[[Callable[..., AttackMethod]], Callable[..., AttackMethod]]:
    """Register a factory ``(eps, norm=..., **settings) -> AttackMethod`` under ``key`` (as timm registers models).

    An :class:`AttackMethod` subclass is such a factory itself. ``key`` is lower case,
    a word of letters, digits, ``-`` and ``_``; its metric stem is :func:`metric_stem`.
    """
    if not key or key != key.strip().lower() or not key.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"an attack's key must be a lower-case word (letters, digits, - or _), got {key!r}")

    def add(factory: Callable[..., AttackMethod]) -> Callable[..., AttackMethod]:
        _REGISTRY[key] = factory
        return factory

    return add


def list_attacks() -> list[str]:
    """Every registered attack name, sorted."""
    _load()
    return sorted(_REGISTRY)


def get_attack(key: str) -> Callable[..., AttackMethod]:
    """The factory registered as ``key``; an unknown name lists the valid ones and the closest."""
    _load()
    name = str(key).strip().lower()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ConfigError(f"unknown attack {key!r}{hint}; choose from: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def make_attack(key: str, eps: float = 0.0, *, norm: str = "linf", **settings: Any) -> AttackMethod:
    """The attack ``key`` at budget ``eps`` in ``norm``, with its settings (unknown ones are an error)."""
    factory = get_attack(key)
    try:
        return factory(eps, norm=norm, **settings)
    except TypeError as err:
        raise ConfigError(f"attack {key}: {err}") from None


def metric_stem(key: str) -> str:
    """``apgd-ce`` as it appears in metric names: ``apgd_ce``."""
    return key.replace("-", "_")


def _load() -> None:
    """Import every attack module of this package once, so each registers itself; then the plug-ins'."""
    from . import _load_all

    _load_all()
    from ...plugins import load_plugins

    load_plugins("dlaudit.attacks", _take)


def _take(name: str, obj: Any) -> bool:
    """An entry point naming an :class:`AttackMethod` subclass registers it under its ``key``."""
    if isinstance(obj, type) and issubclass(obj, AttackMethod):
        register_attack(obj.key or name)(obj)
        return True
    return False


def parse_attack_name(name: str) -> tuple[str, str]:
    """``pgd_linf``, ``apgd-ce_l2`` or ``apgd_ce_l2`` as the registered key and the norm: ``("apgd-ce", "l2")``.

    Raises :class:`ConfigError` for a name without a norm or an attack that is not registered.
    """
    stem, _, norm = str(name).strip().lower().rpartition("_")
    if not stem or norm not in NORMS:
        raise ConfigError(
            f"attack {name!r} must be an attack and a norm, e.g. pgd_linf or apgd-ce_l2 (norms: {', '.join(NORMS)})"
        )
    keys = {metric_stem(k): k for k in list_attacks()}
    key = stem if stem in _REGISTRY else keys.get(stem)
    if key is None:
        get_attack(stem)  # raises, listing the registered attacks
    return key or stem, norm
