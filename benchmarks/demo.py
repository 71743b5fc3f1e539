"""Time the full end-to-end demo (``ensemblex demo``) as a user runs it.

Runs ``ensemblex demo --out OUT`` in a fresh Python process (TensorFlow start-up,
data generation, training, comparison, clustering, synthesis and the report all
count), prints the wall time and the time of each step, and writes
``demo.json`` into ``--results`` (default ``benchmarks/results/``). The target
is under 10 minutes on a 2-core CPU without a GPU.

Usage::

    python benchmarks/demo.py                  # the full demo (several minutes)
    python benchmarks/demo.py --quick          # the CI configuration (about a minute)
    python benchmarks/demo.py --dataset ring   # the ring-toy variant
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

TARGET_S = 600.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="time the --quick demo instead")
    parser.add_argument("--dataset", default="dsprites", choices=["dsprites", "ring"])
    parser.add_argument("--out", default=None, help="demo output folder (default: a temp dir)")
    parser.add_argument(
        "--overwrite", action="store_true", help="let the demo replace its files in --out"
    )
    parser.add_argument(
        "--results",
        default=str(Path(__file__).resolve().parent / "results"),
        help="folder for demo.json",
    )
    args = parser.parse_args(argv)

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="ensemblex-demo-"))
    cmd = [sys.executable, "-m", "ensemblex.cli", "demo", "--out", str(out), "--no-progress"]
    cmd += ["--dataset", args.dataset] + (["--quick"] if args.quick else [])
    cmd += ["--overwrite"] if args.overwrite else []
    # stderr is a log here (not a terminal): progress comes as plain lines; TensorFlow's
    # own log level is left to ensemblex, as a user's run would see it
    env = {**os.environ, "MPLBACKEND": "Agg"}
    print("running:", " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        print(f"the demo failed with exit code {proc.returncode}", file=sys.stderr)
        return proc.returncode

    summary = json.loads((out / "summary.json").read_text())
    steps = summary.get("timings_s", {})
    result = {
        "benchmark": "demo",
        "quick": args.quick,
        "dataset": args.dataset,
        "wall_s": round(wall, 1),
        "target_s": TARGET_S,
        "within_target": wall < TARGET_S,
        "steps_s": steps,
        "config": summary.get("config"),
        "numbers": summary.get("numbers"),
        "synthesis": {
            k: v for k, v in summary.get("synthesis", {}).items() if k != "reference_channels"
        },
        "ring_fusion": summary.get("ring_fusion"),
        "output": str(out),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "processor": platform.processor(),
        },
    }
    print()
    print(
        f"demo ({'quick' if args.quick else 'full'}, {args.dataset}): {wall:.1f} s wall "
        f"(target < {TARGET_S:.0f} s: {'yes' if wall < TARGET_S else 'NO'})"
    )
    for name, seconds in steps.items():
        print(f"  {name:>12}: {float(seconds):7.1f} s")
    numbers = summary.get("numbers", {})
    print(
        f"  channels {numbers.get('channels')}, informative {numbers.get('informative_channels')}, "
        f"groups {numbers.get('groups')} (min_samples {numbers.get('min_samples')})"
    )
    for row in numbers.get("groups_table", []):
        nmi = row.get("best_nmi")
        shown = f"{nmi:.2f}" if isinstance(nmi, int | float) else "-"
        print(
            f"    group {row['group']}: {row['size']} channels in {row['models']} models, "
            f"best {row.get('best_factors') or '-'} (NMI {shown})"
        )
    ring = summary.get("ring_fusion")
    if ring:
        print(
            f"  ring fusion: uniformity fused {ring['uniformity_fused']:.3f} vs single "
            f"{ring['uniformity_single_mean']:.3f} ({ring['n_learners']} learners)"
        )
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    name = "demo_quick.json" if args.quick else "demo.json"
    (results / name).write_text(json.dumps(result, indent=2))
    print(f"wrote {results / name}; report: {out / 'report.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
