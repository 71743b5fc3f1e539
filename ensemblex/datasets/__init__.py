"""Offline datasets: dSprites (procedural), the ring toy, digits, MNIST/Fashion-MNIST.

Nothing here touches the network or TensorFlow. Every loader returns an
``xr.Dataset`` with the data (``images (sample, y, x)`` or ``x (sample,
feature)``) and integer factor indices ``labels (factor, sample)`` whose
``factor`` coordinate names the factors.

Examples
--------
>>> from ensemblex.datasets import load_dataset
>>> ds = load_dataset("ring", n_samples=100)
>>> dict(ds.sizes)
{'sample': 100, 'feature': 2, 'factor': 1}
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import xarray as xr

from .._checks import check_option, check_positive_int
from ..errors import InputError, InputTypeError
from . import dsprites as _dsprites
from .dsprites import iter_dsprites, render_dsprites
from .idx import read_idx, write_idx

__all__ = ["DATASETS", "iter_dsprites", "load_dataset", "read_idx", "render_dsprites", "write_idx"]

DatasetName = Literal["dsprites", "ring", "digits", "mnist", "fashion_mnist"]
DATASETS: tuple[str, ...] = ("dsprites", "ring", "digits", "mnist", "fashion_mnist")

# above this many images the dSprites images are Dask-backed unless lazy=False
_LAZY_THRESHOLD = 65_536
_DSPRITES_CHUNK = 4096


def load_dataset(
    name: DatasetName, *, n_samples: int | None = None, seed: int = 0, **options: Any
) -> xr.Dataset:
    """Load one of the offline datasets as an ``xr.Dataset``.

    Parameters
    ----------
    name
        ``"dsprites"``, ``"ring"``, ``"digits"``, ``"mnist"`` or ``"fashion_mnist"``.
    n_samples
        Draw this many samples at random (without replacement, kept in dataset
        order) from the selection; ``None`` keeps all of it. For ``"ring"`` it is
        the number of points (200 by default).
    seed
        Seed of the random draw (repeatable).
    **options
        Per dataset:

        - ``dsprites``: ``factors`` (mapping factor name to allowed factor
          indices, e.g. ``{"shape": 2}``), ``indices`` (explicit flat indices),
          ``lazy`` (Dask-backed images; default: when over 65,536 images),
          ``size`` (image side, 64; e.g. 32 draws the same scenes at half
          the resolution, for cheap demos).
        - ``ring``: ``spacing`` (``"even"``: angles ``2 pi k / N``, the
          fingerprint sample; ``"random"``: uniform angles), ``n_bins`` (angle
          bins for the label, 8), ``noise`` (std of Gaussian noise added to the
          points, 0).
        - ``digits``: ``pad`` (zero pixels added on each side of the 8 x 8
          images, 0), ``size`` (resize to ``size x size`` by bilinear
          interpolation, after padding).
        - ``mnist`` / ``fashion_mnist``: ``path`` (required: the folder with the
          IDX files, plain or gzipped), ``split`` (``"train"`` or ``"test"``).

    Returns
    -------
    xr.Dataset
        ``images (sample, y, x)`` (dSprites: uint8 0/1; others: float32 in
        [0, 1]) or ``x (sample, feature)`` (ring, float32), and ``labels
        (factor, sample)`` int64 with the factor names as ``factor`` coordinate.

    Examples
    --------
    >>> ds = load_dataset("dsprites", n_samples=8, seed=1)
    >>> ds.images.shape, ds.factor.values.tolist()
    ((8, 64, 64), ['shape', 'scale', 'orientation', 'posX', 'posY'])
    >>> load_dataset("digits", n_samples=5, size=16).images.shape
    (5, 16, 16)
    """
    check_option("name", name, DATASETS)
    seed = int(seed)
    if n_samples is not None:
        n_samples = check_positive_int("n_samples", n_samples)
    loaders: dict[str, Callable[..., xr.Dataset]] = {
        "dsprites": _load_dsprites,
        "ring": _load_ring,
        "digits": _load_digits,
        "mnist": _load_mnist,
        "fashion_mnist": _load_mnist,
    }
    try:
        return loaders[name](name, n_samples, seed, **options)
    except TypeError as err:
        if "unexpected keyword argument" in str(err):
            raise InputTypeError(
                f"load_dataset({name!r}): {err}. See load_dataset's docstring "
                "for the options of each dataset."
            ) from None
        raise


def _subsample(n_total: int, n_samples: int | None, seed: int) -> np.ndarray:
    """Indices of a random subset, sorted (dataset order); all when ``n_samples`` is None."""
    if n_samples is None:
        return np.arange(n_total)
    if n_samples > n_total:
        raise InputError(f"n_samples={n_samples} exceeds the {n_total} samples available.")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_total, size=n_samples, replace=False))


def _load_dsprites(
    name: str,
    n_samples: int | None,
    seed: int,
    *,
    factors: Any = None,
    indices: Any = None,
    lazy: bool | None = None,
    size: int = 64,
) -> xr.Dataset:
    size = check_positive_int("size", size, minimum=8)
    selection = _dsprites.select_dsprites(factors, indices)
    flat = selection[_subsample(selection.size, n_samples, seed)]
    labels = _dsprites.dsprites_labels(flat)
    if lazy is None:
        lazy = flat.size > _LAZY_THRESHOLD
    if lazy:
        import dask.array as da

        idx = da.from_array(flat, chunks=_DSPRITES_CHUNK)
        images = idx.map_blocks(
            _dsprites.render_dsprites,
            size,
            new_axis=[1, 2],
            chunks=(idx.chunks[0], (size,), (size,)),
            dtype=np.uint8,
            meta=np.empty((0, 0, 0), dtype=np.uint8),
        )
    else:
        images = _dsprites.render_dsprites(flat, size)
    ds = xr.Dataset(
        {
            "images": (("sample", "y", "x"), images),
            "labels": (("factor", "sample"), labels),
            "factor_values": (("factor", "sample"), _dsprites.dsprites_factor_values(labels)),
        },
        coords={"sample": flat, "factor": list(_dsprites.FACTOR_NAMES)},
        attrs={
            "dataset": "dsprites",
            "description": "dSprites regenerated procedurally from its factor grid "
            "(shape, scale, orientation, posX, posY); same factors and index order as the "
            "original, not the original pixels. sample = flat index in the 737,280 grid.",
            "shape_names": list(_dsprites.SHAPE_NAMES),
        },
    )
    return ds


def _load_ring(
    name: str,
    n_samples: int | None,
    seed: int,
    *,
    spacing: Literal["even", "random"] = "even",
    n_bins: int = 8,
    noise: float = 0.0,
) -> xr.Dataset:
    check_option("spacing", spacing, ("even", "random"))
    n_bins = check_positive_int("n_bins", n_bins)
    n = 200 if n_samples is None else n_samples
    rng = np.random.default_rng(seed)
    if spacing == "even":
        angle = np.arange(n) * (2.0 * np.pi / n)
    else:
        angle = rng.uniform(0.0, 2.0 * np.pi, size=n)
    x = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    if noise:
        if noise < 0:
            raise InputError(f"noise must be >= 0; got {noise!r}.")
        x = x + rng.normal(scale=noise, size=x.shape)
    bins = np.minimum((angle / (2.0 * np.pi) * n_bins).astype(np.int64), n_bins - 1)
    return xr.Dataset(
        {
            "x": (("sample", "feature"), x.astype(np.float32)),
            "angle": ("sample", angle.astype(np.float32)),
            "labels": (("factor", "sample"), bins[None, :]),
        },
        coords={"sample": np.arange(n), "feature": ["x", "y"], "factor": ["angle_bin"]},
        attrs={"dataset": "ring", "description": "points on the unit circle (SO(2) toy)"},
    )


def _load_digits(
    name: str, n_samples: int | None, seed: int, *, pad: int = 0, size: int | None = None
) -> xr.Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images.astype(np.float32) / 16.0  # (1797, 8, 8) in [0, 1]
    target = bunch.target.astype(np.int64)
    keep = _subsample(images.shape[0], n_samples, seed)
    images, target = images[keep], target[keep]
    pad = check_positive_int("pad", pad, minimum=0)
    if pad:
        images = np.pad(images, ((0, 0), (pad, pad), (pad, pad)))
    if size is not None:
        size = check_positive_int("size", size)
        images = _resize(images, size)
    return xr.Dataset(
        {
            "images": (("sample", "y", "x"), images),
            "labels": (("factor", "sample"), target[None, :]),
        },
        coords={"sample": keep, "factor": ["digit"]},
        attrs={"dataset": "digits", "description": "scikit-learn's handwritten digits (8x8)"},
    )


def _resize(images: np.ndarray, size: int) -> np.ndarray:
    from scipy.ndimage import zoom

    h, w = images.shape[1:]
    out = zoom(images, (1.0, size / h, size / w), order=1, grid_mode=True, mode="nearest")
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _load_mnist(
    name: str,
    n_samples: int | None,
    seed: int,
    *,
    path: str | os.PathLike[str] | None = None,
    split: Literal["train", "test"] = "train",
) -> xr.Dataset:
    from .idx import FASHION_CLASSES, idx_file_names, load_idx_dataset

    if path is None:
        images, labels = idx_file_names(split)
        raise InputError(
            f"load_dataset({name!r}) needs path=... : the folder holding {images} and "
            f"{labels} (plain or .gz). ensemblex never downloads data."
        )
    raw, target = load_idx_dataset(path, split)
    keep = _subsample(raw.shape[0], n_samples, seed)
    attrs: dict[str, Any] = {"dataset": name, "split": split, "source": str(path)}
    if name == "fashion_mnist":
        attrs["class_names"] = list(FASHION_CLASSES)
    return xr.Dataset(
        {
            "images": (("sample", "y", "x"), raw[keep].astype(np.float32) / 255.0),
            "labels": (("factor", "sample"), target[keep][None, :]),
        },
        coords={"sample": keep, "factor": ["digit" if name == "mnist" else "class"]},
        attrs=attrs,
    )
