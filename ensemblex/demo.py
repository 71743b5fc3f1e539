"""The end-to-end demo: the whole study on embedded data, on a CPU, in minutes.

:func:`run_demo` trains a small beta-VAE ensemble on procedurally generated
dSprites (every member in one vectorised TensorFlow model), fingerprints every
latent channel on a sample of images, compares all channels (NMI, VI), finds
the pieces of information that recur across the ensemble with OPTICS,
describes each group (what it recurs in, what it carries) and decodes
traversals of its central channel, synthesises one 2-D channel from the
biggest group, runs the paper's ring fusion experiment (weak 1-D learners
fused into a closed ring), and writes netCDF files, PNG figures,
``summary.json`` and ``report.html`` into one folder
(:data:`ensemblex.report.RUN_FILES`). ``ensemblex demo --out DIR`` calls it.

This module only orchestrates: each stage calls the library
(:func:`ensemblex.models.train_posteriors`, :func:`ensemblex.pairwise`,
:func:`ensemblex.cluster`, :func:`ensemblex.describe_groups`,
:func:`ensemblex.steps.synthesize_group`,
:func:`ensemblex.synthesis.ring_fusion`, the figures of :mod:`ensemblex.plot`)
with the library's defaults, and records what it wrote. Its settings are a
:class:`DemoConfig`, which holds the training run's
:class:`~ensemblex.models.TrainConfig`.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .errors import InputError
from .estimators import MIN_INFO
from .models.config import TrainConfig
from .report import RUN_FILES

__all__ = [
    "DemoConfig",
    "compare_channels",
    "demo_config",
    "run_demo",
]

Log = Callable[[str], None]

#: the files a demo run writes: the one list, :data:`ensemblex.report.RUN_FILES`
FILES = RUN_FILES

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
    ring_learners, ring_samples, ring_steps
        The ring fusion experiment (:func:`ensemblex.synthesis.ring_fusion`,
        paper Fig. 6): weak learners fused, points around the circle, and
        synthesis steps (``None``: the library's default); ``ring_learners=0``
        skips it.
    """

    train: TrainConfig = field(default_factory=lambda: _DSPRITES)
    synth_dims: int = 2
    synth_steps: int | None = None
    ring_learners: int = 20
    ring_samples: int = 200
    ring_steps: int | None = None

    @property
    def dataset(self) -> str:
        """The dataset the ensemble is trained on."""
        return str(self.train.dataset)

    def record(self) -> dict[str, Any]:
        """The JSON-ready settings (``summary.json``'s ``config``): training and synthesis."""
        own = {k: v for k, v in asdict(self).items() if k != "train"}
        return {**asdict(self.train), **own}


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
            return DemoConfig(train=quick_ring, synth_steps=150, ring_learners=0)
        # the trained ring ensemble is fused by the synthesis stage itself
        return DemoConfig(train=_RING, ring_learners=0)
    if quick:
        quick_dsprites = _DSPRITES.replace(
            n_members=4, latent_dim=4, steps=250, n_train=4096, n_fingerprint=128
        )
        return DemoConfig(
            train=quick_dsprites, synth_steps=200, ring_learners=8, ring_samples=60, ring_steps=300
        )
    return DemoConfig(train=_DSPRITES)


# -- fingerprints and all-pairs comparison -------------------------------------------


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

    Only files named in :data:`FILES` are touched, so the report never mixes
    two runs and nothing else in the folder is deleted.
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

    models = run.path("models")  # the trained models: the traversals decode with them
    post = train_posteriors(
        cfg.train.replace(seed=seed), models_dir=models, progress=progress, log=run.say
    )
    run.save(post, "posteriors")
    run.lap("train")
    return post


def _compare_stage(run: _Run, post: xr.Dataset, progress: bool) -> tuple[xr.Dataset, xr.Dataset]:
    from .plot import plot_information, plot_nmi_vi

    run.say(
        f"comparing {post.sizes['model'] * post.sizes['latent']} channels on "
        f"{post.sizes['sample']} samples"
    )
    fp, pw = compare_channels(post, progress=progress)
    run.save(pw, "pairwise")
    plot_information(pw, post, run.path("information_figure"))
    plot_nmi_vi(pw, path=run.path("nmi_vi_figure"))
    run.lap("compare")
    return fp, pw


