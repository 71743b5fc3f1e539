"""The Gram-form kernel of the pairwise engine: pure array math, no xarray, no Dask.

For a fixed sample row ``i``, ``sum_j BC^U_ij BC^V_ij`` for every pair of
channels ``(U, V)`` is a Gram matrix ``A_i @ B_i.T`` of the rows ``i`` of every
fingerprint (``docs/design.md`` section 1, "The kernel"). A task of the engine
owns a block of channels ``a``, a block of channels ``b`` and a block of rows
``i``; it generates the fingerprint rows it needs from the posterior parameters (never
reading a stored ``(channel, N, N)`` array), multiplies them row by row and
returns the float64 partial sum over its rows of ``log2(sum_j A_ij B_ij)``.

Layout and call shape (the choices and their measurements are in
``docs/notes/kernels.md``; ``benchmarks/pairwise.py`` re-measures them): the
rows of one sample ``i`` are generated as a contiguous ``(channel, j)`` matrix
and multiplied at once, in a Python loop over ``i`` of ``A_i @ B_i.T`` (the
design's ``(i, channel, j)`` layout, one ``i`` at a time so that the generated
rows stay in cache) into a preallocated buffer (``out=`` where the namespace
has it, so that no fresh ``(Ca, Cb)`` array is allocated per row; the rows
themselves are generated in place too, on NumPy by cache-sized blocks of
channels). A diagonal tile multiplies ``A_i @ A_i.T`` (NumPy uses SYRK).
Three facts keep the per-element work small next to the GEMM:

- every row sum is ``>= 1`` (the ``j = i`` term is ``1 * 1``) and ``<= N``, so
  the product of up to ``k = floor(log(max_float) / log(N)) - 1`` row sums
  cannot overflow: the kernel multiplies ``k`` Gram matrices elementwise and
  takes one ``log2`` per ``k`` rows, accumulating in float64;
- Bhattacharyya coefficients are generated as one exponential
  ``BC = exp(log(2 s_i s_j / (v_i + v_j)) / 2 - (mu_i - mu_j)^2 / (4 (v_i + v_j)))``
  (``v = exp(logvar)``, ``s = sqrt(v)``), the same coefficients as
  :func:`ensemblex.estimators.bhattacharyya_between` (to float32 rounding,
  tested) in fewer elementwise passes, with no validation per call; overflow
  is avoided by measuring every channel's variances relative to its largest
  one (BC is invariant to scaling all variances by ``c`` and all means by
  ``sqrt(c)``), so log-variances in ``[-30, 30]`` stay finite in float32;
- a padding component (mean 0, logvar 0 in the whole block) and a constant
  label row are factors of exactly 1 and are skipped;
- coefficients are floored at ``t = 2 sqrt(smallest normal)`` (about ``2e-19``
  in float32; :func:`floor_tiny` for stored fingerprints, the floored exponent
  for generated ones). Far-apart samples of a confident channel give
  coefficients like ``exp(-100)``, subnormal in float32: ``exp()`` then takes a
  slow path (ten times slower) and a GEMM over subnormal inputs or products
  runs several times slower on x86 (measured: 0.3 % subnormal inputs made a
  tile 4.5 times slower). With every coefficient ``>= t`` no input and no
  product of two inputs is subnormal, and every row sum (``>= 1``) changes by at
  most ``N * t``, far under its float32 rounding.

Every function takes its namespace from its inputs
(:func:`ensemblex._namespace.get_namespace`): NumPy, CuPy or a strict array-API
namespace.

Examples
--------
>>> import numpy as np
>>> from ensemblex._kernels import GaussianRows, tile_logsum
>>> mean = np.array([[[0.0, 0.0, 10.0, 10.0]]], dtype=np.float32)  # (channel, component, sample)
>>> rows = GaussianRows(mean, np.full_like(mean, -4.0))
>>> logsum = tile_logsum(rows, rows, 0, 4)              # sum_i log2(sum_j BC_ij^2)
>>> float(np.log2(4) - logsum[0, 0] / 4)                # J(U,U) in bits
1.0
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any, Protocol

from ._namespace import get_namespace, is_numpy_namespace
from .errors import InputError

__all__ = [
    "GaussianRows",
    "Rows",
    "StoredRows",
    "channel_logsums",
    "floor_threshold",
    "floor_tiny",
    "product_run",
    "tile_logsum",
]


#: bytes of one array of a row block that NumPy generates in place (fits a core's L2)
_CACHE_BYTES = 2**18


def floor_tiny(x: Any) -> Any:
    """``x`` with every value below ``t = 2 sqrt(smallest normal)`` of its dtype raised to ``t``.

    Keeps a GEMM over Bhattacharyya coefficients free of subnormal inputs and
    products (see the module notes); a change of ``2e-19`` or less per value is
    invisible next to a row sum of at least 1.

    Examples
    --------
    >>> import numpy as np
    >>> out = floor_tiny(np.array([1.0, 1e-20, 0.0, 0.5], dtype=np.float32))
    >>> out[[0, 3]].tolist(), bool((out[1:3] == 2 * np.sqrt(np.finfo(np.float32).tiny)).all())
    ([1.0, 0.5], True)
    """
    xp = get_namespace(x)
    return xp.maximum(x, xp.asarray(floor_threshold(xp, x.dtype), dtype=x.dtype))


def floor_threshold(xp: ModuleType, dtype: Any) -> float:
    """``2 sqrt(smallest normal)``: a product of two values above it is a normal number.

    The factor 2 leaves room for the rounding of ``exp(log t)``.
    """
    return 2.0 * math.sqrt(float(xp.finfo(dtype).smallest_normal))


class Rows(Protocol):
    """Fingerprint rows of a block of channels: ``row(i)`` is ``BC[:, i, :]``."""

    xp: ModuleType
    dtype: Any
    n_channels: int
    n_samples: int

    def row(self, i: int) -> Any:  # pragma: no cover - protocol
        """Row ``i`` of every channel's fingerprint, shape ``(channel, N)``."""
        ...


