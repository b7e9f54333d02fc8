"""Plan stage: a frozen, plain-data description of everything one run computes.

No ROOT here. The plan lists, per dataset (one RDataFrame), the input files and
the sample each belongs to, the columns to define in dependency order, the shape
variations, the cuts, the weight vector (nominal first, then each weight
variation) and the histograms with their axes. `--dry-run` prints it; tests
assert on it; `framework.engine.build` turns it into a graph without re-deciding anything.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from framework.errors import ConfigError, Location, did_you_mean
from framework.config.expressions import is_identifier, referenced_names, subscripts
from framework.config.load import LoadedConfig, lumi_of, split_names
from framework.config.schema.analysis import AnalysisSpec
from framework.config.schema.base import YIELDS
from framework.config.schema.core import AxisSpec, CategorySpec, HistogramSpec
from framework.plan.systematics import CombinedEntry, CorrectionPlan, contribution, varies_columns

SAMPLE_COLUMN = "__sample"
FILE_SAMPLE_COLUMN = "__sample_of_file"  # defined per file by the build (DefinePerSample)
DATASET_COLUMN = "__dataset"  # the dataset's number, defined by the build
WEIGHT_NOMINAL = "__weight_nominal"
WEIGHTS = "__weights"
CUTFLOW_WEIGHTS = "__cutflow_weights"
CUTFLOW_ENTRIES = ("raw", "generator", "weighted")


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


@dataclass(frozen=True)
class RunSelection:
    """What the command line selected from the config."""

    samples: tuple[str, ...] = ()
    eras: tuple[str, ...] = ()
    systematics: str = "all"
    max_events: int | None = None
    part: tuple[int, int] | None = None  # (i, n): the i-th of n file chunks of every sample, 1-based


@dataclass
class SamplePlan:
    name: str
    process: str
    is_data: bool
    era: str | None
    tree: str
    files: list[str]
    entries: list[int]
    xsec: float | None
    lumi: float | None
    sum_weights: float | None
    entry_limit: int | None  # --max-events, when it cuts the sample
    dataset: int
    parent: str | None = None  # for a sub-process of a split sample: that sample
    skipped_files: list[str] = field(default_factory=list)
    ranges: list[list[int]] | None = None  # [begin, end) of each file's entries read, when not all of them

    @property
    def events_to_read(self) -> int:
        return sum(end - begin for begin, end in self.ranges) if self.ranges is not None else sum(self.entries)


@dataclass
class Step:
    """One node of the graph, in order: define a column, filter, or vary columns.

    A "vary" step is named after its systematic and replaces `columns` by `ups`/`downs`.
    """

    kind: str  # "define" | "filter" | "vary"
    name: str
    expression: str
    origin: Location
    columns: list[str] = field(default_factory=list)
    ups: list[str] = field(default_factory=list)
    downs: list[str] = field(default_factory=list)
    condition: str = ""  # for "vary": only samples passing this C++ test are varied


@dataclass
class AxisPlan:
    name: str
    kind: str  # regular | variable | integer | int_category | str_category | boolean
    column: str
    label: str
    bins: int = 0
    low: float = 0.0
    high: float = 0.0
    edges: list[float] = field(default_factory=list)
    values: list[int] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)


@dataclass
class HistogramPlan:
    name: str
    axes: list[AxisPlan]
    weights_column: str
    origin: Location
    where: list[Step] = field(default_factory=list)  # filled only for events passing these filters


@dataclass
class FillPlan:
    """One fill action: histograms sharing a weight vector, reading the value columns of all
    their axes (each column once, in order of first use)."""

    columns: list[str]
    weights_column: str
    histograms: list[str]
    filters: list[Step] = field(default_factory=list)  # filters on this fill's own branch of the graph


@dataclass
class DatasetPlan:
    """One RDataFrame: samples that share tree name, format, columns and data/MC status."""

    index: int
    tree: str
    format: str
    is_data: bool
    samples: list[str]
    files: list[str]
    file_samples: list[int]  # position in `samples` of each file's sample
    steps: list[Step]
    cutflow: list[str]  # "all" then one row per cut, each after the step of that cut
    weight_entries: list[str]  # names in the systematic axis filled from the weight vector
    combined: list[CombinedEntry]  # entries computed after the loop from weight entries
    shape_variations: list[str]  # systematic names varied through Vary
    histograms: list[HistogramPlan]
    fills: list[FillPlan]
    input_types: dict[str, str] = field(default_factory=dict)  # C++ types of the input columns the steps read
    sample_column: str = SAMPLE_COLUMN  # each event's sample: a define, or the file's sample where that is the same
    constants: dict[str, list[float]] = field(default_factory=dict)  # columns equal for every event (data weights)

    @property
    def systematic_entries(self) -> list[str]:
        combined = [f"{c.name}{d}" for c in self.combined for d in ("Up", "Down")]
        return self.weight_entries + combined + [f"{n}{d}" for n in self.shape_variations for d in ("Up", "Down")]


@dataclass
class Plan:
    analysis: str
    config: str
    config_hash: str
    cpp: list[str]
    samples: list[SamplePlan]
    datasets: list[DatasetPlan]
    systematics: list[str]
    max_events: int | None
    corrections: list[CorrectionPlan] = field(default_factory=list)
    part: list[int] | None = None  # [i, n] for a batch part: histograms are not normalised

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plan:
        datasets = []
        for d in data["datasets"]:
            def step(data: Mapping[str, Any]) -> Step:
                return Step(**{**data, "origin": Location(**data["origin"])})

            hists = [
                HistogramPlan(**{**h, "axes": [AxisPlan(**a) for a in h["axes"]], "origin": Location(**h["origin"]),
                                 "where": [step(w) for w in h["where"]]})
                for h in d["histograms"]
            ]
            steps = [step(s) for s in d["steps"]]
            combined = [CombinedEntry(**c) for c in d["combined"]]
            fills = [FillPlan(**{**f, "filters": [step(w) for w in f["filters"]]}) for f in d["fills"]]
            datasets.append(
                DatasetPlan(**{**d, "steps": steps, "combined": combined, "histograms": hists, "fills": fills})
            )
        return cls(
            **{
                **data,
                "samples": [SamplePlan(**s) for s in data["samples"]],
                "datasets": datasets,
                "corrections": [CorrectionPlan(**c) for c in data["corrections"]],
            }
        )

    def sample(self, name: str) -> SamplePlan:
        return next(s for s in self.samples if s.name == name)

    def describe(self) -> str:
        """Human-readable plan for --dry-run."""
        lines = [f"analysis {self.analysis}  ({self.config}, config sha256 {self.config_hash[:12]})"]
        if self.cpp:
            lines.append("C++ helpers: " + ", ".join(self.cpp))
        lines.append(f"systematics selected: {', '.join(self.systematics) or 'none'}")
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
            lines.append(f"dataset {d.index}: {'data' if d.is_data else 'MC'}, {d.format} '{d.tree}', "
                         f"samples {', '.join(d.samples)}")
            for st in d.steps:
                if st.kind == "vary":
                    where = f"  if {st.condition}" if st.condition else ""
                    for column, up, down in zip(st.columns, st.ups, st.downs):
                        lines.append(f"  vary    {column} [{st.name}]: up={up}  down={down}{where}")
                else:
                    lines.append(f"  {st.kind:<7} {st.name} = {st.expression}")
            lines.append(f"  cutflow: {' -> '.join(d.cutflow)}")
            lines.append(f"  systematic axis ({len(d.systematic_entries)}): {', '.join(d.systematic_entries)}")
            for h in d.histograms:
                axes = ", ".join(_describe_axis(a) for a in h.axes)
                where = f"  where {' -> '.join(w.expression for w in h.where)}" if h.where else ""
                lines.append(f"  histogram {h.name}: {axes} x systematic{where}")
        return "\n".join(lines)


def axis_extent(a: AxisPlan) -> int:
    """Bins of an axis in its storage, flow bins included."""
    flow = {"regular": 2, "variable": 2, "integer": 2, "int_category": 1, "str_category": 1, "boolean": 0}
    return a.bins + flow[a.kind]


STORAGE_SHARED_BYTES = 4 << 20  # as fw::Storage::kSharedBytes: above, one storage for all threads


def histogram_bytes(plan: Plan, threads: int) -> list[tuple[HistogramPlan, int]]:
    """What the event loop holds for each histogram: cells (flow bins included) x entries (weight
    variations and shape variations) x samples x 16 bytes, times the threads for the small
    storages that each thread keeps apart."""
    out = []
    for d in plan.datasets:
        entries = len(d.weight_entries) + 2 * len(d.shape_variations)
        for h in d.histograms:
            cells = 1
            for a in h.axes:
                cells *= axis_extent(a)
            size = 16 * cells * entries * len(d.samples)
            out.append((h, size * threads if size <= STORAGE_SHARED_BYTES and threads > 1 else size))
    return out


def check_histogram_memory(plan: Plan, threads: int, limit: int) -> None:
    """Refuse, before any event is read, histograms that would not fit in `limit` bytes."""
    sizes = histogram_bytes(plan, threads)
    total = sum(size for _, size in sizes)
    if total <= limit:
        return
    h, size = max(sizes, key=lambda item: item[1])
    raise ConfigError(
        f"the histograms need {total / 2**30:.2f} GiB in the event loop, more than the limit of "
        f"{limit / 2**30:.2f} GiB; the largest, {h.name!r}, needs {size / 2**30:.2f} GiB",
        h.origin,
        "use fewer bins, or raise the limit with --histogram-memory (writing needs about as much again)",
    )


def _describe_axis(a: AxisPlan) -> str:
    if a.kind == "regular":
        return f"{a.name}[{a.bins} bins {a.low}..{a.high}]"
    if a.kind == "variable":
        return f"{a.name}[edges {a.edges}]"
    if a.kind == "integer":
        return f"{a.name}[integers {a.low:g}..{a.high:g})"
    if a.kind == "int_category":
        return f"{a.name}{a.values}"
    if a.kind == "str_category":
        return f"{a.name}{a.labels}"
    return f"{a.name}[bool]"


# ------------------------------------------------------------------ selection


def select_samples(config: LoadedConfig, sel: RunSelection) -> list[str]:
    spec = config.spec
    names = list(spec.samples)
    for pattern in sel.samples:
        if not any(fnmatch.fnmatchcase(n, pattern) for n in names):
            raise ConfigError(
                f"--samples {pattern!r} matches no sample",
                hint=did_you_mean(pattern, names) or f"samples: {', '.join(names)}",
            )
    eras = {s.era for s in spec.samples.values()}
    for era in sel.eras:
        if era not in eras:
            raise ConfigError(f"--eras {era!r} matches no sample's era", hint=did_you_mean(era, map(str, eras)))
    chosen = [
        n
        for n in names
        if (not sel.samples or any(fnmatch.fnmatchcase(n, p) for p in sel.samples))
        and (not sel.eras or spec.samples[n].era in sel.eras)
    ]
    if not chosen:
        raise ConfigError("the sample and era selection leaves no sample to run on")
    return chosen


def select_systematics(spec: AnalysisSpec, choice: str) -> list[str]:
    """`none`, `all`, or a comma-separated list of names, groups and glob patterns (`jes*`)."""
    names = list(spec.systematics)
    if choice == "none":
        return []
    if choice == "all":
        return names
    groups = {n: spec.systematics[n].group for n in names}
    chosen: list[str] = []
    for pattern in (p.strip() for p in choice.split(",") if p.strip()):
        matched = [
            n for n in names if fnmatch.fnmatchcase(n, pattern) or (groups[n] and fnmatch.fnmatchcase(groups[n], pattern))
        ]
        if not matched:
            known = names + sorted({g for g in groups.values() if g})
            raise ConfigError(
                f"--systematics {pattern!r} matches no declared systematic",
                hint=did_you_mean(pattern, known) or (f"declared: {', '.join(known)}" if known else "none declared"),
            )
        chosen.extend(m for m in matched if m not in chosen)
    return [n for n in names if n in chosen]


# ------------------------------------------------------------------ columns


@dataclass
class _Node:
    name: str
    expression: str
    origin: Location
    parts: list[tuple[str, Location]] = field(default_factory=list)  # pieces with places of their own, checked first


class _ColumnResolver:
    """Resolves the names an expression reads into graph steps, in dependency order."""

    def __init__(
        self, config: LoadedConfig, inputs: frozenset[str], is_cpp_symbol: Callable[[str], bool], dataset_label: str
    ) -> None:
        self.config = config
        self.spec = config.spec
        self.inputs = inputs
        self.is_cpp_symbol = is_cpp_symbol
        self.dataset_label = dataset_label
        self.ordered: list[_Node] = []
        self.done: set[str] = set()
        self.extra: dict[str, _Node] = {}  # framework-made columns (axes, weights)
        self.varies: list[Step] = []  # placed as soon as all their columns exist
        self.symbols: set[str] = set()  # C++ globals the framework declares (corrections)

    # what a derived name would be, or None
    def _definition(self, name: str) -> _Node | None:
        spec = self.spec
        if name in self.extra:
            return self.extra[name]
        if name in spec.defines:
            return _Node(name, spec.defines[name], self.config.locate("defines", name))
        if name in spec.categories:
            cat = spec.categories[name]
            parts = [(cond, self.config.locate("categories", name, "cases", label)) for label, cond in (cat.cases or {}).items()]
            return _Node(name, category_expression(cat), self.config.locate("categories", name), parts)
        if name.startswith("n") and name[1:] in spec.collections:
            coll = name[1:]
            return _Node(name, f"int(__{coll}_idx.size())", self.config.locate("collections", coll))
        if name.startswith("__") and name.endswith("_idx") and name[2:-4] in spec.collections:
            coll = name[2:-4]
            c = spec.collections[coll]
            where = c.where
            if c.sort_by is None:
                expr = f"fw::collection_indices({where})"
            else:
                expr = f"fw::collection_indices({where}, {c.from_}_{c.sort_by}, {str(not c.ascending).lower()})"
            return _Node(name, expr, self.config.locate("collections", coll), [(where, self.config.locate("collections", coll, "where"))])
        for coll, c in spec.collections.items():
            prefix = coll + "_"
            if name.startswith(prefix) and len(name) > len(prefix):
                source = f"{c.from_}_{name[len(prefix):]}"
                if self.exists(source):
                    return _Node(name, f"ROOT::VecOps::Take({source}, __{coll}_idx)", self.config.locate("collections", coll))
        return None

    def exists(self, name: str) -> bool:
        return name in self.inputs or self._definition(name) is not None

    def known_names(self) -> set[str]:
        names = set(self.inputs) | set(self.spec.defines) | set(self.spec.categories)
        for coll, c in self.spec.collections.items():
            names.add("n" + coll)
            names |= {coll + col[len(c.from_):] for col in self.inputs if col.startswith(c.from_ + "_")}
        return {n for n in names if not n.startswith("__")}

    def require(self, expression: str, origin: Location, stack: tuple[str, ...] = ()) -> None:
        for ref in referenced_names(expression):
            if ref in self.inputs or ref in self.done or ref in (FILE_SAMPLE_COLUMN, DATASET_COLUMN):
                continue
            if ref in stack:
                cycle = " -> ".join((*stack[stack.index(ref):], ref))
                raise ConfigError(f"circular definition: {cycle}", origin, "a column cannot depend on itself")
            node = self._definition(ref)
            if node is None:
                if ref in self.symbols or self.is_cpp_symbol(ref):
                    continue
                raise ConfigError(
                    f"unknown column {ref!r} in expression {expression!r}{self.dataset_label}",
                    origin,
                    did_you_mean(ref, self.known_names()) or "check the spelling, or define it under 'defines'",
                )
            for part, place in node.parts:
                self.require(part, place, (*stack, ref))
            self.require(node.expression, node.origin, (*stack, ref))
            self.done.add(ref)
            self.ordered.append(node)

    def steps(self) -> list[Step]:
        """Defines and Varies in dependency order.

        A Vary must come before every define that reads a column it varies: RDataFrame
        does not vary a define created before the Vary (measured with ROOT 6.40). So a
        Vary is a node too: it depends on the columns its expressions read, and every
        define reading a varied column depends on it.
        """
        nodes = {n.name: n for n in self.ordered}
        varied_by: dict[str, list[int]] = {}
        for i, vary in enumerate(self.varies):
            for column in vary.columns:
                varied_by.setdefault(column, []).append(i)
        deps: dict[tuple[str, Any], set[tuple[str, Any]]] = {}
        for node in self.ordered:
            refs = referenced_names(node.expression)
            deps[("define", node.name)] = {("define", r) for r in refs if r in nodes} | {
                ("vary", i) for r in refs for i in varied_by.get(r, [])
            }
        for i, vary in enumerate(self.varies):
            refs = {n for e in (*vary.ups, *vary.downs, vary.condition) for n in referenced_names(e)}
            deps[("vary", i)] = {("define", r) for r in refs | set(vary.columns) if r in nodes}
        order = [("vary", i) for i in range(len(self.varies))] + [("define", n.name) for n in self.ordered]
        out: list[Step] = []
        placed: set[tuple[str, Any]] = set()
        while len(placed) < len(order):
            ready = next((item for item in order if item not in placed and deps[item] <= placed), None)
            if ready is None:
                stuck = [self.varies[i].name for kind, i in order if kind == "vary" and (kind, i) not in placed]
                raise ConfigError(
                    f"systematic {stuck[0]!r} reads a column that depends on the column it varies",
                    self.varies[[v.name for v in self.varies].index(stuck[0])].origin,
                    "vary an input column, or compute the variation from inputs only",
                )
            placed.add(ready)
            kind, key = ready
            if kind == "vary":
                out.append(self.varies[key])
            else:
                node = nodes[key]
                out.append(Step("define", node.name, node.expression, node.origin))
        return out


def category_expression(cat: CategorySpec) -> str:
    if cat.cases is not None:
        expr = str(len(cat.cases))
        for i, cond in reversed(list(enumerate(cat.cases.values()))):
            expr = f"(({cond}) ? {i} : {expr})"
        return expr
    assert cat.expr is not None
    return cat.expr


def declared_histograms(spec: AnalysisSpec) -> dict[str, HistogramSpec]:
    """The configured histograms and `yields`: events per category (every category axis)."""
    # model_construct: without categories the yields have no axis, which users may not declare
    return {**spec.histograms, YIELDS: HistogramSpec.model_construct(axes=list(spec.categories), weight=None, where=None)}


def histogram_axes(spec: AnalysisSpec, hname: str) -> list[AxisPlan]:
    """Axes of an output histogram (without the systematic axis), from the configuration alone."""
    return [
        _category_axis(a, spec.categories[a]) if isinstance(a, str) else _value_axis(hname, a)[0]
        for a in declared_histograms(spec)[hname].axes
    ]


def _category_axis(name: str, cat: CategorySpec) -> AxisPlan:
    label = cat.label or name
    if cat.values is not None:
        return AxisPlan(name, "int_category", name, label, bins=len(cat.values), values=list(cat.values))
    if cat.integer is not None:
        lo, hi = cat.integer
        return AxisPlan(name, "integer", name, label, bins=hi - lo, low=lo, high=hi)
    if cat.cases is not None:
        return AxisPlan(name, "str_category", name, label, bins=len(cat.cases), labels=list(cat.cases))
    return AxisPlan(name, "boolean", name, label, bins=2)


def _value_axis(hist: str, axis: AxisSpec) -> tuple[AxisPlan, str | None]:
    """The axis and, when its expression is not a plain column, the column to define for it."""
    name = axis.name or axis.expr
    column = axis.expr if is_identifier(axis.expr) else f"__axis_{hist}_{name}"
    label = axis.label or name
    if axis.edges is not None:
        plan = AxisPlan(name, "variable", column, label, bins=len(axis.edges) - 1, edges=list(axis.edges))
    elif axis.integer is not None:
        lo, hi = axis.integer
        plan = AxisPlan(name, "integer", column, label, bins=hi - lo, low=lo, high=hi)
    else:
        assert axis.bins is not None and axis.range is not None
        plan = AxisPlan(name, "regular", column, label, bins=axis.bins, low=axis.range[0], high=axis.range[1])
    return plan, (None if column == axis.expr else axis.expr)


def literal_subscripts(config: LoadedConfig, columns: set[str]) -> list[tuple[str, str, int, Location]]:
    """Weight-variation factors that index an input array with a number (`PSWeight[2]`): every
    event evaluates them, so the first event of the input already says whether they fit.
    (systematic, array, index, place)."""
    found = []
    for name, syst in config.spec.systematics.items():
        for direction in ("up", "down"):
            expression = getattr(syst, direction, None) if getattr(syst, "kind", "") == "weight" else None
            for _, _, array, index in subscripts(expression or "", columns):
                if index.strip().isdigit():
                    found.append((name, array, int(index), config.locate("systematics", name, direction)))
    return found


def _check_array_indices(
    config: LoadedConfig, names: Sequence[str], sizes: Mapping[str, int], columns: set[str], label: str
) -> None:
    """Indices of weight arrays against the arrays' lengths in the first event of the input."""
    checks = []
    for name in names:
        syst = config.spec.systematics[name]
        array = getattr(syst, "from_array", None)
        indices = getattr(syst, "indices", None) or []
        checks += [(array, index, config.locate("systematics", name, "indices", i)) for i, index in enumerate(indices)]
    checks += [(array, index, place) for name, array, index, place in literal_subscripts(config, columns) if name in names]
    for array, index, place in checks:
        if array in sizes and index >= sizes[array]:
            raise ConfigError(
                f"index {index} is out of range: {array} has {sizes[array]} entries in the first event{label}",
                place,
                f"valid indices are 0 to {sizes[array] - 1}" if sizes[array] else f"{array} is empty in the first event",
            )


