"""Compiled code kept between runs (cache area `compiled`).

ROOT's interpreter compiles every expression of a graph again in every new process; for a
typical analysis that is most of the set-up. So each graph step (a Define, Filter or Vary:
its expression, the exact types of the columns it reads, the name it defines) is also
generated as a small typed C++ function and compiled by the system compiler into a shared
library, once. A later run calls the compiled step (through `cpp/session.cxx`) and asks the
interpreter nothing; a step that changed, and only that step, is compiled by the
interpreter as before and queued for the compiler.

A step's key is the SHA-256 of its generated source, the contents of every header it
includes (the framework's, the `cpp:` files and the local files those include), the ROOT
build, the compiler's version and the flags: any change is a miss, never a stale hit. The
session library (`cpp/session.cxx`: datasets, the fill action, the loop) is one more entry.

Compiling happens in a job after the run (`python -m framework.engine.compiled JOB`), by default
detached and at low priority so the run returns at once; `--compile now` waits for it and
`--compile off` never compiles. A job locks the keys it compiles, so two runs never compile
the same step twice, and writes every library and entry under a temporary name first.
A step the compiler rejects is recorded with the compiler's message and stays interpreted.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from framework import cache
from framework.engine.rootenv import CPP
from framework.engine.stepsource import Correction, StepSource, Toolchain, header_digest, toolchain, translation_unit

SESSION_SOURCES = (CPP / "framework.hxx", CPP / "fill.hxx", CPP / "session.cxx")
MODES = ("background", "now", "off")
COMPILE_ENV = "RDF_ANALYSIS_COMPILE"


def default_mode() -> str:
    mode = os.environ.get(COMPILE_ENV, "background")
    return mode if mode in MODES else "background"


# ---------------------------------------------------------------- the cache


@dataclass(frozen=True)
class CompiledStep:
    address: int
    type: str | None


def _entry(key: str) -> Path:
    return cache.entry_path("compiled", key)


_loaded: dict[str, ctypes.CDLL] = {}


def _load(library: Path, sha256: str) -> ctypes.CDLL | None:
    """Load a compiled library once per process, after checking its content against its entry."""
    name = str(library)
    if name not in _loaded:
        try:
            if cache.file_sha256(library) != sha256:
                return None
        except OSError:
            return None
        _loaded[name] = ctypes.CDLL(name)
    return _loaded[name]


def lookup(key: str) -> CompiledStep | None:
    """The compiled step of `key`, or None (a miss: never compiled, failed, or damaged)."""
    entry = cache.read_entry(_entry(key))
    if entry is None or "library" not in entry:
        return None
    handle = _load(cache.folder("compiled") / entry["library"], entry["sha256"])
    if handle is None:
        _entry(key).unlink(missing_ok=True)  # a damaged or missing library: compile again
        return None
    try:
        function = getattr(handle, entry["symbol"])
    except AttributeError:
        return None
    return CompiledStep(ctypes.cast(function, ctypes.c_void_p).value or 0, entry.get("type"))


def failed(key: str) -> str | None:
    """The compiler's message for a step it rejected (it stays interpreted), else None."""
    entry = cache.read_entry(_entry(key))
    return entry.get("error") if entry else None


def session_key() -> str | None:
    tools = toolchain()
    if tools is None:
        return None
    return cache.key_of("session", header_digest(list(SESSION_SOURCES)), tools.identity())


def session_library() -> ctypes.CDLL | None:
    """The compiled session library, when the cache has it."""
    key = session_key()
    entry = cache.read_entry(_entry(key)) if key else None
    if entry is None or "library" not in entry:
        return None
    return _load(cache.folder("compiled") / entry["library"], entry["sha256"])


# ---------------------------------------------------------------- compile jobs


@dataclass
class Job:
    """What a run could not find compiled: its steps (with the types the interpreter gave their
    columns) and whether the session library is missing."""

    steps: list[StepSource] = field(default_factory=list)
    session: bool = False

    def add(self, source: StepSource, column_type: str | None) -> None:
        if failed(source.key) is None and all(s.key != source.key for s in self.steps):
            self.steps.append(replace(source, type=column_type))

    def __bool__(self) -> bool:
        return bool(self.steps) or self.session

    def to_json(self) -> str:
        return json.dumps({"session": self.session, "steps": [asdict(s) for s in self.steps]})

    @classmethod
    def from_json(cls, text: str) -> Job:
        data = json.loads(text)
        steps = [
            StepSource(
                **{**s, "headers": tuple(s["headers"]), "corrections": tuple(Correction(**c) for c in s["corrections"])}
            )
            for s in data["steps"]
        ]
        return cls(steps, data["session"])


