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


# -- the accessor mirrors the functions ---------------------------------------------------

#: accessor method -> (module, function, the function's dataset parameter)
MIRRORED = {
    "fingerprint": ("fingerprints", "fingerprint", "post"),
    "pairwise": ("pairwise", "pairwise", "fp"),
    "cluster": ("structure", "cluster", "ds"),
    "describe_groups": ("structure", "describe_groups", "clusters"),
    "label_nmi": ("structure", "label_nmi", "ds"),
    "synthesize": ("synthesis", "synthesize", "ds"),
    "udr": ("udr", "udr", "ds"),
    "plot_structure": ("plot", "plot_structure", "clusters"),
    "plot_cross": ("plot", "plot_cross", "a"),
    "plot_nmi_vi": ("plot", "plot_nmi_vi", "pairwise"),
    "plot_group_traversals": ("plot", "plot_group_traversals", "clusters"),
}


@pytest.mark.parametrize("name", sorted(MIRRORED))
def test_methods_take_the_functions_parameters(name):
    import importlib

    module, function, data = MIRRORED[name]
    func = getattr(importlib.import_module(f"ensemblex.{module}"), function)
    renamed = {"b": "other"}  # plot_cross(a, b): the accessor's dataset is a, b is other
    expected = [
        (renamed.get(p.name, p.name), p.default)
        for p in inspect.signature(func).parameters.values()
        if p.name != data
    ]
    got = [
        (p.name, p.default)
        for p in inspect.signature(getattr(RepInfoAccessor, name)).parameters.values()
        if p.name != "self"
    ]
    # same names, same order, same defaults (a default of inf compares equal)
    assert got == expected


def test_no_keyword_forwarding():
    for name, method in inspect.getmembers(RepInfoAccessor, inspect.isfunction):
        params = inspect.signature(method).parameters.values()
        assert not any(p.kind is p.VAR_KEYWORD for p in params), name


def test_measure_is_the_one_name_and_old_names_warn():
    from ensemblex.structure import describe_groups
    from ensemblex.testing import planted_ensemble

    post = planted_ensemble(n_models=6, n_latent=3, n_samples=50, n_factors=2, n_mixed=0, seed=1)
    fp = post.repinfo.fingerprint()
    pw = fp.repinfo.pairwise().compute()
    new = pw.repinfo.cluster("vi", min_samples=4)
    with pytest.warns(FutureWarning, match=r"repinfo.cluster\(metric=...\) is deprecated"):
        old = pw.repinfo.cluster(metric="vi", min_samples=4)
    assert new.attrs.get("measure", new.attrs.get("metric")) == "vi"
    np.testing.assert_array_equal(new["group"].values, old["group"].values)
    with pytest.warns(FutureWarning), pytest.raises(ValueError, match="pass measure= only"):
        pw.repinfo.cluster("nmi", metric="vi", min_samples=4)
    # the accessor calls the plain function: same groups, same table
    table = new.repinfo.describe_groups(pairwise=pw)
    expected = describe_groups(new, pairwise=pw)
    assert table.equals(expected)
    assert table["models"].tolist() == [6, 6]  # each planted factor recurs in every model


def test_testing_is_a_lazy_submodule_attribute():
    import subprocess
    import sys

    code = (
        "import sys, ensemblex as ex\n"
        "assert 'ensemblex.testing' not in sys.modules\n"
        "post = ex.testing.planted_ensemble(n_models=2, n_latent=4, n_samples=10)\n"
        "print(dict(post['mean'].sizes), 'testing' in dir(ex))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "{'model': 2, 'latent': 4, 'sample': 10} True"


def test_udr_and_synthesize_old_names_warn():
    from ensemblex.testing import planted_ensemble

    post = planted_ensemble(n_models=4, n_latent=4, n_samples=40, n_factors=2, seed=2)
    new = post.repinfo.udr("vi")
    with pytest.warns(FutureWarning, match=r"repinfo.udr\(similarity=...\) is deprecated"):
        old = post.repinfo.udr(similarity="vi")
    np.testing.assert_array_equal(new.values, old.values)
    # the conflict is refused before any TensorFlow work
    with pytest.warns(FutureWarning), pytest.raises(ValueError, match="pass measure= only"):
        post.repinfo.synthesize(measure="nmi", objective="vi")
