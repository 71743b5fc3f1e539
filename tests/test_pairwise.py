"""The streaming pairwise engine against float64 plain references and oracles."""

from __future__ import annotations

import importlib.util
import math
import warnings
from typing import Any

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr

from ensemblex import estimators as est
from ensemblex._kernels import GaussianRows, StoredRows, channel_logsums, tile_logsum
from ensemblex._kinds import stamp
from ensemblex.estimators import MIN_INFO
from ensemblex.io import open_dataset
from ensemblex.measures import MEASURES as REGISTRY
from ensemblex.measures import PAIRWISE_VARIABLES
from ensemblex.pairwise import STORE_KEY, STORE_VARIABLES, pairwise

MEASURES = (*PAIRWISE_VARIABLES, "info_a", "repeat_info_a", "info_b", "repeat_info_b")


# -- test data: Fingerprints datasets built by hand, following the contract -----------------


def _params(rng: np.random.Generator, n_channel: int, n_sample: int, n_comp: int = 1):
    """Gaussian parameters (channel, component, sample) with varied information."""
    z = rng.uniform(size=(3, n_sample))
    mean = np.empty((n_channel, n_comp, n_sample))
    for c in range(n_channel):
        for k in range(n_comp):
            w = rng.normal(size=3)
            mean[c, k] = np.tanh(w @ z * rng.uniform(0.5, 3)) * rng.uniform(1, 3)
    logvar = rng.uniform(-6.0, -1.0, size=(n_channel, n_comp, 1)) + 0.3 * rng.normal(
        size=(n_channel, n_comp, n_sample)
    )
    return mean.astype(np.float32), logvar.astype(np.float32)


def _fingerprints(
    mean: np.ndarray,
    logvar: np.ndarray,
    label: np.ndarray | None = None,
    *,
    sample: Any = None,
    kind: Any = None,
    with_bc: bool = True,
) -> xr.Dataset:
    """A Fingerprints dataset per docs/design.md section 2 (bc, when asked for, computed in float64)."""
    n_channel, n_comp, n_sample = mean.shape
    sample = np.arange(n_sample) if sample is None else np.asarray(sample)
    data = {
        "channel_mean": (("channel", "component", "sample"), mean),
        "channel_logvar": (("channel", "component", "sample"), logvar),
    }
    if label is not None:
        data["channel_label"] = (("channel", "sample"), label.astype(np.int64))
    if with_bc:
        data["bc"] = (("channel", "sample_i", "sample_j"), _plain_bc(mean, logvar, label))
    kind = np.array(["gaussian"] * n_channel) if kind is None else np.asarray(kind)
    ds = xr.Dataset(
        data,
        coords={
            "channel": np.arange(n_channel),
            "component": np.arange(n_comp),
            "sample": sample,
            "sample_i": sample,
            "sample_j": sample,
            "model": ("channel", np.arange(n_channel) // 2),
            "latent": ("channel", np.arange(n_channel) % 2),
            "kind": ("channel", kind),
            "beta": ("channel", np.linspace(1, 2, n_channel)),
        },
    )
    return stamp(ds, "fingerprints")


def _plain_bc(mean: np.ndarray, logvar: np.ndarray, label: np.ndarray | None) -> np.ndarray:
    """Float64 fingerprints ``(channel, N, N)`` with the estimators (broadcasting)."""
    m = np.moveaxis(mean.astype(np.float64), 1, 2)
    lv = np.moveaxis(logvar.astype(np.float64), 1, 2)
    bc = est.bhattacharyya(m, lv, multivariate=True)
    if label is not None:
        bc = bc * est.label_coefficients(label)
    return bc


def _reference(bc_a: np.ndarray, bc_b: np.ndarray | None = None, min_info: float = MIN_INFO):
    """Plain float64 measures with the estimators, broadcasting over channel pairs.

    NMI and VI with the estimators themselves; any other stored measure of the
    registry with its registry estimator, on the same float64 terms.
    """
    bc_b = bc_a if bc_b is None else bc_b
    info_a, info_b = est.information(bc_a), est.information(bc_b)
    rep_a, rep_b = est.joint_information(bc_a, bc_a), est.joint_information(bc_b, bc_b)
    joint = est.joint_information(bc_a[:, None], bc_b[None])
    terms = (info_a[:, None], info_b[None], joint, rep_a[:, None], rep_b[None])
    stored = {
        name: REGISTRY[name].estimator(*terms, min_info=min_info) for name in PAIRWISE_VARIABLES
    }
    nmi = est.nmi(*terms, min_info=min_info)
    vi = est.vi(joint, rep_a[:, None], rep_b[None])
    return {
        **stored,
        "nmi": nmi,
        "vi": vi,
        "joint_info": joint,
        "info_a": info_a,
        "repeat_info_a": rep_a,
        "info_b": info_b,
        "repeat_info_b": rep_b,
    }


def _assert_matches(pw: xr.Dataset, ref: dict[str, np.ndarray], atol: float = 1e-4) -> None:
    for name in MEASURES:
        got = np.asarray(pw[name].values, dtype=np.float64)
        want = np.asarray(ref[name], dtype=np.float64)
        assert got.shape == want.shape, name
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=name)
        np.testing.assert_allclose(got, want, rtol=0, atol=atol, err_msg=name)


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    """Gaussian channels (one collapsed), multi-component channels and label channels."""
    rng = np.random.default_rng(7)
    n = 48
    mean, logvar = _params(rng, 9, n, n_comp=2)
    mean[4, 1], logvar[4, 1] = 0.0, 0.0  # a 1-D channel padded to 2 components
    mean[5], logvar[5] = 0.0, 0.0  # collapsed to the prior: 0 bits
    mean[6] = 1e-4 * mean[6]  # nearly collapsed: under min_info
    labels = rng.integers(0, 3, size=(3, n))
    # label channels: padded parameters, a label row; Gaussian channels hold label 0
    pad = np.zeros((3, 2, n), np.float32)
    mixed_mean = np.concatenate([mean, pad])
    mixed_logvar = np.concatenate([logvar, pad])
    mixed_label = np.concatenate([np.zeros((9, n), np.int64), labels])
    kind = ["gaussian"] * 9 + ["label"] * 3
    fp = _fingerprints(mean, logvar)
    mixed = _fingerprints(mixed_mean, mixed_logvar, mixed_label, kind=kind)
    lab = _fingerprints(pad, pad, labels, kind=["label"] * 3)
    return {
        "fp": fp,
        "mixed": mixed,
        "labels": lab,
        "bc": _plain_bc(mean, logvar, None),
        "bc_mixed": _plain_bc(mixed_mean, mixed_logvar, mixed_label),
        "bc_labels": est.label_coefficients(labels),
        "label_values": labels,
    }


