"""Run stage on Dask or Spark: the same plan, one task per sample and chunk of files, merged
like batch parts.

ROOT 6.40's Distributed RDataFrame runs only its fixed list of operations (our fill is
a custom action) and its workers crash on dataset specs; so each task runs this framework's
own graph on one sample's `--part I/N` in a worker process, and the parts are added and
normalised by `framework.output.merge`. A worker writes its part into a temporary folder of its own
and sends the files back as bytes with the task's result (as coffea returns results through
futures): workers on HTCondor pools or batch-launched Dask share no file system with the client,
and the client writes each part into its parts folder as it arrives. A task whose worker is lost
runs again elsewhere (`--task-retries`); each task's output arrives once however often it ran, so
nothing is counted twice. The client loads the configuration, inspects the inputs and
makes every task's plan (plain data) once; a task only builds, runs and writes that plan.
A skim's task (`framework.execute.skim`) writes its file into the skim folder itself, as a batch
job does: event files are too large to send back, so its workers share that folder's file system
with the client. Worker processes live on between tasks: ROOT, the session and the compiled steps a
worker loaded (from the cache, `framework.engine.compiled`) serve its next tasks. Tasks run one thread each:
workers are the parallelism. Dask schedules; nothing is scheduled by hand. A local cluster
of worker processes by default, or any scheduler address (dask-jobqueue, a site cluster)
with `--scheduler`.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from framework.config.load import LoadedConfig
from framework.engine.build import events_to_read
from framework.engine.compiled import Job, submit
from framework.errors import ExecutionError, FrameworkError
from framework.execute.clusters import ClusterOptions
from framework.execute.folders import made, output_folder
from framework.execute.pipeline import RunOptions, execute_plan, inspect, load
from framework.execute.progress import TaskProgress
from framework.output.format import TaskResult
from framework.output.merge import merge_outputs
from framework.output.write import check_writable
from framework.plan.model import Plan


@dataclass(frozen=True)
class TaskOutput:
    """What a task sends back: its result and its part's files, {name: bytes as written} (compressed
    already), for the client to write (none for a task that writes its files in place)."""

    result: TaskResult
    files: dict[str, bytes]


@dataclass(frozen=True)
class Task:
    """One sample's chunk `part` of `parts` of its files, planned by the client; what a worker does
    with it is its kind's `perform`."""

    plan: Plan
    options: RunOptions  # threads and compile mode of the task; its output folder is the worker's own
    sample: str
    part: int
    parts: int

    def perform(self, scratch: Path, progress_file: Path | None) -> TaskOutput:
        """Build, run and write the plan; `scratch` is the worker's folder for this task (removed after it)."""
        raise NotImplementedError

    def result(self, events: int, loop_seconds: float, interpreted: int, missed: Job, **extra: Any) -> TaskResult:
        return TaskResult(
            sample=self.sample,
            part=self.part,
            events=events,
            seconds=0.0,  # set by `run_task`, which times the whole task
            loop_seconds=loop_seconds,
            interpreted=interpreted,
            missed=missed.to_json(),
            worker=os.getpid(),
            **extra,
        )


@dataclass(frozen=True)
class RunTask(Task):
    """A run's part: written into the worker's scratch folder and sent back as bytes (workers on
    HTCondor pools or batch-launched Dask share no file system with the client)."""

    def perform(self, scratch: Path, progress_file: Path | None) -> TaskOutput:
        # compile "off": the client submits one job for all tasks
        report = execute_plan(self.plan, replace(self.options, output=scratch, progress_file=progress_file))
        files = {path.name: path.read_bytes() for path in report.outputs}
        result = self.result(report.events, report.loop_seconds, len(report.interpreted), report.missed)
        return TaskOutput(result, files)


SEND_EVERY = 0.5  # seconds between two progress events of a task: each one goes through the scheduler


