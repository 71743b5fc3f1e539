"""The end-to-end demo: the whole study on embedded data, on a CPU, in minutes.

:func:`run_demo` trains a small beta-VAE ensemble on procedurally generated
dSprites (every member in one vectorised TensorFlow model), fingerprints every
latent channel on a sample of images, compares all channels (NMI, VI), finds
the pieces of information that recur across the ensemble with OPTICS, measures
each channel's NMI with the five ground-truth factors, synthesises one 2-D
channel from the biggest group, and writes netCDF files, PNG figures and
``report.html`` into one folder. ``ensemblex demo --out DIR`` calls it.

This module only orchestrates: each stage calls the library
(:func:`ensemblex.models.train_posteriors`, :func:`ensemblex.pairwise`,
:func:`ensemblex.cluster`, :func:`ensemblex.synthesize`, the figures of
:mod:`ensemblex.plot`) and records what it wrote.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .errors import InputError
from .estimators import MIN_INFO
from .models.config import TrainConfig

__all__ = [
    "DemoConfig",
    "auto_min_samples",
    "compare_channels",
    "demo_config",
    "find_hotspots",
    "group_channels",
    "run_demo",
    "synthesise_group",
]

Log = Callable[[str], None]

# The files a demo run writes (the report and the tests rely on these names).
FILES = {
    "posteriors": "posteriors.nc",
    "pairwise": "pairwise.nc",
    "clusters": "clusters.nc",
    "synthesis": "synth.nc",
    "summary": "summary.json",
    "structure_figure": "structure.png",
    "information_figure": "information.png",
    "synthesis_figure": "synth.png",
    "report": "report.html",
}

#: the dSprites ensemble of the full demo (the training settings are TrainConfig's)
_DSPRITES = TrainConfig(
    dataset="dsprites",
    method="beta_vae",
    architecture="mlp",
    n_members=10,
    latent_dim=8,
    beta=4.0,
    steps=3000,
    batch_size=64,
    learning_rate=1e-3,
    image_size=32,
    n_train=20000,
    n_fingerprint=400,
)
#: the paper's weak learner on the SO(2) toy: 2x256 tanh MLPs, 1-D latent, MSE,
#: beta 0.03, Adam 1e-3, batch 2048
_RING = TrainConfig(
    dataset="ring",
    n_members=20,
    latent_dim=1,
    beta=0.03,
    steps=1000,
    batch_size=2048,
    learning_rate=1e-3,
    n_train=20000,
    n_fingerprint=256,
)


@dataclass(frozen=True)
class DemoConfig:
    """The settings of one demo run (see :func:`demo_config`).

    Attributes
    ----------
    train
        The training run (:class:`ensemblex.models.TrainConfig`: dataset,
        ensemble, optimisation, sample sizes).
    synth_dims
        Dims of the synthesised channel.
    synth_steps
        Synthesis steps; ``None``: :func:`ensemblex.synthesize`'s default
        (the one set of synthesis defaults, shared by the library, the CLI and
        the demo).
    """

    train: TrainConfig = field(default_factory=lambda: _DSPRITES)
    synth_dims: int = 2
    synth_steps: int | None = None

    @property
    def dataset(self) -> str:
        """The dataset the ensemble is trained on."""
        return str(self.train.dataset)

    def record(self) -> dict[str, Any]:
        """The JSON-ready settings (``summary.json``'s ``config``): training and synthesis."""
        return {
            **asdict(self.train),
            "synth_dims": self.synth_dims,
            "synth_steps": self.synth_steps,
        }


def demo_config(quick: bool = False, dataset: str = "dsprites") -> DemoConfig:
    """The demo's settings: the full run, or the ``quick`` one for CI.

    Examples
    --------
    >>> demo_config(quick=True).train.n_members < demo_config().train.n_members
    True
    >>> demo_config(dataset="ring").train.latent_dim
    1
    """
    from ._checks import check_option

    check_option("dataset", dataset, ("dsprites", "ring"))
    if dataset == "ring":
        if quick:
            quick_ring = _RING.replace(
                n_members=6, steps=150, batch_size=512, n_train=4096, n_fingerprint=96
            )
            return DemoConfig(train=quick_ring, synth_steps=150)
        return DemoConfig(train=_RING)
    if quick:
        quick_dsprites = _DSPRITES.replace(
            n_members=4, latent_dim=4, steps=250, n_train=4096, n_fingerprint=128
        )
        return DemoConfig(train=quick_dsprites, synth_steps=200)
    return DemoConfig(train=_DSPRITES)


# -- step 2: fingerprints and all-pairs comparison ------------------------------------


def compare_channels(
    post: xr.Dataset,
    *,
    min_info: float = MIN_INFO,
    progress: bool = False,
) -> tuple[xr.Dataset, xr.Dataset]:
    """Fingerprints of every latent channel and their all-pairs NMI/VI (computed).

    Returns ``(fingerprints, pairwise)``; the fingerprints stay lazy.
    """
    from ._runtime import compute
    from .fingerprints import fingerprint
    from .pairwise import pairwise

    fp = fingerprint(post)
    pw = compute(pairwise(fp, min_info=min_info), progress=progress, label="compare")
    return fp, pw


# -- step 3: hotspots -----------------------------------------------------------------


def auto_min_samples(pw: xr.Dataset, *, min_info: float = MIN_INFO) -> int:
    """OPTICS ``min_samples`` adapted to the number of informative channels.

    The paper used 20 for about 500 channels of which a few hundred carried
    information; a group there is one recurring piece of information, found in
    a good share of the ensemble. We take one eighth of the informative
    channels, between 3 and 20 (never more than there are channels).

    Examples
    --------
    >>> import xarray as xr, numpy as np
    >>> pw = xr.Dataset({"info_a": ("channel_a", np.r_[np.ones(40), np.zeros(10)])})
    >>> auto_min_samples(pw)
    5
    """
    info = np.asarray(pw["info_a"].values, dtype=float)
    n_informative = int(np.sum(info >= min_info))
    # degenerate case: fewer than 3 informative channels; cluster() says how many
    return int(min(max(n_informative // 8, 3), 20, max(n_informative, 1)))


def find_hotspots(
    fp: xr.Dataset,
    pw: xr.Dataset,
    *,
    min_samples: int | None = None,
    min_info: float = MIN_INFO,
) -> xr.Dataset:
    """OPTICS groups, central channels and NMI with the factors (``cluster``).

    ``min_samples=None`` uses the library's rule; the Clusters attrs record
    the value used (``min_samples``).
    """
    import inspect

    from .structure import cluster

    options: dict[str, Any] = {"min_info": min_info, "pairwise": pw}
    rule_in_library = inspect.signature(cluster).parameters["min_samples"].default in (
        None,
        "auto",
    )
    if min_samples is not None:
        options["min_samples"] = min_samples
    elif not rule_in_library:  # TODO(H2): remove once cluster() derives the default
        options["min_samples"] = auto_min_samples(pw, min_info=min_info)
    cl = cluster(fp, **options)
    if "min_samples" not in cl.attrs:
        cl.attrs["min_samples"] = int(options["min_samples"])
    return cl


def group_channels(cl: xr.Dataset, group: int | None = None) -> tuple[list[int], int]:
    """The channel ids of one group of a Clusters dataset (default: the biggest).

    Examples
    --------
    >>> import xarray as xr
    >>> cl = xr.Dataset({"group": ("channel", [0, 1, 1, -1])}, coords={"channel": [0, 1, 2, 3]})
    >>> group_channels(cl)
    ([1, 2], 1)
    >>> group_channels(cl, 5)
    Traceback (most recent call last):
    ...
    ensemblex.errors.InputError: group 5 is not in the clusters; its groups are 0, 1 (-1 is noise).
    """
    groups = np.asarray(cl["group"].values)
    found = sorted({int(g) for g in groups if g >= 0})
    if not found:
        raise InputError(
            "the clusters have no groups (every channel is noise); lower min_samples, "
            "or choose reference channels explicitly."
        )
    if group is None:
        sizes = {g: int(np.sum(groups == g)) for g in found}
        group = max(found, key=lambda g: (sizes[g], -g))
    elif group not in found:
        raise InputError(
            f"group {group} is not in the clusters; its groups are "
            f"{', '.join(map(str, found))} (-1 is noise)."
        )
    channels = [int(c) for c in np.asarray(cl["channel"].values)[groups == group]]
    return channels, int(group)


# -- step 4: synthesis ----------------------------------------------------------------


def synthesise_group(
    fp: xr.Dataset,
    channels: Sequence[Hashable],
    *,
    n_dims: int = 2,
    seed: int = 0,
    progress: bool = True,
    **options: Any,
) -> tuple[xr.Dataset, dict[str, Any]]:
    """Synthesise one channel from ``channels`` and measure it against them and the labels.

    Returns ``(synthesised posteriors, numbers)``; the numbers are its
    information, its mean NMI with the reference channels (and theirs with each
    other), and its NMI with each ground-truth factor when the fingerprints
    carry labels.
    """
    from .fingerprints import fingerprint, label_fingerprints
    from .pairwise import pairwise
    from .synthesis import synthesize

    syn = synthesize(
        fp, n_dims=n_dims, channels=list(channels), seed=seed, progress=progress, **options
    )
    syn_fp = fingerprint(syn, channels="model")  # the whole n_dims space is one channel
    refs = fp.sel(channel=list(channels))
    among = pairwise(refs).compute()
    nmi_refs = np.asarray(among["nmi"].values, dtype=float)
    off_diagonal = nmi_refs[~np.eye(len(nmi_refs), dtype=bool)]
    off_diagonal = off_diagonal[np.isfinite(off_diagonal)]
    ref_nmi = np.asarray(syn["reference_nmi"].values, dtype=float)
    numbers: dict[str, Any] = {
        "reference_channels": [int(c) for c in channels],  # type: ignore[call-overload]
        "info_bits": float(syn.attrs["synthesized_info"]),
        "reference_info_bits": float(syn.attrs["mean_reference_info"]),
        # NaN (reported as None) where the synthesised channel carries under
        # min_info bits: its NMI is undefined there
        "nmi_to_references": float(np.mean(ref_nmi)) if np.isfinite(ref_nmi).all() else None,
        # degenerate case: a group of one channel has no pair
        "reference_nmi_to_each_other": float(np.mean(off_diagonal)) if off_diagonal.size else None,
        "final_similarity": float(syn.attrs["final_similarity"]),
        "steps": int(syn.attrs["steps"]),
        "optimizer": str(syn.attrs["optimizer"]),
        "learning_rate": float(syn.attrs["learning_rate"]),
        "objective": str(syn.attrs.get("measure", syn.attrs.get("objective"))),
    }
    if syn.attrs.get("warning"):
        numbers["warning"] = str(syn.attrs["warning"])
    if "labels" in fp:
        lab = label_fingerprints(fp["labels"])
        to_labels = pairwise(syn_fp, lab).compute()
        factors = [str(f) for f in lab["factor"].values]
        values = np.asarray(to_labels["nmi"].values, dtype=float)[0]
        # NaN (a channel under min_info bits) is written as null
        numbers["label_nmi"] = {
            f: (float(v) if np.isfinite(v) else None) for f, v in zip(factors, values, strict=True)
        }
    return syn, numbers


# -- the demo -------------------------------------------------------------------------


def _summary_numbers(cl: xr.Dataset, pw: xr.Dataset) -> dict[str, Any]:
    groups = np.asarray(cl["group"].values)
    found = sorted({int(g) for g in groups if g >= 0})
    central = [int(c) for c in np.asarray(cl["channel"].values)[np.asarray(cl["central"].values)]]
    best: dict[str, Any] = {}
    if "label_nmi" in cl:
        nmi = cl["label_nmi"].fillna(-1.0)
        for factor in cl["factor"].values:
            column = nmi.sel(factor=factor)
            k = int(column.argmax("channel"))
            best[str(factor)] = {
                "nmi": float(column.values[k]),
                "channel": int(cl["channel"].values[k]),
            }
    return {
        "best_label_nmi": best,
        "channels": int(cl.sizes["channel"]),
        "informative_channels": int(np.sum(np.asarray(cl["informative"].values))),
        "groups": len(found),
        "group_sizes": {str(g): int(np.sum(groups == g)) for g in found},
        "central_channels": central,
        "max_info_bits": float(np.nanmax(np.asarray(pw["info_a"].values, dtype=float))),
    }


def _check_out_dir(out: Path, overwrite: bool) -> None:
    """Refuse a file, or a non-empty folder without ``overwrite``; before any work."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {str(out)!r} is a file; give a folder for the demo's outputs.")
    if out.is_dir() and not overwrite:
        entries = sorted(p.name for p in out.iterdir())
        if entries:
            shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
            raise InputError(
                f"--out {str(out)!r} is not empty ({shown}); choose a new folder, or pass "
                "--overwrite (overwrite=True) to replace the demo's files in it (other files "
                "are kept)."
            )


def _remove_stale(out: Path, written: set[str]) -> list[str]:
    """Remove the demo's own files that an earlier run left and this one did not write.

    Only names in :data:`FILES` are touched, so the report never mixes two runs
    and nothing else in the folder is deleted.
    """
    removed = []
    for name in FILES.values():
        path = out / name
        if name not in written and path.is_file():
            path.unlink()
            removed.append(name)
    return removed


class _Run:
    """One demo run: its folder, its timings and the files it has written."""

    def __init__(self, out: Path, say: Log) -> None:
        self.out, self.say = out, say
        self.timings: dict[str, float] = {}
        self.written: set[str] = set()
        self.started = self.t = time.perf_counter()

    def path(self, key: str) -> Path:
        self.written.add(FILES[key])
        return self.out / FILES[key]

    def save(self, ds: xr.Dataset, key: str) -> None:
        from .io import save

        save(ds, self.path(key), overwrite=True)  # the folder was checked up front

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = round(now - self.t, 2)
        self.say(f"  {name}: {self.timings[name]:.1f} s")
        self.t = now


def _train_stage(run: _Run, cfg: DemoConfig, seed: int, progress: bool) -> xr.Dataset:
    from .models import train_posteriors

    post = train_posteriors(cfg.train.replace(seed=seed), progress=progress, log=run.say)
    run.save(post, "posteriors")
    run.lap("train")
    return post


def _compare_stage(run: _Run, post: xr.Dataset, progress: bool) -> tuple[xr.Dataset, xr.Dataset]:
    from .plot import plot_information

    run.say(
        f"comparing {post.sizes['model'] * post.sizes['latent']} channels on "
        f"{post.sizes['sample']} samples"
    )
    fp, pw = compare_channels(post, progress=progress)
    run.save(pw, "pairwise")
    plot_information(pw, post, run.path("information_figure"))
    run.lap("compare")
    return fp, pw


def _cluster_stage(run: _Run, fp: xr.Dataset, pw: xr.Dataset) -> tuple[xr.Dataset, dict[str, Any]]:
    from .plot import plot_structure

    min_info = float(pw.attrs["min_info"])  # the threshold the comparison used
    n_informative = int(np.sum(np.asarray(pw["info_a"].values) >= min_info))
    if n_informative < 2:
        # degenerate case: nothing recurs when (almost) every latent collapsed
        raise InputError(
            f"the trained ensemble has {n_informative} channel(s) with >= {min_info:g} bits of "
            "information; there is nothing to cluster. Train longer or with a smaller beta."
        )
    cl = find_hotspots(fp, pw, min_info=min_info)
    run.say(f"clustered (OPTICS, min_samples={cl.attrs.get('min_samples')})")
    run.save(cl, "clusters")
    plot_structure(cl, pairwise=pw, path=run.path("structure_figure"))
    numbers = _summary_numbers(cl, pw)
    numbers["min_samples"] = int(cl.attrs["min_samples"])
    if "min_samples_rule" in cl.attrs:
        numbers["min_samples_rule"] = str(cl.attrs["min_samples_rule"])
    run.lap("cluster")
    return cl, numbers


def _synthesis_options(cfg: DemoConfig) -> dict[str, Any]:
    """The synthesis options the demo sets: only its step budget; the rest are the library's."""
    import inspect

    from .synthesis import synthesize

    options: dict[str, Any] = {}
    if inspect.signature(synthesize).parameters["optimizer"].default == "sgd":
        # TODO(H4): remove once synthesize() defaults to a CPU-friendly Adam setting
        options.update(optimizer="adam", learning_rate=0.05, steps=2000)
    if cfg.synth_steps is not None:
        options["steps"] = cfg.synth_steps
    return options


def _synthesis_stage(
    run: _Run,
    cfg: DemoConfig,
    post: xr.Dataset,
    fp: xr.Dataset,
    pw: xr.Dataset,
    cl: xr.Dataset,
    seed: int,
    progress: bool,
) -> dict[str, Any]:
    from .plot import plot_synthesis

    synthesis: dict[str, Any] = {}
    try:
        channels, group = group_channels(cl)
    except InputError as err:
        # degenerate case: OPTICS found no group; fuse the most informative channels
        # instead, so the demo still shows synthesis, and say so in the report
        info_a = np.asarray(pw["info_a"].values, dtype=float)
        order = np.argsort(-info_a)[: max(2, int(cl.attrs["min_samples"]))]
        channels, group = [int(pw["channel_a"].values[i]) for i in order], -1
        synthesis["note"] = f"{err} Fused the {len(channels)} most informative channels."
        run.say(synthesis["note"])
    run.say(
        f"synthesising a {cfg.synth_dims}-D channel from group {group} ({len(channels)} channels)"
    )
    syn, syn_numbers = synthesise_group(
        fp,
        channels,
        n_dims=cfg.synth_dims,
        seed=seed,
        progress=progress,
        **_synthesis_options(cfg),
    )
    synthesis.update(syn_numbers, group=group)
    if cfg.dataset == "ring":
        from .synthesis import ring_uniformity

        # the fingerprint sample is evenly spaced around the circle, in angle order
        synthesis["ring_uniformity"] = float(ring_uniformity(syn))
    run.save(syn, "synthesis")
    plot_synthesis(syn, run.path("synthesis_figure"), labels=post.get("labels"))
    run.lap("synthesize")
    return synthesis


def run_demo(
    out: str | Path = "demo-output",
    *,
    quick: bool = False,
    dataset: str = "dsprites",
    seed: int = 0,
    progress: bool = True,
    config: DemoConfig | None = None,
    overwrite: bool = False,
    log: Log | None = print,
) -> Path:
    """Run the whole study on embedded data and write its files to ``out``.

    Parameters
    ----------
    out
        Output folder (created). It receives the files named in :data:`FILES`:
        ``posteriors.nc``, ``pairwise.nc``, ``clusters.nc``, ``synth.nc``,
        ``structure.png``, ``information.png``, ``synth.png``, ``summary.json``
        and ``report.html``.
    quick
        A tiny configuration (about a minute on 2 cores) for smoke tests.
    dataset
        ``"dsprites"`` (beta-VAEs on procedural dSprites) or ``"ring"``.
    seed
        Seed of the data draws and of the training.
    progress
        Progress for training, comparison and synthesis (bars on a terminal,
        plain lines in a log).
    config
        Override the sizes (a :class:`DemoConfig`); ``quick`` is then ignored.
    overwrite
        Allow a non-empty ``out``. The demo's own files there are replaced (and
        those this run does not write are removed, so the report shows one
        run); no other file is touched. Without it a non-empty ``out`` is an
        error, raised before any work.
    log
        Where progress messages go (``None``: nowhere).

    Returns
    -------
    Path
        The report file.
    """
    from .report import write_report

    say: Log = log or (lambda _msg: None)
    cfg = config or demo_config(quick, dataset)
    out = Path(out)
    _check_out_dir(out, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    run = _Run(out, say)
    say(f"ensemblex demo ({'quick' if config is None and quick else 'full'}) -> {out}")

    post = _train_stage(run, cfg, seed, progress)
    fp, pw = _compare_stage(run, post, progress)
    cl, numbers = _cluster_stage(run, fp, pw)
    synthesis = _synthesis_stage(run, cfg, post, fp, pw, cl, seed, progress)

    run.timings["total"] = round(time.perf_counter() - run.started, 2)
    summary = {
        "ensemblex_version": _version(),
        "quick": bool(config is None and quick),
        "config": cfg.record(),
        "seed": seed,
        "numbers": numbers,
        "synthesis": synthesis,
        "timings_s": run.timings,
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
    }
    text = json.dumps(_finite(summary), indent=2, default=_json_default, allow_nan=False)
    run.path("summary").write_text(text)
    run.path("report")
    removed = _remove_stale(out, run.written)
    if removed:
        say(f"removed the earlier run's {', '.join(removed)}")
    report = write_report(out)
    say(f"done in {run.timings['total']:.0f} s")
    return report


def _version() -> str:
    from ._version import __version__

    return __version__


def _finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by ``None`` (JSON null)."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, float | np.floating) and not np.isfinite(value):
        return None
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
