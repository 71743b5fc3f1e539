"""Array-namespace helpers for the numeric kernels (no xarray, no Dask).

Kernels never call ``np.`` on data: they ask :func:`get_namespace` for the
namespace of their inputs, as xarray's ``get_array_namespace`` does, so the
same code runs on NumPy, on CuPy and on any strict array-API namespace.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import array_api_compat

from .errors import InputTypeError

__all__ = ["get_namespace", "is_numpy_namespace", "to_numpy"]


def get_namespace(*arrays: Any) -> ModuleType:
    """Return the array-API namespace shared by ``arrays``.

    Python scalars and ``None`` are ignored; when nothing else is given the
    namespace is NumPy's. NumPy arrays give the array-API-compatible NumPy
    namespace of ``array_api_compat``.

    Examples
    --------
    >>> import numpy as np
    >>> get_namespace(np.zeros(3)).__name__
    'array_api_compat.numpy'
    """
    arrays = tuple(a for a in arrays if a is not None and not isinstance(a, int | float | bool))
    if not arrays:
        import array_api_compat.numpy as xp_numpy

        return xp_numpy
    try:
        return array_api_compat.array_namespace(*arrays)
    except TypeError as err:
        kinds = sorted({type(a).__module__ + "." + type(a).__qualname__ for a in arrays})
        raise InputTypeError(
            f"Arrays must all come from one array library (NumPy, CuPy or an array-API "
            f"namespace); got {', '.join(kinds)}. Convert them to one library first."
        ) from err


def is_numpy_namespace(xp: ModuleType) -> bool:
    """True when ``xp`` is NumPy or its array-API wrapper."""
    return array_api_compat.is_numpy_namespace(xp)


def to_numpy(x: Any) -> Any:
    """Copy any array (NumPy, CuPy, array-API, Dask) to a NumPy array.

    Examples
    --------
    >>> import numpy as np
    >>> to_numpy(np.arange(3)).tolist()
    [0, 1, 2]
    """
    import numpy as np

    if hasattr(x, "compute") and hasattr(x, "dask"):
        x = x.compute()
    if isinstance(x, np.ndarray | np.generic):
        return np.asarray(x)
    if hasattr(x, "get") and type(x).__module__.startswith("cupy"):
        return x.get()
    try:
        return np.from_dlpack(x)
    except (TypeError, AttributeError, RuntimeError, BufferError):
        return np.asarray(x)
