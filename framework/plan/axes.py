"""Plan stage, histogram axes: one frozen class per kind of axis, each knowing its own bins.

An axis says how many bins it stores (flow bins included), how the fill action reads it
(`layout`, the text `fw::ParseLayouts` in engine/cpp/fill.hxx parses), which `hist` axis it
becomes, and which values a slice may name. Nothing else switches on the kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import Field

from framework.config.expressions import is_identifier
from framework.config.schema.analysis import AnalysisSpec
from framework.config.schema.base import YIELDS
from framework.config.schema.core import AxisSpec, CategorySpec, HistogramSpec
from framework.errors import ConfigError, Location, did_you_mean


@dataclass(frozen=True, kw_only=True)
class Axis:
    """What every axis has: its name, the column it reads and its label; each kind adds `bins`,
    its number of bins without the flow bins."""

    name: str
    column: str
    label: str

    cpp_kind: ClassVar[int]  # fw::Axis::Kind in engine/cpp/fill.hxx
    flow: ClassVar[tuple[bool, bool]] = (True, True)  # (underflow, overflow) bins, as boost-histogram stores them
    continuous: ClassVar[bool] = False  # real-valued bins (sliced by ranges) rather than countable values

    if TYPE_CHECKING:  # a field of Regular, a property of the others; declared for the type checker only

        @property
        def bins(self) -> int: ...

    @property
    def extent(self) -> int:
        """Bins in storage, flow bins included."""
        return self.bins + sum(self.flow)

    def describe(self) -> str:
        raise NotImplementedError

    def to_hist(self) -> Any:
        """The `hist.axis` of this axis."""
        raise NotImplementedError

    def layout(self, column: int) -> str:
        """This axis for the fill action, reading the value column at position `column`."""
        low, high, edges, values = self._layout_fields()
        underflow, overflow = self.flow
        head = [self.cpp_kind, self.bins, repr(float(low)), repr(float(high)), int(underflow), int(overflow), column]
        return " ".join(map(str, [*head, len(edges), *map(repr, map(float, edges)), len(values), *values]))

    def _layout_fields(self) -> tuple[float, float, tuple[float, ...], tuple[int, ...]]:
        """(low, high, edges, category codes) as the fill action reads them."""
        return 0.0, 0.0, (), ()

    def bin_values(self) -> list[Any]:
        """The values 'each' enumerates, one per bin (none for a continuous axis)."""
        return []

    def check_value(self, value: Any, where: Location | None) -> Any:
        """`value` if it names a bin of this axis; else a ConfigError at `where`."""
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"axis {self.name!r} takes integer values; found {value!r}", where)
        return value

    def bin_edges(self) -> list[float]:
        """The edges of a continuous axis's bins."""
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class Regular(Axis):
    kind: Literal["regular"] = "regular"
    bins: int
    low: float
    high: float

    cpp_kind = 0
    continuous = True

    def describe(self) -> str:
        return f"{self.name}[{self.bins} bins {self.low}..{self.high}]"

    def to_hist(self) -> Any:
        import hist  # here: planning needs no hist

        return hist.axis.Regular(self.bins, self.low, self.high, name=self.name, label=self.label)

    def _layout_fields(self) -> tuple[float, float, tuple[float, ...], tuple[int, ...]]:
        return self.low, self.high, (), ()

    def bin_edges(self) -> list[float]:
        return [self.low + (self.high - self.low) * i / self.bins for i in range(self.bins + 1)]


@dataclass(frozen=True, kw_only=True)
class Variable(Axis):
    kind: Literal["variable"] = "variable"
    edges: tuple[float, ...]

    cpp_kind = 1
    continuous = True

    @property
    def bins(self) -> int:
        return len(self.edges) - 1

    def describe(self) -> str:
        return f"{self.name}[edges {list(self.edges)}]"

    def to_hist(self) -> Any:
        import hist  # here: planning needs no hist

        return hist.axis.Variable(self.edges, name=self.name, label=self.label)

    def _layout_fields(self) -> tuple[float, float, tuple[float, ...], tuple[int, ...]]:
        return 0.0, 0.0, self.edges, ()

    def bin_edges(self) -> list[float]:
        return list(self.edges)


@dataclass(frozen=True, kw_only=True)
class Integer(Axis):
    """Integers low..high-1, with under- and overflow bins."""

    kind: Literal["integer"] = "integer"
    low: int
    high: int

    cpp_kind = 2

    @property
    def bins(self) -> int:
        return self.high - self.low

    def describe(self) -> str:
        return f"{self.name}[integers {self.low:g}..{self.high:g})"

    def to_hist(self) -> Any:
        import hist  # here: planning needs no hist

        return hist.axis.Integer(self.low, self.high, name=self.name, label=self.label)

    def _layout_fields(self) -> tuple[float, float, tuple[float, ...], tuple[int, ...]]:
        return self.low, self.high, (), ()

    def bin_values(self) -> list[Any]:
        return list(range(self.low, self.high + 1))  # the overflow bin too: "3 or more"


