"""Exact estimators of docs/design.md section 1: pure array math, no xarray.

Every function takes the array namespace of its inputs (NumPy, CuPy or any
array-API namespace) and never calls ``np.`` on data. All information is in
bits.

A *fingerprint* is the ``(N, N)`` matrix of Bhattacharyya coefficients
``BC_ij = BC(p(u|x_i), p(u|x_j))`` of one channel over N data points; leading
axes batch channels.

Examples
--------
>>> import numpy as np
>>> from ensemblex.estimators import bhattacharyya, information
>>> mean = np.array([0.0, 0.0, 10.0, 10.0])
>>> bc = bhattacharyya(mean, np.full(4, -4.0))    # two well separated pairs
>>> round(float(information(bc)), 6)              # one bit: which pair
1.0
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

from ._checks import check_finite, check_positive_int, check_probability
from ._namespace import get_namespace
from .errors import InputError, InputTypeError

__all__ = [
    "MIN_INFO",
    "bhattacharyya",
    "bhattacharyya_between",
    "information",
    "information_bounds",
    "joint_information",
    "kl_coefficients",
    "label_coefficients",
    "monte_carlo_information",
    "nmi",
    "vi",
]

_LN2 = math.log(2.0)
_LOG_2PI = math.log(2.0 * math.pi)

#: default information threshold (bits) under which a channel's NMI is undefined
MIN_INFO = 0.01


# -- helpers -------------------------------------------------------------------------


def _float_dtype(xp: ModuleType, *arrays: Any) -> Any:
    dtype = xp.result_type(*arrays)
    if xp.isdtype(dtype, "real floating"):
        return dtype
    return xp.float64


def _gaussian_inputs(
    mean: Any, logvar: Any, multivariate: bool, suffix: str = ""
) -> tuple[ModuleType, Any, Any]:
    """Validate and return ``(xp, mean, logvar)`` as ``(..., N, d)`` floating arrays."""
    xp = get_namespace(mean, logvar)
    m_name, lv_name = f"mean{suffix}", f"logvar{suffix}"
    if mean.shape != logvar.shape:
        raise InputError(
            f"{m_name} and {lv_name} must have the same shape; got {tuple(mean.shape)} and "
            f"{tuple(logvar.shape)}."
        )
    min_ndim = 2 if multivariate else 1
    if mean.ndim < min_ndim:
        layout = "(..., N, d)" if multivariate else "(..., N)"
        raise InputError(
            f"{m_name} and {lv_name} must have shape {layout}; got {tuple(mean.shape)}."
        )
    if multivariate and mean.shape[-1] == 0:
        raise InputError(
            f"{m_name} has d=0 components on its last axis; a channel needs at least one."
        )
    dtype = _float_dtype(xp, mean, logvar)
    mean = xp.astype(mean, dtype, copy=False)
    logvar = xp.astype(logvar, dtype, copy=False)
    # positions are reported in the caller's own layout (before any axis is added)
    check_finite(xp, mean, m_name)
    check_finite(xp, logvar, lv_name)
    if not multivariate:
        mean = xp.expand_dims(mean, axis=-1)
        logvar = xp.expand_dims(logvar, axis=-1)
    return xp, mean, logvar


def _pairs(x: Any, xp: ModuleType) -> tuple[Any, Any]:
    """``(..., N, d)`` -> broadcastable ``(..., N, 1, d)`` and ``(..., 1, N, d)``."""
    return xp.expand_dims(x, axis=-2), xp.expand_dims(x, axis=-3)


# -- coefficient matrices ------------------------------------------------------------


def _bc_between(xp: ModuleType, mu_i: Any, lv_i: Any, mu_j: Any, lv_j: Any) -> Any:
    """BC of ``(..., Na, 1, d)`` against ``(..., 1, Nb, d)`` posteriors: ``(..., Na, Nb)``."""
    # With m = max(lv_i, lv_j), delta = |lv_i - lv_j| and em = expm1(-delta):
    #   8 sbar^2 = 4 exp(m) (2 + em),
    #   1/2 ln(sbar^2 / (s_i s_j)) = 1/2 ln cosh(delta / 2) = delta / 4 + 1/2 log1p(em / 2),
    # so no variance is exponentiated before the ratio is formed, and delta = 0 gives
    # exactly 0 (BC_ii == 1 in float32 too). D_B is accurate to rounding in absolute
    # terms, which is what BC = exp(-D_B) needs.
    # The d components are accumulated one at a time: no (Na, Nb, d) temporaries and
    # no reduction over a short, strided last axis.
    distance = None
    for k in range(int(mu_i.shape[-1])):
        a_lv, b_lv = lv_i[..., k], lv_j[..., k]
        delta = xp.abs(a_lv - b_lv)
        em = xp.expm1(-delta)
        # scale the difference before squaring: no overflow for huge means or variances
        scaled = (mu_i[..., k] - mu_j[..., k]) * xp.exp(-0.5 * xp.maximum(a_lv, b_lv))
        term = scaled * scaled / (4 * (2 + em)) + (0.25 * delta + 0.5 * xp.log1p(0.5 * em))
        distance = term if distance is None else distance + term
    # both terms are >= 0 in exact arithmetic; clip rounding so that BC <= 1
    distance = xp.maximum(distance, xp.zeros_like(distance))
    return xp.exp(-distance)


def bhattacharyya(mean: Any, logvar: Any, *, multivariate: bool = False) -> Any:
    """Bhattacharyya coefficients between the diagonal-Gaussian posteriors of N points.

    Parameters
    ----------
    mean, logvar
        Posterior means and log-variances, shape ``(..., N)`` for a 1-D channel
        or ``(..., N, d)`` with ``multivariate=True`` for a d-dimensional one.
    multivariate
        Whether the last axis holds the d components of one posterior.

    Returns
    -------
    array, shape ``(..., N, N)``
        ``BC_ij = exp(-D_B)`` in ``[0, 1]``, symmetric, ones on the diagonal;
        the dtype of the inputs (float32 in, float32 out).

    Notes
    -----
    With ``m = max(lv_i, lv_j)`` and ``delta = |lv_i - lv_j|`` the distance is
    evaluated without exponentiating large log-variances::

        (mu_i - mu_j)^2 / (8 sbar^2) = ((mu_i - mu_j) exp(-m/2))^2 / (4 (1 + exp(-delta)))
        1/2 ln(sbar^2 / (s_i s_j))   = 1/2 ln cosh(delta / 2)
                                     = delta / 4 + 1/2 log1p(expm1(-delta) / 2)

    so log-variances in [-30, 30] and means of 1e6 give finite results in
    float32, and the coefficients agree with the textbook formula to rounding.

    Examples
    --------
    >>> import numpy as np
    >>> bc = bhattacharyya(np.array([0.0, 1.0]), np.zeros(2))
    >>> bc.round(4).tolist()
    [[1.0, 0.8825], [0.8825, 1.0]]
    >>> bhattacharyya(np.zeros((2, 3)), np.zeros((2, 3)), multivariate=True).shape
    (2, 2)
    """
    xp, mean, logvar = _gaussian_inputs(mean, logvar, multivariate)
    mu_i, mu_j = _pairs(mean, xp)
    lv_i, lv_j = _pairs(logvar, xp)
    return _bc_between(xp, mu_i, lv_i, mu_j, lv_j)


def bhattacharyya_between(
    mean_a: Any,
    logvar_a: Any,
    mean_b: Any,
    logvar_b: Any,
    *,
    multivariate: bool = False,
) -> Any:
    """Bhattacharyya coefficients between two sets of points of the same channels.

    ``mean_a``, ``logvar_a`` of shape ``(..., Na)`` (or ``(..., Na, d)``) and
    ``mean_b``, ``logvar_b`` of shape ``(..., Nb)`` give ``(..., Na, Nb)``:
    a block of rows of a fingerprint, as the streaming engine needs it. Leading
    axes broadcast; the two sides are promoted to a common floating dtype.

    Parameters
    ----------
    mean_a, logvar_a
        Posteriors of the row points, ``(..., Na)`` or ``(..., Na, d)``.
    mean_b, logvar_b
        Posteriors of the column points, ``(..., Nb)`` or ``(..., Nb, d)``.
    multivariate
        Whether the last axis holds the d components of one posterior.

    Returns
    -------
    array, shape ``(..., Na, Nb)``
        Exactly the entries of :func:`bhattacharyya` for those rows and columns.

    Examples
    --------
    >>> import numpy as np
    >>> m, lv = np.array([0.0, 1.0, 2.0]), np.zeros(3)
    >>> rows = bhattacharyya_between(m[:1], lv[:1], m, lv)
    >>> bool(np.allclose(rows, bhattacharyya(m, lv)[:1]))
    True
    """
    get_namespace(mean_a, logvar_a, mean_b, logvar_b)  # one array library for both sides
    xp, mean_a, logvar_a = _gaussian_inputs(mean_a, logvar_a, multivariate, suffix="_a")
    _, mean_b, logvar_b = _gaussian_inputs(mean_b, logvar_b, multivariate, suffix="_b")
    dtype = xp.result_type(mean_a, mean_b)
    mean_a, logvar_a, mean_b, logvar_b = (
        xp.astype(x, dtype, copy=False) for x in (mean_a, logvar_a, mean_b, logvar_b)
    )
    return _bc_between(
        xp,
        xp.expand_dims(mean_a, axis=-2),
        xp.expand_dims(logvar_a, axis=-2),
        xp.expand_dims(mean_b, axis=-3),
        xp.expand_dims(logvar_b, axis=-3),
    )


def kl_coefficients(mean: Any, logvar: Any, *, multivariate: bool = False) -> Any:
    """``exp(-KL(p_i || p_j))`` between the diagonal-Gaussian posteriors of N points.

    The coefficients of the Kolchinsky-Tracey *upper* bound. Not symmetric:
    row ``i`` holds ``KL(p_i || p_j)`` for every ``j``. Shapes as in
    :func:`bhattacharyya`.

    Examples
    --------
    >>> import numpy as np
    >>> k = kl_coefficients(np.array([0.0, 1.0]), np.zeros(2))
    >>> k.round(4).tolist()                # exp(-1/2) off the diagonal
    [[1.0, 0.6065], [0.6065, 1.0]]
    """
    xp, mean, logvar = _gaussian_inputs(mean, logvar, multivariate)
    mu_i, mu_j = _pairs(mean, xp)
    lv_i, lv_j = _pairs(logvar, xp)
    kl = None
    for k in range(int(mean.shape[-1])):
        # KL(p_i || p_j) = 1/2 [(exp(r) - 1 - r) + (mu_i - mu_j)^2 / s_j^2],  r = lv_i - lv_j;
        # expm1 keeps the first term accurate when the variances are close
        r = lv_i[..., k] - lv_j[..., k]
        scaled = (mu_i[..., k] - mu_j[..., k]) * xp.exp(-0.5 * lv_j[..., k])
        term = 0.5 * ((xp.expm1(r) - r) + scaled * scaled)
        kl = term if kl is None else kl + term
    kl = xp.maximum(kl, xp.zeros_like(kl))
    return xp.exp(-kl)


def label_coefficients(labels: Any, other: Any = None, *, dtype: Any = None) -> Any:
    """Fingerprint of a hard clustering: ``1`` where two points share a label, else ``0``.

    Parameters
    ----------
    labels
        Integer labels, shape ``(..., N)``.
    other
        Labels of a second set of points, ``(..., M)``; gives the ``(..., N, M)``
        block between the two sets (rows of a fingerprint). Default: ``labels``.
    dtype
        Floating dtype of the result; float64 by default (pass float32 for
        fingerprints that are stored or multiplied in float32).

    Examples
    --------
    >>> import numpy as np
    >>> label_coefficients(np.array([0, 0, 1])).tolist()
    [[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    xp = get_namespace(labels, other)
    other_given = other is not None
    other = labels if other is None else other
    for name, lab in (("labels", labels), ("other", other)):
        if not xp.isdtype(lab.dtype, "integral"):
            raise InputTypeError(
                f"{name} must be integers (one class index per point); got dtype "
                f"{lab.dtype}. Map class names to integers first."
            )
        if lab.ndim < 1:
            raise InputError(f"{name} must have shape (..., N); got a scalar.")
        if not other_given:
            break
    dtype = xp.float64 if dtype is None else dtype
    if not xp.isdtype(dtype, "real floating"):
        raise InputTypeError(f"dtype must be a real floating dtype; got {dtype}.")
    same = xp.expand_dims(labels, axis=-1) == xp.expand_dims(other, axis=-2)
    return xp.astype(same, dtype)


# -- information -------------------------------------------------------------------


def _check_coefficients(xp: ModuleType, coef: Any, name: str) -> Any:
    """Check a ``(..., N, N)`` coefficient array and return it as floating point."""
    if coef.ndim < 2 or coef.shape[-1] != coef.shape[-2]:
        raise InputError(f"{name} must have shape (..., N, N); got {tuple(coef.shape)}.")
    if coef.shape[-1] == 0:
        raise InputError(f"{name} has N=0 points; information needs at least one point.")
    coef = xp.astype(coef, _float_dtype(xp, coef), copy=False)
    check_finite(xp, coef, name)
    return coef


def _information(xp: ModuleType, bc: Any) -> Any:
    # every row mean is >= 1/N (the diagonal term) for a valid fingerprint, so the
    # log is finite; the result is -mean_i log2(mean_j BC_ij)
    row_mean = xp.mean(bc, axis=-1)
    return -xp.mean(xp.log2(row_mean), axis=-1)


def information(bc: Any) -> Any:
    """I(X;U) in bits from a fingerprint: ``-mean_i log2(mean_j BC_ij)``.

    Reduces the last two axes. Lies in ``[0, log2 N]`` (up to rounding) for a
    valid fingerprint: entries in ``[0, 1]``, ones on the diagonal. Floating
    input keeps its dtype; integer or boolean input is computed in float64.

    Parameters
    ----------
    bc
        Coefficients, shape ``(..., N, N)``: a fingerprint from
        :func:`bhattacharyya` or :func:`label_coefficients`, or the
        ``exp(-KL)`` matrix of :func:`kl_coefficients` for the upper bound.

    Returns
    -------
    array, shape ``(...)``
        Bits per fingerprint.

    Examples
    --------
    >>> import numpy as np
    >>> float(information(np.eye(4)))     # four distinguishable points
    2.0
    >>> float(information(np.ones((4, 4))))
    0.0
    """
    xp = get_namespace(bc)
    return _information(xp, _check_coefficients(xp, bc, "bc"))


def joint_information(bc_u: Any, bc_v: Any) -> Any:
    """I(X;U,V) in bits: the information of the elementwise product ``bc_u * bc_v``.

    Broadcasts over leading axes, so ``joint_information(bc[:, None], bc[None])``
    gives all pairs of a stack of fingerprints. ``joint_information(bc, bc)`` is
    the repeat term I(X;U,U').

    Examples
    --------
    >>> import numpy as np
    >>> from ensemblex.estimators import label_coefficients
    >>> u = label_coefficients(np.array([0, 0, 1, 1]))
    >>> v = label_coefficients(np.array([0, 1, 0, 1]))
    >>> float(joint_information(u, v))
    2.0
    """
    xp = get_namespace(bc_u, bc_v)
    bc_u = _check_coefficients(xp, bc_u, "bc_u")
    bc_v = _check_coefficients(xp, bc_v, "bc_v")
    if bc_u.shape[-1] != bc_v.shape[-1]:
        raise InputError(
            "bc_u and bc_v must be fingerprints of the same N points; got "
            f"N={bc_u.shape[-1]} and N={bc_v.shape[-1]}."
        )
    return _information(xp, bc_u * bc_v)


def nmi(i_u: Any, i_v: Any, j_uv: Any, j_uu: Any, j_vv: Any, *, min_info: float = MIN_INFO) -> Any:
    """Normalised mutual information of two channels (docs/design.md eq. 3), elementwise.

    ``(I_U + I_V - J_UV) / sqrt((2 I_U - J_UU) (2 I_V - J_VV))``.

    Undefined cases are NaN, never a silent 0 or inf: a channel with less than
    ``min_info`` bits, and a zero repeat information ``2 I - J`` (a channel
    whose fingerprint rows are constant, e.g. a constant labelling even with
    ``min_info=0``).

    Parameters
    ----------
    i_u, i_v
        Information of each channel, I(X;U) and I(X;V), in bits.
    j_uv
        Joint information I(X;U,V).
    j_uu, j_vv
        Repeat terms I(X;U,U') and I(X;V,V') (for hard labels, ``I`` itself).
    min_info
        Threshold in bits under which a channel's NMI is undefined (NaN);
        0 keeps every channel with nonzero repeat information.

    Returns
    -------
    array
        The broadcast shape of the inputs, their common floating dtype.

    Examples
    --------
    >>> import numpy as np
    >>> float(nmi(1.0, 1.0, 1.0, 1.0, 1.0))   # identical hard clusterings
    1.0
    >>> float(nmi(0.001, 1.0, 1.0, 0.001, 1.0))
    nan
    """
    min_info = check_probability("min_info", min_info, high=math.inf)
    xp = get_namespace(i_u, i_v, j_uv, j_uu, j_vv)
    dtype = _float_dtype(xp, i_u, i_v, j_uv, j_uu, j_vv)
    i_u, i_v, j_uv, j_uu, j_vv = (
        xp.astype(xp.asarray(a), dtype) for a in (i_u, i_v, j_uv, j_uu, j_vv)
    )
    shared = i_u + i_v - j_uv
    # 2 I - J is the information shared by two repeats; >= 0 by Jensen's inequality
    norm = (2 * i_u - j_uu) * (2 * i_v - j_vv)
    # Degenerate cases: a channel under min_info bits, or zero repeat information,
    # has no defined normalisation. Return NaN there (scikit-learn handles its
    # degenerate labelings openly too; we refuse to invent a value).
    defined = (i_u >= min_info) & (i_v >= min_info) & (norm > 0)
    safe_norm = xp.where(defined, norm, xp.ones_like(norm))
    return xp.where(defined, shared / xp.sqrt(safe_norm), xp.full_like(norm, math.nan))


def vi(j_uv: Any, j_uu: Any, j_vv: Any) -> Any:
    """Variation of information (docs/design.md eq. 4), elementwise: ``2 J_UV - J_UU - J_VV``.

    For hard clusterings this is ``H(U|V) + H(V|U)`` in bits. Inputs broadcast;
    no threshold applies (VI is defined for any channel).

    Examples
    --------
    >>> float(vi(2.0, 1.0, 1.0))
    2.0
    """
    xp = get_namespace(j_uv, j_uu, j_vv)
    # (J_UU + J_VV) first: commutative, so VI(U, V) == VI(V, U) bit for bit
    return 2 * xp.asarray(j_uv) - (xp.asarray(j_uu) + xp.asarray(j_vv))


def information_bounds(mean: Any, logvar: Any, *, multivariate: bool = False) -> tuple[Any, Any]:
    """Kolchinsky-Tracey bracket ``(lower, upper)`` of I(X;U) in bits.

    Lower from Bhattacharyya coefficients, upper from ``exp(-KL)``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> lo, hi = information_bounds(rng.normal(size=50), np.full(50, -2.0))
    >>> bool(0 <= lo <= hi <= np.log2(50))
    True
    """
    lower = information(bhattacharyya(mean, logvar, multivariate=multivariate))
    upper = information(kl_coefficients(mean, logvar, multivariate=multivariate))
    return lower, upper


def _logsumexp(xp: ModuleType, x: Any, axis: int) -> Any:
    peak = xp.max(x, axis=axis, keepdims=True)
    peak = xp.where(xp.isfinite(peak), peak, xp.zeros_like(peak))
    return xp.squeeze(peak, axis=axis) + xp.log(xp.sum(xp.exp(x - peak), axis=axis))


def monte_carlo_information(
    mean: Any,
    logvar: Any,
    n_draws: int = 16,
    seed: int = 0,
    *,
    multivariate: bool = False,
    block_rows: int = 128,
) -> tuple[Any, Any]:
    """Monte Carlo bracket ``(lower, upper)`` of I(X;U) in bits over all N points.

    For every point ``x_i`` draw ``u ~ p(u|x_i)`` (``n_draws`` times) and average,
    with the Gaussian log-density known exactly (Poole et al. 2019):

    - lower (minibatch bound, own posterior included):
      ``log p(u|x_i) - log (1/N) sum_j p(u|x_j)``; for the empirical
      distribution over the N points this is the exact mutual information,
      up to sampling error;
    - upper (leave-one-out bound):
      ``log p(u|x_i) - log (1/(N-1)) sum_{j != i} p(u|x_j)``.

    Always evaluated in float64 (a validation reference, not a fast path).

    Parameters
    ----------
    mean, logvar
        Shape ``(N,)``, or ``(N, d)`` with ``multivariate=True``. No batch axes.
    n_draws
        Draws per point.
    seed
        Seed of the NumPy generator that makes the standard normal draws.
    block_rows
        Rows of the ``(N, N)`` log-density matrix held at once: bounds memory
        to a few ``block_rows x N`` float64 arrays (small blocks stay in cache
        on a CPU; raise it on a GPU).

    Examples
    --------
    >>> import numpy as np
    >>> mean = np.array([0.0, 0.0, 10.0, 10.0])
    >>> lo, hi = monte_carlo_information(mean, np.full(4, -4.0), n_draws=8)
    >>> round(float(lo), 6)
    1.0
    """
    n_draws = check_positive_int("n_draws", n_draws)
    block_rows = check_positive_int("block_rows", block_rows)
    xp, mean, logvar = _gaussian_inputs(mean, logvar, multivariate)
    if mean.ndim != 2:
        got = tuple(mean.shape) if multivariate else tuple(mean.shape)[:-1]
        raise InputError(
            "monte_carlo_information takes one channel: mean of shape (N,) or, with "
            f"multivariate=True, (N, d); got {got}."
        )
    n, d = int(mean.shape[0]), int(mean.shape[1])
    if n < 2:
        raise InputError(f"need at least 2 points (the leave-one-out bound); got N={n}.")
    # A validation reference: always evaluated in float64, whatever the input dtype.
    device = array_api_compat.device(mean)
    mean = xp.astype(mean, xp.float64)
    logvar = xp.astype(logvar, xp.float64)
    rng = np.random.default_rng(seed)
    std = xp.exp(0.5 * logvar)
    mean_t = xp.permute_dims(mean, (1, 0))  # (d, N): contiguous rows per component
    inv_std_t = xp.exp(-0.5 * xp.permute_dims(logvar, (1, 0)))
    const = -0.5 * (xp.sum(logvar, axis=-1) + d * _LOG_2PI)  # (N,) log-density normaliser
    log_n, log_n1 = math.log(n), math.log(n - 1)
    lower_sum = xp.zeros((), dtype=xp.float64, device=device)
    upper_sum = xp.zeros((), dtype=xp.float64, device=device)
    index = xp.arange(n, device=device)
    for _ in range(n_draws):
        noise = xp.asarray(rng.standard_normal((n, d)), dtype=xp.float64, device=device)
        u = mean + std * noise  # (N, d): one draw from every point's own posterior
        # log p(u_i | x_i), exactly: the draw is mean_i + std_i * noise_i
        own_all = const - 0.5 * xp.sum(noise * noise, axis=-1)  # (N,)
        for start in range(0, n, block_rows):
            stop = min(start + block_rows, n)
            # log p(u_b | x_j), (b, N), accumulated one component at a time
            sq = xp.zeros((stop - start, n), dtype=xp.float64, device=device)
            for k in range(d):
                z = (xp.expand_dims(u[start:stop, k], axis=1) - mean_t[k, :]) * inv_std_t[k, :]
                sq = sq + z * z
            logp = const - 0.5 * sq
            rows = index[start:stop]
            own_mask = xp.expand_dims(rows, axis=1) == xp.expand_dims(index, axis=0)
            others = xp.where(own_mask, xp.full_like(logp, -math.inf), logp)
            # log sum_{j != i} p(u_i|x_j) (finite: N >= 2), then add the own term back
            lse_others = _logsumexp(xp, others, axis=1)
            own = own_all[start:stop]
            lse_all = xp.logaddexp(lse_others, own)
            lower_sum += xp.sum(own - (lse_all - log_n))
            upper_sum += xp.sum(own - (lse_others - log_n1))
    scale = 1.0 / (n * n_draws * _LN2)
    return lower_sum * scale, upper_sum * scale
