"""Fingerprints: Posteriors -> lazy bc, label fingerprints, info, concatenation."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

import ensemblex as ex
from ensemblex import estimators
from ensemblex.fingerprints import (
    concat_fingerprints,
    fingerprint,
    info,
    label_fingerprints,
    validate_fingerprints,
)

N_MODEL, N_LATENT, N_SAMPLE = 2, 3, 23


def _params(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    mean = rng.normal(scale=2.0, size=(N_MODEL, N_LATENT, N_SAMPLE))
    logvar = rng.uniform(-4.0, 1.0, size=(N_MODEL, N_LATENT, N_SAMPLE))
    return mean.astype(np.float32), logvar.astype(np.float32)


def _bc64(mean: np.ndarray, logvar: np.ndarray, *, multivariate: bool = False) -> np.ndarray:
    """Float64 reference fingerprint from the float32 parameters."""
    return estimators.bhattacharyya(
        mean.astype(np.float64), logvar.astype(np.float64), multivariate=multivariate
    )


@pytest.mark.backends("numpy", "dask", "distributed", "cupy")
def test_bc_equals_estimator_on_every_channel(backend, rng):
    mean, logvar = _params(rng)
    post = ex.posteriors(
        backend.asarray(mean),
        backend.asarray(logvar),
        coords={"beta": [1.0, 4.0], "method": ["beta", "tcvae"]},
    )
    fp = fingerprint(post, channel_chunk=4, sample_chunk=7)
    assert fp.attrs["ensemblex_kind"] == "fingerprints"
    assert fp.bc.dims == ("channel", "sample_i", "sample_j")
    assert fp.bc.dtype == np.float32
    assert fp.bc.data.chunks == ((4, 2), (7, 7, 7, 2), (N_SAMPLE,))
    meta_module = type(fp.bc.data._meta).__module__.split(".")[0]
    assert meta_module == ("cupy" if backend.name == "cupy" else "numpy")
    assert fp.model.values.tolist() == [0, 0, 0, 1, 1, 1]
    assert fp.latent.values.tolist() == [0, 1, 2, 0, 1, 2]
    assert fp.kind.values.tolist() == ["gaussian"] * 6
    assert fp.factor.values.tolist() == [""] * 6
    assert fp.beta.values.tolist() == [1.0] * 3 + [4.0] * 3
    assert fp.method.values.tolist() == ["beta"] * 3 + ["tcvae"] * 3
    assert fp.channel.values.tolist() == list(range(6))
    for name in ("sample", "sample_i", "sample_j"):
        assert fp[name].values.tolist() == list(range(N_SAMPLE))
    assert "channel_label" not in fp
    bc = backend.to_numpy(fp.bc)
    for c in range(6):
        m, k = divmod(c, N_LATENT)  # model-major
        np.testing.assert_allclose(bc[c], _bc64(mean[m, k], logvar[m, k]), atol=2e-6, rtol=1e-5)
    params = backend.to_numpy(fp.channel_mean)
    np.testing.assert_array_equal(params[:, 0, :], mean.reshape(6, N_SAMPLE))


def test_subspace_channels_are_products_and_multivariate(rng):
    mean, logvar = _params(rng)
    post = ex.posteriors(mean, logvar)
    single = fingerprint(post).bc.values.reshape(N_MODEL, N_LATENT, N_SAMPLE, N_SAMPLE)
    fp = fingerprint(post, [[0, 1], [2]], channel_chunk=3, sample_chunk=5)
    assert fp.sizes["channel"] == 4
    assert fp.sizes["component"] == 2
    assert fp.latent.values.tolist() == [-1, 2, -1, 2]
    assert fp.model.values.tolist() == [0, 0, 1, 1]
    # the one-latent group is padded with mean 0, logvar 0 (a factor of exactly 1)
    assert not fp.channel_mean.values[[1, 3], 1].any()
    assert not fp.channel_logvar.values[[1, 3], 1].any()
    bc = fp.bc.values
    for m in range(N_MODEL):
        pair = np.stack([mean[m, :2].T, logvar[m, :2].T])
        np.testing.assert_allclose(bc[2 * m], single[m, 0] * single[m, 1], atol=2e-6)
        np.testing.assert_allclose(
            bc[2 * m], _bc64(pair[0], pair[1], multivariate=True), atol=2e-6, rtol=1e-5
        )
        np.testing.assert_allclose(bc[2 * m + 1], single[m, 2], atol=1e-7)
    whole = fingerprint(post, "model")
    assert whole.sizes["channel"] == N_MODEL
    assert whole.sizes["component"] == N_LATENT
    assert whole.latent.values.tolist() == [-1, -1]
    for m in range(N_MODEL):
        np.testing.assert_allclose(whole.bc.values[m], single[m].prod(axis=0), atol=2e-6)
    # a single int is a one-latent group; groups may overlap
    assert fingerprint(post, [1, [0, 1]]).latent.values.tolist() == [1, -1, 1, -1]


@settings(max_examples=15, deadline=None)
@given(
    channel_chunk=st.integers(1, 7),
    sample_chunk=st.integers(1, 12),
    seed=st.integers(0, 2**16),
)
def test_chunking_does_not_change_bc(channel_chunk, sample_chunk, seed):
    rng = np.random.default_rng(seed)
    mean, logvar = _params(rng)
    post = ex.posteriors(mean[:, :, :12], logvar[:, :, :12])
    ref = fingerprint(post, channel_chunk=6, sample_chunk=12).bc.values
    fp = fingerprint(post, channel_chunk=channel_chunk, sample_chunk=sample_chunk)
    np.testing.assert_array_equal(fp.bc.values, ref)


def test_label_fingerprints_equal_label_coefficients(rng):
    labels = rng.integers(0, 4, size=(3, 30))
    fp = label_fingerprints(labels, ["shape", "scale", 7], sample=np.arange(100, 130))
    assert fp.kind.values.tolist() == ["label"] * 3
    assert fp.factor.values.tolist() == ["shape", "scale", "7"]
    assert fp.model.values.tolist() == [-1] * 3
    assert fp.latent.values.tolist() == [-1] * 3
    assert fp.sample_i.values.tolist() == list(range(100, 130))
    assert fp.channel_label.dtype == np.int64
    assert fp.sizes["component"] == 1
    assert not fp.channel_mean.values.any()
    assert not fp.channel_logvar.values.any()
    np.testing.assert_array_equal(fp.bc.values, estimators.label_coefficients(labels))
    np.testing.assert_array_equal(fp.labels.values, labels)
    # from a DataArray, from Posteriors, and from Fingerprints that carry labels
    da_labels = xr.DataArray(labels, dims=("factor", "sample"), coords={"factor": ["a", "b", "c"]})
    assert label_fingerprints(da_labels).factor.values.tolist() == ["a", "b", "c"]
    post = ex.posteriors(
        rng.normal(size=(1, 2, 30)),
        np.zeros((1, 2, 30)),
        labels=labels,
        factor_names=["x", "y", "z"],
    )
    from_post = label_fingerprints(post)
    assert from_post.factor.values.tolist() == ["x", "y", "z"]
    np.testing.assert_array_equal(from_post.bc.values, fp.bc.values)
    from_fp = label_fingerprints(fingerprint(post))
    assert from_fp.factor.values.tolist() == ["x", "y", "z"]
    # one factor as a 1-D array
    assert label_fingerprints(labels[0]).sizes["channel"] == 1


def test_fingerprint_carries_labels(rng):
    labels = rng.integers(0, 2, size=(2, N_SAMPLE))
    mean, logvar = _params(rng)
    post = ex.posteriors(mean, logvar, labels=labels, factor_names=["shape", "size"])
    fp = fingerprint(post)
    assert fp.labels.dims == ("factor", "sample")
    assert fp.factor_name.values.tolist() == ["shape", "size"]
    assert fp.factor.dims == ("channel",)
    np.testing.assert_array_equal(fp.labels.values, labels)


def test_concat_gaussian_and_label(rng):
    mean, logvar = _params(rng)
    labels = rng.integers(0, 3, size=(2, N_SAMPLE))
    post = ex.posteriors(
        mean, logvar, labels=labels, factor_names=["shape", "size"], coords={"beta": [1.0, 2.0]}
    )
    gauss = fingerprint(post)
    whole = fingerprint(post, "model")
    lab = label_fingerprints(post)
    both = concat_fingerprints(gauss, lab, whole, channel_chunk=3, sample_chunk=10)
    assert both.channel.values.tolist() == list(range(10))
    assert both.kind.values.tolist() == ["gaussian"] * 6 + ["label"] * 2 + ["gaussian"] * 2
    assert both.factor.values.tolist() == [""] * 6 + ["shape", "size"] + [""] * 2
    assert both.model.values.tolist() == [0, 0, 0, 1, 1, 1, -1, -1, 0, 1]
    np.testing.assert_array_equal(both.beta.values[6:8], [np.nan, np.nan])
    assert both.sizes["component"] == N_LATENT
    assert both.channel_label.values[:6].max() == 0
    assert both.bc.data.chunks[0] == (3, 3, 3, 1)
    expected = np.concatenate([gauss.bc.values, lab.bc.values, whole.bc.values])
    np.testing.assert_allclose(both.bc.values, expected, atol=1e-7)
    np.testing.assert_array_equal(both.labels.values, labels)
    # plain xarray concatenation works as documented when the parts line up
    plain = xr.concat(
        [gauss.drop_vars("beta"), lab],
        "channel",
        data_vars="minimal",
        coords="minimal",
        compat="override",
    ).assign_coords(channel=np.arange(8))
    np.testing.assert_array_equal(plain.bc.values, expected[:8])
    # a list works too; different samples do not
    assert concat_fingerprints([gauss, lab]).sizes["channel"] == 8
    other = label_fingerprints(labels[:, :-1])
    with pytest.raises(ValueError, match="over different samples"):
        concat_fingerprints(gauss, other)
    shifted = label_fingerprints(labels, sample=np.arange(1, N_SAMPLE + 1))
    with pytest.raises(ValueError, match="over different samples"):
        concat_fingerprints(gauss, shifted)
    clash = label_fingerprints(1 - labels, ["shape", "size"])
    with pytest.raises(ValueError, match="differ"):
        concat_fingerprints(gauss, clash)


@pytest.mark.backends("numpy", "dask", "cupy")
def test_info_equals_estimator(backend, rng):
    mean, logvar = _params(rng)
    post = ex.posteriors(backend.asarray(mean), backend.asarray(logvar))
    fp = concat_fingerprints(
        fingerprint(post, sample_chunk=5),
        label_fingerprints(rng.integers(0, 3, size=(2, N_SAMPLE))),
    )
    bits = info(fp)
    assert bits.name == "info"
    assert bits.dims == ("channel",)
    assert bits.attrs["units"] == "bits"
    assert bits.kind.values.tolist() == ["gaussian"] * 6 + ["label"] * 2
    expected = estimators.information(np.asarray(backend.to_numpy(fp.bc), dtype=np.float64))
    np.testing.assert_allclose(backend.to_numpy(bits), expected, rtol=1e-6, atol=1e-7)
    for c in range(6):
        m, k = divmod(c, N_LATENT)
        reference = estimators.information(_bc64(mean[m, k], logvar[m, k]))
        np.testing.assert_allclose(backend.to_numpy(bits)[c], reference, rtol=1e-5, atol=1e-6)
    # info of a hard clustering is its entropy
    labels = backend.to_numpy(fp.channel_label)[6]
    p = np.bincount(labels) / N_SAMPLE
    p = p[p > 0]
    np.testing.assert_allclose(backend.to_numpy(bits)[6], -(p * np.log2(p)).sum(), rtol=1e-6)


def test_lazy_everywhere(rng, no_compute):
    import dask.array as da

    mean, logvar = _params(rng)
    post = ex.posteriors(da.from_array(mean, chunks=(1, 2, 10)), da.from_array(logvar, chunks=5))
    post = post.assign_coords(beta=("model", [1.0, 2.0]))
    fp = fingerprint(post, sample_chunk=9)
    sub = fingerprint(post, [[0, 2], [1]])
    lab = label_fingerprints(rng.integers(0, 2, size=(1, N_SAMPLE)))
    both = concat_fingerprints(fp, sub, lab)
    bits = info(both)
    acc = post.repinfo.fingerprint(channel_chunk=2)
    acc_bits = acc.repinfo.info()
    for x in (fp.bc, fp.channel_mean, sub.bc, both.bc, both.channel_mean, bits, acc.bc, acc_bits):
        assert isinstance(x.data, da.Array)


def test_lazy_results_match_eager(rng):
    import dask.array as da

    mean, logvar = _params(rng)
    eager = fingerprint(ex.posteriors(mean, logvar), [[0, 2], [1]])
    lazy = fingerprint(
        ex.posteriors(da.from_array(mean, chunks=(1, 2, 10)), da.from_array(logvar, chunks=5)),
        [[0, 2], [1]],
    )
    np.testing.assert_array_equal(lazy.bc.values, eager.bc.values)
    np.testing.assert_array_equal(info(lazy).values, info(eager).values)


def test_default_chunks_are_bounded(rng):
    post = ex.posteriors(np.zeros((50, 10, 300)), np.zeros((50, 10, 300)))
    fp = fingerprint(post)
    c, i, j = (max(x) for x in fp.bc.data.chunks)
    assert j == 300
    assert 2**20 <= c * i * j <= 2**22  # one task's block: a few MiB to 16 MiB
    big = ex.posteriors(np.zeros((1, 2, 5000)), np.zeros((1, 2, 5000)))
    c, i, j = (max(x) for x in fingerprint(big).bc.data.chunks)
    assert j == 5000 and i < 5000 and c * i * j <= 2**22


# -- errors --------------------------------------------------------------------------


def test_nan_and_inf_are_named(rng):
    mean, logvar = _params(rng)
    mean[1, 2, 5] = np.nan
    ds = xr.Dataset(
        {
            "mean": (("model", "latent", "sample"), mean),
            "logvar": (("model", "latent", "sample"), logvar),
        }
    )
    with pytest.raises(
        ValueError, match=r"mean has a non-finite value \(nan\) at model=1, latent=2"
    ):
        fingerprint(ds)
    mean[1, 2, 5] = 0.0
    logvar[0, 1, 3] = np.inf
    ds["logvar"] = (("model", "latent", "sample"), logvar)
    with pytest.raises(
        ValueError, match=r"logvar has a non-finite value \(inf\) at model=0, latent=1"
    ):
        ds.repinfo.fingerprint()


def test_nan_in_dask_posteriors_raises_on_compute(rng):
    import dask.array as da

    mean, logvar = _params(rng)
    mean[1, 0, 20] = np.inf
    fp = fingerprint(ex.posteriors(da.from_array(mean, chunks=(1, 3, 10)), logvar))
    with pytest.raises(ValueError, match="model=1, latent=0, sample=20"):
        fp.bc.values


def test_bad_inputs(rng):
    mean, logvar = _params(rng)
    dims = ("model", "latent", "sample")
    wrong = xr.Dataset({"mean": (("model", "z", "sample"), mean), "logvar": (dims, logvar)})
    with pytest.raises(ValueError, match="needs dims"):
        fingerprint(wrong)
    with pytest.raises(ValueError, match="'logvar' is missing"):
        fingerprint(xr.Dataset({"mean": (dims, mean)}))
    mismatched = xr.Dataset(
        {"mean": (dims, mean), "logvar": (("model", "latent", "s2"), logvar[:, :, :5])}
    )
    with pytest.raises(ValueError, match="dims"):
        fingerprint(mismatched)
    with pytest.raises(ValueError, match="same shape"):
        ex.posteriors(mean, logvar[:, :, :5])
    with pytest.raises(ValueError, match="at least 2 samples"):
        fingerprint(
            xr.Dataset({"mean": (dims, mean[:, :, :1]), "logvar": (dims, logvar[:, :, :1])})
        )
    with pytest.raises(TypeError, match="Posteriors xarray.Dataset"):
        fingerprint(mean)
    post = ex.posteriors(mean, logvar)
    with pytest.raises(ValueError, match="channels must be one of"):
        fingerprint(post, "latents")
    with pytest.raises(ValueError, match="out of range"):
        fingerprint(post, [[0, 3]])
    with pytest.raises(ValueError, match="repeats a latent"):
        fingerprint(post, [[1, 1]])
    with pytest.raises(TypeError, match="integers"):
        fingerprint(post, [[0.5]])
    with pytest.raises(TypeError, match="non-empty list"):
        fingerprint(post, [])
    with pytest.raises(ValueError, match="channel_chunk"):
        fingerprint(post, channel_chunk=0)
    with pytest.raises(ValueError, match="clashes"):
        fingerprint(post.assign_coords(kind=("model", ["a", "b"])))


def test_bad_labels(rng):
    with pytest.raises(TypeError, match="integer class indices"):
        label_fingerprints(rng.normal(size=(2, 10)))
    with pytest.raises(ValueError, match="at least 2 samples"):
        label_fingerprints(np.array([[1]]))
    with pytest.raises(ValueError, match="factor_names has 1 names for 2"):
        label_fingerprints(np.zeros((2, 5), dtype=int), ["a"])
    with pytest.raises(ValueError, match="one id per sample"):
        label_fingerprints(np.zeros((2, 5), dtype=int), sample=[1, 2])
    with pytest.raises(ValueError, match="without a 'labels' variable"):
        label_fingerprints(ex.posteriors(np.zeros((1, 1, 3)), np.zeros((1, 1, 3))))
    with pytest.raises(ValueError, match="needs dims"):
        label_fingerprints(xr.DataArray(np.zeros((2, 5), dtype=int), dims=("f", "sample")))
    with pytest.raises(ValueError, match="dims"):
        label_fingerprints(np.zeros((2, 2, 5), dtype=int))


def test_validate_fingerprints_errors():
    bc = np.ones((2, 3, 3), dtype=np.float32)
    dims = ("channel", "sample_i", "sample_j")
    with pytest.raises(TypeError, match="Fingerprints xarray.Dataset"):
        validate_fingerprints(bc)
    with pytest.raises(ValueError, match="no variable 'bc'"):
        validate_fingerprints(xr.Dataset({"x": ("a", [1])}))
    with pytest.raises(ValueError, match="square"):
        validate_fingerprints(xr.Dataset({"bc": (dims, np.ones((2, 3, 4)))}))
    with pytest.raises(ValueError, match="not its partner"):
        validate_fingerprints(
            xr.Dataset(
                {
                    "bc": (dims, bc),
                    "channel_mean": (("channel", "component", "sample"), np.zeros((2, 1, 3))),
                }
            )
        )
    with pytest.raises(TypeError, match="must hold integers"):
        validate_fingerprints(
            xr.Dataset(
                {"bc": (dims, bc), "channel_label": (("channel", "sample"), np.zeros((2, 3)))}
            )
        )
    with pytest.raises(ValueError, match="3 in 'bc'"):
        validate_fingerprints(
            xr.Dataset(
                {"bc": (dims, bc), "channel_label": (("channel", "sample"), np.zeros((2, 4), int))}
            )
        )
    # transposed bc is put back in contract order, and stamped
    ok = validate_fingerprints(
        xr.Dataset({"bc": (("sample_j", "channel", "sample_i"), np.ones((3, 2, 3)))})
    )
    assert ok.bc.dims == dims
    assert ok.attrs["ensemblex_kind"] == "fingerprints"


def test_accessor_paths_and_wrong_kinds(rng):
    mean, logvar = _params(rng)
    post = ex.posteriors(mean, logvar)
    fp = post.repinfo.fingerprint("model", sample_chunk=8)
    assert fp.sizes["channel"] == N_MODEL
    assert fp.bc.data.chunks[1] == (8, 8, 7)
    np.testing.assert_allclose(fp.repinfo.info().values, info(fp).values)
    np.testing.assert_allclose(post.repinfo.info().values, info(fingerprint(post)).values)
    with pytest.raises(
        TypeError, match=r"repinfo.fingerprint\(\) needs a Posteriors dataset; got a Fingerprints"
    ):
        fp.repinfo.fingerprint()
    with pytest.raises(TypeError, match=r"repinfo.info\(\) needs a Fingerprints or Posteriors"):
        xr.Dataset({"x": ("a", [1.0])}).repinfo.info()
    pw = xr.Dataset(
        {
            "nmi": (("channel_a", "channel_b"), np.ones((1, 1))),
            "joint_info": (("channel_a", "channel_b"), np.ones((1, 1))),
        }
    )
    with pytest.raises(TypeError, match="got a Pairwise dataset"):
        pw.repinfo.info()
    with pytest.raises(TypeError, match="Fingerprints xarray.Dataset"):
        info(post.mean)


def test_inputs_not_modified(rng):
    mean, logvar = _params(rng)
    post = ex.posteriors(mean, logvar, labels=rng.integers(0, 2, size=(1, N_SAMPLE)))
    before = post.copy(deep=True)
    fp = fingerprint(post, [[0, 1]])
    concat_fingerprints(fp, label_fingerprints(post))
    info(fp)
    xr.testing.assert_identical(post, before)


def test_non_integer_model_ids(rng):
    mean, logvar = _params(rng)
    post = ex.posteriors(mean, logvar).assign_coords(model=["vae-a", "vae-b"])
    fp = fingerprint(post)
    assert fp.model.values.tolist() == [0, 0, 0, 1, 1, 1]
    assert fp.model_name.values.tolist() == ["vae-a"] * 3 + ["vae-b"] * 3


@pytest.mark.backends("numpy", "array_api_strict", "cupy")
def test_block_kernel_is_namespace_clean(backend, rng, monkeypatch):
    """The per-task kernel uses only the array API: it runs on any namespace."""
    import ensemblex.fingerprints as fingerprints_mod
    from ensemblex.fingerprints import _bc_block, _pad_components

    mean = rng.normal(size=(3, 2, 9)).astype(np.float32)
    logvar = rng.uniform(-2, 1, size=(3, 2, 9)).astype(np.float32)
    labels = rng.integers(0, 3, size=(3, 9))
    padded = _pad_components(backend.asarray(mean), 3)
    assert tuple(padded.shape) == (3, 3, 9)
    padded_lv = _pad_components(backend.asarray(logvar), 3)
    args = (
        padded[:, :, 2:6],
        padded_lv[:, :, 2:6],
        padded,
        padded_lv,
        backend.asarray(labels[:, 2:6]),
        backend.asarray(labels),
    )
    got = backend.to_numpy(_bc_block(*args))
    assert got.dtype == np.float32
    for c in range(3):
        pair = (mean[c].T.astype(np.float64), logvar[c].T.astype(np.float64))
        expected = estimators.bhattacharyya(*pair, multivariate=True)[2:6]
        expected = expected * estimators.label_coefficients(labels[c])[2:6]
        np.testing.assert_allclose(got[c], expected, atol=2e-6, rtol=1e-5)
    # computed a channel at a time inside the block (pieces): the same values
    monkeypatch.setattr(fingerprints_mod, "_PIECE_BYTES", 1)
    np.testing.assert_array_equal(backend.to_numpy(_bc_block(*args)), got)


# -- select_channels: a lazy bc computes only the chosen channels -------------------------


def test_select_channels_computes_only_the_chosen_channels(monkeypatch) -> None:
    import dask

    from ensemblex import fingerprints as fmod
    from ensemblex.fingerprints import select_channels
    from ensemblex.testing import planted_ensemble

    post = planted_ensemble(n_models=12, n_latent=5, n_samples=40, seed=3)
    fp = fingerprint(post, channel_chunk=8)  # 60 channels in 8 blocks
    ids = [3, 17, 29, 44, 50]  # one channel from each of 5 full blocks
    expected = fp["bc"].sel(channel=ids).values
    computed: list[int] = []
    original = fmod._bc_block

    def counting(mean_i, *args, **kwargs):
        computed.append(int(mean_i.shape[0]))
        return original(mean_i, *args, **kwargs)

    monkeypatch.setattr(fmod, "_bc_block", counting)
    fresh = fingerprint(post, channel_chunk=8)
    with dask.config.set(scheduler="sync"):
        plain = fresh["bc"].sel(channel=ids).values
        n_plain = sum(computed)
        computed.clear()
        some = select_channels(fresh, ids)
        got = some["bc"].values
    assert n_plain == 5 * 8  # .sel computes every block a chosen channel falls in
    assert sum(computed) == len(ids)  # select_channels: the chosen channels only
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(plain, expected)
    assert some["channel"].values.tolist() == ids
    assert some["bc"].attrs == fp["bc"].attrs
    for name in ("channel_mean", "channel_logvar", "model", "latent"):
        np.testing.assert_array_equal(some[name].values, fp[name].sel(channel=ids).values)


def test_select_channels_of_a_bc_in_memory_is_sel() -> None:
    from ensemblex.fingerprints import select_channels
    from ensemblex.testing import planted_ensemble

    fp = fingerprint(planted_ensemble(n_models=3, n_latent=4, n_samples=20)).compute()
    xr.testing.assert_identical(select_channels(fp, [1, 5]), fp.sel(channel=[1, 5]))