def _check_unused(r: _ColumnResolver) -> None:
    """Defines, categories and collections that nothing reads are checked as well (unknown
    names, cycles), on a copy of the resolver: they add no step to the graph."""
    probe = _ColumnResolver(r.config, r.inputs, r.is_cpp_symbol, r.dataset_label)
    probe.extra, probe.done, probe.symbols = dict(r.extra), set(r.done), set(r.symbols)
    for block in ("defines", "categories", "collections"):
        for name in getattr(r.spec, block):
            column = name if block != "collections" else f"n{name}"
            if column not in r.done:
                probe.require(column, r.config.locate(block, name))


def _sample_expression(config: LoadedConfig, members: list[SamplePlan]) -> str:
    """The output sample of each event: its file's sample, or for a split sample the sub-process
    whose condition is true first (the file maps to the first sub-process's position)."""
    expr = FILE_SAMPLE_COLUMN
    for first, m in enumerate(members):
        if m.parent is None or (first > 0 and members[first - 1].parent == m.parent):
            continue
        conditions = config.spec.samples[m.parent].split or {}
        choice = str(len(conditions))
        for k, cond in reversed(list(enumerate(conditions.values()))):
            choice = f"(({cond}) ? {k} : {choice})"
        expr = f"({FILE_SAMPLE_COLUMN} == {first} ? {first} + {choice} : {expr})"
    return expr


