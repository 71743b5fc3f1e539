"""Synthesis: fuse many reference channels into one by gradient descent (paper Sec. 3.4).

A fingerprint is a differentiable function of the posterior parameters of
the N fingerprint points, so a new channel can be *synthesised* without any
model: free means and log-variances of the N points in an
``n_dims``-dimensional latent space are optimised so that the synthesised
fingerprint is, on average over a set of reference channels (for example one
group found by :func:`ensemblex.structure.cluster`), as similar as possible
to theirs. The reference fingerprints are constants, computed once.

The objective is written in TensorFlow term by term as
:mod:`ensemblex.estimators` defines the estimators (bits, means over ``j``);
the tests hold it to the NumPy float64 estimators. The measure maximised is
one of the registry's synthesis objectives (:mod:`ensemblex.measures`):
``"vi"`` (``exp(-VI)``, the default), ``"nmi"`` or ``"info"`` (shared
information, bits). NMI has a hazard near zero information, which
:func:`synthesize` detects and reports; the measurements behind that, behind
the default measure and behind the default optimiser settings are in
``docs/notes/synthesis.md``.

Memory: the references are held once as float32 and streamed in batches at
every step (:func:`synthesize`'s ``reference_batch``), so a step's working
memory does not grow with the number of references. Beyond a budget
(``reference_memory``, 1 GiB) they are held in a temporary file instead of
in memory and read one batch at a time (:mod:`ensemblex._reference_store`), so
a run's memory is bounded whatever the size of the group.

:func:`ring_fusion` runs the paper's ring experiment (Fig. 6): 1-D weak
learners, each with a scar where it cuts the circle, fused into one 2-D
channel that closes it.
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
import os
import warnings
from collections.abc import Callable, Hashable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import xarray as xr

from . import estimators as est
from ._checks import check_option, check_positive_int, check_probability
from ._kernels import floor_threshold, floor_tiny
from ._kinds import dataset_kind, require_kind
from ._namespace import get_namespace, to_numpy
from ._reference_store import DEFAULT_MEMORY_BYTES, ReferenceStore
from ._threads import one_blas_thread_in_pools
from .errors import InputError, InputTypeError
from .fingerprints import select_channels
from .measures import ObjectiveMeasure, get_measure, measure_names, resolve_alias
from .posteriors import posteriors, validate_posteriors

if TYPE_CHECKING:
    from types import ModuleType

__all__ = [
    "SYNTHESIS_SETTINGS",
    "SynthesisSettings",
    "ring_fusion",
    "ring_learners",
    "ring_uniformity",
    "synthesize",
]

#: the measure maximised (the registry's synthesis objectives); old name ``Objective``
Objective = ObjectiveMeasure
Optimizer = Literal["sgd", "adam"]
Settings = Literal["fast", "paper"]

_LN2 = math.log(2.0)
#: the largest Bhattacharyya distance a synthesised coefficient takes (float64)
_MAX_DISTANCE = -math.log(floor_threshold(np, np.float64))
#: synthesised information below this fraction of the mean reference information
#: is reported as the low-information (NMI) hazard
LOW_INFO_FRACTION = 0.1
#: steps run inside one compiled TensorFlow loop between progress updates
_BLOCK = 500
#: XLA-compile the step loop (True/False), or decide from the size of the work (None):
#: compiling costs about a second of CPU and makes large problems ~4x faster
_JIT: bool | None = None
_JIT_MIN_WORK = 1e8
#: float64 values of work per reference batch (batch x rows x N): about 32 MB
_BATCH_WORK = 2**22
#: references (float32 bytes) up to which TensorFlow holds its own copy and the whole
#: step runs compiled; larger sets are streamed from the one NumPy copy
_IN_GRAPH_BYTES = 2**28


@dataclass(frozen=True)
class SynthesisSettings:
    """Optimiser, learning rate and steps of a synthesis run."""

    optimizer: Optimizer
    learning_rate: float
    steps: int


#: the presets of :func:`synthesize` (``settings=``), shared by the library, the
#: command line and the demo: ``"fast"`` converges in minutes on a CPU;
#: ``"paper"`` is the paper's notebook (docs/notes/synthesis.md)
SYNTHESIS_SETTINGS: dict[str, SynthesisSettings] = {
    "fast": SynthesisSettings(optimizer="adam", learning_rate=0.05, steps=2000),
    "paper": SynthesisSettings(optimizer="sgd", learning_rate=3.0, steps=20000),
}


def _import_tf() -> ModuleType:
    from .models._tf import require_tf

    return require_tf()


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


@dataclass(frozen=True)
class _References:
    """The reference channels: fingerprints (float32, held once) and their row statistics.

    ``bc`` holds the ``(C, N, N)`` fingerprints in memory or, beyond the memory
    budget, in a temporary file (:class:`ensemblex._reference_store.ReferenceStore`).
    ``row_log`` and ``row_log2`` are ``log2 mean_j R_ij`` and ``log2 mean_j
    R_ij^2`` per reference and row (float64, from the float64 fingerprints
    where they were computed here); ``info`` is each reference's I(X;V).
    """

    bc: ReferenceStore
    row_log: np.ndarray  # (C, N) float64
    row_log2: np.ndarray  # (C, N) float64
    samples: np.ndarray
    coords: xr.Dataset
    labels: xr.DataArray | None

    @property
    def info(self) -> np.ndarray:
        return -self.row_log.mean(axis=-1)

    @property
    def ids(self) -> np.ndarray:
        return np.asarray(self.coords["channel"].values)

    def select(self, keep: np.ndarray) -> _References:
        if keep.all():
            return self
        return _References(
            self.bc.take(keep),
            self.row_log[keep],
            self.row_log2[keep],
            self.samples,
            self.coords.isel(channel=np.flatnonzero(keep)),
            self.labels,
        )


@dataclass(frozen=True)
class _Source:
    """One dataset's references before they are read: how many, and a reader of blocks."""

    count: int
    n: int
    blocks: Callable[[], Iterator[np.ndarray]]  # (k, N, N) blocks, in order
    samples: np.ndarray
    coords: xr.Dataset
    labels: xr.DataArray | None


