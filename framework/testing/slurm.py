"""A one-node Slurm cluster for tests and benchmarks: its own munged, slurmctld and slurmd in a folder.

The munge daemon is a private one (its own key and socket, named in slurm.conf's AuthInfo), so a munged the
machine may already run is neither needed nor touched. Every daemon runs in the foreground as a child of the
process that starts it and is stopped by its pid; every wait is bounded. Slurm binds its ports on all interfaces (not
configurable in 22.05), but the node and the controller are addressed through 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

DAEMONS = ("/usr/sbin/munged", "/usr/sbin/slurmctld", "/usr/sbin/slurmd")
CLIENTS = ("sbatch", "squeue", "scontrol", "scancel", "sinfo")
START_TIMEOUT = 30.0


@dataclass(frozen=True)
class SlurmCluster:
    folder: Path
    conf: Path

    @property
    def env(self) -> dict[str, str]:
        """The environment of a client of this cluster (the jobs inherit it through sbatch)."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *command: str, timeout: float = 30.0) -> str:
        proc = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=timeout, check=True)
        return proc.stdout


def missing() -> str | None:
    """Why a cluster cannot be started here (None: it can)."""
    absent = [p for p in DAEMONS if not os.access(p, os.X_OK)] + [c for c in CLIENTS if shutil.which(c) is None]
    if absent:
        return f"Slurm or munge is not installed (missing {', '.join(absent)}; apt-get install slurm-wlm munge)"
    if os.geteuid() != 0:
        return "the test Slurm cluster runs its daemons as root"
    return None


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _slurm_conf(folder: Path, munge_socket: Path) -> str:
    host = socket.gethostname()
    ctld_port, slurmd_port = _free_ports(2)
    return f"""\
ClusterName=tests
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
AuthInfo=socket={munge_socket}
CredType=cred/munge
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmUser=root
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
MinJobAge=3600
NodeName={host} NodeAddr=127.0.0.1 CPUs=2 RealMemory=8000 State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def _wait_until_idle(cluster: SlurmCluster, daemons: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    state = ""
    while time.monotonic() < deadline:
        if any(d.poll() is not None for d in daemons):
            break
        proc = subprocess.run(
            ["sinfo", "-h", "-o", "%t"], env=cluster.env, capture_output=True, text=True, timeout=10, check=False
        )
        state = proc.stdout.strip() or proc.stderr.strip()
        if state == "idle":
            return
        time.sleep(0.25)
    logs = "\n".join(f"{p.name}: {p.read_text()[-1500:]}" for p in cluster.folder.glob("*.log"))
    raise RuntimeError(f"the test Slurm node is not idle after {START_TIMEOUT:.0f} s (sinfo: {state!r})\n{logs}")


def _stop(daemons: list[subprocess.Popen[bytes]]) -> None:
    for daemon in reversed(daemons):  # slurmd, slurmctld, then munged (they talk to it while stopping)
        daemon.terminate()
        try:
            daemon.wait(timeout=15)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait(timeout=5)


@contextmanager
def running_slurm(folder: Path) -> Iterator[SlurmCluster]:
    """A running one-node cluster with its files in `folder` (empty), stopped on leaving."""
    folder.chmod(0o755)  # munged wants its socket's folder searchable by everyone
    for sub in ("state", "spool"):
        (folder / sub).mkdir()
    key = folder / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    munge_socket = folder / "munge.socket"
    cluster = SlurmCluster(folder, folder / "slurm.conf")
    cluster.conf.write_text(_slurm_conf(folder, munge_socket))
    munged = [
        "/usr/sbin/munged",
        "--foreground",
        "--force",  # running as root
        f"--key-file={key}",
        f"--socket={munge_socket}",
        f"--pid-file={folder}/munged.pid",
        f"--log-file={folder}/munged.log",
        f"--seed-file={folder}/munged.seed",
    ]
    daemons: list[subprocess.Popen[bytes]] = []
    try:
        for command in (munged, ["/usr/sbin/slurmctld", "-D", "-i"], ["/usr/sbin/slurmd", "-D"]):
            with (folder / f"{Path(command[0]).name}.out").open("wb") as log:
                daemons.append(subprocess.Popen(command, env=cluster.env, stdout=log, stderr=subprocess.STDOUT))
            if command is munged:
                _wait_for(munge_socket)
        _wait_until_idle(cluster, daemons)
        yield cluster
    finally:
        _stop(daemons)


def _wait_for(path: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} did not appear within {timeout:.0f} s")
        time.sleep(0.05)
