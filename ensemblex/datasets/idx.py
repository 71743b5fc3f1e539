"""IDX files (the MNIST / Fashion-MNIST format), plain or gzipped.

An IDX file is a 4-byte magic number ``0x00 0x00 <type> <ndim>``, ``ndim``
big-endian uint32 sizes, then the data in C order (big-endian for multi-byte
types). MNIST and Fashion-MNIST ship the same four file names; point
:func:`load_idx_dataset` at the folder that holds them.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..errors import InputError, InputTypeError

__all__ = ["FASHION_CLASSES", "idx_file_names", "load_idx_dataset", "read_idx", "write_idx"]

_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {np.dtype(v).newbyteorder("="): k for k, v in _TYPES.items()}

FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


def _open(path: Path) -> Any:
    with open(path, "rb") as f:
        head = f.read(2)
    return gzip.open(path, "rb") if head == b"\x1f\x8b" else open(path, "rb")


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one IDX file (gzipped or not, detected from its first bytes).

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> with tempfile.TemporaryDirectory() as d:
    ...     write_idx(f"{d}/a-idx1-ubyte.gz", np.array([3, 1, 4], dtype=np.uint8))
    ...     read_idx(f"{d}/a-idx1-ubyte.gz").tolist()
    [3, 1, 4]
    """
    path = Path(path)
    with _open(path) as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _TYPES:
        raise InputError(f"{path} is not an IDX file (bad magic number {raw[:4]!r}).")
    dtype = _TYPES[raw[2]]
    ndim = raw[3]
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    offset = 4 + 4 * ndim
    count = int(np.prod(shape)) if shape else 0
    if len(raw) - offset < count * dtype.itemsize:
        raise InputError(f"{path} is truncated: header says shape {shape}.")
    data = np.frombuffer(raw, dtype=dtype, count=count, offset=offset).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike[str], array: Any) -> None:
    """Write ``array`` as an IDX file (gzipped when the name ends in ``.gz``).

    >>> import tempfile, numpy as np
    >>> with tempfile.TemporaryDirectory() as d:
    ...     write_idx(f"{d}/x", np.zeros((2, 3, 3), dtype=np.uint8))
    ...     read_idx(f"{d}/x").shape
    (2, 3, 3)
    """
    arr = np.asarray(array)
    code = _CODES.get(arr.dtype.newbyteorder("="))
    if code is None:
        raise InputTypeError(
            f"IDX cannot store dtype {arr.dtype}; use one of uint8, int8, int16, "
            "int32, float32, float64."
        )
    header = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    body = np.ascontiguousarray(arr, dtype=_TYPES[code]).tobytes()
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(header + body)


def idx_file_names(split: Literal["train", "test"]) -> tuple[str, str]:
    """The (images, labels) file names of a split, without ``.gz``.

    >>> idx_file_names("test")
    ('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte')
    """
    prefix = "train" if split == "train" else "t10k"
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def _find(folder: Path, name: str, split: str, which: str) -> Path:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    images, labels = idx_file_names(split)  # type: ignore[arg-type]
    raise FileNotFoundError(
        f"no {which} file for the {split!r} split in {str(folder)!r}. Expected these files "
        f"(each plain or with .gz): {images}, {labels}. Download MNIST or Fashion-MNIST "
        "yourself and pass the folder as path=..."
    )


def load_idx_dataset(
    path: str | os.PathLike[str], split: Literal["train", "test"] = "train"
) -> tuple[np.ndarray, np.ndarray]:
    """Read the images (uint8 ``(n, 28, 28)``) and labels (``(n,)``) of a split.

    ``path`` is the folder holding the IDX files (or one of them).

    >>> import tempfile, numpy as np
    >>> with tempfile.TemporaryDirectory() as d:
    ...     write_idx(f"{d}/t10k-images-idx3-ubyte.gz", np.zeros((2, 28, 28), np.uint8))
    ...     write_idx(f"{d}/t10k-labels-idx1-ubyte", np.array([7, 2], np.uint8))
    ...     images, labels = load_idx_dataset(d, "test")
    >>> images.shape, labels.tolist()
    ((2, 28, 28), [7, 2])
    """
    from .._checks import check_option

    check_option("split", split, ("train", "test"))
    folder = Path(path)
    if folder.is_file():
        folder = folder.parent
    if not folder.is_dir():
        images, labels = idx_file_names(split)
        raise FileNotFoundError(
            f"path {str(path)!r} is not a folder. Pass the folder that holds {images} and "
            f"{labels} (each plain or with .gz)."
        )
    image_name, label_name = idx_file_names(split)
    image_data = read_idx(_find(folder, image_name, split, "images"))
    label_data = read_idx(_find(folder, label_name, split, "labels"))
    if image_data.ndim != 3 or label_data.ndim != 1 or image_data.shape[0] != label_data.shape[0]:
        raise InputError(
            f"IDX files in {str(folder)!r} do not match: images {image_data.shape}, labels "
            f"{label_data.shape}; expected (n, rows, cols) and (n,)."
        )
    return image_data, label_data.astype(np.int64)
