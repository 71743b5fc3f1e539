"""Hotspots: OPTICS groups of channels that carry the same information (paper Sec. 3.3).

Three layers, each usable alone:

- :func:`cluster_matrix`, a pure function on a matrix of a measure (NMI or VI)
  or of distances between channels: OPTICS (:mod:`ensemblex.optics`, O(n^2)
  time, no copy of the matrix) and the xi extraction of
  :mod:`ensemblex.optics_xi` (scikit-learn's, with a steepness window) or
  scikit-learn's DBSCAN-like cut, the
  central channel of each group, and the similarity matrix in OPTICS order
  reduced to at most ``max_pixels`` squared block means;
- small readers of the inputs: a Pairwise dataset (lazy, e.g. a Zarr store)
  is read one block of rows at a time, for the chosen measure and the
  informative channels only, into one float32 matrix;
- :func:`cluster`, the xarray wrapper that returns a Clusters dataset.

:func:`describe_groups` tells what each group carries, :func:`label_nmi`
measures channels against ground-truth factors (and pairs of factors), and
:func:`auto_min_samples` and :func:`auto_xi_window` are the rules behind
``min_samples="auto"`` and ``xi_window="auto"``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from itertools import combinations
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
import xarray as xr

from ._checks import check_option, check_positive_int, check_probability
from ._kinds import require_kind, stamp
from ._namespace import to_numpy
from .errors import InputError, InputTypeError
from .estimators import MIN_INFO
from .measures import MIN_NMI, ClusterMeasure, get_measure, resolve_alias
from .optics import compute_optics_graph
from .optics_xi import cluster_optics_xi

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "MIN_NMI",
    "ClusterResult",
    "auto_min_samples",
    "auto_xi_window",
    "chance_label_nmi",
    "cluster",
    "cluster_matrix",
    "describe_groups",
    "group_channels",
    "label_nmi",
]

#: the Fingerprints variables a Clusters dataset keeps (what plot_cross needs)
_PARAMETERS = ("channel_mean", "channel_logvar", "channel_label")
#: the largest informative count whose similarity matrix a Clusters dataset keeps
KEEP_SIMILARITY_MAX = 2000
#: the side, in pixels, of the ordered similarity matrix a Clusters dataset keeps
MAX_PIXELS = 1000
#: float64 scratch per block of rows (bytes) when matrices are read or reduced
_BLOCK_BYTES = 32 * 2**20
#: largest |m_ab - m_ba| / max(1, |m_ab|) accepted as rounding in a symmetric matrix
_SYMMETRY_TOL = 1e-3
#: the paper's min_samples and the number of models it was chosen for
_PAPER_MIN_SAMPLES, _PAPER_MODELS = 20, 50

ClusterMethod = Literal["xi", "dbscan"]


# -- helpers -------------------------------------------------------------------------


def _host(x: Any, dtype: Any = np.float64) -> np.ndarray:
    """Values as a NumPy array of ``dtype`` (Dask computed, CuPy copied to host)."""
    data = x.data if isinstance(x, xr.DataArray) else x
    if hasattr(data, "compute") and not isinstance(data, np.ndarray):
        data = data.compute()
    return np.asarray(to_numpy(data), dtype=dtype)


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


def _pair_label_fingerprints(label_fp: xr.Dataset) -> xr.Dataset:
    """Label Fingerprints of every pair of factors: the joint label ``a * n_b + b``."""
    from .fingerprints import label_fingerprints

    names = [str(f) for f in label_fp["factor"].values]
    lab = _host(label_fp["channel_label"].transpose("channel", "sample"), np.int64)
    pairs = list(combinations(range(len(names)), 2))
    joint = np.empty((len(pairs), lab.shape[1]), dtype=np.int64)
    for k, (a, b) in enumerate(pairs):
        # labels are integers >= 0 (label_fingerprints checks): a * n_b + b is unique
        joint[k] = lab[a] * (int(lab[b].max()) + 1) + lab[b]
    return label_fingerprints(
        joint, [f"{names[a]}+{names[b]}" for a, b in pairs], sample=label_fp["sample"].values
    )


#: label shuffles averaged for the chance level of a label's NMI
CHANCE_PERMUTATIONS = 4


def chance_label_nmi(
    fp: xr.Dataset,
    labels: xr.Dataset | xr.DataArray | None = None,
    *,
    pairs: bool = False,
    n_permutations: int = CHANCE_PERMUTATIONS,
    seed: int = 0,
) -> xr.DataArray:
    """The NMI a channel shares with each label by chance: labels with shuffled samples.

    A label with many levels on a small sample (a pair of fine factors such as
    posX+posY: 1,024 joint values on a few hundred images) tells almost every
    sample apart, so every informative channel has a sizeable NMI with it, by
    chance. Its value is therefore compared with the same label after a
    random permutation of the samples (same level sizes, no relation to the
    channel), averaged over ``n_permutations`` seeded shuffles, as adjusted
    mutual information corrects for chance. :func:`describe_groups` ranks
    factors by ``label_nmi - chance``.

    Parameters
    ----------
    fp
        Fingerprints (or Posteriors) of the channels, as for :func:`label_nmi`.
    labels
        As for :func:`label_nmi`; by default the ``labels`` ``fp`` carries.
    pairs
        Also pairs of factors, named ``"<a>+<b>"``.
    n_permutations, seed
        Shuffles averaged, and the seed of their generator.

    Returns
    -------
    xr.DataArray
        ``(channel, factor)``, like :func:`label_nmi`, computed.

    Examples
    --------
    >>> from ensemblex.testing import planted_ensemble
    >>> post = planted_ensemble(n_models=1, n_latent=3, n_samples=60, n_mixed=0, seed=0)
    >>> real = label_nmi(post).compute()
    >>> chance = chance_label_nmi(post)
    >>> bool((chance.max("factor") < real.max("factor")).all())
    True
    """
    from .fingerprints import label_fingerprints

    n_permutations = check_positive_int("n_permutations", n_permutations)
    label_fp = _label_fingerprints_of(fp, labels)
    codes = _host(label_fp["channel_label"].transpose("channel", "sample"), np.int64)
    names = list(label_fp["factor"].values)
    rng = np.random.default_rng(seed)
    total: xr.DataArray | None = None
    for _ in range(n_permutations):
        shuffled = label_fingerprints(
            codes[:, rng.permutation(codes.shape[1])], names, sample=label_fp["sample"].values
        )
        value = label_nmi(fp, shuffled, pairs=pairs).compute()
        total = value if total is None else total + value
    out = cast(xr.DataArray, total) / n_permutations
    out.name = "label_nmi_chance"
    out.attrs = {"long_name": "NMI with the label after shuffling its samples (chance)"}
    return out


def _drop_conflicts(coords: dict[str, Any], dims: tuple[str, ...]) -> dict[str, Any]:
    # a channel coordinate may not share a name with a dimension of the result
    # (Fingerprints carry a 'factor' channel coordinate, "" for Gaussian channels)
    return {k: v for k, v in coords.items() if k not in dims}


# -- label NMI -----------------------------------------------------------------------


def label_nmi(
    ds: xr.Dataset,
    labels: xr.Dataset | xr.DataArray | None = None,
    *,
    pairs: bool = False,
) -> xr.DataArray:
    """NMI between every channel and every ground-truth factor (and pair of factors).

    Parameters
    ----------
    ds
        Fingerprints, or Posteriors (fingerprinted with one channel per latent).
        Label channels of ``ds`` (``kind == "label"``) are left out.
    labels
        Label Fingerprints (from :func:`ensemblex.label_fingerprints`) or an
        integer DataArray ``(factor, sample)``; by default the ``labels``
        variable that ``ds`` carries.
    pairs
        Also measure every pair of factors ``a``, ``b`` (``a`` before ``b``),
        named ``"<a>+<b>"`` on the ``factor`` coordinate after the single
        factors: the NMI with their joint label ``a * n_b + b``, whose
        fingerprint is the product of the two label fingerprints. A channel
        that encodes two factors together (e.g. a diagonal of posX and posY)
        shows here, where each factor alone looks weak.

    Returns
    -------
    xr.DataArray
        ``label_nmi`` with dims ``(channel, factor)``, float32, lazy when the
        pairwise engine is (call ``.compute()``); NaN for channels with less
        than ``MIN_INFO`` bits (their NMI is undefined). Channel coordinates are
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
    >>> label_nmi(post, pairs=True).factor.values.tolist()
    ['z0', 'z1', 'z2', 'z0+z1', 'z0+z2', 'z1+z2']
    """
    from .fingerprints import concat_fingerprints
    from .pairwise import pairwise

    kind = require_kind(ds, ("fingerprints", "posteriors"), "label_nmi()")
    if not isinstance(pairs, bool | np.bool_):
        raise InputTypeError(f"pairs must be True or False; got {pairs!r}.")
    if kind == "posteriors":
        from .fingerprints import fingerprint

        fp = fingerprint(ds)
    else:
        fp = ds
    label_fp = _label_fingerprints_of(ds, labels)
    if pairs and label_fp.sizes["channel"] >= 2:
        label_fp = concat_fingerprints(label_fp, _pair_label_fingerprints(label_fp))
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


# -- min_samples ---------------------------------------------------------------------


def _min_samples_rule(n_models: int | None, n_informative: int) -> tuple[int, str]:
    """``(min_samples, the rule in words)`` for ``min_samples="auto"``."""
    if n_models is not None and n_models > 0:
        grown = round(_PAPER_MIN_SAMPLES * (n_models / _PAPER_MODELS) ** (1 / 3))
        value = min(grown, math.ceil(n_models / 2), n_informative)
        value = max(value, 2)
        rule = (
            f"auto: round(20 * (M / 50) ** (1/3)) = {grown} for M = {n_models} models "
            f"(the paper's 20 at 50 models), at most ceil(M / 2) = "
            f"{math.ceil(n_models / 2)} and the {n_informative} informative channels, "
            "at least 2"
        )
        return value, rule
    value = int(min(max(n_informative // 8, 3), 20, max(n_informative, 1)))
    rule = (
        f"auto: no 'model' coordinate; one eighth of the {n_informative} informative "
        "channels, between 3 and 20"
    )
    return value, rule


#: models per point of the xi steepness window of ``xi_window="auto"``
_MODELS_PER_WINDOW_POINT = 1000


def _xi_window_rule(n_models: int | None) -> tuple[int, str]:
    """``(xi_window, the rule in words)`` for ``xi_window="auto"``."""
    if n_models is None or n_models <= 0:
        return 1, "auto: no 'model' coordinate; 1 (steepness from point to point)"
    # rounded half up (not Python's half to even): 1,500 models give 2, 2,500 give 3
    value = max(1, math.floor(n_models / _MODELS_PER_WINDOW_POINT + 0.5))
    return value, (
        f"auto: max(1, round(M / {_MODELS_PER_WINDOW_POINT})) = {value} for M = {n_models} "
        "models (1, the xi method's own steepness, below 1,500 models)"
    )


def auto_xi_window(ds: xr.Dataset | None = None, *, n_models: int | None = None) -> int:
    """The steepness window of OPTICS' xi method, which grows with the number of models.

    The xi method calls a point of the reachability plot steep when the
    reachability changes by ``xi`` from it to the next point. The plot of an
    ensemble of M models holds about M channels per group and, between
    groups, about M times as many channels that are partly like both (for
    instance channels that mix two factors): the climb out of a group is as
    high as in a small ensemble but spread over many more points, and once
    no single step is steep the groups are lost. ``xi_window`` measures
    steepness over that many points instead (:func:`ensemblex.optics_xi.
    cluster_optics_xi`). The rule::

        xi_window = max(1, round(M / 1000))

    (rounded half up) keeps the xi method's own definition (1) below 1,500
    models, where the paper's xi = 0.05 recovers the planted groups.

    Measured on :func:`ensemblex.testing.planted_ensemble` (five factors and two
    mixed channels per model at 50, 200 and 5,000 models; three or four
    factors and one mixed channel at 1,000 and 2,000), with ``min_samples``
    by :func:`auto_min_samples`: at 5,000 models a window of 1 finds one of
    the five factors, 3 finds four, 4 to 7 find exactly the five (ARI 1.0
    on the pure channels), 10 adds a group of 97 mixed channels; at 2,000
    models 1 to 5 find the three factors (ARI 0.999 at 1, 1.0 from 2); at
    200 models 1 to 3 find the five factors and 5 leaves 14 % of their
    channels as noise (so the window stays a small fraction of a group); at
    50 and 1,000 models every window from 1 to 5 gives the same groups.

    Parameters
    ----------
    ds
        A dataset with a ``model`` coordinate along its channels (Fingerprints,
        Pairwise ``model_a``, Clusters); or give ``n_models``.
    n_models
        The number of models M.

    Examples
    --------
    >>> [auto_xi_window(n_models=m) for m in (50, 1000, 2000, 5000, 20000)]
    [1, 1, 2, 5, 20]
    """
    if n_models is None:
        if ds is None:
            raise InputError("auto_xi_window needs a dataset or n_models=.")
        n_models = _count_models(_models_of(ds))
    elif isinstance(n_models, bool) or not isinstance(n_models, int | np.integer):
        raise InputTypeError(f"n_models must be an integer; got {n_models!r}.")
    return _xi_window_rule(n_models)[0]


def _count_models(models: Any) -> int | None:
    if models is None:
        return None
    values = np.asarray(models)
    return int(np.unique(values).size) if values.size else None


def auto_min_samples(
    ds: xr.Dataset | None = None,
    *,
    min_info: float = MIN_INFO,
    n_models: int | None = None,
    n_informative: int | None = None,
) -> int:
    """OPTICS ``min_samples`` that grows with the number of models of the ensemble.

    A group is one piece of information that recurs across training runs, so
    its size grows with the number M of models, and so do the chance
    neighbourhoods of channels that mix two factors and bridge two groups:
    with a fixed ``min_samples`` those bridges chain groups together or split
    them into fragments once the ensemble is large. The rule::

        min_samples = round(20 * (M / 50) ** (1/3)),  at most ceil(M / 2)
                      and the number of informative channels, at least 2

    gives the paper's 20 at its 50 models and grows slower than M, so a
    piece of information found by a fraction of the runs still forms a group
    (a group needs ``min_samples`` members; ``ceil(M / 2)`` keeps a factor
    that half of the runs found). M is the number of distinct values of the
    ``model`` coordinate of the (non-label) channels. Without a ``model``
    coordinate the rule falls back to one eighth of the informative
    channels, between 3 and 20.

    Why the cube root: on ``planted_ensemble`` with one entangled channel per
    model, 20 lets the entangled channels of one pair of factors form groups
    of their own at 1,000 models, 42 still does, 50-89 recover exactly the
    planted factors; at 2,000 models (two entangled channels per model) 50
    and 68 recover all five factors (ARI 1.0) while a square-root rule's 126
    leaves one factor's 2,000 channels as noise. The cube root gives 54 at
    1,000 and 68 at 2,000 models.

    Parameters
    ----------
    ds
        A Pairwise dataset (``info_a``, ``model_a``), Fingerprints (``model``;
        their information is computed) or Clusters (``info``, ``model``).
    min_info
        Information threshold in bits.
    n_models, n_informative
        The counts themselves, instead of (or overriding) ``ds``.

    Examples
    --------
    >>> auto_min_samples(n_models=50, n_informative=400)
    20
    >>> auto_min_samples(n_models=1000, n_informative=4000)
    54
    >>> auto_min_samples(n_models=10, n_informative=40)     # at most ceil(M / 2)
    5
    >>> import xarray as xr, numpy as np
    >>> pw = xr.Dataset({"info_a": ("channel_a", np.r_[np.ones(40), np.zeros(10)])})
    >>> auto_min_samples(pw)                                 # no model coordinate
    5
    """
    min_info = check_probability("min_info", min_info, high=math.inf)
    if ds is not None:
        models, info = _models_and_info(ds)
        if n_models is None:
            n_models = _count_models(models)
        if n_informative is None:
            n_informative = int(np.sum(info >= min_info))
    if n_informative is None:
        raise InputError("auto_min_samples needs a dataset or n_informative=.")
    return _min_samples_rule(n_models, int(n_informative))[0]


def _non_label(ds: xr.Dataset) -> tuple[str, np.ndarray]:
    """``(suffix, mask)``: ``"_a"`` for Pairwise (else ``""``), True for non-label channels."""
    a = "_a" if "info_a" in ds.data_vars else ""
    kinds = ds[f"kind{a}"].values if f"kind{a}" in ds.coords else None
    return a, ~_is_label(kinds, ds.sizes[f"channel{a}"])


def _models_of(ds: xr.Dataset) -> Any:
    """The model of each non-label channel (Pairwise ``model_a``, else ``model``), or None."""
    a, gauss = _non_label(ds)
    return ds[f"model{a}"].values[gauss] if f"model{a}" in ds.coords else None


def _models_and_info(ds: xr.Dataset) -> tuple[Any, np.ndarray]:
    """``(model of each non-label channel or None, information of each, bits)``."""
    a, gauss = _non_label(ds)
    if a:  # Pairwise
        info = _host(ds["info_a"])[gauss]
    elif "info" in ds.data_vars:  # Clusters
        info = _host(ds["info"])[gauss]
    else:
        from .fingerprints import info as info_fn

        info = _host(info_fn(ds.isel(channel=np.flatnonzero(gauss))))
    return _models_of(ds), info


# -- the pure function ---------------------------------------------------------------


@dataclass(frozen=True)
class ClusterResult:
    """What :func:`cluster_matrix` returns: plain NumPy arrays, indexed by point.

    Attributes
    ----------
    labels
        Group of each point, -1 for noise (scikit-learn's labels).
    ordering
        The OPTICS order.
    reachability, core_distances
        float64, ``inf`` where undefined.
    predecessor
        The point each point was reached from, -1 for the first of a run.
    central
        Exactly one True per group: the member with the highest mean
        similarity to the other members.
    ordered_similarity
        The similarity matrix in OPTICS order, block means over
        ``block_size`` x ``block_size`` points (float32, at most
        ``max_pixels`` squared).
    block_size
        Points per block of ``ordered_similarity``.
    similarity
        The full similarity matrix (float32, diagonal 1) when asked for,
        else ``None``.
    """

    labels: np.ndarray
    ordering: np.ndarray
    reachability: np.ndarray
    core_distances: np.ndarray
    predecessor: np.ndarray
    central: np.ndarray
    ordered_similarity: np.ndarray
    block_size: int
    similarity: np.ndarray | None = None


def _transforms(
    measure: str | None,
) -> tuple[Callable[[Any], Any] | None, Callable[[Any], Any]]:
    """``(distance transform or None, similarity transform)`` of the matrix values."""
    if measure is None:
        return None, lambda d: np.exp(-np.asarray(d, dtype=np.float64))
    m = get_measure(measure, "cluster")
    assert m.distance is not None and m.similarity is not None  # clusterable
    return m.distance, m.similarity


def _similarity_rows(
    matrix: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray | None,
    similarity: Callable[[Any], Any],
) -> np.ndarray:
    """float64 similarity of ``matrix[rows][:, cols]``, 1 where a row meets its own column."""
    block = matrix[rows] if cols is None else matrix[np.ix_(rows, cols)]
    sim = np.asarray(similarity(np.asarray(block, dtype=np.float64)), dtype=np.float64)
    col_ids = np.arange(matrix.shape[1]) if cols is None else cols
    i, j = np.nonzero(rows[:, None] == col_ids[None, :]) if rows.size * col_ids.size else ((), ())
    sim[i, j] = 1.0
    return sim


def _central(
    labels: np.ndarray, matrix: np.ndarray, similarity: Callable[[Any], Any]
) -> np.ndarray:
    """One member per group: the highest mean similarity to the rest of its group."""
    central = np.zeros(labels.shape, dtype=bool)
    for g in np.unique(labels[labels >= 0]):
        members = np.flatnonzero(labels == g)
        if members.size == 1:  # degenerate one-member group: it is its own centre
            central[members[0]] = True
            continue
        rest = np.empty(members.size)
        step = max(1, _BLOCK_BYTES // (8 * members.size))
        for s in range(0, members.size, step):
            rows = members[s : s + step]
            sim = _similarity_rows(matrix, rows, members, similarity)
            # the diagonal is 1 (each row meets itself once): leave it out
            rest[s : s + step] = (sim.sum(axis=1) - 1.0) / (members.size - 1)
        central[members[int(np.argmax(rest))]] = True
    return central


def _ordered_blocks(
    matrix: np.ndarray,
    ordering: np.ndarray,
    similarity: Callable[[Any], Any],
    max_pixels: int,
) -> tuple[np.ndarray, int]:
    """Similarity in OPTICS order as block means of at most ``max_pixels`` squared."""
    n = ordering.size
    block = max(1, math.ceil(n / max_pixels))
    starts = np.arange(0, n, block)
    counts = np.diff(np.append(starts, n)).astype(np.float64)
    out = np.empty((starts.size, starts.size), dtype=np.float64)
    # whole pixel rows per pass, about _BLOCK_BYTES of float64 scratch
    per_pass = max(1, _BLOCK_BYTES // (8 * max(n, 1) * block))
    m = starts.size
    for p in range(0, m, per_pass):
        q = min(p + per_pass, m)
        r0, r1 = int(starts[p]), int(starts[q]) if q < m else n
        sim = _similarity_rows(matrix, ordering[r0:r1], ordering, similarity)
        col_sums = np.add.reduceat(sim, starts, axis=1)
        out[p:q] = np.add.reduceat(col_sums, starts[p:q] - r0, axis=0)
    out /= counts[:, None] * counts[None, :]
    return out.astype(np.float32), block


def _check_cluster_options(
    cluster_method: Any,
    xi: Any,
    max_eps: Any,
    eps: Any,
    min_cluster_size: Any,
    predecessor_correction: Any,
) -> tuple[str, float, float, float | None, int | float | None, bool]:
    cluster_method = check_option("cluster_method", cluster_method, ("xi", "dbscan"))
    xi = check_probability("xi", xi)
    if xi >= 1.0:  # every rise would be infinitely steep
        raise InputError(f"xi must be below 1 (a fraction of the reachability); got {xi!r}.")
    max_eps = check_probability("max_eps", max_eps, high=math.inf)
    if eps is not None:
        eps = check_probability("eps", eps, high=math.inf)
        if eps > max_eps:
            raise InputError(f"eps ({eps}) must not exceed max_eps ({max_eps}).")
    if min_cluster_size is not None:
        if isinstance(min_cluster_size, int | np.integer) and not isinstance(
            min_cluster_size, bool
        ):
            min_cluster_size = check_positive_int("min_cluster_size", min_cluster_size, 2)
        else:
            min_cluster_size = check_probability("min_cluster_size", min_cluster_size)
            if min_cluster_size == 0:
                raise InputError(
                    "min_cluster_size must be an integer >= 2 or a fraction in (0, 1]; got 0."
                )
    if not isinstance(predecessor_correction, bool | np.bool_):
        raise InputTypeError(
            f"predecessor_correction must be True or False; got {predecessor_correction!r}."
        )
    return cluster_method, xi, max_eps, eps, min_cluster_size, bool(predecessor_correction)


def cluster_matrix(
    matrix: Any,
    *,
    measure: ClusterMeasure | None = "nmi",
    min_samples: int,
    cluster_method: ClusterMethod = "xi",
    xi: float = 0.05,
    max_eps: float = math.inf,
    eps: float | None = None,
    min_cluster_size: int | float | None = None,
    predecessor_correction: bool = True,
    keep_similarity: bool = False,
    max_pixels: int = MAX_PIXELS,
    xi_window: int = 1,
) -> ClusterResult:
    """OPTICS groups of the points of a symmetric matrix, as plain arrays.

    The distance between two points is the measure's distance of the matrix
    value (NMI: ``-ln(max(NMI, 1e-4))``; VI: ``max(VI, 0)``; see
    :mod:`ensemblex.measures`), 0 from a point to itself. The OPTICS graph is
    :func:`ensemblex.optics.compute_optics_graph` (scikit-learn's, in O(n^2)
    time, without a distance copy of the matrix); the groups are the xi method
    of :func:`ensemblex.optics_xi.cluster_optics_xi` (scikit-learn's
    ``cluster_optics_xi`` when ``xi_window=1``) or scikit-learn's
    ``cluster_optics_dbscan``, with the parameters of
    :class:`sklearn.cluster.OPTICS`.

    Parameters
    ----------
    matrix
        ``(n, n)`` values of ``measure`` (float32 is enough: rows are promoted
        one at a time); with ``measure=None``, distances.
    measure
        ``"nmi"``, ``"vi"``, or ``None`` (``matrix`` holds distances; the
        similarity is ``exp(-distance)``).
    min_samples
        OPTICS ``min_samples``, the point itself included (>= 2).
    cluster_method, xi, max_eps, eps, min_cluster_size, predecessor_correction
        As in :class:`sklearn.cluster.OPTICS`.
    keep_similarity
        Also return the full similarity matrix (n^2 float32 values).
    max_pixels
        Side of ``ordered_similarity``, at most.
    xi_window
        Points over which the xi method measures steepness (1: from one point
        to the next, scikit-learn's; see :func:`auto_xi_window`).

    Returns
    -------
    ClusterResult

    Examples
    --------
    >>> import numpy as np
    >>> nmi = np.full((6, 6), 0.01, dtype=np.float32)
    >>> nmi[:3, :3] = nmi[3:, 3:] = 0.9
    >>> res = cluster_matrix(nmi, min_samples=2)
    >>> res.labels.tolist(), res.central.sum().item()
    ([0, 0, 0, 1, 1, 1], 2)
    >>> res.ordered_similarity[0].astype(float).round(2).tolist()   # 1 pixel per channel
    [1.0, 0.9, 0.9, 0.01, 0.01, 0.01]
    >>> small = cluster_matrix(nmi, min_samples=2, max_pixels=2)   # 3 channels per pixel
    >>> small.block_size, small.ordered_similarity.astype(float).round(3).tolist()
    (3, [[0.933, 0.01], [0.01, 0.933]])
    """
    from sklearn.cluster import cluster_optics_dbscan

    x = np.asarray(matrix)
    if x.ndim != 2 or x.shape[0] != x.shape[1]:
        raise InputError(f"cluster_matrix needs a square (n, n) matrix; got shape {x.shape}.")
    max_pixels = check_positive_int("max_pixels", max_pixels)
    method, xi, max_eps, eps, min_cluster_size, correction = _check_cluster_options(
        cluster_method, xi, max_eps, eps, min_cluster_size, predecessor_correction
    )
    distance, similarity = _transforms(measure)
    ordering, core, reach, pred = compute_optics_graph(
        x, min_samples=min_samples, max_eps=max_eps, transform=distance
    )
    if method == "xi":
        labels, _ = cluster_optics_xi(
            reachability=reach,
            predecessor=pred,
            ordering=ordering,
            min_samples=min_samples,
            min_cluster_size=min_cluster_size,
            xi=xi,
            predecessor_correction=correction,
            window=check_positive_int("xi_window", xi_window),
        )
    else:
        labels = cluster_optics_dbscan(
            reachability=reach,
            core_distances=core,
            ordering=ordering,
            eps=max_eps if eps is None else eps,
        )
    labels = np.asarray(labels, dtype=np.int64)
    central = _central(labels, x, similarity)
    ordered, block = _ordered_blocks(x, ordering, similarity, max_pixels)
    full = None
    if keep_similarity:
        n = x.shape[0]
        full = np.empty((n, n), dtype=np.float32)
        step = max(1, _BLOCK_BYTES // (8 * max(n, 1)))
        for s in range(0, n, step):
            rows = np.arange(s, min(n, s + step))
            full[rows] = _similarity_rows(x, rows, None, similarity)
    return ClusterResult(
        labels=labels,
        ordering=ordering,
        reachability=reach,
        core_distances=core,
        predecessor=pred,
        central=central,
        ordered_similarity=ordered,
        block_size=block,
        similarity=full,
    )


# -- reading the inputs --------------------------------------------------------------


@dataclass
class _Inputs:
    """What cluster() needs, read from Fingerprints and/or Pairwise results."""

    ids: np.ndarray  # every non-label channel
    coords: dict[str, Any]  # their channel coordinates
    info: np.ndarray  # bits
    informative: np.ndarray
    hint: str
    n_models: int | None
    matrix: np.ndarray | None = None  # float32 (n_inf, n_inf), owned
    label_nmi: np.ndarray | None = None  # (channel, factor)
    factor_names: list[Hashable] | None = None
    pair_nmi: np.ndarray | None = None  # (channel, factor_pair)
    pair_names: list[str] | None = None
    label_chance: np.ndarray | None = None  # (channel, factor), central channels only
    pair_chance: np.ndarray | None = None  # (channel, factor_pair)


def _split_pairs(lab: xr.DataArray) -> tuple[np.ndarray, list[Hashable], np.ndarray, list[str]]:
    """``label_nmi(..., pairs=True)`` split into single factors and pairs."""
    names = [str(f) for f in lab["factor"].values]
    values = _host(lab.transpose("channel", "factor"), np.float32)
    single = [i for i, f in enumerate(names) if "+" not in f]
    pair = [i for i, f in enumerate(names) if "+" in f]
    return (
        values[:, single],
        [names[i] for i in single],
        values[:, pair],
        [names[i] for i in pair],
    )


def _label_nmi_with_information(
    fp: xr.Dataset,
    rows: np.ndarray,
    info: np.ndarray,
    labels: xr.Dataset | None,
    *,
    pairs: bool,
) -> tuple[xr.DataArray, np.ndarray]:
    """:func:`label_nmi` of the channels ``rows`` of ``fp`` that have some information.

    ``label_nmi()`` is NaN under ``MIN_INFO`` bits, so channels well under it
    (``info`` below half, a margin for the rounding of the two computations of
    the information) are left out rather than computed: often a third of an
    ensemble's channels. Returns the label NMI and the positions in ``rows``
    it covers (see :func:`_rows_or_nan`).
    """
    some = np.flatnonzero(info >= 0.5 * MIN_INFO)
    return label_nmi(fp.isel(channel=rows[some]), labels, pairs=pairs), some


def _rows_or_nan(values: np.ndarray, some: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """float32 ``(rows.size, k)``: ``values`` at the positions ``some``, NaN elsewhere."""
    out = np.full((rows.size, values.shape[1]), np.nan, dtype=np.float32)
    out[some] = values
    return out


def _row_chunks(var: xr.DataArray) -> int | tuple[int, ...] | None:
    """Row chunks of a (lazy) matrix: Dask chunks, else the store's (encoding)."""
    if var.chunks is not None:
        return tuple(var.chunks[0])
    chunks = var.encoding.get("preferred_chunks", {}).get(var.dims[0])
    if chunks is None and var.encoding.get("chunks"):
        chunks = var.encoding["chunks"][0]
    return int(chunks) if chunks else None


def _row_blocks(var: xr.DataArray, rows: np.ndarray) -> list[np.ndarray]:
    """Sorted positions ``rows`` grouped by the row chunks of ``var`` (fixed blocks if none)."""
    chunks = _row_chunks(var)
    if chunks is None:
        step = max(1, _BLOCK_BYTES // (4 * max(int(var.shape[1]), 1)))
        return [rows[s : s + step] for s in range(0, rows.size, step)]
    if isinstance(chunks, int):
        chunks = (chunks,) * math.ceil(var.shape[0] / chunks)
    bounds = np.cumsum((0, *chunks))
    which = np.searchsorted(bounds, rows, side="right") - 1
    cuts = np.flatnonzero(np.diff(which)) + 1
    return [b for b in np.split(rows, cuts) if b.size]


def _read_block(var: xr.DataArray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``var[rows][:, cols]`` as NumPy: only those rows and columns are read.

    Orthogonal indexing through xarray reads a lazy backend (Zarr, netCDF)
    or a Dask array for just the selection, never the whole matrix.
    """
    sub = var.isel({var.dims[0]: rows, var.dims[1]: cols})
    data = sub.data
    if hasattr(data, "compute") and not isinstance(data, np.ndarray):
        data = data.compute()
    return np.asarray(to_numpy(data))


def _read_square(
    var: xr.DataArray, sel: np.ndarray, ids: np.ndarray, measure: str, hint: str
) -> np.ndarray:
    """``var[sel][:, sel]`` as one symmetric float32 matrix, read a block of rows at a time.

    Only the rows and columns ``sel`` are read (a lazy array reads its chunks
    one row of chunks at a time); non-finite values and asymmetry beyond
    rounding are errors naming the channels; the matrix is made exactly
    symmetric (the mean with its transpose) in place.
    """
    n = sel.size
    out = np.empty((n, n), dtype=np.float32)
    if n == 0:
        return out
    order = np.argsort(sel, kind="stable")  # read rows in storage order
    sorted_sel = sel[order]
    n_bad, first_bad = 0, None
    for rows in _row_blocks(var, sorted_sel):
        block = _read_block(var, rows, sel)
        where = order[np.searchsorted(sorted_sel, rows)]
        out[where] = block
        bad = ~np.isfinite(block)
        if bad.any():
            n_bad += int(bad.sum())
            if first_bad is None:
                a, b = np.argwhere(bad)[0]
                first_bad = (int(where[a]), int(b))
    if first_bad is not None:
        a, b = first_bad
        raise InputError(
            f"the {measure.upper()} matrix of the informative channels has {n_bad} "
            f"non-finite entries (first: channel {ids[a].item()!r} vs channel "
            f"{ids[b].item()!r} = {out[a, b]}); OPTICS needs finite distances. {hint}"
        )
    _symmetrise(out, ids, measure)
    return out


def _symmetrise(m: np.ndarray, ids: np.ndarray, measure: str) -> None:
    """``m = (m + m.T) / 2`` in place, block by block; an error where it is not symmetric."""
    n = m.shape[0]
    step = max(1, int(math.sqrt(_BLOCK_BYTES / 8)))
    for i in range(0, n, step):
        for j in range(i, n, step):
            if np.array_equal(m[i : i + step, j : j + step], m[j : j + step, i : i + step].T):
                continue  # already symmetric (a Pairwise store writes both halves): as is
            a = m[i : i + step, j : j + step].astype(np.float64)
            b = m[j : j + step, i : i + step].T.astype(np.float64)
            gap = np.abs(a - b) > _SYMMETRY_TOL * np.maximum(1.0, np.abs(a))
            if gap.any():
                r, c = np.argwhere(gap)[0]
                raise InputError(
                    f"the {measure.upper()} matrix is not symmetric: channel "
                    f"{ids[i + r].item()!r} vs channel {ids[j + c].item()!r} is {a[r, c]}, "
                    f"the other way {b[r, c]}. Pass the Pairwise results of a set of "
                    "channels with itself (pairwise(fp))."
                )
            mean = (0.5 * (a + b)).astype(np.float32)
            m[i : i + step, j : j + step] = mean
            m[j : j + step, i : i + step] = mean.T


def _from_pairwise(
    pw: xr.Dataset, fp: xr.Dataset | None, measure: str, min_info: float
) -> tuple[_Inputs, Callable[[], None]]:
    """Inputs from Pairwise results; the returned callable reads the matrix."""
    if pw.sizes["channel_a"] != pw.sizes["channel_b"] or not np.array_equal(
        pw["channel_a"].values, pw["channel_b"].values
    ):
        raise InputError(
            "cluster() needs the Pairwise results of a set of channels with itself "
            "(pairwise(fp), other=None); this one compares two different sets "
            f"({pw.sizes['channel_a']} x {pw.sizes['channel_b']} channels)."
        )
    pw_ids = pw["channel_a"].values
    if fp is not None:
        fp_ids = fp["channel"].values
        missing = np.setdiff1d(fp_ids, pw_ids)
        if missing.size:
            raise InputError(
                f"pairwise= lacks {missing.size} channels of the Fingerprints "
                f"(first: {missing[0].item()!r}); pass the Pairwise results of these "
                "Fingerprints."
            )
        import pandas as pd

        positions = pd.Index(pw_ids).get_indexer(fp_ids)
        coords_all = _channel_coords(fp, "channel")
    else:
        positions = np.arange(pw_ids.size)
        coords_all = _channel_coords(pw, "channel_a", "_a")
    is_label = _is_label(coords_all.get("kind"), positions.size)
    pw_min_info = float(pw.attrs.get("min_info", min_info))
    hint = (
        f"The Pairwise results were computed with min_info={pw_min_info}; channels "
        f"above min_info={min_info} but below that have no NMI: recompute pairwise "
        f"with min_info <= {min_info} or raise min_info."
        if measure == "nmi" and pw_min_info > min_info
        else "Check the Pairwise results (recompute them from valid Fingerprints)."
    )
    rows = np.flatnonzero(~is_label)
    info_all = _host(pw["info_a"])[positions]
    info = info_all[rows]
    informative = info >= min_info
    ids = pw_ids[positions][rows]
    coords = {k: np.asarray(v)[rows] for k, v in coords_all.items()}
    models = coords.get("model")
    inputs = _Inputs(
        ids=ids,
        coords=coords,
        info=info,
        informative=informative,
        hint=hint,
        n_models=_count_models(models),
    )
    label_cols = np.flatnonzero(is_label)
    if label_cols.size:
        inputs.label_nmi = _read_block(pw["nmi"], positions[rows], positions[label_cols])
        inputs.label_nmi = inputs.label_nmi.astype(np.float32)
        fac = coords_all.get("factor")
        inputs.factor_names = (
            [str(f) for f in np.asarray(fac)[label_cols]]
            if fac is not None
            else list(range(label_cols.size))
        )
        if fp is not None:
            # label channels among the Fingerprints: pairs of factors too
            pair_fp = _pair_label_fingerprints(fp.isel(channel=label_cols))
            lab, some = _label_nmi_with_information(fp, rows, info, pair_fp, pairs=False)
            pair_values = _host(lab.transpose("channel", "factor"), np.float32)
            inputs.pair_nmi = _rows_or_nan(pair_values, some, rows)
            inputs.pair_names = [str(f) for f in lab["factor"].values]
    elif fp is not None and "labels" in fp.data_vars:
        # labels carried by the Fingerprints: their NMI with every Gaussian channel
        lab, some = _label_nmi_with_information(fp, rows, info, None, pairs=True)
        single, names, pair_values, pair_names = _split_pairs(lab)
        inputs.label_nmi = _rows_or_nan(single, some, rows)
        inputs.pair_nmi = _rows_or_nan(pair_values, some, rows)
        inputs.factor_names, inputs.pair_names = names, pair_names

    def read() -> None:
        sel = positions[rows[informative]]
        inputs.matrix = _read_square(pw[measure], sel, ids[informative], measure, hint)

    return inputs, read


def _from_fingerprints(
    fp: xr.Dataset, measure: str, min_info: float
) -> tuple[_Inputs, Callable[[], None]]:
    """Inputs from Fingerprints: information first, then the informative pairs only."""
    import dask

    from .fingerprints import info as info_fn
    from .pairwise import pairwise as pairwise_fn

    kinds = fp["kind"].values if "kind" in fp.coords else None
    is_label = _is_label(kinds, fp.sizes["channel"])
    gauss = fp.isel(channel=np.flatnonzero(~is_label)) if is_label.any() else fp
    info = _host(info_fn(gauss))
    informative = info >= min_info
    ids = gauss["channel"].values
    coords = _channel_coords(gauss, "channel")
    inputs = _Inputs(
        ids=ids,
        coords=coords,
        info=info,
        informative=informative,
        hint="Check the Fingerprints (non-finite posterior parameters?).",
        n_models=_count_models(coords.get("model")),
    )

    def read() -> None:
        sub = gauss.isel(channel=np.flatnonzero(informative))
        pw_lazy = pairwise_fn(sub, min_info=min_info)[measure]
        label_lazy = None
        if is_label.any():
            label_lazy = label_nmi(sub, fp.isel(channel=np.flatnonzero(is_label)), pairs=True)
        elif "labels" in fp.data_vars:
            label_lazy = label_nmi(sub, pairs=True)
        # one compute for the whole graph: pairwise and labels share fingerprint tiles
        computed, label_done = dask.compute(pw_lazy, label_lazy)
        inf_ids = ids[informative]
        matrix = np.asarray(to_numpy(computed.data))
        if matrix.dtype != np.float32:
            matrix = matrix.astype(np.float32)
        elif not matrix.flags.writeable:
            matrix = matrix.copy()
        bad = ~np.isfinite(matrix)
        if bad.any():
            a, b = np.argwhere(bad)[0]
            raise InputError(
                f"the {measure.upper()} matrix of the informative channels has "
                f"{int(bad.sum())} non-finite entries (first: channel {inf_ids[a].item()!r} "
                f"vs channel {inf_ids[b].item()!r} = {matrix[a, b]}); OPTICS needs finite "
                f"distances. {inputs.hint}"
            )
        _symmetrise(matrix, inf_ids, measure)
        inputs.matrix = matrix
        if label_done is not None:
            single, names, pairs, pair_names = _split_pairs(label_done)
            n = ids.size
            positions = np.flatnonzero(informative)
            inputs.label_nmi = np.full((n, single.shape[1]), np.nan, dtype=np.float32)
            inputs.label_nmi[positions] = single
            inputs.factor_names = names
            inputs.pair_nmi = np.full((n, pairs.shape[1]), np.nan, dtype=np.float32)
            inputs.pair_nmi[positions] = pairs
            inputs.pair_names = pair_names

    return inputs, read


# -- the xarray wrapper --------------------------------------------------------------


def _resolve_min_samples(min_samples: Any, inputs: _Inputs) -> tuple[int, str]:
    n_informative = int(inputs.informative.sum())
    if isinstance(min_samples, str):
        check_option("min_samples", min_samples, ("auto",))
        return _min_samples_rule(inputs.n_models, n_informative)
    value = check_positive_int("min_samples", min_samples, minimum=2)
    return value, "given"


def cluster(
    ds: xr.Dataset,
    measure: ClusterMeasure | None = None,
    *,
    min_samples: int | Literal["auto"] = "auto",
    min_info: float = MIN_INFO,
    pairwise: xr.Dataset | None = None,
    cluster_method: ClusterMethod = "xi",
    xi: float = 0.05,
    max_eps: float = math.inf,
    eps: float | None = None,
    min_cluster_size: int | float | None = None,
    predecessor_correction: bool = True,
    keep_similarity: bool | None = None,
    metric: ClusterMeasure | None = None,
    xi_window: int | Literal["auto"] = "auto",
) -> xr.Dataset:
    """OPTICS hotspots: groups of channels that carry the same information.

    The paper's procedure (Sec. 3.3): channels with less than ``min_info`` bits
    are dropped; the distance between two informative channels is
    ``-ln(max(NMI, 1e-4))`` (``measure="nmi"``) or ``max(VI, 0)``
    (``measure="vi"``) of the symmetrised matrix, 0 from a channel to itself;
    OPTICS (scikit-learn's, computed in O(n^2) by :mod:`ensemblex.optics`)
    groups them. A group's *central* channel is the member with the highest
    mean similarity (NMI, or ``exp(-VI)``) to the other members. The work is
    :func:`cluster_matrix`; this wrapper reads the inputs and assembles the
    Clusters dataset.

    Memory: only the chosen measure between informative channels is read, one
    block of rows at a time, into one float32 matrix (``4 n^2`` bytes for
    ``n`` informative channels); nothing else of ``n^2`` size is held, and the
    Clusters dataset keeps the full similarity matrix only when it is small.

    Parameters
    ----------
    ds
        Fingerprints (the pairwise results are computed here, for the
        informative channels only, unless ``pairwise`` is given) or a symmetric
        Pairwise dataset, e.g. a lazy Zarr store. Label channels
        (``kind == "label"``) are not clustered: they give ``label_nmi``.
    measure
        ``"nmi"`` (default) or ``"vi"`` (:func:`ensemblex.measures.measure_names`).
    min_samples
        OPTICS ``min_samples``: the smallest group, in channels (>= 2), or
        ``"auto"``: :func:`auto_min_samples`, which grows with the number of
        models (20 at the paper's 50). The rule used is in the attrs.
    min_info
        Information threshold in bits.
    pairwise
        Precomputed Pairwise results of the Fingerprints ``ds`` (e.g. read back
        from a Zarr store), so they are not computed again.
    cluster_method, xi, max_eps, eps, min_cluster_size, predecessor_correction
        As in :class:`sklearn.cluster.OPTICS`.
    keep_similarity
        Keep the similarity matrix of the informative channels as the
        ``similarity`` variable; ``None``: when there are at most
        :data:`KEEP_SIMILARITY_MAX` informative channels.
    metric
        Deprecated alias of ``measure``.
    xi_window
        Points of the OPTICS order over which the xi method measures
        steepness (>= 1; 1 is scikit-learn's, from one point to the next), or
        ``"auto"``: :func:`auto_xi_window`, 1 below 1,500 models and
        ``round(M / 1000)`` from there. ``xi`` is a change per step, so with
        thousands of models the climb out of a group, spread over the many
        channels that lie between groups, has no steep step: at 5,000 models
        (``benchmarks/scale.py --channels 50000``) a window of 1 kept one of
        five planted groups and the rule's 5 kept all five. The value and the
        rule used are in the attrs. Not used by ``cluster_method="dbscan"``.

    Returns
    -------
    xr.Dataset
        Clusters, with dims ``channel`` (every non-label input channel, its
        coordinates carried over), ``order``, ``row``/``col``,
        ``channel_a``/``channel_b`` (the informative channels, when the
        similarity is kept) and ``factor`` (when labels are known):

        - ``info`` (channel): bits; ``informative`` (channel): ``info >= min_info``;
        - ``group`` (channel): OPTICS label, -1 for noise and dropped channels;
        - ``reachability``, ``core_distance`` (channel): OPTICS values (``inf``
          for the first point of the ordering, NaN for dropped channels);
        - ``predecessor`` (channel): position along ``channel`` of the channel
          each was reached from, -1 for none;
        - ``central`` (channel): exactly one True per group;
        - ``ordering`` (order): the OPTICS order as positions along ``channel``,
          so ``cl.isel(channel=cl.ordering)`` lists the informative channels in
          order;
        - ``ordered_similarity`` (row, col): the similarity matrix of the
          informative channels in OPTICS order, block means of ``block_size``
          (attr) channels per pixel, at most 1000 x 1000; ``row``/``col`` are
          the first ordering position of each block;
        - ``similarity`` (channel_a, channel_b): NMI (clipped to [0, 1]) or
          ``exp(-VI)`` between informative channels, when kept;
        - ``label_nmi`` (channel, factor): NMI with each ground-truth factor,
          when ``ds`` has label channels or a ``labels`` variable; and
          ``pair_nmi`` (channel, factor_pair) with each pair ``"<a>+<b>"`` of
          factors (:func:`label_nmi` with ``pairs=True``) when the labels
          themselves are at hand (Fingerprints);
        - ``channel_mean``, ``channel_logvar`` (and ``channel_label``) of the
          channels, when ``ds`` is Fingerprints, so
          :func:`ensemblex.plot.plot_cross` can compare two Clusters.

        Attrs: ``measure`` (and ``metric``, its old name), ``min_samples``,
        ``min_samples_rule``, ``xi_window`` and ``xi_window_rule`` (the xi
        method), ``min_info``, ``n_groups``, the OPTICS
        parameters and ``optics_kwargs`` (those given).

    Raises
    ------
    ensemblex.errors.InputError
        Fewer informative channels than ``min_samples``; a NaN or inf in the
        matrix (e.g. ``pairwise`` computed with a larger ``min_info``); a
        matrix that is not symmetric; a bad option.

    Examples
    --------
    >>> from ensemblex.testing import planted_ensemble
    >>> post = planted_ensemble(n_models=8, n_latent=5, n_samples=80, n_mixed=0)
    >>> cl = cluster(post.repinfo.fingerprint(), min_samples=5)
    >>> int(cl.informative.sum()), sorted(set(cl.group.values.tolist()))
    (24, [-1, 0, 1, 2])
    >>> cl.central.groupby(cl.group).sum().values.tolist()
    [0, 1, 1, 1]
    >>> cluster(post.repinfo.fingerprint()).attrs["min_samples"]   # auto: 8 models
    4
    """
    kind = require_kind(ds, ("fingerprints", "pairwise"), "cluster()")
    name = resolve_alias(measure, "nmi", old_name="metric", old_value=metric, function="cluster()")
    name = get_measure(name, "cluster", option="measure" if metric is None else "metric").name
    min_info = check_probability("min_info", min_info, high=math.inf)
    options = _check_cluster_options(
        cluster_method, xi, max_eps, eps, min_cluster_size, predecessor_correction
    )
    if keep_similarity is not None and not isinstance(keep_similarity, bool | np.bool_):
        raise InputTypeError(
            f"keep_similarity must be True, False or None; got {keep_similarity!r}."
        )
    if not isinstance(min_samples, str):
        check_positive_int("min_samples", min_samples, minimum=2)
    if isinstance(xi_window, str):
        check_option("xi_window", xi_window, ("auto",))
    else:
        check_positive_int("xi_window", xi_window)

    fp: xr.Dataset | None = None
    if kind == "pairwise":
        if pairwise is not None:
            raise InputError(
                "cluster() got a Pairwise dataset and pairwise=; pass the Pairwise "
                "results once (as the dataset, or with Fingerprints as pairwise=)."
            )
        inputs, read = _from_pairwise(ds, None, name, min_info)
    else:
        fp = ds
        if pairwise is not None:
            require_kind(pairwise, ("pairwise",), "cluster(pairwise=...)")
            inputs, read = _from_pairwise(pairwise, fp, name, min_info)
        else:
            inputs, read = _from_fingerprints(fp, name, min_info)

    min_samples_value, rule = _resolve_min_samples(min_samples, inputs)
    window, window_rule = (
        _xi_window_rule(inputs.n_models) if isinstance(xi_window, str) else (xi_window, "given")
    )
    n_informative = int(inputs.informative.sum())
    if n_informative < max(min_samples_value, 2):
        raise InputError(
            f"only {n_informative} of {inputs.ids.size} channels carry at least min_info="
            f"{min_info} bits, fewer than min_samples={min_samples_value}; OPTICS cannot "
            "form a group. Lower min_samples (or min_info), or add channels."
        )
    read()
    assert inputs.matrix is not None
    keep = n_informative <= KEEP_SIMILARITY_MAX if keep_similarity is None else keep_similarity
    method, xi, max_eps, eps, min_cluster_size, correction = options
    res = cluster_matrix(
        inputs.matrix,
        measure=name,  # type: ignore[arg-type]
        min_samples=min_samples_value,
        cluster_method=method,  # type: ignore[arg-type]
        xi=xi,
        max_eps=max_eps,
        eps=eps,
        min_cluster_size=min_cluster_size,
        predecessor_correction=correction,
        keep_similarity=bool(keep),
        xi_window=window,
    )
    inputs.matrix = None  # the n^2 matrix goes before the dataset is assembled
    _chance_of_centrals(inputs, res, fp)
    out = _assemble(inputs, res, name, fp)
    given = {
        k: v
        for k, v, default in (
            ("cluster_method", method, "xi"),
            ("xi", xi, 0.05),
            ("max_eps", max_eps, math.inf),
            ("eps", eps, None),
            ("min_cluster_size", min_cluster_size, None),
            ("predecessor_correction", correction, True),
        )
        if v != default
    }
    attrs: dict[str, Any] = {
        "measure": name,
        "metric": name,
        "min_samples": min_samples_value,
        "min_samples_rule": rule,
        "min_info": min_info,
        "n_groups": int(res.labels.max() + 1) if res.labels.size else 0,
        "cluster_method": method,
        "xi": xi,
        "max_eps": max_eps,
        "predecessor_correction": int(correction),
        "optics_kwargs": repr(given),
    }
    if method == "xi":
        attrs["xi_window"] = int(window)
        attrs["xi_window_rule"] = window_rule
    if method == "dbscan":
        attrs["eps"] = max_eps if eps is None else eps
    if min_cluster_size is not None:
        attrs["min_cluster_size"] = min_cluster_size
    return stamp(out, "clusters", **attrs)


def _chance_of_centrals(inputs: _Inputs, res: ClusterResult, fp: xr.Dataset | None) -> None:
    """Chance level of the label NMI of each central channel (:func:`chance_label_nmi`).

    Only where the labels themselves are at hand (Fingerprints with a
    ``labels`` variable or label channels); a Pairwise dataset alone holds
    the label NMI but not the labels, and describe_groups then ranks the raw NMI.
    """
    if fp is None or inputs.label_nmi is None or not res.central.any():
        return
    kinds = fp["kind"].values if "kind" in fp.coords else None
    is_label = _is_label(kinds, fp.sizes["channel"])
    if is_label.any():
        labels: xr.Dataset | None = fp.isel(channel=np.flatnonzero(is_label))
    elif "labels" in fp.data_vars:
        labels = None
    else:
        return
    positions = np.flatnonzero(inputs.informative)[res.central]
    chance = chance_label_nmi(
        fp.sel(channel=inputs.ids[positions]), labels, pairs=inputs.pair_nmi is not None
    )
    single, names, pairs, pair_names = _split_pairs(chance)
    if names != [str(f) for f in inputs.factor_names or []]:
        return  # degenerate: the label channels were named differently; keep raw NMI
    n = inputs.ids.size
    inputs.label_chance = np.full((n, single.shape[1]), np.nan, dtype=np.float32)
    inputs.label_chance[positions] = single
    if inputs.pair_nmi is not None and pair_names == inputs.pair_names:
        inputs.pair_chance = np.full((n, pairs.shape[1]), np.nan, dtype=np.float32)
        inputs.pair_chance[positions] = pairs


def _assemble(
    inputs: _Inputs, res: ClusterResult, measure: str, fp: xr.Dataset | None
) -> xr.Dataset:
    ids, informative = inputs.ids, inputs.informative
    n = ids.size
    positions = np.flatnonzero(informative)
    inf_ids = ids[informative]
    group = np.full(n, -1, dtype=np.int64)
    group[positions] = res.labels
    reach = np.full(n, np.nan)
    reach[positions] = res.reachability
    core = np.full(n, np.nan)
    core[positions] = res.core_distances
    pred = np.full(n, -1, dtype=np.int64)
    reached = res.predecessor >= 0
    pred[positions[reached]] = positions[res.predecessor[reached]]
    central = np.zeros(n, dtype=bool)
    central[positions] = res.central
    label = get_measure(measure).similarity_label
    starts = np.arange(0, res.ordering.size, res.block_size, dtype=np.int64)
    data: dict[str, Any] = {
        "info": ("channel", inputs.info.astype(np.float32), {"units": "bit"}),
        "informative": ("channel", informative),
        "group": ("channel", group),
        "reachability": ("channel", reach),
        "core_distance": ("channel", core),
        "predecessor": ("channel", pred),
        "central": ("channel", central),
        "ordering": ("order", positions[res.ordering].astype(np.int64)),
        "ordered_similarity": (
            ("row", "col"),
            res.ordered_similarity,
            {"long_name": f"{label}, OPTICS order, block means", "block_size": res.block_size},
        ),
    }
    if res.similarity is not None:
        data["similarity"] = (("channel_a", "channel_b"), res.similarity, {"long_name": label})
    dims = ("channel", "order", "row", "col", "channel_a", "channel_b", "factor", "factor_pair")
    coords_out: dict[str, Any] = {"channel": ids, "row": starts, "col": starts}
    if res.similarity is not None:
        coords_out.update(channel_a=inf_ids, channel_b=inf_ids)
    if inputs.label_nmi is not None:
        data["label_nmi"] = (("channel", "factor"), inputs.label_nmi.astype(np.float32))
        coords_out["factor"] = inputs.factor_names
    if inputs.pair_nmi is not None and inputs.pair_names:
        data["pair_nmi"] = (("channel", "factor_pair"), inputs.pair_nmi.astype(np.float32))
        coords_out["factor_pair"] = inputs.pair_names
    chance = {"long_name": "chance level: NMI with the shuffled label (central channels)"}
    if inputs.label_chance is not None:
        data["label_nmi_chance"] = (("channel", "factor"), inputs.label_chance, chance)
    if inputs.pair_chance is not None and inputs.pair_names:
        data["pair_nmi_chance"] = (("channel", "factor_pair"), inputs.pair_chance, chance)
    coords_out.update(
        {k: ("channel", np.asarray(v)) for k, v in _drop_conflicts(inputs.coords, dims).items()}
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
    return out


# -- groups --------------------------------------------------------------------------


def group_channels(cl: xr.Dataset, group: int | None = None) -> tuple[list[int], int]:
    """The channel ids of one group of a Clusters dataset (default: the biggest).

    Examples
    --------
    >>> import xarray as xr
    >>> cl = xr.Dataset({"group": ("channel", [0, 1, 1, -1])}, coords={"channel": [0, 1, 2, 3]})
    >>> group_channels(cl)
    ([1, 2], 1)
    >>> group_channels(cl, 5)
    Traceback (most recent call last):
    ...
    ensemblex.errors.InputError: group 5 is not in the clusters; its groups are 0, 1 (-1 is noise).
    """
    groups = np.asarray(cl["group"].values)
    found = sorted({int(g) for g in groups if g >= 0})
    if not found:
        raise InputError(
            "the clusters have no groups (every channel is noise); lower min_samples, "
            "or choose reference channels explicitly."
        )
    if group is None:
        sizes = {g: int(np.sum(groups == g)) for g in found}
        group = max(found, key=lambda g: (sizes[g], -g))
    elif group not in found:
        raise InputError(
            f"group {group} is not in the clusters; its groups are "
            f"{', '.join(map(str, found))} (-1 is noise)."
        )
    channels = [int(c) for c in np.asarray(cl["channel"].values)[groups == group]]
    return channels, int(group)


def _coherence(
    cl: xr.Dataset, members: np.ndarray, pairwise: xr.Dataset | None, measure: str
) -> float:
    """Mean similarity between distinct members of a group (NaN without a matrix)."""
    if members.size < 2:
        return math.nan
    ids = cl["channel"].values[members]
    if pairwise is not None:
        import pandas as pd

        pos = pd.Index(pairwise["channel_a"].values).get_indexer(ids)
        if (pos < 0).any():
            raise InputError(
                "describe_groups(pairwise=...) lacks channels of the clusters; pass the "
                "Pairwise results the clusters were computed from."
            )
        block = _read_block(pairwise[measure], pos, pos).astype(np.float64)
        sim = np.asarray(get_measure(measure, "cluster").similarity(0.5 * (block + block.T)))  # type: ignore[misc]
    elif "similarity" in cl.data_vars:
        sim = cl["similarity"].sel(channel_a=ids, channel_b=ids).values.astype(np.float64)
    else:
        return math.nan
    off = ~np.eye(members.size, dtype=bool)
    return float(sim[off].mean())


def describe_groups(clusters: xr.Dataset, *, pairwise: xr.Dataset | None = None) -> pd.DataFrame:
    """One row per group of a Clusters dataset: what the group is and what it carries.

    Columns:

    - ``group``, ``size`` (channels);
    - ``models``: how many distinct models have a member ("recurs in k of M
      runs"; the ``model`` channel coordinate, else the size);
    - ``bits``: the median information of its channels;
    - ``coherence``: the mean similarity between distinct members, from
      ``pairwise`` (the Pairwise results the clusters came from) or else the
      Clusters' own ``similarity`` when it was kept; NaN when neither is at
      hand (the column is always present);
    - ``central_model``, ``central_latent``: of the central channel (-1 when
      the coordinate is missing);
    - ``best_factors``, ``best_nmi``: the factor, or pair of factors
      ``"<a>+<b>"``, whose NMI with the central channel rises most above its
      chance level, and that NMI (``""`` and NaN without labels);
    - ``chance_nmi``: that label's chance level, the NMI with its samples
      shuffled (:func:`chance_label_nmi`; NaN where the Clusters were made
      without the labels themselves, and the raw NMI ranks the labels). A pair
      of fine factors on a few hundred samples tells nearly every sample
      apart and has a sizeable NMI with any channel by chance alone.

    Examples
    --------
    >>> from ensemblex.testing import planted_ensemble
    >>> post = planted_ensemble(n_models=8, n_latent=5, n_samples=80, n_mixed=0)
    >>> cl = cluster(post.repinfo.fingerprint(), min_samples=5)
    >>> table = describe_groups(cl)
    >>> table.columns.tolist()
    ['group', 'size', 'models', 'bits', 'coherence', 'central_model', 'central_latent', 'best_factors', 'best_nmi', 'chance_nmi']
    >>> table[["group", "size", "models"]].values.tolist()
    [[0, 8, 8], [1, 8, 8], [2, 8, 8]]
    >>> sorted(table.best_factors)
    ['z0', 'z1', 'z2']
    """
    import pandas as pd

    require_kind(clusters, ("clusters",), "describe_groups()")
    if pairwise is not None:
        require_kind(pairwise, ("pairwise",), "describe_groups(pairwise=...)")
    measure = str(clusters.attrs.get("measure", clusters.attrs.get("metric", "nmi")))
    group = np.asarray(clusters["group"].values)
    central = np.asarray(clusters["central"].values)
    info = np.asarray(clusters["info"].values, dtype=np.float64)
    models = clusters["model"].values if "model" in clusters.coords else None
    latents = clusters["latent"].values if "latent" in clusters.coords else None
    scores: list[tuple[np.ndarray, np.ndarray, list[str]]] = []
    for var, dim in (("label_nmi", "factor"), ("pair_nmi", "factor_pair")):
        if var in clusters.data_vars:
            values = np.asarray(clusters[var].values, dtype=np.float64)
            chance = (
                np.asarray(clusters[f"{var}_chance"].values, dtype=np.float64)
                if f"{var}_chance" in clusters.data_vars
                else np.full_like(values, np.nan)
            )
            scores.append((values, chance, [str(f) for f in clusters[dim].values]))
    rows = []
    for g in sorted({int(v) for v in group if v >= 0}):
        members = np.flatnonzero(group == g)
        centre = members[central[members]]
        c = int(centre[0]) if centre.size else int(members[np.argmax(info[members])])
        best, best_nmi, best_chance = _best_label(c, scores)
        rows.append(
            {
                "group": g,
                "size": int(members.size),
                "models": int(np.unique(models[members]).size)
                if models is not None
                else int(members.size),
                "bits": float(np.median(info[members])),
                "coherence": _coherence(clusters, members, pairwise, measure),
                "central_model": int(models[c]) if models is not None else -1,
                "central_latent": int(latents[c]) if latents is not None else -1,
                "best_factors": best,
                "best_nmi": best_nmi,
                "chance_nmi": best_chance,
            }
        )
    columns = [
        "group",
        "size",
        "models",
        "bits",
        "coherence",
        "central_model",
        "central_latent",
        "best_factors",
        "best_nmi",
        "chance_nmi",
    ]
    return pd.DataFrame(rows, columns=columns)


def _best_label(
    c: int, scores: list[tuple[np.ndarray, np.ndarray, list[str]]]
) -> tuple[str, float, float]:
    """``(name, NMI, chance NMI)`` of the label that tells most about channel ``c``.

    Ranked by NMI above its chance level where that is known (fine labels such
    as pairs of factors have a high NMI with any channel on a small sample),
    by the raw NMI otherwise.
    """
    best, best_nmi, best_chance, best_score = "", math.nan, math.nan, -math.inf
    for values, chance, names in scores:
        for k, name in enumerate(names):
            value = values[c, k]
            if not np.isfinite(value):  # an undefined NMI (channel under min_info)
                continue
            base = chance[c, k]
            score = value - base if np.isfinite(base) else value
            if score > best_score:
                best, best_nmi, best_score = name, float(value), score
                best_chance = float(base) if np.isfinite(base) else math.nan
    return best, best_nmi, best_chance
