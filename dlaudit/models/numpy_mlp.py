"""A multi-layer perceptron written from scratch in NumPy, with hand-derived backprop.

Forward pass, layer by layer (rows are samples, so ``W a`` is ``A @ W.T``)::

    z_l = W_l a_{l-1} + b_l,    a_l = f(z_l)   (f = ReLU; softmax on the last layer)

Loss: mean softmax cross-entropy ``L = -1/N sum_n log softmax(z_L)[y_n]``.
Backpropagation (per sample; the batch mean divides by N)::

    delta_L = y_hat - y                         (softmax + cross-entropy)
    delta_l = (W_{l+1}^T delta_{l+1}) * f'(z_l)
    dW_l    = delta_l a_{l-1}^T,   db_l = delta_l

and plain (mini-batch) gradient descent ``W <- W - lr dW``. :meth:`NumpyMLP.to_torch`
exports the weights into the equivalent torch :class:`~dlaudit.models.mlp.MLP`,
so every analysis can audit it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from ..errors import ConfigError
from .mlp import MLP

__all__ = ["NumpyMLP"]


class NumpyMLP:
    """ReLU MLP with softmax cross-entropy, trained by mini-batch gradient descent.

    Parameters
    ----------
    input_shape
        Shape of one sample (flattened internally).
    num_classes
        Number of classes.
    hidden
        Hidden layer widths.
    seed
        Seed of the He-uniform weight initialisation (suited to ReLU); biases start at 0.
    """

    def __init__(
        self, input_shape: Sequence[int], num_classes: int, hidden: Sequence[int] = (128, 64), seed: int = 0
    ) -> None:
        self.input_shape = tuple(int(s) for s in input_shape)
        self.num_classes = int(num_classes)
        self.hidden = tuple(int(h) for h in hidden)
        rng = np.random.default_rng(seed)
        sizes = [math.prod(self.input_shape), *self.hidden, self.num_classes]
        self.weights: list[np.ndarray] = []
        self.biases: list[np.ndarray] = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            bound = math.sqrt(6.0 / fan_in)
            self.weights.append(rng.uniform(-bound, bound, size=(fan_out, fan_in)))
            self.biases.append(np.zeros(fan_out))

    # -- forward -----------------------------------------------------------------
    def _forward(self, x: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Return pre-activations ``z_l`` and activations ``a_l`` (``a_0 = x``)."""
        a = x.reshape(len(x), -1).astype(np.float64)
        zs: list[np.ndarray] = []
        activations = [a]
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            z = a @ w.T + b
            zs.append(z)
            a = z if i == last else np.maximum(z, 0.0)
            activations.append(a)
        return zs, activations

    def logits(self, x: np.ndarray) -> np.ndarray:
        return self._forward(x)[1][-1]

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return _softmax(self.logits(x))

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.logits(x).argmax(axis=1)

    # -- loss and gradients ----------------------------------------------------------
    def loss_and_gradients(
        self, x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> tuple[float, list[np.ndarray], list[np.ndarray]]:
        """Mean (optionally weighted) cross-entropy and its gradients by backprop."""
        zs, acts = self._forward(x)
        n = len(x)
        w_n = np.full(n, 1.0 / n) if sample_weight is None else np.asarray(sample_weight, float) / np.sum(sample_weight)
        y_hat = _softmax(zs[-1])
        onehot = np.zeros_like(y_hat)
        onehot[np.arange(n), y] = 1.0
        loss = float(-np.sum(w_n * np.log(np.clip(y_hat[np.arange(n), y], 1e-300, None))))
        delta = (y_hat - onehot) * w_n[:, None]  # delta_L, scaled by each sample's weight
        grads_w: list[np.ndarray] = [np.empty(0)] * len(self.weights)
        grads_b: list[np.ndarray] = [np.empty(0)] * len(self.weights)
        for layer in range(len(self.weights) - 1, -1, -1):
            grads_w[layer] = delta.T @ acts[layer]  # dW_l = delta_l a_{l-1}^T, summed over samples
            grads_b[layer] = delta.sum(axis=0)  # db_l = delta_l
            if layer > 0:
                delta = (delta @ self.weights[layer]) * (zs[layer - 1] > 0)  # (W^T delta) * f'(z)
        return loss, grads_w, grads_b

    # -- training --------------------------------------------------------------------
    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        *,
        epochs: int = 30,
        lr: float = 0.1,
        batch_size: int = 32,
        seed: int = 0,
        sample_weight: np.ndarray | None = None,
        progress: Callable[[str, int, int], None] | None = None,
        optimizer: str = "sgd",
        momentum: float = 0.0,
        weight_decay: float = 0.0,
    ) -> list[float]:
        """Mini-batch training; returns the mean loss of each epoch.

        ``optimizer`` ``"sgd"`` (with ``momentum``, torch's formulation: ``b <- mu b + g``,
        ``W <- W - lr b``) or ``"adam"`` (Kingma and Ba 2015, arXiv:1412.6980, betas 0.9 and
        0.999, eps 1e-8, as ``torch.optim.Adam``); ``weight_decay`` adds ``wd * W`` to the
        gradient (L2 regularisation), in both. The same steps as torch's optimizers, written out.
        """
        if epochs < 1 or lr <= 0 or batch_size < 1:
            raise ConfigError(
                f"numpy-mlp: epochs >= 1, lr > 0 and batch_size >= 1 are required (got {epochs}, {lr}, {batch_size})"
            )
        if optimizer not in ("sgd", "adam"):
            raise ConfigError(f"numpy-mlp: unknown optimizer {optimizer!r}; choose sgd or adam")
        if not (0 <= momentum < 1) or weight_decay < 0:
            raise ConfigError(
                f"numpy-mlp: momentum must be in [0, 1) and weight_decay >= 0 (got {momentum}, {weight_decay})"
            )
        rng = np.random.default_rng(seed)
        y = np.asarray(y, dtype=np.int64)
        history = []
        step = _Optimizer(
            self.weights + self.biases, optimizer=optimizer, lr=lr, momentum=momentum, weight_decay=weight_decay
        )
        for epoch in range(epochs):
            order = rng.permutation(len(x))
            total = 0.0
            for start in range(0, len(x), batch_size):
                idx = order[start : start + batch_size]
                sw = None if sample_weight is None else sample_weight[idx]
                loss, gw, gb = self.loss_and_gradients(x[idx], y[idx], sw)
                step(gw + gb)
                total += loss * len(idx)
            history.append(total / len(x))
            if progress is not None:
                progress("train", epoch + 1, epochs)
        return history

    # -- export ----------------------------------------------------------------------
    def to_torch(self) -> MLP:
        """The equivalent torch MLP (same weights, float32), in eval mode."""
        import torch

        module = MLP(self.input_shape, self.num_classes, hidden=self.hidden)
        linears = [m for m in module if isinstance(m, torch.nn.Linear)]
        with torch.no_grad():
            for lin, w, b in zip(linears, self.weights, self.biases):
                lin.weight.copy_(torch.from_numpy(w))
                lin.bias.copy_(torch.from_numpy(b))
        return module.eval()


