"""`run-analysis skim CONFIG [-o SKIMDIR]`: the events of each sample that pass the config's `skim:`
cuts, with the columns it keeps and their shape variations, and a samples YAML to run on them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from framework.app.cli.run import (
    _part,
    add_selection_arguments,
    add_task_arguments,
    check_task_arguments,
    task_executor,
)
from framework.engine.compiled import MODES

COMMAND = "skim CONFIG [-o SKIMDIR]"
DESCRIPTION = (
    "write per sample (or --part I/N) the events passing the config's skim: cuts with the columns it keeps "
    "and their shape variations, and SKIMDIR/samples.yaml to include instead of the samples' YAML"
)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="run-analysis skim", allow_abbrev=False, description=DESCRIPTION)
    p.add_argument("config", type=Path, help="the analysis YAML, with a skim: block")
    p.add_argument("-o", "--output", type=Path, help="the skim folder (default: skims/<analysis>)")
    add_selection_arguments(
        p, "shape systematics whose variations the skim holds: 'all' (default), 'none', or names/patterns"
    )
    p.add_argument(
        "-j", "--threads", type=int, default=2, help="threads (default 2; one when shape variations are written)"
    )
    p.add_argument("--max-events", type=int, metavar="N", help="skim at most N events per sample")
    p.add_argument(
        "--part", type=_part, metavar="I/N", help="only the I-th of N file chunks of each sample (batch jobs)"
    )
    p.add_argument("--force", action="store_true", help="make again the skim files that are up to date")
    p.add_argument("--skip-bad-files", action="store_true", help="leave out unreadable input files (listed) and go on")
    p.add_argument("--retries", type=int, default=0, metavar="N", help="try N more times to open a remote file")
    p.add_argument("--dry-run", action="store_true", help="validate and print the skim's plan; no event loop")
    p.add_argument("--compile", choices=MODES, default=None, help="steps not yet compiled: as for a run")
    p.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=None, help="progress bar during the event loop"
    )
    add_task_arguments(p)  # a task writes its file into SKIMDIR itself: its workers must see that folder
    return p


def main(argv: list[str]) -> int:
    from framework.execute.pipeline import RunOptions, inspect, load
    from framework.execute.skim import execute_skim, execute_skim_in_tasks
    from framework.plan.model import RunSelection
    from framework.plan.skim import make_skim_plan

    args = parser().parse_args(argv)
    check_task_arguments(args)
    options = RunOptions(
        config=args.config,
        output=args.output,
        selection=RunSelection(tuple(args.samples), tuple(args.eras), args.systematics, args.max_events, args.part),
        threads=args.threads,
        progress=sys.stdout.isatty() if args.progress is None else args.progress,
        command=("run-analysis", "skim", *argv),
        force=args.force,
        skip_bad_files=args.skip_bad_files,
        retries=args.retries,
        **({"compile": args.compile} if args.compile else {}),
    )
    config = load(options)
    if args.dry_run:
        inspected = inspect(options, config=config)
        plan = make_skim_plan(config, inspected.inputs, options.selection, inspected.symbols, inspected.cpp_files)
        print(plan.describe())
        return 0
    if args.executor == "threads":
        report = execute_skim(options, config=config)
    else:
        report = execute_skim_in_tasks(options, args.files_per_task, task_executor(args, config), config)
    print(report.summary())
    return 0
