"""`run-analysis cache`: what is kept between runs, shown, emptied or waited for."""

from __future__ import annotations

import argparse
import logging

from framework.errors import FrameworkError

COMMAND = "cache"
DESCRIPTION = "show ('info'), empty ('clear') or wait for ('wait') what is kept between runs"

log = logging.getLogger(__name__)


def main(argv: list[str]) -> int:
    from framework import cache
    from framework.engine import compiled

    p = argparse.ArgumentParser(prog="run-analysis cache", description=DESCRIPTION)
    sub = p.add_subparsers(dest="action", required=True)
    sub.add_parser("info", help="what the cache holds, per area")
    clear = sub.add_parser("clear", help="empty the cache (or some areas)")
    clear.add_argument(
        "areas", nargs="*", metavar="AREA", help=f"areas to empty (default all): {', '.join(cache.AREAS)}"
    )
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
        log.error("compile jobs still running after %g s", args.timeout)
        return 1
    return 0
