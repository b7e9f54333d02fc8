"""`run-analysis CONFIG --watch`: run, then run again whenever an input of the configuration
is saved, in one warm process.

Watched: the YAML file and every file it includes, the `cpp:` files and the local files they
include, correctionlib files of systematics and lumi masks. The runs happen in a `framework.app.worker`
process that stays warm; a changed C++ file replaces that process (the interpreter cannot
read a file twice), which costs ROOT's start and not much more when the cache has the
compiled steps. A mistake prints the usual message and waits for the next save: outputs are
only ever replaced whole, by a run that succeeded. Changes are found by polling modification
times (no platform watcher needed).
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

from framework.app.worker import Worker, WorkerDied
from framework.engine.stepsource import header_files
from framework.errors import FrameworkError

POLL_SECONDS = 0.1


def watched_files(config_path: Path) -> tuple[list[Path], list[Path]]:
    """(YAML and data files, C++ files) the run depends on; only the main file if it does not load."""
    from framework.config.load import load_config
    from framework.config.lumimask import sample_lumi_masks
    from framework.execute.pipeline import resolve_cpp
    from framework.plan.systematics import correction_files

    try:
        config = load_config(config_path)
        cpp = header_files(resolve_cpp(config))
    except FrameworkError:
        return [config_path.resolve()], []
    others = [Path(f) for f in config.source.files] + correction_files(config)
    others += list(dict.fromkeys(mask.path for mask in sample_lumi_masks(config).values()))
    return others, cpp


def _stamps(files: list[Path]) -> dict[Path, int | None]:
    out: dict[Path, int | None] = {}
    for f in files:
        try:
            out[f] = f.stat().st_mtime_ns
        except OSError:
            out[f] = None
    return out


def watch(config_path: Path, argv: list[str], out: object = sys.stdout) -> int:
    """Run `argv` (a run-analysis command without --watch) now and after every saved change,
    until interrupted (Ctrl-C)."""

    def say(text: str) -> None:
        print(text, file=out, flush=True)  # type: ignore[call-overload]

    # Ctrl-C stops the watcher even when it was started with SIGINT ignored (a parent may pass
    # that on), and SIGTERM stops it the same way
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    worker = Worker()
    yaml_files, cpp_files = watched_files(config_path)
    stamps = _stamps(yaml_files + cpp_files)
    try:
        while True:
            started = time.perf_counter()
            try:
                code = worker.run(argv, lambda text, _level: say(text))
                status = "done" if code == 0 else f"failed (exit code {code}; outputs left as they were)"
            except WorkerDied as err:
                status = f"{err}; starting a new one"
                worker.stop()
                worker = Worker()
            say(
                f"[watch] {status} in {time.perf_counter() - started:.2f} s; waiting for changes to "
                f"{len(yaml_files)} configuration and {len(cpp_files)} C++ file(s) (Ctrl-C stops)"
            )
            changed = _wait_for_change(stamps)
            yaml_files, new_cpp = watched_files(config_path)
            if any(f in changed for f in cpp_files) or set(new_cpp) != set(cpp_files):
                say("[watch] C++ changed: restarting the worker")
                worker.stop()
                worker = Worker()
            cpp_files = new_cpp
            stamps = _stamps(yaml_files + cpp_files)
            say(f"[watch] {', '.join(sorted(p.name for p in changed))} changed: running again")
    except KeyboardInterrupt:
        say("[watch] stopped")
        return 0
    finally:
        worker.stop()


def _wait_for_change(stamps: dict[Path, int | None]) -> set[Path]:
    """Block until some file's modification time changes, and stays put for one more poll (an
    editor may write a file in several steps)."""
    while True:
        time.sleep(POLL_SECONDS)
        now = _stamps(list(stamps))
        changed = {f for f in stamps if now[f] != stamps[f]}
        if changed:
            time.sleep(POLL_SECONDS / 2)
            settled = _stamps(list(changed))
            if all(settled[f] == now[f] for f in changed):
                return changed
