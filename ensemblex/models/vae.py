"""Encoder, decoder and FactorVAE discriminator of K members as one graph.

Architectures (docs/design.md section 4):

- ``"mlp"``: the data flattened, ``hidden`` dense layers (default 2 x 256,
  ``tanh``, the ring toy), a dense layer to ``2 * latent_dim`` (mean, logvar);
  the decoder mirrors it (hidden layers reversed) back to the data's size.
- ``"conv"``: the paper's MNIST net sized to the input ``(H, W[, C])`` with H
  and W divisible by 4: Conv 32 4x4 stride 2, Conv 64 4x4 stride 2, Dense 256,
  Dense ``2 * latent_dim`` (ReLU). Decoder: Dense 256, Dense
  ``H/4 * W/4 * 64``, then two 2x up-sampling steps, ReLU between, logits
  out. Each up-sampling step is a sub-pixel convolution (a 2x2 convolution to
  ``4 * C`` channels, then a pixel shuffle): like a 4x4 stride-2 transposed
  convolution, every output pixel sees a 2x2 input neighbourhood (shifted
  by half a pixel).

Weights are plain arrays ``{name: (K, ...)}``; the functions here are pure
(TensorFlow ops on those arrays), so one code path serves training, inference
and any K (a member alone is K = 1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._tf import require_tf
from .layers import ParamSpec, dense, from_grouped, grouped_conv, pixel_shuffle, to_grouped

__all__ = ["decode", "discriminator", "discriminator_specs", "encode", "param_specs"]

_CONV = (32, 64)
_CONV_DENSE = 256


def _dense_spec(name: str, n_in: int, n_out: int) -> list[ParamSpec]:
    return [(f"{name}/w", (n_in, n_out), n_in, n_out), (f"{name}/b", (n_out,), 0, 0)]


def _conv_spec(name: str, k: int, c_in: int, c_out: int) -> list[ParamSpec]:
    return [
        (f"{name}/w", (k, k, c_in, c_out), k * k * c_in, k * k * c_out),
        (f"{name}/b", (c_out,), 0, 0),
    ]


def image_shape(config: Mapping[str, Any]) -> tuple[int, int, int]:
    """``(H, W, C)`` of the conv net's input."""
    shape = tuple(config["data_shape"])
    return (shape[0], shape[1], shape[2] if len(shape) == 3 else 1)


