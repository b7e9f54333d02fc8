"""Where a run, or a skim, writes when the command line gives no -o/--output."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path("results")  # relative: beside wherever the command is run
SKIMS = Path("skims")


def output_folder(chosen: Path | None, analysis: str) -> Path:
    """The folder of a run's outputs: `chosen` (its -o), else results/<analysis>."""
    return chosen if chosen is not None else RESULTS / analysis


def skim_folder(chosen: Path | None, analysis: str) -> Path:
    """The folder of a skim (`run-analysis skim`): `chosen` (its -o), else skims/<analysis>."""
    return chosen if chosen is not None else SKIMS / analysis
