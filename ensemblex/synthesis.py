"""Synthesis: fuse many reference channels into one by gradient descent (paper Sec. 3.4).

Because a fingerprint is a differentiable function of the posterior
parameters of the N fingerprint points, a new channel can be *synthesised*
without any model: free means and log-variances of the N points in a
``n_dims``-dimensional latent space are optimised so that the synthesised
fingerprint is, on average, as similar as possible to the fingerprints of a
set of reference channels (for example the members of one hotspot group
found by :func:`ensemblex.structure.cluster`). The reference fingerprints are
constants, computed once.

The objective is written in TensorFlow term by term exactly as
:mod:`ensemblex.estimators` defines the estimators (bits, means over ``j``);
the tests hold the TensorFlow values to the NumPy float64 estimators.

Objectives (``S`` the synthesised channel, ``V`` one reference; similarity
averaged over the references):

``"vi"`` (default)
    ``exp(-VI(S, V))`` with ``VI = 2 J_SV - J_SS - J_VV`` in bits.
``"nmi"``
    ``NMI(S, V)`` of eq. 3. See *The NMI hazard* below.
``"info"``
    the shared information ``I_S + I_V - J_SV`` in bits.

The NMI hazard
--------------
The paper's initialisation (means ``N(0, 0.05^2)``, log-variances 0) puts
every posterior on top of every other: the synthesised channel starts with
almost no information (~1e-3 bits). There ``NMI`` is a ratio of two
vanishing quantities. With a scale ``e`` of the synthesised means, the shared
information and ``sqrt(2 I_S - J_SS)`` both go as ``e^2``, so NMI tends to a
finite value that can *exceed 1* (the Bhattacharyya estimates are bounds, not
exact entropies, and the bound ``NMI <= 1`` does not hold for them near zero
information). Gradient ascent on NMI can then stay at, or be driven back to,
a channel with a few hundredths of a bit. :func:`synthesize` detects the
outcome (synthesised information below 10% of the mean reference
information, or ``NMI > 1``), warns, and records it in the attrs
``low_information`` and ``warning``.

Remedy investigated: a floor on information, the option ``info_floor``
(bits, default off). The loss gains a quadratic penalty
``(max(0, info_floor - I_S))^2`` (per bit squared), zero wherever the
synthesised channel holds at least ``info_floor`` bits. Findings (float64
objective, SGD at learning rate 3, the paper's initialisation):

- one 2-D Gaussian reference of 3.4 bits (N=40, 3,000 steps): plain NMI
  ends at 0.09 bits with an NMI estimate of 1.18. A floor of 0.1, 0.5 or
  1.0 bit is *binding*: the channel sits on the floor (0.33, 0.49, 0.98
  bits) with NMI estimates of 1.19, 1.18, 1.15, still above 1. A floor of
  1.7 bits (half the reference information) or more lets the optimiser
  cross the ridge: it ends at the reference (3.7 bits, NMI 0.99, exp(-VI)
  0.95) where the floor is no longer active;
- the ring toy (``benchmarks/ring_fusion.py --quick``: N=80, 2,000 steps,
  2-20 generated weak learners of 3.07 bits, 3 repeats): plain NMI
  collapsed in all 12 runs (0.04 bits, NMI estimates 1.32-1.33); with a
  floor of half the mean reference information (1.53 bits) no run
  collapsed, but every run sat on the floor (1.46-1.48 bits, NMI estimates
  1.11-1.12 > 1), and its rings were the least uniform at 10 and 20
  learners. At N=200 (10,000 steps, 2-50 learners, 2 repeats) all 10 NMI
  runs collapsed to 0.02 bits (NMI estimates 1.325-1.333), while exp(-VI)
  kept 3.03-3.06 of the references' 3.07 bits in every run.
  Note that the ring uniformity is scale-invariant: a collapsed
  channel keeps the shape of its tiny ring, so only its information shows
  the collapse.

So a floor prevents the collapse but is not a principled cure: the NMI
*estimate* itself (a ratio of bounds) keeps rewarding less information, and
the optimum moves onto whatever floor is set unless the floor lies beyond
the ridge, which needs knowing the answer. ``exp(-VI)`` is the default
because it does not show the hazard: ``VI`` of a channel without
information to an informative reference is the reference's whole repeat
information, the worst value, so nothing pulls towards zero information
(no run of the ring benchmark was flagged). Its weakness is the opposite
one: with very informative references (many bits) ``exp(-VI)`` starts near
0 with a vanishing gradient, and plain SGD may not leave the initialisation
in a few thousand steps; ``optimizer="adam"`` (learning rate ~0.05) does.

NaN handling: a step whose objective or gradient is not finite stops the
optimisation; the parameters of the last finite step are returned (never a
NaN dataset), with a warning and the step number in ``attrs["nan_step"]``.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import xarray as xr

from . import estimators as est
from ._checks import check_option, check_positive_int, check_probability
from ._kinds import dataset_kind, require_kind
from ._namespace import get_namespace, to_numpy
from .errors import InputError, InputTypeError, MissingExtraError
from .posteriors import posteriors, validate_posteriors

if TYPE_CHECKING:
    from types import ModuleType

__all__ = ["ring_learners", "ring_uniformity", "synthesize"]

Objective = Literal["vi", "nmi", "info"]
Optimizer = Literal["sgd", "adam"]

_OBJECTIVES = ("vi", "nmi", "info")
_OPTIMIZERS = ("sgd", "adam")
_LN2 = math.log(2.0)
#: synthesised information below this fraction of the mean reference information
#: is reported as the low-information (NMI) hazard
LOW_INFO_FRACTION = 0.1
#: Adam constants (Kingma & Ba; epsilon as Keras)
_ADAM_B1, _ADAM_B2, _ADAM_EPS = 0.9, 0.999, 1e-7
#: steps run inside one compiled TensorFlow loop between progress updates
_BLOCK = 500
#: XLA-compile the step loop (True/False), or decide from the size of the work (None):
#: compiling costs about a second of CPU and makes large problems ~4x faster
_JIT: bool | None = None
_JIT_MIN_WORK = 1e8


def _import_tf() -> ModuleType:
    try:
        import tensorflow as tf
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise MissingExtraError(
            "synthesize() needs TensorFlow for its gradients. Install it with "
            "pip install 'ensemblex[train]'."
        ) from err
    return tf


# -- reference fingerprints -----------------------------------------------------------


def _channel_ids(ds: xr.Dataset) -> np.ndarray:
    return np.asarray(ds["channel"].values)


def _select_ids(channels: Any, available: np.ndarray, what: str) -> np.ndarray | None:
    """Channel ids picked by ``channels`` (None: all)."""
    if channels is None:
        return None
    if isinstance(channels, xr.DataArray):
        if channels.dtype == bool:
            if "channel" not in channels.dims or channels.ndim != 1:
                raise InputError(
                    "a boolean channels mask must be a DataArray with the single dim "
                    f"'channel' (e.g. clusters.group == g); got dims {channels.dims}."
                )
            return np.asarray(channels["channel"].values)[np.asarray(channels.values)]
        channels = np.asarray(channels.values).ravel()
    if isinstance(channels, str) or not isinstance(channels, Sequence | np.ndarray):
        channels = [channels]
    ids = np.asarray(list(channels))
    if ids.dtype == bool:
        raise InputTypeError(
            "channels as a plain boolean array is ambiguous; pass channel ids or a "
            "boolean DataArray with a 'channel' dim."
        )
    known = set(available.tolist())
    missing = [c for c in ids.tolist() if c not in known]
    if missing:
        raise InputError(
            f"channels {missing} are not channels of {what}; its channel ids run "
            f"{available.min()}..{available.max()} ({available.size} channels)."
        )
    return ids


def _references_one(
    ds: xr.Dataset, channels: Any, what: str
) -> tuple[np.ndarray, np.ndarray, xr.Dataset, xr.DataArray | None]:
    """``(bc (C, N, N) float64, sample ids, channel coords, labels)`` of one dataset."""
    kind = require_kind(ds, ("fingerprints", "posteriors"), "synthesize()")
    if kind == "fingerprints":
        if "bc" not in ds.data_vars:
            raise InputError(f"{what} is a Fingerprints dataset without a 'bc' variable.")
        bc_var = ds["bc"]
        if set(bc_var.dims) != {"channel", "sample_i", "sample_j"}:
            raise InputError(
                f"'bc' of {what} needs dims ('channel', 'sample_i', 'sample_j'); got {bc_var.dims}."
            )
        si, sj = np.asarray(ds["sample_i"].values), np.asarray(ds["sample_j"].values)
        if si.shape != sj.shape or not np.array_equal(si, sj):
            raise InputError(
                f"the references of {what} are not over one set of samples: its "
                "sample_i and sample_j coordinates differ. Synthesis needs square "
                "fingerprints over the same points in the same order."
            )
        ids = _select_ids(channels, _channel_ids(ds), what)
        sel = ds if ids is None else ds.sel(channel=ids)
        coords = xr.Dataset(
            coords={k: v.variable for k, v in sel.coords.items() if v.dims == ("channel",)}
        ).reset_coords()
        # the reference fingerprints are the optimisation's constants: computed once,
        # here, on purpose (this is the one place synthesis materialises C x N x N)
        bc = np.asarray(
            to_numpy(sel["bc"].transpose("channel", "sample_i", "sample_j").data),
            dtype=np.float64,
        )
        labels = ds["labels"] if "labels" in ds.data_vars else None
        return bc, si, coords, labels
    post = validate_posteriors(ds, what=what)
    n_model, n_latent, n_sample = (post.sizes[d] for d in ("model", "latent", "sample"))
    # one channel per (model, latent), model-major as the Fingerprints contract numbers them
    channel = np.arange(n_model * n_latent)
    model = np.repeat(np.asarray(post["model"].values), n_latent)
    latent = np.tile(np.asarray(post["latent"].values), n_model)
    ids = _select_ids(channels, channel, what)
    pick = channel if ids is None else ids.astype(np.int64)
    mean = np.asarray(to_numpy(post["mean"].data), dtype=np.float64).reshape(-1, n_sample)
    logvar = np.asarray(to_numpy(post["logvar"].data), dtype=np.float64).reshape(-1, n_sample)
    bc = np.stack([est.bhattacharyya(mean[c], logvar[c]) for c in pick])
    coords = xr.Dataset(
        coords={
            "channel": ("channel", pick),
            "model": ("channel", model[pick]),
            "latent": ("channel", latent[pick]),
        }
    )
    for name, coord in post.coords.items():
        if name != "model" and coord.dims == ("model",):
            coords = coords.assign_coords(
                {name: ("channel", np.asarray(coord.values)[pick // n_latent])}
            )
    coords = coords.reset_coords()
    labels = post["labels"] if "labels" in post.data_vars else None
    return bc, np.asarray(post["sample"].values), coords, labels


def _references(
    ds: xr.Dataset | Sequence[xr.Dataset], channels: Any
) -> tuple[np.ndarray, np.ndarray, xr.Dataset, xr.DataArray | None]:
    """Reference fingerprints of one dataset or of several over the same samples."""
    if isinstance(ds, xr.Dataset):
        return _references_one(ds, channels, "the dataset")
    datasets = list(ds)
    if not datasets:
        raise InputError("synthesize() needs at least one reference channel; got no dataset.")
    if channels is not None and len(datasets) > 1:
        raise InputError(
            "channels selects channels of a single dataset; with several datasets, "
            "select with ds.sel(channel=...) on each first."
        )
    parts = [_references_one(d, channels, f"dataset {k}") for k, d in enumerate(datasets)]
    samples = parts[0][1]
    for k, (_, s, _, _) in enumerate(parts[1:], start=1):
        if s.shape != samples.shape or not np.array_equal(s, samples):
            raise InputError(
                f"the references are over different samples: dataset {k} has sample ids "
                f"{_short(s)}, dataset 0 has {_short(samples)}. Every reference must "
                "fingerprint the same points in the same order."
            )
    bc = np.concatenate([p[0] for p in parts])
    coords = xr.concat([p[2] for p in parts], dim="channel", join="outer", fill_value={})
    # which dataset each reference came from
    coords["source"] = ("channel", np.repeat(np.arange(len(parts)), [p[0].shape[0] for p in parts]))
    labels = next((p[3] for p in parts if p[3] is not None), None)
    return bc, samples, coords, labels


def _short(values: np.ndarray) -> str:
    v = values.tolist()
    return f"{v[:4]}{'...' if len(v) > 4 else ''} ({len(v)})"


# -- the objective in TensorFlow --------------------------------------------------------


def _bc_rows_tf(tf: ModuleType, mean_r: Any, logvar_r: Any, mean: Any, logvar: Any) -> Any:
    """Rows of a d-dim Bhattacharyya fingerprint, ``(B, N)``: the estimators' stable form."""
    mi, li = mean_r[:, None, :], logvar_r[:, None, :]
    mj, lj = mean[None, :, :], logvar[None, :, :]
    delta = tf.abs(li - lj)
    e = tf.exp(-delta)
    diff = mi - mj
    quad = diff * diff * tf.exp(-tf.maximum(li, lj)) / (4.0 * (1.0 + e))
    logdet = 0.25 * delta + 0.5 * tf.math.log((1.0 + e) / 2.0)
    distance = tf.maximum(tf.reduce_sum(quad + logdet, axis=-1), 0.0)
    return tf.exp(-distance)


