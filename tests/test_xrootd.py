"""Files on an XRootD server on loopback: the local run's histograms bin for bin from root:// URLs
(globs listed on the server, Parquet read through fsspec-xrootd), `samples update` figures equal to
the local ones, and errors naming the sample and URL when a file or the server is not there, or goes
away during the event loop (killed from inside it); with --retries, a server back in time gives the
local histograms. The client's timeouts are the framework's own (`rootenv.XROOTD_CLIENT`)."""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from configs import zmumu_and_data  # tests/ is on the path
from test_remote import BODY  # tests/ is on the path
from xrootd_server import START_SECONDS, XRootDServer, serve_copy, xrootd_server

from framework.app import samples
from framework.app.cli import main as run_analysis
from framework.app.samples import update_samples_file
from framework.errors import InputError, RemoteInputError
from framework.execute import pipeline
from framework.execute.pipeline import RunOptions, RunReport, execute
from framework.inputs.parquet import export


@pytest.fixture(scope="module")
def server(generated: dict[str, Path]) -> Iterator[XRootDServer]:
    """One server for the module, serving zmumu.root, data.root, mc/zmumu.root and zmumu.parquet."""
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


# A cut that keeps every event and, the first time it is asked for a pid, kills that process (the
# server) and returns once it has ended: the event loop goes on reading from a server that is gone.
# The generated Z->mumu file has 3 clusters of 10000 entries; with 2 threads the third is read after
# the first event, hence after the kill.
KILL_ONCE = r"""
#include <signal.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>

inline bool kill_once(long pid)
{
   static std::atomic<long> killed{0};
   if (pid == 0 || killed.exchange(pid) == pid)
      return true;
   kill(pid, SIGKILL);
   for (int i = 0; i < 500; ++i) {
      std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
      std::string line;
      if (!std::getline(stat, line) || line.substr(line.rfind(')') + 2, 1) == "Z")
         break; // ended (a zombie until the test reaps it)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
   }
   return true;
}
"""


@pytest.fixture(scope="module")
def kill_header(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One file for the module: the interpreter declares a header once per process."""
    path = tmp_path_factory.mktemp("kill") / "kill_once.h"
    path.write_text(KILL_ONCE)
    return path


def killing_config(header: Path, zmumu: str | Path, pid: int) -> str:
    """Z->mumu alone, BODY's histograms, and a cut that kills process `pid` at the first event (0: none)."""
    head = (
        f"analysis: x\nlumi: 1.0\ncpp: [{header}]\n"
        f'samples:\n  zmumu: {{files: ["{zmumu}"], xsec: 1.0}}\n'
        f'selection:\n  - {{name: server, cut: "kill_once({pid})"}}\n'
    )
    return head + BODY


def test_a_server_killed_during_the_event_loop_fails_the_run(kill_header, generated, write_config, tmp_path, capsys):
    """A second server, killed from inside the loop: the run fails soon, naming the sample and URL,
    exit code non-zero, nothing written."""
    with xrootd_server() as gone:
        url = serve_copy(gone, generated["zmumu"], "zmumu.root")
        config = write_config(killing_config(kill_header, url, gone.process.pid))
        started = time.monotonic()
        code = run_analysis([str(config), "-o", str(tmp_path / "out")])
        seconds = time.monotonic() - started
        assert gone.process.poll() is not None  # killed by the loop
    error = capsys.readouterr().err
    assert code != 0
    assert re.search(rf"sample 'zmumu': lost {re.escape(url)} while reading it: \S", error), error
    assert "tried 1 time(s)" in error
    assert seconds < 60  # about 2 s, set-up included; the XRootD client's own defaults waited over 300 s
    assert not (tmp_path / "out").exists()


def test_retries_read_a_server_back_in_time_to_the_local_histograms(kill_header, generated, write_config, tmp_path):
    """The server killed from inside the loop is started again on its port and folder at once; the
    run's second loop (--retries) reads it all, as a local run does."""
    local = run(write_config(killing_config(kill_header, generated["zmumu"], 0), "local.yaml"), tmp_path / "local")
    with xrootd_server() as server:
        url = serve_copy(server, generated["zmumu"], "zmumu.root")
        killed = server.process

        def start_again_once_killed() -> None:
            try:
                killed.wait(START_SECONDS)
            except subprocess.TimeoutExpired:
                return  # never killed: the run's histograms tell
            server.start_again()

        restarter = threading.Thread(target=start_again_once_killed)
        restarter.start()
        config = write_config(killing_config(kill_header, url, killed.pid), "remote.yaml")
        try:
            remote = run(config, tmp_path / "remote", retries=3)
        finally:
            restarter.join()
        assert server.process is not killed and killed.returncode == -signal.SIGKILL
        assert server.opened().count("/served/zmumu.root") >= 2  # read again after the restart
    assert remote.result.samples[0].events == local.result.samples[0].events == 30000
    assert_same_histograms(local, remote)


def test_a_file_read_short_fails_the_run(server, generated, write_config, tmp_path, monkeypatch):
    """A file replaced by a shorter one after its entries were counted: ROOT reads it without
    complaint; the run counts each file's entries in the loop and fails rather than miss events."""
    url = serve_copy(server, generated["zmumu"], "replaced.root")
    config = write_config(zmumu_and_data("x", 1.0, url, generated["data"], 1.0, BODY))
    build_graph = pipeline.build_graph

    def replace_then_build(*args: object, **kwargs: object) -> object:
        serve_copy(server, generated["ttbar"], "replaced.root")  # 20000 entries, not 30000
        return build_graph(*args, **kwargs)

    monkeypatch.setattr(pipeline, "build_graph", replace_then_build)
    message = rf"sample 'zmumu': read 20000 of the 30000 entries {re.escape(url)} had when the run began"
    with pytest.raises(RemoteInputError, match=message):
        run(config, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_samples_update_tries_a_remote_file_again_and_names_it(generated, tmp_path, capsys, monkeypatch):
    """A server gone between `samples update` opening a file and reading it: the sample and URL, as
    a file lost while read; `samples update --retries 1` on that stopped server: two tries 1 s apart,
    then the sample and URL, the file untouched."""
    path = tmp_path / "samples.yaml"
    with xrootd_server() as gone:
        url = serve_copy(gone, generated["zmumu"], "zmumu.root")
        path.write_text(f"samples:\n  zmumu:\n    files: [{url}]\n    xsec: 1.0\n")
        open_file = samples.open_file

        def open_then_stop(*args: object, **kwargs: object) -> object:
            handle = open_file(*args, **kwargs)
            gone.stop()
            return handle

        monkeypatch.setattr(samples, "open_file", open_then_stop)
        with pytest.raises(RemoteInputError, match=rf"sample 'zmumu': lost {re.escape(url)} while reading it: "):
            update_samples_file(path)
    before = path.read_text()
    monkeypatch.undo()
    started = time.monotonic()
    code = run_analysis(["samples", "update", "--retries", "1", str(path)])
    seconds = time.monotonic() - started
    error = capsys.readouterr().err
    assert code != 0
    assert f"sample 'zmumu': cannot open {url}" in error and "tried 2 time(s)" in error
    assert 1 <= seconds < 30
    assert path.read_text() == before
