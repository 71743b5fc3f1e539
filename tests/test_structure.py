"""Hotspots: OPTICS groups, central channels and NMI with ground-truth factors."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from sklearn.cluster import OPTICS
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from ensemblex.estimators import bhattacharyya, joint_information
from ensemblex.estimators import nmi as nmi_fn
from ensemblex.structure import cluster
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
    np.testing.assert_allclose(given["label_nmi"].values, computed["label_nmi"].values, atol=1e-5)
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
        fp.repinfo.cluster()
