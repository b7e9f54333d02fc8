"""Dask workers as batch jobs (dask-jobqueue): a run on the real one-node Slurm equals the threaded run bin
for bin; HTCondor's job file (no daemons here) carries the options; a caller's Client is used as given."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from configs import threaded_histograms, two_files_each  # tests/ is on the path

from framework.config.schema.batch import BatchSpec
from framework.errors import FrameworkError
from framework.execute.clusters import ClusterOptions
from framework.execute.executors import execute_on_dask
from framework.execute.pipeline import RunOptions
from framework.output.write import read_histograms

if TYPE_CHECKING:
    from framework.testing.slurm import SlurmCluster

pytest_plugins = ["slurm_cluster"]  # the session's cluster fixture (tests/ is on the path)

HISTOGRAMS = """
histograms:
  pt: {axes: [{expr: GoodMuon_pt, bins: 20, range: [0, 200]}]}
  met: {axes: [{expr: MET_pt, bins: 20, range: [0, 200]}, {expr: nGoodMuon, integer: [0, 3]}]}
batch: {memory: 1GB, time: 10m, min_workers: 1, max_workers: 1}
"""


@pytest.fixture(scope="module")
def config(generated, tmp_path_factory) -> Path:
    return two_files_each(generated, tmp_path_factory.mktemp("jobqueue_config"), "jobqueue", HISTOGRAMS)


@pytest.fixture(scope="module")
def threaded(config, tmp_path_factory) -> dict[str, dict]:
    return threaded_histograms(config, tmp_path_factory.mktemp("threaded"))


def assert_equal_threaded(outdir: Path, threaded: dict[str, dict]) -> None:
    for sample, histograms in threaded.items():
        written = read_histograms(outdir / f"{sample}.hist.zip")
        for name, h in histograms.items():
            np.testing.assert_allclose(written[name].view(flow=True).value, h.view(flow=True).value, rtol=1e-12)
            np.testing.assert_allclose(written[name].view(flow=True).variance, h.view(flow=True).variance, rtol=1e-12)


def run_analysis(*args: object, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "framework", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=240, check=False)


def test_workers_as_slurm_jobs_equal_threads(config, threaded, tmp_path, slurm_cluster: SlurmCluster):
    logs = tmp_path / "logs"
    proc = run_analysis(
        config,
        "-o",
        tmp_path / "out",
        "--executor",
        "dask",
        "--cluster",
        "slurm",
        "--max-workers",
        "2",  # the flag wins over the config's max_workers: 1
        "--scheduler-host",
        "127.0.0.1",
        "--job-logs",
        logs,
        "--job-directive=--comment=rdf-analysis-test",
        "--no-progress",
        env=slurm_cluster.env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4 Dask tasks" in proc.stdout
    assert_equal_threaded(tmp_path / "out", threaded)
    assert list(logs.glob("dask-worker-*.err")), "the workers ran as Slurm jobs, their logs in --job-logs"
    assert not slurm_cluster.run("squeue", "-h").strip(), "the worker jobs are cancelled at the end"


def test_client_of_the_caller_is_used_and_left_open(config, threaded, tmp_path):
    from dask.distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address="127.0.0.1:0") as cluster,
        Client(cluster) as client,
    ):
        done = execute_on_dask(RunOptions(config=config, output=tmp_path / "out"), client=client, task_retries=0)
        assert {t.worker for t in done["tasks"]} <= set(client.run(os.getpid).values())  # ran on its workers
        assert client.status == "running"
    assert_equal_threaded(tmp_path / "out", threaded)


def test_htcondor_job_file_carries_the_options(monkeypatch):
    import dask_jobqueue

    monkeypatch.setenv("PYTHONPATH", "/the/framework")

    batch = BatchSpec(memory="3GB", time="1h", threads=2, disk="5GB", directives=["+ProjectName = 'rdf'"])
    jobs = ClusterOptions.from_batch("htcondor", batch, max_workers=6, host="127.0.0.1")
    ours = dask_jobqueue.HTCondorCluster(**jobs.cluster_arguments())
    reference = dask_jobqueue.HTCondorCluster(
        cores=2, processes=2, memory="3GB", disk="5GB", job_extra_directives={"+ProjectName": "'rdf'"}
    )
    try:
        script, expected = ours.job_script(), reference.job_script()
    finally:
        ours.close()
        reference.close()
    for line in ("RequestCpus = MY.DaskWorkerCores", "MY.DaskWorkerCores = 2", "MY.DaskWorkerMemory = 3000000000"):
        assert line in script and line in expected
    assert "MY.DaskWorkerDisk = 5000000000" in script
    assert "+ProjectName = 'rdf'" in script
    assert f"{sys.executable} -m distributed.cli.dask_worker" in script
    assert "--nthreads 1" in script and "--nworkers 2" in script  # single-threaded worker processes
    assert "export PYTHONPATH=/the/framework" in script  # condor_submit passes no environment
    with pytest.raises(FrameworkError, match="not KEY = VALUE"):
        ClusterOptions("htcondor", directives=("getenv",)).cluster_arguments()


def test_flags_win_over_the_batch_block():
    batch = BatchSpec(memory="1GB", time="90m", min_workers=2, max_workers=3, directives=["--qos=short"])
    jobs = ClusterOptions.from_batch("slurm", batch, memory="4GB", max_workers=8, directives=None)
    assert (jobs.memory, jobs.min_workers, jobs.max_workers, jobs.directives) == ("4GB", 2, 8, ("--qos=short",))
    assert jobs.cluster_arguments()["walltime"] == "01:30:00"
    assert ClusterOptions.from_batch("lsf", batch).cluster_arguments()["walltime"] == "01:30"
    with pytest.raises(FrameworkError, match="above --max-workers"):
        ClusterOptions.from_batch("slurm", batch, max_workers=1)


def test_missing_submit_command_is_a_clear_error(config, tmp_path):
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}  # python, no sbatch
    proc = run_analysis(config, "-o", tmp_path / "out", "--executor", "dask", "--cluster", "slurm", env=env)
    assert proc.returncode != 0
    assert "sbatch, which is not on PATH" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_missing_dask_jobqueue_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask_jobqueue", None)  # import fails
    with pytest.raises(FrameworkError, match="needs dask-jobqueue") as err:
        ClusterOptions("pbs").check()
    assert "pip install" in err.value.hint
