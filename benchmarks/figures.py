"""Figures at scale: wall time and peak memory of each figure, from a store (issue 10).

Every stage runs in its own child process (``spawn``), which reports its wall
time and its own peak resident memory (``VmHWM``, see ``_harness.py``), and
the baseline is measured side by side in the same run:

- ``structure (ordered_similarity)``: :func:`ensemblex.plot.plot_structure`
  from Clusters that carry the block means in OPTICS order (at most
  1000 x 1000 pixels), as :func:`ensemblex.cluster` writes them;
- ``structure (streamed from store)``: the same figure for Clusters without
  them (older files), block means streamed from a Zarr Pairwise store of
  ``C x C`` float32 values;
- ``structure (full matrix, baseline)``: what the figure did before: the
  whole reordered ``C x C`` matrix read into memory as float64 and drawn
  (``--baseline``; at 14,000 channels that is 1.5 GB for the matrix alone);
- ``nmi_vi``: :func:`ensemblex.plot.plot_nmi_vi` (200,000 random pairs) from
  the store.

The Clusters and the store are synthetic (uniform random similarities, seven
groups): the figures' cost depends on the sizes, not on the values.

Usage::

    python benchmarks/figures.py                         # 14,000 informative channels
    python benchmarks/figures.py --channels 5000 --baseline

Writes ``benchmarks/results/figures.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _harness import run_stage

RESULTS = Path(__file__).parent / "results"


# -- inputs ------------------------------------------------------------------------------


def make_inputs(folder: str, n_informative: int) -> dict[str, Any]:
    """Synthetic Clusters (netCDF, with ordered_similarity) and a Zarr Pairwise store."""
    import dask.array as da
    import numpy as np
    import xarray as xr

    from ensemblex._kinds import stamp
    from ensemblex.io import save
    from ensemblex.plot import MAX_PIXELS

    rng = np.random.default_rng(0)
    n_all = n_informative * 10 // 7  # 70 % informative, as in issue 10's setup
    informative = np.zeros(n_all, bool)
    informative[rng.choice(n_all, n_informative, replace=False)] = True
    ordering = np.flatnonzero(informative)[rng.permutation(n_informative)]
    group = np.full(n_all, -1)
    group[ordering] = np.arange(n_informative) * 7 // n_informative
    reach = np.full(n_all, np.nan)
    reach[ordering] = rng.uniform(0.1, 1.0, n_informative)
    reach[ordering[0]] = np.inf
    central = np.zeros(n_all, bool)
    central[ordering[:: max(1, n_informative // 7)]] = True
    block = -(-n_informative // MAX_PIXELS)
    n_pix = -(-n_informative // block)
    starts = np.arange(0, n_informative, block)
    clusters = xr.Dataset(
        {
            "info": ("channel", np.ones(n_all, np.float32)),
            "informative": ("channel", informative),
            "group": ("channel", group),
            "reachability": ("channel", reach),
            "central": ("channel", central),
            "ordering": ("order", ordering),
            "label_nmi": (("channel", "factor"), rng.uniform(0, 1, (n_all, 5)).astype("f4")),
            "ordered_similarity": (
                ("row", "col"),
                rng.uniform(0, 1, (n_pix, n_pix)).astype(np.float32),
                {"block_size": block},
            ),
        },
        coords={
            "channel": np.arange(n_all),
            "row": starts,
            "col": starts,
            "factor": ["shape", "scale", "orientation", "posX", "posY"],
            "model": ("channel", np.arange(n_all) // 10),
            "latent": ("channel", np.arange(n_all) % 10),
        },
    )
    paths = {"clusters": f"{folder}/clusters.nc", "store": f"{folder}/pairwise.zarr"}
    save(stamp(clusters, "clusters", measure="nmi", min_samples=50), paths["clusters"])
    ids = np.flatnonzero(informative)
    gen = da.random.default_rng(1)
    n = ids.size
    chunks = (min(1000, n), n)
    xr.Dataset(
        {
            "nmi": (
                ("channel_a", "channel_b"),
                gen.uniform(0, 1, (n, n), chunks=chunks).astype("f4"),
            ),
            "vi": (
                ("channel_a", "channel_b"),
                gen.uniform(0, 4, (n, n), chunks=chunks).astype("f4"),
            ),
            "info_a": ("channel_a", np.ones(n, np.float32)),
        },
        coords={"channel_a": ids, "channel_b": ids},
    ).to_zarr(paths["store"], mode="w")
    return {"paths": paths}


# -- stages ------------------------------------------------------------------------------


def _open(paths: dict[str, str]) -> tuple[Any, Any]:
    import xarray as xr

    from ensemblex._kinds import stamp
    from ensemblex.io import open_dataset

    cl = open_dataset(paths["clusters"])
    pw = stamp(xr.open_zarr(paths["store"]), "pairwise", min_info=0.5)
    return cl, pw


def stage_ordered(paths: dict[str, str], png: str) -> dict[str, Any]:
    from ensemblex.plot import plot_structure

    cl, _ = _open(paths)
    plot_structure(cl, path=png)
    return {}


def stage_streamed(paths: dict[str, str], png: str) -> dict[str, Any]:
    from ensemblex.plot import plot_structure

    cl, pw = _open(paths)
    plot_structure(cl.drop_vars("ordered_similarity"), pairwise=pw, path=png)
    return {}


def stage_baseline(paths: dict[str, str], png: str) -> dict[str, Any]:
    """The figure as it was drawn before: the whole reordered matrix in float64."""
    import numpy as np

    from ensemblex.plot import _figure, _save

    cl, pw = _open(paths)
    ordering = np.asarray(cl["ordering"].values)
    ids = cl["channel"].values[ordering]
    sim = np.clip(np.asarray(pw["nmi"].sel(channel_a=ids, channel_b=ids).values, np.float64), 0, 1)
    fig = _figure((8.0, 7.5))
    ax = fig.add_subplot()
    ax.imshow(sim, cmap="magma_r", vmin=0, vmax=1, interpolation="nearest", aspect="auto")
    _save(fig, png)
    return {}


def stage_nmi_vi(paths: dict[str, str], png: str) -> dict[str, Any]:
    from ensemblex.plot import plot_nmi_vi

    _, pw = _open(paths)
    plot_nmi_vi(pw, path=png)
    return {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--channels", type=int, default=14000, help="informative channels")
    parser.add_argument("--baseline", action="store_true", help="also the full-matrix figure")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        print(f"figures at {args.channels} informative channels", flush=True)
        # the inputs are written by a child too: on Linux a process keeps its parent's
        # peak resident memory across fork and exec, so the parent must stay small
        made = run_stage(
            "inputs (Clusters, Zarr store)", make_inputs, folder=tmp, n_informative=args.channels
        )
        if made["status"] != "ok":
            return 1
        paths = made["paths"]
        stages = [
            ("structure (ordered_similarity)", stage_ordered),
            ("structure (streamed from store)", stage_streamed),
            ("nmi_vi (200k pairs from store)", stage_nmi_vi),
        ]
        if args.baseline:
            stages.append(("structure (full matrix, baseline)", stage_baseline))
        results = [
            run_stage(name, fn, paths=paths, png=str(args.out / f"figures_{k}.png"))
            for k, (name, fn) in enumerate(stages)
        ]
    by_name = {r["stage"]: r for r in results}
    base = by_name.get("structure (full matrix, baseline)")
    ordered = by_name["structure (ordered_similarity)"]
    if base is not None and base["status"] == ordered["status"] == "ok":
        print(
            f"  baseline / ordered_similarity: time {base['wall_s'] / ordered['wall_s']:.1f}x, "
            f"peak memory {base['peak_rss_mb'] / ordered['peak_rss_mb']:.1f}x"
        )
    record = {
        "channels_informative": args.channels,
        "stages": results,
        "machine": {"python": sys.version.split()[0], "platform": platform.platform()},
    }
    (args.out / "figures.json").write_text(json.dumps(record, indent=2))
    print(f"wrote {args.out / 'figures.json'}")
    return 0 if all(r["status"] == "ok" for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
