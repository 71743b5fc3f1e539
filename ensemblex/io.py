"""Read and write ensemblex datasets: netCDF4 (``.nc``) and Zarr (``.zarr``).

Every dataset kind (Posteriors, Fingerprints, Pairwise, Clusters) round-trips
unchanged: plain coordinates, string coordinates, booleans (variables and
attrs) and the ``ensemblex_kind``/``ensemblex_version`` attrs.

- :func:`save` never overwrites an existing path unless ``overwrite=True``, and
  writes to a temporary path first, so a failed write leaves what was there.
  Lazy (Dask) data are computed chunk by chunk while writing. For Fingerprints
  this **materialises** ``bc``: C*N*N float32 values on disk (20,000 channels
  at N = 300 are 7.2 GB). The pairwise engine does not need a stored ``bc``
  (it regenerates rows from ``channel_mean``/``channel_logvar``/``channel_label``),
  so for large ensembles save the Posteriors and rebuild the fingerprints
  (cheap and lazy) rather than saving the Fingerprints.
- :func:`open_dataset` checks that the file exists, is readable, and holds an
  ensemblex dataset of a known kind with the variables that kind needs. It also
  opens the Zarr store of ``pairwise(store=...)`` (``ensemblex compare --out
  X.zarr``) once the run has finished, without the store's bookkeeping variables.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ._checks import check_dims
from ._kinds import KINDS, dataset_kind, stamp
from ._lazy import is_dask
from ._namespace import to_numpy
from .errors import InputError, InputTypeError
from .measures import PAIRWISE_VARIABLES

__all__ = ["open_dataset", "save"]

_NETCDF_SUFFIXES = (".nc", ".nc4", ".netcdf")
# netCDF4 attributes cannot hold booleans: they are written as int8 and their
# names listed (JSON) in this attribute, then turned back into bools on reading
_BOOL_ATTRS = "ensemblex_bool_attrs"


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".zarr":
        return "zarr"
    if suffix in _NETCDF_SUFFIXES:
        return "netcdf"
    raise InputError(
        f"cannot tell the file format of {str(path)!r} from its suffix {suffix!r}; "
        "use '.nc' for netCDF4 or '.zarr' for Zarr."
    )


def _to_host_block(block: Any) -> Any:
    return to_numpy(block)


def _host(var: xr.Variable) -> xr.Variable:
    """The variable with NumPy data (CuPy chunks are copied to the host lazily)."""
    data = var.data
    if isinstance(data, np.ndarray):
        return var
    if is_dask(data):
        if isinstance(data._meta, np.ndarray):
            return var
        meta = np.empty((0,) * data.ndim, dtype=data.dtype)
        return var.copy(data=data.map_blocks(_to_host_block, dtype=data.dtype, meta=meta))
    return var.copy(data=to_numpy(data))


def _regular(var: xr.Variable) -> xr.Variable:
    """Zarr needs equal chunks (the last may be smaller): rechunk irregular Dask data."""
    data = var.data
    if not is_dask(data):
        return var
    regular = all(len(set(c[:-1])) <= 1 and c[-1] <= c[0] for c in data.chunks if len(c) > 0)
    if regular:
        return var
    return var.copy(data=data.rechunk(tuple(max(c) if c else 0 for c in data.chunks)))


def _encode_attrs(attrs: dict[Any, Any], where: str) -> dict[Any, Any]:
    """Booleans -> int8 plus the list of their names (netCDF4 has no boolean attrs)."""
    out: dict[Any, Any] = {}
    flags = []
    for key, value in attrs.items():
        if key == _BOOL_ATTRS:
            continue
        if isinstance(value, bool | np.bool_):
            out[key] = np.int8(value)
            flags.append(str(key))
        elif value is None or isinstance(value, dict):
            raise InputTypeError(
                f"attribute {key!r} of {where} is {type(value).__name__}, which netCDF4 cannot "
                "store; use a number, a string or a list of them (or save to '.zarr')."
            )
        else:
            out[key] = value
    if flags:
        out[_BOOL_ATTRS] = json.dumps(flags)
    return out


def _decode_attrs(attrs: dict[Any, Any]) -> dict[Any, Any]:
    if _BOOL_ATTRS not in attrs:
        return attrs
    out = dict(attrs)
    for key in json.loads(out.pop(_BOOL_ATTRS)):
        if key in out:
            out[key] = bool(out[key])
    return out


def _check_kind(ds: xr.Dataset, kind: str, what: str) -> xr.Dataset:
    """Light structural checks of each kind (dims and variables; nothing computed)."""
    if kind == "posteriors":
        for name in ("mean", "logvar"):
            if name not in ds.data_vars:
                raise InputError(f"{what} is a Posteriors dataset without variable {name!r}.")
            check_dims(
                f"variable {name!r} of {what}",
                [str(d) for d in ds[name].dims],
                ("model", "latent", "sample"),
                exact=True,
            )
    elif kind == "fingerprints":
        from .fingerprints import validate_fingerprints

        ds = validate_fingerprints(ds, what=what)
    elif kind == "pairwise":
        for name in PAIRWISE_VARIABLES:
            if name not in ds.data_vars:
                raise InputError(f"{what} is a Pairwise dataset without variable {name!r}.")
            check_dims(
                f"variable {name!r} of {what}",
                [str(d) for d in ds[name].dims],
                ("channel_a", "channel_b"),
                exact=True,
            )
    elif kind == "clusters" and "channel" not in ds.dims:
        raise InputError(f"{what} is a Clusters dataset without a 'channel' dimension.")
    return ds


def save(ds: xr.Dataset, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write an ensemblex dataset to netCDF4 (``.nc``) or Zarr (``.zarr``).

    Parameters
    ----------
    ds
        A Posteriors, Fingerprints, Pairwise or Clusters dataset. Lazy (Dask)
        data are computed chunk by chunk as they are written; CuPy data are
        copied to the host. Saving Fingerprints materialises ``bc`` (C*N*N
        float32 values).
    path
        Destination; the suffix picks the format (``.nc``: netCDF4 via the
        ``netcdf4`` engine; ``.zarr``: a Zarr v2 store).
    overwrite
        Replace an existing file or store. Without it an existing path is an
        error and nothing is touched. The data are written to a temporary path
        next to ``path`` first, so a failed write never destroys the old file.

    Returns
    -------
    pathlib.Path
        The path written.

    Examples
    --------
    >>> import numpy as np, tempfile, os, ensemblex as ex
    >>> post = ex.posteriors(np.zeros((1, 2, 3)), np.zeros((1, 2, 3)))
    >>> path = os.path.join(tempfile.mkdtemp(), "post.nc")
    >>> _ = save(post, path)
    >>> open_dataset(path).attrs["ensemblex_kind"]
    'posteriors'
    >>> save(post, path)
    Traceback (most recent call last):
    ...
    FileExistsError: ... already exists; pass overwrite=True to replace it.
    """
    if not isinstance(ds, xr.Dataset):
        raise InputTypeError(f"save() writes an xarray.Dataset; got {type(ds).__name__}.")
    kind = dataset_kind(ds)
    if kind is None:
        raise InputTypeError(
            "save() writes ensemblex datasets (Posteriors, Fingerprints, Pairwise, Clusters); "
            f"this one has none of their variables ({', '.join(map(str, ds.data_vars)) or 'none'}). "
            "Use ds.to_netcdf() for other data."
        )
    path = Path(path)
    fmt = _format(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{str(path)!r} already exists; pass overwrite=True to replace it.")
    ds = _check_kind(ds, kind, "the dataset to save")
    if ds.attrs.get("ensemblex_kind") != kind:
        ds = stamp(ds, kind)
    out = ds.drop_encoding()
    out = out.copy(deep=False)
    for name in list(out.variables):
        var = _host(out.variables[name])
        if fmt == "zarr":
            var = _regular(var)
        out[name] = var
    encoding: dict[Any, dict[str, Any]] = {}
    if fmt == "netcdf":
        out.attrs = _encode_attrs(out.attrs, "the dataset")
        for name, var in out.variables.items():
            var.attrs = _encode_attrs(var.attrs, f"variable {name!r}")
            if is_dask(var.data) and var.ndim > 0 and all(var.shape):
                # HDF5 chunks follow the Dask chunks: reading back with chunks= is cheap
                encoding[name] = {"chunksizes": tuple(int(c[0]) for c in var.data.chunks)}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        if fmt == "netcdf":
            out.to_netcdf(tmp, engine="netcdf4", format="NETCDF4", encoding=encoding)
        else:
            out.to_zarr(tmp, mode="w-", zarr_format=2, consolidated=True)
        if path.exists():
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink()
    return path


def _open(path: Path, fmt: str, chunks: Any) -> xr.Dataset:
    kwargs: dict[str, Any] = {"chunks": chunks}
    if fmt == "zarr":
        return xr.open_dataset(path, engine="zarr", **kwargs)
    return xr.open_dataset(path, engine="netcdf4", **kwargs)


def _refuse_unfinished_store(path: Path) -> None:
    """A ``pairwise(store=...)`` store is a dataset only once every tile is written."""
    from .store import store_state

    if store_state(path) == "unfinished":
        raise InputError(
            f"{str(path)!r} is the Zarr store of a pairwise run that is not finished "
            "(some tiles are missing), so it is not a Pairwise dataset yet; the run is "
            "unfinished: rerun pairwise/compare with the same store to resume."
        )


def open_dataset(path: str | os.PathLike[str], *, chunks: Any = None) -> xr.Dataset:
    """Open an ensemblex dataset written by :func:`save` (or by plain xarray).

    Parameters
    ----------
    path
        A ``.nc`` netCDF4 file or a ``.zarr`` store, including the finished store of
        ``ensemblex.pairwise(..., store=path)`` (its bookkeeping variables are
        dropped).
    chunks
        ``None`` (default): data are read lazily on access, without Dask; else
        Dask chunks as in :func:`xarray.open_dataset` (e.g. ``{}`` or
        ``{"channel": 64}``).

    Returns
    -------
    xr.Dataset
        The dataset as it was saved: booleans are booleans again, and
        Fingerprints are checked with
        :func:`ensemblex.fingerprints.validate_fingerprints`.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        The file is not netCDF4/Zarr, is truncated or corrupt, or does not hold
        an ensemblex dataset; or it is the store of a pairwise run that is not
        finished (rerun it with the same store to resume).

    Examples
    --------
    >>> import tempfile, os
    >>> open_dataset(os.path.join(tempfile.mkdtemp(), "missing.nc"))
    Traceback (most recent call last):
    ...
    FileNotFoundError: no ensemblex dataset at '...missing.nc': the path does not exist.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no ensemblex dataset at {str(path)!r}: the path does not exist.")
    fmt = "zarr" if path.is_dir() or path.suffix.lower() == ".zarr" else "netcdf"
    name = "Zarr store" if fmt == "zarr" else "netCDF4 file"
    if fmt == "zarr":
        _refuse_unfinished_store(path)
    try:
        probe = _open(path, fmt, None)
        # read the last element of every variable: a truncated file fails here, not later
        for var in probe.variables.values():
            if var.ndim and all(var.shape):
                var[(-1,) * var.ndim].values  # noqa: B018
        # (no probe.close(): xarray shares one file handle per path, and closing it
        # under another open dataset of the same file is unsafe; refcounting closes it)
        ds = probe if chunks is None else _open(path, fmt, chunks)
    except Exception as err:  # the backends raise OSError, ValueError, KeyError, RuntimeError...
        raise InputError(
            f"{str(path)!r} could not be read as a {name}: it may be truncated, corrupt, or not "
            f"a {name} at all ({type(err).__name__}: {err})."
        ) from err
    if fmt == "zarr":
        from .store import drop_bookkeeping

        ds = drop_bookkeeping(ds)
    ds.attrs = _decode_attrs(ds.attrs)
    for var in ds.variables.values():
        var.attrs = _decode_attrs(var.attrs)
    kind = dataset_kind(ds)
    stored = ds.attrs.get("ensemblex_kind")
    if stored is not None and stored not in KINDS:
        raise InputError(
            f"{str(path)!r} says it is an ensemblex {stored!r} dataset, a kind this version "
            f"does not know (known: {', '.join(KINDS)})."
        )
    if kind is None:
        variables = ", ".join(sorted(map(str, ds.data_vars))) or "none"
        raise InputError(
            f"{str(path)!r} is not an ensemblex dataset: it has no 'ensemblex_kind' attribute "
            f"and not the variables of any ensemblex kind (variables: {variables})."
        )
    ds = _check_kind(ds, kind, repr(str(path)))
    if stored is None:
        ds = stamp(ds, kind)
    return ds
