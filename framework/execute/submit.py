"""`run-analysis submit CONFIG.yaml`: job files for HTCondor or Slurm, one job per sample/era and file chunk;
`run-analysis status JOBDIR`: what became of each job; `submit --resubmit JOBDIR`: the failed and held ones again.
`submit --skim` writes jobs of `run-analysis skim` instead (one sample and file chunk each): a job set's kind
(`RunJobs`, `SkimJobs`, recorded in jobs.json) says what its jobs run, write and when they are done.

The framework writes the jobs; the site's scheduler runs them. Each job is one
`run-analysis CONFIG --samples X | --eras E --part I/N -o OUT` command, listed in
`jobs.txt` (and with its samples and part in `jobs.json`); `run_job.sh K` runs line K. The submit file
asks for the resources of the config's `batch:` block. Each submission's scheduler id is appended to
`submitted.json`. A job is done when its part files are in OUT (the run writes them atomically, so a
part file there is complete); outputs are added together by `run-analysis merge OUT`.
"""

from __future__ import annotations

import json
import math
import shlex
import shutil
import sys
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from framework.config.load import LoadedConfig
from framework.errors import ExecutionError, FrameworkError, InputError
from framework.execute.schedulers import SCHEDULERS, JobArray, JobState, Scheduler
from framework.inputs.files import resolve_files
from framework.inputs.locations import kind_of
from framework.output.format import read_provenance
from framework.output.skim import read_record, record_path
from framework.output.write import output_name
from framework.plan.model import RunSelection
from framework.plan.select import select_samples
from framework.plan.skim import skim_file, skim_spec

BACKENDS = tuple(SCHEDULERS)
JOBS_FILE = "jobs.json"
SUBMITTED_FILE = "submitted.json"


@dataclass(frozen=True)
class Job:
    """One line of jobs.txt: the samples it runs, which part of their files, and the command."""

    samples: tuple[str, ...]
    part: tuple[int, int]
    command: tuple[str, ...]


class JobKind(ABC):
    """What the jobs of a job set run (`run-analysis` or `run-analysis skim`), what they write and when a job is
    done; named in jobs.json by `name`."""

    name: ClassVar[str]
    subcommand: ClassVar[tuple[str, ...]]  # after `run-analysis`
    reports_progress: ClassVar[bool]  # its command takes --progress-file
    merged: ClassVar[bool]  # its outputs are added together by `run-analysis merge`

    def check(self, config: LoadedConfig, per: str) -> None:
        """Refuse a job set of this kind that could not do its work (before anything is written)."""

    @abstractmethod
    def outputs(self, job: Job, output: Path) -> list[Path]:
        """The files job `job` writes into `output` (those a scheduler without shared file system copies back)."""

    @abstractmethod
    def is_complete(self, job: Job, output: Path) -> bool:
        """Job `job` is done: its outputs are in `output`, made as its part."""


class RunJobs(JobKind):
    """Jobs of `run-analysis`: a part file per sample, added together by `run-analysis merge`."""

    name = "run"
    subcommand = ()
    reports_progress = True
    merged = True

    def outputs(self, job: Job, output: Path) -> list[Path]:
        return [output / output_name(sample, job.part) for sample in job.samples]

    def is_complete(self, job: Job, output: Path) -> bool:
        """Every part file of the job is in `output` and was made as this part (an interrupted run leaves
        only hidden temporaries, so a file under the final name is whole)."""
        for path in self.outputs(job, output):
            try:
                part = read_provenance(path).part
            except (OSError, ValueError, KeyError):
                return False
            if part is None or tuple(part) != job.part:
                return False
        return True


