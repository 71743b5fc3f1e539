"""Fingerprints: lazy Bhattacharyya matrices of channels, built from posteriors or labels.

The Fingerprints dataset of docs/design.md section 2:

- ``bc`` float32 ``(channel, sample_i, sample_j)``, a lazy Dask array chunked
  ``(channel_chunk, sample_chunk, N)``, generated block by block from
- the parameters ``channel_mean``, ``channel_logvar`` float32
  ``(channel, component, sample)`` (a d-dim subspace channel uses components
  ``0..d-1``; unused components and label channels hold mean 0, logvar 0, a BC
  factor of exactly 1) and, when some channel is a label channel,
  ``channel_label`` int64 ``(channel, sample)`` (Gaussian channels hold 0, a
  factor of exactly 1). So every channel's fingerprint is::

      bc = BC_gauss(channel_mean, channel_logvar) * [channel_label_i == channel_label_j]

  and the pairwise engine can regenerate any block of rows without reading ``bc``.
- Non-index coordinates on ``channel``: ``model`` (-1 for label channels),
  ``latent`` (-1 for label and multi-latent channels), ``kind``
  (``"gaussian"``/``"label"``), ``factor`` (factor name for label channels,
  ``""`` otherwise), and every per-model setting of the posteriors.
- ``labels`` ``(factor, sample)`` carried over from the posteriors. The
  ``factor`` *dimension* of ``labels`` has its names in the coordinate
  ``factor_name``: the name ``factor`` is taken by the per-channel coordinate.

Nothing of size C*N*N is materialised unless the user computes or saves ``bc``.
Fingerprints of different posteriors over the same samples combine with
:func:`concat_fingerprints`.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, Literal

import numpy as np
import xarray as xr

from ._checks import check_dims, check_option, check_positive_int
from ._kinds import stamp
from ._lazy import chunk_file_backed, is_dask
from ._namespace import get_namespace, to_numpy
from .errors import InputError, InputTypeError
from .estimators import bhattacharyya_between, label_coefficients
from .posteriors import validate_posteriors

__all__ = [
    "FINGERPRINT_DIMS",
    "PARAMETER_DIMS",
    "concat_fingerprints",
    "fingerprint",
    "info",
    "label_fingerprints",
    "select_channels",
    "validate_fingerprints",
]

FINGERPRINT_DIMS = ("channel", "sample_i", "sample_j")
PARAMETER_DIMS = ("channel", "component", "sample")
#: the variables ``bc`` is generated from
_PARAMS = ("channel_mean", "channel_logvar", "channel_label")

Channels = Literal["latent", "model"] | Sequence[Sequence[int]]

#: elements of the (channel, sample_i, component, sample_j) work array of one task
#: by default: 2**22 float32 = 16 MiB, so a task with its temporaries is ~100 MiB
_TARGET_ELEMENTS = 2**22

# names a per-model setting may not have: they are the Fingerprints' own coordinates
_RESERVED = frozenset(
    {
        "channel",
        "component",
        "sample",
        "sample_i",
        "sample_j",
        "model",
        "latent",
        "kind",
        "factor",
        "factor_name",
    }
)


# -- helpers ---------------------------------------------------------------------------


def _default_chunks(
    n_channel: int,
    n_sample: int,
    n_component: int,
    channel_chunk: int | None,
    sample_chunk: int | None,
) -> tuple[int, int]:
    """Chunk sizes along ``channel`` and ``sample_i``: given, or ~16 MiB work arrays."""
    per_row = n_sample * max(n_component, 1)  # elements of one (channel, i) row
    if sample_chunk is None:
        sample_chunk = max(1, min(n_sample, _TARGET_ELEMENTS // per_row))
    sample_chunk = min(check_positive_int("sample_chunk", sample_chunk), n_sample)
    if channel_chunk is None:
        channel_chunk = max(1, _TARGET_ELEMENTS // (sample_chunk * per_row))
    channel_chunk = min(check_positive_int("channel_chunk", channel_chunk), max(n_channel, 1))
    return channel_chunk, sample_chunk


def _groups(channels: Any, n_latent: int) -> tuple[str, list[list[int]]]:
    """Return ``(mode, groups)``: the latent positions of each channel of one model."""
    if isinstance(channels, str):
        check_option("channels", channels, ("latent", "model"))
        if channels == "latent":
            return "latent", [[k] for k in range(n_latent)]
        return "model", [list(range(n_latent))]
    if not isinstance(channels, Sequence) or len(channels) == 0:
        raise InputTypeError(
            "channels must be 'latent', 'model' or a non-empty list of latent-index groups "
            f"such as [[0, 1], [2]]; got {channels!r}."
        )
    groups = []
    for group in channels:
        members = [group] if hasattr(group, "__index__") else group
        if not isinstance(members, Sequence) or isinstance(members, str) or not members:
            raise InputTypeError(
                f"each channel group must be a non-empty list of latent indices; got {group!r}."
            )
        out = []
        for k in members:
            if isinstance(k, bool) or not hasattr(k, "__index__"):
                raise InputTypeError(
                    f"latent indices must be integers; got {k!r} in group {group!r}."
                )
            k = int(k)
            if not 0 <= k < n_latent:
                raise InputError(
                    f"latent index {k} in group {group!r} is out of range: the posteriors have "
                    f"{n_latent} latents (indices 0..{n_latent - 1})."
                )
            out.append(k)
        if len(set(out)) != len(out):
            raise InputError(f"channel group {group!r} repeats a latent.")
        groups.append(out)
    return "groups", groups


def _pad_components(x: Any, n_component: int) -> Any:
    """Pad axis 1 of ``(c, k, n)`` with mean 0 / logvar 0 components up to ``n_component``.

    A padded component is the same posterior N(0, 1) for every sample: its BC
    factor is exactly 1, so it changes nothing.
    """
    k = int(x.shape[1])
    if k == n_component:
        return x
    xp = get_namespace(x)
    zeros = xp.zeros((int(x.shape[0]), n_component - k, int(x.shape[2])), dtype=x.dtype)
    return xp.concat([x, zeros], axis=1)


def _pad(x: Any, n_component: int) -> Any:
    """:func:`_pad_components` for NumPy, CuPy and (lazily) Dask arrays."""
    if int(x.shape[1]) == n_component:
        return x
    if is_dask(x):
        x = x.rechunk({1: -1})
        return x.map_blocks(
            _pad_components,
            n_component,
            chunks=(x.chunks[0], (n_component,), x.chunks[2]),
            dtype=x.dtype,
            meta=x._meta,
        )
    return _pad_components(x, n_component)


def _gather(x: Any, mode: str, groups: list[list[int]], n_component: int) -> Any:
    """``(model, latent, sample)`` -> ``(model * n_group, n_component, sample)``, model-major."""
    n_model, n_latent, n_sample = (int(s) for s in x.shape)
    if mode == "latent":
        shape = (n_model * n_latent, 1, n_sample)
        return x.reshape(shape) if is_dask(x) else get_namespace(x).reshape(x, shape)
    if mode == "model":
        return x
    if is_dask(x):
        import dask.array as da

        parts = [_pad(x[:, g, :], n_component) for g in groups]
        stacked = da.stack(parts, axis=1)
        return stacked.reshape((n_model * len(groups), n_component, n_sample))
    xp = get_namespace(x)
    parts = [_pad(xp.take(x, xp.asarray(g), axis=1), n_component) for g in groups]
    stacked = xp.stack(parts, axis=1)
    return xp.reshape(stacked, (n_model * len(groups), n_component, n_sample))


#: float32 bytes of ``bc`` computed at once inside one block (a few channels)
_PIECE_BYTES = 2**22


def _bc_block(
    mean_i: Any,
    logvar_i: Any,
    mean_all: Any,
    logvar_all: Any,
    label_i: Any = None,
    label_all: Any = None,
) -> Any:
    """One ``(channel, sample_i, sample_j)`` block of ``bc`` from its parameters.

    Computed a few channels at a time: the estimator holds about ten arrays of
    its input's size at once, so a whole block of 46 channels of N = 300 took
    about 150 MB per thread for a 16.5 MB result (and the process kept it).
    """
    xp = get_namespace(mean_i, logvar_i, mean_all, logvar_all)
    perm = (0, 2, 1)  # (c, component, n) -> (c, n, component)
    n_channel = int(mean_i.shape[0])
    step = max(1, _PIECE_BYTES // max(1, 4 * int(mean_i.shape[2]) * int(mean_all.shape[2])))
    pieces = []
    for a in range(0, n_channel, step):
        part = slice(a, min(a + step, n_channel))
        bc = bhattacharyya_between(
            xp.permute_dims(mean_i[part, ...], perm),
            xp.permute_dims(logvar_i[part, ...], perm),
            xp.permute_dims(mean_all[part, ...], perm),
            xp.permute_dims(logvar_all[part, ...], perm),
            multivariate=True,
        )
        bc = xp.astype(bc, xp.float32)
        if label_i is not None:
            bc = bc * label_coefficients(label_i[part, ...], label_all[part, ...], dtype=xp.float32)
        pieces.append(bc)
    return pieces[0] if len(pieces) == 1 else xp.concat(pieces, axis=0)


def _as_dask(x: Any, chunks: tuple[int, ...]) -> Any:
    import dask.array as da

    if is_dask(x):
        return x.rechunk(chunks)
    return da.from_array(x, chunks=chunks)


def _lazy_bc(
    channel_mean: Any,
    channel_logvar: Any,
    channel_label: Any,
    channel_chunk: int,
    sample_chunk: int,
) -> Any:
    """The lazy ``bc`` Dask array, one task per (channel block, sample_i block)."""
    import dask.array as da

    _, n_component, n_sample = (int(s) for s in channel_mean.shape)
    rows = (channel_chunk, n_component, sample_chunk)
    whole = (channel_chunk, n_component, n_sample)
    args: list[Any] = [
        _as_dask(channel_mean, rows),
        "cki",
        _as_dask(channel_logvar, rows),
        "cki",
        _as_dask(channel_mean, whole),
        "ckj",
        _as_dask(channel_logvar, whole),
        "ckj",
    ]
    if channel_label is not None:
        args += [
            _as_dask(channel_label, (channel_chunk, sample_chunk)),
            "ci",
            _as_dask(channel_label, (channel_chunk, n_sample)),
            "cj",
        ]
    meta_source = args[0]._meta
    xp = get_namespace(meta_source)
    meta = xp.empty((0, 0, 0), dtype=xp.float32)
    return da.blockwise(
        _bc_block,
        "cij",
        *args,
        dtype=np.float32,
        meta=meta,
        concatenate=True,
        name="fingerprint-bc-" + _token(args),
    )


def _token(args: list[Any]) -> str:
    from dask.base import tokenize

    return tokenize(*args)


def _same_namespace(x: Any, like: Any) -> Any:
    """Put ``x`` (NumPy) in the array library of ``like`` (e.g. CuPy)."""
    if x is None or is_dask(like) or is_dask(x):
        return x
    xp = get_namespace(like)
    if get_namespace(x) is xp:
        return x
    return xp.asarray(to_numpy(x))


def _assemble(
    channel_mean: Any,
    channel_logvar: Any,
    channel_label: Any,
    channel_coords: dict[Hashable, Any],
    sample_ids: Any,
    *,
    sample_coords: dict[Hashable, Any] | None = None,
    labels: xr.DataArray | None = None,
    attrs: dict[str, Any] | None = None,
    channel_chunk: int | None = None,
    sample_chunk: int | None = None,
) -> xr.Dataset:
    """Build a Fingerprints dataset from its parameter arrays and channel coordinates."""
    n_channel, n_component, n_sample = (int(s) for s in channel_mean.shape)
    cc, sc = _default_chunks(n_channel, n_sample, n_component, channel_chunk, sample_chunk)
    if is_dask(channel_mean) or is_dask(channel_logvar):
        # lazy parameters stay lazy, one chunk per channel block
        channel_mean = _as_dask(channel_mean, (cc, n_component, n_sample))
        channel_logvar = _as_dask(channel_logvar, (cc, n_component, n_sample))
    if channel_label is not None and is_dask(channel_label):
        channel_label = channel_label.rechunk((cc, n_sample))
    channel_label = _same_namespace(channel_label, channel_mean)
    bc = _lazy_bc(channel_mean, channel_logvar, channel_label, cc, sc)
    data_vars: dict[Hashable, Any] = {
        "bc": (FINGERPRINT_DIMS, bc),
        "channel_mean": (PARAMETER_DIMS, channel_mean),
        "channel_logvar": (PARAMETER_DIMS, channel_logvar),
    }
    if channel_label is not None:
        data_vars["channel_label"] = (("channel", "sample"), channel_label)
    coords: dict[Hashable, Any] = {
        "channel": np.arange(n_channel),
        "component": np.arange(n_component),
        "sample": sample_ids,
        "sample_i": sample_ids,
        "sample_j": sample_ids,
    }
    coords.update({name: ("channel", values) for name, values in channel_coords.items()})
    coords.update({name: ("sample", values) for name, values in (sample_coords or {}).items()})
    ds = xr.Dataset(data_vars, coords=coords)
    if labels is not None:
        ds["labels"] = labels
    ds["bc"].attrs = {
        "long_name": "Bhattacharyya coefficient between the posteriors of samples i and j",
        "units": "1",
    }
    ds.attrs = dict(attrs or {})
    return stamp(ds, "fingerprints")


def _fingerprint_labels(labels: xr.DataArray) -> xr.DataArray:
    """Posteriors' ``labels`` (factor index coord) -> Fingerprints' (``factor_name``)."""
    names = (
        labels["factor"].values if "factor" in labels.coords else np.arange(labels.sizes["factor"])
    )
    out = labels.drop_vars([c for c in labels.coords if c != "sample"])
    return out.assign_coords(factor_name=("factor", names))


# -- public API ------------------------------------------------------------------------


def select_channels(fp: xr.Dataset, channels: Any) -> xr.Dataset:
    """``fp.sel(channel=channels)``, whose lazy ``bc`` computes only the chosen channels.

    The lazy ``bc`` of :func:`fingerprint` is generated a block of channels
    per task from ``channel_mean``, ``channel_logvar`` (and
    ``channel_label``). Selecting scattered channels from it with ``.sel``
    still computes every block they fall in: the biggest group of a
    20,000-channel ensemble, a tenth of the channels spread over every
    block, computed all 20,000 fingerprints (30 s instead of 3). Here that
    ``bc`` is generated again from the selected channels' parameters, with
    the same blocks of samples, so only they are computed, to the same
    values. Any other ``bc`` (in memory, read from a file, or already
    transformed) is selected as it is.

    Parameters
    ----------
    fp
        A Fingerprints dataset.
    channels
        ``channel`` coordinate values, as for ``fp.sel(channel=...)``.

    Returns
    -------
    xr.Dataset
        The Fingerprints of those channels.

    Examples
    --------
    >>> from ensemblex.testing import planted_ensemble
    >>> fp = fingerprint(planted_ensemble(n_models=4, n_latent=5, n_samples=20))
    >>> some = select_channels(fp, [3, 11, 17])
    >>> some["channel"].values.tolist(), bool((some["bc"] == fp["bc"].sel(channel=[3, 11, 17])).all())
    ([3, 11, 17], True)
    """
    sel = fp.sel(channel=channels)
    bc = fp["bc"].data
    generated = is_dask(bc) and str(getattr(bc, "name", "")).startswith("fingerprint-bc-")
    if not generated or not {"channel_mean", "channel_logvar"} <= set(fp.data_vars):
        return sel
    channel_chunk, sample_chunk = int(bc.chunks[0][0]), int(bc.chunks[1][0])
    label = sel["channel_label"].data if "channel_label" in sel.data_vars else None
    fresh = _lazy_bc(
        sel["channel_mean"].data, sel["channel_logvar"].data, label, channel_chunk, sample_chunk
    )
    out = sel.copy(deep=False)
    out["bc"] = xr.Variable(sel["bc"].dims, fresh, attrs=sel["bc"].attrs)
    return out


def fingerprint(
    post: xr.Dataset,
    channels: Channels = "latent",
    *,
    channel_chunk: int | None = None,
    sample_chunk: int | None = None,
) -> xr.Dataset:
    """Lazy Bhattacharyya fingerprints of the channels of a Posteriors dataset.

    Parameters
    ----------
    post
        Posteriors: ``mean`` and ``logvar`` with dims (model, latent, sample)
        (see :func:`ensemblex.posteriors`; plain-xarray datasets are accepted).
        NumPy, CuPy or Dask data; Dask data stay lazy (nothing is computed), and
        so do values not yet read from a file (``xr.open_dataset(path)``): they
        are read by the tasks that need them.
    channels
        ``"latent"``: one channel per (model, latent); ``"model"``: each model's
        whole latent space is one channel (``component`` = its latents); or a
        list of latent-index groups such as ``[[0, 1], [2]]``: each group is one
        subspace channel of every model. Channels are model-major:
        ``channel = model * n_groups + group``.
    channel_chunk, sample_chunk
        Dask chunk sizes of ``bc`` along ``channel`` and ``sample_i``; by default
        each task works on ~16 MiB (``sample_j`` is always whole).

    Returns
    -------
    xr.Dataset
        Fingerprints: lazy ``bc`` float32 (channel, sample_i, sample_j), its
        parameters ``channel_mean``, ``channel_logvar`` (channel, component,
        sample), channel coordinates ``model``, ``latent`` (-1 for multi-latent
        channels), ``kind``, ``factor`` and the per-model settings, and
        ``labels`` when the posteriors carry them.

    Examples
    --------
    >>> import numpy as np, ensemblex as ex
    >>> rng = np.random.default_rng(0)
    >>> post = ex.posteriors(rng.normal(size=(2, 3, 20)), np.full((2, 3, 20), -2.0),
    ...                      coords={"beta": [1.0, 4.0]})
    >>> fp = fingerprint(post)
    >>> dict(fp.bc.sizes)
    {'channel': 6, 'sample_i': 20, 'sample_j': 20}
    >>> fp.model.values.tolist(), fp.latent.values.tolist()
    ([0, 0, 0, 1, 1, 1], [0, 1, 2, 0, 1, 2])
    >>> fp.beta.values.tolist()
    [1.0, 1.0, 1.0, 4.0, 4.0, 4.0]
    >>> fingerprint(post, [[0, 1], [2]]).latent.values.tolist()
    [-1, 2, -1, 2]
    >>> bool((fp.bc.isel(channel=0).values.diagonal() == 1).all())
    True
    """
    if not isinstance(post, xr.Dataset):
        raise InputTypeError(
            f"fingerprint() needs a Posteriors xarray.Dataset; got {type(post).__name__}. "
            "Build one with ensemblex.posteriors(mean, logvar)."
        )
    # values still in a file stay there: Dask arrays that read them where they run,
    # so the graph carries the file's name, not its values
    post = chunk_file_backed(post, ("mean", "logvar"))
    post = validate_posteriors(post, what="fingerprint()'s input")
    n_model, n_latent, _ = (int(post.sizes[d]) for d in ("model", "latent", "sample"))
    mode, groups = _groups(channels, n_latent)
    n_component = max(len(g) for g in groups)
    n_group = len(groups)
    mean = _gather(post["mean"].data, mode, groups, n_component)
    logvar = _gather(post["logvar"].data, mode, groups, n_component)

    model_ids = post["model"].values
    if not np.issubdtype(model_ids.dtype, np.integer):
        model_ids = np.arange(n_model)  # names are kept in the per-model coords
    latent_of_group = np.array([g[0] if len(g) == 1 else -1 for g in groups], dtype=np.int64)
    n_channel = n_model * n_group
    channel_coords: dict[Hashable, Any] = {
        "model": np.repeat(model_ids.astype(np.int64), n_group),
        "latent": np.tile(latent_of_group, n_model),
        "kind": np.full(n_channel, "gaussian"),
        "factor": np.full(n_channel, ""),
    }
    for name, coord in post.coords.items():
        if name == "model" or coord.dims != ("model",):
            continue
        if name in _RESERVED:
            raise InputError(
                f"the posteriors' per-model coordinate {name!r} clashes with a Fingerprints "
                f"coordinate; rename it first (post.rename({{{name!r}: 'model_{name}'}}))."
            )
        data = coord.data
        if is_dask(data):
            import dask.array as da

            channel_coords[name] = da.repeat(data, n_group)
        else:
            channel_coords[name] = np.repeat(to_numpy(data), n_group)
    if post["model"].dtype.kind not in "iu":
        channel_coords["model_name"] = np.repeat(post["model"].values, n_group)
    sample_coords = {
        name: coord.variable.data
        for name, coord in post.coords.items()
        if name != "sample" and coord.dims == ("sample",)
    }
    labels = _fingerprint_labels(post["labels"]) if "labels" in post else None
    attrs = {k: v for k, v in post.attrs.items() if not str(k).startswith("ensemblex_")}
    attrs.pop("title", None)
    attrs["channels"] = mode
    return _assemble(
        mean,
        logvar,
        None,
        channel_coords,
        post["sample"].values,
        sample_coords=sample_coords,
        labels=labels,
        attrs=attrs,
        channel_chunk=channel_chunk,
        sample_chunk=sample_chunk,
    )


def _parse_labels(
    labels: Any, factor_names: Sequence[Hashable] | None, sample: Any
) -> tuple[np.ndarray, list[Hashable], np.ndarray]:
    """Labels in any accepted form -> ``(int64 (factor, sample), names, sample ids)``."""
    names: list[Hashable] | None = None
    sample_ids = None
    if isinstance(labels, xr.Dataset):
        if "labels" not in labels.data_vars:
            raise InputError(
                "label_fingerprints() got a dataset without a 'labels' variable "
                f"(variables: {', '.join(map(str, labels.data_vars)) or 'none'}); pass the "
                "(factor, sample) labels themselves or posteriors built with labels=."
            )
        ds = labels
        labels = ds["labels"]
        if "factor_name" in ds.coords and ds["factor_name"].dims == ("factor",):
            names = list(ds["factor_name"].values)
        elif "factor" in ds.coords and ds["factor"].dims == ("factor",):
            names = list(ds["factor"].values)
    if isinstance(labels, xr.DataArray):
        if labels.ndim == 1:
            labels = labels.expand_dims("factor")
        check_dims("labels", labels.dims, ("factor", "sample"), exact=True)
        labels = labels.transpose("factor", "sample")
        if names is None:
            for key in ("factor_name", "factor"):
                if key in labels.coords and labels[key].dims == ("factor",):
                    names = list(labels[key].values)
                    break
        if "sample" in labels.coords:
            sample_ids = labels["sample"].values
        labels = labels.data
    if type(labels).__module__.startswith("array_api_strict") or not isinstance(labels, np.ndarray):
        labels = to_numpy(labels) if hasattr(labels, "shape") else np.asarray(labels)
    labels = np.asarray(labels)
    if labels.ndim == 1:
        labels = labels[None, :]
    if labels.ndim != 2:
        raise InputError(f"labels must have dims ('factor', 'sample'); got shape {labels.shape}.")
    if not np.issubdtype(labels.dtype, np.integer):
        raise InputTypeError(
            f"labels must be integer class indices; got dtype {labels.dtype}. Map factor "
            "values to integers first (e.g. np.unique(values, return_inverse=True))."
        )
    n_factor, n_sample = labels.shape
    if n_sample < 2:
        raise InputError(f"labels need at least 2 samples; got {n_sample}.")
    if factor_names is not None:
        names = list(factor_names)
    if names is None:
        names = list(range(n_factor))
    if len(names) != n_factor:
        raise InputError(f"factor_names has {len(names)} names for {n_factor} label factors.")
    if sample is not None:
        sample_ids = np.asarray(sample)
    if sample_ids is None:
        sample_ids = np.arange(n_sample)
    if sample_ids.shape != (n_sample,):
        raise InputError(
            f"sample must hold one id per sample ({n_sample}); got shape {sample_ids.shape}."
        )
    return labels.astype(np.int64), names, sample_ids


def label_fingerprints(
    labels: Any,
    factor_names: Sequence[Hashable] | None = None,
    *,
    sample: Any = None,
    channel_chunk: int | None = None,
    sample_chunk: int | None = None,
) -> xr.Dataset:
    """Fingerprints of hard clusterings: one ``kind="label"`` channel per factor.

    ``bc_ij = 1`` where samples i and j share the factor's label, else 0.

    Parameters
    ----------
    labels
        Integer labels ``(factor, sample)`` (or ``(sample,)`` for one factor): an
        array, a DataArray with those dims, or a dataset with a ``labels``
        variable (Posteriors or Fingerprints).
    factor_names
        Names of the factors; by default the ``factor`` (or ``factor_name``)
        coordinate of ``labels``, else ``0..F-1``.
    sample
        Sample ids (must match those of the fingerprints compared with); by
        default the ``sample`` coordinate of ``labels``, else ``0..N-1``.
    channel_chunk, sample_chunk
        Dask chunk sizes of ``bc``.

    Returns
    -------
    xr.Dataset
        Fingerprints with ``channel_label`` (channel, sample), ``channel_mean``
        and ``channel_logvar`` of zeros (one component), ``kind="label"``,
        ``model = latent = -1`` and ``factor`` the factor name as a string.

    Examples
    --------
    >>> import numpy as np
    >>> fp = label_fingerprints(np.array([[0, 0, 1, 1], [0, 1, 0, 1]]), ["shape", "size"])
    >>> fp.factor.values.tolist(), fp.kind.values.tolist()
    (['shape', 'size'], ['label', 'label'])
    >>> fp.bc.isel(channel=0).values.tolist()[0]
    [1.0, 1.0, 0.0, 0.0]
    """
    labels, names, sample_ids = _parse_labels(labels, factor_names, sample)
    n_factor, n_sample = labels.shape
    zeros = np.zeros((n_factor, 1, n_sample), dtype=np.float32)
    channel_coords: dict[Hashable, Any] = {
        "model": np.full(n_factor, -1, dtype=np.int64),
        "latent": np.full(n_factor, -1, dtype=np.int64),
        "kind": np.full(n_factor, "label"),
        "factor": np.array([str(n) for n in names]),
    }
    carried = xr.DataArray(
        labels,
        dims=("factor", "sample"),
        coords={"factor_name": ("factor", np.asarray(names)), "sample": sample_ids},
    )
    return _assemble(
        zeros,
        zeros.copy(),
        labels,
        channel_coords,
        sample_ids,
        labels=carried,
        attrs={"channels": "label"},
        channel_chunk=channel_chunk,
        sample_chunk=sample_chunk,
    )


def validate_fingerprints(ds: Any, *, what: str = "the dataset") -> xr.Dataset:
    """Check that ``ds`` is a usable Fingerprints dataset; return it in canonical form.

    Checks the variables and dims of the contract (``bc`` (channel, sample_i,
    sample_j) with ``sample_i`` and ``sample_j`` the same size; parameters
    ``channel_mean``/``channel_logvar`` (channel, component, sample) and
    ``channel_label`` (channel, sample) integers, when present). Dims are put
    in contract order and the ensemblex attrs are added when missing. Nothing
    is computed.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ok = xr.Dataset({"bc": (("channel", "sample_i", "sample_j"), np.ones((1, 2, 2)))})
    >>> validate_fingerprints(ok).attrs["ensemblex_kind"]
    'fingerprints'
    >>> validate_fingerprints(xr.Dataset({"bc": (("channel", "i", "j"), np.ones((1, 2, 2)))}))
    Traceback (most recent call last):
    ...
    ensemblex.errors.InputError: variable 'bc' of the dataset needs dims ('channel', 'sample_i', 'sample_j'); got ('channel', 'i', 'j'): missing 'sample_i', 'sample_j'; unexpected 'i', 'j'. Build fingerprints with ensemblex.fingerprint(posteriors) or ensemblex.label_fingerprints(labels).
    """
    hint = (
        "Build fingerprints with ensemblex.fingerprint(posteriors) or "
        "ensemblex.label_fingerprints(labels)."
    )
    if not isinstance(ds, xr.Dataset):
        raise InputTypeError(
            f"{what} must be a Fingerprints xarray.Dataset; got {type(ds).__name__}."
        )
    if "bc" not in ds.data_vars:
        variables = ", ".join(sorted(map(str, ds.data_vars))) or "none"
        raise InputError(
            f"{what} is not a Fingerprints dataset: it has no variable 'bc' "
            f"(channel, sample_i, sample_j) (variables: {variables}). {hint}"
        )
    check_dims(
        f"variable 'bc' of {what}",
        [str(d) for d in ds["bc"].dims],
        FINGERPRINT_DIMS,
        exact=True,
        hint=hint,
    )
    n_i, n_j = ds.sizes["sample_i"], ds.sizes["sample_j"]
    if n_i != n_j:
        raise InputError(
            f"variable 'bc' of {what} must be square over samples; got sample_i={n_i}, "
            f"sample_j={n_j}."
        )
    if n_i < 2:
        raise InputError(f"{what} has {n_i} sample(s); fingerprints need at least 2.")
    present = [v for v in ("channel_mean", "channel_logvar") if v in ds.data_vars]
    if len(present) == 1:
        raise InputError(
            f"{what} has {present[0]!r} but not its partner; channel_mean and channel_logvar "
            "come together."
        )
    for name in present:
        check_dims(
            f"variable {name!r} of {what}",
            [str(d) for d in ds[name].dims],
            PARAMETER_DIMS,
            exact=True,
        )
    if "channel_label" in ds.data_vars:
        check_dims(
            f"variable 'channel_label' of {what}",
            [str(d) for d in ds["channel_label"].dims],
            ("channel", "sample"),
            exact=True,
        )
        if ds["channel_label"].dtype.kind not in "iu":
            raise InputTypeError(
                f"variable 'channel_label' of {what} must hold integers; got dtype "
                f"{ds['channel_label'].dtype}."
            )
    if "sample" in ds.sizes and ds.sizes["sample"] != n_i:
        raise InputError(
            f"{what} has {ds.sizes['sample']} samples in its parameters but {n_i} in 'bc'."
        )
    ds = ds.transpose(
        "channel", "component", "sample_i", "sample_j", ..., "sample", missing_dims="ignore"
    )
    if ds.attrs.get("ensemblex_kind") != "fingerprints":
        ds = stamp(ds, "fingerprints")
    return ds


def info(fp: xr.Dataset) -> xr.DataArray:
    """I(X;U) in bits of every channel: ``-mean_i log2(mean_j bc_ij)``.

    The Kolchinsky-Tracey lower bound (docs/design.md section 1). Lazy when ``bc`` is
    lazy: each task reduces its own ``bc`` block to row sums (accumulated in
    float64), so nothing of size C*N*N is held.

    Parameters
    ----------
    fp
        Fingerprints dataset.

    Returns
    -------
    xr.DataArray
        ``info`` (channel,), float64, with the channel coordinates of ``fp``.

    Examples
    --------
    >>> import numpy as np
    >>> fp = label_fingerprints(np.array([[0, 0, 1, 1], [0, 1, 2, 3]]))
    >>> info(fp).values.tolist()
    [1.0, 2.0]
    """
    fp = validate_fingerprints(fp, what="info()'s input")
    bc = fp["bc"]
    n = bc.sizes["sample_j"]
    row_mean = bc.sum("sample_j", dtype=np.float64, skipna=False) / n
    bits = -xr.ufuncs.log2(row_mean).mean("sample_i", skipna=False)
    bits = bits.drop_vars([c for c in bits.coords if "channel" not in bits[c].dims])
    bits.name = "info"
    bits.attrs = {
        "long_name": "information I(X;U) (Kolchinsky-Tracey lower bound)",
        "units": "bits",
    }
    return bits


def _fill(values: np.ndarray, n: int) -> np.ndarray:
    """A missing channel coordinate for ``n`` channels, in the type of ``values``."""
    kind = values.dtype.kind
    if kind == "f":
        return np.full(n, np.nan, dtype=values.dtype)
    if kind in "iu":
        return np.full(n, -1, dtype=values.dtype if kind == "i" else np.int64)
    if kind == "b":
        return np.zeros(n, dtype=bool)
    if kind == "U":
        return np.full(n, "", dtype=values.dtype)
    return np.full(n, None, dtype=object)


def _merge_labels(fps: Sequence[xr.Dataset]) -> xr.DataArray | None:
    """The union of the ``labels`` of ``fps`` (by factor name); clashes are errors."""
    merged: xr.DataArray | None = None
    for k, fp in enumerate(fps):
        if "labels" not in fp.data_vars:
            continue
        lab = fp["labels"]
        if "factor_name" not in lab.coords:
            lab = lab.assign_coords(factor_name=("factor", np.arange(lab.sizes["factor"])))
        if merged is None:
            merged = lab
            continue
        known = {n: i for i, n in enumerate(merged["factor_name"].values.tolist())}
        new = []
        for f, name in enumerate(lab["factor_name"].values.tolist()):
            row = lab.isel(factor=f)
            if name in known:
                if not np.array_equal(row.values, merged.isel(factor=known[name]).values):
                    raise InputError(
                        f"fingerprints #{k} carry labels of factor {name!r} that differ from "
                        "those of an earlier one; drop one of them with ds.drop_vars('labels')."
                    )
            else:
                new.append(f)
        if new:
            merged = xr.concat([merged, lab.isel(factor=new)], "factor")
    return merged


def concat_fingerprints(
    *fps: xr.Dataset,
    channel_chunk: int | None = None,
    sample_chunk: int | None = None,
) -> xr.Dataset:
    """Concatenate Fingerprints over the same samples along ``channel``.

    Gaussian and label fingerprints, and fingerprints of different posteriors,
    combine: the samples must agree (same ids, same order); parameters are
    padded to the largest ``component`` count (mean 0, logvar 0: a factor of
    1); ``channel_label`` is 0 for channels without one; channels are
    renumbered ``0..C-1``; a channel coordinate missing from some inputs is
    filled with NaN (floats), -1 (integers), False or ``""``; ``labels`` are
    merged by factor name. ``bc`` is rebuilt lazily from the parameters.

    With plain xarray the same is
    ``xr.concat(fps, "channel", data_vars="minimal", coords="minimal",
    compat="override")`` followed by ``.assign_coords(channel=range(C))`` when
    all inputs have the same components, channel coordinates and labels.

    Examples
    --------
    >>> import numpy as np, ensemblex as ex
    >>> rng = np.random.default_rng(0)
    >>> post = ex.posteriors(rng.normal(size=(1, 2, 8)), np.zeros((1, 2, 8)),
    ...                      labels=rng.integers(0, 2, size=(1, 8)), factor_names=["shape"])
    >>> both = concat_fingerprints(fingerprint(post), label_fingerprints(post))
    >>> both.channel.values.tolist(), both.kind.values.tolist()
    ([0, 1, 2], ['gaussian', 'gaussian', 'label'])
    >>> both.factor.values.tolist()
    ['', '', 'shape']
    """
    if len(fps) == 1 and isinstance(fps[0], list | tuple):
        fps = tuple(fps[0])
    if not fps:
        raise InputError("concat_fingerprints() needs at least one Fingerprints dataset.")
    fps = tuple(
        chunk_file_backed(validate_fingerprints(fp, what=f"fingerprints #{k}"), _PARAMS)
        for k, fp in enumerate(fps)
    )
    ref = fps[0]["sample_i"].values
    for k, fp in enumerate(fps[1:], start=1):
        ids = fp["sample_i"].values
        if ids.shape != ref.shape or not np.array_equal(ids, ref):
            raise InputError(
                f"fingerprints #0 and #{k} are over different samples ({ref.shape[0]} vs "
                f"{ids.shape[0]} samples, or other ids/order); fingerprints can only be "
                "combined over the same samples in the same order."
            )
    for k, fp in enumerate(fps):
        if "channel_mean" not in fp.data_vars:
            raise InputError(
                f"fingerprints #{k} have no parameters (channel_mean, channel_logvar) to "
                "rebuild bc from; concatenate such datasets with xr.concat(..., 'channel')."
            )
    n_component = max(int(fp.sizes["component"]) for fp in fps)
    lazy = any(is_dask(fp["channel_mean"].data) for fp in fps)
    first = fps[0]["channel_mean"].data

    def join(arrays: list[Any]) -> Any:
        if lazy:
            import dask.array as da

            return da.concatenate(arrays, axis=0)
        xp = get_namespace(first)
        return xp.concat([_same_namespace(a, first) for a in arrays], axis=0)

    mean = join([_pad(fp["channel_mean"].data, n_component) for fp in fps])
    logvar = join([_pad(fp["channel_logvar"].data, n_component) for fp in fps])
    channel_label = None
    if any("channel_label" in fp.data_vars for fp in fps):
        n = ref.shape[0]
        channel_label = join(
            [
                fp["channel_label"].data
                if "channel_label" in fp.data_vars
                # Gaussian channels: a constant label, a BC factor of exactly 1
                else np.zeros((fp.sizes["channel"], n), dtype=np.int64)
                for fp in fps
            ]
        )
    names: list[Hashable] = []
    for fp in fps:
        for name, coord in fp.coords.items():
            if coord.dims == ("channel",) and name != "channel" and name not in names:
                names.append(name)
    channel_coords: dict[Hashable, Any] = {}
    for name in names:
        example = next(to_numpy(fp[name].data) for fp in fps if name in fp.coords)
        channel_coords[name] = np.concatenate(
            [
                to_numpy(fp[name].data)
                if name in fp.coords
                else _fill(example, fp.sizes["channel"])
                for fp in fps
            ]
        )
    sample_coords = {
        name: coord.variable.data
        for name, coord in fps[0].coords.items()
        if name != "sample" and coord.dims == ("sample",)
    }
    modes = {fp.attrs.get("channels") for fp in fps}
    attrs = {k: v for k, v in fps[0].attrs.items() if not str(k).startswith("ensemblex_")}
    attrs.pop("title", None)
    attrs["channels"] = modes.pop() if len(modes) == 1 else "mixed"
    return _assemble(
        mean,
        logvar,
        channel_label,
        channel_coords,
        ref,
        sample_coords=sample_coords,
        labels=_merge_labels(fps),
        attrs=attrs,
        channel_chunk=channel_chunk,
        sample_chunk=sample_chunk,
    )
