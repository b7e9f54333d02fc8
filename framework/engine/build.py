"""Build stage: turn a frozen `Plan` into RDataFrame graphs with every result booked.

One RDataFrame per dataset of the plan, in one C++ session (`framework.engine.session`); all run
together in `framework.engine.run`. Nothing is decided here that the plan did not say: this module
translates steps into Define / Vary / Filter nodes and histograms into fill actions.

Each step is generated as typed C++ (`framework.engine.compiled`); when the cache holds it compiled,
the session calls it and the interpreter is not involved. Otherwise the interpreter
(`framework.engine.interpreter`) compiles the expression as RDataFrame always does, and the
step joins the job that compiles it for the next run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import singledispatchmethod
from pathlib import Path

from framework.config.expressions import checked_indexing, referenced_names
from framework.engine.compiled import Job, lookup, session_key, session_library
from framework.engine.interpreter import Interpreter, run_interpreted
from framework.engine.rootenv import root
from framework.engine.session import Session, SessionError
from framework.engine.stepsource import (
    Correction,
    StepSources,
    define_code,
    fill_code,
    filter_code,
    lumi_mask_code,
    vary_code,
)
from framework.errors import ConfigError, InputError, Location, RemoteInputError
from framework.inputs.locations import kind_of
from framework.plan.axes import AxisPlan
from framework.plan.model import (
    CUTFLOW_WEIGHTS,
    DATASET_COLUMN,
    FILE_SAMPLE_COLUMN,
    WEIGHTS,
    DatasetPlan,
    FillPlan,
    Plan,
)
from framework.plan.steps import Define, Filter, LumiMask, Mask, Step, Vary
from framework.timing import Timer

SPECIAL_COLUMNS = {"rdfslot_": "unsigned int", "rdfentry_": "ULong64_t"}


@dataclass
class BookedDataset:
    """The booked results of one dataset: fill handles (histograms, cutflow rows) in the session."""

    plan: DatasetPlan
    fills: list[int | None] = field(default_factory=list)  # per FillPlan; None: the last cutflow row
    cutflow: list[int | None] = field(default_factory=list)  # one per cutflow row; None: counted, not filled
    varied: bool = False
    snapshot: int | None = None  # the skim's Snapshot, run with the fills
    files_counted: bool = False  # the loop counts the entries it reads from each file (`counts_files`)


@dataclass
class IndexSite:
    """An array subscript as written in the YAML, for the message when its index is out of range."""

    written: str
    origin: Location


@dataclass
class BookedGraph:
    session: Session
    datasets: list[BookedDataset]
    job: Job  # what the cache lacked: compiled after the run for the next one
    sites: dict[int, IndexSite] = field(default_factory=dict)  # checked array subscripts
    interpreted: list[str] = field(default_factory=list)  # steps the interpreter compiled in this build

    def handles(self) -> list[int]:
        """One fill per dataset graph that has one, for RunGraphs (which runs the snapshots too)."""
        firsts = (next((f for f in (*d.cutflow, *d.fills) if f is not None), None) for d in self.datasets)
        return [f for f in firsts if f is not None]


def layouts_text(
    nsamples: int,
    nweights: int,
    histograms: Sequence[Sequence[AxisPlan]],
    variations: list[str],
    columns: Sequence[str],
) -> str:
    """The fill action's histogram layouts, in the text form `fw::ParseLayouts` (cpp/fill.hxx) reads;
    each axis names the position of its column in `columns`."""
    blocks = [str(len(histograms))]
    for axes in histograms:
        head = [nsamples, nweights, len(variations), *variations, len(axes)]
        blocks.append(" ".join(map(str, head)) + "".join("\n" + a.layout(columns.index(a.column)) for a in axes))
    return "\n".join(blocks)


def shape_keys(d: DatasetPlan) -> list[str]:
    """RDataFrame's names of the shape variations, in systematic-axis order (one-sided: up only)."""
    return [f"{name}:{direction}" for name in d.shape_variations for direction in d.directions(name)]


def _vary_expression(step: Vary, kind: str) -> str:
    """One expression giving every varied column's up and down values (up only when one-sided), cast
    to its exact type."""

    def value(column: str, expr: str) -> str:
        cast = f"fw::cast<{kind}>({expr})"
        return f"(({step.condition}) ? {cast} : {column})" if step.condition else cast

    downs = step.downs or [None] * len(step.columns)
    per_column = [
        f"ROOT::RVec<{kind}>{{{', '.join(value(c, e) for e in (up, down) if e is not None)}}}"
        for c, up, down in zip(step.columns, step.ups, downs)
    ]
    return per_column[0] if len(per_column) == 1 else f"ROOT::RVec<ROOT::RVec<{kind}>>{{{', '.join(per_column)}}}"