# -- the kernel: pure array math on every namespace ---------------------------------------------


@pytest.mark.backends("numpy", "array_api_strict", "cupy")
def test_kernel_matches_plain_reference(backend: Any, rng: np.random.Generator) -> None:
    mean, logvar = _params(rng, 5, 30, n_comp=2)
    mean[1, 1], logvar[1, 1] = 0.0, 0.0
    label = rng.integers(0, 2, size=(5, 30))
    bc = _plain_bc(mean, logvar, label)
    rows = GaussianRows(backend.asarray(mean), backend.asarray(logvar), backend.asarray(label))
    for i in (0, 17):
        np.testing.assert_allclose(backend.to_numpy(rows.row(i)), bc[:, i], atol=2e-6)
    other = GaussianRows(backend.asarray(mean[:2]), backend.asarray(logvar[:2]))
    bc_other = _plain_bc(mean[:2], logvar[:2], None)
    # tile over rows 3..20, by blocks: float64 accumulation of log2 row sums
    got = backend.to_numpy(tile_logsum(rows, other, 3, 20))
    want = np.log2(np.einsum("aij,bij->abi", bc, bc_other)[:, :, 3:20]).sum(-1)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert got.dtype == np.float64
    diag = backend.to_numpy(tile_logsum(rows, None, 0, 30))
    np.testing.assert_allclose(diag, np.log2(np.einsum("aij,bij->abi", bc, bc)).sum(-1), rtol=1e-6)
    sums = backend.to_numpy(channel_logsums(rows, 0, 30))
    np.testing.assert_allclose(30 * np.log2(30) - sums[0], 30 * est.information(bc), atol=1e-4)
    stored = StoredRows(backend.asarray(bc[:, 3:20].astype(np.float32)), offset=3)
    np.testing.assert_allclose(
        backend.to_numpy(tile_logsum(stored, None, 3, 20)),
        np.log2(np.einsum("aij,bij->abi", bc, bc)[:, :, 3:20]).sum(-1),
        rtol=1e-6,
    )