def param_specs(config: Mapping[str, Any]) -> list[ParamSpec]:
    """The weights of one member's encoder and decoder, in initialisation order."""
    latent = int(config["latent_dim"])
    specs: list[ParamSpec] = []
    if config["architecture"] == "mlp":
        n_in = 1
        for s in config["data_shape"]:
            n_in *= int(s)
        hidden = [int(h) for h in config["hidden"]]
        prev = n_in
        for i, h in enumerate(hidden):
            specs += _dense_spec(f"enc{i}", prev, h)
            prev = h
        specs += _dense_spec("enc_out", prev, 2 * latent)
        prev = latent
        for i, h in enumerate(reversed(hidden)):
            specs += _dense_spec(f"dec{i}", prev, h)
            prev = h
        specs += _dense_spec("dec_out", prev, n_in)
        return specs
    h, w, c = image_shape(config)
    flat = (h // 4) * (w // 4) * _CONV[1]
    specs += _conv_spec("enc_conv0", 4, c, _CONV[0])
    specs += _conv_spec("enc_conv1", 4, _CONV[0], _CONV[1])
    specs += _dense_spec("enc_dense", flat, _CONV_DENSE)
    specs += _dense_spec("enc_out", _CONV_DENSE, 2 * latent)
    specs += _dense_spec("dec_dense", latent, _CONV_DENSE)
    specs += _dense_spec("dec_dense1", _CONV_DENSE, flat)
    specs += _conv_spec("dec_up0", 2, _CONV[1], 4 * _CONV[0])
    specs += _conv_spec("dec_up1", 2, _CONV[0], 4 * c)
    return specs


def discriminator_specs(latent_dim: int, units: Sequence[int]) -> list[ParamSpec]:
    """FactorVAE discriminator: ``units`` leaky-ReLU layers, then 2 logits."""
    specs: list[ParamSpec] = []
    prev = int(latent_dim)
    for i, u in enumerate(units):
        specs += _dense_spec(f"disc{i}", prev, int(u))
        prev = int(u)
    specs += _dense_spec("disc_out", prev, 2)
    return specs


def _activation(name: str) -> Any:
    tf = require_tf()
    return {
        "tanh": tf.tanh,
        "relu": tf.nn.relu,
        "leaky_relu": tf.nn.leaky_relu,
        "elu": tf.nn.elu,
        "sigmoid": tf.sigmoid,
    }[name]


def encode(params: Mapping[str, Any], x: Any, config: Mapping[str, Any]) -> tuple[Any, Any]:
    """Posterior ``(mean, logvar)``, each ``(K, B, L)``, of data ``x (K, B, *data_shape)``."""
    tf = require_tf()
    k = int(params["enc_out/w"].shape[0])
    latent = int(config["latent_dim"])
    if config["architecture"] == "mlp":
        act = _activation(config["activation"])
        h = tf.reshape(
            x,
            [
                k,
                -1,
                int(params["enc0/w"].shape[1])
                if "enc0/w" in params
                else int(params["enc_out/w"].shape[1]),
            ],
        )
        i = 0
        while f"enc{i}/w" in params:
            h = act(dense(h, params[f"enc{i}/w"], params[f"enc{i}/b"]))
            i += 1
    else:
        hh, ww, c = image_shape(config)
        g = to_grouped(tf.reshape(x, [k, -1, hh, ww, c]))
        g = tf.nn.relu(grouped_conv(g, params["enc_conv0/w"], params["enc_conv0/b"], 2))
        g = tf.nn.relu(grouped_conv(g, params["enc_conv1/w"], params["enc_conv1/b"], 2))
        h = tf.reshape(from_grouped(g, k), [k, -1, (hh // 4) * (ww // 4) * _CONV[1]])
        h = tf.nn.relu(dense(h, params["enc_dense/w"], params["enc_dense/b"]))
    out = dense(h, params["enc_out/w"], params["enc_out/b"])
    return out[..., :latent], out[..., latent:]


def decode(params: Mapping[str, Any], z: Any, config: Mapping[str, Any]) -> Any:
    """Decoder output ``(K, B, *data_shape)`` (logits for the Bernoulli loss) of ``z (K, B, L)``."""
    tf = require_tf()
    k = (
        int(params["dec_out/w"].shape[0])
        if "dec_out/w" in params
        else int(params["dec_up1/w"].shape[0])
    )
    data_shape = [int(s) for s in config["data_shape"]]
    if config["architecture"] == "mlp":
        act = _activation(config["activation"])
        h = z
        i = 0
        while f"dec{i}/w" in params:
            h = act(dense(h, params[f"dec{i}/w"], params[f"dec{i}/b"]))
            i += 1
        out = dense(h, params["dec_out/w"], params["dec_out/b"])
        return tf.reshape(out, [k, -1, *data_shape])
    hh, ww, _c = image_shape(config)
    h = tf.nn.relu(dense(z, params["dec_dense/w"], params["dec_dense/b"]))
    h = tf.nn.relu(dense(h, params["dec_dense1/w"], params["dec_dense1/b"]))
    g = to_grouped(tf.reshape(h, [k, -1, hh // 4, ww // 4, _CONV[1]]))
    g = tf.nn.relu(pixel_shuffle(grouped_conv(g, params["dec_up0/w"], params["dec_up0/b"], 1), k))
    g = pixel_shuffle(grouped_conv(g, params["dec_up1/w"], params["dec_up1/b"], 1), k)
    return tf.reshape(from_grouped(g, k), [k, -1, *data_shape])


def discriminator(params: Mapping[str, Any], z: Any) -> Any:
    """FactorVAE discriminator logits ``(K, B, 2)`` of codes ``z (K, B, L)``."""
    tf = require_tf()
    h = z
    i = 0
    while f"disc{i}/w" in params:
        h = tf.nn.leaky_relu(dense(h, params[f"disc{i}/w"], params[f"disc{i}/b"]), alpha=0.2)
        i += 1
    return dense(h, params["disc_out/w"], params["disc_out/b"])
