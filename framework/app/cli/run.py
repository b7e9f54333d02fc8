"""`run-analysis CONFIG`: the run itself, over `framework.execute.pipeline` (or the Dask and Spark
executors), then what the config asks for after its event loop."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from framework.engine.compiled import COMPILE_ENV, MODES
from framework.errors import FrameworkError
from framework.timing import Timer, process_age

if TYPE_CHECKING:
    from framework.config.load import LoadedConfig
    from framework.execute.clusters import ClusterOptions
    from framework.execute.executors import Executor
    from framework.execute.pipeline import RunOptions


def add_selection_arguments(p: argparse.ArgumentParser, systematics_help: str) -> None:
    """--samples, --eras, --systematics: what a run (or a skim) takes of the configuration."""
    p.add_argument("--samples", nargs="+", default=[], metavar="NAME", help="sample names or glob patterns")
    p.add_argument("--eras", nargs="+", default=[], metavar="ERA", help="only samples of these eras")
    p.add_argument("--systematics", default="all", metavar="SEL", help=systematics_help)


def parser(epilog: str = "") -> argparse.ArgumentParser:
    """The run's arguments; `epilog` lists the other commands."""
    p = argparse.ArgumentParser(
        prog="run-analysis",
        allow_abbrev=False,
        description="Run a declarative analysis on ROOT's RDataFrame and write N-dimensional histograms per sample.",
        epilog=epilog,
    )
    p.add_argument("config", type=Path, help="the analysis YAML, e.g. analyses/demo/config.yaml")
    p.add_argument("-o", "--output", type=Path, help="output folder (default: results/<analysis>)")
    add_selection_arguments(p, "'all' (default), 'none', or comma-separated names/patterns, e.g. 'jes*,scale'")
    p.add_argument("-j", "--threads", type=int, default=2, help="event-loop threads (default 2)")
    p.add_argument("--max-events", type=int, metavar="N", help="read at most N events per sample (quick tests)")
    p.add_argument(
        "--part",
        type=_part,
        metavar="I/N",
        help="only the I-th of N file chunks of each sample (batch jobs; outputs are merged by 'run-analysis merge')",
    )
    p.add_argument("--dry-run", action="store_true", help="validate and print the plan; no event loop")
    p.add_argument("--force", action="store_true", help="recompute samples whose output is already up to date")
    p.add_argument("--skip-bad-files", action="store_true", help="leave out unreadable input files (listed) and go on")
    p.add_argument(
        "--retries",
        type=int,
        default=0,
        metavar="N",
        help="try N more times, 1, 2, 4 ... s apart, to open a remote (root://, https://) file, and to run the "
        "event loop again when one is lost while it reads (its server gone)",
    )
    _add_execution_arguments(p)
    return p


def _add_execution_arguments(p: argparse.ArgumentParser) -> None:
    """Where and how the run executes, and what it writes besides its outputs."""
    add_task_arguments(p)
    p.add_argument("--plan-json", type=Path, metavar="FILE", help="also write the plan as JSON to FILE")
    p.add_argument(
        "--compile",
        choices=MODES,
        default=None,
        help="steps not yet compiled in the cache: compile them after the run in the 'background' "
        f"(default, or ${COMPILE_ENV}), 'now' (wait for it) or 'off'",
    )
    p.add_argument(
        "--profile", type=Path, metavar="FILE", help="write where the time went (set-up parts, loop) as JSON"
    )
    p.add_argument(
        "--histogram-memory",
        type=_size,
        default=None,
        metavar="SIZE",
        help="memory the event loop's histograms may take, e.g. 8GiB (default 4GiB); checked before the loop",
    )
    p.add_argument(
        "--plots",
        type=Path,
        metavar="DIR",
        help="after the run, also make the plots, tables and report page in DIR (as 'run-analysis plot')",
    )
    p.add_argument(
        "--watch",
        action="store_true",
        help="stay running: run again in a warm process whenever the config, an included file or a C++ helper is saved",
    )
    p.add_argument(
        "--progress-file",
        type=Path,
        metavar="FILE",
        help="keep FILE updated with the stage and the events done, as JSON (notebooks read it)",
    )
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar during the event loop (default: when the output is a terminal)",
    )