def _row_stats(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``log2 mean_j R_ij`` and ``log2 mean_j R_ij^2`` of one fingerprint, float64."""
    r = np.asarray(r, dtype=np.float64)
    return np.log2(r.mean(axis=-1)), np.log2((r * r).mean(axis=-1))


def _reference_row_logs(ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``log2 mean_j R_ij`` and ``log2 mean_j R_ij^2`` per reference and row, ``(C, N)``."""
    out = np.empty(ref.shape[:2]), np.empty(ref.shape[:2])
    for c, r in enumerate(ref):  # one (N, N) at a time, in float64
        out[0][c], out[1][c] = _row_stats(r)
    return out


def _channel_coords(sel: xr.Dataset) -> xr.Dataset:
    return xr.Dataset(
        coords={k: v.variable for k, v in sel.coords.items() if v.dims == ("channel",)}
    ).reset_coords()


#: float32 bytes of reference fingerprints computed at once from a lazy Fingerprints
_READ_BYTES = 2**26


def _from_fingerprints(ds: xr.Dataset, channels: Any, what: str) -> _Source:
    if "bc" not in ds.data_vars:
        raise InputError(f"{what} is a Fingerprints dataset without a 'bc' variable.")
    if set(ds["bc"].dims) != {"channel", "sample_i", "sample_j"}:
        raise InputError(
            f"'bc' of {what} needs dims ('channel', 'sample_i', 'sample_j'); got {ds['bc'].dims}."
        )
    si, sj = np.asarray(ds["sample_i"].values), np.asarray(ds["sample_j"].values)
    if si.shape != sj.shape or not np.array_equal(si, sj):
        raise InputError(
            f"the references of {what} are not over one set of samples: its "
            "sample_i and sample_j coordinates differ. Synthesis needs square "
            "fingerprints over the same points in the same order."
        )
    ids = _select_ids(channels, _channel_ids(ds), what)
    # only the chosen channels of a lazy bc are computed, not every block they fall in
    sel = ds if ids is None else select_channels(ds, ids)
    data = sel["bc"].transpose("channel", "sample_i", "sample_j").data
    count, n = int(data.shape[0]), int(si.size)
    step = max(1, _READ_BYTES // (n * n * 4))

    def blocks() -> Iterator[np.ndarray]:
        # the reference fingerprints are the optimisation's constants: computed once,
        # here, on purpose, a slice of channels at a time (a lazy bc is computed in
        # parallel within a slice), never all at once
        for c0 in range(0, count, step):
            yield np.asarray(to_numpy(data[c0 : c0 + step]), dtype=np.float32)

    labels = ds["labels"] if "labels" in ds.data_vars else None
    return _Source(count, n, blocks, si, _channel_coords(sel), labels)


def _from_posteriors(ds: xr.Dataset, channels: Any, what: str) -> _Source:
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

    def blocks() -> Iterator[np.ndarray]:
        for c in pick:  # float64, one channel at a time
            yield est.bhattacharyya(mean[c], logvar[c])[None]

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
    labels = post["labels"] if "labels" in post.data_vars else None
    samples = np.asarray(post["sample"].values)
    return _Source(int(pick.size), int(n_sample), blocks, samples, coords.reset_coords(), labels)


def _source_one(ds: xr.Dataset, channels: Any, what: str) -> _Source:
    kind = require_kind(ds, ("fingerprints", "posteriors"), "synthesize()")
    if kind == "fingerprints":
        return _from_fingerprints(ds, channels, what)
    return _from_posteriors(ds, channels, what)


def _read_sources(
    sources: list[_Source], memory_bytes: int, directory: str | None
) -> tuple[ReferenceStore, np.ndarray, np.ndarray]:
    """Every source's references into one store, with their row statistics."""
    total, n = sum(s.count for s in sources), sources[0].n
    store = ReferenceStore(total, n, memory_bytes=memory_bytes, directory=directory)
    row_log, row_log2 = np.empty((total, n)), np.empty((total, n))
    k = 0
    for source in sources:
        for block in source.blocks():
            # stored as float32 with no subnormal value (floor_tiny), as the engine keeps its
            # stored fingerprints: arithmetic on subnormals is many times slower
            # (docs/notes/kernels.md, docs/notes/synthesis.md)
            stored = floor_tiny(np.asarray(block, dtype=np.float32))
            for j, r in enumerate(stored):
                store.write(k + j, r)
            row_log[k : k + len(block)], row_log2[k : k + len(block)] = _reference_row_logs(block)
            k += len(block)
    return store, row_log, row_log2


def _references(
    ds: xr.Dataset | Sequence[xr.Dataset],
    channels: Any,
    *,
    memory_bytes: int = DEFAULT_MEMORY_BYTES,
    directory: str | None = None,
) -> _References:
    """Reference fingerprints of one dataset or of several over the same samples."""
    pooled = not isinstance(ds, xr.Dataset)
    if isinstance(ds, xr.Dataset):
        sources = [_source_one(ds, channels, "the dataset")]
    else:
        datasets = list(ds)
        if not datasets:
            raise InputError("synthesize() needs at least one reference channel; got no dataset.")
        if channels is not None and len(datasets) > 1:
            raise InputError(
                "channels selects channels of a single dataset; with several datasets, "
                "select with ds.sel(channel=...) on each first."
            )
        sources = [_source_one(d, channels, f"dataset {k}") for k, d in enumerate(datasets)]
    samples = sources[0].samples
    for k, p in enumerate(sources[1:], start=1):
        if p.samples.shape != samples.shape or not np.array_equal(p.samples, samples):
            raise InputError(
                f"the references are over different samples: dataset {k} has sample ids "
                f"{_short(p.samples)}, dataset 0 has {_short(samples)}. Every reference must "
                "fingerprint the same points in the same order."
            )
    if not pooled:
        coords = sources[0].coords
    else:
        coords = xr.concat([p.coords for p in sources], dim="channel", join="outer", fill_value={})
        # which dataset each reference came from
        sizes = [p.count for p in sources]
        coords["source"] = ("channel", np.repeat(np.arange(len(sources)), sizes))
    store, row_log, row_log2 = _read_sources(sources, memory_bytes, directory)
    labels = next((p.labels for p in sources if p.labels is not None), None)
    return _References(store, row_log, row_log2, samples, coords, labels)


def _short(values: np.ndarray) -> str:
    v = values.tolist()
    return f"{v[:4]}{'...' if len(v) > 4 else ''} ({len(v)})"


def _drop_uninformative(
    refs: _References, min_info: float, measure: str
) -> tuple[_References, np.ndarray, str]:
    """The references with at least ``min_info`` bits, the ids dropped and the message."""
    info = refs.info
    weak = info < min_info
    if measure == "nmi":
        weak |= info < est.MIN_INFO  # NMI is undefined there, whatever min_info says
    dropped = refs.ids[weak]
    if weak.all():
        undefined = (
            f"the 'nmi' objective is undefined for reference channels with less than "
            f"{est.MIN_INFO} bits; "
            if measure == "nmi"
            else ""
        )
        raise InputError(
            f"{undefined}every reference channel holds less than min_info="
            f"{max(min_info, est.MIN_INFO if measure == 'nmi' else 0.0):g} bits (channels "
            f"{_short(dropped)}): there is nothing to fuse. Select informative channels (e.g. "
            "channels=clusters.informative) or lower min_info"
            + (", or use measure='vi'." if measure == "nmi" else ".")
        )
    if not weak.any():
        return refs, dropped, ""
    message = (
        f"dropped {dropped.size} of {info.size} reference channels with less than "
        f"{min_info:g} bits (channels {_short(dropped)}); they carry no information to fuse. "
        "Their ids are in attrs['dropped']."
    )
    return refs.select(~weak), dropped, message


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
    # capped at -log t (t = 2 sqrt(smallest normal), about 353 in float64): no coefficient,
    # and no product of a coefficient with one or with a stored reference, is subnormal,
    # which would slow every step several times (docs/notes/kernels.md); each row sum
    # (at least 1, from j = i) moves by at most N t
    distance = tf.clip_by_value(tf.reduce_sum(quad + logdet, axis=-1), 0.0, _MAX_DISTANCE)
    return tf.exp(-distance)


def _neg_mean_log2(tf: ModuleType, row_means: Any) -> Any:
    # I = -mean_i log2(mean_j coef_ij); every row mean is >= 1/N (the j = i term)
    ln2 = tf.constant(_LN2, dtype=row_means.dtype)
    return -tf.reduce_mean(tf.math.log(row_means), axis=-1) / ln2


def _self_terms(tf: ModuleType, s: Any) -> dict[str, Any]:
    """``i_s`` and ``j_ss`` of the synthesised channel from its fingerprint rows ``(B, N)``."""
    return {
        "i_s": _neg_mean_log2(tf, tf.reduce_mean(s, axis=-1)),
        "j_ss": _neg_mean_log2(tf, tf.reduce_mean(s * s, axis=-1)),
    }


def _reference_terms(tf: ModuleType, s: Any, ref_r: Any, log_r: Any, log2_r: Any) -> dict[str, Any]:
    """``j_sv``, ``i_v``, ``j_vv`` ``(C,)`` of references restricted to the rows of ``s``."""
    return _terms_from_row_means(tf, tf.reduce_mean(ref_r * s[None], axis=-1), log_r, log2_r)


def _terms_from_row_means(tf: ModuleType, joint: Any, log_r: Any, log2_r: Any) -> dict[str, Any]:
    """``j_sv``, ``i_v``, ``j_vv`` ``(C,)`` from ``joint[c, i] = mean_j R_c[i, j] S[i, j]``."""
    return {
        "j_sv": _neg_mean_log2(tf, joint),
        "i_v": -tf.reduce_mean(log_r, axis=-1),
        "j_vv": -tf.reduce_mean(log2_r, axis=-1),
    }


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
    ``(C,)``. All references at once: the plain form that the streamed
    objective (:func:`_value_and_grads`) is tested against.
    """
    if rows is None:
        mean_r, logvar_r, ref_r, log_r, log2_r = mean, logvar, ref, ref_log, ref_log2
    else:
        mean_r, logvar_r = tf.gather(mean, rows), tf.gather(logvar, rows)
        ref_r = tf.gather(ref, rows, axis=1)
        log_r, log2_r = tf.gather(ref_log, rows, axis=1), tf.gather(ref_log2, rows, axis=1)
    s = _bc_rows_tf(tf, mean_r, logvar_r, mean, logvar)  # (B, N)
    return {**_self_terms(tf, s), **_reference_terms(tf, s, ref_r, log_r, log2_r)}


def _similarity_tf(tf: ModuleType, terms: dict[str, Any], objective: str) -> Any:
    """Per-reference similarity ``(C,)`` from the terms, as the estimators define it.

    The TensorFlow twin of the registry's estimators (:mod:`ensemblex.measures`)
    for the synthesis objectives; a registry objective without a twin here
    fails at import (see :data:`_TF_MEASURES`).
    """
    i_s, j_ss, i_v, j_vv, j_sv = (terms[k] for k in ("i_s", "j_ss", "i_v", "j_vv", "j_sv"))
    if objective == "vi":
        return tf.exp(-(2.0 * j_sv - j_ss - j_vv))
    if objective == "info":
        return i_s + i_v - j_sv
    # nmi (eq. 3): no guard on the normalisation, a non-finite value stops the run
    return (i_s + i_v - j_sv) / tf.sqrt((2.0 * i_s - j_ss) * (2.0 * i_v - j_vv))


#: the objectives :func:`_similarity_tf` writes in TensorFlow
_TF_MEASURES = ("vi", "nmi", "info")
if set(_TF_MEASURES) != set(measure_names("objective")):  # pragma: no cover - a new measure
    raise ImportError(
        "ensemblex.synthesis: the registry's synthesis objectives "
        f"{measure_names('objective')} differ from those written in TensorFlow {_TF_MEASURES}."
    )


def _similarity_numpy(
    mean: np.ndarray, logvar: np.ndarray, ref: ReferenceStore | np.ndarray
) -> dict[str, np.ndarray]:
    """Final similarities with the float64 NumPy estimators, one reference at a time."""
    bc_s = est.bhattacharyya(mean, logvar, multivariate=True)
    i_s = float(est.information(bc_s))
    j_ss = float(est.joint_information(bc_s, bc_s))
    out: dict[str, list[float]] = {k: [] for k in ("i_v", "j_vv", "j_sv")}
    for r in ref:  # one (N, N) at a time: memory O(N^2), not O(C N^2)
        r = np.asarray(r, dtype=np.float64)
        out["i_v"].append(float(est.information(r)))
        out["j_vv"].append(float(est.joint_information(r, r)))
        out["j_sv"].append(float(est.joint_information(bc_s, r)))
    i_v, j_vv, j_sv = (np.asarray(out[k]) for k in ("i_v", "j_vv", "j_sv"))
    terms = {"min_info": 0.0}
    nmi, vi, info = (get_measure(m).estimator for m in ("nmi", "vi", "info"))
    return {
        "i_s": np.asarray(i_s),
        "j_ss": np.asarray(j_ss),
        "i_v": i_v,
        "j_vv": j_vv,
        "j_sv": j_sv,
        "vi": np.asarray(vi(i_s, i_v, j_sv, j_ss, j_vv, **terms)),
        # min_info=0: the quantity the "nmi" objective optimises, defined wherever the
        # repeat information is positive
        "nmi_raw": np.asarray(nmi(i_s, i_v, j_sv, j_ss, j_vv, **terms)),
        "nmi": np.asarray(nmi(i_s, i_v, j_sv, j_ss, j_vv, min_info=est.MIN_INFO)),
        "info": np.asarray(info(i_s, i_v, j_sv, j_ss, j_vv, **terms)),
    }


def _objective_similarity(final: dict[str, np.ndarray], measure: str) -> np.ndarray:
    """What the optimiser maximised, per reference: exp(-VI), the NMI estimate or bits."""
    return {"vi": np.exp(-final["vi"]), "nmi": final["nmi_raw"], "info": final["info"]}[measure]


# -- the optimisation ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Problem:
    """The optimisation's constants in TensorFlow: references and how to stream them."""

    ref: Any  # (C, N, N) float32
    ref_log: Any  # (C, N) float64
    ref_log2: Any  # (C, N) float64
    n_ref: int
    n: int
    batch: int  # references per batch
    measure: str
    floor: Any  # info floor (bits) or None


def _reference_batch(requested: int | None, n_ref: int, rows: int, n: int) -> int:
    # streamed batches stay this size too: 93 references per batch (64 MB of float64)
    # made the NumPy passes slower than 46 (0.65 against 0.55 s per step at N = 300)
    if requested is not None:
        return min(requested, n_ref)
    return max(1, min(n_ref, _BATCH_WORK // max(rows * n, 1)))


def _batch_sum(
    tf: ModuleType,
    measure: str,
    s: Any,
    ref_b: Any,
    log_b: Any,
    log2_b: Any,
    rows: Any,
    weight: Any,
) -> tuple[Any, Any]:
    """Sum of the similarities to one batch of references and its gradient w.r.t. ``s``.

    Only ``i_s``, ``j_ss`` and one reference's ``j_sv`` enter its similarity,
    so the mean over references splits over batches: the batch (float32) is
    cast to float64, its similarities and their gradient with respect to the
    synthesised rows ``s`` are computed, and the caller adds them up.
    """
    if rows is not None:
        ref_b = tf.gather(ref_b, rows, axis=1)
        log_b, log2_b = tf.gather(log_b, rows, axis=1), tf.gather(log2_b, rows, axis=1)
    ref_b = tf.cast(ref_b, s.dtype)
    with tf.GradientTape() as tape:
        tape.watch(s)
        terms = {**_self_terms(tf, s), **_reference_terms(tf, s, ref_b, log_b, log2_b)}
        sim = _similarity_tf(tf, terms, measure)
        part = tf.reduce_sum(sim if weight is None else weight * sim)
    return part, tape.gradient(part, s)


def _stream_references(tf: ModuleType, p: _Problem, s: Any, rows: Any) -> tuple[Any, Any]:
    """``(sum over references of the similarity, its gradient w.r.t. s)``, batch by batch.

    In the graph, over the references held as one TensorFlow constant.
    Working memory: one batch, whatever the number of references.
    """
    if p.batch >= p.n_ref:  # one batch: the references as they are, no copy
        return _batch_sum(tf, p.measure, s, p.ref, p.ref_log, p.ref_log2, rows, None)
    n_batches = -(-p.n_ref // p.batch)
    offsets = tf.range(p.batch)

    def body(k: Any, total: Any, grad: Any) -> tuple[Any, Any, Any]:
        pos = k * p.batch + offsets
        idx = tf.minimum(pos, p.n_ref - 1)  # the last batch repeats a reference, weight 0
        weight = tf.cast(pos < p.n_ref, s.dtype)
        part, g = _batch_sum(
            tf,
            p.measure,
            s,
            tf.gather(p.ref, idx),
            tf.gather(p.ref_log, idx),
            tf.gather(p.ref_log2, idx),
            rows,
            weight,
        )
        return k + 1, total + part, grad + g

    _, total, grad = tf.while_loop(
        lambda k, total, grad: k < n_batches,
        body,
        (tf.constant(0), tf.zeros([], s.dtype), tf.zeros_like(s)),
    )
    return total, grad


def _synth_rows(tf: ModuleType, mean: Any, logvar: Any, rows: Any) -> Any:
    """The synthesised fingerprint's rows ``(B, N)`` (all rows when ``rows`` is None)."""
    mean_r = mean if rows is None else tf.gather(mean, rows)
    logvar_r = logvar if rows is None else tf.gather(logvar, rows)
    return _bc_rows_tf(tf, mean_r, logvar_r, mean, logvar)


def _loss_and_grads(
    tf: ModuleType, p: _Problem, tape: Any, s: Any, total: Any, grad_sim: Any, params: list[Any]
) -> tuple[Any, Any, list[Any]]:
    """``(loss, mean similarity, gradients of the loss w.r.t. params)`` from the sums."""
    value = total / p.n_ref
    loss = -value
    grad_s = -grad_sim / p.n_ref
    if p.floor is not None:
        with tf.GradientTape() as floor_tape:
            floor_tape.watch(s)
            short = tf.maximum(p.floor - _self_terms(tf, s)["i_s"], 0.0)
            penalty = short * short
        loss = loss + penalty
        grad_s = grad_s + floor_tape.gradient(penalty, s)
    return loss, value, tape.gradient(s, params, output_gradients=grad_s)


def _value_and_grads(
    tf: ModuleType, p: _Problem, mean: Any, logvar: Any, rows: Any
) -> tuple[Any, Any, list[Any]]:
    """``(loss, mean similarity, [d loss / d mean, d loss / d logvar])``, in the graph."""
    with tf.GradientTape() as tape:
        s = _synth_rows(tf, mean, logvar, rows)
    total, grad_sim = _stream_references(tf, p, s, rows)
    return _loss_and_grads(tf, p, tape, s, total, grad_sim, [mean, logvar])


def _problem(
    tf: ModuleType,
    refs: _References,
    *,
    measure: str,
    rows: int,
    reference_batch: int | None,
    info_floor: float | None,
    in_graph: bool = True,
) -> _Problem:
    dtype = tf.float64  # float64: NMI's normalisation vanishes at the initialisation
    n_ref, n = refs.bc.n_ref, refs.bc.n
    return _Problem(
        # in the graph, TensorFlow holds its own copy; otherwise batches come from the store
        ref=tf.constant(refs.bc.as_array(), dtype=tf.float32) if in_graph else None,
        ref_log=tf.constant(refs.row_log, dtype=dtype),
        ref_log2=tf.constant(refs.row_log2, dtype=dtype),
        n_ref=n_ref,
        n=n,
        batch=_reference_batch(reference_batch, n_ref, rows, n),
        measure=measure,
        floor=None if info_floor is None else tf.constant(info_floor, dtype=dtype),
    )


class _State:
    """The free parameters, the last finite state and the optimiser."""

    def __init__(self, tf: ModuleType, n: int, n_dims: int, seed: int, optimizer: str, lr: float):
        from .models.optim import make_optimizer

        dtype = tf.float64
        mean0 = np.random.default_rng(seed).normal(0.0, 0.05, size=(n, n_dims))
        self.mean = tf.Variable(mean0, dtype=dtype)
        self.logvar = tf.Variable(np.zeros((n, n_dims)), dtype=dtype)
        self.good = [
            tf.Variable(mean0, dtype=dtype),
            tf.Variable(np.zeros((n, n_dims)), dtype=dtype),
        ]
        self.t = tf.Variable(0.0, dtype=dtype)
        self.opt = make_optimizer(optimizer, [self.mean, self.logvar], learning_rate=lr)  # type: ignore[arg-type]
        self.gen = tf.random.Generator.from_seed(seed)


def _guarded_update(tf: ModuleType, state: _State, loss: Any, value: Any, grads: list[Any]) -> Any:
    """Apply the optimiser's step if everything is finite (keeping the state before it)."""
    finite = tf.math.is_finite(loss) & tf.math.is_finite(value)
    for g in grads:
        finite = finite & tf.reduce_all(tf.math.is_finite(g))

    def update() -> Any:
        state.good[0].assign(state.mean)
        state.good[1].assign(state.logvar)
        state.t.assign_add(1.0)
        state.opt.apply(grads, state.t)
        return tf.constant(True)

    return tf.cond(finite, update, lambda: tf.constant(False))


def _sample_rows(tf: ModuleType, state: _State, n: int, batch_rows: int | None) -> Any:
    if batch_rows is None:
        return None
    return tf.argsort(state.gen.uniform([n], dtype=tf.float32))[:batch_rows]


def _compile_block(
    tf: ModuleType, p: _Problem, state: _State, batch_rows: int | None, jit: bool
) -> Any:
    """A compiled loop of up to ``n_steps`` steps; it stops early at a non-finite step."""

    def one_step(t: Any, ok: Any, trace: Any) -> tuple[Any, Any, Any]:
        rows = _sample_rows(tf, state, p.n, batch_rows)
        loss, value, grads = _value_and_grads(tf, p, state.mean, state.logvar, rows)
        ok = _guarded_update(tf, state, loss, value, grads)
        return t + 1, ok, trace.write(t, value)

    @tf.function(jit_compile=jit)
    def run_block(n_steps: Any) -> tuple[Any, Any]:
        trace = tf.TensorArray(tf.float64, size=n_steps)
        t, ok, trace = tf.while_loop(
            lambda t, ok, trace: (t < n_steps) & ok,
            one_step,
            (tf.constant(0), tf.constant(True), trace),
        )
        return trace.stack()[:t], ok

    return run_block


class _Contractions:
    """The two passes over a batch of references, in NumPy (float64), over a few threads.

    ``joint[c, i] = mean_j R_c[i, j] S[i, j]`` (the row means behind ``j_sv``)
    and ``sum_c G[c, i] R_c[i, j]`` (the references' part of the gradient
    with respect to ``S``). They are the whole cost of a step. Each is one
    matrix-vector product per row ``i`` (over the batch's ``R_c[i, :]``), run
    as a batched ``matmul`` (BLAS, one thread per slice): about 3 ms for 46
    references of N = 300, against 5-7 ms for the same sums as ``einsum``
    and 13 ms in TensorFlow's generated loops (docs/notes/synthesis.md). A
    batch is split over threads (NumPy releases the GIL); each thread casts
    its slice of the float32 batch into its own part of a reused float64
    buffer, so the sums are exact float64 sums of float64 products.
    """

    def __init__(self, batch: int, rows: int, n: int) -> None:
        self.parts = max(1, min(batch, os.cpu_count() or 1, 8))
        bounds = np.linspace(0, batch, self.parts + 1).astype(int)
        self.slices = [slice(a, b) for a, b in itertools.pairwise(bounds)]
        self.buffer = np.empty((batch, rows, n))
        self.pool = ThreadPoolExecutor(self.parts) if self.parts > 1 else None

    def _map(self, fn: Callable[[slice], np.ndarray], count: int) -> list[np.ndarray]:
        live = [sl for sl in self.slices if sl.start < count]
        live = [slice(sl.start, min(sl.stop, count)) for sl in live]
        if self.pool is None or len(live) == 1:
            return [fn(sl) for sl in live]

        def one_thread(sl: slice) -> np.ndarray:
            with one_blas_thread_in_pools():
                return fn(sl)

        return list(self.pool.map(one_thread, live))

    def joint(
        self, read: Callable[[int, int], np.ndarray], count: int, s: np.ndarray
    ) -> np.ndarray:
        """``(count, B)`` row means of ``R_c * s`` over the batch's references ``0..count-1``.

        ``read(lo, hi)`` gives references ``lo..hi-1`` of the batch (float32); each
        thread reads its own slice (from the temporary file, in parallel). Keeps the
        float64 batch for :meth:`weighted`.
        """

        def one(sl: slice) -> np.ndarray:
            np.copyto(self.buffer[sl], read(sl.start, sl.stop))
            # row i: (C_t, N) @ (N,) for every i at once -> (B, C_t, 1)
            sums = np.matmul(self.buffer[sl].transpose(1, 0, 2), s[:, :, None])
            return sums[:, :, 0].T / s.shape[1]

        return np.concatenate(self._map(one, count))

    def weighted(self, g: np.ndarray) -> np.ndarray:
        """``(B, N)`` ``sum_c g[c, i] R_c[i, j] / N`` over the batch of the last :meth:`joint`."""
        n = self.buffer.shape[2]

        def one(sl: slice) -> np.ndarray:
            # row i: (C_t,) @ (C_t, N) for every i at once -> (B, 1, N)
            sums = np.matmul(g[sl].T[:, None, :], self.buffer[sl].transpose(1, 0, 2))
            return sums[:, 0, :]

        return sum(self._map(one, len(g))) / n  # type: ignore[return-value]

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()


def _host_block(
    tf: ModuleType, p: _Problem, refs: _References, state: _State, batch_rows: int | None
) -> tuple[Any, Callable[[], None]]:
    """Like :func:`_compile_block`, with the references streamed from the store at every step.

    For references too large to copy into TensorFlow as well (or held in a
    temporary file): one batch at a time is read, and its two passes
    (:class:`_Contractions`) run in NumPy; TensorFlow computes the
    synthesised rows, the similarities from the row means with their
    gradients (the same formulas as the compiled loop), and the optimiser's
    step. Same steps, same random rows, same results as the compiled loop to
    rounding. Returns the block runner and a function that frees its threads.
    """
    rows_used = p.n if batch_rows is None else batch_rows
    # one reused buffer for a batch read from disk (in memory a batch is a view)
    buffer = None if refs.bc.in_memory else np.empty((p.batch, p.n, p.n), dtype=np.float32)
    work = _Contractions(p.batch, rows_used, p.n)
    s_fn = tf.function(lambda rows: _synth_rows(tf, state.mean, state.logvar, rows))

    @tf.function
    def self_fn(s: Any) -> tuple[Any, Any]:
        terms = _self_terms(tf, s)
        return terms["i_s"], terms["j_ss"]

    @tf.function(jit_compile=_JIT is not False)
    def part_fn(i_s: Any, j_ss: Any, joint: Any, log_b: Any, log2_b: Any) -> tuple[Any, ...]:
        # the batch's similarity sum and its gradient w.r.t. i_s, j_ss and the row means
        with tf.GradientTape() as tape:
            tape.watch([i_s, j_ss, joint])
            terms = {"i_s": i_s, "j_ss": j_ss, **_terms_from_row_means(tf, joint, log_b, log2_b)}
            part = tf.reduce_sum(_similarity_tf(tf, terms, p.measure))
        # a measure without j_ss (information) has a zero gradient there, not None
        zero = tf.UnconnectedGradients.ZERO
        return (part, *tape.gradient(part, [i_s, j_ss, joint], unconnected_gradients=zero))

    @tf.function
    def apply_fn(rows: Any, total: Any, d_is: Any, d_jss: Any, grad_refs: Any) -> tuple[Any, Any]:
        with tf.GradientTape() as tape:
            s = _synth_rows(tf, state.mean, state.logvar, rows)
        with tf.GradientTape() as self_tape:  # the similarities' dependence through i_s, j_ss
            self_tape.watch(s)
            terms = _self_terms(tf, s)
            linear = d_is * terms["i_s"] + d_jss * terms["j_ss"]
        grad_sim = self_tape.gradient(linear, s) + grad_refs
        params = [state.mean, state.logvar]
        loss, value, grads = _loss_and_grads(tf, p, tape, s, total, grad_sim, params)
        return value, _guarded_update(tf, state, loss, value, grads)

    def read(c0: int, lo: int, hi: int, pick: Any) -> np.ndarray:
        # references c0 + lo .. c0 + hi - 1, the step's rows: a view in memory, else
        # read into this slice of the buffer
        out = None if buffer is None else buffer[lo:hi]
        return refs.bc.read(c0 + lo, c0 + hi, out=out)[:, pick]

    def step() -> tuple[float, bool]:
        rows = _sample_rows(tf, state, p.n, batch_rows)
        pick = slice(None) if rows is None else rows.numpy()
        s = s_fn(rows)
        i_s, j_ss = self_fn(s)
        s_np = s.numpy()
        total, d_is, d_jss = 0.0, 0.0, 0.0
        grad_refs = np.zeros_like(s_np)
        for c0 in range(0, p.n_ref, p.batch):
            c1 = min(c0 + p.batch, p.n_ref)
            joint = work.joint(functools.partial(read, c0, pick=pick), c1 - c0, s_np)
            part, a, b, g = part_fn(
                i_s, j_ss, joint, refs.row_log[c0:c1][:, pick], refs.row_log2[c0:c1][:, pick]
            )
            total, d_is, d_jss = total + float(part), d_is + float(a), d_jss + float(b)
            grad_refs += work.weighted(g.numpy())
        dtype = tf.float64
        value, ok = apply_fn(
            rows,
            tf.constant(total, dtype),
            tf.constant(d_is, dtype),
            tf.constant(d_jss, dtype),
            tf.constant(grad_refs),
        )
        return float(value), bool(ok)

    def run_block(n_steps: Any) -> tuple[Any, Any]:
        trace: list[float] = []
        for _ in range(int(n_steps)):
            value, ok = step()
            trace.append(value)
            if not ok:
                return tf.constant(trace, tf.float64), tf.constant(False)
        return tf.constant(trace, tf.float64), tf.constant(True)

    return run_block, work.close


def _nothing() -> None:
    return None


def _optimise(
    refs: _References,
    *,
    n_dims: int,
    measure: str,
    steps: int,
    learning_rate: float,
    optimizer: str,
    batch_rows: int | None,
    seed: int,
    progress: bool,
    info_floor: float | None,
    reference_batch: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Run the optimisation: ``(mean, logvar, trace, nan_step, reference batch)``.

    ``nan_step`` is -1 when every step was finite; otherwise the state before
    the first non-finite step is returned.
    """
    from ._runtime import progress_bar

    tf = _import_tf()
    n_ref, n = refs.bc.n_ref, refs.bc.n
    rows_used = n if batch_rows is None else batch_rows
    in_graph = refs.bc.in_memory and refs.bc.nbytes <= _IN_GRAPH_BYTES
    p = _problem(
        tf,
        refs,
        measure=measure,
        rows=rows_used,
        reference_batch=reference_batch,
        info_floor=info_floor,
        in_graph=in_graph,
    )
    state = _State(tf, n, n_dims, seed, optimizer, learning_rate)
    release: Callable[[], None] = _nothing
    if in_graph:
        work = steps * (n_ref + 3) * rows_used * n
        jit = _JIT if _JIT is not None else work >= _JIT_MIN_WORK
        run_block = _compile_block(tf, p, state, batch_rows, jit)
    else:
        run_block, release = _host_block(tf, p, refs, state, batch_rows)
    # each call builds its own tf.function (it closes over this call's variables);
    # TensorFlow's "retracing" log message about that is expected, not a problem
    tf_logger = logging.getLogger("tensorflow")
    level = tf_logger.level
    tf_logger.setLevel(logging.ERROR)
    pieces: list[np.ndarray] = []
    done, nan_step = 0, -1
    try:
        with progress_bar(steps, desc=f"synthesize ({measure})", enabled=progress) as bar:
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
                bar.update(block)
                bar.set_postfix(similarity=f"{trace[-1]:.4f}")
    finally:
        tf_logger.setLevel(level)
        release()
    source = state.good if nan_step >= 0 else [state.mean, state.logvar]
    trace_all = np.concatenate(pieces) if pieces else np.zeros(0)
    return source[0].numpy(), source[1].numpy(), trace_all, nan_step, p.batch


# -- synthesize -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Run:
    """The checked settings of one call."""

    n_dims: int
    measure: str
    steps: int
    learning_rate: float
    optimizer: str
    settings: str
    batch_rows: int | None
    seed: int
    info_floor: float | None
    min_info: float
    reference_batch: int | None
    reference_memory: int


def _check_run(
    *,
    n_dims: Any,
    measure: str | None,
    objective: str | None,
    settings: str,
    steps: Any,
    learning_rate: Any,
    optimizer: str | None,
    batch_rows: Any,
    seed: Any,
    info_floor: Any,
    min_info: Any,
    reference_batch: Any,
    reference_memory: Any,
) -> _Run:
    option = "objective" if objective is not None else "measure"
    chosen = get_measure(measure or "vi", "objective", option=option).name
    preset = SYNTHESIS_SETTINGS[check_option("settings", settings, tuple(SYNTHESIS_SETTINGS))]
    optimizer = check_option(
        "optimizer", preset.optimizer if optimizer is None else optimizer, ("sgd", "adam")
    )
    lr = check_probability(
        "learning_rate",
        preset.learning_rate if learning_rate is None else learning_rate,
        high=math.inf,
    )
    if lr <= 0:
        raise InputError(f"learning_rate must be > 0; got {lr}.")
    return _Run(
        n_dims=check_positive_int("n_dims", n_dims),
        measure=chosen,
        steps=check_positive_int("steps", preset.steps if steps is None else steps),
        learning_rate=lr,
        optimizer=optimizer,
        settings=settings,
        batch_rows=None if batch_rows is None else check_positive_int("batch_rows", batch_rows),
        seed=check_positive_int("seed", seed, minimum=0),
        info_floor=None
        if info_floor is None
        else check_probability("info_floor", info_floor, high=math.inf),
        min_info=check_probability("min_info", min_info, high=math.inf),
        reference_batch=None
        if reference_batch is None
        else check_positive_int("reference_batch", reference_batch),
        reference_memory=check_positive_int("reference_memory", reference_memory, minimum=0),
    )


def _hazard_messages(
    run: _Run, final: dict[str, np.ndarray], nan_step: int, mean_ref_info: float
) -> tuple[list[str], bool]:
    """Warnings about the outcome: a NaN stop, the low-information hazard."""
    messages = []
    if nan_step >= 0:
        messages.append(
            f"the objective or its gradient became non-finite at step {nan_step}; the "
            f"optimisation stopped there and the last finite state (step "
            f"{max(nan_step - 1, 0)}) is returned. Lower learning_rate or try optimizer='adam'."
        )
    syn_info = float(final["i_s"])
    low = syn_info < LOW_INFO_FRACTION * mean_ref_info
    nmi_over = bool(np.any(final["nmi_raw"] > 1.0 + 1e-6))
    if low or (run.measure == "nmi" and nmi_over):
        messages.append(
            f"the synthesised channel holds {syn_info:.4g} bits against a mean of "
            f"{mean_ref_info:.4g} bits in the references"
            + (f" and NMI > 1 (max {np.nanmax(final['nmi_raw']):.4g})" if nmi_over else "")
            + ": the low-information hazard (see docs/notes/synthesis.md). Use measure='vi', "
            "more steps, or an info_floor."
        )
    return messages, low


def _result(
    run: _Run,
    refs: _References,
    mean: np.ndarray,
    logvar: np.ndarray,
    trace: np.ndarray,
    final: dict[str, np.ndarray],
    attrs: dict[str, Any],
) -> xr.Dataset:
    """The synthesised channel as a Posteriors dataset with its per-reference numbers."""
    labels = refs.labels
    out = posteriors(
        mean.T[None].astype(np.float32),
        logvar.T[None].astype(np.float32),
        labels=None if labels is None else np.asarray(labels.transpose("factor", "sample").values),
        factor_names=None if labels is None else list(labels["factor"].values),
        coords={
            "sample": ("sample", refs.samples),
            "method": ["synthesis"],
            "objective": [run.measure],
            "seed": [run.seed],
        },
    )
    ref_vars = {
        f"reference_{k}": ("reference", np.asarray(v.values))
        for k, v in refs.coords.data_vars.items()
    }
    out = out.assign_coords(reference=("reference", refs.ids), step=("step", np.arange(len(trace))))
    out = out.assign_coords(ref_vars)
    out["objective_trace"] = ("step", trace.astype(np.float64))
    sim = _objective_similarity(final, run.measure)
    out["reference_similarity"] = ("reference", np.asarray(sim, dtype=np.float64))
    out["reference_nmi"] = ("reference", final["nmi"].astype(np.float64))
    out["reference_vi"] = ("reference", final["vi"].astype(np.float64))
    out["reference_info"] = ("reference", refs.info.astype(np.float64))
    out.attrs.update(
        {
            "objective": run.measure,
            "measure": run.measure,
            "n_dims": run.n_dims,
            "steps": run.steps,
            "steps_run": len(trace),
            "settings": run.settings,
            "learning_rate": run.learning_rate,
            "optimizer": run.optimizer,
            "seed": run.seed,
            "info_floor": -1.0 if run.info_floor is None else run.info_floor,
            "min_info": run.min_info,
            "final_similarity": float(np.mean(sim)),
            "synthesized_info": float(final["i_s"]),
            **attrs,
        }
    )
    return out


def synthesize(
    ds: xr.Dataset | Sequence[xr.Dataset],
    *,
    n_dims: int = 2,
    measure: ObjectiveMeasure | None = None,
    channels: Sequence[Hashable] | xr.DataArray | None = None,
    settings: Settings = "fast",
    steps: int | None = None,
    learning_rate: float | None = None,
    optimizer: Optimizer | None = None,
    batch_rows: int | None = None,
    seed: int = 0,
    progress: bool = True,
    info_floor: float | None = None,
    min_info: float = est.MIN_INFO,
    reference_batch: int | None = None,
    reference_memory: int = DEFAULT_MEMORY_BYTES,
    objective: ObjectiveMeasure | None = None,
) -> xr.Dataset:
    """Synthesise one channel that is maximally similar to a set of reference channels.

    Free posterior parameters (means and log-variances of the N fingerprint
    points in an ``n_dims``-dimensional latent space) are optimised by
    gradient ascent on the mean similarity of the synthesised fingerprint to
    the reference fingerprints (paper Sec. 3.4, Fig. 6). No model is needed:
    only the reference fingerprints, computed once and held as float32
    constants (``C x N x N x 4`` bytes, in memory up to ``reference_memory``,
    beyond it in a temporary file); each step streams them in batches.

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
    measure
        The similarity maximised, averaged over the references: ``"vi"``
        (``exp(-VI)``, VI in bits; default), ``"nmi"`` (eq. 3) or ``"info"``
        (shared information in bits). The registry's synthesis objectives
        (:func:`ensemblex.measures.measure_names` ``("objective")``).
    channels
        Reference channel ids (the ``channel`` coordinate), or a boolean
        DataArray with a ``channel`` dim (e.g. ``clusters.group == g``), or an
        integer DataArray of channel ids. ``None``: every channel.
    settings
        The optimiser preset (:data:`SYNTHESIS_SETTINGS`): ``"fast"`` (Adam,
        learning rate 0.05, 2,000 steps; the default of the library, the
        command line and the demo) or ``"paper"`` (SGD, learning rate 3.0,
        20,000 steps, as the paper's notebook).
    steps, learning_rate, optimizer
        Override the preset's optimisation steps, step size and optimiser
        (``"sgd"`` or ``"adam"``, :mod:`ensemblex.models.optim`).
    batch_rows
        Rows ``i`` of the fingerprints sampled (without replacement) per step;
        every term of the objective uses the same rows. ``None``: all N rows.
        Each step then costs ``O(C * batch_rows * N)`` instead of ``O(C N^2)``.
    seed
        Seed of the initial means and of the row sampling.
    progress
        Show progress (a bar on a terminal, plain lines in a log).
    info_floor
        Optional floor (bits) on the synthesised information: adds
        ``max(0, info_floor - I_S)^2`` to the loss. A remedy for the NMI hazard
        (see Notes); off by default.
    min_info
        Reference channels with less information (bits) are dropped, with a
        warning: they carry nothing to fuse. ``0`` keeps every channel.
    reference_batch
        References per batch in each step (default: about 4 M float64 values
        of work per batch). Changes memory and speed, not the result.
    reference_memory
        Bytes of reference fingerprints (``C * N * N * 4``) held in memory
        (default 1 GiB). Beyond it they go to an unnamed temporary file (in
        ``TMPDIR``, deleted when the run ends, also after a crash) and every
        step reads them from there one batch at a time: memory stays bounded
        whatever the group size, at some speed (the operating system caches the
        file). Changes memory and speed, not the result.
    objective
        Deprecated alias of ``measure``.

    Returns
    -------
    xr.Dataset
        Posteriors (``model=1``, ``latent=n_dims``, ``sample`` = the reference
        sample ids) with model coordinates ``method="synthesis"``,
        ``objective`` (the measure) and ``seed``, plus:

        - ``objective_trace(step)``: the mean similarity at every step, before
          that step's update (a row-sampled estimate when ``batch_rows`` is set);
        - ``reference_similarity(reference)``: the final similarity (the
          measure maximised, NMI without the ``min_info`` cut) to every
          reference, over all rows, with the float64 NumPy estimators;
        - ``reference_nmi``, ``reference_vi`` (bits), ``reference_info`` (bits)
          per reference; the ``reference`` coordinate holds the channel ids and
          the references' channel coordinates as ``reference_<name>``;
        - ``labels`` when the input carried them;
        - attrs ``measure`` (and ``objective``, the same), ``n_references``
          (references used), ``dropped`` (ids of the references dropped under
          ``min_info``), ``reference_batch`` (references streamed per batch),
          ``reference_storage`` (``"memory"`` or ``"temporary file"``),
          ``final_similarity``, ``synthesized_info``, ``mean_reference_info``,
          ``low_information`` (0/1), ``nan_step`` (-1 when none), ``steps_run``,
          ``status``, ``warning`` and the settings.

    Warns
    -----
    UserWarning
        When references were dropped under ``min_info``, when a NaN stopped the
        run, and when the synthesised channel holds less than 10% of the mean
        reference information or has NMI > 1 (the NMI hazard).
    FutureWarning
        When ``objective=`` is used.

    Raises
    ------
    ensemblex.errors.InputError
        No reference channel, or none with ``min_info`` bits; references over
        different samples; a bad option.
    ensemblex.errors.MissingExtraError
        TensorFlow is not installed (``pip install 'ensemblex[train]'``).

    Notes
    -----
    The objective is the estimators' (bits, means over ``j``); the paper's
    public notebook sums over ``j``, which shifts every term by ``log2 N``
    and, for NMI, changes the value. NMI is undefined for a reference under
    :data:`ensemblex.estimators.MIN_INFO` bits; such references are dropped
    whatever ``min_info`` says.

    Maximising NMI can collapse to a channel without information (the NMI
    hazard); an ``info_floor`` prevents the collapse but the NMI optimum then
    sits on the floor. The measurements are in ``docs/notes/synthesis.md``;
    use the default ``"vi"``.

    Examples
    --------
    Fuse eight weak 1-D channels, each a circle cut open at a random angle,
    into one 2-D channel; it closes the ring (a lower ring uniformity):

    >>> weak = ring_learners(8, n_samples=60, seed=0)
    >>> syn = synthesize(weak, n_dims=2, steps=1000, progress=False)
    >>> syn.sizes["latent"], syn.sizes["sample"], syn.attrs["measure"]
    (2, 60, 'vi')
    >>> bool(ring_uniformity(syn) < ring_uniformity(weak.isel(model=[0])))
    True
    """
    measure = resolve_alias(  # type: ignore[assignment]
        measure, "vi", old_name="objective", old_value=objective, function="synthesize()"
    )
    run = _check_run(
        n_dims=n_dims,
        measure=measure,
        objective=objective,
        settings=settings,
        steps=steps,
        learning_rate=learning_rate,
        optimizer=optimizer,
        batch_rows=batch_rows,
        seed=seed,
        info_floor=info_floor,
        min_info=min_info,
        reference_batch=reference_batch,
        reference_memory=reference_memory,
    )
    refs = _references(ds, channels, memory_bytes=run.reference_memory)
    try:
        return _synthesize_references(run, refs, progress)
    finally:
        refs.bc.close()  # the temporary file, if the references went to disk


def _synthesize_references(run: _Run, refs: _References, progress: bool) -> xr.Dataset:
    """:func:`synthesize` once the references are read."""
    if refs.bc.n_ref < 1:
        raise InputError(
            "synthesize() needs at least one reference channel; the selection is empty. "
            "Check `channels` (e.g. that clusters.group == g selects some channel)."
        )
    refs, dropped, drop_message = _drop_uninformative(refs, run.min_info, run.measure)
    if drop_message:
        warnings.warn(drop_message, UserWarning, stacklevel=3)
    n = refs.bc.n
    batch_rows = None if run.batch_rows is None or run.batch_rows >= n else run.batch_rows
    mean, logvar, trace, nan_step, ref_batch = _optimise(
        refs,
        n_dims=run.n_dims,
        measure=run.measure,
        steps=run.steps,
        learning_rate=run.learning_rate,
        optimizer=run.optimizer,
        batch_rows=batch_rows,
        seed=run.seed,
        progress=progress,
        info_floor=run.info_floor,
        reference_batch=run.reference_batch,
    )
    final = _similarity_numpy(mean, logvar, refs.bc)
    mean_ref_info = float(np.mean(refs.info))
    messages, low = _hazard_messages(run, final, nan_step, mean_ref_info)
    for msg in messages:
        warnings.warn(msg, UserWarning, stacklevel=3)
    return _result(
        run,
        refs,
        mean,
        logvar,
        trace,
        final,
        {
            "batch_rows": n if batch_rows is None else batch_rows,
            "n_references": int(refs.bc.n_ref),
            "reference_storage": "memory" if refs.bc.in_memory else "temporary file",
            "dropped": np.asarray(dropped),
            "reference_batch": int(ref_batch),
            "mean_reference_info": mean_ref_info,
            "low_information": int(low),
            "nan_step": nan_step,
            "status": "stopped_nan" if nan_step >= 0 else "completed",
            "warning": " ".join([drop_message, *messages]).strip(),
        },
    )


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
            raise InputTypeError(
                "ring_uniformity() takes an array of means or a Posteriors dataset."
            )
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


def ring_fusion(
    n_learners: int = 20,
    n_samples: int = 200,
    *,
    steps: int | None = None,
    seed: int = 0,
    settings: Settings = "fast",
    progress: bool = False,
) -> xr.Dataset:
    """The paper's ring experiment (Fig. 6): weak 1-D learners fused into a closed ring.

    Each weak learner (:func:`ring_learners`) embeds the circle in 1-D and so
    has a *scar*: the circle is cut open at a random angle and the two
    neighbours across the cut land at opposite ends. Fusing the learners into
    one 2-D channel with :func:`synthesize` (``measure="vi"``) restores the
    adjacencies each one misses: the fused channel closes the circle. Ring
    uniformity (:func:`ring_uniformity`, std / mean of neighbour distances,
    lower is better) measures it against the single learners.

    Parameters
    ----------
    n_learners
        Weak learners fused (the paper's Fig. 6c: 2 to 50).
        The default 20 with ``n_samples=200`` runs in about a minute on 2
        CPU cores; ``ring_fusion(8, 60, steps=300)`` in seconds.
    n_samples
        Points around the circle (fingerprint size N).
    steps
        Optimisation steps (default: the preset's, 2,000 for ``"fast"``).
    seed
        Seed of the learners' cuts and of the synthesis.
    settings
        The synthesis preset (:data:`SYNTHESIS_SETTINGS`).
    progress
        Show the synthesis progress.

    Returns
    -------
    xr.Dataset
        The fused channel as :func:`synthesize` returns it (posterior means
        ``mean (model=1, latent=2, sample)`` in angle order, coordinate
        ``angle`` on ``sample``), plus ``learner_uniformity(reference)`` and
        ``learner_mean(reference, sample)`` (the weak learners' 1-D means),
        and attrs ``uniformity_fused``, ``uniformity_single_mean`` (mean over
        the learners), ``uniformity_ratio`` (fused over single; below 1 when
        fusion closes the ring) and ``n_learners``.

    Examples
    --------
    >>> fused = ring_fusion(8, 60, steps=400)
    >>> fused.sizes["latent"], fused.attrs["n_learners"]
    (2, 8)
    >>> bool(fused.attrs["uniformity_fused"] < fused.attrs["uniformity_single_mean"])
    True
    """
    n_learners = check_positive_int("n_learners", n_learners)
    n_samples = check_positive_int("n_samples", n_samples, minimum=3)
    weak = ring_learners(n_learners, n_samples, seed=seed)
    single = np.array([ring_uniformity(weak.isel(model=[m])) for m in range(n_learners)])
    fused = synthesize(
        weak, n_dims=2, measure="vi", settings=settings, steps=steps, seed=seed, progress=progress
    )
    u_fused = ring_uniformity(fused)
    fused = fused.assign_coords(angle=("sample", np.asarray(weak["angle"].values)))
    fused["learner_uniformity"] = ("reference", single)
    fused["learner_mean"] = (("reference", "sample"), np.asarray(weak["mean"].values[:, 0, :]))
    fused.attrs.update(
        {
            "experiment": "ring_fusion",
            "n_learners": n_learners,
            "uniformity_fused": float(u_fused),
            "uniformity_single_mean": float(np.mean(single)),
            "uniformity_ratio": float(u_fused / np.mean(single)),
        }
    )
    return fused