def _jobs_folder() -> Path:
    return cache.folder("compiled") / "jobs"


def submit(job: Job, mode: str) -> str | None:
    """Compile what `job` lists: in a detached low-priority process ("background"), here and
    now ("now"), or not at all ("off"). Returns a line for the user, or None."""
    if mode == "off" or toolchain() is None:
        return None
    job = Job([s for s in job.steps if not _taken(s.key)], job.session and not _taken(session_key() or ""))
    if not job:
        return None
    if mode == "now":
        start = time.perf_counter()
        compiled, rejected = run_job(job)
        return f"compiled {compiled} step(s) in {time.perf_counter() - start:.1f} s" + (
            f"; {rejected} stay interpreted (see 'run-analysis cache info')" if rejected else ""
        )
    folder = _jobs_folder()
    folder.mkdir(parents=True, exist_ok=True)
    fd, path = tempfile.mkstemp(prefix="job-", suffix=".json", dir=folder)
    with os.fdopen(fd, "w") as stream:
        stream.write(job.to_json())
    # The job's lock is taken here and inherited by the job's process, so `wait` sees the job
    # from this moment until that process ends, however it ends.
    lock = os.open(Path(path).with_suffix(".lock"), os.O_CREAT | os.O_RDWR, 0o644)
    fcntl.flock(lock, fcntl.LOCK_EX)
    with open(Path(path).with_suffix(".log"), "w") as log:
        subprocess.Popen(
            [sys.executable, "-m", "framework.engine.compiled", path],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=(lock,),
            cwd=str(Path(__file__).parents[2]),
        )
    os.close(lock)
    what = f"{len(job.steps)} step(s)" + (" and the session library" if job.session else "")
    return f"compiling {what} in the background for the next run ('run-analysis cache wait' waits for it)"


