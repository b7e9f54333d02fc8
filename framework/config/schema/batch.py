"""Resources of batch jobs."""

from __future__ import annotations

from pydantic import Field, StrictInt

from framework.config.schema.base import Strict


class BatchSpec(Strict):
    """Resources requested by each batch job (`run-analysis submit`)."""

    memory: str = Field("2GB", pattern=r"^\d+(\.\d+)?\s*[KMGT]B$", description="Memory per job, e.g. 2GB.")
    time: str = Field("2h", pattern=r"^\d+[smhd]$", description="Wall time per job, e.g. 90m, 2h.")
    threads: StrictInt = Field(1, ge=1, description="Threads (cores) per job.")
    files_per_job: StrictInt = Field(10, ge=1, description="Input files per job.")
