"""Benchmark: peak memory and time of ``synthesize()`` with many reference channels.

Issue #10 measured 6.4 GB for a group of 2,013 references (N = 300); the
references are now held once as float32 (in memory up to ``reference_memory``,
else in a temporary file) and streamed in batches at every step. Each stage
runs in its own child process (peak resident memory is the child's
``ru_maxrss``), on the same references:

- ``import``: Python, NumPy, xarray and TensorFlow loaded, nothing else (the
  floor every stage pays);
- ``in_graph``: the references copied into TensorFlow and the whole step
  compiled, whatever their size (the path for small reference sets);
- ``streamed``: the references held in memory (``reference_memory`` large
  enough), above 256 MB handed to TensorFlow one batch at a time from the one
  NumPy copy;
- ``file``: ``reference_memory=0``, as beyond the budget (1 GiB by default): the
  references are written to a temporary file and every step reads them from
  there one batch at a time (memory bounded whatever the group size);
- ``before`` (only with ``--before REV``): ``ensemblex/synthesis.py`` as it
  was at git revision ``REV`` (e.g. ``2aa3074``), loaded from ``git show``;
  code that already streams runs with ``reference_memory=0`` and is compared
  with the ``file`` stage.

The references: ``--channels`` random 1-D Gaussian channels (posterior
means N(0, 1), log-variances -3) on ``--n-samples`` points, given as a
Posteriors dataset. Prints a table and the ratios, and writes
``synthesis_memory.json`` to ``--out``.

Usage::

    python benchmarks/synthesis_memory.py                      # 2,000 references, N=300, 50 steps
    python benchmarks/synthesis_memory.py --before 2aa3074     # and the code before streaming
    python benchmarks/synthesis_memory.py --channels 200 --steps 20   # a quick run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import importlib.util, inspect, json, resource, sys, time, warnings
import numpy as np
stage, channels, n, steps, seed, before = sys.argv[1:7]
channels, n, steps, seed = int(channels), int(n), int(steps), int(seed)
import xarray as xr
import tensorflow as tf  # the floor: every stage pays it
from ensemblex.posteriors import posteriors
rng = np.random.default_rng(seed)
post = posteriors(rng.normal(size=(channels, 1, n)), np.full((channels, 1, n), -3.0))
def kb():  # this process's own peak (VmHWM): ru_maxrss would carry the parent's over exec
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out = {"stage": stage, "rss_after_setup_mb": kb() / 1024}
t = time.perf_counter()
kw = dict(steps=steps, progress=False, seed=seed)
if stage == "import":
    pass
elif stage == "before":
    spec = importlib.util.spec_from_file_location("ensemblex._synthesis_before", before)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    if "reference_memory" in inspect.signature(module.synthesize).parameters:
        kw["reference_memory"] = 0  # code that streams: from the file, as the file stage
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        syn = module.synthesize(post, optimizer="adam", learning_rate=0.05, **kw)
    out["final_similarity"] = float(syn.attrs["final_similarity"])
    out["reference_storage"] = syn.attrs.get("reference_storage", "in TensorFlow")
else:
    import ensemblex.synthesis as synthesis
    from ensemblex.synthesis import synthesize
    if stage == "in_graph":
        synthesis._IN_GRAPH_BYTES = float("inf")
    if stage in ("in_graph", "streamed"):
        kw["reference_memory"] = 2**40  # held in memory, whatever their size
    if stage == "file":
        kw["reference_memory"] = 0  # in the temporary file, whatever their size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        syn = synthesize(post, **kw)
    out["final_similarity"] = float(syn.attrs["final_similarity"])
    out["reference_batch"] = int(syn.attrs["reference_batch"])
    out["reference_storage"] = syn.attrs["reference_storage"]
out["seconds"] = time.perf_counter() - t
out["peak_rss_mb"] = kb() / 1024
print("RESULT " + json.dumps(out))
"""


def run_stage(stage: str, args: argparse.Namespace, before: str = "") -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-c", _CHILD, stage, str(args.channels), str(args.n_samples)]
    cmd += [str(args.steps), str(args.seed), before]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"stage {stage} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    result = json.loads(lines[-1][len("RESULT ") :])
    result["wall_seconds"] = wall
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--channels", type=int, default=2000, help="reference channels C")
    p.add_argument("--n-samples", type=int, default=300, help="fingerprint points N")
    p.add_argument("--steps", type=int, default=50, help="optimisation steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--before", default=None, help="git revision of the code before streaming")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = p.parse_args(argv)

    stages = ["import", "in_graph", "streamed", "file"]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        before = ""
        if args.before:
            src = subprocess.run(
                ["git", "show", f"{args.before}:ensemblex/synthesis.py"],
                capture_output=True,
                text=True,
                cwd=ROOT,
                check=True,
            ).stdout
            before = str(Path(tmp) / "synthesis_before.py")
            Path(before).write_text(src)
            stages.insert(1, "before")
        for stage in stages:
            results[stage] = run_stage(stage, args, before)
            r = results[stage]
            print(
                f"{stage:>12}: peak {r['peak_rss_mb']:8.0f} MB, "
                f"{r['seconds']:6.1f} s in synthesize"
                + (f", batch {r['reference_batch']}" if "reference_batch" in r else ""),
                flush=True,
            )
    floor = results["import"]["peak_rss_mb"]
    refs_mb = args.channels * args.n_samples**2 * 4 / 2**20
    print(f"\nreferences as float32: {refs_mb:.0f} MB; import floor {floor:.0f} MB")
    for stage in stages[1:]:
        extra = results[stage]["peak_rss_mb"] - floor
        print(
            f"{stage:>12}: {extra:8.0f} MB above the floor = {extra / refs_mb:.2f} x the references"
        )
    ratios = {
        "memory_streamed_over_in_graph": (results["streamed"]["peak_rss_mb"] - floor)
        / (results["in_graph"]["peak_rss_mb"] - floor),
        "time_streamed_over_in_graph": results["streamed"]["seconds"]
        / results["in_graph"]["seconds"],
        "memory_file_over_streamed": (results["file"]["peak_rss_mb"] - floor)
        / (results["streamed"]["peak_rss_mb"] - floor),
        "time_file_over_streamed": results["file"]["seconds"] / results["streamed"]["seconds"],
    }
    if results.get("before", {}).get("reference_storage") == "temporary file":
        # the earlier code streams too: the same storage compared, file with file
        ratios["time_file_over_before"] = results["file"]["seconds"] / results["before"]["seconds"]
    elif "before" in results:
        ratios["memory_streamed_over_before"] = (results["streamed"]["peak_rss_mb"] - floor) / (
            results["before"]["peak_rss_mb"] - floor
        )
        ratios["time_streamed_over_before"] = (
            results["streamed"]["seconds"] / results["before"]["seconds"]
        )
    for name, value in ratios.items():
        print(f"{name}: {value:.2f}")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "synthesis_memory.json"
    record = {
        "benchmark": "synthesis_memory",
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "platform": {"python": platform.python_version(), "cpu_count": os.cpu_count()},
        "references_float32_mb": refs_mb,
        "stages": results,
        "ratios": ratios,
    }
    path.write_text(json.dumps(record, indent=1))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
