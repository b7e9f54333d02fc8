"""A loopback XRootD server for the tests (Debian's `xrootd`, from xrootd-server).

The served folder is mapped to a URL path that does not exist on this machine (`oss.localroot`):
ROOT opens a root:// URL whose path exists locally from the local disk when no server answers, so
a server serving files from their own paths would let tests pass without it. The server log's
`ofs_open` lines show which files were really opened through it.

`xrootd` refuses to run as root: as root it is started with `-R nobody` (it changes user itself),
and what it reads or writes lives in a folder of its own outside pytest's private (0700) folders.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

URL_ROOT = "/served"  # the URL path of the served folder; must not exist locally (see above)
START_SECONDS = 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def xrootd_or_skip() -> str:
    """The `xrootd` program; missing, the test is skipped with the reason (in CI, CI=true, it fails)."""
    program = shutil.which("xrootd") or shutil.which("xrootd", path="/usr/sbin:/usr/bin")
    if program is None:
        reason = "no xrootd server program (Debian: apt-get install xrootd-server xrootd-client)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + ": in CI it must be installed")
        pytest.skip(reason)
    return program


@dataclass
class XRootDServer:
    url: str  # root://127.0.0.1:PORT//served
    folder: Path  # what is served under URL_ROOT
    log: Path
    process: subprocess.Popen[bytes]
    command: list[str]  # what started it

    def opened(self) -> list[str]:
        """URL paths of the files opened through the server so far, in order."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return re.findall(r"ofs_open: \S+ fn=(\S+)", text)

    def stop(self) -> None:
        _stop(self.process)

    def start_again(self) -> None:
        """The same server (port, folder, log) once more, after it ended (killed: xrootd binds its
        port again at once); returns once it reports its start."""
        if self.process.poll() is None:
            raise RuntimeError("xrootd still runs: stop it first")
        begun = self.log.stat().st_size
        self.process = _popen(self.command, self.log.parent)
        _started(self.process, self.log.parent, begun)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server by its pid: SIGTERM, then SIGKILL after 10 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _popen(command: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _started(process: subprocess.Popen[bytes], admin: Path, begun: int = 0) -> Path:
    """The server's log (under `admin`) once it reports its start after byte `begun`; fails on a
    failed start or after START_SECONDS."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        logs = sorted(admin.rglob("log"))
        text = logs[0].read_bytes()[begun:].decode(errors="replace") if logs else ""
        if "initialization completed" in text and re.search(r"xrootd \S+ initialization completed", text):
            return logs[0]
        if "initialization failed" in text or process.poll() is not None:
            raise RuntimeError(f"xrootd did not start:\n{text[-2000:]}")
        time.sleep(0.1)
    raise RuntimeError(f"xrootd did not report its start within {START_SECONDS} s")


@contextmanager
def xrootd_server() -> Iterator[XRootDServer]:
    """An XRootD server on a free port accepting loopback clients only, serving a new empty folder
    at URL_ROOT; stopped (by pid) and its folder removed at the end."""
    program = xrootd_or_skip()
    if Path(URL_ROOT).exists():
        pytest.fail(f"{URL_ROOT} exists on this machine: a root:// URL of it could be read without the server")
    base = Path(tempfile.mkdtemp(prefix="rdf-xrootd-"))
    server = None
    try:
        base.chmod(0o755)
        local_root, admin = base / "root", base / "admin"  # URL path P is local_root/P on disk
        folder = local_root / URL_ROOT.lstrip("/")
        folder.mkdir(mode=0o755, parents=True)
        local_root.chmod(0o755)
        admin.mkdir()
        as_user: list[str] = []
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(admin, nobody.pw_uid, nobody.pw_gid)
            as_user = ["-R", "nobody"]
        config = base / "xrootd.cfg"
        config.write_text(
            "xrd.allow host localhost\n"  # only loopback clients (xrootd 5.5 cannot bind one address)
            f"oss.localroot {local_root}\n"
            f"all.export {URL_ROOT}\n"
            "ofs.trace open\n"
            "xrootd.trace emsg login\n"
        )
        config.chmod(0o644)
        port = free_port()
        command = [program, *as_user, "-p", str(port), "-n", "test", "-l", str(admin / "log"), "-a", str(admin)]
        command += ["-c", str(config)]
        process = _popen(command, admin)
        server = XRootDServer(f"root://127.0.0.1:{port}/{URL_ROOT}", folder, admin / "log", process, command)
        server.log = _started(process, admin)
        yield server
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(base, ignore_errors=True)


def serve_copy(server: XRootDServer, source: Path, name: str) -> str:
    """Copy `source` into the served folder as `name` (readable by the server's user); its URL."""
    target = server.folder / name
    target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    target.chmod(0o644)
    return f"{server.url}/{name}"
