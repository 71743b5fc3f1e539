"""The ``ensemblex`` command line: every subcommand on small data, the error paths,
a ``dask.distributed`` run, and ``ensemblex demo --quick`` end to end."""

from __future__ import annotations

import html.parser
import os
import sys
import warnings
from pathlib import Path
from urllib.parse import unquote, urlparse

import dask
import numpy as np
import pytest
import xarray as xr

from ensemblex.cli import main
from ensemblex.testing import planted_ensemble, reference_pairwise

SUBCOMMANDS = ["train", "fingerprint", "compare", "cluster", "synthesize", "report", "demo"]


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    """Run ``ensemblex ARGV`` in-process; return (exit code, stdout, stderr)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err: str, *fragments: str) -> None:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("ensemblex"), err
    assert "error:" in lines[0]
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"


# -- data ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def planted() -> xr.Dataset:
    # 6 models x 4 latents: 3 planted factors (a group of 6 channels each) + 1 mixed
    return planted_ensemble(n_models=6, n_latent=4, n_samples=60, n_factors=3, seed=3)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, planted: xr.Dataset) -> Path:
    """Input files: posteriors written by plain xarray, and broken files."""
    d = tmp_path_factory.mktemp("inputs")
    plain = xr.Dataset(
        {"mean": planted["mean"], "logvar": planted["logvar"], "labels": planted["labels"]}
    )
    plain.attrs = {}  # as a user of plain xarray would write it: no ensemblex attrs
    plain.to_netcdf(d / "post.nc")
    plain.drop_vars(["labels", "factor"]).to_netcdf(d / "nolabels.nc")
    zeros = np.zeros((1, 2, 5))
    xr.Dataset({"mean": (("model", "latent", "sample"), zeros)}).to_netcdf(d / "nologvar.nc")
    xr.Dataset(
        {"mean": (("model", "z", "sample"), zeros), "logvar": (("model", "z", "sample"), zeros)}
    ).to_netcdf(d / "baddims.nc")
    xr.Dataset({"temperature": ("x", np.arange(3.0))}).to_netcdf(d / "foreign.nc")
    (d / "text.nc").write_text("not a netCDF file\n")
    return d


@pytest.fixture(scope="module")
def pairwise_file(tmp_path_factory: pytest.TempPathFactory, files: Path) -> Path:
    out = tmp_path_factory.mktemp("pw") / "pairwise.nc"
    assert main(["compare", str(files / "post.nc"), "--out", str(out), "--no-progress"]) == 0
    return out


@pytest.fixture(scope="module")
def clusters_file(pairwise_file: Path, files: Path) -> Path:
    out = pairwise_file.parent / "clusters.nc"
    code = main(
        [
            "cluster", str(pairwise_file), "--posteriors", str(files / "post.nc"),
            "--out", str(out), "--figure", str(pairwise_file.parent / "structure.png"),
            "--no-progress",
        ]
    )  # fmt: skip
    assert code == 0
    return out


def _assert_png(path: Path) -> None:
    import matplotlib.image

    assert path.exists(), path
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 50 and image.shape[1] > 50


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.links.append(value)


def _assert_report(report: Path) -> list[str]:
    """Every link of the report is relative and resolves to a file next to it."""
    parser = _Links()
    parser.feed(report.read_text())
    assert parser.links
    for link in parser.links:
        parsed = urlparse(link)
        assert not parsed.scheme and not os.path.isabs(parsed.path), link
        assert (report.parent / unquote(parsed.path)).exists(), link
    return parser.links


# -- help, version, option errors ------------------------------------------------------


@pytest.mark.parametrize("sub", SUBCOMMANDS)
def test_help_of_every_subcommand(capsys: pytest.CaptureFixture[str], sub: str) -> None:
    code, out, _ = run(capsys, sub, "--help")
    assert code == 0
    assert out.startswith(f"usage: ensemblex {sub}")


def test_top_level_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for sub in SUBCOMMANDS:
        assert sub in out
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("ensemblex ")


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        ([], "required: SUBCOMMAND"),
        (["frobnicate"], "invalid choice"),
        (["compare", "post.nc"], "--out"),
        (["compare", "post.nc", "--out", "pw.nc", "--min-info", "-1"], "--min-info"),
        (["compare", "post.nc", "--out", "pw.nc", "--channel-chunk", "0"], "--channel-chunk"),
        (["cluster", "pw.nc", "--out", "cl.nc", "--metric", "mi"], "invalid choice: 'mi'"),
        (["cluster", "pw.nc", "--out", "cl.nc", "--min-samples", "1"], "--min-samples"),
        (["cluster", "pw.nc", "--out", "cl.nc", "--xi-window", "0"], "--xi-window"),
        (["cluster", "pw.nc", "--out", "cl.nc", "--xi-window", "wide"], "--xi-window"),
        (["synthesize", "post.nc", "--out", "s.nc", "--steps", "ten"], "--steps"),
        (["synthesize", "post.nc", "--out", "s.nc", "--channels", "1,x"], "--channels"),
        (["train", "--dataset", "imagenet", "--out", "p.nc"], "invalid choice: 'imagenet'"),
        (["demo", "--dataset", "cifar"], "invalid choice"),
    ],
)
def test_bad_options_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str
) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert_one_line_error(err, fragment)


# -- user mistakes: one line, exit 1 ----------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["compare", "{d}/missing.nc", "--out", "{t}/pw.nc"], ["missing.nc", "does not exist"]),
        (["compare", "{d}/text.nc", "--out", "{t}/pw.nc"], ["text.nc", "netCDF"]),
        (["compare", "{d}/foreign.nc", "--out", "{t}/pw.nc"], ["not an ensemblex dataset"]),
        (["compare", "{d}/nologvar.nc", "--out", "{t}/pw.nc"], ["'logvar' is missing"]),
        (["fingerprint", "{d}/baddims.nc", "--out", "{t}/fp.nc"], ["needs dims", "'z'"]),
        (["compare", "{d}/post.nc", "--out", "{t}/pw.csv"], ["must end in .nc", ".zarr"]),
        (["compare", "{d}/post.nc", "--out", "{d}/post.nc"], ["already exists", "--overwrite"]),
        (["compare", "{d}/nolabels.nc", "--out", "{t}/pw.nc", "--against", "labels"],
         ["no 'labels' variable"]),
        (["compare", "{d}/post.nc", "--out", "{t}/pw.nc", "--against", "{d}/nothere.nc"],
         ["nothere.nc", "does not exist"]),
        (["synthesize", "{d}/post.nc", "--out", "{t}/s.nc", "--group", "0"], ["--clusters"]),
        (["synthesize", "{d}/post.nc", "--out", "{t}/s.nc", "--channels", "0,999"],
         ["999"]),
        (["report", "{d}/no-such-run"], ["does not exist"]),
        (["report", "{t}"], ["no ensemblex results"]),
    ],
)  # fmt: skip
def test_user_mistakes_exit_1_with_one_line(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    files: Path,
    argv: list[str],
    fragments: list[str],
) -> None:
    argv = [a.format(d=files, t=tmp_path) for a in argv]
    code, _, err = run(capsys, *argv, *(["--no-progress"] if argv[0] != "report" else []))
    assert code == 1
    assert_one_line_error(err, *fragments)


def test_wrong_kind_of_dataset(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, pairwise_file: Path
) -> None:
    code, _, err = run(capsys, "synthesize", pairwise_file, "--out", tmp_path / "s.nc")
    assert code == 1
    assert_one_line_error(err, "Pairwise", "expected Posteriors")


def test_missing_extra_is_one_line(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    files: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # TensorFlow not installed: synthesis and training say which extra to install
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    code, _, err = run(
        capsys, "synthesize", files / "post.nc", "--out", tmp_path / "s.nc", "--steps", "5"
    )
    assert code == 1
    assert_one_line_error(err, "ensemblex[train]")


# -- the subcommands on small data -------------------------------------------------------


def test_compare_matches_the_float64_reference(pairwise_file: Path, planted: xr.Dataset) -> None:
    import ensemblex as ex

    pw = ex.open_dataset(pairwise_file)
    ref = reference_pairwise(planted)
    assert pw.attrs["ensemblex_kind"] == "pairwise"
    assert pw.sizes == ref.sizes
    for name in ("nmi", "vi", "joint_info"):
        np.testing.assert_allclose(pw[name].values, ref[name].values, atol=1e-4, rtol=0)
    np.testing.assert_allclose(pw["info_a"].values, ref["info_a"].values, atol=1e-4, rtol=0)


def test_compare_against_labels(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, files: Path, planted: xr.Dataset
) -> None:
    import ensemblex as ex

    out = tmp_path / "labels.nc"
    code, _, err = run(
        capsys, "compare", files / "post.nc", "--out", out, "--against", "labels", "--no-progress"
    )
    assert code == 0, err
    pw = ex.open_dataset(out)
    assert dict(pw.sizes) == {"channel_a": 24, "channel_b": 3}
    assert pw["kind_b"].values.tolist() == ["label"] * 3
    ref = reference_pairwise(planted, labels=True)
    np.testing.assert_allclose(pw["nmi"].values, ref["nmi"].values[:24, 24:], atol=1e-4, rtol=0)


def test_compare_zarr_store_resumes_to_the_same_result(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, files: Path, pairwise_file: Path
) -> None:
    pytest.importorskip("zarr")
    import ensemblex as ex

    store = tmp_path / "pairwise.zarr"
    argv = ["compare", files / "post.nc", "--out", store, "--channel-chunk", "8", "--no-progress"]
    code, _, err = run(capsys, *argv)
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairwise.zarr"]  # just the store
    first = ex.open_dataset(store).load()  # the finished store is the Pairwise dataset
    # a rerun finds every tile done and leaves the same result
    code, _, err = run(capsys, *argv)
    assert code == 0, err
    assert "resuming" in err
    again = ex.open_dataset(store).load()
    # the store is the input of cluster
    code, _, err = run(capsys, "cluster", store, "--out", tmp_path / "cl.nc", "--no-progress")
    assert code == 0, err
    assert ex.open_dataset(tmp_path / "cl.nc").attrs["ensemblex_kind"] == "clusters"
    expected = ex.open_dataset(pairwise_file)
    xr.testing.assert_identical(first.coords.to_dataset(), expected.coords.to_dataset())
    for name in ("nmi", "vi", "joint_info"):
        np.testing.assert_array_equal(first[name].values, again[name].values)
        np.testing.assert_allclose(first[name].values, expected[name].values, atol=1e-5)


def test_cluster_refuses_an_unfinished_store(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, files: Path
) -> None:
    """A store whose compare run was stopped: one line saying to rerun compare."""
    pytest.importorskip("zarr")
    import dask
    from dask.callbacks import Callback

    import ensemblex as ex
    from ensemblex.pairwise import pairwise

    class Stopped(Exception):
        pass

    class Stop(Callback):
        def _posttask(self, key, result, dsk, state, id) -> None:
            name = key[0] if isinstance(key, tuple) else key
            if str(name).startswith("pairwise-write"):
                raise Stopped  # the run stops after its first tile

    store = tmp_path / "pairwise.zarr"
    fp = ex.fingerprint(ex.open_dataset(files / "post.nc"))
    with Stop(), dask.config.set(scheduler="sync"), pytest.raises(Stopped):
        pairwise(fp, channel_chunk=8, store=store)
    code, _, err = run(capsys, "cluster", store, "--out", tmp_path / "cl.nc", "--no-progress")
    assert code != 0
    assert_one_line_error(err, "unfinished: rerun pairwise/compare with the same store")
    assert not (tmp_path / "cl.nc").exists()


def test_compare_on_a_distributed_cluster_matches_the_default_scheduler(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    files: Path,
    pairwise_file: Path,
    dask_client,
) -> None:
    import ensemblex as ex

    address = dask_client.scheduler.address
    argv = ["compare", files / "post.nc", "--channel-chunk", "8", "--no-progress"]
    code, _, err = run(capsys, *argv, "--out", tmp_path / "local.nc")
    assert code == 0, err
    code, _, err = run(capsys, *argv, "--out", tmp_path / "dist.nc", "--scheduler", address)
    assert code == 0, err
    assert address in err
    got, expected = ex.open_dataset(tmp_path / "dist.nc"), ex.open_dataset(tmp_path / "local.nc")
    for name in ("nmi", "vi", "joint_info", "info_a", "repeat_info_a"):
        np.testing.assert_allclose(got[name].values, expected[name].values, atol=1e-6, rtol=0)
    # and both agree with the run on default tiles to float32 precision
    default = ex.open_dataset(pairwise_file)
    np.testing.assert_allclose(got["nmi"].values, default["nmi"].values, atol=1e-5, rtol=0)


def test_compare_on_a_cluster_sends_reads_of_the_file_not_its_values(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, dask_client
) -> None:
    """Issue 10: workers read their chunks of POSTERIORS; the graph stays kilobytes."""
    import ensemblex as ex

    rng = np.random.default_rng(3)
    shape = (200, 10, 64)  # 2,000 channels: 1 MB of parameters
    post = ex.posteriors(
        rng.normal(size=shape).astype(np.float32),
        rng.uniform(-3.0, 0.0, size=shape).astype(np.float32),
    )
    ex.save(post, tmp_path / "post.nc")
    address = dask_client.scheduler.address
    argv = ["compare", tmp_path / "post.nc", "--no-progress", "--scheduler", address]
    # the threshold sits between the graph of reads (~50 kB) and the values (1 MB)
    limit = {"distributed.admin.large-graph-warning-threshold": "400kB"}
    with dask.config.set(limit), warnings.catch_warnings():
        warnings.filterwarnings("error", "Sending large graph")
        code, _, err = run(capsys, *argv, "--out", tmp_path / "pw.nc")
    assert code == 0, err
    pw = ex.open_dataset(tmp_path / "pw.nc")
    assert pw.sizes["channel_a"] == 2000
    assert np.isfinite(pw["vi"].values).all()


def test_cluster_writes_groups_label_nmi_and_the_figure(
    clusters_file: Path, planted: xr.Dataset
) -> None:
    import ensemblex as ex

    cl = ex.open_dataset(clusters_file)
    assert cl.attrs["ensemblex_kind"] == "clusters"
    assert cl.sizes["channel"] == 24
    assert "label_nmi" in cl and cl.sizes["factor"] == 3
    planted_groups = planted["planted"].values.reshape(-1)
    groups = cl["group"].values
    # the 18 pure channels fall into 3 groups, one per planted factor
    for factor in range(3):
        found = set(groups[planted_groups == factor].tolist())
        assert len(found) == 1 and found != {-1}, (factor, found)
    assert int(cl["central"].sum()) == len({g for g in groups.tolist() if g >= 0})
    _assert_png(clusters_file.parent / "structure.png")


def test_cluster_from_posteriors_with_explicit_min_samples(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, files: Path
) -> None:
    import ensemblex as ex

    out = tmp_path / "cl.nc"
    code, _, err = run(
        capsys, "cluster", files / "post.nc", "--out", out, "--min-samples", "4",
        "--metric", "vi", "--no-progress",
    )  # fmt: skip
    assert code == 0, err
    assert ex.open_dataset(out).sizes["channel"] == 24


def test_cluster_rejects_too_large_min_samples(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, pairwise_file: Path
) -> None:
    code, _, err = run(
        capsys, "cluster", pairwise_file, "--out", tmp_path / "c.nc", "--min-samples", "500"
    )
    assert code == 1
    assert_one_line_error(err, "min_samples")


@pytest.mark.train
@pytest.mark.slow
def test_synthesize_the_biggest_group(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, files: Path, clusters_file: Path
) -> None:
    pytest.importorskip("tensorflow")
    import ensemblex as ex

    out, figure = tmp_path / "synth.nc", tmp_path / "synth.png"
    code, _, err = run(
        capsys, "synthesize", files / "post.nc", "--clusters", clusters_file, "--out", out,
        "--figure", figure, "--steps", "40", "--optimizer", "adam", "--learning-rate", "0.05",
        "--no-progress",
    )  # fmt: skip
    assert code == 0, err
    syn = ex.open_dataset(out)
    assert dict(syn[["mean"]].sizes) == {"model": 1, "latent": 2, "sample": 60}
    cl = ex.open_dataset(clusters_file)
    sizes = {g: int((cl.group == g).sum()) for g in set(cl.group.values.tolist()) if g >= 0}
    assert syn.sizes["reference"] == max(sizes.values())
    _assert_png(figure)
    # an unknown group is one clear line
    code, _, err = run(
        capsys, "synthesize", files / "post.nc", "--clusters", clusters_file, "--group", "42",
        "--out", tmp_path / "s2.nc", "--steps", "5",
    )  # fmt: skip
    assert code == 1
    assert_one_line_error(err, "group 42")


def test_fingerprint_materialises_bc_with_label_channels(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, files: Path
) -> None:
    import ensemblex as ex

    out = tmp_path / "fp.nc"
    code, _, err = run(capsys, "fingerprint", files / "post.nc", "--out", out, "--labels")
    assert code == 0, err
    fp = ex.open_dataset(out)
    assert dict(fp["bc"].sizes) == {"channel": 27, "sample_i": 60, "sample_j": 60}
    assert fp["kind"].values.tolist().count("label") == 3
    np.testing.assert_allclose(np.diagonal(fp["bc"].values, axis1=1, axis2=2), 1.0)
    # the materialised file is itself a valid input of compare
    code, _, err = run(capsys, "compare", out, "--out", tmp_path / "pw.nc", "--no-progress")
    assert code == 0, err


def test_report_of_a_run_folder(capsys: pytest.CaptureFixture[str], clusters_file: Path) -> None:
    code, out, err = run(capsys, "report", clusters_file.parent)
    assert code == 0, err
    report = clusters_file.parent / "report.html"
    assert str(report) in out
    text = report.read_text()
    for word in ("channels", "informative channels", "groups", "central channels", "NMI"):
        assert word in text
    links = _assert_report(report)
    assert "structure.png" in links


@pytest.mark.train
def test_train_a_tiny_ring_ensemble(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pytest.importorskip("tensorflow")
    import ensemblex as ex

    out = tmp_path / "post.nc"
    code, _, err = run(
        capsys, "train", "--dataset", "ring", "--members", "2", "--latent-dim", "1",
        "--beta", "0.03", "--steps", "5", "--batch-size", "64", "--n-train", "256",
        "--n-fingerprint", "32", "--models", tmp_path / "models", "--out", out, "--no-progress",
    )  # fmt: skip
    assert code == 0, err
    post = ex.open_dataset(out)
    assert dict(post["mean"].sizes) == {"model": 2, "latent": 1, "sample": 32}
    assert "labels" in post
    assert any((tmp_path / "models").iterdir())


# -- the demo ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, str, str]:
    """``ensemblex demo --quick --overwrite`` into a folder holding a user's file and an
    earlier run's figure; run once for the demo tests: (folder, exit code, stdout, stderr)."""
    pytest.importorskip("tensorflow")
    import contextlib
    import io

    out = tmp_path_factory.mktemp("demo") / "demo"
    out.mkdir()
    (out / "notes.txt").write_text("the user's notes\n")
    (out / "structure.png").write_text("an earlier run's figure\n")
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["demo", "--quick", "--out", str(out), "--no-progress", "--overwrite"])
    return out, code, stdout.getvalue(), stderr.getvalue()


