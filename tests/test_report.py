"""report.html: what a run folder holds, on one page, with relative links only."""

from __future__ import annotations

import json
import os
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import xarray as xr

from ensemblex.io import save
from ensemblex.plot import plot_nmi_vi, plot_structure
from ensemblex.report import RUN_FILES, collect_numbers, write_report
from ensemblex.structure import cluster, describe_groups
from ensemblex.testing import planted_ensemble, reference_pairwise


class _Page(HTMLParser):
    """Links, table rows (as lists of cell texts) and paragraphs of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.tables: list[list[list[str]]] = []
        self.paragraphs: list[str] = []
        self._cell: list[str] | None = None
        self._para: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.links.append(value)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "p":
            self._para = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None
        elif tag == "p" and self._para is not None:
            self.paragraphs.append("".join(self._para))
            self._para = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._para is not None:
            self._para.append(data)


def _read(report: Path) -> _Page:
    page = _Page()
    page.feed(report.read_text())
    for link in page.links:  # every link is relative and resolves next to the report
        parsed = urlparse(link)
        assert not parsed.scheme and not os.path.isabs(parsed.path), link
        assert (report.parent / unquote(parsed.path)).exists(), link
    return page


def _table_with(page: _Page, first_header: str) -> list[list[str]]:
    return next(t for t in page.tables if t and t[0] and t[0][0] == first_header)


def _key_values(page: _Page) -> dict[str, str]:
    """Every two-column ("", "value") table of the page as one dict."""
    return {
        row[0]: row[1]
        for table in page.tables
        if table and table[0] == ["", "value"]
        for row in table[1:]
    }


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder as the cluster command leaves it: clusters, pairwise, two figures."""
    folder = tmp_path_factory.mktemp("run")
    post = planted_ensemble(n_models=10, n_latent=5, n_samples=80, seed=2)
    pw = reference_pairwise(post, labels=True)
    cl = cluster(pw, min_samples=6)
    save(pw, folder / RUN_FILES["pairwise"])
    save(cl, folder / RUN_FILES["clusters"])
    plot_structure(cl, path=folder / RUN_FILES["structure_figure"])
    gaussian = pw.isel(channel_a=slice(0, 50), channel_b=slice(0, 50))
    plot_nmi_vi(gaussian, path=folder / RUN_FILES["nmi_vi_figure"])
    return folder


def test_run_files_are_distinct_names() -> None:
    names = list(RUN_FILES.values())
    assert len(set(names)) == len(names)
    assert RUN_FILES["report"] == "report.html"
    assert all("/" not in n for n in names)


def test_report_lists_every_group_with_describe_groups(run_dir: Path) -> None:
    report = write_report(run_dir)
    assert report == run_dir / RUN_FILES["report"]
    page = _read(report)
    cl = xr.open_dataset(run_dir / RUN_FILES["clusters"])
    pw = xr.open_dataset(run_dir / RUN_FILES["pairwise"])
    expected = describe_groups(cl, pairwise=pw)
    table = _table_with(page, "group")
    header, rows = table[0], table[1:]
    assert header[:6] == [
        "group", "channels", "recurs in (models)", "median bits", "coherence",
        "central channel (model, latent)",
    ]  # fmt: skip
    assert [int(r[0]) for r in rows] == expected["group"].tolist()
    assert len(rows) == int(cl.attrs["n_groups"]) >= 3
    for row, (_, want) in zip(rows, expected.iterrows(), strict=True):
        assert int(row[1]) == want["size"]
        assert row[2] == f"{want['models']} of 10"
        assert float(row[3]) == pytest.approx(want["bits"], abs=5e-4)
        assert float(row[4]) == pytest.approx(want["coherence"], abs=5e-4)
        assert row[5] == f"({want['central_model']}, {want['central_latent']})"
        assert row[6] == want["best_factors"]
        assert float(row[7]) == pytest.approx(want["best_nmi"], abs=5e-4)
    # the planted factors are the groups' best factors
    assert sorted(r[6] for r in rows) == ["z0", "z1", "z2"]
    # each group's swatch has the colour the structure figure gives it (tab10)
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    text = report.read_text()
    for g in expected["group"]:
        colour = to_hex(colormaps["tab10"](int(g)))
        assert f'<span class="swatch" style="background:{colour}"></span>{g}</td>' in text