def _applies(config: LoadedConfig, name: str, members: list[SamplePlan], sample_column: str) -> str | None:
    """C++ test of the sample index for the samples a systematic applies to; None for all."""
    rule = config.spec.systematics[name].applies_to
    if rule is None:
        return None
    positions = [
        i
        for i, m in enumerate(members)
        if (not rule.samples or any(fnmatch.fnmatchcase(m.name, p) for p in rule.samples))
        and (not rule.eras or m.era in rule.eras)
    ]
    if len(positions) == len(members):
        return None
    if not positions:
        return "false"
    return " || ".join(f"{sample_column} == {i}" for i in positions)


def _plan_dataset(
    config: LoadedConfig,
    index: int,
    members: list[SamplePlan],
    inputs: SampleInputs,
    chosen_systematics: Sequence[str],
    is_cpp_symbol: Callable[[str], bool],
) -> tuple[DatasetPlan, list[CorrectionPlan]]:
    spec = config.spec
    is_data = members[0].is_data
    label = f" (sample{'s' if len(members) > 1 else ''} {', '.join(m.name for m in members)})"
    r = _ColumnResolver(config, inputs.columns, is_cpp_symbol, label)
    systematics = [] if is_data else list(chosen_systematics)
    for block in ("defines", "categories", "collections"):
        for name in getattr(spec, block):
            made = [name] if block != "collections" else ["n" + name]
            for column in made:
                if column in inputs.columns:
                    raise ConfigError(
                        f"{column!r} already exists in the input{label}; a {block[:-1]} cannot replace it",
                        config.locate(block, name),
                        "choose another name; to vary an input column use a 'kind: shape' systematic",
                    )
    for name, c in spec.collections.items():
        if c.from_ not in spec.collections and not any(col.startswith(c.from_ + "_") for col in inputs.columns):
            sources = set(spec.collections) | {col.split("_", 1)[0] for col in inputs.columns if "_" in col}
            raise ConfigError(
                f"collection {name!r} is made from {c.from_!r}: no collection and no input column {c.from_ + '_*'}{label}",
                config.locate("collections", name, "from"),
                did_you_mean(c.from_, sources) or "'from' names a collection or the prefix of input columns (Jet for Jet_pt)",
            )

    # The file's sample is each event's sample unless a split sample divides files, or shape
    # variations need a plain Define between the per-file column and the varied fills (ROOT 6.40
    # aborts when a varied action reads a per-sample column).
    split = any(m.parent is not None for m in members)
    sample_column = SAMPLE_COLUMN if split or any(varies_columns(config, n) for n in systematics) else FILE_SAMPLE_COLUMN
    if sample_column == SAMPLE_COLUMN:
        r.extra[SAMPLE_COLUMN] = _Node(SAMPLE_COLUMN, _sample_expression(config, members), config.locate("samples"))
        r.require(SAMPLE_COLUMN, config.locate("samples"))
    _check_array_indices(config, systematics, inputs.array_sizes, set(inputs.columns), label)
    contributions = [(n, contribution(config, n, _applies(config, n, members, sample_column))) for n in systematics]
    shape_names: list[str] = []
    for name, contrib in contributions:
        r.symbols.update(c.symbol for c in contrib.corrections)
        for column, expr, origin in contrib.columns:
            r.extra[column] = _Node(column, expr, origin)
        for vary in contrib.varies:
            for column in vary.columns:
                if not r.exists(column) or column.startswith("__"):
                    raise ConfigError(
                        f"systematic {name!r} varies column {column!r}, which does not exist{label}",
                        vary.origin,
                        did_you_mean(column, r.known_names()) or "vary an input column or a name under 'defines'",
                    )
                r.require(column, vary.origin)
            for (up_place, down_place), up, down in zip(vary.places, vary.ups, vary.downs):
                r.require(up, up_place)
                r.require(down, down_place)
            r.varies.append(Step("vary", name, "", vary.origin, vary.columns, vary.ups, vary.downs, vary.condition))
            shape_names.append(name)

    for i, cut in enumerate(spec.selection):
        r.require(cut.cut, config.locate("selection", i, "cut"))

    weight_entries = ["nominal"]
    combined: list[CombinedEntry] = []
    extra_weight_nodes: list[_Node] = []
    constants: dict[str, list[float]] = {}
    if is_data:
        constants = {WEIGHTS: [1.0], CUTFLOW_WEIGHTS: [1.0, 1.0, 1.0]}
        r.done.update(constants)
    else:
        nominal = f"double({spec.weight})" + "".join(
            f" * double({f})" for _, c in contributions for f, _ in c.nominal_factors
        )
        r.require(nominal, config.locate("weight"))
        r.require(spec.generator_weight, config.locate("generator_weight"))
        entries = [e for _, c in contributions for e in c.entries]
        for entry in entries:
            r.require(entry.factor, entry.origin)
        factors = "".join(f", {WEIGHT_NOMINAL} * double({e.factor})" for e in entries)
        weight_entries += [e.name for e in entries]
        combined = [k for _, c in contributions for k in c.combined]
        extra_weight_nodes.append(_Node(WEIGHT_NOMINAL, nominal, config.locate("weight")))
        extra_weight_nodes.append(_Node(WEIGHTS, f"ROOT::RVecD{{{WEIGHT_NOMINAL}{factors}}}", config.locate("weight")))
        extra_weight_nodes.append(
            _Node(
                CUTFLOW_WEIGHTS,
                f"ROOT::RVecD{{1.0, double({spec.generator_weight}), {WEIGHT_NOMINAL}}}",
                config.locate("generator_weight"),
            )
        )
    for node in extra_weight_nodes:
        r.extra[node.name] = node
    r.require(CUTFLOW_WEIGHTS, config.locate("weight"))

    histograms: list[HistogramPlan] = []
    for hname, hspec in declared_histograms(spec).items():
        axes = []
        for i, axis in enumerate(hspec.axes):
            origin = config.locate("histograms", hname, "axes", i) if hname != YIELDS else config.locate("categories")
            if isinstance(axis, str):
                plan = _category_axis(axis, spec.categories[axis])
            else:
                plan, expr = _value_axis(hname, axis)
                if expr is not None:
                    r.extra[plan.column] = _Node(plan.column, expr, origin)
            r.require(plan.column, origin)
            axes.append(plan)
        weights_column = WEIGHTS
        if hspec.weight is not None:
            weights_column = f"__weights_{hname}"
            r.extra[weights_column] = _Node(weights_column, f"{WEIGHTS} * double({hspec.weight})", config.locate("histograms", hname, "weight"))
        where = []
        conditions = [hspec.where] if isinstance(hspec.where, str) else list(hspec.where or [])
        for i, condition in enumerate(conditions):
            place = config.locate(*("histograms", hname, "where") + ((i,) if isinstance(hspec.where, list) else ()))
            r.require(condition, place)
            where.append(Step("filter", f"where {condition}", condition, place))
        origin = config.locate("histograms", hname) if hname != YIELDS else config.locate("categories")
        histograms.append(HistogramPlan(hname, axes, weights_column, origin, where))

    fills: list[FillPlan] = []
    # one fill per weight vector and `where` chain: a fill's axis values are computed only
    # for the events that pass its filters
    def where_of(h: HistogramPlan) -> tuple[str, ...]:
        return tuple(w.expression for w in h.where)

    for weights_column, conditions in dict.fromkeys((h.weights_column, where_of(h)) for h in histograms):
        group = [h for h in histograms if h.weights_column == weights_column and where_of(h) == conditions]
        r.require(weights_column, group[0].origin)
        columns = list(dict.fromkeys(a.column for h in group for a in h.axes))
        fills.append(FillPlan(columns, weights_column, [h.name for h in group], list(group[0].where)))

    _check_unused(r)
    steps = r.steps()
    for i, cut in enumerate(spec.selection):
        steps.append(Step("filter", cut.name, cut.cut, config.locate("selection", i, "cut")))

    files: list[str] = []
    file_samples: list[int] = []
    for pos, member in enumerate(members):
        if member.parent is not None and pos > 0 and members[pos - 1].parent == member.parent:
            continue  # the sub-processes of a split sample read its files once
        files.extend(member.files)
        file_samples.extend([pos] * len(member.files))
    corrections = [k for _, c in contributions for k in c.corrections]
    expressions = [e for st in steps for e in (st.expression, *st.ups, *st.downs, st.condition, *st.columns)]
    expressions += [e for f in fills for e in (*f.columns, f.weights_column, *(w.expression for w in f.filters))]
    read = {n for e in expressions for n in referenced_names(e) if n in inputs.columns}
    dataset = DatasetPlan(
        index=index,
        tree=members[0].tree,
        format=inputs.format,
        is_data=is_data,
        samples=[m.name for m in members],
        files=files,
        file_samples=file_samples,
        steps=steps,
        cutflow=["all", *(c.name for c in spec.selection)],
        weight_entries=weight_entries,
        combined=combined,
        shape_variations=shape_names,
        histograms=histograms,
        fills=fills,
        input_types={n: inputs.column_types[n] for n in sorted(read) if n in inputs.column_types},
        sample_column=sample_column,
        constants=constants,
    )
    return dataset, corrections