@pytest.mark.train
@pytest.mark.slow
def test_demo_quick_writes_valid_outputs(quick_demo: tuple[Path, int, str, str]) -> None:
    import ensemblex as ex
    from ensemblex.demo import FILES

    out, code, stdout, err = quick_demo
    assert code == 0, err
    report = out / FILES["report"]
    assert f"report: {report}" in stdout
    kinds = {
        "posteriors": "posteriors",
        "pairwise": "pairwise",
        "clusters": "clusters",
        "synthesis": "posteriors",
    }
    for key, kind in kinds.items():
        path = out / FILES[key]
        assert xr.open_dataset(path).sizes  # plain xarray opens every file
        assert ex.open_dataset(path).attrs["ensemblex_kind"] == kind
    for key in ("structure_figure", "information_figure", "synthesis_figure"):
        _assert_png(out / FILES[key])
    links = _assert_report(report)
    for key in ("structure_figure", "information_figure", "synthesis_figure"):
        assert FILES[key] in links
    import json

    summary = json.loads((out / FILES["summary"]).read_text())
    assert summary["quick"] is True
    assert (
        summary["numbers"]["channels"]
        == summary["config"]["n_members"] * summary["config"]["latent_dim"]
    )


@pytest.mark.train
@pytest.mark.slow
def test_demo_overwrite_keeps_the_users_files(quick_demo: tuple[Path, int, str, str]) -> None:
    out, code, _, err = quick_demo
    assert code == 0, err
    assert (out / "notes.txt").read_text() == "the user's notes\n"
    _assert_png(out / "structure.png")  # the earlier run's file was replaced


