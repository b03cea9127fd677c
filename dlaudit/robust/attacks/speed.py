"""How fast the attack engine runs a model: memory layout and compiled gradients.

Neither changes what is computed, only how.

- **Channels-last.** A model with 2-D convolutions attacked on 4-D inputs has its 4-D weights held
  in channels-last order (NHWC) for the attack and given back afterwards (the very same tensors).
  Its activations then follow that layout, which torch's CPU kernels for pooling and convolution
  serve much faster: one PGD step of the seed CNN at batch 250 took 0.82x the time of the
  contiguous layout, resnet18 on 3x32x32 0.91-0.95x, the 8x8 digits CNN 0.78-0.97x (bench notes in
  ``bench/attacks.py``). Convolutions sum in another order, so a gradient component of about 1e-9
  can change sign; on the reference models no robust-accuracy number changed.
  ``using(channels_last=False)`` turns it off.
- **torch.compile** (``using(compile=True)``, ``--compile``): the gradient of the attack's loss with
  respect to the input, ``torch.func.grad`` of it, compiled once per model and loss, so forward and
  backward run as one graph. The first step of every ascent runs eagerly, checking the model's
  output and that it has a gradient; the rest run compiled. Where torch cannot compile the model
  (TorchScript; a missing C++ compiler; an operator dynamo cannot trace) the engine says so once
  per model (:func:`notes`) and runs eagerly. With early stopping the batch shrinks: torch then
  compiles a second graph with a dynamic batch dimension, and no more.

``torch.backends.mkldnn`` is left on: turning it off ran the seed CNN's PGD step 1.2x slower and
resnet18's 14x slower on this machine's CPU.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import logging
import types
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ...errors import AnalysisError
from ...graphs import contains_script

__all__ = ["Speed", "current", "using", "layout", "value_and_grad", "notes", "compile_problem", "describe"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Speed:
    """The engine's speed settings: ``compile`` (torch.compile the gradient) and ``channels_last``."""

    compile: bool = False
    channels_last: bool = True

    def to_dict(self) -> dict[str, bool]:
        return {"compile": self.compile, "channels_last": self.channels_last}


_CURRENT: contextvars.ContextVar[Speed] = contextvars.ContextVar("dlaudit_attack_speed", default=Speed())  # noqa: B039 (frozen)
_COMPILED: weakref.WeakKeyDictionary[nn.Module, dict[Callable[..., Any], Callable[..., Any]]] = (
    weakref.WeakKeyDictionary()
)
_REFUSED: weakref.WeakKeyDictionary[nn.Module, str] = weakref.WeakKeyDictionary()
_NOTES: dict[str, str] = {}
_SERIAL = itertools.count()
RECOMPILE_LIMIT = 64
"""Compiled graphs torch may keep per model and loss (its default, 8, is shared by whatever calls
one function; each batch size before the dynamic one, and each guard change, is an entry)."""


def current() -> Speed:
    """The settings in effect (``Speed()`` unless inside :func:`using`)."""
    return _CURRENT.get()


@contextlib.contextmanager
def using(*, compile: bool | None = None, channels_last: bool | None = None) -> Iterator[Speed]:
    """Run the attacks inside with these settings (those not given stay as they are)."""
    now = _CURRENT.get()
    speed = Speed(
        compile=now.compile if compile is None else bool(compile),
        channels_last=now.channels_last if channels_last is None else bool(channels_last),
    )
    token = _CURRENT.set(speed)
    try:
        yield speed
    finally:
        _CURRENT.reset(token)


def notes() -> dict[str, str]:
    """Why a model ran eagerly although compiling was asked for, by model class (since the process started)."""
    return dict(_NOTES)


def describe(settings: Speed | None = None) -> dict[str, Any]:
    """``settings`` (default: those in effect) and the fallback notes, for a result's provenance."""
    out: dict[str, Any] = (settings or current()).to_dict()
    if out["compile"] and _NOTES:
        out["compile_fallbacks"] = notes()
    return out


# -- channels-last ------------------------------------------------------------------------


def _conv_weights(module: nn.Module) -> list[nn.Parameter]:
    return [p for p in module.parameters() if p.ndim == 4]