def test_report_summary_shows_min_samples_and_its_rule(run_dir: Path) -> None:
    page = _read(write_report(run_dir))
    summary = _key_values(page)
    cl = xr.open_dataset(run_dir / RUN_FILES["clusters"])
    assert summary["channels"] == "50"
    assert summary["informative channels"] == str(int(cl["informative"].sum()))
    assert summary["groups"] == str(cl.attrs["n_groups"])
    assert summary["OPTICS min_samples"] == "6 (given)"  # the clusters' min_samples_rule
    rule = cl.attrs["xi_window_rule"]  # auto: the rule in words, shown with the value
    assert rule.startswith("auto") and summary["OPTICS xi window"] == f"1 ({rule})"


def test_report_says_traversals_need_the_models(run_dir: Path) -> None:
    page = _read(write_report(run_dir))
    assert any("need the trained models" in p for p in page.paragraphs)
    assert RUN_FILES["traversals_figure"] not in page.links
    # the figures are there, in page order
    figures = [link for link in page.links if link.endswith(".png")]
    assert figures.index(RUN_FILES["structure_figure"]) < figures.index(RUN_FILES["nmi_vi_figure"])


def test_report_embeds_traversals_and_ring_fusion(run_dir: Path, tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "run"
    shutil.copytree(run_dir, folder)
    figure = (run_dir / RUN_FILES["structure_figure"]).read_bytes()
    (folder / RUN_FILES["traversals_figure"]).write_bytes(figure)  # any PNG will do
    (folder / RUN_FILES["ring_figure"]).write_bytes(figure)
    summary = {
        "ring_fusion": {
            "uniformity_fused": 0.25,
            "uniformity_single_mean": 1.0,
            "n_learners": 12,
            "note": "fused <12> learners",
        }
    }
    (folder / RUN_FILES["summary"]).write_text(json.dumps(summary))
    page = _read(write_report(folder))
    assert RUN_FILES["traversals_figure"] in page.links
    assert RUN_FILES["ring_figure"] in page.links
    assert not any("need the trained models" in p for p in page.paragraphs)
    ring = _key_values(page)
    assert ring["ring uniformity of the fused channel (lower is better)"] == "0.250"
    assert ring["mean ring uniformity of the single learners"] == "1.000"
    assert ring["weak learners fused"] == "12"
    assert any("4.0 times as uniform" in p for p in page.paragraphs)
    assert "fused &lt;12&gt; learners" in (folder / RUN_FILES["report"]).read_text()


def test_report_without_clusters_or_summary(tmp_path: Path) -> None:
    # a folder with only a Pairwise file: the counts, no groups, no traversal note
    post = planted_ensemble(n_models=4, n_latent=4, n_samples=40, seed=0)
    save(reference_pairwise(post), tmp_path / RUN_FILES["pairwise"])
    numbers = collect_numbers(tmp_path)
    assert numbers["channels"] == 16
    assert "groups_table" not in numbers
    page = _read(write_report(tmp_path, title="<b>run</b>"))
    assert not any("need the trained models" in p for p in page.paragraphs)
    text = (tmp_path / RUN_FILES["report"]).read_text()
    assert "<title>&lt;b&gt;run&lt;/b&gt;</title>" in text


def test_report_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_report(tmp_path / "missing")
    with pytest.raises(ValueError, match="no ensemblex results"):
        write_report(tmp_path)
    (tmp_path / RUN_FILES["summary"]).write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        write_report(tmp_path)
    assert not (tmp_path / RUN_FILES["report"]).exists()
