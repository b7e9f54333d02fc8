"""Resources of batch jobs."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictInt, model_validator

from framework.config.schema.base import Strict

SIZE = r"^\d+(\.\d+)?\s*[KMGT]B$"
# a line of the job file as written: one line, so it cannot add others
JobFileLine = Annotated[str, Field(pattern=r"^[^\r\n]+$")]


class BatchSpec(Strict):
    """Resources requested by each batch job (`run-analysis submit`, and the Dask workers of `--cluster`)."""

    memory: str = Field("2GB", pattern=SIZE, description="Memory per job, e.g. 2GB.")
    time: str = Field(
        "2h",
        pattern=r"^\d+[smhd]$",
        description="Wall time per job, e.g. 90m, 2h (Slurm; HTCondor sites limit it by their own attributes, "
        "e.g. directives ['+MaxRuntime = 7200']).",
    )
    threads: StrictInt = Field(
        1, ge=1, description="Threads (cores) per job; with --cluster, single-threaded Dask workers per job."
    )
    files_per_job: StrictInt = Field(10, ge=1, description="Input files per job.")
    disk: str = Field("4GB", pattern=SIZE, description="Disk per job (HTCondor), e.g. 4GB.")
    min_workers: StrictInt = Field(1, ge=1, description="Dask workers kept running with --cluster.")
    max_workers: StrictInt = Field(4, ge=1, description="Dask workers at most with --cluster (adaptive scaling).")
    directives: list[JobFileLine] = Field(
        default_factory=list,
        description="Extra job-file directives, written as given: e.g. ['--qos=short'] (Slurm, each after '#SBATCH') "
        "or ['+JobFlavour = \"longlunch\"'] (HTCondor submit-file lines).",
    )
    max_retries: StrictInt = Field(3, ge=0, description="Times HTCondor runs a failed job again.")
    container: str | None = Field(
        None,
        pattern=r'^[^\s"]+$',
        description="Container image the HTCondor jobs run in (+SingularityImage), e.g. "
        "/cvmfs/unpacked.cern.ch/registry.hub.docker.com/library/almalinux:9.",
    )
    shared_filesystem: bool = Field(
        True,
        description="The job nodes write to the output folder directly; false: HTCondor jobs write into their "
        "scratch folder and HTCondor transfers the part files back (the job folder, config and software "
        "must still be readable on the nodes).",
    )

    @model_validator(mode="after")
    def _workers_ordered(self) -> BatchSpec:
        if self.min_workers > self.max_workers:
            raise ValueError(f"min_workers ({self.min_workers}) is above max_workers ({self.max_workers})")
        return self
