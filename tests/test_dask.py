"""The Dask and Spark executors: a local cluster of 2 worker processes gives the threaded run's
histograms, with workers that write nothing under the client's output folder and with a worker
killed in the middle of a task."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from configs import GOOD_MUON, MUON_SYSTEMATICS, bounded, zmumu_and_data  # tests/ is on the path
from distributed.diagnostics.plugin import WorkerPlugin

from framework.execute.executors import DaskExecutor, execute_in_tasks, execute_on_dask, execute_on_spark
from framework.execute.pipeline import RunOptions, RunReport, execute, report_progress
from framework.output.write import read_histograms, read_member

HISTOGRAMS = """
histograms:
  pt: {axes: [{expr: GoodMuon_pt, bins: 20, range: [0, 200]}]}
"""


@pytest.fixture(scope="module")
def analysis(generated, tmp_path_factory) -> tuple[Path, RunReport]:
    """The config (zmumu in two files: two tasks, data in one) and its threaded run."""
    folder = tmp_path_factory.mktemp("dask")
    for i in range(2):
        shutil.copy(generated["zmumu"], folder / f"zmumu_{i}.root")
    shutil.copy(generated["data"], folder / "data.root")
    config = folder / "config.yaml"
    config.write_text(
        zmumu_and_data(
            "on_dask",
            10.0,
            f"{folder}/zmumu_*.root",
            f"{folder}/data.root",
            2000.0,
            GOOD_MUON,
            MUON_SYSTEMATICS,
            HISTOGRAMS,
        )
    )
    return config, execute(RunOptions(config=config, output=folder / "threads"))


def assert_equal_to_threads(done: dict[str, Any], outdir: Path, threads: RunReport) -> None:
    """The files of a run in tasks hold the threaded run's histograms bin for bin, every event once."""
    assert sorted(p.name for p in done["outputs"]) == ["data.hist.zip", "zmumu.hist.zip"]
    assert done["events"] == 2 * 30000 + 11000
    assert sorted((t.sample, t.part) for t in done["tasks"]) == [("data", 1), ("zmumu", 1), ("zmumu", 2)]
    for sample in threads.result.samples:
        path = outdir / f"{sample.sample.name}.hist.zip"
        theirs, ours = read_histograms(path)["pt"].view(flow=True), sample.histograms["pt"].view(flow=True)
        np.testing.assert_allclose(theirs.value, ours.value, rtol=1e-12)
        np.testing.assert_allclose(theirs.variance, ours.variance, rtol=1e-12)
        assert read_member(path, "provenance.json")["normalisation"] == pytest.approx(sample.norm, rel=1e-12)
    assert not list(outdir.glob(".parts-*"))


def test_spark_local_master_equals_threads(analysis, tmp_path):
    config, threads = analysis
    done = bounded(lambda: execute_on_spark(RunOptions(config=config, output=tmp_path), workers=2, task_retries=0))
    assert_equal_to_threads(done, tmp_path, threads)


class RecordWrites(WorkerPlugin):
    """A worker plugin: every path a worker process opens for writing, creates, renames or removes
    (Python's audit events: the framework writes its files from Python)."""

    name = "record-writes"
    EVENTS = ("open", "os.mkdir", "os.rename", "os.replace", "os.remove", "os.rmdir", "shutil.rmtree")

    def setup(self, worker: Any) -> None:
        self.written: list[str] = []
        sys.addaudithook(self.audit)  # lives as long as the worker process

    def audit(self, event: str, args: tuple[Any, ...]) -> None:
        if event not in self.EVENTS or isinstance(args[0], int):
            return
        if event == "open" and not (args[2] & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)):
            return  # reading
        self.written.append(os.path.abspath(os.fsdecode(args[0])))
        if event in ("os.rename", "os.replace"):
            self.written.append(os.path.abspath(os.fsdecode(args[1])))


@pytest.fixture
def cluster(tmp_path) -> Iterator[Any]:
    """A local cluster of 2 worker processes whose temporary folder is not the client's."""
    from dask.distributed import Client, LocalCluster

    (tmp_path / "worker-tmp").mkdir()  # before the workers start: Python's tempfile takes $TMPDIR only if it exists
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            local_directory=str(tmp_path / "worker-space"),
            env={"TMPDIR": str(tmp_path / "worker-tmp")},
        ) as cluster,
        Client(cluster) as client,
    ):
        client.wait_for_workers(2, timeout=60)
        yield cluster


