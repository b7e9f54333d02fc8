"""The whole run, stage after stage: load -> inputs -> plan -> build -> run -> write.

`prepare` stops at the plan (what --dry-run prints); `execute` goes on to the files.
The command line and the tests both call these. The configuration is loaded once per run
(`load`) and handed to each stage; a stage given none loads it from `RunOptions.config`.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from framework.config.load import LoadedConfig, load_config, split_names
from framework.config.lumimask import sample_lumi_masks
from framework.engine.build import BookedGraph, build_graph, events_to_read
from framework.engine.compiled import Job, default_mode, submit
from framework.engine.rootenv import FRAMEWORK_HEADER, CppSymbols, file_digest, root, versions
from framework.engine.run import RunResult, collect_results, run_event_loop
from framework.errors import ConfigError, FrameworkError
from framework.execute.folders import output_folder
from framework.inputs.files import inspect_inputs
from framework.inputs.model import SampleInputs
from framework.inputs.preprocess import run_preprocessing
from framework.inputs.retries import retried
from framework.output.format import LumiMaskRecord, RunProvenance, read_provenance
from framework.output.write import check_writable, output_name, write_outputs
from framework.plan.make import make_plan
from framework.plan.memory import check_histogram_memory
from framework.plan.model import Plan, RunSelection
from framework.plan.select import select_samples, select_systematics
from framework.present.views import make_presentation
from framework.stats.declare import make_model_plan
from framework.testing.generate import ensure_generated
from framework.timing import Timer

DEFAULT_HISTOGRAM_MEMORY = 4 << 30


@dataclass(frozen=True)
class RunOptions:
    config: Path
    output: Path | None = None
    selection: RunSelection = field(default_factory=RunSelection)
    threads: int = 2
    progress: bool = False
    command: tuple[str, ...] = ()
    force: bool = False  # recompute samples whose complete output already exists
    skip_bad_files: bool = False  # leave out unreadable input files (reported) instead of stopping
    progress_file: Path | None = None  # JSON of the stage and events done, rewritten as the run goes (notebooks)
    retries: int = 0  # times to try again a remote file that cannot be opened or read (a new graph each time)
    compile: str = field(default_factory=default_mode)  # steps not in the cache: background | now | off
    histogram_memory: int = DEFAULT_HISTOGRAM_MEMORY  # bytes the event loop's histograms may take


def report_progress(path: Path | None, stage: str, **values: object) -> None:
    """Rewrite the progress file (atomically): {"stage": ..., "events": ..., "total": ...}."""
    if path is None:
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"stage": stage, **values}) + "\n")
    os.replace(tmp, path)


@dataclass
class RunReport:
    plan: Plan
    result: RunResult
    outputs: list[Path]
    timer: Timer
    interpreted: list[str] = field(default_factory=list)  # steps the interpreter compiled (none: all from the cache)
    compile_note: str | None = None  # what was queued for the compiler
    missed: Job = field(default_factory=Job)  # what the cache lacked

    @property
    def setup_seconds(self) -> float:
        return self.timer.setup

    @property
    def loop_seconds(self) -> float:
        return self.timer.seconds.get("loop", 0.0)

    @property
    def events(self) -> int:
        return sum(s.events for s in self.result.samples)

    def summary(self) -> str:
        rate = self.events / self.loop_seconds if self.loop_seconds > 0 else float("inf")
        lines = [
            (
                f"{self.events} events from {len(self.result.samples)} samples: {self.timer.setup_line()}, "
                f"event loop {self.loop_seconds:.2f} s ({rate:,.0f} events/s), "
                f"writing {self.timer.seconds.get('write', 0):.2f} s"
            )
        ]
        if self.compile_note:
            lines.append(f"  {self.compile_note}")
        lines += [f"  wrote {p}" for p in self.outputs]
        return "\n".join(lines)


def resolve_cpp(config: LoadedConfig) -> list[Path]:
    """The C++ files of `cpp:`, each relative to the YAML file that lists it."""
    cpp_files = []
    for i, name in enumerate(config.spec.cpp):
        path = (config.source.file_of(("cpp", i)).parent / name).resolve()
        if not path.is_file():
            raise ConfigError(
                f"C++ file {str(path)!r} does not exist",
                config.locate("cpp", i),
                "paths in 'cpp:' are relative to the YAML file that lists them",
            )
        cpp_files.append(path)
    return cpp_files


@dataclass(frozen=True)
class Inspected:
    """A loaded, checked configuration and its inspected inputs: what plans are made from (one
    for a run, or one per task of a distributed run)."""

    config: LoadedConfig
    samples: list[str]
    cpp_files: list[Path]
    inputs: dict[str, SampleInputs]
    symbols: CppSymbols
    options: RunOptions

    def plan(self, selection: RunSelection) -> Plan:
        """The plan of `selection`; its histograms checked to fit in memory before any event is read."""
        plan = make_plan(self.config, self.inputs, selection, self.symbols, self.cpp_files)
        check_histogram_memory(plan, self.options.threads, self.options.histogram_memory)
        return plan


def load(options: RunOptions, timer: Timer | None = None) -> LoadedConfig:
    """The run's configuration, loaded and validated (its time is part of 'plan')."""
    with (timer or Timer()).part("plan"):
        return load_config(options.config)


