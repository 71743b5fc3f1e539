"""The resumable Zarr store of a pairwise run: its layout, its identity, its state.

``ensemblex.pairwise(fp, store=path)`` (``ensemblex compare --out X.zarr``)
writes its tiles into a Zarr v3 store as they finish, so that an interrupted
run resumes where it stopped, and a finished store *is* the Pairwise dataset
on disk (``xr.open_zarr(path)``, :func:`ensemblex.io.open_dataset`). This
module owns that file: how it is laid out, how a store is recognised, and the
small writes the engine's tasks make. The engine (:mod:`ensemblex.pairwise`)
decides what to compute and calls these functions.

Layout (Zarr v3, every array with ``dimension_names``):

- ``channel_a``, ``channel_b`` and the suffixed channel coordinates, written by
  xarray itself when the store is created (strings as xarray writes them to v3);
- the measures (:data:`ensemblex.measures.PAIRWISE_VARIABLES`)
  ``(channel_a, channel_b)`` float32, NaN until written, one Zarr chunk per
  tile. In the symmetric case each upper tile is written twice, as itself and
  transposed, so the whole matrix is on disk;
- the per-channel variables (``info_a``, ``repeat_info_a``, ...): written when
  every tile is done, then the stamp attrs (``ensemblex_kind`` last: the
  finished mark), then the consolidated metadata that ``xr.open_zarr`` reads;
- bookkeeping (:data:`STORE_VARIABLES`): ``sums_a``/``sums_b``
  ``(sum_term, channel_*)`` float64 per-channel log sums,
  ``done_channels_a``/``_b`` ``(tile_a,)``/``(tile_b,)`` and ``done_tiles``
  ``(tile_a, tile_b)`` done markers; the identity of the computation in the
  group attribute :data:`STORE_KEY`.

Every marker is written after the values it marks, so a run killed at any
point leaves a store whose marked parts are complete.

Identity: what the store computes (inputs, samples, ``min_info``, shape,
layout) must match on a rerun, else the store is refused and left untouched.
How the work was cut (:data:`CHUNK_KEYS`) is recorded too but does not change
the numbers: a finished store is usable whatever chunks a rerun asks for, and
an unfinished one resumes with the chunks it was started with.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import warnings
from collections.abc import Hashable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import xarray as xr

from ._namespace import to_numpy
from ._version import __version__
from .errors import InputError

__all__ = [
    "CHUNK_KEYS",
    "STORE_KEY",
    "STORE_LAYOUT",
    "STORE_VARIABLES",
    "StoreState",
    "drop_bookkeeping",
    "input_digest",
    "is_pairwise_store",
    "store_state",
]

#: group attribute of a pairwise Zarr store: what it computes (its identity)
STORE_KEY = "ensemblex_pairwise_store"
#: the store's bookkeeping variables (not part of the Pairwise dataset)
STORE_VARIABLES = ("sums_a", "sums_b", "done_channels_a", "done_channels_b", "done_tiles")
#: the on-disk layout and identity scheme of the store; part of its identity, so a
#: store of another layout is refused. Layout 1 held only the upper tiles and no
#: coordinates; layout 2 hashed the inputs in one piece on the client; layout 3
#: hashes them block by block where they are read (:func:`input_digest`).
STORE_LAYOUT = 3
#: identity entries that say how the work was cut, not what it computes
CHUNK_KEYS = ("channel_chunk", "sample_chunk")

#: what is at a path: nothing, something else, a store mid-run, a finished store
StoreState = Literal["absent", "foreign", "unfinished", "finished"]

#: channels per block of :func:`input_digest` (fixed: the digest must not depend
#: on how the inputs are chunked)
_DIGEST_ROWS = 1024


# -- recognising a store --------------------------------------------------------------


def _attrs(path: Path) -> dict[str, Any] | None:
    """The group attrs of the Zarr store at ``path``; ``None`` if it is not one."""
    if not path.is_dir():
        return None
    try:
        import zarr

        return dict(zarr.open_group(str(path), mode="r", use_consolidated=False).attrs)
    except Exception:  # not a Zarr group that zarr reads (or zarr missing): not ours
        return None


def store_state(path: str | os.PathLike[str]) -> StoreState:
    """What is at ``path``, seen as a ``pairwise(store=...)`` store.

    ``"absent"``: nothing; ``"foreign"``: a file or store not written by
    :func:`ensemblex.pairwise`; ``"unfinished"``: a pairwise store with tiles
    still missing (rerun the same computation to resume); ``"finished"``: a
    complete store, readable as a Pairwise dataset.

    Examples
    --------
    >>> import tempfile, os
    >>> store_state(os.path.join(tempfile.mkdtemp(), "pw.zarr"))
    'absent'
    """
    path = Path(path)
    if not path.exists():
        return "absent"
    attrs = _attrs(path)
    if attrs is None or not isinstance(attrs.get(STORE_KEY), dict):
        return "foreign"
    # the stamp (ensemblex_kind) is written last, when every tile is done
    return "finished" if attrs.get("ensemblex_kind") == "pairwise" else "unfinished"


def is_pairwise_store(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is the Zarr store of a pairwise run, finished or not.

    Examples
    --------
    >>> import tempfile
    >>> is_pairwise_store(tempfile.mkdtemp())
    False
    """
    return store_state(path) in ("unfinished", "finished")


