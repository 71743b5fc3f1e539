"""Hotspots: OPTICS groups of channels that carry the same information (paper Sec. 3.3).

:func:`cluster` turns all-pairs NMI (or VI) between channels into a distance,
runs scikit-learn's OPTICS on it, and returns a Clusters dataset: which
channels are informative, their group, the reachability profile, the OPTICS
ordering, each group's central channel, and, when ground-truth labels are
known, the NMI of every channel with every factor (:func:`label_nmi`).

Clustering is an eager step: the (lazy) Pairwise results are computed once,
and the distance matrix of the informative channels is held in memory, as
OPTICS needs it.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Any, Literal

import numpy as np
import xarray as xr

from ._checks import check_option, check_positive_int, check_probability
from ._kinds import require_kind, stamp
from ._namespace import to_numpy
from .errors import InputError, InputTypeError

__all__ = ["MIN_NMI", "cluster", "label_nmi"]


#: NMI floor of the distance ``-ln(max(NMI, MIN_NMI))`` (the paper's 1e-4)
MIN_NMI = 1e-4

_METRICS = ("nmi", "vi")
#: the Fingerprints variables a Clusters dataset keeps (what plot_cross needs)
_PARAMETERS = ("channel_mean", "channel_logvar", "channel_label")


# -- helpers -------------------------------------------------------------------------


def _host(x: xr.DataArray) -> np.ndarray:
    """The values of ``x`` as a float64 NumPy array (Dask computed, CuPy copied to host)."""
    return np.asarray(to_numpy(x.data), dtype=np.float64)


def _channel_coords(ds: xr.Dataset, dim: str, suffix: str = "") -> dict[str, Any]:
    """Non-index coordinates along ``dim`` as ``{name without suffix: values}``."""
    out: dict[str, Any] = {}
    for name, coord in ds.coords.items():
        name = str(name)
        if name == dim or coord.dims != (dim,):
            continue
        if suffix:
            if not name.endswith(suffix):
                continue
            name = name[: -len(suffix)]
        out[name] = coord.values
    return out


def _is_label(kinds: Any, n: int) -> np.ndarray:
    if kinds is None:
        return np.zeros(n, dtype=bool)
    return np.asarray(kinds).astype(str) == "label"


def _label_fingerprints_of(ds: xr.Dataset, labels: Any) -> xr.Dataset:
    """Label Fingerprints from ``labels`` (None: the ``labels`` that ``ds`` carries)."""
    from .fingerprints import label_fingerprints

    if labels is None:
        if "labels" not in ds.data_vars:
            raise InputError(
                "label_nmi needs ground-truth labels: this dataset has no 'labels' "
                "variable. Build the posteriors with posteriors(..., labels=...) or pass "
                "labels= (label Fingerprints from ensemblex.label_fingerprints)."
            )
        return label_fingerprints(ds)
    if isinstance(labels, xr.Dataset) and "kind" in labels.coords:
        if not _is_label(labels["kind"].values, labels.sizes.get("channel", 0)).all():
            raise InputError(
                "labels= must be label Fingerprints (every channel kind='label'); got "
                "Gaussian channels too. Use ensemblex.label_fingerprints(labels)."
            )
        return labels
    if isinstance(labels, xr.Dataset | xr.DataArray):
        return label_fingerprints(labels)
    raise InputTypeError(
        "labels must be label Fingerprints (xr.Dataset) or an integer DataArray "
        f"(factor, sample); got {type(labels).__name__}."
    )


def _drop_conflicts(coords: dict[str, Any], dims: tuple[str, ...]) -> dict[str, Any]:
    # a channel coordinate may not share a name with a dimension of the result
    # (Fingerprints carry a 'factor' channel coordinate, "" for Gaussian channels)
    return {k: v for k, v in coords.items() if k not in dims}


# -- label NMI -----------------------------------------------------------------------


def label_nmi(ds: xr.Dataset, labels: xr.Dataset | xr.DataArray | None = None) -> xr.DataArray:
    """NMI between every channel and every ground-truth factor.

    Parameters
    ----------
    ds
        Fingerprints, or Posteriors (fingerprinted with one channel per latent).
        Label channels of ``ds`` (``kind == "label"``) are left out.
    labels
        Label Fingerprints (from :func:`ensemblex.label_fingerprints`) or an
        integer DataArray ``(factor, sample)``; by default the ``labels``
        variable that ``ds`` carries.

    Returns
    -------
    xr.DataArray
        ``label_nmi`` with dims ``(channel, factor)``, float32, lazy when the
        pairwise engine is (call ``.compute()``); NaN for channels with less
        than ``0.01`` bits (their NMI is undefined). Channel coordinates are
        carried over.

    Examples
    --------
    >>> from ensemblex.testing import planted_ensemble
    >>> post = planted_ensemble(n_models=2, n_latent=4, n_samples=60, seed=0)
    >>> lnmi = label_nmi(post).compute()
    >>> lnmi.dims
    ('channel', 'factor')
    >>> planted = post.planted.values.ravel()
    >>> best = lnmi.fillna(-1).argmax("factor").values
    >>> bool((best[planted >= 0] == planted[planted >= 0]).all())
    True
    """
    from .pairwise import pairwise

    kind = require_kind(ds, ("fingerprints", "posteriors"), "label_nmi()")
    if kind == "posteriors":
        from .fingerprints import fingerprint

        fp = fingerprint(ds)
    else:
        fp = ds
    label_fp = _label_fingerprints_of(ds, labels)
    names = [str(f) for f in label_fp["factor"].values]
    kinds = fp["kind"].values if "kind" in fp.coords else None
    keep = ~_is_label(kinds, fp.sizes["channel"])
    if not keep.all():
        fp = fp.isel(channel=np.flatnonzero(keep))
    pw = pairwise(fp, label_fp)
    out = pw["nmi"]
    out = out.drop_vars([c for c in out.coords if c not in ("channel_a",)])
    out = out.rename({"channel_a": "channel", "channel_b": "factor"})
    out = out.assign_coords(factor=names)
    coords = _drop_conflicts(_channel_coords(fp, "channel"), ("factor",))
    out = out.assign_coords({k: ("channel", v) for k, v in coords.items()})
    out.name = "label_nmi"
    out.attrs = {"long_name": "NMI between channel and ground-truth factor", "units": "1"}
    return out


# -- clustering ----------------------------------------------------------------------


def _distance(matrix: np.ndarray, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """``(distance, similarity)`` from an NMI or VI matrix: symmetric, zero diagonal."""
    if metric == "nmi":
        # NMI <= 1 in exact arithmetic; clip float rounding so distances stay >= 0
        sim = np.clip(matrix, MIN_NMI, 1.0)
        dist = -np.log(sim)
    else:
        dist = np.maximum(matrix, 0.0)
    dist = 0.5 * (dist + dist.T)
    np.fill_diagonal(dist, 0.0)
    if metric == "nmi":
        sim = np.clip(0.5 * (matrix + matrix.T), 0.0, 1.0)
        np.fill_diagonal(sim, 1.0)
    else:
        sim = np.exp(-dist)
    return dist, sim


def _check_matrix(matrix: np.ndarray, ids: np.ndarray, metric: str, hint: str) -> None:
    bad = ~np.isfinite(matrix)
    if bad.any():
        a, b = np.argwhere(bad)[0]
        ida, idb = ids[a].item(), ids[b].item()
        raise InputError(
            f"the {metric.upper()} matrix of the informative channels has {int(bad.sum())} "
            f"non-finite entries (first: channel {ida!r} vs channel {idb!r} = "
            f"{matrix[a, b]}); OPTICS needs finite distances. {hint}"
        )


def _central(groups: np.ndarray, sim: np.ndarray) -> np.ndarray:
    """One member per group: the highest mean similarity to the rest of its group."""
    central = np.zeros(groups.shape, dtype=bool)
    for g in np.unique(groups[groups >= 0]):
        members = np.flatnonzero(groups == g)
        if members.size == 1:  # degenerate one-member group: it is its own centre
            central[members[0]] = True
            continue
        block = sim[np.ix_(members, members)]
        mean_rest = (block.sum(axis=1) - np.diag(block)) / (members.size - 1)
        central[members[int(np.argmax(mean_rest))]] = True
    return central


def cluster(
    ds: xr.Dataset,
    metric: Literal["nmi", "vi"] = "nmi",
    *,
    min_samples: int = 20,
    min_info: float = 0.01,
    pairwise: xr.Dataset | None = None,
    **optics_kwargs: Any,
) -> xr.Dataset:
    """OPTICS hotspots: groups of channels that carry the same information.

    The paper's procedure (Sec. 3.3): channels with less than ``min_info`` bits
    are dropped; the distance between two informative channels is
    ``-ln(max(NMI, 1e-4))`` (``metric="nmi"``) or ``max(VI, 0)``
    (``metric="vi"``), made symmetric with a zero diagonal; scikit-learn's
    ``OPTICS(metric="precomputed", min_samples=min_samples, **optics_kwargs)``
    groups them. A group's *central* channel is the member with the highest
    mean similarity (NMI, or ``exp(-VI)``) to the other members.

    Parameters
    ----------
    ds
        Fingerprints (the pairwise results are computed here, for the
        informative channels only, unless ``pairwise`` is given) or a symmetric
        Pairwise dataset. Label channels (``kind == "label"``) are not
        clustered: they give ``label_nmi`` instead.
    metric
        ``"nmi"`` or ``"vi"``.
    min_samples
        OPTICS ``min_samples``: the smallest group, in channels (>= 2).
    min_info
        Information threshold in bits.
    pairwise
        Precomputed Pairwise results of the Fingerprints ``ds`` (e.g. read back
        from a Zarr store), so they are not computed again.
    **optics_kwargs
        Other arguments of :class:`sklearn.cluster.OPTICS` (its ``metric`` is
        always ``"precomputed"``).

    Returns
    -------
    xr.Dataset
        Clusters, with dims ``channel`` (every non-label input channel, its
        coordinates carried over), ``order``, ``channel_a``/``channel_b`` (the
        informative channels) and ``factor`` (when labels are known):

        - ``info`` (channel): bits; ``informative`` (channel): ``info >= min_info``;
        - ``group`` (channel): OPTICS label, -1 for noise and dropped channels;
        - ``reachability``, ``core_distance`` (channel): OPTICS values (``inf``
          for the first point of the ordering, NaN for dropped channels);
        - ``central`` (channel): exactly one True per group;
        - ``ordering`` (order): the OPTICS order as positions along ``channel``,
          so ``cl.isel(channel=cl.ordering)`` lists the informative channels in
          order;
        - ``similarity`` (channel_a, channel_b): NMI (clipped to [0, 1]) or
          ``exp(-VI)`` between informative channels, the matrix of the figure;
        - ``label_nmi`` (channel, factor): NMI with each ground-truth factor,
          when ``ds`` has label channels or a ``labels`` variable;
        - ``channel_mean``, ``channel_logvar`` (and ``channel_label``) of the
          channels, when ``ds`` is Fingerprints: the fingerprints' parameters
          (``bc`` itself is not kept), so :func:`ensemblex.plot.plot_cross` can
          compare the channels of two Clusters.

    Raises
    ------
    ValueError
        Fewer informative channels than ``min_samples``; a NaN or inf in the
        distance matrix (e.g. ``pairwise`` computed with a larger ``min_info``).

    Examples
    --------
    >>> from ensemblex.testing import planted_ensemble
    >>> post = planted_ensemble(n_models=8, n_latent=5, n_samples=80, n_mixed=0)
    >>> cl = cluster(post.repinfo.fingerprint(), min_samples=5)
    >>> int(cl.informative.sum()), sorted(set(cl.group.values.tolist()))
    (24, [-1, 0, 1, 2])
    >>> cl.central.groupby(cl.group).sum().values.tolist()
    [0, 1, 1, 1]
    """
    import dask
    from sklearn.cluster import OPTICS

    kind = require_kind(ds, ("fingerprints", "pairwise"), "cluster()")
    metric = check_option("metric", metric, _METRICS)
    min_samples = check_positive_int("min_samples", min_samples, minimum=2)
    min_info = check_probability("min_info", min_info, high=math.inf)

    fp: xr.Dataset | None = None
    if kind == "pairwise":
        if pairwise is not None:
            raise InputError(
                "cluster() got a Pairwise dataset and pairwise=; pass the Pairwise "
                "results once (as the dataset, or with Fingerprints as pairwise=)."
            )
        pw = ds
    else:
        fp = ds
        pw = None
        if pairwise is not None:
            require_kind(pairwise, ("pairwise",), "cluster(pairwise=...)")
            pw = pairwise

    label_lazy = None
    if pw is not None:
        # --- precomputed Pairwise results -------------------------------------------
        if pw.sizes["channel_a"] != pw.sizes["channel_b"] or not np.array_equal(
            pw["channel_a"].values, pw["channel_b"].values
        ):
            raise InputError(
                "cluster() needs the Pairwise results of a set of channels with itself "
                "(pairwise(fp), other=None); this one compares two different sets "
                f"({pw.sizes['channel_a']} x {pw.sizes['channel_b']} channels)."
            )
        if fp is not None:
            fp_ids = fp["channel"].values
            missing = np.setdiff1d(fp_ids, pw["channel_a"].values)
            if missing.size:
                raise InputError(
                    f"pairwise= lacks {missing.size} channels of the Fingerprints "
                    f"(first: {missing[0].item()!r}); pass the Pairwise results of these "
                    "Fingerprints."
                )
            pw = pw.sel(channel_a=fp_ids, channel_b=fp_ids)
            coords_all = _channel_coords(fp, "channel")
        else:
            coords_all = _channel_coords(pw, "channel_a", "_a")
        ids_all = pw["channel_a"].values
        is_label = _is_label(coords_all.get("kind"), ids_all.size)
        pw_min_info = float(pw.attrs.get("min_info", min_info))
        if fp is not None and not is_label.any() and "labels" in fp.data_vars:
            # labels carried by the Fingerprints: their NMI with every Gaussian channel
            label_lazy = label_nmi(fp)
        needed = [metric, "info_a"] + (["nmi"] if metric != "nmi" and is_label.any() else [])
        # one compute for the pairwise results and the label NMI
        values, label_lazy = dask.compute(pw[list(dict.fromkeys(needed))], label_lazy)
        info_all = _host(values["info_a"])
        hint = (
            f"The Pairwise results were computed with min_info={pw_min_info}; channels "
            f"above min_info={min_info} but below that have no NMI: recompute pairwise "
            f"with min_info <= {min_info} or raise min_info."
            if metric == "nmi" and pw_min_info > min_info
            else "Check the Pairwise results (recompute them from valid Fingerprints)."
        )
        rows = np.flatnonzero(~is_label)
        info = info_all[rows]
        informative = info >= min_info
        sel = rows[informative]
        matrix = _host(values[metric])[np.ix_(sel, sel)]
        labels_cols = np.flatnonzero(is_label)
        label_matrix = None
        factor_names: list[Hashable] = []
        if labels_cols.size:
            label_matrix = np.full((rows.size, labels_cols.size), np.nan)
            label_matrix[:] = _host(values["nmi"])[np.ix_(rows, labels_cols)]
            fac = coords_all.get("factor")
            factor_names = (
                [str(f) for f in np.asarray(fac)[labels_cols]]
                if fac is not None
                else list(range(labels_cols.size))
            )
        ids = ids_all[rows]
        coords = {k: np.asarray(v)[rows] for k, v in coords_all.items()}
    else:
        # --- compute from Fingerprints: info first, pairwise of informative channels --
        from .fingerprints import info as info_fn
        from .pairwise import pairwise as pairwise_fn

        fp = ds
        kinds = fp["kind"].values if "kind" in fp.coords else None
        is_label = _is_label(kinds, fp.sizes["channel"])
        gauss = fp.isel(channel=np.flatnonzero(~is_label)) if is_label.any() else fp
        info = _host(info_fn(gauss))
        informative = info >= min_info
        ids = gauss["channel"].values
        coords = _channel_coords(gauss, "channel")
        hint = "Check the Fingerprints (non-finite posterior parameters?)."
        sub = gauss.isel(channel=np.flatnonzero(informative))
        label_matrix = None
        factor_names = []
        if informative.sum() >= min_samples:
            pw_lazy = pairwise_fn(sub, min_info=min_info)[metric]
            if is_label.any():
                label_lazy = label_nmi(sub, fp.isel(channel=np.flatnonzero(is_label)))
            elif "labels" in fp.data_vars:
                label_lazy = label_nmi(sub)
            # one compute for the whole graph: pairwise and labels share fingerprint tiles
            computed, label_done = dask.compute(pw_lazy, label_lazy)
            matrix = _host(computed)
            label_lazy = label_done
        else:
            matrix = np.zeros((0, 0))

    n_informative = int(informative.sum())
    if n_informative < min_samples:
        raise InputError(
            f"only {n_informative} of {ids.size} channels carry at least min_info="
            f"{min_info} bits, fewer than min_samples={min_samples}; OPTICS cannot form a "
            "group. Lower min_samples (or min_info), or add channels."
        )
    inf_ids = ids[informative]
    _check_matrix(matrix, inf_ids, metric, hint)
    dist, sim = _distance(matrix, metric)

    optics = OPTICS(metric="precomputed", min_samples=min_samples, **optics_kwargs).fit(dist)
    n = ids.size
    positions = np.flatnonzero(informative)
    group = np.full(n, -1, dtype=np.int64)
    group[positions] = optics.labels_
    reach = np.full(n, np.nan)
    reach[positions] = optics.reachability_
    core = np.full(n, np.nan)
    core[positions] = optics.core_distances_
    central = np.zeros(n, dtype=bool)
    central[positions] = _central(optics.labels_, sim)
    ordering = positions[optics.ordering_]

    data: dict[str, Any] = {
        "info": ("channel", info.astype(np.float32), {"units": "bit"}),
        "informative": ("channel", informative),
        "group": ("channel", group),
        "reachability": ("channel", reach),
        "core_distance": ("channel", core),
        "central": ("channel", central),
        "ordering": ("order", ordering.astype(np.int64)),
        "similarity": (
            ("channel_a", "channel_b"),
            sim.astype(np.float32),
            {"long_name": "NMI" if metric == "nmi" else "exp(-VI)"},
        ),
    }
    dims = ("channel", "order", "channel_a", "channel_b", "factor")
    if label_matrix is not None:
        data["label_nmi"] = (("channel", "factor"), label_matrix.astype(np.float32))
    elif label_lazy is not None:
        lab = label_lazy.transpose("channel", "factor")
        # computed for the informative channels, or for all of them (Pairwise path)
        full = np.full((n, lab.sizes["factor"]), np.nan, dtype=np.float32)
        where = positions if lab.sizes["channel"] == positions.size else np.arange(n)
        full[where] = _host(lab)
        factor_names = list(lab["factor"].values)
        data["label_nmi"] = (("channel", "factor"), full)
    coords_out: dict[str, Any] = {"channel": ids, "channel_a": inf_ids, "channel_b": inf_ids}
    if "label_nmi" in data:
        coords_out["factor"] = factor_names
    coords_out.update(
        {k: ("channel", np.asarray(v)) for k, v in _drop_conflicts(coords, dims).items()}
    )
    out = xr.Dataset(data, coords=coords_out)
    if fp is not None:
        # keep the fingerprints' parameters (not 'bc'): plot_cross() compares the
        # channels of two Clusters through them; lazy stays lazy, nothing is copied
        params = [v for v in _PARAMETERS if v in fp.data_vars]
        if "channel_mean" in params and "channel_logvar" in params:
            kept = fp[params].sel(channel=ids)
            kept = kept.drop_vars([c for c in kept.coords if "channel" in kept[c].dims])
            out = out.merge(kept.drop_vars("channel", errors="ignore"))
    attrs = {
        "metric": metric,
        "min_samples": min_samples,
        "min_info": min_info,
        "n_groups": int(optics.labels_.max() + 1) if optics.labels_.size else 0,
        "optics_kwargs": repr(optics_kwargs),
    }
    return stamp(out, "clusters", **attrs)