def _cluster_stage(
    run: _Run, cfg: DemoConfig, fp: xr.Dataset, pw: xr.Dataset, seed: int
) -> tuple[xr.Dataset, dict[str, Any]]:
    from .plot import plot_structure
    from .structure import cluster, describe_groups

    min_info = float(pw.attrs["min_info"])  # the threshold the comparison used
    n_informative = int(np.sum(np.asarray(pw["info_a"].values) >= min_info))
    if n_informative < 2:
        # degenerate case: nothing recurs when (almost) every latent collapsed
        raise InputError(
            f"the trained ensemble has {n_informative} channel(s) with >= {min_info:g} bits of "
            "information; there is nothing to cluster. Train longer or with a smaller beta."
        )
    # every setting is the library's: min_samples and the xi window by their rules,
    # which the attrs record
    cl = cluster(fp, pairwise=pw, min_info=min_info)
    run.say(
        f"clustered (OPTICS, min_samples={cl.attrs['min_samples']}: "
        f"{cl.attrs.get('min_samples_rule', '')})"
    )
    run.save(cl, "clusters")
    plot_structure(cl, pairwise=pw, path=run.path("structure_figure"))
    numbers = _summary_numbers(cl, pw)
    # what each group is: one record per group (describe_groups), for the report
    table = describe_groups(cl, pairwise=pw)
    numbers["groups_table"] = table.to_dict(orient="records")
    for name in ("min_samples", "xi_window"):  # the value and the rule that chose it
        if name in cl.attrs:
            numbers[name] = int(cl.attrs[name])
        if f"{name}_rule" in cl.attrs:
            numbers[f"{name}_rule"] = str(cl.attrs[f"{name}_rule"])
    if len(table):
        # what each group carries, decoded from its central channel
        from .models import load_ensemble
        from .plot import plot_group_traversals

        plot_group_traversals(
            load_ensemble(run.path("models")),
            cl,
            pairwise=pw,
            path=run.path("traversals_figure"),
            seed=seed,
        )
    run.lap("cluster")
    return cl, numbers


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
    from .steps import synthesize_group
    from .structure import group_channels

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
    # every synthesis setting is the library's but the step budget
    syn, syn_numbers = synthesize_group(
        fp, channels, n_dims=cfg.synth_dims, steps=cfg.synth_steps, seed=seed, progress=progress
    )
    synthesis.update(syn_numbers, group=group)
    if cfg.dataset == "ring":
        from .synthesis import ring_uniformity

        # the fingerprint sample is evenly spaced around the circle, in angle order
        synthesis["ring_uniformity"] = float(ring_uniformity(syn))
    run.save(syn, "synthesis")
    best = _best_factors(cl, group, pw) if "labels" in post else None
    if best:
        synthesis["colored_by"] = best
    plot_synthesis(syn, run.path("synthesis_figure"), labels=post.get("labels"), color_by=best)
    run.lap("synthesize")
    return synthesis


def _best_factors(cl: xr.Dataset, group: int, pw: xr.Dataset) -> str | None:
    """The factor (or pair) the group's central channel shares most with (``None``: unknown)."""
    from .structure import describe_groups

    table = describe_groups(cl, pairwise=pw)
    row = table[table["group"] == group]
    best = str(row["best_factors"].iloc[0]) if len(row) else ""
    return best or None


def _ring_stage(run: _Run, cfg: DemoConfig, seed: int, progress: bool) -> dict[str, Any]:
    """The paper's ring experiment (Fig. 6): weak 1-D learners fused into a closed ring."""
    from .plot import plot_synthesis
    from .synthesis import ring_fusion

    run.say(
        f"ring fusion: {cfg.ring_learners} weak 1-D learners on {cfg.ring_samples} points "
        "fused into one 2-D channel"
    )
    fused = ring_fusion(
        cfg.ring_learners, cfg.ring_samples, steps=cfg.ring_steps, seed=seed, progress=progress
    )
    run.save(fused, "ring_synthesis")
    angle = xr.DataArray(
        np.asarray(fused["angle"].values)[None],
        dims=("factor", "sample"),
        coords={"factor": ["angle"]},
    )
    plot_synthesis(fused, run.path("ring_figure"), labels=angle, color_by="angle")
    numbers = {
        k: fused.attrs[k]
        for k in ("n_learners", "uniformity_fused", "uniformity_single_mean", "uniformity_ratio")
    }
    numbers.update(n_samples=cfg.ring_samples, steps=int(fused.attrs["steps"]))
    run.say(
        f"ring uniformity: fused {numbers['uniformity_fused']:.3f}, single learners "
        f"{numbers['uniformity_single_mean']:.3f} (lower is better)"
    )
    run.lap("ring fusion")
    return numbers


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
        Output folder (created). It receives the files named in
        :data:`ensemblex.report.RUN_FILES`: the posteriors, pairwise results,
        clusters and synthesised channel (netCDF), the trained models
        (``models/``), the figures (structure, NMI against exp(-VI), group
        traversals, information, synthesis, ring fusion), ``summary.json``
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
    cl, numbers = _cluster_stage(run, cfg, fp, pw, seed)
    synthesis = _synthesis_stage(run, cfg, post, fp, pw, cl, seed, progress)
    ring = _ring_stage(run, cfg, seed, progress) if cfg.ring_learners else None

    run.timings["total"] = round(time.perf_counter() - run.started, 2)
    summary = {
        "ensemblex_version": _version(),
        "quick": bool(config is None and quick),
        "config": cfg.record(),
        "seed": seed,
        "numbers": numbers,
        "synthesis": synthesis,
        **({"ring_fusion": ring} if ring is not None else {}),
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


#: library steps the demo held once, and where they live now (old names keep working
#: for a release, with a FutureWarning)
_MOVED = {
    "auto_min_samples": ("structure", "auto_min_samples"),
    "group_channels": ("structure", "group_channels"),
    "find_hotspots": ("structure", "cluster"),
    "plot_synthesis": ("plot", "plot_synthesis"),
    "plot_information": ("plot", "plot_information"),
    "train_posteriors": ("models", "train_posteriors"),
    "resize_images": ("models", "resize_images"),
    "save_posteriors": ("io", "save"),
    "synthesise_group": ("steps", "synthesize_group"),
}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        import importlib
        import warnings

        module, new = _MOVED[name]
        warnings.warn(
            f"ensemblex.demo.{name} moved to ensemblex.{module}.{new}; the old name goes in "
            "a later release.",
            FutureWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(f".{module}", __package__), new)
    raise AttributeError(f"module 'ensemblex.demo' has no attribute {name!r}")