@contextlib.contextmanager
def layout(module: nn.Module, x: torch.Tensor) -> Iterator[bool]:
    """Hold ``module``'s 4-D weights channels-last while inside (4-D inputs only); yields whether it did.

    The weights' values are untouched and the original tensors are put back on the way out.
    """
    if not current().channels_last or x.ndim != 4:
        yield False
        return
    # .to(), not .contiguous(): a weight with one input channel counts as channels-last already,
    # yet only the restrided one makes the convolution's output channels-last.
    held: list[tuple[nn.Parameter, torch.Tensor]] = []
    try:
        for p in _conv_weights(module):
            data = p.data
            new = data.to(memory_format=torch.channels_last)
            if new is not data:
                held.append((p, data))
                p.data = new
    except RuntimeError as err:  # a parameter whose data cannot be swapped (some wrapped tensors): stay as it is
        for p, data in held:
            p.data = data
        log.debug("channels-last layout not applied: %s", err)
        yield False
        return
    if not held:
        yield False
        return
    try:
        yield True
    finally:
        for p, data in held:
            p.data = data


# -- gradients, eager or compiled ------------------------------------------------------------

LossFn = Callable[..., torch.Tensor]
"""``loss(logits, *args) -> (N,)`` per-sample losses."""


def compile_problem(module: nn.Module) -> str | None:
    """Why ``module`` cannot be compiled here, or None."""
    if module in _REFUSED:
        return _REFUSED[module]
    if contains_script(module):
        return "TorchScript models run eagerly: torch.compile cannot trace TorchScript"
    return None


def _refuse(module: nn.Module, reason: str) -> None:
    _REFUSED[module] = reason
    name = type(module).__name__
    if name not in _NOTES:
        _NOTES[name] = reason
        log.warning("--compile: %s; running it eagerly", reason)


def eager_value_and_grad(
    module: nn.Module, loss: LossFn, xa: torch.Tensor, *args: Any, check: Callable[[Any], torch.Tensor] | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logits, per-sample losses and the gradient of their sum with respect to the input, eagerly.

    ``check(output)`` (if given) vets the model's output before the loss sees it.
    """
    xa = xa.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = module(xa)
        if check is not None:
            logits = check(logits)
        losses = loss(logits, *args)
        if not losses.requires_grad:
            raise AnalysisError(
                "the model's output has no gradient with respect to its input (is forward() under torch.no_grad, or does it detach?); "
                "gradient attacks need a differentiable model"
            )
        (grad,) = torch.autograd.grad(losses.sum(), xa)
    return logits.detach(), losses.detach(), grad


def _compiled(module: nn.Module, loss: LossFn) -> Callable[..., Any] | None:
    problem = compile_problem(module)
    if problem is not None:
        _refuse(module, problem)
        return None
    by_loss = _COMPILED.setdefault(module, {})
    fn = by_loss.get(loss)
    if fn is None:

        def summed(xa: torch.Tensor, *args: Any) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
            logits = module(xa)
            losses = loss(logits, *args)
            return losses.sum(), (logits.detach(), losses.detach())

        grad_fn = torch.func.grad(summed, has_aux=True)

        def call(xa: torch.Tensor, *args: Any) -> Any:
            return grad_fn(xa, *args)

        fn = torch.compile(_own_code(call))
        by_loss[loss] = fn
    return fn


def _own_code(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` with a code object of its own. torch keeps compiled graphs, and the record of which
    dimensions changed (it then compiles them as dynamic), on the code object: without this every
    model would share one record, and a model of another input size would get a graph with dynamic
    height and width (measured 1.5x slower than eager) after the first."""
    code = fn.__code__.replace(co_name=f"{fn.__code__.co_name}_{next(_SERIAL)}")
    return types.FunctionType(code, fn.__globals__, code.co_name, fn.__defaults__, fn.__closure__)


def value_and_grad(
    module: nn.Module,
    loss: LossFn,
    xa: torch.Tensor,
    *args: Any,
    first: bool = False,
    check: Callable[[Any], torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(logits, losses, grad)`` at ``xa``: compiled when asked for and possible, else eager.

    ``first`` marks an ascent's first step, which always runs eagerly, with ``check`` on the
    model's output. ``loss`` should be a module-level function (compiled graphs are cached by it).
    """
    if first or not current().compile:
        return eager_value_and_grad(module, loss, xa, *args, check=check)
    fn = _compiled(module, loss)
    if fn is None:
        return eager_value_and_grad(module, loss, xa, *args, check=check)
    try:
        with torch._dynamo.config.patch(recompile_limit=RECOMPILE_LIMIT):
            grad, (logits, losses) = fn(xa.detach(), *args)
    except Exception as err:  # noqa: BLE001 dynamo and inductor raise many types; the eager step reproduces any real error
        first_line = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        _refuse(module, f"torch.compile failed on this model ({type(err).__name__}: {first_line})")
        return eager_value_and_grad(module, loss, xa, *args, check=check)
    return logits, losses, grad
