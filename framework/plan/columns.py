"""Plan stage, columns: the names expressions read, resolved into Define and Vary steps in
dependency order (inputs, defines, categories, collections, and columns the framework makes)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from framework.config.expressions import referenced_names
from framework.config.load import LoadedConfig
from framework.config.schema.core import CategorySpec
from framework.errors import ConfigError, Location, did_you_mean
from framework.plan.model import DATASET_COLUMN, FILE_SAMPLE_COLUMN
from framework.plan.steps import Define, Vary


@dataclass(frozen=True, kw_only=True)
class ColumnNode:
    """A column to define: its expression, and pieces with places of their own, checked first."""

    name: str
    expression: str
    origin: Location
    parts: tuple[tuple[str, Location], ...] = ()


class ColumnResolver:
    """Resolves the names expressions read into graph steps, in dependency order."""

    def __init__(
        self, config: LoadedConfig, inputs: frozenset[str], is_cpp_symbol: Callable[[str], bool], dataset_label: str
    ) -> None:
        self.config = config
        self.spec = config.spec
        self.inputs = inputs
        self.is_cpp_symbol = is_cpp_symbol
        self.dataset_label = dataset_label
        self._ordered: list[ColumnNode] = []
        self._done: set[str] = set()
        self._made: dict[str, ColumnNode] = {}  # framework-made columns (axes, weights, sample)
        self._varies: list[Vary] = []  # placed as soon as all their columns exist
        self._symbols: set[str] = set()  # C++ globals the framework declares (corrections)

    def make(self, name: str, expression: str, origin: Location) -> None:
        """A column the framework defines when an expression reads it."""
        self._made[name] = ColumnNode(name=name, expression=expression, origin=origin)

    def declare_symbols(self, symbols: Iterable[str]) -> None:
        """C++ globals the framework declares before the loop: expressions may read them."""
        self._symbols.update(symbols)

    def provide(self, columns: Iterable[str]) -> None:
        """Columns the build gives the graph itself (constants): no step defines them."""
        self._done.update(columns)

    def vary(self, step: Vary) -> None:
        self._varies.append(step)

    def _definition(self, name: str) -> ColumnNode | None:
        """What a derived name would be, or None."""
        spec, locate = self.spec, self.config.locate
        if name in self._made:
            return self._made[name]
        if name in spec.defines:
            return ColumnNode(name=name, expression=spec.defines[name], origin=locate("defines", name))
        if name in spec.categories:
            cat = spec.categories[name]
            parts = tuple(
                (cond, locate("categories", name, "cases", label)) for label, cond in (cat.cases or {}).items()
            )
            return ColumnNode(
                name=name, expression=category_expression(cat), origin=locate("categories", name), parts=parts
            )
        if name.startswith("n") and name[1:] in spec.collections:
            coll = name[1:]
            return ColumnNode(name=name, expression=f"int(__{coll}_idx.size())", origin=locate("collections", coll))
        if name.startswith("__") and name.endswith("_idx") and name[2:-4] in spec.collections:
            coll = name[2:-4]
            c = spec.collections[coll]
            if c.sort_by is None:
                expr = f"fw::collection_indices({c.where})"
            else:
                expr = f"fw::collection_indices({c.where}, {c.from_}_{c.sort_by}, {str(not c.ascending).lower()})"
            return ColumnNode(
                name=name,
                expression=expr,
                origin=locate("collections", coll),
                parts=((c.where, locate("collections", coll, "where")),),
            )
        for coll, c in spec.collections.items():
            prefix = coll + "_"
            if name.startswith(prefix) and len(name) > len(prefix):
                source = f"{c.from_}_{name[len(prefix) :]}"
                if self.exists(source):
                    return ColumnNode(
                        name=name,
                        expression=f"ROOT::VecOps::Take({source}, __{coll}_idx)",
                        origin=locate("collections", coll),
                    )
        return None

    def exists(self, name: str) -> bool:
        return name in self.inputs or self._definition(name) is not None

    def known_names(self) -> set[str]:
        names = set(self.inputs) | set(self.spec.defines) | set(self.spec.categories)
        for coll, c in self.spec.collections.items():
            names.add("n" + coll)
            names |= {coll + col[len(c.from_) :] for col in self.inputs if col.startswith(c.from_ + "_")}
        return {n for n in names if not n.startswith("__")}

    def require(self, expression: str, origin: Location, stack: tuple[str, ...] = ()) -> None:
        """Every name `expression` reads resolves, with what it reads in turn, before it."""
        for ref in referenced_names(expression):
            if ref in self.inputs or ref in self._done or ref in (FILE_SAMPLE_COLUMN, DATASET_COLUMN):
                continue
            if ref in stack:
                cycle = " -> ".join((*stack[stack.index(ref) :], ref))
                raise ConfigError(f"circular definition: {cycle}", origin, "a column cannot depend on itself")
            node = self._definition(ref)
            if node is None:
                if ref in self._symbols or self.is_cpp_symbol(ref):
                    continue
                raise ConfigError(
                    f"unknown column {ref!r} in expression {expression!r}{self.dataset_label}",
                    origin,
                    did_you_mean(ref, self.known_names()) or "check the spelling, or define it under 'defines'",
                )
            for part, place in node.parts:
                self.require(part, place, (*stack, ref))
            self.require(node.expression, node.origin, (*stack, ref))
            self._done.add(ref)
            self._ordered.append(node)

    def check_unused(self) -> None:
        """Defines, categories and collections that nothing reads are checked as well (unknown
        names, cycles), on a copy of this resolver: they add no step to the graph."""
        probe = ColumnResolver(self.config, self.inputs, self.is_cpp_symbol, self.dataset_label)
        probe._made, probe._done, probe._symbols = dict(self._made), set(self._done), set(self._symbols)
        for block in ("defines", "categories", "collections"):
            for name in getattr(self.spec, block):
                column = name if block != "collections" else f"n{name}"
                if column not in self._done:
                    probe.require(column, self.config.locate(block, name))

    def steps(self) -> list[Define | Vary]:
        """Defines and Varies in dependency order.

        A Vary must come before every define that reads a column it varies: RDataFrame
        does not vary a define created before the Vary (measured with ROOT 6.40). So a
        Vary is a node too: it depends on the columns its expressions read, and every
        define reading a varied column depends on it.
        """
        nodes = {n.name: n for n in self._ordered}
        varied_by: dict[str, list[int]] = {}
        for i, vary in enumerate(self._varies):
            for column in vary.columns:
                varied_by.setdefault(column, []).append(i)
        deps: dict[tuple[str, Any], set[tuple[str, Any]]] = {}
        for node in self._ordered:
            refs = referenced_names(node.expression)
            deps[("define", node.name)] = {("define", r) for r in refs if r in nodes} | {
                ("vary", i) for r in refs for i in varied_by.get(r, [])
            }
        for i, vary in enumerate(self._varies):
            read = {n for e in vary.expressions() for n in referenced_names(e)}  # its columns too
            deps[("vary", i)] = {("define", r) for r in read if r in nodes}
        order: list[tuple[str, Any]] = [("vary", i) for i in range(len(self._varies))] + [
            ("define", n.name) for n in self._ordered
        ]
        out: list[Define | Vary] = []
        placed: set[tuple[str, Any]] = set()
        while len(placed) < len(order):
            ready = next((item for item in order if item not in placed and deps[item] <= placed), None)
            if ready is None:
                stuck = next(self._varies[i] for tag, i in order if tag == "vary" and (tag, i) not in placed)
                raise ConfigError(
                    f"systematic {stuck.name!r} reads a column that depends on the column it varies",
                    stuck.origin,
                    "vary an input column, or compute the variation from inputs only",
                )
            placed.add(ready)
            tag, key = ready
            if tag == "vary":
                out.append(self._varies[key])
            else:
                node = nodes[key]
                out.append(Define(name=node.name, expression=node.expression, origin=node.origin))
        return out


def category_expression(cat: CategorySpec) -> str:
    """The C++ value of a category: its `expr`, or the position of the first case that holds."""
    if cat.cases is not None:
        expr = str(len(cat.cases))
        for i, cond in reversed(list(enumerate(cat.cases.values()))):
            expr = f"(({cond}) ? {i} : {expr})"
        return expr
    assert cat.expr is not None
    return cat.expr