def test_rows_in_place_by_blocks_equal_the_generic_path(
    rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NumPy's in-place, cache-blocked rows: the generic path's values, bit for bit."""
    import ensemblex._kernels as kernels

    monkeypatch.setattr(kernels, "_CACHE_BYTES", 4000)  # blocks of 25 (float32) or 12 channels
    mean, logvar = _params(rng, 70, 40, n_comp=3)
    mean[5, 1], logvar[5, 1] = 0.0, 0.0  # a padding component
    logvar[:, 2] *= 8.0  # wide log-variances as well
    label = rng.integers(0, 3, size=(70, 40))
    for dtype in (np.float32, np.float64):
        rows = GaussianRows(mean.astype(dtype), logvar.astype(dtype), label)
        generic = GaussianRows(mean.astype(dtype), logvar.astype(dtype), label)
        generic._in_place = False
        assert rows._in_place and len(rows._blocks) > 2
        for i in (0, 13, 39):
            got, want = rows.row(i), generic.row(i)
            assert got.dtype == want.dtype == dtype
            np.testing.assert_array_equal(got, want)


def test_kernel_extreme_logvars_are_finite(rng: np.random.Generator) -> None:
    """Log-variances in [-30, 30] and large means stay finite in float32 (docs/design.md section 1)."""
    mean = rng.normal(scale=1e3, size=(3, 2, 40)).astype(np.float32)
    logvar = rng.uniform(-30, 30, size=(3, 2, 40)).astype(np.float32)
    rows = GaussianRows(mean, logvar)
    bc = _plain_bc(mean, logvar, None)
    got = np.stack([rows.row(i) for i in range(40)], axis=1)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, bc, atol=1e-6)
    assert np.isfinite(tile_logsum(rows, None, 0, 40)).all()


@pytest.mark.backends("numpy", "array_api_strict", "cupy")
def test_kernel_rows_hold_no_subnormal_values(backend: Any) -> None:
    """Confident, far-apart posteriors give coefficients like exp(-100): floored at 2e-19.

    A GEMM over subnormal float32 runs several times slower on x86; the floor
    t = 2 sqrt(smallest normal) keeps inputs and their products normal and changes
    a row sum (>= 1) by at most N * t.
    """
    n = 64
    mean = np.linspace(0.0, 12.0, n, dtype=np.float32)[None, None, :].repeat(3, axis=0)
    mean[1] *= 0.5
    logvar = np.full_like(mean, -3.0)  # sd 0.22: neighbours overlap, far samples do not
    logvar[2, 0, ::2] = -8.0  # unequal variances: a small prefactor as well
    rows = GaussianRows(backend.asarray(mean), backend.asarray(logvar))
    bc = _plain_bc(mean, logvar, None)  # float64: values down to ~1e-300
    normal = np.finfo(np.float32).smallest_normal
    floor = 2 * math.sqrt(normal)
    assert (bc < normal).any()  # the case exists: float32 would be subnormal
    got = np.stack([backend.to_numpy(rows.row(i)) for i in range(n)], axis=1)
    low = got.min()
    assert low * low >= normal and low == pytest.approx(floor, rel=1e-5)  # products stay normal
    np.testing.assert_allclose(got, bc, atol=2e-6)
    np.testing.assert_allclose(got[bc < floor / 2], floor, rtol=1e-5)  # the floor itself
    stored = StoredRows(backend.asarray(bc.astype(np.float32)))
    low = backend.to_numpy(stored.row(5)).min()
    assert low * low >= normal and low == pytest.approx(floor, rel=1e-6)
    want = np.log2(np.einsum("aij,bij->abi", bc, bc)).sum(-1)
    np.testing.assert_allclose(backend.to_numpy(tile_logsum(rows, None, 0, n)), want, rtol=1e-6)
    np.testing.assert_allclose(backend.to_numpy(tile_logsum(stored, None, 0, n)), want, rtol=1e-6)


def test_product_of_row_sums_cannot_overflow() -> None:
    """Many rows at the maximum row sum N: the products stay finite (one log per run)."""
    n = 300
    label = np.zeros((2, n), np.int64)
    label[1, 1:] = 1  # a row sum of N for every row of channel 0
    rows = GaussianRows(np.zeros((2, 0, n), np.float32), np.zeros((2, 0, n), np.float32), label)
    out = tile_logsum(rows, None, 0, n)
    assert out[0, 0] == pytest.approx(n * math.log2(n), rel=1e-6)


# -- the engine against float64 references --------------------------------------------------


def test_matches_float64_reference(data: dict[str, Any]) -> None:
    pw = pairwise(data["mixed"], channel_chunk=5, sample_chunk=20).compute()
    _assert_matches(pw, _reference(data["bc_mixed"]))
    assert pw.attrs["ensemblex_kind"] == "pairwise"
    assert pw.attrs["min_info"] == MIN_INFO
    assert pw["nmi"].dtype == np.float32 and pw["joint_info"].dtype == np.float32
    for name in ("model", "latent", "kind", "beta"):
        np.testing.assert_array_equal(pw[f"{name}_a"], data["mixed"][name])
        np.testing.assert_array_equal(pw[f"{name}_b"], data["mixed"][name])
    np.testing.assert_array_equal(pw["nmi"], pw["nmi"].T)


def test_other_label_fingerprints(data: dict[str, Any]) -> None:
    pw = pairwise(data["fp"], data["labels"], channel_chunk=4).compute()
    _assert_matches(pw, _reference(data["bc"], data["bc_labels"]))
    assert list(pw["kind_b"].values) == ["label"] * 3
    assert pw.sizes == {"channel_a": 9, "channel_b": 3}


def test_rectangular_tiles_bring_both_sides_channel_sums(
    data: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """fp against other: each side's information comes from the tiles, no pass of its own."""
    pairwise_mod = importlib.import_module("ensemblex.pairwise")  # the package exports the function

    def no_second_pass(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a separate pass over the channels ran")

    monkeypatch.setattr(pairwise_mod, "_channel_block", no_second_pass)
    n_b = data["mixed"].sizes["channel"]
    for chunk in (4, 5, max(9, n_b)):  # several blocks on both sides, uneven, a single one
        pw = pairwise(data["fp"], data["mixed"], channel_chunk=chunk).compute()
        _assert_matches(pw, _reference(data["bc"], data["bc_mixed"]))
    kernel = tile_logsum(
        GaussianRows(*_params(np.random.default_rng(1), 3, 12)),
        GaussianRows(*_params(np.random.default_rng(2), 2, 12)),
        0,
        12,
        channel_sums=(True, False),
    )
    assert kernel.shape == (5, 4) and (kernel[3:] == 0).all()  # b's sums not asked for


def test_nan_labels_from_plain_concat_are_an_error(data: dict[str, Any]) -> None:
    """xr.concat fills the label of Gaussian channels with NaN: a clear error, not inf bits."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # xarray's concat defaults
        both = xr.concat([data["fp"], data["labels"]], dim="channel")
    with pytest.raises(ValueError, match="channel_label .*concat_fingerprints"):
        pairwise(data["fp"], both).compute()


def test_min_info_gives_nan_in_both_directions(data: dict[str, Any]) -> None:
    ref = _reference(data["bc"], min_info=0.05)
    low = np.flatnonzero(ref["info_a"] < 0.05)
    assert {5, 6} <= set(low.tolist())
    pw = pairwise(data["fp"], min_info=0.05).compute()
    nmi = pw["nmi"].values
    assert np.isnan(nmi[low]).all() and np.isnan(nmi[:, low]).all()
    high = np.setdiff1d(np.arange(9), low)
    assert np.isfinite(nmi[np.ix_(high, high)]).all()
    assert pw.attrs["min_info"] == 0.05
    _assert_matches(pw, ref)


def test_hard_labels_equal_sklearn(rng: np.random.Generator) -> None:
    from sklearn.metrics import mutual_info_score, normalized_mutual_info_score

    labels = np.stack([rng.integers(0, k, size=80) for k in (2, 3, 5, 7)])
    labels[3] = labels[1] * 2 + rng.integers(0, 2, size=80)  # related to factor 1
    pad = np.zeros((4, 1, 80), np.float32)
    pw = pairwise(_fingerprints(pad, pad, labels, kind=["label"] * 4, with_bc=False)).compute()
    for u in range(4):
        for v in range(4):
            want = normalized_mutual_info_score(labels[u], labels[v], average_method="geometric")
            assert pw["nmi"].values[u, v] == pytest.approx(want, abs=1e-5)
            h_u = mutual_info_score(labels[u], labels[u]) / math.log(2)
            h_v = mutual_info_score(labels[v], labels[v]) / math.log(2)
            mi = mutual_info_score(labels[u], labels[v]) / math.log(2)
            assert pw["vi"].values[u, v] == pytest.approx(h_u + h_v - 2 * mi, abs=1e-5)


def test_stored_bc_is_read_when_parameters_are_absent(data: dict[str, Any]) -> None:
    stored = data["mixed"].drop_vars(["channel_mean", "channel_logvar", "channel_label"])
    stored["bc"] = stored["bc"].astype(np.float32).chunk({"channel": 4, "sample_i": 10})
    pw = pairwise(stored, data["labels"], channel_chunk=5, sample_chunk=16).compute()
    ref = _reference(data["bc_mixed"], data["bc_labels"])
    _assert_matches(pw, ref)


def test_with_real_fingerprints_module() -> None:
    """The engine on fingerprint()/label_fingerprints() output, against the lead's oracle."""
    from ensemblex import fingerprints
    from ensemblex.testing import planted_ensemble, reference_pairwise

    post = planted_ensemble(n_models=3, n_latent=4, n_samples=50)
    fp = fingerprints.fingerprint(post)
    labels = fingerprints.label_fingerprints(post)
    ref = reference_pairwise(post, labels=True)
    pw = fp.repinfo.pairwise(labels, channel_chunk=5).compute()
    n = fp.sizes["channel"]
    for name in ("nmi", "vi", "joint_info"):
        np.testing.assert_allclose(pw[name], ref[name][:n, n:], atol=1e-4, equal_nan=True)
    both = fingerprints.concat_fingerprints(fp, labels)
    pw = pairwise(both, channel_chunk=6, sample_chunk=20).compute()
    for name in ("nmi", "vi", "joint_info", "info_a", "repeat_info_a"):
        np.testing.assert_allclose(pw[name], ref[name], atol=1e-4, equal_nan=True)


# -- schedulers, laziness, symmetry -----------------------------------------------------------


@pytest.mark.backends("numpy", "dask", "distributed", "cupy")
def test_same_numbers_on_every_backend(backend: Any, data: dict[str, Any]) -> None:
    fp = data["mixed"].drop_vars("bc")
    if backend.name == "dask":
        fp = fp.chunk({"channel": 5})
    else:
        for name in ("channel_mean", "channel_logvar", "channel_label"):
            fp[name] = fp[name].copy(data=backend.asarray(fp[name].values))
    with dask.config.set(scheduler=backend.client or "threads"):
        pw = pairwise(fp, channel_chunk=4, sample_chunk=16)
        assert isinstance(pw["nmi"].data, da.Array)
        got = {name: backend.to_numpy(pw[name].data) for name in MEASURES}
    dims = {2: ("channel_a", "channel_b"), 1: ("channel",)}
    _assert_matches(
        xr.Dataset({k: (dims[v.ndim], v) for k, v in got.items()}), _reference(data["bc_mixed"])
    )


def test_graph_is_lazy(data: dict[str, Any], no_compute: None) -> None:
    pw = pairwise(data["mixed"], data["labels"], channel_chunk=4)
    pw_sym = data["mixed"].repinfo.pairwise(channel_chunk=4)
    for ds in (pw, pw_sym):
        for name in MEASURES:
            assert isinstance(ds[name].data, da.Array), name


def test_symmetric_case_computes_upper_tiles_only(data: dict[str, Any]) -> None:
    from dask.callbacks import Callback

    seen: list[Any] = []

    class Count(Callback):
        def _pretask(self, key: Any, dsk: Any, state: Any) -> None:
            name = key[0] if isinstance(key, tuple) else key
            if str(name).startswith("pairwise-tile"):
                seen.append(key)

    pw = pairwise(data["mixed"], channel_chunk=4, sample_chunk=24)  # 3 blocks, 2 row blocks
    with Count():
        pw.compute(scheduler="threads")
    assert len(seen) == 6 * 2  # tiles a <= b of 3 x 3, times 2 row blocks


# -- the resumable Zarr store ----------------------------------------------------------------


class _Interrupt(Exception):
    pass


def test_store_resumes_after_interruption(tmp_path: Any, data: dict[str, Any]) -> None:
    pytest.importorskip("zarr")
    from dask.callbacks import Callback

    fp = data["mixed"]
    ref = pairwise(fp, channel_chunk=3, sample_chunk=24).compute()
    written: list[Any] = []

    class Writes(Callback):
        """Count written tiles; with ``kill_after``, stop the run as a killed process would."""

        def __init__(self, kill_after: int | None = None) -> None:
            super().__init__()
            self.kill_after = kill_after

        def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, id: Any) -> None:
            name = key[0] if isinstance(key, tuple) else key
            if str(name).startswith("pairwise-write"):
                written.append(key)
                if len(written) == self.kill_after:
                    raise _Interrupt

    path = tmp_path / "pw.zarr"
    # 4 diagonal tiles are written first, then 6 off-diagonal ones: stop in the middle
    # (synchronous scheduler: no task is still writing when the run stops)
    with Writes(kill_after=6), pytest.raises(_Interrupt), dask.config.set(scheduler="sync"):
        pairwise(fp, channel_chunk=3, sample_chunk=24, store=path)
    import zarr

    done = zarr.open_group(str(path), mode="r")["done_tiles"][:]
    n_done = int(done.sum())
    # of the 10 tiles a <= b of 4 x 4 (a tile and its mirror share one marker)
    assert n_done == 6
    # not a Pairwise dataset yet: open_dataset says so and what to do
    with pytest.raises(ValueError, match="unfinished: rerun pairwise/compare with the same"):
        open_dataset(path)
    written.clear()
    with Writes():
        resumed = pairwise(fp, channel_chunk=3, sample_chunk=24, store=path)
    assert len(written) == 10 - n_done  # only the missing tiles are computed
    for name in MEASURES:
        np.testing.assert_array_equal(resumed[name].values, ref[name].values, err_msg=name)
    xr.testing.assert_identical(open_dataset(path).compute(), ref)  # finished now
    # a third run computes nothing and gives the same result
    written.clear()
    with Writes():
        again = pairwise(fp, channel_chunk=3, sample_chunk=24, store=path)
    assert written == []
    xr.testing.assert_identical(again.drop_attrs(), resumed.drop_attrs())


_KILLED_CHILD = """
import os, sys
import dask, numpy as np, xarray as xr
from dask.callbacks import Callback
from ensemblex.io import open_dataset
from ensemblex.pairwise import STORE_KEY, STORE_VARIABLES, pairwise

fp = xr.open_dataset(sys.argv[1]).load()
count = 0


class Kill(Callback):
    def _posttask(self, key, result, dsk, state, id):
        global count
        name = key[0] if isinstance(key, tuple) else key
        if str(name).startswith("pairwise-write"):
            count += 1
            if count == 5:
                os._exit(9)  # as abrupt as SIGKILL: no cleanup, no exception


with Kill(), dask.config.set(scheduler="sync"):
    pairwise(fp, channel_chunk=3, sample_chunk=24, store=sys.argv[2])
"""


def test_store_resumes_after_the_process_is_killed(tmp_path: Any, data: dict[str, Any]) -> None:
    pytest.importorskip("zarr")
    import subprocess
    import sys

    fp = data["mixed"].drop_vars("bc")
    fp.to_netcdf(tmp_path / "fp.nc")
    path = tmp_path / "pw.zarr"
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED_CHILD, str(tmp_path / "fp.nc"), str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 9, proc.stderr
    import zarr

    assert int(zarr.open_group(str(path), mode="r")["done_tiles"][:].sum()) == 5
    with pytest.raises(ValueError, match="unfinished"):
        open_dataset(path)
    resumed = pairwise(fp, channel_chunk=3, sample_chunk=24, store=path)
    ref = pairwise(fp, channel_chunk=3, sample_chunk=24).compute()
    for name in MEASURES:
        np.testing.assert_array_equal(resumed[name].values, ref[name].values, err_msg=name)


def _without_bookkeeping(ds: xr.Dataset) -> xr.Dataset:
    ds = ds.drop_vars(STORE_VARIABLES)
    ds.attrs.pop(STORE_KEY)
    return ds


@pytest.mark.parametrize("against", [None, "labels"], ids=["symmetric", "other"])
def test_finished_store_is_the_pairwise_dataset(
    tmp_path: Any, data: dict[str, Any], against: str | None
) -> None:
    """xr.open_zarr and ensemblex.open_dataset read the store as the in-memory result."""
    pytest.importorskip("zarr")
    import zarr

    import ensemblex as ex

    fp, other = data["mixed"], (None if against is None else data["labels"])
    ref = pairwise(fp, other, channel_chunk=5, sample_chunk=24).compute()
    path = tmp_path / "pw.zarr"
    pairwise(fp, other, channel_chunk=5, sample_chunk=24, store=path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # consolidated metadata: no warning on opening
        raw = xr.open_zarr(path)
    assert set(STORE_VARIABLES) <= set(raw.data_vars)
    for disk in (_without_bookkeeping(raw), ex.open_dataset(path)):
        assert disk.attrs == ref.attrs  # the stamp: kind, version, title, min_info
        assert dict(disk.sizes) == dict(ref.sizes)
        assert set(disk.data_vars) == set(ref.data_vars)
        for name in disk.variables:  # every variable and coordinate: dims and dtype
            assert disk[name].dims == ref[name].dims, name
            assert disk[name].dtype == ref[name].dtype, name
            assert disk[name].attrs == ref[name].attrs, name
        xr.testing.assert_identical(disk.coords.to_dataset(), ref.coords.to_dataset())
        xr.testing.assert_allclose(disk.compute(), ref, rtol=0, atol=1e-6)
    # the whole matrix is on disk (the lower tiles too), with dimension names
    nmi = zarr.open_array(str(path / "nmi"), mode="r")
    assert tuple(nmi.metadata.dimension_names) == ("channel_a", "channel_b")
    np.testing.assert_array_equal(nmi[:], ref["nmi"].values)
    done = zarr.open_array(str(path / "done_tiles"), mode="r")
    assert tuple(done.metadata.dimension_names) == ("tile_a", "tile_b")
    # the finished store goes on: ensemblex.save writes it as netCDF4 unchanged
    ex.save(ex.open_dataset(path), tmp_path / "pw.nc")
    xr.testing.assert_identical(ex.open_dataset(tmp_path / "pw.nc").compute(), ref)


def test_store_on_distributed(tmp_path: Any, data: dict[str, Any], dask_client: Any) -> None:
    """Workers of a 2-process LocalCluster write the tiles; same numbers as threads."""
    pytest.importorskip("zarr")
    ref = pairwise(data["mixed"], channel_chunk=5).compute(scheduler="threads")
    with dask.config.set(scheduler=dask_client):
        pw = pairwise(data["mixed"], channel_chunk=5, store=tmp_path / "pw.zarr")
        got = pw.compute()
    for name in MEASURES:
        np.testing.assert_array_equal(got[name].values, ref[name].values, err_msg=name)


def test_store_refuses_a_different_computation(tmp_path: Any, data: dict[str, Any]) -> None:
    pytest.importorskip("zarr")
    path = tmp_path / "pw.zarr"
    first = pairwise(data["fp"], data["labels"], store=path)
    before = sorted((p.relative_to(path), p.stat().st_mtime_ns) for p in path.rglob("*"))
    with pytest.raises(ValueError, match="different pairwise computation.*min_info"):
        pairwise(data["fp"], data["labels"], min_info=0.2, store=path)
    changed = data["fp"].copy()
    changed["channel_mean"] = changed["channel_mean"] + 1.0
    with pytest.raises(ValueError, match="inputs_sha256"):
        pairwise(changed, data["labels"], store=path)
    after = sorted((p.relative_to(path), p.stat().st_mtime_ns) for p in path.rglob("*"))
    assert before == after  # nothing was overwritten
    import zarr

    # a store of the earlier layout (upper tiles only, no layout in its identity)
    old = tmp_path / "old.zarr"
    pairwise(data["fp"], data["labels"], store=old)
    group = zarr.open_group(str(old), mode="r+", use_consolidated=False)
    group.attrs[STORE_KEY] = {k: v for k, v in group.attrs[STORE_KEY].items() if k != "layout"}
    with pytest.raises(ValueError, match="differs in layout"):
        pairwise(data["fp"], data["labels"], store=old)
    np.testing.assert_array_equal(
        pairwise(data["fp"], data["labels"], store=path)["nmi"].values, first["nmi"].values
    )


def test_store_refuses_foreign_paths(tmp_path: Any, data: dict[str, Any]) -> None:
    pytest.importorskip("zarr")
    foreign = tmp_path / "notes.txt"
    foreign.write_text("mine")
    with pytest.raises(ValueError, match="not a Zarr store written by ensemblex"):
        pairwise(data["fp"], store=foreign)
    assert foreign.read_text() == "mine"
    import zarr

    other = zarr.open_group(str(tmp_path / "other.zarr"), mode="w")
    other.attrs["owner"] = "someone else"
    with pytest.raises(ValueError, match="not written by ensemblex.pairwise"):
        pairwise(data["fp"], store=tmp_path / "other.zarr")
    assert dict(zarr.open_group(str(tmp_path / "other.zarr")).attrs) == {"owner": "someone else"}


# -- bad inputs ---------------------------------------------------------------------------------


def test_bad_inputs_give_clear_errors(data: dict[str, Any]) -> None:
    fp = data["fp"]
    post = xr.Dataset({"mean": ("sample", [0.0, 1.0]), "logvar": ("sample", [0.0, 0.0])})
    with pytest.raises(TypeError, match="needs a Fingerprints dataset; got a Posteriors"):
        pairwise(post)
    with pytest.raises(TypeError, match="Fingerprints"):
        pairwise(fp, post)
    with pytest.raises(ValueError, match="same samples; got 48 and 47"):
        pairwise(
            fp,
            data["labels"].isel(
                sample=slice(1, None), sample_i=slice(1, None), sample_j=slice(1, None)
            ),
        )
    shifted = data["labels"].assign_coords(
        sample=data["labels"].sample + 100, sample_i=data["labels"].sample + 100
    )
    with pytest.raises(ValueError, match="differ first at position 0"):
        pairwise(fp, shifted)
    with pytest.raises(ValueError, match="min_info"):
        pairwise(fp, min_info=-1)
    with pytest.raises(ValueError, match="channel_chunk"):
        pairwise(fp, channel_chunk=0)
    with pytest.raises(ValueError, match="'channel_mean' needs dims"):
        pairwise(fp.rename_dims(component="dim"))
    with pytest.raises(ValueError, match="neither the parameters"):
        pairwise(fp.drop_vars(["channel_mean", "channel_logvar", "bc"]))


def test_non_finite_parameters_are_reported(data: dict[str, Any]) -> None:
    fp = data["fp"].copy()
    mean = fp["channel_mean"].values.copy()
    mean[2, 0, 5] = np.nan
    fp["channel_mean"] = fp["channel_mean"].copy(data=mean)
    with pytest.raises(ValueError, match="channel_mean has a non-finite value"):
        pairwise(fp).compute()


# -- GPU ----------------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(importlib.util.find_spec("cupy") is None, reason="CuPy is not installed")
def test_whole_path_on_cupy(data: dict[str, Any], tmp_path: Any) -> None:
    import cupy

    fp = data["mixed"].drop_vars("bc")
    for name in ("channel_mean", "channel_logvar", "channel_label"):
        fp[name] = fp[name].copy(data=cupy.asarray(fp[name].values))
    pw = pairwise(fp, channel_chunk=5)
    assert isinstance(pw["nmi"].data._meta, cupy.ndarray)
    got = pw.compute()
    assert isinstance(got["nmi"].data, cupy.ndarray)
    ref = _reference(data["bc_mixed"])
    for name in MEASURES:
        np.testing.assert_allclose(
            cupy.asnumpy(got[name].data), ref[name], atol=1e-4, equal_nan=True
        )
    stored = pairwise(fp, channel_chunk=5, store=tmp_path / "gpu.zarr")
    np.testing.assert_allclose(stored["nmi"].values, ref["nmi"], atol=1e-4, equal_nan=True)


def test_information_stays_within_its_range_for_collapsed_channels(rng):
    # collapsed channels (posterior = prior for every point) carry exactly 0 bits;
    # float32 rounding must not push them below 0, nor anything above log2 N
    n = 64
    mean = rng.normal(size=(3, 2, n))
    logvar = rng.uniform(-4, 0, size=(3, 2, n))
    mean[:, 1], logvar[:, 1] = 0.0, 0.0
    from ensemblex.posteriors import posteriors

    pw = posteriors(mean, logvar).repinfo.fingerprint().repinfo.pairwise().compute()
    for name in ("info_a", "repeat_info_a", "info_b", "repeat_info_b"):
        values = pw[name].values
        assert (values >= 0).all() and (values <= np.log2(n)).all(), name
    np.testing.assert_array_equal(pw["info_a"].values[1::2], 0.0)
    assert np.isnan(pw["nmi"].values[1::2]).all()


# -- reruns with other chunks, and what still makes a store another computation -------------


def _snapshot(path: Any) -> list[Any]:
    return sorted((p.relative_to(path), p.stat().st_mtime_ns) for p in path.rglob("*"))


def test_finished_store_is_usable_with_other_chunks(tmp_path: Any, data: dict[str, Any]) -> None:
    """Chunking does not change the numbers: a finished store is read, not refused."""
    pytest.importorskip("zarr")
    path = tmp_path / "pw.zarr"
    first = pairwise(data["mixed"], channel_chunk=5, sample_chunk=24, store=path).compute()
    before = _snapshot(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to say: the store is complete
        again = pairwise(data["mixed"], channel_chunk=3, sample_chunk=16, store=path).compute()
    assert _snapshot(path) == before  # nothing was rewritten
    xr.testing.assert_identical(again, first)


def test_unfinished_store_resumes_with_its_own_chunks(tmp_path: Any, data: dict[str, Any]) -> None:
    pytest.importorskip("zarr")
    from dask.callbacks import Callback

    class Stop(Callback):
        def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, id: Any) -> None:
            if str(key[0] if isinstance(key, tuple) else key).startswith("pairwise-write"):
                raise _Interrupt

    fp = data["mixed"]
    path = tmp_path / "pw.zarr"
    with Stop(), dask.config.set(scheduler="sync"), pytest.raises(_Interrupt):
        pairwise(fp, channel_chunk=3, sample_chunk=24, store=path)
    with pytest.warns(UserWarning, match=r"started with channel_chunk=3, sample_chunk=24"):
        resumed = pairwise(fp, channel_chunk=5, store=path)
    ref = pairwise(fp, channel_chunk=3, sample_chunk=24).compute()
    for name in MEASURES:
        np.testing.assert_array_equal(resumed[name].values, ref[name].values, err_msg=name)


def test_store_of_other_inputs_is_still_refused(tmp_path: Any, data: dict[str, Any]) -> None:
    """Other channels, other samples (N) or another min_info: refused, untouched."""
    pytest.importorskip("zarr")
    fp = data["mixed"]
    path = tmp_path / "pw.zarr"
    pairwise(fp, channel_chunk=5, store=path)
    before = _snapshot(path)
    fewer_samples = fp.isel(sample=slice(0, 40), sample_i=slice(0, 40), sample_j=slice(0, 40))
    others = {
        "inputs_sha256, shape": fp.isel(channel=slice(0, 8)),
        "inputs_sha256, n_samples": fewer_samples,
    }
    for differ, other in others.items():
        with pytest.raises(ValueError, match=f"differs in {differ}\\)"):
            pairwise(other, channel_chunk=5, store=path)
    with pytest.raises(ValueError, match=r"differs in min_info\)"):
        pairwise(fp, channel_chunk=3, min_info=0.5, store=path)
    assert _snapshot(path) == before


def test_store_identity_does_not_depend_on_chunks() -> None:
    from ensemblex.store import input_digest

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2500, 2, 7)).astype(np.float32)
    want = input_digest([x])
    for chunks in ((1000, 2, 7), (7, 1, 3), (2500, 2, 7)):
        assert input_digest([da.from_array(x, chunks=chunks)]) == want
    changed = x.copy()
    changed[-1, -1, -1] += 1
    assert input_digest([changed]) != want
    assert input_digest([x.astype(np.float64)]) != want