@contextmanager
def _locked(path: Path, blocking: bool = False) -> Iterator[bool]:
    """An advisory lock on `path` (released when the process ends, however it ends)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _lock_path(key: str) -> Path:
    return cache.folder("compiled") / "locks" / f"{key}.lock"


def _taken(key: str) -> bool:
    """Whether `key` is compiled already or being compiled by a running job."""
    if cache.read_entry(_entry(key)) is not None:
        return True
    if not _lock_path(key).exists():
        return False
    with _locked(_lock_path(key)) as free:
        return not free


def _compile_command(tools: Toolchain, source: Path, target: Path, corrections: bool) -> list[str]:
    command = [tools.compiler, *tools.flags, "-shared", "-w", f"-I{tools.include}", str(source), "-o", str(target)]
    command += [f"-L{tools.lib}", f"-Wl,-rpath,{tools.lib}"]
    command += [
        f"-l{n}"
        for n in ("ROOTDataFrame", "ROOTVecOps", "ROOTNTuple", "TreePlayer", "Tree", "RIO", "Imt", "MathCore", "Core")
    ]
    if corrections:
        import correctionlib

        package = Path(correctionlib.__file__).parent
        command += [
            f"-I{package / 'include'}",
            f"-L{package / 'lib'}",
            f"-Wl,-rpath,{package / 'lib'}",
            "-lcorrectionlib",
        ]
    return command


def _start(tools: Toolchain, text: str, corrections: bool) -> tuple[subprocess.Popen[str], Path, Path]:
    folder = cache.folder("compiled") / "lib"
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=".build-", suffix=".cxx", dir=folder)
    with os.fdopen(fd, "w") as stream:
        stream.write(text)
    source = Path(name)
    target = source.with_suffix(".so")
    command = _compile_command(tools, source, target, corrections)
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True), source, target


def _finish(process: subprocess.Popen[str], source: Path, target: Path) -> tuple[Path | None, str]:
    """Wait for a compilation; the library moved to its content-addressed name, or the errors."""
    output, _ = process.communicate()
    source.unlink(missing_ok=True)
    if process.returncode != 0 or not target.is_file():
        target.unlink(missing_ok=True)
        errors = [ln for ln in output.splitlines() if "error" in ln]
        return None, "\n".join(errors[:5]) or output[-2000:]
    final = target.with_name(f"{cache.file_sha256(target)}.so")
    os.replace(target, final)
    return final, ""


def _record(key: str, library: Path | None, error: str, extra: dict[str, Any]) -> None:
    if library is None:
        cache.write_entry(_entry(key), {"error": error, **extra})
        return
    cache.write_entry(
        _entry(key),
        {"library": str(library.relative_to(cache.folder("compiled"))), "sha256": cache.file_sha256(library), **extra},
    )


def _chunks(steps: list[StepSource], count: int) -> list[list[StepSource]]:
    return [steps[i::count] for i in range(count) if steps[i::count]]


def run_job(job: Job, parallel: int = 2) -> tuple[int, int]:
    """Compile a job's session library and steps (`parallel` compilers at once); returns the
    numbers of steps compiled and rejected. Keys another job holds are left to it."""
    tools = toolchain()
    assert tools is not None
    with contextlib.ExitStack() as stack:
        steps = []
        for s in job.steps:
            if stack.enter_context(_locked(_lock_path(s.key))) and cache.read_entry(_entry(s.key)) is None:
                steps.append(s)
        session = None
        key = session_key()
        if job.session and key and stack.enter_context(_locked(_lock_path(key))) and session_library() is None:
            text = f'#define FW_SESSION_ALL\n#include "{SESSION_SOURCES[-1]}"\n'
            session = (key, _start(tools, text, corrections=False))
        compiled = rejected = 0
        batches = _chunks(steps, max(1, parallel - (session is not None)))
        running = [(b, _start(tools, translation_unit(b), any(s.corrections for s in b))) for b in batches]
        retry: list[StepSource] = []
        for batch, started in running:
            library, error = _finish(*started)
            if library is None and len(batch) > 1:
                retry += batch  # one bad step fails its batch: compile each alone
                continue
            for s in batch:
                _record(s.key, library, error, {"symbol": s.symbol, "type": s.type})
            compiled, rejected = (compiled + len(batch), rejected) if library else (compiled, rejected + len(batch))
        for s in retry:
            library, error = _finish(*_start(tools, translation_unit([s]), bool(s.corrections)))
            _record(s.key, library, error, {"symbol": s.symbol, "type": s.type})
            compiled, rejected = (compiled + 1, rejected) if library else (compiled, rejected + 1)
        if session is not None:
            library, error = _finish(*session[1])
            _record(session[0], library, error, {})
    return compiled, rejected


def running_jobs() -> list[Path]:
    """Job files whose job is still running (its process holds the lock of the job); the
    files of jobs that were killed are removed."""
    folder = _jobs_folder()
    out = []
    for path in sorted(folder.glob("job-*.json")) if folder.is_dir() else []:
        with _locked(path.with_suffix(".lock")) as free:
            if not free:
                out.append(path)
                continue
        for stale in (path, path.with_suffix(".lock")):
            stale.unlink(missing_ok=True)
    return out


def wait(timeout: float = 600.0) -> bool:
    """Wait until no compile job runs (True), or `timeout` seconds (False)."""
    deadline = time.monotonic() + timeout
    while running_jobs():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def summary() -> str:
    """What the compiled area holds, for `run-analysis cache info`."""
    entries = [cache.read_entry(p) for p in cache.folder("compiled").glob("??/*.json")]
    steps = [e for e in entries if e is not None and "symbol" in e]
    rejected = [e for e in steps if "error" in e]
    lines = [
        f"  compiled steps: {len(steps) - len(rejected)}, rejected by the compiler (interpreted): {len(rejected)}",
        "  session library: "
        + ("compiled" if session_library() is not None else "not yet (the interpreter compiles it)"),
        f"  compile jobs running: {len(running_jobs())}",
    ]
    lines += [f"    rejected: {e['error'].splitlines()[0][:150]}" for e in rejected[:5]]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """`python -m framework.engine.compiled JOB.json`: the background compile job (it inherits the
    lock of JOB, taken by `submit`)."""
    path = Path(argv[0])
    os.nice(10)
    start = time.perf_counter()
    try:
        compiled, rejected = run_job(Job.from_json(path.read_text()))
    finally:
        path.unlink(missing_ok=True)
        path.with_suffix(".lock").unlink(missing_ok=True)
    print(f"compiled {compiled} step(s), {rejected} rejected, in {time.perf_counter() - start:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