def _reference_row_logs(ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``log2 mean_j R_ij`` and ``log2 mean_j R_ij^2`` per reference and row, ``(C, N)``."""
    return np.log2(ref.mean(axis=-1)), np.log2((ref * ref).mean(axis=-1))


def _objective_terms(
    tf: ModuleType,
    mean: Any,
    logvar: Any,
    ref: Any,
    ref_log: Any,
    ref_log2: Any,
    rows: Any = None,
) -> dict[str, Any]:
    """Information terms of the synthesised channel against every reference, in bits.

    ``mean``, ``logvar`` ``(N, d)``; ``ref`` ``(C, N, N)``; ``ref_log``,
    ``ref_log2`` ``(C, N)`` from :func:`_reference_row_logs`. ``rows`` (indices)
    restricts the outer mean over ``i`` to those rows (the same rows for every
    term). Returns ``i_s``, ``j_ss`` (scalars) and ``i_v``, ``j_vv``, ``j_sv``
    ``(C,)``.
    """
    if rows is None:
        mean_r, logvar_r, ref_r, log_r, log2_r = mean, logvar, ref, ref_log, ref_log2
    else:
        mean_r, logvar_r = tf.gather(mean, rows), tf.gather(logvar, rows)
        ref_r = tf.gather(ref, rows, axis=1)
        log_r, log2_r = tf.gather(ref_log, rows, axis=1), tf.gather(ref_log2, rows, axis=1)
    s = _bc_rows_tf(tf, mean_r, logvar_r, mean, logvar)  # (B, N)
    ln2 = tf.constant(_LN2, dtype=s.dtype)

    def neg_mean_log2(row_means: Any) -> Any:
        # I = -mean_i log2(mean_j coef_ij); every row mean is >= 1/N (the j = i term)
        return -tf.reduce_mean(tf.math.log(row_means), axis=-1) / ln2

    return {
        "i_s": neg_mean_log2(tf.reduce_mean(s, axis=-1)),
        "j_ss": neg_mean_log2(tf.reduce_mean(s * s, axis=-1)),
        "j_sv": neg_mean_log2(tf.reduce_mean(ref_r * s[None], axis=-1)),
        "i_v": -tf.reduce_mean(log_r, axis=-1),
        "j_vv": -tf.reduce_mean(log2_r, axis=-1),
    }


def _similarity_tf(tf: ModuleType, terms: dict[str, Any], objective: str) -> Any:
    """Per-reference similarity ``(C,)`` from the terms, as the estimators define it."""
    i_s, j_ss, i_v, j_vv, j_sv = (terms[k] for k in ("i_s", "j_ss", "i_v", "j_vv", "j_sv"))
    if objective == "vi":
        return tf.exp(-(2.0 * j_sv - j_ss - j_vv))
    if objective == "info":
        return i_s + i_v - j_sv
    # nmi (eq. 3): no guard on the normalisation, a non-finite value stops the run
    return (i_s + i_v - j_sv) / tf.sqrt((2.0 * i_s - j_ss) * (2.0 * i_v - j_vv))


def _similarity_numpy(
    mean: np.ndarray, logvar: np.ndarray, ref: np.ndarray
) -> dict[str, np.ndarray]:
    """Final similarities with the float64 NumPy estimators, one reference at a time."""
    bc_s = est.bhattacharyya(mean, logvar, multivariate=True)
    i_s = float(est.information(bc_s))
    j_ss = float(est.joint_information(bc_s, bc_s))
    out: dict[str, list[float]] = {k: [] for k in ("i_v", "j_vv", "j_sv")}
    for r in ref:  # one (N, N) at a time: memory O(N^2), not O(C N^2)
        out["i_v"].append(float(est.information(r)))
        out["j_vv"].append(float(est.joint_information(r, r)))
        out["j_sv"].append(float(est.joint_information(bc_s, r)))
    i_v, j_vv, j_sv = (np.asarray(out[k]) for k in ("i_v", "j_vv", "j_sv"))
    return {
        "i_s": np.asarray(i_s),
        "j_ss": np.asarray(j_ss),
        "i_v": i_v,
        "j_vv": j_vv,
        "j_sv": j_sv,
        "vi": np.asarray(est.vi(j_sv, j_ss, j_vv)),
        # min_info=0: the quantity the "nmi" objective optimises, defined wherever the
        # repeat information is positive
        "nmi_raw": np.asarray(est.nmi(i_s, i_v, j_sv, j_ss, j_vv, min_info=0.0)),
        "nmi": np.asarray(est.nmi(i_s, i_v, j_sv, j_ss, j_vv)),
        "info": i_s + i_v - j_sv,
    }


# -- the optimisation ---------------------------------------------------------------------


def _optimise(
    ref: np.ndarray,
    *,
    n_dims: int,
    objective: str,
    steps: int,
    learning_rate: float,
    optimizer: str,
    batch_rows: int | None,
    seed: int,
    progress: bool,
    info_floor: float | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Run the optimisation; ``(mean, logvar, trace, nan_step)`` with ``nan_step=-1`` if none."""
    tf = _import_tf()
    dtype = tf.float64  # float64: NMI's normalisation vanishes at the initialisation
    n = ref.shape[-1]
    rng = np.random.default_rng(seed)
    mean0 = rng.normal(0.0, 0.05, size=(n, n_dims))
    ref_log, ref_log2 = _reference_row_logs(ref)
    ref_t = tf.constant(ref, dtype=dtype)
    ref_log_t = tf.constant(ref_log, dtype=dtype)
    ref_log2_t = tf.constant(ref_log2, dtype=dtype)
    mean = tf.Variable(mean0, dtype=dtype)
    logvar = tf.Variable(np.zeros((n, n_dims)), dtype=dtype)
    good = [tf.Variable(mean0, dtype=dtype), tf.Variable(np.zeros((n, n_dims)), dtype=dtype)]
    params = [mean, logvar]
    moments = [tf.Variable(tf.zeros_like(p)) for p in params for _ in range(2)]
    t_adam = tf.Variable(0.0, dtype=dtype)
    lr = tf.constant(learning_rate, dtype=dtype)
    gen = tf.random.Generator.from_seed(seed)
    floor = None if info_floor is None else tf.constant(info_floor, dtype=dtype)

    def loss_fn() -> tuple[Any, Any]:
        rows = None
        if batch_rows is not None:
            rows = tf.argsort(gen.uniform([n], dtype=tf.float32))[:batch_rows]
        terms = _objective_terms(tf, mean, logvar, ref_t, ref_log_t, ref_log2_t, rows)
        value = tf.reduce_mean(_similarity_tf(tf, terms, objective))
        loss = -value
        if floor is not None:
            short = tf.maximum(floor - terms["i_s"], 0.0)
            loss = loss + short * short
        return loss, value

    def apply(grads: list[Any]) -> None:
        if optimizer == "sgd":
            for p, g in zip(params, grads, strict=True):
                p.assign_sub(lr * g)
            return
        t_adam.assign_add(1.0)
        c1 = 1.0 - tf.pow(tf.constant(_ADAM_B1, dtype), t_adam)
        c2 = 1.0 - tf.pow(tf.constant(_ADAM_B2, dtype), t_adam)
        for k, (p, g) in enumerate(zip(params, grads, strict=True)):
            m, v = moments[2 * k], moments[2 * k + 1]
            m.assign(_ADAM_B1 * m + (1.0 - _ADAM_B1) * g)
            v.assign(_ADAM_B2 * v + (1.0 - _ADAM_B2) * g * g)
            p.assign_sub(lr * (m / c1) / (tf.sqrt(v / c2) + _ADAM_EPS))

    rows_used = n if batch_rows is None else batch_rows
    jit = _JIT if _JIT is not None else steps * (ref.shape[0] + 3) * rows_used * n >= _JIT_MIN_WORK

    @tf.function(jit_compile=jit)
    def run_block(n_steps: Any) -> tuple[Any, Any]:
        trace = tf.TensorArray(dtype, size=n_steps)

        def body(t: Any, ok: Any, trace: Any) -> tuple[Any, Any, Any]:
            with tf.GradientTape() as tape:
                loss, value = loss_fn()
            grads = tape.gradient(loss, params)
            finite = tf.math.is_finite(loss) & tf.math.is_finite(value)
            for g in grads:
                finite = finite & tf.reduce_all(tf.math.is_finite(g))

            def step() -> Any:
                good[0].assign(mean)
                good[1].assign(logvar)
                apply(grads)
                return tf.constant(True)

            ok = tf.cond(finite, step, lambda: tf.constant(False))
            trace = trace.write(t, value)
            return t + 1, ok, trace

        t, ok, trace = tf.while_loop(
            lambda t, ok, trace: (t < n_steps) & ok,
            body,
            (tf.constant(0), tf.constant(True), trace),
        )
        return trace.stack()[:t], ok

    # each call builds its own tf.function (it closes over this call's variables);
    # TensorFlow's "retracing" log message about that is expected, not a problem
    tf_logger = logging.getLogger("tensorflow")
    level = tf_logger.level
    tf_logger.setLevel(logging.ERROR)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc=f"synthesize ({objective})", unit="step")
    pieces: list[np.ndarray] = []
    done, nan_step = 0, -1
    try:
        while done < steps:
            block = min(_BLOCK, steps - done)
            trace, ok = run_block(tf.constant(block))
            trace = trace.numpy()
            if not bool(ok):
                # the last entry is the non-finite step; the state before it is kept
                nan_step = done + len(trace) - 1
                pieces.append(trace[:-1])
                break
            pieces.append(trace)
            done += block
            if bar is not None:
                bar.update(block)
                bar.set_postfix(similarity=f"{trace[-1]:.4f}")
    finally:
        tf_logger.setLevel(level)
        if bar is not None:
            bar.close()
    if nan_step >= 0:
        out_mean, out_logvar = good[0].numpy(), good[1].numpy()
    else:
        out_mean, out_logvar = mean.numpy(), logvar.numpy()
    trace_all = np.concatenate(pieces) if pieces else np.zeros(0)
    return out_mean, out_logvar, trace_all, nan_step