def run_task(
    task: Task, progress_topic: str | None = None, send_every: float = SEND_EVERY
) -> TaskOutput | FrameworkError:
    """What a worker does with a task: perform it with a temporary folder of its own. This framework's
    errors are returned, not raised: they recur on every try, so the executor retries only the
    others (a file server gone, a full disk). On a Dask worker, with `progress_topic`, the task's
    events done so far go to the client every `send_every` seconds as it runs."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rdf-analysis-task-") as folder:
        progress_file = Path(folder) / "progress.json" if progress_topic else None
        try:
            with _events_sent(task, progress_file, progress_topic, send_every):
                output = task.perform(Path(folder), progress_file)
        except FrameworkError as err:
            return err
    return replace(output, result=output.result.model_copy(update={"seconds": time.perf_counter() - start}))


@contextmanager
def _events_sent(task: Task, progress_file: Path | None, topic: str | None, every: float) -> Iterator[None]:
    """While the task runs: its event count, read from the progress file its event loop keeps (the threaded
    run's callback), sent to the client as a Dask worker event on `topic` `every` seconds."""
    if progress_file is None or topic is None:
        yield
        return
    from dask.distributed import get_worker

    worker = get_worker()
    done = threading.Event()

    def send() -> None:
        sent = 0
        while not done.wait(every):
            try:
                events = int(json.loads(progress_file.read_text())["events"])
            except (OSError, ValueError, KeyError):
                continue  # the loop has not written it yet
            if events != sent:
                worker.log_event(topic, {"sample": task.sample, "part": task.part, "events": events})
                sent = events

    sender = threading.Thread(target=send, name="task-progress", daemon=True)
    sender.start()
    try:
        yield
    finally:
        done.set()
        sender.join()


def _tasks(options: RunOptions, config: LoadedConfig, files_per_task: int) -> list[RunTask]:
    """Every task's plan, made here once: the workers load no configuration and inspect no file."""
    inspected = inspect(options, config=config)
    task_options = replace(options, force=True, progress=False, progress_file=None, threads=1, compile="off")
    tasks = []
    for name in inspected.samples:
        n = max(1, math.ceil(len(inspected.inputs[name].files) / files_per_task))
        for i in range(1, n + 1):
            plan = inspected.plan(replace(options.selection, samples=(name,), part=(i, n)))
            tasks.append(RunTask(plan, task_options, name, i, n))
    return tasks


class Executor:
    """Where tasks run. `start` brings workers up (and warms them while the client plans), `run`
    yields each task's output as it finishes, `stop` ends what `start` began. A task that failed
    or whose worker was lost is tried again `retries` times."""

    name = "tasks"
    module = ""  # what it imports, and the extra that installs it
    extra = ""

    def __init__(self, retries: int) -> None:
        self.retries = retries
        try:
            importlib.import_module(self.module)
        except ImportError as err:
            raise FrameworkError(
                f"the {self.name} executor needs {self.module}", hint=f"pip install 'rdf-analysis[{self.extra}]'"
            ) from err

    def start(self) -> None:
        return None

    def run(self, tasks: Sequence[Task], progress: TaskProgress) -> Iterable[TaskOutput | FrameworkError]:
        """Each task's output as it finishes; `progress` is told of running tasks' events where the
        executor can send them (the caller reports finished tasks)."""
        raise NotImplementedError

    def stop(self) -> None:
        return None


def warm_up() -> int:
    """On a worker, before its first task: ROOT started and the C++ session ready."""
    from framework.engine.session import api

    api()
    return os.getpid()


class DaskExecutor(Executor):
    """A local cluster of single-threaded worker processes on loopback, or the scheduler at `address`."""

    name, module, extra = "Dask", "dask.distributed", "dask"
    send_every = SEND_EVERY  # tests send more often

    def __init__(
        self,
        address: str | None,
        workers: int,
        retries: int,
        jobs: ClusterOptions | None = None,
        client: Any = None,
    ) -> None:
        super().__init__(retries)
        self.address, self.workers = address, workers
        self.jobs = jobs  # workers as batch jobs (dask-jobqueue) instead of a local cluster
        if jobs is not None:
            jobs.check()
        self.cluster: Any = None
        self.client: Any = client  # a client made by the caller: used, and left open
        self.own_client = client is None
        self.warming: list[Any] = []

    def start(self) -> None:
        import dask
        from dask.distributed import Client, LocalCluster

        # The scheduler made here (a site's has its own settings): a lost worker's tasks are retried
        # by it (allowed-failures), a raised error by `retries=`. A worker holds one task per thread
        # (saturation 1.0; Dask's default 1.1 gives a single-threaded worker a second one in
        # reserve): at the end a task waiting behind a busy worker's last one is the tail an idle
        # worker could have run.
        settings = {
            "distributed.scheduler.allowed-failures": self.retries,
            "distributed.scheduler.worker-saturation": 1.0,
        }
        if self.jobs is not None:
            with dask.config.set(settings):
                self.cluster = self.jobs.make_cluster()
        elif self.address is None and self.own_client:
            # the dashboard on a free loopback port: a fixed one (8787, even with None here) is taken
            # as soon as two runs share a machine
            with dask.config.set(settings):
                self.cluster = LocalCluster(
                    n_workers=self.workers,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address="127.0.0.1:0",
                )
        if self.own_client:
            self.client = Client(self.address or self.cluster)
        if self.jobs is not None:
            self.jobs.wait_for_workers(self.client)
        elif self.cluster is not None:
            self.client.wait_for_workers(self.workers, timeout=120)
        # one warm-up task per worker, first in its queue: ROOT starts while the client plans
        self.warming = [
            self.client.submit(warm_up, pure=False, workers=[address], allow_other_workers=False, priority=1 << 60)
            for address in self.client.scheduler_info()["workers"]
        ]

    def run(self, tasks: Sequence[Task], progress: TaskProgress) -> Iterable[TaskOutput | FrameworkError]:
        from dask.distributed import as_completed

        # a topic of this run's own: runs sharing a scheduler do not see each other's events
        topic = f"rdf-analysis-progress-{uuid.uuid4().hex}" if progress.shown else None
        if topic is not None:
            self.client.subscribe_topic(
                topic, lambda event: progress.running(event[1]["sample"], event[1]["part"], event[1]["events"])
            )
        try:
            # the largest first: a worker left with one long task at the end is time lost
            futures = [
                self.client.submit(
                    run_task,
                    t,
                    topic,
                    self.send_every,
                    pure=False,
                    key=f"{t.sample}-part-{t.part}-of-{t.parts}",
                    priority=sum(sum(s.entries) for s in t.plan.samples),
                    retries=self.retries,
                )
                for t in tasks
            ]
            for future in as_completed(futures):
                yield future.result()
                # its files leave the worker's memory, and a worker lost later does not run it again
                future.release()
        finally:
            if topic is not None:
                self.client.unsubscribe_topic(topic)

    def stop(self) -> None:
        if self.client is not None and self.own_client:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


class SparkExecutor(Executor):
    """A local master with `workers` cores, or the cluster at `master` (its executors need this
    package installed)."""

    name, module, extra = "Spark", "pyspark", "spark"

    def __init__(self, master: str | None, workers: int, retries: int) -> None:
        super().__init__(retries)
        self.master, self.workers = master, workers
        self.spark: Any = None

    def start(self) -> None:
        from pyspark.sql import SparkSession

        self.spark = (
            # local[N, F]: a local master tries a task F times (the cluster setting is ignored there)
            SparkSession.builder.master(self.master or f"local[{self.workers},{self.retries + 1}]")
            .appName("rdf-analysis")
            .config("spark.task.maxFailures", str(self.retries + 1))
            .config("spark.ui.enabled", "false")
            .config("spark.python.worker.reuse", "true")  # a worker's ROOT and compiled steps serve its next tasks
            .getOrCreate()
        )
        self.spark.sparkContext.setLogLevel("ERROR")

    def run(self, tasks: Sequence[Task], progress: TaskProgress) -> Iterable[TaskOutput | FrameworkError]:
        # no channel from a running Spark task to the driver (an accumulator is read after tasks end), and
        # collect() returns once all are done: progress counts the events of finished tasks, at the end
        yield from self.spark.sparkContext.parallelize(tasks, len(tasks)).map(run_task).collect()

    def stop(self) -> None:
        if self.spark is not None:
            self.spark.stop()


def execute_in_tasks(
    options: RunOptions, files_per_task: int, executor: Executor, config: LoadedConfig | None = None
) -> dict[str, Any]:
    """Run the analysis as tasks (sample x chunk of files) on `executor`, then merge the parts
    into the output folder: the same files as a threaded run. The workers start while the
    client plans. `config` is the loaded `options.config` (loaded here when not given)."""
    start = time.perf_counter()
    config = config or load(options)
    outdir = output_folder(options.output, config.spec.analysis)
    check_writable(outdir)
    with made(outdir):  # the client writes the tasks' parts inside it
        executor.start()
        try:
            with tempfile.TemporaryDirectory(prefix=".parts-", dir=outdir) as parts:
                started = time.perf_counter()
                tasks = _tasks(options, config, files_per_task)
                planned = time.perf_counter()
                done = run_tasks(executor, tasks, Path(parts), options)
                execution = time.perf_counter() - planned
                merge_start = time.perf_counter()
                report = merge_outputs(Path(parts), outdir)
                if report.missing:
                    raise ExecutionError(f"parts missing after the {executor.name} run: {report.missing}")
        finally:
            executor.stop()
    return {
        "outputs": report.merged,
        "events": sum(d.events for d in done),
        "compile_note": submit(missed_by_tasks(done), options.compile),
        "start_seconds": started - start,
        "planning_seconds": planned - started,
        "execution_seconds": execution,
        "merge_seconds": time.perf_counter() - merge_start,
        "tasks": done,
    }


def run_tasks(executor: Executor, tasks: Sequence[Task], parts: Path, options: RunOptions) -> list[TaskResult]:
    """Every task's result; its files written into `parts` as each arrives, and the events done shown
    (`options.progress`, `options.progress_file`) as the tasks run."""
    total = sum(events_to_read(t.plan) for t in tasks)
    progress = TaskProgress(options.progress_file, options.progress, total, len(tasks))
    done: list[TaskResult] = []
    try:
        for output in executor.run(tasks, progress):
            if isinstance(output, FrameworkError):
                raise output
            for name, content in output.files.items():
                (parts / name).write_bytes(content)
            done.append(output.result)
            progress.finished(output.result.sample, output.result.part, output.result.events)
    except FrameworkError:
        raise
    except Exception as err:  # a worker died or a task failed outside our own errors
        raise ExecutionError(f"a {executor.name} task failed: {err}") from err
    finally:
        progress.close()
    return done


def missed_by_tasks(done: list[TaskResult]) -> Job:
    """One compile job for what the tasks' caches lacked."""
    missed = Job()
    for d in done:
        job = Job.from_json(d.missed)
        missed.session |= job.session
        for step in job.steps:
            missed.add(step, step.type)
    return missed


def execute_on_dask(
    options: RunOptions,
    scheduler: str | None = None,
    workers: int = 2,
    files_per_task: int = 1,
    config: LoadedConfig | None = None,
    jobs: ClusterOptions | None = None,
    client: Any = None,
    *,
    task_retries: int,
) -> dict[str, Any]:
    """Run the analysis as Dask tasks: a local cluster, `scheduler`, worker `jobs` on a batch system, or the
    caller's `client` (a dask.distributed.Client, left open); a task whose worker is lost (preempted,
    killed) or that fails is run again up to `task_retries` times."""
    return execute_in_tasks(
        options, files_per_task, DaskExecutor(scheduler, workers, task_retries, jobs, client), config
    )


def execute_on_spark(
    options: RunOptions,
    master: str | None = None,
    workers: int = 2,
    files_per_task: int = 1,
    config: LoadedConfig | None = None,
    *,
    task_retries: int,
) -> dict[str, Any]:
    """Run the analysis as Spark tasks: a local master with `workers` cores, or the cluster at `master`;
    `task_retries` as for Dask."""
    return execute_in_tasks(options, files_per_task, SparkExecutor(master, workers, task_retries), config)
