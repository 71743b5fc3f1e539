"""The Posteriors data model: construction, validation, errors, backends."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import ensemblex as ex
from ensemblex.posteriors import validate_posteriors


def _arrays(rng, shape=(2, 3, 20)):
    return rng.normal(size=shape), rng.uniform(-2, 1, size=shape)


@pytest.mark.backends("numpy", "dask", "distributed", "cupy")
def test_posteriors_stores_float32_on_every_backend(backend, rng):
    mean, logvar = _arrays(rng)
    post = ex.posteriors(backend.asarray(mean), backend.asarray(logvar))
    assert post.attrs["ensemblex_kind"] == "posteriors"
    assert post.attrs["ensemblex_version"] == ex.__version__
    assert post["mean"].dims == ("model", "latent", "sample")
    assert post["mean"].dtype == np.float32
    np.testing.assert_allclose(backend.to_numpy(post["mean"]), mean.astype(np.float32))
    np.testing.assert_allclose(backend.to_numpy(post["logvar"]), logvar.astype(np.float32))


def test_dask_posteriors_stay_lazy(no_compute, rng):
    import dask.array as da

    mean, logvar = _arrays(rng)
    post = ex.posteriors(da.from_array(mean, chunks=(1, 3, 10)), da.from_array(logvar))
    assert isinstance(post["mean"].data, da.Array)


def test_dask_nonfinite_value_is_reported_with_global_position(rng):
    import dask.array as da

    mean, logvar = _arrays(rng, (2, 3, 20))
    mean[1, 2, 17] = np.nan
    post = ex.posteriors(da.from_array(mean, chunks=(1, 1, 5)), da.from_array(logvar))
    with pytest.raises(ValueError, match=r"mean .*model=1, latent=2, sample=17"):
        post.compute()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_values_name_the_variable_and_position(bad, rng):
    mean, logvar = _arrays(rng)
    logvar[0, 1, 4] = bad
    with pytest.raises(ValueError, match=r"logvar .*model=0, latent=1, sample=4"):
        ex.posteriors(mean, logvar)


def test_coords_labels_and_factor_names(rng):
    mean, logvar = _arrays(rng)
    labels = rng.integers(0, 3, size=(2, 20))
    post = ex.posteriors(
        mean,
        logvar,
        labels=labels,
        factor_names=["shape", "scale"],
        coords={
            "beta": [1.0, 4.0],
            "method": ["beta_vae", "dip_vae_i"],
            "sample": ("sample", np.arange(20) * 10),
        },
    )
    assert post["beta"].dims == ("model",)
    assert list(post["method"].values) == ["beta_vae", "dip_vae_i"]
    assert list(post["factor"].values) == ["shape", "scale"]
    np.testing.assert_array_equal(post["labels"].values, labels)
    assert int(post["sample"][-1]) == 190


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"mean": np.zeros((2, 3)), "logvar": np.zeros((2, 3))}, ValueError, "3 axes"),
        ({"mean": np.zeros((1, 2, 5)), "logvar": np.zeros((1, 2, 4))}, ValueError, "same shape"),
        (
            {"mean": np.zeros((1, 2, 1)), "logvar": np.zeros((1, 2, 1))},
            ValueError,
            "at least 2 samples",
        ),
        ({"labels": np.zeros((1, 5))}, TypeError, "integer"),
        ({"labels": np.zeros((1, 4), dtype=int)}, ValueError, "5 samples"),
        (
            {"labels": np.zeros((2, 5), dtype=int), "factor_names": ["a"]},
            ValueError,
            "1 names for 2",
        ),
        ({"factor_names": ["a"]}, ValueError, "without labels"),
        ({"coords": {"beta": [1.0, 2.0, 3.0]}}, ValueError, "one value per model"),
        ({"mean": np.zeros((1, 2, 5), dtype=complex)}, TypeError, "real numbers"),
    ],
)
def test_bad_inputs_raise_clear_errors(kwargs, error, pattern):
    args = {"mean": np.zeros((1, 2, 5)), "logvar": np.zeros((1, 2, 5))}
    args.update(kwargs)
    if args["mean"].shape != args["logvar"].shape and "logvar" not in kwargs:
        args["logvar"] = np.zeros(args["mean"].shape)
    mean, logvar = args.pop("mean"), args.pop("logvar")
    with pytest.raises(error, match=pattern):
        ex.posteriors(mean, logvar, **args)


def test_inputs_are_not_modified(rng):
    mean, logvar = _arrays(rng)
    before = mean.copy()
    ex.posteriors(mean, logvar)
    np.testing.assert_array_equal(mean, before)
    assert mean.dtype == np.float64


def test_validate_accepts_plain_xarray_in_any_dim_order(rng):
    mean, logvar = _arrays(rng, (2, 3, 20))
    plain = xr.Dataset(
        {
            "mean": (("sample", "model", "latent"), mean.transpose(2, 0, 1)),
            "logvar": (("sample", "model", "latent"), logvar.transpose(2, 0, 1)),
            "labels": (("factor", "sample"), rng.integers(0, 2, size=(1, 20))),
        },
        coords={"seed": ("model", [3, 4]), "factor": ["color"], "sample": np.arange(20) + 100},
    )
    post = validate_posteriors(plain)
    assert post["mean"].dims == ("model", "latent", "sample")
    np.testing.assert_allclose(post["mean"].values, mean.astype(np.float32))
    assert list(post["seed"].values) == [3, 4]
    assert list(post["factor"].values) == ["color"]
    assert int(post["sample"][0]) == 100
    assert post.attrs["ensemblex_kind"] == "posteriors"
    assert "ensemblex_kind" not in plain.attrs  # the user's dataset is untouched


def test_validate_names_missing_variable_and_wrong_dims():
    with pytest.raises(ValueError, match="'logvar' is missing"):
        validate_posteriors(
            xr.Dataset({"mean": (("model", "latent", "sample"), np.zeros((1, 1, 2)))})
        )
    ds = xr.Dataset(
        {v: (("model", "z", "sample"), np.zeros((1, 1, 2))) for v in ("mean", "logvar")}
    )
    with pytest.raises(ValueError, match="missing 'latent'.*unexpected 'z'"):
        validate_posteriors(ds)
