"""Inputs stage, result: what the input stage found for each sample (plain data, no ROOT)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class SampleInputs:
    """What the input stage found for one sample: its files, their entries, their columns."""

    files: tuple[str, ...]
    entries: tuple[int, ...]
    columns: frozenset[str]
    format: str = "TTree"
    column_types: Mapping[str, str] = field(default_factory=dict)  # C++ type of each column, as RDataFrame reads it
    array_sizes: Mapping[str, int] = field(default_factory=dict)  # array columns' lengths in the first event
    skipped: tuple[str, ...] = ()  # unreadable files left out (--skip-bad-files)
    metadata: Mapping[str, float] = field(default_factory=dict)  # per-sample values read from branches (xsec: XSection)
    # files whose columns differ from the first file's: file -> columns it lacks or has with another type
    inconsistent: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