def inspect(options: RunOptions, timer: Timer | None = None, config: LoadedConfig | None = None) -> Inspected:
    """Check the configuration (loaded here unless given), make missing generated or preprocessed
    inputs, inspect every selected sample's files."""
    timer = timer or Timer()
    if options.threads < 1:
        raise FrameworkError("-j/--threads must be at least 1")
    if options.selection.max_events is not None and options.selection.max_events < 1:
        raise FrameworkError("--max-events must be at least 1")
    with timer.part("root"):
        root()
    config = config or load(options, timer)
    with timer.part("plan"):
        make_presentation(config)  # plots and exports are checked before, not after, the event loop
        make_model_plan(config)  # and the statistical model
        names = select_samples(config, options.selection)
        cpp_files = resolve_cpp(config)
    with timer.part("inputs"):
        run_preprocessing(config, cpp_files)
        ensure_generated(config, names)
        inputs = inspect_inputs(config, names, options.skip_bad_files, options.retries)
    with timer.part("plan"):
        symbols = CppSymbols(cpp_files, [config.locate("cpp", i) for i in range(len(cpp_files))])
    return Inspected(config, names, cpp_files, inputs, symbols, options)


def prepare(
    options: RunOptions, timer: Timer | None = None, config: LoadedConfig | None = None
) -> tuple[Plan, list[Path]]:
    """Load, check the inputs and decide: everything but the event loop. Returns the plan and C++ files."""
    timer = timer or Timer()
    inspected = inspect(options, timer, config)
    with timer.part("plan"):
        return inspected.plan(options.selection), inspected.cpp_files


def up_to_date(options: RunOptions, config: LoadedConfig | None = None) -> list[str]:
    """Selected samples whose output file exists, complete, from the same config and selection."""
    config = config or load(options)
    outdir = output_folder(options.output, config.spec.analysis)
    part = list(options.selection.part) if options.selection.part else None
    masks = sample_lumi_masks(config)
    done = []
    for name in select_samples(config, options.selection):
        outputs = split_names(name, config.spec.samples[name].split) or [name]
        mask = masks.get(name)
        record = LumiMaskRecord(file=str(mask.path), sha256=mask.sha256) if mask else None
        if all(_is_up_to_date(outdir / output_name(o, part), config, options, record) for o in outputs):
            done.append(name)
    return done


