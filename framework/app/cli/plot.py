"""`run-analysis plot`: plots, tables and the report page from a run's output files, no event loop."""

from __future__ import annotations

import argparse
from pathlib import Path

COMMAND = "plot"
DESCRIPTION = "plots, yields and cutflow tables and an HTML report page from a run's output files"


def present_parser(command: str, description: str, output_help: str) -> argparse.ArgumentParser:
    """The arguments of the commands that read a run's outputs (plot, export)."""
    p = argparse.ArgumentParser(prog=f"run-analysis {command}", description=description)
    p.add_argument("config", type=Path, help="the analysis YAML the run used")
    p.add_argument("-i", "--input", type=Path, required=True, help="the run's output folder (its -o)")
    p.add_argument("-o", "--output", type=Path, required=True, help=output_help)
    return p


def main(argv: list[str]) -> int:
    from framework.present.commands import REPORT, make_report

    parser = present_parser(COMMAND, DESCRIPTION, "folder for the report: index.html, plots/, tables/")
    parser.add_argument(
        "--fit", type=Path, help="with 'model:', the folder of 'run-analysis fit' for the report (default: INPUT/fit)"
    )
    args = parser.parse_args(argv)
    counts = make_report(args.config, args.input, args.output, args.fit)
    print(f"{counts['plots']} plots and {counts['tables']} tables; open {args.output / REPORT}")
    return 0
