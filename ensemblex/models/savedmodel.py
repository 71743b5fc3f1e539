"""Posteriors of released models: TensorFlow SavedModels with a ``gaussian_encoder`` signature.

disentanglement_lib exports its models with a signature ``gaussian_encoder``
that takes ``images`` (float32, ``(batch, H, W, C)`` in [0, 1]) and returns
``mean`` and ``logvar`` ``(batch, latent)``. Any SavedModel with that
signature loads here.

**Security:** loading a SavedModel runs the graph it contains. Only load
models you trust.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from .._checks import check_positive_int
from ..errors import InputError
from ._tf import require_tf

__all__ = ["posteriors_from_savedmodels"]


def posteriors_from_savedmodels(
    paths: Sequence[str | os.PathLike[str]],
    data: Any,
    *,
    batch_size: int = 256,
    signature: str = "gaussian_encoder",
    input_name: str = "images",
    coords: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """Encode ``data`` with every SavedModel in ``paths``: a Posteriors dataset.

    Loading a SavedModel runs its graph: **only load models you trust.**

    Parameters
    ----------
    paths
        SavedModel folders, one model each (the ``model`` axis, in this order).
    data
        A dataset from :func:`ensemblex.load_dataset` (``images``; labels are
        carried along) or an array ``(sample, H, W[, C])``. A channel axis is
        added when the signature wants one.
    batch_size
        Images per call.
    signature, input_name
        The signature and its input (disentanglement_lib: ``gaussian_encoder``,
        ``images``); it must return ``mean`` and ``logvar``.
    coords
        Extra per-model coordinates (e.g. ``{"beta": [1, 4]}``); ``path`` is
        always added.

    Returns
    -------
    xr.Dataset
        Posteriors ``(model, latent, sample)``.

    Examples
    --------
    >>> import tempfile, numpy as np, tensorflow as tf
    >>> class Encoder(tf.Module):
    ...     @tf.function(input_signature=[tf.TensorSpec([None, 4, 4, 1], tf.float32)])
    ...     def encode(self, images):
    ...         flat = tf.reshape(images, [-1, 16])
    ...         return {"mean": flat[:, :2], "logvar": -flat[:, 2:4]}
    >>> with tempfile.TemporaryDirectory() as d:
    ...     enc = Encoder()
    ...     tf.saved_model.save(enc, d, signatures={"gaussian_encoder": enc.encode})
    ...     post = posteriors_from_savedmodels([d], np.ones((3, 4, 4), np.float32))
    >>> dict(post.sizes), float(post.logvar[0, 0, 0])
    ({'model': 1, 'latent': 2, 'sample': 3}, -1.0)
    """
    from ..datasets.rows import gather_rows as _gather
    from ..datasets.rows import split_data as _split_data
    from ..posteriors import posteriors

    tf = require_tf()
    batch_size = check_positive_int("batch_size", batch_size)
    paths = [os.fspath(p) for p in paths]
    if not paths:
        raise InputError("paths is empty; give at least one SavedModel folder.")
    arr, labels, names, ids = _split_data(data)
    means, logvars = [], []
    for path in paths:
        if not os.path.isdir(path):
            raise FileNotFoundError(f"{path!r} is not a SavedModel folder.")
        loaded = tf.saved_model.load(path)
        if signature not in loaded.signatures:
            raise InputError(
                f"SavedModel {path!r} has no signature {signature!r}; it has "
                f"{sorted(loaded.signatures)}."
            )
        fn = loaded.signatures[signature]
        specs = fn.structured_input_signature[1]
        if input_name not in specs:
            raise InputError(
                f"signature {signature!r} of {path!r} takes {sorted(specs)}, not {input_name!r}."
            )
        rank = specs[input_name].shape.rank
        mean_parts, logvar_parts = [], []
        for start in range(0, arr.shape[0], batch_size):
            xb = _gather(arr, np.arange(start, min(start + batch_size, arr.shape[0])))
            if rank is not None and xb.ndim == rank - 1:
                xb = xb[..., None]
            out = fn(**{input_name: tf.constant(xb)})
            missing = {"mean", "logvar"} - set(out)
            if missing:
                raise InputError(
                    f"signature {signature!r} of {path!r} returns {sorted(out)}; "
                    "it must return 'mean' and 'logvar'."
                )
            mean_parts.append(np.asarray(out["mean"]).reshape(xb.shape[0], -1))
            logvar_parts.append(np.asarray(out["logvar"]).reshape(xb.shape[0], -1))
        means.append(np.concatenate(mean_parts).T)
        logvars.append(np.concatenate(logvar_parts).T)
    latent_sizes = {m.shape[0] for m in means}
    if len(latent_sizes) > 1:
        raise InputError(
            f"the models have different latent sizes {sorted(latent_sizes)}; load models of "
            "one latent size together (or pad them yourself)."
        )
    all_coords: dict[Hashable, Any] = {"path": paths}
    all_coords.update(coords or {})
    if ids is not None:
        all_coords["sample"] = ("sample", np.asarray(ids))
    return posteriors(
        np.stack(means),
        np.stack(logvars),
        labels=labels,
        factor_names=names if labels is not None else None,
        coords=all_coords,
    )
