"""Import TensorFlow on first use, with a clear message when it is missing."""

from __future__ import annotations

import os
import sys
from types import ModuleType

from ..errors import MissingExtraError

__all__ = ["require_tf"]

_INSTALL = "pip install 'ensemblex[train]'"


def require_tf() -> ModuleType:
    """Return the ``tensorflow`` module, or raise ``ImportError`` saying how to get it.

    >>> require_tf().__name__
    'tensorflow'
    """
    loaded = sys.modules.get("tensorflow")
    if loaded is not None:
        return loaded
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf
    except ImportError as err:  # the optional `train` extra is not installed
        raise MissingExtraError(
            f"training and loading models needs TensorFlow, which is not installed: {_INSTALL}"
        ) from err
    return tf
