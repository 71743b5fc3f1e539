"""Rows of a dataset as float32 batches: what training and encoding read.

A dataset from :func:`ensemblex.load_dataset` (or a plain array) is split
into the array of its samples, its labels and its sample ids
(:func:`split_data`); batches are then gathered row by row
(:func:`gather_rows`). Dask-backed data compute only the rows of a batch, and
the lazy full dSprites set renders only those rows (:class:`RenderedRows`),
so training never materialises a whole large set. :func:`resize_images`
shrinks images by block pooling.

Examples
--------
>>> from ensemblex.datasets import load_dataset
>>> arr, labels, names, ids = split_data(load_dataset("ring", n_samples=6))
>>> arr.shape, labels.shape, [str(n) for n in names]
((6, 2), (1, 6), ['angle_bin'])
>>> gather_rows(arr, np.array([0, 0, 5])).dtype
dtype('float32')
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from .._checks import check_positive_int
from ..errors import InputError

__all__ = ["RenderedRows", "gather_rows", "resize_images", "split_data"]


class RenderedRows:
    """Lazy dSprites images: rows are rendered on demand from their flat indices.

    Gathering a random batch from the Dask-backed full set would compute whole
    chunks; rendering just the rows of the batch is exact and cheap.

    >>> rows = RenderedRows(np.array([0, 737279]), 16)
    >>> rows.shape, rows.rows(np.array([1])).shape
    ((2, 16, 16), (1, 16, 16))
    """

    def __init__(self, flat_indices: np.ndarray, size: int) -> None:
        self.flat = np.asarray(flat_indices, dtype=np.int64)
        self.size = int(size)
        self.shape = (self.flat.size, self.size, self.size)
        self.dtype = np.dtype(np.uint8)

    def rows(self, idx: np.ndarray) -> np.ndarray:
        """The images of rows ``idx``, rendered now."""
        from .dsprites import render_dsprites

        return render_dsprites(self.flat[idx], self.size)


def split_data(data: Any) -> tuple[Any, Any, Any, Any]:
    """``(array (N, ...), labels (F, N) or None, factor names or None, sample ids or None)``.

    ``data``: a dataset with ``images`` (sample, y, x) or ``x`` (sample,
    feature), a DataArray, or an array.
    """
    if isinstance(data, xr.Dataset):
        for name in ("images", "x"):
            if name in data.data_vars:
                arr = data[name].transpose("sample", ...).data
                if (
                    name == "images"
                    and hasattr(arr, "dask")
                    and data.attrs.get("dataset") == "dsprites"
                    and "sample" in data.coords
                ):
                    arr = RenderedRows(data["sample"].values, arr.shape[-1])
                break
        else:
            raise InputError(
                "data must hold 'images' (sample, y, x) or 'x' (sample, feature), as "
                f"load_dataset returns; got variables {sorted(map(str, data.data_vars))}."
            )
        labels = names = None
        if "labels" in data.data_vars:
            labels = np.asarray(data["labels"].transpose("factor", "sample").values)
            names = list(data["factor"].values) if "factor" in data.coords else None
        ids = data["sample"].values if "sample" in data.coords else None
        return arr, labels, names, ids
    if isinstance(data, xr.DataArray):
        data = data.data
    if not hasattr(data, "shape"):
        data = np.asarray(data)
    return data, None, None, None


def is_lazy(arr: Any) -> bool:
    """Whether ``arr`` is read row by row (Dask or rendered), not held in memory."""
    return hasattr(arr, "dask") or isinstance(arr, RenderedRows)


def gather_rows(arr: Any, idx: np.ndarray) -> np.ndarray:
    """Rows ``idx`` of ``arr`` as float32; Dask arrays compute only the rows needed."""
    if isinstance(arr, RenderedRows):
        return arr.rows(idx).astype(np.float32)
    if hasattr(arr, "dask"):
        uniq, inverse = np.unique(idx, return_inverse=True)
        return np.asarray(arr[uniq].compute(), dtype=np.float32)[inverse]
    return np.asarray(arr[idx], dtype=np.float32)


def resize_images(ds: xr.Dataset, size: int) -> xr.Dataset:
    """Shrink the ``images`` of a dataset to ``size x size`` by block pooling.

    Binary images (dSprites) are max-pooled, so they stay binary; others are
    mean-pooled. The side must be a multiple of ``size``; datasets without
    images (the ring) are returned as they are.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"images": (("sample", "y", "x"), np.eye(4, dtype="uint8")[None])})
    >>> resize_images(ds, 2)["images"].values.tolist()
    [[[1, 0], [0, 1]]]
    """
    size = check_positive_int("image_size", size)
    if "images" not in ds:
        return ds
    ny, nx = ds.sizes["y"], ds.sizes["x"]
    if (ny, nx) == (size, size):
        return ds
    if ny % size or nx % size:
        raise InputError(
            f"image_size {size} must divide the image side ({ny} x {nx}); e.g. "
            f"{ny // 2} or {ny // 4}."
        )
    images = ds["images"].coarsen(y=ny // size, x=nx // size)
    pooled = images.max() if ds["images"].dtype == np.uint8 else images.mean()
    out = ds.drop_vars("images").assign(images=pooled.astype(ds["images"].dtype))
    out.attrs = {**ds.attrs, "image_size": size}
    return out
