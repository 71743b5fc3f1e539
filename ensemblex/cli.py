"""The ``ensemblex`` command line: batch runs of the whole study from files.

Subcommands (``ensemblex SUBCOMMAND --help`` for each one's options)::

    ensemblex train        --dataset dsprites --out posteriors.nc   train an ensemble
    ensemblex fingerprint  POSTERIORS --out fp.nc|fp.zarr             materialise BC matrices
    ensemblex compare      POSTERIORS --out pairwise.nc|pairwise.zarr all-pairs NMI / VI
    ensemblex cluster      PAIRWISE --out clusters.nc --figure structure.png
    ensemblex synthesize   POSTERIORS --clusters clusters.nc --out synth.nc
    ensemblex report       DIR                                        DIR/report.html
    ensemblex demo         --out DIR                                  the whole study

Input posteriors may be any netCDF/Zarr file with variables ``mean`` and
``logvar`` on dims (model, latent, sample), written by ensemblex or by plain
xarray, so models trained elsewhere plug in.

This module parses options and calls the library; it holds no analysis of
its own. Outputs are safe: no subcommand replaces an existing output (a file,
a figure, a non-empty demo folder) without ``--overwrite``.

A user mistake (:class:`ensemblex.errors.UserError`, a missing or unwritable
file, a bad option) prints one line on stderr and exits with a non-zero code.
Anything else is a bug in ensemblex: it keeps its traceback, followed by a
line asking to report it.

Examples
--------
>>> main(["--version"])  # doctest: +ELLIPSIS
ensemblex ...
0
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from ._version import __version__
from .errors import InputError, MissingExtraError, UserError
from .estimators import MIN_INFO

__all__ = ["build_parser", "main"]

#: exit code for a user mistake found after the options were parsed
EXIT_USER_ERROR = 1
#: exit code for bad options (argparse's convention)
EXIT_USAGE = 2
#: exit code for a bug in ensemblex (sysexits' EX_SOFTWARE)
EXIT_BUG = 70
#: exit code after Ctrl-C (128 + SIGINT)
EXIT_INTERRUPTED = 130

# What a user can cause and fix: ensemblex's own UserError hierarchy and the
# file-system errors of the paths they gave. Anything else is a bug.
_FILE_ERRORS = (
    FileNotFoundError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
    FileExistsError,
)
_USER_ERRORS = (UserError, *_FILE_ERRORS)


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line on stderr."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Show meaningful defaults and keep the descriptions' line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            "default" not in text
            and default is not None
            and default is not False
            and default != argparse.SUPPRESS
            and action.option_strings
        ):
            shown = " ".join(map(str, default)) if isinstance(default, list) else default
            text += f" (default: {shown})"
        return text


# -- small helpers ----------------------------------------------------------------------


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}")
    return value


def _nonneg_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number; got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0; got {text!r}")
    return value


def _positive_float(text: str) -> float:
    value = _nonneg_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0; got {text!r}")
    return value


def _auto_or_int(text: str, minimum: int) -> int | None:
    """``auto`` (``None``: the library's rule) or an integer >= ``minimum``."""
    if text == "auto":
        return None
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise argparse.ArgumentTypeError(
            f"expected 'auto' or an integer >= {minimum}; got {text!r}"
        )
    return value


def _min_samples(text: str) -> int | None:
    """``auto`` or an integer >= 2."""
    return _auto_or_int(text, 2)


def _xi_window(text: str) -> int | None:
    """``auto`` or an integer >= 1."""
    return _auto_or_int(text, 1)


def _int_list(text: str) -> list[int]:
    try:
        values = [int(t) for t in text.replace(" ", "").split(",") if t]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated channel ids like 0,3,7; got {text!r}"
        ) from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one channel id")
    return values


def _store_format(path: str | Path, option: str = "--out") -> str:
    """``"netcdf"`` or ``"zarr"`` from a file name, else a clear error."""
    suffix = Path(path).suffix.lower()
    if suffix in (".nc", ".nc4", ".netcdf"):
        return "netcdf"
    if suffix == ".zarr":
        try:
            import zarr  # noqa: F401
        except ImportError:
            raise MissingExtraError(
                f"{option} {str(path)!r} is a Zarr store, which needs zarr: "
                "pip install 'ensemblex[zarr]' (or write .nc)"
            ) from None
        return "zarr"
    raise InputError(f"{option} {str(path)!r} must end in .nc (netCDF4) or .zarr (Zarr)")