@pytest.mark.train
@pytest.mark.slow
def test_demo_shows_groups_traversals_nmi_vi_and_ring_fusion(
    quick_demo: tuple[Path, int, str, str],
) -> None:
    import json

    import ensemblex as ex
    from ensemblex.report import RUN_FILES
    from ensemblex.structure import describe_groups

    out, code, _, err = quick_demo
    assert code == 0, err
    for key in ("traversals_figure", "nmi_vi_figure", "ring_figure"):
        _assert_png(out / RUN_FILES[key])
    report = out / RUN_FILES["report"]
    links = _assert_report(report)
    for key in ("traversals_figure", "nmi_vi_figure", "ring_figure"):
        assert RUN_FILES[key] in links
    summary = json.loads((out / RUN_FILES["summary"]).read_text())
    cl = ex.open_dataset(out / RUN_FILES["clusters"])
    table = describe_groups(cl, pairwise=ex.open_dataset(out / RUN_FILES["pairwise"]))
    # the summary's groups table is describe_groups' table, one record per group
    assert [r["group"] for r in summary["numbers"]["groups_table"]] == table["group"].tolist()
    assert summary["numbers"]["groups"] == len(table)
    assert summary["numbers"]["min_samples"] == cl.attrs["min_samples"]
    # the report lists every group, each with its central channel
    text = report.read_text()
    groups = text[text.index("<h2>Groups</h2>") :]
    for row in table.itertuples():
        assert f"<td>({row.central_model}, {row.central_latent})</td>" in groups
    # ring fusion: the fused channel is more uniform around the circle than one weak learner
    ring = summary["ring_fusion"]
    assert ring["uniformity_fused"] < ring["uniformity_single_mean"]
    fused = ex.open_dataset(out / RUN_FILES["ring_synthesis"])
    assert fused.sizes["latent"] == 2 and fused.attrs["n_learners"] == ring["n_learners"]


