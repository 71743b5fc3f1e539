"""``report.html``: a run's figures and numbers on one self-contained page.

:func:`write_report` reads what a run folder holds (the files named in
:data:`RUN_FILES`: ``clusters.nc``, ``pairwise.nc``, ``summary.json`` and the
PNG figures, as ``ensemblex demo`` or the ``compare``/``cluster``/``synthesize``
commands write them) and writes an HTML page that links the figures by
relative path, so the folder can be moved or shared as a whole.

The page is assembled from small templates (:class:`string.Template`), one
function per section; every value is HTML-escaped on its way in.
"""

from __future__ import annotations

import html
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from string import Template
from typing import Any, Final
from urllib.parse import quote

import numpy as np

from .errors import InputError
from .estimators import MIN_INFO

__all__ = ["RUN_FILES", "collect_numbers", "write_report"]

#: The files of a run folder, by role: what ``ensemblex demo`` writes and the
#: report reads. The one list of these names (the demo and the tests use it).
RUN_FILES: Final[dict[str, str]] = {
    "posteriors": "posteriors.nc",
    "pairwise": "pairwise.nc",
    "clusters": "clusters.nc",
    "synthesis": "synth.nc",
    "ring_synthesis": "ring_synth.nc",
    "models": "models",
    "summary": "summary.json",
    "structure_figure": "structure.png",
    "nmi_vi_figure": "nmi_vi.png",
    "traversals_figure": "traversals.png",
    "information_figure": "information.png",
    "synthesis_figure": "synth.png",
    "ring_figure": "ring_fusion.png",
    "report": "report.html",
}

_CAPTIONS: Final[dict[str, str]] = {
    RUN_FILES["structure_figure"]: (
        "Structure of the ensemble (paper Fig. 4): OPTICS reachability with the groups "
        "shaded (legend: group colours; triangles: infinite reachability, clipped), the "
        "similarity matrix reordered by OPTICS with the groups outlined, and, when labels "
        "are known, the NMI of every channel with each ground-truth factor."
    ),
    RUN_FILES["nmi_vi_figure"]: (
        "NMI against exp(-VI) for the pairs of informative channels (paper Fig. 12): the "
        "two measures agree on which channels share information, and weigh it differently."
    ),
    RUN_FILES["traversals_figure"]: (
        "What each group carries (paper Figs. 4c and 11): one row per group, the decoded "
        "traversal of its central channel (left) and of a random other member (right)."
    ),
    RUN_FILES["information_figure"]: (
        "Information I(X;U) of every latent channel (bits), model by latent."
    ),
    RUN_FILES["synthesis_figure"]: (
        "The channel synthesised from a group: its posterior means, coloured by the "
        "group's best factor (or factor pair), and the objective during optimisation."
    ),
    RUN_FILES["ring_figure"]: (
        "Fusion on the ring (paper Fig. 6): 1-D weak learners, each cut open somewhere, "
        "fused into one 2-D channel that closes the circle (its posterior means)."
    ),
}
#: figures in page order; others follow by name
_ORDER: Final[list[str]] = [
    RUN_FILES[k]
    for k in (
        "structure_figure",
        "nmi_vi_figure",
        "traversals_figure",
        "information_figure",
        "synthesis_figure",
        "ring_figure",
    )
]

