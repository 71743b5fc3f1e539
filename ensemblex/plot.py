"""Figures of the paper's Fig. 4: hotspots of one ensemble, and two ensembles compared.

Matplotlib only, on the non-interactive Agg canvas (no display needed). Every
function returns the :class:`matplotlib.figure.Figure` and saves it as a PNG
when ``path`` is given; each panel's axes carry a label (``ax.get_label()``):
``"reachability"``, ``"similarity"``, ``"label_nmi"``, ``"colorbar"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import xarray as xr

from ._checks import check_option
from ._kinds import dataset_kind, require_kind, stamp
from ._namespace import to_numpy
from .errors import InputError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .models import Ensemble

__all__ = [
    "plot_cross",
    "plot_information",
    "plot_structure",
    "plot_synthesis",
    "plot_traversals",
]

_CMAP = "magma_r"
_DPI = 100


def _host(x: xr.DataArray) -> np.ndarray:
    """The values of ``x`` as a float64 NumPy array (Dask computed, CuPy copied to host)."""
    return np.asarray(to_numpy(x.data), dtype=np.float64)


def _figure(size: tuple[float, float]) -> Figure:
    from matplotlib.figure import Figure

    # a Figure without pyplot: no global state, no display, the Agg canvas on save
    return Figure(figsize=size, dpi=_DPI)


def _save(fig: Figure, path: str | Path | None) -> Figure:
    if path is not None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(fig)
        path = Path(path)
        # PNG unless the suffix names another format matplotlib writes (".pdf", ".svg")
        fig.savefig(path, format=None if path.suffix else "png", dpi=_DPI)
    return fig


def _group_colors(n_groups: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n_groups <= 10 else "tab20"]
    return [cmap(g % cmap.N) for g in range(n_groups)]


def _segments(groups: np.ndarray) -> list[tuple[int, int, int]]:
    """Runs ``(group, start, stop)`` of equal, non-negative groups along the ordering."""
    runs = []
    start = 0
    for k in range(1, groups.size + 1):
        if k == groups.size or groups[k] != groups[start]:
            if groups[start] >= 0:
                runs.append((int(groups[start]), start, k))
            start = k
    return runs


def _similarity_from_pairwise(pairwise: xr.Dataset, ids: np.ndarray, metric: str) -> np.ndarray:
    require_kind(pairwise, ("pairwise",), "plot_structure(pairwise=...)")
    values = _host(pairwise[metric].sel(channel_a=ids, channel_b=ids))
    if metric == "vi":
        return np.exp(-np.maximum(values, 0.0))
    return np.clip(values, 0.0, 1.0)


def plot_structure(
    clusters: xr.Dataset,
    *,
    pairwise: xr.Dataset | None = None,
    path: str | Path | None = None,
) -> Figure:
    """The paper's Fig. 4 layout for the hotspots of one ensemble.

    Top: the OPTICS reachability profile of the informative channels in OPTICS
    order, with each group's span shaded in its colour (noise grey). Centre:
    the similarity matrix (NMI, or ``exp(-VI)`` for ``metric="vi"``) reordered
    by OPTICS, colour scale 0..1, groups outlined. Left, when the clusters
    carry ``label_nmi``: the NMI of every channel with each ground-truth
    factor, on the same rows.

    Parameters
    ----------
    clusters
        A Clusters dataset from :func:`ensemblex.structure.cluster`.
    pairwise
        Pairwise results to take the matrix from instead of
        ``clusters.similarity`` (e.g. after reading a Clusters dataset saved
        without it).
    path
        Where to save the figure as PNG.

    Returns
    -------
    matplotlib.figure.Figure
        8 x 7.5 inches at 100 dpi (800 x 750 pixels).

    Examples
    --------
    >>> from ensemblex.testing import planted_ensemble, reference_pairwise
    >>> from ensemblex.structure import cluster
    >>> post = planted_ensemble(n_models=8, n_latent=5, n_samples=60, n_mixed=0)
    >>> cl = cluster(reference_pairwise(post, labels=True), min_samples=5)
    >>> fig = plot_structure(cl)
    >>> sorted(ax.get_label() for ax in fig.axes)
    ['colorbar', 'label_nmi', 'reachability', 'similarity']
    """
    require_kind(clusters, ("clusters",), "plot_structure()")
    metric = str(clusters.attrs.get("metric", "nmi"))
    ordering = np.asarray(clusters["ordering"].values, dtype=np.int64)
    ordered = clusters.isel(channel=ordering)
    ids = ordered["channel"].values
    groups = np.asarray(ordered["group"].values)
    reach = np.asarray(ordered["reachability"].values, dtype=np.float64)
    if pairwise is not None:
        sim = _similarity_from_pairwise(pairwise, ids, metric)
    elif "similarity" in clusters.data_vars:
        sim = clusters["similarity"].sel(channel_a=ids, channel_b=ids).values
    else:
        raise InputError(
            "plot_structure() needs the similarity matrix: these Clusters have no "
            "'similarity' variable; pass pairwise= (the Pairwise results they came from)."
        )
    has_labels = "label_nmi" in clusters.data_vars
    n = ids.size
    n_groups = int(groups.max()) + 1 if groups.size and groups.max() >= 0 else 0
    colors = _group_colors(max(n_groups, 1))

    fig = _figure((8.0, 7.5))
    n_factor = clusters.sizes.get("factor", 0) if has_labels else 0
    left = max(0.6, 0.25 * n_factor) if has_labels else 0.01
    # room under the panels for the factor names, written vertically
    longest = max((len(str(f)) for f in clusters["factor"].values), default=0) if has_labels else 0
    bottom = min(0.2, 0.08 + 0.009 * max(0, longest - 5))
    grid = fig.add_gridspec(
        2,
        3,
        width_ratios=[left, 5.0, 0.2],
        height_ratios=[1.3, 5.0],
        left=0.08,
        right=0.92,
        bottom=bottom,
        top=0.95,
        wspace=0.04,
        hspace=0.04,
    )
    ax_reach = fig.add_subplot(grid[0, 1], label="reachability")
    ax_sim = fig.add_subplot(grid[1, 1], sharex=ax_reach, label="similarity")
    ax_bar = fig.add_subplot(grid[1, 2], label="colorbar")

    # reachability profile; the first point of an ordering is at infinite reachability
    finite = np.isfinite(reach)
    top = float(reach[finite].max()) * 1.1 if finite.any() else 1.0
    shown = np.where(finite, reach, top)
    bar_colors = [colors[g] if g >= 0 else (0.6, 0.6, 0.6, 1.0) for g in groups]
    ax_reach.bar(np.arange(n), shown, width=1.0, color=bar_colors, linewidth=0)
    for g, start, stop in _segments(groups):
        ax_reach.axvspan(start - 0.5, stop - 0.5, color=colors[g], alpha=0.2, linewidth=0)
    ax_reach.set_ylim(0, top)
    ax_reach.set_ylabel("reachability")
    ax_reach.tick_params(labelbottom=False)
    ax_reach.set_title(
        f"{n} informative channels, {n_groups} groups (OPTICS, {metric.upper()})", fontsize=10
    )

    image = ax_sim.imshow(
        sim,
        cmap=_CMAP,
        vmin=0.0,
        vmax=1.0,
        interpolation="nearest",
        aspect="auto",
        extent=(-0.5, n - 0.5, n - 0.5, -0.5),
    )
    for g, start, stop in _segments(groups):
        from matplotlib.patches import Rectangle

        ax_sim.add_patch(
            Rectangle(
                (start - 0.5, start - 0.5),
                stop - start,
                stop - start,
                fill=False,
                edgecolor=colors[g],
                linewidth=1.5,
            )
        )
    ax_sim.set_xlabel("channel (OPTICS order)")
    ax_sim.set_xlim(-0.5, n - 0.5)
    ax_sim.set_ylim(n - 0.5, -0.5)
    fig.colorbar(image, cax=ax_bar, label="NMI" if metric == "nmi" else "exp(-VI)")

    if has_labels:
        ax_lab = fig.add_subplot(grid[1, 0], sharey=ax_sim, label="label_nmi")
        lab = ordered["label_nmi"].transpose("channel", "factor").values
        ax_lab.imshow(
            np.nan_to_num(lab, nan=0.0),
            cmap=_CMAP,
            vmin=0.0,
            vmax=1.0,
            interpolation="nearest",
            aspect="auto",
            extent=(-0.5, lab.shape[1] - 0.5, n - 0.5, -0.5),
        )
        ax_lab.set_xticks(np.arange(lab.shape[1]))
        ax_lab.set_xticklabels([str(f) for f in clusters["factor"].values], rotation=90)
        ax_lab.set_ylabel("NMI with factor / channel (OPTICS order)")
        ax_sim.tick_params(labelleft=False)
    else:
        ax_sim.set_ylabel("channel (OPTICS order)")
    return _save(fig, path)


# -- two ensembles ---------------------------------------------------------------------


def _fingerprints_of(ds: xr.Dataset, what: str) -> xr.Dataset:
    """Fingerprints of a side of plot_cross (a Clusters side gives its parameters)."""
    kind = require_kind(ds, ("fingerprints", "clusters"), what)
    if kind == "fingerprints":
        return ds
    if "channel_mean" not in ds.data_vars or "channel_logvar" not in ds.data_vars:
        raise InputError(
            f"{what}: these Clusters do not carry their fingerprints' parameters "
            "(channel_mean, channel_logvar), as cluster() of a Pairwise dataset does not; "
            "pass the Fingerprints instead, or cluster the Fingerprints."
        )
    params = [v for v in ("channel_mean", "channel_logvar", "channel_label") if v in ds]
    # the parameters with their coordinates (channel, component, sample): the pairwise
    # engine regenerates the fingerprint rows from them
    return stamp(ds[params], "fingerprints")


def _order(ds: xr.Dataset, ids: np.ndarray) -> np.ndarray | None:
    """Positions of ``ids`` in the OPTICS order of a Clusters side, else None."""
    if dataset_kind(ds) != "clusters":
        return None
    ordered = ds["channel"].values[ds["ordering"].values]
    rank = {c: k for k, c in enumerate(ordered.tolist())}
    keep = [k for k, c in enumerate(ids.tolist()) if c in rank]
    return np.array(sorted(keep, key=lambda k: rank[ids[k].item()]), dtype=np.int64)


def _leaf_order(matrix: np.ndarray) -> np.ndarray:
    """Rows ordered so that rows with similar profiles are neighbours (average linkage)."""
    if matrix.shape[0] < 3:
        return np.arange(matrix.shape[0])
    from scipy.cluster.hierarchy import leaves_list, linkage

    return leaves_list(linkage(matrix, method="average", metric="euclidean"))


def plot_cross(
    a: xr.Dataset,
    b: xr.Dataset,
    *,
    metric: Literal["nmi", "vi"] = "nmi",
    path: str | Path | None = None,
) -> Figure:
    """Compare the channels of two ensembles (the paper's Fig. 4b).

    The matrix of NMI (or ``exp(-VI)``) between every informative channel of
    ``a`` (rows) and of ``b`` (columns), computed with
    :func:`ensemblex.pairwise.pairwise`. A Clusters side is shown in its OPTICS
    order with its groups marked; a Fingerprints side is ordered by similarity
    (rows: average-linkage leaves; columns: by the row they match best, so
    that shared information lies on a diagonal).

    Parameters
    ----------
    a, b
        Fingerprints, or Clusters from Fingerprints (they keep the parameters the
        comparison needs), over the same samples.
    metric
        ``"nmi"`` or ``"vi"``.
    path
        Where to save the figure as PNG.

    Returns
    -------
    matplotlib.figure.Figure
        7 x 6 inches at 100 dpi (700 x 600 pixels); the matrix panel is labelled
        ``"similarity"``.

    Examples
    --------
    >>> from ensemblex.testing import planted_ensemble
    >>> one = planted_ensemble(n_models=3, n_latent=4, n_samples=50, seed=0)
    >>> two = planted_ensemble(n_models=3, n_latent=4, n_samples=50, seed=0)
    >>> fig = plot_cross(one.repinfo.fingerprint(), two.repinfo.fingerprint())
    >>> [ax.get_label() for ax in fig.axes]
    ['similarity', 'colorbar']
    """
    from .pairwise import pairwise as pairwise_fn

    metric = check_option("metric", metric, ("nmi", "vi"))
    fp_a = _fingerprints_of(a, "plot_cross(a)")
    fp_b = _fingerprints_of(b, "plot_cross(b)")
    pw = pairwise_fn(fp_a, fp_b)
    values = pw[[metric, "info_a", "info_b"]].compute()
    min_info = float(pw.attrs.get("min_info", 0.01))
    rows = np.flatnonzero(_host(values["info_a"]) >= min_info)
    cols = np.flatnonzero(_host(values["info_b"]) >= min_info)
    if rows.size == 0 or cols.size == 0:
        raise InputError(
            "plot_cross(): one of the ensembles has no informative channel "
            f"(>= {min_info} bits); nothing to compare."
        )
    matrix = _host(values[metric])[np.ix_(rows, cols)]
    sim = np.exp(-np.maximum(matrix, 0.0)) if metric == "vi" else np.clip(matrix, 0.0, 1.0)
    sim = np.nan_to_num(sim, nan=0.0)
    ids_a = values["channel_a"].values[rows]
    ids_b = values["channel_b"].values[cols]

    order_a = _order(a, ids_a)
    if order_a is None or order_a.size == 0:
        order_a = _leaf_order(sim)
    order_b = _order(b, ids_b)
    if order_b is None or order_b.size == 0:
        best = np.argmax(sim[order_a], axis=0)  # the displayed row each column matches
        strength = sim[order_a][best, np.arange(sim.shape[1])]
        order_b = np.lexsort((-strength, best))
    shown = sim[np.ix_(order_a, order_b)]

    fig = _figure((7.0, 6.0))
    grid = fig.add_gridspec(
        1, 2, width_ratios=[5.0, 0.2], left=0.12, right=0.9, bottom=0.1, top=0.92, wspace=0.05
    )
    ax = fig.add_subplot(grid[0, 0], label="similarity")
    ax_bar = fig.add_subplot(grid[0, 1], label="colorbar")
    image = ax.imshow(shown, cmap=_CMAP, vmin=0.0, vmax=1.0, interpolation="nearest", aspect="auto")
    for side, ds, ids, order in (("a", a, ids_a, order_a), ("b", b, ids_b, order_b)):
        if dataset_kind(ds) != "clusters":
            continue
        groups = ds["group"].sel(channel=ids[order]).values
        colors = _group_colors(max(int(groups.max()) + 1, 1))
        for g, start, stop in _segments(groups):
            if side == "a":
                ax.axhspan(start - 0.5, stop - 0.5, xmin=0, xmax=0.015, color=colors[g])
            else:
                ax.axvspan(start - 0.5, stop - 0.5, ymin=0.985, ymax=1, color=colors[g])
    ax.set_ylabel(f"channels of a ({rows.size} informative)")
    ax.set_xlabel(f"channels of b ({cols.size} informative)")
    ax.set_title(f"{metric.upper()} between the channels of two ensembles", fontsize=10)
    fig.colorbar(image, cax=ax_bar, label="NMI" if metric == "nmi" else "exp(-VI)")
    return _save(fig, path)


# -- a run's information and its synthesised channel -------------------------------------


def _label_names(labels: xr.DataArray) -> list[str]:
    if "factor" in labels.coords:
        return [str(f) for f in labels["factor"].values]
    return [str(i) for i in range(labels.sizes["factor"])]


def plot_synthesis(
    syn: xr.Dataset,
    path: str | Path,
    *,
    labels: xr.DataArray | None = None,
    max_factors: int = 5,
) -> Path:
    """Scatter the synthesised posterior means, one panel per ground-truth factor.

    Points are coloured by the factor's value; a 1-D channel is drawn against
    the sample index. A variable of ``syn`` along a step dim (the objective
    trace) gets its own panel.
    """
    mean = np.asarray(syn["mean"].values)[0]  # (latent, sample)
    factor_names = _label_names(labels)[:max_factors] if labels is not None else [""]
    traces = [
        name
        for name, var in syn.data_vars.items()
        if var.ndim == 1 and var.dims[0] not in ("model", "latent", "sample", "factor")
    ]
    if "objective_trace" in traces:
        traces = ["objective_trace"]
    n_panels = len(factor_names) + len(traces[:1])
    ncols = min(3, n_panels)
    nrows = -(-n_panels // ncols)
    fig = _figure((3.4 * ncols, 3.2 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat[n_panels:]:
        ax.set_visible(False)
    panels = list(axes.flat)
    x = mean[0]
    y = mean[1] if mean.shape[0] > 1 else np.arange(mean.shape[1])
    for ax, name in zip(panels, factor_names, strict=False):
        colour = (
            np.asarray(labels.sel(factor=labels["factor"].values[factor_names.index(name)]))
            if labels is not None
            else np.arange(mean.shape[1])
        )
        ax.scatter(x, y, c=colour, s=8, cmap="viridis")
        ax.set_title(f"coloured by {name}" if name else "synthesised channel", fontsize=9)
        ax.set_xlabel("u1")
        ax.set_ylabel("u2" if mean.shape[0] > 1 else "sample")
        ax.set_aspect("auto")
    if traces:
        ax = panels[n_panels - 1]
        trace = syn[traces[0]]
        ax.plot(np.asarray(trace.values, dtype=float))
        ax.set_title(str(traces[0]).replace("_", " "), fontsize=9)
        ax.set_xlabel(str(trace.dims[0]))
    fig.suptitle("Synthesised channel: posterior means", fontsize=10)
    fig.tight_layout()
    _save(fig, path)
    return Path(path)


def plot_information(pw: xr.Dataset, post: xr.Dataset, path: str | Path) -> Path:
    """Heatmap of the information (bits) of every latent channel, model by latent."""
    n_model, n_latent = post.sizes["model"], post.sizes["latent"]
    bits = np.asarray(pw["info_a"].values, dtype=float).reshape(n_model, n_latent)
    fig = _figure((2.0 + 0.45 * n_latent, 1.5 + 0.3 * n_model))
    ax = fig.subplots()
    im = ax.imshow(bits, cmap="magma", aspect="auto")
    ax.set_xlabel("latent")
    ax.set_ylabel("model")
    ax.set_title("I(X;U) per channel (bits)", fontsize=10)
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    _save(fig, path)
    return Path(path)


# -- decoded latent traversals --------------------------------------------------------


def _show_image(ax: Any, img: np.ndarray) -> None:
    ax.imshow(
        img if img.ndim == 2 or img.shape[-1] == 3 else img[..., 0],
        cmap="gray",
        vmin=0,
        vmax=1,
    )
    ax.set_xticks([])
    ax.set_yticks([])


def plot_traversals(
    ensemble: Ensemble,
    *,
    model: int = 0,
    latents: Sequence[int] | None = None,
    values: Any = None,
    base: Any = None,
    path: str | Path | None = None,
) -> Figure:
    """Latent traversals of one member (paper Fig. 4c/5) as a matplotlib figure.

    Images: one row per latent, one column per value. Vector data (e.g. the
    ring): one panel per latent, the decoded points coloured by value.

    Parameters
    ----------
    ensemble
        The trained ensemble.
    model
        Member (position in the kept members).
    latents
        Latents to show (default: all).
    values
        Traversal values (default: 9 values in [-2, 2]).
    base
        Value of the other latents (default 0).
    path
        Save the figure there as PNG.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from ensemblex.datasets import load_dataset
    >>> from ensemblex.models import train_ensemble
    >>> ring = load_dataset("ring", n_samples=64)
    >>> ens = train_ensemble(ring, n_members=2, latent_dim=1, hidden=[4], steps=1,
    ...                      batch_size=8, loss="mse", progress=False)
    >>> fig = plot_traversals(ens, values=[-1.0, 0.0, 1.0])
    >>> len(fig.axes)            # one panel (and its colour bar) per latent
    2
    """
    n_latent = ensemble.config["latent_dim"]
    latents = list(range(n_latent)) if latents is None else [int(i) for i in latents]
    values = np.linspace(-2.0, 2.0, 9) if values is None else np.asarray(values, float)
    shape = tuple(ensemble.config["data_shape"])
    is_image = len(shape) >= 2
    if is_image:
        fig = _figure((0.9 * len(values) + 0.6, 0.9 * len(latents) + 0.4))
        axes = fig.subplots(len(latents), len(values), squeeze=False)
        for r, lat in enumerate(latents):
            imgs = ensemble.traverse(model, lat, values, base=base)
            for c in range(len(values)):
                ax = axes[r, c]
                _show_image(ax, imgs[c])
                if r == len(latents) - 1:
                    ax.set_xlabel(f"{values[c]:.2g}", fontsize=7)
                if c == 0:
                    ax.set_ylabel(f"z{lat}", fontsize=8)
    else:
        fig = _figure((3.0 * len(latents), 3.0))
        axes = fig.subplots(1, len(latents), squeeze=False)
        for c, lat in enumerate(latents):
            out = ensemble.traverse(model, lat, values, base=base).reshape(len(values), -1)
            ax = axes[0, c]
            if out.shape[1] >= 2:
                sc = ax.scatter(out[:, 0], out[:, 1], c=values, cmap="viridis", s=15)
                ax.plot(out[:, 0], out[:, 1], lw=0.5, color="gray")
                ax.set_aspect("equal", adjustable="datalim")
            else:
                sc = ax.scatter(values, out[:, 0], c=values, cmap="viridis", s=15)
            fig.colorbar(sc, ax=ax, label=f"z{lat}")
            ax.set_title(f"model {model}, latent {lat}", fontsize=9)
    fig.suptitle(
        f"{ensemble.config['method']} traversals (member seed {ensemble.seeds[model]})", fontsize=9
    )
    return _save(fig, path)