def reading(
    found: SampleInputs, part: tuple[int, int] | None, max_events: int | None
) -> tuple[list[str], list[int], list[list[int]] | None, int | None]:
    """What a run reads of a sample: the files, their entries, the [begin, end) entries of each
    file when not all of them, and the --max-events limit when it cuts. A batch part `i/n` takes
    the i-th of n contiguous chunks of the files, or of the entries when there are fewer files
    than parts (RDataFrame reads a file's entry range at the cost of counting past the rest);
    --max-events then keeps the first entries of what the part reads."""
    files, entries = list(found.files), list(found.entries)
    ranges = [[0, n] for n in entries]
    if part is not None:
        i, n = part
        if len(files) >= n:
            lo, hi = (len(files) * (i - 1)) // n, (len(files) * i) // n
            files, entries, ranges = files[lo:hi], entries[lo:hi], ranges[lo:hi]
        else:
            total = sum(entries)
            lo, hi = (total * (i - 1)) // n, (total * i) // n
            kept, offset = [], 0
            for f, count in zip(files, entries):
                begin, end = max(lo - offset, 0), min(hi - offset, count)
                if begin < end:
                    kept.append((f, count, [begin, end]))
                offset += count
            files, entries, ranges = [k[0] for k in kept], [k[1] for k in kept], [k[2] for k in kept]
    limit = None
    if max_events is not None and max_events < sum(end - begin for begin, end in ranges):
        limit, left, cut = max_events, max_events, []
        for f, count, (begin, end) in zip(files, entries, ranges):
            if left <= 0:
                break
            cut.append((f, count, [begin, min(end, begin + left)]))
            left -= end - begin
        files, entries, ranges = [c[0] for c in cut], [c[1] for c in cut], [c[2] for c in cut]
    whole = all(r == [0, count] for r, count in zip(ranges, entries))
    return files, entries, None if whole else ranges, limit


