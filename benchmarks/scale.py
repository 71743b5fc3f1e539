"""The whole analysis at scale, stage by stage: wall time and peak memory (issue 10).

Two parts, every stage in its own child process (``spawn``), which reports
its wall time and its own peak resident memory (``VmHWM``, see
``_harness.py``, so stages do not inherit each other's peaks):

(a) OPTICS graph: :func:`ensemblex.optics.compute_optics_graph` against
    scikit-learn's ``OPTICS(metric="precomputed")`` on the same random float32
    matrices (n = 1000, 2000), checked equal, ratio printed; ours alone at
    larger n (4000, 14000 by default).
(b) The pipeline on ``planted_ensemble(n_models=channels / 10, n_latent=10,
    n_samples=300, n_factors=5, n_mixed=2)``: posteriors to netCDF, compare
    into a Zarr store, cluster from the store, the structure figure,
    ``describe_groups``, and a synthesis of the biggest group (500 steps;
    skipped, with the reason, when ``ensemblex.synthesis`` cannot run here).
(c) optional (``--synthetic-cluster``): ``cluster()`` alone from a synthetic
    Pairwise store of any size.
(d) optional (``--ensemble-cluster MODELS``): ``cluster()`` with its defaults
    on ``MODELS x 10`` channels (3 factors and one entangled channel per model),
    timed, with the ARI of the groups against the planted factors.

Usage::

    python benchmarks/scale.py                      # quick: 2000 channels
    python benchmarks/scale.py --channels 20000 --ensemble-cluster 1000   # issue 10
    python benchmarks/scale.py --skip-pipeline      # OPTICS only

Writes ``benchmarks/results/scale.json`` (``--out``) and the figure beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _harness import run_stage

RESULTS = Path(__file__).parent / "results"


# -- child-process harness ---------------------------------------------------------------


# -- (a) OPTICS -------------------------------------------------------------------------


def _random_matrix(n: int, seed: int = 0) -> Any:
    import numpy as np

    rng = np.random.default_rng(seed)
    d = rng.random((n, n), dtype=np.float32)
    # symmetric in place, zero diagonal (no n^2 float64 copy)
    step = 1024
    for i in range(0, n, step):
        for j in range(i, n, step):
            m = 0.5 * (d[i : i + step, j : j + step] + d[j : j + step, i : i + step].T)
            d[i : i + step, j : j + step] = m
            d[j : j + step, i : i + step] = m.T
    np.fill_diagonal(d, 0.0)
    return d


def optics_ours(n: int, min_samples: int) -> dict[str, Any]:
    from ensemblex.optics import compute_optics_graph

    d = _random_matrix(n)
    t0 = time.perf_counter()
    compute_optics_graph(d, min_samples=min_samples)
    return {"n": n, "seconds": time.perf_counter() - t0}


def optics_both(n: int, min_samples: int) -> dict[str, Any]:
    import numpy as np
    from sklearn.cluster import OPTICS

    from ensemblex.optics import compute_optics_graph

    d = _random_matrix(n)
    t0 = time.perf_counter()
    ours = compute_optics_graph(d, min_samples=min_samples)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    sk = OPTICS(metric="precomputed", min_samples=min_samples).fit(d)
    t_sk = time.perf_counter() - t0
    same = bool(
        np.array_equal(ours[0], sk.ordering_)
        and np.array_equal(ours[1], sk.core_distances_)
        and np.array_equal(ours[2], sk.reachability_)
        and np.array_equal(ours[3], sk.predecessor_)
    )
    return {
        "n": n,
        "ours_s": t_ours,
        "sklearn_s": t_sk,
        "ratio": t_sk / t_ours,
        "identical": same,
    }


# -- (b) the pipeline -------------------------------------------------------------------


def stage_posteriors(channels: int, samples: int, path: str) -> dict[str, Any]:
    from ensemblex.io import save
    from ensemblex.testing import planted_ensemble

    post = planted_ensemble(
        n_models=channels // 10, n_latent=10, n_samples=samples, n_factors=5, n_mixed=2
    )
    save(post, path, overwrite=True)
    return {"channels": channels, "samples": samples, "bytes": os.path.getsize(path)}


def stage_compare(post_path: str, store: str) -> dict[str, Any]:
    from ensemblex.fingerprints import fingerprint
    from ensemblex.io import open_dataset
    from ensemblex.pairwise import pairwise

    post = open_dataset(post_path, chunks={})
    fp = fingerprint(post)
    pw = pairwise(fp, store=store)
    return {"channels": int(pw.sizes["channel_a"])}


def stage_cluster(post_path: str, store: str, out: str) -> dict[str, Any]:
    from ensemblex.fingerprints import fingerprint
    from ensemblex.io import open_dataset
    from ensemblex.structure import cluster

    pw = open_dataset(store, chunks={})
    # the Fingerprints (lazy, from the posteriors file) bring the labels: label and pair NMI
    fp = fingerprint(open_dataset(post_path, chunks={}))
    t0 = time.perf_counter()
    cl = cluster(fp, pairwise=pw)
    return _cluster_record(cl, time.perf_counter() - t0, out)


def _cluster_record(cl: Any, seconds: float, out: str) -> dict[str, Any]:
    """Save the Clusters to ``out`` and describe them (the cluster stages' result)."""
    from ensemblex.io import save

    save(cl, out, overwrite=True)
    return {
        "cluster_s": seconds,
        "informative": int(cl["informative"].sum()),
        "groups": int(cl.attrs["n_groups"]),
        "min_samples": int(cl.attrs["min_samples"]),
        "min_samples_rule": cl.attrs["min_samples_rule"],
        "xi_window": int(cl.attrs.get("xi_window", 1)),
        "xi_window_rule": cl.attrs.get("xi_window_rule", ""),
        "kept_similarity": "similarity" in cl,
        "ordered_similarity": list(cl["ordered_similarity"].shape),
        "clusters_nc_bytes": os.path.getsize(out),
    }


def stage_figure(clusters: str, png: str) -> dict[str, Any]:
    import matplotlib

    matplotlib.use("Agg")
    from ensemblex.io import open_dataset
    from ensemblex.plot import plot_structure

    cl = open_dataset(clusters).load()
    plot_structure(cl, path=png)
    return {"png": png}


def stage_describe(clusters: str, csv: str) -> dict[str, Any]:
    from ensemblex.io import open_dataset
    from ensemblex.structure import describe_groups

    cl = open_dataset(clusters).load()
    table = describe_groups(cl)
    table.to_csv(csv, index=False)
    print(table.to_string(index=False), flush=True)
    return {"groups": len(table), "table": table.to_dict(orient="records")}


def stage_synthesis(
    post_path: str, clusters: str, steps: int, reference_memory: int | None
) -> dict[str, Any]:
    from ensemblex.fingerprints import fingerprint
    from ensemblex.io import open_dataset
    from ensemblex.structure import group_channels
    from ensemblex.synthesis import synthesize

    cl = open_dataset(clusters).load()
    channels, group = group_channels(cl)
    fp = fingerprint(open_dataset(post_path, chunks={}))
    extra = {} if reference_memory is None else {"reference_memory": reference_memory}
    t0 = time.perf_counter()
    syn = synthesize(fp, channels=channels, steps=steps, progress=False, **extra)
    return {
        "group": group,
        "references": len(channels),
        "reference_storage": syn.attrs["reference_storage"],
        "synthesize_s": time.perf_counter() - t0,
        "steps": steps,
        "final_similarity": float(syn.attrs.get("final_similarity", float("nan"))),
    }


#: issue 10's targets for the whole chain at 20,000 channels
CHAIN_TARGET_S, STAGE_TARGET_MB = 600.0, 3072.0


def _chain_summary(stages: list[dict[str, Any]], expected: int) -> dict[str, Any]:
    """The whole chain: the stages' wall times added up, the largest peak, against the targets."""
    ok = [s for s in stages if s["status"] == "ok"]
    total = sum(s["wall_s"] for s in ok)
    peak = max((s["peak_rss_mb"] for s in ok), default=float("nan"))
    summary = {
        "complete": len(ok) == expected,
        "wall_s": total,
        "largest_stage_peak_mb": peak,
        "time_over_target": total / CHAIN_TARGET_S,
        "peak_over_target": peak / STAGE_TARGET_MB,
    }
    print(
        f"  whole chain{'' if summary['complete'] else ' (incomplete)'}: {total:.0f} s = "
        f"{summary['time_over_target']:.2f} x the {CHAIN_TARGET_S:.0f}-s target; largest stage "
        f"peak {peak:.0f} MB = {summary['peak_over_target']:.2f} x {STAGE_TARGET_MB:.0f} MB",
        flush=True,
    )
    return summary


# -- (c) cluster() alone at scale, from a synthetic Pairwise store ---------------------------


def _synthetic_block(block: Any, groups: Any, informative: Any, block_info: Any = None) -> Any:
    import numpy as np

    (r0, r1), (c0, c1) = block_info[0]["array-location"]
    i = np.arange(r0, r1)[:, None].astype(np.float64)
    j = np.arange(c0, c1)[None, :].astype(np.float64)
    # symmetric jitter in [0, 1): a function of the unordered pair
    jitter = np.abs(np.sin(0.618 * (i + j) + 0.0001 * i * j))
    same = groups[r0:r1, None] == groups[None, c0:c1]
    nmi = np.where(same, 0.6 + 0.3 * jitter, 0.02 + 0.05 * jitter)
    nmi[np.arange(r0, r1)[:, None] == np.arange(c0, c1)[None, :]] = 1.0
    keep = informative[r0:r1, None] & informative[None, c0:c1]
    return np.where(keep, nmi, np.nan).astype(np.float32)


def stage_synthetic_store(
    channels: int, informative: int, n_models: int, store: str
) -> dict[str, Any]:
    """A Pairwise Zarr store of ``channels`` channels (``informative`` of them informative).

    Groups are planted (5 of them, plus 20 % of channels in none); written
    block by block, never held whole. Only ``nmi`` and ``info_a`` are written
    with values; ``vi`` and ``joint_info`` point at the same chunks pattern.
    """
    import dask.array as da
    import numpy as np
    import xarray as xr

    from ensemblex._kinds import stamp

    rng = np.random.default_rng(0)
    groups = rng.integers(0, 5, size=channels)
    inf_mask = np.zeros(channels, dtype=bool)
    inf_mask[rng.choice(channels, informative, replace=False)] = True
    lone = rng.random(channels) < 0.2
    groups = np.where(lone, -1 - np.arange(channels), groups)  # alone: in no group
    chunk = 2048
    template = da.zeros((channels, channels), dtype=np.float32, chunks=chunk)
    nmi = template.map_blocks(_synthetic_block, groups, inf_mask, dtype=np.float32)
    info = np.where(inf_mask, 1.0 + rng.random(channels), 0.0).astype(np.float32)
    ids = np.arange(channels)
    model = ids % n_models
    ds = xr.Dataset(
        {
            "nmi": (("channel_a", "channel_b"), nmi),
            "vi": (("channel_a", "channel_b"), nmi),
            "joint_info": (("channel_a", "channel_b"), nmi),
            "info_a": ("channel_a", info),
            "info_b": ("channel_b", info),
            "repeat_info_a": ("channel_a", info),
            "repeat_info_b": ("channel_b", info),
        },
        coords={"channel_a": ids, "channel_b": ids, "model_a": ("channel_a", model),
                "model_b": ("channel_b", model)},
    )  # fmt: skip
    ds = stamp(ds, "pairwise", min_info=0.01)
    ds.to_zarr(store, mode="w", consolidated=True)
    return {"channels": channels, "informative": informative}


def stage_cluster_store(store: str, out: str) -> dict[str, Any]:
    from ensemblex.io import open_dataset
    from ensemblex.structure import cluster

    pw = open_dataset(store, chunks={})
    t0 = time.perf_counter()
    cl = cluster(pw)
    return _cluster_record(cl, time.perf_counter() - t0, out)


# -- (d) cluster() with defaults on a large ensemble: 10,000 channels from 1,000 models ---------


def stage_ensemble_store(n_models: int, samples: int, store: str, post_path: str) -> dict[str, Any]:
    """Posteriors of ``n_models`` models (3 factors, 1 entangled channel each) into a store."""
    from ensemblex.fingerprints import fingerprint
    from ensemblex.io import save
    from ensemblex.pairwise import pairwise
    from ensemblex.testing import planted_ensemble

    post = planted_ensemble(
        n_models=n_models, n_latent=10, n_samples=samples, n_factors=3, n_mixed=1, seed=0
    )
    save(post, post_path, overwrite=True)
    t0 = time.perf_counter()
    pairwise(fingerprint(post), store=store)
    return {"channels": n_models * 10, "compare_s": time.perf_counter() - t0}


def stage_ensemble_cluster(store: str, post_path: str) -> dict[str, Any]:
    import numpy as np
    from sklearn.metrics import adjusted_rand_score

    from ensemblex.io import open_dataset
    from ensemblex.structure import cluster

    pw = open_dataset(store, chunks={})
    t0 = time.perf_counter()
    cl = cluster(pw)  # defaults: min_samples="auto"
    seconds = time.perf_counter() - t0
    truth = np.asarray(open_dataset(post_path)["planted"].values).reshape(-1)
    group = np.asarray(cl["group"].values)
    pure = truth >= 0  # channels of one planted factor (the entangled ones are -1)
    return {
        "cluster_s": seconds,
        "informative": int(cl["informative"].sum()),
        "groups": int(cl.attrs["n_groups"]),
        "planted_factors": int(np.unique(truth[pure]).size),
        "min_samples": int(cl.attrs["min_samples"]),
        "ari_pure_channels": float(adjusted_rand_score(truth[pure], group[pure])),
    }


# -- main -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--channels", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--min-samples", type=int, default=20, help="for the OPTICS part")
    parser.add_argument("--optics-compare", type=int, nargs="*", default=[1000, 2000])
    parser.add_argument("--optics-alone", type=int, nargs="*", default=[4000, 14000])
    parser.add_argument("--synthesis-steps", type=int, default=500)
    parser.add_argument(
        "--reference-memory",
        type=int,
        default=None,
        help="synthesize(reference_memory=...) in bytes (default: the library's, 1 GiB)",
    )
    parser.add_argument("--skip-optics", action="store_true")
    parser.add_argument("--skip-pipeline", action="store_true")
    parser.add_argument("--skip-synthesis", action="store_true")
    parser.add_argument(
        "--synthetic-cluster",
        type=int,
        nargs=2,
        metavar=("CHANNELS", "INFORMATIVE"),
        default=None,
        help="also cluster() a synthetic Pairwise Zarr store of this size (e.g. 20000 14000)",
    )
    parser.add_argument(
        "--ensemble-cluster",
        type=int,
        default=None,
        metavar="MODELS",
        help="also cluster() with defaults MODELS x 10 channels (3 factors and 1 entangled "
        "channel per model; issue 10: 1000)",
    )
    parser.add_argument("--workdir", default=None, help="default: a temporary directory")
    parser.add_argument("--out", default=str(RESULTS / "scale.json"))
    args = parser.parse_args(argv)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(),
                    "cpus": os.cpu_count()},
        "optics": [],
        "pipeline": [],
        "synthetic_cluster": [],
        "ensemble_cluster": [],
    }  # fmt: skip
    if not args.skip_optics:
        print("(a) OPTICS graph, ours against scikit-learn (same matrix)", flush=True)
        for n in args.optics_compare:
            r = run_stage(f"optics both n={n}", optics_both, n=n, min_samples=args.min_samples)
            if r["status"] == "ok":
                print(
                    f"    n={n}: ours {r['ours_s']:.3f} s, sklearn {r['sklearn_s']:.2f} s, "
                    f"ratio {r['ratio']:.0f}x, identical={r['identical']}",
                    flush=True,
                )
            report["optics"].append(r)
        for n in args.optics_alone:
            r = run_stage(f"optics ours n={n}", optics_ours, n=n, min_samples=args.min_samples)
            report["optics"].append(r)
    if not args.skip_pipeline:
        print(f"(b) pipeline at {args.channels} channels, N={args.samples}", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(args.workdir or tmp)
            work.mkdir(parents=True, exist_ok=True)
            post = str(work / "posteriors.nc")
            store = str(work / "pairwise.zarr")
            clusters = str(work / "clusters.nc")
            png = str(out.with_name(f"scale_structure_{args.channels}.png"))
            csv = str(out.with_name(f"scale_groups_{args.channels}.csv"))
            stages: list[tuple[str, Callable[..., dict[str, Any]], dict[str, Any]]] = [
                ("posteriors", stage_posteriors,
                 {"channels": args.channels, "samples": args.samples, "path": post}),
                ("compare (Zarr store)", stage_compare, {"post_path": post, "store": store}),
                ("cluster (from store)", stage_cluster, {"post_path": post, "store": store, "out": clusters}),
                ("structure figure", stage_figure, {"clusters": clusters, "png": png}),
                ("describe_groups", stage_describe, {"clusters": clusters, "csv": csv}),
                ("synthesis (biggest group)", stage_synthesis,
                 {"post_path": post, "clusters": clusters, "steps": args.synthesis_steps,
                  "reference_memory": args.reference_memory}),
            ]  # fmt: skip
            if args.skip_synthesis:
                stages = stages[:-1]
            for name, fn, kwargs in stages:
                r = run_stage(name, fn, **kwargs)
                report["pipeline"].append(r)
                if r["status"] != "ok" and name in ("posteriors", "compare (Zarr store)"):
                    break  # the later stages need this one
            report["chain"] = _chain_summary(report["pipeline"], len(stages))
    if args.synthetic_cluster:
        channels, informative = args.synthetic_cluster
        print(f"(c) cluster() from a synthetic Pairwise store: {channels} channels, "
              f"{informative} informative", flush=True)  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(args.workdir or tmp)
            work.mkdir(parents=True, exist_ok=True)
            store = str(work / f"synthetic_{channels}.zarr")
            for name, fn, kwargs in [
                ("synthetic store", stage_synthetic_store,
                 {"channels": channels, "informative": informative,
                  "n_models": max(channels // 10, 1), "store": store}),
                ("cluster (synthetic store)", stage_cluster_store,
                 {"store": store, "out": str(work / "synthetic_clusters.nc")}),
            ]:  # fmt: skip
                r = run_stage(name, fn, **kwargs)
                report["synthetic_cluster"].append(r)
                if r["status"] != "ok":
                    break
    if args.ensemble_cluster:
        models = args.ensemble_cluster
        print(f"(d) cluster() with defaults: {models * 10} channels from {models} models",
              flush=True)  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(args.workdir or tmp)
            work.mkdir(parents=True, exist_ok=True)
            store = str(work / f"ensemble_{models}.zarr")
            post = str(work / f"ensemble_{models}.nc")
            for name, fn, kwargs in [
                ("posteriors + compare", stage_ensemble_store,
                 {"n_models": models, "samples": args.samples, "store": store, "post_path": post}),
                ("cluster (defaults)", stage_ensemble_cluster, {"store": store, "post_path": post}),
            ]:  # fmt: skip
                r = run_stage(name, fn, **kwargs)
                report["ensemble_cluster"].append(r)
                if r["status"] != "ok":
                    break
                if "ari_pure_channels" in r:
                    print(f"    {r['groups']} groups for {r['planted_factors']} planted factors, "
                          f"ARI {r['ari_pure_channels']:.3f}, min_samples {r['min_samples']}, "
                          f"cluster() {r['cluster_s']:.1f} s", flush=True)  # fmt: skip
    every = report["optics"] + report["pipeline"] + report["synthetic_cluster"]
    for r in every + report["ensemble_cluster"]:
        r.pop("traceback", None) if r["status"] == "ok" else None
    out.write_text(json.dumps(report, indent=2, default=str))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
