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

Seeding: a stochastic model draws from torch's global generator, which dlaudit cannot key
per sample without running the model one input at a time. Inside :func:`seeded` the global
generator (CPU and, where used, CUDA) is seeded from the audit's seed and restored after,
so the same seed, plan and batch size give the same numbers; **a different batch size
changes which random numbers each sample gets**, so a stochastic model's numbers depend on
the batch size and on how Ray shards the work (the report says so).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ConfigError
from ..utils import model_state, next_device

__all__ = ["DETECT_SAMPLES", "EOT_ITERATIONS", "VOTE_PASSES", "MajorityVote", "Stochasticity", "detect", "seeded"]

DETECT_SAMPLES = 16
"""Inputs the detection runs the model on (twice)."""
EOT_ITERATIONS = 20
"""Passes whose gradients APGD averages on a stochastic model (AutoAttack's ``rand`` version)."""
VOTE_PASSES = 9
"""Passes whose majority classifies an input of a stochastic model (odd, so two classes cannot tie)."""
_STREAM = 0x5EED_57C
"""Mixed into the seed of :func:`seeded`, so its draws differ from every other seeded stream."""


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
    majority class, a tie broken by the higher mean probability). Not for gradients.
    """

    def __init__(self, module: nn.Module, passes: int = VOTE_PASSES) -> None:
        super().__init__()
        if isinstance(passes, bool) or not isinstance(passes, int) or passes < 1:
            raise ConfigError(
                f"passes (forward passes per majority vote) must be an integer of at least 1, got {passes!r}"
            )
        self.module = module
        self.passes = int(passes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            logits = self.module(x).float()
            votes, probs = torch.zeros_like(logits), torch.zeros_like(logits)
            for k in range(self.passes):
                if k:
                    logits = self.module(x).float()
                votes += torch.nn.functional.one_hot(logits.argmax(dim=1), logits.shape[1]).float()
                probs += logits.softmax(dim=1)
            return votes + probs / (self.passes * (self.passes + 1))