_NO_TRAVERSALS = (
    "Traversals of each group's central channel need the trained models, which this run "
    "folder does not hold. With the Ensemble the posteriors came from, draw them with "
    "ensemblex.plot_group_traversals(ensemble, clusters)."
)

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f2f2f2; }
td:first-child { text-align: left; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { color: #555; font-size: 0.9em; }
code { background: #f4f4f4; padding: 0 0.2em; }
.swatch { display: inline-block; width: 0.8em; height: 0.8em; margin-right: 0.4em;
          vertical-align: middle; border: 1px solid #999; }
"""

_PAGE = Template(
    """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>$title</title><style>$style</style></head><body>
<h1>$title</h1>
$body
<p><small>Written by ensemblex$version.</small></p></body></html>
"""
)
_SECTION = Template("<h2>$heading</h2>\n$content")
_TABLE = Template("<table><thead><tr>$head</tr></thead><tbody>$rows</tbody></table>")
_FIGURE = Template(
    '<figure id="$anchor"><a href="$href"><img src="$href" alt="$alt"></a>'
    "<figcaption>$caption</figcaption></figure>"
)
_LINK = Template('<li><a href="$href">$name</a></li>')


# -- numbers ----------------------------------------------------------------------------


def _open(path: Path) -> Any:
    from .io import open_dataset

    return open_dataset(path)


def _first(run_dir: Path, names: list[str]) -> Path | None:
    for name in names:
        if (run_dir / name).exists():
            return run_dir / name
    return None


def _channel_label(cl: Any, channel: int) -> str:
    ch = cl.sel(channel=channel)
    parts = []
    for coord in ("model", "latent"):
        if coord in ch.coords and int(ch[coord]) >= 0:
            parts.append(f"{coord} {int(ch[coord])}")
    return f"{channel} ({', '.join(parts)})" if parts else str(channel)


def _clean(value: Any) -> Any:
    """A JSON-friendly scalar: NumPy scalars as Python ones, NaN as None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _group_rows(cl: Any, pairwise: Any) -> list[dict[str, Any]]:
    """:func:`ensemblex.structure.describe_groups` as a list of plain dicts."""
    from .structure import describe_groups

    table = describe_groups(cl, pairwise=pairwise)
    return [{str(k): _clean(v) for k, v in row.items()} for row in table.to_dict(orient="records")]


def collect_numbers(run_dir: str | Path) -> dict[str, Any]:
    """The numbers of a run folder: channels, groups and what they carry, label NMI.

    Reads ``clusters.nc`` (else ``pairwise.nc``) and ``summary.json`` when
    present. With Clusters: ``groups_table`` holds
    :func:`ensemblex.describe_groups` (its coherence from ``pairwise.nc`` when
    the folder has it), ``min_samples``, ``xi_window`` and their rules come
    from the Clusters' attributes.
    """
    run_dir = Path(run_dir)
    numbers: dict[str, Any] = {}
    summary_path = run_dir / RUN_FILES["summary"]
    if summary_path.exists():
        try:
            numbers["summary"] = json.loads(summary_path.read_text())
        except json.JSONDecodeError as err:
            raise InputError(f"{summary_path} is not valid JSON: {err}") from err
    clusters = _first(run_dir, [RUN_FILES["clusters"], "clusters.zarr"])
    pairwise = _first(run_dir, [RUN_FILES["pairwise"], "pairwise.zarr"])
    if clusters is not None:
        cl = _open(clusters)
        group = np.asarray(cl["group"].values)
        groups = sorted({int(g) for g in group if g >= 0})
        central = np.asarray(cl["channel"].values)[np.asarray(cl["central"].values, dtype=bool)]
        numbers["channels"] = int(cl.sizes["channel"])
        numbers["informative_channels"] = int(np.sum(np.asarray(cl["informative"].values)))
        numbers["groups"] = len(groups)
        if "model" in cl.coords:
            numbers["models"] = int(np.unique(np.asarray(cl["model"].values)).size)
        for key in ("min_samples", "min_samples_rule", "xi_window", "xi_window_rule"):
            if key in cl.attrs:
                numbers[key] = _clean(cl.attrs[key])
        rows = []
        for g in groups:
            members = np.asarray(cl["channel"].values)[group == g]
            centre = [int(c) for c in central if c in members]
            rows.append(
                {
                    "group": g,
                    "size": len(members),
                    "central": _channel_label(cl, centre[0]) if centre else "-",
                }
            )
        numbers["central_channels"] = rows
        pw = _open(pairwise) if pairwise is not None else None
        numbers["groups_table"] = _group_rows(cl, pw)
        if "label_nmi" in cl:
            factors = [str(f) for f in cl["factor"].values]
            best = np.nanmax(np.asarray(cl["label_nmi"].values, dtype=float), axis=0)
            numbers["best_label_nmi"] = dict(zip(factors, best.tolist(), strict=True))
        numbers["source"] = clusters.name
    elif pairwise is not None:
        pw = _open(pairwise)
        info = np.asarray(pw["info_a"].values, dtype=float)
        min_info = float(pw.attrs.get("min_info", MIN_INFO))
        numbers["channels"] = int(pw.sizes["channel_a"])
        numbers["informative_channels"] = int(np.sum(info >= min_info))
        numbers["source"] = pairwise.name
    return numbers


# -- HTML pieces ------------------------------------------------------------------------


class _Html(str):
    """A table cell that is HTML already (not escaped again)."""


def _swatch(colour: str, text: Any) -> _Html:
    """``text`` after a square of ``colour``: a group as the figures colour it."""
    return _Html(
        f'<span class="swatch" style="background:{html.escape(colour)}"></span>'
        f"{html.escape(str(text))}"
    )


def _group_colours(n_groups: int) -> list[str]:
    """The colours the figures give groups 0 .. n_groups - 1, as ``#rrggbb``."""
    from matplotlib.colors import to_hex

    from .plot import _group_colors

    return [to_hex(c) for c in _group_colors(max(n_groups, 1))]


def _fmt(value: Any) -> str:
    if isinstance(value, _Html):
        return str(value)
    if value is None:
        return "-"
    if isinstance(value, float):
        return "-" if not math.isfinite(value) else f"{value:.3f}"
    return html.escape(str(value))


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>" for row in rows)
    return _TABLE.substitute(head=head, rows=body)


def _section(heading: str, *parts: str) -> str:
    content = "\n".join(p for p in parts if p)
    return _SECTION.substitute(heading=html.escape(heading), content=content) if content else ""


def _paragraph(text: str, *, emphasis: bool = False) -> str:
    body = html.escape(text)
    return f"<p><em>{body}</em></p>" if emphasis else f"<p>{body}</p>"


def _href(path: Path, out: Path) -> str:
    return quote(os.path.relpath(path, out.parent))


def _config_line(summary: Mapping[str, Any]) -> str:
    cfg = summary.get("config")
    if not cfg:
        return ""
    train = cfg.get("train", cfg)  # a DemoConfig holds its training settings in "train"
    size = train.get("image_size")
    text = (
        f"{train.get('n_members')} {train.get('method')} members "
        f"(beta {train.get('beta')}, {train.get('latent_dim')} latents, "
        f"{train.get('architecture')}) trained {train.get('steps')} steps on "
        f"{train.get('dataset')}"
        + (f" ({size} x {size} pixels)" if size and train.get("dataset") != "ring" else "")
        + f"; fingerprints on {train.get('n_fingerprint', cfg.get('n_fingerprint'))} points."
        + (" Quick configuration." if summary.get("quick") else "")
    )
    return _paragraph(text)


def _summary_section(numbers: Mapping[str, Any]) -> str:
    if "channels" not in numbers:
        return ""
    rows: list[list[Any]] = [
        ["channels", numbers["channels"]],
        ["informative channels", numbers["informative_channels"]],
    ]
    if "models" in numbers:
        rows.append(["models", numbers["models"]])
    if "groups" in numbers:
        rows.append(["groups", numbers["groups"]])
        central = numbers.get("central_channels", [])
        rows.append(["central channels", ", ".join(r["central"] for r in central) or "-"])
    for name, label in (("min_samples", "OPTICS min_samples"), ("xi_window", "OPTICS xi window")):
        if name in numbers:
            rule = numbers.get(f"{name}_rule")
            rows.append([label, f"{numbers[name]}" + (f" ({rule})" if rule else "")])
    best = numbers.get("best_label_nmi")
    if best:
        shown = ", ".join(
            f"{f} {v:.2f}" for f, v in best.items() if v is not None and math.isfinite(v)
        )
        rows.append(["label NMI (best channel per factor)", shown or "-"])
    source = f"From <code>{html.escape(str(numbers.get('source', '')))}</code>."
    return _section("Summary", _table(["", "value"], rows), f"<p>{source}</p>")


def _groups_section(numbers: Mapping[str, Any], run_dir: Path, out: Path) -> str:
    """The describe_groups table, then the groups' traversals (or why there are none)."""
    table = numbers.get("groups_table")
    if not table:
        return ""
    n_models = numbers.get("models")
    has_labels = any(r.get("best_factors") for r in table)
    header = [
        "group",
        "channels",
        "recurs in (models)",
        "median bits",
        "coherence",
        "central channel (model, latent)",
    ]
    if has_labels:
        header += ["best factor(s)", "NMI", "chance NMI"]
    colours = _group_colours(max(int(r["group"]) for r in table) + 1)
    rows = []
    for r in table:
        recurs = f"{r['models']} of {n_models}" if n_models else r["models"]
        central = f"({r['central_model']}, {r['central_latent']})"
        group = _swatch(colours[int(r["group"])], r["group"])
        row = [group, r["size"], recurs, r["bits"], r["coherence"], central]
        if has_labels:
            row += [r.get("best_factors") or "-", r.get("best_nmi"), r.get("chance_nmi")]
        rows.append(row)
    text = (
        "Each group is a piece of information that recurs across the ensemble (its colour "
        "is the one the figures give it): the number "
        "of models with a member says in how many training runs it was found. Coherence is "
        "the mean similarity between its members; its central channel has the highest mean "
        "similarity to the rest of the group."
    )
    if has_labels:
        text += (
            " Best factor(s): the ground-truth factor, or pair of factors a+b (their joint "
            "label), whose NMI with the central channel rises most above its chance level, "
            "the NMI with the label's samples shuffled (a fine label on a small sample has a "
            "high NMI with any channel by chance)."
        )
    traversals = run_dir / RUN_FILES["traversals_figure"]
    shown = (
        _figure(traversals, out)
        if traversals.exists()
        else _paragraph(_NO_TRAVERSALS, emphasis=True)
    )
    return _section("Groups", _paragraph(text), _table(header, rows), shown)


def _synthesis_section(summary: Mapping[str, Any]) -> str:
    synthesis = summary.get("synthesis")
    if not synthesis:
        return ""
    rows: list[list[Any]] = [
        ["group fused", synthesis.get("group")],
        ["reference channels", len(synthesis.get("reference_channels", []))],
        ["information (bits)", synthesis.get("info_bits")],
        ["mean information of the references (bits)", synthesis.get("reference_info_bits")],
        ["mean NMI to the references", synthesis.get("nmi_to_references")],
        ["mean NMI among the references", synthesis.get("reference_nmi_to_each_other")],
    ]
    if synthesis.get("ring_uniformity") is not None:
        rows.append(["ring uniformity (lower is better)", synthesis["ring_uniformity"]])
    for factor, value in synthesis.get("label_nmi", {}).items():
        rows.append([f"NMI with {factor}", value])
    notes = [
        _paragraph(str(synthesis[k]), emphasis=True)
        for k in ("note", "warning")
        if synthesis.get(k)
    ]
    return _section("Synthesised channel", *notes, _table(["", "value"], rows))


_RING_ROWS: Final[dict[str, str]] = {
    "uniformity_fused": "ring uniformity of the fused channel (lower is better)",
    "uniformity_single_mean": "mean ring uniformity of the single learners",
    "uniformity_ratio": "fused / single-learner uniformity",
    "n_learners": "weak learners fused",
    "n_samples": "points on the ring",
    "steps": "synthesis steps",
}


def _ring_section(summary: Mapping[str, Any], run_dir: Path, out: Path) -> str:
    ring = summary.get("ring_fusion")
    figure = run_dir / RUN_FILES["ring_figure"]
    if not ring and not figure.exists():
        return ""
    ring = ring if isinstance(ring, Mapping) else {}
    rows = [[_RING_ROWS[k], ring[k]] for k in _RING_ROWS if ring.get(k) is not None]
    rows += [
        [k.replace("_", " "), v]
        for k, v in ring.items()
        if k not in _RING_ROWS and k != "note" and isinstance(v, int | float | str)
    ]
    fused, single = ring.get("uniformity_fused"), ring.get("uniformity_single_mean")
    text = ""
    if isinstance(fused, int | float) and isinstance(single, int | float) and fused > 0:
        text = (
            f"The fused channel is {single / fused:.1f} times as uniform as a single learner "
            "on average (uniformity: std / mean of the distances between neighbours around "
            "the circle; 0 for a perfect ring)."
        )
    return _section(
        "Fusion on the ring",
        _paragraph(str(ring["note"]), emphasis=True) if ring.get("note") else "",
        _paragraph(text) if text else "",
        _table(["", "value"], rows) if rows else "",
        _figure(figure, out) if figure.exists() else "",
    )


def _figure(path: Path, out: Path) -> str:
    href = _href(path, out)
    caption = _CAPTIONS.get(path.name, path.stem.replace("_", " "))
    return _FIGURE.substitute(
        anchor=html.escape(path.stem),
        href=href,
        alt=html.escape(path.stem),
        caption=html.escape(caption),
    )


def _figures_section(figures: Sequence[Path], out: Path) -> str:
    # the traversals and the ring figure are shown with their numbers
    shown_elsewhere = (RUN_FILES["traversals_figure"], RUN_FILES["ring_figure"])
    parts = [_figure(f, out) for f in figures if f.name not in shown_elsewhere]
    return _section("Figures", *parts)


def _files_section(data_files: Sequence[Path], out: Path) -> str:
    if not data_files:
        return ""
    items = "".join(
        _LINK.substitute(href=_href(f, out), name=html.escape(f.name)) for f in data_files
    )
    return _section(
        "Files",
        f"<ul>{items}</ul>",
        "<p>Open the netCDF files with <code>ensemblex.open_dataset(path)</code> "
        "or <code>xarray.open_dataset(path)</code>.</p>",
    )


def _timings_section(summary: Mapping[str, Any]) -> str:
    timings = summary.get("timings_s")
    if not timings:
        return ""
    rows = [[k, f"{float(v):.1f}"] for k, v in timings.items()]
    return _section("Timings", _table(["step", "seconds"], rows))


# -- the page ---------------------------------------------------------------------------


def write_report(
    run_dir: str | Path,
    *,
    out: str | Path | None = None,
    title: str | None = None,
) -> Path:
    """Write ``report.html`` for a run folder and return its path.

    The page shows, as far as the folder holds them: the run's settings; a
    summary (channels, informative channels, groups, OPTICS ``min_samples``
    and the rule that chose it); the groups table of
    :func:`ensemblex.describe_groups`; the synthesised channel's numbers; the
    ring fusion (its figure, and uniformity fused against the mean single
    learner, from ``summary.json``'s ``ring_fusion``); every PNG figure with a
    caption (the groups' traversals with the groups table; without
    ``traversals.png`` the page says that traversals need the trained
    models); links to the data files; the timings.

    Parameters
    ----------
    run_dir
        The folder of a run (``ensemblex demo --out DIR``, or files from the
        ``compare``/``cluster``/``synthesize`` commands).
    out
        The report file; ``run_dir/report.html`` by default. Figures are linked
        relative to it, so it should live in ``run_dir``'s tree.
    title
        Page title.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> write_report(d)
    Traceback (most recent call last):
    ...
    ensemblex.errors.InputError: ... has no ensemblex results to report (clusters.nc, pairwise.nc, summary.json or PNG figures).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder {str(run_dir)!r} does not exist")
    out = Path(out) if out is not None else run_dir / RUN_FILES["report"]
    numbers = collect_numbers(run_dir)
    figures = sorted(
        run_dir.glob("*.png"),
        key=lambda p: (_ORDER.index(p.name) if p.name in _ORDER else len(_ORDER), p.name),
    )
    data_files = sorted(
        p for p in run_dir.iterdir() if p.suffix in (".nc", ".zarr", ".json") and p != out
    )
    if not numbers and not figures:
        raise InputError(
            f"{str(run_dir)!r} has no ensemblex results to report (clusters.nc, pairwise.nc, "
            "summary.json or PNG figures)."
        )
    summary = numbers.get("summary", {})
    body = "\n".join(
        part
        for part in (
            _config_line(summary),
            _summary_section(numbers),
            _groups_section(numbers, run_dir, out),
            _synthesis_section(summary),
            _ring_section(summary, run_dir, out),
            _figures_section(figures, out),
            _files_section(data_files, out),
            _timings_section(summary),
        )
        if part
    )
    version = summary.get("ensemblex_version")
    title = title or "ensemblex report"
    page = _PAGE.substitute(
        title=html.escape(title),
        style=_STYLE,
        body=body,
        version=f" {html.escape(str(version))}" if version else "",
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out