# -- inputs read where the work runs (dask.distributed) ---------------------------------------


class _ArrayBytes:
    """Pickle a graph as dask.distributed does, counting the bytes of NumPy arrays in it."""

    def __init__(self, collections: list[Any]) -> None:
        import io

        import cloudpickle

        counted = [0]

        class Pickler(cloudpickle.CloudPickler):
            def persistent_id(self, obj: Any) -> None:
                if isinstance(obj, np.ndarray):
                    counted[0] += obj.nbytes
                return None

        buf = io.BytesIO()
        Pickler(buf).dump(dict(dask.base.collections_to_expr(collections).__dask_graph__()))
        self.total, self.arrays = len(buf.getvalue()), counted[0]


def _posteriors_file(path: Any, n_models: int, n_latent: int = 10, n_samples: int = 64) -> Any:
    import ensemblex as ex

    rng = np.random.default_rng(n_models)
    mean = rng.normal(size=(n_models, n_latent, n_samples))
    logvar = rng.uniform(-4, 0, size=(n_models, n_latent, n_samples))
    return ex.save(ex.posteriors(mean, logvar), path)


@pytest.mark.parametrize("chunks", [None, {}], ids=["lazy", "chunks"])
def test_graph_from_a_file_holds_reads_not_values(tmp_path: Any, chunks: Any) -> None:
    """A few thousand channels from a netCDF file: kilobytes of graph, whatever C."""
    import ensemblex as ex

    sizes = {}
    for n_channels in (1000, 4000):
        path = _posteriors_file(tmp_path / f"post{n_channels}.nc", n_channels // 10)
        fp = ex.fingerprint(open_dataset(path, chunks=chunks))
        assert isinstance(fp["channel_mean"].data, da.Array)
        # the same tiling at both sizes: the graph differs only in what it carries
        pw = pairwise(fp, channel_chunk=n_channels // 2)
        sizes[n_channels] = _ArrayBytes([pw[name].data for name in pw.data_vars])
        # the in-memory route embeds the parameters: what this test guards against
        loaded = pairwise(ex.fingerprint(open_dataset(path).load()), channel_chunk=n_channels // 2)
        embedded = _ArrayBytes([loaded[name].data for name in loaded.data_vars])
        assert embedded.arrays >= 2 * n_channels * 64 * 4
    small, large = sizes[1000], sizes[4000]
    assert large.arrays < 10_000  # index arrays only, no parameters
    assert large.total < 200_000
    assert large.total - small.total < 10_000  # does not grow with C


def test_distributed_run_from_a_file_sends_no_large_graph(tmp_path: Any, dask_client: Any) -> None:
    """On a LocalCluster the client sends reads of the file; results equal the threads'."""
    import ensemblex as ex

    path = _posteriors_file(tmp_path / "post.nc", 100)
    ref = pairwise(ex.fingerprint(open_dataset(path).load())).compute(scheduler="threads")
    limit = {"distributed.admin.large-graph-warning-threshold": "200kB"}
    with dask.config.set(limit), dask.config.set(scheduler=dask_client):
        # the check can fail: in-memory parameters (512 kB) do travel in the graph
        with pytest.warns(UserWarning, match="Sending large graph"):
            pairwise(ex.fingerprint(open_dataset(path).load())).compute()
        with warnings.catch_warnings():
            warnings.filterwarnings("error", "Sending large graph")
            fp = ex.fingerprint(open_dataset(path))
            got = pairwise(fp).compute()
            stored = pairwise(fp, store=tmp_path / "pw.zarr").compute()
    for name in MEASURES:
        np.testing.assert_array_equal(got[name].values, ref[name].values, err_msg=name)
        np.testing.assert_array_equal(stored[name].values, ref[name].values, err_msg=name)


@pytest.mark.slow
def test_ten_thousand_channels_from_a_file_send_no_large_graph(
    tmp_path: Any, dask_client: Any
) -> None:
    """10,000 channels on a LocalCluster, Dask's own warning threshold: reads travel, not data.

    300 channels against all 10,000 (a rectangle keeps the result small); the
    same input held in memory (13 MB of parameters) does trigger the warning.
    """
    import ensemblex as ex

    path = _posteriors_file(tmp_path / "post.nc", 1000, n_samples=160)
    loaded = ex.fingerprint(open_dataset(path).load())
    few = loaded.isel(channel=slice(0, 300))
    ref = pairwise(few, other=loaded).compute(scheduler="threads")
    with dask.config.set(scheduler=dask_client):
        with pytest.warns(UserWarning, match="Sending large graph"):
            pairwise(few, other=loaded).compute()
        with warnings.catch_warnings():
            warnings.filterwarnings("error", "Sending large graph")
            fp = ex.fingerprint(open_dataset(path))
            assert fp.sizes["channel"] == 10_000
            got = pairwise(few, other=fp).compute()
    for name in MEASURES:
        np.testing.assert_array_equal(got[name].values, ref[name].values, err_msg=name)


# -- the registry: a stored measure is one entry ---------------------------------------------

_NEW_MEASURE_CHILD = """
import dataclasses, importlib, sys, tempfile, os
import numpy as np
import ensemblex.measures as measures

# one registry entry, nothing else: I(U; V), stored by the engine
entry = dataclasses.replace(measures.MEASURES["info"], name="shared", stored=True)
measures.MEASURES["shared"] = entry
measures.PAIRWISE_VARIABLES = (*measures.PAIRWISE_VARIABLES, "shared")
for name in ("ensemblex._kinds", "ensemblex.io", "ensemblex.pairwise"):
    importlib.reload(importlib.import_module(name))
import ensemblex as ex
from ensemblex.io import open_dataset
from ensemblex.pairwise import pairwise

rng = np.random.default_rng(0)
post = ex.posteriors(rng.normal(size=(3, 2, 30)), rng.uniform(-3, 0, size=(3, 2, 30)))
fp = ex.fingerprint(post)
lazy = pairwise(fp, channel_chunk=4).compute()
path = os.path.join(tempfile.mkdtemp(), "pw.zarr")
pairwise(fp, channel_chunk=4, store=path)
disk = open_dataset(path).compute()
want = lazy.info_a.values[:, None] + lazy.info_b.values[None] - lazy.joint_info.values
for ds in (lazy, disk):
    assert ds["shared"].dims == ("channel_a", "channel_b")
    assert ds["shared"].attrs["long_name"] == entry.long_name
    np.testing.assert_allclose(ds["shared"].values, want, atol=1e-5)
    np.testing.assert_array_equal(ds["nmi"].values, lazy["nmi"].values)
print("ok")
"""


def test_a_stored_measure_needs_only_its_registry_entry() -> None:
    """A new stored measure flows through the engine, the store and open_dataset."""
    pytest.importorskip("zarr")
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", _NEW_MEASURE_CHILD], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
