"""Plan stage: a frozen, plain-data description of everything one run computes.

No ROOT here. The plan lists, per dataset (one RDataFrame), the input files and
the sample each belongs to, the columns to define in dependency order, the shape
variations, the cuts, the weight vector (nominal first, then each weight
variation) and the histograms with their axes. `--dry-run` prints it; tests
assert on it; `framework.engine.build` turns it into a graph without re-deciding anything.
It is made by `framework.plan.make.make_plan`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import Any

from pydantic import TypeAdapter

from framework.errors import Location
from framework.plan.axes import AxisPlan
from framework.plan.steps import Filter, StepPlan
from framework.plan.systematics import CombinedEntry, CorrectionPlan

SAMPLE_COLUMN = "__sample"
FILE_SAMPLE_COLUMN = "__sample_of_file"  # defined per file by the build (DefinePerSample)
DATASET_COLUMN = "__dataset"  # the dataset's number, defined by the build
WEIGHT_NOMINAL = "__weight_nominal"
WEIGHTS = "__weights"
CUTFLOW_WEIGHTS = "__cutflow_weights"
CUTFLOW_ENTRIES = ("raw", "generator", "weighted")


@dataclass(frozen=True)
class RunSelection:
    """What the command line selected from the config."""

    samples: tuple[str, ...] = ()
    eras: tuple[str, ...] = ()
    systematics: str = "all"
    max_events: int | None = None
    part: tuple[int, int] | None = None  # (i, n): the i-th of n file chunks of every sample, 1-based


@dataclass(frozen=True, kw_only=True)
class SamplePlan:
    name: str
    process: str
    is_data: bool
    era: str | None
    tree: str
    files: list[str]  # a list, not a tuple: callers and tests compare it with lists (never hashed)
    entries: tuple[int, ...]
    xsec: float | None
    lumi: float | None
    sum_weights: float | None
    entry_limit: int | None  # --max-events, when it cuts the sample
    dataset: int
    parent: str | None = None  # for a sub-process of a split sample: that sample
    skipped_files: tuple[str, ...] = ()
    ranges: tuple[tuple[int, int], ...] | None = None  # [begin, end) of each file's entries read, when not all of them

    @property
    def events_to_read(self) -> int:
        return sum(end - begin for begin, end in self.ranges) if self.ranges is not None else sum(self.entries)

    def entries_of(self, path: str) -> int:
        """Entries of one of the sample's files when the run began."""
        return self.entries[self.files.index(path)]


@dataclass(frozen=True, kw_only=True)
class HistogramPlan:
    name: str
    axes: tuple[AxisPlan, ...]
    weights_column: str
    origin: Location
    where: tuple[Filter, ...] = ()  # filled only for events passing these filters


@dataclass(frozen=True, kw_only=True)
class FillPlan:
    """One fill action: histograms sharing a weight vector, reading the value columns of all
    their axes (each column once, in order of first use)."""

    columns: tuple[str, ...]
    weights_column: str
    histograms: tuple[str, ...]
    filters: tuple[Filter, ...] = ()  # filters on this fill's own branch of the graph


@dataclass(frozen=True, kw_only=True)
class SnapshotPlan:
    """The events a dataset keeps, written by RDataFrame's Snapshot (`run-analysis skim`)."""

    file: str  # name of the file in the skim folder
    tree: str
    origin: Location  # the `skim:` block
    columns: tuple[str, ...]
    format: str  # rntuple | ttree
    variations: tuple[str, ...] = ()  # shape systematics written with the events (varied columns and a mask)
    derived: Mapping[str, str] = field(default_factory=dict)  # kept columns the graph defines -> their definition
    definitions: Mapping[str, str] = field(default_factory=dict)  # each held systematic -> its definition