def _is_up_to_date(
    path: Path, config: LoadedConfig, options: RunOptions, lumi_mask: LumiMaskRecord | None = None
) -> bool:
    """An output file of another format version is refused (InputError), not taken for out of date.
    `lumi_mask`: the sample's certified luminosity now (a changed file makes the output out of date)."""
    if not path.is_file():
        return False
    try:
        provenance = read_provenance(path)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return False
    part = tuple(options.selection.part) if options.selection.part else None
    made = path.stat().st_mtime
    inputs_unchanged = all(
        Path(f).is_file() and Path(f).stat().st_mtime <= made for f in provenance.files if "://" not in f
    )
    cpp = resolve_cpp(config)
    return bool(
        provenance.config_hash == config.config_hash()
        and provenance.cpp_hash == file_digest([FRAMEWORK_HEADER, *cpp])
        and list(provenance.systematics) == select_systematics(config, options.selection.systematics)
        and provenance.max_events == options.selection.max_events
        and provenance.part == part
        and provenance.lumi_mask == lumi_mask
        and inputs_unchanged
    )


def execute(options: RunOptions, timer: Timer | None = None, config: LoadedConfig | None = None) -> RunReport | None:
    """Run the analysis and write one file per sample. Nothing is written if any step fails.

    Samples whose output is already complete and up to date are skipped unless `force`;
    returns None when there is nothing left to do. `timer` collects where the time goes;
    `config` is the loaded `options.config` (loaded here when not given).
    """
    timer = timer or Timer()
    config = config or load(options, timer)
    if not options.force:
        done = up_to_date(options, config)
        if done:
            todo = [n for n in select_samples(config, options.selection) if n not in done]
            if not todo:
                return None
            options = replace(options, selection=replace(options.selection, samples=tuple(todo)))
    report_progress(options.progress_file, "set-up", events=0, total=0, seconds=0.0)
    plan, _ = prepare(options, timer, config)
    return execute_plan(plan, options, timer)


def execute_plan(plan: Plan, options: RunOptions, timer: Timer | None = None) -> RunReport:
    """Build, run and write a plan made before, here or elsewhere (a distributed task runs the
    plan its client made: no configuration to load, no file to inspect)."""
    timer = timer or Timer()
    check_writable(output_folder(options.output, plan.analysis))
    with timer.part("root"):
        root()
    booked, wall, loop = retried(lambda: _built_and_run(plan, options, timer), options.retries)
    timer.add("loop", loop)
    timer.add("booking", wall - loop)  # readers made and tasks started, before the first event
    report_progress(
        options.progress_file, "writing", events=events_to_read(plan), total=events_to_read(plan), seconds=loop
    )
    with timer.part("write"):
        written, result = _write(options, plan, booked, timer)
    note = submit(booked.job, options.compile)
    return RunReport(plan, result, written, timer, booked.interpreted, note, booked.job)


def _built_and_run(plan: Plan, options: RunOptions, timer: Timer) -> tuple[BookedGraph, float, float]:
    """A new graph of the plan and its event loop: the booked graph, the loop's wall time and its own.
    A graph whose loop failed is freed (a remote file lost: --retries builds a new one)."""
    booked = build_graph(plan, options.threads, options.progress, options.progress_file, timer)
    try:
        wall, loop = run_event_loop(booked, plan)
    except FrameworkError:
        booked.session.close()
        raise
    return booked, wall, loop


def _write(options: RunOptions, plan: Plan, booked: BookedGraph, timer: Timer) -> tuple[list[Path], RunResult]:
    result = collect_results(plan, booked)
    events = sum(s.events for s in result.samples)
    loop = timer.seconds.get("loop", 0.0)
    timing = {
        "setup_seconds": round(timer.setup, 3),
        "event_loop_seconds": round(loop, 3),
        "events_per_second": round(events / loop, 1) if loop > 0 else 0.0,
        "setup_parts": {k: v for k, v in timer.as_dict().items() if k != "setup"},
    }
    provenance = RunProvenance(
        config=plan.config,
        config_hash=plan.config_hash,
        cpp_hash=file_digest([FRAMEWORK_HEADER, *map(Path, plan.cpp)]),
        versions=versions(),
        command=list(options.command),
        threads=options.threads,
        systematics=plan.systematics,
        one_sided=plan.one_sided,
        part=plan.part,
        max_events=plan.max_events,
        timing=timing,
    )
    summary = {"analysis": plan.analysis, "events": events, **timing, "threads": options.threads}
    outdir = output_folder(options.output, plan.analysis)
    return write_outputs(result, provenance, outdir, summary), result
