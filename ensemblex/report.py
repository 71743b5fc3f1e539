"""``report.html``: a run's figures and numbers on one self-contained page.

:func:`write_report` reads what a run folder holds (``clusters.nc``,
``pairwise.nc``, ``synth.nc``, ``summary.json`` and every PNG figure, as
``ensemblex demo`` or the ``compare``/``cluster``/``synthesize`` commands
write them) and writes an HTML page that links the figures by relative path,
so the folder can be moved or shared as a whole.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from .errors import InputError

__all__ = ["collect_numbers", "write_report"]

_CAPTIONS = {
    "information.png": "Information I(X;U) of every latent channel (bits), model by latent.",
    "structure.png": (
        "Structure of the ensemble (paper Fig. 4): OPTICS reachability with the groups "
        "shaded, the NMI matrix reordered by OPTICS, and NMI with each ground-truth factor."
    ),
    "synth.png": (
        "The channel synthesised from the biggest group: posterior means coloured by each "
        "ground-truth factor."
    ),
}
_ORDER = ["information.png", "structure.png", "synth.png"]


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


def collect_numbers(run_dir: str | Path) -> dict[str, Any]:
    """The numbers of a run folder: channels, groups, central channels, label NMI.

    Reads ``clusters.nc`` (else ``pairwise.nc``) and ``summary.json`` when present.
    """
    run_dir = Path(run_dir)
    numbers: dict[str, Any] = {}
    summary_path = run_dir / "summary.json"
    if summary_path.exists():
        try:
            numbers["summary"] = json.loads(summary_path.read_text())
        except json.JSONDecodeError as err:
            raise InputError(f"{summary_path} is not valid JSON: {err}") from err
    clusters = _first(run_dir, ["clusters.nc", "clusters.zarr"])
    pairwise = _first(run_dir, ["pairwise.nc", "pairwise.zarr"])
    if clusters is not None:
        cl = _open(clusters)
        group = np.asarray(cl["group"].values)
        groups = sorted({int(g) for g in group if g >= 0})
        central = np.asarray(cl["channel"].values)[np.asarray(cl["central"].values, dtype=bool)]
        numbers["channels"] = int(cl.sizes["channel"])
        numbers["informative_channels"] = int(np.sum(np.asarray(cl["informative"].values)))
        numbers["groups"] = len(groups)
        rows = []
        for g in groups:
            members = np.asarray(cl["channel"].values)[group == g]
            centre = [int(c) for c in central if c in members]
            row: dict[str, Any] = {
                "group": g,
                "size": len(members),
                "central": _channel_label(cl, centre[0]) if centre else "-",
            }
            if "label_nmi" in cl and centre:
                nmi = cl["label_nmi"].sel(channel=centre[0])
                values = np.asarray(nmi.values, dtype=float)
                factors = [str(f) for f in nmi["factor"].values]
                row["label_nmi"] = dict(zip(factors, values.tolist(), strict=True))
            rows.append(row)
        numbers["central_channels"] = rows
        if "label_nmi" in cl:
            factors = [str(f) for f in cl["factor"].values]
            best = np.nanmax(np.asarray(cl["label_nmi"].values, dtype=float), axis=0)
            numbers["best_label_nmi"] = dict(zip(factors, best.tolist(), strict=True))
        numbers["source"] = clusters.name
    elif pairwise is not None:
        pw = _open(pairwise)
        info = np.asarray(pw["info_a"].values, dtype=float)
        min_info = float(pw.attrs.get("min_info", 0.01))
        numbers["channels"] = int(pw.sizes["channel_a"])
        numbers["informative_channels"] = int(np.sum(info >= min_info))
        numbers["source"] = pairwise.name
    return numbers


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "-" if np.isnan(value) else f"{value:.3f}"
    return html.escape(str(value))


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _link(name: str) -> str:
    return quote(name)


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
"""


