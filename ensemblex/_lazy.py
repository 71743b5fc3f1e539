"""Keep data that xarray reads lazily from a file lazy: Dask arrays that read it.

``xr.open_dataset(path)`` (without ``chunks``) and :func:`ensemblex.io.open_dataset`
give variables that are read from the file on first access. Taking their
``.data`` loads the whole variable into memory; a graph built from it then
carries the values, and on ``dask.distributed`` the client ships them to the
scheduler inside the graph. :func:`lazy_data` wraps such a variable in a Dask
array instead (as ``open_dataset(..., chunks=...)`` would), so each task reads
its own part of the file where it runs and the graph holds only the file's name.
In-memory data (NumPy, CuPy) and Dask data are returned as they are.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any

import xarray as xr

__all__ = ["chunk_file_backed", "is_dask", "is_file_backed", "lazy_data", "netcdf_reads"]

#: bytes per Dask chunk of a variable read lazily from a file (along its first dim)
FILE_CHUNK_BYTES = 64 * 2**20


def is_dask(x: Any) -> bool:
    """Whether ``x`` is a Dask array (duck-typed: Dask need not be imported)."""
    return hasattr(x, "dask") and hasattr(x, "chunks")


def is_file_backed(var: xr.Variable) -> bool:
    """Whether ``var`` is still in its file: xarray reads it lazily on access."""
    from xarray.core import indexing

    data = var._data
    return isinstance(data, indexing.ExplicitlyIndexed) and not var._in_memory


def _rows_per_chunk(var: xr.Variable, chunk_bytes: int) -> int:
    """Rows along the first dimension of ``var`` in a chunk of about ``chunk_bytes``."""
    row = max(1, var.dtype.itemsize * (var.size // max(var.shape[0], 1)))
    return max(1, min(var.shape[0], chunk_bytes // row))


def lazy_data(var: xr.Variable, *, chunk_bytes: int = FILE_CHUNK_BYTES) -> Any:
    """``var.data``, as a Dask array reading the file when ``var`` is still in it.

    The file-backed array is cut along its first dimension into chunks of about
    ``chunk_bytes`` (other dimensions whole).

    Examples
    --------
    >>> import numpy as np, os, tempfile, xarray as xr
    >>> path = os.path.join(tempfile.mkdtemp(), "x.nc")
    >>> xr.Dataset({"x": (("a", "b"), np.ones((4, 3)))}).to_netcdf(path)
    >>> with xr.open_dataset(path) as ds:
    ...     data = lazy_data(ds["x"].variable, chunk_bytes=48)
    ...     data.chunks, float(data.sum().compute())
    (((2, 2), (3,)), 12.0)
    >>> type(lazy_data(xr.Variable("a", np.ones(2)))).__name__
    'ndarray'
    """
    if not is_file_backed(var):
        return var.data
    if var.ndim == 0:
        return var.chunk().data
    rows = _rows_per_chunk(var, chunk_bytes)
    return var.chunk({var.dims[0]: rows, **{d: -1 for d in var.dims[1:]}}).data


def chunk_file_backed(
    ds: xr.Dataset, names: Iterable[Hashable], *, chunk_bytes: int = FILE_CHUNK_BYTES
) -> xr.Dataset:
    """``ds`` with the file-backed variables among ``names`` as Dask arrays (a copy).

    Variables in memory or already in Dask are left as they are.
    """
    todo = [n for n in names if n in ds.variables and is_file_backed(ds[n].variable)]
    if not todo:
        return ds
    ds = ds.copy(deep=False)
    for name in todo:
        var = ds[name].variable
        ds[name] = var.copy(data=lazy_data(var, chunk_bytes=chunk_bytes))
    return ds


def _read_netcdf_block(
    path: str, name: str, dtype: Any, block_info: dict[Any, Any] | None = None
) -> Any:
    """One block of variable ``name`` of a netCDF file: opened, read and closed here."""
    import netCDF4
    import numpy as np

    if block_info is None:  # Dask probing the function: an empty block of the right type
        return np.empty((0,), dtype=dtype)
    location = block_info[None]["array-location"]
    with netCDF4.Dataset(path) as nc:
        var = nc.variables[name]
        var.set_auto_maskandscale(False)  # ensemblex writes plain float arrays
        return np.asarray(var[tuple(slice(a, b) for a, b in location)], dtype=dtype)


def netcdf_reads(
    ds: xr.Dataset, path: str, names: Iterable[Hashable], *, chunk_bytes: int = FILE_CHUNK_BYTES
) -> xr.Dataset:
    """``ds`` (opened from the netCDF file ``path``) with ``names`` as per-task reads.

    Each Dask task opens the file, reads its block and closes it, wherever it
    runs: no file handle travels in the graph or stays open in the client,
    which only reads the file's metadata. For inputs of a ``dask.distributed``
    computation, so the workers read their chunks.
    """
    import dask.array as da
    import numpy as np

    ds = ds.copy(deep=False)
    for name in names:
        var = ds[name].variable
        rows = _rows_per_chunk(var, chunk_bytes)
        chunks = (
            tuple(min(rows, var.shape[0] - s) for s in range(0, var.shape[0], rows)),
            *((n,) for n in var.shape[1:]),
        )
        data = da.map_blocks(
            _read_netcdf_block,
            str(path),
            str(name),
            var.dtype,
            chunks=chunks,
            dtype=var.dtype,
            meta=np.empty((0,) * var.ndim, dtype=var.dtype),
        )
        ds[name] = xr.Variable(var.dims, data, var.attrs, var.encoding)
    for other in ds.variables.values():
        if not is_dask(other.data):
            other.load()  # labels, coordinates: small, read now, before the file closes
    return ds
