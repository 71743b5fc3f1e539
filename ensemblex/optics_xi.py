"""Groups from an OPTICS reachability plot by the xi method, with steepness over a window.

:func:`cluster_optics_xi` extracts the same clusters as scikit-learn's
``sklearn.cluster.cluster_optics_xi`` (the xi-steep method of Ankerst et al.,
1999, with scikit-learn's corrections of its definitions 9 and 11, and the
predecessor correction of Schubert and Gertz, 2018) when ``window=1``, value
for value: the tests hold it to scikit-learn's labels and clusters on random,
tied and planted plots.

``window`` is the one addition. The xi method calls a point steep when the
reachability changes by the factor ``1 - xi`` from it to the *next* point.
A reachability plot of M models holds about M points per recurring piece of
information, and the channels that lie between two pieces (for instance
channels that mix two factors) are about M times as many too: the climb out
of a group is as high as in a small ensemble but spread over M times as many
points, so that no single step between neighbours is steep and the groups
are lost (measured: ``benchmarks/scale.py`` at 5,000 models found one of
five planted factors). With ``window=w`` a point is steep upward when the
highest of the next ``w`` points is higher by the factor ``1 / (1 - xi)``,
and steep downward when the lowest of them is lower by it (looking no
further than the last point of the plot); everything else (how steep areas
grow, the conditions on a cluster's ends, the predecessor correction, the
labels) is unchanged. A single high point between two groups is then still
the top of the climb, whatever the window.

Pure NumPy (bottom layer): no xarray, no Dask.

Examples
--------
>>> import numpy as np
>>> reach = np.array([np.inf, 1, 1, 1, 9, 1, 1, 1])          # two valleys
>>> ordering = np.arange(8)
>>> predecessor = np.array([-1, 0, 1, 2, 3, 4, 5, 6])
>>> labels, clusters = cluster_optics_xi(
...     reachability=reach, predecessor=predecessor, ordering=ordering, min_samples=2
... )
>>> labels.tolist(), clusters.tolist()
([0, 0, 0, 0, 1, 1, 1, 1], [[0, 3], [4, 7], [0, 7]])
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .errors import InputError

__all__ = ["cluster_optics_xi"]


def _size(value: Any, n: int, name: str) -> int:
    """An OPTICS size: a whole number > 1, or a fraction in (0, 1] of the ``n`` points.

    As scikit-learn reads it: a fraction becomes ``max(2, int(fraction * n))``.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise InputError(f"{name} must be an integer > 1 or a fraction in (0, 1]; got {value!r}.")
    if float(value) > n:
        raise InputError(f"{name} must be at most the number of points ({n}); got {value!r}.")
    if float(value) > 1:
        if float(value) != int(value):
            raise InputError(f"{name} above 1 must be a whole number; got {value!r}.")
        return int(value)
    if not float(value) > 0:
        raise InputError(f"{name} must be an integer > 1 or a fraction in (0, 1]; got {value!r}.")
    return max(2, int(float(value) * n))


