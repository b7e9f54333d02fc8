"""`submit --submit`, `status` and `--resubmit` on HTCondor, against fake condor_submit, condor_q, condor_history
and condor_rm (tests/fake_htcondor.py: HTCondor's daemons do not install here) that answer in the real tools'
formats; the test plays the schedd, and the jobs it says completed are run here with their `run_job.sh`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from configs import copies_of_each  # tests/ is on the path
from fake_htcondor import FIRST_CLUSTER, FakePool

from framework.config.load import load_config
from framework.errors import ExecutionError, InputError
from framework.execute import schedulers
from framework.execute.schedulers import JobState
from framework.execute.submit import JobSet, job_states, submit_jobs, write_jobs
from framework.plan.model import RunSelection

HISTOGRAMS = """
selection:
  - {name: one_muon, cut: "nGoodMuon >= 1"}
histograms:
  pt: {axes: [{expr: GoodMuon_pt, bins: 20, range: [0, 200]}]}
batch: {memory: 1GB, time: 10m, threads: 1, files_per_job: 1}
"""
OVER_MEMORY = "Error from slot1_4@node07: Job has gone over memory limit of 1024 megabytes. Peak usage: 1731 megabytes."
FIRST, SECOND = str(FIRST_CLUSTER), str(FIRST_CLUSTER + 1)


@pytest.fixture(scope="module")
def config(generated, tmp_path_factory) -> Path:
    """Three files of each sample, one job per file: jobs 0-2 zmumu, 3-5 data."""
    return copies_of_each(generated, tmp_path_factory.mktemp("condor_config"), "condor", HISTOGRAMS, 3)


@pytest.fixture
def pool(tmp_path, monkeypatch) -> FakePool:
    """An empty fake pool whose tools are first on PATH (for this process and the commands it starts)."""
    fake = FakePool.install(tmp_path / "condor_bin")
    monkeypatch.setenv("PATH", f"{fake.folder}{os.pathsep}{os.environ['PATH']}")
    return fake


def run_analysis(*args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "framework", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, check=False)


def run_as_condor_would(pool: FakePool, jobdir: Path, job_id: str) -> None:
    """Run the queued job `job_id` here as an execute node would (`run_job.sh` with its expanded arguments),
    then let it leave the queue as completed."""
    proc = subprocess.run(
        ["bash", str(jobdir / "run_job.sh"), *pool.ad(job_id)["Args"].split()],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    pool.leave(job_id, JobStatus=4, ExitCode=0, ExitBySignal=False)


def rows(status_output: str) -> dict[int, list[str]]:
    """{job: its row's cells (samples, part, state, id, then the detail's words)} of `status`'s table."""
    lines = status_output.splitlines()[1:]
    return {int(line.split()[0]): line.split()[1:] for line in lines if line.split() and line.split()[0].isdigit()}