def _check_out(path: str | Path, option: str = "--out", *, overwrite: bool = False) -> Path:
    """The output path, with its parent folder created; checked before any long work.

    An existing output is refused unless ``overwrite``: no subcommand replaces
    a user's file without being asked to.
    """
    out = Path(path)
    if out.exists() and out.is_dir() and out.suffix.lower() != ".zarr":
        raise InputError(f"{option} {str(out)!r} is a folder; give a file name")
    if out.exists() and not overwrite:
        raise InputError(f"{option} {str(out)!r} already exists; pass --overwrite to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def _given(**options: Any) -> dict[str, Any]:
    """The options the user gave (not ``None``): the rest keep the library's defaults."""
    return {k: v for k, v in options.items() if v is not None}


_KIND_NAMES = {
    "posteriors": "Posteriors (mean, logvar on model, latent, sample)",
    "fingerprints": "Fingerprints (ensemblex fingerprint)",
    "pairwise": "Pairwise (ensemblex compare)",
    "clusters": "Clusters (ensemblex cluster)",
}


def open_input(
    path: str | Path, kinds: Sequence[str], *, role: str = "INPUT", worker_reads: bool = False
) -> Any:
    """Open an ensemblex dataset file and check that it is one of ``kinds``.

    ``worker_reads=True`` turns the posterior parameters of a netCDF file into
    Dask tasks that each open the file, read their block and close it, so a
    ``dask.distributed`` computation sends its workers reads, not values.
    ``role`` names the file in errors as the usage line does (``POSTERIORS``,
    ``PAIRWISE``, ``--clusters``). Posteriors written by plain xarray
    (``mean``/``logvar`` on ``(model, latent, sample)``) are validated and stamped.

    Examples
    --------
    >>> open_input("no-such-file.nc", ["posteriors"], role="POSTERIORS")
    Traceback (most recent call last):
    ...
    FileNotFoundError: POSTERIORS file 'no-such-file.nc' does not exist
    """
    from ._kinds import dataset_kind

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{role} file {str(path)!r} does not exist")
    from .io import open_dataset

    # (the store of 'compare --out X.zarr' is a Pairwise dataset once finished; an
    # unfinished one is refused by open_dataset with what to do)
    try:
        ds = open_dataset(p)
    except UserError:
        if "posteriors" not in kinds:
            raise
        # name the missing variable or wrong dims of a would-be Posteriors file
        import xarray as xr

        from .posteriors import validate_posteriors

        try:
            with warnings.catch_warnings():
                # a probe only: xarray's notes on reading the file (e.g. a Zarr store
                # without consolidated metadata) would only obscure the error
                warnings.simplefilter("ignore")
                plain = xr.open_dataset(p)
        except Exception:  # unreadable: the first error says it best
            plain = None
        if plain is not None and ({"mean", "logvar"} & set(map(str, plain.data_vars))):
            validate_posteriors(plain, what=f"{role} file {str(path)!r}")
        raise
    kind = dataset_kind(ds)
    if kind not in kinds:
        wanted = " or ".join(_KIND_NAMES[k] for k in kinds)
        got = f"a {kind.capitalize()} dataset" if kind else "a dataset ensemblex does not recognise"
        variables = ", ".join(sorted(map(str, ds.data_vars))) or "none"
        raise InputError(
            f"{role} file {str(path)!r} is {got} (variables: {variables}); expected {wanted}"
        )
    if kind == "posteriors":
        from .posteriors import validate_posteriors

        if worker_reads and p.suffix.lower() != ".zarr":
            from ._lazy import netcdf_reads

            with ds:  # only the metadata is read here
                ds = netcdf_reads(ds, str(p), ["mean", "logvar"])
        ds = validate_posteriors(ds, what=f"{role} file {str(path)!r}")
    return ds


def _save(ds: Any, path: Path, overwrite: bool = False) -> None:
    from .io import save

    save(ds, path, overwrite=overwrite)


def _summarise_pairwise(pw: Any, min_info: float) -> str:
    import numpy as np

    info = np.asarray(pw["info_a"].values)
    n_a, n_b = pw.sizes["channel_a"], pw.sizes["channel_b"]
    return (
        f"{n_a} x {n_b} channels; {int((info >= min_info).sum())} of {n_a} carry "
        f">= {min_info:g} bits (max {float(np.nanmax(info)) if info.size else 0.0:.2f} bits)"
    )


def _fingerprints(src: Any, args: argparse.Namespace, channels: Any = "latent") -> Any:
    """Fingerprints of an opened POSTERIORS file (or the file itself if it holds them)."""
    from .fingerprints import fingerprint

    if "bc" in src:
        return src
    return fingerprint(
        src,
        channels=channels,
        channel_chunk=getattr(args, "channel_chunk", None),
        sample_chunk=getattr(args, "sample_chunk", None),
    )


# -- subcommands ----------------------------------------------------------------------


#: ``ensemblex train`` options -> :class:`ensemblex.models.TrainConfig` fields (the one map)
_TRAIN_FIELDS = {
    "dataset": "dataset",
    "method": "method",
    "members": "n_members",
    "latent_dim": "latent_dim",
    "architecture": "architecture",
    "steps": "steps",
    "batch_size": "batch_size",
    "learning_rate": "learning_rate",
    "loss": "loss",
    "image_size": "image_size",
    "n_train": "n_train",
    "n_fingerprint": "n_fingerprint",
    "seed": "seed",
}


def _train_config(args: argparse.Namespace) -> Any:
    """The :class:`TrainConfig` of ``ensemblex train``: options given, else its defaults."""
    from .models import TrainConfig

    cfg = TrainConfig(**_given(**{f: getattr(args, opt) for opt, f in _TRAIN_FIELDS.items()}))
    # several betas: --members models per beta, in one ensemble
    return cfg.sweep(args.beta) if args.beta is not None else cfg


def _cmd_train(args: argparse.Namespace) -> int:
    from .models import train_posteriors

    _store_format(args.out)  # before anything is created
    out = _check_out(args.out, overwrite=args.overwrite)
    cfg = _train_config(args)
    options: dict[str, Any] = {}
    if args.data_path is not None:
        options["path"] = args.data_path
    t0 = time.perf_counter()
    post = train_posteriors(
        cfg,
        models_dir=args.models,
        progress=not args.no_progress,
        dataset_options=options,
        log=_log,
    )
    _save(post, out, args.overwrite)
    _log(
        f"wrote {out}: posteriors of {post.sizes['model']} models x {post.sizes['latent']} "
        f"latents on {post.sizes['sample']} samples ({time.perf_counter() - t0:.0f} s)"
    )
    return 0


def _cmd_fingerprint(args: argparse.Namespace) -> int:
    from ._runtime import dask_progress
    from .fingerprints import concat_fingerprints, label_fingerprints

    _store_format(args.out)  # before anything is created
    out = _check_out(args.out, overwrite=args.overwrite)
    post = open_input(args.posteriors, ["posteriors"], role="POSTERIORS")
    fp = _fingerprints(post, args, args.channels)
    if args.labels:
        if "labels" not in post:
            raise InputError(
                f"--labels: POSTERIORS file {args.posteriors!r} has no 'labels' variable"
            )
        fp = concat_fingerprints(
            fp,
            label_fingerprints(post),
            channel_chunk=args.channel_chunk,
            sample_chunk=args.sample_chunk,
        )
    n = fp.sizes["channel"] * fp.sizes["sample_i"] * fp.sizes["sample_j"]
    _log(f"materialising {fp.sizes['channel']} fingerprints ({4 * n / 1e6:.1f} MB) to {out}")
    with dask_progress(not args.no_progress, label="fingerprint"):
        _save(fp, out, args.overwrite)
    _log(f"wrote {out}")
    return 0


def _against(args: argparse.Namespace, post: Any) -> Any:
    """The other side of ``compare --against``: label fingerprints or another file."""
    from .fingerprints import fingerprint, label_fingerprints

    if args.against is None:
        return None
    if args.against == "labels":
        if "labels" not in post:
            raise InputError(
                f"--against labels: POSTERIORS file {args.input!r} has no 'labels' variable "
                "(ground-truth factors (factor, sample)); give another POSTERIORS file instead"
            )
        return label_fingerprints(post)
    other = open_input(args.against, ["posteriors", "fingerprints"], role="--against")
    if "bc" not in other:
        other = fingerprint(other, channel_chunk=args.channel_chunk, sample_chunk=args.sample_chunk)
    return other


def _cmd_compare(args: argparse.Namespace) -> int:
    from ._runtime import compute, dask_scheduler
    from .pairwise import pairwise

    fmt = _store_format(args.out)
    # a Zarr store that exists is a run to resume, not a file to overwrite
    out = _check_out(args.out, overwrite=args.overwrite or fmt == "zarr")
    # on a cluster the workers read their chunks of the file: the graph holds reads
    src = open_input(
        args.input,
        ["posteriors", "fingerprints"],
        role="POSTERIORS",
        worker_reads=bool(args.scheduler),
    )
    fp = _fingerprints(src, args, args.channels)
    other = _against(args, src)
    t0 = time.perf_counter()
    progress = not args.no_progress
    options = {
        "min_info": args.min_info,
        "channel_chunk": args.channel_chunk,
        "sample_chunk": args.sample_chunk,
    }
    with dask_scheduler(args.scheduler, progress=progress, label="compare") as client:
        if fmt == "zarr":
            from .store import store_state

            state = store_state(out)
            if state == "unfinished":
                _log(f"resuming the run stored in {out}")
            elif state == "finished":
                _log(f"resuming the run stored in {out}: it is finished, nothing is recomputed")
            # the finished store is the Pairwise dataset (the input of `ensemblex cluster`)
            pw = pairwise(fp, other, store=out, **options)
        else:
            pw = compute(pairwise(fp, other, **options), client, progress=progress, label="compare")
            _save(pw, out, args.overwrite)
    _log(
        f"wrote {out}: {_summarise_pairwise(pw, args.min_info)} ({time.perf_counter() - t0:.1f} s)"
    )
    return 0


def _log_cluster_rules(cl: Any) -> None:
    """Say which ``min_samples`` and xi window the clustering used, and by which rules."""
    for name in ("min_samples", "xi_window"):
        used = cl.attrs.get(name)
        if used is None:
            continue
        rule = cl.attrs.get(f"{name}_rule")
        _log(f"{name}={used}" + (f" ({rule})" if rule else ""))


def _log_groups(cl: Any, pw: Any) -> None:
    """Print the table of groups (``describe_groups``) when there are any."""
    from .structure import describe_groups

    if not any(int(g) >= 0 for g in cl["group"].values):
        return
    print(describe_groups(cl, pairwise=pw).to_string(index=False))


def _cmd_cluster(args: argparse.Namespace) -> int:
    from ._runtime import compute
    from .pairwise import pairwise
    from .structure import cluster

    _store_format(args.out)  # before anything is created
    out = _check_out(args.out, overwrite=args.overwrite)
    figure = (
        _check_out(args.figure, "--figure", overwrite=args.overwrite)
        if args.figure is not None
        else None
    )
    src = open_input(args.input, ["pairwise", "fingerprints", "posteriors"], role="PAIRWISE")
    fp = None
    if args.posteriors is not None:
        post = open_input(args.posteriors, ["posteriors", "fingerprints"], role="--posteriors")
        fp = _fingerprints(post, args)
    if "nmi" in src and "joint_info" in src:  # Pairwise
        pw = src
    else:
        if fp is None:
            fp = _fingerprints(src, args)
        pw = compute(
            pairwise(fp, min_info=args.min_info), progress=not args.no_progress, label="compare"
        )
    cl = cluster(
        fp if fp is not None else pw,
        measure=args.measure,
        # --min-samples auto (None): the library's rule, which the attrs record
        min_samples="auto" if args.min_samples is None else args.min_samples,
        xi_window="auto" if args.xi_window is None else args.xi_window,
        min_info=args.min_info,
        pairwise=pw if fp is not None else None,
    )
    _save(cl, out, args.overwrite)
    n_groups = len({int(g) for g in cl["group"].values if g >= 0})
    _log_cluster_rules(cl)
    _log(
        f"wrote {out}: {int(cl['informative'].sum())} informative channels of "
        f"{cl.sizes['channel']}, {n_groups} group(s)"
    )
    _log_groups(cl, pw)
    if figure is not None:
        from .plot import plot_structure

        plot_structure(cl, pairwise=pw, path=figure)
        _log(f"wrote {figure}")
    return 0


def _measure_keyword(func: Callable[..., Any], old: str) -> str:
    """``"measure"``, or the function's older name for it (``metric``, ``objective``)."""
    import inspect

    return "measure" if "measure" in inspect.signature(func).parameters else old


def _cmd_synthesize(args: argparse.Namespace) -> int:
    from .plot import plot_synthesis
    from .structure import group_channels
    from .synthesis import synthesize

    _store_format(args.out)  # before anything is created
    out = _check_out(args.out, overwrite=args.overwrite)
    figure = (
        _check_out(args.figure, "--figure", overwrite=args.overwrite)
        if args.figure is not None
        else None
    )
    src = open_input(args.input, ["posteriors", "fingerprints"], role="POSTERIORS")
    fp = _fingerprints(src, args)
    if args.group is not None and args.clusters is None:
        raise InputError("--group needs --clusters CLUSTERS.nc (the output of ensemblex cluster)")
    if args.channels is not None and args.clusters is not None:
        raise InputError("give either --channels or --clusters/--group, not both")
    channels = args.channels
    if args.clusters is not None:
        cl = open_input(args.clusters, ["clusters"], role="--clusters")
        channels, group = group_channels(cl, args.group)
        _log(f"synthesising from group {group}: {len(channels)} channels")
    if channels is not None:
        known = {int(c) for c in fp["channel"].values}
        unknown = [c for c in channels if c not in known]
        if unknown:
            raise InputError(
                f"channel id(s) {unknown} are not channels of POSTERIORS file {args.input!r} "
                f"(it has channels 0..{len(known) - 1})"
            )
    # options the user did not give keep the library's defaults (one set for all)
    syn = synthesize(
        fp,
        n_dims=args.n_dims,
        channels=channels,
        seed=args.seed,
        progress=not args.no_progress,
        settings=args.settings,
        **_given(
            **{_measure_keyword(synthesize, "objective"): args.measure},
            steps=args.steps,
            learning_rate=args.learning_rate,
            optimizer=args.optimizer,
            batch_rows=args.batch_rows,
        ),
    )
    _save(syn, out, args.overwrite)
    _log(f"wrote {out}: a synthesised {args.n_dims}-D channel on {syn.sizes['sample']} samples")
    if figure is not None:
        plot_synthesis(syn, figure, labels=src.get("labels"))
        _log(f"wrote {figure}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from .report import write_report

    run_dir = Path(args.dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder DIR {args.dir!r} does not exist")
    out = Path(args.out) if args.out is not None else run_dir / "report.html"
    _check_out(out, overwrite=args.overwrite)
    path = write_report(run_dir, out=out)
    print(f"report: {path}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    path = run_demo(
        args.out,
        quick=args.quick,
        dataset=args.dataset,
        seed=args.seed,
        progress=not args.no_progress,
        overwrite=args.overwrite,
        log=_log,
    )
    print(f"report: {path}")
    return 0


# -- the parser: one function per subcommand ------------------------------------------


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--overwrite", action="store_true", help="replace outputs that exist (never other files)"
    )
    p.add_argument("--no-progress", action="store_true", help="do not show progress")


def _add_channels(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--channels",
        default="latent",
        choices=["latent", "model"],
        help="latent: one channel per (model, latent); model: one per whole latent space",
    )


def _add_chunks(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--channel-chunk",
        type=_positive_int,
        default=None,
        help="channels per Dask tile (default: chosen by ensemblex)",
    )
    p.add_argument(
        "--sample-chunk",
        type=_positive_int,
        default=None,
        help="sample rows per Dask tile (default: chosen by ensemblex)",
    )


def _add_min_info(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--min-info", type=_nonneg_float, default=MIN_INFO, help=what)


Adder = Callable[[str, str, str, Callable[[argparse.Namespace], int]], argparse.ArgumentParser]


def _parser_train(add: Adder) -> None:
    import typing
    from dataclasses import fields

    from .datasets import DatasetName
    from .models import METHODS, TrainConfig
    from .models.config import ARCHITECTURES
    from .models.losses import LossKind

    p = add(
        "train",
        "train a VAE ensemble and write its posteriors",
        "Train an ensemble of VAEs (one vectorised TensorFlow model) on an offline dataset "
        "and write the posteriors of every member on a fingerprint sample.\n"
        "The options are the fields of ensemblex.models.TrainConfig, with its defaults.\n"
        "Needs the train extra: pip install 'ensemblex[train]'.",
        _cmd_train,
    )
    default = {f.name: f.default for f in fields(TrainConfig)}

    def option(name: str, help_: str, unset: str = "auto", **kw: Any) -> None:
        # default None: the option keeps TrainConfig's default, shown in the help
        shown = default[_TRAIN_FIELDS[name]]
        p.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            default=None,
            help=f"{help_} (default: {unset if shown is None else shown})",
            **kw,
        )

    option(
        "dataset",
        "training data (mnist/fashion_mnist read IDX files from --data-path)",
        choices=list(typing.get_args(DatasetName)),
    )
    p.add_argument("--data-path", default=None, help="folder of the MNIST/Fashion-MNIST IDX files")
    p.add_argument("--out", required=True, help="posteriors file to write (.nc or .zarr)")
    p.add_argument("--models", default=None, help="folder to save the trained models in")
    option("method", "VAE family", choices=list(METHODS))
    option("members", "members (per beta)", type=_positive_int)
    option("latent_dim", "latent dimensions", type=_positive_int)
    p.add_argument(
        "--beta",
        type=_nonneg_float,
        nargs="+",
        default=None,
        help="one or more betas; each trains its own ensemble of --members models "
        f"(default: {default['beta']})",
    )
    option("architecture", "encoder/decoder", choices=list(ARCHITECTURES))
    option("steps", "training steps", type=_positive_int)
    option("batch_size", "batch size", type=_positive_int)
    option("learning_rate", "Adam learning rate", type=_positive_float)
    option(
        "loss",
        "reconstruction loss",
        "bernoulli for images, mse for the ring",
        choices=list(typing.get_args(LossKind)),
    )
    option(
        "image_size",
        "shrink the images to SIZE x SIZE by block pooling first, e.g. 32 for dSprites",
        "as they are",
        type=_positive_int,
        metavar="SIZE",
    )
    option("n_train", "training points drawn from the dataset", type=_positive_int)
    option(
        "n_fingerprint",
        "fingerprint sample: points the posteriors are evaluated on",
        type=_positive_int,
    )
    option("seed", "random seed (member k gets seed + k)", type=int)
    _add_common(p)


def _parser_fingerprint(add: Adder) -> None:
    p = add(
        "fingerprint",
        "materialise the Bhattacharyya fingerprints (optional step)",
        "Write the Bhattacharyya matrices bc(channel, sample_i, sample_j) of every channel. "
        "Optional: compare and cluster regenerate them from the posteriors on the fly; "
        "materialise them to inspect or share them.",
        _cmd_fingerprint,
    )
    p.add_argument("posteriors", metavar="POSTERIORS", help="posteriors file (.nc or .zarr)")
    p.add_argument("--out", required=True, help="fingerprints file to write (.nc or .zarr)")
    _add_channels(p)
    p.add_argument(
        "--labels", action="store_true", help="append the ground-truth factors as label channels"
    )
    _add_chunks(p)
    _add_common(p)


def _parser_compare(add: Adder) -> None:
    p = add(
        "compare",
        "all-pairs NMI and VI between channels",
        "Compute NMI, VI and joint information between all channels (tiled Dask engine).\n"
        "With --out X.zarr tiles are written as they finish and rerunning the same command "
        "after an interruption resumes where it stopped; the finished store is the Pairwise "
        "dataset (the input of 'ensemblex cluster').",
        _cmd_compare,
    )
    p.add_argument(
        "input", metavar="POSTERIORS", help="posteriors (or fingerprints) file (.nc or .zarr)"
    )
    p.add_argument("--out", required=True, help="pairwise file to write (.nc, or .zarr to resume)")
    p.add_argument(
        "--against",
        default=None,
        metavar="labels|FILE",
        help="compare against the ground-truth factors ('labels') or another "
        "posteriors/fingerprints file over the same samples",
    )
    _add_channels(p)
    _add_min_info(p, "channels with less information (bits) get NaN NMI")
    p.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="address of a running dask.distributed scheduler, e.g. tcp://10.0.0.5:8786 "
        "(default: local threads)",
    )
    _add_chunks(p)
    _add_common(p)


def _parser_cluster(add: Adder) -> None:
    from .measures import measure_names

    p = add(
        "cluster",
        "OPTICS hotspots of the channels",
        "Group the channels whose information recurs across the ensemble (OPTICS on "
        "-ln NMI or VI), find each group's central channel, draw the structure figure, and "
        "print a table of the groups.",
        _cmd_cluster,
    )
    p.add_argument(
        "input",
        metavar="PAIRWISE",
        help="pairwise file from 'ensemblex compare' (or a posteriors file: compared first)",
    )
    p.add_argument("--out", required=True, help="clusters file to write (.nc)")
    p.add_argument("--figure", default=None, help="structure figure to write (.png)")
    p.add_argument(
        "--posteriors",
        default=None,
        metavar="POSTERIORS",
        help="the posteriors PAIRWISE came from: adds NMI with their ground-truth factors",
    )
    p.add_argument(
        "--measure",
        "--metric",
        dest="measure",
        default="nmi",
        choices=measure_names("cluster"),
        help="OPTICS distance: -ln NMI or VI (--metric: deprecated name)",
    )
    p.add_argument(
        "--min-samples",
        type=_min_samples,
        default=None,
        metavar="auto|N",
        help="OPTICS min_samples (default: auto, grows with the number of models; the rule "
        "used is printed)",
    )
    p.add_argument(
        "--xi-window",
        type=_xi_window,
        default=None,
        metavar="auto|N",
        help="points over which OPTICS' xi method measures steepness (default: auto, 1 "
        "below 1,500 models, then round(models / 1000); the rule used is printed)",
    )
    _add_min_info(p, "channels under this information (bits) are dropped")
    _add_common(p)


def _parser_synthesize(add: Adder) -> None:
    from .measures import measure_names
    from .synthesis import SYNTHESIS_SETTINGS

    p = add(
        "synthesize",
        "fuse a group of channels into one synthesised channel",
        "Optimise a new channel whose fingerprint is most similar to a set of reference "
        "channels (by default the biggest group of --clusters), by gradient descent.\n"
        "Options not given keep ensemblex.synthesize's defaults (the same in Python, here "
        "and in the demo).\n"
        "Needs the train extra (TensorFlow): pip install 'ensemblex[train]'.",
        _cmd_synthesize,
    )
    p.add_argument(
        "input",
        metavar="POSTERIORS",
        help="posteriors (or fingerprints) file the references come from",
    )
    p.add_argument("--out", required=True, help="synthesised posteriors file to write (.nc)")
    p.add_argument("--figure", default=None, help="figure of the synthesised channel (.png)")
    p.add_argument("--clusters", default=None, help="clusters file from 'ensemblex cluster'")
    p.add_argument(
        "--group",
        type=int,
        default=None,
        help="group of --clusters to fuse (default: the biggest group)",
    )
    p.add_argument(
        "--channels",
        type=_int_list,
        default=None,
        help="explicit reference channel ids, e.g. 0,3,7 (default: all channels)",
    )
    p.add_argument("--n-dims", type=_positive_int, default=2, help="latent dims of the new channel")
    p.add_argument(
        "--measure",
        "--objective",
        dest="measure",
        default=None,
        choices=measure_names("objective"),
        help="similarity maximised: exp(-VI), NMI or shared information "
        "(default: ensemblex.synthesize's; --objective: deprecated name)",
    )
    p.add_argument(
        "--settings",
        default="fast",
        choices=list(SYNTHESIS_SETTINGS),
        help="optimiser preset: "
        + "; ".join(
            f"{name}: {s.optimizer} at learning rate {s.learning_rate:g} for {s.steps} steps"
            for name, s in SYNTHESIS_SETTINGS.items()
        )
        + " (the paper's)",
    )
    p.add_argument(
        "--steps",
        type=_positive_int,
        default=None,
        help="optimisation steps (default: the preset's)",
    )
    p.add_argument(
        "--learning-rate",
        type=_positive_float,
        default=None,
        help="learning rate (default: the preset's)",
    )
    p.add_argument(
        "--optimizer",
        default=None,
        choices=["sgd", "adam"],
        help="optimiser (default: the preset's)",
    )
    p.add_argument(
        "--batch-rows",
        type=_positive_int,
        default=None,
        help="fingerprint rows per step (default: all)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed")
    _add_common(p)


def _parser_report(add: Adder) -> None:
    p = add(
        "report",
        "collect a run's figures and numbers into report.html",
        "Write DIR/report.html with the run's PNG figures and a table of its numbers "
        "(channels, informative channels, groups, central channels, NMI with factors).",
        _cmd_report,
    )
    p.add_argument("dir", metavar="DIR", help="run folder (e.g. the demo's --out)")
    p.add_argument("--out", default=None, help="report file (default: DIR/report.html)")
    p.add_argument("--overwrite", action="store_true", help="replace the report file if it exists")


def _parser_demo(add: Adder) -> None:
    p = add(
        "demo",
        "the whole study end to end on embedded data (CPU, < 10 min)",
        "Train a small beta-VAE ensemble on procedurally generated dSprites, fingerprint and "
        "compare every latent channel, find the hotspots with OPTICS, describe each group "
        "(NMI with the ground-truth factors, traversals of its central channel), synthesise "
        "a channel from the biggest group, run the paper's ring fusion experiment, and write "
        "netCDF files, PNG figures and report.html to --out.\n"
        "A non-empty --out is refused unless --overwrite; --overwrite replaces only the "
        "demo's own files there.",
        _cmd_demo,
    )
    p.add_argument("--out", default="demo-output", help="output folder")
    p.add_argument(
        "--quick",
        action="store_true",
        help="a tiny configuration (about a minute) for smoke tests and CI",
    )
    p.add_argument(
        "--dataset",
        default="dsprites",
        choices=["dsprites", "ring"],
        help="dsprites: beta-VAEs on dSprites; ring: 1-D VAEs on the ring toy",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed")
    _add_common(p)


_SUBCOMMANDS: tuple[Callable[[Adder], None], ...] = (
    _parser_train,
    _parser_fingerprint,
    _parser_compare,
    _parser_cluster,
    _parser_synthesize,
    _parser_report,
    _parser_demo,
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``ensemblex`` command.

    Examples
    --------
    >>> args = build_parser().parse_args(["compare", "post.nc", "--out", "pw.nc"])
    >>> args.command, args.min_info, args.scheduler
    ('compare', 0.01, None)
    """
    parser = _Parser(
        prog="ensemblex",
        description=(
            "Compare the information content of representation spaces across ensembles "
            "of trained models (Murphy, Dillavou & Bassett, TMLR 2025)."
        ),
        epilog="Start with: ensemblex demo --out demo-output",
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"ensemblex {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", parser_class=_Parser)
    sub.required = True

    def add(
        name: str, help_: str, description: str, func: Callable[[argparse.Namespace], int]
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=description, formatter_class=_Formatter)
        p.set_defaults(func=func)
        return p

    for add_subcommand in _SUBCOMMANDS:
        add_subcommand(add)
    return parser


def _user_message(exc: BaseException) -> str:
    """One line for a user mistake."""
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.strerror}: {exc.filename!r}"
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``ensemblex`` command; return its exit code.

    ``argv`` defaults to ``sys.argv[1:]``. Bad options exit with 2, user
    mistakes found later with 1 (one line on stderr), Ctrl-C with 130. Any
    other exception is a bug: its traceback is printed, then a line asking to
    report it, and the exit code is 70.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help, --version and option errors
        return int(stop.code) if isinstance(stop.code, int) else EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        _log(f"ensemblex {args.command}: interrupted")
        return EXIT_INTERRUPTED
    except _USER_ERRORS as exc:
        _log(f"ensemblex {args.command}: error: {_user_message(exc)}")
        return EXIT_USER_ERROR
    except Exception:
        traceback.print_exc(file=sys.stderr)
        _log(
            f"ensemblex {args.command}: unexpected error (not a mistake in your input); "
            f"please report this as a bug in ensemblex {__version__}, with the traceback above"
        )
        return EXIT_BUG


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