class SkimJobs(JobKind):
    """Jobs of `run-analysis skim`, one sample each: a skim file and its record per job; each job writes the
    skim folder's samples.yaml again (under a lock), so there is nothing to merge."""

    name = "skim"
    subcommand = ("skim",)
    reports_progress = False  # `run-analysis skim` has no --progress-file
    merged = False

    def check(self, config: LoadedConfig, per: str) -> None:
        skim_spec(config)  # a config without skim: is refused as `run-analysis skim` refuses it
        if per != "sample":
            raise InputError(
                f"submit --skim makes one job set per sample, not per {per}: a skim is written per sample",
                hint="leave out --per (or give --per sample)",
            )
        if not config.spec.batch.shared_filesystem:
            raise InputError(
                "submit --skim needs batch.shared_filesystem: true: each skim job writes the skim folder's "
                "samples.yaml from the records already there",
                hint="skim where the jobs share the skim folder, or run `run-analysis skim` there",
            )

    def outputs(self, job: Job, output: Path) -> list[Path]:
        files = [output / skim_file(sample, job.part) for sample in job.samples]
        return [path for file in files for path in (file, record_path(output, file.name))]

    def is_complete(self, job: Job, output: Path) -> bool:
        """Each sample's skim file is in `output` with its record, made for this part (the file is renamed into
        place before its record is written, so a record beside its file means both are whole)."""
        for sample in job.samples:
            file = skim_file(sample, job.part)
            record = read_record(record_path(output, file))
            if record is None or record.part is None or tuple(record.part) != job.part:
                return False
            if record.sample != sample or not (output / file).is_file():
                return False
        return True


KINDS: dict[str, JobKind] = {kind.name: kind for kind in (RunJobs(), SkimJobs())}


@dataclass(frozen=True)
class JobSet:
    """A job folder: its scheduler, where the jobs write, and the jobs (numbered from 0)."""

    folder: Path
    scheduler: Scheduler
    output: Path
    jobs: tuple[Job, ...]
    kind: JobKind = KINDS["run"]

    def is_complete(self, job: int) -> bool:
        return self.kind.is_complete(self.jobs[job], self.output)

    @property
    def commands(self) -> list[list[str]]:
        return [list(job.command) for job in self.jobs]

    @property
    def submit_file(self) -> Path:
        return self.folder / self.scheduler.submit_file_name

    def save(self) -> None:
        record = {
            "backend": self.scheduler.name,
            "kind": self.kind.name,
            "output": str(self.output),
            "jobs": [{"samples": j.samples, "part": j.part, "command": j.command} for j in self.jobs],
        }
        (self.folder / JOBS_FILE).write_text(json.dumps(record, indent=1) + "\n")

    @classmethod
    def load(cls, folder: Path) -> JobSet:
        try:
            record = json.loads((folder / JOBS_FILE).read_text())
            jobs = tuple(Job(tuple(j["samples"]), tuple(j["part"]), tuple(j["command"])) for j in record["jobs"])
            kind = KINDS[record.get("kind", "run")]  # folders written before skim jobs are of runs
            return cls(folder.resolve(), SCHEDULERS[record["backend"]], Path(record["output"]), jobs, kind)
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise InputError(
                f"{folder} is not a job folder ({JOBS_FILE}: {err})",
                hint="give the folder `run-analysis submit CONFIG --backend slurm` wrote (its --jobs-dir)",
            ) from None


def _jobs(
    config: LoadedConfig,
    files: dict[str, list[str]],
    per: str,
    files_per_job: int,
    output: Path,
    systematics: str,
    progress: Path | None,
    kind: JobKind,
) -> tuple[Job, ...]:
    """The jobs over `files` (each selected sample's files); with a `progress` folder each job keeps its
    events read in `progress/job_K.json` as it runs."""
    groups: dict[str | None, list[str]] = {}
    for name in files:
        key = name if per == "sample" else config.spec.samples[name].era
        groups.setdefault(key, []).append(name)
    base = [_run_analysis(), *kind.subcommand, str(config.path), "-o", str(output), "--systematics", systematics]
    jobs: list[Job] = []
    for key, members in groups.items():
        most_files = max(len(files[name]) for name in members)
        n = max(1, math.ceil(most_files / files_per_job))
        which = ["--samples", *members] if key is None or per == "sample" else ["--eras", key, "--samples", *members]
        for i in range(1, n + 1):
            command = (*base, *which, "--part", f"{i}/{n}", "-j", str(config.spec.batch.threads))
            if progress is not None and kind.reports_progress:
                command = (*command, "--progress-file", str(progress_file(progress.parent, len(jobs))))
            jobs.append(Job(tuple(members), (i, n), command))
    return tuple(jobs)