def write_report(
    run_dir: str | Path,
    *,
    out: str | Path | None = None,
    title: str | None = None,
) -> Path:
    """Write ``report.html`` for a run folder and return its path.

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
    import os

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder {str(run_dir)!r} does not exist")
    out = Path(out) if out is not None else run_dir / "report.html"
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
    title = title or "ensemblex report"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    cfg = summary.get("config")
    if cfg:
        parts.append(
            "<p>"
            + html.escape(
                f"{cfg.get('n_members')} {cfg.get('method')} members "
                f"(beta {cfg.get('beta')}, {cfg.get('latent_dim')} latents, "
                f"{cfg.get('architecture')}) trained {cfg.get('steps')} steps on "
                f"{cfg.get('dataset')}"
                + (
                    f" ({cfg['image_size']} x {cfg['image_size']} pixels)"
                    if cfg.get("image_size") and cfg.get("dataset") != "ring"
                    else ""
                )
                + f"; fingerprints on {cfg.get('n_fingerprint')} points."
                + (" Quick configuration." if summary.get("quick") else "")
            )
            + "</p>"
        )

    # the short table
    if "channels" in numbers:
        central = numbers.get("central_channels", [])
        best = numbers.get("best_label_nmi")
        rows = [
            ["channels", numbers["channels"]],
            ["informative channels", numbers["informative_channels"]],
        ]
        if "groups" in numbers:
            rows.append(["groups", numbers["groups"]])
            rows.append(["central channels", ", ".join(r["central"] for r in central) or "-"])
        if best:
            rows.append(
                [
                    "label NMI (best channel per factor)",
                    ", ".join(f"{f} {v:.2f}" for f, v in best.items()),
                ]
            )
        parts.append("<h2>Summary</h2>")
        parts.append(_table(["", "value"], rows))
        parts.append(f"<p>From <code>{html.escape(numbers['source'])}</code>.</p>")
        if central:
            factors = list(central[0].get("label_nmi", {}))
            header = ["group", "channels", "central channel (model, latent)"]
            header += [f"NMI {f}" for f in factors]
            table_rows = [
                [r["group"], r["size"], r["central"]]
                + [r.get("label_nmi", {}).get(f, float("nan")) for f in factors]
                for r in central
            ]
            parts.append("<h2>Groups</h2>")
            parts.append(
                "<p>Each group is a piece of information that recurs across the ensemble; "
                "its central channel has the highest mean NMI with the rest of the group."
                + (" The NMI columns compare it with each ground-truth factor." if factors else "")
                + "</p>"
            )
            parts.append(_table(header, table_rows))

    synthesis = summary.get("synthesis")
    if synthesis:
        rows = [
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
        parts.append("<h2>Synthesised channel</h2>")
        for key in ("note", "warning"):
            if synthesis.get(key):
                parts.append(f"<p><em>{html.escape(str(synthesis[key]))}</em></p>")
        parts.append(_table(["", "value"], rows))

    if figures:
        parts.append("<h2>Figures</h2>")
    for fig in figures:
        rel = os.path.relpath(fig, out.parent)
        caption = _CAPTIONS.get(fig.name, fig.stem.replace("_", " "))
        parts.append(
            f'<figure><a href="{_link(rel)}"><img src="{_link(rel)}" '
            f'alt="{html.escape(fig.stem)}"></a><figcaption>{html.escape(caption)}'
            "</figcaption></figure>"
        )

    if data_files:
        parts.append("<h2>Files</h2><ul>")
        for f in data_files:
            rel = os.path.relpath(f, out.parent)
            parts.append(f'<li><a href="{_link(rel)}">{html.escape(f.name)}</a></li>')
        parts.append("</ul>")
        parts.append(
            "<p>Open the netCDF files with <code>ensemblex.open_dataset(path)</code> "
            "or <code>xarray.open_dataset(path)</code>.</p>"
        )

    timings = summary.get("timings_s")
    if timings:
        parts.append("<h2>Timings</h2>")
        parts.append(
            _table(["step", "seconds"], [[k, f"{float(v):.1f}"] for k, v in timings.items()])
        )
    version = summary.get("ensemblex_version")
    parts.append(
        "<p><small>Written by ensemblex"
        + (f" {html.escape(str(version))}" if version else "")
        + ".</small></p></body></html>"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(parts), encoding="utf-8")
    return out
