"""`run-analysis skim`, stage after stage: load -> inputs -> plan (`make_skim_plan`) -> build (the
analysis's graph with a Snapshot per sample) -> run -> write (skim files, records, samples YAML).

Resumable: a sample (or part) whose skim file and record are there, made by the same plan from
unchanged inputs, is not made again (`--force` remakes it). Atomic per file: Snapshot writes under
a temporary name, renamed with its record once the loop succeeded. Batch jobs run it with
`--part I/N`, one file per part; every job writes the samples YAML again from the records present,
under a lock, so the last one to finish lists every sample whose parts are all there. On Dask or
Spark (`execute_skim_in_tasks`) the client plans every sample's chunks of files, and each task
writes its part's file and record into the skim folder itself (a folder its workers share).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import socket
import time
from dataclasses import KW_ONLY, asdict, dataclass, field, replace
from pathlib import Path

from framework.config.load import LoadedConfig
from framework.config.schema.skim import SkimOrigin, SkimVariation
from framework.engine.build import build_graph
from framework.engine.compiled import Job, submit
from framework.engine.rootenv import FRAMEWORK_HEADER, file_digest
from framework.engine.run import SampleResult, collect_results, run_event_loop
from framework.engine.snapshot import take_variation_bits
from framework.errors import ExecutionError
from framework.execute.executors import Executor, Task, TaskOutput, missed_by_tasks, run_tasks
from framework.execute.folders import made, skim_folder
from framework.execute.pipeline import RunOptions, inspect, load
from framework.output.format import TaskResult
from framework.output.skim import SamplesReport, SkimRecord, commit_skim, read_record, record_path, write_samples_yaml
from framework.output.write import check_writable, temporary
from framework.plan.model import DatasetPlan, Plan
from framework.plan.skim import make_skim_plan, skim_spec
from framework.plan.steps import Filter
from framework.plan.systematics import declared_systematics, varies_columns
from framework.timing import Timer

log = logging.getLogger(__name__)


@dataclass
class SkimReport:
    folder: Path
    samples: SamplesReport
    written: list[Path] = field(default_factory=list)
    up_to_date: list[str] = field(default_factory=list)  # skim files left as they were
    events: int = 0  # read
    passed: int = 0  # passing the cuts (nominal)
    threads: int = 0
    tasks: list[TaskResult] = field(default_factory=list)  # on Dask or Spark: each task's result
    timer: Timer = field(default_factory=Timer)

    def summary(self) -> str:
        loop = self.timer.seconds.get("loop", 0.0)
        where = f"in {len(self.tasks)} tasks" if self.tasks else f"on {self.threads} thread(s)"
        lines = []
        if self.written:
            lines.append(
                f"{self.events} events read, {self.passed} pass the skim's cuts in the nominal: "
                f"{len(self.written)} file(s) in {self.folder}; {self.timer.setup_line()}, event loop {loop:.2f} s "
                f"{where}"
            )
        if self.up_to_date:
            lines.append(f"up to date (--force to make again): {', '.join(self.up_to_date)}")
        lines.append(f"{self.samples.path}: {', '.join(self.samples.complete) or 'no sample yet'}")
        lines += [f"  {name}: not listed yet, {why}" for name, why in self.samples.waiting.items()]
        return "\n".join(lines)


def execute_skim(options: RunOptions, timer: Timer | None = None, config: LoadedConfig | None = None) -> SkimReport:
    """Skim the selected samples into `options.output` (default skims/<analysis>): nothing is written
    for a configuration or input mistake, which is reported before any event is read."""
    timer = timer or Timer()
    config = config or load(options, timer)
    skim_spec(config)
    folder = skim_folder(options.output, config.spec.analysis)
    check_writable(folder)
    inspected = inspect(options, timer, config)
    with timer.part("plan"):
        plan = make_skim_plan(config, inspected.inputs, options.selection, inspected.symbols, inspected.cpp_files)
    _tell_lost(config, plan)
    cpp_hash = file_digest([FRAMEWORK_HEADER, *inspected.cpp_files])
    digests = {d.index: skim_digest(plan, d, cpp_hash) for d in plan.datasets}
    todo = [d for d in plan.datasets if options.force or not _up_to_date(folder, d, digests[d.index])]
    report = SkimReport(folder, SamplesReport(folder), timer=timer)
    report.up_to_date = [d.snapshot.file for d in plan.datasets if d not in todo and d.snapshot]
    # ROOT 6.40 writes variations with the events in one thread only ("Multi-threaded snapshot with
    # variations is not supported yet")
    report.threads = 1 if any(d.snapshot and d.snapshot.variations for d in todo) else options.threads
    with made(folder):
        if todo:
            done = _skim(str(config.path), plan, todo, digests, folder, replace(options, threads=report.threads), timer)
            report.written = [folder / r.file for r in done.records]
            report.events, report.passed = done.events, sum(r.passed for r in done.records)
            submit(done.missed, options.compile)
    report.samples = write_samples_yaml(folder, config)
    return report


@dataclass(frozen=True)
class SkimTask(Task):
    """A skim's part, written by the worker into the skim `folder` (absolute; the client made it)."""

    _: KW_ONLY
    folder: Path
    digest: str  # `skim_digest` of its dataset
    config: str  # the analysis YAML, for the record

    def perform(self, scratch: Path, progress_file: Path | None) -> TaskOutput:
        if not self.folder.is_dir():
            raise ExecutionError(
                f"skim folder {self.folder} is not on the worker's host {socket.gethostname()}: skim tasks write "
                "their files there themselves",
                hint="give -o a folder on a file system the workers share (or run the skim as batch jobs: "
                "run-analysis submit --skim)",
            )
        (d,) = self.plan.datasets
        done = _skim(
            self.config,
            self.plan,
            [d],
            {d.index: self.digest},
            self.folder,
            replace(self.options, progress_file=progress_file),
            Timer(),
        )
        (record,) = done.records
        result = self.result(
            done.events, done.loop_seconds, len(done.interpreted), done.missed, passed=record.passed, file=record.file
        )
        return TaskOutput(result, files={})


