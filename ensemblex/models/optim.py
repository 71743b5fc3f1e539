"""The one optimiser of the package: Adam (and plain gradient descent) on TensorFlow variables.

Training (:mod:`ensemblex.models.trainer`) and synthesis
(:mod:`ensemblex.synthesis`) both update their variables here. The update is
Kingma & Ba's Algorithm 1 in its efficient form, as Keras writes it (epsilon
added to ``sqrt(v)``, bias corrections folded into the step size)::

    m <- b1 m + (1 - b1) g
    v <- b2 v + (1 - b2) g^2
    p <- p - lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)

An optional boolean ``mask`` over the leading axis (the ensemble's members)
freezes masked rows: their gradients count as zero and their parameters do
not move, so a member that diverged stops while the others train on.

The step count ``t`` (1 for the first update) is passed to :meth:`Adam.apply`
by the caller, who keeps it (a training step counter that a checkpoint
restores, for example).

Examples
--------
>>> import numpy as np
>>> tf = require_tf()
>>> x = tf.Variable([1.0, -2.0], dtype=tf.float64)
>>> opt = make_optimizer("adam", [x], learning_rate=0.1)
>>> for t in range(1, 4):
...     with tf.GradientTape() as tape:
...         loss = tf.reduce_sum(x * x)
...     opt.apply(tape.gradient(loss, [x]), t)
>>> np.round(x.numpy(), 4).tolist()   # Adam moves each coordinate by ~lr per step
[0.7, -1.7]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from .._checks import check_option
from ._tf import require_tf

__all__ = ["ADAM_DEFAULTS", "OPTIMIZERS", "Adam", "Optimizer", "Sgd", "make_optimizer"]

Optimizer = Literal["sgd", "adam"]
OPTIMIZERS: tuple[str, ...] = ("sgd", "adam")

#: Adam's constants (Kingma & Ba; epsilon as Keras)
ADAM_DEFAULTS: dict[str, float] = {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}


def _masked(tf: Any, mask: Any, p: Any, value: Any) -> Any:
    """``value`` where the member of ``p``'s leading axis is unmasked, 0 elsewhere."""
    if mask is None:
        return value
    rows = tf.reshape(mask, [-1] + [1] * (len(p.shape) - 1))
    return tf.where(rows, value, tf.zeros_like(value))


class Sgd:
    """Plain gradient descent: ``p <- p - lr g``."""

    def __init__(self, variables: Sequence[Any], *, learning_rate: float) -> None:
        self.tf = require_tf()
        self.variables = list(variables)
        self.learning_rate = float(learning_rate)

    def apply(self, grads: Sequence[Any], t: Any = None, *, mask: Any = None) -> None:
        """One update with ``grads`` (one per variable; ``None`` counts as zero)."""
        tf = self.tf
        for p, g in zip(self.variables, grads, strict=True):
            if g is None:
                continue
            lr = tf.cast(self.learning_rate, p.dtype)
            p.assign_sub(_masked(tf, mask, p, lr * g))


class Adam:
    """Adam with its moment slots ``m`` and ``v`` (one variable per parameter).

    Parameters
    ----------
    variables
        The variables to update, a sequence or a mapping of names to variables
        (then :attr:`m` and :attr:`v` are mappings with the same names, for
        checkpoints).
    learning_rate, beta_1, beta_2, epsilon
        Adam's constants (defaults :data:`ADAM_DEFAULTS`).
    """

    def __init__(
        self,
        variables: Sequence[Any] | Mapping[str, Any],
        *,
        learning_rate: float,
        beta_1: float = ADAM_DEFAULTS["beta_1"],
        beta_2: float = ADAM_DEFAULTS["beta_2"],
        epsilon: float = ADAM_DEFAULTS["epsilon"],
    ) -> None:
        tf = self.tf = require_tf()
        self.learning_rate = float(learning_rate)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)
        if isinstance(variables, Mapping):
            self.names: list[Any] = list(variables)
            self.variables = list(variables.values())
        else:
            self.variables = list(variables)
            self.names = list(range(len(self.variables)))
        self.m = {
            n: tf.Variable(tf.zeros_like(v))
            for n, v in zip(self.names, self.variables, strict=True)
        }
        self.v = {
            n: tf.Variable(tf.zeros_like(v))
            for n, v in zip(self.names, self.variables, strict=True)
        }

    def apply(self, grads: Sequence[Any], t: Any, *, mask: Any = None) -> None:
        """Update ``t`` (1 for the first) with ``grads``; ``mask`` freezes members (rows)."""
        tf = self.tf
        for name, p, g in zip(self.names, self.variables, grads, strict=True):
            dtype = p.dtype
            b1 = tf.constant(self.beta_1, dtype)
            b2 = tf.constant(self.beta_2, dtype)
            tt = tf.cast(t, dtype)
            alpha = (
                tf.constant(self.learning_rate, dtype)
                * tf.sqrt(1.0 - tf.pow(b2, tt))
                / (1.0 - tf.pow(b1, tt))
            )
            g = tf.zeros_like(p) if g is None else _masked(tf, mask, p, g)
            m, v = self.m[name], self.v[name]
            m.assign(b1 * m + (1.0 - b1) * g)
            v.assign(b2 * v + (1.0 - b2) * tf.square(g))
            step = alpha * m / (tf.sqrt(v) + tf.constant(self.epsilon, dtype))
            p.assign_sub(_masked(tf, mask, p, step))


def make_optimizer(
    name: Optimizer, variables: Sequence[Any], *, learning_rate: float, **constants: float
) -> Adam | Sgd:
    """``Adam`` or ``Sgd`` over ``variables`` by name (``constants``: Adam's betas, epsilon)."""
    check_option("optimizer", name, OPTIMIZERS)
    if name == "sgd":
        return Sgd(variables, learning_rate=learning_rate)
    return Adam(variables, learning_rate=learning_rate, **constants)