class _DatasetBuilder:
    """Adds the steps of one dataset to the session, compiled when the cache has them."""

    def __init__(self, graph: _GraphBuilder, d: DatasetPlan, node: int) -> None:
        self.graph, self.d, self.node = graph, d, node
        self.types = {**d.input_types, FILE_SAMPLE_COLUMN: "int", DATASET_COLUMN: "int", **SPECIAL_COLUMNS}
        for name, values in d.constants.items():
            self.node = graph.session.constant(self.node, name, values)
            self.types[name] = "ROOT::VecOps::RVec<double>"

    def book(
        self,
        node: int,
        histograms: Sequence[Sequence[AxisPlan]],
        weights: str,
        nweights: int,
        variations: list[str],
        columns: Sequence[str],
    ) -> int:
        """One fill action on `node`: compiled from the cache, or by the interpreter."""
        g = self.graph
        source = g.sources.source(fill_code([self.types[c] for c in columns]), "fill")
        hit = lookup(source.key)
        if hit is None:
            with g.timer.part("compile"):
                address = g.interpreter.function(source)
            g.job.add(source, None)
            g.interpreted.setdefault(source.key, "fill " + ", ".join(columns))
        else:
            address = hit.address
        layouts = layouts_text(len(self.d.samples), nweights, histograms, variations, columns)
        return g.session.book_with(node, address, layouts, [self.d.sample_column, weights, *columns])

    def _checked(self, expression: str, step: Step) -> str:
        """The expression with its array subscripts bounds-checked; their sites recorded."""
        arrays = {name for name, ctype in self.types.items() if "RVec<" in ctype}
        checked, sites = checked_indexing(expression, arrays)
        for site, written in sites.items():
            self.graph.sites.setdefault(site, IndexSite(written, step.origin))
        return checked

    def _params(self, expression: str) -> list[tuple[str, str]]:
        return [(n, self.types[n]) for n in referenced_names(expression) if n in self.types]

    def apply(self, step: Step) -> None:
        """Add a step to the dataset's main chain."""
        self.node = self.apply_on(self.node, step)

    def apply_on(self, node: int, step: Step) -> int:
        """`node` with `step` applied: compiled from the cache, else by the interpreter."""
        g = self.graph
        session = g.session
        expression, code = self._code(step)
        source = g.sources.source(code)
        hit = lookup(source.key)
        column = step.new_column
        if hit is not None and (column is None or hit.type):
            if column is not None:
                self.types[column] = hit.type  # type: ignore[assignment]
            return session.apply(node, hit.address)
        with g.timer.part("compile"):
            node = self._interpret(step, node, expression)
        if column is not None:
            self.types[column] = session.column_type(node, column)
        g.job.add(source, self.types[column] if column is not None else None)
        g.interpreted.setdefault(source.key, f"{step.kind} {step.name}")  # type: ignore[attr-defined]
        return node

    @singledispatchmethod
    def _code(self, step: Step) -> tuple[str, str]:
        """The step's expression, array subscripts bounds-checked, and the C++ code that applies it."""
        raise TypeError(f"no code for {step!r}")

    @_code.register(Define)
    def _(self, step: Define) -> tuple[str, str]:
        expression = self._checked(step.expression, step)
        return expression, define_code(step.name, self._params(expression), expression)

    @_code.register(Filter)
    @_code.register(Mask)
    def _(self, step: Filter | Mask) -> tuple[str, str]:
        expression = self._checked(step.expression, step)
        return expression, filter_code(step.name, self._params(expression), expression)

    @_code.register(LumiMask)
    def _(self, step: LumiMask) -> tuple[str, str]:
        params = [(c, self.types[c]) for c in step.expressions()]
        code = lumi_mask_code(step.name, [m.ranges for m in step.masks], step.by_sample, params)
        return code, code

    @_code.register(Vary)
    def _(self, step: Vary) -> tuple[str, str]:
        kinds = {c: self.types[c] for c in step.columns}
        if len(set(kinds.values())) > 1:
            listing = ", ".join(f"{c} is {t}" for c, t in kinds.items())
            raise ConfigError(
                f"systematic {step.name!r} varies columns of different types ({listing})",
                step.origin,
                "RDataFrame varies several columns together only when they share a type: split the systematic",
            )
        expression = self._checked(_vary_expression(step, kinds[step.columns[0]]), step)
        return expression, vary_code(step.name, step.columns, self._params(expression), expression, step.directions)

    @singledispatchmethod
    def _interpret(self, step: Step, node: int, expression: str) -> int:
        """`node` with `step` applied by the interpreter, which compiles `expression`."""
        raise TypeError(f"cannot interpret {step!r}")

    @_interpret.register(Define)
    def _(self, step: Define, node: int, expression: str) -> int:
        session = self._prepared()
        return run_interpreted(
            f"column {step.name!r}", step.origin, lambda: session.define(node, step.name, expression)
        )

    @_interpret.register(Filter)
    def _(self, step: Filter, node: int, expression: str) -> int:
        session = self._prepared()
        action = f"selection {step.expression!r}" if step.name.startswith("where ") else f"cut {step.name!r}"
        return run_interpreted(action, step.origin, lambda: session.filter(node, expression, step.name))

    @_interpret.register(LumiMask)
    def _(self, step: LumiMask, node: int, expression: str) -> int:
        """Generated code only (no user C++): the interpreter compiles the whole function."""
        self._prepared()
        address = self.graph.interpreter.function(self.graph.sources.source(expression))
        return self.graph.session.apply(node, address)

    @_interpret.register(Mask)
    def _(self, step: Mask, node: int, expression: str) -> int:
        session = self._prepared()
        return run_interpreted("the skim's mask", step.origin, lambda: session.filter(node, expression, step.name))

    @_interpret.register(Vary)
    def _(self, step: Vary, node: int, expression: str) -> int:
        session = self._prepared()
        self.graph.interpreter.check_compiles(self.types, expression, f"variation {step.name!r}", step.origin)
        return run_interpreted(
            f"variation {step.name!r}",
            step.origin,
            lambda: session.vary(node, step.columns, expression, step.name, step.directions),
        )

    def _prepared(self) -> Session:
        """The session, its interpreter ready for expressions."""
        self.graph.interpreter.prepare()
        return self.graph.session


