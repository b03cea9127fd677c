"""One error hierarchy for everything a user can get wrong.

Every message says what was wrong and what to do about it. The CLI turns any
:class:`DlauditError` into one line on stderr and its ``exit_code``: 2 (bad usage or
bad input) for all but :class:`ModelOutputError`, which is a failing result (1).
"""

from __future__ import annotations

__all__ = [
    "DlauditError",
    "ModelLoadError",
    "CardError",
    "DataError",
    "ConfigError",
    "GateError",
    "AnalysisError",
    "ModelOutputError",
    "NONFINITE_LOGITS",
    "SHORT_WIDTH_ERRORS",
]


class DlauditError(Exception):
    """Base class of every error dlaudit raises on purpose."""

    exit_code = 2


class ModelLoadError(DlauditError):
    """A model file could not be read, or reading it would be unsafe."""


class CardError(DlauditError):
    """A model card is missing something an audit needs, or is malformed."""


class DataError(DlauditError):
    """Data could not be loaded, or does not fit the model."""


class ConfigError(DlauditError):
    """A parameter, option or configuration value is invalid."""


class GateError(DlauditError):
    """A gate is malformed or names a metric that was not computed."""


class AnalysisError(DlauditError):
    """An analysis cannot run on this model or data (recorded as a skipped section)."""


class ModelOutputError(DlauditError):
    """The model's outputs cannot be measured (NaN or infinite logits): the audit fails, exit code 1.

    Not a usage error: the model was read and run, and what it returned is the finding.
    """

    exit_code = 1


NONFINITE_LOGITS = (
    "the model returns NaN or infinite logits for {bad} of {n} {what}; {consequence}; "
    "fix its forward (a log or division by 0, an overflow) and audit it again"
)
"""The message for :class:`ModelOutputError` (and the report's finding), formatted by the caller."""


SHORT_WIDTH_ERRORS: tuple[type[Exception], ...] = (RuntimeError, ValueError, IndexError, AssertionError)
"""What a model that needs its full width raises on a shorter input, so that a caller trying a shorter one (text
padding trimmed) falls back to the full width: torch's shape errors (a wide convolution, a flattened linear layer,
position embeddings of a fixed size; TorchScript's errors are RuntimeErrors), a library's own shape checks
(ValueError, IndexError) and the shape guards of a ``torch.export`` program (AssertionError). Any other error is the
model's own bug and propagates. Here, a module that imports nothing, so that ``text/`` and ``explain/`` share it."""
