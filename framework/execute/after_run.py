"""What a configuration asks for after its event loop, from the run's output folder: each
extension's measurement (tag and probe), the report page when `report:` is set, and the
plots asked for with `run-analysis --plots`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from framework import extensions
from framework.config.load import LoadedConfig
from framework.present.commands import REPORT, make_report

log = logging.getLogger(__name__)


def after_run(
    config: LoadedConfig, outdir: Path, *, plots: Path | None = None, tell: Callable[[str], object] = log.info
) -> list[Path]:
    """Run the after-run steps on `outdir`; returns the files written (a report as its page).
    `tell` gets one line per step done (the command line prints them)."""
    written: list[Path] = []
    for extension in extensions.used_by(config):
        for path in extension.after_run(config, outdir):
            tell(f"  wrote {path}")
            written.append(path)
    targets = ([outdir / "report"] if config.spec.report else []) + ([plots] if plots is not None else [])
    for target in targets:
        counts = make_report(config, outdir, target)
        tell(f"  {counts['plots']} plots and {counts['tables']} tables in {target / REPORT}")
        written.append(target / REPORT)
    return written