# -- errors: user mistakes are one line, bugs keep their traceback ---------------------------


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["compare", "{d}/missing.nc", "--out", "{t}/pw.nc"], ["POSTERIORS file", "missing.nc"]),
        (["cluster", "{d}/missing.nc", "--out", "{t}/cl.nc"], ["PAIRWISE file", "missing.nc"]),
        (["synthesize", "{d}/missing.nc", "--out", "{t}/s.nc"], ["POSTERIORS file"]),
        (["fingerprint", "{d}/missing.nc", "--out", "{t}/fp.nc"], ["POSTERIORS file"]),
    ],
)  # fmt: skip
def test_errors_name_files_as_the_usage_line_does(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    files: Path,
    argv: list[str],
    fragments: list[str],
) -> None:
    argv = [a.format(d=files, t=tmp_path) for a in argv]
    code, _, err = run(capsys, *argv, "--no-progress")
    assert code == 1
    assert_one_line_error(err, *fragments)
    assert "INPUT" not in err


def test_file_system_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, files: Path
) -> None:
    # --out under a path whose parent is a file: the folder cannot be created
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    code, _, err = run(
        capsys, "compare", files / "post.nc", "--out", blocker / "pw.nc", "--no-progress"
    )
    assert code == 1
    assert_one_line_error(err, "a-file")


