"""Synthetic ensembles with known structure, for tests, examples and notebooks.

:func:`planted_ensemble` makes a Posteriors dataset whose channels carry
*planted* pieces of information: a few hidden factors ``z_f ~ U(0, 1)`` are
shared by every model, and each model encodes each factor in one latent
through its own random monotone map, with its own noise level. Some latents
mix two factors and some are collapsed to the prior (``mean 0``,
``logvar 0``: no information). The hidden assignment is returned with the
data, so structure-finding code can be scored against the truth.

:func:`reference_pairwise` is a plain float64 Pairwise builder for small
ensembles: an oracle for tests of the streaming engine and of everything
that consumes Pairwise results.
"""

from __future__ import annotations

import math
from collections.abc import Hashable

import numpy as np
import xarray as xr

from ._checks import check_positive_int, check_probability
from ._kinds import stamp
from .errors import InputError
from .estimators import MIN_INFO
from .measures import MEASURES, PAIRWISE_VARIABLES

__all__ = ["COLLAPSED", "MIXED", "planted_ensemble", "reference_pairwise"]

#: value of ``planted`` for a collapsed latent (posterior = prior, no information)
COLLAPSED = -1
#: value of ``planted`` for a latent that mixes two factors
MIXED = -2


def _monotone_map(rng: np.random.Generator, z: np.ndarray, knots: int = 8) -> np.ndarray:
    """A random strictly monotone map of ``z`` in [0, 1], centred, range about 1..3."""
    grid = np.linspace(0.0, 1.0, knots + 1)
    steps = rng.gamma(2.0, size=knots)  # positive increments: strictly increasing
    values = np.concatenate([[0.0], np.cumsum(steps)])
    values /= values[-1]
    out = np.interp(z, grid, values)
    sign = rng.choice([-1.0, 1.0])
    scale = rng.uniform(1.0, 3.0)
    return sign * scale * (out - out.mean())