class GaussianRows:
    """Generate fingerprint rows from posterior parameters of a block of channels.

    Parameters
    ----------
    mean, logvar
        Shape ``(channel, component, sample)``; a channel is the product of its
        components' Bhattacharyya coefficients (a diagonal Gaussian in
        ``component`` dimensions). A component that is ``mean 0, logvar 0`` for
        every sample contributes a factor of exactly 1 and is skipped.
    label
        Optional integer labels ``(channel, sample)``: the row is multiplied by
        ``label_i == label_j``. A constant label row contributes a factor 1.

    Examples
    --------
    >>> import numpy as np
    >>> from ensemblex.estimators import bhattacharyya
    >>> m = np.array([[[0.0, 1.0, 3.0]]])
    >>> rows = GaussianRows(m, np.zeros_like(m))
    >>> bool(np.allclose(rows.row(1), bhattacharyya(m[0, 0], np.zeros(3))[1]))
    True
    """

    def __init__(self, mean: Any, logvar: Any, label: Any = None) -> None:
        xp = get_namespace(mean, logvar, label)
        if mean.ndim != 3 or tuple(mean.shape) != tuple(logvar.shape):
            raise InputError(
                "mean and logvar must both have shape (channel, component, sample); got "
                f"{tuple(mean.shape)} and {tuple(logvar.shape)}."
            )
        dtype = mean.dtype if xp.isdtype(mean.dtype, "real floating") else xp.float64
        mean = xp.astype(mean, dtype)
        logvar = xp.astype(logvar, dtype)
        self.xp, self.dtype = xp, dtype
        self.n_channels, n_comp, self.n_samples = (int(s) for s in mean.shape)
        # Padding components (mean 0, logvar 0 everywhere in this block) give
        # BC factors of exactly 1: skip them instead of computing ones.
        self._comps: list[tuple[Any, Any, Any]] = []
        for k in range(n_comp):
            mk, lk = mean[:, k, :], logvar[:, k, :]
            if not bool(xp.any(mk != 0) or xp.any(lk != 0)):
                continue
            # Scale invariance: v -> v / c, mu -> mu / sqrt(c) with c the channel's
            # largest variance keeps every v in (0, 1], so exp() cannot overflow.
            shift = xp.max(lk, axis=1, keepdims=True)
            rel = lk - shift
            std = xp.exp(0.5 * rel)  # s, relative
            half_mean = (0.5 * xp.exp(-0.5 * shift)) * mk  # mu / (2 sqrt(c))
            self._comps.append((half_mean, std * std, std))
        self._log_threshold = math.log(floor_threshold(xp, dtype))
        self._label = None
        if label is not None:
            if tuple(label.shape) != (self.n_channels, self.n_samples):
                raise InputError(
                    f"label must have shape (channel, sample) = "
                    f"{(self.n_channels, self.n_samples)}; got {tuple(label.shape)}."
                )
            # a constant label row is a factor of 1 for every pair: skip the block
            if not bool(xp.all(label == label[:, :1])):
                self._label = label
        # NumPy and CuPy compute a row in place (out=); NumPy by blocks of channels
        # whose arrays stay in the core's cache, which made a row about 1.3 times
        # faster than whole-block passes (docs/notes/kernels.md)
        self._in_place = _supports_out(xp)
        width = self.n_samples * (xp.finfo(dtype).bits // 8)
        step = max(1, _CACHE_BYTES // width) if is_numpy_namespace(xp) else self.n_channels
        self._blocks = [
            (a, min(a + step, self.n_channels)) for a in range(0, self.n_channels, step)
        ]

    def row(self, i: int) -> Any:
        """Row ``i`` of every channel's fingerprint, shape ``(channel, N)``, in ``dtype``.

        Per component, with relative variances ``v`` and standard deviations ``s``
        and half means ``h = mu / 2``: ``log BC_ij = log(2 s_i s_j / (v_i + v_j)) / 2
        - (h_i - h_j)^2 / (v_i + v_j)`` (the ratio is formed before its log, so
        large log-variances lose no precision); the components' logs add up.
        One exponential, floored: BC = exp(max(expo, log t)), t = 2 sqrt(smallest
        normal). exp() of a very negative number takes a slow path (subnormal
        results, ten times slower), and a GEMM over subnormal inputs or products is
        several times slower on x86; with every coefficient >= t no input and no
        product of two inputs is subnormal. The floor changes a row sum (>= 1) by at
        most N * t (N * 2e-19 in float32), far below its rounding.
        """
        xp = self.xp
        if not self._comps:
            # no Gaussian component in this block (label channels): factor 1
            out = xp.ones((self.n_channels, self.n_samples), dtype=self.dtype)
        elif self._in_place:
            out = xp.empty((self.n_channels, self.n_samples), dtype=self.dtype)
            size = self._blocks[0][1]
            buffers = [xp.empty((size, self.n_samples), dtype=self.dtype) for _ in range(3)]
            for a, b in self._blocks:
                self._row_into(i, a, b, out[a:b], [x[: b - a] for x in buffers])
        else:
            expo = None
            for half_mean, var, std in self._comps:
                inv = 1.0 / (var + var[:, i : i + 1])  # 1 / (v_i + v_j)
                diff = half_mean - half_mean[:, i : i + 1]
                log_bc = 0.5 * xp.log((std * (2.0 * std[:, i : i + 1])) * inv) - diff * diff * inv
                expo = log_bc if expo is None else expo + log_bc
            out = xp.exp(xp.maximum(expo, xp.asarray(self._log_threshold, dtype=self.dtype)))
        if self._label is not None:
            same = self._label == self._label[:, i : i + 1]
            out *= xp.astype(same, self.dtype)
        return out

    def _row_into(self, i: int, a: int, b: int, out: Any, buffers: list[Any]) -> None:
        """Channels ``a:b`` of row ``i`` into ``out``, in place (NumPy, CuPy): the
        generic path's arithmetic without a fresh array per operation."""
        xp = self.xp
        inv, ratio, extra = buffers
        for k, (half_mean, var, std) in enumerate(self._comps):
            e = out if k == 0 else extra
            xp.add(var[a:b], var[a:b, i : i + 1], out=inv)
            xp.divide(1.0, inv, out=inv)  # 1 / (v_i + v_j)
            xp.multiply(std[a:b], 2.0 * std[a:b, i : i + 1], out=ratio)
            ratio *= inv  # 2 s_i s_j / (v_i + v_j), in (0, 1]
            xp.log(ratio, out=ratio)
            ratio *= 0.5
            xp.subtract(half_mean[a:b], half_mean[a:b, i : i + 1], out=e)
            e *= e
            e *= inv
            xp.subtract(ratio, e, out=e)
            if k:
                out += e
        xp.maximum(out, self._log_threshold, out=out)
        xp.exp(out, out=out)


class StoredRows:
    """Fingerprint rows read from a stored block ``bc[channel, sample_i, sample_j]``.

    ``bc`` holds rows ``offset .. offset + bc.shape[1]`` of every channel's
    fingerprint (all ``N`` columns).

    Examples
    --------
    >>> import numpy as np
    >>> rows = StoredRows(np.ones((2, 1, 3)), offset=4)
    >>> rows.row(4).shape
    (2, 3)
    """

    def __init__(self, bc: Any, offset: int = 0) -> None:
        xp = get_namespace(bc)
        if bc.ndim != 3:
            raise InputError(
                f"bc must have shape (channel, sample_i, sample_j); got {tuple(bc.shape)}."
            )
        self.xp, self.dtype = xp, bc.dtype
        self.n_channels, self._n_rows, self.n_samples = (int(s) for s in bc.shape)
        self._bc, self._offset = bc, int(offset)

    def row(self, i: int) -> Any:
        """Row ``i`` (global index) of every channel, shape ``(channel, N)``."""
        k = i - self._offset
        if not 0 <= k < self._n_rows:
            raise IndexError(
                f"row {i} is not in this block (rows {self._offset}..{self._offset + self._n_rows - 1})."
            )
        return floor_tiny(self._bc[:, k, :])


def product_run(n_samples: int, xp: ModuleType, dtype: Any) -> int:
    """How many row sums (each in ``[1, N]``) can be multiplied without overflow.

    Examples
    --------
    >>> import array_api_compat.numpy as xp
    >>> product_run(300, xp, xp.float32)
    14
    >>> product_run(2, xp, xp.float32) > product_run(300, xp, xp.float32)
    True
    """
    # one spare factor for the rounding of the matrix product (sums can exceed N by ulps)
    log_max = math.log(float(xp.finfo(dtype).max))
    return max(1, math.floor(log_max / math.log(max(n_samples, 2) * 1.01)) - 1)


def tile_logsum(
    a: Rows,
    b: Rows | None,
    start: int,
    stop: int,
    *,
    augment: bool = False,
    channel_sums: tuple[bool, bool] | None = None,
) -> Any:
    """``sum_{start <= i < stop} log2(sum_j A_ij B_ij)`` for every channel pair.

    Parameters
    ----------
    a, b
        Rows of channel blocks ``a`` and ``b`` over the same N samples;
        ``b=None`` pairs ``a`` with itself (a diagonal tile: rows generated once).
    start, stop
        The block of sample rows ``i``.
    augment
        Append a constant channel (a row of ones) to both blocks: the extra
        column holds ``sum_i log2(sum_j A_ij)`` of every channel of ``a`` (its
        information) and the extra row that of ``b``, for one more row and column
        of the same product (no second pass that regenerates the rows).
    channel_sums
        ``(for a, for b)``: also return the per-channel sums of
        :func:`channel_logsums` of block ``a`` (two more columns) and of block
        ``b`` (two more rows), from the rows this tile generates anyway (no
        second pass over them); a side not asked for has zeros there. Not with
        ``augment``.

    Returns
    -------
    array, shape ``(a.n_channels, b.n_channels)`` (``+ 1`` each with ``augment``, ``+ 2``
    each with ``channel_sums``), float64
        The joint information is ``log2(N) - (sum over all i) / N``.

    Examples
    --------
    >>> import numpy as np
    >>> lab = np.array([[0, 0, 1, 1], [0, 1, 0, 1]])            # two label channels
    >>> rows = GaussianRows(np.zeros((2, 0, 4)), np.zeros((2, 0, 4)), label=lab)
    >>> (2.0 - tile_logsum(rows, None, 0, 4) / 4).tolist()     # J in bits
    [[1.0, 2.0], [2.0, 1.0]]
    """
    xp = a.xp
    if b is not None and b.n_samples != a.n_samples:
        raise InputError(
            f"channel blocks must share the samples; got N={a.n_samples} and N={b.n_samples}."
        )
    if augment and channel_sums is not None:
        raise InputError("tile_logsum: augment and channel_sums do not go together.")
    dtype = a.dtype if b is None else xp.result_type(a.dtype, b.dtype)
    sums_a, sums_b = channel_sums if channel_sums is not None else (False, False)
    side_a = xp.zeros((2, a.n_channels), dtype=xp.float64) if sums_a else None
    side_b = xp.zeros((2, (a if b is None else b).n_channels), dtype=xp.float64) if sums_b else None
    extra = 1 if augment else 0
    n_a = a.n_channels + extra
    n_b = (a.n_channels if b is None else b.n_channels) + extra
    acc = xp.zeros((n_a, n_b), dtype=xp.float64)
    run = product_run(a.n_samples, xp, dtype)
    # NumPy and CuPy write the Gram matrix into a preallocated buffer: a fresh
    # (Ca, Cb) array per row costs page faults comparable to the product itself
    buffers = _supports_out(xp)
    if buffers:
        prod = xp.empty((n_a, n_b), dtype=dtype)
        gram = xp.empty((n_a, n_b), dtype=dtype)
    if augment:
        # rows of the constant channel: BC = 1 everywhere
        aug_a = xp.ones((n_a, a.n_samples), dtype=dtype)
        aug_b = aug_a if b is None else xp.ones((n_b, a.n_samples), dtype=dtype)
    count = 0
    for i in range(start, stop):
        rows_a = a.row(i)
        rows_b = rows_a if b is None else b.row(i)
        if side_a is not None:  # in the rows' own dtype, as channel_logsums
            side_a += _row_logsums(xp, rows_a)
        if side_b is not None:
            side_b += _row_logsums(xp, rows_b)
        if rows_a.dtype != dtype:
            rows_a = xp.astype(rows_a, dtype)
        if rows_b.dtype != dtype:
            rows_b = xp.astype(rows_b, dtype)
        if augment:
            aug_a[: n_a - 1, :] = rows_a
            rows_a = aug_a
            if b is None:
                rows_b = aug_a
            else:
                aug_b[: n_b - 1, :] = rows_b
                rows_b = aug_b
        rows_bt = xp.matrix_transpose(rows_b)
        # sum_j A_ij B_ij >= 1: a product of `run` of them stays finite
        if buffers:
            xp.matmul(rows_a, rows_bt, out=prod if count == 0 else gram)
            if count:
                prod *= gram
        elif count == 0:
            prod = xp.matmul(rows_a, rows_bt)
        else:
            prod *= xp.matmul(rows_a, rows_bt)
        count += 1
        if count == run or i == stop - 1:
            acc += xp.log2(prod)  # float32 logs, float64 accumulation
            count = 0
    if channel_sums is None:
        return acc
    zeros = xp.zeros
    cols = side_a.T if side_a is not None else zeros((n_a, 2), dtype=xp.float64)
    rows = side_b if side_b is not None else zeros((2, n_b), dtype=xp.float64)
    top = xp.concat([acc, cols], axis=1)
    bottom = xp.concat([rows, zeros((2, 2), dtype=xp.float64)], axis=1)
    return xp.concat([top, bottom], axis=0)


def _row_logsums(xp: ModuleType, rows: Any) -> Any:
    """``(2, channel)`` float64: ``log2 sum_j R_ij`` and ``log2 sum_j R_ij^2`` of one row ``i``."""
    return xp.stack(
        [
            xp.astype(xp.log2(xp.sum(rows, axis=1)), xp.float64),
            xp.astype(xp.log2(xp.sum(rows * rows, axis=1)), xp.float64),
        ]
    )


def _supports_out(xp: ModuleType) -> bool:
    """Whether ``xp.matmul`` takes ``out=`` (NumPy and CuPy; not the strict standard)."""
    import array_api_compat

    return bool(array_api_compat.is_numpy_namespace(xp) or array_api_compat.is_cupy_namespace(xp))


def channel_logsums(a: Rows, start: int, stop: int) -> Any:
    """Per-channel partial sums over rows ``start..stop`` for info and repeat info.

    Returns a float64 array of shape ``(2, channel)``: row 0 is
    ``sum_i log2(sum_j BC_ij)`` (information), row 1 is
    ``sum_i log2(sum_j BC_ij^2)`` (the repeat term ``J(U, U')``). Both sums are
    over terms ``>= 0`` because every row sum is ``>= 1``.

    Examples
    --------
    >>> import numpy as np
    >>> rows = GaussianRows(np.zeros((1, 0, 4)), np.zeros((1, 0, 4)), label=np.array([[0, 0, 1, 1]]))
    >>> (2.0 - channel_logsums(rows, 0, 4) / 4).tolist()    # I = J(U,U) = 1 bit
    [[1.0], [1.0]]
    """
    xp = a.xp
    out = xp.zeros((2, a.n_channels), dtype=xp.float64)
    for i in range(start, stop):
        out += _row_logsums(xp, a.row(i))
    return out