def drop_bookkeeping(ds: xr.Dataset) -> xr.Dataset:
    """A dataset read from a finished store, without the store's bookkeeping.

    Drops :data:`STORE_VARIABLES` and the :data:`STORE_KEY` attribute; any
    other dataset is returned unchanged.

    Examples
    --------
    >>> import xarray as xr
    >>> ds = xr.Dataset({"done_tiles": ("t", [1])}, attrs={STORE_KEY: {}, "min_info": 0.1})
    >>> out = drop_bookkeeping(ds)
    >>> list(out.data_vars), out.attrs
    ([], {'min_info': 0.1})
    """
    if STORE_KEY not in ds.attrs:
        return ds
    ds = ds.drop_vars([name for name in STORE_VARIABLES if name in ds.variables])
    ds.attrs = {key: value for key, value in ds.attrs.items() if key != STORE_KEY}
    return ds


# -- identity -------------------------------------------------------------------------


def _block_digest(block: Any) -> bytes:
    arr = np.ascontiguousarray(to_numpy(block))
    return hashlib.sha256(arr.tobytes()).digest()


def input_digest(arrays: Sequence[Any], *, extra: Sequence[bytes] = ()) -> str:
    """SHA-256 over the values of ``arrays``, read where they live.

    Each array is cut into blocks of a fixed number of rows (axis 0) whatever
    its chunks; each block's SHA-256 is computed by the task that reads it
    (Dask arrays: on the workers, so no values travel to the client; NumPy or
    CuPy arrays: here), and the digests are hashed in order together with each
    array's dtype and shape. The same values give the same digest however they
    are chunked or wherever they come from.

    Examples
    --------
    >>> import numpy as np, dask.array as da
    >>> x = np.arange(12.0).reshape(3, 4)
    >>> input_digest([x]) == input_digest([da.from_array(x, chunks=(1, 2))])
    True
    >>> input_digest([x]) == input_digest([x + 1])
    False
    """
    import dask

    h = hashlib.sha256()
    for item in extra:
        h.update(item)
    for x in arrays:
        h.update(str((np.dtype(x.dtype).str, tuple(int(s) for s in x.shape))).encode())
        n = int(x.shape[0]) if x.ndim else 1
        if hasattr(x, "dask") and hasattr(x, "chunks"):
            rows = min(_DIGEST_ROWS, max(n, 1))
            blocks = x.rechunk((rows,) + (-1,) * (x.ndim - 1)).to_delayed().ravel()
            digests = dask.compute(*[dask.delayed(_block_digest)(b) for b in blocks])
        else:
            digests = tuple(
                _block_digest(x[start : start + _DIGEST_ROWS])
                for start in range(0, max(n, 1), _DIGEST_ROWS)
            )
        for digest in digests:
            h.update(digest)
    return h.hexdigest()


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _check_identity(path: Path, held: Any, want: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(held, dict):
        raise InputError(
            f"store {str(path)!r} exists and was not written by ensemblex.pairwise; "
            "choose another path (nothing was written)."
        )
    held, want = _json(held), _json(want)
    differ = sorted(
        k for k in set(held) | set(want) if k not in CHUNK_KEYS and held.get(k) != want.get(k)
    )
    if differ:
        raise InputError(
            f"store {str(path)!r} holds a different pairwise computation (differs in "
            f"{', '.join(differ)}); it was not modified. Use another path, or delete "
            "the store yourself to start over."
        )
    return held


# -- creating and opening -------------------------------------------------------------


@contextlib.contextmanager
def quiet_zarr() -> Iterator[None]:
    """Silence zarr's notices about the formats xarray also writes to Zarr v3.

    Zarr-python warns that consolidated metadata and the fixed-length UTF-32 string
    type (what xarray writes for NumPy ``<U`` coordinates) are not yet in the v3
    specification; both read back with zarr-python and xarray.
    """
    with warnings.catch_warnings():
        try:
            from zarr.errors import UnstableSpecificationWarning, ZarrUserWarning
        except ImportError:  # zarr releases without these classes warn about neither
            pass
        else:
            warnings.simplefilter("ignore", UnstableSpecificationWarning)
            warnings.filterwarnings("ignore", "Consolidated metadata", ZarrUserWarning)
        yield


def open_store(
    path: Path,
    identity: dict[str, Any],
    *,
    coords: Mapping[Hashable, Any],
    variables: Mapping[str, tuple[tuple[str, ...], dict[str, Any]]],
    sizes: Mapping[str, int],
    chunks: Mapping[str, int],
    n_tiles: tuple[int, int],
) -> dict[str, Any]:
    """Open the store of this computation, creating it if ``path`` does not exist.

    ``variables`` maps each result variable to its dims and attrs; ``sizes`` and
    ``chunks`` give each ``channel_*`` dim its length and tile side. Returns the
    identity the store holds: equal to ``identity`` but for :data:`CHUNK_KEYS`,
    which are those the store was started with. A path that holds anything else,
    or another computation, is an error and is not modified.
    """
    import zarr

    if path.exists():
        try:
            group = zarr.open_group(str(path), mode="r", use_consolidated=False)
        except Exception as err:
            raise InputError(
                f"store {str(path)!r} exists and is not a Zarr store written by "
                "ensemblex.pairwise; choose another path (nothing was written)."
            ) from err
        return _check_identity(path, group.attrs.get(STORE_KEY), identity)
    with quiet_zarr():
        # the coordinates, written by xarray (its encoding of strings, ints, floats in
        # Zarr v3); mode "w-" refuses a path that appeared in the meantime
        xr.Dataset(coords=coords).to_zarr(str(path), mode="w-", zarr_format=3, consolidated=False)
    group = zarr.open_group(str(path), mode="r+")
    for name, (dims, attrs) in variables.items():
        group.create_array(
            name,
            shape=tuple(sizes[d] for d in dims),
            chunks=tuple(chunks[d] for d in dims),
            dtype="f4",
            fill_value=np.nan,
            dimension_names=dims,
            attributes=dict(attrs),
        )
    for k, side in enumerate(("a", "b")):
        dim = f"channel_{side}"
        group.create_array(
            f"sums_{side}",
            shape=(2, sizes[dim]),
            chunks=(2, chunks[dim]),
            dtype="f8",
            fill_value=0,
            dimension_names=("sum_term", dim),
            attributes={"long_name": "per-channel sums of log2 row sums: info, repeat"},
        )
        group.create_array(
            f"done_channels_{side}",
            shape=(n_tiles[k],),
            chunks=(1,),
            dtype="u1",
            fill_value=0,
            dimension_names=(f"tile_{side}",),
            attributes={"long_name": f"1 where the sums of channel block {side} are written"},
        )
    group.create_array(
        "done_tiles",
        shape=n_tiles,
        chunks=(1, 1),
        dtype="u1",
        fill_value=0,
        dimension_names=("tile_a", "tile_b"),
        attributes={"long_name": "1 where the tile (and its mirror) is written"},
    )
    group.attrs["ensemblex_version"] = __version__
    # the identity goes last: a store without it is not a (complete) store of ours
    group.attrs[STORE_KEY] = identity
    return _json(identity)


def _member(group: Any, name: str) -> Any:
    """``group[name]`` as an array (zarr types a member as array or group)."""
    return group[name]


def _array(path: str, name: str, mode: Literal["r", "r+"] = "r") -> Any:
    import zarr

    return _member(zarr.open_group(path, mode=mode, use_consolidated=False), name)


def read(path: str | os.PathLike[str], name: str, selection: Any = slice(None)) -> np.ndarray:
    """``selection`` (all by default) of the store's array ``name``, in memory."""
    return np.asarray(_array(str(path), name)[selection])


# -- the writes the engine's tasks make (module level: picklable for dask.distributed) --


def write_channels(sums: Any, path: str, side: str, block: int, start: int) -> int:
    """Write one block of per-channel sums ``(2, c)``, then its done marker."""
    values = np.asarray(to_numpy(sums), dtype=np.float64)
    _array(path, f"sums_{side}", "r+")[:, start : start + values.shape[1]] = values
    _array(path, f"done_channels_{side}", "r+")[block] = 1
    return block


def write_tile(
    values: Any,
    names: Sequence[str],
    path: str,
    block: tuple[int, int],
    origin: tuple[int, int],
    mirror: bool = False,
) -> tuple[int, int]:
    """Write one finished tile ``values`` ``(len(names), Ca, Cb)``, then its marker.

    With ``mirror`` an off-diagonal tile is also written transposed at its
    mirrored place (the symmetric case: the whole matrix is on disk).
    """
    import zarr

    values = to_numpy(values)
    group = zarr.open_group(path, mode="r+", use_consolidated=False)
    (ra, rb), (sa, sb) = values.shape[1:], origin
    for k, name in enumerate(names):
        array = _member(group, name)
        array[sa : sa + ra, sb : sb + rb] = values[k]
        if mirror and block[0] != block[1]:
            array[sb : sb + rb, sa : sa + ra] = values[k].T
    # the marker goes last: an interrupted write leaves the tile marked missing
    _member(group, "done_tiles")[block] = 1
    return block


def finish(
    path: str | os.PathLike[str], info: Mapping[str, np.ndarray], attrs: dict[str, Any]
) -> None:
    """Every tile is done: write the per-channel variables, the stamp, the metadata.

    ``ensemblex_kind`` (in ``attrs``, the stamp) marks the store finished; it is
    written after the values, in one update of the group's attrs. A store that is
    already finished is left untouched.
    """
    import zarr

    if store_state(path) == "finished":
        return
    group = zarr.open_group(str(path), mode="r+", use_consolidated=False)
    for name, values in info.items():
        _member(group, name)[:] = values
    group.attrs.update(attrs)
    with quiet_zarr():
        # one metadata document for readers (xr.open_zarr looks for it first)
        zarr.consolidate_metadata(str(path))


def lazy_arrays(path: str | os.PathLike[str], names: Sequence[str]) -> dict[str, Any]:
    """Dask arrays reading the variables ``names`` of the store, chunk by chunk."""
    import dask.array as da

    return {name: da.from_zarr(str(path), component=name) for name in names}