def test_dask_equals_threads_and_workers_write_nothing_under_the_output_folder(analysis, cluster, tmp_path):
    """Workers write their parts in their own temporary folders, removed after each task; only the
    client writes the output folder, from the bytes the tasks return."""
    from dask.distributed import Client

    config, threads = analysis
    outdir = tmp_path / "dask"
    with Client(cluster) as client:
        client.register_plugin(RecordWrites(), name=RecordWrites.name)
        done = bounded(
            lambda: execute_on_dask(RunOptions(config=config, output=outdir), cluster.scheduler_address, task_retries=0)
        )
        written = [
            path
            for paths in client.run(lambda dask_worker: dask_worker.plugins[RecordWrites.name].written).values()
            for path in paths
        ]
    assert_equal_to_threads(done, outdir, threads)
    assert not [path for path in written if path.startswith(str(outdir))]
    task_folders = {part for path in written for part in Path(path).parts if part.startswith("rdf-analysis-task-")}
    assert len(task_folders) == 3  # one per task, in the worker's $TMPDIR
    assert all(path.startswith(str(tmp_path / "worker-tmp")) for path in written if "rdf-analysis-task-" in path)
    assert not list((tmp_path / "worker-tmp").glob("rdf-analysis-task-*"))  # each removed after its task


class KillFirstTask(WorkerPlugin):
    """A worker plugin: the worker that starts the run's first task is killed (SIGKILL) there; its
    process id is left in `marker`, which also keeps the task's next worker alive."""

    name = "kill-first-task"

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def transition(self, key: str, start: str, finish: str, **kwargs: Any) -> None:
        if finish != "executing" or str(key).startswith("warm_up"):
            return
        try:
            fd = os.open(self.marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            return
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        os.kill(os.getpid(), signal.SIGKILL)


def test_worker_killed_mid_task_is_retried_without_double_counting(analysis, tmp_path):
    """The scheduler runs the lost task again on a live worker; its part arrives once."""
    config, threads = analysis
    marker = tmp_path / "killed"

    class KillingFirstTask(DaskExecutor):
        def start(self) -> None:
            super().start()
            self.client.register_plugin(KillFirstTask(marker), name=KillFirstTask.name)

    outdir = tmp_path / "dask"
    done = bounded(lambda: execute_in_tasks(RunOptions(config=config, output=outdir), 1, KillingFirstTask(None, 2, 1)))
    killed = int(marker.read_text())
    assert killed not in {t.worker for t in done["tasks"]}
    assert_equal_to_threads(done, outdir, threads)


def test_dask_progress_shows_events_as_tasks_run(analysis, cluster, tmp_path, monkeypatch, capsys):
    """The progress file and the terminal bar count events while tasks run, not only when they end:
    every write of the file is recorded, and the count ends at every event the plan reads."""
    from framework.execute import progress

    written: list[dict[str, Any]] = []

    def record(path: Path | None, stage: str, **values: Any) -> None:
        written.append(values)
        report_progress(path, stage, **values)

    monkeypatch.setattr(progress, "report_progress", record)
    config, _ = analysis
    progress_file = tmp_path / "progress.json"
    options = RunOptions(config=config, output=tmp_path / "dask", progress=True, progress_file=progress_file)
    executor = DaskExecutor(cluster.scheduler_address, 2, 0)
    executor.send_every = 0.01  # these tasks' event loops take less than the default's half second
    done = bounded(lambda: execute_in_tasks(options, 1, executor))
    total = 2 * 30000 + 11000
    assert all(w["total"] == total for w in written)
    assert any(w["tasks"] == 0 and w["events"] > 0 for w in written)  # from the workers, before any task ended
    assert any(0 < w["events"] < total for w in written)
    assert written[-1]["events"] == done["events"] == total
    assert json.loads(progress_file.read_text())["events"] == total
    assert f"{total:,} / {total:,} events" in capsys.readouterr().out
