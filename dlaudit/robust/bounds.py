"""Sound bounds on a classifier's logits over a box of inputs: IBP, CROWN-IBP and CROWN.

- IBP, interval bound propagation: Gowal et al. 2018, "On the effectiveness of
  interval bound propagation for training verifiably robust models",
  https://arxiv.org/abs/1810.12715. Each layer maps a box to a box that contains
  its image: an affine layer by centre and radius (``W c + b``, ``|W| r``), ReLU
  and max pooling (monotone) by applying them to both ends.
- CROWN-IBP: Zhang et al. 2020, "Towards stable and efficient training of
  verifiably robust neural networks", https://arxiv.org/abs/1906.06316. A
  backward pass from the specification (the margins ``z_y - z_j``) through the
  network, relaxing each ReLU linearly using the IBP bounds of its input
  (pre-activation bounds), gives a linear function of the input that bounds the
  margin; its minimum over the input box is the bound.
- CROWN: Zhang et al. 2018, "Efficient neural network robustness certification
  with general activation functions", https://arxiv.org/abs/1811.00866. As
  CROWN-IBP, but the pre-activation bounds of each ReLU are themselves computed by
  backward passes (one per neuron: tighter, more expensive), intersected with IBP's.

ReLU relaxation (``l < 0 < u``): upper ``relu(x) <= u (x - l) / (u - l)``; lower
``relu(x) >= a x`` with the adaptive slope ``a = 1`` if ``u >= -l`` else ``0``
(CROWN-Ada). Max pooling: lower ``max >= x_i*`` (``i*`` the window's element of
largest lower bound), upper ``max <= x_i*`` when ``i*`` dominates its window
(``l_i* >= u_j`` for every other ``j``; non-overlapping windows) and ``max <=
max_j u_j`` otherwise. The margin bound of CROWN-IBP and CROWN is the elementwise
maximum of theirs and IBP's (both are sound), so it is never looser than IBP.

Supported layers (:data:`SUPPORTED`): Linear, Conv2d, ReLU, MaxPool2d, AvgPool2d,
AdaptiveAvgPool2d, Flatten, Dropout (identity: bounds are of the model in eval
mode), BatchNorm1d/2d (eval: the affine map of the running statistics), Identity,
dlaudit's :class:`~dlaudit.models.layers.Normalize`, nested ``nn.Sequential``. A
module with its own ``forward`` is traced with ``torch.fx`` and accepted only if
its graph is a chain of those layers (plus ``relu``, ``flatten``, ``view`` and
``reshape`` that keep the batch dimension); a branch (a residual connection),
any other operation or an unsupported layer raises :class:`~dlaudit.errors.AnalysisError`
naming the first one. Before any bound is trusted, the chain's forward pass is
checked against the model's own output on a probe batch.

Bounds are exact in real arithmetic and computed in the model's floating-point
precision (as in auto_LiRPA), so a margin bound within rounding (about 1e-6
relative in float32) of zero is not a proof; run the model in float64 for that.
"""

from __future__ import annotations

import logging
import math
import operator
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.utils import _pair

from ..errors import AnalysisError, ConfigError, DataError
from ..models.layers import Normalize
from ..utils import model_state

__all__ = [
    "SUPPORTED",
    "BOUND_METHODS",
    "Chain",
    "chain_of",
    "interval_bounds",
    "linear_bounds",
    "margin_spec",
    "margin_lower_bounds",
]

log = logging.getLogger(__name__)

SUPPORTED = (
    "Linear, Conv2d, ReLU, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, Flatten, Dropout, "
    "BatchNorm1d/2d (running statistics), Identity, dlaudit Normalize, nn.Sequential"
)
BOUND_METHODS = ("ibp", "crown-ibp", "crown")

MSG_UNSUPPORTED = (
    "certified bounds do not support {what}; supported: {supported}. "
    "Rewrite the model as a chain of those layers, or certify it with randomized smoothing, which works for any model"
)
MSG_BRANCH = (
    "certified bounds need a chain of layers, but the model's forward uses {node!r} more than once ({users}): "
    "branches and residual connections are not supported; certify it with randomized smoothing instead"
)
MSG_TRACE = "certified bounds cannot trace the forward of {what} with torch.fx ({err}); make it an nn.Sequential of supported layers ({supported})"
MSG_MISMATCH = (
    "the layers found in the model do not reproduce its output (largest difference {diff:.3g}): its forward does "
    "something the layer walk cannot see, so no bound would be sound; make the model a plain chain of supported layers"
)
MSG_HOOK = "certified bounds cannot see what the forward hook on {what} does; remove the hook (bounds ignore it, so they would not be sound)"

_DROPOUTS = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)
_SUPPORTED_TYPES = (nn.Linear, nn.Conv2d, nn.ReLU, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.Flatten, nn.BatchNorm1d,
                    nn.BatchNorm2d, nn.Identity, Normalize, *_DROPOUTS)  # fmt: skip
