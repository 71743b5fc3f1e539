"""Progress reports and the scheduler helpers (ensemblex._runtime)."""

from __future__ import annotations

import importlib.util
import io
import time

import dask
import dask.array as da
import numpy as np
import pytest

from ensemblex._runtime import (
    compute,
    dashboard_link,
    dask_progress,
    dask_scheduler,
    is_terminal,
    progress_bar,
)
from ensemblex.errors import UserError


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _slow(x: np.ndarray) -> np.ndarray:
    time.sleep(0.02)
    return x


def test_is_terminal() -> None:
    assert is_terminal(_Tty()) is True
    assert is_terminal(io.StringIO()) is False
    closed = io.StringIO()
    closed.close()
    assert is_terminal(closed) is False


def test_plain_progress_bar_lines() -> None:
    log = io.StringIO()
    with progress_bar(100, desc="train", unit="step", stream=log) as bar:
        for _ in range(100):
            bar.update()
        bar.set_postfix(loss=1.5)
    lines = log.getvalue().splitlines()
    # short work: a start and an end line, no carriage returns
    assert lines[0] == "train: 100 steps"
    assert lines[-1].startswith("train: done, 100/100 steps (100%), loss=1.5")
    assert len(lines) == 2
    assert "\r" not in log.getvalue()


def test_plain_progress_bar_throttles_to_the_interval() -> None:
    log = io.StringIO()
    with progress_bar(20, desc="fit", stream=log, interval=0.05) as bar:
        for _ in range(20):
            time.sleep(0.01)
            bar.update()
    lines = log.getvalue().splitlines()
    # 0.2 s of work at one line per 0.05 s: a handful of middle lines, not 20
    assert 2 < len(lines) <= 2 + 20 * 0.01 / 0.05 + 1
    assert all(line.startswith("fit: ") for line in lines)


def test_progress_bar_resumed_and_disabled() -> None:
    log = io.StringIO()
    with progress_bar(10, desc="fit", stream=log, initial=4) as bar:
        bar.update(6)
    assert "resuming at 4" in log.getvalue()
    assert "10/10" in log.getvalue().splitlines()[-1]
    with progress_bar(10, desc="fit", enabled=False) as bar:
        bar.update(3)
        bar.set_postfix(a=1)  # accepted, shows nothing


def test_progress_bar_on_a_terminal_is_tqdm() -> None:
    tty = _Tty()
    with progress_bar(5, desc="fit", stream=tty) as bar:
        bar.update(5)
    assert "\r" in tty.getvalue()  # a redrawn bar
    assert "5/5" in tty.getvalue()


def test_dask_progress_plain_lines() -> None:
    log = io.StringIO()
    x = da.from_array(np.arange(40.0), chunks=1).map_blocks(_slow)
    with dask_progress(label="compare", stream=log, interval=0.1):
        total = float(x.sum().compute(scheduler="threads", num_workers=2))
    assert total == float(np.arange(40.0).sum())
    lines = log.getvalue().splitlines()
    assert lines[0] == "compare: started"
    assert lines[-1].startswith("compare: done in ")
    # 40 tasks of 0.02 s on 2 threads: ~0.4 s at one line per 0.1 s
    assert len(lines) < 10
    assert any("tasks" in line for line in lines[1:-1])
    assert "\r" not in log.getvalue()


def test_dask_progress_silent_and_without_computation() -> None:
    log = io.StringIO()
    with dask_progress(False, stream=log):
        da.ones(4, chunks=2).sum().compute()
    with dask_progress(stream=log):
        pass  # nothing computed: nothing to say
    assert log.getvalue() == ""


def test_dask_progress_on_a_terminal_is_dask_bar() -> None:
    tty = _Tty()
    x = da.from_array(np.arange(80.0), chunks=1).map_blocks(_slow)
    with dask.config.set(scheduler="threads", num_workers=1), dask_progress(stream=tty):
        x.sum().compute()
    assert "\r" in tty.getvalue()
    assert "Completed" in tty.getvalue()


def test_compute_local() -> None:
    log = io.StringIO()
    out = compute(da.arange(6, chunks=2).sum(), label="sum", stream=log)
    assert int(out) == 15
    assert log.getvalue().splitlines()[0] == "sum: started"


def test_scheduler_local_yields_none() -> None:
    with dask_scheduler(None, progress=False) as client:
        assert client is None


def test_scheduler_unreachable_is_a_user_error() -> None:
    with (
        pytest.raises(UserError, match="cannot connect to the Dask scheduler"),
        dask_scheduler("tcp://127.0.0.1:9", progress=False, timeout="1s"),
    ):
        pass


def test_distributed_no_dashboard_link_without_a_dashboard() -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=False,
        dashboard_address=":0",
    ) as cluster:
        log = io.StringIO()
        with dask_scheduler(cluster.scheduler_address, stream=log) as client:
            link = dashboard_link(client)
            value = compute(da.arange(10, chunks=5).sum(), client, label="sum", stream=log)
        assert int(value) == 45
        has_bokeh = importlib.util.find_spec("bokeh") is not None
        text = log.getvalue()
        # the HTTP server always runs; without bokeh it has no dashboard to show
        assert (link is not None) == has_bokeh
        assert ("dashboard" in text) == has_bokeh
        assert "sum: started" in text and "sum: done in" in text


def test_nested_dask_progress_reports_once() -> None:
    log = io.StringIO()
    with dask_progress(label="outer", stream=log), dask_progress(label="inner", stream=log):
        da.ones(4, chunks=2).sum().compute()
    lines = log.getvalue().splitlines()
    assert lines[0] == "outer: started" and lines[-1].startswith("outer: done")
    assert len(lines) == 2
