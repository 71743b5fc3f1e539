"""Batched layers: K independent members in one graph.

Every weight carries a leading member axis ``K``. Dense layers are batched
matrix products (``matmul`` of ``(K, B, I)`` by ``(K, I, O)``); convolutions are *grouped*
convolutions (``tf.nn.conv2d`` infers the groups from a kernel whose input
depth is a K-th of the input's), with activations laid out ``(B, H, W, K*C)``.
Transposed convolutions are sub-pixel convolutions: a stride-1 grouped
convolution to ``4 * C`` channels followed by a 2 x 2 pixel shuffle.

Initial weights are drawn in NumPy from one generator per member, seeded by
that member's seed only, so a member starts from the same weights whether it
trains alone or in an ensemble of any size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._tf import require_tf

__all__ = [
    "ParamSpec",
    "dense",
    "from_grouped",
    "glorot_uniform",
    "grouped_conv",
    "init_member",
    "pixel_shuffle",
    "to_grouped",
]

# (name, shape of one member's weight, fan_in, fan_out); fan_in == 0 means zeros (bias)
ParamSpec = tuple[str, tuple[int, ...], int, int]


def glorot_uniform(
    rng: np.random.Generator, shape: Sequence[int], fan_in: int, fan_out: int
) -> np.ndarray:
    """Glorot/Xavier uniform weights, float32.

    >>> w = glorot_uniform(np.random.default_rng(0), (3, 4), 3, 4)
    >>> bool(np.abs(w).max() <= np.sqrt(6 / 7))
    True
    """
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=tuple(shape)).astype(np.float32)


def init_member(specs: Sequence[ParamSpec], seed: int, stream: int = 0) -> dict[str, np.ndarray]:
    """Initial weights of one member, from ``np.random.default_rng([seed, stream])``.

    >>> w = init_member([("w", (2, 3), 2, 3), ("b", (3,), 0, 0)], seed=1)
    >>> w["w"].shape, w["b"].tolist()
    ((2, 3), [0.0, 0.0, 0.0])
    """
    rng = np.random.default_rng([int(seed), 1_000 + stream])
    out = {}
    for name, shape, fan_in, fan_out in specs:
        if fan_in == 0:
            out[name] = np.zeros(shape, dtype=np.float32)
        else:
            out[name] = glorot_uniform(rng, shape, fan_in, fan_out)
    return out


def dense(x: Any, w: Any, b: Any) -> Any:
    """Batched dense layer: ``x (K, B, I) @ w (K, I, O) + b (K, O)`` (one batched matmul)."""
    tf = require_tf()
    return tf.matmul(x, w) + b[:, None, :]


def to_grouped(x: Any) -> Any:
    """``(K, B, H, W, C)`` to the grouped layout ``(B, H, W, K*C)``."""
    tf = require_tf()
    k, _, h, w, c = x.shape
    y = tf.transpose(x, [1, 2, 3, 0, 4])
    return tf.reshape(y, [-1, h, w, k * c])


def from_grouped(y: Any, k: int) -> Any:
    """Grouped ``(B, H, W, K*C)`` back to ``(K, B, H, W, C)``."""
    tf = require_tf()
    _, h, w, kc = y.shape
    y = tf.reshape(y, [-1, h, w, k, kc // k])
    return tf.transpose(y, [3, 0, 1, 2, 4])


def grouped_conv(x: Any, w: Any, b: Any, stride: int) -> Any:
    """K convolutions at once: ``x (B, H, W, K*C)``, ``w (K, kh, kw, C, O)``, ``b (K, O)``.

    Returns ``(B, H', W', K*O)`` ('SAME' padding); member k reads input channels
    ``k*C .. (k+1)*C - 1`` and writes output channels ``k*O .. (k+1)*O - 1``.
    """
    tf = require_tf()
    k, kh, kw, c, o = w.shape
    kernel = tf.reshape(tf.transpose(w, [1, 2, 3, 0, 4]), [kh, kw, c, k * o])
    y = tf.nn.conv2d(x, kernel, strides=stride, padding="SAME")
    return y + tf.reshape(b, [k * o])


def pixel_shuffle(y: Any, k: int) -> Any:
    """Grouped ``(B, h, w, K*4*O)`` (per member ordered ``(dy, dx, O)``) to ``(B, 2h, 2w, K*O)``."""
    tf = require_tf()
    _, h, w, c = y.shape
    o = c // (4 * k)
    y = tf.reshape(y, [-1, h, w, k, 2, 2, o])
    y = tf.transpose(y, [0, 1, 4, 2, 5, 3, 6])  # (B, h, dy, w, dx, K, O)
    return tf.reshape(y, [-1, 2 * h, 2 * w, k * o])
