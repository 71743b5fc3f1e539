"""Offline datasets: dSprites factor grid, ring, digits, IDX (MNIST / Fashion-MNIST)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from ensemblex.datasets import dsprites as dsp
from ensemblex.datasets import iter_dsprites, load_dataset, read_idx, render_dsprites, write_idx
from ensemblex.datasets.idx import FASHION_CLASSES, idx_file_names

# -- dSprites ------------------------------------------------------------------------


def test_dsprites_factor_grid_is_exact():
    idx = dsp.select_dsprites()
    assert idx.size == 737_280 == dsp.N_IMAGES
    np.testing.assert_array_equal(idx, np.arange(737_280))
    labels = dsp.dsprites_labels(idx)
    assert labels.shape == (5, 737_280)
    for row, size in zip(labels, (3, 6, 40, 32, 32), strict=True):
        values, counts = np.unique(row, return_counts=True)
        np.testing.assert_array_equal(values, np.arange(size))
        assert (counts == 737_280 // size).all()
    # index order of the original: posY fastest, then posX, orientation, scale, shape
    np.testing.assert_array_equal(labels[4, :32], np.arange(32))
    assert (labels[3, :32] == 0).all() and labels[3, 32] == 1 and labels[4, 32] == 0
    assert labels[2, 1024] == 1 and labels[1, 40 * 1024] == 1 and labels[0, 240 * 1024] == 1
    values = dsp.dsprites_factor_values(labels[:, ::97])
    np.testing.assert_allclose(
        np.unique(dsp.dsprites_factor_values(np.array([[0, 1, 2, 0, 0, 0]] * 5))[0]), [1, 2, 3]
    )
    scales = dsp.dsprites_factor_values(
        np.stack([np.zeros(6, int), np.arange(6), *[np.zeros(6, int)] * 3])
    )[1]
    np.testing.assert_allclose(scales, np.linspace(0.5, 1.0, 6))
    assert values[2].min() >= 0 and values[2].max() <= 2 * np.pi
    orient = dsp.dsprites_factor_values(
        np.stack([np.zeros(40, int), np.zeros(40, int), np.arange(40), *[np.zeros(40, int)] * 2])
    )[2]
    assert orient[0] == 0 and np.isclose(orient[-1], 2 * np.pi)  # both ends included
    pos = dsp.dsprites_factor_values(
        np.stack([*[np.zeros(32, int)] * 3, np.arange(32), np.arange(32)])
    )
    np.testing.assert_allclose(pos[3], np.linspace(0, 1, 32))
    np.testing.assert_allclose(pos[4], np.linspace(0, 1, 32))


def test_dsprites_dataset_layout_and_repeatability():
    ds = load_dataset("dsprites", n_samples=50, seed=3)
    assert ds.images.shape == (50, 64, 64) and ds.images.dtype == np.uint8
    assert set(np.unique(ds.images.values)) <= {0, 1}
    assert ds.factor.values.tolist() == ["shape", "scale", "orientation", "posX", "posY"]
    assert ds.labels.dtype == np.int64 and ds.labels.dims == ("factor", "sample")
    np.testing.assert_array_equal(ds.labels.values, dsp.dsprites_labels(ds.sample.values))
    assert np.all(np.diff(ds.sample.values) > 0)  # kept in dataset order
    again = load_dataset("dsprites", n_samples=50, seed=3)
    np.testing.assert_array_equal(ds.images.values, again.images.values)
    other = load_dataset("dsprites", n_samples=50, seed=4)
    assert not np.array_equal(ds.sample.values, other.sample.values)
    # every image has its sprite inside the frame and nothing touching the border
    assert (ds.images.values.sum(axis=(1, 2)) > 0).all()
    assert ds.images.values[:, [0, -1], :].sum() == 0 and ds.images.values[:, :, [0, -1]].sum() == 0


def test_dsprites_subsets_by_factor_and_index():
    ds = load_dataset("dsprites", factors={"shape": 2, "scale": [0, 5], "posX": 3})
    assert ds.sizes["sample"] == 2 * 40 * 32
    assert (ds.labels.sel(factor="shape") == 2).all() and (ds.labels.sel(factor="posX") == 3).all()
    assert set(ds.labels.sel(factor="scale").values.tolist()) == {0, 5}
    ds2 = load_dataset("dsprites", indices=[7, 3, 737_279])
    assert ds2.sample.values.tolist() == [7, 3, 737_279]
    np.testing.assert_array_equal(ds2.images.values, render_dsprites([7, 3, 737_279]))
    with pytest.raises(ValueError, match="factor 'scale' has 6 values"):
        load_dataset("dsprites", factors={"scale": 6})
    with pytest.raises(ValueError, match="unknown dSprites factor"):
        load_dataset("dsprites", factors={"color": 0})
    with pytest.raises(ValueError, match=r"\[0, 737280\)"):
        load_dataset("dsprites", indices=[737_280])


def test_dsprites_geometry():
    def img(shape, scale, orient, px, py):
        return render_dsprites(
            np.ravel_multi_index((shape, scale, orient, px, py), dsp.FACTOR_SIZES)[None]
        )[0].astype(float)

    # areas: square (2R)^2, ellipse pi R (R/2), R = 10 * scale, rotation-invariant
    for scale_i, scale in ((0, 0.5), (5, 1.0)):
        r = 10 * scale
        assert abs(img(0, scale_i, 0, 10, 10).sum() - (2 * r) ** 2) <= 0.05 * (2 * r) ** 2
        ell = np.pi * r * r / 2
        for orient in (0, 7, 20):
            assert abs(img(1, scale_i, orient, 10, 10).sum() - ell) <= 0.12 * ell
            assert abs(img(0, scale_i, orient, 10, 10).sum() - (2 * r) ** 2) <= 0.12 * (2 * r) ** 2
    heart = img(2, 5, 0, 16, 16)
    assert 150 < heart.sum() < 400
    # the heart at orientation 0 is left-right symmetric about its centre column
    ys, xs = np.nonzero(heart)
    assert abs(xs.mean() + 0.5 - (16 + 32 * 16 / 31)) < 0.6
    # its point is at the bottom: the lower half is narrower than the upper half
    rows = heart.sum(axis=1)
    nz = np.flatnonzero(rows)
    assert rows[nz[-1]] < rows[nz[0] + 2]
    # position: the centroid follows posX (columns) and posY (rows)
    for px, py in ((0, 0), (31, 5), (12, 31)):
        ys, xs = np.nonzero(img(0, 2, 0, px, py))
        assert abs(xs.mean() + 0.5 - (16 + 32 * px / 31)) < 0.6
        assert abs(ys.mean() + 0.5 - (16 + 32 * py / 31)) < 0.6
    # orientation 0 and 2 pi (both in the grid) draw the same image
    np.testing.assert_array_equal(img(2, 3, 0, 5, 9), img(2, 3, 39, 5, 9))


def test_dsprites_other_resolution():
    idx = np.ravel_multi_index(
        ([0, 1, 2], [5, 5, 5], [7, 7, 7], [10, 3, 25], [20, 30, 1]), dsp.FACTOR_SIZES
    )
    ds = load_dataset("dsprites", indices=idx, size=32)
    assert ds.images.shape == (3, 32, 32)
    full = render_dsprites(idx).astype(float)
    # the same scene at half the resolution: about a quarter of the pixels
    ratio = ds.images.values.sum(axis=(1, 2)) / full.sum(axis=(1, 2))
    np.testing.assert_allclose(ratio, 0.25, atol=0.04)
    lazy = load_dataset("dsprites", indices=idx, size=32, lazy=True)
    np.testing.assert_array_equal(lazy.images.values, ds.images.values)


def test_dsprites_full_set_streams_lazily(no_compute):
    ds = load_dataset("dsprites")
    assert ds.images.shape == (737_280, 64, 64)
    assert hasattr(ds.images.data, "dask")
    assert ds.images.data.chunks[0][0] <= 4096
    chunks = list(iter_dsprites(batch_size=3, indices=[0, 100_000, 500_000, 737_279]))
    assert [c[0].tolist() for c in chunks] == [[0, 100_000, 500_000], [737_279]]


def test_dsprites_lazy_matches_eager():
    lazy = load_dataset("dsprites", factors={"shape": 1, "orientation": 3}, lazy=True)
    eager = load_dataset("dsprites", factors={"shape": 1, "orientation": 3}, lazy=False)
    sel = slice(100, 140)
    np.testing.assert_array_equal(lazy.images[sel].values, eager.images[sel].values)


# -- ring, digits ----------------------------------------------------------------------


def test_ring():
    ds = load_dataset("ring", n_samples=200, n_bins=4)
    x = ds.x.values
    assert x.shape == (200, 2) and x.dtype == np.float32
    np.testing.assert_allclose(np.hypot(x[:, 0], x[:, 1]), 1.0, rtol=1e-6)
    np.testing.assert_allclose(ds.angle.values, np.arange(200) * 2 * np.pi / 200, rtol=1e-6)
    assert ds.labels.values[0].tolist() == sorted(ds.labels.values[0].tolist())
    assert np.bincount(ds.labels.values[0]).tolist() == [50, 50, 50, 50]
    r1 = load_dataset("ring", n_samples=30, spacing="random", seed=5)
    r2 = load_dataset("ring", n_samples=30, spacing="random", seed=5)
    np.testing.assert_array_equal(r1.x.values, r2.x.values)
    assert load_dataset("ring").sizes["sample"] == 200


def test_digits():
    from sklearn.datasets import load_digits

    ds = load_dataset("digits", n_samples=40, seed=2)
    ref = load_digits()
    ids = ds.sample.values
    np.testing.assert_allclose(ds.images.values, ref.images[ids] / 16.0)
    np.testing.assert_array_equal(ds.labels.values[0], ref.target[ids])
    assert ds.factor.values.tolist() == ["digit"]
    big = load_dataset("digits", n_samples=40, seed=2, pad=4, size=32)
    assert big.images.shape == (40, 32, 32)
    assert float(big.images.min()) >= 0.0 and float(big.images.max()) <= 1.0
    assert float(big.images[:, :2, :].max()) == 0.0  # the padding stays blank
    assert load_dataset("digits").sizes["sample"] == 1797


# -- IDX -------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_from_idx_files(tmp_path, gz):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(12, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=12, dtype=np.uint8)
    suffix = ".gz" if gz else ""
    img_name, lab_name = idx_file_names("test")
    write_idx(tmp_path / f"{img_name}{suffix}", images)
    write_idx(tmp_path / f"{lab_name}{suffix}", labels)
    ds = load_dataset("mnist", path=tmp_path, split="test")
    np.testing.assert_allclose(ds.images.values, images / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ds.labels.values[0], labels)
    assert ds.images.dtype == np.float32 and ds.labels.dtype == np.int64
    sub = load_dataset("fashion_mnist", path=tmp_path, split="test", n_samples=5, seed=1)
    assert sub.sizes["sample"] == 5 and sub.attrs["class_names"] == list(FASHION_CLASSES)
    np.testing.assert_array_equal(sub.labels.values[0], labels[sub.sample.values])


def test_idx_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte, train-labels-idx1-ubyte"):
        load_dataset("mnist", path=tmp_path)
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(FileNotFoundError, match="no labels file"):
        load_dataset("mnist", path=tmp_path)
    with pytest.raises(ValueError, match="needs path="):
        load_dataset("mnist")


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_idx_round_trip(tmp_path, dtype):
    a = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    write_idx(tmp_path / "a.gz", a)
    b = read_idx(tmp_path / "a.gz")
    assert b.dtype == np.dtype(dtype) and b.shape == a.shape
    np.testing.assert_array_equal(a, b)


def test_idx_bad_file(tmp_path):
    (tmp_path / "junk").write_bytes(b"hello world")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "junk")


def test_bad_names_and_options():
    with pytest.raises(ValueError, match="name must be one of"):
        load_dataset("cifar")
    with pytest.raises(TypeError, match="options of each dataset"):
        load_dataset("ring", size=3)
    with pytest.raises(ValueError, match="exceeds"):
        load_dataset("digits", n_samples=5000)


def test_no_tensorflow_needed():
    code = (
        "import sys, ensemblex, ensemblex.datasets, ensemblex.models; "
        "ensemblex.load_dataset('ring', n_samples=3); "
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- rows of a dataset (what training reads) ---------------------------------------------


def test_rows_of_the_lazy_full_set_are_rendered_without_dask(no_compute):
    from ensemblex.datasets.rows import RenderedRows, gather_rows, split_data

    full = load_dataset("dsprites")
    arr, labels, names, ids = split_data(full.isel(sample=slice(5000, 5010)))
    assert isinstance(arr, RenderedRows) and arr.shape == (10, 64, 64)
    assert ids.tolist() == list(range(5000, 5010))
    assert names == list(dsp.FACTOR_NAMES) and labels.shape == (5, 10)
    rows = gather_rows(arr, np.array([3, 3, 0]))
    assert rows.dtype == np.float32
    np.testing.assert_array_equal(rows, render_dsprites([5003, 5003, 5000]).astype(np.float32))


def test_gather_rows_from_dask_numpy_and_plain_arrays():
    import dask.array as da

    from ensemblex.datasets.rows import gather_rows, split_data

    x = np.arange(40, dtype=np.float64).reshape(10, 4)
    idx = np.array([7, 2, 7, 0])
    want = x[idx].astype(np.float32)
    np.testing.assert_array_equal(gather_rows(da.from_array(x, chunks=3), idx), want)
    np.testing.assert_array_equal(gather_rows(x, idx), want)
    arr, labels, names, ids = split_data(x.tolist())
    assert arr.shape == (10, 4) and labels is None and names is None and ids is None
    with pytest.raises(ValueError, match="must hold 'images'"):
        split_data(load_dataset("ring", n_samples=4).rename(x="points"))


def test_resize_images_pools_blocks():
    from ensemblex.models import resize_images

    ds = load_dataset("dsprites", n_samples=6, seed=2)
    small = resize_images(ds, 16)
    assert small.images.shape == (6, 16, 16) and small.images.dtype == np.uint8
    # max pooling: a 4 x 4 block is on when any of its pixels is
    blocks = ds.images.values.reshape(6, 16, 4, 16, 4).max(axis=(2, 4))
    np.testing.assert_array_equal(small.images.values, blocks)
    assert small.attrs["image_size"] == 16
    digits = load_dataset("digits", n_samples=3, size=16)
    mean_pooled = resize_images(digits, 8).images.values
    np.testing.assert_allclose(
        mean_pooled, digits.images.values.reshape(3, 8, 2, 8, 2).mean(axis=(2, 4)), rtol=1e-6
    )
    ring = load_dataset("ring", n_samples=5)
    assert resize_images(ring, 4) is ring  # no images: as it is
    with pytest.raises(ValueError, match="must divide the image side"):
        resize_images(ds, 24)
