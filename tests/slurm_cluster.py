"""The test session's one-node Slurm cluster (framework.testing.slurm) as a fixture."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from framework.testing.slurm import SlurmCluster, missing, running_slurm


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    """A running one-node cluster; skipped with the reason when Slurm is missing, failed under CI=true."""
    reason = missing()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(reason + ": in CI Slurm must be installed")
        pytest.skip(reason)
    with running_slurm(tmp_path_factory.mktemp("slurm")) as cluster:
        yield cluster