def synthesize(
    ds: xr.Dataset | Sequence[xr.Dataset],
    *,
    n_dims: int = 2,
    objective: Objective = "vi",
    channels: Sequence[Hashable] | xr.DataArray | None = None,
    steps: int = 20000,
    learning_rate: float = 3.0,
    optimizer: Optimizer = "sgd",
    batch_rows: int | None = None,
    seed: int = 0,
    progress: bool = True,
    info_floor: float | None = None,
) -> xr.Dataset:
    """Synthesise one channel that is maximally similar to a set of reference channels.

    Free posterior parameters (means and log-variances of the N fingerprint
    points in an ``n_dims``-dimensional latent space) are optimised by
    gradient ascent on the mean similarity of the synthesised fingerprint to
    the reference fingerprints (paper Sec. 3.4, Fig. 6). No model is needed:
    only the reference fingerprints, which are computed once and held as
    constants (``C x N x N`` float64 in memory).

    Parameters
    ----------
    ds
        Fingerprints (its ``bc`` of the selected channels is computed once), or
        Posteriors (one reference channel per latent of every model, channel id
        ``model_index * n_latent + latent_index`` as in the Fingerprints
        contract; the fingerprints are computed with
        :func:`ensemblex.estimators.bhattacharyya`). A sequence of such datasets
        pools their channels; they must be over the same samples.
    n_dims
        Dimension of the synthesised latent space (2 as in the paper).
    objective
        ``"vi"`` (``exp(-VI)``, VI in bits; default), ``"nmi"`` (eq. 3) or
        ``"info"`` (shared information in bits), averaged over the references.
    channels
        Reference channel ids (the ``channel`` coordinate), or a boolean
        DataArray with a ``channel`` dim (e.g. ``clusters.group == g``), or an
        integer DataArray of channel ids. ``None``: every channel.
    steps
        Optimisation steps (paper: 20,000).
    learning_rate
        Step size. The paper's 3.0 is for SGD; with ``"adam"`` use ~0.01-0.05.
    optimizer
        ``"sgd"`` (plain gradient descent) or ``"adam"`` (beta1 0.9, beta2 0.999,
        epsilon 1e-7).
    batch_rows
        Rows ``i`` of the fingerprints sampled (without replacement) per step;
        every term of the objective uses the same rows. ``None``: all N rows.
        Each step then costs ``O(C * batch_rows * N)`` instead of ``O(C N^2)``.
    seed
        Seed of the initial means and of the row sampling.
    progress
        Show a tqdm progress bar.
    info_floor
        Optional floor (bits) on the synthesised information: adds
        ``max(0, info_floor - I_S)^2`` to the loss. A remedy for the NMI hazard
        (see Notes); off by default.

    Returns
    -------
    xr.Dataset
        Posteriors (``model=1``, ``latent=n_dims``, ``sample`` = the reference
        sample ids) with model coordinates ``method="synthesis"``,
        ``objective`` and ``seed``, plus:

        - ``objective_trace(step)``: the mean similarity at every step, before
          that step's update (a row-sampled estimate when ``batch_rows`` is set);
        - ``reference_similarity(reference)``: the final similarity (the
          objective's measure, NMI without the ``min_info`` cut) to every
          reference, over all rows, with the float64 NumPy estimators;
        - ``reference_nmi``, ``reference_vi`` (bits), ``reference_info`` (bits)
          per reference; the ``reference`` coordinate holds the channel ids and
          the references' channel coordinates as ``reference_<name>``;
        - ``labels`` when the input carried them;
        - attrs ``objective``, ``final_similarity``, ``synthesized_info``,
          ``mean_reference_info``, ``low_information`` (0/1), ``nan_step``
          (-1 when none), ``steps_run``, ``status``, ``warning`` and the settings.

    Warns
    -----
    UserWarning
        When a NaN stopped the run, and when the synthesised channel holds less
        than 10% of the mean reference information or has NMI > 1 (the NMI
        hazard).

    Raises
    ------
    ValueError
        No reference channel; references over different samples; ``n_dims < 1``;
        a reference with too little information for the ``"nmi"`` objective.
    ImportError
        TensorFlow is not installed (``pip install 'ensemblex[train]'``).

    Notes
    -----
    The objective is the estimators' (bits, means over ``j``); the paper's
    public notebook sums over ``j``, which shifts every term by ``log2 N``
    and, for NMI, changes the value. NMI is undefined for a reference under
    :data:`ensemblex.estimators.MIN_INFO` bits, so the ``"nmi"`` objective
    refuses such references; select informative ones (``clusters.informative``).

    The NMI hazard and the ``info_floor`` remedy are documented, with the
    measurements, in the module docstring (:mod:`ensemblex.synthesis`): a
    floor prevents the collapse to a channel without information but the
    NMI optimum then sits on the floor; use the default ``"vi"``.

    Examples
    --------
    Fuse eight weak 1-D channels, each a circle cut open at a random angle,
    into one 2-D channel; it closes the ring (a lower ring uniformity):

    >>> from ensemblex.synthesis import ring_learners, ring_uniformity
    >>> weak = ring_learners(8, n_samples=60, seed=0)
    >>> syn = synthesize(weak, n_dims=2, steps=1000, progress=False)
    >>> syn.sizes["latent"], syn.sizes["sample"], syn.attrs["objective"]
    (2, 60, 'vi')
    >>> bool(ring_uniformity(syn) < ring_uniformity(weak.isel(model=[0])))
    True
    """
    n_dims = check_positive_int("n_dims", n_dims)
    steps = check_positive_int("steps", steps)
    objective = check_option("objective", objective, _OBJECTIVES)
    optimizer = check_option("optimizer", optimizer, _OPTIMIZERS)
    seed = check_positive_int("seed", seed, minimum=0)
    learning_rate = check_probability("learning_rate", learning_rate, high=math.inf)
    if learning_rate <= 0:
        raise InputError(f"learning_rate must be > 0; got {learning_rate}.")
    if info_floor is not None:
        info_floor = check_probability("info_floor", info_floor, high=math.inf)
    ref, samples, ref_coords, labels = _references(ds, channels)
    n_ref, n = ref.shape[0], ref.shape[-1]
    if n_ref < 1:
        raise InputError(
            "synthesize() needs at least one reference channel; the selection is empty. "
            "Check `channels` (e.g. that clusters.group == g selects some channel)."
        )
    if batch_rows is not None:
        batch_rows = check_positive_int("batch_rows", batch_rows)
        if batch_rows >= n:
            batch_rows = None  # every row: the exact objective
    ref_info = np.asarray(est.information(ref))
    if objective == "nmi":
        weak = ref_info < est.MIN_INFO
        if np.any(weak):
            bad = np.asarray(ref_coords["channel"].values)[weak].tolist()
            raise InputError(
                f"the 'nmi' objective is undefined for reference channels with less than "
                f"{est.MIN_INFO} bits; channels {bad} have too little information. "
                "Select informative channels (e.g. channels=clusters.informative) or use "
                "objective='vi'."
            )

    mean, logvar, trace, nan_step = _optimise(
        ref,
        n_dims=n_dims,
        objective=objective,
        steps=steps,
        learning_rate=learning_rate,
        optimizer=optimizer,
        batch_rows=batch_rows,
        seed=seed,
        progress=progress,
        info_floor=info_floor,
    )
    final = _similarity_numpy(mean, logvar, ref)
    sim = {"vi": np.exp(-final["vi"]), "nmi": final["nmi_raw"], "info": final["info"]}[objective]
    syn_info = float(final["i_s"])
    mean_ref_info = float(np.mean(ref_info))

    messages = []
    if nan_step >= 0:
        messages.append(
            f"the objective or its gradient became non-finite at step {nan_step}; the "
            f"optimisation stopped there and the last finite state (step "
            f"{max(nan_step - 1, 0)}) is returned. Lower learning_rate or try optimizer='adam'."
        )
    low = syn_info < LOW_INFO_FRACTION * mean_ref_info
    nmi_over = bool(np.any(final["nmi_raw"] > 1.0 + 1e-6))
    if low or (objective == "nmi" and nmi_over):
        messages.append(
            f"the synthesised channel holds {syn_info:.4g} bits against a mean of "
            f"{mean_ref_info:.4g} bits in the references"
            + (f" and NMI > 1 (max {np.nanmax(final['nmi_raw']):.4g})" if nmi_over else "")
            + ": the low-information hazard (see ensemblex.synthesis). Use objective='vi', "
            "more steps, or an info_floor."
        )
    for msg in messages:
        warnings.warn(msg, UserWarning, stacklevel=2)

    n_step = len(trace)
    out = posteriors(
        mean.T[None].astype(np.float32),
        logvar.T[None].astype(np.float32),
        labels=None if labels is None else np.asarray(labels.transpose("factor", "sample").values),
        factor_names=None if labels is None else list(labels["factor"].values),
        coords={
            "sample": ("sample", samples),
            "method": ["synthesis"],
            "objective": [objective],
            "seed": [seed],
        },
    )
    ref_ids = np.asarray(ref_coords["channel"].values)
    ref_vars = {
        f"reference_{k}": ("reference", np.asarray(v.values))
        for k, v in ref_coords.data_vars.items()
    }
    out = out.assign_coords(reference=("reference", ref_ids), step=("step", np.arange(n_step)))
    out = out.assign_coords(ref_vars)
    out["objective_trace"] = ("step", trace.astype(np.float64))
    out["reference_similarity"] = ("reference", np.asarray(sim, dtype=np.float64))
    out["reference_nmi"] = ("reference", final["nmi"].astype(np.float64))
    out["reference_vi"] = ("reference", final["vi"].astype(np.float64))
    out["reference_info"] = ("reference", ref_info.astype(np.float64))
    out.attrs.update(
        {
            "objective": objective,
            "n_dims": n_dims,
            "steps": steps,
            "steps_run": n_step,
            "learning_rate": learning_rate,
            "optimizer": optimizer,
            "batch_rows": n if batch_rows is None else batch_rows,
            "seed": seed,
            "info_floor": -1.0 if info_floor is None else info_floor,
            "final_similarity": float(np.mean(sim)),
            "synthesized_info": syn_info,
            "mean_reference_info": mean_ref_info,
            "low_information": int(low),
            "nan_step": nan_step,
            "status": "stopped_nan" if nan_step >= 0 else "completed",
            "warning": " ".join(messages),
        }
    )
    return out


