"""Does this data fit this model? Checked before any analysis runs."""

from __future__ import annotations

from ..card import ModelCard
from ..errors import DataError
from .core import AuditData

__all__ = ["check_fits"]


def check_fits(card: ModelCard, data: AuditData) -> None:
    """Raise :class:`DataError` naming the problem when ``data`` cannot be fed to the model."""
    if data.kind.continuous != card.kind.continuous:
        raise DataError(
            f"data {data.name!r} is {data.kind.title} data, but the model reads {card.kind.title} inputs; "
            "give data of the model's kind (--data)"
        )
    shape = tuple(data.x.shape[1:])
    if shape != tuple(card.input_shape):
        raise DataError(
            f"data {data.name!r} has inputs of shape {shape}, but the model expects {tuple(card.input_shape)}; "
            "give data of the model's input shape (--data)"
        )
    if not data.x.isfinite().all():
        raise DataError(f"data {data.name!r} has NaN or infinite inputs; clean them before auditing")
    y = data.y
    if y.min() < 0 or y.max() >= card.num_classes:
        raise DataError(
            f"data {data.name!r} has labels in [{int(y.min())}, {int(y.max())}], outside the model's {card.num_classes} classes "
            f"(0..{card.num_classes - 1}); give the data (or the --target column) the model was trained on"
        )
    lo, hi = card.value_range
    xmin, xmax = float(data.x.min()), float(data.x.max())
    tol = 1e-5 * max(1.0, hi - lo)
    if xmin < lo - tol or xmax > hi + tol:
        raise DataError(
            f"data {data.name!r} has input values in [{xmin:g}, {xmax:g}], outside the model's value range [{lo:g}, {hi:g}]; "
            "scale the data to that range, or fix value_range on the model card"
        )
