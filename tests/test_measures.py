"""Every entry of the measures registry, checked against its contract.

These tests run over :data:`ensemblex.measures.MEASURES`, so a new measure is
tested here as soon as it has an entry: its estimator against scikit-learn
on hard clusterings where it has a closed form there, and its similarity and
distance transforms for range and order.
"""

from __future__ import annotations

from typing import get_args

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import mutual_info_score, normalized_mutual_info_score

from ensemblex.estimators import MIN_INFO, information, joint_information, label_coefficients
from ensemblex.measures import (
    MEASURES,
    PAIRWISE_VARIABLES,
    ClusterMeasure,
    ObjectiveMeasure,
    get_measure,
    measure_names,
)

LN2 = np.log(2.0)


def _terms(u: np.ndarray, v: np.ndarray) -> tuple[float, ...]:
    """(I_U, I_V, J_UV, J_UU, J_VV) in bits for two labellings, with the estimators."""
    bc_u = label_coefficients(u).astype(np.float64)
    bc_v = label_coefficients(v).astype(np.float64)
    return (
        float(information(bc_u)),
        float(information(bc_v)),
        float(joint_information(bc_u, bc_v)),
        float(joint_information(bc_u, bc_u)),
        float(joint_information(bc_v, bc_v)),
    )


def _closed_form(name: str, u: np.ndarray, v: np.ndarray) -> float | None:
    """The value of measure ``name`` between hard clusterings, in bits, from scikit-learn."""
    h = {k: mutual_info_score(x, x) / LN2 for k, x in (("u", u), ("v", v))}
    mi = mutual_info_score(u, v) / LN2
    if name == "nmi":
        return float(normalized_mutual_info_score(u, v, average_method="geometric"))
    if name == "vi":
        return h["u"] + h["v"] - 2 * mi
    if name == "info":
        return mi
    if name == "joint_info":
        return h["u"] + h["v"] - mi
    return None


labellings = st.integers(2, 5).flatmap(
    lambda k: st.lists(st.integers(0, k - 1), min_size=12, max_size=40)
)


@pytest.mark.parametrize("name", list(MEASURES))
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_estimator_matches_hard_clustering_closed_form(name, data):
    u = np.array(data.draw(labellings))
    v = np.array(data.draw(st.lists(st.integers(0, 3), min_size=len(u), max_size=len(u))))
    i_u, i_v, j_uv, j_uu, j_vv = _terms(u, v)
    got = MEASURES[name].estimator(
        np.float64(i_u),
        np.float64(i_v),
        np.float64(j_uv),
        np.float64(j_uu),
        np.float64(j_vv),
        min_info=MIN_INFO,
    )
    expected = _closed_form(name, u, v)
    assert expected is not None, f"add measure {name!r}'s closed form on labellings to this test"
    if min(i_u, i_v) < MIN_INFO and name == "nmi":
        assert np.isnan(got)  # undefined under min_info: NaN, never 0 or inf
    else:
        np.testing.assert_allclose(float(got), expected, atol=1e-9)


@pytest.mark.parametrize("name", measure_names("cluster"))
@settings(max_examples=50, deadline=None)
@given(values=st.lists(st.floats(-1e-6, 20.0), min_size=2, max_size=30))
def test_similarity_and_distance_agree(name, values):
    measure = get_measure(name, "cluster")
    x = np.array(values)
    if name == "nmi":
        x = np.clip(x / 20.0, -1e-6, 1.0)
    sim = np.asarray(measure.similarity(x))
    dist = np.asarray(measure.distance(x))
    assert np.all((sim >= 0) & (sim <= 1)) and np.all(dist >= 0)
    # the more similar, the closer: one order, opposite directions
    order = np.argsort(sim, kind="stable")
    assert np.all(np.diff(dist[order]) <= 1e-12)


@pytest.mark.parametrize("name", measure_names("cluster"))
def test_a_channel_is_its_own_nearest(name):
    u = np.array([0, 0, 1, 1, 2, 2, 2, 3])
    i_u, _, _, j_uu, _ = _terms(u, u)
    value = MEASURES[name].estimator(i_u, i_u, j_uu, j_uu, j_uu, min_info=MIN_INFO)
    measure = get_measure(name, "cluster")
    np.testing.assert_allclose(measure.similarity(np.asarray(value)), 1.0, atol=1e-9)
    np.testing.assert_allclose(measure.distance(np.asarray(value)), 0.0, atol=1e-9)


def test_literal_types_list_the_registry():
    """The typed option values are the registry's: adding a measure updates both."""
    assert set(get_args(ClusterMeasure)) == set(measure_names("cluster"))
    assert set(get_args(ObjectiveMeasure)) == set(measure_names("objective"))
    assert measure_names("stored") == PAIRWISE_VARIABLES


@pytest.mark.parametrize("name", list(MEASURES))
def test_every_entry_is_described(name):
    m = MEASURES[name]
    assert m.name == name and m.label and m.long_name and m.units
    assert (m.similarity is None) == (m.distance is None), "a similarity needs its distance"
    if m.clusterable or m.objective:
        assert m.similarity_label