@dataclass(frozen=True, kw_only=True)
class IntCategory(Axis):
    kind: Literal["int_category"] = "int_category"
    values: tuple[int, ...]

    cpp_kind = 3
    flow = (False, True)  # undeclared values go to the overflow bin

    @property
    def bins(self) -> int:
        return len(self.values)

    def describe(self) -> str:
        return f"{self.name}{list(self.values)}"

    def to_hist(self) -> Any:
        import hist  # here: planning needs no hist

        return hist.axis.IntCategory(self.values, name=self.name, label=self.label)

    def _layout_fields(self) -> tuple[float, float, tuple[float, ...], tuple[int, ...]]:
        return 0.0, 0.0, (), self.values

    def bin_values(self) -> list[Any]:
        return list(self.values)

    def check_value(self, value: Any, where: Location | None) -> Any:
        super().check_value(value, where)
        if value not in self.values:
            raise ConfigError(
                f"{value} is not a value of {self.name!r}", where, f"its values: {', '.join(map(str, self.values))}"
            )
        return value


@dataclass(frozen=True, kw_only=True)
class StrCategory(Axis):
    """Named cases; the column holds the position of the first case that holds."""

    kind: Literal["str_category"] = "str_category"
    labels: tuple[str, ...]

    cpp_kind = 3
    flow = (False, True)  # events that fit no case go to the overflow bin

    @property
    def bins(self) -> int:
        return len(self.labels)

    def describe(self) -> str:
        return f"{self.name}{list(self.labels)}"

    def to_hist(self) -> Any:
        import hist  # here: planning needs no hist

        return hist.axis.StrCategory(self.labels, name=self.name, label=self.label)

    def _layout_fields(self) -> tuple[float, float, tuple[float, ...], tuple[int, ...]]:
        return 0.0, 0.0, (), tuple(range(len(self.labels)))

    def bin_values(self) -> list[Any]:
        return list(self.labels)

    def check_value(self, value: Any, where: Location | None) -> Any:
        if value not in self.labels:
            raise ConfigError(
                f"{value!r} is not a category of {self.name!r}",
                where,
                did_you_mean(str(value), self.labels) or f"its categories: {', '.join(self.labels)}",
            )
        return value


@dataclass(frozen=True, kw_only=True)
class Boolean(Axis):
    kind: Literal["boolean"] = "boolean"

    cpp_kind = 4
    flow = (False, False)

    @property
    def bins(self) -> int:
        return 2

    def describe(self) -> str:
        return f"{self.name}[bool]"

    def to_hist(self) -> Any:
        import hist  # here: planning needs no hist

        return hist.axis.Boolean(name=self.name, label=self.label)

    def bin_values(self) -> list[Any]:
        return [False, True]

    def check_value(self, value: Any, where: Location | None) -> Any:
        if not isinstance(value, bool):
            raise ConfigError(f"axis {self.name!r} is boolean; found {value!r}", where, "write true or false")
        return value


AxisPlan = Annotated[Regular | Variable | Integer | IntCategory | StrCategory | Boolean, Field(discriminator="kind")]


def declared_histograms(spec: AnalysisSpec) -> dict[str, HistogramSpec]:
    """The configured histograms and `yields`: events per category (every category axis)."""
    # model_construct: without categories the yields have no axis, which users may not declare
    return {
        **spec.histograms,
        YIELDS: HistogramSpec.model_construct(axes=list(spec.categories), weight=None, where=None),
    }


def histogram_axes(spec: AnalysisSpec, hname: str) -> list[AxisPlan]:
    """Axes of an output histogram (without the systematic axis), from the configuration alone."""
    return [
        category_axis(a, spec.categories[a]) if isinstance(a, str) else value_axis(hname, a)[0]
        for a in declared_histograms(spec)[hname].axes
    ]


def category_axis(name: str, cat: CategorySpec) -> AxisPlan:
    label = cat.label or name
    if cat.values is not None:
        return IntCategory(name=name, column=name, label=label, values=tuple(cat.values))
    if cat.integer is not None:
        lo, hi = cat.integer
        return Integer(name=name, column=name, label=label, low=lo, high=hi)
    if cat.cases is not None:
        return StrCategory(name=name, column=name, label=label, labels=tuple(cat.cases))
    return Boolean(name=name, column=name, label=label)


def value_axis(hist: str, axis: AxisSpec) -> tuple[AxisPlan, str | None]:
    """The axis and, when its expression is not a plain column, the column to define for it."""
    name = axis.name or axis.expr
    column = axis.expr if is_identifier(axis.expr) else f"__axis_{hist}_{name}"
    label = axis.label or name
    plan: AxisPlan
    if axis.edges is not None:
        plan = Variable(name=name, column=column, label=label, edges=tuple(axis.edges))
    elif axis.integer is not None:
        lo, hi = axis.integer
        plan = Integer(name=name, column=column, label=label, low=lo, high=hi)
    else:
        assert axis.bins is not None and axis.range is not None
        plan = Regular(name=name, column=column, label=label, bins=axis.bins, low=axis.range[0], high=axis.range[1])
    return plan, (None if column == axis.expr else axis.expr)
