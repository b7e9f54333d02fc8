"""Time from "save the YAML" to "histograms on disk" on the demo, the number users feel most.

Each run is a fresh `run-analysis` process on a copy of `analyses/demo/config.yaml`, with an
empty cache folder of its own (`$RDF_ANALYSIS_CACHE`), in this order:

- cold: empty caches (the demo's events already generated);
- warm: the same command again, after the background compile job the cold run started;
- edited: one cut changed (`nGoodJet >= 2` -> `nGoodJet >= 3`), then the cut put back
  (edited back, which must equal warm);
- watch: `run-analysis --watch` on the same copy; the time from a save to the outputs renamed in
  place (`run.json` rewritten), for a save with nothing changed and for an edited cut (to
  `nGoodJet >= 4`, which no run has compiled yet).

Set-up and loop times are the runs' own (`--profile`); every histogram of the runs with the
same configuration (cold, warm, edited back, watched) must agree. With two threads sums of
weights are added in a run-dependent order, so they agree to ~1e-15, not bit for bit:
`equal` compares counts exactly and sums at 1e-12; `bitwise_equal` says whether they were identical.

    python benchmarks/turnaround.py --json OUT.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "analyses" / "demo" / "config.yaml"
CUT = 'cut: "nGoodJet >= 2 || nGoodMuon >= 2"'
EDITED_CUT = 'cut: "nGoodJet >= 3 || nGoodMuon >= 2"'  # the edited run's change
WATCH_CUT = 'cut: "nGoodJet >= 4 || nGoodMuon >= 2"'  # another, so the watcher's is not compiled yet


def copy_of_demo(folder: Path) -> Path:
    """The demo's config in `folder`, its includes and C++ file by absolute path."""
    text = DEMO.read_text().replace("../../", f"{REPO}/")
    assert CUT in text, "the demo's cut changed: update benchmarks/turnaround.py"
    path = folder / "config.yaml"
    path.write_text(text)
    return path


def run(config: Path, out: Path, env: dict[str, str], threads: int) -> dict[str, Any]:
    """One run-analysis process; its --profile JSON plus the wall time of the process."""
    profile = out.with_suffix(".profile.json")
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "framework",
            str(config),
            "-o",
            str(out),
            "--force",
            "-j",
            str(threads),
            "--no-progress",
            "--profile",
            str(profile),
        ],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        cwd=REPO,
    )
    wall = time.perf_counter() - start
    return {**json.loads(profile.read_text()), "process_s": wall}


def wait_for_compile(env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "framework", "cache", "wait", "--timeout", "900"], env=env, check=True, cwd=REPO
    )
    return time.perf_counter() - start


def edit(config: Path, old: str, new: str) -> None:
    config.write_text(config.read_text().replace(old, new))


def saved_to_written(out: Path, save: Any, timeout: float = 300.0) -> float:
    """Seconds from `save()` to the watcher's outputs renamed in place (run.json rewritten)."""
    marker = out / "run.json"
    before = marker.stat().st_mtime_ns if marker.exists() else 0
    start = time.perf_counter()
    save()
    deadline = start + timeout
    while time.perf_counter() < deadline:
        if marker.exists() and marker.stat().st_mtime_ns != before:
            return time.perf_counter() - start
        time.sleep(0.01)
    raise TimeoutError(f"the watcher wrote nothing in {timeout} s")


def watch_mode(config: Path, out: Path, env: dict[str, str], threads: int) -> dict[str, float]:
    log = open(out.with_suffix(".watch.log"), "w")  # noqa: SIM115
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "framework",
            str(config),
            "-o",
            str(out),
            "--force",
            "-j",
            str(threads),
            "--no-progress",
            "--watch",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=REPO,
        start_new_session=True,
    )
    try:
        deadline = time.perf_counter() + 300
        while not (out / "run.json").exists():
            if time.perf_counter() > deadline or process.poll() is not None:
                raise RuntimeError(f"the watcher did not start: see {log.name}")
            time.sleep(0.05)
        time.sleep(1.0)  # the first run's report line and the watcher's polling start
        warm = saved_to_written(out, lambda: config.touch())
        time.sleep(0.5)
        edited = saved_to_written(out, lambda: edit(config, CUT, WATCH_CUT))
        edited_loop = json.loads((out / "run.json").read_text())["event_loop_seconds"]
        time.sleep(0.5)
        back = saved_to_written(out, lambda: edit(config, WATCH_CUT, CUT))
        return {
            "watch_warm_s": warm,
            "watch_edited_s": edited,
            "watch_edited_loop_s": edited_loop,
            "watch_back_s": back,
        }
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="keep the run folders here (default: a temporary folder)")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from framework.present.results import differences

    folder = Path(tempfile.mkdtemp(prefix="turnaround-")) if args.keep is None else args.keep
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "RDF_ANALYSIS_CACHE": str(folder / "cache"), "RDF_ANALYSIS_COMPILE": "background"}
    config = copy_of_demo(folder)
    # the demo's events, made once (not timed): a dry run generates what is missing
    subprocess.run(
        [sys.executable, "-m", "framework", str(config), "--dry-run"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        cwd=REPO,
    )
    shutil.rmtree(folder / "cache")

    cold = run(config, folder / "cold", env, args.threads)
    compile_s = wait_for_compile(env)
    warm = run(config, folder / "warm", env, args.threads)
    edit(config, CUT, EDITED_CUT)
    edited = run(config, folder / "edited", env, args.threads)
    edit(config, EDITED_CUT, CUT)
    wait_for_compile(env)
    back = run(config, folder / "back", env, args.threads)
    watched = watch_mode(config, folder / "watch", env, args.threads)

    same = ["cold", "warm", "back", "watch"]
    exact = all(not differences(folder / "warm", folder / o) for o in same if o != "warm")
    close = all(not differences(folder / "warm", folder / o, rel=1e-12) for o in same if o != "warm")
    changed = bool(differences(folder / "warm", folder / "edited", rel=1e-12))
    result = {
        "threads": args.threads,
        "cold_setup_s": cold["setup"],
        "warm_setup_s": warm["setup"],
        "edited_setup_s": edited["setup"],
        "edited_back_setup_s": back["setup"],
        **watched,
        "loop_s": warm["loop"],
        "cold_process_s": cold["process_s"],
        "warm_process_s": warm["process_s"],
        "edited_process_s": edited["process_s"],
        "background_compile_wait_s": compile_s,
        "setup_parts": {
            name: {k: v for k, v in r.items() if k not in ("process_s",)}
            for name, r in (("cold", cold), ("warm", warm), ("edited", edited), ("back", back))
        },
        "equal": close,
        "bitwise_equal": exact,
        "edit_changed_histograms": changed,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.keep is None:
        shutil.rmtree(folder, ignore_errors=True)
    return 0 if close and changed else 1


if __name__ == "__main__":
    sys.exit(main())
