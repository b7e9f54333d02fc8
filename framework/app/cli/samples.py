"""`run-analysis samples update`: events and sums of weights of a samples YAML, written back."""

from __future__ import annotations

import argparse
from pathlib import Path

from framework.errors import FrameworkError

COMMAND = "samples update"
DESCRIPTION = "compute events and sums of weights of a samples YAML and write them back in place"


def main(argv: list[str]) -> int:
    from framework.app.samples import update_samples_file

    p = argparse.ArgumentParser(prog="run-analysis samples", description="Maintain sample metadata files.")
    sub = p.add_subparsers(dest="action", required=True)
    update = sub.add_parser("update", help=DESCRIPTION)
    update.add_argument("files", type=Path, nargs="+", metavar="FILE.yaml")
    update.add_argument("--generator-weight", default="genWeight", help="expression summed (default genWeight)")
    update.add_argument(
        "--retries",
        type=int,
        default=0,
        metavar="N",
        help="try N more times, 1, 2, 4 ... s apart, to open and read a remote (root://, https://) file",
    )
    args = p.parse_args(argv)
    for path in args.files:
        if not path.is_file():
            raise FrameworkError(f"samples file {str(path)!r} does not exist")
        print(update_samples_file(path, args.generator_weight, args.retries).summary())
    return 0
