"""Files on an XRootD server on loopback: the local run's histograms bin for bin from root:// URLs
(globs listed on the server, Parquet read through fsspec-xrootd), `samples update` figures equal to
the local ones, and errors naming the sample and URL when a file or the server is not there."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from configs import zmumu_and_data  # tests/ is on the path
from test_remote import BODY  # tests/ is on the path
from xrootd_server import CLIENT_TIMEOUTS, XRootDServer, serve_copy, xrootd_server

from framework.app.cli import main as run_analysis
from framework.app.samples import update_samples_file
from framework.errors import InputError
from framework.execute import pipeline
from framework.execute.pipeline import RunOptions, RunReport, execute
from framework.inputs.parquet import export


@pytest.fixture(scope="module")
def server(generated: dict[str, Path]) -> Iterator[XRootDServer]:
    """One server for the module, serving zmumu.root, data.root, mc/zmumu.root and zmumu.parquet."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in CLIENT_TIMEOUTS.items():
            patch.setenv(name, value)
        with xrootd_server() as served:
            for name in ("zmumu", "data"):
                serve_copy(served, generated[name], f"{name}.root")
            serve_copy(served, generated["zmumu"], "mc/zmumu.root")
            export(generated["zmumu"], "Events", served.folder / "zmumu.parquet")
            (served.folder / "zmumu.parquet").chmod(0o644)
            yield served


def run(config: Path, output: Path, **options: object) -> RunReport:
    return execute(RunOptions(config=config, output=output, **options))  # type: ignore[arg-type]


def assert_same_histograms(local: RunReport, remote: RunReport) -> None:
    assert [s.sample.name for s in local.result.samples] == [s.sample.name for s in remote.result.samples]
    for a, b in zip(local.result.samples, remote.result.samples, strict=True):
        for name in ("met", "mu_pt"):
            np.testing.assert_array_equal(
                a.histograms[name].view(flow=True).value, b.histograms[name].view(flow=True).value
            )


def test_root_urls_and_globs_give_the_local_histograms(server, generated, write_config, tmp_path):
    local = run(
        write_config(zmumu_and_data("x", 1.0, generated["zmumu"], generated["data"], 1.0, BODY)), tmp_path / "a"
    )
    remote_config = zmumu_and_data("x", 1.0, f"{server.url}/mc/z*.root", f"{server.url}/data.root", 1.0, BODY)
    remote = run(write_config(remote_config, "remote.yaml"), tmp_path / "b")
    assert remote.result.samples[0].sample.files == [f"{server.url}/mc/zmumu.root"]  # the glob, listed on the server
    assert {"/served/mc/zmumu.root", "/served/data.root"} <= set(server.opened())
    assert_same_histograms(local, remote)


def test_parquet_over_root_urls_gives_the_local_histograms(server, generated, write_config, tmp_path):
    local_parquet = server.folder / "zmumu.parquet"
    local = run(write_config(zmumu_and_data("x", 1.0, local_parquet, generated["data"], 1.0, BODY)), tmp_path / "a")
    remote_config = zmumu_and_data("x", 1.0, f"{server.url}/zmumu.parquet", generated["data"], 1.0, BODY)
    remote = run(write_config(remote_config, "remote.yaml"), tmp_path / "b")
    assert "/served/zmumu.parquet" in server.opened()
    assert_same_histograms(local, remote)


def test_samples_update_over_root_urls_gives_the_local_figures(server, generated, tmp_path):
    figures = {}
    for where, zmumu, data in (
        ("local", generated["zmumu"], generated["data"]),
        ("remote", f"{server.url}/zmumu.root", f"{server.url}/data.root"),
    ):
        path = tmp_path / f"{where}.yaml"
        zmumu_block = f"  zmumu:\n    files: [{zmumu}]\n    xsec: 1.0\n"
        path.write_text(f"samples:\n{zmumu_block}  data:\n    files: [{data}]\n    is_data: true\n")
        update_samples_file(path)
        text = path.read_text()
        figures[where] = [
            line.split(":", 1)[1] for line in text.splitlines() if line.strip().startswith(("events", "sum"))
        ]
    assert figures["remote"] == figures["local"]
    assert len(figures["local"]) == 4  # zmumu: events, sum_weights, sum_weights2; data: events


def test_a_missing_file_or_an_empty_glob_is_named(server, generated, write_config, tmp_path):
    for entry, message in (
        (f"{server.url}/nothing.root", rf"sample 'zmumu': cannot open {server.url}/nothing.root"),
        (f"{server.url}/mc/none*.root", rf"sample 'zmumu': no file matches '{server.url}/mc/none\*.root'"),
        (f"{server.url}/nofolder/*.root", rf"sample 'zmumu': cannot expand '{server.url}/nofolder/\*.root'"),
    ):
        config = write_config(zmumu_and_data("x", 1.0, entry, generated["data"], 1.0, BODY))
        with pytest.raises(InputError, match=message) as info:
            run(config, tmp_path / "out")
        assert info.value.location is not None and info.value.location.key.startswith("samples.zmumu.files")
    assert not (tmp_path / "out").exists()


def test_a_server_stopped_during_or_before_the_run_fails_it(generated, write_config, tmp_path, capsys, monkeypatch):
    """A second server (the module's keeps running), stopped after the run read its files' facts
    and before the event loop; then, stopped, pointed to by a run with --retries."""
    with xrootd_server() as gone:
        url = serve_copy(gone, generated["zmumu"], "zmumu.root")
        config = write_config(zmumu_and_data("x", 1.0, url, generated["data"], 1.0, BODY))
        build_graph = pipeline.build_graph

        def stop_then_build(*args: object, **kwargs: object) -> object:
            gone.stop()
            return build_graph(*args, **kwargs)

        monkeypatch.setattr(pipeline, "build_graph", stop_then_build)
        with pytest.raises(InputError, match=rf"sample 'zmumu': cannot open {url}, which was readable when the run"):
            run(config, tmp_path / "out")
        assert "/served/zmumu.root" in gone.opened()
    started = time.monotonic()
    code = run_analysis([str(config), "-o", str(tmp_path / "out"), "--retries", "2"])
    seconds = time.monotonic() - started
    error = capsys.readouterr().err
    assert code != 0
    assert f"sample 'zmumu': cannot open {url}" in error
    assert "tried 3 time(s)" in error
    assert 3 <= seconds < 60  # retried 1 + 2 s apart, every wait bounded by the client's timeouts
    glob_config = write_config(zmumu_and_data("x", 1.0, url.replace("zmumu", "z*"), generated["data"], 1.0, BODY))
    with pytest.raises(InputError, match=r"sample 'zmumu': cannot expand 'root://127\.0\.0\.1:\d+//served/z\*\.root'"):
        run(glob_config, tmp_path / "out")
    assert not (tmp_path / "out").exists()
