"""Reweighing (Kamiran and Calders 2012): sample weights that make the label independent of the group.

F. Kamiran and T. Calders, "Data preprocessing techniques for classification
without discrimination", Knowledge and Information Systems 33(1), 2012,
https://doi.org/10.1007/s10115-011-0463-8.

Each sample of group ``g`` with label ``y`` gets the weight

    w(g, y) = P(g) * P(y) / P(g, y) = n_g * n_y / (n * n_gy),

the ratio of the count expected if group and label were independent to the
count observed. Under these weights every group has the same positive rate, so
a model trained with them (our trainer's ``sample_weight``) is not pushed to
learn the group-label association present in the data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import ConfigError

__all__ = ["reweighing_weights"]


def reweighing_weights(groups: pd.Series | Sequence[str] | np.ndarray, y: np.ndarray | Sequence[int]) -> np.ndarray:
    """Kamiran-Calders weights, one per sample (they average 1 when every group has every label).

    Parameters
    ----------
    groups
        Group label of each sample (e.g. the ``sex`` column).
    y
        Class label of each sample.

    Examples
    --------
    >>> reweighing_weights(["a", "a", "a", "b"], [1, 1, 0, 0]).round(3).tolist()
    [0.75, 0.75, 1.5, 0.5]
    """
    g = pd.Series(np.asarray(groups, dtype=object)).astype(str).to_numpy()
    labels = np.asarray(y)
    if len(g) != len(labels):
        raise ConfigError(f"reweighing: {len(g)} group labels for {len(labels)} samples")
    if len(g) == 0:
        raise ConfigError("reweighing: no samples")
    g_codes, g_index = pd.factorize(g)
    y_codes, y_index = pd.factorize(labels)
    n = len(g)
    joint = np.zeros((len(g_index), len(y_index)))
    np.add.at(joint, (g_codes, y_codes), 1.0)
    expected = joint.sum(axis=1, keepdims=True) * joint.sum(axis=0, keepdims=True) / n
    cell_weight = np.divide(expected, joint, out=np.zeros_like(joint), where=joint > 0)
    return cell_weight[g_codes, y_codes]
