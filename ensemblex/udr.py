"""Unsupervised Disentanglement Ranking (UDR, Duan et al. 2020) with pluggable similarity.

UDR ranks models without labels by how consistently their informative latents
match one-to-one with the latents of the other models of the ensemble. The
original per-latent similarity is ``|Spearman|`` or a Lasso coefficient
between latent means (as in ``disentanglement_lib``); this package adds NMI
and ``exp(-VI)`` between the latents' posteriors, which see information rather
than axes or linear relationships.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import xarray as xr

from ._checks import check_option, check_probability
from ._kinds import require_kind
from ._namespace import to_numpy
from .errors import InputError
from .estimators import MIN_INFO
from .measures import get_measure, measure_names, resolve_alias

__all__ = ["KL_THRESHOLD", "LASSO_ALPHA", "relative_strength", "udr"]


#: the Lasso penalty of disentanglement_lib's UDR
LASSO_ALPHA = 0.1
#: disentanglement_lib's filter of informative latents: mean KL to the prior, nats
KL_THRESHOLD = 0.01

#: similarities of latent means, besides the registry's measures between posteriors
_MEAN_SIMILARITIES = ("lasso", "spearman")

UDRMeasure = Literal["nmi", "vi", "lasso", "spearman"]


def relative_strength(similarity: Any) -> float:
    """The UDR score of one pair of models from their latent similarity matrix.

    For a non-negative matrix ``R`` (rows: informative latents of model a,
    columns: of model b)::

        score = 1/2 * ( mean_b max_a R_ab^2 / sum_a R_ab  +  mean_a max_b R_ab^2 / sum_b R_ab )

    A row or column of zeros contributes 0 (disentanglement_lib's ``nan_to_num``).
    A one-to-one match of similarity 1 (a permutation matrix) scores 1; a
    latent that matches k latents equally, each with similarity 1, scores 1/k.
    The score also falls with the strength of the match (``max^2 / sum``).

    Degenerate case: a model without informative latents shares nothing with
    any other model; its pairs score 0 (disentanglement_lib fails there).

    Examples
    --------
    >>> relative_strength([[1.0, 0.0], [0.0, 1.0]])
    1.0
    >>> relative_strength([[1.0, 1.0], [1.0, 1.0]])
    0.5
    >>> relative_strength([[0.5, 0.0], [0.0, 0.5]])
    0.5
    """
    r = np.abs(np.asarray(similarity, dtype=np.float64))
    if r.ndim != 2:
        raise InputError(f"similarity must be a 2-D matrix; got shape {r.shape}.")
    if r.size == 0:
        return 0.0

    def side(axis: int) -> float:
        total = r.sum(axis=axis)
        peak = r.max(axis=axis)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(total > 0, peak**2 / np.where(total > 0, total, 1.0), 0.0)
        return float(ratio.mean())

    return 0.5 * (side(0) + side(1))


# -- per-latent similarity ------------------------------------------------------------


def _standardise(x: np.ndarray) -> np.ndarray:
    """Zero mean, unit (population) variance per column; constant columns become 0."""
    centred = x - x.mean(axis=0)
    std = x.std(axis=0)
    # a constant latent (e.g. collapsed) has no scale: leave it at 0, as StandardScaler does
    return centred / np.where(std > 0, std, 1.0)


def _spearman(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``|Spearman rho|`` between the columns of x and y (0 where a column is constant)."""
    from scipy.stats import rankdata

    rx = _standardise(rankdata(x, axis=0))
    ry = _standardise(rankdata(y, axis=0))
    return np.abs(rx.T @ ry / x.shape[0])


def _lasso(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``|w_ab|`` of the Lasso (alpha 0.1) regression of y's latents b on x's latents a."""
    from sklearn.linear_model import Lasso

    if x.shape[1] == 0 or y.shape[1] == 0:
        return np.zeros((x.shape[1], y.shape[1]))
    model = Lasso(alpha=LASSO_ALPHA).fit(x, y)
    coef = np.atleast_2d(model.coef_)  # (targets b, features a)
    return np.abs(coef.T)


# -- inputs -----------------------------------------------------------------------------


def _host(x: xr.DataArray) -> np.ndarray:
    """The values of ``x`` as a float64 NumPy array (Dask computed, CuPy copied to host)."""
    return np.asarray(to_numpy(x.data), dtype=np.float64)


def _latent_table(ds: xr.Dataset, kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any]:
    """``(mean (C, N), logvar (C, N), model of each channel, model coordinate)``."""
    if kind == "posteriors":
        post = ds[["mean", "logvar"]].transpose("model", "latent", "sample")
        mean = _host(post["mean"])
        logvar = _host(post["logvar"])
        n_model, n_latent, n_sample = mean.shape
        owner = np.repeat(np.arange(n_model), n_latent)
        return (
            mean.reshape(-1, n_sample),
            logvar.reshape(-1, n_sample),
            owner,
            post["model"],
        )
    # Fingerprints: the parameters of one-dimensional Gaussian channels are the latents
    gauss = _gaussian_channels(ds)
    latent = gauss["latent"].values if "latent" in gauss.coords else None
    if latent is None or (latent < 0).any() or gauss.sizes.get("component", 1) != 1:
        raise InputError(
            "UDR with 'lasso' or 'spearman' needs the latent means: pass the Posteriors, "
            "or Fingerprints with one channel per latent (fingerprint(post, 'latent')); "
            "these Fingerprints have multi-latent (subspace) channels."
        )
    mean = _host(gauss["channel_mean"].isel(component=0))
    logvar = _host(gauss["channel_logvar"].isel(component=0))
    models, owner = np.unique(gauss["model"].values, return_inverse=True)
    return mean, logvar, owner, xr.DataArray(models, dims="model", name="model")


def _gaussian_channels(ds: xr.Dataset) -> xr.Dataset:
    if "kind" in ds.coords:
        keep = np.asarray(ds["kind"].values).astype(str) != "label"
        if not keep.all():
            ds = ds.isel(channel=np.flatnonzero(keep))
    if "model" not in ds.coords:
        raise InputError(
            "UDR needs the model of every channel (a 'model' channel coordinate, as "
            "fingerprint() writes it)."
        )
    return ds


def _pairwise_table(
    ds: xr.Dataset, kind: str, measure: str, min_info: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any]:
    """``(similarity (C, C), informative (C,), model of each channel, model coordinate)``."""
    if kind == "pairwise":
        pw = ds
        if not np.array_equal(pw["channel_a"].values, pw["channel_b"].values):
            raise InputError(
                "udr() needs the Pairwise results of the ensemble's channels with "
                "themselves (pairwise(fp), other=None)."
            )
        if "model_a" not in pw.coords:
            raise InputError("udr() needs the model of every channel: 'model_a' is missing.")
        if "kind_a" in pw.coords:
            keep = np.flatnonzero(np.asarray(pw["kind_a"].values).astype(str) != "label")
            pw = pw.isel(channel_a=keep, channel_b=keep)
        values = pw[[measure, "info_a"]].compute()
        informative = _host(values["info_a"]) >= min_info
        matrix = _host(values[measure])
        owner_ids = pw["model_a"].values
    else:
        from .fingerprints import fingerprint
        from .fingerprints import info as info_fn
        from .pairwise import pairwise

        fp = fingerprint(ds) if kind == "posteriors" else _gaussian_channels(ds)
        # information first, then the pairwise results of the informative channels
        # only: collapsed latents, common in VAEs, cost nothing
        informative = _host(info_fn(fp)) >= min_info
        keep = np.flatnonzero(informative)
        matrix = np.zeros((informative.size, informative.size))
        if keep.size:
            pw = pairwise(fp.isel(channel=keep), min_info=min_info)
            matrix[np.ix_(keep, keep)] = _host(pw[measure])
        owner_ids = fp["model"].values
    sub = matrix[np.ix_(informative, informative)]
    if not np.isfinite(sub).all():
        raise InputError(
            f"the {measure.upper()} matrix has NaN/inf between informative channels; "
            "recompute the Pairwise results with min_info <= the one given here."
        )
    # the registry's similarity in [0, 1] (NMI clipped, exp(-VI))
    similarity = get_measure(measure, "cluster").similarity
    assert similarity is not None  # a clusterable measure has one
    matrix = np.asarray(similarity(matrix), dtype=np.float64)
    models, owner = np.unique(owner_ids, return_inverse=True)
    if kind == "posteriors":
        model_coord = ds["model"]
        owner = np.repeat(np.arange(ds.sizes["model"]), ds.sizes["latent"])
    else:
        model_coord = xr.DataArray(models, dims="model", name="model")
    return matrix, informative, owner, model_coord


def _kl_to_prior(mean: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """Mean over samples of KL(N(mean, exp(logvar)) || N(0, 1)) in nats, per channel."""
    return np.mean(0.5 * (mean**2 + np.exp(logvar) - logvar - 1.0), axis=-1)


def udr(
    ds: xr.Dataset,
    *,
    measure: UDRMeasure | None = None,
    kl_threshold: float = KL_THRESHOLD,
    min_info: float = MIN_INFO,
    similarity: UDRMeasure | None = None,
) -> xr.DataArray:
    """UDR score of every model of an ensemble (Duan et al. 2020).

    For every ordered pair of models (a, b), a similarity matrix ``R_ab``
    between the informative latents of a (rows) and of b (columns) is scored
    by :func:`relative_strength`::

        S(a, b) = 1/2 [ mean_j max_i R_ij^2 / sum_i R_ij + mean_i max_j R_ij^2 / sum_j R_ij ]

    and the score of model b is the median of ``S(a, b)`` over its partners
    ``a != b``, as in disentanglement_lib (``compute_udr_sklearn``).

    The similarity ``R`` of two latents:

    - ``"lasso"``: latent means standardised per model (zero mean, unit
      variance; latents with mean KL to the prior ``<= kl_threshold`` set to 0),
      ``R = |W|`` of ``Lasso(alpha=0.1)`` fitting b's latents from a's;
    - ``"spearman"``: ``|Spearman rho|`` of the standardised latent means;
    - ``"nmi"``: NMI of the two latents' posteriors (this package's
      Bhattacharyya estimate, eq. 3), clipped to [0, 1];
    - ``"vi"``: ``exp(-max(VI, 0))`` with VI in bits (eq. 4);

    the last two are the similarities of :mod:`ensemblex.measures`.

    Informative latents: mean KL(q(z|x) || N(0, 1)) ``> kl_threshold`` nats for
    lasso/spearman (disentanglement_lib's filter), ``I(X; z) >= min_info`` bits
    for nmi/vi. NMI and VI see information, not axes: they are unchanged by any
    invertible map of a latent, so a permuted or monotonically rescaled copy of
    a model scores exactly like the model.

    Parameters
    ----------
    ds
        Posteriors (every similarity); Fingerprints with one channel per latent
        and a ``model`` channel coordinate (every similarity: the latent means
        are the fingerprints' ``channel_mean``; nmi/vi also work on subspace
        channels, each channel counting as one "latent"); or a symmetric
        Pairwise dataset (nmi/vi only). Label channels are ignored.
    measure
        ``"nmi"`` (default), ``"vi"``, ``"lasso"`` or ``"spearman"``.
    kl_threshold
        KL filter (nats) of the lasso/spearman variants.
    min_info
        Information filter (bits) of the nmi/vi variants.
    similarity
        Deprecated alias of ``measure``.

    Returns
    -------
    xr.DataArray
        ``udr`` (model,), in [0, 1], with the models' coordinates. A model
        without informative latents scores 0. Attrs ``measure`` (and
        ``similarity``, its old name), ``kl_threshold``, ``min_info``.

    Examples
    --------
    >>> from ensemblex.testing import planted_ensemble
    >>> post = planted_ensemble(n_models=4, n_latent=4, n_samples=100, n_mixed=0)
    >>> score = udr(post, measure="spearman")
    >>> score.dims, bool((score > 0.7).all())    # every model: one latent per factor
    (('model',), True)
    """
    kind = require_kind(ds, ("posteriors", "fingerprints", "pairwise"), "udr()")
    name = resolve_alias(
        measure, "nmi", old_name="similarity", old_value=similarity, function="udr()"
    )
    option = "measure" if similarity is None else "similarity"
    name = check_option(option, name, (*measure_names("cluster"), *_MEAN_SIMILARITIES))
    kl_threshold = check_probability("kl_threshold", kl_threshold, high=math.inf)
    min_info = check_probability("min_info", min_info, high=math.inf)

    if name in _MEAN_SIMILARITIES:
        if kind == "pairwise":
            raise InputError(
                f"UDR with measure={name!r} needs the latent means; pass the "
                "Posteriors (or Fingerprints), or use measure='nmi' or 'vi' on Pairwise "
                "results."
            )
        mean, logvar, owner, model_coord = _latent_table(ds, kind)
        informative = _kl_to_prior(mean, logvar) > kl_threshold
        n_model = model_coord.size
        reps = []
        for m in range(n_model):
            rows = np.flatnonzero(owner == m)
            rep = _standardise(mean[rows].T) * informative[rows]
            reps.append(rep)
        pair_matrix = None
    else:
        pair_matrix, informative, owner, model_coord = _pairwise_table(ds, kind, name, min_info)
        n_model = model_coord.size

    if n_model < 2:
        raise InputError(f"UDR compares models with each other; got {n_model} model.")
    scores = np.zeros((n_model, n_model))
    for a in range(n_model):
        rows_a = np.flatnonzero(owner == a)
        for b in range(n_model):
            if a == b:
                continue
            rows_b = np.flatnonzero(owner == b)
            if pair_matrix is not None:
                matrix = pair_matrix[np.ix_(rows_a, rows_b)]
            elif name == "lasso":
                matrix = _lasso(reps[a], reps[b])
            else:
                matrix = _spearman(reps[a], reps[b])
            keep_a, keep_b = informative[rows_a], informative[rows_b]
            scores[a, b] = relative_strength(matrix[np.ix_(keep_a, keep_b)])
    # model b's score: the median over partners a of S(a, b) (disentanglement_lib)
    off = ~np.eye(n_model, dtype=bool)
    result = np.array([np.median(scores[:, b][off[:, b]]) for b in range(n_model)])
    out = xr.DataArray(result, dims="model", coords={"model": model_coord.values})
    if kind == "posteriors":
        extra = {
            k: v.variable for k, v in ds.coords.items() if v.dims == ("model",) and k != "model"
        }
        out = out.assign_coords(extra)
    out.name = "udr"
    out.attrs = {
        "long_name": "Unsupervised Disentanglement Ranking score",
        "measure": name,
        "similarity": name,
        "kl_threshold": kl_threshold,
        "min_info": min_info,
    }
    return out