@dataclass(frozen=True, kw_only=True)
class DatasetPlan:
    """One RDataFrame: samples that share tree name, format, columns and data/MC status."""

    index: int
    tree: str
    format: str
    is_data: bool
    samples: tuple[str, ...]
    files: tuple[str, ...]
    file_samples: tuple[int, ...]  # position in `samples` of each file's sample
    steps: tuple[StepPlan, ...]
    cutflow: tuple[str, ...]  # "all" then one row per cut, each after the step of that cut
    weight_entries: tuple[str, ...]  # names in the systematic axis filled from the weight vector
    combined: tuple[CombinedEntry, ...]  # entries computed after the loop from weight entries
    shape_variations: tuple[str, ...]  # systematic names varied through Vary
    histograms: tuple[HistogramPlan, ...]
    fills: tuple[FillPlan, ...]
    input_types: Mapping[str, str] = field(default_factory=dict)  # C++ types of the input columns the steps read
    sample_column: str = SAMPLE_COLUMN  # each event's sample: a define, or the file's sample where that is the same
    constants: Mapping[str, tuple[float, ...]] = field(default_factory=dict)  # columns equal for every event
    one_sided: tuple[str, ...] = ()  # systematics with an up variation only (weight or shape)
    snapshot: SnapshotPlan | None = None  # a skim: the events passing the steps, written to a file

    def directions(self, systematic: str) -> tuple[str, ...]:
        """("up",) for a one-sided systematic, else ("up", "down")."""
        return ("up",) if systematic in self.one_sided else ("up", "down")

    @property
    def systematic_entries(self) -> list[str]:
        combined = [f"{c.name}{d}" for c in self.combined for d in ("Up", "Down")]
        shapes = [f"{n}{d.capitalize()}" for n in self.shape_variations for d in self.directions(n)]
        return [*self.weight_entries, *combined, *shapes]

    def describe(self) -> list[str]:
        kind = "data" if self.is_data else "MC"
        lines = [f"dataset {self.index}: {kind}, {self.format} '{self.tree}', samples {', '.join(self.samples)}"]
        lines += [line for step in self.steps for line in step.describe()]
        lines.append(f"  cutflow: {' -> '.join(self.cutflow)}")
        lines.append(f"  systematic axis ({len(self.systematic_entries)}): {', '.join(self.systematic_entries)}")
        if self.snapshot is not None:
            held = f", with the variations of {', '.join(self.snapshot.variations)}" if self.snapshot.variations else ""
            lines.append(
                f"  snapshot {self.snapshot.file} ({self.snapshot.format}{held}): {', '.join(self.snapshot.columns)}"
            )
        for h in self.histograms:
            axes = ", ".join(a.describe() for a in h.axes)
            where = f"  where {' -> '.join(w.expression for w in h.where)}" if h.where else ""
            lines.append(f"  histogram {h.name}: {axes} x systematic{where}")
        return lines


@dataclass(frozen=True, kw_only=True)
class Plan:
    analysis: str
    config: str
    config_hash: str
    cpp: tuple[str, ...]
    samples: tuple[SamplePlan, ...]
    datasets: tuple[DatasetPlan, ...]
    systematics: list[str]  # a list, not a tuple: existing callers and tests compare it with lists
    max_events: int | None
    corrections: tuple[CorrectionPlan, ...] = ()
    part: tuple[int, int] | None = None  # (i, n) for a batch part: histograms are not normalised
    one_sided: tuple[str, ...] = ()  # selected systematics with an up variation only

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plan:
        return _adapter().validate_python(data)

    def sample(self, name: str) -> SamplePlan:
        return next(s for s in self.samples if s.name == name)

    def file_sample(self, d: DatasetPlan, path: str) -> SamplePlan:
        """The sample one file of dataset `d` is read for."""
        return self.sample(d.samples[d.file_samples[d.files.index(path)]])

    def describe(self) -> str:
        """Human-readable plan for --dry-run."""
        lines = [f"analysis {self.analysis}  ({self.config}, config sha256 {self.config_hash[:12]})"]
        if self.cpp:
            lines.append("C++ helpers: " + ", ".join(self.cpp))
        selected = [f"{n} (one-sided)" if n in self.one_sided else n for n in self.systematics]
        lines.append(f"systematics selected: {', '.join(selected) or 'none'}")
        if self.max_events:
            lines.append(f"max events per sample: {self.max_events}")
        lines.append("samples:")
        for s in self.samples:
            kind = "data" if s.is_data else f"MC xsec={s.xsec} pb lumi={s.lumi} /pb"
            sumw = f" sum_weights={s.sum_weights}" if s.sum_weights is not None else ""
            lines.append(
                f"  {s.name:<20} process={s.process} era={s.era} {kind}{sumw}  "
                f"{len(s.files)} file(s), {sum(s.entries)} events -> dataset {s.dataset}"
            )
        for d in self.datasets:
            lines += d.describe()
        return "\n".join(lines)


@cache
def _adapter() -> TypeAdapter[Plan]:
    """Made on first use: building the validator takes a moment that plain planning does not need."""
    return TypeAdapter(Plan)
