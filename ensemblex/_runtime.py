"""Progress reports and the Dask scheduler, shared by the library, the CLI and the demo.

Progress bars belong on terminals. When stderr is a terminal (or a Jupyter
kernel), :func:`dask_progress` shows Dask's progress bar and
:func:`progress_bar` a tqdm bar. Otherwise (a log file, a batch job, a pipe)
both write plain lines: one when the stage starts, at most one every
:data:`PLAIN_INTERVAL_S` seconds during long work, and one when it ends, so a
cluster job's log stays readable.

:func:`dask_scheduler` runs a block on the local threaded scheduler or on a
``dask.distributed`` cluster, and :func:`compute` computes a lazy object with
progress on either.

Examples
--------
>>> import io
>>> log = io.StringIO()  # not a terminal: plain lines
>>> with progress_bar(3, desc="train", stream=log) as bar:
...     for _ in range(3):
...         bar.update()
>>> print(log.getvalue().splitlines()[0])
train: 3 steps
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
import time
from collections.abc import Iterator
from typing import IO, Any, Protocol

from .errors import InputError

__all__ = [
    "PLAIN_INTERVAL_S",
    "Progress",
    "compute",
    "dashboard_link",
    "dask_progress",
    "dask_scheduler",
    "is_terminal",
    "progress_bar",
]

#: seconds between two plain progress lines during long work (not a terminal)
PLAIN_INTERVAL_S = 30.0


def _stream(stream: IO[str] | None) -> IO[str]:
    return sys.stderr if stream is None else stream


def is_terminal(stream: IO[str] | None = None) -> bool:
    """Whether ``stream`` (default: ``sys.stderr``) is an interactive terminal.

    A Jupyter kernel counts as one for ``sys.stderr``: its output area redraws
    progress bars as a terminal does.

    Examples
    --------
    >>> import io
    >>> is_terminal(io.StringIO())
    False
    """
    out = _stream(stream)
    try:
        if out.isatty():
            return True
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
    return out is sys.stderr and _in_jupyter()


def _in_jupyter() -> bool:
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()  # type: ignore[attr-defined]
    except Exception:  # pragma: no cover - a broken IPython is no reason to fail
        return False
    return type(shell).__name__ == "ZMQInteractiveShell"


def _say(stream: IO[str], text: str) -> None:
    print(text, file=stream, flush=True)


def _seconds(t: float) -> str:
    return f"{t:.0f} s" if t >= 10 else f"{t:.1f} s"


# -- progress of a loop ---------------------------------------------------------------


class Progress(Protocol):
    """What :func:`progress_bar` yields."""

    def update(self, n: int = 1) -> None:
        """Advance by ``n`` units."""

    def set_postfix(self, **kw: Any) -> None:
        """Show ``key=value`` pairs next to the count (e.g. the current loss)."""


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, **kw: Any) -> None:
        pass


class _PlainBar:
    """Plain lines: start, at most one per ``interval`` seconds, end."""

    def __init__(
        self,
        total: int,
        desc: str,
        unit: str,
        initial: int,
        stream: IO[str],
        interval: float,
    ) -> None:
        self.total, self.desc, self.unit = int(total), desc, unit
        self.n = self.start_n = int(initial)
        self.stream, self.interval = stream, interval
        self.postfix = ""
        self.t0 = self.last = time.monotonic()
        resumed = f" (resuming at {self.n})" if self.n else ""
        _say(stream, f"{desc}: {self.total} {unit}s{resumed}")

    def _line(self, elapsed: float) -> str:
        share = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        post = f", {self.postfix}" if self.postfix else ""
        return f"{self.n}/{self.total} {self.unit}s{share}{post}, {_seconds(elapsed)}"

    def update(self, n: int = 1) -> None:
        self.n += int(n)
        now = time.monotonic()
        if now - self.last >= self.interval and self.n < self.total:
            self.last = now
            _say(self.stream, f"{self.desc}: {self._line(now - self.t0)}")

    def set_postfix(self, **kw: Any) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in kw.items())

    def close(self) -> None:
        _say(self.stream, f"{self.desc}: done, {self._line(time.monotonic() - self.t0)}")


@contextlib.contextmanager
def progress_bar(
    total: int,
    *,
    desc: str,
    unit: str = "step",
    enabled: bool = True,
    initial: int = 0,
    stream: IO[str] | None = None,
    interval: float | None = None,
) -> Iterator[Progress]:
    """Progress of a loop of ``total`` units: tqdm on a terminal, plain lines otherwise.

    Parameters
    ----------
    total
        Units of work in all.
    desc
        What is running (the bar's or lines' prefix).
    unit
        Name of one unit.
    enabled
        ``False``: nothing is shown.
    initial
        Units already done (a resumed run).
    stream
        Where to write (default: ``sys.stderr``).
    interval
        Seconds between plain lines (default: :data:`PLAIN_INTERVAL_S`).

    Yields
    ------
    Progress
        An object with ``update(n=1)`` and ``set_postfix(**kw)``.

    Examples
    --------
    >>> import io
    >>> log = io.StringIO()
    >>> with progress_bar(4, desc="fit", stream=log, interval=0.0) as bar:
    ...     bar.update(2)
    ...     bar.set_postfix(loss="0.5")
    ...     bar.update(2)
    >>> print(log.getvalue().replace("0.0 s", "T"), end="")
    fit: 4 steps
    fit: 2/4 steps (50%), T
    fit: done, 4/4 steps (100%), loss=0.5, T
    """
    if not enabled:
        yield _Silent()
        return
    out = _stream(stream)
    if is_terminal(out):
        from tqdm.auto import tqdm

        bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, file=out)
        try:
            yield bar
        finally:
            bar.close()
        return
    plain = _PlainBar(
        total, desc, unit, initial, out, PLAIN_INTERVAL_S if interval is None else interval
    )
    try:
        yield plain
    finally:
        plain.close()


# -- progress of Dask computations ----------------------------------------------------


def _plain_dask_callback(label: str, stream: IO[str], interval: float) -> Any:
    """A Dask callback writing plain lines; its ``finish_stage`` writes the last one."""
    from dask.callbacks import Callback

    class _PlainDask(Callback):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.t0: float | None = None
            self.last = 0.0
            self.done = self.total = 0

        def _start_state(self, dsk: Any, state: dict[str, Any]) -> None:
            now = time.monotonic()
            if self.t0 is None:
                self.t0 = self.last = now
                _say(stream, f"{label}: started")
            self.done = 0
            self.total = sum(len(state[k]) for k in ("ready", "waiting", "running"))

        def _posttask(self, *args: Any) -> None:
            self.done += 1
            now = time.monotonic()
            if self.t0 is not None and now - self.last >= interval:
                self.last = now
                share = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
                _say(
                    stream,
                    f"{label}: {self.done}/{self.total} tasks{share}, {_seconds(now - self.t0)}",
                )

        def finish_stage(self) -> None:
            if self.t0 is not None:
                _say(stream, f"{label}: done in {_seconds(time.monotonic() - self.t0)}")

    return _PlainDask()


#: whether a dask_progress block is active (nested blocks report nothing more)
_DASK_PROGRESS: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "ensemblex_dask_progress", default=False
)


@contextlib.contextmanager
def dask_progress(
    enabled: bool = True,
    *,
    label: str = "compute",
    stream: IO[str] | None = None,
    interval: float | None = None,
) -> Iterator[None]:
    """Progress of the Dask computations (local scheduler) run inside the block.

    On a terminal: Dask's progress bar (shown for computations over 1 s).
    Otherwise: ``"<label>: started"`` at the first computation, at most one
    line every ``interval`` seconds (default :data:`PLAIN_INTERVAL_S`) with the
    tasks done, and ``"<label>: done in T"`` when the block ends.
    ``enabled=False`` shows nothing. Inside another ``dask_progress`` block
    it adds nothing: the outer block reports.

    Examples
    --------
    >>> import io
    >>> import dask.array as da
    >>> log = io.StringIO()
    >>> with dask_progress(label="sum", stream=log):
    ...     total = int(da.ones(10, chunks=5).sum().compute())
    >>> total, log.getvalue().splitlines()[0], log.getvalue().splitlines()[-1].startswith("sum: done")
    (10, 'sum: started', True)
    """
    if not enabled or _DASK_PROGRESS.get():
        # off, or inside another dask_progress block: that one reports already
        yield
        return
    token = _DASK_PROGRESS.set(True)
    try:
        out = _stream(stream)
        if is_terminal(out):
            from dask.diagnostics import ProgressBar

            with ProgressBar(minimum=1.0, out=out):
                yield
            return
        every = PLAIN_INTERVAL_S if interval is None else interval
        callback = _plain_dask_callback(label, out, every)
        with callback:
            yield
        callback.finish_stage()
    finally:
        _DASK_PROGRESS.reset(token)


# -- the scheduler --------------------------------------------------------------------


def dashboard_link(client: Any) -> str | None:
    """The dashboard address of a ``distributed.Client``, or ``None`` when it has none.

    A scheduler always runs an HTTP server, so ``client.dashboard_link`` names
    an address even when the scheduler cannot serve the dashboard (without
    bokeh it serves a page saying so). The scheduler is asked whether it can.
    """
    try:
        link = client.dashboard_link
    except Exception:  # no HTTP service at all: there is no link
        return None
    if not link:
        return None

    def has_dashboard(dask_scheduler: Any = None) -> bool:  # runs on the scheduler
        import importlib.util

        return importlib.util.find_spec("bokeh") is not None

    try:
        real = bool(client.run_on_scheduler(has_dashboard))
    except Exception:  # the scheduler cannot tell: print no link rather than a wrong one
        return None
    return str(link) if real else None


@contextlib.contextmanager
def dask_scheduler(
    address: str | None,
    *,
    progress: bool = True,
    label: str = "compute",
    stream: IO[str] | None = None,
    timeout: str | float = "15s",
) -> Iterator[Any]:
    """Run the block on the local threaded scheduler or on a ``dask.distributed`` cluster.

    ``address`` is a scheduler address such as ``tcp://10.0.0.5:8786``;
    ``None`` uses the local threaded scheduler with :func:`dask_progress`.
    Yields the ``distributed.Client`` or ``None``. The dashboard link is
    printed only when the scheduler has a dashboard. ``timeout`` bounds the
    wait for the connection.

    Examples
    --------
    >>> with dask_scheduler(None, progress=False) as client:
    ...     print(client)
    None
    """
    out = _stream(stream)
    if address is None:
        with dask_progress(progress, label=label, stream=out):
            yield None
        return
    from distributed import Client

    try:
        client = Client(address, timeout=timeout, set_as_default=True)
    except (OSError, TimeoutError) as err:
        raise InputError(
            f"cannot connect to the Dask scheduler at {address!r}: {err}. Check the address "
            "and that the scheduler is running."
        ) from err
    try:
        link = dashboard_link(client)
        where = f" (dashboard: {link})" if link else ""
        _say(out, f"running on the Dask cluster at {address}{where}")
        yield client
    finally:
        client.close()


def compute(
    obj: Any,
    client: Any = None,
    *,
    progress: bool = True,
    label: str = "compute",
    stream: IO[str] | None = None,
    interval: float | None = None,
) -> Any:
    """Compute a lazy xarray/Dask object, with progress on either kind of scheduler.

    ``client`` is a ``distributed.Client`` (from :func:`dask_scheduler`) or
    ``None`` for the local scheduler.

    Examples
    --------
    >>> import dask.array as da
    >>> int(compute(da.arange(4, chunks=2).sum(), progress=False))
    6
    """
    out = _stream(stream)
    every = PLAIN_INTERVAL_S if interval is None else interval
    if client is None:
        with dask_progress(progress, label=label, stream=out, interval=every):
            return obj.compute()
    future = client.compute(obj)
    if not progress:
        return future.result()
    if is_terminal(out):
        from distributed import progress as distributed_progress

        distributed_progress(future)
        print(file=out)
        return future.result()
    from distributed import wait

    t0 = time.monotonic()
    _say(out, f"{label}: started")
    while True:
        try:
            wait(future, timeout=every)
            break
        except TimeoutError:
            _say(out, f"{label}: running, {_seconds(time.monotonic() - t0)}")
    _say(out, f"{label}: done in {_seconds(time.monotonic() - t0)}")
    return future.result()