def test_status_of_every_state_then_resubmit_follows_the_new_cluster(config, pool, tmp_path):
    jobdir, parts = tmp_path / "jobs", tmp_path / "parts"
    submitted = run_analysis("submit", config, "--backend", "htcondor", "--jobs-dir", jobdir, "-o", parts, "--submit")
    assert submitted.returncode == 0, submitted.stderr
    assert f"submitted as htcondor job {FIRST}; follow them with: run-analysis status {jobdir}" in submitted.stdout
    assert pool.calls("condor_submit") == [[str(jobdir / "submit.sub")]]
    assert [pool.ad(f"{FIRST}.{k}")["Args"] for k in range(6)] == ["0", "1", "2", "3", "4", "5"]

    # the schedd's side: job 0 ran and completed, 1 waits, 2 runs, 3 is held, 4 exited 1, 5 was removed
    run_as_condor_would(pool, jobdir, f"{FIRST}.0")
    pool.set(f"{FIRST}.2", JobStatus=2)
    pool.set(f"{FIRST}.3", JobStatus=5, HoldReason=OVER_MEMORY)
    pool.leave(f"{FIRST}.4", JobStatus=4, ExitCode=1, ExitBySignal=False)
    pool.leave(f"{FIRST}.5", JobStatus=3, RemoveReason="via condor_rm (by user alice)")
    status = run_analysis("status", jobdir)
    assert status.returncode == 1, status.stdout + status.stderr
    table = rows(status.stdout)
    assert [table[k][2:4] for k in range(6)] == [
        ["done", f"{FIRST}.0"],
        ["queued", f"{FIRST}.1"],
        ["running", f"{FIRST}.2"],
        ["held", f"{FIRST}.3"],
        ["failed", f"{FIRST}.4"],
        ["failed", f"{FIRST}.5"],
    ], status.stdout
    assert OVER_MEMORY in status.stdout
    assert f"completed, exit code 1; no output; log {jobdir}/logs/job_4.err" in status.stdout
    assert "removed (via condor_rm (by user alice)); no output" in status.stdout
    assert "6 job(s): 1 queued, 1 running, 1 held, 1 done, 2 failed" in status.stdout
    assert f"queue the failed and held ones again with: run-analysis submit --resubmit {jobdir}" in status.stdout
    attributes = "ClusterId,ProcId,JobStatus,HoldReason,ExitCode,ExitBySignal,ExitSignal,RemoveReason"
    assert pool.calls("condor_q") == [[FIRST, "-json", "-attributes", attributes]]  # job 0 is done: not asked
    assert pool.calls("condor_history") == [[FIRST, "-json", "-attributes", attributes]]

    again = run_analysis("submit", "--resubmit", jobdir)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"resubmitted job(s) 3, 4, 5 as {SECOND}" in again.stdout
    assert f"took the held {FIRST}.3 out of the queue" in again.stdout
    assert pool.calls("condor_submit")[-1] == [str(jobdir / "resubmit-1.sub")]
    resubmitted = (jobdir / "resubmit-1.sub").read_text().splitlines()
    assert "queue job in (3 4 5)" in resubmitted and not any(line.startswith("queue 6") for line in resubmitted)
    assert "arguments = $(job)" in resubmitted and f"output = {jobdir}/logs/job_$(job).out" in resubmitted
    assert pool.calls("condor_rm") == [[f"{FIRST}.3"]]  # held: removed, not released
    new = [pool.ad(f"{SECOND}.{proc}") for proc in range(3)]
    assert [ad["Args"] for ad in new] == ["3", "4", "5"]  # ProcId I runs the I-th job queued again
    assert [ad["Err"] for ad in new] == [f"{jobdir}/logs/job_{k}.err" for k in (3, 4, 5)]
    record = json.loads((jobdir / "submitted.json").read_text())
    assert [(r["id"], r["jobs"]) for r in record] == [(FIRST, [0, 1, 2, 3, 4, 5]), (SECOND, [3, 4, 5])]

    run_as_condor_would(pool, jobdir, f"{SECOND}.1")  # job 4
    pool.set(f"{SECOND}.0", JobStatus=2)
    status = run_analysis("status", jobdir)
    assert status.returncode == 0, status.stdout + status.stderr
    table = rows(status.stdout)
    assert [table[k][2:4] for k in range(6)] == [
        ["done", f"{FIRST}.0"],
        ["queued", f"{FIRST}.1"],
        ["running", f"{FIRST}.2"],
        ["running", f"{SECOND}.0"],
        ["done", f"{SECOND}.1"],
        ["queued", f"{SECOND}.2"],
    ], status.stdout
    assert "6 job(s): 2 queued, 2 running, 2 done" in status.stdout
    assert pool.calls("condor_q")[-2:] == [[c, "-json", "-attributes", attributes] for c in (FIRST, SECOND)]
    assert len(pool.calls("condor_history")) == 2  # the first status and --resubmit's: no job not done left the queue


@pytest.fixture
def submitted_jobs(config, pool, tmp_path) -> JobSet:
    """The six jobs, submitted to the fake pool (idle; none runs)."""
    jobs = write_jobs(load_config(config), RunSelection(), "htcondor", tmp_path / "jobs", tmp_path / "parts")
    assert submit_jobs(jobs) == FIRST
    return jobs


@pytest.fixture
def failed_jobs(submitted_jobs, pool) -> JobSet:
    """The six jobs, job 0 held and the others completed without outputs."""
    pool.set(f"{FIRST}.0", JobStatus=5, HoldReason=OVER_MEMORY)
    for k in range(1, 6):
        pool.leave(f"{FIRST}.{k}", JobStatus=4, ExitCode=0, ExitBySignal=False)
    return submitted_jobs


def test_status_without_condor_tools_says_what_to_install(failed_jobs, tmp_path):
    record = (failed_jobs.folder / "submitted.json").read_bytes()
    empty = tmp_path / "empty_bin"
    empty.mkdir()
    proc = run_analysis("status", failed_jobs.folder, env={**os.environ, "PATH": str(empty)})
    assert proc.returncode == 2
    assert "'condor_q' is not on PATH: this machine is not a htcondor submit node" in proc.stderr
    assert "HTCondor's client tools (condor_submit, condor_q, condor_history, condor_rm" in proc.stderr
    assert (failed_jobs.folder / "submitted.json").read_bytes() == record


