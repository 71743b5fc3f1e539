"""netCDF4 / Zarr round trips of every dataset kind, and clear errors for bad files."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import ensemblex as ex
from ensemblex._kinds import stamp
from ensemblex.estimators import MIN_INFO
from ensemblex.fingerprints import concat_fingerprints, fingerprint, label_fingerprints
from ensemblex.io import open_dataset, save
from ensemblex.measures import PAIRWISE_VARIABLES

FORMATS = ("nc", "zarr")


@pytest.fixture
def post(rng) -> xr.Dataset:
    n_model, n_latent, n_sample = 3, 2, 16
    ds = ex.posteriors(
        rng.normal(size=(n_model, n_latent, n_sample)),
        rng.uniform(-3, 0, size=(n_model, n_latent, n_sample)),
        labels=rng.integers(0, 3, size=(2, n_sample)),
        factor_names=["shape", "scale"],
        coords={
            "beta": [1.0, 4.0, np.nan],
            "method": ["beta", "tcvae", "dip"],
            "seed": [0, 1, 2],
            "converged": [True, False, True],
        },
    )
    ds.attrs["note"] = "hand made"
    ds.attrs["trained"] = True
    ds["mean"].attrs["units"] = "nats"
    return ds


def _fingerprints(post: xr.Dataset) -> xr.Dataset:
    fp = concat_fingerprints(fingerprint(post), label_fingerprints(post))
    return fp.compute()


def _pairwise() -> xr.Dataset:
    rng = np.random.default_rng(1)
    c = 4
    matrix = ("channel_a", "channel_b")
    ds = xr.Dataset(
        {
            **{
                name: (matrix, rng.uniform(size=(c, c)).astype(np.float32))
                for name in PAIRWISE_VARIABLES
            },
            "info_a": ("channel_a", rng.uniform(size=c)),
            "repeat_info_a": ("channel_a", rng.uniform(size=c)),
            "info_b": ("channel_b", rng.uniform(size=c)),
            "repeat_info_b": ("channel_b", rng.uniform(size=c)),
        },
        coords={
            "channel_a": np.arange(c),
            "channel_b": np.arange(c),
            "model_a": ("channel_a", [0, 0, 1, -1]),
            "model_b": ("channel_b", [0, 0, 1, -1]),
            "kind_a": ("channel_a", ["gaussian", "gaussian", "gaussian", "label"]),
            "kind_b": ("channel_b", ["gaussian", "gaussian", "gaussian", "label"]),
            "factor_a": ("channel_a", ["", "", "", "shape"]),
            "factor_b": ("channel_b", ["", "", "", "shape"]),
            "beta_a": ("channel_a", [1.0, 1.0, 4.0, np.nan]),
            "beta_b": ("channel_b", [1.0, 1.0, 4.0, np.nan]),
        },
    )
    ds["nmi"][0, 3] = np.nan
    return stamp(ds, "pairwise", min_info=MIN_INFO, symmetric=True)


def _clusters() -> xr.Dataset:
    ds = xr.Dataset(
        {
            "informative": ("channel", np.array([True, True, False, True, True])),
            "group": ("channel", np.array([0, 0, -1, 1, 1])),
            "reachability": ("channel", np.array([np.inf, 0.2, np.inf, 0.9, 0.1])),
            "central": ("channel", np.array([True, False, False, False, True])),
            "ordering": ("position", np.array([0, 1, 3, 4, 2])),
            "label_nmi": (("channel", "factor"), np.linspace(0, 1, 10).reshape(5, 2)),
        },
        coords={
            "channel": np.arange(5),
            "factor": ["shape", "scale"],
            "kind": ("channel", ["gaussian"] * 5),
            "method": ("channel", ["beta", "beta", "tcvae", "tcvae", "dip"]),
        },
    )
    return stamp(ds, "clusters", metric="nmi", min_samples=2)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("which", ["posteriors", "fingerprints", "pairwise", "clusters"])
def test_round_trip_identical(tmp_path, post, fmt, which):
    ds = {
        "posteriors": lambda: post,
        "fingerprints": lambda: _fingerprints(post),
        "pairwise": _pairwise,
        "clusters": _clusters,
    }[which]()
    path = save(ds, tmp_path / f"data.{fmt}")
    back = open_dataset(path)
    xr.testing.assert_identical(back.load(), ds)
    assert back.attrs["ensemblex_kind"] == which
    assert back.attrs["ensemblex_version"] == ex.__version__
    for name, var in ds.variables.items():
        assert back[name].dtype == var.dtype, name
    if which == "posteriors":
        assert back.attrs["trained"] is True
        assert back.converged.dtype == bool
    # chunked reading gives Dask data with the same values
    lazy = open_dataset(path, chunks={})
    assert all(hasattr(v.data, "dask") for v in lazy.data_vars.values())
    xr.testing.assert_identical(lazy.compute(), ds)


@pytest.mark.backends("numpy", "dask", "cupy")
def test_save_lazy_fingerprints_computes_chunkwise(tmp_path, post, backend):
    mean = backend.asarray(post["mean"].values)
    logvar = backend.asarray(post["logvar"].values)
    fp = fingerprint(
        ex.posteriors(mean, logvar, coords={"beta": post.beta.values}),
        channel_chunk=2,
        sample_chunk=5,
    )
    assert hasattr(fp.bc.data, "dask")
    path = save(fp, tmp_path / "fp.nc")
    back = open_dataset(path, chunks={})
    expected = fingerprint(
        ex.posteriors(post["mean"].values, post["logvar"].values, coords={"beta": post.beta.values})
    ).compute()
    xr.testing.assert_allclose(back.compute(), expected)
    z = save(fp, tmp_path / "fp.zarr")
    xr.testing.assert_allclose(open_dataset(z).load(), expected)


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_silent_overwrite(tmp_path, post, fmt):
    path = tmp_path / f"data.{fmt}"
    save(post, path)
    other = post.assign(mean=post["mean"] + 1)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save(other, path)
    xr.testing.assert_identical(open_dataset(path).load(), post)
    save(other, path, overwrite=True)
    xr.testing.assert_identical(open_dataset(path).load(), other)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary left


def test_overwrite_the_file_being_read(tmp_path, post):
    path = save(post, tmp_path / "post.nc")
    opened = open_dataset(path)  # lazily backed by the file it replaces
    save(opened.assign_coords(seed=("model", [5, 6, 7])), path, overwrite=True)
    back = open_dataset(path).load()
    assert back.seed.values.tolist() == [5, 6, 7]
    np.testing.assert_array_equal(back["mean"].values, post["mean"].values)


def test_plain_xarray_posteriors_are_recognised(tmp_path):
    dims = ("model", "latent", "sample")
    plain = xr.Dataset({"mean": (dims, np.zeros((1, 2, 3))), "logvar": (dims, np.zeros((1, 2, 3)))})
    plain.to_netcdf(tmp_path / "plain.nc", engine="netcdf4")
    back = open_dataset(tmp_path / "plain.nc")
    assert back.attrs["ensemblex_kind"] == "posteriors"
    assert back.repinfo.fingerprint().sizes["channel"] == 2


def test_missing_corrupt_and_foreign_files(tmp_path, post):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        open_dataset(tmp_path / "nothing.nc")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        open_dataset(tmp_path / "nothing.zarr")
    foreign = tmp_path / "foreign.nc"
    xr.Dataset({"temperature": ("time", [1.0, 2.0])}).to_netcdf(foreign, engine="netcdf4")
    with pytest.raises(ValueError, match="not an ensemblex dataset.*temperature"):
        open_dataset(foreign)
    garbage = tmp_path / "garbage.nc"
    garbage.write_bytes(b"this is not a netCDF file\n" * 10)
    with pytest.raises(ValueError, match="truncated, corrupt"):
        open_dataset(garbage)
    full = save(_fingerprints(post), tmp_path / "fp.nc")
    data = full.read_bytes()
    for keep in (len(data) // 2, len(data) - 100, 200):
        cut = tmp_path / f"cut{keep}.nc"
        cut.write_bytes(data[:keep])
        with pytest.raises(ValueError, match="truncated, corrupt"):
            open_dataset(cut)
    unknown = tmp_path / "unknown.nc"
    post.drop_attrs().assign_attrs(ensemblex_kind="spectra").to_netcdf(unknown, engine="netcdf4")
    with pytest.raises(ValueError, match="kind this version"):
        open_dataset(unknown)
    bad_fp = tmp_path / "bad_fp.nc"
    xr.Dataset(
        {"bc": (("channel", "i", "j"), np.ones((1, 2, 2)))},
        attrs={"ensemblex_kind": "fingerprints"},
    ).to_netcdf(bad_fp, engine="netcdf4")
    with pytest.raises(ValueError, match="needs dims"):
        open_dataset(bad_fp)


def test_save_errors(tmp_path, post):
    with pytest.raises(ValueError, match="'.nc' for netCDF4 or '.zarr'"):
        save(post, tmp_path / "post.h5")
    with pytest.raises(TypeError, match="ensemblex datasets"):
        save(xr.Dataset({"x": ("a", [1])}), tmp_path / "x.nc")
    with pytest.raises(TypeError, match="xarray.Dataset"):
        save(post["mean"], tmp_path / "x.nc")
    with pytest.raises(TypeError, match="netCDF4 cannot store"):
        save(post.assign_attrs(extra=None), tmp_path / "x.nc")
    assert not list(tmp_path.iterdir())  # nothing left behind


def test_save_does_not_modify_input(tmp_path, post):
    before = post.copy(deep=True)
    save(post, tmp_path / "p.nc")
    xr.testing.assert_identical(post, before)
    assert post.attrs["trained"] is True


def test_a_pairwise_store_is_recognised_in_each_state(tmp_path, post):
    """store_state says what is at a path; open_dataset refuses only an unfinished store."""
    pytest.importorskip("zarr")
    import dask
    from dask.callbacks import Callback

    from ensemblex.store import STORE_KEY, is_pairwise_store, store_state

    class Stopped(Exception):
        pass

    class Stop(Callback):
        def _posttask(self, key, result, dsk, state, id) -> None:
            if str(key[0] if isinstance(key, tuple) else key).startswith("pairwise-write"):
                raise Stopped

    fp = fingerprint(post)
    saved = save(post, tmp_path / "post.zarr")  # a Zarr store, not a pairwise one
    cases = {"absent": tmp_path / "none.zarr", "foreign": saved}
    cases["unfinished"] = tmp_path / "stopped.zarr"
    with Stop(), dask.config.set(scheduler="sync"), pytest.raises(Stopped):
        ex.pairwise(fp, channel_chunk=2, store=cases["unfinished"])
    cases["finished"] = tmp_path / "done.zarr"
    ex.pairwise(fp, channel_chunk=2, store=cases["finished"])
    for state, path in cases.items():
        assert store_state(path) == state, path
        assert is_pairwise_store(path) == (state in ("unfinished", "finished"))
    with pytest.raises(ValueError, match="not finished"):
        open_dataset(cases["unfinished"])
    done = open_dataset(cases["finished"])
    assert STORE_KEY not in done.attrs and "done_tiles" not in done.variables
    assert set(PAIRWISE_VARIABLES) <= set(done.data_vars)
    assert open_dataset(saved).attrs["ensemblex_kind"] == "posteriors"