def execute_skim_in_tasks(
    options: RunOptions, files_per_task: int, executor: Executor, config: LoadedConfig | None = None
) -> SkimReport:
    """The skim as tasks (sample x chunk of `files_per_task` files; a sample of one chunk makes
    `<sample>.root`, else `<sample>.part-I-of-N.root`) on `executor`, whose workers write into the
    skim folder. What is up to date is not made again; the samples YAML is written at the end."""
    timer = Timer()
    config = config or load(options, timer)
    skim_spec(config)
    folder = skim_folder(options.output, config.spec.analysis).resolve()  # the workers' working folders differ
    check_writable(folder)
    executor.start()  # the workers start while the client plans
    try:
        tasks, report = _skim_tasks(options, config, files_per_task, folder, timer)
        with made(folder):
            if tasks:
                start = time.perf_counter()
                report.tasks = run_tasks(executor, tasks, folder, options)
                timer.add("loop", time.perf_counter() - start)
                report.written = [folder / str(t.file) for t in report.tasks]
                report.events = sum(t.events for t in report.tasks)
                report.passed = sum(t.passed or 0 for t in report.tasks)
                submit(missed_by_tasks(report.tasks), options.compile)
            report.samples = write_samples_yaml(folder, config)
    finally:
        executor.stop()
    return report


def _skim_tasks(
    options: RunOptions, config: LoadedConfig, files_per_task: int, folder: Path, timer: Timer
) -> tuple[list[SkimTask], SkimReport]:
    """Every part's plan, made here once, and the report of the parts up to date (not tasks)."""
    inspected = inspect(options, timer, config)
    cpp_hash = file_digest([FRAMEWORK_HEADER, *inspected.cpp_files])
    task_options = replace(options, force=True, progress=False, progress_file=None, threads=1, compile="off")
    report = SkimReport(folder, SamplesReport(folder), threads=1, timer=timer)
    tasks = []
    with timer.part("plan"):
        whole = make_skim_plan(config, inspected.inputs, options.selection, inspected.symbols, inspected.cpp_files)
        _tell_lost(config, whole)  # and skim.keep checked, once
        for name in inspected.samples:
            n = max(1, math.ceil(len(inspected.inputs[name].files) / files_per_task))
            for i in range(1, n + 1):
                selection = replace(options.selection, samples=(name,), part=(i, n) if n > 1 else None)
                plan = make_skim_plan(
                    config, inspected.inputs, selection, inspected.symbols, inspected.cpp_files, check_keep=False
                )
                (d,) = plan.datasets
                assert d.snapshot is not None
                digest = skim_digest(plan, d, cpp_hash)
                if not options.force and _up_to_date(folder, d, digest):
                    report.up_to_date.append(d.snapshot.file)
                    continue
                task = SkimTask(plan, task_options, name, i, n, folder=folder, digest=digest, config=str(config.path))
                tasks.append(task)
    return tasks, report


