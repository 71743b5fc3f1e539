"""dSprites, regenerated procedurally from its documented factors.

The original dSprites set (Matthey et al. 2017) is every combination of five
factors rendered as a 64 x 64 binary image:

============  ======  ==========================================
factor        values  range
============  ======  ==========================================
shape         3       square, ellipse, heart
scale         6       0.5 .. 1.0 (linear)
orientation   40      0 .. 2 pi radians, both ends included
posX          32      0 .. 1, both ends included
posY          32      0 .. 1, both ends included
============  ======  ==========================================

3 x 6 x 40 x 32 x 32 = 737,280 images, in the original index order (posY
fastest, shape slowest). This module reproduces the **factor grid and its
order exactly, not the original pixels**: the sprites are drawn here from
simple geometry, so models trained on it are not comparable pixel for pixel
with models trained on the released file.

Geometry (pixel centres at ``i + 0.5``; ``x`` is the column, ``y`` the row,
growing downwards):

- the sprite's centre is at ``16 + 32 * posX`` (column) and ``16 + 32 * posY``
  (row), so every sprite stays inside the image at every orientation;
- its size is ``R = 10 * scale`` pixels: the square has half-side ``R``, the
  ellipse semi-axes ``R`` and ``R / 2``, the heart fits a box of half-width ``R``;
- it is rotated by ``orientation`` radians (counter-clockwise on screen);
- the heart is the region inside the parametric curve
  ``x(t) = 16 sin^3 t``, ``y(t) = 13 cos t - 5 cos 2t - 2 cos 3t - cos 4t``,
  ``t in [0, 2 pi)``, centred, scaled by ``1 / 16`` and drawn with its point
  downwards;
- a pixel is on (1) when its centre lies inside the rotated shape.

The full set never has to sit in memory: :func:`iter_dsprites` renders it
batch by batch, and ``load_dataset("dsprites")`` returns it Dask-backed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import InputError, InputTypeError

__all__ = [
    "FACTOR_NAMES",
    "FACTOR_SIZES",
    "N_IMAGES",
    "SHAPE_NAMES",
    "dsprites_factor_values",
    "dsprites_labels",
    "iter_dsprites",
    "render_dsprites",
    "select_dsprites",
]

FACTOR_NAMES: tuple[str, ...] = ("shape", "scale", "orientation", "posX", "posY")
FACTOR_SIZES: tuple[int, ...] = (3, 6, 40, 32, 32)
SHAPE_NAMES: tuple[str, ...] = ("square", "ellipse", "heart")
N_IMAGES = int(np.prod(FACTOR_SIZES))  # 737,280
IMAGE_SIZE = 64

_SCALES = np.linspace(0.5, 1.0, 6)
_ORIENTATIONS = np.linspace(0.0, 2.0 * np.pi, 40)
_POSITIONS = np.linspace(0.0, 1.0, 32)
_BASE_RADIUS = 10.0
_CENTRE_OFFSET = 16.0
_CENTRE_RANGE = 32.0
_HEART_RES = 512

_heart_table: np.ndarray | None = None


def _heart_mask() -> np.ndarray:
    """Inside-the-heart lookup table on a ``_HEART_RES``^2 grid over [-1, 1]^2."""
    global _heart_table
    if _heart_table is None:
        from matplotlib.path import Path

        t = np.linspace(0.0, 2.0 * np.pi, 720, endpoint=False)
        hx = 16.0 * np.sin(t) ** 3
        hy = 13.0 * np.cos(t) - 5.0 * np.cos(2 * t) - 2.0 * np.cos(3 * t) - np.cos(4 * t)
        hy = hy - 0.5 * (hy.max() + hy.min())  # centre vertically
        # scale into the unit box; flip so that the point is at the bottom of the image
        curve = np.stack([hx / 16.0, -hy / 16.0], axis=1)
        centres = (np.arange(_HEART_RES) + 0.5) / _HEART_RES * 2.0 - 1.0
        gx, gy = np.meshgrid(centres, centres)  # gx: column (u), gy: row (v)
        inside = Path(curve).contains_points(np.stack([gx.ravel(), gy.ravel()], axis=1))
        _heart_table = inside.reshape(_HEART_RES, _HEART_RES)
    return _heart_table


def _check_indices(indices: Any) -> np.ndarray:
    idx = np.asarray(indices)
    if idx.ndim != 1 or not (np.issubdtype(idx.dtype, np.integer) or idx.size == 0):
        raise InputTypeError(
            f"indices must be a 1-D array of integers; got {idx.dtype} {idx.shape}."
        )
    idx = idx.astype(np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= N_IMAGES):
        raise InputError(
            f"dSprites indices must lie in [0, {N_IMAGES}); got values from {idx.min()} "
            f"to {idx.max()}."
        )
    return idx


def dsprites_labels(indices: Any) -> np.ndarray:
    """Factor indices ``(5, n)`` (shape, scale, orientation, posX, posY) of flat indices.

    Examples
    --------
    >>> dsprites_labels([0, 1, 32, 737279]).tolist()
    [[0, 0, 0, 2], [0, 0, 0, 5], [0, 0, 0, 39], [0, 0, 1, 31], [0, 1, 0, 31]]
    """
    idx = _check_indices(indices)
    return np.stack(np.unravel_index(idx, FACTOR_SIZES)).astype(np.int64)


def dsprites_factor_values(labels: Any) -> np.ndarray:
    """Factor values ``(5, n)`` (float) of factor indices ``(5, n)``.

    Shape is given as 1, 2, 3 (square, ellipse, heart) as in the original file.

    Examples
    --------
    >>> dsprites_factor_values([[2], [5], [39], [31], [0]]).round(4).tolist()
    [[3.0], [1.0], [6.2832], [1.0], [0.0]]
    """
    lab = np.asarray(labels, dtype=np.int64)
    return np.stack(
        [
            lab[0] + 1.0,
            _SCALES[lab[1]],
            _ORIENTATIONS[lab[2]],
            _POSITIONS[lab[3]],
            _POSITIONS[lab[4]],
        ]
    )


def render_dsprites(indices: Any, size: int = IMAGE_SIZE) -> np.ndarray:
    """Render the images of flat dSprites indices: uint8 ``(n, size, size)`` of 0/1.

    ``size`` other than 64 draws the same scene at another resolution (all
    lengths scaled by ``size / 64``), e.g. 32 for a cheaper demo.

    Examples
    --------
    >>> img = render_dsprites([0, N_IMAGES - 1])
    >>> img.shape, img.dtype, sorted(set(img.ravel().tolist()))
    ((2, 64, 64), dtype('uint8'), [0, 1])
    >>> int(img[0].sum())          # a 10 x 10 square at scale 0.5
    100
    """
    from .._checks import check_positive_int

    idx = _check_indices(indices)
    size = check_positive_int("size", size, minimum=8)
    out = np.zeros((idx.size, size, size), dtype=np.uint8)
    # render in slices to bound the float temporaries (a few MB each)
    for start in range(0, idx.size, 512):
        out[start : start + 512] = _render(dsprites_labels(idx[start : start + 512]), size)
    return out


def _render(lab: np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
    shape, scale_i, orient_i, posx_i, posy_i = lab
    f = size / IMAGE_SIZE
    radius = (f * _BASE_RADIUS * _SCALES[scale_i]).astype(np.float32)[:, None, None]
    theta = _ORIENTATIONS[orient_i]
    cos = np.cos(theta).astype(np.float32)[:, None, None]
    sin = np.sin(theta).astype(np.float32)[:, None, None]
    cx = (f * (_CENTRE_OFFSET + _CENTRE_RANGE * _POSITIONS[posx_i])).astype(np.float32)
    cy = (f * (_CENTRE_OFFSET + _CENTRE_RANGE * _POSITIONS[posy_i])).astype(np.float32)
    cx, cy = cx[:, None, None], cy[:, None, None]
    pix = np.arange(size, dtype=np.float32) + 0.5
    dx = pix[None, None, :] - cx  # (n, 1, size): columns
    dy = pix[None, :, None] - cy  # (n, size, 1): rows
    # rotate the pixel offsets into the sprite's own frame, in units of R
    u = (cos * dx + sin * dy) / radius
    v = (-sin * dx + cos * dy) / radius
    inside = np.zeros(u.shape, dtype=bool)
    square = shape == 0
    if square.any():
        inside[square] = np.maximum(np.abs(u[square]), np.abs(v[square])) <= 1.0
    ellipse = shape == 1
    if ellipse.any():
        inside[ellipse] = u[ellipse] ** 2 + (2.0 * v[ellipse]) ** 2 <= 1.0
    heart = shape == 2
    if heart.any():
        table = _heart_mask()
        hu, hv = u[heart], v[heart]
        iu = np.floor((hu + 1.0) * 0.5 * _HEART_RES).astype(np.int64)
        iv = np.floor((hv + 1.0) * 0.5 * _HEART_RES).astype(np.int64)
        ok = (iu >= 0) & (iu < _HEART_RES) & (iv >= 0) & (iv < _HEART_RES)
        hit = np.zeros(hu.shape, dtype=bool)
        hit[ok] = table[iv[ok], iu[ok]]
        inside[heart] = hit
    return inside.astype(np.uint8)


def select_dsprites(
    factors: Mapping[str, int | Sequence[int]] | None = None,
    indices: Any = None,
) -> np.ndarray:
    """Flat indices of a subset of the factor grid, in the original order.

    Parameters
    ----------
    factors
        Restrict factors to some of their indices, e.g. ``{"shape": 2, "scale": [0, 5]}``;
        the selection is the product grid of the allowed values.
    indices
        Explicit flat indices instead (kept in the given order).

    Examples
    --------
    >>> select_dsprites({"shape": 2, "scale": 0, "orientation": 0, "posX": 0}).tolist()[:3]
    [491520, 491521, 491522]
    >>> select_dsprites({"shape": 1}).size
    245760
    """
    if indices is not None:
        if factors is not None:
            raise InputError("give either factors or indices, not both.")
        return _check_indices(indices)
    factors = dict(factors or {})
    unknown = set(factors) - set(FACTOR_NAMES)
    if unknown:
        raise InputError(
            f"unknown dSprites factor(s) {sorted(unknown)}; factors are {list(FACTOR_NAMES)}."
        )
    axes = []
    for name, size in zip(FACTOR_NAMES, FACTOR_SIZES, strict=True):
        if name in factors:
            allowed = np.unique(np.atleast_1d(np.asarray(factors[name], dtype=np.int64)))
            if allowed.size == 0 or allowed.min() < 0 or allowed.max() >= size:
                raise InputError(
                    f"factor {name!r} has {size} values (indices 0..{size - 1}); got "
                    f"{factors[name]!r}."
                )
            axes.append(allowed)
        else:
            axes.append(np.arange(size))
    grids = np.meshgrid(*axes, indexing="ij")
    return np.ravel_multi_index([g.ravel() for g in grids], FACTOR_SIZES).astype(np.int64)


def iter_dsprites(
    batch_size: int = 4096, indices: Any = None, size: int = IMAGE_SIZE
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Stream dSprites as ``(indices, images)`` batches without holding the set.

    Parameters
    ----------
    batch_size
        Images per batch.
    indices
        Flat indices to render (default: all 737,280, in the original order).
    size
        Image side (64; see :func:`render_dsprites`).

    Yields
    ------
    indices : np.ndarray
        int64 ``(b,)`` flat indices of the batch (factors: :func:`dsprites_labels`).
    images : np.ndarray
        uint8 ``(b, size, size)`` binary images.

    Examples
    --------
    >>> batches = iter_dsprites(batch_size=2, indices=[5, 6, 7])
    >>> [(i.tolist(), im.shape) for i, im in batches]
    [([5, 6], (2, 64, 64)), ([7], (1, 64, 64))]
    """
    from .._checks import check_positive_int

    batch_size = check_positive_int("batch_size", batch_size)
    idx = np.arange(N_IMAGES) if indices is None else _check_indices(indices)
    for start in range(0, idx.size, batch_size):
        chunk = idx[start : start + batch_size]
        yield chunk, render_dsprites(chunk, size)
