"""Figures: one ensemble's structure, two ensembles compared, NMI against exp(-VI),
the synthesised channel and decoded traversals of groups."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import xarray as xr
from matplotlib.image import imread
from sklearn.metrics import adjusted_rand_score

import ensemblex.plot as plot_module
from ensemblex._kinds import stamp
from ensemblex.plot import plot_cross, plot_nmi_vi, plot_structure, plot_synthesis
from ensemblex.structure import cluster
from ensemblex.testing import planted_ensemble, reference_pairwise


def _labels(fig) -> list[str]:
    return sorted(ax.get_label() for ax in fig.axes)


def _axes(fig, label: str):
    return next(ax for ax in fig.axes if ax.get_label() == label)


def _colorbars(fig) -> list:
    """The colour-bar axes of a figure (matplotlib labels those it makes ``<colorbar>``)."""
    return [ax for ax in fig.axes if ax.get_label() in ("<colorbar>", "colorbar")
            or ax.get_label().endswith("_colorbar")]  # fmt: skip


def _legend_texts(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


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
    assert _labels(fig) == [
        "colorbar", "label_nmi", "label_nmi_colorbar", "reachability", "similarity",
    ]  # fmt: skip
    image = imread(path)
    assert image.shape[:2] == (750, 800)
    assert image[..., :3].std() > 0.05  # something was drawn
    n = int(planted_clusters["informative"].sum())
    assert _axes(fig, "similarity").images[0].get_array().shape == (n, n)
    assert _axes(fig, "label_nmi").images[0].get_array().shape == (n, 3)
    assert len(_axes(fig, "reachability").patches) >= n  # one bar per channel


def test_structure_names_channels_groups_and_scales(planted_clusters: xr.Dataset) -> None:
    cl = planted_clusters
    fig = plot_structure(cl)
    ordered = cl.isel(channel=cl["ordering"].values)
    n = ordered.sizes["channel"]
    assert n <= 40  # few channels: every tick names (model, latent)
    expected = [f"({m}, {lat})" for m, lat in zip(ordered["model"].values,
                                                  ordered["latent"].values, strict=True)]  # fmt: skip
    sim = _axes(fig, "similarity")
    assert [t.get_text() for t in sim.get_xticklabels()] == expected
    # the y ticks are shared with (and shown on) the label strip
    assert [t.get_text() for t in _axes(fig, "label_nmi").get_yticklabels()] == expected
    # one legend entry per group, noise, and the clipped bar (the ordering's first is inf)
    n_groups = int(cl["group"].max()) + 1
    assert np.isinf(ordered["reachability"].values[0])
    assert _legend_texts(_axes(fig, "reachability")) == [
        *(f"group {g}" for g in range(n_groups)), "noise", "clipped (infinite reachability)",
    ]  # fmt: skip
    # two colour bars: the matrix's and the label strip's own
    assert _axes(fig, "colorbar").get_ylabel() == "NMI"
    strip_bar = _axes(fig, "label_nmi_colorbar")
    assert strip_bar.get_xlabel() == "NMI with\nfactor"
    assert strip_bar.images or strip_bar.collections  # a colour bar was drawn in it
    assert "min_samples=6" in _axes(fig, "reachability").get_title()


def test_structure_ticks_are_channel_ids_when_many() -> None:
    pw, _ = _block_pairwise(sizes=(20, 18, 22))
    cl = cluster(pw, min_samples=5)
    fig = plot_structure(cl)
    ids = cl["channel"].values[cl["ordering"].values]
    sim = _axes(fig, "similarity")
    ticks = sim.get_xticks().round().astype(int)
    assert 5 <= ticks.size <= 11
    assert [t.get_text() for t in sim.get_xticklabels()] == [str(ids[t]) for t in ticks]
    assert sim.get_xlabel() == "channel id, in OPTICS order"


def test_structure_marks_infinite_reachability_as_clipped() -> None:
    pw, _ = _block_pairwise(sizes=(20, 18, 22))
    cl = cluster(pw, min_samples=5)
    order = cl["ordering"].values
    reach = cl["reachability"].values.copy()
    reach[order[30]] = np.inf  # a channel no other reaches
    fig = plot_structure(cl.assign(reachability=("channel", reach)))
    ax = _axes(fig, "reachability")
    (marks,) = [line for line in ax.lines if line.get_label().startswith("clipped")]
    # the ordering's first point and the unreached one, both drawn at the top
    np.testing.assert_array_equal(marks.get_xdata(), [0, 30])
    heights = np.array([bar.get_height() for bar in ax.containers[0]])  # the bars
    finite = reach[order][np.isfinite(reach[order])]
    np.testing.assert_allclose(heights[[0, 30]], 1.1 * finite.max())
    np.testing.assert_allclose(np.delete(heights, [0, 30]), np.delete(reach[order], [0, 30]))


def _synthetic_clusters(n: int, block: int, seed: int = 0) -> tuple[xr.Dataset, np.ndarray]:
    """Clusters of ``n`` informative channels carrying only ``ordered_similarity``."""
    rng = np.random.default_rng(seed)
    n_pix = -(-n // block)
    image = rng.uniform(0, 1, (n_pix, n_pix)).astype(np.float32)
    ordering = rng.permutation(n)
    groups = np.repeat([0, 1, -1], [n // 3, n // 3, n - 2 * (n // 3)])
    group = np.empty(n, np.int64)
    group[ordering] = groups
    reach = rng.uniform(0.1, 1, n)
    reach[ordering[0]] = np.inf
    central = np.zeros(n, bool)
    central[ordering[[0, n // 3]]] = True
    starts = np.arange(0, n, block)
    ds = xr.Dataset(
        {
            "info": ("channel", np.ones(n, np.float32)),
            "informative": ("channel", np.ones(n, bool)),
            "group": ("channel", group),
            "reachability": ("channel", reach),
            "central": ("channel", central),
            "ordering": ("order", ordering),
            "ordered_similarity": (("row", "col"), image, {"block_size": block}),
        },
        coords={"channel": np.arange(n) + 1000, "row": starts, "col": starts},
    )
    return stamp(ds, "clusters", measure="nmi", min_samples=20, min_info=0.5), image


def test_structure_draws_ordered_similarity_at_its_resolution(tmp_path) -> None:
    # 2,500 channels at 3 per pixel: the figure is drawn from the 834 x 834 block
    # means alone (no n x n matrix anywhere in the Clusters)
    cl, image = _synthetic_clusters(2500, 3)
    assert "similarity" not in cl
    fig = plot_structure(cl, path=tmp_path / "big.png")
    sim = _axes(fig, "similarity")
    np.testing.assert_array_equal(np.asarray(sim.images[0].get_array()), image)
    # the blocks cover the channels' positions: pixel k spans positions 3k .. 3k + 2
    assert sim.images[0].get_extent() == [-0.5, 834 * 3 - 0.5, 834 * 3 - 0.5, -0.5]
    assert sim.get_xlim() == (-0.5, 2499.5)
    assert "3 channels per pixel" in _axes(fig, "reachability").get_title()
    # the reachability is drawn per block too: one bar per pixel column
    assert len(_axes(fig, "reachability").containers[0]) == 834
    assert imread(tmp_path / "big.png").shape[:2] == (750, 800)
    # a Clusters edited after cluster() is refused, not silently misdrawn
    with pytest.raises(ValueError, match="ordered_similarity is 834 x 834"):
        plot_structure(cl.isel(order=slice(0, 2000)))


def _padded_block_means(matrix: np.ndarray, block: int) -> np.ndarray:
    """Oracle: block means by padding with NaN to a multiple of ``block`` and reshaping."""
    n = matrix.shape[0]
    m = -(-n // block) * block
    padded = np.full((m, m), np.nan)
    padded[:n, :n] = matrix
    blocks = padded.reshape(m // block, block, m // block, block)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "mean of empty slice": NaN
        return np.nanmean(blocks, axis=(1, 3))


@pytest.mark.slow
def test_streamed_block_means_match_an_oracle(monkeypatch) -> None:
    rng = np.random.default_rng(3)
    n = 2300
    values = rng.uniform(0, 1, (n, n)).astype(np.float32)
    values[rng.random((n, n)) < 0.01] = np.nan  # left out of the means
    values[:3, :3] = np.nan  # a block with nothing but NaN stays NaN
    ids = np.arange(n) * 7
    order = rng.permutation(n)
    matrix = xr.DataArray(values, dims=("channel_a", "channel_b"),
                          coords={"channel_a": ids, "channel_b": ids})  # fmt: skip
    monkeypatch.setattr(plot_module, "_READ_VALUES", 50_000)  # many strips
    got = plot_module._stream_block_means(matrix.chunk(500), ids[order], 3)
    expected = _padded_block_means(values[np.ix_(order, order)].astype(np.float64), 3)
    assert got.shape == (767, 767)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    # the same through a transform, ids in their stored order
    got = plot_module._stream_block_means(matrix, ids, 3, lambda x: 1.0 - x)
    np.testing.assert_allclose(got, 1.0 - _padded_block_means(values.astype(np.float64), 3))


def test_structure_of_old_clusters_streams_their_matrix() -> None:
    # Clusters written before ordered_similarity existed carry the full matrix
    pw, _ = _block_pairwise(sizes=(12, 10, 14))
    cl = cluster(pw, min_samples=5)
    old = cl.drop_vars("ordered_similarity")
    if "similarity" not in old:
        ids = cl["channel"].values[cl["informative"].values]
        old = old.assign(similarity=pw["nmi"].sel(channel_a=ids, channel_b=ids).clip(0, 1))
    a = _axes(plot_structure(cl), "similarity").images[0].get_array()
    b = _axes(plot_structure(old), "similarity").images[0].get_array()
    np.testing.assert_allclose(a, b, atol=1e-6)


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
    bare = cl.drop_vars(["similarity", "ordered_similarity"], errors="ignore")
    via = plot_structure(bare, pairwise=pw)
    via_lazy = plot_structure(bare, pairwise=pw.chunk({"channel_a": 7, "channel_b": 9}))
    for other in (via, via_lazy):
        np.testing.assert_allclose(
            _axes(direct, "similarity").images[0].get_array(),
            _axes(other, "similarity").images[0].get_array(),
            atol=1e-6,
        )
    # Clusters that carry ordered_similarity are drawn from it: pairwise= is not read
    zeros = pw.assign(nmi=pw["nmi"] * 0)
    np.testing.assert_array_equal(
        _axes(plot_structure(cl, pairwise=zeros), "similarity").images[0].get_array(),
        cl["ordered_similarity"].values,
    )
    with pytest.raises(ValueError, match="pass pairwise="):
        plot_structure(bare)
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
    fp_a, fp_b = a.repinfo.fingerprint(), b.repinfo.fingerprint()
    fig = plot_cross(fp_a, fp_b, measure="vi")
    shown = np.asarray(_axes(fig, "similarity").images[0].get_array())
    assert shown.shape == (24, 24)
    assert ((shown >= 0) & (shown <= 1)).all()
    assert _axes(fig, "colorbar").get_ylabel() == "exp(-VI)"
    # the deprecated name still works, with a FutureWarning, and draws the same
    with pytest.warns(FutureWarning, match=r"plot_cross\(metric=...\) is deprecated"):
        old = plot_cross(fp_a, fp_b, metric="vi")
    np.testing.assert_array_equal(_axes(old, "similarity").images[0].get_array(), shown)


def test_cross_errors(planted_clusters: xr.Dataset, two_ensembles) -> None:
    fp = two_ensembles[0].repinfo.fingerprint()
    with pytest.raises(ValueError, match="do not carry their fingerprints' parameters"):
        plot_cross(planted_clusters, fp)
    with pytest.raises(ValueError, match="metric must be one of"), pytest.warns(FutureWarning):
        plot_cross(fp, fp, metric="mi")
    with pytest.raises(ValueError, match="measure must be one of"):
        plot_cross(fp, fp, measure="mi")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pass measure= only"), pytest.warns(FutureWarning):
        plot_cross(fp, fp, measure="nmi", metric="vi")
    with pytest.raises(TypeError, match="needs a Fingerprints or Clusters"):
        plot_cross(two_ensembles[0], fp)


# -- NMI against exp(-VI) ---------------------------------------------------------------


@pytest.fixture(scope="module")
def planted_pairwise() -> xr.Dataset:
    return reference_pairwise(planted_ensemble(n_models=8, n_latent=5, n_samples=60, seed=1))


def _upper_pairs(pw: xr.Dataset) -> np.ndarray:
    """Oracle: (NMI, exp(-VI)) of every pair i < j of informative channels, float64."""
    keep = np.flatnonzero(pw["info_a"].values >= pw.attrs["min_info"])
    nmi = pw["nmi"].values.astype(np.float64)[np.ix_(keep, keep)]
    vi = pw["vi"].values.astype(np.float64)[np.ix_(keep, keep)]
    i, j = np.triu_indices(keep.size, k=1)
    return np.stack([np.clip(nmi[i, j], 0, 1), np.exp(-np.maximum(vi[i, j], 0))], axis=1)


def _points(fig) -> np.ndarray:
    return np.asarray(_axes(fig, "nmi_vi").collections[0].get_offsets(), dtype=np.float64)


def _sorted_rows(a: np.ndarray) -> np.ndarray:
    return a[np.lexsort(a.T[::-1])]


def test_nmi_vi_draws_every_pair(tmp_path, planted_pairwise: xr.Dataset, monkeypatch) -> None:
    monkeypatch.setattr(plot_module, "_READ_VALUES", 100)  # strips of a few rows
    expected = _upper_pairs(planted_pairwise)
    n_pairs = expected.shape[0]
    fig = plot_nmi_vi(planted_pairwise, path=tmp_path / "nmi_vi.png")
    np.testing.assert_allclose(_sorted_rows(_points(fig)), _sorted_rows(expected), atol=1e-6)
    ax = _axes(fig, "nmi_vi")
    assert ax.get_xlabel() == "NMI" and ax.get_ylabel() == "exp(-VI)"
    assert f"all {n_pairs} pairs" in ax.get_title()
    assert imread(tmp_path / "nmi_vi.png").shape[:2] == (550, 600)
    # the same from a lazy (Dask) Pairwise dataset
    lazy = planted_pairwise.chunk({"channel_a": 9, "channel_b": 11})
    np.testing.assert_allclose(_sorted_rows(_points(plot_nmi_vi(lazy))),
                               _sorted_rows(expected), atol=1e-6)  # fmt: skip


def test_nmi_vi_subsamples_big_stores_with_a_seed(planted_pairwise: xr.Dataset) -> None:
    expected = _upper_pairs(planted_pairwise)
    fig = plot_nmi_vi(planted_pairwise, max_pairs=100, seed=3)
    points = _points(fig)
    assert points.shape == (100, 2)
    # every point is a pair of the oracle, none drawn twice
    known = {tuple(row) for row in np.round(expected, 5)}
    assert {tuple(row) for row in np.round(points, 5)} <= known
    assert len({tuple(row) for row in np.round(points, 6)}) == 100
    title = _axes(fig, "nmi_vi").get_title()
    assert f"a random 100 of {expected.shape[0]:,} pairs" in title and "seed 3" in title
    again = _points(plot_nmi_vi(planted_pairwise, max_pairs=100, seed=3))
    np.testing.assert_array_equal(points, again)
    other = _points(plot_nmi_vi(planted_pairwise, max_pairs=100, seed=4))
    assert not np.array_equal(_sorted_rows(points), _sorted_rows(other))


def test_pair_numbering_matches_triu_indices() -> None:
    for n in (2, 3, 7, 40):
        i, j = np.triu_indices(n, k=1)
        got_i, got_j = plot_module._pair_rows(np.arange(i.size), n)
        np.testing.assert_array_equal(got_i, i)
        np.testing.assert_array_equal(got_j, j)


def test_nmi_vi_errors(planted_pairwise: xr.Dataset, planted_clusters: xr.Dataset) -> None:
    with pytest.raises(TypeError, match="needs a Pairwise"):
        plot_nmi_vi(planted_clusters)
    cross = planted_pairwise.isel(channel_b=slice(0, 10))
    with pytest.raises(ValueError, match="two different sets"):
        plot_nmi_vi(cross)
    dead = planted_pairwise.assign(info_a=planted_pairwise["info_a"] * 0)
    with pytest.raises(ValueError, match="no pair to draw"):
        plot_nmi_vi(dead)


# -- the synthesised channel ------------------------------------------------------------


@pytest.fixture(scope="module")
def ring_syn() -> tuple[xr.Dataset, xr.DataArray]:
    import ensemblex as ex

    theta = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    syn = ex.posteriors(np.stack([np.cos(theta), np.sin(theta)])[None], np.full((1, 2, 48), -4.0))
    syn["objective_trace"] = ("step", np.linspace(1.0, 0.2, 30))
    labels = xr.DataArray(
        np.stack([np.floor(theta / (np.pi / 2)), theta > np.pi, np.arange(48) % 3]),
        dims=("factor", "sample"),
        coords={"factor": ["quadrant", "upper", "phase"]},
    )
    return syn, labels


def test_synthesis_png(tmp_path, ring_syn) -> None:
    syn, labels = ring_syn
    out = plot_synthesis(syn, tmp_path / "synth.png", labels=labels)
    assert out == tmp_path / "synth.png"
    assert imread(out)[..., :3].std() > 0.05  # a PNG with something drawn


def _synth_figure(monkeypatch, syn, labels, **kwargs):
    """The Figure plot_synthesis draws (it returns the path)."""
    captured = {}
    original = plot_module._save

    def keep(fig, path):
        captured["fig"] = fig
        return original(fig, path)

    monkeypatch.setattr(plot_module, "_save", keep)
    plot_synthesis(syn, kwargs.pop("path"), labels=labels, **kwargs)
    return captured["fig"]


def test_synthesis_colours_by_factor_and_pair(tmp_path, ring_syn, monkeypatch) -> None:
    syn, labels = ring_syn
    fig = _synth_figure(monkeypatch, syn, labels, path=tmp_path / "a.png")
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert [ax.get_ylabel() for ax in bars] == ["quadrant", "upper", "phase"]
    fig = _synth_figure(
        monkeypatch, syn, labels, path=tmp_path / "b.png", color_by=["quadrant+phase", "upper"]
    )
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert [ax.get_ylabel() for ax in bars] == ["quadrant+phase (joint label)", "upper"]
    scatter = next(ax for ax in fig.axes if ax.get_title() == "coloured by quadrant+phase")
    # the joint label a * n_b + b on the factors' codes: 4 quadrants x 3 phases
    quadrant = labels.sel(factor="quadrant").values.astype(int)
    phase = labels.sel(factor="phase").values.astype(int)
    np.testing.assert_array_equal(scatter.collections[0].get_array(), quadrant * 3 + phase)
    assert len(np.unique(quadrant * 3 + phase)) == 12
    # the objective trace keeps its panel
    assert any(ax.get_title() == "objective trace" for ax in fig.axes)


def test_synthesis_errors(tmp_path, ring_syn) -> None:
    syn, labels = ring_syn
    with pytest.raises(ValueError, match="not a factor of the labels"):
        plot_synthesis(syn, tmp_path / "x.png", labels=labels, color_by="colour")
    with pytest.raises(ValueError, match="needs labels="):
        plot_synthesis(syn, tmp_path / "x.png", color_by="upper")
    assert not (tmp_path / "x.png").exists()


# -- traversals of groups -----------------------------------------------------------------


class _Members:
    """The parts of an Ensemble that the channel-to-member mapping reads."""

    def __init__(self, members: list[int], seeds: list[int]) -> None:
        self.members, self.seeds = members, seeds

    def __len__(self) -> int:
        return len(self.members)


def _clusters_with(**coords: list[int]) -> xr.Dataset:
    ds = xr.Dataset(
        coords={"channel": [10, 11, 12], **{k: ("channel", v) for k, v in coords.items()}}
    )
    return ds


def test_channels_map_to_members_by_member_seed_or_model() -> None:
    ens = _Members(members=[0, 2, 5], seeds=[7, 8, 9])
    position = plot_module._ensemble_position
    # the member coordinate (index in the trained ensemble) wins
    cl = _clusters_with(model=[0, 1, 2], member=[5, 0, 2], seed=[7, 8, 9])
    assert [position(cl, c, ens) for c in (10, 11, 12)] == [2, 0, 1]
    # else the seed, when the ensemble's seeds are distinct
    cl = _clusters_with(model=[0, 1, 2], seed=[9, 7, 8])
    assert [position(cl, c, ens) for c in (10, 11, 12)] == [2, 0, 1]
    # else the model value as a position
    cl = _clusters_with(model=[2, 1, 0])
    assert [position(cl, c, ens) for c in (10, 11, 12)] == [2, 1, 0]
    with pytest.raises(ValueError, match="matches no member of the ensemble"):
        position(_clusters_with(model=[3, 1, 0]), 10, ens)


@pytest.mark.train
def test_group_traversals_decode_central_and_contrast(tmp_path) -> None:
    pytest.importorskip("tensorflow")
    from ensemblex.datasets import load_dataset
    from ensemblex.models import train_ensemble
    from ensemblex.plot import plot_group_traversals
    from ensemblex.structure import describe_groups

    # planted Clusters over 8 models x 5 latents, and a tiny 8-member image ensemble
    # with the same shape: model m of the clusters is member m
    post = planted_ensemble(n_models=8, n_latent=5, n_samples=60, n_mixed=0, seed=1)
    cl = cluster(reference_pairwise(post, labels=True), min_samples=5)
    digits = load_dataset("digits", n_samples=64)
    ens = train_ensemble(digits, n_members=8, latent_dim=5, hidden=[8], steps=2, batch_size=16,
                         progress=False)  # fmt: skip
    path = tmp_path / "traversals.png"
    fig = plot_group_traversals(ens, cl, n_steps=5, span=1.5, path=path, seed=3)
    assert imread(path)[..., :3].std() > 0.02
    table = describe_groups(cl)
    values = np.linspace(-1.5, 1.5, 5)
    groups = cl["group"].values
    for _, row in table.iterrows():
        g = int(row["group"])
        central = _axes(fig, f"group {g} central")
        contrast = _axes(fig, f"group {g} contrast")
        model, latent = int(row["central_model"]), int(row["central_latent"])
        title = central.get_title(loc="left")
        assert f"group {g}: model {model}, latent {latent} (central)" in title
        assert f"{int(row['size'])} channels in {int(row['models'])} of 8 models" in title
        assert f"best {row['best_factors']} (NMI {row['best_nmi']:.2f})" in title
        # the drawn images are the member's decoded traversal
        np.testing.assert_allclose(
            np.asarray(central.images[0].get_array()),
            ens.traverse(model, latent, values)[0].reshape(8, 8),
            atol=1e-6,
        )
        # the contrast is another member of the same group
        c_title = contrast.get_title(loc="left")
        c_model, c_latent = (int(x) for x in
                             c_title.split("model ")[1].split(" (")[0].split(", latent "))  # fmt: skip
        member = (cl["model"].values == c_model) & (cl["latent"].values == c_latent)
        assert groups[member][0] == g and (c_model, c_latent) != (model, latent)
    # seeded: the same contrast members again, and the labels of every row are there
    again = plot_group_traversals(ens, cl, n_steps=5, span=1.5, seed=3)
    for g in table["group"]:
        assert (_axes(again, f"group {g} contrast").get_title(loc="left")
                == _axes(fig, f"group {g} contrast").get_title(loc="left"))  # fmt: skip
    with pytest.raises(ValueError, match="n_steps must be >= 2"):
        plot_group_traversals(ens, cl, n_steps=1)
    with pytest.raises(ValueError, match="needs the channels' 'model' coordinate"):
        plot_group_traversals(ens, cl.drop_vars("model"))


def test_reads_cover_rows_once_and_keep_chunks_whole(monkeypatch) -> None:
    monkeypatch.setattr(plot_module, "_READ_VALUES", 100)
    rng = np.random.default_rng(5)
    for chunk, width in ((1, 10), (7, 10), (7, 3), (50, 10), (3, 1000)):
        positions = np.sort(rng.choice(400, size=150, replace=False))
        reads = plot_module._reads(positions, chunk, width)
        # contiguous, in order, every row once
        assert reads[0][0] == 0 and reads[-1][1] == positions.size
        assert all(a[1] == b[0] for a, b in itertools.pairwise(reads))
        budget = max(1, 100 // width)
        for lo, hi in reads:
            chunks = set((positions[lo:hi] // chunk).tolist())
            if hi - lo > budget:  # over budget only for one chunk (at most 4 budgets)
                assert len(chunks) == 1
            if (
                0 < lo < positions.size
                and (positions // chunk == positions[lo] // chunk).sum() <= 4 * budget
            ):
                # a chunk no larger than 4 budgets is not split between two reads
                assert positions[lo - 1] // chunk != positions[lo] // chunk


def test_cross_draws_block_means_above_the_pixel_bound(two_ensembles, monkeypatch) -> None:
    a, b = two_ensembles
    fp_a, fp_b = a.repinfo.fingerprint(), b.repinfo.fingerprint()
    full = np.asarray(_axes(plot_cross(fp_a, fp_b), "similarity").images[0].get_array())
    monkeypatch.setattr(plot_module, "MAX_PIXELS", 10)  # 24 x 24 channels: 3 per pixel
    fig = plot_cross(fp_a, fp_b)
    ax = _axes(fig, "similarity")
    shown = np.asarray(ax.images[0].get_array())
    assert shown.shape == (8, 8)
    np.testing.assert_allclose(shown, full.reshape(8, 3, 8, 3).mean(axis=(1, 3)), atol=1e-12)
    assert ax.get_xlim() == (-0.5, 23.5)


def test_structure_numbers_every_group_and_caps_the_legend() -> None:
    cl, _ = _synthetic_clusters(300, 1)
    group = np.empty(300, np.int64)
    group[cl["ordering"].values] = np.arange(300) // 12  # 25 groups of 12, in order
    fig = plot_structure(cl.assign(group=("channel", group)))
    sim = _axes(fig, "similarity")
    numbers = [t.get_text() for t in sim.texts if t.get_label() == "group number"]
    assert numbers == [str(g) for g in range(25)]  # colours repeat past 20; numbers do not
    legend = _axes(fig, "reachability").get_legend()
    assert legend.get_title().get_text() == "first 20 of 25 groups"
    texts = [t.get_text() for t in legend.get_texts()]
    assert texts[:20] == [f"group {g}" for g in range(20)] and texts[20] == "noise"


@pytest.mark.train
def test_group_traversals_of_vector_data(tmp_path) -> None:
    pytest.importorskip("tensorflow")
    from ensemblex.datasets import load_dataset
    from ensemblex.models import train_ensemble
    from ensemblex.plot import plot_group_traversals

    post = planted_ensemble(n_models=6, n_latent=3, n_samples=60, n_mixed=0, seed=2)
    cl = cluster(reference_pairwise(post, labels=True), min_samples=4)
    ring = load_dataset("ring", n_samples=64)
    ens = train_ensemble(ring, n_members=6, latent_dim=3, hidden=[4], steps=1, batch_size=16,
                         loss="mse", progress=False)  # fmt: skip
    fig = plot_group_traversals(ens, cl, n_steps=4, path=tmp_path / "ring.png")
    n_groups = int(cl["group"].max()) + 1
    for g in range(n_groups):
        ax = _axes(fig, f"group {g} central")
        # one panel of decoded 2-D points per traversal, coloured by the latent's value
        model = int(ax.get_title(loc="left").split("model ")[1].split(",")[0])
        latent = int(ax.get_title(loc="left").split("latent ")[1].split(" ")[0])
        decoded = ens.traverse(model, latent, np.linspace(-2, 2, 4))
        np.testing.assert_allclose(ax.collections[0].get_offsets(), decoded, atol=1e-6)
    assert (tmp_path / "ring.png").stat().st_size > 1000
