"""Models with randomness at inference: detect it, seed it, and judge them by the majority of several passes.

A model whose eval-mode forward pass is random (dropout left on, a randomized defence, a
noise layer) looks more robust than it is when attacked and judged on one pass: a
gradient from one pass points the wrong way for the next, and an adversarial input that
fools the model two times in three may be judged robust on the pass that did not.
AutoAttack's authors evaluate such models with its ``rand`` version: APGD-CE and APGD-DLR
with expectation over transformation (EoT: the gradient averaged over 20 passes; Athalye,
Engstrom, Ilyas and Kwok 2018, "Synthesizing robust adversarial examples",
https://arxiv.org/abs/1707.07397; Croce and Hein 2020, https://arxiv.org/abs/2003.01690,
and ``autoattack.py``'s ``version='rand'``). dlaudit does the same (``autoattack(...,
version="rand")``), and counts a sample as classified correctly when the majority of
:data:`VOTE_PASSES` passes classify it correctly (:class:`MajorityVote`).

Per-sample keyed randomness (:class:`Keyed`): a stochastic model draws from torch's global
generator, in the order of the rows of each batch, so which random numbers a sample gets
would depend on the batch it happens to be in. Where dlaudit knows the samples' global
indices (AutoAttack's ``rand`` version and its majority votes), it runs the model wrapped in
:class:`Keyed`: the rows are grouped into fixed chunks of :data:`KEY_CHUNK` consecutive
global indices, every chunk is run as a full ``KEY_CHUNK``-row batch (absent rows padded with
zeros) with the generator seeded from ``(seed, chunk, call tag, pass)``. A sample then gets
the same random numbers, and the same logits to the last bit, for any batch size and any
split of the work over Ray workers. The call tag names the call site (APGD's loss, restart
and step; a majority vote), so a vote on a given input of a given sample always says the
same thing, whether the attack asks it while it searches or the engine asks it after.
The robustness section does the same for the FGSM and PGD curves (``Attack(keyed=True)``: each
restart's steps keyed by the samples, no early stopping, the attacked inputs judged by a keyed
vote), the minimal budget, noise and corruptions (a keyed vote per sample and level). Elsewhere
(Square, FAB, the masking checks on a stochastic model) the global generator is seeded from the
audit's seed inside :func:`seeded` and restored after: the same seed, plan and batch size give
the same numbers, **a different batch size or worker split may not** (the report says so).
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import ConfigError
from ..utils import model_state, next_device

__all__ = [
    "DETECT_SAMPLES",
    "EOT_ITERATIONS",
    "KEY_CHUNK",
    "VOTE_PASSES",
    "Keyed",
    "MajorityVote",
    "Stochasticity",
    "detect",
    "keyed_rows",
    "seeded",
    "vote_predictions",
]

DETECT_SAMPLES = 16
"""Inputs the detection runs the model on (twice)."""
EOT_ITERATIONS = 20
"""Passes whose gradients APGD averages on a stochastic model (AutoAttack's ``rand`` version)."""
VOTE_PASSES = 9
"""Passes whose majority classifies an input of a stochastic model (odd, so two classes cannot tie)."""
KEY_CHUNK = 8
"""Consecutive global sample indices that share one seeded generator in :class:`Keyed` (a fixed
constant: it decides which random numbers each sample gets; rows absent from a chunk are padded)."""
_STREAM = 0x5EED_57C
"""Mixed into the seed of :func:`seeded`, so its draws differ from every other seeded stream."""
_VOTE_TAG = ("vote",)


@dataclass(frozen=True)
class Stochasticity:
    """What :func:`detect` found: the largest difference between two passes' logits, and the modules to blame."""

    max_difference: float
    differing: int
    """Inputs (of those tried) whose logits differed between the two passes."""
    tried: int
    suspects: tuple[str, ...]
    """Dropout modules that stay in training mode after ``eval()`` (empty: the randomness is elsewhere)."""

    def reason(self) -> str:
        """One sentence for the report: what was seen, and what it likely comes from."""
        where = (
            f"dropout left on in eval mode ({', '.join(self.suspects[:3])}{', ...' if len(self.suspects) > 3 else ''})"
            if self.suspects
            else "randomness in its forward pass (dropout called with training=True, a noise layer or a randomized defence)"
        )
        return (
            f"two eval-mode forward passes on the same {self.tried} inputs differ "
            f"({self.differing} of {self.tried} inputs, logits by up to {self.max_difference:.3g}): {where}"
        )


@contextlib.contextmanager
def seeded(seed: int, device: torch.device | str | None = None) -> Iterator[None]:
    """Seed torch's global generator (CPU, and ``device`` if it is CUDA) from ``seed``; restore it after."""
    dev = torch.device(device) if device is not None else torch.device("cpu")
    cuda = [dev.index or 0] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed((int(seed) * 0x9E3779B1 + _STREAM) % (1 << 63))
        yield


def detect(module: nn.Module, x: torch.Tensor, *, seed: int = 0, samples: int = DETECT_SAMPLES) -> Stochasticity | None:
    """Whether ``module`` is random at inference: two eval-mode passes on the same inputs that differ.

    Runs the first ``samples`` inputs of ``x`` twice in eval mode without gradients, under
    :func:`seeded` (so the check itself is repeatable and leaves torch's generator as it
    was), and leaves the model as found. Returns None for a deterministic model.
    """
    if len(x) == 0:
        return None
    dev = next_device(module)
    xs = x[:samples].to(dev)
    with model_state(module, train=False, grad=False), seeded(seed, dev), torch.no_grad():
        suspects = tuple(
            name or type(m).__name__
            for name, m in module.named_modules()
            if isinstance(m, nn.modules.dropout._DropoutNd) and m.training and m.p > 0
        )
        a, b = module(xs).float(), module(xs).float()
    if a.shape != b.shape:
        return Stochasticity(float("inf"), len(xs), len(xs), suspects)
    diff = (a - b).abs().flatten(1).amax(dim=1)
    differing = int((diff > 0).sum())
    if differing == 0:
        return None
    return Stochasticity(float(diff.max()), differing, len(xs), suspects)


class MajorityVote(nn.Module):
    """``module`` judged by the majority of ``passes`` forward passes.

    The output is, per input and class, the number of passes predicting that class plus the
    mean softmax probability over the passes divided by ``passes + 1`` (so ``argmax`` is the
    majority class, a tie broken by the higher mean probability). Not for gradients. On a
    :class:`Keyed` model inside :func:`keyed_rows`, the passes are keyed by the samples and the
    vote's own tag, so the verdict on an input depends on that input and its sample alone.
    """

    def __init__(self, module: nn.Module, passes: int = VOTE_PASSES) -> None:
        super().__init__()
        if isinstance(passes, bool) or not isinstance(passes, int) or passes < 1:
            raise ConfigError(
                f"passes (forward passes per majority vote) must be an integer of at least 1, got {passes!r}"
            )
        self.module = module
        self.passes = int(passes)
        self.training = module.training  # so restoring the wrapper's mode restores the model's, not train mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scope = _SCOPE.get()  # a vote keys its passes by the samples alone: the same input, the same verdict
        keys = keyed_rows(scope.rows, *_VOTE_TAG) if scope is not None else contextlib.nullcontext()
        with torch.no_grad(), keys:
            logits = self.module(x).float()
            votes, probs = torch.zeros_like(logits), torch.zeros_like(logits)
            for k in range(self.passes):
                if k:
                    logits = self.module(x).float()
                votes += torch.nn.functional.one_hot(logits.argmax(dim=1), logits.shape[1]).float()
                probs += logits.softmax(dim=1)
            return votes + probs / (self.passes * (self.passes + 1))


# -- per-sample keyed randomness ----------------------------------------------------------------


@dataclass
class _Scope:
    rows: torch.Tensor
    """Global sample index of each row of the batches run inside the scope (CPU, long)."""
    tag: tuple[object, ...]
    calls: int = field(default=0)
    """Forward passes run so far inside the scope (each gets fresh random numbers)."""


_SCOPE: contextvars.ContextVar[_Scope | None] = contextvars.ContextVar("dlaudit_keyed_rows", default=None)


@contextlib.contextmanager
def keyed_rows(rows: torch.Tensor, *tag: object) -> Iterator[None]:
    """Inside, a :class:`Keyed` model's batches are the samples ``rows`` (global indices), call site ``tag``.

    The k-th forward pass inside the scope draws the random numbers keyed by
    ``(seed, chunk, tag, k)``; a model that is not :class:`Keyed` ignores the scope.
    """
    token = _SCOPE.set(_Scope(torch.as_tensor(rows).detach().to("cpu", torch.long), tuple(tag)))
    try:
        yield
    finally:
        _SCOPE.reset(token)


def _chunk_seed(seed: int, chunk: int, tag: tuple[object, ...], call: int) -> int:
    text = repr((int(seed), int(chunk), tag, int(call))).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little") >> 1


class Keyed(nn.Module):
    """``module`` with its randomness keyed per sample (see the module docstring).

    Inside :func:`keyed_rows` (with one global index per row of the input), the rows are run in
    chunks of :data:`KEY_CHUNK` consecutive global indices, each as a full ``KEY_CHUNK``-row
    batch padded with zeros, under torch's generator (CPU, and CUDA where the input is there)
    seeded from ``(seed, chunk, tag, pass)`` and restored after. Outside a scope, or when the
    scope's rows do not match the batch, it is ``module`` itself (the global generator).
    Gradients flow to the input. Assumes a row's output depends on that row alone (eval mode).
    """

    def __init__(self, module: nn.Module, seed: int, chunk: int = KEY_CHUNK) -> None:
        super().__init__()
        self.module = module
        self.seed = int(seed)
        self.chunk = int(chunk)
        self.training = module.training  # so restoring the wrapper's mode restores the model's, not train mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scope = _SCOPE.get()
        if scope is None or len(scope.rows) != len(x) or len(x) == 0:
            return self.module(x)
        call = scope.calls
        scope.calls += 1
        chunks = torch.div(scope.rows, self.chunk, rounding_mode="floor")
        slots = (scope.rows - chunks * self.chunk).to(x.device)
        cuda = [x.device.index or 0] if x.device.type == "cuda" else []
        pieces: list[torch.Tensor] = []
        order: list[torch.Tensor] = []
        with torch.random.fork_rng(devices=cuda):
            for c in torch.unique(chunks).tolist():
                at = (chunks == c).nonzero().flatten().to(x.device)
                pad = x.new_zeros((self.chunk, *x.shape[1:])).index_copy(0, slots[at], x[at])
                key = _chunk_seed(self.seed, c, scope.tag, call)
                torch.default_generator.manual_seed(
                    key
                )  # not torch.manual_seed: it queues a CUDA seed with a stack trace
                if cuda:
                    torch.cuda.default_generators[cuda[0]].manual_seed(key)
                pieces.append(self.module(pad)[slots[at]])
                order.append(at)
        out = torch.cat(pieces)
        return out[torch.argsort(torch.cat(order))]


def vote_predictions(
    module: nn.Module, x: torch.Tensor, *, seed: int, passes: int = VOTE_PASSES, batch_size: int = 256
) -> torch.Tensor:
    """Majority-vote predictions (CPU) of ``module`` on ``x``, each sample's passes keyed by its position
    in ``x`` (:class:`Keyed`): the same for any ``batch_size``. The model is left as found."""
    dev = next_device(module)
    judge = MajorityVote(Keyed(module, seed), passes)
    out = []
    with model_state(module, train=False, grad=False), torch.no_grad():
        for start in range(0, len(x), batch_size):
            with keyed_rows(torch.arange(start, min(start + batch_size, len(x)))):
                out.append(judge(x[start : start + batch_size].to(dev)).argmax(dim=1).cpu())
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)
