"""Dask workers as batch jobs (dask-jobqueue): Slurm, HTCondor, LSF or PBS, scaled between a minimum
and a maximum of workers as the tasks queue up.

Every job runs `cores` single-threaded worker processes (the framework's tasks run one thread each)
with this process's Python (`sys.executable`) and its PYTHONPATH, cache and compile settings, so the
workers import the same framework and read the same compiled steps. The scheduler runs here and
listens on `host` (or `interface`), which the jobs' nodes must reach.
"""

from __future__ import annotations

import importlib
import os
import shlex
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from framework.errors import ExecutionError, FrameworkError

if TYPE_CHECKING:
    from framework.config.schema.batch import BatchSpec

# what a worker job must see of this process's environment (sbatch passes it all, condor_submit nothing)
WORKER_ENVIRONMENT = ("PYTHONPATH", "RDF_ANALYSIS_CACHE", "RDF_ANALYSIS_COMPILE")
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _hours_minutes_seconds(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _hours_minutes(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{(seconds + 59) // 60 % 60:02d}"  # LSF's -W has no seconds: rounded up


def _submit_file_settings(directives: tuple[str, ...]) -> dict[str, str]:
    """HTCondor's extra directives are settings of the submit file: 'KEY = VALUE' lines."""
    settings = {}
    for line in directives:
        key, equals, value = line.partition("=")
        if not equals or not key.strip():
            raise FrameworkError(
                f"HTCondor directive {line!r} is not KEY = VALUE", hint="e.g. '+ProjectName = \"physics\"'"
            )
        settings[key.strip()] = value.strip()
    return settings


@dataclass(frozen=True)
class Kind:
    """One batch system: its dask-jobqueue cluster class, submit command, and what it names its options."""

    cluster_class: str
    submit_command: str
    walltime: Callable[[int], str] | None = None  # seconds -> the job file's wall time; None: takes none (HTCondor)
    directives: Callable[[tuple[str, ...]], Any] = list  # the extra directives as the cluster class takes them
    uses_disk: bool = False


KINDS = {
    "slurm": Kind("SLURMCluster", "sbatch", walltime=_hours_minutes_seconds),
    "htcondor": Kind("HTCondorCluster", "condor_submit", directives=_submit_file_settings, uses_disk=True),
    "lsf": Kind("LSFCluster", "bsub", walltime=_hours_minutes),
    "pbs": Kind("PBSCluster", "qsub", walltime=_hours_minutes_seconds),
}


@dataclass(frozen=True)
class ClusterOptions:
    """The worker jobs of one run: `kind` (a key of KINDS), resources per job, and the scaling range."""

    kind: str
    cores: int = 1  # single-threaded worker processes per job
    memory: str = "2GB"
    walltime: str = "2h"  # as the `batch:` block writes it: 90m, 2h
    disk: str = "4GB"
    directives: tuple[str, ...] = ()
    min_workers: int = 1
    max_workers: int = 4
    queue: str | None = None
    host: str | None = None  # where the scheduler listens; None: the address of `interface` or of this host
    interface: str | None = None  # the network interface of the scheduler and the workers, e.g. ib0
    log_directory: Path | None = None  # the jobs' stdout and stderr (default: the system's, e.g. ./slurm-N.out)
    start_timeout: float = 120.0  # seconds for the minimum of workers to connect
    environment: dict[str, str] = field(default_factory=dict)  # exported in the job script before the worker

    @classmethod
    def from_batch(cls, kind: str, batch: BatchSpec, **flags: Any) -> ClusterOptions:
        """The config's `batch:` block, overridden by the flags given (those not None)."""
        from_config = {
            "cores": batch.threads,
            "memory": batch.memory,
            "walltime": batch.time,
            "disk": batch.disk,
            "directives": tuple(batch.directives),
            "min_workers": batch.min_workers,
            "max_workers": batch.max_workers,
        }
        chosen = {**from_config, **{k: v for k, v in flags.items() if v is not None}}
        if chosen["min_workers"] > chosen["max_workers"]:  # a flag moved one past the other
            raise FrameworkError(
                f"--min-workers {chosen['min_workers']} is above --max-workers {chosen['max_workers']}",
                hint="give a minimum no larger than the maximum (flags override the config's batch: block)",
            )
        environment = {name: os.environ[name] for name in WORKER_ENVIRONMENT if name in os.environ}
        return cls(kind, environment=environment, **chosen)

    def cluster_arguments(self) -> dict[str, Any]:
        """The keyword arguments of the dask-jobqueue cluster class."""
        kind = KINDS[self.kind]
        arguments: dict[str, Any] = {
            "cores": self.cores,
            "processes": self.cores,  # one thread per worker process
            "memory": self.memory,
            "python": sys.executable,
            "job_extra_directives": kind.directives(self.directives),
            "job_script_prologue": [f"export {k}={shlex.quote(v)}" for k, v in sorted(self.environment.items())],
            # a free dashboard port: the default 8787 is taken as soon as two runs share a machine
            "scheduler_options": {"dashboard_address": ":0", **({"host": self.host} if self.host else {})},
        }
        if kind.walltime is not None:
            arguments["walltime"] = kind.walltime(int(self.walltime[:-1]) * SECONDS[self.walltime[-1]])
        if kind.uses_disk:
            arguments["disk"] = self.disk
        optional = {"queue": self.queue, "interface": self.interface, "log_directory": self.log_directory}
        arguments.update({k: str(v) if isinstance(v, Path) else v for k, v in optional.items() if v is not None})
        return arguments

    def check(self) -> Any:
        """The dask_jobqueue module, once it and the submit command are found (clear errors if not)."""
        kind = KINDS[self.kind]
        try:
            jobqueue = importlib.import_module("dask_jobqueue")
        except ImportError as err:
            raise FrameworkError(
                f"--cluster {self.kind} needs dask-jobqueue, which is not installed",
                hint="pip install 'rdf-analysis[dask]' (or pip install dask-jobqueue)",
            ) from err
        if shutil.which(kind.submit_command) is None:
            raise FrameworkError(
                f"--cluster {self.kind} submits worker jobs with {kind.submit_command}, which is not on PATH",
                hint=f"run on a node where {self.kind} jobs can be submitted, or add its commands to PATH",
            )
        return jobqueue

    def make_cluster(self) -> Any:
        """The job-queue cluster, scaling adaptively between the minimum and maximum of workers."""
        jobqueue = self.check()
        if self.log_directory is not None:
            self.log_directory.mkdir(parents=True, exist_ok=True)
        cluster = getattr(jobqueue, KINDS[self.kind].cluster_class)(**self.cluster_arguments())
        cluster.adapt(minimum=self.min_workers, maximum=self.max_workers)
        return cluster

    def wait_for_workers(self, client: Any) -> None:
        """Until the minimum of workers is connected (the run starts as it would go on), at most `start_timeout` s."""
        try:
            client.wait_for_workers(self.min_workers, timeout=self.start_timeout)
        except TimeoutError as err:
            logs = self.log_directory or "the job output files"
            raise ExecutionError(
                f"not {self.min_workers} {self.kind} worker(s) connected within {self.start_timeout:.0f} s "
                f"to the scheduler at {client.scheduler.address}",
                hint=f"check that the worker jobs run (the {self.kind} queue), their logs ({logs}), and that "
                "the nodes reach that address (--scheduler-host, --interface)",
            ) from err
