"""Import TensorFlow on first use: quietly, and with a clear message when it is missing.

Importing TensorFlow on a CPU machine writes absl, oneDNN, cuda-driver,
cpu_feature_guard and XLA log lines to stderr (one of them,
``E0000 ... failed call to cuInit ... UNKNOWN ERROR (303)``, looks like a
failure). Where ensemblex imports TensorFlow, it silences them:

- ``TF_CPP_MIN_LOG_LEVEL=3`` for TensorFlow's C++ log (the XLA lines and the
  cuInit error come later, when the first operation runs);
- the lines written while the libraries load (before absl's log is set up,
  so the level does not apply yet) are captured, and those that are known
  noise dropped; anything else is written to stderr as it came;
- TensorFlow's Python logger is set to ERROR when nobody set its level.

A level the user set explicitly wins: with ``TF_CPP_MIN_LOG_LEVEL`` already
in the environment nothing is captured or changed. When a GPU is visible
(an NVIDIA device file or ``CUDA_VISIBLE_DEVICES``) but TensorFlow cannot use
it, a :class:`RuntimeWarning` says so, once, instead of the log lines.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator
from types import ModuleType

from ..errors import MissingExtraError

__all__ = ["NOISE", "require_tf"]

_INSTALL = "pip install 'ensemblex[train]'"
_LEVEL_VAR = "TF_CPP_MIN_LOG_LEVEL"

#: log lines of TensorFlow's import that carry no message for an ensemblex user
NOISE = re.compile(
    r"absl::InitializeLog|^[IWE]\d{4} |oneDNN|cudart_stub|cuda_|cuInit|cpu_feature_guard"
    r"|rebuild TensorFlow with the appropriate compiler flags|XLA|StreamExecutor"
)


@contextlib.contextmanager
def _captured_stderr() -> Iterator[list[str]]:
    """Collect what is written to file descriptor 2 (C libraries included) in the block."""
    lines: list[str] = []
    # file descriptor 2 itself, not sys.stderr's: the C libraries write there, also
    # where Python's sys.stderr is replaced (a Jupyter kernel, a test runner)
    fd = 2
    try:
        os.fstat(fd)
    except OSError:  # no stderr at all
        yield lines
        return
    with contextlib.suppress(AttributeError, ValueError, OSError):
        sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), fd)
        try:
            yield lines
        finally:
            with contextlib.suppress(AttributeError, ValueError, OSError):
                sys.stderr.flush()
            os.dup2(saved, fd)
            os.close(saved)
            sink.seek(0)
            lines.extend(sink.read().decode(errors="replace").splitlines())


def _gpu_visible() -> bool:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return visible.strip() not in ("", "-1")
    return os.path.exists("/dev/nvidia0") or os.path.exists("/dev/nvidiactl")


def _warn_unusable_gpu(tf: ModuleType, why: list[str]) -> None:
    if not _gpu_visible():
        return
    try:
        if tf.config.list_physical_devices("GPU"):
            return
    except Exception:  # pragma: no cover - a broken device query is no reason to fail
        return
    detail = f" ({why[0].split('] ', 1)[-1].strip()})" if why else ""
    warnings.warn(
        "a GPU is visible but TensorFlow cannot use it" + detail + "; ensemblex runs "
        "on the CPU. Install a CUDA-enabled TensorFlow matching the driver to use the GPU.",
        RuntimeWarning,
        stacklevel=3,
    )


def _import_quietly() -> ModuleType:
    os.environ[_LEVEL_VAR] = "3"
    with _captured_stderr() as lines:
        import tensorflow as tf
    kept = [line for line in lines if line.strip() and not NOISE.search(line)]
    if kept:
        print("\n".join(kept), file=sys.stderr, flush=True)
    py_logger = logging.getLogger("tensorflow")
    if py_logger.level == logging.NOTSET:
        py_logger.setLevel(logging.ERROR)
    cuda = [line for line in lines if "cuda" in line.lower() or "gpu" in line.lower()]
    _warn_unusable_gpu(tf, cuda)
    return tf


def require_tf() -> ModuleType:
    """Return the ``tensorflow`` module, or raise ``ImportError`` saying how to get it.

    >>> require_tf().__name__
    'tensorflow'
    """
    loaded = sys.modules.get("tensorflow")
    if loaded is not None:
        return loaded
    try:
        if _LEVEL_VAR in os.environ:  # the user chose a level: leave the logs to them
            import tensorflow as tf

            return tf
        return _import_quietly()
    except ImportError as err:  # the optional `train` extra is not installed
        raise MissingExtraError(
            f"training, loading models and synthesis need TensorFlow, which is not "
            f"installed: {_INSTALL}"
        ) from err
