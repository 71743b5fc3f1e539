"""UDR (Duan et al. 2020): closed forms, invariances and the four similarities."""

from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr

from ensemblex.posteriors import posteriors
from ensemblex.testing import planted_ensemble, reference_pairwise
from ensemblex.udr import relative_strength, udr

SIMILARITIES = ("nmi", "vi", "lasso", "spearman")


def _grid_ensemble(n_models: int = 4, seed: int = 0) -> xr.Dataset:
    """Two independent 4-level factors on a full grid, encoded (almost) noiselessly.

    Every model holds each factor in one latent (random position, sign, scale and
    offset) plus one collapsed latent, so latents of the same factor match one to
    one and latents of different factors share exactly nothing.
    """
    rng = np.random.default_rng(seed)
    f0, f1 = (g.ravel() for g in np.meshgrid(np.arange(4.0), np.arange(4.0), indexing="ij"))
    mean = np.zeros((n_models, 3, 16))
    logvar = np.zeros((n_models, 3, 16))
    for m in range(n_models):
        slots = rng.permutation(3)
        for factor, slot in zip((f0, f1), slots[:2], strict=True):
            mean[m, slot] = rng.choice([-1, 1]) * rng.uniform(1, 3) * factor + rng.normal()
            logvar[m, slot] = -20.0  # posteriors of different values do not overlap
    return posteriors(mean, logvar)


# -- the pair score -------------------------------------------------------------------


def test_relative_strength_closed_forms() -> None:
    assert relative_strength(np.eye(3)) == 1.0
    assert relative_strength(np.eye(3)[[2, 0, 1]]) == 1.0  # any permutation
    r = np.array([[0.9, 0.1], [0.2, 1.0]])
    cols = (0.81 / 1.1 + 1.0 / 1.1) / 2
    rows = (0.81 / 1.0 + 1.0 / 1.2) / 2
    assert relative_strength(r) == pytest.approx((cols + rows) / 2)
    assert relative_strength(np.zeros((2, 2))) == 0.0  # 0/0 counts as 0
    assert relative_strength(np.zeros((0, 3))) == 0.0  # no informative latents
    with pytest.raises(ValueError, match="2-D"):
        relative_strength(np.ones(3))


@pytest.mark.parametrize(
    ("similarity", "expected"),
    [
        ("nmi", 1.0),  # NMI is exactly the identity (up to the latents' order)
        ("spearman", 1.0),  # independent balanced factors: rho exactly 0
        ("vi", 1.0 / (1.0 + math.exp(-4.0))),  # VI = 4 bits between the two factors
        ("lasso", 0.9),  # soft threshold: coefficient 1 - alpha, score 0.9^2 / 0.9
    ],
)
def test_identity_similarity_gives_closed_form(similarity: str, expected: float) -> None:
    post = _grid_ensemble()
    score = udr(post, measure=similarity)
    np.testing.assert_allclose(score.values, expected, atol=1e-5)
    assert score.dims == ("model",) and score.name == "udr"
    assert score.attrs["similarity"] == similarity


def test_lasso_hand_computed() -> None:
    # orthonormal (Walsh) latents in model B, a rotation of them in model A: the Lasso
    # of A on B has the closed form w = soft(corr, 0.1) for standardised orthogonal inputs
    w = np.array(
        [
            [1, 1, 1, 1, -1, -1, -1, -1],
            [1, 1, -1, -1, 1, 1, -1, -1],
            [1, -1, 1, -1, 1, -1, 1, -1],
        ],
        dtype=float,
    )
    a = np.stack([0.8 * w[0] + 0.6 * w[1], -0.6 * w[0] + 0.8 * w[1], w[2]])
    post = posteriors(np.stack([a, w]), np.full((2, 3, 8), -2.0))
    r = np.array([[0.7, 0.5, 0.0], [0.5, 0.7, 0.0], [0.0, 0.0, 0.9]])  # |soft(corr, 0.1)|
    side = (0.7**2 / 1.2 + 0.7**2 / 1.2 + 0.9**2 / 0.9) / 3
    assert relative_strength(r) == pytest.approx(side)
    np.testing.assert_allclose(udr(post, measure="lasso").values, side, rtol=1e-6)


def test_spearman_hand_computed() -> None:
    a = np.array([[1, 2, 3, 4, 5], [2, 5, 1, 4, 3]], dtype=float)
    b = np.array([[1, 2, 3, 5, 4], [2, 5, 1, 4, 3]], dtype=float)
    # rho = 1 - 6 sum d^2 / (n (n^2 - 1)) with n = 5: d^2 sums 2, 18, 16, 0
    rho = np.array([[1 - 12 / 120, 1 - 108 / 120], [1 - 96 / 120, 1.0]])
    cols = np.mean(rho.max(0) ** 2 / rho.sum(0))
    rows = np.mean(rho.max(1) ** 2 / rho.sum(1))
    post = posteriors(np.stack([a, -3 * b]), np.full((2, 2, 5), -2.0))
    np.testing.assert_allclose(udr(post, measure="spearman").values, (cols + rows) / 2)


def test_kl_filter_and_empty_model() -> None:
    post = _grid_ensemble(n_models=3)
    # a fourth model collapsed to the prior: nothing informative, scores 0
    mean = np.concatenate([post["mean"].values, np.zeros((1, 3, 16))])
    logvar = np.concatenate([post["logvar"].values, np.zeros((1, 3, 16))])
    score = udr(posteriors(mean, logvar), measure="spearman")
    assert score.values[3] == 0.0
    # others: median over {1, 1, 0} partners
    np.testing.assert_allclose(score.values[:3], 1.0)
    # a threshold above every latent's KL leaves nothing informative
    high = udr(post, measure="spearman", kl_threshold=1e6)
    np.testing.assert_array_equal(high.values, 0.0)