# -- the ring toy -------------------------------------------------------------------------


def ring_uniformity(mean: Any, angles: Any = None) -> float:
    """Uniformity of a ring embedding: std / mean of neighbour distances (lower is better).

    The Euclidean distances between the posterior means of neighbouring points
    around the circle, including the pair that closes the circle (last, first);
    population std (``ddof=0``) over their mean (docs/design.md section 1, paper Fig. 6c). A
    perfectly even ring gives 0.

    Parameters
    ----------
    mean
        Posterior means, shape ``(N,)`` or ``(N, d)`` (any array namespace), or
        a one-model Posteriors dataset (its ``mean`` is taken as ``(sample, latent)``).
    angles
        Angle of every point on the circle, ``(N,)``: points are put in angle
        order first. ``None``: the points are already in angle order (as the
        fingerprint samples of :func:`ring_learners` and of the ring dataset).

    Examples
    --------
    >>> import numpy as np
    >>> theta = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    >>> circle = np.stack([np.cos(theta), np.sin(theta)], axis=-1)
    >>> round(ring_uniformity(circle), 6)
    0.0
    >>> shuffled = np.random.default_rng(0).permutation(12)
    >>> round(ring_uniformity(circle[shuffled], angles=theta[shuffled]), 6)
    0.0
    """
    if isinstance(mean, xr.Dataset):
        if dataset_kind(mean) != "posteriors":
            raise InputTypeError("ring_uniformity() takes an array of means or a Posteriors dataset.")
        if mean.sizes["model"] != 1:
            raise InputError(
                f"ring_uniformity() takes one model; got {mean.sizes['model']}. "
                "Select one with ds.isel(model=k)."
            )
        mean = mean["mean"].isel(model=0).transpose("sample", "latent").data
    elif isinstance(mean, xr.DataArray):
        mean = mean.data
    if not hasattr(mean, "shape"):
        mean = np.asarray(mean, dtype=np.float64)
    xp = get_namespace(mean)
    if mean.ndim == 1:
        mean = xp.expand_dims(mean, axis=-1)
    if mean.ndim != 2 or mean.shape[0] < 3:
        raise InputError(
            f"mean must have shape (N,) or (N, d) with N >= 3 points; got {tuple(mean.shape)}."
        )
    mean = xp.astype(mean, xp.float64)
    if angles is not None:
        if not hasattr(angles, "shape"):
            angles = np.asarray(angles, dtype=np.float64)
        angles = xp.asarray(getattr(angles, "data", angles))
        if angles.shape != (mean.shape[0],):
            raise InputError(
                f"angles must have shape ({mean.shape[0]},), one per point; got "
                f"{tuple(angles.shape)}."
            )
        mean = xp.take(mean, xp.argsort(angles), axis=0)
    nxt = xp.concat([mean[1:, ...], mean[:1, ...]], axis=0)
    dist = xp.sqrt(xp.sum((nxt - mean) ** 2, axis=-1))
    avg = xp.mean(dist)
    if float(avg) == 0.0:
        # degenerate: every point at the same place, no ring at all
        return math.inf
    return float(xp.std(dist) / avg)


