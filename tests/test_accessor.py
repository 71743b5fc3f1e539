"""The ``.repinfo`` accessor: kind checks and plain-function delegation."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import xarray as xr

import ensemblex as ex
from ensemblex._kinds import dataset_kind, require_kind, stamp
from ensemblex.accessor import RepInfoAccessor


def test_init_only_stores_the_dataset():
    ds = xr.Dataset()
    acc = RepInfoAccessor(ds)
    assert vars(acc) == {"_ds": ds}


def test_methods_have_real_signatures_and_docstrings():
    for name, method in inspect.getmembers(RepInfoAccessor, inspect.isfunction):
        if name.startswith("_"):
            continue
        params = inspect.signature(method).parameters.values()
        assert not any(p.kind is p.VAR_POSITIONAL for p in params), name
        assert method.__doc__ and len(method.__doc__.strip()) > 20, name


@pytest.mark.parametrize(
    ("method", "kwargs", "pattern"),
    [
        (
            "pairwise",
            {},
            r"needs a Fingerprints dataset; got a Posteriors dataset.*fingerprint\(\) first",
        ),
        ("plot_structure", {}, r"needs a Clusters dataset; got a Posteriors"),
    ],
)
def test_wrong_kind_is_named(method, kwargs, pattern):
    post = ex.posteriors(np.zeros((1, 1, 3)), np.zeros((1, 1, 3)))
    with pytest.raises(TypeError, match=pattern):
        getattr(post.repinfo, method)(**kwargs)


def test_unknown_dataset_is_refused_with_its_variables():
    ds = xr.Dataset({"foo": ("x", [1, 2])})
    with pytest.raises(TypeError, match=r"does not recognise \(variables: foo\)"):
        ds.repinfo.fingerprint()


def test_dataset_kind_from_attrs_or_variables():
    assert dataset_kind(stamp(xr.Dataset(), "clusters")) == "clusters"
    pw = xr.Dataset({"nmi": ("x", [1.0]), "joint_info": ("x", [1.0])})
    assert dataset_kind(pw) == "pairwise"
    assert dataset_kind(xr.Dataset({"bc": ("x", [1.0])})) == "fingerprints"
    with pytest.raises(TypeError, match="needs an xarray.Dataset; got DataArray"):
        require_kind(xr.DataArray([1]), ("posteriors",), "f()")


def test_stamp_does_not_touch_the_input():
    ds = xr.Dataset(attrs={"note": "mine"})
    out = stamp(ds, "pairwise", min_info=0.01)
    assert ds.attrs == {"note": "mine"}
    assert out.attrs["note"] == "mine" and out.attrs["min_info"] == 0.01


def test_public_api_names_resolve_lazily():
    assert set(ex.__all__) >= {"posteriors", "pairwise", "cluster", "synthesize"}
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        ex.nope
