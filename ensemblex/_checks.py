"""The one place that checks options, dims and values (no xarray import).

Every user-facing function validates through these helpers so that errors
look alike: they name what was given, what is allowed, and what to do.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterable, Mapping
from typing import Any, TypeVar

from .errors import InputError, InputTypeError

__all__ = [
    "check_dims",
    "check_finite",
    "check_option",
    "check_positive_int",
    "check_probability",
]

T = TypeVar("T")


def _fmt(values: Iterable[Any]) -> str:
    return ", ".join(repr(v) for v in values)


def check_option(name: str, value: T, allowed: Collection[Any]) -> T:
    """Return ``value`` if it is one of ``allowed``, else raise ``ValueError``.

    Examples
    --------
    >>> check_option("metric", "nmi", ("nmi", "vi"))
    'nmi'
    >>> check_option("metric", "mi", ("nmi", "vi"))
    Traceback (most recent call last):
    ...
    ensemblex.errors.InputError: metric must be one of 'nmi', 'vi'; got 'mi'.
    """
    try:
        ok = value in allowed
    except TypeError:  # an unhashable value checked against a set
        ok = False
    if not ok:
        shown = sorted(allowed, key=str) if isinstance(allowed, set | frozenset) else allowed
        raise InputError(f"{name} must be one of {_fmt(shown)}; got {value!r}.")
    return value


def check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    """Return ``value`` as an int if it is an integer >= ``minimum``.

    Examples
    --------
    >>> check_positive_int("steps", 3)
    3
    >>> check_positive_int("n_dims", 0)
    Traceback (most recent call last):
    ...
    ensemblex.errors.InputError: n_dims must be an integer >= 1; got 0.
    """
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise InputTypeError(f"{name} must be an integer >= {minimum}; got {value!r}.")
    value = int(value)
    if value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}; got {value!r}.")
    return value


def check_probability(name: str, value: Any, *, low: float = 0.0, high: float = 1.0) -> float:
    """Return ``value`` as a float if ``low <= value <= high``.

    >>> check_probability("min_info", 0.01, high=float("inf"))
    0.01
    """
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise InputTypeError(
            f"{name} must be a number in [{low}, {high}]; got {value!r}."
        ) from None
    if not (low <= f <= high):
        raise InputError(f"{name} must be a number in [{low}, {high}]; got {value!r}.")
    return f


def check_dims(
    what: str,
    dims: Iterable[Hashable],
    required: Iterable[Hashable],
    *,
    exact: bool = False,
    hint: str = "",
) -> None:
    """Check that an object with ``dims`` has the ``required`` dims.

    ``what`` names the object in the message (e.g. ``"variable 'mean'"``).

    Examples
    --------
    >>> check_dims("variable 'mean'", ("model", "latent", "sample"), ("model", "sample"))
    >>> check_dims("variable 'mean'", ("model", "z"), ("model", "latent", "sample"))
    Traceback (most recent call last):
    ...
    ensemblex.errors.InputError: variable 'mean' needs dims ('model', 'latent', 'sample'); got ('model', 'z'): missing 'latent', 'sample'.
    """
    dims = tuple(dims)
    required = tuple(required)
    missing = [d for d in required if d not in dims]
    extra = [d for d in dims if d not in required] if exact else []
    if missing or extra:
        parts = []
        if missing:
            parts.append("missing " + _fmt(missing))
        if extra:
            parts.append("unexpected " + _fmt(extra))
        msg = f"{what} needs dims {required}; got {dims}: {'; '.join(parts)}."
        if hint:
            msg += " " + hint
        raise InputError(msg)


def check_finite(
    xp: Any,
    x: Any,
    name: str,
    *,
    axis_names: Mapping[int, str] | None = None,
    offset: tuple[int, ...] | None = None,
) -> None:
    """Raise ``ValueError`` naming ``name`` and the first position of a NaN or inf.

    ``x`` is an array of namespace ``xp`` (not Dask: check chunks where they are
    computed). ``axis_names`` labels positions, e.g. ``{0: "model", 1: "latent"}``;
    ``offset`` is added to the position (the origin of a chunk in its array).

    Examples
    --------
    >>> import array_api_compat.numpy as xp
    >>> check_finite(xp, xp.asarray([1.0, 2.0]), "mean")
    >>> check_finite(xp, xp.asarray([[1.0, float("nan")]]), "mean")
    Traceback (most recent call last):
    ...
    ensemblex.errors.InputError: mean has a non-finite value (nan) at index (0, 1); inputs must be finite.
    """
    bad = ~xp.isfinite(x)
    if not bool(xp.any(bad)):
        return
    flat_bad = xp.reshape(bad, (-1,))
    first = int(xp.argmax(xp.astype(flat_bad, xp.int8)))
    shape = tuple(int(s) for s in x.shape)
    position: list[int] = []
    rem = first
    for size in reversed(shape):
        position.append(rem % size)
        rem //= size
    index = tuple(reversed(position))
    if offset is not None:
        index = tuple(i + o for i, o in zip(index, offset, strict=True))
    value = float(xp.reshape(x, (-1,))[first])
    if axis_names:
        where = ", ".join(f"{axis_names.get(k, f'axis {k}')}={i}" for k, i in enumerate(index))
    else:
        where = f"index {index}"
    raise InputError(f"{name} has a non-finite value ({value}) at {where}; inputs must be finite.")
