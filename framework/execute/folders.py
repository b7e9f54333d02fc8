"""Where a run, or a skim, writes when the command line gives no -o/--output; a folder made for it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

RESULTS = Path("results")  # relative: beside wherever the command is run
SKIMS = Path("skims")


def output_folder(chosen: Path | None, analysis: str) -> Path:
    """The folder of a run's outputs: `chosen` (its -o), else results/<analysis>."""
    return chosen if chosen is not None else RESULTS / analysis


def skim_folder(chosen: Path | None, analysis: str) -> Path:
    """The folder of a skim (`run-analysis skim`): `chosen` (its -o), else skims/<analysis>."""
    return chosen if chosen is not None else SKIMS / analysis


@contextmanager
def made(folder: Path) -> Iterator[None]:
    """`folder`, made if missing, and removed again if what writes into it fails before any file is
    there: a failed run or skim leaves no folder it made."""
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        if created and not any(folder.iterdir()):
            folder.rmdir()
        raise
