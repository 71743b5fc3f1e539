"""Figures: Fig. 4 layout of one ensemble's hotspots, and two ensembles compared."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from matplotlib.image import imread
from sklearn.metrics import adjusted_rand_score

from ensemblex._kinds import stamp
from ensemblex.plot import plot_cross, plot_structure
from ensemblex.structure import cluster
from ensemblex.testing import planted_ensemble, reference_pairwise


def _labels(fig) -> list[str]:
    return sorted(ax.get_label() for ax in fig.axes)


def _axes(fig, label: str):
    return next(ax for ax in fig.axes if ax.get_label() == label)


def _block_pairwise(sizes=(12, 10, 14), seed: int = 0) -> tuple[xr.Dataset, np.ndarray]:
    """A Pairwise dataset whose NMI is block diagonal in a hidden, shuffled channel order."""
    rng = np.random.default_rng(seed)
    block = np.repeat(np.arange(len(sizes)), sizes)
    block = block[rng.permutation(block.size)]
    n = block.size
    same = block[:, None] == block[None]
    nmi = np.where(same, rng.uniform(0.7, 0.9, (n, n)), rng.uniform(0.0, 0.05, (n, n)))
    nmi = (nmi + nmi.T) / 2
    np.fill_diagonal(nmi, 1.0)
    ids = np.arange(n)
    ds = xr.Dataset(
        {
            "nmi": (("channel_a", "channel_b"), nmi.astype(np.float32)),
            "vi": (("channel_a", "channel_b"), (1 - nmi).astype(np.float32)),
            "joint_info": (("channel_a", "channel_b"), np.ones((n, n), np.float32)),
            "info_a": ("channel_a", np.ones(n, np.float32)),
            "repeat_info_a": ("channel_a", np.ones(n, np.float32)),
            "info_b": ("channel_b", np.ones(n, np.float32)),
            "repeat_info_b": ("channel_b", np.ones(n, np.float32)),
        },
        coords={"channel_a": ids, "channel_b": ids},
    )
    return stamp(ds, "pairwise", min_info=0.01), block


@pytest.fixture(scope="module")
def planted_clusters() -> xr.Dataset:
    post = planted_ensemble(n_models=10, n_latent=5, n_samples=80, seed=2)
    return cluster(reference_pairwise(post, labels=True), min_samples=6)


def test_structure_png_with_three_panels(tmp_path, planted_clusters: xr.Dataset) -> None:
    path = tmp_path / "structure.png"
    fig = plot_structure(planted_clusters, path=path)
    assert _labels(fig) == ["colorbar", "label_nmi", "reachability", "similarity"]
    image = imread(path)
    assert image.shape[:2] == (750, 800)
    assert image[..., :3].std() > 0.05  # something was drawn
    n = int(planted_clusters["informative"].sum())
    assert _axes(fig, "similarity").images[0].get_array().shape == (n, n)
    assert _axes(fig, "label_nmi").images[0].get_array().shape == (n, 3)
    assert len(_axes(fig, "reachability").patches) >= n  # one bar per channel


def test_structure_without_labels(planted_clusters: xr.Dataset) -> None:
    fig = plot_structure(planted_clusters.drop_vars("label_nmi").drop_dims("factor"))
    assert _labels(fig) == ["colorbar", "reachability", "similarity"]


def test_block_diagonal_after_reordering(tmp_path) -> None:
    pw, block = _block_pairwise()
    cl = cluster(pw, min_samples=5)
    # the planted blocks are the groups, contiguous along the OPTICS ordering
    groups = cl["group"].values[cl["ordering"].values]
    assert (groups >= 0).all()
    assert (np.diff(groups) != 0).sum() == 2
    assert adjusted_rand_score(block, cl["group"].values) == 1.0
    fig = plot_structure(cl, path=tmp_path / "blocks.png")
    shown = np.asarray(_axes(fig, "similarity").images[0].get_array())
    # block diagonal: high inside each run of one group, low outside
    same = groups[:, None] == groups[None]
    assert shown[same].min() >= 0.7
    assert shown[~same].max() <= 0.05
    expected = pw["nmi"].values[np.ix_(cl["ordering"].values, cl["ordering"].values)]
    np.testing.assert_allclose(shown, expected, atol=1e-6)


def test_structure_from_pairwise(planted_clusters: xr.Dataset) -> None:
    pw, _ = _block_pairwise()
    cl = cluster(pw, min_samples=5)
    direct = plot_structure(cl)
    via = plot_structure(cl.drop_vars("similarity"), pairwise=pw)
    np.testing.assert_allclose(
        _axes(direct, "similarity").images[0].get_array(),
        _axes(via, "similarity").images[0].get_array(),
    )
    with pytest.raises(ValueError, match="pass pairwise="):
        plot_structure(cl.drop_vars("similarity"))
    with pytest.raises(TypeError, match="needs a Clusters dataset"):
        plot_structure(pw)


def test_structure_vi(tmp_path) -> None:
    pw, _ = _block_pairwise()
    cl = cluster(pw, "vi", min_samples=5)
    fig = plot_structure(cl, path=tmp_path / "vi.png")
    assert _axes(fig, "colorbar").get_ylabel() == "exp(-VI)"


# -- two ensembles ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_ensembles():
    a = planted_ensemble(n_models=8, n_latent=5, n_samples=80, n_mixed=0, seed=4)
    b = planted_ensemble(n_models=8, n_latent=4, n_samples=80, n_mixed=0, seed=5)
    return a, b  # two unrelated ensembles over 80 samples with the same ids


def test_cross_png_and_identical_ensembles(tmp_path, two_ensembles) -> None:
    a, _ = two_ensembles
    fp = a.repinfo.fingerprint()
    cl = fp.repinfo.cluster(min_samples=5)
    path = tmp_path / "cross.png"
    fig = fp.repinfo.plot_cross(fp, path=path)
    assert imread(path).shape[:2] == (600, 700)
    assert _labels(fig) == ["colorbar", "similarity"]
    shown = np.asarray(_axes(fig, "similarity").images[0].get_array())
    np.testing.assert_allclose(np.diag(shown), 1.0, atol=1e-4)  # matches on the diagonal
    # Clusters sides: in OPTICS order, the matrix is the clusters' own similarity
    fig = cl.repinfo.plot_cross(cl)
    shown = np.asarray(_axes(fig, "similarity").images[0].get_array())
    ids = cl["channel"].values[cl["ordering"].values]
    expected = cl["similarity"].sel(channel_a=ids, channel_b=ids).values
    np.testing.assert_allclose(shown, expected, atol=1e-4)


def test_cross_two_ensembles_vi(two_ensembles) -> None:
    a, b = two_ensembles
    fig = plot_cross(a.repinfo.fingerprint(), b.repinfo.fingerprint(), metric="vi")
    shown = np.asarray(_axes(fig, "similarity").images[0].get_array())
    assert shown.shape == (24, 24)
    assert ((shown >= 0) & (shown <= 1)).all()


def test_cross_errors(planted_clusters: xr.Dataset, two_ensembles) -> None:
    fp = two_ensembles[0].repinfo.fingerprint()
    with pytest.raises(ValueError, match="do not carry their fingerprints' parameters"):
        plot_cross(planted_clusters, fp)
    with pytest.raises(ValueError, match="metric must be one of"):
        plot_cross(fp, fp, metric="mi")
    with pytest.raises(TypeError, match="needs a Fingerprints or Clusters"):
        plot_cross(two_ensembles[0], fp)
