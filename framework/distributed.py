"""Run stage on Dask: the same plan, one task per sample and chunk of files, merged like batch parts.

ROOT 6.40's Distributed RDataFrame runs only its fixed list of operations (our fill is
a custom action) and its workers crash on dataset specs; so each Dask task runs this
framework's own pipeline on one sample's `--part I/N` in a worker process (C++ helpers
are declared there, from the installed package and the config's `cpp:`), and the parts
are added and normalised by `framework.merge`. Dask schedules; nothing is
scheduled by hand. A local cluster of worker processes by default, or any scheduler
address (dask-jobqueue, a site cluster) with `--scheduler`.
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from collections.abc import Callable, Iterable
from typing import Any

from .exceptions import ExecutionError, FrameworkError
from .inputs import resolve_files
from .load import load_config
from .merge import merge_outputs
from .pipeline import RunOptions, execute, report_progress, resolve_cpp
from .preprocess import run_preprocessing
from .plan import select_samples


def _run_part(options: RunOptions, sample: str, part: int, parts: int, outdir: str) -> dict[str, Any]:
    """One Dask task: the analysis on chunk `part` of `parts` of one sample's files."""
    start = time.perf_counter()
    selection = replace(options.selection, samples=(sample,), part=(part, parts))
    task_options = replace(options, selection=selection, output=Path(outdir), force=True, progress=False, progress_file=None)
    report = execute(task_options)
    events = report.events if report else 0
    return {"sample": sample, "part": part, "events": events, "seconds": time.perf_counter() - start}


def _tasks(options: RunOptions, files_per_task: int) -> list[tuple[str, int, int]]:
    config = load_config(options.config)
    run_preprocessing(config, resolve_cpp(config))  # once, before tasks read its output
    tasks = []
    for name in select_samples(config, options.selection):
        n = max(1, math.ceil(len(resolve_files(config, name)) / files_per_task))
        tasks += [(name, i, n) for i in range(1, n + 1)]
    return tasks


Task = tuple[RunOptions, str, int, int, str]  # options, sample, part, parts, folder of the parts
Runner = Callable[[list[Task]], Iterable[dict[str, Any]]]  # runs the tasks, yields each result when done


def execute_in_tasks(options: RunOptions, files_per_task: int, engine: str, runner: Runner) -> dict[str, Any]:
    """Run the analysis as tasks (sample x chunk of files) through `runner`, then merge the parts
    into `options.output`: the same files as a threaded run."""
    if options.output is None:
        raise FrameworkError(f"--executor {engine} needs -o/--output")
    start = time.perf_counter()
    options.output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".parts-", dir=options.output) as tmp:
        tasks = [(options, sample, i, n, tmp) for sample, i, n in _tasks(options, files_per_task)]
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
        execution = time.perf_counter() - start
        merge_start = time.perf_counter()
        report = merge_outputs(Path(tmp), options.output)
        if report.missing:
            raise ExecutionError(f"parts missing after the {engine} run: {report.missing}")
    return {
        "outputs": report.merged,
        "events": sum(d["events"] for d in done),
        "execution_seconds": execution,
        "merge_seconds": time.perf_counter() - merge_start,
    }


def _run_task(task: Task) -> dict[str, Any]:
    return _run_part(*task)


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

    def runner(tasks: list[Task]) -> Iterable[dict[str, Any]]:
        cluster = None
        if scheduler is None:
            cluster = LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
            )
        try:
            with Client(scheduler or cluster) as client:
                futures = [client.submit(_run_task, t, pure=False, key=f"{t[1]}-part-{t[2]}-of-{t[3]}") for t in tasks]
                for future in as_completed(futures):
                    yield future.result()
        finally:
            if cluster is not None:
                cluster.close()

    return execute_in_tasks(options, files_per_task, "Dask", runner)


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
            .config("spark.python.worker.reuse", "false")  # a fresh process per task: ROOT state does not leak
            .getOrCreate()
        )
        try:
            spark.sparkContext.setLogLevel("ERROR")
            yield from spark.sparkContext.parallelize(tasks, len(tasks)).map(_run_task).collect()
        finally:
            spark.stop()

    return execute_in_tasks(options, files_per_task, "Spark", runner)
