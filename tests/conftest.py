"""Shared test fixtures: one ``backend`` fixture over every array backend.

Mark a test ``@pytest.mark.backends("numpy", "array_api_strict")`` to run it
on a subset; unmarked tests that take ``backend`` run on all of them. The
CuPy backend is skipped where CuPy is not importable (no GPU on CI).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

BACKENDS = ("numpy", "dask", "distributed", "array_api_strict", "cupy")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("backends")
        names = marker.args if marker else BACKENDS
        unknown = set(names) - set(BACKENDS)
        if unknown:
            raise ValueError(f"unknown backends {sorted(unknown)}; known: {BACKENDS}")
        metafunc.parametrize("backend", names, indirect=True)


@dataclass
class Backend:
    """How to put test data on one backend and bring results back."""

    name: str
    client: Any = None

    @property
    def lazy(self) -> bool:
        return self.name in ("dask", "distributed")

    def asarray(self, x: Any, chunks: Any = "auto") -> Any:
        x = np.asarray(x)
        if self.name == "numpy":
            return x
        if self.name == "array_api_strict":
            import array_api_strict

            return array_api_strict.asarray(x)
        if self.name == "cupy":
            import cupy

            return cupy.asarray(x)
        import dask.array as da

        return da.from_array(x, chunks=chunks)

    def to_numpy(self, x: Any) -> np.ndarray:
        from ensemblex._namespace import to_numpy

        data = getattr(x, "data", x) if hasattr(x, "dims") else x
        return np.asarray(to_numpy(data))


@pytest.fixture(scope="session")
def dask_client() -> Iterator[Any]:
    """A ``LocalCluster`` with 2 worker processes, started once per session."""
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        yield client


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    name = request.param
    if name == "cupy" and importlib.util.find_spec("cupy") is None:
        pytest.skip("CuPy is not installed (GPU backend)")
    if name == "array_api_strict":
        pytest.importorskip("array_api_strict")
    if name == "distributed":
        client = request.getfixturevalue("dask_client")
        with client.as_current():
            import dask

            with dask.config.set(scheduler=client):
                yield Backend(name, client)
        return
    yield Backend(name)


@pytest.fixture
def no_compute() -> Iterator[None]:
    """Make any Dask compute in the block raise: proves that graphs stay lazy."""
    import dask

    def _raise(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a Dask computation was triggered where none was expected")

    with dask.config.set(scheduler=_raise):
        yield


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
