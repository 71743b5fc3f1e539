"""Losses of the β-VAE family, batched over ensemble members.

Every tensor carries a leading member axis ``K`` and a batch axis ``B``:
``mean``, ``logvar``, ``z`` are ``(K, B, L)``; every loss returns ``(K,)``,
one value per member. The formulas follow disentanglement_lib
(google-research/disentanglement_lib, ``methods/unsupervised/vae.py``):

- reconstruction: ``"bernoulli"`` sums the sigmoid cross-entropy of the
  decoder's logits over the data's features; ``"mse"`` is the squared error
  *averaged* over features (Keras' ``MeanSquaredError``, as the paper's ring
  notebook). Both are averaged over the batch.
- KL to N(0, I): ``mean_b 0.5 * sum_l (mu^2 + exp(logvar) - logvar - 1)``.
- ``beta_vae``: ``recon + beta * KL``.
- ``annealed_vae`` (Burgess et al.): ``recon + gamma * |KL - C(step)|`` with
  ``C = min(c_max, c_max * step / iteration_threshold)``; ``gamma = beta``.
- ``beta_tcvae`` (Chen et al.): ``recon + KL + (beta - 1) * TC`` with the
  minibatch-weighted estimate of the total correlation
  ``TC = mean_j [log sum_i q(z_j|x_i) - sum_l log sum_i q(z_jl|x_i)]``
  (constants dropped, as in disentanglement_lib).
- ``dip_vae_i`` / ``dip_vae_ii`` (Kumar et al.): ``recon + KL +
  lambda_od * sum_offdiag(C^2) + lambda_d * sum_diag((C - 1)^2)`` with C the
  covariance of the encoder means (i) or that plus the mean encoder
  variance on the diagonal (ii); ``lambda_od = beta``, ``lambda_d =
  lambda_d_factor * beta``.
- ``factor_vae`` (Kim & Mnih): ``recon + KL + gamma * mean_b(logit_0 - logit_1)``
  with the discriminator's logits on z; the discriminator minimises
  ``-(0.5 mean log p_0(z) + 0.5 mean log p_1(z_shuffled))``; ``gamma = beta``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

from ..errors import InputError
from ._tf import require_tf

__all__ = [
    "METHODS",
    "Method",
    "anneal_capacity",
    "covariance",
    "dip_regularizer",
    "discriminator_loss",
    "factor_tc",
    "gaussian_kl",
    "gaussian_log_density",
    "method_loss",
    "reconstruction_loss",
    "shuffle_codes",
    "total_correlation",
]

Method = Literal["beta_vae", "beta_tcvae", "annealed_vae", "dip_vae_i", "dip_vae_ii", "factor_vae"]
METHODS: tuple[str, ...] = (
    "beta_vae",
    "beta_tcvae",
    "annealed_vae",
    "dip_vae_i",
    "dip_vae_ii",
    "factor_vae",
)
LossKind = Literal["bernoulli", "mse"]


def reconstruction_loss(x: Any, out: Any, kind: LossKind) -> Any:
    """Per-member reconstruction loss ``(K,)`` of data ``x`` and decoder output ``out``.

    Both are ``(K, B, ...)``; ``out`` holds logits for ``"bernoulli"``.
    """
    tf = require_tf()
    axes = list(range(2, len(x.shape)))
    if kind == "bernoulli":
        per = tf.nn.sigmoid_cross_entropy_with_logits(labels=x, logits=out)
        per_sample = tf.reduce_sum(per, axis=axes) if axes else per
    else:
        sq = tf.square(x - out)
        per_sample = tf.reduce_mean(sq, axis=axes) if axes else sq
    return tf.reduce_mean(per_sample, axis=1)


def gaussian_kl(mean: Any, logvar: Any) -> Any:
    """KL(N(mean, exp(logvar)) || N(0, 1)) summed over latents, mean over batch: ``(K,)``."""
    tf = require_tf()
    per = 0.5 * tf.reduce_sum(tf.square(mean) + tf.exp(logvar) - logvar - 1.0, axis=2)
    return tf.reduce_mean(per, axis=1)


def gaussian_log_density(samples: Any, mean: Any, logvar: Any) -> Any:
    """Elementwise log N(samples; mean, exp(logvar))."""
    tf = require_tf()
    diff = samples - mean
    return -0.5 * (diff * diff * tf.exp(-logvar) + logvar + math.log(2.0 * math.pi))


def total_correlation(z: Any, mean: Any, logvar: Any) -> Any:
    """Minibatch estimate of the total correlation of q(z), per member ``(K,)``."""
    tf = require_tf()
    # log q(z_j | x_i) per latent: (K, B_j, B_i, L)
    log_q = gaussian_log_density(z[:, :, None, :], mean[:, None, :, :], logvar[:, None, :, :])
    log_q_product = tf.reduce_sum(tf.reduce_logsumexp(log_q, axis=2), axis=2)
    log_q_joint = tf.reduce_logsumexp(tf.reduce_sum(log_q, axis=3), axis=2)
    return tf.reduce_mean(log_q_joint - log_q_product, axis=1)


def covariance(x: Any) -> Any:
    """Batch covariance ``(K, L, L)`` of ``x (K, B, L)`` (biased, E[xx^T] - E[x]E[x]^T)."""
    tf = require_tf()
    mu = tf.reduce_mean(x, axis=1)
    exx = tf.einsum("kbi,kbj->kij", x, x) / tf.cast(tf.shape(x)[1], x.dtype)
    return exx - mu[:, :, None] * mu[:, None, :]


def dip_regularizer(cov: Any, lambda_od: Any, lambda_d: Any) -> Any:
    """``lambda_od * sum offdiag(cov)^2 + lambda_d * sum (diag(cov) - 1)^2`` per member."""
    tf = require_tf()
    diag = tf.linalg.diag_part(cov)
    off = cov - tf.linalg.diag(diag)
    return lambda_od * tf.reduce_sum(tf.square(off), axis=[1, 2]) + lambda_d * tf.reduce_sum(
        tf.square(diag - 1.0), axis=1
    )


def anneal_capacity(c_max: float, step: Any, iteration_threshold: float) -> Any:
    """The capacity ``min(c_max, c_max * step / iteration_threshold)``."""
    tf = require_tf()
    step = tf.cast(step, tf.float32)
    return tf.minimum(c_max * 1.0, c_max * step / float(iteration_threshold))


def factor_tc(logits: Any) -> Any:
    """FactorVAE's TC estimate ``mean_b(logit_0 - logit_1)`` per member ``(K,)``."""
    tf = require_tf()
    return tf.reduce_mean(logits[..., 0] - logits[..., 1], axis=1)


