"""Explanations and how far to trust them.

captum gradient methods (saliency, Integrated Gradients, SmoothGrad, Grad-CAM,
DeepLIFT, occlusion), LIME and SHAP, each with faithfulness (deletion and
insertion curves), a sanity check (cascading randomisation), stability
(sensitivity) and, where it applies, completeness. :func:`explain` is the entry
point; :func:`explain_section` is the report's "explain" analysis.
"""

from __future__ import annotations

from ._common import Attribution, ExplainContext, ExplainSettings
from .explanation import Explanation, explain, explain_section
from .methods import (
    DEFAULT_METHODS,
    EXPLAIN_METHODS,
    Method,
    attribute,
    get_method,
    list_methods,
    parse_methods,
    register_method,
)

__all__ = [
    "Attribution",
    "DEFAULT_METHODS",
    "ExplainContext",
    "ExplainSettings",
    "Explanation",
    "EXPLAIN_METHODS",
    "Method",
    "attribute",
    "explain",
    "explain_section",
    "get_method",
    "list_methods",
    "parse_methods",
    "register_method",
]
