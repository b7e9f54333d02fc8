"""Jobs queued on a real (one-node, test session) Slurm: `submit --submit`, `status`, `merge`, `--resubmit`,
and the merged histograms equal a threaded run's bin for bin."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import uproot
from configs import threaded_histograms, two_files_each  # tests/ is on the path

from framework.execute.schedulers import JobState
from framework.execute.submit import JobSet, job_states
from framework.output.write import read_histograms

if TYPE_CHECKING:
    from framework.testing.slurm import SlurmCluster

pytest_plugins = ["slurm_cluster"]  # the session's cluster fixture (tests/ is on the path)

WAIT_TIMEOUT = 150.0  # seconds for a job set to leave the queue (2 jobs of 5-20 s on 2 busy cores)

HISTOGRAMS = """
selection:
  - {name: one_muon, cut: "nGoodMuon >= 1"}
histograms:
  pt: {axes: [{expr: GoodMuon_pt, bins: 20, range: [0, 200]}]}
  met: {axes: [{expr: MET_pt, bins: 20, range: [0, 200]}, {expr: nGoodMuon, integer: [0, 3]}]}
batch: {memory: 1GB, time: 10m, threads: 1, files_per_job: 1}
"""


@pytest.fixture(scope="module")
def config(generated, tmp_path_factory) -> Path:
    return two_files_each(generated, tmp_path_factory.mktemp("slurm_config"), "slurm", HISTOGRAMS)


@pytest.fixture(scope="module")
def threaded(config, tmp_path_factory) -> dict[str, dict]:
    return threaded_histograms(config, tmp_path_factory.mktemp("threaded"))


def run_analysis(*args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "framework", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, check=False)


def wait_for(jobdir: Path, done: callable, what: str) -> list:  # type: ignore[valid-type]
    """Poll the jobs' states until `done(states)`; bounded by WAIT_TIMEOUT."""
    jobs = JobSet.load(jobdir)
    deadline = time.monotonic() + WAIT_TIMEOUT
    while time.monotonic() < deadline:
        states = job_states(jobs)
        if done(states):
            return states
        time.sleep(0.2)
    pytest.fail(f"{what}: not within {WAIT_TIMEOUT:.0f} s; states {[s.state.value for s in states]}")


def settled(states: list) -> bool:
    return all(s.state not in (JobState.QUEUED, JobState.RUNNING) for s in states)


def assert_merged_equal_threaded(parts: Path, threaded: dict[str, dict]) -> None:
    for sample, histograms in threaded.items():
        merged = read_histograms(parts / f"{sample}.hist.zip")
        for name, h in histograms.items():
            np.testing.assert_allclose(merged[name].view(flow=True).value, h.view(flow=True).value, rtol=1e-12)
            np.testing.assert_allclose(merged[name].view(flow=True).variance, h.view(flow=True).variance, rtol=1e-12)


def submit(config: Path, tmp_path: Path, cluster: SlurmCluster, *how: str) -> tuple[Path, Path]:
    jobdir, parts = tmp_path / "jobs", tmp_path / "parts"
    proc = run_analysis(
        "submit", config, "--backend", "slurm", *how, "--jobs-dir", jobdir, "-o", parts, "--submit", env=cluster.env
    )
    assert proc.returncode == 0, proc.stderr
    assert "follow them with: run-analysis status" in proc.stdout
    return jobdir, parts


@pytest.fixture
def slurm_env(slurm_cluster: SlurmCluster, monkeypatch: pytest.MonkeyPatch) -> SlurmCluster:
    """The cluster, with this process (which polls the job states) its client."""
    monkeypatch.setenv("SLURM_CONF", str(slurm_cluster.conf))
    return slurm_cluster


def test_jobs_run_on_slurm_and_merge_to_the_threaded_run(config, threaded, tmp_path, slurm_env):
    jobdir, parts = submit(config, tmp_path, slurm_env, "--per", "sample", "--files-per-job", "2")  # 2 jobs
    sbatch = (jobdir / "submit.sbatch").read_text()
    for line in ("--array=0-1", "--mem=1024M", "--time=10", "--cpus-per-task=1", "--requeue"):
        assert f"#SBATCH {line}\n" in sbatch
    wait_for(jobdir, settled, "the jobs to finish")
    status = run_analysis("status", jobdir, env=slurm_env.env)
    assert status.returncode == 0, status.stdout + status.stderr
    assert "2 job(s): 2 done" in status.stdout
    # each job's progress file: every event of its files read; together, every entry of the inputs
    entries = sum(uproot.open(path)["Events"].num_entries for path in config.parent.glob("*.root"))
    assert f"events read {entries:,} / {entries:,}" in status.stdout, status.stdout
    merged = run_analysis("merge", parts)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert_merged_equal_threaded(parts, threaded)