def _run_analysis() -> str:
    """The `run-analysis` of this installation (the jobs use the same environment)."""
    beside = Path(sys.executable).parent / "run-analysis"
    return str(beside) if beside.exists() else shutil.which("run-analysis") or "run-analysis"


def write_jobs(
    config: LoadedConfig,
    selection: RunSelection,
    backend: str,
    folder: Path,
    output: Path,
    per: str = "sample",
    files_per_job: int | None = None,
    kind: JobKind = KINDS["run"],
) -> JobSet:
    kind.check(config, per)
    batch = config.spec.batch
    output = output.resolve()
    files = {name: resolve_files(config, name) for name in select_samples(config, selection)}
    # the events read so far, per job, where the nodes share the job folder's file system
    progress = progress_file(folder.resolve(), 0).parent if batch.shared_filesystem else None
    jobs = JobSet(
        folder.resolve(),
        SCHEDULERS[backend],
        output,
        _jobs(config, files, per, files_per_job or batch.files_per_job, output, selection.systematics, progress, kind),
        kind,
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "logs").mkdir(exist_ok=True)
    if progress is not None:
        progress.mkdir(exist_ok=True)
        for old in progress.glob("job_*.json"):  # of an earlier job set here
            old.unlink()
    (folder / "jobs.txt").write_text("".join(shlex.join(c) + "\n" for c in jobs.commands))
    jobs.save()
    (folder / SUBMITTED_FILE).unlink(missing_ok=True)  # ids of an earlier job set here are not of these jobs
    script = folder / "run_job.sh"
    script.write_text(
        "#!/usr/bin/env bash\n"
        "# Runs line K (0-based) of jobs.txt: one sample/era and file chunk of the analysis.\n"
        "# A second argument, a folder, is where it writes instead (a batch job's scratch folder, sent back).\n"
        "set -euo pipefail\n"
        'output=${2:+$(realpath "$2")}\n'
        f"cd {shlex.quote(str(Path.cwd()))}\n"
        f'line=$(sed -n "$(( $1 + 1 ))p" {shlex.quote(str((folder / "jobs.txt").resolve()))})\n'
        """eval "$line" '${output:+-o "$output"}'\n"""  # the last -o given is the one taken
    )
    script.chmod(0o755)
    if not batch.shared_filesystem:
        output.mkdir(parents=True, exist_ok=True)  # the scheduler copies the part files into it
    outputs = tuple(tuple(path.name for path in kind.outputs(job, output)) for job in jobs.jobs)
    remote = any(kind_of(path).remote for paths in files.values() for path in paths)
    array = JobArray(jobs.folder, script.resolve(), batch, config.spec.analysis, output, outputs, remote)
    jobs.submit_file.write_text(jobs.scheduler.submit_file_text(array))
    return jobs


def _submissions(jobs: JobSet) -> list[dict[str, Any]]:
    path = jobs.folder / SUBMITTED_FILE
    return json.loads(path.read_text()) if path.exists() else []


def submit_jobs(jobs: JobSet, which: list[int] | None = None) -> str:
    """Queue the jobs `which` (default all) and record the scheduler's id in submitted.json; returns the id."""
    which = list(range(len(jobs.jobs))) if which is None else which
    submission = jobs.scheduler.submit(jobs.submit_file, which)
    record = [*_submissions(jobs), {"id": submission, "jobs": which, "time": time.strftime("%Y-%m-%dT%H:%M:%S")}]
    path = jobs.folder / SUBMITTED_FILE
    partial = path.with_name(f".{SUBMITTED_FILE}.partial")
    partial.write_text(json.dumps(record, indent=1) + "\n")
    partial.replace(path)  # whole or not at all: it is the only record of which ids are these jobs'
    return submission


