"""The streaming pairwise engine: all-pairs NMI, VI and joint information (Dask tiles).

The Pairwise dataset of docs/design.md section 2. The joint information of every pair of
channels is a sum over sample rows ``i`` of ``log2`` of Gram matrices
(:mod:`ensemblex._kernels`). The engine builds one Dask graph:

1. tiles ``(channel block a, channel block b, sample block i)`` made with
   :func:`dask.array.blockwise`; each task regenerates the fingerprint rows it
   needs from ``channel_mean``/``channel_logvar``/``channel_label`` (or reads
   them from a stored ``bc`` when the parameters are absent) and returns a
   float64 partial sum ``(a, b, 1)`` -- nothing is concatenated over ``i``;
2. a tree reduction over ``i`` (``sum(axis=2, split_every=...)``, a
   :func:`dask.array.reduction`, as sgkit's pairwise distance does), so memory is
   bounded by the tile size, not by the number of channels;
3. elementwise blocks that turn the sums into the stored measures of the
   registry (:data:`ensemblex.measures.PAIRWISE_VARIABLES`: ``joint_info``,
   ``nmi``, ``vi``), each from its entry's estimator. Adding a stored measure
   is one registry entry; the engine, the store and the readers follow it.

Comparing a dataset with itself (``other=None``) computes only the tiles with
``a <= b`` and mirrors the lower triangle lazily. Every block keeps the array
type of its input (``meta``), so CuPy chunks stay on the GPU. With
``store="path.zarr"`` tiles are written as they finish and a rerun computes only
the missing ones; a finished store is a Pairwise dataset on disk
(``xr.open_zarr(path)``, :func:`ensemblex.io.open_dataset`). The store's layout,
identity and state live in :mod:`ensemblex.store`; this module decides what to
compute and calls it.

Inputs that xarray reads lazily from a file stay in the file: they become Dask
arrays that read their blocks where the tasks run (:mod:`ensemblex._lazy`), so
on ``dask.distributed`` the client sends a graph of kilobytes, not the data.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from . import store as _store
from ._checks import check_finite, check_positive_int, check_probability
from ._kernels import GaussianRows, StoredRows, channel_logsums, tile_logsum
from ._kinds import require_kind, stamp
from ._lazy import chunk_file_backed, is_dask
from ._namespace import get_namespace
from ._threads import one_blas_thread_in_pools
from .errors import InputError, MissingExtraError
from .estimators import MIN_INFO
from .measures import MEASURES, PAIRWISE_VARIABLES
from .store import STORE_KEY, STORE_VARIABLES

__all__ = ["DEFAULT_CHANNEL_CHUNK", "STORE_KEY", "STORE_VARIABLES", "pairwise"]

#: channels per tile side by default. A task generates ``(Ca + Cb) N`` coefficients per
#: row and multiplies ``Ca Cb N``: at 2048 generation is under a tenth of the GEMM
#: time and a task's working set (four ``Ca x Cb`` arrays) stays near 100 MB
#: (measured with ``benchmarks/pairwise.py``).
DEFAULT_CHANNEL_CHUNK = 2048

#: tiles to keep every worker thread busy when there are few channel tiles: the
#: sample rows are then split into this many blocks per tile (at least)
_MIN_TASKS = 4

_PARAMS = ("channel_mean", "channel_logvar")
#: the measures the engine computes and stores, in the order of PAIRWISE_VARIABLES
_STORED = tuple(MEASURES[name] for name in PAIRWISE_VARIABLES)


# -- inputs ----------------------------------------------------------------------------


class _Side:
    """One side of the comparison: where its rows come from, and its coordinates."""

    def __init__(self, ds: xr.Dataset, what: str) -> None:
        require_kind(ds, ("fingerprints",), what)
        # values still in a file stay there: tasks read their blocks where they run
        ds = chunk_file_backed(ds, (*_PARAMS, "channel_label", "bc"))
        self.what = what
        if "channel" not in ds.dims:
            raise InputError(f"{what} has no 'channel' dimension; got dims {tuple(ds.dims)}.")
        self.ds = ds
        self.n_channels = int(ds.sizes["channel"])
        if all(name in ds.data_vars for name in _PARAMS):
            self.source = "params"
            mean = ds["channel_mean"]
            for name in _PARAMS:
                if set(ds[name].dims) != {"channel", "component", "sample"}:
                    raise InputError(
                        f"{what}: variable {name!r} needs dims ('channel', 'component', "
                        f"'sample'); got {ds[name].dims}."
                    )
            if "channel_label" in ds.data_vars and set(ds["channel_label"].dims) != {
                "channel",
                "sample",
            }:
                raise InputError(
                    f"{what}: variable 'channel_label' needs dims ('channel', 'sample'); "
                    f"got {ds['channel_label'].dims}."
                )
            self.n_samples = int(mean.sizes["sample"])
            self.sample_ids = _sample_ids(ds, "sample")
        elif "bc" in ds.data_vars:
            # a user-stored fingerprint without its parameters: read the rows
            self.source = "bc"
            bc = ds["bc"]
            if set(bc.dims) != {"channel", "sample_i", "sample_j"}:
                raise InputError(
                    f"{what}: variable 'bc' needs dims ('channel', 'sample_i', 'sample_j'); "
                    f"got {bc.dims}."
                )
            if bc.sizes["sample_i"] != bc.sizes["sample_j"]:
                raise InputError(
                    f"{what}: 'bc' must be square in (sample_i, sample_j); got "
                    f"{bc.sizes['sample_i']} x {bc.sizes['sample_j']}."
                )
            self.n_samples = int(bc.sizes["sample_i"])
            self.sample_ids = _sample_ids(ds, "sample_i")
        else:
            raise InputError(
                f"{what} has neither the parameters {_PARAMS} nor 'bc'; build it with "
                "ensemblex.fingerprint() or ensemblex.label_fingerprints()."
            )
        if self.n_samples < 2:
            raise InputError(f"{what} needs at least 2 samples; got {self.n_samples}.")
        ids = ds["channel"].values if "channel" in ds.coords else np.arange(self.n_channels)
        self.channel_ids = np.asarray(ids)
        self.coords = {
            name: coord.variable
            for name, coord in ds.coords.items()
            if coord.dims == ("channel",) and name != "channel"
        }

    def arrays(self, cc: int, sc: int) -> list[tuple[Any, str]]:
        """The Dask arrays of this side with their blockwise index (channel index ``c``)."""
        ds = self.ds
        if self.source == "bc":
            bc = _as_dask(ds["bc"].transpose("channel", "sample_i", "sample_j").data)
            return [(bc.rechunk((cc, sc, -1)), "ciJ")]
        out = []
        for name in _PARAMS:
            x = _as_dask(ds[name].transpose("channel", "component", "sample").data)
            out.append((x.rechunk((cc, -1, -1)), "ckn"))
        if "channel_label" in ds.data_vars:
            lab = _as_dask(ds["channel_label"].transpose("channel", "sample").data)
            out.append((lab.rechunk((cc, -1)), "cn"))
        return out

    @property
    def has_label(self) -> bool:
        return self.source == "params" and "channel_label" in self.ds.data_vars


def _sample_ids(ds: xr.Dataset, dim: str) -> np.ndarray:
    for name in ("sample", dim):
        if name in ds.coords:
            return np.asarray(ds[name].values)
    return np.arange(int(ds.sizes[dim]))


def _as_dask(x: Any) -> Any:
    import dask.array as da

    if is_dask(x):
        return x
    # keep the array type of x (NumPy or CuPy) in the chunks
    return da.from_array(x, chunks=x.shape, asarray=False)


def _check_same_samples(a: _Side, b: _Side) -> None:
    if a.n_samples != b.n_samples:
        raise InputError(
            f"fp and other must be fingerprints over the same samples; got {a.n_samples} "
            f"and {b.n_samples} samples. Fingerprint both from the same data points."
        )
    same = a.sample_ids.shape == b.sample_ids.shape and bool(np.all(a.sample_ids == b.sample_ids))
    if not same:
        diff = np.flatnonzero(a.sample_ids != b.sample_ids)
        first = int(diff[0]) if diff.size else 0
        raise InputError(
            "fp and other must be fingerprints over the same samples in the same order; "
            f"the sample ids differ first at position {first} "
            f"({a.sample_ids[first]!r} vs {b.sample_ids[first]!r})."
        )


def _default_chunks(
    n_a: int,
    n_b: int,
    n_samples: int,
    channel_chunk: int | None,
    sample_chunk: int | None,
    symmetric: bool,
) -> tuple[int, int, int]:
    """``(channel chunk a, channel chunk b, sample chunk)``, defaults by measurement."""
    if channel_chunk is None:
        # balanced blocks of at most DEFAULT_CHANNEL_CHUNK: 3000 channels -> 2 x 1500,
        # not 2048 + 952 (a small last block makes small, unbalanced tiles)
        cc_a = math.ceil(n_a / math.ceil(n_a / DEFAULT_CHANNEL_CHUNK))
        cc_b = math.ceil(n_b / math.ceil(n_b / DEFAULT_CHANNEL_CHUNK))
    else:
        cc = check_positive_int("channel_chunk", channel_chunk)
        cc_a, cc_b = min(cc, n_a), min(cc, n_b)
    if sample_chunk is None:
        # The number of row blocks decides the parallelism when there are few tiles;
        # more row blocks cost only a (Ca, Cb) float64 partial sum each.
        nb_a, nb_b = math.ceil(n_a / cc_a), math.ceil(n_b / cc_b)
        tiles = nb_a * (nb_a + 1) // 2 if symmetric else nb_a * nb_b
        blocks = max(1, math.ceil(_MIN_TASKS / tiles))
        sample_chunk = math.ceil(n_samples / blocks)
    sc = min(check_positive_int("sample_chunk", sample_chunk), n_samples)
    return cc_a, cc_b, sc


# -- block functions (module level: picklable for dask.distributed) ----------------------


def _rows(kind: str, blocks: tuple[Any, ...], start: int) -> Any:
    if kind == "bc":
        return StoredRows(blocks[0], offset=start)
    mean, logvar = blocks[0], blocks[1]
    label = blocks[2] if len(blocks) > 2 else None
    # parameters are C x d x N (small next to a tile's work): check them where used
    xp = get_namespace(mean, logvar)
    check_finite(xp, mean, "channel_mean")
    check_finite(xp, logvar, "channel_logvar")
    if label is not None and xp.isdtype(label.dtype, "real floating"):
        # plain xr.concat of Gaussian and label Fingerprints fills channel_label with
        # NaN: every comparison with NaN is false, which would give BC 0 and inf bits
        check_finite(
            xp,
            label,
            "channel_label (combine Gaussian and label Fingerprints with "
            "ensemblex.concat_fingerprints, not plain xr.concat)",
        )
    return GaussianRows(mean, logvar, label)


def _tile_block(
    ids_a: Any,
    ids_b: Any,
    rows: Any,
    *blocks: Any,
    kinds: tuple[str, str],
    count_a: int,
    symmetric: bool,
    augment: bool,
    channel_sums: bool = False,
) -> Any:
    """One tile: float64 ``sum_i log2(sum_j A_ij B_ij)`` of shape ``(Ca, Cb, 1)``.

    With ``augment`` the shape is ``(Ca + 1, Cb + 1, 1)``; with ``channel_sums``
    ``(Ca + 2, Cb + 2, 1)``, the per-channel sums of block ``a`` filled in the
    first column of tiles and those of block ``b`` in the first row: see
    :func:`ensemblex._kernels.tile_logsum`.
    """
    start, stop = int(rows[0]), int(rows[-1]) + 1
    a = _rows(kinds[0], blocks[:count_a], start)
    if symmetric and int(ids_a[0]) == int(ids_b[0]):
        b = None  # a diagonal tile: generate the rows once
    else:
        b = _rows(kinds[1], blocks[count_a:], start)
    sides = (int(ids_b[0]) == 0, int(ids_a[0]) == 0) if channel_sums else None
    with one_blas_thread_in_pools():
        out = tile_logsum(a, b, start, stop, augment=augment, channel_sums=sides)
    return a.xp.expand_dims(out, axis=2)


def _channel_block(rows: Any, *blocks: Any, kind: str) -> Any:
    """Per-channel float64 partial sums ``(2, C, 1)``: info and repeat terms."""
    start, stop = int(rows[0]), int(rows[-1]) + 1
    a = _rows(kind, blocks, start)
    with one_blas_thread_in_pools():
        out = channel_logsums(a, start, stop)
    return a.xp.expand_dims(out, axis=2)


def _to_bits(logsum: Any, n_samples: int) -> Any:
    """``sum_i log2(rowsum_i)`` -> information in bits: ``log2 N - sum / N``.

    Every row sum lies in ``[1, N]``, so the bits lie in ``[0, log2 N]``; rounding
    can leave a channel without information a hair below 0 (``-1e-7``), which is
    clamped: ``max(v, 0) = (v + |v|) / 2``, exact for ``v >= 0``, on any array type
    (NumPy, CuPy, Dask, strict array API).
    """
    bits = math.log2(n_samples) - logsum / n_samples
    return (bits + abs(bits)) / 2


def _measures_block(
    logsum: Any,
    info_a: Any,
    info_b: Any,
    rep_a: Any,
    rep_b: Any,
    *,
    n_samples: int,
    min_info: float,
) -> Any:
    """Stacked float32 ``(M, Ca, Cb)``: the stored measures of one tile.

    One slice per entry of :data:`ensemblex.measures.PAIRWISE_VARIABLES`, each
    from its registry estimator on the tile's information terms (bits).
    """
    xp = get_namespace(logsum)
    joint = _to_bits(logsum, n_samples)
    i_a, r_a = xp.expand_dims(info_a, axis=1), xp.expand_dims(rep_a, axis=1)
    i_b, r_b = xp.expand_dims(info_b, axis=0), xp.expand_dims(rep_b, axis=0)
    values = [
        xp.broadcast_to(m.estimator(i_a, i_b, joint, r_a, r_b, min_info=min_info), joint.shape)
        for m in _STORED
    ]
    return xp.astype(xp.stack(values), xp.float32)


# -- graph -------------------------------------------------------------------------------


class _Plan:
    """Chunking and lazy arrays of one pairwise computation."""

    def __init__(
        self,
        a: _Side,
        b: _Side,
        symmetric: bool,
        channel_chunk: int | None,
        sample_chunk: int | None,
        min_info: float,
        chunks: tuple[int, int, int] | None = None,
    ) -> None:
        import dask.array as da

        self.a, self.b, self.symmetric, self.min_info = a, b, symmetric, min_info
        self.n = a.n_samples
        if chunks is None:
            chunks = _default_chunks(
                a.n_channels, b.n_channels, self.n, channel_chunk, sample_chunk, symmetric
            )
        self.cc_a, self.cc_b, self.sc = chunks
        if symmetric:
            self.cc_b = self.cc_a
        self.rows = da.arange(self.n, chunks=self.sc)
        self.ids_a = da.arange(a.n_channels, chunks=self.cc_a)
        self.ids_b = da.arange(b.n_channels, chunks=self.cc_b)
        self.arrays_a = a.arrays(self.cc_a, self.sc)
        self.arrays_b = self.arrays_a if symmetric else b.arrays(self.cc_b, self.sc)
        self.meta = self.arrays_a[0][0]._meta

    @property
    def n_blocks(self) -> tuple[int, int]:
        return len(self.ids_a.chunks[0]), len(self.ids_b.chunks[0])

    def _meta(self, ndim: int, dtype: Any) -> Any:
        from dask.array.utils import meta_from_array

        return meta_from_array(self.meta, ndim=ndim, dtype=dtype)

    def tile_sums(self, augment: bool = False, channel_sums: bool = False) -> Any:
        """Lazy float64 ``(Ca_total, Cb_total)`` of ``sum_i log2(rowsum)`` (all tiles).

        With ``augment`` every tile has one more row and column (the constant
        channel of :func:`ensemblex._kernels.tile_logsum`): blocks ``(Ca+1, Cb+1)``.
        With ``channel_sums`` two more of each (the per-channel sums, see
        :func:`_split_channel_sums`): blocks ``(Ca+2, Cb+2)``.
        """
        import dask.array as da
        from dask.array.core import PerformanceWarning

        args: list[Any] = [self.ids_a, "a", self.ids_b, "b", self.rows, "i"]
        for x, index in self.arrays_a:
            args += [x, index.replace("c", "a")]
        for x, index in self.arrays_b:
            args += [x, index.replace("c", "b")]
        with warnings.catch_warnings():
            # many more output blocks than input blocks is the point of a pairwise graph
            warnings.simplefilter("ignore", PerformanceWarning)
            part = da.blockwise(
                _tile_block,
                "abi",
                *args,
                adjust_chunks={"i": 1, **_extra_chunks(augment, channel_sums)},
                concatenate=True,
                meta=self._meta(3, np.float64),
                name="pairwise-tile-" + _token(self, "tile"),
                kinds=(self.a.source, self.b.source),
                count_a=len(self.arrays_a),
                symmetric=self.symmetric,
                augment=augment,
                channel_sums=channel_sums,
            )
        return part.sum(axis=2, split_every=8)

    def channel_sums(self, side: str) -> Any:
        """Lazy float64 ``(2, C)``: per-channel info and repeat log sums."""
        import dask.array as da

        s, arrays = (self.a, self.arrays_a) if side == "a" else (self.b, self.arrays_b)
        args: list[Any] = [self.rows, "i"]
        for x, index in arrays:
            args += [x, index]
        part = da.blockwise(
            _channel_block,
            "sci",
            *args,
            new_axes={"s": 2},
            adjust_chunks={"i": 1},
            concatenate=True,
            meta=self._meta(3, np.float64),
            name=f"pairwise-channels-{side}-" + _token(self, side),
            kind=s.source,
        )
        return part.sum(axis=2, split_every=8)

    def measures(self, logsum: Any, info_a: Any, info_b: Any, rep_a: Any, rep_b: Any) -> Any:
        """Lazy float32 ``(M, Ca_total, Cb_total)``: the stored measures, in order."""
        import dask.array as da

        return da.blockwise(
            _measures_block,
            "mab",
            logsum,
            "ab",
            info_a,
            "a",
            info_b,
            "b",
            rep_a,
            "a",
            rep_b,
            "b",
            new_axes={"m": len(_STORED)},
            meta=self._meta(3, np.float32),
            n_samples=self.n,
            min_info=self.min_info,
        )


def _plus_one(n: int) -> int:
    return n + 1


def _plus_two(n: int) -> int:
    return n + 2


def _extra_chunks(augment: bool, channel_sums: bool) -> dict[str, Any]:
    """``adjust_chunks`` of the tile graph: the rows and columns a tile adds."""
    if augment:
        return {"a": _plus_one, "b": _plus_one}
    if channel_sums:
        return {"a": _plus_two, "b": _plus_two}
    return {}


def _split_channel_sums(sums: Any) -> tuple[Any, Any, Any]:
    """Tile sums with per-channel sums -> (pair sums, sums of side a, sums of side b).

    Block ``(a, b)`` of ``sums`` is ``(Ca + 2, Cb + 2)``: the pairs, then two
    columns that the tiles of the first column of blocks (``b == 0``) fill with
    block ``a``'s per-channel sums, and two rows that the tiles of the first row
    (``a == 0``) fill with block ``b``'s. Sliced lazily, block by block.
    """
    import dask.array as da

    n_a, n_b = sums.numblocks
    pairs = da.block([[sums.blocks[a, b][:-2, :-2] for b in range(n_b)] for a in range(n_a)])
    side_a = da.concatenate([sums.blocks[a, 0][:-2, -2:].T for a in range(n_a)], axis=1)
    side_b = da.concatenate([sums.blocks[0, b][-2:, :-2] for b in range(n_b)], axis=1)
    return pairs, side_a, side_b


def _split_augmented(sums: Any) -> tuple[Any, Any, Any]:
    """Augmented symmetric tile sums -> (pair sums with upper blocks valid, info, repeat).

    Block ``(a, b)`` of ``sums`` is ``(Ca + 1, Cb + 1)``; its last column holds the
    information sums of block ``a``, and on a diagonal block the diagonal holds the
    repeat sums (``J(U, U)``). Everything is sliced lazily, block by block.
    """
    import dask.array as da

    n = sums.numblocks[0]
    rows = []
    for a in range(n):
        row = []
        for b in range(n):
            block = sums.blocks[a, b] if a <= b else sums.blocks[b, a].T
            row.append(block[:-1, :-1])
        rows.append(row)
    pairs = da.block(rows)
    info = da.concatenate([sums.blocks[a, a][:-1, -1] for a in range(n)])
    repeat = da.concatenate([da.diagonal(sums.blocks[a, a][:-1, :-1]) for a in range(n)])
    return pairs, info, repeat


def _token(plan: _Plan, what: str) -> str:
    from dask.base import tokenize

    return tokenize(
        what,
        [x.name for x, _ in plan.arrays_a],
        [x.name for x, _ in plan.arrays_b],
        plan.rows.chunks,
        plan.symmetric,
    )


def _mirror(upper: Any) -> Any:
    """Full symmetric matrix from one whose blocks ``a <= b`` hold the values (lazy)."""
    import dask.array as da

    n_a, n_b = upper.numblocks
    rows = []
    for a in range(n_a):
        row = []
        for b in range(n_b):
            row.append(upper.blocks[a, b] if a <= b else upper.blocks[b, a].T)
        rows.append(row)
    return da.block(rows)


# -- the public function -------------------------------------------------------------


def pairwise(
    fp: xr.Dataset,
    other: xr.Dataset | None = None,
    *,
    min_info: float = MIN_INFO,
    channel_chunk: int | None = None,
    sample_chunk: int | None = None,
    store: str | os.PathLike[str] | None = None,
) -> xr.Dataset:
    """All-pairs NMI, VI and joint information between the channels of Fingerprints.

    Parameters
    ----------
    fp
        Fingerprints (:func:`ensemblex.fingerprint`, :func:`ensemblex.label_fingerprints`).
        Rows are regenerated from ``channel_mean``/``channel_logvar``/``channel_label``;
        a dataset that holds only ``bc`` (a stored fingerprint) is read instead.
    other
        Fingerprints over the same samples (same ids, same order) to compare ``fp``
        against, e.g. label fingerprints; ``None`` compares ``fp`` with itself
        (only the tiles ``a <= b`` are computed).
    min_info
        Channels with less information (bits) have NaN NMI, in both directions.
    channel_chunk
        Channels per tile side. Default: balanced blocks of at most
        :data:`DEFAULT_CHANNEL_CHUNK` (3000 channels -> 2 x 1500): tiles of
        ``channel_chunk**2`` pairs keep the task GEMM-bound. A task holds about
        ``100 * channel_chunk**2`` bytes at its peak (float64 sums and the NMI step).
    sample_chunk
        Sample rows per task, reduced over with a tree. Default: all rows, or fewer
        when there are too few tiles to keep the workers busy.
    store
        Path of a Zarr (v3) store. Tiles are computed now and written as they
        finish (in the symmetric case each tile also at its mirrored place, so the
        whole matrix is on disk); a rerun after an interruption computes only the
        missing tiles. A store that holds a different computation is an error,
        never overwritten; chunking is not part of that identity: a finished
        store is read whatever ``channel_chunk``/``sample_chunk`` a rerun gives,
        and an unfinished one resumes with the chunks it was started with (with a
        warning when others were given). Once every tile is done the store is the
        Pairwise dataset: :func:`ensemblex.io.open_dataset` opens it (and refuses
        an unfinished one), ``xr.open_zarr(path)`` too, with the bookkeeping
        variables :data:`ensemblex.store.STORE_VARIABLES` (done markers,
        per-channel sums) and the attribute :data:`ensemblex.store.STORE_KEY`
        besides; :func:`ensemblex.store.store_state` says which a path holds.

    Returns
    -------
    xr.Dataset
        The Pairwise dataset: the stored measures (``joint_info``, ``nmi``,
        ``vi``: :data:`ensemblex.measures.PAIRWISE_VARIABLES`) float32
        ``(channel_a, channel_b)``; ``info_a``, ``repeat_info_a``, ``info_b``,
        ``repeat_info_b`` float32 (bits); the channel coordinates of both sides with
        ``_a``/``_b`` suffixes. Lazy Dask arrays; with ``store`` they read the Zarr
        store.

    Notes
    -----
    Speed: the tiles are matrix products. Inside Dask's thread pools each tile runs
    with one BLAS thread (through ``threadpoolctl``; the user's setting comes back
    when no tile runs): a multithreaded BLAS inside every Dask thread oversubscribes
    the cores (measured 1.7x more CPU time on 2 cores). ``dask.distributed``
    workers already default to one BLAS thread.

    Examples
    --------
    >>> import numpy as np, ensemblex as ex
    >>> lab = np.array([[0, 0, 1, 1, 2, 2], [0, 1, 0, 1, 0, 1]])
    >>> fp = ex.label_fingerprints(lab)
    >>> pw = pairwise(fp)
    >>> pw.nmi.values.round(3).tolist()            # independent factors: NMI 0
    [[1.0, 0.0], [0.0, 1.0]]
    >>> pw.info_a.values.round(3).tolist()         # log2(3), log2(2) bits
    [1.585, 1.0]
    """
    min_info = check_probability("min_info", min_info, high=math.inf)
    side_a = _Side(fp, "pairwise(fp)")
    symmetric = other is None
    side_b = side_a if other is None else _Side(other, "pairwise(other=...)")
    if not symmetric:
        _check_same_samples(side_a, side_b)
    plan = _Plan(side_a, side_b, symmetric, channel_chunk, sample_chunk, min_info)
    if store is not None:
        return _pairwise_store(plan, store)
    if symmetric:
        # info and repeat info come out of the diagonal tiles (an augmented product):
        # no second pass regenerates the rows
        logsum, info_sums, rep_sums = _split_augmented(plan.tile_sums(augment=True))
        info_a = info_b = _to_bits(info_sums, plan.n)
        rep_a = rep_b = _to_bits(rep_sums, plan.n)
    else:
        # each side's per-channel sums come from the tiles of one row or column of
        # blocks, from the rows they generate anyway: no pass of their own
        logsum, sums_a, sums_b = _split_channel_sums(plan.tile_sums(channel_sums=True))
        info_a, rep_a = _to_bits(sums_a[0], plan.n), _to_bits(sums_a[1], plan.n)
        info_b, rep_b = _to_bits(sums_b[0], plan.n), _to_bits(sums_b[1], plan.n)
    measures = plan.measures(logsum, info_a, info_b, rep_a, rep_b)
    variables: dict[str, Any] = {}
    for k, name in enumerate(PAIRWISE_VARIABLES):
        variables[name] = _mirror(measures[k]) if symmetric else measures[k]
    f32 = np.float32
    variables |= {
        "info_a": info_a.astype(f32),
        "repeat_info_a": rep_a.astype(f32),
        "info_b": info_b.astype(f32),
        "repeat_info_b": rep_b.astype(f32),
    }
    return _dataset(plan, variables)


#: the per-channel variables of a Pairwise dataset
_PER_CHANNEL = ("info_a", "repeat_info_a", "info_b", "repeat_info_b")
#: (long_name, units) of every result variable: the measures from the registry
_ATTRS = {
    **{m.name: (m.long_name, m.units) for m in _STORED},
    "info_a": ("information I(X; U) of channel_a", "bit"),
    "repeat_info_a": ("repeat information I(X; U, U') of channel_a", "bit"),
    "info_b": ("information I(X; V) of channel_b", "bit"),
    "repeat_info_b": ("repeat information I(X; V, V') of channel_b", "bit"),
}


def _dims(name: str) -> tuple[str, ...]:
    """The dims of a result variable."""
    if name in PAIRWISE_VARIABLES:
        return ("channel_a", "channel_b")
    return ("channel_a",) if name.endswith("_a") else ("channel_b",)


def _coords(plan: _Plan) -> dict[Hashable, Any]:
    """The coordinates of the result: channel ids and every channel coordinate, suffixed."""
    coords: dict[Hashable, Any] = {
        "channel_a": plan.a.channel_ids,
        "channel_b": plan.b.channel_ids,
    }
    for suffix, side in (("a", plan.a), ("b", plan.b)):
        for coord, var in side.coords.items():
            coords[f"{coord}_{suffix}"] = (f"channel_{suffix}", var.data, var.attrs)
    return coords


def _stamp_attrs(plan: _Plan) -> dict[str, Any]:
    """The attrs of a Pairwise dataset (the stamp of :func:`ensemblex._kinds.stamp`)."""
    return dict(stamp(xr.Dataset(), "pairwise", min_info=plan.min_info).attrs)


def _dataset(plan: _Plan, variables: dict[str, Any]) -> xr.Dataset:
    data_vars: dict[Hashable, Any] = {}
    for name, data in variables.items():
        long_name, units = _ATTRS[name]
        data_vars[name] = xr.Variable(_dims(name), data, {"long_name": long_name, "units": units})
    ds = xr.Dataset(data_vars, coords=_coords(plan))
    return stamp(ds, "pairwise", min_info=plan.min_info)


# -- the Zarr store: tile by tile, resumable (layout and state: ensemblex.store) ----------


def _identity(plan: _Plan) -> dict[str, Any]:
    """What the store computes: enough to refuse a store of another computation.

    The chunk entries (:data:`ensemblex.store.CHUNK_KEYS`) say how the work is cut:
    recorded, but a rerun with other chunks is the same computation.
    """
    return {
        "layout": _store.STORE_LAYOUT,
        "symmetric": plan.symmetric,
        "n_samples": plan.n,
        "channel_chunk": [plan.cc_a, plan.cc_b],
        "sample_chunk": plan.sc,
        "min_info": plan.min_info,
        "shape": [plan.a.n_channels, plan.b.n_channels],
        "inputs_sha256": _input_digest(plan),
    }


def _input_digest(plan: _Plan) -> str:
    """SHA-256 of channel ids, sample ids and the rows' source data of both sides.

    The parameters are hashed block by block by the tasks that read them
    (:func:`ensemblex.store.input_digest`): on a cluster they stay on the workers.
    """
    from dask.base import tokenize

    extra: list[bytes] = []
    arrays: list[Any] = []
    sides = (plan.a,) if plan.symmetric else (plan.a, plan.b)
    for side in sides:
        extra.append(np.ascontiguousarray(side.channel_ids).astype(str).tobytes())
        extra.append(np.ascontiguousarray(side.sample_ids).astype(str).tobytes())
        extra.append(side.source.encode())
        if side.source == "params":
            names = [*_PARAMS] + (["channel_label"] if side.has_label else [])
            arrays += [side.ds[n].transpose("channel", ...).data for n in names]
        else:
            # a stored bc is C x N x N: identify it by its Dask token (its source)
            extra.append(tokenize(side.ds["bc"].data).encode())
    return _store.input_digest(arrays, extra=extra)


def _store_tile(
    logsum: Any,
    path: str,
    block: tuple[int, int],
    origin: tuple[int, int],
    sizes: tuple[int, int],
    n_samples: int,
    min_info: float,
    symmetric: bool,
) -> tuple[int, int]:
    """Turn one tile's sums into its measures and write them (and, when symmetric,
    their mirror). The per-channel information is read from the store's sums, which
    are complete before any such tile runs, so no values travel in the graph."""
    xp = get_namespace(logsum)
    if symmetric:
        logsum = logsum[:-1, :-1]  # the augmented tile: drop the constant channel
    (sa, sb), (ra, rb) = origin, sizes
    sums_a = _store.read(path, "sums_a", (slice(None), slice(sa, sa + ra)))
    sums_b = _store.read(
        path, "sums_" + ("a" if symmetric else "b"), (slice(None), slice(sb, sb + rb))
    )
    info_a, rep_a = (xp.asarray(_to_bits(s, n_samples)) for s in sums_a)
    info_b, rep_b = (xp.asarray(_to_bits(s, n_samples)) for s in sums_b)
    values = _measures_block(
        logsum, info_a, info_b, rep_a, rep_b, n_samples=n_samples, min_info=min_info
    )
    return _store.write_tile(values, PAIRWISE_VARIABLES, path, block, origin, mirror=symmetric)


def _store_diagonal(
    sums: Any, path: str, block: int, start: int, n_samples: int, min_info: float
) -> int:
    """Symmetric case: one augmented diagonal tile -> per-channel sums and its tile."""
    xp = get_namespace(sums)
    info = sums[:-1, -1]
    pairs = sums[:-1, :-1]
    repeat = xp.linalg.diagonal(pairs) if hasattr(xp, "linalg") else xp.diagonal(pairs)
    _store.write_channels(xp.stack([info, repeat]), path, "a", block, start)
    info_bits, rep_bits = _to_bits(info, n_samples), _to_bits(repeat, n_samples)
    values = _measures_block(
        pairs, info_bits, info_bits, rep_bits, rep_bits, n_samples=n_samples, min_info=min_info
    )
    _store.write_tile(values, PAIRWISE_VARIABLES, path, (block, block), (start, start))
    return block


def _open_store(plan: _Plan, path: Path) -> tuple[_Plan, dict[str, Any]]:
    """Open (or create) the store of ``plan``: the plan to resume it with, its identity.

    An unfinished store resumes with the chunks it was started with (its tiles are
    laid out by them), saying so when other chunks were asked for; a finished one is
    read whatever the chunks.
    """
    variables = {
        name: (_dims(name), {"long_name": _ATTRS[name][0], "units": _ATTRS[name][1]})
        for name in (*PAIRWISE_VARIABLES, *_PER_CHANNEL)
    }
    held = _store.open_store(
        path,
        _identity(plan),
        coords=_coords(plan),
        variables=variables,
        sizes={"channel_a": plan.a.n_channels, "channel_b": plan.b.n_channels},
        chunks={"channel_a": plan.cc_a, "channel_b": plan.cc_b},
        n_tiles=plan.n_blocks,
    )
    cc_a, cc_b = held["channel_chunk"]
    chunks = (int(cc_a), int(cc_b), int(held["sample_chunk"]))
    if chunks == (plan.cc_a, plan.cc_b, plan.sc) or _store.store_state(path) == "finished":
        return plan, held
    given = cc_a if cc_a == cc_b else [cc_a, cc_b]
    warnings.warn(
        f"store {str(path)!r} was started with channel_chunk={given}, "
        f"sample_chunk={chunks[2]}; its missing tiles are computed with those "
        "(chunking does not change the numbers).",
        UserWarning,
        stacklevel=4,
    )
    plan = _Plan(plan.a, plan.b, plan.symmetric, None, None, plan.min_info, chunks=chunks)
    return plan, held


def _pairwise_store(plan: _Plan, store: str | os.PathLike[str]) -> xr.Dataset:
    try:
        import zarr  # noqa: F401
    except ImportError as err:  # an optional dependency
        raise MissingExtraError(
            "pairwise(store=...) writes a Zarr store and needs zarr>=3: "
            "pip install 'ensemblex[zarr]'."
        ) from err

    path = Path(store)
    plan, identity = _open_store(plan, path)
    spath = str(path)
    if _store.store_state(path) != "finished":
        _compute_store(plan, spath, identity)
    # the result reads the store lazily (the whole matrix is on disk)
    variables = _store.lazy_arrays(spath, PAIRWISE_VARIABLES)
    variables |= {name: _store.read(spath, name) for name in _PER_CHANNEL}
    ds = _dataset(plan, variables)
    ds.attrs["store"] = spath
    return ds


def _compute_store(plan: _Plan, spath: str, identity: dict[str, Any]) -> None:
    """Compute what the store at ``spath`` still misses, then mark it finished."""
    import dask
    from dask.base import tokenize

    symmetric = plan.symmetric
    tag = tokenize(spath, identity)[:12]
    # the same tiles as the lazy path (augmented when symmetric): identical numbers
    logsum = plan.tile_sums(augment=symmetric)
    starts_a = np.cumsum((0, *plan.ids_a.chunks[0]))
    starts_b = np.cumsum((0, *plan.ids_b.chunks[0]))
    # 1. per-channel sums: from the diagonal tiles (symmetric), else a cheap pass
    #    over C N^2 coefficients per side
    tasks = []
    done_tiles = _store.read(spath, "done_tiles")
    if symmetric:
        done = _store.read(spath, "done_channels_a")
        for a in range(plan.n_blocks[0]):
            if done[a] and done_tiles[a, a]:
                continue
            tasks.append(
                dask.delayed(_store_diagonal)(
                    logsum.blocks[a, a],
                    spath,
                    a,
                    int(starts_a[a]),
                    plan.n,
                    plan.min_info,
                    dask_key_name=f"pairwise-write-{a}-{a}-{tag}",
                )
            )
    else:
        for side, starts in (("a", starts_a), ("b", starts_b)):
            done = _store.read(spath, f"done_channels_{side}")
            sums = plan.channel_sums(side)
            for c in np.flatnonzero(done == 0):
                tasks.append(
                    dask.delayed(_store.write_channels)(
                        sums.blocks[:, int(c)], spath, side, int(c), int(starts[c])
                    )
                )
    if tasks:
        dask.compute(*tasks)
    # 2. the tiles still missing
    done = _store.read(spath, "done_tiles")
    tasks = []
    for a, b in zip(*np.nonzero(done == 0), strict=True):
        a, b = int(a), int(b)
        if symmetric and a >= b:
            continue  # diagonal tiles written above; the lower ones with their mirror
        origin = (int(starts_a[a]), int(starts_b[b]))
        sizes = (int(starts_a[a + 1]) - origin[0], int(starts_b[b + 1]) - origin[1])
        tasks.append(
            dask.delayed(_store_tile)(
                logsum.blocks[a, b],
                spath,
                (a, b),
                origin,
                sizes,
                plan.n,
                plan.min_info,
                symmetric,
                dask_key_name=f"pairwise-write-{a}-{b}-{tag}",
            )
        )
    if tasks:
        dask.compute(*tasks)
    # 3. the finished store: per-side information, the stamp, consolidated metadata
    sums_a = _store.read(spath, "sums_a")
    sums_b = sums_a if symmetric else _store.read(spath, "sums_b")
    f32 = np.float32
    info = {
        "info_a": _to_bits(sums_a[0], plan.n).astype(f32),
        "repeat_info_a": _to_bits(sums_a[1], plan.n).astype(f32),
        "info_b": _to_bits(sums_b[0], plan.n).astype(f32),
        "repeat_info_b": _to_bits(sums_b[1], plan.n).astype(f32),
    }
    _store.finish(spath, info, _stamp_attrs(plan))