PAUSE_ONCE = """#include <chrono>
#include <thread>
namespace slow {
// true, after a pause at the first call in the process: a job still runs when it is cancelled
inline bool pause_once(int) {
    static bool paused = false;
    if (!paused) {
        paused = true;
        std::this_thread::sleep_for(std::chrono::seconds(3));
    }
    return true;
}
}
"""


def test_cancelled_job_fails_merge_refuses_then_resubmitted(config, threaded, tmp_path, slurm_env):
    # the config with a first cut that passes every event after a pause of 3 s in each job: without
    # it a job may end between the poll that sees it running and scancel
    (tmp_path / "pause_once.h").write_text(PAUSE_ONCE)
    slow = tmp_path / "slow.yaml"
    slow.write_text(
        config.read_text()
        .replace("selection:\n", 'selection:\n  - {name: pause, cut: "slow::pause_once(nMuon)"}\n')
        .replace("samples:", f"cpp: [{tmp_path / 'pause_once.h'}]\nsamples:", 1)
    )
    jobdir, parts = submit(slow, tmp_path, slurm_env, "--per", "era")  # no eras: 2 jobs, each both samples
    states = wait_for(jobdir, lambda states: states[0].state is JobState.RUNNING, "job 0 to start")
    slurm_env.run("scancel", states[0].task_id)
    states = wait_for(jobdir, settled, "the jobs to end")
    assert [s.state for s in states] == [JobState.FAILED, JobState.DONE]
    status = run_analysis("status", jobdir, env=slurm_env.env)
    assert status.returncode == 1
    assert "CANCELLED" in status.stdout and "1 done, 1 failed" in status.stdout
    assert f"run-analysis submit --resubmit {jobdir}" in status.stdout
    assert not list(parts.glob("*.part-1-of-2.hist.zip"))  # the killed job left no file under a final name
    merged = run_analysis("merge", jobdir)  # the job folder: merge names the job
    assert merged.returncode == 1
    assert "zmumu: missing part(s) 1" in merged.stdout and "data: missing part(s) 1" in merged.stdout
    assert "job 0 (zmumu data, part 1/2) wrote no complete output" in merged.stdout
    assert not (parts / "zmumu.hist.zip").exists()

    again = run_analysis("submit", "--resubmit", jobdir, env=slurm_env.env)
    assert again.returncode == 0 and "resubmitted job(s) 0 as" in again.stdout, again.stdout + again.stderr
    wait_for(jobdir, settled, "the resubmitted job to finish")
    status = run_analysis("status", jobdir, env=slurm_env.env)
    assert status.returncode == 0 and "2 job(s): 2 done" in status.stdout, status.stdout
    assert run_analysis("merge", jobdir).returncode == 0
    assert_merged_equal_threaded(parts, threaded)


def test_held_jobs_show_held_then_are_resubmitted_in_their_place(config, tmp_path, slurm_env):
    held = config.parent / "held.yaml"  # every job queued held (sbatch --hold): none runs
    held.write_text(config.read_text().replace("files_per_job: 1}", "files_per_job: 1, directives: ['--hold']}"))
    jobdir, _ = submit(held, tmp_path, slurm_env, "--per", "era")  # 2 jobs
    status = run_analysis("status", jobdir, env=slurm_env.env)
    assert status.returncode == 1, status.stdout + status.stderr
    assert "JobHeldUser" in status.stdout and "2 job(s): 2 held" in status.stdout
    assert f"queue the held ones again with: run-analysis submit --resubmit {jobdir}" in status.stdout
    first = [s.task_id for s in job_states(JobSet.load(jobdir))]
    again = run_analysis("submit", "--resubmit", jobdir, env=slurm_env.env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "resubmitted job(s) 0, 1 as" in again.stdout and f"took the held {', '.join(first)} out" in again.stdout
    states = job_states(JobSet.load(jobdir))  # the new array's tasks, held again by the same submit file
    assert [s.state for s in states] == [JobState.HELD, JobState.HELD] and not {s.task_id for s in states} & set(first)
    assert not set(slurm_env.run("squeue", "--noheader", "--array", "--format=%i").split()) & set(first)
    slurm_env.run("scancel", states[0].task_id.split("_")[0])


def test_status_of_a_folder_that_is_not_a_job_folder(tmp_path):
    proc = run_analysis("status", tmp_path)
    assert proc.returncode != 0
    assert f"{tmp_path} is not a job folder" in proc.stderr and "run-analysis submit CONFIG" in proc.stderr


def test_submit_without_sbatch_says_what_to_do(config, tmp_path):
    env = {**os.environ, "PATH": str(tmp_path)}  # nothing on PATH: no sbatch
    proc = run_analysis(
        "submit", config, "--backend", "slurm", "--jobs-dir", tmp_path / "jobs", "-o", tmp_path / "parts", "--submit",
        env=env,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "'sbatch' is not on PATH" in proc.stderr and f"the job files are ready in {tmp_path / 'jobs'}" in proc.stderr
    assert not (tmp_path / "jobs" / "submitted.json").exists()
