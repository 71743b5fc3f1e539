"""Paper Fig. 3a: fingerprint estimates of information vs Monte Carlo.

Channels come from ``--source``:

- ``random`` (default): ``--channels`` random diagonal-Gaussian channels (1 to 3
  dims, heteroscedastic posteriors, informativeness spread from ~0 to ~8 bits);
- ``trained``: the 1-D latents of ``--channels`` beta-VAEs trained on the ring
  toy (the paper's weak learner: 2 x 256 tanh MLPs, MSE, Adam 1e-3), with beta
  spread geometrically over ``--beta-range`` so that the channels span a range
  of information; needs TensorFlow (``ensemblex[train]``).

For each channel, over ``--n-ref`` points (10,000 by default):

- the Poole et al. (2019) Monte Carlo bounds on all ``--n-ref`` points
  (minibatch lower bound, leave-one-out upper bound): the reference;
- the Bhattacharyya (Kolchinsky-Tracey lower) estimate and the KL upper
  estimate from fingerprints of random subsets of 100, 300 and 1000 points;
- the wall time of each estimate.

Prints a table, writes ``information.json`` and ``information.png`` into
``--out`` (default ``benchmarks/results/``).

Usage::

    python benchmarks/information.py            # full size (a few minutes on 2 cores)
    python benchmarks/information.py --quick    # tiny smoke run (seconds)
    python benchmarks/information.py --source trained   # trained ring channels
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from ensemblex import __version__
from ensemblex.estimators import (
    bhattacharyya,
    information,
    kl_coefficients,
    monte_carlo_information,
)


def make_channel(rng: np.random.Generator, target_bits: float, d: int, n: int):
    """A random d-dim Gaussian channel carrying roughly ``target_bits`` about N(0, I) data.

    A Gaussian input through Gaussian noise of std ``s`` per dimension carries
    ``d/2 log2(1 + 1/s^2)`` bits; ``s`` is chosen from that, then every point's
    log-variance is jittered by U(-0.5, 0.5) (heteroscedastic posteriors).
    """
    s2 = 1.0 / (2.0 ** (2.0 * target_bits / d) - 1.0)
    mean = rng.normal(size=(n, d))
    logvar = math.log(s2) + rng.uniform(-0.5, 0.5, size=(n, d))
    return mean, logvar


def random_channels(args: argparse.Namespace, rng: np.random.Generator):
    """``(label, dims, mean, logvar)`` of random Gaussian channels over ``n_ref`` points."""
    targets = np.linspace(0.02, args.max_bits, args.channels)
    for k, target in enumerate(targets):
        d = 1 + k % 3
        mean, logvar = make_channel(rng, float(target), d, args.n_ref)
        yield f"target {target:.2f} bits", d, mean, logvar


def trained_channels(args: argparse.Namespace, rng: np.random.Generator):
    """``(label, 1, mean, logvar)`` of ring beta-VAE latents over ``n_ref`` ring points."""
    from ensemblex.datasets import load_dataset
    from ensemblex.models import train_ensemble

    betas = np.geomspace(args.beta_range[0], args.beta_range[1], args.channels)
    train = load_dataset("ring", n_samples=8192, seed=args.seed)
    ensemble = train_ensemble(
        train,
        method="beta_vae",
        n_members=args.channels,
        latent_dim=1,
        beta=[float(b) for b in betas],
        hidden=[256, 256],
        activation="tanh",
        loss="mse",
        learning_rate=1e-3,
        batch_size=256,
        steps=args.train_steps,
        seed=args.seed,
        progress=args.verbose,
    )
    post = ensemble.posteriors(load_dataset("ring", n_samples=args.n_ref, seed=args.seed + 1))
    for m in range(post.sizes["model"]):
        beta = float(post["beta"].values[m])
        mean = np.asarray(post["mean"].values[m].T, dtype=np.float64)  # (N, 1)
        logvar = np.asarray(post["logvar"].values[m].T, dtype=np.float64)
        yield f"ring beta-VAE, beta={beta:.3g}", 1, mean, logvar


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def run(args: argparse.Namespace) -> dict:
    rng = np.random.default_rng(args.seed)
    sizes = [n for n in args.sizes if n <= args.n_ref]
    source = random_channels if args.source == "random" else trained_channels
    channels = []
    for k, (label, d, mean, logvar) in enumerate(source(args, rng)):
        (mc_lo, mc_hi), t_mc = timed(
            monte_carlo_information, mean, logvar, args.n_draws, args.seed + k, multivariate=True
        )
        row = {
            "channel": k,
            "dims": d,
            "label": label,
            "poole_lower": float(mc_lo),
            "poole_upper": float(mc_hi),
            "time_poole_s": t_mc,
            "estimates": {},
        }
        for n in sizes:
            bc_vals, kl_vals, t_bc, t_kl = [], [], [], []
            for _ in range(args.repeats):
                sub = rng.choice(args.n_ref, size=n, replace=False)
                m, lv = mean[sub], logvar[sub]
                bc, t1 = timed(
                    lambda m=m, lv=lv: information(bhattacharyya(m, lv, multivariate=True))
                )
                kl, t2 = timed(
                    lambda m=m, lv=lv: information(kl_coefficients(m, lv, multivariate=True))
                )
                bc_vals.append(float(bc))
                kl_vals.append(float(kl))
                t_bc.append(t1)
                t_kl.append(t2)
            row["estimates"][str(n)] = {
                "bc": float(np.mean(bc_vals)),
                "bc_std": float(np.std(bc_vals)),
                "kl_upper": float(np.mean(kl_vals)),
                "time_bc_s": float(np.mean(t_bc)),
                "time_kl_s": float(np.mean(t_kl)),
            }
        channels.append(row)
        if args.verbose:
            print(f"  channel {k + 1}/{args.channels} done ({t_mc:.1f} s Monte Carlo)", flush=True)
    return {
        "benchmark": f"information (paper Fig. 3a, {args.source} channels)",
        "ensemblex_version": __version__,
        "config": {
            "source": args.source,
            "channels": args.channels,
            "n_ref": args.n_ref,
            "sizes": sizes,
            "n_draws": args.n_draws,
            "repeats": args.repeats,
            "max_bits": args.max_bits,
            "seed": args.seed,
            "quick": args.quick,
        },
        "machine": {
            "python": sys.version.split()[0],
            "numpy": np.__version__,
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            # the machine may be shared: timings are only as quiet as this
            "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        },
        "channels": channels,
    }


def summarise(result: dict) -> str:
    sizes = result["config"]["sizes"]
    lines = []
    head = f"{'ch':>3} {'d':>2} {'Poole lo':>9} {'Poole hi':>9}"
    for n in sizes:
        head += f" {'BC@' + str(n):>9}"
    head += f" {'KL@' + str(sizes[-1]):>9}" if sizes else ""
    lines.append(head)
    lines.append("-" * len(head))
    for row in sorted(result["channels"], key=lambda r: r["poole_lower"]):
        line = f"{row['channel']:>3} {row['dims']:>2} {row['poole_lower']:9.3f} {row['poole_upper']:9.3f}"
        for n in sizes:
            line += f" {row['estimates'][str(n)]['bc']:9.3f}"
        if sizes:
            line += f" {row['estimates'][str(sizes[-1])]['kl_upper']:9.3f}"
        lines.append(line)
    lines.append("")
    chans = result["channels"]
    lo = np.array([r["poole_lower"] for r in chans])
    lines.append(f"{'estimate':<28} {'mean time / estimate':>22} {'Spearman vs Poole lo':>21}")
    t_mc = np.mean([r["time_poole_s"] for r in chans])
    n_ref, n_draws = result["config"]["n_ref"], result["config"]["n_draws"]
    lines.append(
        f"{f'Poole MC, N={n_ref}, {n_draws} draws':<28} {t_mc:>20.4f} s {'(reference)':>21}"
    )
    from scipy.stats import spearmanr

    for n in sizes:
        for key, tkey, label in (("bc", "time_bc_s", "BC"), ("kl_upper", "time_kl_s", "KL upper")):
            vals = np.array([r["estimates"][str(n)][key] for r in chans])
            t = np.mean([r["estimates"][str(n)][tkey] for r in chans])
            rho = spearmanr(vals, lo).statistic if len(chans) > 2 else float("nan")
            lines.append(f"{f'{label}, N={n}':<28} {t:>20.4f} s {rho:>21.3f}")
    bc_top = [r["estimates"][str(n)]["bc"] for r in chans for n in sizes]
    hi = [r["poole_upper"] for r in chans for _ in sizes]
    # the Monte Carlo bounds carry sampling noise: a channel without information can
    # get a Poole upper bound of -1e-5 bits, so compare with a small tolerance
    tol = 1e-3
    over = sum(b > h + tol for b, h in zip(bc_top, hi, strict=True))
    lines.append("")
    lines.append(
        f"BC estimates above the Poole upper bound (+{tol:g} bits): {over} of {len(bc_top)}"
    )
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chans = sorted(result["channels"], key=lambda r: r["poole_lower"])
    sizes = result["config"]["sizes"]
    lo = np.array([r["poole_lower"] for r in chans])
    hi = np.array([r["poole_upper"] for r in chans])
    fig, (ax, ax_t) = plt.subplots(1, 2, figsize=(11, 4.5), gridspec_kw={"width_ratios": [3, 2]})
    ax.fill_between(lo, lo, np.minimum(hi, lo.max() * 1.5), color="0.85", label="Poole bounds")
    ax.plot(lo, lo, color="k", lw=1, label=f"Poole lower (N={result['config']['n_ref']})")
    colors = plt.cm.viridis(np.linspace(0.1, 0.85, max(len(sizes), 1)))
    for n, c in zip(sizes, colors, strict=False):
        bc = [r["estimates"][str(n)]["bc"] for r in chans]
        kl = [r["estimates"][str(n)]["kl_upper"] for r in chans]
        ax.plot(lo, bc, "o", color=c, label=f"BC, N={n}")
        ax.plot(lo, kl, "^", color=c, mfc="none", label=f"KL upper, N={n}")
        ax.axhline(math.log2(n), color=c, ls=":", lw=1)
    ax.set_xlabel("Monte Carlo information (bits)")
    ax.set_ylabel("estimate (bits)")
    source = result["config"].get("source", "random")
    what = "random Gaussian" if source == "random" else "trained ring beta-VAE"
    ax.set_title(f"Fingerprint estimates vs Monte Carlo ({what} channels)")
    ax.legend(fontsize=7, ncol=2)
    labels, times = (
        [f"Poole\nN={result['config']['n_ref']}"],
        [np.mean([r["time_poole_s"] for r in chans])],
    )
    for n in sizes:
        labels.append(f"BC\nN={n}")
        times.append(np.mean([r["estimates"][str(n)]["time_bc_s"] for r in chans]))
    ax_t.bar(range(len(times)), times, color="0.4")
    ax_t.set_xticks(range(len(times)), labels, fontsize=8)
    ax_t.set_yscale("log")
    ax_t.set_ylabel("seconds per estimate")
    ax_t.set_title("cost per estimate")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--channels", type=int, default=20)
    parser.add_argument("--n-ref", type=int, default=10_000, help="points of the MC reference")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 1000])
    parser.add_argument("--n-draws", type=int, default=2, help="MC draws per reference point")
    parser.add_argument("--repeats", type=int, default=3, help="random subsets per size")
    parser.add_argument("--max-bits", type=float, default=8.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--source", choices=["random", "trained"], default="random")
    parser.add_argument(
        "--beta-range",
        type=float,
        nargs=2,
        default=[0.003, 3.0],
        help="with --source trained: smallest and largest beta",
    )
    parser.add_argument(
        "--train-steps", type=int, default=1500, help="with --source trained: training steps"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny run: defaults of 6 channels, N_ref=1000, sizes 100 300, 1 repeat",
    )
    parser.add_argument("--verbose", action="store_true")
    if parser.parse_known_args(argv)[0].quick:
        # --quick changes the defaults; options given explicitly still win
        parser.set_defaults(channels=6, n_ref=1000, sizes=[100, 300], repeats=1, train_steps=50)
    args = parser.parse_args(argv)
    stem = "information" if args.source == "random" else "information_trained"
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    result = run(args)
    result["total_seconds"] = time.perf_counter() - start
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=2))
    plot(result, args.out / f"{stem}.png")
    print(summarise(result))
    print(f"\nload average (1 min) at the end: {result['machine']['load_average_1min']}")
    print(f"total {result['total_seconds']:.1f} s; wrote {args.out / (stem + '.json')} and .png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
