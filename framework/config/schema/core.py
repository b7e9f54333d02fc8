"""The analysis itself: collections, cuts, categories, histogram axes and histograms."""

from __future__ import annotations

import itertools

from pydantic import Field, StrictInt, field_validator, model_validator

from framework.config.schema.base import IDENTIFIER, Expression, Label, Strict, check_identifier


class CollectionSpec(Strict):
    """An object view: the objects of collection `from` passing `where`, as `Name_*` columns and `nName`."""

    from_: str = Field(alias="from", description="Source collection prefix, e.g. 'Jet' for Jet_pt, Jet_eta ...")
    where: Expression = Field(description="Per-object boolean mask over the source columns.")
    sort_by: str | None = Field(None, description="Field of the source to order by, e.g. 'pt' (descending).")
    ascending: bool = Field(False, description="Order by increasing sort_by instead.")


class CutSpec(Strict):
    name: str = Field(description="Name of the cutflow row.")
    cut: Expression

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_identifier(v, "cut name")


class CategorySpec(Strict):
    """An axis of categories, filled from `expr`. Give exactly one of values, integer, cases, boolean."""

    expr: Expression | None = Field(None, description="Expression giving the category value (not with 'cases').")
    values: list[StrictInt] | None = Field(
        None, description="Integer category values; other values go to an 'other' bin."
    )
    integer: tuple[StrictInt, StrictInt] | None = Field(
        None, description="[start, stop): consecutive integers, with under- and overflow (e.g. >= stop)."
    )
    cases: dict[Label, Expression] | None = Field(
        None, description="Label -> boolean condition; the first true condition wins, none -> 'other' bin."
    )
    boolean: bool = Field(False, description="A two-bin axis (false, true) from a boolean expression.")
    label: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> CategorySpec:
        kinds = [k for k in ("values", "integer", "cases") if getattr(self, k) is not None]
        if self.boolean:
            kinds.append("boolean")
        if len(kinds) != 1:
            raise ValueError(
                "give exactly one of 'values', 'integer', 'cases' or 'boolean: true'"
                + (f" (found {', '.join(kinds)})" if kinds else "")
            )
        if (self.cases is None) == (self.expr is None):
            raise ValueError("'cases' takes no 'expr'; every other category needs 'expr'")
        return self

    @field_validator("integer")
    @classmethod
    def _integer(cls, v: tuple[int, int] | None) -> tuple[int, int] | None:
        return _ordered_integers(v)


class AxisSpec(Strict):
    """A histogram axis over an expression: regular (bins + range), variable (edges) or integer."""

    expr: Expression
    name: str | None = Field(None, description="Axis name; default: expr when it is a plain column name.")
    label: str | None = Field(None, description="Axis label for plots.")
    bins: StrictInt | None = Field(None, gt=0)
    range: tuple[float, float] | None = None
    edges: list[float] | None = Field(None, min_length=2)
    integer: tuple[StrictInt, StrictInt] | None = None

    @model_validator(mode="after")
    def _one_binning(self) -> AxisSpec:
        regular = self.bins is not None or self.range is not None
        kinds = [
            k for k, present in (("bins+range", regular), ("edges", self.edges), ("integer", self.integer)) if present
        ]
        if len(kinds) != 1:
            raise ValueError("give exactly one binning: 'bins' with 'range', 'edges', or 'integer'")
        if regular and (self.bins is None or self.range is None):
            raise ValueError("a regular axis needs both 'bins' and 'range: [low, high]'")
        if self.name is None and not IDENTIFIER.match(self.expr):
            raise ValueError("an axis over an expression needs a 'name'")
        if self.name is not None:
            check_identifier(self.name, "axis name")
        return self

    @field_validator("range")
    @classmethod
    def _range(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and not v[0] < v[1]:
            raise ValueError(f"'range' must be [low, high] with low < high (found [{v[0]:g}, {v[1]:g}])")
        return v

    @field_validator("edges")
    @classmethod
    def _edges(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and any(b <= a for a, b in itertools.pairwise(v)):
            raise ValueError("'edges' must increase strictly")
        return v

    @field_validator("integer")
    @classmethod
    def _integer(cls, v: tuple[int, int] | None) -> tuple[int, int] | None:
        return _ordered_integers(v)


def _ordered_integers(v: tuple[int, int] | None) -> tuple[int, int] | None:
    if v is not None and v[1] <= v[0]:
        raise ValueError(f"'integer' must be [start, stop] with stop > start (found [{v[0]}, {v[1]}])")
    return v


class HistogramSpec(Strict):
    axes: list[str | AxisSpec] = Field(
        min_length=1, description="Axes in order: a category name, or a mapping defining an axis."
    )
    weight: Expression | None = Field(None, description="Extra factor multiplying the event weight for this histogram.")
    where: Expression | list[Expression] | None = Field(
        None,
        description="Fill only events where this is true (or these are, applied in order): a selection for this "
        "histogram alone. Columns it needs are computed only for events that pass the earlier conditions.",
    )