class _Optimizer:
    """SGD with momentum or Adam on a list of arrays, updated in place (torch's update rules)."""

    BETAS = (0.9, 0.999)
    EPS = 1e-8

    def __init__(
        self, params: list[np.ndarray], *, optimizer: str, lr: float, momentum: float, weight_decay: float
    ) -> None:
        self.params, self.kind, self.lr, self.mu, self.wd = params, optimizer, lr, momentum, weight_decay
        self.buf: list[np.ndarray | None] = [None] * len(params)
        self.m = [np.zeros_like(p) for p in params] if optimizer == "adam" else []
        self.v = [np.zeros_like(p) for p in params] if optimizer == "adam" else []
        self.t = 0

    def __call__(self, grads: list[np.ndarray]) -> None:
        self.t += 1
        b1, b2 = self.BETAS
        for i, (p, g) in enumerate(zip(self.params, grads)):
            if self.wd:
                g = g + self.wd * p
            if self.kind == "sgd":
                if self.mu:
                    self.buf[i] = g.copy() if self.buf[i] is None else self.mu * self.buf[i] + g
                    g = self.buf[i]
                p -= self.lr * g
                continue
            self.m[i] = b1 * self.m[i] + (1 - b1) * g
            self.v[i] = b2 * self.v[i] + (1 - b2) * g * g
            m_hat = self.m[i] / (1 - b1**self.t)
            v_hat = self.v[i] / (1 - b2**self.t)
            p -= self.lr * m_hat / (np.sqrt(v_hat) + self.EPS)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