@dataclass
class _GraphBuilder:
    plan: Plan
    session: Session
    sources: StepSources
    interpreter: Interpreter
    timer: Timer
    job: Job = field(default_factory=Job)
    interpreted: dict[str, str] = field(default_factory=dict)  # key -> step, of the steps the interpreter compiled
    sites: dict[int, IndexSite] = field(default_factory=dict)  # checked array subscripts


PROGRESS_EVERY = 10000  # events between two updates of a progress file


def events_to_read(plan: Plan) -> int:
    """Entries the loop will read (a split sample's files once)."""
    total, seen = 0, set()
    for s in plan.samples:
        if tuple(s.files) in seen:
            continue
        seen.add(tuple(s.files))
        total += s.events_to_read
    return total


def _entry_ranges(plan: Plan, d: DatasetPlan) -> list[Sequence[int]] | None:
    """Per file of the dataset, the [begin, end) of its entries to read, or None: all of all."""
    samples = [plan.sample(name) for name in d.samples]
    if all(s.ranges is None for s in samples):
        return None
    out: list[Sequence[int]] = []
    for f, position in zip(d.files, d.file_samples):
        s = samples[position]
        k = s.files.index(f)
        out.append(s.ranges[k] if s.ranges is not None else [0, s.entries[k]])
    return out


def _nslots(threads: int) -> int:
    r = root()
    if threads > 1:
        r.EnableImplicitMT(threads)
        return max(1, r.GetThreadPoolSize())
    if r.IsImplicitMTEnabled():
        r.DisableImplicitMT()
    return 1


def build_graph(
    plan: Plan,
    threads: int,
    progress: bool = False,
    progress_file: Path | None = None,
    timer: Timer | None = None,
    snapshots: Mapping[int, Path] | None = None,
) -> BookedGraph:
    """Book every result of the plan; nothing runs yet. `snapshots`: the file each dataset with a
    `SnapshotPlan` (a skim) writes, by dataset index."""
    timer = timer or Timer()
    with timer.part("booking"):
        nslots = _nslots(threads)
        with timer.part("compile"):
            session = Session(nslots)
        corrections = [Correction(c.symbol, c.file, c.name, c.compound) for c in plan.corrections]
        g = _GraphBuilder(
            plan, session, StepSources([Path(p) for p in plan.cpp], corrections), Interpreter(plan), timer
        )
        g.job.session = session_key() is not None and session_library() is None
        booked = [_build_dataset(g, d, progress, progress_file, (snapshots or {}).get(d.index)) for d in plan.datasets]
        # VariationsFor compiles all pending JIT code: call it once everything is booked, so
        # that is one compilation rather than one per histogram.
        with timer.part("compile"):
            for result in booked:
                if result.varied:
                    for fill in result.fills:
                        if fill is not None:  # only collision data has none, and it is not varied
                            session.vary_fill(fill)
            session.jit()
    return BookedGraph(session, booked, g.job, g.sites, list(g.interpreted.values()))


