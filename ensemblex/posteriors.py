"""The Posteriors dataset: ``mean`` and ``logvar`` with dims (model, latent, sample).

The data model of docs/design.md section 2, and the one validator every entry
point (accessor, CLI, file readers) uses for it.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from ._checks import check_dims, check_finite
from ._kinds import stamp
from ._lazy import is_dask
from ._namespace import get_namespace
from .errors import InputError, InputTypeError

__all__ = ["POSTERIOR_DIMS", "posteriors", "validate_posteriors"]

POSTERIOR_DIMS = ("model", "latent", "sample")
_AXES = dict(enumerate(POSTERIOR_DIMS))


def _check_block_finite(block: Any, name: str, block_info: Any = None) -> Any:
    """Chunk-wise finiteness check for Dask inputs: raises when the chunk is computed."""
    offset = None
    if block_info and None in block_info:
        offset = tuple(lo for lo, _ in block_info[None]["array-location"])
    check_finite(get_namespace(block), block, name, axis_names=_AXES, offset=offset)
    return block


def _as_float32(x: Any, name: str) -> Any:
    if isinstance(x, xr.DataArray):
        x = x.data
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        x = np.asarray(x)
    if x.ndim != 3:
        raise InputError(
            f"{name} must have dims {POSTERIOR_DIMS} (3 axes); got shape {tuple(x.shape)}. "
            "A single model's (latent, sample) array needs a leading model axis: x[None]."
        )
    if is_dask(x):
        x = x.astype("float32")
        return x.map_blocks(_check_block_finite, name, dtype=x.dtype, meta=x._meta)
    xp = get_namespace(x)
    if not (xp.isdtype(x.dtype, "real floating") or xp.isdtype(x.dtype, "integral")):
        raise InputTypeError(f"{name} must hold real numbers; got dtype {x.dtype}.")
    x = xp.astype(x, xp.float32)
    check_finite(xp, x, name, axis_names=_AXES)
    return x


def _labels_array(labels: Any, n_sample: int) -> np.ndarray:
    labels = np.asarray(labels.data if isinstance(labels, xr.DataArray) else labels)
    if labels.ndim == 1:
        labels = labels[None, :]
    if labels.ndim != 2 or labels.shape[1] != n_sample:
        raise InputError(
            f"labels must have dims ('factor', 'sample') with {n_sample} samples; "
            f"got shape {labels.shape}."
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise InputTypeError(
            f"labels must be integer class indices; got dtype {labels.dtype}. "
            "Map factor values to integers first (e.g. np.unique(values, return_inverse=True))."
        )
    return labels.astype(np.int64)


def posteriors(
    mean: Any,
    logvar: Any,
    *,
    labels: Any = None,
    factor_names: Sequence[Hashable] | None = None,
    coords: Mapping[Hashable, Any] | None = None,
) -> xr.Dataset:
    """Build a validated Posteriors dataset.

    Parameters
    ----------
    mean, logvar
        Posterior means and log-variances, shape ``(model, latent, sample)``:
        NumPy, Dask or CuPy arrays. Stored as float32. Dask inputs stay lazy and
        are checked chunk by chunk when computed.
    labels
        Optional ground-truth factors, integers of shape ``(factor, sample)``.
    factor_names
        Names of the factors (the ``factor`` coordinate); ``0..F-1`` by default.
    coords
        Extra coordinates. A value given as ``(dim, values)`` goes on that dim
        (e.g. ``{"sample": ("sample", ids)}``); a plain sequence of length
        ``model`` becomes a per-model setting (``{"beta": [1, 4], "seed": [0, 0]}``).

    Returns
    -------
    xr.Dataset
        ``mean`` and ``logvar`` (model, latent, sample), float32; ``labels``
        (factor, sample) when given.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> post = posteriors(rng.normal(size=(2, 3, 50)), np.full((2, 3, 50), -1.0),
    ...                   coords={"beta": [1.0, 4.0]})
    >>> dict(post.sizes)
    {'model': 2, 'latent': 3, 'sample': 50}
    >>> post.beta.dims
    ('model',)
    >>> posteriors(np.zeros((1, 1, 3)), np.array([[[0.0, np.nan, 0.0]]]))
    Traceback (most recent call last):
    ...
    ensemblex.errors.InputError: logvar has a non-finite value (nan) at model=0, latent=0, sample=1; inputs must be finite.
    """
    mean = _as_float32(mean, "mean")
    logvar = _as_float32(logvar, "logvar")
    if tuple(mean.shape) != tuple(logvar.shape):
        raise InputError(
            f"mean and logvar must have the same shape (model, latent, sample); got "
            f"{tuple(mean.shape)} and {tuple(logvar.shape)}."
        )
    n_model, n_latent, n_sample = (int(s) for s in mean.shape)
    if n_sample < 2:
        raise InputError(f"posteriors need at least 2 samples; got {n_sample}.")
    ds = xr.Dataset(
        {"mean": (POSTERIOR_DIMS, mean), "logvar": (POSTERIOR_DIMS, logvar)},
        coords={
            "model": np.arange(n_model),
            "latent": np.arange(n_latent),
            "sample": np.arange(n_sample),
        },
    )
    for name, value in (coords or {}).items():
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
            ds = ds.assign_coords({name: value})
        else:
            values = np.asarray(value)
            if values.ndim != 1 or len(values) != n_model:
                raise InputError(
                    f"coordinate {name!r} must have one value per model ({n_model}); got "
                    f"shape {values.shape}. Use (dim, values) to put it on another dim."
                )
            ds = ds.assign_coords({name: ("model", values)})
    if labels is not None:
        lab = _labels_array(labels, n_sample)
        names = list(factor_names) if factor_names is not None else list(range(lab.shape[0]))
        if len(names) != lab.shape[0]:
            raise InputError(
                f"factor_names has {len(names)} names for {lab.shape[0]} label factors."
            )
        ds["labels"] = (("factor", "sample"), lab)
        ds = ds.assign_coords(factor=names)
    elif factor_names is not None:
        raise InputError("factor_names was given without labels.")
    return stamp(ds, "posteriors")


def validate_posteriors(ds: xr.Dataset, *, what: str = "the dataset") -> xr.Dataset:
    """Check that ``ds`` is a usable Posteriors dataset and return it stamped.

    Accepts datasets written by plain xarray, so models trained elsewhere plug
    in: ``mean`` and ``logvar`` with dims (model, latent, sample), any order.
    Values are checked eagerly for NumPy data and chunk by chunk for Dask data.

    Examples
    --------
    >>> import xarray as xr, numpy as np
    >>> bad = xr.Dataset({"mean": (("model", "z", "sample"), np.zeros((1, 1, 2)))})
    >>> validate_posteriors(bad)
    Traceback (most recent call last):
    ...
    ensemblex.errors.InputError: the dataset needs variables 'mean' and 'logvar' with dims (model, latent, sample); 'logvar' is missing.
    """
    missing = [v for v in ("mean", "logvar") if v not in ds.data_vars]
    if missing:
        raise InputError(
            f"{what} needs variables 'mean' and 'logvar' with dims (model, latent, sample); "
            f"{', '.join(repr(m) for m in missing)} {'is' if len(missing) == 1 else 'are'} missing."
        )
    for name in ("mean", "logvar"):
        check_dims(
            f"variable {name!r} of {what}",
            ds[name].dims,
            POSTERIOR_DIMS,
            exact=True,
            hint="Rename dims with ds.rename(...) or add one with ds.expand_dims(...).",
        )
    ds = ds.transpose(*POSTERIOR_DIMS, ...)
    extra = {k: v for k, v in ds.coords.items() if k not in POSTERIOR_DIMS and k != "factor"}
    out = posteriors(
        ds["mean"].data,
        ds["logvar"].data,
        labels=ds["labels"].transpose("factor", "sample").data if "labels" in ds else None,
        factor_names=list(ds["factor"].values)
        if "labels" in ds and "factor" in ds.coords
        else None,
    )
    out = out.assign_coords({d: ds[d].values for d in POSTERIOR_DIMS if d in ds.coords})
    out = out.assign_coords({k: v.variable for k, v in extra.items()})
    out.attrs = {**ds.attrs, **out.attrs}
    return out