_SPEC_BUDGET = {"cpu": 1 << 24, "cuda": 1 << 27}
"""Elements of the coefficient tensors a CROWN backward pass may hold at once (float32: 64 MiB on a CPU)."""


# -- the layers ----------------------------------------------------------------------------


class _Op:
    """One layer of a chain: its exact forward, its interval map and its backward relaxation."""

    nonlinear = False
    mixing = False  # a dense linear map: IBP loses tightness when it composes two of them

    def __init__(self, name: str) -> None:
        self.name = name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def interval(self, lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def backward(self, lam: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(lam_in, bias)`` with ``<lam, out> >= <lam_in, in> + bias`` for every input in ``[lo, hi]``.

        ``lam`` has shape ``(B, S, *out)`` (``S`` specifications per input); ``bias`` is ``(B, S)``.
        """
        raise NotImplementedError


class _Affine(_Op):
    """``x -> A x + b``; subclasses give ``A x + b``, ``|A| r`` and ``lam A``."""

    def radius(self, r: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def transpose(self, lam: torch.Tensor, in_shape: tuple[int, ...]) -> torch.Tensor:
        raise NotImplementedError

    def offset(self, in_shape: tuple[int, ...]) -> torch.Tensor | None:
        """``b`` broadcastable against ``(B, S, *out)``, or None when there is none."""
        return None

    def interval(self, lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mid = self.forward((hi + lo) / 2)
        rad = self.radius((hi - lo) / 2)
        return mid - rad, mid + rad

    def backward(self, lam: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        in_shape = tuple(lo.shape[1:])
        new = self.transpose(lam, in_shape)
        b = self.offset(in_shape)
        bias = lam.new_zeros(lam.shape[:2]) if b is None else (lam * b).flatten(2).sum(2)
        return new, bias


class _Linear(_Affine):
    mixing = True

    def __init__(self, name: str, m: nn.Linear) -> None:
        super().__init__(name)
        self.m = m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.m.weight, self.m.bias)

    def radius(self, r: torch.Tensor) -> torch.Tensor:
        return F.linear(r, self.m.weight.abs())

    def transpose(self, lam: torch.Tensor, in_shape: tuple[int, ...]) -> torch.Tensor:
        return lam @ self.m.weight

    def offset(self, in_shape: tuple[int, ...]) -> torch.Tensor | None:
        return self.m.bias


class _Conv2d(_Affine):
    mixing = True

    def __init__(self, name: str, m: nn.Conv2d) -> None:
        super().__init__(name)
        self.m = m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.m._conv_forward(x, self.m.weight, self.m.bias)

    def radius(self, r: torch.Tensor) -> torch.Tensor:
        # with a non-zero padding mode this is |W| applied to the padded radius: an upper bound of |A| r, so still sound
        return self.m._conv_forward(r, self.m.weight.abs(), None)

    def transpose(self, lam: torch.Tensor, in_shape: tuple[int, ...]) -> torch.Tensor:
        b, s = lam.shape[:2]
        g = lam.reshape(b * s, *lam.shape[2:])
        m = self.m
        if m.padding_mode == "zeros" and not isinstance(m.padding, str):
            out = torch.nn.grad.conv2d_input((b * s, *in_shape), m.weight, g, m.stride, m.padding, m.dilation, m.groups)
        else:  # string padding or reflect/replicate/circular: the transpose of the linear map by autograd
            out = _vjp(lambda t: m._conv_forward(t, m.weight, None), g, in_shape)
        return out.reshape(b, s, *in_shape)

    def offset(self, in_shape: tuple[int, ...]) -> torch.Tensor | None:
        return None if self.m.bias is None else self.m.bias.view(-1, 1, 1)


class _Scale(_Affine):
    """A per-channel affine map ``x * a + c``: dlaudit's Normalize, or BatchNorm with running statistics."""

    def __init__(self, name: str, m: nn.Module) -> None:
        super().__init__(name)
        self.m = m

    def _coeffs(self, sample_ndim: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(a, c)`` shaped to broadcast against a sample of ``sample_ndim`` dimensions (channels first)."""
        m = self.m
        if isinstance(m, Normalize):
            a = 1.0 / m.std[0]
            return a, -m.mean[0] * a
        a = torch.rsqrt(m.running_var + m.eps)
        if m.weight is not None:
            a = a * m.weight
        c = -m.running_mean * a
        if m.bias is not None:
            c = c + m.bias
        shape = (-1,) + (1,) * (sample_ndim - 1)
        return a.view(shape), c.view(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.m
        if isinstance(m, Normalize):
            return m(x)
        return F.batch_norm(x, m.running_mean, m.running_var, m.weight, m.bias, training=False, momentum=0.0, eps=m.eps)

    def radius(self, r: torch.Tensor) -> torch.Tensor:
        return r * self._coeffs(r.ndim - 1)[0].abs()

    def transpose(self, lam: torch.Tensor, in_shape: tuple[int, ...]) -> torch.Tensor:
        return lam * self._coeffs(len(in_shape))[0]

    def offset(self, in_shape: tuple[int, ...]) -> torch.Tensor | None:
        return self._coeffs(len(in_shape))[1]


class _AvgPool(_Affine):
    """Average pooling (fixed or adaptive): a linear map with non-negative weights, so ``|A| = A``."""

    mixing = True

    def __init__(self, name: str, m: nn.Module) -> None:
        super().__init__(name)
        self.m = m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.m(x)

    def radius(self, r: torch.Tensor) -> torch.Tensor:
        return self.m(r)

    def transpose(self, lam: torch.Tensor, in_shape: tuple[int, ...]) -> torch.Tensor:
        b, s = lam.shape[:2]
        out = _vjp(self.m, lam.reshape(b * s, *lam.shape[2:]), in_shape)
        return out.reshape(b, s, *in_shape)


class _Reshape(_Affine):
    """Flatten, view or reshape that keeps the batch dimension: each sample's values in row-major order."""

    def __init__(self, name: str, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__(name)
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.fn(x)
        if out.ndim == 0 or out.shape[0] != x.shape[0]:
            raise AnalysisError(
                f"layer {self.name!r} reshapes a batch of {x.shape[0]} into shape {tuple(out.shape)}, mixing samples; "
                "certified bounds need every sample kept apart (flatten from dimension 1)"
            )
        return out

    def radius(self, r: torch.Tensor) -> torch.Tensor:
        return self.forward(r)

    def transpose(self, lam: torch.Tensor, in_shape: tuple[int, ...]) -> torch.Tensor:
        return lam.reshape(*lam.shape[:2], *in_shape)


class _ReLU(_Op):
    nonlinear = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x)

    def interval(self, lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return F.relu(lo), F.relu(hi)

    def backward(self, lam: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        active = (lo >= 0).to(lam.dtype)
        unstable = (lo < 0) & (hi > 0)
        span = torch.where(unstable, hi - lo, torch.ones_like(hi))
        upper = torch.where(unstable, hi / span, active)  # slope of the upper line
        intercept = torch.where(unstable, -lo * upper, torch.zeros_like(lo))
        lower = torch.where(unstable, (hi >= -lo).to(lam.dtype), active)  # CROWN-Ada slope of the lower line
        pos, neg = lam.clamp(min=0), lam.clamp(max=0)
        new = pos * lower.unsqueeze(1) + neg * upper.unsqueeze(1)
        return new, (neg * intercept.unsqueeze(1)).flatten(2).sum(2)


class _MaxPool(_Op):
    nonlinear = True

    def __init__(self, name: str, m: nn.MaxPool2d) -> None:
        super().__init__(name)
        self.m = m
        k, s, d = _pair(m.kernel_size), _pair(m.stride if m.stride is not None else m.kernel_size), _pair(m.dilation)
        self.disjoint = all(si >= di * (ki - 1) + 1 for ki, si, di in zip(k, s, d))  # windows do not overlap

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.m(x)

    def interval(self, lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.m(lo), self.m(hi)

    def _pool(self, x: torch.Tensor, indices: bool = False) -> Any:
        m = self.m
        return F.max_pool2d(
            x, m.kernel_size, m.stride, m.padding, m.dilation, ceil_mode=m.ceil_mode, return_indices=indices
        )

    def backward(self, lam: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if lo.ndim != 4:
            raise AnalysisError(
                f"layer {self.name!r} (MaxPool2d) gets inputs of shape {tuple(lo.shape)}; linear bounds need (N, C, H, W)"
            )
        lmax, idx = self._pool(lo, indices=True)
        umax = self._pool(hi)
        if self.disjoint:  # i* dominates its window when its lower bound beats every other element's upper bound
            others = hi.flatten(2).scatter(2, idx.flatten(2), float("-inf")).view_as(hi)
            dominant = lmax >= self._pool(others)
        else:
            dominant = lmax >= umax
        b, s = lam.shape[:2]
        d = dominant.unsqueeze(1)
        pos, neg = lam.clamp(min=0), lam.clamp(max=0)
        coef = pos + torch.where(d, neg, torch.zeros_like(neg))
        bias = (torch.where(d, torch.zeros_like(neg), neg) * umax.unsqueeze(1)).flatten(2).sum(2)
        c, h, w = lo.shape[1:]
        out = lam.new_zeros(b, s, c, h * w)
        ix = idx.unsqueeze(1).expand(b, s, *idx.shape[1:]).flatten(3)
        out.scatter_add_(3, ix, coef.flatten(3))
        return out.view(b, s, c, h, w), bias


def _vjp(fn: Callable[[torch.Tensor], torch.Tensor], g: torch.Tensor, in_shape: tuple[int, ...]) -> torch.Tensor:
    """``g A`` for the linear map ``fn`` (its backward is its transpose), batched over ``g``'s first dimension."""
    with torch.enable_grad():
        z = torch.zeros((g.shape[0], *in_shape), dtype=g.dtype, device=g.device, requires_grad=True)
        (out,) = torch.autograd.grad(fn(z), z, g)
    return out


# -- walking the model -------------------------------------------------------------------------


def _plain(m: nn.Module, cls: type) -> bool:
    """``m`` is a ``cls`` whose forward is ``cls``'s own (a subclass may do anything)."""
    return isinstance(m, cls) and type(m).forward is cls.forward


def _what(name: str, m: nn.Module | None = None, kind: str | None = None, noun: str = "layer") -> str:
    """``layer '3' (LSTM)``, or ``the model itself (Net)`` for the top module."""
    kind = kind or type(m).__name__
    return f"{noun} {name!r} ({kind})" if name else f"the model itself ({kind})"


def _leaf(m: nn.Module, name: str) -> list[_Op] | None:
    """The ops of a supported leaf layer (``[]`` for an identity in eval mode), or None."""
    if any(_plain(m, cls) for cls in (nn.Identity, *_DROPOUTS)):
        return []
    if _plain(m, nn.Linear):
        return [_Linear(name, m)]
    if _plain(m, nn.Conv2d):
        return [_Conv2d(name, m)]
    if _plain(m, nn.ReLU):
        return [_ReLU(name)]
    if _plain(m, nn.MaxPool2d) and not m.return_indices:
        return [_MaxPool(name, m)]
    if _plain(m, nn.AvgPool2d) or _plain(m, nn.AdaptiveAvgPool2d):
        return [_AvgPool(name, m)]
    if _plain(m, nn.Flatten):
        return [_Reshape(name, m)]
    if _plain(m, Normalize):
        return [_Scale(name, m)]
    if (
        (_plain(m, nn.BatchNorm1d) or _plain(m, nn.BatchNorm2d))
        and m.track_running_stats
        and m.running_mean is not None
    ):
        return [_Scale(name, m)]
    return None


def _plain_sequential(m: nn.Module) -> bool:
    return isinstance(m, nn.Sequential) and type(m).forward is nn.Sequential.forward


def _torch_layer(m: nn.Module) -> bool:
    return type(m).__module__.startswith(("torch.nn", "torch.ao.nn", "torch.jit"))


def _collect(m: nn.Module, name: str, ops: list[_Op]) -> None:
    leaf = _leaf(m, name)
    if leaf is not None:
        ops.extend(leaf)
    elif _plain_sequential(m):
        for child, sub in m.named_children():
            _collect(sub, f"{name}.{child}" if name else child, ops)
    elif _torch_layer(m) or isinstance(m, torch.jit.ScriptModule):
        raise AnalysisError(MSG_UNSUPPORTED.format(what=_what(name, m), supported=SUPPORTED))
    elif isinstance(m, _SUPPORTED_TYPES):
        base = next(cls.__name__ for cls in _SUPPORTED_TYPES if isinstance(m, cls))
        raise AnalysisError(
            MSG_UNSUPPORTED.format(
                what=_what(name, m, kind=f"{type(m).__name__}, a {base} with its own forward"), supported=SUPPORTED
            )
        )
    else:
        ops.extend(_trace(m, name))


class _Tracer(torch.fx.Tracer):
    """Keeps supported layers and torch's own layers opaque (so an unsupported one is named); traces through the rest."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if _leaf(m, module_qualified_name) is not None:
            return True
        if _plain_sequential(m):
            return False
        return _torch_layer(m)


_RELU_FUNCTIONS = (F.relu, torch.relu, torch.relu_, F.relu_)
_RESHAPE_METHODS = ("flatten", "view", "reshape")


def _is_shape(node: torch.fx.Node) -> bool:
    """A node that only reads a tensor's shape (``x.size(0)``, ``x.shape[0]``)."""
    if node.op == "call_method" and node.target in ("size", "dim"):
        return True
    if node.op == "call_function" and node.target is getattr and len(node.args) == 2 and node.args[1] == "shape":
        return True
    return (
        node.op == "call_function"
        and node.target is operator.getitem
        and isinstance(node.args[0], torch.fx.Node)
        and _is_shape(node.args[0])
    )


def _shape_value(arg: Any, current: torch.fx.Node, t: torch.Tensor) -> Any:
    """Evaluate a reshape argument, where shape nodes read the shape of ``t`` (the value of ``current``)."""
    if isinstance(arg, (tuple, list)):
        return type(arg)(_shape_value(a, current, t) for a in arg)
    if not isinstance(arg, torch.fx.Node):
        return arg
    if arg.op == "call_method":
        return getattr(t, arg.target)(*arg.args[1:], **arg.kwargs)
    if arg.target is getattr:
        return t.shape
    return _shape_value(arg.args[0], current, t)[_shape_value(arg.args[1], current, t)]


def _shape_source(node: torch.fx.Node) -> torch.fx.Node:
    while node.op != "placeholder" and _is_shape(node):
        node = node.args[0]  # type: ignore[assignment]
    return node


def _trace(m: nn.Module, name: str) -> list[_Op]:
    """The ops of a module whose forward is a chain of supported layers, traced with torch.fx."""
    try:
        graph = _Tracer().trace(m)
    except (
        torch.fx.proxy.TraceError,
        TypeError,
        ValueError,
        RuntimeError,
        AttributeError,
        NotImplementedError,
        KeyError,
    ) as err:
        raise AnalysisError(
            MSG_TRACE.format(what=_what(name, m), err=str(err).splitlines()[0][:200], supported=SUPPORTED)
        ) from err
    prefix = f"{name}." if name else ""
    ops: list[_Op] = []
    current: torch.fx.Node | None = None
    for node in graph.nodes:
        if node.op == "placeholder":
            if current is not None:
                raise AnalysisError(
                    f"certified bounds need a model of one input; {_what(name, m)} takes more ({node.name!r})"
                )
            current = node
            continue
        if _is_shape(node):
            continue
        if node.op == "output":
            if node.args[0] is not current:
                raise AnalysisError(
                    f"certified bounds need a model that returns one logits tensor; {_what(name, m)} returns {node.args[0]!r}"
                )
            break
        target = _target_name(node)
        tensors = [a for a in (*node.args, *node.kwargs.values()) if isinstance(a, torch.fx.Node) and not _is_shape(a)]
        if node.op == "get_attr":
            raise AnalysisError(
                MSG_UNSUPPORTED.format(
                    what=_what(prefix + str(node.target), kind="a tensor the forward uses directly", noun="attribute"),
                    supported=SUPPORTED,
                )
            )
        if tensors != [current] or node.args[0] is not current:
            raise AnalysisError(
                MSG_UNSUPPORTED.format(
                    what=_what(prefix + node.name, kind=target, noun="operation"), supported=SUPPORTED
                )
            )
        shape_args = [a for a in (*node.args[1:], *node.kwargs.values()) if isinstance(a, torch.fx.Node)]
        if any(_shape_source(a) is not current for a in shape_args):
            raise AnalysisError(
                MSG_UNSUPPORTED.format(
                    what=_what(prefix + node.name, kind=f"{target} with the shape of another tensor", noun="operation"),
                    supported=SUPPORTED,
                )
            )
        new = _node_ops(m, node, current, prefix, target)  # names an unsupported operation before a branch
        users = [u for u in current.users if not _is_shape(u)]
        if len(users) > 1:
            raise AnalysisError(MSG_BRANCH.format(node=current.name, users=", ".join(u.name for u in users)))
        ops.extend(new)
        current = node
    return ops


def _target_name(node: torch.fx.Node) -> str:
    if node.op == "call_module":
        return str(node.target)
    if node.op == "call_method":
        return f"Tensor.{node.target}"
    target = node.target
    mod = getattr(target, "__module__", None) or ""
    return f"{mod}.{getattr(target, '__name__', target)}".lstrip(".")


def _node_ops(m: nn.Module, node: torch.fx.Node, current: torch.fx.Node, prefix: str, target: str) -> list[_Op]:
    name = prefix + (str(node.target) if node.op == "call_module" else node.name)
    if node.op == "call_module":
        sub = m.get_submodule(str(node.target))
        ops: list[_Op] = []
        _collect(sub, name, ops)
        return ops
    if node.op == "call_function" and node.target in _RELU_FUNCTIONS:
        return [_ReLU(name)]
    if node.op == "call_method" and node.target in ("relu", "relu_"):
        return [_ReLU(name)]
    if node.op == "call_method" and node.target == "contiguous":
        return []
    reshape = (node.op == "call_function" and node.target is torch.flatten) or (
        node.op == "call_method" and node.target in _RESHAPE_METHODS
    )
    if reshape:
        args, kwargs = node.args[1:], dict(node.kwargs)
        method = "flatten" if node.op == "call_function" else str(node.target)

        def fn(t: torch.Tensor, args: tuple = args, kwargs: dict = kwargs, method: str = method) -> torch.Tensor:
            return getattr(t, method)(*_shape_value(args, current, t), **_shape_value(kwargs, current, t))

        return [_Reshape(name, fn)]
    raise AnalysisError(MSG_UNSUPPORTED.format(what=_what(name, kind=target, noun="operation"), supported=SUPPORTED))


class Chain:
    """A model as a chain of layers that bounds can be propagated through.

    Built by :func:`chain_of`; holds references to the model's own layers, so its
    bounds follow the parameters as they train.
    """

    def __init__(self, ops: Sequence[_Op]) -> None:
        self.ops = list(ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for op in self.ops:
            x = op.forward(x)
        return x

    def intervals(
        self, lo: torch.Tensor, hi: torch.Tensor, stop: int | None = None
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """IBP: the box of every layer's input, and last the box of the logits (of layer ``stop``'s input with ``stop``)."""
        out = [(lo, hi)]
        for op in self.ops[:stop]:
            out.append(op.interval(*out[-1]))
        return out

    def describe(self) -> list[str]:
        return [f"{op.name or '-'}: {type(op).__name__.lstrip('_')}" for op in self.ops]


def chain_of(module: nn.Module, probe: torch.Tensor | None = None) -> Chain:
    """The module as a :class:`Chain`, checked against the module's own output on ``probe``.

    Raises
    ------
    AnalysisError
        Naming the first unsupported layer or operation, or when the chain does
        not reproduce the module's output (then no bound would be sound).
    """
    for name, sub in module.named_modules():
        if sub._forward_hooks or sub._forward_pre_hooks:
            raise AnalysisError(MSG_HOOK.format(what=_what(name, sub)))
    ops: list[_Op] = []
    with model_state(module, train=False, grad=False):
        _collect(module, "", ops)  # traced in eval mode: the mode the bounds are of
    chain = Chain(ops)
    if probe is not None:
        _check_reproduces(chain, module, probe)
    return chain


def _check_reproduces(chain: Chain, module: nn.Module, probe: torch.Tensor) -> None:
    with model_state(module, train=False, grad=False), torch.no_grad():
        want = module(probe)
        got = chain.forward(probe)
    if not isinstance(want, torch.Tensor) or got.shape != want.shape:
        raise AnalysisError(MSG_MISMATCH.format(diff=math.inf))
    diff = float((got - want).abs().max()) if want.numel() else 0.0
    scale = float(want.abs().max()) if want.numel() else 0.0
    if not diff <= 1e-4 * (1.0 + scale):
        raise AnalysisError(MSG_MISMATCH.format(diff=diff))


# -- bounds --------------------------------------------------------------------------------


def _check_box(x_lower: torch.Tensor, x_upper: torch.Tensor) -> None:
    if not isinstance(x_lower, torch.Tensor) or not isinstance(x_upper, torch.Tensor):
        raise DataError("x_lower and x_upper must be tensors")
    if x_lower.shape != x_upper.shape or x_lower.ndim < 2:
        raise DataError(
            f"x_lower and x_upper must be batches of the same shape (N, ...), got {tuple(x_lower.shape)} and {tuple(x_upper.shape)}"
        )
    if not bool(torch.isfinite(x_lower).all() and torch.isfinite(x_upper).all()):
        raise DataError("x_lower and x_upper must be finite")
    if bool((x_lower > x_upper).any()):
        raise DataError("x_lower must be <= x_upper everywhere (an empty box has no bounds)")


def _probe(x_lower: torch.Tensor, x_upper: torch.Tensor) -> torch.Tensor:
    mid = (x_lower[:3] + x_upper[:3]) / 2
    return mid if len(mid) > 1 else mid.expand(2, *mid.shape[1:]).clone()


def interval_bounds(
    module: nn.Module, x_lower: torch.Tensor, x_upper: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """IBP bounds on the logits of every input in the box ``[x_lower, x_upper]``.

    Gowal et al. 2018, https://arxiv.org/abs/1810.12715.

    Parameters
    ----------
    module
        A chain of supported layers (see :data:`SUPPORTED`), on the boxes' device.
    x_lower, x_upper
        The box, shape ``(N, ...)``; for an L-inf ball in a value range,
        ``(x - eps).clamp(lo, hi)`` and ``(x + eps).clamp(lo, hi)``.

    Returns
    -------
    (lower, upper)
        Shape ``(N, classes)``: ``lower <= module(x') <= upper`` for every ``x'`` in the box
        (the model in eval mode).
    """
    _check_box(x_lower, x_upper)
    chain = chain_of(module, _probe(x_lower, x_upper))
    return chain.intervals(x_lower, x_upper)[-1]


def margin_spec(y: torch.Tensor, num_classes: int, *, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The specification matrix of the margins: ``C[b, j] = e_y - e_j`` (row ``y`` is zero), shape ``(N, K, K)``."""
    eye = torch.eye(num_classes, dtype=dtype, device=y.device)
    return eye[y].unsqueeze(1) - eye.unsqueeze(0)


def _spec_ibp(
    chain: Chain, boxes: list[tuple[torch.Tensor, torch.Tensor]], spec: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """IBP bounds on ``spec @ logits``, with the specification folded into the last Linear layer (Gowal et al.)."""
    last = chain.ops[-1] if chain.ops else None
    lo, hi = boxes[-2] if chain.ops else boxes[-1]
    if isinstance(last, _Linear) and lo.ndim == 2:
        w = spec @ last.m.weight  # (B, S, in)
        mid = torch.einsum("bsi,bi->bs", w, (hi + lo) / 2)
        rad = torch.einsum("bsi,bi->bs", w.abs(), (hi - lo) / 2)
        if last.m.bias is not None:
            mid = mid + spec @ last.m.bias
        return mid - rad, mid + rad
    zl, zu = boxes[-1]
    pos, neg = spec.clamp(min=0), spec.clamp(max=0)
    lower = torch.einsum("bsk,bk->bs", pos, zl) + torch.einsum("bsk,bk->bs", neg, zu)
    upper = torch.einsum("bsk,bk->bs", pos, zu) + torch.einsum("bsk,bk->bs", neg, zl)
    return lower, upper


def _backward_lower(
    chain: Chain, boxes: list[tuple[torch.Tensor, torch.Tensor]], stop: int, lam: torch.Tensor
) -> torch.Tensor:
    """Lower bound of ``<lam, output of layer stop-1>`` over the input box, by one backward pass."""
    bias = lam.new_zeros(lam.shape[:2])
    for i in range(stop - 1, -1, -1):
        lam, b = chain.ops[i].backward(lam, *boxes[i])
        bias = bias + b
    xl, xu = boxes[0]
    concrete = lam.clamp(min=0) * xl.unsqueeze(1) + lam.clamp(max=0) * xu.unsqueeze(1)
    return bias + concrete.flatten(2).sum(2)


def _needs_crown(chain: Chain, i: int) -> bool:
    """Whether backward bounds can beat IBP at the input of layer ``i``: some dense map since the last nonlinearity
    (two from the input: IBP is exact through one dense map between diagonal ones)."""
    mixing = 0
    for op in reversed(chain.ops[:i]):
        if op.nonlinear:
            return mixing >= 1
        mixing += op.mixing
    return mixing >= 2


def _crown_boxes(
    chain: Chain, lo: torch.Tensor, hi: torch.Tensor, stop: int | None = None
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """CROWN: the input box of every nonlinear layer by backward passes (one specification per neuron), intersected with IBP."""
    boxes = [(lo, hi)]
    budget = _SPEC_BUDGET.get(lo.device.type, _SPEC_BUDGET["cuda"])
    for i, op in enumerate(chain.ops[:stop]):
        if op.nonlinear and _needs_crown(chain, i):
            lo, up = boxes[i]
            cl, cu = _identity_bounds(chain, boxes, i, budget)
            boxes[i] = (torch.maximum(lo, cl), torch.minimum(up, cu))
        boxes.append(op.interval(*boxes[i]))
    return boxes


def _identity_bounds(
    chain: Chain, boxes: list[tuple[torch.Tensor, torch.Tensor]], i: int, budget: int
) -> tuple[torch.Tensor, torch.Tensor]:
    lo = boxes[i][0]
    b, shape = lo.shape[0], tuple(lo.shape[1:])
    d = math.prod(shape)
    widest = max(math.prod(bx[0].shape[1:]) for bx in boxes[: i + 1])
    step = max(1, budget // max(1, 2 * b * widest))
    lower, upper = [], []
    for a in range(0, d, step):
        s = min(step, d - a)
        lam = lo.new_zeros(b, s, d)
        lam[:, torch.arange(s, device=lo.device), torch.arange(a, a + s, device=lo.device)] = 1.0
        lam = lam.view(b, s, *shape)
        both = _backward_lower(chain, boxes, i, torch.cat([lam, -lam], dim=1))
        lower.append(both[:, :s])
        upper.append(-both[:, s:])
    return torch.cat(lower, dim=1).view(b, *shape), torch.cat(upper, dim=1).view(b, *shape)


def _spec_bounds(
    chain: Chain, x_lower: torch.Tensor, x_upper: torch.Tensor, spec: torch.Tensor, method: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounds on ``spec @ logits`` (spec ``(B, S, K)``) by ``method``, each side the tighter of IBP's and the linear bound's."""
    if method == "crown":
        boxes = _crown_boxes(chain, x_lower, x_upper)
    else:
        boxes = chain.intervals(x_lower, x_upper)
    lower, high = _spec_ibp(chain, boxes, spec)
    if method == "ibp" or not chain.ops:
        return lower, high
    s = spec.shape[1]
    both = _backward_lower(chain, boxes, len(chain.ops), torch.cat([spec, -spec], dim=1))
    return torch.maximum(lower, both[:, :s]), torch.minimum(high, -both[:, s:])


def _check_method(method: str) -> None:
    if method not in BOUND_METHODS:
        raise ConfigError(f"unknown bound method {method!r}; choose from: {', '.join(BOUND_METHODS)}")


def linear_bounds(
    module: nn.Module,
    x_lower: torch.Tensor,
    x_upper: torch.Tensor,
    spec: torch.Tensor | None = None,
    *,
    method: str = "crown-ibp",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounds on ``spec @ logits`` over the box by backward linear relaxation (CROWN-IBP or CROWN).

    Zhang et al. 2020, https://arxiv.org/abs/1906.06316 (CROWN-IBP) and Zhang et al.
    2018, https://arxiv.org/abs/1811.00866 (CROWN). Each side is the tighter of the
    linear bound and IBP's (both sound).

    Parameters
    ----------
    spec
        ``(S, K)`` or ``(N, S, K)``: the linear functions of the ``K`` logits to bound;
        None bounds the logits themselves.
    method
        ``"crown-ibp"`` (pre-activation bounds by IBP), ``"crown"`` (by backward
        passes: tighter, one pass per neuron) or ``"ibp"``.

    Returns
    -------
    (lower, upper)
        Shape ``(N, S)``.
    """
    _check_method(method)
    _check_box(x_lower, x_upper)
    chain = chain_of(module, _probe(x_lower, x_upper))
    n = len(x_lower)
    if spec is None:
        with torch.no_grad():
            k = chain.forward(x_lower[:1]).shape[1]
        spec = torch.eye(k, dtype=x_lower.dtype, device=x_lower.device)
    spec = spec.to(device=x_lower.device, dtype=x_lower.dtype)
    if spec.ndim == 2:
        spec = spec.unsqueeze(0).expand(n, -1, -1)
    if spec.ndim != 3 or spec.shape[0] != n:
        raise DataError(f"spec must have shape (S, classes) or ({n}, S, classes), got {tuple(spec.shape)}")
    return _spec_bounds(chain, x_lower, x_upper, spec, method)


def _foldable(chain: Chain) -> bool:
    """The chain ends in a Linear layer (its input is then (N, features)), into which a specification folds."""
    return bool(chain.ops) and isinstance(chain.ops[-1], _Linear)


def _margin_ibp(
    chain: Chain, boxes: list[tuple[torch.Tensor, torch.Tensor]], y: torch.Tensor, num_classes: int
) -> torch.Tensor:
    """IBP lower bounds of ``z_y - z_j`` (0 at ``j = y``), the specification folded into the last Linear layer.

    ``(w_y - w_j) . c + b_y - b_j - |w_y - w_j| . r`` over the box (centre ``c``, radius ``r``) of the
    last layer's input: the same numbers as ``(C W)`` applied to the box (Gowal et al.), computed as one
    matrix product per label instead of a batched one per input.
    """
    n = len(chain.ops)
    if not _foldable(chain):
        zl, zu = boxes[n]
        return (zl.gather(1, y.view(-1, 1)) - zu).scatter(1, y.view(-1, 1), 0.0)
    last = chain.ops[-1]
    lo, hi = boxes[n - 1]
    w = last.m.weight
    z = last.forward((hi + lo) / 2)
    centre = z.gather(1, y.view(-1, 1)) - z
    rad = (hi - lo) / 2
    order = torch.argsort(y)
    parts = [
        rad[idx] @ (w[c] - w).abs().T
        for c, idx in enumerate(torch.split(order, torch.bincount(y, minlength=num_classes).tolist()))
        if len(idx)
    ]
    spread = torch.cat(parts)[torch.argsort(order)]
    return centre - spread


def margin_lower_bounds(
    chain: Chain,
    x_lower: torch.Tensor,
    x_upper: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    method: str,
    *,
    fill: float = math.inf,
) -> torch.Tensor:
    """Lower bounds of the margins ``z_y - z_j`` over the box, shape ``(N, K)``, ``fill`` at ``j = y``.

    The linear methods keep, for each margin, the larger of their bound and IBP's. With ``fill=0``,
    minus this is Gowal et al.'s worst-case logit vector (differentiable: IBP training's input).
    """
    stop = len(chain.ops) - 1 if _foldable(chain) else None  # the logits' box is not needed
    boxes = (
        _crown_boxes(chain, x_lower, x_upper, stop) if method == "crown" else chain.intervals(x_lower, x_upper, stop)
    )
    lower = _margin_ibp(chain, boxes, y, num_classes)
    if method != "ibp" and chain.ops:
        spec = margin_spec(y, num_classes, dtype=x_lower.dtype)
        lower = torch.maximum(lower, _backward_lower(chain, boxes, len(chain.ops), spec))
    return lower if fill == 0 else lower.scatter(1, y.view(-1, 1), fill)
