"""The xi extraction against scikit-learn's cluster_optics_xi, and its steepness window."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.cluster import cluster_optics_xi as sklearn_xi
from sklearn.metrics import adjusted_rand_score

from ensemblex.errors import InputError
from ensemblex.optics import compute_optics_graph
from ensemblex.optics_xi import cluster_optics_xi

# scikit-learn divides reachabilities that can be 0 (tied points)
pytestmark = pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")


def _graph(d: np.ndarray, min_samples: int, max_eps: float = math.inf):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "All reachability values are inf"
        return compute_optics_graph(d, min_samples=min_samples, max_eps=max_eps)


def _assert_same_as_sklearn(ordering, reach, pred, **kw) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected_labels, expected_clusters = sklearn_xi(
            reachability=reach, predecessor=pred, ordering=ordering, **kw
        )
    labels, clusters = cluster_optics_xi(
        reachability=reach, predecessor=pred, ordering=ordering, **kw
    )
    np.testing.assert_array_equal(labels, expected_labels)
    np.testing.assert_array_equal(clusters, np.asarray(expected_clusters).reshape(-1, 2))


@st.composite
def graphs(draw: st.DrawFn, tied: bool):
    n = draw(st.integers(2, 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    # integers in 0..3 give many exact ties
    d = rng.integers(0, 4, size=(n, n)).astype(np.float64) if tied else rng.random((n, n))
    d = np.maximum(d, d.T)
    np.fill_diagonal(d, 0)
    min_samples = draw(st.integers(2, n))
    max_eps = draw(st.sampled_from([math.inf, 0.5, 2.0]))
    ordering, _, reach, pred = _graph(d, min_samples, max_eps)
    kw = {
        "min_samples": min_samples,
        "xi": draw(st.sampled_from([0.0, 0.01, 0.05, 0.3, 0.9])),
        "predecessor_correction": draw(st.booleans()),
        "min_cluster_size": draw(st.sampled_from([None, 2, 0.1, 0.5])),
    }
    return ordering, reach, pred, kw


@settings(max_examples=200, deadline=None)
@given(graphs(tied=False))
def test_window_one_is_sklearn_on_random_graphs(case) -> None:
    ordering, reach, pred, kw = case
    _assert_same_as_sklearn(ordering, reach, pred, **kw)


@settings(max_examples=200, deadline=None)
@given(graphs(tied=True))
def test_window_one_is_sklearn_on_tied_graphs(case) -> None:
    ordering, reach, pred, kw = case
    _assert_same_as_sklearn(ordering, reach, pred, **kw)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from([0.0, 0.5, 1.0, 1.02, 2.0, 3.0, np.inf]), min_size=2, max_size=30),
    st.integers(0, 2**32 - 1),
    st.integers(2, 6),
)
def test_window_one_is_sklearn_on_arbitrary_plots(values, seed, min_samples) -> None:
    # any plot, any predecessors: zeros, plateaus, infinities, steps just over xi
    rng = np.random.default_rng(seed)
    n = len(values)
    reach = np.array(values)
    ordering = rng.permutation(n)
    pred = rng.integers(-1, n, size=n)
    min_samples = min(min_samples, n)
    _assert_same_as_sklearn(ordering, reach, pred, min_samples=min_samples, xi=0.05)


def _planted(n_groups: int, size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 10, size=(n_groups, 2))
    x = np.concatenate([c + rng.normal(0, 1, size=(size, 2)) for c in centres])
    return np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_window_one_is_sklearn_on_planted_groups(seed: int) -> None:
    ordering, _, reach, pred = _graph(_planted(4, 30, seed), 5)
    _assert_same_as_sklearn(ordering, reach, pred, min_samples=5)


def _two_valleys_with_gradual_climbs(points_per_climb: int, rise: float = 4.0) -> np.ndarray:
    """An OPTICS-like plot: two flat valleys, each left by a climb of ``rise`` in all."""
    valley = np.full(50, 1.0)
    climb = rise ** (np.arange(1, points_per_climb + 1) / points_per_climb)
    return np.concatenate([[np.inf], valley, climb, valley, climb])


@pytest.mark.parametrize("points_per_climb", [10, 100, 400])
def test_window_finds_groups_whose_climb_is_spread_over_many_points(points_per_climb) -> None:
    # the same climb (4x) spread over more points: per point it is 15 % steep for
    # 10 points, 1.4 % for 100, 0.35 % for 400; the window makes it steep again
    reach = _two_valleys_with_gradual_climbs(points_per_climb)
    order = np.arange(reach.size)
    pred = order - 1
    truth = np.repeat([0, 1], 50 + points_per_climb)
    truth = np.concatenate([[0], truth])[: reach.size]

    def labels(window: int) -> np.ndarray:
        return cluster_optics_xi(
            reachability=reach, predecessor=pred, ordering=order, min_samples=5, window=window
        )[0]

    per_point = labels(1)
    # the per-point definition finds both valleys only while single steps are steep
    assert (per_point.max() + 1 == 2) == (points_per_climb == 10)
    window = max(1, points_per_climb // 10)
    windowed = labels(window)
    assert windowed.max() + 1 == 2
    valleys = np.r_[1:51, 51 + points_per_climb : 101 + points_per_climb]
    assert adjusted_rand_score(truth[valleys], windowed[valleys]) == 1.0


@pytest.mark.parametrize("window", [1, 2, 5, 30])
def test_a_single_high_point_between_groups_is_the_top_whatever_the_window(window) -> None:
    # steepness looks at the highest / lowest of the next window points, so the one
    # point between the valleys is still where the climb ends and the descent starts
    reach = np.concatenate([[np.inf], np.full(60, 0.2), [2.7], np.full(60, 0.2)])
    order, pred = np.arange(reach.size), np.arange(reach.size) - 1
    labels, _ = cluster_optics_xi(
        reachability=reach, predecessor=pred, ordering=order, min_samples=20, window=window
    )
    assert labels.tolist() == [0] * 61 + [1] * 61


def test_window_larger_than_the_plot_is_the_plot_end() -> None:
    # steepness is measured against the last point (inf) where fewer than window remain
    reach = np.array([np.inf, 1.0, 1.0, 1.0, 1.0])
    order, pred = np.arange(5), np.arange(5) - 1
    labels, clusters = cluster_optics_xi(
        reachability=reach, predecessor=pred, ordering=order, min_samples=2, window=100
    )
    assert labels.tolist() == [0, 0, 0, 0, 0]
    assert clusters.tolist() == [[0, 4]]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"window": 0}, "window must be an integer >= 1"),
        ({"window": 2.5}, "window must be an integer >= 1"),
        ({"window": True}, "window must be an integer >= 1"),
        ({"xi": 1.5}, r"xi must be a number in \[0, 1\)"),
        ({"xi": 1.0}, r"xi must be a number in \[0, 1\)"),
        ({"min_samples": 99}, r"min_samples must be at most the number of points \(4\)"),
        ({"min_samples": 2.5}, "min_samples above 1 must be a whole number"),
        ({"min_samples": 0}, "min_samples must be an integer > 1 or a fraction"),
        ({"min_cluster_size": -1}, "min_cluster_size must be an integer > 1 or a fraction"),
        ({"ordering": np.array([0, 0, 1, 2])}, "ordering must hold every point index"),
        ({"predecessor": np.array([-1, 0])}, "must be 1-D and of one length"),
    ],
)
def test_bad_input_is_named(kwargs, match) -> None:
    args = {
        "reachability": np.array([np.inf, 1.0, 2.0, 1.0]),
        "predecessor": np.array([-1, 0, 1, 2]),
        "ordering": np.arange(4),
        "min_samples": 2,
    }
    args.update(kwargs)
    with pytest.raises(InputError, match=match):
        cluster_optics_xi(**args)
