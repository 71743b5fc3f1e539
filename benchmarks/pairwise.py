"""The streaming pairwise engine against the machine's matmul rate and a plain reference.

Measured on the same machine in the same run (each part in its own child
process, so that memory and BLAS threading are measured cleanly):

(a) float32 NumPy matmul rate at 2048^3 (all cores, the BLAS default), in
    multiply-adds per second (best of several repeats);
(b) the engine's rate in channel-pair x sample^2 products per second at
    C = 1000 and 3000 channels, N = 300 samples, from posteriors, and its ratio to
    (a). Two rates are printed: over all C^2 ordered pairs (the work docs/design.md
    counts: 2 C^2 N^2 flops) and over the C (C + 1) / 2 pairs the engine really
    computes (it mirrors the lower triangle);
(c) a plain float64 per-pair reference at C = 300, N = 300 (for each ordered
    pair (u, v) of the C x C matrix: the product of the two BC matrices, row
    means, log, mean; timed within ``--c-seconds`` and extrapolated if needed),
    and the engine's speed-up over it; also over a reference that computes only
    the C (C + 1) / 2 pairs u <= v (the engine's symmetric tiling is one of the
    things this speed-up measures, so both figures are printed);
(d) C = 20,000 channels at N = 300 from posteriors with ``store=`` to a temporary
    Zarr store: wall time and peak resident memory of the child process. With
    ``--d-channels`` smaller, the wall time is also extrapolated to 20,000
    channels (the work grows as C^2).

The engine runs on Dask's threaded scheduler with one thread per core; the
engine itself limits BLAS to one thread inside each Dask thread (``--blas-threads N``
sets ``*_NUM_THREADS`` instead), so the row generation runs in parallel too
(measured faster than one Dask thread with a 2-thread BLAS).

Prints a table, writes ``pairwise.json`` into ``--out`` (default
``benchmarks/results/``).

Usage::

    python benchmarks/pairwise.py                       # everything, full size
    python benchmarks/pairwise.py --parts a,b,c         # skip the 20,000-channel run
    python benchmarks/pairwise.py --parts d --d-channels 5000
    python benchmarks/pairwise.py --quick               # smoke run (seconds)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGETS = {"ratio_b": 0.5, "aim_b": 0.6, "speedup_c": 50.0, "wall_d_s": 15 * 60, "rss_d_gb": 3.0}


# -- data -----------------------------------------------------------------------------------


def make_fingerprints(n_channels: int, n_samples: int, seed: int = 0) -> Any:
    """Fingerprints of random posteriors: (model, latent=10, sample), model-major channels."""
    import numpy as np

    import ensemblex as ex

    rng = np.random.default_rng(seed)
    n_latent = 10 if n_channels % 10 == 0 else 1
    n_model = n_channels // n_latent
    z = rng.uniform(size=(4, n_samples))
    weights = rng.normal(size=(n_model, n_latent, 4))
    mean = np.tanh(np.einsum("mlf,fn->mln", weights, z)) * 2
    logvar = rng.uniform(-6, -1, size=(n_model, n_latent, 1)) + 0.3 * rng.normal(
        size=(n_model, n_latent, n_samples)
    )
    post = ex.posteriors(mean.astype(np.float32), logvar.astype(np.float32))
    return ex.fingerprint(post)


# -- parts (run in child processes) ---------------------------------------------------------------


def part_a(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    n = 2048
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    out = np.empty_like(a)
    np.matmul(a, a, out=out)  # warm up
    best = best_cpu = math.inf
    for _ in range(args.repeats_a):
        start, cpu = time.perf_counter(), time.process_time()
        np.matmul(a, a, out=out)
        best = min(best, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    cores = os.cpu_count() or 1
    return {
        "n": n,
        "seconds": best,
        "cpu_seconds": best_cpu,
        "madd_per_s": n**3 / best,
        "gflops": 2 * n**3 / best / 1e9,
        # what the same CPU time would give on idle cores (for shared machines)
        "madd_per_s_idle_estimate": n**3 * cores / best_cpu,
    }


def _engine(fp: Any, args: argparse.Namespace, **kwargs: Any) -> tuple[Any, float, float]:
    """Run the engine; return the result, wall seconds and CPU seconds (all threads)."""
    import dask

    from ensemblex.pairwise import pairwise

    start, cpu = time.perf_counter(), time.process_time()
    with dask.config.set(scheduler="threads", num_workers=args.workers):
        pw = pairwise(
            fp, channel_chunk=args.channel_chunk, sample_chunk=args.sample_chunk, **kwargs
        )
        if "store" not in kwargs:
            pw = pw.compute()  # with a store the tiles are already computed and written
    return pw, time.perf_counter() - start, time.process_time() - cpu


def _warm_up(args: argparse.Namespace) -> None:
    """One tiny run first: imports and first-call costs are not the engine's rate."""
    _engine(make_fingerprints(20, 20), args)


