"""The batch schedulers `run-analysis submit` writes for: one class each (submit file, submitting some or all of
its jobs, the state of each submitted job, taking jobs out of the queue).

A job folder's jobs are numbered 0..N-1 (`run_job.sh K` runs job K); each submission queues some of them under
one id (a Slurm array, an HTCondor cluster), and each scheduler names a job of a submission by that id and the
job's number (Slurm) or its rank among the jobs submitted (HTCondor's ProcId).
"""

from __future__ import annotations

import itertools
import json
import math
import re
import shutil
import subprocess
from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from framework.config.schema.batch import BatchSpec
from framework.errors import ExecutionError, FrameworkError, InputError

COMMAND_TIMEOUT = 120  # seconds a scheduler command may take (a busy controller is slow, a hung one must not hang us)


class JobState(Enum):
    NOT_SUBMITTED = "not submitted"
    QUEUED = "queued"
    RUNNING = "running"
    HELD = "held"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class TaskState:
    """What the scheduler says of one submitted job: QUEUED, RUNNING or HELD while it is in the queue, FAILED
    once it has left it (the outputs say whether it is done instead), and its words for it (a hold reason, an
    exit code)."""

    state: JobState
    detail: str = ""


def _minutes(text: str) -> int:
    value, unit = int(text[:-1]), text[-1]
    return max(1, math.ceil(value * {"s": 1 / 60, "m": 1, "h": 60, "d": 1440}[unit]))


def _megabytes(text: str) -> int:
    number = float(text[:-2].strip())
    return math.ceil(number * {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024**2}[text[-2].upper()])


@dataclass(frozen=True)
class JobArray:
    """What a submit file describes: `len(outputs)` jobs, job K running `script K` and writing `outputs[K]`."""

    folder: Path
    script: Path
    batch: BatchSpec
    analysis: str
    output: Path  # the folder the part files end up in
    outputs: tuple[tuple[str, ...], ...]  # each job's part file names
    remote_inputs: bool  # some job reads files over the network (root://, https://, ...)

    @property
    def count(self) -> int:
        return len(self.outputs)