def skim_digest(plan: Plan, d: DatasetPlan, cpp_hash: str) -> str:
    """What one skim file is made from: the dataset's steps (not where the YAML wrote them), the
    snapshot, the files and entries read, the C++ declared."""
    sample = plan.sample(d.samples[0])
    made_of = {
        "steps": [{k: v for k, v in asdict(step).items() if k != "origin"} for step in d.steps],
        "snapshot": asdict(d.snapshot) if d.snapshot else None,
        "files": sample.files,
        "ranges": sample.ranges,
        "cpp": cpp_hash,
    }
    return hashlib.sha256(json.dumps(made_of, sort_keys=True, default=str).encode()).hexdigest()


def _up_to_date(folder: Path, d: DatasetPlan, digest: str) -> bool:
    assert d.snapshot is not None
    path = folder / d.snapshot.file
    record = read_record(record_path(folder, d.snapshot.file))
    if record is None or record.digest != digest or not path.is_file():
        return False
    made = path.stat().st_mtime
    return all(Path(f).is_file() and Path(f).stat().st_mtime <= made for f in record.inputs if "://" not in f)


def _tell_lost(config: LoadedConfig, plan: Plan) -> None:
    """Shape systematics of the run that no kept column depends on: the skim cannot hold them."""
    declared = declared_systematics(config)
    for d in plan.datasets:
        if d.is_data or d.snapshot is None:
            continue
        lost = [n for n in plan.systematics if varies_columns(config, declared[n]) and n not in d.snapshot.variations]
        for name in lost:
            log.warning(
                "sample %s: shape systematic %r varies no column of skim.keep, so the skim does not hold it",
                d.samples[0],
                name,
            )


@dataclass(frozen=True)
class Skimmed:
    """What one graph of skims made: the files' records (the files are in place), the events read."""

    records: list[SkimRecord]
    events: int
    loop_seconds: float
    interpreted: list[str]  # steps the interpreter compiled
    missed: Job  # what the cache lacked


def _skim(
    config: str,
    plan: Plan,
    todo: list[DatasetPlan],
    digests: dict[int, str],
    folder: Path,
    options: RunOptions,
    timer: Timer,
) -> Skimmed:
    """Build, run and write the skims of `todo` (with `options.threads`): all of them, or none.
    `config`: the analysis YAML's path, for the records."""
    indices = {d.index for d in todo}
    sub = replace(plan, datasets=tuple(todo), samples=tuple(s for s in plan.samples if s.dataset in indices))
    paths: dict[int, Path] = {}
    try:
        for d in todo:
            assert d.snapshot is not None
            fd, paths[d.index] = temporary(folder / d.snapshot.file)
            os.close(fd)
        booked = build_graph(sub, options.threads, options.progress, options.progress_file, timer, paths)
        wall, loop = run_event_loop(booked, sub)
        timer.add("loop", loop)
        timer.add("booking", wall - loop)
        with timer.part("write"):
            results = {r.sample.name: r for r in collect_results(sub, booked).samples}
            records = [_record(config, sub, d, results[d.samples[0]], digests[d.index], paths[d.index]) for d in todo]
    except BaseException:
        for path in paths.values():
            path.unlink(missing_ok=True)
        raise
    for d, record in zip(todo, records):
        commit_skim(folder, paths[d.index], record)
    events = sum(results[r.sample].events for r in records)
    return Skimmed(records, events, loop, booked.interpreted, booked.job)


def _record(config: str, plan: Plan, d: DatasetPlan, result: SampleResult, digest: str, written: Path) -> SkimRecord:
    """The record of a skim file just written (its mask map read, and removed: `engine.snapshot`)."""
    assert d.snapshot is not None
    sample = result.sample
    held = {n: d.directions(n) for n in d.snapshot.variations}
    bits = take_variation_bits(written, d.snapshot.tree, held) if held else {}
    declared = sample.sum_weights if sample.entry_limit is None else None
    origin = SkimOrigin(
        config=config,
        config_hash=plan.config_hash,
        selection=[step.expression for step in d.steps if isinstance(step, Filter)],
        events=result.events,
        format=d.snapshot.format,
        variations={
            n: SkimVariation(definition=d.snapshot.definitions[n], up=bits[n][0], down=bits[n][1])
            for n in d.snapshot.variations
        },
        columns=dict(d.snapshot.derived),
    )
    return SkimRecord(
        sample=sample.name,
        file=d.snapshot.file,
        part=plan.part,
        digest=digest,
        inputs=list(sample.files),
        passed=result.cutflow[-1].events,
        sum_gen_weights=None if sample.is_data or declared is not None else result.sum_gen_weights,
        declared_sum_weights=declared,
        xsec=sample.xsec,
        origin=origin,
    )
