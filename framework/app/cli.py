"""`run-analysis`: the command line over `framework.execute.pipeline`."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from framework.engine.compiled import COMPILE_ENV, MODES
from framework.errors import FrameworkError

COMMANDS = {
    "plot": "plots, yields and cutflow tables and an HTML report page from a run's output files",
    "export": "combine-style shapes (ROOT) and correctionlib ratios declared under 'exports'",
    "submit": "write HTCondor or Slurm job files: one job per sample (or era) and chunk of files",
    "merge": "add the batch parts (--part I/N outputs) of each sample in OUTDIR into one normalised file",
    "samples update": "compute events and sums of weights of a samples YAML and write them back in place",
    "schema": "print the JSON Schema of the config language (or write it with -o FILE)",
    "cache": "show ('info'), empty ('clear') or wait for ('wait') what is kept between runs",
}


def _run_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run-analysis",
        allow_abbrev=False,
        description="Run a declarative analysis on ROOT's RDataFrame and write N-dimensional histograms per sample.",
        epilog="other commands: " + "; ".join(f"'run-analysis {k}': {v}" for k, v in COMMANDS.items()),
    )
    p.add_argument("config", type=Path, help="the analysis YAML, e.g. analyses/demo/config.yaml")
    p.add_argument("-o", "--output", type=Path, help="output folder (default: results/<analysis>)")
    p.add_argument("--samples", nargs="+", default=[], metavar="NAME", help="sample names or glob patterns")
    p.add_argument("--eras", nargs="+", default=[], metavar="ERA", help="only samples of these eras")
    p.add_argument(
        "--systematics",
        default="all",
        metavar="SEL",
        help="'all' (default), 'none', or comma-separated names/patterns, e.g. 'jes*,scale'",
    )
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
    p.add_argument("--retries", type=int, default=0, metavar="N",
                   help="try N more times to open a remote (root://, https://) file, 1, 2, 4 ... s apart")
    p.add_argument("--executor", choices=("threads", "dask", "spark"), default="threads", help="where the event loop runs")
    p.add_argument("--master", metavar="URL", help="Spark master (default: local[WORKERS])")
    p.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler (default: a local cluster)")
    p.add_argument("--workers", type=int, default=2, help="worker processes of the local Dask or Spark cluster (default 2)")
    p.add_argument("--files-per-task", type=int, default=1, help="input files per Dask task (default 1)")
    p.add_argument("--plan-json", type=Path, metavar="FILE", help="also write the plan as JSON to FILE")
    p.add_argument("--compile", choices=MODES, default=None,
                   help="steps not yet compiled in the cache: compile them after the run in the 'background' "
                        f"(default, or ${COMPILE_ENV}), 'now' (wait for it) or 'off'")
    p.add_argument("--profile", type=Path, metavar="FILE", help="write where the time went (set-up parts, loop) as JSON")
    p.add_argument("--histogram-memory", type=_size, default=None, metavar="SIZE",
                   help="memory the event loop's histograms may take, e.g. 8GiB (default 4GiB); checked before the loop")
    p.add_argument("--plots", type=Path, metavar="DIR",
                   help="after the run, also make the plots, tables and report page in DIR (as 'run-analysis plot')")
    p.add_argument("--watch", action="store_true",
                   help="stay running: run again in a warm process whenever the config, an included file or a C++ "
                        "helper is saved")
    p.add_argument("--progress-file", type=Path, metavar="FILE",
                   help="keep FILE updated with the stage and the events done, as JSON (notebooks read it)")
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar during the event loop (default: when the output is a terminal)",
    )
    return p


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


def _schema_main(argv: list[str]) -> int:
    from framework.config.schema.analysis import json_schema_text  # noqa: PLC0415

    p = argparse.ArgumentParser(prog="run-analysis schema", description=COMMANDS["schema"])
    p.add_argument("-o", "--output", type=Path)
    args = p.parse_args(argv)
    if args.output:
        args.output.write_text(json_schema_text())
    else:
        sys.stdout.write(json_schema_text())
    return 0


def _samples_main(argv: list[str]) -> int:
    from framework.app.samples import update_samples_file  # noqa: PLC0415

    p = argparse.ArgumentParser(prog="run-analysis samples", description="Maintain sample metadata files.")
    sub = p.add_subparsers(dest="action", required=True)
    update = sub.add_parser("update", help=COMMANDS["samples update"])
    update.add_argument("files", type=Path, nargs="+", metavar="FILE.yaml")
    update.add_argument("--generator-weight", default="genWeight", help="expression summed (default genWeight)")
    args = p.parse_args(argv)
    for path in args.files:
        if not path.is_file():
            raise FrameworkError(f"samples file {str(path)!r} does not exist")
        print(update_samples_file(path, args.generator_weight).summary())
    return 0


def _submit_main(argv: list[str]) -> int:
    from framework.config.load import load_config  # noqa: PLC0415
    from framework.plan.model import RunSelection  # noqa: PLC0415
    from framework.execute.submit import BACKENDS, submit_jobs, write_jobs  # noqa: PLC0415

    p = argparse.ArgumentParser(prog="run-analysis submit", description=COMMANDS["submit"])
    p.add_argument("config", type=Path)
    p.add_argument("--backend", choices=BACKENDS, required=True)
    p.add_argument("--per", choices=("sample", "era"), default="sample", help="one job set per sample or per era")
    p.add_argument("--files-per-job", type=int, help="input files per job (default: the config's batch.files_per_job)")
    p.add_argument("--samples", nargs="+", default=[], metavar="NAME")
    p.add_argument("--eras", nargs="+", default=[], metavar="ERA")
    p.add_argument("--systematics", default="all", metavar="SEL")
    p.add_argument("-o", "--output", type=Path, help="where the jobs write (default: results/<analysis>/parts)")
    p.add_argument("--jobs-dir", type=Path, help="where the job files go (default: jobs/<analysis>)")
    p.add_argument("--submit", action="store_true", help="also hand them to condor_submit / sbatch")
    args = p.parse_args(argv)
    config = load_config(args.config)
    name = config.spec.analysis
    jobs = write_jobs(
        config,
        RunSelection(tuple(args.samples), tuple(args.eras), args.systematics),
        args.backend,
        args.jobs_dir or Path("jobs") / name,
        args.output or Path("results") / name / "parts",
        args.per,
        args.files_per_job,
    )
    print(f"{len(jobs.commands)} job(s) in {jobs.folder}: submit file {jobs.submit_file}")
    if args.submit:
        print(submit_jobs(jobs, args.backend))
    else:
        print("nothing submitted (add --submit to hand them to the scheduler)")
    return 0


def _merge_main(argv: list[str]) -> int:
    from framework.output.merge import merge_outputs  # noqa: PLC0415

    p = argparse.ArgumentParser(prog="run-analysis merge", description=COMMANDS["merge"])
    p.add_argument("outdir", type=Path)
    p.add_argument("-o", "--output", type=Path, help="where to write the merged files (default: OUTDIR)")
    args = p.parse_args(argv)
    report = merge_outputs(args.outdir, args.output)
    print(report.summary())
    return 1 if report.missing else 0


def _present_parser(command: str, output_help: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"run-analysis {command}", description=COMMANDS[command])
    p.add_argument("config", type=Path, help="the analysis YAML the run used")
    p.add_argument("-i", "--input", type=Path, required=True, help="the run's output folder (its -o)")
    p.add_argument("-o", "--output", type=Path, required=True, help=output_help)
    return p


def _plot_main(argv: list[str]) -> int:
    from framework.present.commands import REPORT, make_report  # noqa: PLC0415

    args = _present_parser("plot", "folder for the report: index.html, plots/, tables/").parse_args(argv)
    counts = make_report(args.config, args.input, args.output)
    print(f"{counts['plots']} plots and {counts['tables']} tables; open {args.output / REPORT}")
    return 0


def _export_main(argv: list[str]) -> int:
    from framework.present.commands import make_exports  # noqa: PLC0415

    args = _present_parser("export", "folder for the exported files").parse_args(argv)
    for name in make_exports(args.config, args.input, args.output):
        print(f"  wrote {args.output / name}")
    return 0


def _cache_main(argv: list[str]) -> int:
    from framework import cache  # noqa: PLC0415
    from framework.engine import compiled  # noqa: PLC0415

    p = argparse.ArgumentParser(prog="run-analysis cache", description=COMMANDS["cache"])
    sub = p.add_subparsers(dest="action", required=True)
    sub.add_parser("info", help="what the cache holds, per area")
    clear = sub.add_parser("clear", help="empty the cache (or some areas)")
    clear.add_argument("areas", nargs="*", metavar="AREA", help=f"areas to empty (default all): {', '.join(cache.AREAS)}")
    wait = sub.add_parser("wait", help="wait until no compile job runs")
    wait.add_argument("--timeout", type=float, default=600.0, help="seconds (default 600)")
    args = p.parse_args(argv)
    if args.action == "info":
        print(f"cache folder: {cache.root_folder()} (set ${cache.ENV} to move it)")
        for area in cache.info():
            print(area.line())
        print(compiled.summary())
        return 0
    if args.action == "clear":
        unknown = [a for a in args.areas if a not in cache.AREAS]
        if unknown:
            raise FrameworkError(f"no cache area {unknown[0]!r}", hint=f"areas: {', '.join(cache.AREAS)}")
        freed = cache.clear(tuple(args.areas) or cache.AREAS)
        print(f"freed {freed / 2**20:.1f} MiB from {cache.root_folder()}")
        return 0
    if not compiled.wait(args.timeout):
        print(f"compile jobs still running after {args.timeout:g} s", file=sys.stderr)
        return 1
    return 0


def _run_main(argv: list[str], warm: bool = False) -> int:
    from framework.execute.pipeline import RunOptions, execute, prepare  # noqa: PLC0415
    from framework.plan.model import RunSelection  # noqa: PLC0415
    from framework.timing import Timer, process_age  # noqa: PLC0415

    timer = Timer()
    timer.add("imports", 0.0 if warm else process_age())
    args = _run_parser().parse_args(argv)
    if args.watch:
        from framework.app.watch import watch  # noqa: PLC0415

        return watch(args.config, [a for a in argv if a != "--watch"])
    options = RunOptions(
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
    if args.dry_run or args.plan_json:
        plan, _ = prepare(options)
        if args.plan_json:
            args.plan_json.write_text(plan.to_json())
        if args.dry_run:
            print(plan.describe())
            return 0
    if args.executor in ("dask", "spark"):
        from framework.execute.executors import execute_on_dask, execute_on_spark  # noqa: PLC0415

        if args.executor == "dask":
            done = execute_on_dask(options, args.scheduler, args.workers, args.files_per_task)
        else:
            done = execute_on_spark(options, args.master, args.workers, args.files_per_task)
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
            profile = {**{k: v for k, v in done.items() if k != "outputs"}, "tasks": [t.model_dump() for t in done["tasks"]]}
            args.profile.write_text(json.dumps(profile, indent=2, default=str))
        _after_the_run(options, args.plots)
        return 0
    report = execute(options, timer)
    print(report.summary() if report else "every selected sample's output is up to date (use --force to recompute)")
    if args.profile:
        interpreted = report.interpreted if report else []
        timer.write(args.profile, interpreted_steps=len(interpreted), interpreted=interpreted)
    _after_the_run(options, args.plots)
    return 0


def _after_the_run(options: Any, plots: Path | None = None) -> None:
    """What a config asks for after its event loop: tag-and-probe fits, the report page (and
    the plots asked for with --plots)."""
    from framework.config.load import load_config  # noqa: PLC0415

    config = load_config(options.config)
    outdir = options.output or Path("results") / config.spec.analysis
    if config.spec.tnp is not None:
        from framework.extensions.tnp.measure import run_tnp  # noqa: PLC0415

        for path in run_tnp(config, outdir):
            print(f"  wrote {path}")
    if config.spec.report:
        from framework.present.commands import REPORT, make_report  # noqa: PLC0415

        counts = make_report(options.config, outdir, outdir / "report")
        print(f"  {counts['plots']} plots and {counts['tables']} tables in {outdir / 'report' / REPORT}")
    if plots is not None:
        from framework.present.commands import REPORT, make_report  # noqa: PLC0415

        counts = make_report(options.config, outdir, plots)
        print(f"  {counts['plots']} plots and {counts['tables']} tables in {plots / REPORT}")


def main(argv: list[str] | None = None, warm: bool = False) -> int:
    """The command line; `warm`: this process has run before (a worker), so no start-up time."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "schema":
            return _schema_main(argv[1:])
        if argv and argv[0] == "samples":
            return _samples_main(argv[1:])
        if argv and argv[0] == "merge":
            return _merge_main(argv[1:])
        if argv and argv[0] == "submit":
            return _submit_main(argv[1:])
        if argv and argv[0] == "plot":
            return _plot_main(argv[1:])
        if argv and argv[0] == "export":
            return _export_main(argv[1:])
        if argv and argv[0] == "cache":
            return _cache_main(argv[1:])
        return _run_main(argv, warm)
    except FrameworkError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