@pytest.mark.parametrize("error", [RuntimeError("boom"), ValueError("not a user error")])
def test_a_bug_keeps_its_traceback_and_asks_for_a_report(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    files: Path,
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
) -> None:
    import importlib

    import ensemblex

    # (the attribute ensemblex.pairwise is the function; the module is in sys.modules)
    module = importlib.import_module("ensemblex.pairwise")

    def broken(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(module, "pairwise", broken)
    code, _, err = run(
        capsys, "compare", files / "post.nc", "--out", tmp_path / "pw.nc", "--no-progress"
    )
    assert code == 70
    assert "Traceback (most recent call last)" in err
    assert f"{type(error).__name__}: {error}" in err
    last = err.strip().splitlines()[-1]
    assert f"please report this as a bug in ensemblex {ensemblex.__version__}" in last
    assert not (tmp_path / "pw.nc").exists()


# -- progress in logs ---------------------------------------------------------------------------


def test_compare_progress_in_a_log_is_a_few_plain_lines(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, files: Path
) -> None:
    # stderr captured by pytest is not a terminal, as in a batch job's log
    out = tmp_path / "pw.nc"
    code, _, err = run(capsys, "compare", files / "post.nc", "--out", out, "--channel-chunk", "4")
    assert code == 0, err
    lines = err.splitlines()
    assert "\r" not in err
    assert len(lines) <= 4, err
    assert lines[0] == "compare: started"
    assert any(line.startswith("compare: done in") for line in lines)
    assert lines[-1].startswith(f"wrote {out}")


# -- safe outputs: nothing existing is replaced without --overwrite ------------------------------


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["train", "--dataset", "ring", "--out", "{t}/taken.nc"], id="train"),
        pytest.param(["fingerprint", "{d}/post.nc", "--out", "{t}/taken.nc"], id="fingerprint"),
        pytest.param(["compare", "{d}/post.nc", "--out", "{t}/taken.nc"], id="compare"),
        pytest.param(["cluster", "{pw}", "--out", "{t}/taken.nc"], id="cluster"),
        pytest.param(
            ["cluster", "{pw}", "--out", "{t}/new.nc", "--figure", "{t}/taken.png"],
            id="cluster-figure",
        ),
        pytest.param(["synthesize", "{d}/post.nc", "--out", "{t}/taken.nc"], id="synthesize"),
        pytest.param(
            ["synthesize", "{d}/post.nc", "--out", "{t}/new.nc", "--figure", "{t}/taken.png"],
            id="synthesize-figure",
        ),
        pytest.param(["report", "{t}", "--out", "{t}/taken.html"], id="report"),
        pytest.param(["demo", "--quick", "--out", "{t}"], id="demo"),
    ],
)
def test_every_subcommand_refuses_to_replace_outputs(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    files: Path,
    pairwise_file: Path,
    argv: list[str],
) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for name in ("taken.nc", "taken.png", "taken.html", "notes.txt"):
        (run_dir / name).write_text(f"the user's {name}\n")
    before = _snapshot(run_dir)
    argv = [a.format(d=files, t=run_dir, pw=pairwise_file) for a in argv]
    code, _, err = run(capsys, *argv, *(["--no-progress"] if argv[0] != "report" else []))
    assert code == 1
    assert_one_line_error(err, "--overwrite")
    assert _snapshot(run_dir) == before  # untouched, and nothing new written


