"""Known architectures a bare ``state_dict`` is loaded into: torchvision's classification
builders (``torchvision:resnet18``) and timm's models (``timm:NAME``, where timm is installed).

The most common way to save a model is ``torch.save(model.state_dict(), "model.pt")``:
weights without code. :func:`build_architecture` builds the named architecture with
random weights (never downloading pretrained ones), and :func:`load_weights` loads the
state_dict into it with ``strict=True``, listing the first missing, unexpected and
mis-shaped keys when it does not fit. The name is the card's ``architecture``, so a
checkpoint written with :func:`dlaudit.save_model` rebuilds it without any flag.
"""

from __future__ import annotations

import difflib
import functools
import logging
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from .errors import ConfigError, ModelLoadError

__all__ = [
    "SOURCES",
    "is_known_architecture",
    "split_architecture",
    "list_architectures",
    "build_architecture",
    "infer_num_classes",
    "default_input_shape",
    "load_weights",
    "fit_problems",
]

log = logging.getLogger(__name__)

SOURCES = ("torchvision", "timm")
"""The libraries whose builders ``--arch SOURCE:NAME`` names."""
_REFUSED_KWARGS = ("weights", "pretrained", "progress", "pretrained_cfg", "pretrained_cfg_overlay", "checkpoint_path")
_SHOWN = 3
"""How many keys of each kind a mismatch message names."""


def is_known_architecture(name: str | None) -> bool:
    """Whether ``name`` is ``SOURCE:NAME`` for one of :data:`SOURCES` (not a dlaudit reference model)."""
    return bool(name) and str(name).split(":", 1)[0] in SOURCES and ":" in str(name)


def split_architecture(name: str) -> tuple[str, str]:
    """``"torchvision:resnet18"`` as ``("torchvision", "resnet18")``; anything else is a :class:`ConfigError`."""
    source, sep, model = str(name).strip().partition(":")
    if not sep or source not in SOURCES or not model.strip():
        raise ConfigError(
            f"--arch must be SOURCE:NAME with SOURCE one of {', '.join(SOURCES)}, e.g. torchvision:resnet18, got {name!r}"
        )
    return source, model.strip()


def _timm() -> Any:
    try:
        import timm
    except ImportError:
        raise ConfigError(
            "--arch timm:... needs timm, which is not installed here; install it with 'pip install timm' "
            "(or pip install 'dlaudit[timm]'), or use a torchvision:NAME architecture"
        ) from None
    return timm


@functools.cache
def list_architectures(source: str) -> tuple[str, ...]:
    """Every classification model ``source`` can build (torchvision's ``list_models(module=models)``, timm's ``list_models()``)."""
    if source == "torchvision":
        import torchvision.models as models

        return tuple(models.list_models(module=models))
    if source == "timm":
        return tuple(_timm().list_models())
    raise ConfigError(f"unknown architecture source {source!r}; use one of {', '.join(SOURCES)}")


def _check_name(source: str, model: str) -> None:
    names = list_architectures(source)
    if model in names:
        return
    close = difflib.get_close_matches(model, names, n=5, cutoff=0.6)
    hint = (
        f"close matches: {', '.join(f'{source}:{c}' for c in close)}"
        if close
        else f"{len(names)} are known, e.g. {', '.join(f'{source}:{c}' for c in names[:5])}"
    )
    raise ConfigError(f"unknown architecture {source}:{model}; {hint}")


def build_architecture(
    name: str, num_classes: int, kwargs: Mapping[str, Any] | None = None, *, device: str | torch.device = "cpu"
) -> nn.Module:
    """Build ``name`` (``torchvision:NAME`` or ``timm:NAME``) with random weights and ``num_classes`` outputs.

    Parameters
    ----------
    name
        ``SOURCE:NAME``; an unknown NAME lists the close matches.
    num_classes
        Outputs of the classifier.
    kwargs
        The builder's keyword arguments (``--arch-kwargs``), e.g. ``{"dropout": 0.2}``;
        pretrained weights are never asked for (the state_dict holds the weights).
    device
        Where to build it; ``"meta"`` builds the shapes only (no memory, no initialisation cost).
    """
    source, model = split_architecture(name)
    kwargs = dict(kwargs or {})
    refused = [k for k in kwargs if k in _REFUSED_KWARGS or k == "num_classes"]
    if refused:
        raise ConfigError(
            f"--arch-kwargs {', '.join(refused)}: dlaudit loads the weights from your file and takes the class count "
            "from --num-classes (or the card); leave these out"
        )
    _check_name(source, model)
    if torch.device(device).type != "meta":
        from .limits import check_model_size

        check_model_size(
            lambda: build_architecture(name, num_classes, kwargs, device="meta"),
            f"architecture {name}" + (f" with {kwargs}" if kwargs else ""),
            "check --num-classes and --arch-kwargs",
        )
    try:
        with torch.device(device):
            if source == "torchvision":
                import torchvision.models as models

                return models.get_model(model, weights=None, num_classes=int(num_classes), **kwargs)
            return _timm().create_model(model, pretrained=False, num_classes=int(num_classes), **kwargs)
    except (TypeError, ValueError, AssertionError, KeyError) as err:  # the builders' own checks of their arguments
        raise ConfigError(f"architecture {name} could not be built with {kwargs or 'no arguments'}: {err}") from err


