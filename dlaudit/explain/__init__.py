"""Explanations and how far to trust them.

captum gradient methods (saliency, Integrated Gradients, SmoothGrad, Grad-CAM,
DeepLIFT, occlusion), LIME and SHAP, each with faithfulness (deletion and
insertion curves), a sanity check (cascading randomisation), stability
(sensitivity) and, where it applies, completeness. :func:`explain` is the entry
point; :func:`explain_section` is the report's "explain" analysis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_getattr

if TYPE_CHECKING:
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

_LAZY = {
    "Attribution": "._common",
    "ExplainContext": "._common",
    "ExplainSettings": "._common",
    "Explanation": ".explanation",
    "explain": ".explanation",
    "explain_section": ".explanation",
    "DEFAULT_METHODS": ".methods",
    "EXPLAIN_METHODS": ".methods",
    "Method": ".methods",
    "attribute": ".methods",
    "get_method": ".methods",
    "list_methods": ".methods",
    "parse_methods": ".methods",
    "register_method": ".methods",
}
"""Each public name and the module it lives in, imported on first use (so that the light modules of this
package, such as its command-line options, load without torch)."""

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

__getattr__ = lazy_getattr(__name__, _LAZY)
