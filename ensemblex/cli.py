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

A user mistake (a missing file, the wrong kind of file, a missing variable, a
bad option) prints one line on stderr and exits with a non-zero code; a
traceback means a bug in ensemblex.

Examples
--------
>>> main(["--version"])  # doctest: +ELLIPSIS
ensemblex ...
0
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

from ._version import __version__

__all__ = ["build_parser", "main"]

#: exit code for a user mistake found after the options were parsed
EXIT_USER_ERROR = 1
#: exit code for bad options (argparse's convention)
EXIT_USAGE = 2
#: exit code after Ctrl-C (128 + SIGINT)
EXIT_INTERRUPTED = 130

# Exceptions that mean "the user gave us something we cannot use". Everything
# else is a bug and shows its traceback. OSError covers missing, unreadable or
# truncated files (FileNotFoundError is one) and unreachable scheduler addresses.
_USER_ERRORS = (ValueError, TypeError, OSError, ImportError)

_EXTRAS = {
    "tensorflow": "train",
    "keras": "train",
    "zarr": "zarr",
    "cupy": "gpu",
}


class UserError(ValueError):
    """A mistake in what the user asked for; reported as one line, no traceback."""


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


def _min_samples(text: str) -> int | str:
    if text == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 'auto' or an integer >= 2; got {text!r}"
        ) from None
    if value < 2:
        raise argparse.ArgumentTypeError(f"expected 'auto' or an integer >= 2; got {text!r}")
    return value


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
        return "zarr"
    raise UserError(f"{option} {str(path)!r} must end in .nc (netCDF4) or .zarr (Zarr)")