def infer_num_classes(name: str, kwargs: Mapping[str, Any], state: Mapping[str, torch.Tensor]) -> int | None:
    """The class count a state_dict was trained for: the output size of the classifier's weight.

    The classifier's keys are those whose shapes change with ``num_classes`` (two
    skeletons on the meta device, 1000 and 1001 classes); None when the file holds none of them.
    """
    skeleton = _skeleton(name, 1000, kwargs)
    state = _strip_prefixes(skeleton, state)
    a = skeleton.state_dict()
    b = _skeleton(name, 1001, kwargs).state_dict()
    for key, tensor in a.items():
        if key in b and tuple(tensor.shape) != tuple(b[key].shape) and key in state:
            shape = tuple(state[key].shape)
            if shape and shape[0] >= 2:
                return int(shape[0])
    return None


def default_input_shape(name: str, kwargs: Mapping[str, Any] | None = None) -> tuple[int, ...] | None:
    """The input shape ``name``'s published weights were trained at, read offline from the library's metadata
    (torchvision's weights enum, timm's pretrained config): ``(3, 224, 224)`` for ``torchvision:resnet18``.

    An ``image_size`` among ``kwargs`` (a ViT built for 32x32 inputs) wins; None when neither tells.
    """
    source, model = split_architecture(name)
    size = (kwargs or {}).get("image_size")
    if isinstance(size, int) and not isinstance(size, bool) and size > 0:
        return (3, size, size)
    try:
        if source == "torchvision":
            import torchvision.models as models

            crop = models.get_model_weights(model).DEFAULT.transforms().crop_size
            return (3, int(crop[0]), int(crop[-1]))
        shape = _timm().get_pretrained_cfg(model).input_size
        return tuple(int(s) for s in shape) if shape else None
    except (ValueError, KeyError, AttributeError, TypeError, IndexError):  # no published weights, no metadata
        return None


def _skeleton(name: str, num_classes: int, kwargs: Mapping[str, Any]) -> nn.Module:
    """The architecture on the meta device (shapes only); on the CPU for a builder that reads values while it builds."""
    try:
        return build_architecture(name, num_classes, kwargs, device="meta")
    except (RuntimeError, NotImplementedError):
        return build_architecture(name, num_classes, kwargs)


def fit_problems(module: nn.Module, state: Mapping[str, Any]) -> list[str]:
    """What keeps ``state`` from loading into ``module`` with ``strict=True``, first ones first (empty when it fits)."""
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k} is {tuple(state[k].shape)} in the file but {expected[k]} in the architecture"
        for k in expected
        if k in state and isinstance(state[k], torch.Tensor) and tuple(state[k].shape) != expected[k]
    ]
    out = wrong[:_SHOWN]
    if missing:
        more = f" and {len(missing) - _SHOWN} more" if len(missing) > _SHOWN else ""
        out.append(f"missing {', '.join(missing[:_SHOWN])}{more}")
    if unexpected:
        more = f" and {len(unexpected) - _SHOWN} more" if len(unexpected) > _SHOWN else ""
        out.append(f"unexpected {', '.join(unexpected[:_SHOWN])}{more}")
    return out


_PREFIXES = ("module.", "_orig_mod.")
"""What ``nn.DataParallel`` and ``torch.compile`` put in front of every key."""


def _strip_prefixes(module: nn.Module, state: Mapping[str, torch.Tensor]) -> Mapping[str, torch.Tensor]:
    expected = module.state_dict().keys()
    for prefix in _PREFIXES:
        if state and all(k.startswith(prefix) for k in state) and not any(k.startswith(prefix) for k in expected):
            log.info("state_dict keys start with %r (DataParallel or torch.compile); reading them without it", prefix)
            state = {k[len(prefix) :]: v for k, v in state.items()}
    return state


def load_weights(
    name: str, num_classes: int, kwargs: Mapping[str, Any], state: Mapping[str, torch.Tensor], *, source: str
) -> nn.Module:
    """Build ``name`` and load ``state`` into it with ``strict=True``; a :class:`ModelLoadError` lists what does not fit.

    The shapes are compared on a meta-device skeleton first, so a file that does not
    fit costs no memory and no weight initialisation.
    """
    skeleton = _skeleton(name, num_classes, kwargs)
    state = _strip_prefixes(skeleton, state)
    problems = fit_problems(skeleton, state)
    if problems:
        raise ModelLoadError(
            f"{source}: the state_dict does not fit {name} with {num_classes} classes"
            + (f" and {dict(kwargs)}" if kwargs else "")
            + f": {'; '.join(problems)}; check --arch, --num-classes and --arch-kwargs against how the model was built"
        )
    module = build_architecture(name, num_classes, kwargs)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as err:  # what the shape check cannot see (e.g. a dtype torch cannot copy)
        first = (str(err).strip().splitlines() or [""])[0][:300]
        raise ModelLoadError(f"{source}: the state_dict does not load into {name}: {first}") from err
    return module.eval()
