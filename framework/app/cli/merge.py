"""`run-analysis merge`: the batch parts of each sample added into one normalised file."""

from __future__ import annotations

import argparse
from pathlib import Path

COMMAND = "merge"
DESCRIPTION = "add the batch parts (--part I/N outputs) of each sample in OUTDIR into one normalised file"


def main(argv: list[str]) -> int:
    from framework.output.merge import merge_outputs

    p = argparse.ArgumentParser(prog="run-analysis merge", description=DESCRIPTION)
    p.add_argument("outdir", type=Path)
    p.add_argument("-o", "--output", type=Path, help="where to write the merged files (default: OUTDIR)")
    args = p.parse_args(argv)
    report = merge_outputs(args.outdir, args.output)
    print(report.summary())
    return 1 if report.missing else 0
