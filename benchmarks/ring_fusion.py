"""Benchmark: fusing weak 1-D learners of the ring into one 2-D channel (paper Fig. 6).

The paper's SO(2) experiment. Weak learners are 1-D channels of points on a
circle: each must cut the circle somewhere, so alone it misses one adjacency.
Ensembles of 2, 5, 10, 20 and 50 learners (5 repeats, disjoint learners per
repeat) are fused with :func:`ensemblex.synthesize` for each objective, and
the ring uniformity of the synthesised means (std / mean of neighbour
distances; lower is better) is reported against ensemble size.

Weak learners:

- ``--learners generated`` (default): :func:`ensemblex.synthesis.ring_learners`,
  the circle unrolled onto [-1, 1] from a random cut with a random orientation,
  plus noise;
- ``--learners vae``: 1-D beta-VAEs trained on the ring with
  :func:`ensemblex.train_ensemble` (paper settings: 2 x 256 tanh MLPs, MSE,
  beta 0.03, Adam 1e-3, batch 2048, ``--vae-steps`` steps).

Objectives: ``vi`` (exp(-VI)), ``nmi``, ``info`` (shared information) and
``nmi_floor`` (NMI with ``info_floor`` = ``--floor-fraction`` x the mean
reference information: the remedy investigated for the NMI hazard).

Outputs in ``--out`` (default ``benchmarks/results/``): ``ring_fusion.json``
(settings, every run, mean/std per objective and size), ``ring_fusion.png``
(uniformity vs ensemble size, like Fig. 6c) and ``ring_fusion_panels.png``
(Fig. 6b-style: posterior ellipses of the synthesised channel coloured by
angle, and its BC matrix, for the smallest and largest ensembles).

Usage::

    python benchmarks/ring_fusion.py            # full size: N=200, 20,000 SGD steps
    python benchmarks/ring_fusion.py --quick    # N=80, 2,000 steps, 3 repeats, sizes <= 20
    python benchmarks/ring_fusion.py --learners vae --vae-steps 3000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

OBJECTIVES = ("vi", "nmi", "info", "nmi_floor")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a reduced run (minutes on 2 cores)")
    p.add_argument("--sizes", type=int, nargs="+", default=None, help="ensemble sizes")
    p.add_argument("--repeats", type=int, default=None, help="repeats per size")
    p.add_argument("--objectives", nargs="+", default=list(OBJECTIVES), choices=OBJECTIVES)
    p.add_argument("--n-samples", type=int, default=None, help="fingerprint points N")
    p.add_argument("--steps", type=int, default=None, help="optimisation steps")
    p.add_argument("--learning-rate", type=float, default=3.0)
    p.add_argument("--optimizer", default="sgd", choices=("sgd", "adam"))
    p.add_argument("--batch-rows", type=int, default=None)
    p.add_argument(
        "--floor-fraction",
        type=float,
        default=0.5,
        help="info_floor of 'nmi_floor' as a fraction of the mean reference info",
    )
    p.add_argument("--learners", default="generated", choices=("generated", "vae"))
    p.add_argument(
        "--learner-logvar",
        type=float,
        default=-6.0,
        help="generated learners: posterior log-variance (std 0.05 on [-1, 1])",
    )
    p.add_argument(
        "--learner-noise",
        type=float,
        default=0.01,
        help="generated learners: std of the noise on the posterior means",
    )
    p.add_argument("--vae-steps", type=int, default=3000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = p.parse_args(argv)
    quick = {"sizes": [2, 5, 10, 20], "repeats": 3, "n_samples": 80, "steps": 2000}
    full = {"sizes": [2, 5, 10, 20, 50], "repeats": 5, "n_samples": 200, "steps": 20000}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.quick and args.learners == "vae" and args.vae_steps == 3000:
        args.vae_steps = 500
    return args


def make_learners(args: argparse.Namespace, n_total: int):
    """The pool of weak learners: a Posteriors dataset with ``n_total`` 1-D models."""
    from ensemblex.synthesis import ring_learners

    if args.learners == "generated":
        return ring_learners(
            n_total,
            n_samples=args.n_samples,
            logvar=args.learner_logvar,
            noise=args.learner_noise,
            seed=args.seed,
        )
    try:
        from ensemblex.models import train_ensemble
    except ImportError as err:  # pragma: no cover - depends on the checkout
        raise SystemExit(f"--learners vae needs ensemblex.models ({err}).") from err
    from ensemblex.datasets import load_dataset

    train = load_dataset("ring", n_samples=16384, spacing="random", seed=args.seed)
    ens = train_ensemble(
        train,
        n_members=n_total,
        latent_dim=1,
        beta=0.03,
        steps=args.vae_steps,
        batch_size=2048,
        learning_rate=1e-3,
        loss="mse",
        seed=args.seed,
        progress=True,
    )
    ring = load_dataset("ring", n_samples=args.n_samples)  # even spacing: angle order
    post = ens.posteriors(ring)
    return post.assign_coords(angle=("sample", ring["angle"].values.astype(np.float64)))


def run(args: argparse.Namespace) -> dict:
    import ensemblex.estimators as est
    from ensemblex.synthesis import ring_uniformity, synthesize

    max_size = max(args.sizes)
    t0 = time.perf_counter()
    pool = make_learners(args, args.repeats * max_size)
    learner_time = time.perf_counter() - t0
    n_models = pool.sizes["model"]
    weak_uniformity = [ring_uniformity(pool.isel(model=[m])) for m in range(n_models)]
    weak_info = []
    for m in range(n_models):
        mu = pool["mean"].values[m, 0].astype(np.float64)
        lv = pool["logvar"].values[m, 0].astype(np.float64)
        weak_info.append(float(est.information(est.bhattacharyya(mu, lv))))
    print(
        f"{n_models} weak learners ({args.learners}, {learner_time:.1f} s): "
        f"uniformity {np.mean(weak_uniformity):.3f} +- {np.std(weak_uniformity):.3f}, "
        f"info {np.mean(weak_info):.2f} bits"
    )

    runs, examples = [], {}
    for objective in args.objectives:
        for size in args.sizes:
            for rep in range(args.repeats):
                # disjoint learners per repeat; a size-s ensemble is the first s of its block
                start = rep * max_size
                members = pool.isel(model=list(range(start, min(start + size, n_models))))
                if members.sizes["model"] < size:
                    continue  # a VAE member dropped for a NaN loss: too few left
                kwargs = {}
                if objective == "nmi_floor":
                    ref_info = float(np.mean(weak_info[start : start + size]))
                    kwargs["info_floor"] = args.floor_fraction * ref_info
                t = time.perf_counter()
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", UserWarning)
                    syn = synthesize(
                        members,
                        n_dims=2,
                        measure="nmi" if objective == "nmi_floor" else objective,
                        steps=args.steps,
                        learning_rate=args.learning_rate,
                        optimizer=args.optimizer,
                        batch_rows=args.batch_rows,
                        seed=args.seed + rep,
                        progress=False,
                        **kwargs,
                    )
                elapsed = time.perf_counter() - t
                u = ring_uniformity(syn)
                record = {
                    "objective": objective,
                    "size": size,
                    "repeat": rep,
                    "uniformity": u,
                    "final_similarity": syn.attrs["final_similarity"],
                    "synthesized_info": syn.attrs["synthesized_info"],
                    "mean_reference_info": syn.attrs["mean_reference_info"],
                    "max_nmi": float(np.nanmax(syn["reference_similarity"].values))
                    if objective.startswith("nmi")
                    else None,
                    "low_information": syn.attrs["low_information"],
                    "nan_step": syn.attrs["nan_step"],
                    "info_floor": kwargs.get("info_floor"),
                    "seconds": elapsed,
                    "warnings": [str(w.message) for w in caught],
                }
                runs.append(record)
                print(
                    f"{objective:>9} size {size:>3} rep {rep}: uniformity {u:8.3f}  "
                    f"similarity {record['final_similarity']:.4f}  info "
                    f"{record['synthesized_info']:.2f}/{record['mean_reference_info']:.2f} bits"
                    f"{'  LOW-INFO' if record['low_information'] else ''}"
                    f"{'  NaN@' + str(record['nan_step']) if record['nan_step'] >= 0 else ''}"
                    f"  ({elapsed:.1f} s)",
                    flush=True,
                )
                if rep == 0 and size in (min(args.sizes), max_size):
                    examples[(objective, size)] = syn
    summary = {}
    for objective in args.objectives:
        for size in args.sizes:
            us = [
                r["uniformity"] for r in runs if r["objective"] == objective and r["size"] == size
            ]
            info = [
                r["synthesized_info"]
                for r in runs
                if r["objective"] == objective and r["size"] == size
            ]
            if us:
                summary.setdefault(objective, {})[str(size)] = {
                    "uniformity_mean": float(np.mean(us)),
                    "uniformity_std": float(np.std(us)),
                    "synthesized_info_mean": float(np.mean(info)),
                    "n": len(us),
                }
    return {
        "runs": runs,
        "summary": summary,
        "weak_learners": {
            "kind": args.learners,
            "n": n_models,
            "uniformity_mean": float(np.mean(weak_uniformity)),
            "info_mean_bits": float(np.mean(weak_info)),
            "seconds": learner_time,
        },
        "examples": examples,
    }


def plot(result: dict, args: argparse.Namespace) -> tuple[Path, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Ellipse
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    import ensemblex.estimators as est

    args.out.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    markers = dict(zip(OBJECTIVES, "dosv", strict=True))
    for k, (objective, per_size) in enumerate(result["summary"].items()):
        sizes = np.array([int(s) for s in per_size])
        mean = np.array([v["uniformity_mean"] for v in per_size.values()])
        std = np.array([v["uniformity_std"] for v in per_size.values()])
        ax.errorbar(
            sizes * 1.06 ** (k - 1.5),
            mean,
            yerr=std,
            marker=markers[objective],
            lw=2,
            elinewidth=3,
            capsize=0,
            label=objective,
        )
    ax.axhline(
        result["weak_learners"]["uniformity_mean"],
        color="gray",
        ls=":",
        label="single weak learner",
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(args.sizes, [str(s) for s in args.sizes])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("Ensemble size")
    ax.set_ylabel("Ring uniformity (std / mean)")
    ax.set_title(f"Ring fusion, {args.learners} learners, N={args.n_samples}, {args.steps} steps")
    ax.legend(fontsize=8)
    fig.tight_layout()
    curve = args.out / "ring_fusion.png"
    fig.savefig(curve, dpi=120)
    plt.close(fig)

    examples = result["examples"]
    keys = sorted(examples, key=lambda k: (OBJECTIVES.index(k[0]), k[1]))
    fig, axes = plt.subplots(2, len(keys), figsize=(2.6 * len(keys), 5.4), squeeze=False)
    cmap = plt.get_cmap("hsv")
    for col, key in enumerate(keys):
        syn = examples[key]
        mean = syn["mean"].values[0].T.astype(np.float64)  # (sample, 2)
        logvar = syn["logvar"].values[0].T.astype(np.float64)
        n = mean.shape[0]
        ax = axes[0, col]
        for i in range(n):
            ax.add_artist(
                Ellipse(
                    xy=mean[i],
                    width=2 * np.exp(logvar[i, 0] / 2),
                    height=2 * np.exp(logvar[i, 1] / 2),
                    facecolor=cmap(i / n),
                    alpha=0.5,
                    edgecolor="k",
                    lw=0.3,
                )
            )
        pad = np.exp(logvar.max() / 2)
        ax.set_xlim(mean[:, 0].min() - pad, mean[:, 0].max() + pad)
        ax.set_ylim(mean[:, 1].min() - pad, mean[:, 1].max() + pad)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{key[0]}, {key[1]} learners", fontsize=9)
        bc = est.bhattacharyya(mean, logvar, multivariate=True)
        axes[1, col].imshow(bc, vmin=0, vmax=1, cmap="Blues_r")
        axes[1, col].set_xticks([])
        axes[1, col].set_yticks([])
        axes[1, col].set_xlabel(f"BC; I = {syn.attrs['synthesized_info']:.2f} bits", fontsize=8)
    fig.tight_layout()
    panels = args.out / "ring_fusion_panels.png"
    fig.savefig(panels, dpi=110)
    plt.close(fig)
    return curve, panels


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    t0 = time.perf_counter()
    result = run(args)
    curve, panels = plot(result, args)
    total = time.perf_counter() - t0
    print("\nuniformity (mean +- std over repeats; lower is better)")
    header = "objective  " + "".join(f"{s:>16}" for s in args.sizes)
    print(header)
    for objective, per_size in result["summary"].items():
        cells = "".join(
            f"{per_size[str(s)]['uniformity_mean']:>9.3f}+-{per_size[str(s)]['uniformity_std']:<5.3f}"
            if str(s) in per_size
            else f"{'-':>16}"
            for s in args.sizes
        )
        print(f"{objective:<11}{cells}")
    low = {
        o: sum(r["low_information"] for r in result["runs"] if r["objective"] == o)
        for o in args.objectives
    }
    print("runs flagged low-information (the NMI hazard):", low)
    print(f"single weak learner uniformity: {result['weak_learners']['uniformity_mean']:.3f}")
    out = {
        "benchmark": "ring_fusion",
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "platform": {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpu_count": os.cpu_count(),
        },
        "seconds": total,
        **{k: v for k, v in result.items() if k != "examples"},
        "figures": [str(curve), str(panels)],
    }
    path = args.out / "ring_fusion.json"
    path.write_text(json.dumps(out, indent=1))
    print(f"wrote {path}, {curve}, {panels} ({total:.0f} s)")


if __name__ == "__main__":
    main()
