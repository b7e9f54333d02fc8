"""`run-analysis`: the command line. load -> inputs -> plan -> build -> run -> write."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .exceptions import FrameworkError

COMMANDS = {"schema": "print the JSON Schema of the config language (or write it with -o)"}


def _run_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run-analysis",
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
    p.add_argument("--dry-run", action="store_true", help="validate and print the plan; no event loop")
    p.add_argument("--plan-json", type=Path, metavar="FILE", help="also write the plan as JSON to FILE")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar during the event loop (default: when the output is a terminal)")
    return p


def _schema_main(argv: list[str]) -> int:
    from .schema import json_schema_text  # noqa: PLC0415

    p = argparse.ArgumentParser(prog="run-analysis schema", description=COMMANDS["schema"])
    p.add_argument("-o", "--output", type=Path)
    args = p.parse_args(argv)
    if args.output:
        args.output.write_text(json_schema_text())
    else:
        sys.stdout.write(json_schema_text())
    return 0


def run_main(argv: list[str]) -> int:
    from .build import build_graph  # noqa: PLC0415
    from .generate import ensure_generated  # noqa: PLC0415
    from .inputs import inspect_inputs  # noqa: PLC0415
    from .load import load_config  # noqa: PLC0415
    from .plan import RunSelection, make_plan, select_samples  # noqa: PLC0415
    from .rootenv import FRAMEWORK_HEADER, declare_file, file_digest, is_cpp_symbol, versions  # noqa: PLC0415
    from .run import collect_results, run_event_loop  # noqa: PLC0415
    from .write import Provenance, write_outputs  # noqa: PLC0415

    args = _run_parser().parse_args(argv)
    if args.threads < 1:
        raise FrameworkError("-j/--threads must be at least 1")
    if args.max_events is not None and args.max_events < 1:
        raise FrameworkError("--max-events must be at least 1")
    start = time.perf_counter()
    config = load_config(args.config)
    selection = RunSelection(tuple(args.samples), tuple(args.eras), args.systematics, args.max_events)
    names = select_samples(config, selection)
    ensure_generated(config, names)
    inputs = inspect_inputs(config, names)
    cpp_files = [config.source.file_of(("cpp", i)).parent / c for i, c in enumerate(config.spec.cpp)]
    for i, path in enumerate(cpp_files):
        if not path.is_file():
            raise FrameworkError(f"C++ file {str(path)!r} does not exist", config.locate("cpp", i))
        declare_file(path)
    plan = make_plan(config, inputs, selection, is_cpp_symbol, [p.resolve() for p in cpp_files])
    if args.plan_json:
        args.plan_json.write_text(plan.to_json())
    if args.dry_run:
        print(plan.describe())
        return 0

    progress = sys.stdout.isatty() if args.progress is None else args.progress
    booked = build_graph(plan, args.threads, progress)
    setup = time.perf_counter() - start
    loop = run_event_loop(booked)
    result = collect_results(plan, booked, loop)
    outdir = args.output or Path("results") / plan.analysis
    provenance = Provenance(
        config=plan.config,
        config_hash=plan.config_hash,
        cpp_hash=file_digest([FRAMEWORK_HEADER, *cpp_files]),
        versions=versions(),
        command=["run-analysis", *argv],
        threads=args.threads,
        systematics=plan.systematics,
    )
    events = sum(s.events for s in result.samples)
    summary = {
        "analysis": plan.analysis,
        "events": events,
        "setup_seconds": round(setup, 3),
        "event_loop_seconds": round(loop, 3),
        "threads": args.threads,
    }
    written = write_outputs(result, provenance, outdir, summary)
    rate = events / loop if loop > 0 else float("inf")
    print(
        f"{events} events from {len(result.samples)} samples in {loop:.2f} s of event loop (incl. JIT) "
        f"({rate:,.0f} events/s); set-up {setup:.2f} s"
    )
    for path in written:
        print(f"  wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "schema":
            return _schema_main(argv[1:])
        return run_main(argv)
    except FrameworkError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
