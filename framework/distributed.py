"""Run stage on Dask or Spark: the same plan, one task per sample and chunk of files, merged
like batch parts.

ROOT 6.40's Distributed RDataFrame runs only its fixed list of operations (our fill is
a custom action) and its workers crash on dataset specs; so each task runs this framework's
own graph on one sample's `--part I/N` in a worker process, and the parts are added and
normalised by `framework.merge`. The client loads the configuration, inspects the inputs and
makes every task's plan (plain data) once; a task only builds, runs and writes that plan.
Worker processes live on between tasks: ROOT, the session and the compiled steps a worker
loaded (from the cache, `framework.compiled`) serve its next tasks. Tasks run one thread each:
workers are the parallelism. Dask schedules; nothing is scheduled by hand. A local cluster
of worker processes by default, or any scheduler address (dask-jobqueue, a site cluster)
with `--scheduler`.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .compiled import Job, submit
from .exceptions import ExecutionError, FrameworkError
from .merge import merge_outputs
from .pipeline import RunOptions, execute_plan, inspect, report_progress
from .plan import Plan


@dataclass(frozen=True)
class Task:
    """One sample's chunk `part` of `parts` of its files, planned by the client."""

    plan: Plan
    options: RunOptions  # output, threads and compile mode of the task
    sample: str
    part: int
    parts: int


Runner = Callable[[list[Task]], Iterable[dict[str, Any]]]  # runs the tasks, yields each result when done


def run_task(task: Task) -> dict[str, Any]:
    """What a worker does with a task: build, run and write its plan (a batch part)."""
    start = time.perf_counter()
    report = execute_plan(task.plan, task.options)  # compile "off": the client submits one job for all tasks
    return {
        "sample": task.sample,
        "part": task.part,
        "events": report.events,
        "seconds": time.perf_counter() - start,
        "loop_seconds": report.loop_seconds,
        "interpreted": len(report.interpreted),
        "missed": report.missed.to_json(),
        "worker": os.getpid(),
    }


def _tasks(options: RunOptions, files_per_task: int, folder: str) -> list[Task]:
    """Every task's plan, made here once: the workers load no configuration and inspect no file."""
    inspected = inspect(options)
    task_options = replace(options, output=Path(folder), force=True, progress=False, progress_file=None, threads=1,
                           compile="off")
    tasks = []
    for name in inspected.samples:
        n = max(1, math.ceil(len(inspected.inputs[name].files) / files_per_task))
        for i in range(1, n + 1):
            plan = inspected.plan(replace(options.selection, samples=(name,), part=(i, n)))
            tasks.append(Task(plan, task_options, name, i, n))
    return tasks


def execute_in_tasks(options: RunOptions, files_per_task: int, engine: str, runner: Runner) -> dict[str, Any]:
    """Run the analysis as tasks (sample x chunk of files) through `runner`, then merge the parts
    into `options.output`: the same files as a threaded run."""
    if options.output is None:
        raise FrameworkError(f"--executor {engine} needs -o/--output")
    start = time.perf_counter()
    options.output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".parts-", dir=options.output) as tmp:
        tasks = _tasks(options, files_per_task, tmp)
        planned = time.perf_counter()
        done: list[dict[str, Any]] = []
        try:
            for result in runner(tasks):
                done.append(result)
                report_progress(options.progress_file, "event loop", events=sum(d["events"] for d in done), total=0,
                                tasks=len(done), tasks_total=len(tasks), seconds=time.perf_counter() - start)
        except FrameworkError:
            raise
        except Exception as err:  # a worker died or a task failed outside our own errors
            raise ExecutionError(f"a {engine} task failed: {err}") from err
        execution = time.perf_counter() - planned
        merge_start = time.perf_counter()
        report = merge_outputs(Path(tmp), options.output)
        if report.missing:
            raise ExecutionError(f"parts missing after the {engine} run: {report.missing}")
    missed = Job()
    for d in done:
        job = Job.from_json(d["missed"])
        missed.session |= job.session
        for step in job.steps:
            missed.add(step, step.type)
    return {
        "outputs": report.merged,
        "events": sum(d["events"] for d in done),
        "compile_note": submit(missed, options.compile),
        "planning_seconds": planned - start,
        "execution_seconds": execution,
        "merge_seconds": time.perf_counter() - merge_start,
        "tasks": done,
    }


def execute_on_dask(
    options: RunOptions, scheduler: str | None = None, workers: int = 2, files_per_task: int = 1
) -> dict[str, Any]:
    """Run the analysis as Dask tasks (a local cluster, or `scheduler`)."""
    try:
        from dask.distributed import Client, LocalCluster, as_completed  # noqa: PLC0415
    except ImportError as err:
        raise FrameworkError(
            "the Dask executor needs dask.distributed", hint="pip install 'rdf-analysis[dask]'"
        ) from err

    startup: dict[str, float] = {}

    def runner(tasks: list[Task]) -> Iterable[dict[str, Any]]:
        start = time.perf_counter()
        cluster = None
        if scheduler is None:
            cluster = LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
            )
        try:
            with Client(scheduler or cluster) as client:
                startup["cluster_seconds"] = time.perf_counter() - start
                futures = [client.submit(run_task, t, pure=False, key=f"{t.sample}-part-{t.part}-of-{t.parts}") for t in tasks]
                for future in as_completed(futures):
                    yield future.result()
        finally:
            if cluster is not None:
                cluster.close()

    done = execute_in_tasks(options, files_per_task, "Dask", runner)
    return {**done, **startup}


def execute_on_spark(options: RunOptions, master: str | None = None, workers: int = 2, files_per_task: int = 1) -> dict[str, Any]:
    """Run the analysis as Spark tasks: a local master with `workers` cores, or the cluster at `master`
    (its executors need this package installed and the output folder on a shared file system)."""
    try:
        from pyspark.sql import SparkSession  # noqa: PLC0415
    except ImportError as err:
        raise FrameworkError("the Spark executor needs pyspark", hint="pip install 'rdf-analysis[spark]'") from err

    def runner(tasks: list[Task]) -> Iterable[dict[str, Any]]:
        spark = (
            SparkSession.builder.master(master or f"local[{workers}]")
            .appName("rdf-analysis")
            .config("spark.ui.enabled", "false")
            .config("spark.python.worker.reuse", "true")  # a worker's ROOT and compiled steps serve its next tasks
            .getOrCreate()
        )
        try:
            spark.sparkContext.setLogLevel("ERROR")
            yield from spark.sparkContext.parallelize(tasks, len(tasks)).map(run_task).collect()
        finally:
            spark.stop()

    return execute_in_tasks(options, files_per_task, "Spark", runner)
