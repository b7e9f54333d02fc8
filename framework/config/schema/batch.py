"""Resources of batch jobs."""

from __future__ import annotations

from pydantic import Field, StrictInt, model_validator

from framework.config.schema.base import Strict

SIZE = r"^\d+(\.\d+)?\s*[KMGT]B$"


class BatchSpec(Strict):
    """Resources requested by each batch job (`run-analysis submit`, and the Dask workers of `--cluster`)."""

    memory: str = Field("2GB", pattern=SIZE, description="Memory per job, e.g. 2GB.")
    time: str = Field("2h", pattern=r"^\d+[smhd]$", description="Wall time per job, e.g. 90m, 2h.")
    threads: StrictInt = Field(
        1, ge=1, description="Threads (cores) per job; with --cluster, single-threaded Dask workers per job."
    )
    files_per_job: StrictInt = Field(10, ge=1, description="Input files per job.")
    disk: str = Field("4GB", pattern=SIZE, description="Disk per job (HTCondor with --cluster), e.g. 4GB.")
    min_workers: StrictInt = Field(1, ge=1, description="Dask workers kept running with --cluster.")
    max_workers: StrictInt = Field(4, ge=1, description="Dask workers at most with --cluster (adaptive scaling).")
    directives: list[str] = Field(
        default_factory=list,
        description="Extra job-file directives with --cluster, e.g. ['--qos=short'] (Slurm) or ['+MaxRuntime = 3600'].",
    )

    @model_validator(mode="after")
    def _workers_ordered(self) -> BatchSpec:
        if self.min_workers > self.max_workers:
            raise ValueError(f"min_workers ({self.min_workers}) is above max_workers ({self.max_workers})")
        return self
