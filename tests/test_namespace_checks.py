"""Tests of the namespace helpers and the shared validation messages."""

from __future__ import annotations

import re

import numpy as np
import pytest

from ensemblex._checks import (
    check_dims,
    check_finite,
    check_option,
    check_positive_int,
    check_probability,
)
from ensemblex._namespace import get_namespace, is_numpy_namespace, to_numpy

# -- _namespace -----------------------------------------------------------------------


@pytest.mark.backends("numpy", "array_api_strict", "cupy")
def test_get_namespace_of_backend_arrays(backend):
    x = backend.asarray(np.arange(3.0))
    xp = get_namespace(x, 2.0, None, 3, True)  # scalars and None are ignored
    assert xp.__name__.endswith(
        {"numpy": "numpy", "array_api_strict": "array_api_strict", "cupy": "cupy"}[backend.name]
    )
    assert is_numpy_namespace(xp) == (backend.name == "numpy")
    np.testing.assert_array_equal(backend.to_numpy(xp.sum(x)), 3.0)
    np.testing.assert_array_equal(to_numpy(x), [0.0, 1.0, 2.0])
    assert type(to_numpy(x)) is np.ndarray


def test_get_namespace_defaults_to_numpy():
    assert get_namespace().__name__ == "array_api_compat.numpy"
    assert get_namespace(1.0, None, 2).__name__ == "array_api_compat.numpy"
    assert get_namespace(np.zeros(2), np.float64(1.0)).__name__ == "array_api_compat.numpy"


def test_get_namespace_refuses_mixed_libraries_and_non_arrays():
    array_api_strict = pytest.importorskip("array_api_strict")
    with pytest.raises(TypeError, match="one array library") as info:
        get_namespace(np.zeros(2), array_api_strict.zeros(2))
    # the message names both libraries and says what to do
    assert "numpy.ndarray" in str(info.value)
    assert "array_api_strict" in str(info.value)
    assert "Convert them to one library first" in str(info.value)
    with pytest.raises(TypeError, match=r"builtins\.list"):
        get_namespace([1.0, 2.0])


def test_to_numpy_of_dask_scalars_and_lists():
    da = pytest.importorskip("dask.array")
    out = to_numpy(da.arange(4, chunks=2))
    assert type(out) is np.ndarray
    np.testing.assert_array_equal(out, [0, 1, 2, 3])
    assert type(to_numpy(np.float32(2.5))) is np.ndarray
    assert to_numpy(np.float32(2.5)) == 2.5
    np.testing.assert_array_equal(to_numpy([1, 2]), [1, 2])


# -- _checks --------------------------------------------------------------------------


def test_check_option():
    assert check_option("metric", "vi", ("nmi", "vi")) == "vi"
    with pytest.raises(ValueError, match=re.escape("metric must be one of 'nmi', 'vi'; got 'mi'.")):
        check_option("metric", "mi", ("nmi", "vi"))
    with pytest.raises(ValueError, match=re.escape("got None")):
        check_option("objective", None, ["vi", "nmi"])


def test_check_positive_int():
    assert check_positive_int("steps", 5) == 5
    value = check_positive_int("steps", np.int64(7))
    assert value == 7 and type(value) is int
    assert check_positive_int("n", 0, minimum=0) == 0
    with pytest.raises(ValueError, match=re.escape("n_dims must be an integer >= 1; got 0.")):
        check_positive_int("n_dims", 0)
    with pytest.raises(ValueError, match=re.escape("must be an integer >= 2; got 1.")):
        check_positive_int("min_samples", 1, minimum=2)
    # booleans, floats and strings are not integers, even when they look like one
    for bad in (True, 3.0, 1.5, "3", None):
        with pytest.raises(
            TypeError, match=re.escape(f"steps must be an integer >= 1; got {bad!r}.")
        ):
            check_positive_int("steps", bad)


def test_check_probability():
    assert check_probability("p", 0) == 0.0
    assert check_probability("p", 1) == 1.0  # bounds are inclusive
    assert check_probability("p", np.float32(0.5)) == 0.5
    assert check_probability("min_info", 3.0, high=float("inf")) == 3.0
    with pytest.raises(ValueError, match=re.escape("p must be a number in [0.0, 1.0]; got 1.5.")):
        check_probability("p", 1.5)
    with pytest.raises(ValueError, match=re.escape("got -0.1")):
        check_probability("min_info", -0.1, high=float("inf"))
    with pytest.raises(ValueError, match="got nan"):  # NaN is never in range
        check_probability("p", float("nan"))
    with pytest.raises(TypeError, match=re.escape("p must be a number in [0.0, 1.0]; got 'a'.")):
        check_probability("p", "a")
    with pytest.raises(TypeError, match="got None"):
        check_probability("p", None)
    with pytest.raises(ValueError, match=re.escape("[0.2, 0.8]")):
        check_probability("q", 0.1, low=0.2, high=0.8)


def test_check_dims():
    check_dims("variable 'mean'", ("model", "latent", "sample"), ("model", "sample"))
    check_dims("x", ("a", "b"), ("b", "a"), exact=True)  # order does not matter
    with pytest.raises(ValueError) as info:
        check_dims("variable 'mean'", ("model", "z"), ("model", "latent", "sample"))
    assert str(info.value) == (
        "variable 'mean' needs dims ('model', 'latent', 'sample'); got ('model', 'z'): "
        "missing 'latent', 'sample'."
    )
    with pytest.raises(ValueError) as info:
        check_dims("bc", ("channel", "sample_i", "extra"), ("channel", "sample_i"), exact=True)
    assert "unexpected 'extra'" in str(info.value)
    assert "missing" not in str(info.value)
    with pytest.raises(ValueError, match=r"missing 'sample'; unexpected 'z'\. Rename it\.$"):
        check_dims("v", ("z",), ("sample",), exact=True, hint="Rename it.")


@pytest.mark.backends("numpy", "array_api_strict", "cupy")
def test_check_finite_messages(backend):
    x_np = np.zeros((2, 3, 4))
    x_np[1, 2, 0] = np.nan
    x_np[1, 2, 3] = np.inf  # only the first bad value in C order is reported
    x = backend.asarray(x_np)
    xp = get_namespace(x)
    check_finite(xp, backend.asarray(np.ones((2, 2))), "ok")
    check_finite(xp, backend.asarray(np.zeros((0, 3))), "empty")
    check_finite(xp, backend.asarray(np.arange(4)), "integers")
    with pytest.raises(ValueError) as info:
        check_finite(xp, x, "bc")
    assert str(info.value) == (
        "bc has a non-finite value (nan) at index (1, 2, 0); inputs must be finite."
    )
    with pytest.raises(ValueError) as info:
        check_finite(xp, x, "bc", axis_names={0: "channel", 1: "sample_i"}, offset=(10, 100, 0))
    assert str(info.value) == (
        "bc has a non-finite value (nan) at channel=11, sample_i=102, axis 2=0; "
        "inputs must be finite."
    )
    with pytest.raises(ValueError, match=re.escape(r"(-inf) at index (0, 1)")):
        check_finite(xp, backend.asarray(np.array([[1.0, -np.inf]], dtype=np.float32)), "logvar")
    with pytest.raises(ValueError, match=re.escape("(inf) at index ()")):
        check_finite(xp, backend.asarray(np.array(np.inf)), "scale")
