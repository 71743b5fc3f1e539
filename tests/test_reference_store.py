"""Tests of ensemblex._reference_store: the synthesis references within a memory budget."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from ensemblex._reference_store import ReferenceStore


@pytest.mark.parametrize("positioned", [True, False], ids=["preadv", "seek-under-a-lock"])
def test_file_reads_from_many_threads_at_once(monkeypatch, positioned):
    """Each thread of a synthesis step reads its own slice of a batch from the file."""
    if not positioned:  # a platform without positioned reads (Windows): seek under a lock
        monkeypatch.delattr(os, "preadv", raising=False)
    rng = np.random.default_rng(5)
    bc = rng.random((48, 7, 7)).astype(np.float32)
    store = ReferenceStore(48, 7, memory_bytes=0)
    try:
        assert not store.in_memory
        for k, ref in enumerate(bc):
            store.write(k, ref)
        kept = store.take(np.flatnonzero(np.arange(48) % 5 != 3))  # runs of consecutive ones
        want = bc[np.arange(48) % 5 != 3]
        for _ in range(5):
            buffer = np.full((len(want), 7, 7), np.nan, dtype=np.float32)

            def read(lo: int, kept: ReferenceStore = kept, buffer: np.ndarray = buffer) -> None:
                kept.read(lo, min(lo + 3, len(want)), out=buffer[lo : lo + 3])

            with ThreadPoolExecutor(6) as pool:
                list(pool.map(read, range(0, len(want), 3)))
            np.testing.assert_array_equal(buffer, want)
    finally:
        store.close()