def test_unreachable_schedd_is_named_and_a_hung_one_times_out(failed_jobs, pool, monkeypatch):
    pool.fail("condor_q", "unreachable")
    proc = run_analysis("status", failed_jobs.folder)
    assert proc.returncode == 3
    assert f"condor_q {FIRST} -json -attributes" in proc.stderr
    assert "failed: -- Failed to fetch ads from:" in proc.stderr
    assert "SECMAN:2007" in proc.stderr and "the condor_schedd could not be reached" in proc.stderr
    pool.fail("condor_q", "hang")
    monkeypatch.setattr(schedulers, "COMMAND_TIMEOUT", 1)
    with pytest.raises(ExecutionError, match="condor_q did not answer within 1 s: the condor_schedd is unreachable"):
        job_states(failed_jobs)


def test_failed_resubmission_leaves_the_job_folder_and_the_held_job_as_they_were(failed_jobs, pool):
    record = (failed_jobs.folder / "submitted.json").read_bytes()
    pool.fail("condor_submit", "unreachable")
    proc = run_analysis("submit", "--resubmit", failed_jobs.folder)
    assert proc.returncode == 3
    assert "Can't find address of local schedd" in proc.stderr
    assert (failed_jobs.folder / "submitted.json").read_bytes() == record
    assert not list(failed_jobs.folder.glob("resubmit-*.sub"))
    assert pool.calls("condor_rm") == [] and pool.ad(f"{FIRST}.0")["JobStatus"] == 5


def test_submit_file_with_a_queue_statement_it_cannot_follow_is_refused(failed_jobs, pool):
    submit_file = failed_jobs.submit_file
    submit_file.write_text(submit_file.read_text().replace("queue 6", "queue input from inputs.txt"))
    proc = run_analysis("submit", "--resubmit", failed_jobs.folder)
    assert proc.returncode == 2
    line = submit_file.read_text().splitlines().index("queue input from inputs.txt") + 1
    assert f"{submit_file}:{line}: 'queue input from inputs.txt' is a queue statement" in proc.stderr
    assert "`queue N` or one `queue` per job" in proc.stderr
    assert len(pool.calls("condor_submit")) == 1  # the first submission only


def test_resubmission_without_shared_filesystem_keeps_each_jobs_transfers(config, pool, tmp_path):
    scratch = config.parent / "scratch.yaml"
    scratch.write_text(config.read_text().replace("files_per_job: 1}", "files_per_job: 1, shared_filesystem: false}"))
    jobs = write_jobs(load_config(scratch), RunSelection(), "htcondor", tmp_path / "jobs", tmp_path / "parts")
    assert jobs.scheduler.submit(jobs.submit_file, [1, 3]) == FIRST
    text = (jobs.folder / "resubmit-1.sub").read_text()
    assert text.count("queue job in (1)") == 1 and text.count("queue job in (3)") == 1
    assert "# not again (job 0): queue" in text and "arguments = $(job) ." in text
    ads = [pool.ad(f"{FIRST}.{proc}") for proc in (0, 1)]
    assert [ad["Args"] for ad in ads] == ["1 .", "3 ."]
    assert [ad["TransferOutput"] for ad in ads] == ["zmumu.part-2-of-3.hist.zip", "data.part-1-of-3.hist.zip"]
    with pytest.raises(InputError, match=r"queues 6 job\(s\): it has no job 7"):
        jobs.scheduler.submit(jobs.submit_file, [1, 7])


def test_suspended_transferring_killed_removing_and_forgotten_jobs(submitted_jobs, pool):
    pool.set(f"{FIRST}.0", JobStatus=7)
    pool.set(f"{FIRST}.1", JobStatus=6)
    pool.leave(f"{FIRST}.2", JobStatus=4, ExitBySignal=True, ExitSignal=9)
    pool.set(f"{FIRST}.3", JobStatus=3, RemoveReason="via condor_rm (by user alice)")  # in the queue a moment more
    pool.forget(f"{FIRST}.4")  # its history rotated away
    states = [(s.state, s.detail.split(";")[0]) for s in job_states(submitted_jobs)]
    assert states == [
        (JobState.RUNNING, "suspended"),
        (JobState.RUNNING, "transferring output"),
        (JobState.FAILED, "completed, killed by signal 9"),
        (JobState.FAILED, "removed (via condor_rm (by user alice))"),
        (JobState.FAILED, "in neither condor_q nor condor_history (the history may be rotated)"),
        (JobState.QUEUED, ""),
    ]