def progress_file(folder: Path, job: int) -> Path:
    """Where job `job` of the job folder `folder` keeps its progress (`run-analysis --progress-file`)."""
    return folder / "progress" / f"job_{job}.json"


def job_progress(folder: Path, job: int) -> tuple[int, int] | None:
    """(events read, events to read) of a job's latest run, or None where it has not reported."""
    try:
        record = json.loads(progress_file(folder, job).read_text())
        return int(record["events"]), int(record["total"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


@dataclass(frozen=True)
class JobStatus:
    job: int
    state: JobState
    task_id: str  # the scheduler's id of the job's latest submission ("" if never submitted)
    detail: str = ""
    progress: tuple[int, int] | None = None  # events read and to read, from the job's progress file


def job_states(jobs: JobSet) -> list[JobStatus]:
    """Each job's state: done from its outputs, else queued, running or held from the scheduler's queue, else
    failed (it left the queue without them). The scheduler is asked about the jobs not done only."""
    latest: dict[int, str] = {}
    for submission in _submissions(jobs):  # in order: a job's latest submission is the one that counts
        latest |= jobs.scheduler.task_ids(submission["id"], submission["jobs"])
    complete = [jobs.is_complete(k) for k in range(len(jobs.jobs))]
    asked = {task for k, task in latest.items() if not complete[k]}
    reported = jobs.scheduler.task_states(asked) if asked else {}
    states = []
    for k in range(len(jobs.jobs)):
        task = latest.get(k, "")
        progress = job_progress(jobs.folder, k)
        if complete[k]:
            states.append(JobStatus(k, JobState.DONE, task, progress=progress))
        elif not task:
            states.append(JobStatus(k, JobState.NOT_SUBMITTED, task))
        elif reported[task].state is JobState.FAILED:
            detail = f"{reported[task].detail}; no output; log {jobs.folder}/logs/job_{k}.err"
            states.append(JobStatus(k, JobState.FAILED, task, detail))
        else:
            states.append(JobStatus(k, reported[task].state, task, reported[task].detail, progress))
    return states


@dataclass(frozen=True)
class Resubmission:
    jobs: list[int]  # the failed and held jobs, queued again
    submission: str  # the scheduler's id of their new submission
    removed: list[str]  # the held tasks taken out of the queue


def resubmit(folder: Path) -> Resubmission | None:
    """Queue again the jobs of `folder` that failed (or were lost) or are held, and take the held ones out of the
    queue: a hold (memory or time exceeded, an expired proxy, a failed transfer) usually recurs when the job is
    just released, while a new submission takes the submit file as edited since and the proxy as renewed.
    Returns what was done (None: no job to queue again)."""
    jobs = JobSet.load(folder)
    again = [s for s in job_states(jobs) if s.state in (JobState.FAILED, JobState.HELD)]
    if not again:
        return None
    submission = submit_jobs(jobs, [s.job for s in again])
    held = [s.task_id for s in again if s.state is JobState.HELD]
    if held:  # after the new submission is recorded: a failure here leaves a job held, never lost
        try:
            jobs.scheduler.remove(held)
        except FrameworkError as err:
            raise ExecutionError(
                f"job(s) {', '.join(str(s.job) for s in again)} were queued again as {submission} (recorded in "
                f"{folder / SUBMITTED_FILE}), but their held jobs {', '.join(held)} were not removed: {err.message}",
                hint=f"remove them with: {jobs.scheduler.remove_tool} {' '.join(held)}",
            ) from None
    return Resubmission([s.job for s in again], submission, held)
