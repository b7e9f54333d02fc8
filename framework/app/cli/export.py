"""`run-analysis export`: the files declared under 'exports', from a run's output files."""

from __future__ import annotations

from framework.app.cli.plot import present_parser

COMMAND = "export"
DESCRIPTION = "combine shapes, correctionlib ratios (exports:), datacard and pyhf workspace (model:)"


def main(argv: list[str]) -> int:
    from framework.stats.commands import make_exports

    args = present_parser(COMMAND, DESCRIPTION, "folder for the exported files").parse_args(argv)
    for name in make_exports(args.config, args.input, args.output):
        print(f"  wrote {args.output / name}")
    return 0
