"""Figures: one ensemble's structure (paper Fig. 4), two ensembles compared, NMI
against exp(-VI) (Fig. 12), decoded traversals of groups (Figs. 4c and 11), a
run's information and its synthesised channel.

Matplotlib only, on the non-interactive Agg canvas (no display needed). Every
function returns the :class:`matplotlib.figure.Figure` (the two run figures,
:func:`plot_synthesis` and :func:`plot_information`, return the path they
wrote) and saves it as a PNG when ``path`` is given. The panels carry labels
(``ax.get_label()``), e.g. ``"reachability"``, ``"similarity"``,
``"label_nmi"``, ``"colorbar"``, so tests and users can find them.

Memory is bounded by the figure, not by the ensemble: the structure figure
draws the Clusters' ``ordered_similarity`` (at most 1000 x 1000 pixels), or
streams block means from a full matrix a strip of rows at a time, and
:func:`plot_nmi_vi` draws a seeded random subset of the pairs of a big store.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import xarray as xr

from ._kinds import dataset_kind, require_kind, stamp
from ._namespace import to_numpy
from .errors import InputError
from .estimators import MIN_INFO
from .measures import ClusterMeasure, Measure, get_measure, resolve_alias

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .models import Ensemble

__all__ = [
    "plot_cross",
    "plot_group_traversals",
    "plot_information",
    "plot_nmi_vi",
    "plot_structure",
    "plot_synthesis",
    "plot_traversals",
]

_CMAP = "magma_r"
_DPI = 100
#: the largest side, in pixels, of a drawn similarity matrix
MAX_PIXELS = 1000
#: up to this many channels, every tick of the structure figure names (model, latent)
_FEW_CHANNELS = 40
#: values read at a time when a figure streams a matrix from a store (32 MB of float64)
_READ_VALUES = 4_000_000
_NOISE = (0.6, 0.6, 0.6, 1.0)


def _host(x: xr.DataArray) -> np.ndarray:
    """The values of ``x`` as a float64 NumPy array (Dask computed, CuPy copied to host)."""
    return np.asarray(to_numpy(x.data), dtype=np.float64)


def _figure(size: tuple[float, float], layout: Literal["constrained"] | None = None) -> Figure:
    from matplotlib.figure import Figure

    # a Figure without pyplot: no global state, no display, the Agg canvas on save
    return Figure(figsize=size, dpi=_DPI, layout=layout)


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


def _clusters_measure(clusters: xr.Dataset) -> Measure:
    """The measure the Clusters were computed with (attrs ``measure``, formerly ``metric``)."""
    name = clusters.attrs.get("measure", clusters.attrs.get("metric", "nmi"))
    return get_measure(str(name), "cluster")


# -- the matrix at the figure's resolution ----------------------------------------------


def _block_starts(n: int, block: int) -> np.ndarray:
    return np.arange(0, n, block, dtype=np.int64)


def _row_chunk(matrix: xr.DataArray) -> int:
    """Rows per stored chunk along ``channel_a`` (Dask, or the file's own chunks), else 1."""
    if matrix.chunks:
        return int(max(matrix.chunks[0]))
    for key in ("preferred_chunks", "chunks", "chunksizes"):
        value = matrix.encoding.get(key)
        if isinstance(value, Mapping) and "channel_a" in value:
            return int(value["channel_a"])
        if isinstance(value, tuple | list) and len(value) == 2:
            return int(value[0])
    return 1


def _reads(positions: np.ndarray, chunk: int, width: int) -> list[tuple[int, int]]:
    """Ranges ``[lo, hi)`` of ``positions`` (sorted row positions) to read at a time.

    About :data:`_READ_VALUES` values (``width`` per row) per read, cut at the
    stored chunks' edges so that no chunk is read twice, unless one chunk alone
    holds more than four times that.

    Examples
    --------
    >>> _reads(np.arange(10), 4, _READ_VALUES // 5)   # 5 rows a read, chunks of 4 rows
    [(0, 4), (4, 8), (8, 10)]
    """
    budget = max(1, _READ_VALUES // max(width, 1))
    edges = np.flatnonzero(np.diff(positions // max(chunk, 1))) + 1
    groups = np.split(np.arange(positions.size), edges) if positions.size else []
    reads: list[tuple[int, int]] = []
    lo = hi = 0
    for group in groups:
        size = group.size
        if size > 4 * budget:  # a huge chunk: read it in parts
            if hi > lo:
                reads.append((lo, hi))
            start = int(group[0])
            reads += [
                (k, min(k + budget, start + size)) for k in range(start, start + size, budget)
            ]
            lo = hi = start + size
        elif hi - lo + size > budget and hi > lo:
            reads.append((lo, hi))
            lo, hi = hi, hi + size
        else:
            hi += size
    if hi > lo:
        reads.append((lo, hi))
    return reads


def _stream_block_means(
    matrix: xr.DataArray,
    ids: np.ndarray,
    block: int,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """Block means of ``matrix`` over ``ids`` x ``ids`` (in that order), in one pass.

    ``matrix`` has dims (``channel_a``, ``channel_b``) and may be lazy (Dask, or
    a Zarr/netCDF store). Its rows are read once, in the order they are
    stored, about :data:`_READ_VALUES` values at a time; each value is added to
    the block of its row's and column's rank in ``ids``. Memory: one read plus
    the blocks, whatever the number of channels. ``transform`` (e.g. a
    measure's similarity) is applied before averaging; non-finite values are
    left out of the means.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> m = xr.DataArray(np.arange(16.0).reshape(4, 4), dims=("channel_a", "channel_b"),
    ...                  coords={"channel_a": [0, 1, 2, 3], "channel_b": [0, 1, 2, 3]})
    >>> _stream_block_means(m, np.array([0, 1, 2, 3]), 2).tolist()
    [[2.5, 4.5], [10.5, 12.5]]
    """
    matrix = matrix.transpose("channel_a", "channel_b")
    n = ids.size
    n_blocks = -(-n // block)
    where_a = matrix.get_index("channel_a").get_indexer(ids)
    where_b = matrix.get_index("channel_b").get_indexer(ids)
    if (where_a < 0).any() or (where_b < 0).any():
        missing = ids[(where_a < 0) | (where_b < 0)]
        raise InputError(
            f"the similarity matrix lacks {missing.size} of the clustered channels (first: "
            f"{missing[0].item()!r}); pass the Pairwise results the Clusters came from."
        )
    from scipy.sparse import csr_matrix

    # read rows and columns in storage order; rows_read[k] is the rank in ids of the
    # k-th row read, likewise cols_read. A sparse one-hot matrix sums the columns read
    # into their blocks (a gather into rank order would cost more than the sums).
    rows_read = np.argsort(where_a, kind="stable")
    cols_read = np.argsort(where_b, kind="stable")
    col_blocks = csr_matrix((np.ones(n), (cols_read // block, np.arange(n))), shape=(n_blocks, n))
    col_sizes = np.bincount(cols_read // block, minlength=n_blocks).astype(np.float64)
    sums = np.zeros((n_blocks, n_blocks))
    counts = np.zeros((n_blocks, n_blocks))
    for lo, hi in _reads(where_a[rows_read], _row_chunk(matrix), n):
        rows = rows_read[lo:hi]
        raw = np.asarray(
            to_numpy(matrix.isel(channel_a=where_a[rows], channel_b=where_b[cols_read]).data)
        )
        values = transform(raw) if transform is not None else raw
        # (columns, rows), float64: the column sums are then row-wise sparse products
        strip = np.array(np.asarray(values).T, dtype=np.float64, order="C")
        finite = np.isfinite(strip)
        row_blocks = csr_matrix(
            (np.ones(rows.size), (rows // block, np.arange(rows.size))),
            shape=(n_blocks, rows.size),
        )
        if finite.all():
            counts += np.outer(np.bincount(rows // block, minlength=n_blocks), col_sizes)
        else:
            strip[~finite] = 0.0
            counts += row_blocks @ (col_blocks @ finite.astype(np.float64)).T
        sums += row_blocks @ (col_blocks @ strip).T
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / np.maximum(counts, 1.0), np.nan)
    return means.reshape(n_blocks, n_blocks)


def _matrix_image(
    clusters: xr.Dataset, pairwise: xr.Dataset | None, ids: np.ndarray, measure: Measure
) -> tuple[np.ndarray, int]:
    """The ordered similarity at the figure's resolution and the channels per pixel."""
    n = ids.size
    if "ordered_similarity" in clusters.data_vars:
        image = clusters["ordered_similarity"].transpose("row", "col")
        block = int(clusters["ordered_similarity"].attrs.get("block_size", 0)) or int(
            clusters.attrs.get("block_size", 0)
        )
        if not block:
            rows = np.asarray(image["row"].values) if "row" in image.coords else None
            block = int(rows[1] - rows[0]) if rows is not None and rows.size > 1 else 1
        expected = -(-n // block)
        if image.shape != (expected, expected):
            raise InputError(
                f"the Clusters' ordered_similarity is {image.shape[0]} x {image.shape[1]} "
                f"pixels, but {n} informative channels at {block} per pixel give "
                f"{expected} x {expected}; these Clusters were edited after cluster(). "
                "Run cluster() again, or drop 'ordered_similarity' and pass pairwise=."
            )
        return _host(image), block
    block = -(-n // MAX_PIXELS) if n else 1
    if pairwise is not None:
        require_kind(pairwise, ("pairwise",), "plot_structure(pairwise=...)")
        if measure.name not in pairwise.data_vars:
            raise InputError(
                f"plot_structure(pairwise=...) needs the {measure.label} of the channels the "
                f"Clusters were made with; this Pairwise dataset has no {measure.name!r}."
            )
        return _stream_block_means(pairwise[measure.name], ids, block, measure.similarity), block
    if "similarity" in clusters.data_vars:
        return _stream_block_means(clusters["similarity"], ids, block), block
    raise InputError(
        "plot_structure() needs the similarity matrix: these Clusters have neither "
        "'ordered_similarity' nor 'similarity'; pass pairwise= (the Pairwise results "
        "they came from)."
    )


# -- one ensemble -----------------------------------------------------------------------


def _channel_names(ordered: xr.Dataset, ids: np.ndarray) -> tuple[list[str], str]:
    """Tick labels of channels in order: ``(model, latent)`` when known, else ids."""
    if "model" in ordered.coords and "latent" in ordered.coords:
        models = ordered["model"].values
        latents = ordered["latent"].values
        return [f"({m}, {lat})" for m, lat in zip(models, latents, strict=True)], "(model, latent)"
    return [str(c) for c in ids], "channel"


def _ticks(
    n: int, names: list[str], ids: np.ndarray, kind: str
) -> tuple[np.ndarray, list[str], str]:
    """Tick positions and labels: every channel when few, about 10 channel ids otherwise."""
    if n <= _FEW_CHANNELS:
        return np.arange(n), names, f"{kind}, in OPTICS order"
    positions = np.unique(np.linspace(0, n - 1, 11).round().astype(np.int64))
    return positions, [str(ids[p]) for p in positions], "channel id, in OPTICS order"


def _best_pairs(clusters: xr.Dataset, limit: int = 6) -> list[Hashable]:
    """The factor pairs (``pair_nmi``) that match some group's central channel better
    than any single factor does, at most ``limit``."""
    if "pair_nmi" not in clusters.data_vars or "label_nmi" not in clusters.data_vars:
        return []
    central = np.flatnonzero(np.asarray(clusters["central"].values, dtype=bool))
    if central.size == 0:
        return []
    single = _host(clusters["label_nmi"].isel(channel=central).transpose("channel", "factor"))
    pair = _host(clusters["pair_nmi"].isel(channel=central).transpose("channel", "factor_pair"))
    names = list(clusters["factor_pair"].values)
    chosen: list[Hashable] = []
    single, pair = np.nan_to_num(single, nan=-1.0), np.nan_to_num(pair, nan=-1.0)
    for s_row, p_row in zip(single, pair, strict=True):
        k = int(np.argmax(p_row))
        if p_row[k] > s_row.max() and names[k] not in chosen:
            chosen.append(names[k])
    return chosen[:limit]


def _label_strip(ordered: xr.Dataset, pairs: list[Hashable]) -> tuple[np.ndarray, list[str]]:
    """NMI of the ordered channels with each factor, then with the chosen factor pairs."""
    columns = [_host(ordered["label_nmi"].transpose("channel", "factor"))]
    names = [str(f) for f in ordered["factor"].values]
    if pairs:
        chosen = ordered["pair_nmi"].sel(factor_pair=pairs).transpose("channel", "factor_pair")
        columns.append(_host(chosen))
        names += [str(p) for p in pairs]
    return np.concatenate(columns, axis=1), names


def _reachability_panel(
    ax: Any, reach: np.ndarray, groups: np.ndarray, block: int, colors: list[Any]
) -> None:
    """Bars of the reachability (block maxima when ``block > 1``), clipped ones marked."""
    from matplotlib.patches import Patch

    n = reach.size
    starts = _block_starts(n, block)
    widths = np.diff(np.r_[starts, n])
    finite = np.isfinite(reach)
    # a block's bar is its highest reachability; +inf (the ordering's first point, or a
    # channel no other reaches) counts as clipped
    with np.errstate(invalid="ignore"):
        peak = np.maximum.reduceat(np.where(finite, reach, -np.inf), starts)
    unreached = np.logical_or.reduceat(~finite, starts)
    values = peak[np.isfinite(peak)]
    top = float(values.max()) * 1.1 if values.size and values.max() > 0 else 1.0
    clipped = unreached
    heights = np.where(clipped, top, np.maximum(peak, 0.0))
    bar_colors = [colors[g] if g >= 0 else _NOISE for g in groups[starts]]
    ax.bar(starts - 0.5, heights, width=widths, align="edge", color=bar_colors, linewidth=0)
    for g, start, stop in _segments(groups):
        ax.axvspan(start - 0.5, stop - 0.5, color=colors[g], alpha=0.2, linewidth=0)
    handles: list[Any] = [
        Patch(color=colors[g], label=f"group {g}") for g in range(len(colors))[:20]
    ]
    handles.append(Patch(color=_NOISE, label="noise"))
    if clipped.any():
        centre = starts[clipped] + (widths[clipped] - 1) / 2
        (mark,) = ax.plot(
            centre,
            np.full(centre.size, top),
            linestyle="none",
            marker="^",
            color="black",
            markersize=4,
            clip_on=False,
            label="clipped (infinite reachability)",
        )
        handles.append(mark)
    ax.legend(
        handles=handles,
        loc="upper right",
        fontsize=6,
        ncols=min(len(handles), 6),
        framealpha=0.85,
        title=f"first 20 of {len(colors)} groups" if len(colors) > 20 else None,
        title_fontsize=6,
    )
    legend_rows = -(-len(handles) // 6) + (len(colors) > 20)
    ax.set_ylim(0, top * (1.15 + 0.17 * legend_rows))  # room above the bars for the legend
    # ticks on the right: the left of the row holds the label-NMI colour bar
    ax.yaxis.tick_right()
    ax.yaxis.set_label_position("right")
    ax.set_ylabel("reachability", fontsize=8)
    ax.tick_params(labelsize=7)


def plot_structure(
    clusters: xr.Dataset,
    *,
    pairwise: xr.Dataset | None = None,
    path: str | Path | None = None,
) -> Figure:
    """The paper's Fig. 4 layout for the hotspots of one ensemble.

    Top: the OPTICS reachability profile of the informative channels in OPTICS
    order, each group's span shaded in its colour (noise grey), with a legend
    of the group colours; bars that reach past the axis (the first point of
    the ordering, and any channel no other one reaches, has infinite
    reachability) are drawn at the top and marked with a triangle. Centre: the
    similarity matrix (NMI, or ``exp(-VI)`` for the VI measure) reordered by
    OPTICS, colour scale 0..1, groups outlined and numbered in their colours.
    Left, when the clusters carry ``label_nmi``: the NMI of every channel with
    each ground-truth factor (and with the factor pairs that best match a
    group's central channel), with its own colour bar. Ticks name the
    channels: ``(model, latent)`` for up to 40 channels, channel ids otherwise.

    The matrix is drawn at most :data:`MAX_PIXELS` pixels on a side: from the
    Clusters' ``ordered_similarity`` (block means in OPTICS order, as
    :func:`ensemblex.cluster` writes them), or, for Clusters without it, block
    means streamed from ``similarity`` or from ``pairwise`` in one pass.
    Memory is bounded by the figure whatever the number of channels.

    Parameters
    ----------
    clusters
        A Clusters dataset from :func:`ensemblex.structure.cluster`.
    pairwise
        Pairwise results (in memory, or a lazy netCDF/Zarr store) to take the
        matrix from when the Clusters carry no ``ordered_similarity`` (Clusters
        written by an earlier version); their block means are streamed from it.
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
    ['colorbar', 'label_nmi', 'label_nmi_colorbar', 'reachability', 'similarity']
    >>> reach = next(ax for ax in fig.axes if ax.get_label() == "reachability")
    >>> [t.get_text() for t in reach.get_legend().get_texts()]
    ['group 0', 'group 1', 'group 2', 'noise', 'clipped (infinite reachability)']
    """
    from matplotlib.patches import Rectangle

    require_kind(clusters, ("clusters",), "plot_structure()")
    measure = _clusters_measure(clusters)
    ordering = np.asarray(clusters["ordering"].values, dtype=np.int64)
    has_labels = "label_nmi" in clusters.data_vars
    pairs = _best_pairs(clusters) if has_labels else []
    per_channel = ["group", "reachability"] + (["label_nmi"] if has_labels else [])
    per_channel += ["pair_nmi"] if pairs else []
    ordered = clusters[per_channel].isel(channel=ordering)
    ids = np.asarray(ordered["channel"].values)
    groups = np.asarray(ordered["group"].values, dtype=np.int64)
    reach = np.asarray(ordered["reachability"].values, dtype=np.float64)
    image, block = _matrix_image(clusters, pairwise, ids, measure)
    n = ids.size
    n_groups = int(groups.max()) + 1 if groups.size and groups.max() >= 0 else 0
    colors = _group_colors(max(n_groups, 1))[:n_groups] if n_groups else []

    names, kind = _channel_names(ordered, ids)
    positions, tick_labels, axis_label = _ticks(n, names, ids, kind)
    strip_values, factors = _label_strip(ordered, pairs) if has_labels else (np.zeros((n, 0)), [])
    fig = _figure((8.0, 7.5))
    left = max(0.6, 0.25 * len(factors)) if has_labels else 0.02
    # room under the panels for the factor names and channel ticks, written vertically
    longest = max((len(str(f)) for f in factors), default=0)
    longest = max(longest, max((len(t) for t in tick_labels), default=0))
    bottom = min(0.22, 0.09 + 0.009 * max(0, longest - 5))
    grid = fig.add_gridspec(
        2,
        3,
        width_ratios=[left, 5.0, 0.2],
        height_ratios=[1.3, 5.0],
        left=0.1,
        right=0.92,
        bottom=bottom,
        top=0.95,
        wspace=0.04,
        hspace=0.04,
    )
    ax_reach = fig.add_subplot(grid[0, 1], label="reachability")
    ax_sim = fig.add_subplot(grid[1, 1], sharex=ax_reach, label="similarity")
    ax_bar = fig.add_subplot(grid[1, 2], label="colorbar")

    _reachability_panel(ax_reach, reach, groups, block, colors)
    ax_reach.tick_params(labelbottom=False)
    title = (
        f"{n} informative channels, {n_groups} groups (OPTICS, {measure.label}, "
        f"min_samples={clusters.attrs.get('min_samples', '?')})"
    )
    if block > 1:
        title += f"; {block} channels per pixel"
    ax_reach.set_title(title, fontsize=9)

    span = image.shape[0] * block - 0.5  # the last block may extend past the last channel
    shown = ax_sim.imshow(
        image,
        cmap=_CMAP,
        vmin=0.0,
        vmax=1.0,
        interpolation="nearest",
        aspect="auto",
        extent=(-0.5, span, span, -0.5),
    )
    for g, start, stop in _segments(groups):
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
        if stop - start >= 0.015 * n:  # room for its number beside the block
            right = stop < 0.9 * n  # right of the block's top corner, else left of its foot
            ax_sim.text(
                stop - 0.5 if right else start - 0.5,
                start - 0.5 if right else stop - 0.5,
                str(g),
                fontsize=6,
                ha="left" if right else "right",
                va="top" if right else "bottom",
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": colors[g], "lw": 1.2},
                label="group number",
            )
    ax_sim.set_xlim(-0.5, n - 0.5)
    ax_sim.set_ylim(n - 0.5, -0.5)
    ax_sim.set_xticks(positions, tick_labels, rotation=90, fontsize=6 if n > 20 else 7)
    ax_sim.set_yticks(positions, tick_labels, fontsize=6 if n > 20 else 7)
    ax_sim.set_xlabel(axis_label)
    fig.colorbar(shown, cax=ax_bar, label=measure.similarity_label)

    if has_labels:
        ax_lab = fig.add_subplot(grid[1, 0], sharey=ax_sim, label="label_nmi")
        strip = ax_lab.imshow(
            np.nan_to_num(strip_values, nan=0.0),
            cmap=_CMAP,
            vmin=0.0,
            vmax=1.0,
            interpolation="nearest",
            aspect="auto",
            extent=(-0.5, len(factors) - 0.5, n - 0.5, -0.5),
        )
        ax_lab.set_xticks(np.arange(len(factors)), [str(f) for f in factors], rotation=90)
        ax_lab.set_ylabel(f"NMI with factor; {axis_label}", fontsize=8)
        ax_sim.tick_params(labelleft=False)
        ax_lab.tick_params(labelleft=True)
        # its own colour bar, a thin horizontal strip above it
        ax_lab_bar = fig.add_subplot(grid[0, 0], label="label_nmi_colorbar")
        box = ax_lab_bar.get_position()
        ax_lab_bar.set_position((box.x0, box.y0 + 0.1 * box.height, box.width, 0.12 * box.height))
        bar = fig.colorbar(strip, cax=ax_lab_bar, orientation="horizontal")
        bar.set_ticks([0.0, 0.5, 1.0])
        bar.ax.tick_params(labelsize=6)
        bar.ax.xaxis.set_label_position("top")
        bar.set_label("NMI with\nfactor", fontsize=7)
    else:
        ax_sim.set_ylabel(axis_label)
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
    measure: ClusterMeasure | None = None,
    path: str | Path | None = None,
    metric: ClusterMeasure | None = None,
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
    measure
        ``"nmi"`` (default) or ``"vi"`` (drawn as ``exp(-VI)``).
    path
        Where to save the figure as PNG.
    metric
        Deprecated alias of ``measure``.

    Returns
    -------
    matplotlib.figure.Figure
        7 x 6 inches at 100 dpi (700 x 600 pixels); the matrix panel is labelled
        ``"similarity"``. Above :data:`MAX_PIXELS` channels a side, the matrix
        is drawn as block means.

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

    name = resolve_alias(
        measure, "nmi", old_name="metric", old_value=metric, function="plot_cross()"
    )
    chosen = get_measure(name, "cluster", option="metric" if metric is not None else "measure")
    assert chosen.similarity is not None  # a clustering measure has one
    fp_a = _fingerprints_of(a, "plot_cross(a)")
    fp_b = _fingerprints_of(b, "plot_cross(b)")
    pw = pairwise_fn(fp_a, fp_b)
    values = pw[[chosen.name, "info_a", "info_b"]].compute()
    min_info = float(pw.attrs.get("min_info", MIN_INFO))
    rows = np.flatnonzero(_host(values["info_a"]) >= min_info)
    cols = np.flatnonzero(_host(values["info_b"]) >= min_info)
    if rows.size == 0 or cols.size == 0:
        raise InputError(
            "plot_cross(): one of the ensembles has no informative channel "
            f"(>= {min_info} bits); nothing to compare."
        )
    matrix = _host(values[chosen.name])[np.ix_(rows, cols)]
    sim = np.nan_to_num(np.asarray(chosen.similarity(matrix), dtype=np.float64), nan=0.0)
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
    # at most MAX_PIXELS a side: block means (each pixel spans block_a x block_b channels)
    block_a = -(-shown.shape[0] // MAX_PIXELS)
    block_b = -(-shown.shape[1] // MAX_PIXELS)
    if block_a > 1 or block_b > 1:
        shown = np.add.reduceat(shown, np.arange(0, shown.shape[0], block_a), axis=0)
        shown = np.add.reduceat(shown, np.arange(0, shown.shape[1], block_b), axis=1)
        size_a = np.diff(np.r_[np.arange(0, rows.size, block_a), rows.size])
        size_b = np.diff(np.r_[np.arange(0, cols.size, block_b), cols.size])
        shown = shown / np.outer(size_a, size_b)
    span_a, span_b = shown.shape[0] * block_a - 0.5, shown.shape[1] * block_b - 0.5

    fig = _figure((7.0, 6.0))
    grid = fig.add_gridspec(
        1, 2, width_ratios=[5.0, 0.2], left=0.12, right=0.9, bottom=0.1, top=0.92, wspace=0.05
    )
    ax = fig.add_subplot(grid[0, 0], label="similarity")
    ax_bar = fig.add_subplot(grid[0, 1], label="colorbar")
    image = ax.imshow(
        shown,
        cmap=_CMAP,
        vmin=0.0,
        vmax=1.0,
        interpolation="nearest",
        aspect="auto",
        extent=(-0.5, span_b, span_a, -0.5),
    )
    ax.set_xlim(-0.5, cols.size - 0.5)
    ax.set_ylim(rows.size - 0.5, -0.5)
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
    ax.set_title(f"{chosen.label} between the channels of two ensembles", fontsize=10)
    fig.colorbar(image, cax=ax_bar, label=chosen.similarity_label)
    return _save(fig, path)


# -- a run's information and its synthesised channel -------------------------------------


def _label_names(labels: xr.DataArray) -> list[str]:
    if "factor" in labels.coords:
        return [str(f) for f in labels["factor"].values]
    return [str(i) for i in range(labels.sizes["factor"])]


def _codes(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Integer codes 0..k-1 of a label's values (in sorted order) and k."""
    unique, inverse = np.unique(values, return_inverse=True)
    return inverse.reshape(values.shape), int(unique.size)


def _factor_values(labels: xr.DataArray, name: str) -> np.ndarray:
    """The values of factor ``name`` per sample; for a pair ``"a+b"`` the joint label.

    The joint label of two factors is ``a * n_b + b`` on their integer codes
    (``n_b``: the number of distinct values of ``b``), the label whose NMI
    :func:`ensemblex.label_nmi` reports for the pair.

    Examples
    --------
    >>> import xarray as xr
    >>> labels = xr.DataArray([[0, 0, 1, 1], [0.5, 0.7, 0.5, 0.7]], dims=("factor", "sample"),
    ...                       coords={"factor": ["shape", "scale"]})
    >>> _factor_values(labels, "shape+scale").tolist()
    [0, 1, 2, 3]
    >>> _factor_values(labels, "colour")
    Traceback (most recent call last):
    ...
    ensemblex.errors.InputError: color_by names 'colour', which is not a factor of the labels ('shape', 'scale') nor a pair 'a+b' of them.
    """
    names = _label_names(labels)
    rows = np.asarray(to_numpy(labels.transpose("factor", ...).data))
    if name in names:
        return rows[names.index(name)]
    parts = name.split("+")
    if len(parts) == 2 and all(p in names for p in parts):
        code_a, _ = _codes(rows[names.index(parts[0])])
        code_b, n_b = _codes(rows[names.index(parts[1])])
        return code_a * n_b + code_b
    raise InputError(
        f"color_by names {name!r}, which is not a factor of the labels "
        f"({', '.join(repr(n) for n in names)}) nor a pair 'a+b' of them."
    )


def plot_synthesis(
    syn: xr.Dataset,
    path: str | Path,
    *,
    labels: xr.DataArray | None = None,
    max_factors: int = 5,
    color_by: str | Sequence[str] | None = None,
) -> Path:
    """Scatter the synthesised posterior means, one panel per colouring, each with a colour bar.

    A 2-D (or higher) channel is drawn as its first two posterior means, a 1-D
    channel against the sample index. A variable of ``syn`` along a step dim
    (the objective trace) gets its own panel.

    Parameters
    ----------
    syn
        Synthesised posteriors (:func:`ensemblex.synthesize`).
    path
        Where to save the figure as PNG.
    labels
        Ground-truth labels ``(factor, sample)`` on the same samples.
    max_factors
        Without ``color_by``: colour by each of the first ``max_factors`` factors.
    color_by
        The factor, or factors, to colour by: a name, or a pair ``"a+b"``
        coloured by the joint label ``a * n_b + b``. Pass the group's best
        factors (the ``best_factors`` of :func:`ensemblex.describe_groups`) so
        that the colours show what the channel carries.

    Returns
    -------
    Path
        ``path``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np, xarray as xr, ensemblex as ex
    >>> theta = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    >>> syn = ex.posteriors(np.stack([np.cos(theta), np.sin(theta)])[None],
    ...                     np.full((1, 2, 40), -4.0))
    >>> labels = xr.DataArray([theta.round(1), theta > np.pi], dims=("factor", "sample"),
    ...                       coords={"factor": ["angle", "upper"]})
    >>> out = plot_synthesis(syn, pathlib.Path(tempfile.mkdtemp()) / "synth.png",
    ...                      labels=labels, color_by="angle+upper")
    >>> out.name
    'synth.png'
    """
    mean = np.asarray(to_numpy(syn["mean"].data))[0]  # (latent, sample)
    if color_by is not None and labels is None:
        raise InputError("plot_synthesis(color_by=...) needs labels= (the ground-truth factors).")
    if labels is None:
        colourings: list[str] = [""]
    elif color_by is None:
        colourings = [n for n in _label_names(labels) if "+" not in n][:max_factors]
    else:
        colourings = [color_by] if isinstance(color_by, str) else list(color_by)
    colours = {
        name: _factor_values(labels, name) if labels is not None else np.arange(mean.shape[1])
        for name in colourings
    }
    traces = [
        name
        for name, var in syn.data_vars.items()
        if var.ndim == 1 and var.dims[0] not in ("model", "latent", "sample", "factor")
    ]
    if "objective_trace" in traces:
        traces = ["objective_trace"]
    n_panels = len(colourings) + len(traces[:1])
    ncols = min(3, n_panels)
    nrows = -(-n_panels // ncols)
    fig = _figure((3.8 * ncols, 3.3 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat[n_panels:]:
        ax.set_visible(False)
    panels = list(axes.flat)
    x = mean[0]
    y = mean[1] if mean.shape[0] > 1 else np.arange(mean.shape[1])
    for ax, name in zip(panels, colourings, strict=False):
        points = ax.scatter(x, y, c=colours[name], s=8, cmap="viridis")
        if not name:
            label = "sample"
        elif "+" in name and name not in _label_names(labels):  # type: ignore[arg-type]
            label = f"{name} (joint label)"
        else:
            label = name
        fig.colorbar(points, ax=ax, label=label)
        ax.set_title(f"coloured by {name}" if name else "synthesised channel", fontsize=9)
        ax.set_xlabel("u1")
        ax.set_ylabel("u2" if mean.shape[0] > 1 else "sample")
    if traces:
        ax = panels[n_panels - 1]
        trace = syn[traces[0]]
        ax.plot(np.asarray(trace.values, dtype=float))
        ax.set_title(str(traces[0]).replace("_", " "), fontsize=9)
        ax.set_xlabel(str(trace.dims[0]))
    fig.suptitle("Synthesised channel: posterior means", fontsize=10)
    _save(fig, path)
    return Path(path)


def plot_information(pw: xr.Dataset, post: xr.Dataset, path: str | Path) -> Path:
    """Heatmap of the information (bits) of every latent channel, model by latent."""
    n_model, n_latent = post.sizes["model"], post.sizes["latent"]
    bits = np.asarray(pw["info_a"].values, dtype=float).reshape(n_model, n_latent)
    fig = _figure((2.0 + 0.45 * n_latent, 1.5 + 0.3 * n_model), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(bits, cmap="magma", aspect="auto")
    ax.set_xlabel("latent")
    ax.set_ylabel("model")
    ax.set_title("I(X;U) per channel (bits)", fontsize=10)
    fig.colorbar(im, ax=ax, label="bits")
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


# -- NMI against exp(-VI) (paper Fig. 12) -----------------------------------------------


def _pair_rows(k: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``i < j`` of the upper-triangle pairs numbered ``k`` row by row."""
    rows = np.arange(n, dtype=np.int64)
    offset = rows * n - rows * (rows + 1) // 2  # pairs before row i
    i = np.searchsorted(offset, k, side="right") - 1
    j = k - offset[i] + i + 1
    return i, j


def plot_nmi_vi(
    pairwise: xr.Dataset,
    *,
    path: str | Path | None = None,
    max_pairs: int = 200_000,
    seed: int = 0,
) -> Figure:
    """NMI against ``exp(-VI)`` for the pairs of informative channels (paper Fig. 12).

    The two measures agree on what is shared (both are 1 for channels that
    carry the same information) but weigh it differently: NMI normalises by
    the channels' information, VI counts the bits either one has that the
    other lacks. Points near the diagonal are pairs on which they agree.

    Up to ``max_pairs`` pairs every pair is drawn; above, a random subset of
    ``max_pairs`` pairs (seeded, said in the title). The matrices are read a
    strip of rows at a time, so memory stays bounded for a store of tens of
    thousands of channels.

    Parameters
    ----------
    pairwise
        Pairwise results of a set of channels with itself (in memory, or a
        lazy netCDF/Zarr store), with ``nmi``, ``vi`` and ``info_a``.
    path
        Where to save the figure as PNG.
    max_pairs
        The most pairs drawn.
    seed
        Seed of the random subset.

    Returns
    -------
    matplotlib.figure.Figure
        6 x 5.5 inches at 100 dpi; the panel is labelled ``"nmi_vi"``.

    Examples
    --------
    >>> from ensemblex.testing import planted_ensemble, reference_pairwise
    >>> pw = reference_pairwise(planted_ensemble(n_models=6, n_latent=4, n_samples=60))
    >>> fig = plot_nmi_vi(pw)
    >>> fig.axes[0].get_title()
    'NMI against exp(-VI): all 276 pairs of 24 informative channels'
    """
    require_kind(pairwise, ("pairwise",), "plot_nmi_vi()")
    max_pairs = int(max_pairs) if max_pairs >= 1 else 0
    if max_pairs < 1:
        raise InputError(f"plot_nmi_vi(): max_pairs must be a positive integer; got {max_pairs}.")
    if pairwise.sizes["channel_a"] != pairwise.sizes["channel_b"] or not np.array_equal(
        pairwise["channel_a"].values, pairwise["channel_b"].values
    ):
        raise InputError(
            "plot_nmi_vi() needs the Pairwise results of a set of channels with itself "
            "(pairwise(fp)); this one compares two different sets of channels."
        )
    nmi, vi = get_measure("nmi", "cluster"), get_measure("vi", "cluster")
    missing = [m.name for m in (nmi, vi) if m.name not in pairwise.data_vars]
    if missing:
        raise InputError(f"plot_nmi_vi(): the Pairwise dataset has no {', '.join(missing)}.")
    min_info = float(pairwise.attrs.get("min_info", MIN_INFO))
    positions = np.flatnonzero(_host(pairwise["info_a"]) >= min_info)
    n = positions.size
    if n < 2:
        raise InputError(
            f"plot_nmi_vi(): {n} channel(s) carry at least min_info={min_info} bits; "
            "there is no pair to draw."
        )
    total = n * (n - 1) // 2
    if total <= max_pairs:
        k = np.arange(total, dtype=np.int64)
        title = f"all {total:,} pairs of {n:,} informative channels"
    else:
        rng = np.random.default_rng(seed)
        k = np.sort(rng.choice(total, size=max_pairs, replace=False)).astype(np.int64)
        title = (
            f"a random {max_pairs:,} of {total:,} pairs of {n:,} informative channels (seed {seed})"
        )
    i, j = _pair_rows(k, n)
    x = np.empty(k.size)
    y = np.empty(k.size)
    mats = {m.name: pairwise[m.name].transpose("channel_a", "channel_b") for m in (nmi, vi)}
    for lo, hi in _reads(positions[: n - 1], _row_chunk(mats[nmi.name]), n):
        take = slice(*np.searchsorted(i, [lo, hi]))
        if take.start == take.stop:
            continue
        # rows lo..hi-1, columns from lo on: the upper triangle of the strip
        where = {"channel_a": positions[lo:hi], "channel_b": positions[lo:]}
        a, b = i[take] - lo, j[take] - lo
        x[take] = _host(mats[nmi.name].isel(where))[a, b]
        y[take] = _host(mats[vi.name].isel(where))[a, b]
    x = np.asarray(nmi.similarity(x), dtype=np.float64)  # type: ignore[misc]
    y = np.asarray(vi.similarity(y), dtype=np.float64)  # type: ignore[misc]

    fig = _figure((6.0, 5.5), layout="constrained")
    ax = fig.add_subplot(label="nmi_vi")
    many = k.size > 2000
    ax.scatter(
        x,
        y,
        s=3 if many else 8,
        alpha=0.3 if many else 0.7,
        linewidths=0,
        rasterized=True,
        color="tab:blue",
    )
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="y = x")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel(nmi.similarity_label)
    ax.set_ylabel(vi.similarity_label)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(f"{nmi.similarity_label} against {vi.similarity_label}: {title}", fontsize=9)
    return _save(fig, path)


# -- traversals of groups (paper Figs. 4c and 11) ----------------------------------------


def _ensemble_position(clusters: xr.Dataset, channel: Any, ensemble: Ensemble) -> int:
    """The position in ``ensemble`` of the member a channel of ``clusters`` comes from.

    Matched by the channel's ``member`` coordinate (the index in the trained
    ensemble, as :meth:`Ensemble.posteriors` writes it), else by ``seed`` (when
    the ensemble's seeds are distinct), else by its ``model`` value as a position.
    """
    ch = clusters.sel(channel=channel)
    if "member" in ch.coords and int(ch["member"]) in ensemble.members:
        return ensemble.members.index(int(ch["member"]))
    seeds = ensemble.seeds
    if "seed" in ch.coords and len(set(seeds)) == len(seeds) and int(ch["seed"]) in seeds:
        return seeds.index(int(ch["seed"]))
    model = ch["model"].item()
    if isinstance(model, int | np.integer) and 0 <= int(model) < len(ensemble):
        return int(model)
    raise InputError(
        f"channel {channel!r} comes from model {model!r}, which matches no member of the "
        f"ensemble ({len(ensemble)} members, members {ensemble.members}, seeds {seeds}); "
        "pass the Ensemble the posteriors came from."
    )


def _describe_line(row: Any, n_models: int) -> str:
    text = f"{int(row['size'])} channels in {int(row['models'])} of {n_models} models"
    if np.isfinite(float(row["bits"])):
        text += f", {float(row['bits']):.2f} bits"
    coherence = row.get("coherence")
    if coherence is not None and np.isfinite(float(coherence)):
        text += f", coherence {float(coherence):.2f}"
    best = row.get("best_factors")
    if isinstance(best, str) and best:
        text += f"; best {best} (NMI {float(row['best_nmi']):.2f}"
        chance = row.get("chance_nmi")
        if chance is not None and np.isfinite(float(chance)):
            text += f", chance {float(chance):.2f}"
        text += ")"
    return text


def _traversal_panel(
    fig: Figure,
    grid: Any,
    row: int,
    cols: range,
    decoded: np.ndarray,
    values: np.ndarray,
    label: str,
) -> Any:
    """Draw one traversal in ``grid[row, cols]``: a strip of images, or one panel of points."""
    if decoded.ndim >= 3:  # images (V, H, W[, C])
        axes = [
            fig.add_subplot(grid[row, c], label=label if k == 0 else "traversal")
            for k, c in enumerate(cols)
        ]
        for ax, img, value in zip(axes, decoded, values, strict=True):
            _show_image(ax, img)
            ax.set_xlabel(f"{value:.2g}", fontsize=6, labelpad=1)
        return axes[0]
    ax = fig.add_subplot(grid[row, cols.start : cols.stop], label=label)
    points = decoded.reshape(len(values), -1)
    if points.shape[1] >= 2:
        ax.plot(points[:, 0], points[:, 1], color="grey", linewidth=0.5)
        ax.scatter(points[:, 0], points[:, 1], c=values, cmap="viridis", s=15)
    else:
        ax.scatter(values, points[:, 0], c=values, cmap="viridis", s=15)
    ax.tick_params(labelsize=6)
    return ax


def plot_group_traversals(
    ensemble: Ensemble,
    clusters: xr.Dataset,
    *,
    n_steps: int = 7,
    span: float = 2.0,
    path: str | Path | None = None,
    seed: int = 0,
    pairwise: xr.Dataset | None = None,
) -> Figure:
    """What each group carries, decoded (paper Figs. 4c and 11).

    One row per group. Left: the traversal of the group's central channel,
    its latent set to ``n_steps`` values in ``[-span, span]`` and the member's
    other latents at 0, decoded by its model. Right, for contrast: the same
    for another member of the group, drawn at random (``seed``). Each row is
    labelled with the group, the model and latent of both channels, the
    group's :func:`ensemblex.describe_groups` line (size, recurrence, bits,
    coherence) and its best factors.

    Channels are matched to members of ``ensemble`` by their ``member``
    coordinate, else their ``seed``, else their ``model`` value as a position.

    Parameters
    ----------
    ensemble
        The trained :class:`ensemblex.Ensemble` the clustered posteriors came from.
    clusters
        Clusters of its channels (:func:`ensemblex.cluster`), with ``model``
        and ``latent`` coordinates.
    n_steps
        Values per traversal.
    span
        The traversal runs over ``[-span, span]`` (prior standard deviations).
    path
        Where to save the figure as PNG.
    seed
        Seed of the contrast members.
    pairwise
        Pairwise results, for the groups' coherence in the labels.

    Returns
    -------
    matplotlib.figure.Figure
        The first image of a row's central traversal is labelled
        ``"group <g> central"``, of its contrast ``"group <g> contrast"``.

    Examples
    --------
    With the ``train`` extra (TensorFlow). Here the clusters are planted ones of
    the same shape as the ensemble (8 models x 5 latents); in a study they
    are the clusters of ``ensemble.posteriors(data)``.

    >>> from ensemblex.datasets import load_dataset
    >>> from ensemblex.models import train_ensemble
    >>> from ensemblex.structure import cluster
    >>> from ensemblex.testing import planted_ensemble, reference_pairwise
    >>> digits = load_dataset("digits", n_samples=64)
    >>> ens = train_ensemble(digits, n_members=8, latent_dim=5, hidden=[8], steps=1,
    ...                      batch_size=16, progress=False)
    >>> post = planted_ensemble(n_models=8, n_latent=5, n_samples=60, n_mixed=0)
    >>> cl = cluster(reference_pairwise(post, labels=True), min_samples=5)
    >>> fig = plot_group_traversals(ens, cl, n_steps=3)
    >>> sorted(ax.get_label() for ax in fig.axes if ax.get_label().startswith("group"))
    ['group 0 central', 'group 0 contrast', 'group 1 central', 'group 1 contrast', 'group 2 central', 'group 2 contrast']
    """
    from .structure import describe_groups

    require_kind(clusters, ("clusters",), "plot_group_traversals()")
    n_steps = int(n_steps)
    if n_steps < 2:
        raise InputError(f"plot_group_traversals(): n_steps must be >= 2; got {n_steps}.")
    if not (np.isfinite(span) and span > 0):
        raise InputError(f"plot_group_traversals(): span must be a positive number; got {span}.")
    for coord in ("model", "latent"):
        if coord not in clusters.coords:
            raise InputError(
                f"plot_group_traversals() needs the channels' {coord!r} coordinate, which "
                "these Clusters lack; cluster the Fingerprints of Ensemble.posteriors()."
            )
    table = describe_groups(clusters, pairwise=pairwise)
    if len(table) == 0:
        raise InputError(
            "plot_group_traversals(): the clusters have no group (every channel is noise); "
            "there is nothing to traverse. Lower min_samples."
        )
    values = np.linspace(-span, span, n_steps)
    rng = np.random.default_rng(seed)
    groups = np.asarray(clusters["group"].values)
    central = np.asarray(clusters["central"].values, dtype=bool)
    ids = np.asarray(clusters["channel"].values)
    n_models = int(np.unique(np.asarray(clusters["model"].values)).size)
    is_image = len(tuple(ensemble.config["data_shape"])) >= 2

    n_rows = len(table)
    width = 2 * n_steps + 1
    height = (1.45 if is_image else 2.6) * n_rows + 0.6  # inches; rows carry two text lines
    fig = _figure((max(8.0, 0.8 * width), height))
    grid = fig.add_gridspec(
        n_rows,
        width,
        width_ratios=[1.0] * n_steps + [0.3] + [1.0] * n_steps,
        left=0.02 if is_image else 0.06,
        right=0.98,
        bottom=0.3 / height,
        top=1 - 0.6 / height,
        hspace=0.9,
        wspace=0.05 if is_image else 0.3,
    )
    for r, (_, row) in enumerate(table.sort_values("group").iterrows()):
        g = int(row["group"])
        members = ids[groups == g]
        centre = ids[(groups == g) & central]
        centre_id = centre[0] if centre.size else members[0]
        others = members[members != centre_id]
        contrast_id = others[rng.integers(others.size)] if others.size else centre_id
        for side, channel in (("central", centre_id), ("contrast", contrast_id)):
            position = _ensemble_position(clusters, channel, ensemble)
            latent = int(clusters["latent"].sel(channel=channel))
            model = clusters["model"].sel(channel=channel).item()
            decoded = ensemble.traverse(position, latent, values)
            cols = range(n_steps) if side == "central" else range(n_steps + 1, width)
            first = _traversal_panel(fig, grid, r, cols, decoded, values, f"group {g} {side}")
            if side == "central":
                text = f"group {g}: model {model}, latent {latent} (central)\n"
                text += _describe_line(row, n_models)
            else:
                text = f"contrast: model {model}, latent {latent} (a random member of group {g})"
            first.set_title(text, loc="left", fontsize=7)
    fig.suptitle(
        f"Traversals of each group's central channel and of a random member "
        f"({n_steps} values in [{-span:g}, {span:g}], other latents 0)",
        fontsize=9,
    )
    return _save(fig, path)
