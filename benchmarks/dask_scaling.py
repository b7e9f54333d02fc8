"""The demo analysis on Dask at 2M events: one worker against two, and what a task costs besides
its event loop.

The demo's configuration runs on a larger copy of its samples (the same generator processes
and seeds per file, several files per sample: one task per file), with a warm cache (an untimed
threaded run compiled the steps first). Then, each in its own `run-analysis` process on a local
cluster of single-threaded worker processes: one worker, two workers. Reported: the execution
time (tasks submitted to last result, cluster start-up excluded, printed apart), end to end, and
the overhead of a task besides its event loop (a worker's later tasks: ROOT, the session and
the compiled steps are already loaded; workers start ROOT while the client plans). Histograms
must equal the threaded run's.

With `--cluster slurm` the workers are Slurm jobs (`run-analysis --cluster slurm`, dask-jobqueue, one
single-core worker per job, `--min-workers` = `--max-workers`) on a one-node Slurm started for the
benchmark (framework.testing.slurm; as root, slurm-wlm and munge installed).

    python benchmarks/dask_scaling.py --events 2000000 --json OUT.json
    python benchmarks/dask_scaling.py --events 2000000 --cluster slurm
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(__file__).resolve().parent / ".cache"
DEMO = REPO / "analyses" / "demo" / "config.yaml"
# the demo's mixture: Z->mumu, ttbar and pseudo-data, in the demo's proportions (60 : 40 : 28)
SHARES = {"zmumu": 60 / 128, "ttbar": 40 / 128, "data": 28 / 128}


def samples_file(folder: Path, events: int, files: int) -> Path:
    """The demo's samples at `events` in all, `files` files per sample, generated once (cached)."""
    target = CACHE / f"demo_{events}_{files}"
    target.mkdir(parents=True, exist_ok=True)
    lines = ['eras:\n  "2016": {lumi: 10.0}\nsamples:']
    for name, share in SHARES.items():
        per_file = int(events * share) // files
        paths = [target / f"{name}_{i}.root" for i in range(files)]
        for i, path in enumerate(paths):
            if path.exists():
                continue
            if name == "data":
                zmumu = per_file * 5 // 7
                spec = (
                    f"GeneratorSpec(process='data', mixture={{'zmumu': {zmumu}, 'ttbar': {per_file - zmumu}}}, "
                    f"seed={300 + i})"
                )
            else:
                seed = 100 * (1 + list(SHARES).index(name)) + i
                spec = f"GeneratorSpec(process={name!r}, events={per_file}, seed={seed})"
            code = (
                f"from pathlib import Path; from framework.testing.generate import write_events; "
                f"from framework.testing.spec import GeneratorSpec; write_events({spec}, Path({str(path)!r}))"
            )
            subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
        listing = ", ".join(json.dumps(str(p)) for p in paths)
        kind = (
            "is_data: true"
            if name == "data"
            else f"xsec: {2000.0 if name == 'zmumu' else 832.0}, process: {'DY' if name == 'zmumu' else 'ttbar'}"
        )
        lines.append(f'  {name}: {{files: [{listing}], era: "2016", {kind}}}')
    path = folder / "samples.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def config(folder: Path, samples: Path) -> Path:
    text = DEMO.read_text().replace("../../samples/demo.yaml", str(samples)).replace("../../", f"{REPO}/")
    path = folder / "config.yaml"
    path.write_text(text)
    return path


def run(command: list[str], env: dict[str, str], profile: Path) -> dict[str, Any]:
    start = time.perf_counter()
    subprocess.run([*command, "--profile", str(profile)], check=True, env=env, cwd=REPO, stdout=subprocess.DEVNULL)
    return {**json.loads(profile.read_text()), "wall_s": time.perf_counter() - start}


def task_overhead(done: dict[str, Any]) -> float:
    """Median over every worker's tasks after its first of (task time - its loop)."""
    seen: set[int] = set()
    later = []
    for task in done["tasks"]:  # in the order they finished
        if task["worker"] in seen:
            later.append(task["seconds"] - task["loop_seconds"])
        seen.add(task["worker"])
    return statistics.median(later) if later else float("nan")


def busy_per_worker(run: dict[str, Any]) -> list[float]:
    busy: dict[int, float] = {}
    for task in run["tasks"]:
        busy[task["worker"]] = busy.get(task["worker"], 0.0) + task["seconds"]
    return sorted((round(b, 3) for b in busy.values()), reverse=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--files", type=int, default=10, help="files per sample (one task each)")
    parser.add_argument("--cluster", choices=("local", "slurm"), default="local", help="where the workers run")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from framework.present.results import differences
    from framework.testing.slurm import running_slurm

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "slurm").mkdir()
        slurm = running_slurm(folder / "slurm") if args.cluster == "slurm" else nullcontext()
        with slurm as cluster:
            env = {
                **(cluster.env if cluster else os.environ),
                "RDF_ANALYSIS_CACHE": str(folder / "cache"),
                "RDF_ANALYSIS_COMPILE": "now",
            }
            cfg = config(folder, samples_file(folder, args.events, args.files))
            base = [sys.executable, "-m", "framework", str(cfg), "--force", "--no-progress"]
            threads = run([*base, "-o", str(folder / "threads"), "-j", "2"], env, folder / "threads.json")
            results = {}
            for workers in (1, 2):
                out = folder / f"dask{workers}"
                where = ["--workers", str(workers)]
                if cluster:
                    where = ["--cluster", "slurm", "--scheduler-host", "127.0.0.1", "--job-logs", str(folder / "logs")]
                    where += ["--min-workers", str(workers), "--max-workers", str(workers), "--memory", "2GB"]
                results[workers] = run(
                    [*base, "-o", str(out), "--executor", "dask", *where], env, folder / f"dask{workers}.json"
                )
        equal = all(not differences(folder / "threads", folder / f"dask{w}", rel=1e-12) for w in (1, 2))
    one, two = results[1], results[2]
    result = {
        "cluster": args.cluster,
        "events": args.events,
        "tasks": len(one["tasks"]),
        "threaded_s": threads["wall_s"],
        "one_worker_s": one["execution_seconds"],
        "two_workers_s": two["execution_seconds"],
        "speed_up": one["execution_seconds"] / two["execution_seconds"],
        "one_worker_end_to_end_s": one["wall_s"],
        "two_workers_end_to_end_s": two["wall_s"],
        "end_to_end_speed_up": one["wall_s"] / two["wall_s"],
        "cluster_start_s": [one["start_seconds"], two["start_seconds"]],
        "planning_s": [one["planning_seconds"], two["planning_seconds"]],
        "merge_s": [one["merge_seconds"], two["merge_seconds"]],
        "task_overhead_s": max(task_overhead(one), task_overhead(two)),
        # the event loops of all tasks added up: their growth with two workers is the cost of
        # sharing the machine (the client and scheduler, caches, memory), not of the framework
        "loop_sum_s": [sum(t["loop_seconds"] for t in r["tasks"]) for r in (one, two)],
        # each worker's tasks end to end, added up: execution time minus the busiest worker's is the tail
        "two_workers_busy_s": busy_per_worker(two),
        "first_task_overhead_s": max(t["seconds"] - t["loop_seconds"] for t in two["tasks"]),
        "interpreted_steps_in_tasks": sum(t["interpreted"] for r in (one, two) for t in r["tasks"]),
        "equal": equal,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if equal else 1


if __name__ == "__main__":
    sys.exit(main())