def part_b(args: argparse.Namespace) -> dict[str, Any]:
    _warm_up(args)
    rows = []
    for c in args.b_channels:
        fp = make_fingerprints(c, args.n)
        _, seconds, cpu = _engine(fp, args)
        n2 = args.n**2
        rows.append(
            {
                "channels": c,
                "samples": args.n,
                "seconds": seconds,
                "cpu_seconds": cpu,
                "rate_all_pairs": c * c * n2 / seconds,
                "rate_computed_pairs": c * (c + 1) / 2 * n2 / seconds,
            }
        )
    return {"runs": rows}


def _reference_pair(bc_u: Any, bc_v: Any) -> float:
    """The plain per-pair reference: product, row means, log, mean (float64)."""
    import numpy as np

    return float(-np.mean(np.log2(np.mean(bc_u * bc_v, axis=1))))


def part_c(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    from ensemblex.estimators import bhattacharyya

    c, n = args.c_channels, args.n
    fp = make_fingerprints(c, n)
    mean = np.asarray(fp["channel_mean"].values[:, 0, :], np.float64)
    logvar = np.asarray(fp["channel_logvar"].values[:, 0, :], np.float64)
    bc = bhattacharyya(mean, logvar)  # (C, N, N) float64, not timed
    # the plain reference fills the whole C x C matrix, one ordered pair at a time;
    # a reference that used the symmetry would do the C(C+1)/2 pairs u <= v only
    pairs = [(u, v) for u in range(c) for v in range(c)]
    order = np.random.default_rng(1).permutation(len(pairs))
    timed_pairs, ref = [], {}
    start = time.perf_counter()
    for k in order:
        u, v = pairs[k]
        ref[(u, v)] = _reference_pair(bc[u], bc[v])
        timed_pairs.append((u, v))
        if time.perf_counter() - start > args.c_seconds:
            break
    ref_seconds = time.perf_counter() - start
    per_pair = ref_seconds / len(timed_pairs)
    ref_total = per_pair * len(pairs)
    ref_symmetric = per_pair * c * (c + 1) // 2
    _warm_up(args)
    runs = [_engine(fp, args) for _ in range(args.repeats_c)]
    pw, engine_seconds, engine_cpu = min(runs, key=lambda run: run[1])
    joint = pw["joint_info"].values
    err = max(abs(float(joint[u, v]) - ref[(u, v)]) for u, v in timed_pairs)
    return {
        "channels": c,
        "samples": n,
        "pairs": len(pairs),
        "reference_pairs_timed": len(timed_pairs),
        "reference_extrapolated": len(timed_pairs) < len(pairs),
        "reference_seconds_per_pair": per_pair,
        "reference_seconds": ref_total,
        "reference_symmetric_seconds": ref_symmetric,
        "engine_seconds": engine_seconds,
        "engine_cpu_seconds": engine_cpu,
        "speedup": ref_total / engine_seconds,
        "speedup_over_symmetric_reference": ref_symmetric / engine_seconds,
        "max_abs_joint_info_difference": err,
    }


def part_d(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    c, n = args.d_channels, args.n
    start, cpu = time.perf_counter(), time.process_time()
    fp = make_fingerprints(c, n)
    with tempfile.TemporaryDirectory() as tmp:
        pw, _, _ = _engine(fp, args, store=Path(tmp) / "pairwise.zarr")
        seconds = time.perf_counter() - start
        cpu = time.process_time() - cpu
        # spot-check a corner of the stored result (reads one tile)
        corner = np.asarray(pw["nmi"].data[:50, -50:].compute())
        finite = bool(np.isfinite(corner[~np.isnan(corner)]).all())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    full = 20_000
    return {
        "channels": c,
        "samples": n,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_rss_bytes": rss,
        "finite": finite,
        "extrapolated_seconds_20000": seconds * (full / c) ** 2 if c != full else seconds,
        "extrapolated_cpu_seconds_20000": cpu * (full / c) ** 2 if c != full else cpu,
    }


PARTS = {"a": part_a, "b": part_b, "c": part_c, "d": part_d}


# -- driver ---------------------------------------------------------------------------------------


def _child(part: str, args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    env = dict(os.environ)
    if part != "a" and args.blas_threads > 0:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(args.blas_threads)
    cmd = [sys.executable, __file__, *argv, "--child", part]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"part {part} failed:\n{proc.stdout}\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _table(result: dict[str, Any]) -> str:
    lines = []
    cores = result.get("workers") or os.cpu_count() or 1
    a = result.get("a")
    if a:
        lines.append(
            f"(a) float32 matmul 2048^3: {a['gflops']:.1f} GFLOP/s "
            f"= {a['madd_per_s']:.3g} multiply-adds/s"
        )
    for row in result.get("b", {}).get("runs", []):
        line = (
            f"(b) engine C={row['channels']} N={row['samples']}: {row['seconds']:.2f} s "
            f"(CPU {row['cpu_seconds']:.1f} s), "
            f"{row['rate_all_pairs']:.3g} products/s over all C^2 pairs"
        )
        if a:
            line += (
                f" (ratio {row['rate_all_pairs'] / a['madd_per_s']:.2f}); "
                f"{row['rate_computed_pairs']:.3g} over computed pairs "
                f"(ratio {row['rate_computed_pairs'] / a['madd_per_s']:.2f})"
            )
            idle = row["channels"] ** 2 * row["samples"] ** 2 / (row["cpu_seconds"] / cores)
            line += (
                f"\n    CPU-time estimate on {cores} idle cores: "
                f"ratio {idle / a['madd_per_s_idle_estimate']:.2f} (all pairs), "
                f"{idle / 2 / a['madd_per_s_idle_estimate']:.2f} (computed pairs; "
                f"matmul by the same CPU-time measure)"
            )
        lines.append(line)
    c = result.get("c")
    if c:
        how = (
            f"timed on {c['reference_pairs_timed']} of {c['pairs']} pairs, extrapolated"
            if c["reference_extrapolated"]
            else "all pairs timed"
        )
        lines.append(
            f"(c) reference C={c['channels']}: {c['reference_seconds']:.1f} s over all "
            f"C^2 ordered pairs ({how}); engine {c['engine_seconds']:.2f} s "
            f"(CPU {c['engine_cpu_seconds']:.2f} s); speed-up {c['speedup']:.0f}x "
            f"({c['speedup_over_symmetric_reference']:.0f}x over a reference that computes "
            f"only the pairs u <= v); "
            f"max |J - J_ref| {c['max_abs_joint_info_difference']:.1e} bits"
        )
    d = result.get("d")
    if d:
        lines.append(
            f"(d) C={d['channels']} N={d['samples']} with store: {d['seconds']:.1f} s "
            f"(CPU {d['cpu_seconds']:.1f} s), "
            f"peak RSS {d['peak_rss_bytes'] / 1e9:.2f} GB"
            + (
                f"; extrapolated to 20,000 channels (x C^2): wall "
                f"{d['extrapolated_seconds_20000'] / 60:.1f} min, CPU "
                f"{d['extrapolated_cpu_seconds_20000'] / 60:.1f} min"
                if d["channels"] != 20_000
                else ""
            )
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--parts", default="a,b,c,d", help="comma-separated subset of a,b,c,d")
    parser.add_argument("--n", type=int, default=300, help="samples")
    parser.add_argument("--b-channels", type=int, nargs="+", default=[1000, 3000])
    parser.add_argument("--c-channels", type=int, default=300)
    parser.add_argument(
        "--c-seconds",
        type=float,
        default=20.0,
        help="time budget of the per-pair reference; the rest is extrapolated",
    )
    parser.add_argument("--d-channels", type=int, default=20_000)
    parser.add_argument("--repeats-a", type=int, default=5)
    parser.add_argument("--repeats-c", type=int, default=3, help="engine runs in (c), best kept")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="Dask threads for the engine"
    )
    parser.add_argument(
        "--blas-threads",
        type=int,
        default=0,
        help="set *_NUM_THREADS for the engine parts; 0 (default): leave the environment "
        "alone and let the engine limit BLAS inside Dask threads itself",
    )
    parser.add_argument("--channel-chunk", type=int, default=None)
    parser.add_argument("--sample-chunk", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny sizes")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.b_channels, args.c_channels, args.d_channels = [200], 60, 400
        args.n, args.c_seconds, args.repeats_a = 100, 2.0, 2
    if args.child:
        print(json.dumps(PARTS[args.child](args)))
        return 0
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"--parts must be a subset of a,b,c,d; got {sorted(unknown)}")
    from ensemblex import __version__

    result: dict[str, Any] = {
        "ensemblex_version": __version__,
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "workers": args.workers,
        "blas_threads": args.blas_threads,
        "channel_chunk": args.channel_chunk,
        "sample_chunk": args.sample_chunk,
        "quick": args.quick,
        "targets": TARGETS,
    }
    child_argv = [a for a in argv if a != "--child"]
    start = time.perf_counter()
    for part in parts:
        result[part] = _child(part, args, child_argv)
        print(
            _table({k: result[k] for k in ("a", part) if k in result}).splitlines()[-1], flush=True
        )
    if "a" in result:
        for row in result.get("b", {}).get("runs", []):
            row["ratio_all_pairs"] = row["rate_all_pairs"] / result["a"]["madd_per_s"]
            row["ratio_computed_pairs"] = row["rate_computed_pairs"] / result["a"]["madd_per_s"]
    result["total_seconds"] = time.perf_counter() - start
    print("\n" + _table(result))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / ("pairwise_quick.json" if args.quick else "pairwise.json")
    path.write_text(json.dumps(result, indent=2))
    print(f"\ntotal {result['total_seconds']:.1f} s; wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