def test_demo_refuses_a_non_empty_folder(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "earlier-results.nc").write_text("a full run\n")
    before = _snapshot(tmp_path)
    code, out, err = run(capsys, "demo", "--out", tmp_path, "--no-progress")
    assert code != 0
    assert_one_line_error(err, "not empty", "--overwrite", "earlier-results.nc")
    assert out == ""
    assert _snapshot(tmp_path) == before


# -- cluster says which min_samples it used and what each group is -------------------------------


def test_cluster_prints_min_samples_rule_and_the_groups_table(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, files: Path, pairwise_file: Path
) -> None:
    import ensemblex as ex
    from ensemblex.structure import describe_groups

    out = tmp_path / "cl.nc"
    code, stdout, err = run(
        capsys, "cluster", pairwise_file, "--posteriors", files / "post.nc", "--out", out,
        "--no-progress",
    )  # fmt: skip
    assert code == 0, err
    cl = ex.open_dataset(out)
    # 6 models: the rule gives min(round(20 * sqrt(6 / 50)), ceil(6 / 2)) = 3
    assert cl.attrs["min_samples"] == 3
    assert f"min_samples=3 ({cl.attrs['min_samples_rule']})" in err
    # 6 models: the xi method's own steepness, said with its rule
    assert cl.attrs["xi_window"] == 1
    assert f"xi_window=1 ({cl.attrs['xi_window_rule']})" in err
    table = describe_groups(cl, pairwise=ex.open_dataset(pairwise_file))
    lines = stdout.strip().splitlines()
    assert lines[0].split()[:3] == ["group", "size", "models"]
    assert len(lines) == 1 + len(table) == 4  # the 3 planted factors
    for line, row in zip(lines[1:], table.itertuples(), strict=True):
        assert line.split()[:3] == [str(row.group), str(row.size), str(row.models)]
        assert row.best_factors in line


def test_zarr_output_without_zarr_is_one_line(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    files: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "zarr", None)  # zarr not installed
    code, _, err = run(
        capsys, "compare", files / "post.nc", "--out", tmp_path / "pw.zarr", "--no-progress"
    )
    assert code == 1
    assert_one_line_error(err, "ensemblex[zarr]")
    assert not (tmp_path / "pw.zarr").exists()


def test_the_demos_old_step_names_still_work_and_warn() -> None:
    import ensemblex.demo
    from ensemblex.structure import group_channels

    with pytest.warns(FutureWarning, match="moved to ensemblex.structure.group_channels"):
        moved = ensemblex.demo.group_channels
    assert moved is group_channels
    with pytest.raises(AttributeError):
        ensemblex.demo.no_such_step
