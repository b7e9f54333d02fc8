"""Plan stage, graph steps: the nodes of a dataset's graph, in order, one frozen class per kind.

A `Define` adds a column, a `Filter` keeps the events passing a C++ test, a `Mask` keeps the
events a skim stored, a `Vary` gives columns an up and a down value for a shape systematic. The
build (`framework.engine.build`) turns each into its RDataFrame node.
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
    """Named after its systematic: replaces each of `columns` by its `ups` and `downs` expression."""

    kind: Literal["vary"] = "vary"
    columns: tuple[str, ...]
    ups: tuple[str, ...]
    downs: tuple[str, ...]
    condition: str = ""  # C++ test of the sample; where false the columns stay nominal

    def expressions(self) -> tuple[str, ...]:
        return (*self.ups, *self.downs, self.condition, *self.columns)

    def describe(self) -> list[str]:
        where = f"  if {self.condition}" if self.condition else ""
        return [
            f"  vary    {column} [{self.name}]: up={up}  down={down}{where}"
            for column, up, down in zip(self.columns, self.ups, self.downs)
        ]


StepPlan = Annotated[Define | Filter | Mask | Vary, Field(discriminator="kind")]