def discriminator_loss(logits_real: Any, logits_shuffled: Any) -> Any:
    """FactorVAE discriminator loss per member ``(K,)`` (to minimise)."""
    tf = require_tf()
    log_p_real = tf.nn.log_softmax(logits_real, axis=-1)[..., 0]
    log_p_shuffled = tf.nn.log_softmax(logits_shuffled, axis=-1)[..., 1]
    return -(
        0.5 * tf.reduce_mean(log_p_real, axis=1) + 0.5 * tf.reduce_mean(log_p_shuffled, axis=1)
    )


def shuffle_codes(z: Any, perm: Any) -> Any:
    """Shuffle each latent of ``z (K, B, L)`` across the batch: ``out[k,b,l] = z[k, perm[k,b,l], l]``."""
    tf = require_tf()
    zt = tf.transpose(z, [0, 2, 1])
    pt = tf.transpose(perm, [0, 2, 1])
    return tf.transpose(tf.gather(zt, pt, batch_dims=2), [0, 2, 1])


def method_loss(
    method: Method,
    x: Any,
    out: Any,
    mean: Any,
    logvar: Any,
    z: Any,
    beta: Any,
    *,
    loss: LossKind,
    step: Any = 0,
    options: Mapping[str, Any] | None = None,
    disc_logits: Any = None,
) -> dict[str, Any]:
    """The training loss of ``method``, per member.

    Parameters
    ----------
    method
        One of :data:`METHODS`.
    x, out
        Data and decoder output ``(K, B, ...)`` (logits for ``"bernoulli"``).
    mean, logvar, z
        Encoder posterior and its reparameterised sample, ``(K, B, L)``.
    beta
        The method's strength per member ``(K,)`` (see the module docstring).
    loss
        ``"bernoulli"`` or ``"mse"``.
    step
        Training step (the capacity schedule of ``annealed_vae``).
    options
        ``c_max``, ``iteration_threshold`` (annealed_vae), ``lambda_d_factor``
        (dip_vae).
    disc_logits
        Discriminator logits on ``z``, ``(K, B, 2)`` (factor_vae).

    Returns
    -------
    dict
        ``total``, ``recon``, ``kl``, ``regularizer``: each ``(K,)``.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.ones((1, 2, 3), np.float32); out = np.zeros((1, 2, 3), np.float32)
    >>> m = np.zeros((1, 2, 1), np.float32)
    >>> parts = method_loss("beta_vae", x, out, m, m, m, np.float32([4.0]), loss="bernoulli")
    >>> round(float(parts["total"][0]), 4)        # 3 pixels * log 2, KL = 0
    2.0794
    """
    tf = require_tf()
    options = dict(options or {})
    x = tf.convert_to_tensor(x, tf.float32)
    out = tf.convert_to_tensor(out, tf.float32)
    mean = tf.convert_to_tensor(mean, tf.float32)
    logvar = tf.convert_to_tensor(logvar, tf.float32)
    z = tf.convert_to_tensor(z, tf.float32)
    beta = tf.convert_to_tensor(beta, tf.float32)
    recon = reconstruction_loss(x, out, loss)
    kl = gaussian_kl(mean, logvar)
    if method == "beta_vae":
        reg = beta * kl
    elif method == "annealed_vae":
        c = anneal_capacity(options["c_max"], step, options["iteration_threshold"])
        reg = beta * tf.abs(kl - c)
    elif method == "beta_tcvae":
        reg = kl + (beta - 1.0) * total_correlation(z, mean, logvar)
    elif method in ("dip_vae_i", "dip_vae_ii"):
        cov = covariance(mean)
        if method == "dip_vae_ii":
            cov = cov + tf.linalg.diag(tf.reduce_mean(tf.exp(logvar), axis=1))
        reg = kl + dip_regularizer(cov, beta, options["lambda_d_factor"] * beta)
    elif method == "factor_vae":
        if disc_logits is None:
            raise InputError("factor_vae needs the discriminator's logits (disc_logits).")
        reg = kl + beta * factor_tc(tf.convert_to_tensor(disc_logits, tf.float32))
    else:
        raise InputError(f"method must be one of {', '.join(METHODS)}; got {method!r}.")
    return {"total": recon + reg, "recon": recon, "kl": kl, "regularizer": reg}