class Scheduler(ABC):
    """A batch scheduler: what `submit`, `status` and `--resubmit` ask of it, each answered by its own commands."""

    name: str
    submit_file_name: str
    client_tools: str  # the commands run here and what provides them (named when one is missing)
    controller: str  # the daemon those commands talk to (named when it does not answer)
    remove_tool: str  # the command that takes jobs out of the queue (named when removing fails)

    @abstractmethod
    def submit_file_text(self, jobs: JobArray) -> str:
        """The submit file of `jobs`."""

    @abstractmethod
    def submit(self, submit_file: Path, jobs: Sequence[int]) -> str:
        """Queue the jobs `jobs` (ascending) of `submit_file`; returns the scheduler's id of this submission."""

    @abstractmethod
    def task_ids(self, submission: str, jobs: Sequence[int]) -> dict[int, str]:
        """{job: the scheduler's id of it} for the submission `submission` of the jobs `jobs`."""

    @abstractmethod
    def task_states(self, tasks: Collection[str]) -> dict[str, TaskState]:
        """The state of each of `tasks` (ids from `task_ids`)."""

    @abstractmethod
    def remove(self, tasks: Sequence[str]) -> None:
        """Take `tasks` out of the queue."""

    def run(self, command: list[str], state: str = "nothing was changed") -> str:
        """`command`'s stdout; `state`: what the user has when the command cannot run."""
        tool = command[0]
        if shutil.which(tool) is None:
            raise FrameworkError(
                f"'{tool}' is not on PATH: this machine is not a {self.name} submit node",
                hint=f"{state}; run the command on a {self.name} login (submit) node, where {self.client_tools} "
                "are installed and configured for the site's pool",
            )
        try:
            proc = subprocess.run(command, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            raise ExecutionError(
                f"{tool} did not answer within {COMMAND_TIMEOUT} s: {self.controller} is unreachable or overloaded",
                hint=f"{state}; try again later, or ask the site whether {self.controller} is up",
            ) from None
        if proc.returncode != 0:
            raise ExecutionError(
                f"{' '.join(command)} failed: {proc.stderr.strip() or proc.stdout.strip()}",
                hint=f"{state}; where {self.controller} could not be reached, try again later or ask the site",
            )
        return proc.stdout


class Slurm(Scheduler):
    name = "slurm"
    submit_file_name = "submit.sbatch"
    client_tools = "Slurm's client commands (sbatch, squeue, scontrol, scancel: the slurm-client package)"
    controller = "slurmctld"
    remove_tool = "scancel"

    def submit_file_text(self, jobs: JobArray) -> str:
        batch, folder = jobs.batch, jobs.folder
        return (
            "#!/usr/bin/env bash\n"
            f"#SBATCH --job-name={jobs.analysis}\n"
            f"#SBATCH --array=0-{jobs.count - 1}\n"
            f"#SBATCH --mem={_megabytes(batch.memory)}M\n"
            f"#SBATCH --time={_minutes(batch.time)}\n"
            f"#SBATCH --cpus-per-task={batch.threads}\n"
            "#SBATCH --requeue\n"  # a job whose node fails runs again (its output is written atomically)
            f"#SBATCH --output={folder}/logs/job_%a.out\n"
            f"#SBATCH --error={folder}/logs/job_%a.err\n"
            + "".join(f"#SBATCH {directive}\n" for directive in batch.directives)
            + f'{jobs.script} "$SLURM_ARRAY_TASK_ID"\n'
        )

    def submit(self, submit_file: Path, jobs: Sequence[int]) -> str:
        # --array on the command line wins over the file's: a resubmission queues only the jobs given
        command = ["sbatch", "--parsable", f"--array={','.join(map(str, jobs))}", str(submit_file)]
        stdout = self.run(command, f"the job files are ready in {submit_file.parent}")
        return stdout.strip().split(";")[0]  # --parsable: "ID" or "ID;CLUSTER"

    def task_ids(self, submission: str, jobs: Sequence[int]) -> dict[int, str]:
        return {job: f"{submission}_{job}" for job in jobs}  # the array's task K is job K

    def task_states(self, tasks: Collection[str]) -> dict[str, TaskState]:
        # --array: one line per array task; no job ids given, since squeue refuses ids it has forgotten
        lines = self.run(["squeue", "--noheader", "--array", "--all", "--format=%i %T %r"]).splitlines()
        running = ("RUNNING", "COMPLETING", "CONFIGURING", "STAGE_OUT", "SIGNALING", "RESIZING")
        in_queue: dict[str, TaskState] = {}
        for task, state, reason in (line.split(maxsplit=2) for line in lines if line.strip()):
            if "held" in reason.lower():  # JobHeldUser, JobHeldAdmin, "job requeued in held state" (PENDING all)
                in_queue[task] = TaskState(JobState.HELD, reason)
            else:
                in_queue[task] = TaskState(JobState.RUNNING if state in running else JobState.QUEUED)
        return {task: in_queue.get(task) or TaskState(JobState.FAILED, self._ended(task)) for task in tasks}

    def _ended(self, task: str) -> str:
        try:
            record = self.run(["scontrol", "--oneliner", "show", "job", task])
        except ExecutionError:
            return "no longer known to Slurm"
        fields = dict(item.split("=", 1) for item in record.split() if "=" in item)
        return f"{fields.get('JobState', '?')}, exit code {fields.get('ExitCode', '?')}"

    def remove(self, tasks: Sequence[str]) -> None:
        self.run(["scancel", *tasks])


class HTCondor(Scheduler):
    """Job K of the first submission is ProcId K of its cluster (the submit file's queue statements number the jobs
    in order); a resubmission is a new cluster of the jobs given, ProcId I running the I-th of them, from a copy of
    the submit file that queues them with `queue job in (3 4 5)` (condor_submit man page: the items of `in` are
    separated by commas and/or spaces, each item queues one job with the variable set to it).

    The states come from `condor_q -json` (jobs in the queue) and `condor_history -json` (jobs that left it). Their
    man pages (HTCondor manual; Ubuntu's 8.6 and 23.4 packages alike): `-json` prints the job ClassAds as a JSON
    array, `-attributes A,B` only those attributes (one a job lacks is left out); neither prints anything when no
    job matches (DIRAC's HTCondor backend reads an empty answer as no jobs). JobStatus: the manual's table of job
    ClassAd attributes."""

    name = "htcondor"
    submit_file_name = "submit.sub"
    client_tools = "HTCondor's client tools (condor_submit, condor_q, condor_history, condor_rm: package condor)"
    controller = "the condor_schedd"
    remove_tool = "condor_rm"

    def submit_file_text(self, jobs: JobArray) -> str:
        batch, folder = jobs.batch, jobs.folder
        lines = [
            f"executable = {jobs.script}",
            # without a shared file system the job writes into its scratch folder (where it starts)
            "arguments = $(ProcId)" + ("" if batch.shared_filesystem else " ."),
            f"output = {folder}/logs/job_$(ProcId).out",
            f"error = {folder}/logs/job_$(ProcId).err",
            f"log = {folder}/logs/condor.log",
            f"request_cpus = {batch.threads}",
            f"request_memory = {_megabytes(batch.memory)}",  # HTCondor's unit of memory: MB
            f"request_disk = {_megabytes(batch.disk) * 1024}",  # HTCondor's unit of disk: KiB
            f"max_retries = {batch.max_retries}",
            "getenv = True",
        ]
        if jobs.remote_inputs:
            lines.append("use_x509userproxy = true")  # the grid proxy the storage asks for travels with the job
        if batch.container:
            # the attribute sites' SINGULARITY_IMAGE_EXPR reads (CERN, OSG) in the vanilla universe, also with
            # HTCondor before 9; `container_image` would need a startd offering the container universe
            lines.append(f'+SingularityImage = "{batch.container}"')
        lines += batch.directives  # after ours: a site's setting of the same command wins
        if batch.shared_filesystem:
            return "".join(f"{line}\n" for line in [*lines, f"queue {jobs.count}"])
        lines += ["should_transfer_files = YES", "when_to_transfer_output = ON_EXIT"]
        for names in jobs.outputs:  # one queue statement per job: each job brings back its own part files
            remaps = "; ".join(f"{name} = {jobs.output / name}" for name in names)
            lines += [f"transfer_output_files = {', '.join(names)}", f'transfer_output_remaps = "{remaps}"', "queue"]
        return "".join(f"{line}\n" for line in lines)

    def submit(self, submit_file: Path, jobs: Sequence[int]) -> str:
        lines, statements = _queue_statements(submit_file)
        queued = range(statements[-1][1].stop if statements else 0)
        if list(jobs) == list(queued):
            return self._condor_submit(submit_file)
        beyond = sorted(set(jobs) - set(queued))
        if beyond:
            raise InputError(
                f"{submit_file} queues {len(queued)} job(s): it has no job {', '.join(map(str, beyond))}",
                hint="the file was changed since `run-analysis submit` wrote it: write the job folder again",
            )
        # the same file with only `jobs` queued, each by its number: what a hand edit changed stays changed
        first_free = next(n for n in itertools.count(1) if not submit_file.with_name(f"resubmit-{n}.sub").exists())
        again = submit_file.with_name(f"resubmit-{first_free}.sub")
        again.write_text(_resubmit_text(submit_file.name, lines, statements, jobs))
        try:
            return self._condor_submit(again)
        except FrameworkError:
            again.unlink()  # nothing was queued from it
            raise

    def _condor_submit(self, submit_file: Path) -> str:
        stdout = self.run(["condor_submit", str(submit_file)], f"the job files are ready in {submit_file.parent}")
        submitted = re.search(r"(\d+) job\(s\) submitted to cluster (\d+)\.", stdout)
        if submitted is None:
            raise ExecutionError(
                f"condor_submit {submit_file} printed no 'N job(s) submitted to cluster C.' line: {stdout.strip()!r}",
                hint="look for the jobs with condor_q; remove them with condor_rm before submitting again",
            )
        return submitted.group(2)

    def task_ids(self, submission: str, jobs: Sequence[int]) -> dict[int, str]:
        return {job: f"{submission}.{proc}" for proc, job in enumerate(sorted(jobs))}

    def task_states(self, tasks: Collection[str]) -> dict[str, TaskState]:
        in_queue = self._states("condor_q", tasks)
        gone = [task for task in tasks if task not in in_queue]
        left = self._states("condor_history", gone) if gone else {}
        unknown = TaskState(JobState.FAILED, "in neither condor_q nor condor_history (the history may be rotated)")
        return {task: in_queue.get(task) or left.get(task) or unknown for task in tasks}

    def _states(self, tool: str, tasks: Collection[str]) -> dict[str, TaskState]:
        """{task: state} of the jobs `tool` (condor_q or condor_history) knows among `tasks`, one query a cluster."""
        states: dict[str, TaskState] = {}
        for cluster in sorted({task.split(".")[0] for task in tasks}, key=int):
            command = [tool, cluster, "-json", "-attributes", CONDOR_ATTRIBUTES]
            text = self.run(command).strip()
            try:
                ads = json.loads(text) if text else []  # nothing printed: no job matched
                states |= {f"{ad['ClusterId']}.{ad['ProcId']}": _condor_state(ad) for ad in ads}
            except (ValueError, KeyError, TypeError) as err:
                raise ExecutionError(
                    f"{' '.join(command)} printed no JSON array of job ClassAds ({err}): {text[:300]!r}"
                ) from None
        return states

    def remove(self, tasks: Sequence[str]) -> None:
        self.run(["condor_rm", *tasks])


CONDOR_ATTRIBUTES = "ClusterId,ProcId,JobStatus,HoldReason,ExitCode,ExitBySignal,ExitSignal,RemoveReason"
# JobStatus: 1 idle, 2 running, 3 removed, 4 completed, 5 held, 6 transferring output, 7 suspended; a removed or
# completed job may be in condor_q a moment before it moves to the history. The states of a job still to end:
CONDOR_LIVE_STATES = {
    1: TaskState(JobState.QUEUED),
    2: TaskState(JobState.RUNNING),
    6: TaskState(JobState.RUNNING, "transferring output"),
    7: TaskState(JobState.RUNNING, "suspended"),
}


def _condor_state(ad: dict[str, Any]) -> TaskState:
    status = ad["JobStatus"]
    if status in CONDOR_LIVE_STATES:
        return CONDOR_LIVE_STATES[status]
    if status == 5:
        return TaskState(JobState.HELD, ad.get("HoldReason", "no hold reason given"))
    if status == 3:
        return TaskState(JobState.FAILED, f"removed ({ad.get('RemoveReason', 'no reason given')})")
    if status == 4 and ad.get("ExitBySignal"):
        return TaskState(JobState.FAILED, f"completed, killed by signal {ad.get('ExitSignal', '?')}")
    if status == 4:
        return TaskState(JobState.FAILED, f"completed, exit code {ad.get('ExitCode', '?')}")
    return TaskState(JobState.FAILED, f"JobStatus {status}")


def _queue_statements(submit_file: Path) -> tuple[list[str], list[tuple[int, range]]]:
    """The lines of an HTCondor submit file and, for each of its queue statements, its line number (from 0) and
    the jobs it queues: ProcIds follow the statements in order, so job K is ProcId K."""
    lines = submit_file.read_text().splitlines()
    statements: list[tuple[int, range]] = []
    for number, line in enumerate(lines):
        words = line.split()
        if not words or words[0].lower() != "queue":
            continue
        if len(words) > 2 or not all(word.isdigit() for word in words[1:]):
            raise InputError(
                f"{submit_file}:{number + 1}: '{line.strip()}' is a queue statement run-analysis cannot follow",
                hint="`status` and `--resubmit` need job K to be ProcId K: queue the jobs with `queue N` or one "
                "`queue` per job, as `run-analysis submit` writes them",
            )
        first = statements[-1][1].stop if statements else 0
        statements.append((number, range(first, first + (int(words[1]) if len(words) == 2 else 1))))
    return lines, statements


def _resubmit_text(name: str, lines: list[str], statements: list[tuple[int, range]], jobs: Sequence[int]) -> str:
    """The submit file `name` (its `lines` and queue `statements`) queueing only `jobs`: each queue statement
    becomes `queue job in (...)` of its jobs among them, and every $(ProcId) is $(job), the job's number."""
    queued = dict(statements)
    wanted = set(jobs)
    text = [f"# {name} again for job(s) {' '.join(map(str, jobs))} (run-analysis submit --resubmit)"]
    for number, line in enumerate(lines):
        if number not in queued:
            text.append(re.sub(r"\$\((ProcId|Process)\)", "$(job)", line, flags=re.IGNORECASE))
            continue
        again = [job for job in queued[number] if job in wanted]
        skipped = " ".join(map(str, queued[number]))
        text.append(f"queue job in ({' '.join(map(str, again))})" if again else f"# not again (job {skipped}): {line}")
    return "".join(f"{line}\n" for line in text)


SCHEDULERS: dict[str, Scheduler] = {s.name: s for s in (HTCondor(), Slurm())}
