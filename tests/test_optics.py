"""O(n^2) OPTICS graph against scikit-learn's OPTICS(metric="precomputed")."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.cluster import OPTICS, cluster_optics_dbscan, cluster_optics_xi

from ensemblex.measures import get_measure
from ensemblex.optics import compute_optics_graph, core_distances

# scikit-learn's xi extraction divides reachabilities that can be 0 (tied points)
pytestmark = pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")


def _sklearn(d: np.ndarray, min_samples: int, max_eps: float = math.inf, **kw) -> OPTICS:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "All reachability values are inf"
        return OPTICS(metric="precomputed", min_samples=min_samples, max_eps=max_eps, **kw).fit(d)


def _ours(d: np.ndarray, min_samples: int, max_eps: float = math.inf, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return compute_optics_graph(d, min_samples=min_samples, max_eps=max_eps, **kw)


def _assert_same(d: np.ndarray, min_samples: int, max_eps: float = math.inf) -> None:
    sk = _sklearn(d, min_samples, max_eps)
    ordering, core, reach, pred = _ours(d, min_samples, max_eps)
    np.testing.assert_array_equal(ordering, sk.ordering_)
    np.testing.assert_array_equal(core, sk.core_distances_)
    np.testing.assert_array_equal(reach, sk.reachability_)
    np.testing.assert_array_equal(pred, sk.predecessor_)
    # labels through scikit-learn's own extraction, from our graph
    labels, _ = cluster_optics_xi(
        reachability=reach,
        predecessor=pred,
        ordering=ordering,
        min_samples=min_samples,
        xi=0.05,
    )
    np.testing.assert_array_equal(labels, sk.labels_)
    if math.isfinite(max_eps):
        eps = 0.8 * max_eps
        got = cluster_optics_dbscan(
            reachability=reach, core_distances=core, ordering=ordering, eps=eps
        )
        expected = _sklearn(d, min_samples, max_eps, cluster_method="dbscan", eps=eps).labels_
        np.testing.assert_array_equal(got, expected)


@st.composite
def matrices(draw: st.DrawFn, tied: bool) -> tuple[np.ndarray, int, float]:
    n = draw(st.integers(2, 24))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if tied:
        d = rng.integers(0, 4, size=(n, n)).astype(np.float32)  # many exact ties
    else:
        d = rng.random((n, n)).astype(np.float32)
    if draw(st.booleans()):
        d = np.maximum(d, d.T)  # symmetric, like every matrix cluster() builds
    np.fill_diagonal(d, 0)
    min_samples = draw(st.integers(2, n))
    max_eps = draw(st.sampled_from([math.inf, 0.3, 1.0, 2.0]))
    return d, min_samples, max_eps


@settings(max_examples=150, deadline=None)
@given(matrices(tied=False))
def test_random_matrices_match_sklearn(case) -> None:
    _assert_same(*case)


@settings(max_examples=150, deadline=None)
@given(matrices(tied=True))
def test_tied_integer_matrices_match_sklearn(case) -> None:
    _assert_same(*case)


def _planted(n_groups: int, size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=6.0, size=(n_groups, 3))
    x = np.concatenate([c + rng.normal(size=(size, 3)) for c in centres])
    x = np.concatenate([x, rng.uniform(-12, 12, size=(size, 3))])  # background noise
    return np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1)).astype(np.float32)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("max_eps", [math.inf, 4.0])
def test_planted_groups_match_sklearn(seed: int, max_eps: float) -> None:
    d = _planted(4, 40, seed)
    _assert_same(d, 10, max_eps)
    assert len(set(_sklearn(d, 10).labels_.tolist()) - {-1}) >= 3  # real groups found


def test_float32_stays_float32_and_is_not_modified() -> None:
    d = _planted(3, 30, 5)
    before = d.copy()
    ordering, core, reach, pred = compute_optics_graph(d, min_samples=5)
    np.testing.assert_array_equal(d, before)
    assert d.dtype == np.float32
    assert core.dtype == reach.dtype == np.float64
    assert ordering.dtype == pred.dtype == np.int64
    # float32 values promoted exactly: the same as scikit-learn on the same numbers
    _assert_same(d, 5)


def test_transform_equals_distance_matrix() -> None:
    # a matrix of NMI values with the registry's distance: the same graph as the
    # distance matrix itself (zero diagonal), without a distance copy
    rng = np.random.default_rng(3)
    x = rng.random((40, 40)).astype(np.float32)
    nmi = np.minimum(x, x.T) * 0.9
    np.fill_diagonal(nmi, 0.97)  # a diagonal the transform ignores
    measure = get_measure("nmi", "cluster")
    dist = measure.distance(nmi.astype(np.float64))
    np.fill_diagonal(dist, 0.0)
    expected = _ours(dist, 6)
    before = nmi.copy()
    got = _ours(nmi, 6, transform=measure.distance)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(nmi, before)
    sk = _sklearn(dist, 6)
    np.testing.assert_array_equal(got[0], sk.ordering_)
    np.testing.assert_array_equal(got[2], sk.reachability_)


def test_core_distances_counts_the_point_itself() -> None:
    d = np.array([[0.0, 3.0, 1.0], [3.0, 0.0, 2.0], [1.0, 2.0, 0.0]])
    np.testing.assert_array_equal(core_distances(d, min_samples=2), [1.0, 2.0, 1.0])
    np.testing.assert_array_equal(core_distances(d, min_samples=3), [3.0, 3.0, 2.0])
    np.testing.assert_array_equal(
        core_distances(d, min_samples=3, max_eps=2.5), [np.inf] * 2 + [2.0]
    )


def test_all_inf_reachability_warns_like_sklearn() -> None:
    d = np.array([[0.0, 5.0], [5.0, 0.0]])
    with pytest.warns(UserWarning, match="All reachability values are inf"):
        ordering, core, reach, pred = compute_optics_graph(d, min_samples=2, max_eps=1.0)
    assert np.isinf(core).all() and (pred == -1).all()
    assert ordering.tolist() == [0, 1] and np.isinf(reach).all()


@pytest.mark.parametrize(
    ("d", "kwargs", "error", "match"),
    [
        (np.zeros((3, 2)), {}, ValueError, "square"),
        (
            np.array([[0.0, np.nan], [np.nan, 0.0]]),
            {},
            ValueError,
            r"non-finite .* row 0, column 1",
        ),
        (np.array([[0.0, np.inf], [1.0, 0.0]]), {}, ValueError, "non-finite"),
        (np.array([[0.0, 1.0], [-1.0, 0.0]]), {}, ValueError, r"negative .* row 1, column 0"),
        (np.zeros((3, 3)), {"min_samples": 4}, ValueError, "at most the number of points"),
        (np.zeros((3, 3)), {"min_samples": 1}, ValueError, "min_samples must be an integer >= 2"),
        (np.zeros((3, 3)), {"min_samples": 2.0}, TypeError, "min_samples must be an integer"),
        (np.zeros((3, 3)), {"max_eps": -1.0}, ValueError, "max_eps"),
        (np.zeros((3, 3)), {"max_eps": float("nan")}, ValueError, "max_eps"),
        (np.zeros((3, 3), dtype=complex), {}, TypeError, "real numbers"),
    ],
)
def test_bad_input(d, kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        compute_optics_graph(d, **{"min_samples": 2, **kwargs})
