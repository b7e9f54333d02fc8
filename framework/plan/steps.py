"""Plan stage, graph steps: the nodes of a dataset's graph, in order, one frozen class per kind.

A `Define` adds a column, a `Filter` keeps the events passing a C++ test, a `Mask` keeps the
events a skim stored, a `Vary` gives columns an up and a down value (or an up value only) for a shape
systematic, a `LumiMask` keeps the collision events of certified luminosity sections. The build
(`framework.engine.build`) turns each into its RDataFrame node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field

from framework.errors import Location


@dataclass(frozen=True, kw_only=True)
class Step:
    name: str
    origin: Location

    @property
    def new_column(self) -> str | None:
        """The column this step adds to the graph, if any."""
        return None

    def expressions(self) -> tuple[str, ...]:
        """The C++ expressions and column names this step reads."""
        raise NotImplementedError

    def describe(self) -> list[str]:
        """Lines of --dry-run's listing."""
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class Define(Step):
    kind: Literal["define"] = "define"
    expression: str

    @property
    def new_column(self) -> str | None:
        return self.name

    def expressions(self) -> tuple[str, ...]:
        return (self.expression,)

    def describe(self) -> list[str]:
        return [f"  define  {self.name} = {self.expression}"]


@dataclass(frozen=True, kw_only=True)
class Filter(Step):
    """A cut of the selection (named after it), or a histogram's `where` (named `where <test>`)."""

    kind: Literal["filter"] = "filter"
    expression: str

    def expressions(self) -> tuple[str, ...]:
        return (self.expression,)

    def describe(self) -> list[str]:
        return [f"  filter  {self.name} = {self.expression}"]


@dataclass(frozen=True, kw_only=True)
class Mask(Step):
    """Keeps the events a skim wrote for the nominal (or, in a shape variation's copy of the graph, for that
    variation: the skim stores an event when any of them passed its cuts). It comes before the selection
    and is no cutflow row: the skim's events are the sample's events read."""

    kind: Literal["mask"] = "mask"
    expression: str

    def expressions(self) -> tuple[str, ...]:
        return (self.expression,)

    def describe(self) -> list[str]:
        return [f"  mask    {self.name} = {self.expression}"]


@dataclass(frozen=True, kw_only=True)
class Vary(Step):
    """Named after its systematic: replaces each of `columns` by its `ups` and `downs` expression
    (no `downs`: a one-sided variation, up only)."""

    kind: Literal["vary"] = "vary"
    columns: tuple[str, ...]
    ups: tuple[str, ...]
    downs: tuple[str, ...]
    condition: str = ""  # C++ test of the sample; where false the columns stay nominal

    def expressions(self) -> tuple[str, ...]:
        return (*self.ups, *self.downs, self.condition, *self.columns)

    @property
    def directions(self) -> tuple[str, ...]:
        return ("up", "down") if self.downs else ("up",)

    def describe(self) -> list[str]:
        where = f"  if {self.condition}" if self.condition else ""
        downs = self.downs or ("(one-sided)",) * len(self.columns)
        return [
            f"  vary    {column} [{self.name}]: up={up}  down={down}{where}"
            for column, up, down in zip(self.columns, self.ups, downs)
        ]


@dataclass(frozen=True, kw_only=True)
class LumiMaskTable:
    """A certified-luminosity JSON as the event loop reads it: the file, the SHA-256 of its bytes, and
    its (run, first, last) ranges sorted by run then first section, disjoint, both ends included."""

    file: str
    sha256: str
    ranges: tuple[tuple[int, int, int], ...]


@dataclass(frozen=True, kw_only=True)
class LumiMask(Step):
    """Keeps the events whose (run, luminosity section) one of `masks` certifies: the mask of the
    event's sample (`by_sample[position in the dataset's samples]`, -1: none, all events kept).
    Named after its cutflow row; a cut like a `Filter`, placed before every other."""

    kind: Literal["lumi_mask"] = "lumi_mask"
    run_column: str
    lumi_column: str
    sample_column: str  # each event's sample (its file's), read only when the samples' masks differ
    masks: tuple[LumiMaskTable, ...]
    by_sample: tuple[int, ...]
    sample_names: tuple[str, ...]  # of the positions of `by_sample`, for --dry-run

    @property
    def reads_sample(self) -> bool:
        return len(set(self.by_sample)) > 1

    def expressions(self) -> tuple[str, ...]:
        return (*((self.sample_column,) if self.reads_sample else ()), self.run_column, self.lumi_column)

    def describe(self) -> list[str]:
        lines = []
        for i, mask in enumerate(self.masks):
            runs = len({run for run, _, _ in mask.ranges})
            names = [n for n, m in zip(self.sample_names, self.by_sample) if m == i]
            lines.append(
                f"  mask    {self.name}: ({self.run_column}, {self.lumi_column}) of {', '.join(names)} certified "
                f"by {mask.file} (sha256 {mask.sha256[:12]}, {runs} runs, {len(mask.ranges)} ranges)"
            )
        return lines


StepPlan = Annotated[Define | Filter | Mask | Vary | LumiMask, Field(discriminator="kind")]
