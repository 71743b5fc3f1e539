"""Hotspots: OPTICS groups, central channels and NMI with ground-truth factors."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from sklearn.cluster import OPTICS
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from ensemblex.estimators import bhattacharyya, joint_information
from ensemblex.estimators import nmi as nmi_fn
from ensemblex.measures import PAIRWISE_VARIABLES
from ensemblex.structure import (
    auto_min_samples,
    auto_xi_window,
    cluster,
    cluster_matrix,
    describe_groups,
    group_channels,
    label_nmi,
)
from ensemblex.testing import COLLAPSED, MIXED, planted_ensemble, reference_pairwise

MIN_SAMPLES = 8


@pytest.fixture(scope="module")
def planted() -> xr.Dataset:
    return planted_ensemble(n_models=16, n_latent=6, n_samples=160, n_factors=3, seed=3)


@pytest.fixture(scope="module")
def ref_pw(planted: xr.Dataset) -> xr.Dataset:
    return reference_pairwise(planted, labels=True)


def _check_planted(cl: xr.Dataset, planted: xr.Dataset) -> None:
    truth = planted["planted"].values.reshape(-1)
    pure = truth >= 0
    # collapsed channels carry nothing; every planted and mixed channel does
    np.testing.assert_array_equal(cl["informative"].values, truth != COLLAPSED)
    assert (cl["group"].values[truth == COLLAPSED] == -1).all()
    group = cl["group"].values
    assert adjusted_rand_score(truth[pure], group[pure]) >= 0.9
    # exactly one central channel per group, and it lies in its group
    for g in np.unique(group[group >= 0]):
        members = group == g
        assert int(cl["central"].values[members].sum()) == 1
    assert not cl["central"].values[group == -1].any()
    for c in np.flatnonzero(cl["central"].values):
        members = group == group[c]
        dominant = np.bincount(truth[members & pure]).argmax()
        assert truth[c] == dominant


# -- the reference oracle itself ------------------------------------------------------


def test_reference_pairwise_matches_estimators() -> None:
    post = planted_ensemble(n_models=2, n_latent=3, n_samples=30, n_factors=2, seed=1)
    pw = reference_pairwise(post)
    mean = post["mean"].values.reshape(-1, 30).astype(np.float64)
    logvar = post["logvar"].values.reshape(-1, 30).astype(np.float64)
    bc = bhattacharyya(mean, logvar)
    joint = joint_information(bc[:, None], bc[None])
    np.testing.assert_allclose(pw["joint_info"].values, joint, rtol=1e-5, atol=1e-6)
    i = -np.mean(np.log2(bc.mean(-1)), -1)
    rep = np.diag(joint)
    expected = nmi_fn(i[:, None], i[None], joint, rep[:, None], rep[None])
    np.testing.assert_allclose(pw["nmi"].values, expected, rtol=1e-5, atol=1e-6)


def test_reference_label_channels_match_sklearn(planted: xr.Dataset, ref_pw: xr.Dataset) -> None:
    labels = planted["labels"].values
    lab = np.flatnonzero(ref_pw["kind_a"].values == "label")
    for a, fa in enumerate(lab):
        for b, fb in enumerate(lab):
            if a == b:
                continue
            sk = normalized_mutual_info_score(labels[a], labels[b], average_method="geometric")
            assert abs(float(ref_pw["nmi"].values[fa, fb]) - sk) < 1e-4


# -- clustering -----------------------------------------------------------------------


def test_planted_groups_recovered(planted: xr.Dataset, ref_pw: xr.Dataset) -> None:
    cl = cluster(ref_pw, min_samples=MIN_SAMPLES)
    assert cl.attrs["ensemblex_kind"] == "clusters"
    _check_planted(cl, planted)
    # label channels are not clustered; they give label_nmi
    assert cl.sizes["channel"] == planted.sizes["model"] * planted.sizes["latent"]
    assert list(cl["factor"].values) == ["z0", "z1", "z2"]
    truth = planted["planted"].values.reshape(-1)
    best = cl["label_nmi"].fillna(-1).argmax("factor").values
    np.testing.assert_array_equal(best[truth >= 0], truth[truth >= 0])
    assert np.isnan(cl["label_nmi"].values[truth == COLLAPSED]).all()
    # channel coordinates carried over
    np.testing.assert_array_equal(cl["model"].values, np.repeat(np.arange(16), 6))
    np.testing.assert_array_equal(cl["latent"].values, np.tile(np.arange(6), 16))


def test_matches_sklearn_optics_on_the_distance(ref_pw: xr.Dataset) -> None:
    cl = cluster(ref_pw, min_samples=MIN_SAMPLES)
    gauss = np.flatnonzero(ref_pw["kind_a"].values == "gaussian")
    info = ref_pw["info_a"].values[gauss]
    sel = gauss[info >= 0.01]
    nmi = ref_pw["nmi"].values[np.ix_(sel, sel)].astype(np.float64)
    dist = -np.log(np.clip(nmi, 1e-4, 1.0))
    dist = (dist + dist.T) / 2
    np.fill_diagonal(dist, 0)
    expected = OPTICS(metric="precomputed", min_samples=MIN_SAMPLES).fit(dist)
    informative = cl["informative"].values
    np.testing.assert_array_equal(cl["group"].values[informative], expected.labels_)
    np.testing.assert_allclose(cl["reachability"].values[informative], expected.reachability_)
    np.testing.assert_array_equal(
        cl["ordering"].values, np.flatnonzero(informative)[expected.ordering_]
    )
    assert np.isnan(cl["reachability"].values[~informative]).all()
    # the similarity matrix of the figure: NMI of the informative channels
    expected_sim = np.clip((nmi + nmi.T) / 2, 0, 1)
    np.fill_diagonal(expected_sim, 1.0)
    np.testing.assert_allclose(cl["similarity"].values, expected_sim, atol=1e-6)
    np.testing.assert_array_equal(cl["channel_a"].values, sel)


def test_central_is_most_similar_member(ref_pw: xr.Dataset) -> None:
    cl = cluster(ref_pw, min_samples=MIN_SAMPLES)
    sim = cl["similarity"]
    for g in range(cl.attrs["n_groups"]):
        ids = cl["channel"].values[cl["group"].values == g]
        block = sim.sel(channel_a=ids, channel_b=ids).values.astype(np.float64)
        mean_rest = (block.sum(1) - 1.0) / (len(ids) - 1)
        central = cl["channel"].values[(cl["group"].values == g) & cl["central"].values]
        assert central.tolist() == [ids[np.argmax(mean_rest)]]


def test_vi_metric_finds_pure_groups(planted: xr.Dataset, ref_pw: xr.Dataset) -> None:
    # VI is not normalised: channels of one factor with different noise levels are
    # far apart, so OPTICS leaves more of them as noise; the groups it finds are pure
    cl = cluster(ref_pw, "vi", min_samples=MIN_SAMPLES)
    truth = planted["planted"].values.reshape(-1)
    group = cl["group"].values
    np.testing.assert_array_equal(cl["informative"].values, truth != COLLAPSED)
    assert cl.attrs["n_groups"] == 3
    found = (group >= 0) & (truth >= 0)
    assert adjusted_rand_score(truth[found], group[found]) == 1.0
    assert ((group >= 0) <= (truth != COLLAPSED)).all()
    assert cl.attrs["metric"] == "vi"
    sim = cl["similarity"].values
    assert (sim >= 0).all() and (sim <= 1).all()
    np.testing.assert_allclose(np.diag(sim), 1.0)


@pytest.mark.backends("numpy", "dask")
def test_same_groups_numpy_and_dask_pairwise(backend, ref_pw: xr.Dataset) -> None:
    lazy = ref_pw.copy()
    for name in ref_pw.data_vars:
        lazy[name] = (ref_pw[name].dims, backend.asarray(ref_pw[name].values, chunks=40))
    cl = cluster(lazy, min_samples=MIN_SAMPLES)
    reference = cluster(ref_pw, min_samples=MIN_SAMPLES)
    np.testing.assert_array_equal(cl["group"].values, reference["group"].values)
    np.testing.assert_array_equal(cl["ordering"].values, reference["ordering"].values)


def test_optics_kwargs_pass_through(ref_pw: xr.Dataset) -> None:
    cl = cluster(ref_pw, min_samples=MIN_SAMPLES, cluster_method="dbscan", eps=1.0)
    assert "dbscan" in cl.attrs["optics_kwargs"]
    assert cl.attrs["n_groups"] >= 1


def test_does_not_modify_input(ref_pw: xr.Dataset) -> None:
    before = ref_pw.copy(deep=True)
    cluster(ref_pw, min_samples=MIN_SAMPLES)
    xr.testing.assert_identical(ref_pw, before)


def test_netcdf_round_trip(tmp_path, ref_pw: xr.Dataset) -> None:
    cl = cluster(ref_pw, min_samples=MIN_SAMPLES)
    path = tmp_path / "cl.nc"
    cl.to_netcdf(path)
    with xr.open_dataset(path) as back:
        xr.testing.assert_identical(back.load(), cl)


def test_mixed_channels_are_informative(planted: xr.Dataset, ref_pw: xr.Dataset) -> None:
    cl = cluster(ref_pw, min_samples=MIN_SAMPLES)
    truth = planted["planted"].values.reshape(-1)
    assert cl["informative"].values[truth == MIXED].all()


# -- error paths ----------------------------------------------------------------------


def test_too_few_informative_channels(ref_pw: xr.Dataset) -> None:
    with pytest.raises(ValueError, match=r"only 64 of 96 channels .* min_samples=65"):
        cluster(ref_pw, min_samples=65)


def test_nan_never_reaches_optics(ref_pw: xr.Dataset) -> None:
    a, b = np.flatnonzero(ref_pw["info_a"].values > 0.01)[:2]
    bad = ref_pw.copy(deep=True)
    bad["nmi"][a, b] = np.nan
    with pytest.raises(ValueError, match=rf"non-finite .* channel {a} vs channel {b} = nan"):
        cluster(bad, min_samples=MIN_SAMPLES)
    bad = ref_pw.copy(deep=True)
    bad["vi"][b, a] = np.inf
    with pytest.raises(ValueError, match="non-finite"):
        cluster(bad, "vi", min_samples=MIN_SAMPLES)


def test_pairwise_min_info_larger_than_requested(ref_pw: xr.Dataset) -> None:
    # channels between the two thresholds have no NMI in these Pairwise results
    strict = ref_pw.copy()
    info = ref_pw["info_a"].values
    weak = int(np.flatnonzero((info > 0.01) & (ref_pw["kind_a"].values == "gaussian"))[0])
    nmi = ref_pw["nmi"].values.copy()
    nmi[weak, :] = np.nan
    nmi[:, weak] = np.nan
    strict["nmi"] = (("channel_a", "channel_b"), nmi)
    strict.attrs["min_info"] = float(info[weak]) + 1e-3
    with pytest.raises(ValueError, match="recompute pairwise with min_info"):
        cluster(strict, min_samples=MIN_SAMPLES)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"metric": "mi"}, ValueError, "metric must be one of"),
        ({"min_samples": 1}, ValueError, "min_samples must be an integer >= 2"),
        ({"min_samples": 2.5}, TypeError, "min_samples must be an integer"),
        ({"min_info": -1.0}, ValueError, "min_info must be a number"),
        ({"max_eps": -1.0}, ValueError, "max_eps"),  # OPTICS validates its own kwargs
    ],
)
def test_bad_options(ref_pw: xr.Dataset, kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        cluster(ref_pw, **{"min_samples": MIN_SAMPLES, **kwargs})


def test_wrong_kind_and_asymmetric(ref_pw: xr.Dataset, planted: xr.Dataset) -> None:
    with pytest.raises(TypeError, match=r"needs a Fingerprints or Pairwise dataset"):
        cluster(planted)
    half = ref_pw.isel(channel_b=slice(0, 10))
    with pytest.raises(ValueError, match="with itself"):
        cluster(half)
    with pytest.raises(ValueError, match="pass the Pairwise results once"):
        cluster(ref_pw, pairwise=ref_pw)


# -- through the engine: fingerprints -> pairwise -> cluster ----------------------------


@pytest.mark.backends("numpy", "dask")
def test_engine_same_groups_numpy_and_dask(
    backend, planted: xr.Dataset, ref_pw: xr.Dataset
) -> None:
    from ensemblex.posteriors import posteriors

    post = posteriors(
        backend.asarray(planted["mean"].values, chunks=(4, 6, 160)),
        backend.asarray(planted["logvar"].values, chunks=(4, 6, 160)),
        labels=planted["labels"].values,
        factor_names=list(planted["factor"].values),
    )
    cl = post.repinfo.fingerprint().repinfo.cluster(min_samples=MIN_SAMPLES)
    _check_planted(cl, planted)
    reference = cluster(ref_pw, min_samples=MIN_SAMPLES)
    np.testing.assert_array_equal(cl["group"].values, reference["group"].values)
    np.testing.assert_array_equal(cl["ordering"].values, reference["ordering"].values)
    np.testing.assert_array_equal(cl["central"].values, reference["central"].values)
    np.testing.assert_allclose(cl["similarity"].values, reference["similarity"].values, atol=1e-4)
    np.testing.assert_allclose(cl["label_nmi"].values, reference["label_nmi"].values, atol=1e-4)
    assert list(cl["factor"].values) == ["z0", "z1", "z2"]


def test_engine_pairwise_given_and_label_channels(tmp_path, planted: xr.Dataset) -> None:
    from ensemblex.fingerprints import concat_fingerprints, label_fingerprints

    fp = planted.repinfo.fingerprint()
    pw = fp.repinfo.pairwise()
    from_pw = pw.repinfo.cluster(min_samples=MIN_SAMPLES)
    given = fp.repinfo.cluster(min_samples=MIN_SAMPLES, pairwise=pw)
    computed = fp.repinfo.cluster(min_samples=MIN_SAMPLES)
    for other in (from_pw, given):
        np.testing.assert_array_equal(other["group"].values, computed["group"].values)
    # labels carried by the Fingerprints give label_nmi with a given pairwise= too
    # (channels without information are NaN there without being computed: the same)
    assert np.isnan(given["label_nmi"].values).any()
    for var in ("label_nmi", "pair_nmi"):
        np.testing.assert_allclose(given[var].values, computed[var].values, atol=1e-5)
    assert "label_nmi" not in from_pw  # a Pairwise dataset alone knows no labels
    # pairwise= may cover more channels than the Fingerprints
    half = fp.isel(channel=slice(0, 60))
    sub = half.repinfo.cluster(min_samples=MIN_SAMPLES, pairwise=pw)
    np.testing.assert_array_equal(sub["channel"].values, np.arange(60))
    with pytest.raises(ValueError, match="pairwise= lacks 36 channels"):
        fp.repinfo.cluster(min_samples=MIN_SAMPLES, pairwise=half.repinfo.pairwise())
    # labels as channels of the fingerprints: clustered without them, label_nmi from them
    both = concat_fingerprints(fp.drop_vars("labels"), label_fingerprints(planted))
    with_labels = both.repinfo.cluster(min_samples=MIN_SAMPLES)
    assert with_labels.sizes["channel"] == fp.sizes["channel"]
    np.testing.assert_array_equal(with_labels["group"].values, computed["group"].values)
    np.testing.assert_allclose(
        with_labels["label_nmi"].values, computed["label_nmi"].values, atol=1e-5
    )
    # ... and with their Pairwise results given: label NMI read, pairs computed
    given_both = both.repinfo.cluster(min_samples=MIN_SAMPLES, pairwise=both.repinfo.pairwise())
    for var in ("label_nmi", "pair_nmi"):
        np.testing.assert_allclose(given_both[var].values, computed[var].values, atol=1e-5)
    # Clusters of Fingerprints keep the parameters, and round-trip through netCDF
    assert "channel_mean" in computed and "bc" not in computed
    path = tmp_path / "cl.nc"
    computed.to_netcdf(path)
    with xr.open_dataset(path) as back:
        xr.testing.assert_identical(back.load(), computed)


def test_label_nmi_matches_reference(planted: xr.Dataset, ref_pw: xr.Dataset, no_compute) -> None:
    lazy = planted.repinfo.label_nmi()  # lazy: nothing computed yet
    assert lazy.dims == ("channel", "factor")
    import dask

    with dask.config.set(scheduler="sync"):
        got = lazy.compute()
    gauss = ref_pw["kind_a"].values == "gaussian"
    expected = ref_pw["nmi"].values[np.ix_(gauss, ~gauss)]
    np.testing.assert_allclose(got.values, expected, atol=1e-4)
    assert list(got["factor"].values) == ["z0", "z1", "z2"]
    np.testing.assert_array_equal(got["model"].values, np.repeat(np.arange(16), 6))


def test_label_nmi_errors(planted: xr.Dataset) -> None:
    from ensemblex.structure import label_nmi

    with pytest.raises(ValueError, match="needs ground-truth labels"):
        label_nmi(planted.drop_vars("labels"))
    with pytest.raises(TypeError, match="labels must be label Fingerprints"):
        label_nmi(planted, labels=[0, 1])
    with pytest.raises(ValueError, match="every channel kind='label'"):
        label_nmi(planted, labels=planted.repinfo.fingerprint())


def test_engine_too_few_informative(planted: xr.Dataset) -> None:
    fp = planted.isel(model=slice(0, 2)).repinfo.fingerprint()
    with pytest.raises(ValueError, match=r"only 8 of 12 channels"):
        fp.repinfo.cluster(min_samples=20)


# -- the pure function and the memory contract --------------------------------------


def _informative_nmi(ref_pw: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    gauss = np.flatnonzero(ref_pw["kind_a"].values == "gaussian")
    sel = gauss[ref_pw["info_a"].values[gauss] >= 0.01]
    return ref_pw["nmi"].values[np.ix_(sel, sel)], sel


@pytest.mark.parametrize("method", ["xi", "dbscan"])
def test_cluster_matrix_equals_sklearn_optics(ref_pw: xr.Dataset, method: str) -> None:
    nmi, _ = _informative_nmi(ref_pw)  # float32, as stored
    np.testing.assert_array_equal(nmi, nmi.T)
    dist = -np.log(np.clip(nmi.astype(np.float64), 1e-4, 1.0))
    np.fill_diagonal(dist, 0)
    kw = {"eps": 1.0} if method == "dbscan" else {}
    expected = OPTICS(
        metric="precomputed", min_samples=MIN_SAMPLES, cluster_method=method, **kw
    ).fit(dist)
    res = cluster_matrix(nmi, measure="nmi", min_samples=MIN_SAMPLES, cluster_method=method, **kw)
    np.testing.assert_array_equal(res.labels, expected.labels_)
    np.testing.assert_array_equal(res.ordering, expected.ordering_)
    np.testing.assert_array_equal(res.reachability, expected.reachability_)
    np.testing.assert_array_equal(res.core_distances, expected.core_distances_)
    np.testing.assert_array_equal(res.predecessor, expected.predecessor_)
    # a distance matrix itself (measure=None) gives the same graph
    plain = cluster_matrix(dist, measure=None, min_samples=MIN_SAMPLES, cluster_method=method, **kw)
    np.testing.assert_array_equal(plain.labels, expected.labels_)
    assert res.similarity is None


def test_ordered_similarity_is_block_means_in_optics_order(ref_pw: xr.Dataset) -> None:
    cl = cluster(ref_pw, min_samples=MIN_SAMPLES)
    ids = cl["channel"].values[cl["ordering"].values]
    full = cl["similarity"].sel(channel_a=ids, channel_b=ids).values
    # 64 informative channels <= 1000 pixels: one channel per pixel
    assert cl["ordered_similarity"].attrs["block_size"] == 1
    np.testing.assert_array_equal(cl["ordered_similarity"].values, full)
    np.testing.assert_array_equal(cl["row"].values, np.arange(64))
    # at most max_pixels per side: block means of the ordered matrix
    nmi, _ = _informative_nmi(ref_pw)
    res = cluster_matrix(nmi, min_samples=MIN_SAMPLES, max_pixels=10, keep_similarity=True)
    assert res.block_size == 7 and res.ordered_similarity.shape == (10, 10)
    ordered = res.similarity[np.ix_(res.ordering, res.ordering)].astype(np.float64)
    starts = np.arange(0, 64, 7)
    for i, r in enumerate(starts):
        for j, c in enumerate(starts):
            expected = ordered[r : r + 7, c : c + 7].mean()
            assert abs(res.ordered_similarity[i, j] - expected) < 1e-6


def test_keep_similarity(monkeypatch, ref_pw: xr.Dataset) -> None:
    kept = cluster(ref_pw, min_samples=MIN_SAMPLES)
    dropped = cluster(ref_pw, min_samples=MIN_SAMPLES, keep_similarity=False)
    assert "similarity" not in dropped and "channel_a" not in dropped.dims
    for name in ("group", "ordering", "central", "ordered_similarity"):
        np.testing.assert_array_equal(dropped[name].values, kept[name].values)
    import ensemblex.structure as structure

    monkeypatch.setattr(structure, "KEEP_SIMILARITY_MAX", 63)  # 64 informative channels
    assert "similarity" not in cluster(ref_pw, min_samples=MIN_SAMPLES)
    assert "similarity" in cluster(ref_pw, min_samples=MIN_SAMPLES, keep_similarity=True)


def test_reads_only_the_measure_of_informative_rows(planted: xr.Dataset) -> None:
    import dask.array as da

    pw = reference_pairwise(planted)
    reads: list[tuple[str, int]] = []

    def tracked(name: str, values: np.ndarray) -> da.Array:
        def block(x: np.ndarray, block_info=None) -> np.ndarray:
            reads.append((name, block_info[0]["array-location"][0][0]))
            return x

        arr = da.from_array(values, chunks=(1, values.shape[1]))
        return arr.map_blocks(block, dtype=values.dtype)

    lazy = pw.copy()
    for name in PAIRWISE_VARIABLES:
        lazy[name] = (pw[name].dims, tracked(name, pw[name].values))
    cl = cluster(lazy, min_samples=MIN_SAMPLES)
    assert {name for name, _ in reads} == {"nmi"}
    rows = sorted({row for _, row in reads})
    assert rows == np.flatnonzero(pw["info_a"].values >= 0.01).tolist()
    reference = cluster(pw, min_samples=MIN_SAMPLES)
    xr.testing.assert_identical(cl, reference)


def test_cluster_from_zarr_store(tmp_path, planted: xr.Dataset) -> None:
    pytest.importorskip("zarr")
    fp = planted.repinfo.fingerprint()
    stored = fp.repinfo.pairwise(store=tmp_path / "pw.zarr", channel_chunk=40)
    from_store = cluster(fp, min_samples=MIN_SAMPLES, pairwise=stored)
    in_memory = cluster(fp, min_samples=MIN_SAMPLES, pairwise=stored.compute())
    xr.testing.assert_identical(from_store, in_memory)
    # opened without Dask (lazy backend arrays): read by orthogonal selections
    from ensemblex.io import open_dataset

    reopened = open_dataset(tmp_path / "pw.zarr")
    assert reopened["nmi"].chunks is None
    xr.testing.assert_identical(
        cluster(reopened, min_samples=MIN_SAMPLES),
        cluster(stored.compute(), min_samples=MIN_SAMPLES),
    )
    _check_planted(from_store, planted)


def test_asymmetric_matrix_names_the_channels(ref_pw: xr.Dataset) -> None:
    a, b = np.flatnonzero(ref_pw["info_a"].values > 0.01)[:2]
    bad = ref_pw.copy(deep=True)
    bad["nmi"][a, b] = float(bad["nmi"][a, b]) + 0.5
    with pytest.raises(ValueError, match=rf"not symmetric: channel {a} vs channel {b}"):
        cluster(bad, min_samples=MIN_SAMPLES)


def test_optics_parameters_are_explicit_and_recorded(ref_pw: xr.Dataset) -> None:
    cl = cluster(ref_pw, min_samples=MIN_SAMPLES, xi=0.1, min_cluster_size=10)
    assert cl.attrs["xi"] == 0.1 and cl.attrs["min_cluster_size"] == 10
    assert cl.attrs["cluster_method"] == "xi" and cl.attrs["predecessor_correction"] == 1
    sizes = np.bincount(cl["group"].values[cl["group"].values >= 0])
    assert (sizes >= 10).all()
    with pytest.raises(TypeError, match="unexpected keyword"):
        cluster(ref_pw, min_samples=MIN_SAMPLES, algorithm="brute")
    with pytest.raises(ValueError, match="eps .* must not exceed max_eps"):
        cluster(ref_pw, min_samples=MIN_SAMPLES, cluster_method="dbscan", eps=3.0, max_eps=2.0)


def test_measure_and_deprecated_metric(ref_pw: xr.Dataset) -> None:
    new = cluster(ref_pw, measure="vi", min_samples=MIN_SAMPLES)
    with pytest.warns(FutureWarning, match=r"cluster\(metric=...\) is deprecated"):
        old = cluster(ref_pw, metric="vi", min_samples=MIN_SAMPLES)
    xr.testing.assert_identical(new, old)
    assert new.attrs["measure"] == "vi"
    with pytest.raises(ValueError, match="measure must be one of"):
        cluster(ref_pw, measure="mi")


# -- min_samples="auto" ----------------------------------------------------------------


def test_auto_min_samples_rule(ref_pw: xr.Dataset) -> None:
    assert auto_min_samples(n_models=50, n_informative=10_000) == 20  # the paper's
    assert auto_min_samples(n_models=200, n_informative=10_000) == 32
    assert auto_min_samples(n_models=1000, n_informative=10_000) == 54
    assert auto_min_samples(n_models=2000, n_informative=10_000) == 68
    assert auto_min_samples(n_models=16, n_informative=10_000) == 8  # ceil(M / 2)
    assert auto_min_samples(n_models=1000, n_informative=30) == 30  # the informative
    assert auto_min_samples(n_models=2, n_informative=10) == 2  # at least 2
    # from a Pairwise dataset: 16 models, 64 informative channels
    assert auto_min_samples(ref_pw) == 8
    cl = cluster(ref_pw)
    assert cl.attrs["min_samples"] == 8
    assert "M = 16 models" in cl.attrs["min_samples_rule"]
    given = cluster(ref_pw, min_samples=6)
    assert given.attrs["min_samples"] == 6 and given.attrs["min_samples_rule"] == "given"
    # without a model coordinate: one eighth of the informative channels, 3..20
    anonymous = ref_pw.drop_vars(["model_a", "model_b"])
    assert cluster(anonymous).attrs["min_samples"] == 8
    assert "no 'model' coordinate" in cluster(anonymous).attrs["min_samples_rule"]
    with pytest.raises(ValueError, match="min_samples must be one of"):
        cluster(ref_pw, min_samples="often")


# -- xi_window="auto" ------------------------------------------------------------------


def test_auto_xi_window_rule(ref_pw: xr.Dataset) -> None:
    assert [auto_xi_window(n_models=m) for m in (1, 50, 1000, 1499)] == [1] * 4
    # rounded half up
    assert [auto_xi_window(n_models=m) for m in (1500, 2000, 2500, 5000, 20_000)] == [
        2,
        2,
        3,
        5,
        20,
    ]
    assert auto_xi_window(ref_pw) == 1  # 16 models
    assert auto_xi_window(ref_pw.drop_vars(["model_a", "model_b"])) == 1
    with pytest.raises(ValueError, match="needs a dataset or n_models"):
        auto_xi_window()
    with pytest.raises(TypeError, match="n_models must be an integer"):
        auto_xi_window(n_models=2.5)  # type: ignore[arg-type]


def _many_models_pairwise(n_models: int, seed: int = 0) -> xr.Dataset:
    """A Pairwise dataset of 3 planted groups with one channel per model, NMI only."""
    rng = np.random.default_rng(seed)
    group = np.arange(n_models) % 3
    between = 0.05 + rng.uniform(0, 0.02, (n_models,) * 2)
    nmi = np.where(group[:, None] == group[None], 0.8, between)
    nmi = ((nmi + nmi.T) / 2).astype(np.float32)
    np.fill_diagonal(nmi, 1.0)
    ids = np.arange(n_models)
    return xr.Dataset(
        {
            "nmi": (("channel_a", "channel_b"), nmi),
            "info_a": ("channel_a", np.ones(n_models)),
            "info_b": ("channel_b", np.ones(n_models)),
        },
        coords={
            "channel_a": ids,
            "channel_b": ids,
            "model_a": ("channel_a", ids),
            "model_b": ("channel_b", ids),
        },
        attrs={"ensemblex_kind": "pairwise"},
    )


def test_cluster_xi_window_auto_given_and_recorded() -> None:
    pw = _many_models_pairwise(2000)  # 2,000 models: the rule gives 2
    auto = cluster(pw, min_samples=20)
    assert auto.attrs["xi_window"] == 2
    assert "M = 2000 models" in auto.attrs["xi_window_rule"]
    # the groups are the pure function's with that window, and the planted ones
    matrix = pw["nmi"].values
    expected = cluster_matrix(matrix, min_samples=20, xi_window=2).labels
    np.testing.assert_array_equal(auto["group"].values, expected)
    truth = np.arange(2000) % 3
    assert adjusted_rand_score(truth, auto["group"].values) == 1.0
    given = cluster(pw, min_samples=20, xi_window=1)
    assert given.attrs["xi_window"] == 1 and given.attrs["xi_window_rule"] == "given"
    # window 1 is scikit-learn's extraction of the same OPTICS graph
    from sklearn.cluster import cluster_optics_xi as sklearn_xi

    res = cluster_matrix(matrix, min_samples=20)
    labels, _ = sklearn_xi(
        reachability=res.reachability,
        predecessor=res.predecessor,
        ordering=res.ordering,
        min_samples=20,
    )
    np.testing.assert_array_equal(given["group"].values, labels)
    # dbscan does not use the window: not recorded
    cut = cluster(pw, min_samples=20, cluster_method="dbscan", max_eps=1.0)
    assert "xi_window" not in cut.attrs


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"xi_window": 0}, ValueError, "xi_window"),
        ({"xi_window": "wide"}, ValueError, "xi_window must be one of"),
        ({"xi_window": 1.5}, TypeError, "xi_window"),
        ({"xi": 1.0}, ValueError, "xi must be below 1"),
    ],
)
def test_cluster_rejects_bad_xi_options(ref_pw: xr.Dataset, kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        cluster(ref_pw, **kwargs)


def test_group_channels(ref_pw: xr.Dataset) -> None:
    cl = cluster(ref_pw, min_samples=MIN_SAMPLES)
    channels, group = group_channels(cl)
    sizes = np.bincount(cl["group"].values[cl["group"].values >= 0])
    assert group == int(np.argmax(sizes)) and len(channels) == sizes.max()


# -- factor pairs and the group table -----------------------------------------------------


def test_pair_nmi_is_nmi_with_the_joint_label(planted: xr.Dataset) -> None:
    from ensemblex.fingerprints import label_fingerprints
    from ensemblex.structure import _pair_label_fingerprints

    sub = planted.isel(model=slice(0, 4))
    lab = sub["labels"].values
    got = label_nmi(sub, pairs=True).compute()
    assert got["factor"].values.tolist() == ["z0", "z1", "z2", "z0+z1", "z0+z2", "z1+z2"]
    for a, b in [(0, 1), (0, 2), (1, 2)]:
        joint = lab[a] * (lab[b].max() + 1) + lab[b]
        expected = label_nmi(sub, label_fingerprints(joint[None], [f"z{a}+z{b}"])).compute()
        np.testing.assert_allclose(
            got.sel(factor=f"z{a}+z{b}").values, expected.values[:, 0], atol=1e-6
        )
    # the pair's fingerprint is the product of the two label fingerprints
    singles = label_fingerprints(sub)
    pairs = _pair_label_fingerprints(singles)
    bc = singles["bc"].values
    np.testing.assert_array_equal(pairs["bc"].values[0], bc[0] * bc[1])
    np.testing.assert_array_equal(pairs["bc"].values[2], bc[1] * bc[2])
    # single factors are unchanged by pairs=True
    np.testing.assert_allclose(
        got.isel(factor=slice(0, 3)).values, label_nmi(sub).compute().values, atol=1e-6
    )


def test_mixed_channel_peaks_at_its_pair() -> None:
    post = planted_ensemble(n_models=12, n_latent=4, n_samples=200, n_factors=3, n_mixed=1)
    got = label_nmi(post, pairs=True).compute()
    mixed = post["planted"].values.reshape(-1) == MIXED
    factors = post["mixed_factors"].values.reshape(-1, 2)[mixed]
    pair_names = [f"z{min(f)}+z{max(f)}" for f in factors]
    # among the pairs, its own pair has the highest NMI
    pairs = got.isel(factor=slice(3, None))
    best = pairs["factor"].values[np.argmax(pairs.values[mixed], axis=1)]
    assert best.tolist() == pair_names


def test_cluster_records_pair_nmi_and_describe_groups() -> None:
    # drop factor z0 from 5 of the 16 models: its group recurs in 11 runs
    planted = planted_ensemble(n_models=16, n_latent=5, n_samples=160, n_mixed=0, seed=3)
    fp = planted.repinfo.fingerprint()
    truth = planted["planted"].values.reshape(-1)
    model = fp["model"].values
    keep = ~((truth == 0) & (model < 5))
    fp = fp.isel(channel=np.flatnonzero(keep))
    pw = fp.repinfo.pairwise()
    cl = cluster(fp, min_samples=MIN_SAMPLES, pairwise=pw)
    assert cl["factor_pair"].values.tolist() == ["z0+z1", "z0+z2", "z1+z2"]
    assert list(cl["factor"].values) == ["z0", "z1", "z2"]
    table = describe_groups(cl, pairwise=pw)
    assert table.columns.tolist() == [
        "group", "size", "models", "bits", "coherence",
        "central_model", "central_latent", "best_factors", "best_nmi", "chance_nmi",
    ]  # fmt: skip
    by_factor = table.set_index("best_factors")
    assert sorted(by_factor.index) == ["z0", "z1", "z2"]
    assert by_factor.loc["z0", "models"] == 11
    assert by_factor.loc["z1", "models"] == by_factor.loc["z2", "models"] == 16
    kept = truth[keep]
    for row in table.itertuples():
        members = cl["group"].values == row.group
        ids = cl["channel"].values[members]
        sim = np.clip(pw["nmi"].sel(channel_a=ids, channel_b=ids).values.astype(float), 0, 1)
        off = ~np.eye(ids.size, dtype=bool)
        assert row.coherence == pytest.approx(sim[off].mean(), abs=1e-6)
        assert row.bits == pytest.approx(float(np.median(cl["info"].values[members])))
        c = np.flatnonzero(members & cl["central"].values)[0]
        assert (row.central_model, row.central_latent) == (
            int(cl["model"].values[c]),
            int(cl["latent"].values[c]),
        )
        assert row.best_nmi == pytest.approx(float(cl["label_nmi"].values[c].max()))
        assert row.size == members.sum() and (kept[members] == kept[c]).all()
    # without pairwise=: the kept similarity gives the same coherence
    alone = describe_groups(cl)
    np.testing.assert_allclose(alone["coherence"], table["coherence"], atol=1e-6)
    # without either: NaN, the column stays
    assert describe_groups(cl.drop_vars("similarity"))["coherence"].isna().all()


@pytest.mark.slow
def test_auto_min_samples_recovers_groups_of_a_large_ensemble() -> None:
    # 1000 models, 4 factors and one entangled channel per model that mixes two
    # factors and so bridges two groups (a fifth of the 5000 informative channels).
    # The paper's 20 was chosen for 50 models: here the entangled channels of one
    # pair of factors (about 170) are dense enough to form "groups" of their own;
    # the default (54 for 1000 models) finds exactly the planted factors.
    post = planted_ensemble(
        n_models=1000, n_latent=6, n_samples=100, n_factors=4, n_mixed=1, seed=0
    )
    pw = post.repinfo.fingerprint().repinfo.pairwise().compute()
    truth = post["planted"].values.reshape(-1)
    pure = truth >= 0

    def purity(group: np.ndarray) -> list[float]:
        # share of each group's members that are pure channels of its main factor
        out = []
        for g in np.unique(group[group >= 0]):
            members = truth[group == g]
            out.append(
                float(np.max(np.bincount(members[members >= 0], minlength=1)) / members.size)
            )
        return out

    auto = cluster(pw)
    assert auto.attrs["min_samples"] == 54
    group = auto["group"].values
    assert adjusted_rand_score(truth[pure], group[pure]) >= 0.9
    paper = cluster(pw, min_samples=20)
    group20 = paper["group"].values
    found = (auto.attrs["n_groups"], purity(group), paper.attrs["n_groups"], purity(group20))
    # the default: the 4 planted factors, each group mostly its factor's pure channels
    assert auto.attrs["n_groups"] == 4 and min(purity(group)) >= 0.8, found
    # min_samples=20: more groups than factors, some made of entangled channels
    assert paper.attrs["n_groups"] > 4 and min(purity(group20)) < 0.5, found


# -- chance level of label NMI (describe_groups' ranking) ------------------------------------


def _chance_ensemble(n_models: int = 10, n_samples: int = 300, seed: int = 0):
    """Two recurring channels per model: factor ``a`` (noisy) and a variable no label holds."""
    import ensemblex as ex

    rng = np.random.default_rng(seed)
    a, b, c = (rng.integers(0, k, n_samples) for k in (32, 32, 3))
    hidden = rng.normal(size=n_samples)
    mean = np.empty((n_models, 2, n_samples))
    mean[:, 0] = a / 31 * 4 + rng.normal(0, 0.02, (n_models, n_samples))
    mean[:, 1] = 2 * hidden + rng.normal(0, 0.02, (n_models, n_samples))
    logvar = np.full_like(mean, 2 * np.log(0.8))
    return ex.posteriors(
        mean.astype(np.float32),
        logvar.astype(np.float32),
        labels=np.stack([a, b, c]),
        factor_names=["a", "b", "c"],
    )


def test_chance_label_nmi_is_the_nmi_of_a_shuffled_label():
    from ensemblex.structure import chance_label_nmi, label_nmi

    fp = _chance_ensemble(n_models=1).repinfo.fingerprint()
    real = label_nmi(fp, pairs=True).compute()
    chance = chance_label_nmi(fp, pairs=True, n_permutations=6)
    assert chance.dims == real.dims and list(chance.factor.values) == list(real.factor.values)
    # the channel of `a` is far above chance with `a`
    assert float(real.sel(factor="a")[0]) - float(chance.sel(factor="a")[0]) > 0.3
    # a 1,024-level pair on 300 samples nearly tells every sample apart: for the channel
    # no label holds, its NMI is high and all chance
    raw_pair = float(real.sel(factor="a+b")[1])
    assert raw_pair > 0.3
    assert abs(raw_pair - float(chance.sel(factor="a+b")[1])) < 0.05
    # plainly computed oracle: a shuffled label, once
    from ensemblex.fingerprints import label_fingerprints

    labels = fp["labels"].transpose("factor", "sample").values
    perm = np.random.default_rng(0).permutation(labels.shape[1])
    one = chance_label_nmi(fp, n_permutations=1, seed=0)
    shuffled = label_fingerprints(labels[:, perm], ["a", "b", "c"], sample=fp["sample"].values)
    np.testing.assert_allclose(one.values, label_nmi(fp, shuffled).values, atol=1e-6)


def test_describe_groups_ranks_labels_above_chance_not_raw_nmi():
    import ensemblex as ex

    fp = _chance_ensemble().repinfo.fingerprint()
    cl = ex.cluster(fp, min_samples=5)
    assert "label_nmi_chance" in cl and "pair_nmi_chance" in cl
    table = ex.describe_groups(cl).set_index("central_latent")
    assert len(table) == 2
    # the channel of `a`: named `a`, well above chance
    assert table.loc[0, "best_factors"] == "a"
    assert table.loc[0, "best_nmi"] - table.loc[0, "chance_nmi"] > 0.3
    # the channel no label holds: its raw NMI is highest with the pair a+b ...
    c = int(np.flatnonzero(cl.central.values & (cl.latent.values == 1))[0])
    raw = {
        str(f): float(v) for f, v in zip(cl.factor_pair.values, cl.pair_nmi.values[c], strict=True)
    }
    raw.update(
        {str(f): float(v) for f, v in zip(cl.factor.values, cl.label_nmi.values[c], strict=True)}
    )
    assert max(raw, key=raw.get) == "a+b"
    # ... which is chance: whatever is named, it barely rises above its chance level
    assert table.loc[1, "best_nmi"] - table.loc[1, "chance_nmi"] < 0.1
    assert table.loc[1, "best_nmi"] - table.loc[1, "chance_nmi"] < raw["a+b"] - 0.2