def make_plan(
    config: LoadedConfig,
    inputs: Mapping[str, SampleInputs],
    selection: RunSelection,
    is_cpp_symbol: Callable[[str], bool] = lambda name: False,
    cpp_files: Sequence[Path] = (),
) -> Plan:
    """Decide everything the run computes. Raises ConfigError for what does not resolve."""
    spec = config.spec
    names = select_samples(config, selection)
    systematics = select_systematics(spec, selection.systematics)
    read = {n: reading(inputs[n], selection.part, selection.max_events) for n in names}
    names = [n for n in names if read[n][0]]
    if not names:
        i, n = selection.part or (1, 1)
        raise ConfigError(f"part {i}/{n} reads no event: the selected samples have fewer than {n} entries")

    groups: dict[tuple[str, str, bool, frozenset[str], frozenset[tuple[str, str]]], list[str]] = {}
    for name in names:
        s, found = spec.samples[name], inputs[name]
        key = (s.tree, found.format, s.is_data, found.columns, frozenset(found.column_types.items()))
        groups.setdefault(key, []).append(name)

    samples: list[SamplePlan] = []
    datasets: list[DatasetPlan] = []
    corrections: list[CorrectionPlan] = []
    for index, ((tree, fmt, is_data, columns, _), members) in enumerate(groups.items()):
        plans = []
        for name in members:
            s = spec.samples[name]
            files, entries, ranges, limit = read[name]
            for output in split_names(name, s.split) or [name]:
                plans.append(
                    SamplePlan(
                        name=output,
                        process=(s.process or name) if output == name else output,
                        is_data=s.is_data,
                        era=s.era,
                        tree=tree,
                        files=files,
                        entries=entries,
                        xsec=inputs[name].metadata.get(s.xsec, None) if isinstance(s.xsec, str) else s.xsec,
                        lumi=None if s.is_data else lumi_of(spec, s.era),
                        sum_weights=(
                            inputs[name].metadata.get(s.sum_weights, None)
                            if isinstance(s.sum_weights, str)
                            else s.sum_weights
                        ),
                        entry_limit=limit,
                        dataset=index,
                        parent=None if output == name else name,
                        skipped_files=list(inputs[name].skipped),
                        ranges=ranges,
                    )
                )
        samples.extend(plans)
        sizes: dict[str, int] = {}
        for name in members:
            for array, size in inputs[name].array_sizes.items():
                sizes[array] = min(size, sizes.get(array, size))
        found = SampleInputs((), (), columns, fmt, inputs[members[0]].column_types, sizes)
        dataset, needed = _plan_dataset(config, index, plans, found, systematics, is_cpp_symbol)
        for name in members:
            for file, differing in inputs[name].inconsistent.items():
                used = sorted(set(differing) & set(dataset.input_types))
                if used:
                    raise ConfigError(
                        f"sample {name!r}: file {file} lacks, or has with another type, column(s) {', '.join(used)} "
                        "that the first file has and the analysis reads",
                        config.locate("samples", name, "files"),
                        "a sample's files must share the columns the analysis reads; remove the file or split the sample",
                    )
        datasets.append(dataset)
        corrections.extend(c for c in needed if c not in corrections)
    order = [out for n in names for out in (split_names(n, spec.samples[n].split) or [n])]
    samples.sort(key=lambda s: order.index(s.name))
    return Plan(
        analysis=spec.analysis,
        config=str(config.path),
        config_hash=config.config_hash(),
        cpp=[str(p) for p in cpp_files],
        samples=samples,
        datasets=datasets,
        systematics=systematics,
        max_events=selection.max_events,
        corrections=corrections,
        part=list(selection.part) if selection.part else None,
    )