def _steepness(
    plot: np.ndarray, xi: float, window: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(steep up, steep down, up, down)`` flags of the ``n`` points of ``plot`` (n + 1 long).

    ``plot`` ends with the extra ``inf`` the method appends. Up and down
    compare a point with the next one. Steepness compares it, as a ratio,
    with the highest (up) or lowest (down) of the next ``window`` points, not
    reaching past the last point of the plot; the last point itself is
    compared with the appended ``inf``, as in the method. With ``window=1``
    that is the next point. 0/0 and inf/inf are neither.
    """
    n = plot.size - 1
    keep = 1.0 - xi
    i = np.arange(n)
    last = np.maximum(n - 1, i + 1)  # the furthest point each may look at
    ahead = [plot[np.minimum(i + k, last)] for k in range(1, window + 1)]
    highest, lowest = np.maximum.reduce(ahead), np.minimum.reduce(ahead)
    with np.errstate(invalid="ignore", divide="ignore"):
        next_ratio = plot[:-1] / plot[1:]
        up_ratio, down_ratio = plot[:-1] / highest, plot[:-1] / lowest
    return up_ratio <= keep, down_ratio >= 1.0 / keep, next_ratio < 1.0, next_ratio > 1.0


def _area_end(steep: np.ndarray, against: np.ndarray, start: int, min_samples: int) -> int:
    """The last point of the maximal steep area that begins at the steep point ``start``.

    The area runs on while its points are steep, or go neither way, or go
    its way without being steep; it ends before a point that goes against
    it, or after more than ``min_samples`` non-steep points in a row.
    """
    end, flat = start, 0
    for k in range(start, steep.size):
        if steep[k]:
            end, flat = k, 0
        elif against[k]:
            break
        else:
            flat += 1
            if flat > min_samples:
                break
    return end


def _predecessor_check(
    plot: np.ndarray, pred_plot: np.ndarray, position: np.ndarray, start: int, end: int
) -> int | None:
    """The cluster's end after the predecessor correction, ``None`` if nothing is left.

    Walks the end back until it is lower than the start, or the point that
    reached it lies inside ``[start, end)`` of the plot.
    """
    while start < end:
        if plot[start] > plot[end]:
            return end
        p = pred_plot[end]
        if p >= 0 and start <= position[p] < end:
            return end
        end -= 1
    return None


def _xi_clusters(
    reachability: np.ndarray,
    predecessor: np.ndarray,
    ordering: np.ndarray,
    *,
    xi: float,
    min_samples: int,
    min_cluster_size: int,
    predecessor_correction: bool,
    window: int,
) -> list[tuple[int, int]]:
    """``[start, end]`` (inclusive, positions in the plot) of every cluster, inner ones first."""
    plot = np.append(reachability[ordering], np.inf)
    pred_plot = predecessor[ordering]
    position = np.empty(ordering.size, dtype=np.int64)
    position[ordering] = np.arange(ordering.size)
    keep = 1.0 - xi
    steep_up, steep_down, up, down = _steepness(plot, xi, window)

    downs: list[dict[str, Any]] = []  # steep down areas still open: start, end, mib
    clusters: list[tuple[int, int]] = []
    index, mib = 0, 0.0  # mib: the highest reachability since the last steep area

    def drop_passed_downs() -> None:
        # a steep down area stays open while everything after it is lower than its start
        nonlocal downs
        if math.isinf(mib):
            downs = []
            return
        downs = [d for d in downs if mib <= plot[d["start"]] * keep]
        for d in downs:
            d["mib"] = max(d["mib"], mib)

    for k in np.flatnonzero(steep_up | steep_down).tolist():
        if k < index:  # inside an area already found
            continue
        mib = max(mib, float(np.max(plot[index : k + 1])))
        drop_passed_downs()
        if steep_down[k]:
            end = _area_end(steep_down, up, k, min_samples)
            downs.append({"start": k, "end": end, "mib": 0.0})
            index = end + 1
            mib = float(plot[index])
            continue
        u_start, u_end = k, _area_end(steep_up, down, k, min_samples)
        index = u_end + 1
        mib = float(plot[index])
        after = plot[u_end + 1]  # the first point past the climb
        found: list[tuple[int, int]] = []
        for d in downs:
            if after * keep < d["mib"]:  # something in between rises above the climb's top
                continue
            c_start, c_end = d["start"], u_end
            top = plot[d["start"]]
            if top * keep >= after:
                # the descent starts higher: begin where it comes down to the climb's top
                while plot[c_start + 1] > after and c_start < d["end"]:
                    c_start += 1
            elif after * keep >= top:
                # the climb ends higher: stop where it passes the descent's start
                while plot[c_end - 1] > top and c_end > u_start:
                    c_end -= 1
            if predecessor_correction:
                corrected = _predecessor_check(plot, pred_plot, position, c_start, c_end)
                if corrected is None:
                    continue
                c_end = corrected
            if c_end - c_start + 1 < min_cluster_size:
                continue
            if c_start > d["end"] or c_end < u_start:  # must start in D and end in U
                continue
            found.append((c_start, c_end))
        clusters.extend(reversed(found))  # the innermost (latest opened) first
    return clusters


def cluster_optics_xi(
    *,
    reachability: Any,
    predecessor: Any,
    ordering: Any,
    min_samples: int | float,
    min_cluster_size: int | float | None = None,
    xi: float = 0.05,
    predecessor_correction: bool = True,
    window: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Labels and clusters of an OPTICS graph by the xi method, steepness over ``window`` points.

    With ``window=1`` this is scikit-learn's ``cluster_optics_xi``, with the
    same parameters and results (see the module notes for ``window``).

    Parameters
    ----------
    reachability, predecessor
        Per point (indexed by point, not by plot position), as OPTICS gives them.
    ordering
        The OPTICS order of the points.
    min_samples
        OPTICS ``min_samples`` (an integer > 1 or a fraction of the points):
        a steep area may hold this many non-steep points in a row.
    min_cluster_size
        The smallest cluster (an integer > 1 or a fraction of the points);
        ``None``: ``min_samples``.
    xi
        The change of reachability, as a fraction, that makes a point steep.
    predecessor_correction
        Schubert and Gertz's correction of the clusters' ends.
    window
        Steepness is measured from a point to the one ``window`` places later
        (>= 1; 1 is the xi method's own definition).

    Returns
    -------
    labels : ndarray of int64, (n,)
        The innermost cluster of each point that no smaller cluster claimed
        first, -1 for none (scikit-learn's labelling).
    clusters : ndarray of int64, (n_clusters, 2)
        ``[start, end]`` positions in the plot (inclusive), smaller clusters
        before the larger ones that hold them.

    Examples
    --------
    A climb out of a valley spread over many points: no single step is 5 %
    steep, but the climb over 4 points is.

    >>> import numpy as np
    >>> valley = np.ones(6)
    >>> climb = 1.03 ** np.arange(1, 41)            # +3 % per point, 3.3x in all
    >>> reach = np.concatenate([[np.inf], valley, climb, valley, climb])
    >>> order, pred = np.arange(reach.size), np.arange(reach.size) - 1
    >>> def groups(window):
    ...     labels, _ = cluster_optics_xi(reachability=reach, predecessor=pred,
    ...                                   ordering=order, min_samples=5, window=window)
    ...     return int(labels.max()) + 1
    >>> groups(1), groups(4)
    (1, 2)
    """
    reach = np.asarray(reachability, dtype=np.float64)
    pred = np.asarray(predecessor)
    order = np.asarray(ordering)
    n = reach.size
    if reach.ndim != 1 or pred.shape != reach.shape or order.shape != reach.shape:
        raise InputError(
            "reachability, predecessor and ordering must be 1-D and of one length; got shapes "
            f"{reach.shape}, {pred.shape} and {order.shape}."
        )
    if not np.array_equal(np.sort(order), np.arange(n)):
        raise InputError("ordering must hold every point index 0 .. n-1 exactly once.")
    if isinstance(xi, bool) or not isinstance(xi, int | float) or not 0.0 <= xi < 1.0:
        # xi = 1 would make every rise infinitely steep (scikit-learn divides by 0 there)
        raise InputError(f"xi must be a number in [0, 1); got {xi!r}.")
    if isinstance(window, bool) or not isinstance(window, int | np.integer) or window < 1:
        raise InputError(f"window must be an integer >= 1; got {window!r}.")
    samples = _size(min_samples, n, "min_samples")
    smallest = (
        samples if min_cluster_size is None else _size(min_cluster_size, n, "min_cluster_size")
    )
    found = _xi_clusters(
        reach,
        pred.astype(np.int64),
        order.astype(np.int64),
        xi=float(xi),
        min_samples=samples,
        min_cluster_size=smallest,
        predecessor_correction=bool(predecessor_correction),
        window=int(window),
    )
    plot_labels = np.full(n, -1, dtype=np.int64)
    label = 0
    for start, end in found:  # smaller clusters come first and keep their points
        if np.all(plot_labels[start : end + 1] == -1):
            plot_labels[start : end + 1] = label
            label += 1
    labels = np.empty(n, dtype=np.int64)
    labels[order] = plot_labels
    clusters = np.array(found, dtype=np.int64).reshape(-1, 2)
    return labels, clusters