def add_task_arguments(p: argparse.ArgumentParser) -> None:
    """Threads, or tasks on Dask or Spark: where a run (or a skim) executes."""
    p.add_argument(
        "--executor", choices=("threads", "dask", "spark"), default="threads", help="where the event loop runs"
    )
    p.add_argument("--master", metavar="URL", help="Spark master (default: local[WORKERS])")
    p.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler (default: a local cluster)")
    p.add_argument(
        "--workers", type=int, default=2, help="worker processes of the local Dask or Spark cluster (default 2)"
    )
    p.add_argument("--files-per-task", type=int, default=1, help="input files per Dask task (default 1)")
    p.add_argument(
        "--task-retries",
        type=int,
        default=2,
        metavar="N",
        help="run a Dask or Spark task again up to N times when its worker is lost (preempted, killed) or it fails "
        "(default 2)",
    )
    _add_cluster_arguments(p)


def _add_cluster_arguments(p: argparse.ArgumentParser) -> None:
    """Dask workers as batch jobs; the resources default to the config's `batch:` block."""
    from framework.execute.clusters import KINDS

    g = p.add_argument_group("Dask workers as batch jobs (dask-jobqueue; defaults from the config's batch: block)")
    g.add_argument("--cluster", choices=tuple(KINDS), help="submit the Dask workers as jobs of this batch system")
    g.add_argument("--min-workers", type=int, metavar="N", help="workers kept running (batch: min_workers)")
    g.add_argument("--max-workers", type=int, metavar="N", help="workers at most, as tasks queue (batch: max_workers)")
    g.add_argument("--cores", type=int, metavar="N", help="single-threaded workers per job (batch: threads)")
    g.add_argument("--memory", metavar="SIZE", help="memory per job, e.g. 4GB (batch: memory)")
    g.add_argument("--walltime", metavar="TIME", help="wall time per job, e.g. 90m, 2h (batch: time)")
    g.add_argument("--disk", metavar="SIZE", help="disk per job, HTCondor (batch: disk)")
    g.add_argument(
        "--job-directive",
        action="append",
        dest="directives",
        metavar="LINE",
        help="extra job-file directive, repeatable, e.g. --job-directive=--qos=short (batch: directives)",
    )
    g.add_argument("--queue", help="queue or partition of the worker jobs")
    g.add_argument("--scheduler-host", metavar="HOST", help="address the scheduler listens on (the nodes reach)")
    g.add_argument("--interface", metavar="NAME", help="network interface of the scheduler and workers, e.g. ib0")
    g.add_argument("--job-logs", type=Path, metavar="DIR", help="folder of the worker jobs' output files")


def _size(text: str) -> int:
    """'8GB', '512MB', '1.5GiB' or bytes."""
    units = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12, "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}
    match = re.fullmatch(r"\s*([0-9.]+)\s*([kmgt]i?)?b?\s*", text.lower())
    if not match or match.group(1).count(".") > 1:
        raise argparse.ArgumentTypeError(f"expected a size such as 8GB or 512MB, got {text!r}")
    return int(float(match.group(1)) * units[match.group(2) or ""])