# -- invariance: a permuted, rescaled, sign-flipped copy of a model ------------------


def _with_copy(scale: float, shift: float) -> xr.Dataset:
    """Five planted models and a sixth: model 0 with latents permuted and mapped affinely."""
    post = planted_ensemble(n_models=5, n_latent=5, n_samples=120, seed=7)
    perm = np.array([3, 0, 4, 1, 2])
    copy_mean = scale * post["mean"].values[0, perm] + shift
    copy_logvar = post["logvar"].values[0, perm] + np.log(scale**2)
    mean = np.concatenate([post["mean"].values, copy_mean[None]])
    logvar = np.concatenate([post["logvar"].values, copy_logvar[None]])
    return posteriors(mean, logvar, coords={"beta": [1.0, 2.0, 3.0, 4.0, 5.0, 1.0]})


@pytest.fixture(scope="module")
def with_copy() -> xr.Dataset:
    return _with_copy(-1.0, 0.0)  # permuted and sign-flipped


def _score(post: xr.Dataset, similarity: str) -> xr.DataArray:
    return udr(post, measure=similarity)


@pytest.mark.parametrize("similarity", SIMILARITIES)
def test_permuted_copy_scores_like_the_model(with_copy: xr.Dataset, similarity: str) -> None:
    score = _score(with_copy, similarity)
    tol = 1e-3 if similarity == "lasso" else 1e-5  # Lasso: coordinate-descent tolerance
    assert abs(float(score[0]) - float(score[5])) < tol
    assert float(score.min()) > 0 and float(score.max()) <= 1
    np.testing.assert_array_equal(score["beta"].values, [1, 2, 3, 4, 5, 1])


@pytest.mark.parametrize("similarity", ["nmi", "vi"])
def test_information_not_axes(similarity: str) -> None:
    # an affine map of every latent changes nothing for NMI/VI (BC is invariant),
    # while the KL filter of the original UDR sees the shifted, collapsed latents
    post = _with_copy(2.5, 1.0)
    score = _score(post, similarity)
    assert abs(float(score[0]) - float(score[5])) < 1e-5
    spearman = udr(post, measure="spearman")
    assert abs(float(spearman[0]) - float(spearman[5])) > 0.01


def test_pairwise_input_nmi_vi(with_copy: xr.Dataset) -> None:
    pw = reference_pairwise(with_copy)
    for similarity in ("nmi", "vi"):
        score = udr(pw, measure=similarity)
        assert score.sizes["model"] == 6
    with pytest.raises(ValueError, match="needs the latent means"):
        udr(pw, measure="lasso")


@pytest.mark.parametrize("similarity", ["nmi", "vi"])
def test_engine_matches_reference(with_copy: xr.Dataset, similarity: str) -> None:
    expected = udr(reference_pairwise(with_copy), measure=similarity)
    got = udr(with_copy, measure=similarity)
    np.testing.assert_allclose(got.values, expected.values, atol=1e-4)
    via_accessor = with_copy.repinfo.udr(similarity)
    np.testing.assert_allclose(via_accessor.values, got.values)


@pytest.mark.parametrize("similarity", SIMILARITIES)
def test_fingerprints_input(with_copy: xr.Dataset, similarity: str) -> None:
    from ensemblex.fingerprints import concat_fingerprints, label_fingerprints

    fp = with_copy.repinfo.fingerprint()
    np.testing.assert_allclose(
        udr(fp, measure=similarity).values,
        udr(with_copy, measure=similarity).values,
        atol=1e-5,
    )
    # label channels are ignored
    labels = label_fingerprints(np.arange(120)[None] % 3)
    both = concat_fingerprints(fp, labels)
    np.testing.assert_allclose(
        udr(both, measure=similarity).values, udr(fp, measure=similarity).values
    )


def test_subspace_fingerprints() -> None:
    post = _grid_ensemble()
    fp = post.repinfo.fingerprint([[0, 1], [2]])
    with pytest.raises(ValueError, match="multi-latent"):
        udr(fp, measure="lasso")
    assert udr(fp, measure="nmi").sizes["model"] == 4


# -- errors ---------------------------------------------------------------------------


def test_errors() -> None:
    post = _grid_ensemble(n_models=1)
    with pytest.raises(ValueError, match="got 1 model"):
        udr(post, measure="spearman")
    with pytest.raises(ValueError, match="similarity must be one of"):
        udr(post, similarity="pearson")  # the deprecated alias names itself
    with pytest.raises(ValueError, match="kl_threshold must be"):
        udr(post, measure="lasso", kl_threshold=-1)
    with pytest.raises(TypeError, match="needs a Posteriors or Fingerprints or Pairwise"):
        udr(xr.Dataset({"x": ("a", [1.0])}))


def test_measure_and_deprecated_similarity_alias() -> None:
    post = _grid_ensemble()
    new = udr(post, measure="spearman")
    with pytest.warns(FutureWarning, match=r"udr\(similarity=...\) is deprecated"):
        old = udr(post, similarity="spearman")
    np.testing.assert_array_equal(old.values, new.values)
    assert new.attrs["measure"] == new.attrs["similarity"] == "spearman"
    with pytest.raises(ValueError, match="measure must be one of"):
        udr(post, measure="pearson")
    with (
        pytest.warns(FutureWarning),
        pytest.raises(ValueError, match="pass measure= only"),
    ):
        udr(post, measure="nmi", similarity="vi")
