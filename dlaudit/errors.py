"""One error hierarchy for everything a user can get wrong.

Every message says what was wrong and what to do about it. The CLI turns any
:class:`DlauditError` into one line on stderr and exit code 2.
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