def ring_learners(
    n_learners: int,
    n_samples: int = 200,
    *,
    noise: float = 0.01,
    logvar: float = -6.0,
    seed: int = 0,
) -> xr.Dataset:
    """Weak learners of the ring: 1-D embeddings of the circle cut at random angles.

    The ``n_samples`` points are at angles ``2 pi k / n_samples`` (in angle
    order). Learner ``m`` maps angle ``theta`` to
    ``u = s_m * (wrap(theta + phi_m) / pi - 1) + noise``: the circle is cut at
    a random angle ``-phi_m`` and unrolled onto ``[-1, 1]`` with a random
    orientation ``s_m = +-1``, as a 1-D beta-VAE trained on the ring does. The
    two neighbours across the cut land at opposite ends: each learner alone
    misses one adjacency, which fusing several learners with different cuts
    restores. Posterior means carry Gaussian noise of std ``noise``; posterior
    log-variances are ``logvar`` plus noise of std 0.2. The defaults (std 0.05
    on the range [-1, 1], noise 0.01) give learners of about 3 bits on 80 to
    200 points; the posterior width relative to the point spacing ``2 / N``
    sets how much of the ring one learner resolves.

    Returns a Posteriors dataset (``model=n_learners``, ``latent=1``) with the
    coordinate ``angle`` on ``sample`` and per-model ``cut`` (radians).

    Examples
    --------
    >>> post = ring_learners(3, 40, seed=1)
    >>> dict(post.sizes)
    {'model': 3, 'latent': 1, 'sample': 40}
    """
    n_learners = check_positive_int("n_learners", n_learners)
    n_samples = check_positive_int("n_samples", n_samples, minimum=3)
    noise = check_probability("noise", noise, high=math.inf)
    rng = np.random.default_rng(seed)
    theta = 2 * np.pi * np.arange(n_samples) / n_samples
    phase = rng.uniform(0, 2 * np.pi, size=(n_learners, 1))
    sign = rng.choice([-1.0, 1.0], size=(n_learners, 1))
    u = sign * (np.mod(theta[None] + phase, 2 * np.pi) / np.pi - 1.0)
    u = u + noise * rng.standard_normal(u.shape)
    lv = logvar + 0.2 * rng.standard_normal(u.shape)
    return posteriors(
        u[:, None, :],
        lv[:, None, :],
        coords={
            "angle": ("sample", theta),
            "cut": np.mod(-phase[:, 0], 2 * np.pi),
            "method": ["ring_cut"] * n_learners,
        },
    )
