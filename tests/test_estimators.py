"""Oracle tests of the exact estimators (docs/design.md section 1).

Oracles: scikit-learn's NMI and contingency-table entropies for hard labels,
the textbook Bhattacharyya / KL formulas in plain float64 NumPy, a plain NumPy
Monte Carlo, closed forms, and the Poole et al. Monte Carlo bounds.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp
from scipy.stats import spearmanr
from sklearn.metrics import normalized_mutual_info_score
from sklearn.metrics.cluster import contingency_matrix

from ensemblex.estimators import (
    MIN_INFO,
    bhattacharyya,
    bhattacharyya_between,
    information,
    information_bounds,
    joint_information,
    kl_coefficients,
    label_coefficients,
    monte_carlo_information,
    nmi,
    vi,
)

FAST = settings(max_examples=60, deadline=None)


# -- plain float64 references, written straight from docs/design.md section 1 ---


def bc_reference(mean: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """BC of (N, d) diagonal Gaussians, textbook formula, no stabilisation."""
    mean, logvar = np.asarray(mean, np.float64), np.asarray(logvar, np.float64)
    var = np.exp(logvar)
    s1, s2 = var[:, None, :], var[None, :, :]
    sbar2 = (s1 + s2) / 2
    diff = mean[:, None, :] - mean[None, :, :]
    d_b = np.sum(diff**2 / sbar2, axis=-1) / 8 + 0.5 * np.sum(
        np.log(sbar2 / np.sqrt(s1 * s2)), axis=-1
    )
    return np.exp(-d_b)


def kl_reference(mean: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """exp(-KL(p_i || p_j)) of (N, d) diagonal Gaussians, textbook formula."""
    mean, logvar = np.asarray(mean, np.float64), np.asarray(logvar, np.float64)
    var = np.exp(logvar)
    vi_, vj = var[:, None, :], var[None, :, :]
    diff = mean[:, None, :] - mean[None, :, :]
    kl = 0.5 * np.sum(np.log(vj / vi_) + (vi_ + diff**2) / vj - 1, axis=-1)
    return np.exp(-kl)


def information_reference(bc: np.ndarray) -> float:
    return float(-np.mean(np.log2(np.mean(bc, axis=1))))


def entropy_bits(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-np.sum(p * np.log2(p)))


def vi_reference(a: np.ndarray, b: np.ndarray) -> float:
    """H(U|V) + H(V|U) in bits from the contingency table."""
    table = contingency_matrix(a, b).astype(np.float64)
    h_joint = entropy_bits(table.ravel())
    h_a, h_b = entropy_bits(table.sum(axis=1)), entropy_bits(table.sum(axis=0))
    return (h_joint - h_b) + (h_joint - h_a)


def label_terms(a: np.ndarray, b: np.ndarray, **nmi_kwargs):
    """NMI and VI of two labelings through the estimator API, in float64."""
    bu, bv = label_coefficients(a), label_coefficients(b)
    i_u, i_v = information(bu), information(bv)
    j_uv = joint_information(bu, bv)
    j_uu, j_vv = joint_information(bu, bu), joint_information(bv, bv)
    return nmi(i_u, i_v, j_uv, j_uu, j_vv, **nmi_kwargs), vi(j_uv, j_uu, j_vv)


def random_channel(rng: np.random.Generator, n: int, d: int = 1):
    """A Gaussian channel with heteroscedastic posteriors of random informativeness."""
    spread = 10 ** rng.uniform(-2.5, 1.0)  # posterior std relative to the mean spread
    mean = rng.normal(size=(n, d))
    logvar = 2 * np.log(spread) + rng.uniform(-1.0, 1.0, size=(n, d))
    return mean, logvar


# -- hard labels: scikit-learn and the contingency table ----------------------------

labelings = st.integers(2, 60).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 5), min_size=n, max_size=n),
        st.lists(st.integers(0, 5), min_size=n, max_size=n),
    )
)


@settings(max_examples=150, deadline=None)
@given(labelings)
def test_hard_label_nmi_matches_sklearn_and_vi_matches_contingency(pair):
    a, b = (np.asarray(x, dtype=np.int64) for x in pair)
    got_nmi, got_vi = label_terms(a, b, min_info=0)
    # VI is defined for every labeling, constant ones included
    assert abs(float(got_vi) - vi_reference(a, b)) < 1e-9
    if len(np.unique(a)) == 1 or len(np.unique(b)) == 1:
        # Degenerate by our contract: a constant labeling carries no information,
        # so its NMI is undefined (scikit-learn returns 0 or 1 here by convention).
        assert math.isnan(float(got_nmi))
    else:
        want = normalized_mutual_info_score(a, b, average_method="geometric")
        assert abs(float(got_nmi) - want) < 1e-9


@pytest.mark.parametrize(
    ("a", "b"),
    [([0, 0, 0, 0], [0, 1, 0, 1]), ([3, 3, 3], [3, 3, 3]), ([0, 1, 0, 1], [7, 7, 7, 7])],
)
def test_constant_labeling_nmi_is_nan_even_without_threshold(a, b):
    got_nmi, got_vi = label_terms(np.array(a), np.array(b), min_info=0)
    assert math.isnan(float(got_nmi))
    assert np.isfinite(got_vi)


def test_hard_labels_repeat_term_equals_information():
    rng = np.random.default_rng(3)
    bc = label_coefficients(rng.integers(0, 4, size=50))
    assert float(joint_information(bc, bc)) == float(information(bc))
    assert np.array_equal(bc * bc, bc)


def test_label_coefficients_block_and_dtype():
    a, b = np.array([0, 1, 2, 1]), np.array([1, 2])
    block = label_coefficients(a, b, dtype=np.float32)
    assert block.dtype == np.float32
    np.testing.assert_array_equal(block, label_coefficients(a)[:, [1, 2]])
    batch = label_coefficients(np.stack([a, a[::-1]]))
    assert batch.shape == (2, 4, 4)
    np.testing.assert_array_equal(batch[1], label_coefficients(a[::-1]))


def test_label_coefficients_rejects_bad_labels():
    with pytest.raises(TypeError, match="labels must be integers"):
        label_coefficients(np.array([0.0, 1.0]))
    with pytest.raises(TypeError, match="other must be integers"):
        label_coefficients(np.array([0, 1]), np.array([0.5]))
    with pytest.raises(ValueError, match="got a scalar"):
        label_coefficients(np.array(3))
    with pytest.raises(TypeError, match="dtype must be a real floating"):
        label_coefficients(np.array([0, 1]), dtype=np.int32)


# -- Bhattacharyya coefficients ------------------------------------------------------


def test_bc_of_diagonal_gaussian_is_product_of_1d_bcs(rng):
    n, d = 40, 4
    mean, logvar = rng.normal(size=(n, d)), rng.uniform(-4, 4, size=(n, d))
    full = bhattacharyya(mean, logvar, multivariate=True)
    per_dim = bhattacharyya(mean.T, logvar.T)  # (d, N, N): leading axis batches
    np.testing.assert_allclose(full, np.prod(per_dim, axis=0), rtol=1e-12, atol=1e-300)
    # and the product of the d fingerprints is the fingerprint of the subspace
    bc0, bc1 = bhattacharyya(mean[:, 0], logvar[:, 0]), bhattacharyya(mean[:, 1], logvar[:, 1])
    two = bhattacharyya(mean[:, :2], logvar[:, :2], multivariate=True)
    np.testing.assert_allclose(two, bc0 * bc1, rtol=1e-12)


def test_bc_matches_textbook_formula(rng):
    n, d = 60, 3
    mean = rng.normal(scale=3.0, size=(n, d))
    logvar = rng.uniform(-6, 6, size=(n, d))
    got = bhattacharyya(mean, logvar, multivariate=True)
    np.testing.assert_allclose(got, bc_reference(mean, logvar), rtol=1e-12, atol=1e-15)
    got32 = bhattacharyya(mean.astype(np.float32), logvar.astype(np.float32), multivariate=True)
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, bc_reference(mean, logvar), rtol=2e-5, atol=2e-6)
    # the closed form for two 1-D points of equal variance: exp(-(mu1-mu2)^2 / (8 s^2))
    two = bhattacharyya(np.array([0.0, 1.0]), np.zeros(2))
    assert two[0, 1] == pytest.approx(math.exp(-1 / 8), rel=1e-15)


@FAST
@given(
    n=st.integers(1, 25),
    d=st.integers(1, 3),
    seed=st.integers(0, 2**32 - 1),
    scale=st.sampled_from([1e-3, 1.0, 1e3, 1e6]),
    lv_range=st.sampled_from([(-30.0, 30.0), (-30.0, -29.0), (29.0, 30.0), (-2.0, 2.0)]),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_bc_properties(n, d, seed, scale, lv_range, dtype):
    rng = np.random.default_rng(seed)
    mean = (rng.normal(size=(n, d)) * scale).astype(dtype)
    logvar = rng.uniform(*lv_range, size=(n, d)).astype(dtype)
    bc = bhattacharyya(mean, logvar, multivariate=True)
    assert bc.dtype == dtype
    assert bc.shape == (n, n)
    assert np.all(np.isfinite(bc))
    assert np.all((bc >= 0) & (bc <= 1))
    np.testing.assert_array_equal(np.diagonal(bc), 1)
    np.testing.assert_array_equal(bc, bc.T)
    info = float(information(bc))
    eps = 1e-5 if dtype == np.float32 else 1e-12
    assert -eps <= info <= math.log2(n) + eps


def test_bhattacharyya_between_is_row_blocks(rng):
    c, n, d = 3, 30, 2
    mean, logvar = rng.normal(size=(c, n, d)), rng.uniform(-3, 3, size=(c, n, d))
    full = bhattacharyya(mean, logvar, multivariate=True)
    for rows in (slice(0, 7), slice(7, 30), slice(12, 13)):
        block = bhattacharyya_between(
            mean[:, rows], logvar[:, rows], mean, logvar, multivariate=True
        )
        np.testing.assert_array_equal(block, full[:, rows])
    # 1-D channels, and a rectangular block against a subset of the columns
    m1, l1 = mean[..., 0], logvar[..., 0]
    block = bhattacharyya_between(m1[:, :5], l1[:, :5], m1[:, 10:], l1[:, 10:])
    np.testing.assert_array_equal(block, bhattacharyya(m1, l1)[:, :5, 10:])
    # mixed precision is promoted, never silently truncated
    mixed = bhattacharyya_between(m1[0].astype(np.float32), l1[0].astype(np.float32), m1[0], l1[0])
    assert mixed.dtype == np.float64


def test_kl_coefficients_match_textbook_formula(rng):
    n, d = 50, 2
    mean, logvar = rng.normal(size=(n, d)), rng.uniform(-4, 4, size=(n, d))
    got = kl_coefficients(mean, logvar, multivariate=True)
    np.testing.assert_allclose(got, kl_reference(mean, logvar), rtol=1e-10, atol=1e-300)
    np.testing.assert_array_equal(np.diagonal(got), 1)
    # exp(-KL) <= BC: the KL coefficients give the upper bound of the bracket
    assert np.all(got <= bhattacharyya(mean, logvar, multivariate=True) * (1 + 1e-12))


# -- information, NMI, VI ------------------------------------------------------------


def test_information_closed_forms():
    assert float(information(np.eye(8))) == 3.0
    assert float(information(np.ones((5, 5)))) == 0.0
    # two equal clusters of 4 identical points: one bit
    assert float(information(label_coefficients(np.repeat([0, 1], 4)))) == 1.0
    # batches reduce only the last two axes
    stack = np.stack([np.eye(4), np.ones((4, 4))])[None]
    np.testing.assert_array_equal(information(stack), [[2.0, 0.0]])
    # integer input is computed in floating point
    assert float(information(np.eye(4, dtype=np.int64))) == 2.0


def test_information_matches_plain_reference(rng):
    mean, logvar = random_channel(rng, 80)
    bc = bhattacharyya(mean[:, 0], logvar[:, 0])
    assert float(information(bc)) == pytest.approx(information_reference(bc), rel=1e-13)
    bc2 = bhattacharyya(mean[::-1, 0], logvar[::-1, 0])
    want = information_reference(bc * bc2)
    assert float(joint_information(bc, bc2)) == pytest.approx(want, rel=1e-13)


def _gaussian_terms(rng, n=60):
    m1, l1 = random_channel(rng, n)
    m2 = m1 + 0.5 * rng.normal(size=m1.shape)  # correlated with the first channel
    l2 = l1 + rng.uniform(-0.5, 0.5, size=l1.shape)
    bu = bhattacharyya(m1[:, 0], np.minimum(l1[:, 0], 0.0))
    bv = bhattacharyya(m2[:, 0], np.minimum(l2[:, 0], 0.0))
    return bu, bv


def test_nmi_and_vi_identity_and_symmetry(rng):
    for _ in range(5):
        bu, bv = _gaussian_terms(rng)
        i_u, i_v = information(bu), information(bv)
        j_uu, j_vv = joint_information(bu, bu), joint_information(bv, bv)
        j_uv, j_vu = joint_information(bu, bv), joint_information(bv, bu)
        assert i_u > MIN_INFO and i_v > MIN_INFO
        assert float(nmi(i_u, i_u, j_uu, j_uu, j_uu)) == pytest.approx(1.0, abs=1e-12)
        assert float(vi(j_uu, j_uu, j_uu)) == 0.0
        assert float(nmi(i_u, i_v, j_uv, j_uu, j_vv)) == float(nmi(i_v, i_u, j_vu, j_vv, j_uu))
        assert float(vi(j_uv, j_uu, j_vv)) == float(vi(j_vu, j_vv, j_uu))
        assert 0 < float(nmi(i_u, i_v, j_uv, j_uu, j_vv)) <= 1 + 1e-12
        assert float(vi(j_uv, j_uu, j_vv)) >= 0


def test_all_pairs_by_broadcasting(rng):
    bcs = np.stack([bhattacharyya(*(x[:, 0] for x in random_channel(rng, 30))) for _ in range(4)])
    i = information(bcs)
    j = joint_information(bcs[:, None], bcs[None])
    assert j.shape == (4, 4)
    np.testing.assert_allclose(j, j.T, rtol=0, atol=0)
    jd = np.diagonal(j)
    out = nmi(i[:, None], i[None], j, jd[:, None], jd[None], min_info=0)
    assert out.shape == (4, 4)
    np.testing.assert_allclose(np.diagonal(out), 1.0, atol=1e-12)
    np.testing.assert_array_equal(vi(j, jd[:, None], jd[None]), vi(j, jd[:, None], jd[None]).T)


def test_nmi_is_nan_under_min_info():
    n = 64
    mean = np.linspace(0, 1, n)
    informative = bhattacharyya(mean, np.full(n, -8.0))
    flat = bhattacharyya(mean, np.full(n, 4.0))  # posteriors wider than the data
    i_inf, i_flat = float(information(informative)), float(information(flat))
    assert i_flat < MIN_INFO < i_inf
    j_if = joint_information(informative, flat)
    j_ii, j_ff = joint_information(informative, informative), joint_information(flat, flat)
    assert math.isnan(float(nmi(i_inf, i_flat, j_if, j_ii, j_ff)))
    assert math.isnan(float(nmi(i_flat, i_inf, j_if, j_ff, j_ii)))
    # the same pair is defined without a threshold, and VI never has one
    assert np.isfinite(nmi(i_inf, i_flat, j_if, j_ii, j_ff, min_info=0))
    assert np.isfinite(vi(j_if, j_ii, j_ff))
    # elementwise: only the entries under the threshold are NaN
    out = nmi(np.array([1.0, 0.005]), np.array([1.0, 1.0]), 1.0, np.array([1.0, 0.005]), 1.0)
    assert out[0] == 1.0 and math.isnan(out[1])
    with pytest.raises(ValueError, match="min_info"):
        nmi(1.0, 1.0, 1.0, 1.0, 1.0, min_info=-0.1)


def test_nmi_keeps_float32():
    one = np.float32(1.0)
    arr = np.full(3, one)
    assert nmi(arr, arr, arr, arr, arr).dtype == np.float32


# -- random Gaussian channels against the Monte Carlo references -------------------


def test_monte_carlo_matches_plain_numpy_reference(rng):
    n, d, n_draws, seed = 40, 2, 3, 7
    mean, logvar = rng.normal(size=(n, d)), rng.uniform(-3, 1, size=(n, d))
    lo, hi = monte_carlo_information(
        mean, logvar, n_draws=n_draws, seed=seed, multivariate=True, block_rows=7
    )
    # the same standard-normal draws, the Poole bounds written plainly
    draws = np.random.default_rng(seed)
    lower, upper = [], []
    for _ in range(n_draws):
        u = mean + np.exp(0.5 * logvar) * draws.standard_normal((n, d))
        z = (u[:, None, :] - mean[None]) / np.exp(0.5 * logvar)[None]
        logp = -0.5 * np.sum(z**2 + logvar[None] + np.log(2 * np.pi), axis=-1)
        own = np.diagonal(logp)
        others = np.where(np.eye(n, dtype=bool), -np.inf, logp)
        lower.append(own - logsumexp(logp, axis=1) + np.log(n))
        upper.append(own - logsumexp(others, axis=1) + np.log(n - 1))
    assert float(lo) == pytest.approx(np.mean(lower) / np.log(2), rel=1e-10)
    assert float(hi) == pytest.approx(np.mean(upper) / np.log(2), rel=1e-10)


def test_monte_carlo_closed_forms():
    # four points, two identical pairs far apart: exactly one bit; leave-one-out log2(3)
    mean, logvar = np.array([0.0, 0.0, 50.0, 50.0]), np.zeros(4)
    lo, hi = monte_carlo_information(mean, logvar, n_draws=4)
    assert float(lo) == pytest.approx(1.0, abs=1e-12)
    assert float(hi) == pytest.approx(math.log2(3), abs=1e-12)
    # identical posteriors everywhere: zero bits, float64 out for float32 in
    lo, hi = monte_carlo_information(np.zeros(10, np.float32), np.zeros(10, np.float32))
    assert float(lo) == pytest.approx(0.0, abs=1e-12)
    assert lo.dtype == np.float64
    with pytest.raises(ValueError, match="one channel"):
        monte_carlo_information(np.zeros((2, 5)), np.zeros((2, 5)))
    with pytest.raises(ValueError, match="at least 2 points"):
        monte_carlo_information(np.zeros(1), np.zeros(1))
    with pytest.raises(ValueError, match="n_draws"):
        monte_carlo_information(np.zeros(3), np.zeros(3), n_draws=0)


def test_gaussian_channels_bounds_and_tracking():
    """Fig. 3a in small: 50 channels of varied informativeness, 1 to 3 dims."""
    rng = np.random.default_rng(2024)
    n_ref, n_fp, n_seeds = 300, 100, 6
    bc_est, kl_upper, mc_lower, mc_upper = [], [], [], []
    for k in range(50):
        mean, logvar = random_channel(rng, n_ref, d=1 + k % 3)
        # Poole bounds on all n_ref points; the spread over seeds gives the sampling error
        runs = np.array(
            [
                [float(b) for b in monte_carlo_information(mean, logvar, 1, s, multivariate=True)]
                for s in range(n_seeds)
            ]
        )
        lo, hi = runs.mean(axis=0)
        se = runs.std(axis=0, ddof=1) / math.sqrt(n_seeds)
        tol = 4 * se + 1e-6
        # the BC and KL bracket on the same points: KT lower <= exact MI <= KT upper
        b_lo, b_hi = (float(x) for x in information_bounds(mean, logvar, multivariate=True))
        assert b_lo <= b_hi + 1e-12
        assert b_lo <= lo + tol[0]  # the lower Poole bound is the exact empirical MI
        assert b_lo <= hi + tol[1]
        assert lo <= hi + math.hypot(*tol)
        # the fingerprint estimate from a random subset of n_fp points
        sub = rng.choice(n_ref, size=n_fp, replace=False)
        bc_est.append(float(information(bhattacharyya(mean[sub], logvar[sub], multivariate=True))))
        kl_upper.append(b_hi)
        mc_lower.append(lo)
        mc_upper.append(hi)
    bc_est, mc_lower, mc_upper = np.array(bc_est), np.array(mc_lower), np.array(mc_upper)
    # informativeness really varies, from ~0 to most of log2(n_fp)
    assert bc_est.min() < 0.2 and bc_est.max() > 4.0
    assert spearmanr(bc_est, mc_lower).statistic > 0.9
    assert spearmanr(bc_est, mc_upper).statistic > 0.9
    # a subset of n_fp points cannot resolve more than log2(n_fp) bits
    assert np.all(bc_est <= math.log2(n_fp) + 1e-9)


# -- backends: the same numbers under a strict array-API namespace ------------------


def _same(backend, got, want, rtol=1e-12, atol=1e-14):
    assert not isinstance(got, np.ndarray) or backend.name == "numpy"
    got = backend.to_numpy(got)
    assert got.dtype == np.asarray(want).dtype
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


@pytest.mark.backends("numpy", "array_api_strict", "cupy")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gaussian_functions_on_backends(backend, dtype):
    rng = np.random.default_rng(11)
    c, n, d = 2, 24, 3
    mean = rng.normal(size=(c, n, d)).astype(dtype)
    logvar = rng.uniform(-3, 3, size=(c, n, d)).astype(dtype)
    m, lv = backend.asarray(mean), backend.asarray(logvar)
    rtol = 1e-5 if dtype == np.float32 else 1e-12

    _same(backend, bhattacharyya(m, lv, multivariate=True), bhattacharyya(mean, logvar, multivariate=True), rtol)  # fmt: skip
    _same(backend, bhattacharyya(m[..., 0], lv[..., 0]), bhattacharyya(mean[..., 0], logvar[..., 0]), rtol)  # fmt: skip
    _same(
        backend,
        bhattacharyya_between(m[:, :5, ...], lv[:, :5, ...], m, lv, multivariate=True),
        bhattacharyya_between(mean[:, :5], logvar[:, :5], mean, logvar, multivariate=True),
        rtol,
    )
    _same(backend, kl_coefficients(m, lv, multivariate=True), kl_coefficients(mean, logvar, multivariate=True), rtol)  # fmt: skip
    for got, want in zip(
        information_bounds(m, lv, multivariate=True),
        information_bounds(mean, logvar, multivariate=True),
        strict=True,
    ):
        _same(backend, got, want, rtol)
    got_mc = monte_carlo_information(m[0, ...], lv[0, ...], 2, 5, multivariate=True, block_rows=10)
    want_mc = monte_carlo_information(mean[0], logvar[0], 2, 5, multivariate=True, block_rows=10)
    for got, want in zip(got_mc, want_mc, strict=True):
        _same(backend, got, want)


@pytest.mark.backends("numpy", "array_api_strict", "cupy")
def test_label_and_information_functions_on_backends(backend):
    rng = np.random.default_rng(12)
    a, b = rng.integers(0, 3, size=20), rng.integers(0, 4, size=20)
    la, lb = backend.asarray(a), backend.asarray(b)
    _same(backend, label_coefficients(la), label_coefficients(a))
    _same(backend, label_coefficients(la, lb[:7]), label_coefficients(a, b[:7]))
    bu_np, bv_np = label_coefficients(a), label_coefficients(b)
    bu, bv = label_coefficients(la), label_coefficients(lb)
    mean, logvar = rng.normal(size=20), rng.uniform(-2, 0, size=20)
    bg_np = bhattacharyya(mean, logvar)
    bg = backend.asarray(bg_np)
    for x, x_np in ((bu, bu_np), (bv, bv_np), (bg, bg_np)):
        _same(backend, information(x), information(x_np))
    _same(backend, joint_information(bu, bg), joint_information(bu_np, bg_np))
    stack_np = np.stack([bu_np, bv_np, bg_np])
    stack = backend.asarray(stack_np)
    j = joint_information(stack[:, None, ...], stack[None, ...])
    j_np = joint_information(stack_np[:, None], stack_np[None])
    _same(backend, j, j_np)
    i, i_np = information(stack), information(stack_np)
    jd, jd_np = joint_information(stack, stack), joint_information(stack_np, stack_np)
    np.testing.assert_array_equal(jd_np, np.diagonal(j_np))  # the repeat term
    nmi_args = (i[:, None], i[None, :], j, jd[:, None], jd[None, :])
    nmi_np = (i_np[:, None], i_np[None], j_np, jd_np[:, None], jd_np[None])
    _same(backend, nmi(*nmi_args), nmi(*nmi_np))
    _same(backend, nmi(*nmi_args, min_info=1.5), nmi(*nmi_np, min_info=1.5))  # NaNs agree
    _same(backend, vi(j, jd[:, None], jd[None, :]), vi(j_np, jd_np[:, None], jd_np[None]))


# -- extremes and bad input ----------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_logvars_and_means_are_finite(dtype):
    mean = np.array([0.0, 1e6, -1e6, 1e6, 0.0, 3.0, 1e6 + 64], dtype=dtype)
    logvar = np.array([-30.0, -30.0, 30.0, 30.0, 30.0, -30.0, -30.0], dtype=dtype)
    mean2 = np.stack([mean, mean[::-1]], axis=-1)
    logvar2 = np.stack([logvar, logvar[::-1]], axis=-1)
    outputs = {
        "bc": bhattacharyya(mean, logvar),
        "bc_d": bhattacharyya(mean2, logvar2, multivariate=True),
        "between": bhattacharyya_between(mean[:3], logvar[:3], mean, logvar),
        "kl": kl_coefficients(mean, logvar),
        "kl_d": kl_coefficients(mean2, logvar2, multivariate=True),
    }
    for name, out in outputs.items():
        assert out.dtype == dtype, name
        assert np.all(np.isfinite(out)), name
        assert np.all((out >= 0) & (out <= 1)), name
    np.testing.assert_array_equal(np.diagonal(outputs["bc"]), 1)
    # accurate, not only finite: against the textbook formula in float64
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    want = bc_reference(mean[:, None].astype(np.float64), logvar[:, None].astype(np.float64))
    np.testing.assert_allclose(outputs["bc"], want, rtol=rtol, atol=1e-6)
    for value in (
        information(outputs["bc"]),
        joint_information(outputs["bc"], outputs["kl"]),
        *information_bounds(mean, logvar),
    ):
        assert value.dtype == dtype and np.isfinite(value)
    lo, hi = monte_carlo_information(mean, logvar, n_draws=2)
    assert np.isfinite(lo) and np.isfinite(hi)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_names_the_input_and_position(bad):
    mean, logvar = np.zeros((3, 5)), np.zeros((3, 5))
    broken = mean.copy()
    broken[1, 3] = bad
    with pytest.raises(ValueError, match=r"^mean has a non-finite value .* index \(1, 3\)"):
        bhattacharyya(broken, logvar)
    with pytest.raises(ValueError, match=r"^logvar has .* index \(1, 3\)"):
        kl_coefficients(mean, broken)
    with pytest.raises(ValueError, match=r"^logvar has .* index \(1, 3\)"):
        information_bounds(mean, broken)
    with pytest.raises(ValueError, match=r"^mean has .* index \(1, 3\)"):
        monte_carlo_information(broken, logvar, multivariate=True)
    with pytest.raises(ValueError, match=r"^mean_b has .* index \(1, 3\)"):
        bhattacharyya_between(mean, logvar, broken, logvar)
    with pytest.raises(ValueError, match=r"^logvar_a has .* index \(1, 3\)"):
        bhattacharyya_between(mean, broken, mean, logvar)
    bc = np.ones((2, 4, 4))
    bc[1, 2, 0] = bad
    with pytest.raises(ValueError, match=r"^bc has .* index \(1, 2, 0\)"):
        information(bc)
    with pytest.raises(ValueError, match=r"^bc_v has .* index \(1, 2, 0\)"):
        joint_information(np.ones((4, 4)), bc)


def test_bad_shapes_are_explained():
    with pytest.raises(ValueError, match="same shape"):
        bhattacharyya(np.zeros(4), np.zeros(5))
    with pytest.raises(ValueError, match=r"\(\.\.\., N, d\)"):
        bhattacharyya(np.zeros(4), np.zeros(4), multivariate=True)
    with pytest.raises(ValueError, match="d=0 components"):
        bhattacharyya(np.zeros((4, 0)), np.zeros((4, 0)), multivariate=True)
    with pytest.raises(ValueError, match=r"\(\.\.\., N, N\)"):
        information(np.ones((3, 4)))
    with pytest.raises(ValueError, match="N=0"):
        information(np.ones((0, 0)))
    with pytest.raises(ValueError, match="same N points"):
        joint_information(np.ones((3, 3)), np.ones((4, 4)))
    with pytest.raises(TypeError, match="one array library"):
        bhattacharyya(np.zeros(3), [0.0, 0.0, 0.0])


def test_inputs_are_not_modified(rng):
    mean, logvar = rng.normal(size=(10, 2)), rng.normal(size=(10, 2))
    m0, l0 = mean.copy(), logvar.copy()
    bhattacharyya(mean, logvar, multivariate=True)
    kl_coefficients(mean, logvar, multivariate=True)
    monte_carlo_information(mean, logvar, 2, multivariate=True)
    np.testing.assert_array_equal(mean, m0)
    np.testing.assert_array_equal(logvar, l0)


def test_information_benchmark_quick_run(tmp_path, capsys):
    """The Fig. 3a benchmark script runs end to end (tiny size) and writes its outputs."""
    import importlib.util
    import json
    from pathlib import Path

    pytest.importorskip("matplotlib")
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "information.py"
    spec = importlib.util.spec_from_file_location("_bench_information", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    args = ["--quick", "--channels", "3", "--n-ref", "200", "--sizes", "50", "--out", str(tmp_path)]
    assert module.main(args) == 0
    result = json.loads((tmp_path / "information.json").read_text())
    assert len(result["channels"]) == 3
    assert (tmp_path / "information.png").stat().st_size > 0
    assert "BC, N=50" in capsys.readouterr().out