def _check_out(path: str | Path, option: str = "--out", *, overwrite: bool = True) -> Path:
    """The output path, with its parent folder created; checked before any long work."""
    out = Path(path)
    if out.exists() and out.is_dir() and out.suffix.lower() != ".zarr":
        raise UserError(f"{option} {str(out)!r} is a folder; give a file name")
    if out.exists() and not overwrite:
        raise UserError(f"{option} {str(out)!r} already exists; pass --overwrite to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


_KIND_NAMES = {
    "posteriors": "Posteriors (mean, logvar on model, latent, sample)",
    "fingerprints": "Fingerprints (ensemblex fingerprint)",
    "pairwise": "Pairwise (ensemblex compare)",
    "clusters": "Clusters (ensemblex cluster)",
}


def open_input(path: str | Path, kinds: Sequence[str], *, role: str = "input") -> Any:
    """Open an ensemblex dataset file and check that it is one of ``kinds``.

    Posteriors written by plain xarray (``mean``/``logvar`` on
    ``(model, latent, sample)``) are validated and stamped.

    Examples
    --------
    >>> open_input("no-such-file.nc", ["posteriors"])
    Traceback (most recent call last):
    ...
    FileNotFoundError: input file 'no-such-file.nc' does not exist
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
    except ValueError:
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
        raise UserError(
            f"{role} file {str(path)!r} is {got} (variables: {variables}); expected {wanted}"
        )
    if kind == "posteriors":
        from .posteriors import validate_posteriors

        ds = validate_posteriors(ds, what=f"{role} file {str(path)!r}")
    return ds


@contextlib.contextmanager
def _progress(enabled: bool) -> Iterator[None]:
    """A Dask progress bar on stderr for computations on the local scheduler."""
    if not enabled:
        yield
        return
    from dask.diagnostics import ProgressBar

    with ProgressBar(minimum=1.0, out=sys.stderr):
        yield


@contextlib.contextmanager
def dask_scheduler(address: str | None, *, progress: bool = True) -> Iterator[Any]:
    """Run the block on the local threaded scheduler or on a ``dask.distributed`` cluster.

    ``address`` is a scheduler address such as ``tcp://10.0.0.5:8786``;
    ``None`` uses the local threaded scheduler with a progress bar. Yields the
    ``distributed.Client`` or ``None``.
    """
    if address is None:
        with _progress(progress):
            yield None
        return
    try:
        from distributed import Client
    except ImportError as err:  # pragma: no cover - distributed is a dependency
        raise ImportError(
            f"--scheduler needs dask.distributed: pip install distributed ({err})"
        ) from err
    try:
        client = Client(address, timeout="15s", set_as_default=True)
    except (OSError, TimeoutError) as err:
        raise UserError(f"cannot connect to the Dask scheduler at {address!r}: {err}") from err
    try:
        _log(f"running on the Dask cluster at {address} (dashboard: {client.dashboard_link})")
        yield client
    finally:
        client.close()


def _compute(ds: Any, client: Any, progress: bool) -> Any:
    """Compute a lazy dataset, with a progress bar on either kind of scheduler."""
    if client is None:
        return ds.compute()
    future = client.compute(ds)
    if progress:
        from distributed import progress as distributed_progress

        distributed_progress(future)
        print(file=sys.stderr)
    return future.result()


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


# -- subcommands ----------------------------------------------------------------------


def _cmd_train(args: argparse.Namespace) -> int:
    from .demo import save_posteriors, train_posteriors

    out = _check_out(args.out, overwrite=args.overwrite)
    _store_format(out)
    options: dict[str, Any] = {}
    if args.data_path is not None:
        options["path"] = args.data_path
    t0 = time.perf_counter()
    post = train_posteriors(
        args.dataset,
        method=args.method,
        n_members=args.members,
        latent_dim=args.latent_dim,
        betas=args.beta,
        architecture=args.architecture,
        steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        loss=args.loss,
        image_size=args.image_size,
        n_train=args.n_train,
        n_fingerprint=args.n_fingerprint,
        seed=args.seed,
        models_dir=args.models,
        progress=not args.no_progress,
        dataset_options=options,
        log=_log,
    )
    save_posteriors(post, out, overwrite=args.overwrite)
    _log(
        f"wrote {out}: posteriors of {post.sizes['model']} models x {post.sizes['latent']} "
        f"latents on {post.sizes['sample']} samples ({time.perf_counter() - t0:.0f} s)"
    )
    return 0


def _cmd_fingerprint(args: argparse.Namespace) -> int:
    from .fingerprints import fingerprint, label_fingerprints

    out = _check_out(args.out, overwrite=args.overwrite)
    _store_format(out)
    post = open_input(args.posteriors, ["posteriors"], role="POSTERIORS")
    fp = fingerprint(
        post,
        channels=args.channels,
        channel_chunk=args.channel_chunk,
        sample_chunk=args.sample_chunk,
    )
    if args.labels:
        from .fingerprints import concat_fingerprints

        if "labels" not in post:
            raise UserError(
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
    with _progress(not args.no_progress):
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
            raise UserError(
                f"--against labels: {args.input!r} has no 'labels' variable "
                "(ground-truth factors (factor, sample)); give another POSTERIORS file instead"
            )
        return label_fingerprints(post)
    other = open_input(args.against, ["posteriors", "fingerprints"], role="--against")
    if "bc" not in other:
        other = fingerprint(other, channel_chunk=args.channel_chunk, sample_chunk=args.sample_chunk)
    return other


def _cmd_compare(args: argparse.Namespace) -> int:
    from .fingerprints import fingerprint
    from .pairwise import pairwise

    fmt = _store_format(args.out)
    # a Zarr store that exists is a run to resume, not a file to overwrite
    out = _check_out(args.out, overwrite=args.overwrite or fmt == "zarr")
    src = open_input(args.input, ["posteriors", "fingerprints"], role="INPUT")
    if "bc" in src:  # a Fingerprints file
        fp = src
    else:
        fp = fingerprint(
            src,
            channels=args.channels,
            channel_chunk=args.channel_chunk,
            sample_chunk=args.sample_chunk,
        )
    other = _against(args, src)
    t0 = time.perf_counter()
    progress = not args.no_progress
    with dask_scheduler(args.scheduler, progress=progress) as client:
        if fmt == "zarr":
            if out.exists():
                _log(f"resuming the run stored in {out}")
            pw = pairwise(
                fp,
                other,
                min_info=args.min_info,
                channel_chunk=args.channel_chunk,
                sample_chunk=args.sample_chunk,
                store=out,
            )
            # the finished store is the Pairwise dataset (the input of `ensemblex cluster`)
        else:
            pw = pairwise(
                fp,
                other,
                min_info=args.min_info,
                channel_chunk=args.channel_chunk,
                sample_chunk=args.sample_chunk,
            )
            pw = _compute(pw, client, progress)
            _save(pw, out, args.overwrite)
    _log(
        f"wrote {out}: {_summarise_pairwise(pw, args.min_info)} ({time.perf_counter() - t0:.1f} s)"
    )
    return 0


def _cmd_cluster(args: argparse.Namespace) -> int:
    from .demo import auto_min_samples
    from .fingerprints import fingerprint
    from .pairwise import pairwise
    from .structure import cluster

    out = _check_out(args.out, overwrite=args.overwrite)
    _store_format(out)
    figure = _check_out(args.figure, "--figure") if args.figure is not None else None
    src = open_input(args.input, ["pairwise", "fingerprints", "posteriors"], role="INPUT")
    fp = None
    if args.posteriors is not None:
        post = open_input(args.posteriors, ["posteriors", "fingerprints"], role="--posteriors")
        fp = post if "bc" in post else fingerprint(post)
    if "nmi" in src and "joint_info" in src:  # Pairwise
        pw = src
    else:
        if fp is None:
            fp = src if "bc" in src else fingerprint(src)
        with _progress(not args.no_progress):
            pw = pairwise(fp, min_info=args.min_info).compute()
    if args.min_samples == "auto":
        min_samples = auto_min_samples(pw, min_info=args.min_info)
        _log(f"min_samples={min_samples} (auto, from the number of informative channels)")
    else:
        min_samples = args.min_samples
    if fp is not None:
        cl = cluster(
            fp, metric=args.metric, min_samples=min_samples, min_info=args.min_info, pairwise=pw
        )
    else:
        cl = cluster(pw, metric=args.metric, min_samples=min_samples, min_info=args.min_info)
    _save(cl, out, args.overwrite)
    n_groups = len({int(g) for g in cl["group"].values if g >= 0})
    _log(
        f"wrote {out}: {int(cl['informative'].sum())} informative channels of "
        f"{cl.sizes['channel']}, {n_groups} group(s)"
    )
    if figure is not None:
        from .plot import plot_structure

        plot_structure(cl, pairwise=pw, path=figure)
        _log(f"wrote {figure}")
    return 0


def _cmd_synthesize(args: argparse.Namespace) -> int:
    from .demo import group_channels, plot_synthesis
    from .fingerprints import fingerprint
    from .synthesis import synthesize

    out = _check_out(args.out, overwrite=args.overwrite)
    _store_format(out)
    figure = _check_out(args.figure, "--figure") if args.figure is not None else None
    src = open_input(args.input, ["posteriors", "fingerprints"], role="INPUT")
    fp = src if "bc" in src else fingerprint(src)
    if args.group is not None and args.clusters is None:
        raise UserError("--group needs --clusters CLUSTERS.nc (the output of ensemblex cluster)")
    if args.channels is not None and args.clusters is not None:
        raise UserError("give either --channels or --clusters/--group, not both")
    channels = args.channels
    if args.clusters is not None:
        cl = open_input(args.clusters, ["clusters"], role="--clusters")
        channels, group = group_channels(cl, args.group)
        _log(f"synthesising from group {group}: {len(channels)} channels")
    if channels is not None:
        known = {int(c) for c in fp["channel"].values}
        unknown = [c for c in channels if c not in known]
        if unknown:
            raise UserError(
                f"channel id(s) {unknown} are not channels of {args.input!r} "
                f"(it has channels 0..{len(known) - 1})"
            )
    syn = synthesize(
        fp,
        n_dims=args.n_dims,
        objective=args.objective,
        channels=channels,
        steps=args.steps,
        learning_rate=args.learning_rate,
        optimizer=args.optimizer,
        batch_rows=args.batch_rows,
        seed=args.seed,
        progress=not args.no_progress,
    )
    _save(syn, out, args.overwrite)
    _log(f"wrote {out}: a synthesised {args.n_dims}-D channel on {syn.sizes['sample']} samples")
    if figure is not None:
        labels = src.get("labels")
        plot_synthesis(syn, figure, labels=labels)
        _log(f"wrote {figure}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from .report import write_report

    run_dir = Path(args.dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder {args.dir!r} does not exist")
    path = write_report(run_dir, out=args.out)
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
        log=_log,
    )
    print(f"report: {path}")
    return 0


# -- the parser -----------------------------------------------------------------------


def _add_common(p: argparse.ArgumentParser, *, overwrite: bool = True) -> None:
    if overwrite:
        p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--no-progress", action="store_true", help="do not show progress bars")


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

    def add(name: str, help_: str, description: str, func: Callable[..., int]) -> Any:
        p = sub.add_parser(name, help=help_, description=description, formatter_class=_Formatter)
        p.set_defaults(func=func)
        return p

    # train
    p = add(
        "train",
        "train a VAE ensemble and write its posteriors",
        "Train an ensemble of VAEs (one vectorised TensorFlow model) on an offline dataset "
        "and write the posteriors of every member on a fingerprint sample.\n"
        "Needs the train extra: pip install 'ensemblex[train]'.",
        _cmd_train,
    )
    p.add_argument(
        "--dataset",
        default="dsprites",
        choices=["dsprites", "ring", "digits", "mnist", "fashion_mnist"],
        help="training data (mnist/fashion_mnist read IDX files from --data-path)",
    )
    p.add_argument("--data-path", default=None, help="folder of the MNIST/Fashion-MNIST IDX files")
    p.add_argument("--out", required=True, help="posteriors file to write (.nc or .zarr)")
    p.add_argument("--models", default=None, help="folder to save the trained models in")
    p.add_argument(
        "--method",
        default="beta_vae",
        choices=["beta_vae", "beta_tcvae", "annealed_vae", "dip_vae_i", "dip_vae_ii", "factor_vae"],
        help="VAE family",
    )
    p.add_argument("--members", type=_positive_int, default=10, help="members per beta")
    p.add_argument("--latent-dim", type=_positive_int, default=10, help="latent dimensions")
    p.add_argument(
        "--beta",
        type=_nonneg_float,
        nargs="+",
        default=[4.0],
        help="one or more betas; each trains its own ensemble of --members models",
    )
    p.add_argument("--architecture", default="mlp", choices=["mlp", "conv"], help="encoder/decoder")
    p.add_argument("--steps", type=_positive_int, default=2000, help="training steps")
    p.add_argument("--batch-size", type=_positive_int, default=64, help="batch size")
    p.add_argument("--learning-rate", type=_positive_float, default=1e-3, help="Adam learning rate")
    p.add_argument(
        "--loss",
        default=None,
        choices=["bernoulli", "mse"],
        help="reconstruction loss (default: bernoulli for images, mse for the ring)",
    )
    p.add_argument(
        "--image-size",
        type=_positive_int,
        default=None,
        help="shrink the images to SIZE x SIZE by block pooling first (e.g. 32 for dSprites)",
    )
    p.add_argument(
        "--n-train",
        type=_positive_int,
        default=20000,
        help="training points drawn from the dataset",
    )
    p.add_argument(
        "--n-fingerprint",
        type=_positive_int,
        default=500,
        help="fingerprint sample: points the posteriors are evaluated on",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed")
    _add_common(p)

    # fingerprint
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
        "--labels",
        action="store_true",
        help="append the ground-truth factors as label channels",
    )
    _add_chunks(p)
    _add_common(p)

    # compare
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
        "input",
        metavar="POSTERIORS",
        help="posteriors (or fingerprints) file (.nc or .zarr)",
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
    p.add_argument(
        "--min-info",
        type=_nonneg_float,
        default=0.01,
        help="channels with less information (bits) get NaN NMI",
    )
    p.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="address of a running dask.distributed scheduler, e.g. tcp://10.0.0.5:8786 "
        "(default: local threads)",
    )
    _add_chunks(p)
    _add_common(p)

    # cluster
    p = add(
        "cluster",
        "OPTICS hotspots of the channels",
        "Group the channels whose information recurs across the ensemble (OPTICS on "
        "-ln NMI or VI), find each group's central channel, and draw the structure figure.",
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
    p.add_argument("--metric", default="nmi", choices=["nmi", "vi"], help="OPTICS distance")
    p.add_argument(
        "--min-samples",
        type=_min_samples,
        default="auto",
        help="OPTICS min_samples; auto = informative channels / 8, between 3 and 20",
    )
    p.add_argument(
        "--min-info",
        type=_nonneg_float,
        default=0.01,
        help="channels under this information (bits) are dropped",
    )
    _add_common(p)

    # synthesize
    p = add(
        "synthesize",
        "fuse a group of channels into one synthesised channel",
        "Optimise a new channel whose fingerprint is most similar to a set of reference "
        "channels (by default the biggest group of --clusters), by gradient descent.\n"
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
        "--objective",
        default="vi",
        choices=["vi", "nmi", "info"],
        help="similarity maximised: exp(-VI), NMI or shared information",
    )
    p.add_argument("--steps", type=_positive_int, default=20000, help="optimisation steps")
    p.add_argument("--learning-rate", type=_positive_float, default=3.0, help="learning rate")
    p.add_argument("--optimizer", default="sgd", choices=["sgd", "adam"], help="optimiser")
    p.add_argument(
        "--batch-rows",
        type=_positive_int,
        default=None,
        help="fingerprint rows per step (default: all)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed")
    _add_common(p)

    # report
    p = add(
        "report",
        "collect a run's figures and numbers into report.html",
        "Write DIR/report.html with the run's PNG figures and a table of its numbers "
        "(channels, informative channels, groups, central channels, NMI with factors).",
        _cmd_report,
    )
    p.add_argument("dir", metavar="DIR", help="run folder (e.g. the demo's --out)")
    p.add_argument("--out", default=None, help="report file (default: DIR/report.html)")

    # demo
    p = add(
        "demo",
        "the whole study end to end on embedded data (CPU, < 10 min)",
        "Train a small beta-VAE ensemble on procedurally generated dSprites, fingerprint and "
        "compare every latent channel, find the hotspots with OPTICS, measure NMI with the "
        "ground-truth factors, synthesise a channel from the biggest group, and write "
        "netCDF files, PNG figures and report.html to --out.",
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
    _add_common(p, overwrite=False)
    return parser


def _user_message(exc: BaseException) -> str:
    """One line for a user mistake."""
    if isinstance(exc, ImportError):
        name = (getattr(exc, "name", None) or "").split(".")[0]
        if name in _EXTRAS:
            return (
                f"this needs {name}, which is not installed: "
                f"pip install 'ensemblex[{_EXTRAS[name]}]'"
            )
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``ensemblex`` command; return its exit code.

    ``argv`` defaults to ``sys.argv[1:]``. Bad options exit with 2, user
    mistakes found later with 1 (one line on stderr), Ctrl-C with 130.
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
