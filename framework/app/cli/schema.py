"""`run-analysis schema`: the JSON Schema of the config language."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

COMMAND = "schema"
DESCRIPTION = "print the JSON Schema of the config language (or write it with -o FILE)"


def main(argv: list[str]) -> int:
    from framework.config.schema.analysis import json_schema_text

    p = argparse.ArgumentParser(prog="run-analysis schema", description=DESCRIPTION)
    p.add_argument("-o", "--output", type=Path)
    args = p.parse_args(argv)
    if args.output:
        args.output.write_text(json_schema_text())
    else:
        sys.stdout.write(json_schema_text())
    return 0
