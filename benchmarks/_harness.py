"""Run one benchmark stage in a fresh child process and measure its wall time and peak memory.

Peak memory is the child's own high-water mark of resident memory (``VmHWM`` in
``/proc/self/status`` on Linux). ``ru_maxrss`` is not used there: Linux keeps a
process's maximum across ``fork`` and ``exec``, so a spawned child would report
its parent's peak whenever that is larger. Elsewhere ``ru_maxrss`` is the
fallback.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["peak_rss_mb", "run_stage"]


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (MiB)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / 2**20  # KiB, bytes on macOS


def _child(fn: Callable[..., dict[str, Any]], kwargs: dict[str, Any], queue: Any) -> None:
    t0 = time.perf_counter()
    try:
        out = fn(**kwargs)
        status = "ok"
    except Exception as err:  # a benchmark reports a failing stage, it does not stop
        out = {"error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()}
        status = "error"
    wall = time.perf_counter() - t0
    queue.put({"status": status, "wall_s": wall, "peak_rss_mb": peak_rss_mb(), **out})


def run_stage(name: str, fn: Callable[..., dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
    """Run ``fn(**kwargs)`` in a fresh (spawned) process: its result, wall time and peak RSS."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(fn, kwargs, queue))
    proc.start()
    result = queue.get()
    proc.join()
    result["stage"] = name
    line = f"  {name:<38} {result['wall_s']:8.2f} s {result['peak_rss_mb']:8.0f} MB"
    if result["status"] != "ok":
        line += f"  ({result['error'][:160]})"
    print(line, flush=True)
    return result