def _is_last_cutflow_row(d: DatasetPlan, fill: FillPlan, axes: Sequence[Sequence[AxisPlan]]) -> bool:
    """Whether a fill's histograms are all the last cutflow row again: collision data (weight 1),
    no axes (yields without categories), no selection of their own. Not filled twice."""
    return d.is_data and bool(d.constants) and fill.weights_column == WEIGHTS and not fill.filters and not any(axes)


UNOPENED_FILE = re.compile(r'could not open file "([^"]+)"')


def counts_files(d: DatasetPlan) -> bool:
    """Whether the loop counts the entries it reads from each file of the dataset, to be checked after
    it: where a file's server can go away mid-loop (remote files). Local files are not counted: the
    count costs each event an action."""
    return any(kind_of(f).remote for f in d.files)


def _opened_dataset(g: _GraphBuilder, d: DatasetPlan) -> int:
    """The dataset's source node. A file read when the run began and gone now (a remote server
    stopped since) is named with its sample rather than as RDataFrame's bare message."""
    try:
        return g.session.dataset(
            d.tree, d.files, d.file_samples, FILE_SAMPLE_COLUMN, DATASET_COLUMN, d.index, counts_files(d)
        )
    except SessionError as err:
        found = UNOPENED_FILE.search(str(err))
        if found is None or found.group(1) not in d.files:
            raise
        url = found.group(1)
        sample = g.plan.file_sample(d, url)
        raise (RemoteInputError if kind_of(url).remote else InputError)(
            f"sample {sample.parent or sample.name!r}: cannot open {url}, which was readable when the run began",
            hint="is the server still up? nothing was written",
        ) from None


def _build_dataset(
    g: _GraphBuilder, d: DatasetPlan, progress: bool, progress_file: Path | None, snapshot: Path | None
) -> BookedDataset:
    session = g.session
    node = _opened_dataset(g, d)
    if progress:
        session.progress_bar(node)
    if progress_file is not None:
        session.watch_progress(node, str(progress_file), events_to_read(g.plan), PROGRESS_EVERY)
    ranges = _entry_ranges(g.plan, d)
    if ranges is not None:
        node = session.read_ranges(node, d.tree, d.files, ranges)
    builder = _DatasetBuilder(g, d, node)
    result = BookedDataset(d, varied=bool(d.shape_variations), files_counted=counts_files(d))

    # Collision data's first row is the number of events read (weight 1), known without a fill;
    # unless a split divides the files' events between samples.
    counted = d.is_data and d.sample_column == FILE_SAMPLE_COLUMN

    def book_cutflow() -> None:
        if counted and not result.cutflow:
            result.cutflow.append(None)
            return
        result.cutflow.append(builder.book(builder.node, [[]], CUTFLOW_WEIGHTS, 3, [], []))

    # Defines come first in the plan, cuts (the lumi mask, filters) last: "all" is booked before the first.
    for step in d.steps:
        is_cut = isinstance(step, Filter | LumiMask)
        if is_cut and not result.cutflow:
            book_cutflow()
        builder.apply(step)
        if is_cut:
            book_cutflow()
    if not result.cutflow:
        book_cutflow()
    if d.snapshot is not None:
        if snapshot is None:
            raise ValueError(f"dataset {d.index} writes a skim: give its file")
        s = d.snapshot
        try:
            result.snapshot = session.snapshot(
                builder.node, s.tree, str(snapshot), s.columns, s.format == "rntuple", bool(s.variations)
            )
        except SessionError as err:  # e.g. a kept define of a type ROOT cannot write (no dictionary)
            raise ConfigError(
                f"the skim cannot write its columns: {str(err).strip().splitlines()[-1]}",
                s.origin,
                "keep the columns it is made from instead",
            ) from None
    by_name = {h.name: h for h in d.histograms}
    variations = shape_keys(d) if result.varied else []
    for fill in d.fills:
        axes = [by_name[name].axes for name in fill.histograms]
        if _is_last_cutflow_row(d, fill, axes):
            result.fills.append(None)
            continue
        selected = builder.node
        for condition in fill.filters:
            selected = builder.apply_on(selected, condition)
        nweights = len(d.weight_entries)
        result.fills.append(builder.book(selected, axes, fill.weights_column, nweights, variations, fill.columns))
    return result
