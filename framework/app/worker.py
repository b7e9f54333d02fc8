"""A warm process that runs `run-analysis` commands one after another (watch mode, notebooks).

Between runs ROOT stays initialised, headers stay declared, compiled steps stay loaded and
expressions the interpreter compiled stay compiled, so a rerun costs the loop and what
changed. Requests are JSON lines on stdin (`{"argv": [...]}`); a run's output goes to stdout
as it would in a terminal, except that each log record is one line `LOG_MARK {"level": ...,
"message": ...}` (so a notebook knows a warning from an error without reading the text), and
each run ends with one line `MARK {"exit": code, ...}`.

The interpreter cannot read a changed C++ file again in the same process, and a ROOT abort
ends the process: `Worker` (the handle other modules use) notices both and starts a new one.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

MARK = "\x1efw-worker "
LOG_MARK = "\x1efw-log "

log = logging.getLogger("framework.app.worker")  # not __name__: run as a program, that is "__main__"


class _MarkedRecords(logging.Handler):
    """A log record as one line on stdout that keeps its level (`Worker.run` reads it back)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stdout.write(LOG_MARK + json.dumps({"level": record.levelname, "message": self.format(record)}) + "\n")
            sys.stdout.flush()
        except Exception:  # noqa: BLE001 - a message that cannot be shown must not stop the run
            self.handleError(record)


def serve() -> int:
    """The worker's side: run each request in this process, report how it ended."""
    from framework.app import cli

    framework_log = logging.getLogger("framework")
    framework_log.addHandler(_MarkedRecords())
    framework_log.setLevel(logging.INFO)
    first = True
    for line in sys.stdin:
        request = json.loads(line)
        start = time.perf_counter()
        try:
            code = cli.main(request["argv"], warm=not first)
        except BaseException:  # noqa: BLE001 - a bug must not end the worker: report it, wait for the next request
            log.error("%s", traceback.format_exc().rstrip("\n"))
            code = 1
        first = False
        sys.stdout.flush()
        sys.stderr.flush()
        print(MARK + json.dumps({"exit": code, "seconds": time.perf_counter() - start}), flush=True)
    return 0


class WorkerDied(Exception):
    """The worker process ended during a run (a crash in ROOT, or it was stopped)."""


class Worker:
    """A `python -m framework.app.worker` process and its output."""

    def __init__(self, cwd: Path | None = None) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "framework.app.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            cwd=cwd,
        )
        self.busy = threading.Lock()

    @property
    def alive(self) -> bool:
        return self._process.poll() is None

    def run(self, argv: list[str], on_line: Callable[[str, str | None], None]) -> int:
        """Run one command; each output line goes to `on_line` with its level: that of the log
        record it is part of, None for a line the run printed. Returns its exit code."""
        assert self._process.stdin is not None and self._process.stdout is not None
        with self.busy:
            try:
                self._process.stdin.write(json.dumps({"argv": argv}) + "\n")
                self._process.stdin.flush()
            except OSError as err:
                raise WorkerDied(f"the worker process is gone ({err})") from None
            for line in self._process.stdout:
                if line.startswith(MARK):
                    return int(json.loads(line[len(MARK) :])["exit"])
                if line.startswith(LOG_MARK):
                    record = json.loads(line[len(LOG_MARK) :])
                    for text in record["message"].split("\n"):
                        on_line(text, record["level"])
                else:
                    on_line(line.rstrip("\n"), None)
            code = self._process.wait()
            raise WorkerDied(f"the worker process ended during the run (exit code {code})")

    def stop(self, timeout: float = 10.0) -> None:
        """End the worker (and the run it may be doing); bounded wait, then kill."""
        if self._process.stdin is not None:
            try:
                self._process.stdin.close()
            except OSError:
                pass
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout)
        if self._process.stdout is not None:
            self._process.stdout.close()


if __name__ == "__main__":
    sys.exit(serve())
