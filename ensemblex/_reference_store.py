"""The reference fingerprints of a synthesis run, held within a memory budget.

Synthesis reads every reference fingerprint ``(N, N)`` at every step. They are
held once, as float32: in memory while ``C * N * N * 4`` bytes fit the budget,
otherwise in an unnamed temporary file (deleted by the operating system when
closed, also after a crash) from which each step reads one batch at a time into
a reused buffer. The file's pages live in the operating system's cache, not in
the process: the process holds one batch, whatever the number of references.

Pure NumPy (bottom layer): no xarray, no Dask.

Examples
--------
>>> import numpy as np
>>> store = ReferenceStore(3, 2, memory_bytes=0)        # budget 0: on disk
>>> for k in range(3):
...     store.write(k, np.full((2, 2), k, dtype=np.float32))
>>> store.in_memory, store.read(1, 3)[:, 0, 0].tolist()
(False, [1.0, 2.0])
>>> kept = store.take(np.array([True, False, True]))    # no copy: an index map
>>> [float(r[0, 0]) for r in kept]
[0.0, 2.0]
>>> store.close()
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator
from typing import IO, Any

import numpy as np

from .errors import InputError

__all__ = ["DEFAULT_MEMORY_BYTES", "ReferenceStore"]

#: references (float32 bytes) held in memory by default; more go to a temporary file
DEFAULT_MEMORY_BYTES = 2**30  # 1 GiB: about 2,980 references of N = 300


class _Backing:
    """The storage shared by a store and the selections taken from it."""

    def __init__(self, n_ref: int, n: int, memory_bytes: int, directory: str | None) -> None:
        self.n = n
        self.ref_bytes = n * n * 4
        self.array: np.ndarray | None = None
        self.file: IO[bytes] | None = None
        self.lock = threading.Lock()
        if n_ref * self.ref_bytes <= memory_bytes:
            self.array = np.empty((n_ref, n, n), dtype=np.float32)
        else:
            # unbuffered: reads go straight into the caller's buffer
            # closed by ReferenceStore.close() (synthesize() calls it in a finally)
            self.file = tempfile.TemporaryFile(  # noqa: SIM115
                mode="w+b", buffering=0, prefix="ensemblex-references-", dir=directory
            )
            self.file.truncate(n_ref * self.ref_bytes)

    def write(self, k: int, bc: np.ndarray) -> None:
        if self.file is None:
            self.array[k] = bc  # type: ignore[index]
            return
        self.file.seek(k * self.ref_bytes)
        self.file.write(np.ascontiguousarray(bc, dtype=np.float32).tobytes())

    def read_into(self, k: int, out: np.ndarray) -> None:
        """References ``k, k + 1, ...`` into the contiguous float32 ``(m, N, N)`` array ``out``.

        Safe to call from several threads at once (positioned reads: the file's
        own position is not used), so that a batch can be read in parallel
        slices; one thread copies from the page cache at about 4.5 GB/s here.
        """
        if self.file is None:
            out[...] = self.array[k : k + out.shape[0]]  # type: ignore[index]
            return
        view = memoryview(out.reshape(-1).view(np.uint8))  # type: ignore[arg-type]
        got, want, offset = 0, out.shape[0] * self.ref_bytes, k * self.ref_bytes
        while got < want:  # a read may return less than asked
            n = self._pread(view[got:], offset + got)
            if not n:
                raise OSError(f"the temporary reference file ended early (reference {k}).")
            got += n

    def _pread(self, view: memoryview, offset: int) -> int:
        if hasattr(os, "preadv"):  # POSIX: no shared file position
            return os.preadv(self.file.fileno(), [view], offset)  # type: ignore[union-attr]
        with self.lock:  # elsewhere: seek and read under a lock
            self.file.seek(offset)  # type: ignore[union-attr]
            return self.file.readinto(view)  # type: ignore[union-attr]


class ReferenceStore:
    """``(n_ref, N, N)`` float32 reference fingerprints, in memory or in a temporary file.

    Parameters
    ----------
    n_ref, n
        The number of references and of fingerprint points ``N``.
    memory_bytes
        Held in memory when ``n_ref * N * N * 4`` bytes fit; otherwise in a
        temporary file in ``directory`` (default: the system's temporary folder).
    directory
        Where the temporary file goes.
    """

    def __init__(
        self,
        n_ref: int,
        n: int,
        *,
        memory_bytes: int = DEFAULT_MEMORY_BYTES,
        directory: str | None = None,
        _backing: _Backing | None = None,
        _index: np.ndarray | None = None,
    ) -> None:
        if _backing is None:
            if n_ref < 0 or n < 1:
                raise InputError(
                    f"a reference store needs n_ref >= 0 and N >= 1; got {n_ref}, {n}."
                )
            _backing = _Backing(n_ref, n, memory_bytes, directory)
            _index = np.arange(n_ref)
        self._backing = _backing
        self._index = np.asarray(_index, dtype=np.int64)

    # -- shape ------------------------------------------------------------------------
    @property
    def n_ref(self) -> int:
        """The number of references."""
        return int(self._index.size)

    @property
    def n(self) -> int:
        """The number of fingerprint points ``N``."""
        return self._backing.n

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.n_ref, self.n, self.n)

    @property
    def nbytes(self) -> int:
        """float32 bytes of the references (of this selection)."""
        return self.n_ref * self._backing.ref_bytes

    @property
    def in_memory(self) -> bool:
        """Whether the references are held in memory (else in a temporary file)."""
        return self._backing.array is not None

    def __len__(self) -> int:
        return self.n_ref

    # -- writing and reading ------------------------------------------------------------
    def write(self, k: int, bc: np.ndarray) -> None:
        """Store reference ``k``, an ``(N, N)`` array (cast to float32)."""
        if tuple(bc.shape) != (self.n, self.n):
            raise InputError(f"a reference must have shape {(self.n, self.n)}; got {bc.shape}.")
        self._backing.write(int(self._index[k]), bc)

    def read(self, start: int, stop: int, out: np.ndarray | None = None) -> np.ndarray:
        """References ``start .. stop - 1`` as one ``(stop - start, N, N)`` float32 array.

        In memory and without ``out``, a contiguous selection is a view (no copy).
        ``out`` (float32, at least ``stop - start`` references) is filled and a
        view of its first ``stop - start`` entries returned: a reused buffer.
        """
        idx = self._index[start:stop]
        array = self._backing.array
        if out is None and array is not None:
            if idx.size and np.array_equal(idx, np.arange(idx[0], idx[0] + idx.size)):
                return array[idx[0] : idx[0] + idx.size]
            return array[idx]
        if out is None:
            out = np.empty((idx.size, self.n, self.n), dtype=np.float32)
        elif out.dtype != np.float32 or not out.flags.c_contiguous or out.shape[0] < idx.size:
            raise InputError(
                f"out must be a C-contiguous float32 array of at least {idx.size} references "
                f"of shape {(self.n, self.n)}; got {out.dtype} {out.shape}."
            )
        view = out[: idx.size]
        # one read per run of consecutive references (all of them when none was dropped)
        cuts = np.flatnonzero(np.diff(idx) != 1) + 1
        for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, idx.size], strict=True):
            if hi > lo:
                self._backing.read_into(int(idx[lo]), view[lo:hi])
        return view

    def __iter__(self) -> Iterator[np.ndarray]:
        """Each reference in turn, ``(N, N)`` float32 (a reused buffer when on disk)."""
        buf = np.empty((1, self.n, self.n), dtype=np.float32)
        for k in range(self.n_ref):
            yield self.read(k, k + 1, out=None if self.in_memory else buf)[0]

    def as_array(self) -> np.ndarray:
        """All references as one array: a view or a copy in memory, a fresh read from disk."""
        return self.read(0, self.n_ref)

    def take(self, keep: Any) -> ReferenceStore:
        """The references where the boolean ``keep`` is true (or at integer positions ``keep``).

        No copy: the selection shares this store's memory or file.
        """
        keep = np.asarray(keep)
        index = self._index[keep] if keep.dtype == bool else self._index[keep.astype(np.int64)]
        return ReferenceStore(0, self.n, _backing=self._backing, _index=index)

    def close(self) -> None:
        """Release the temporary file (memory is released with the last reference)."""
        if self._backing.file is not None:
            self._backing.file.close()
