"""The OPTICS ordering of a precomputed distance matrix in O(n^2) time (pure NumPy).

:func:`compute_optics_graph` returns what scikit-learn's
``sklearn.cluster.compute_optics_graph`` returns for ``metric="precomputed"``
(ordering, core distances, reachability, predecessor), value for value, tie
for tie: scikit-learn's implementation re-validates the whole matrix at every
step of its loop, so its cost grows as n^3; here each step is one vectorised
update of one row. Cluster extraction is scikit-learn's
``cluster_optics_dbscan``, or the xi method of
:func:`ensemblex.optics_xi.cluster_optics_xi` (scikit-learn's
``cluster_optics_xi`` plus a steepness window for large ensembles, equal to
it with a window of 1), so groups mean what they mean there.

The matrix is read, never copied: a float32 matrix stays float32 (each row is
promoted to float64 when it is used, as scikit-learn promotes the whole
matrix), and core distances are computed over blocks of rows.

Examples
--------
>>> import numpy as np
>>> d = np.array([[0, 1, 5, 6], [1, 0, 5, 6], [5, 5, 0, 2], [6, 6, 2, 0]], dtype=np.float32)
>>> ordering, core, reach, pred = compute_optics_graph(d, min_samples=2)
>>> ordering.tolist(), core.tolist(), reach.tolist(), pred.tolist()
([0, 1, 2, 3], [1.0, 1.0, 2.0, 2.0], [inf, 1.0, 5.0, 2.0], [-1, 0, 0, 2])
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import InputError, InputTypeError

__all__ = ["compute_optics_graph", "core_distances"]

#: bytes of float64 scratch per block of rows in the core-distance pass
_BLOCK_BYTES = 32 * 2**20

#: scikit-learn rounds core and reachability distances to this many decimals
_DECIMALS = np.finfo(np.float64).precision


def _as_matrix(distance: Any) -> np.ndarray:
    x = np.asarray(distance)
    if x.ndim != 2 or x.shape[0] != x.shape[1]:
        raise InputError(f"OPTICS needs a square (n, n) distance matrix; got shape {x.shape}.")
    if x.dtype.kind not in "fiub":
        raise InputTypeError(f"the distance matrix must be real numbers; got dtype {x.dtype}.")
    if x.dtype.kind != "f":
        x = x.astype(np.float64)
    return x


def _rows64(x: np.ndarray, rows: slice, transform: Callable[[Any], Any] | None) -> np.ndarray:
    """Rows of ``x`` as float64 distances (``transform`` applied, own diagonal 0)."""
    block = np.asarray(x[rows], dtype=np.float64)
    if transform is not None:
        out = np.asarray(transform(block), dtype=np.float64)
        # never write into the caller's matrix (an identity transform returns a view)
        block = out.copy() if np.may_share_memory(out, x) else out
        start = rows.start or 0
        block[np.arange(block.shape[0]), np.arange(start, start + block.shape[0])] = 0.0
    return block


def _check_block(block: np.ndarray, start: int) -> None:
    bad = ~np.isfinite(block)
    if bad.any():
        a, b = np.argwhere(bad)[0]
        raise InputError(
            f"the distance matrix has non-finite entries (first: row {start + a}, "
            f"column {b} = {block[a, b]}); OPTICS needs finite distances."
        )
    neg = block < 0
    if neg.any():
        a, b = np.argwhere(neg)[0]
        raise InputError(
            f"the distance matrix has negative entries (first: row {start + a}, "
            f"column {b} = {block[a, b]}); distances must be >= 0."
        )


def core_distances(
    distance: Any,
    *,
    min_samples: int,
    max_eps: float = math.inf,
    transform: Callable[[Any], Any] | None = None,
) -> np.ndarray:
    """The ``min_samples``-th smallest distance of each row (the point itself counts).

    Computed over blocks of rows; values above ``max_eps`` become ``inf``, and
    every value is rounded as scikit-learn rounds it. Non-finite or negative
    distances are an error that names the first one.

    Examples
    --------
    >>> import numpy as np
    >>> d = np.array([[0.0, 1.0, 4.0], [1.0, 0.0, 2.0], [4.0, 2.0, 0.0]])
    >>> core_distances(d, min_samples=2).tolist()
    [1.0, 1.0, 2.0]
    >>> core_distances(d, min_samples=3, max_eps=3.0).tolist()
    [inf, 2.0, inf]
    """
    x = _as_matrix(distance)
    n = x.shape[0]
    k = _check_min_samples(min_samples, n)
    max_eps = _check_max_eps(max_eps)
    core = np.empty(n, dtype=np.float64)
    step = max(1, _BLOCK_BYTES // max(8 * n, 1))
    for start in range(0, n, step):
        rows = slice(start, min(n, start + step))
        block = _rows64(x, rows, transform)
        _check_block(block, start)
        core[rows] = np.partition(block, k - 1, axis=1)[:, k - 1]
    core[core > max_eps] = np.inf
    np.around(core, decimals=_DECIMALS, out=core)
    return core


def _check_min_samples(min_samples: Any, n: int) -> int:
    if isinstance(min_samples, bool) or not isinstance(min_samples, int | np.integer):
        raise InputTypeError(
            f"min_samples must be an integer >= 2; got {type(min_samples).__name__}."
        )
    if not 2 <= int(min_samples) <= n:
        raise InputError(
            f"min_samples must be an integer >= 2 and at most the number of points ({n}); "
            f"got {min_samples}."
        )
    return int(min_samples)


def _check_max_eps(max_eps: Any) -> float:
    try:
        value = float(max_eps)
    except (TypeError, ValueError):
        raise InputTypeError(f"max_eps must be a number >= 0; got {max_eps!r}.") from None
    if not value >= 0:  # NaN too
        raise InputError(f"max_eps must be a number >= 0 (inf: no limit); got {max_eps!r}.")
    return value


def compute_optics_graph(
    distance: Any,
    *,
    min_samples: int,
    max_eps: float = math.inf,
    transform: Callable[[Any], Any] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """OPTICS reachability graph of a precomputed distance matrix, in O(n^2) time.

    The same result as ``sklearn.cluster.compute_optics_graph(distance,
    metric="precomputed", min_samples=min_samples, max_eps=max_eps, ...)``:

    - the core distance of a point is the ``min_samples``-th smallest distance
      of its row (the point itself counts), ``inf`` above ``max_eps``;
    - the next point is the unprocessed one with the smallest reachability,
      the smallest index on ties (also when every reachability is ``inf``);
    - a processed core point lowers the reachability of each unprocessed point
      within ``max_eps`` (boundary included) to
      ``max(distance, core distance)`` where that is strictly smaller, and
      becomes its predecessor.

    Distances and reachabilities are rounded to 15 decimals as scikit-learn
    rounds them, so ties are broken identically. Rows are read in order of
    processing; the matrix is not copied.

    Parameters
    ----------
    distance
        ``(n, n)`` matrix of distances (rows are used, as scikit-learn uses
        them), float32 or float64; other real dtypes are converted.
    min_samples
        Points in a core neighbourhood, the point itself included (>= 2).
    max_eps
        Largest distance considered (``inf``: all).
    transform
        Elementwise map applied to (float64) rows before use, e.g. a measure's
        distance (:attr:`ensemblex.measures.Measure.distance`), so the matrix
        can hold the measure itself; with it, the distance of a point to itself
        is taken as 0.

    Returns
    -------
    ordering, core_distances, reachability, predecessor
        ``ordering`` (int64): the points in OPTICS order; the rest are indexed
        by point: ``core_distances`` and ``reachability`` (float64, ``inf``
        where undefined), ``predecessor`` (int64, -1 for the first point of
        each connected run).

    Raises
    ------
    ensemblex.errors.InputError
        A non-square matrix, a non-finite or negative distance (the message
        names the first), ``min_samples`` outside ``[2, n]`` or a negative
        ``max_eps``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(30, 2))
    >>> d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1)).astype(np.float32)
    >>> ordering, core, reach, pred = compute_optics_graph(d, min_samples=4)
    >>> sorted(ordering.tolist()) == list(range(30)), int(pred[ordering[0]])
    (True, -1)
    """
    x = _as_matrix(distance)
    n = x.shape[0]
    core = core_distances(x, min_samples=min_samples, max_eps=max_eps, transform=transform)
    max_eps = float(max_eps)
    limited = math.isfinite(max_eps)

    reach = np.full(n, np.inf)
    pred = np.full(n, -1, dtype=np.int64)
    processed = np.zeros(n, dtype=bool)
    ordering = np.empty(n, dtype=np.int64)
    # reachability of the unprocessed points; inf for processed ones, so argmin
    # finds the next point whenever some unprocessed reachability is finite
    work = np.full(n, np.inf)
    first = 0  # every point below is processed
    for step in range(n):
        point = int(np.argmin(work))
        if not work[point] < np.inf:
            # every unprocessed reachability is inf: the smallest unprocessed index
            while processed[first]:
                first += 1
            point = first
        processed[point] = True
        work[point] = np.inf
        ordering[step] = point
        c = core[point]
        if c == np.inf:
            continue
        row = _rows64(x, slice(point, point + 1), transform)[0]
        rd = np.maximum(row, c)
        np.around(rd, decimals=_DECIMALS, out=rd)
        improved = rd < reach
        improved &= ~processed
        if limited:
            improved &= row <= max_eps
        idx = np.flatnonzero(improved)
        if idx.size:
            values = rd[idx]
            reach[idx] = values
            work[idx] = values
            pred[idx] = point
    if np.all(np.isinf(reach)):
        warnings.warn(
            "All reachability values are inf. Set a larger max_eps or all data will be "
            "considered outliers.",
            UserWarning,
            stacklevel=2,
        )
    return ordering, core, reach, pred
