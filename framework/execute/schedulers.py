"""The batch schedulers `run-analysis submit` writes for: one class each (submit file, submit command, job states).

A job folder's jobs are numbered 0..N-1 (`run_job.sh K` runs job K); each scheduler runs them as one array and
names its task of job K by the id its submit command printed and K.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from framework.config.schema.batch import BatchSpec
from framework.errors import ExecutionError, FrameworkError

COMMAND_TIMEOUT = 120  # seconds a scheduler command may take (a busy controller is slow, a hung one must not hang us)


class JobState(Enum):
    NOT_SUBMITTED = "not submitted"
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


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
    name: str
    submit_tool: str
    submit_file_name: str

    @abstractmethod
    def submit_file_text(self, jobs: JobArray) -> str:
        """The submit file of `jobs`."""

    @abstractmethod
    def submit_command(self, submit_file: Path, jobs: Sequence[int]) -> list[str]:
        """The command that queues `jobs` of `submit_file` and prints the scheduler's id of them on stdout."""

    def submit(self, submit_file: Path, jobs: Sequence[int]) -> str:
        """Queue `jobs`; returns the scheduler's id of the array."""
        stdout = self.run(self.submit_command(submit_file, jobs), f"the job files are ready in {submit_file.parent}")
        return self.array_id(stdout.strip())

    @abstractmethod
    def array_id(self, submit_output: str) -> str:
        """The array's id in what the submit command printed."""

    @abstractmethod
    def task_id(self, array_id: str, job: int) -> str:
        """The scheduler's id of job `job` of the array `array_id`."""

    @abstractmethod
    def live_states(self) -> dict[str, JobState]:
        """{task id: QUEUED or RUNNING} of every job the scheduler still has in its queue."""

    @abstractmethod
    def ended(self, task_id: str) -> str:
        """How the scheduler says a job that left the queue ended (for a failed job's line)."""

    def run(self, command: list[str], state: str = "nothing was changed") -> str:
        """`command`'s stdout; `state`: what the user has when the command cannot run."""
        tool = command[0]
        if shutil.which(tool) is None:
            raise FrameworkError(
                f"'{tool}' is not on PATH: this machine is not a {self.name} submit node",
                hint=f"{state}; run the command on a {self.name} login node (or put {tool} on PATH)",
            )
        try:
            proc = subprocess.run(command, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            raise ExecutionError(f"{command[0]} did not answer within {COMMAND_TIMEOUT} s") from None
        if proc.returncode != 0:
            raise ExecutionError(f"{' '.join(command)} failed: {proc.stderr.strip() or proc.stdout.strip()}")
        return proc.stdout


class Slurm(Scheduler):
    name = "slurm"
    submit_tool = "sbatch"
    submit_file_name = "submit.sbatch"

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

    def submit_command(self, submit_file: Path, jobs: Sequence[int]) -> list[str]:
        # --array on the command line wins over the file's: a resubmission queues only the jobs given
        return ["sbatch", "--parsable", f"--array={','.join(map(str, jobs))}", str(submit_file)]

    def array_id(self, submit_output: str) -> str:
        return submit_output.split(";")[0]  # --parsable: "ID" or "ID;CLUSTER"

    def task_id(self, array_id: str, job: int) -> str:
        return f"{array_id}_{job}"

    def live_states(self) -> dict[str, JobState]:
        # -r: one line per array task; no job ids given, since squeue refuses ids it has forgotten
        lines = self.run(["squeue", "--noheader", "--array", "--all", "--format=%i %T"]).splitlines()
        running = ("RUNNING", "COMPLETING", "CONFIGURING", "STAGE_OUT", "SIGNALING", "RESIZING")
        return {
            task: JobState.RUNNING if state in running else JobState.QUEUED
            for task, state in (line.split() for line in lines if line.strip())
        }

    def ended(self, task_id: str) -> str:
        try:
            record = self.run(["scontrol", "--oneliner", "show", "job", task_id])
        except ExecutionError:
            return "no longer known to Slurm"
        fields = dict(item.split("=", 1) for item in record.split() if "=" in item)
        return f"{fields.get('JobState', '?')}, exit code {fields.get('ExitCode', '?')}"


class HTCondor(Scheduler):
    name = "htcondor"
    submit_tool = "condor_submit"
    submit_file_name = "submit.sub"

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

    def submit_command(self, submit_file: Path, jobs: Sequence[int]) -> list[str]:
        if list(jobs) != list(range(len(jobs))):
            raise self._not_here("resubmitting some of the jobs")
        return ["condor_submit", "-terse", str(submit_file)]

    def array_id(self, submit_output: str) -> str:
        return submit_output.split(".")[0]  # -terse: "CLUSTER.0 - CLUSTER.N"

    def task_id(self, array_id: str, job: int) -> str:
        return f"{array_id}.{job}"

    def live_states(self) -> dict[str, JobState]:
        raise self._not_here("the status of HTCondor jobs")

    def ended(self, task_id: str) -> str:
        raise self._not_here("the status of HTCondor jobs")

    def _not_here(self, what: str) -> FrameworkError:
        return FrameworkError(
            f"{what} is not implemented for HTCondor (only for Slurm)", hint="use condor_q and condor_submit"
        )


SCHEDULERS: dict[str, Scheduler] = {s.name: s for s in (HTCondor(), Slurm())}