def planted_ensemble(
    n_models: int = 16,
    n_latent: int = 6,
    n_samples: int = 200,
    n_factors: int = 3,
    *,
    n_mixed: int = 1,
    logvar_range: tuple[float, float] = (-6.0, -2.5),
    mix_range: tuple[float, float] = (0.3, 0.7),
    n_bins: int = 4,
    seed: int = 0,
) -> xr.Dataset:
    """An ensemble of synthetic models with planted groups of channels.

    Every model encodes each of ``n_factors`` hidden factors in exactly one of
    its latents (a *pure* channel), ``n_mixed`` latents mix two different
    factors, and the remaining latents are collapsed to the prior. The latent
    positions are shuffled per model, so groups must be found by content, not
    by index.

    A pure channel of factor ``f`` has posterior mean ``g(z_f)`` for a random
    strictly monotone map ``g`` (random sign and scale) and log-variance
    ``b + 0.5 u`` with a per-channel level ``b ~ U(logvar_range)`` and a
    per-sample jitter ``u ~ U(-1, 1)``. A mixed channel has mean
    ``w g1(z_f1) + (1 - w) g2(z_f2)``, ``w ~ U(0.3, 0.7)``. A collapsed channel
    has mean 0 and log-variance 0 for every sample.

    Parameters
    ----------
    n_models, n_latent, n_samples, n_factors
        Sizes. ``n_latent`` must be at least ``n_factors + n_mixed``.
    n_mixed
        Mixed latents per model (each mixes two factors; needs ``n_factors >= 2``
        when positive).
    logvar_range
        Range of the per-channel noise level (log-variance).
    n_bins
        The ground-truth ``labels`` are the hidden factors cut into ``n_bins``
        equally populated bins.
    seed
        Seed of the NumPy generator; the same seed gives the same dataset.

    Returns
    -------
    xr.Dataset
        A Posteriors dataset (``mean``, ``logvar`` float32 ``(model, latent, sample)``,
        ``labels`` int64 ``(factor, sample)``) plus the truth:

        - ``planted`` int64 ``(model, latent)``: the factor a pure latent encodes,
          :data:`COLLAPSED` (-1) or :data:`MIXED` (-2);
        - ``mixed_factors`` int64 ``(model, latent, pair)``: the two factors of a
          mixed latent (-1 elsewhere);
        - ``factor_values`` float64 ``(factor, sample)``: the hidden ``z_f``.

        Channel order of ``fingerprint()`` is model-major, so
        ``planted.values.reshape(-1)`` is the planted group of every channel.

    Examples
    --------
    >>> from ensemblex.testing import planted_ensemble
    >>> post = planted_ensemble(n_models=4, n_latent=5, n_samples=50, seed=1)
    >>> dict(post.sizes)
    {'model': 4, 'latent': 5, 'sample': 50, 'factor': 3, 'pair': 2}
    >>> sorted(set(post.planted.values.ravel().tolist()))
    [-2, -1, 0, 1, 2]
    >>> collapsed = post["mean"].where(post["planted"] == -1)
    >>> float(abs(collapsed).max())       # collapsed latents: the prior
    0.0
    """
    from .posteriors import posteriors

    n_models = check_positive_int("n_models", n_models)
    n_latent = check_positive_int("n_latent", n_latent)
    n_samples = check_positive_int("n_samples", n_samples, minimum=2)
    n_factors = check_positive_int("n_factors", n_factors)
    n_mixed = check_positive_int("n_mixed", n_mixed, minimum=0)
    n_bins = check_positive_int("n_bins", n_bins)
    if n_latent < n_factors + n_mixed:
        raise InputError(
            f"n_latent ({n_latent}) must be at least n_factors + n_mixed "
            f"({n_factors} + {n_mixed}) so every model holds every planted channel."
        )
    if n_mixed and n_factors < 2:
        raise InputError("mixed channels need at least 2 factors; set n_mixed=0.")
    lo, hi = (float(v) for v in logvar_range)
    if not lo <= hi:
        raise InputError(f"logvar_range must be (low, high) with low <= high; got {logvar_range}.")

    w_lo, w_hi = (float(v) for v in mix_range)
    if not 0.0 <= w_lo <= w_hi <= 1.0:
        raise InputError(
            f"mix_range must be (low, high) with 0 <= low <= high <= 1; got {mix_range}."
        )
    rng = np.random.default_rng(seed)
    z = rng.uniform(size=(n_factors, n_samples))
    mean = np.zeros((n_models, n_latent, n_samples))
    logvar = np.zeros((n_models, n_latent, n_samples))
    planted = np.full((n_models, n_latent), COLLAPSED, dtype=np.int64)
    mixed = np.full((n_models, n_latent, 2), -1, dtype=np.int64)
    for m in range(n_models):
        slots = rng.permutation(n_latent)
        for f in range(n_factors):
            k = slots[f]
            planted[m, k] = f
            mean[m, k] = _monotone_map(rng, z[f])
        for q in range(n_mixed):
            k = slots[n_factors + q]
            f1, f2 = rng.choice(n_factors, size=2, replace=False)
            w = rng.uniform(w_lo, w_hi)
            planted[m, k] = MIXED
            mixed[m, k] = (f1, f2)
            mean[m, k] = w * _monotone_map(rng, z[f1]) + (1 - w) * _monotone_map(rng, z[f2])
        active = planted[m] != COLLAPSED
        level = rng.uniform(lo, hi, size=(n_latent, 1))
        jitter = 0.5 * rng.uniform(-1.0, 1.0, size=(n_latent, n_samples))
        # collapsed latents keep mean 0, logvar 0: the prior for every sample
        logvar[m] = np.where(active[:, None], level + jitter, 0.0)

    # labels: equally populated bins of each hidden factor
    ranks = np.argsort(np.argsort(z, axis=1), axis=1)
    labels = (ranks * n_bins // n_samples).astype(np.int64)

    post = posteriors(mean, logvar, labels=labels, factor_names=[f"z{f}" for f in range(n_factors)])
    return post.assign(
        planted=(("model", "latent"), planted),
        mixed_factors=(("model", "latent", "pair"), mixed),
        factor_values=(("factor", "sample"), z),
    )


def reference_pairwise(
    post: xr.Dataset, *, labels: bool = False, min_info: float = MIN_INFO
) -> xr.Dataset:
    """A plain float64 Pairwise dataset of the latents of a Posteriors dataset (an oracle).

    Every (model, latent) is a channel, model-major, as ``fingerprint()`` numbers
    them; with ``labels=True`` one label channel per ground-truth factor is
    appended (``kind="label"``, ``model=-1``, ``latent=-1``, ``factor`` its name).
    The joint information is summed row by row in float64,
    ``J_UV = -(1/N) sum_i log2((1/N) sum_j BC^U_ij BC^V_ij)``, with every
    fingerprint held in memory (``C N^2`` floats): a reference for tests of
    small ensembles, not a substitute for the streaming engine.

    Returns
    -------
    xr.Dataset
        The Pairwise contract: the measures of
        :data:`ensemblex.measures.PAIRWISE_VARIABLES` float32
        ``(channel_a, channel_b)``; ``info_a``, ``repeat_info_a``, ``info_b``,
        ``repeat_info_b``; channel coordinates with ``_a`` / ``_b`` suffixes.

    Examples
    --------
    >>> from ensemblex.testing import planted_ensemble, reference_pairwise
    >>> post = planted_ensemble(n_models=2, n_latent=4, n_samples=40)
    >>> pw = reference_pairwise(post, labels=True)
    >>> dict(pw.sizes)
    {'channel_a': 11, 'channel_b': 11}
    >>> bool(abs(float(pw.nmi[0, 0]) - 1) < 1e-6 or post.planted[0, 0] == -1)
    True
    """
    from .estimators import bhattacharyya, label_coefficients

    min_info = check_probability("min_info", min_info, high=math.inf)
    mean = np.asarray(post["mean"].transpose("model", "latent", "sample").values, np.float64)
    logvar = np.asarray(post["logvar"].transpose("model", "latent", "sample").values, np.float64)
    n_model, n_latent, n_sample = mean.shape
    bc = bhattacharyya(mean.reshape(-1, n_sample), logvar.reshape(-1, n_sample))
    model = np.repeat(post["model"].values, n_latent)
    latent = np.tile(post["latent"].values, n_model)
    kind = ["gaussian"] * (n_model * n_latent)
    factor = [""] * (n_model * n_latent)
    settings = {
        name: np.repeat(coord.values, n_latent)
        for name, coord in post.coords.items()
        if coord.dims == ("model",) and name != "model"
    }
    if labels:
        lab = post["labels"].transpose("factor", "sample").values
        bc = np.concatenate([bc, label_coefficients(lab)], axis=0)
        n_f = lab.shape[0]
        model = np.concatenate([model, np.full(n_f, -1)])
        latent = np.concatenate([latent, np.full(n_f, -1)])
        kind += ["label"] * n_f
        factor += [str(f) for f in post["factor"].values]
        settings = {
            k: np.concatenate([v, np.full(n_f, np.nan if v.dtype.kind == "f" else v[0])])
            for k, v in settings.items()
        }
    n_channel = bc.shape[0]
    # row sums of products: for each i the Gram matrix of the rows i of all fingerprints
    joint = np.zeros((n_channel, n_channel))
    for i in range(n_sample):
        rows = bc[:, i, :]
        joint -= np.log2(rows @ rows.T / n_sample)
    joint /= n_sample
    info = -np.mean(np.log2(bc.mean(axis=-1)), axis=-1)
    rep = np.diag(joint).copy()
    # every stored measure from the registry's estimator, in float64
    measured = {
        name: MEASURES[name].estimator(
            info[:, None], info[None], joint, rep[:, None], rep[None], min_info=min_info
        )
        for name in PAIRWISE_VARIABLES
    }
    ids = np.arange(n_channel)
    coords: dict[str, object] = {"channel_a": ids, "channel_b": ids}
    columns: dict[Hashable, np.ndarray] = {
        "model": model,
        "latent": latent,
        "kind": np.array(kind),
        "factor": np.array(factor),
    }
    columns.update(settings)
    for name, values in columns.items():
        coords[f"{name}_a"] = ("channel_a", values)
        coords[f"{name}_b"] = ("channel_b", values)
    ds = xr.Dataset(
        {
            **{
                name: (("channel_a", "channel_b"), np.asarray(v, dtype=np.float32))
                for name, v in measured.items()
            },
            "info_a": ("channel_a", info.astype(np.float32)),
            "repeat_info_a": ("channel_a", rep.astype(np.float32)),
            "info_b": ("channel_b", info.astype(np.float32)),
            "repeat_info_b": ("channel_b", rep.astype(np.float32)),
        },
        coords=coords,
    )
    return stamp(ds, "pairwise", min_info=min_info)