def _part(text: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected I/N such as 2/8, got {text!r}") from None
    if not 1 <= i <= n:
        raise argparse.ArgumentTypeError(f"part {text!r}: need 1 <= I <= N")
    return i, n


def _options(args: argparse.Namespace, argv: list[str]) -> RunOptions:
    from framework.execute.pipeline import RunOptions
    from framework.plan.model import RunSelection

    return RunOptions(
        config=args.config,
        output=args.output,
        selection=RunSelection(tuple(args.samples), tuple(args.eras), args.systematics, args.max_events, args.part),
        threads=args.threads,
        progress=sys.stdout.isatty() if args.progress is None else args.progress,
        command=("run-analysis", *argv),
        force=args.force,
        skip_bad_files=args.skip_bad_files,
        progress_file=args.progress_file,
        retries=args.retries,
        **({"compile": args.compile} if args.compile else {}),
        **({"histogram_memory": args.histogram_memory} if args.histogram_memory else {}),
    )


def check_task_arguments(args: argparse.Namespace) -> None:
    """Before anything is loaded: task arguments that do not go together."""
    if args.cluster and (args.executor != "dask" or args.scheduler):
        raise FrameworkError(
            "--cluster starts Dask workers as batch jobs: it goes with --executor dask, without --scheduler",
            hint="run-analysis CONFIG --executor dask --cluster slurm",
        )
    if args.files_per_task < 1:
        raise FrameworkError(f"--files-per-task {args.files_per_task}: must be at least 1")
    if args.part and args.executor != "threads":
        raise FrameworkError(
            f"--part goes with batch jobs, not --executor {args.executor}: the tasks split each sample themselves",
            hint="--files-per-task N sets how many files each task reads",
        )


def task_executor(args: argparse.Namespace, config: LoadedConfig) -> Executor:
    """The Dask or Spark executor of `--executor` and its arguments."""
    from framework.execute.executors import DaskExecutor, SparkExecutor

    if args.executor == "dask":
        jobs = _cluster_options(args, config) if args.cluster else None
        return DaskExecutor(args.scheduler, args.workers, args.task_retries, jobs)
    return SparkExecutor(args.master, args.workers, args.task_retries)


def _cluster_options(args: argparse.Namespace, config: LoadedConfig) -> ClusterOptions:
    from framework.execute.clusters import ClusterOptions

    if args.memory is not None and not re.fullmatch(r"\d+(\.\d+)?\s*[KMGT]B", args.memory):
        raise FrameworkError(f"--memory {args.memory!r}: expected a size such as 4GB")
    if args.walltime is not None and not re.fullmatch(r"\d+[smhd]", args.walltime):
        raise FrameworkError(f"--walltime {args.walltime!r}: expected a time such as 90m or 2h")
    return ClusterOptions.from_batch(
        args.cluster,
        config.spec.batch,
        cores=args.cores,
        memory=args.memory,
        walltime=args.walltime,
        disk=args.disk,
        directives=tuple(args.directives) if args.directives else None,
        min_workers=args.min_workers,
        max_workers=args.max_workers,
        queue=args.queue,
        host=args.scheduler_host,
        interface=args.interface,
        log_directory=args.job_logs,
    )


def main(argv: list[str], warm: bool = False, epilog: str = "") -> int:
    """Run the analysis of `argv`; `warm`: this process has run before (a worker), so no start-up time."""
    from framework.execute.folders import output_folder
    from framework.execute.pipeline import load, prepare

    timer = Timer()
    timer.add("imports", 0.0 if warm else process_age())
    args = parser(epilog).parse_args(argv)
    if args.watch:
        from framework.app.watch import watch

        return watch(args.config, [a for a in argv if a != "--watch"])
    check_task_arguments(args)
    options = _options(args, argv)
    config = load(options, timer)  # the one parse of the run: every stage below is handed it
    if args.dry_run or args.plan_json:
        plan, _ = prepare(options, config=config)
        if args.plan_json:
            args.plan_json.write_text(plan.to_json())
        if args.dry_run:
            print(plan.describe())
            return 0
    if args.executor != "threads":
        _run_in_tasks(args, options, config)
    else:
        _run_in_threads(args, options, config, timer)
    from framework.execute.after_run import after_run

    after_run(config, output_folder(options.output, config.spec.analysis), plots=args.plots, tell=print)
    return 0


def _run_in_threads(args: argparse.Namespace, options: RunOptions, config: LoadedConfig, timer: Timer) -> None:
    from framework.execute.pipeline import execute

    report = execute(options, timer, config)
    print(report.summary() if report else "every selected sample's output is up to date (use --force to recompute)")
    if args.profile:
        interpreted = report.interpreted if report else []
        timer.write(args.profile, interpreted_steps=len(interpreted), interpreted=interpreted)


def _run_in_tasks(args: argparse.Namespace, options: RunOptions, config: LoadedConfig) -> None:
    from framework.execute.executors import execute_in_tasks

    done = execute_in_tasks(options, args.files_per_task, task_executor(args, config), config)
    print(
        f"{done['events']} events in {len(done['tasks'])} {args.executor.capitalize()} tasks: workers started "
        f"{done['start_seconds']:.2f} s, planning {done['planning_seconds']:.2f} s, execution "
        f"{done['execution_seconds']:.2f} s, merge {done['merge_seconds']:.2f} s"
    )
    if done["compile_note"]:
        print(f"  {done['compile_note']}")
    for path in done["outputs"]:
        print(f"  wrote {path}")
    if args.profile:
        profile = {
            **{k: v for k, v in done.items() if k != "outputs"},
            "tasks": [t.model_dump() for t in done["tasks"]],
        }
        args.profile.write_text(json.dumps(profile, indent=2, default=str))
