"""Build stage: turn a frozen `Plan` into RDataFrame graphs with every result booked.

One RDataFrame per dataset of the plan; all are run together by `framework.run`.
Nothing is decided here that the plan did not say: this module only translates
steps into Define / Vary / Filter calls and histograms into fill actions, and turns
compiler errors into messages that point at the YAML.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .exceptions import ConfigError, Location
from .expressions import referenced_names
from .plan import CUTFLOW_WEIGHTS, FILE_SAMPLE_COLUMN, NO_AXES, SAMPLE_COLUMN, AxisPlan, DatasetPlan, Plan, Step
from .rootenv import CORRECTIONS_HEADER, FRAMEWORK_HEADER, captured_stderr, compiler_messages, declare_file, root

_builds = itertools.count()
_checks = itertools.count()
_declared_corrections: set[str] = set()
AXIS_KINDS = {"regular": 0, "variable": 1, "integer": 2, "int_category": 3, "str_category": 3, "boolean": 4}


@dataclass
class BookedDataset:
    """The booked results of one dataset: histograms (nominal and varied) and cutflow rows."""

    plan: DatasetPlan
    fills: list[Any] = field(default_factory=list)  # per FillPlan: RResultMap or RResultPtr
    cutflow: list[Any] = field(default_factory=list)  # one RResultPtr per cutflow row
    varied: bool = False


@dataclass
class BookedGraph:
    datasets: list[BookedDataset]
    extras: list[Any] = field(default_factory=list)  # results that only report progress

    def handles(self) -> list[Any]:
        """One result per dataset graph, for RunGraphs."""
        return [d.cutflow[0] for d in self.datasets]


def _compiled(action: str, origin: Location, call: Any) -> Any:
    """Run an RDataFrame call that JIT-compiles user C++; map failures to the YAML place."""
    with captured_stderr() as lines:
        try:
            return call()
        except Exception as err:  # cppyy raises C++ exceptions as their own Python types
            failure = err
    detail = compiler_messages(lines) if lines else str(failure).splitlines()[-1]
    raise ConfigError(f"{action} does not compile: {detail}", origin, "fix the C++ expression in the YAML") from None


def _sample_lookup_code(d: DatasetPlan, tag: str) -> str:
    entries = ", ".join(f'{{"{f}/{d.tree}", {s}}}' for f, s in zip(d.files, d.file_samples))
    return (
        f"int fw_sample_of_dataset_{tag}(const ROOT::RDF::RSampleInfo &info) {{\n"
        f"  static const std::unordered_map<std::string, int> table{{{entries}}};\n"
        f"  const auto it = table.find(std::string(info.AsString()));\n"
        f'  if (it == table.end()) throw std::runtime_error("file not in the plan: " + std::string(info.AsString()));\n'
        f"  return it->second;\n}}\n"
    )


def _entries_to_read_code(plan: Plan, d: DatasetPlan, tag: str, nslots: int) -> str | None:
    """C++ giving, per file, how many of its first entries to read (--max-events), or None."""
    limits = [plan.sample(name).entry_limit for name in d.samples]
    if all(limit is None for limit in limits):
        return None
    takes, read_in_sample = [], dict.fromkeys(range(len(d.samples)), 0)
    for f, s in zip(d.files, d.file_samples):
        sample = plan.sample(d.samples[s])
        n = sample.entries[sample.files.index(f)]
        take = n if limits[s] is None else max(0, min(n, limits[s] - read_in_sample[s]))
        read_in_sample[s] += n
        takes.append(f'{{"{f}/{d.tree}", {take}LL}}')
    return (
        f"fw::FilePosition fw_position_{tag}({nslots});\n"
        f"long long fw_entries_to_read_{tag}(unsigned slot, const ROOT::RDF::RSampleInfo &info) {{\n"
        f"  static const std::unordered_map<std::string, long long> table{{{', '.join(takes)}}};\n"
        f"  fw_position_{tag}.StartTask(slot, info.EntryRange().first);\n"
        f"  return table.at(std::string(info.AsString()));\n}}\n"
    )


def _axis(a: AxisPlan) -> Any:
    r = root()
    ax = r.fw.Axis()
    ax.kind = AXIS_KINDS[a.kind]
    ax.nbins = a.bins
    ax.lo, ax.hi = a.low, a.high
    for e in a.edges:
        ax.edges.push_back(e)
    values = a.values if a.kind == "int_category" else range(len(a.labels))
    for v in values:
        ax.values.push_back(v)
    ax.underflow = a.kind in ("regular", "variable", "integer")
    ax.overflow = a.kind != "boolean"
    return ax


def axis_extent(a: AxisPlan) -> int:
    flow = {"regular": 2, "variable": 2, "integer": 2, "int_category": 1, "str_category": 1, "boolean": 0}
    return a.bins + flow[a.kind]


def _layout(nsamples: int, nweights: int, axes: list[AxisPlan], variations: list[str]) -> Any:
    layout = root().fw.Layout()
    layout.nsamples = nsamples
    layout.nweights = nweights
    for v in variations:
        layout.variations.push_back(v)
    for a in axes:
        layout.axes.push_back(_axis(a))
    return layout


def shape_keys(d: DatasetPlan) -> list[str]:
    """RDataFrame's names of the shape variations, in systematic-axis order."""
    return [f"{name}:{direction}" for name in d.shape_variations for direction in ("up", "down")]


def _book(
    node: Any, d: DatasetPlan, axes: list[list[AxisPlan]], values: str, weights: str, nweights: int, varied: bool
) -> Any:
    """One fill action for several histograms (one list of axes each); `varied`: room for shape variations."""
    r = root()
    variations = shape_keys(d) if varied else []
    layouts = r.std.vector["fw::Layout"]()
    for h_axes in axes:
        layouts.push_back(_layout(len(d.samples), nweights, h_axes, variations))
    return r.fw.book_fill(r.RDF.AsRNode(node), layouts, [SAMPLE_COLUMN, weights, values])


def _check_compiles(node: Any, expression: str, what: str, origin: Location) -> None:
    """Compile `expression` alone first: in ROOT 6.40 a Vary whose expression fails to compile
    crashes the process (invalid free) instead of raising."""
    names = [n for n in referenced_names(expression) if node.HasColumn(n)]
    params = ", ".join(f"const {node.GetColumnType(n)} &{n}" for n in names)
    code = f"namespace fw_checks {{ auto check_{next(_checks)}({params}) {{ return {expression}; }} }}"
    with captured_stderr() as lines:
        ok = root().gInterpreter.Declare(code)
    if not ok:
        raise ConfigError(f"{what} does not compile: {compiler_messages(lines)}", origin, "fix the C++ expression in the YAML")


def _vary(node: Any, step: Step) -> Any:
    """Vary one or several columns together, each expression cast to its column's exact type."""
    types = {c: str(node.GetColumnType(c)) for c in step.columns}
    if len(set(types.values())) > 1:
        listing = ", ".join(f"{c} is {t}" for c, t in types.items())
        raise ConfigError(
            f"systematic {step.name!r} varies columns of different types ({listing})",
            step.origin,
            "RDataFrame varies several columns together only when they share a type: split the systematic",
        )
    kind = types[step.columns[0]]

    def value(column: str, expr: str) -> str:
        cast = f"fw::cast<{kind}>({expr})"
        return f"(({step.condition}) ? {cast} : {column})" if step.condition else cast

    per_column = [
        f"ROOT::RVec<{kind}>{{{value(c, up)}, {value(c, down)}}}" for c, up, down in zip(step.columns, step.ups, step.downs)
    ]
    for expr in per_column:
        _check_compiles(node, expr, f"variation {step.name!r}", step.origin)
    if len(step.columns) == 1:
        return _compiled(
            f"variation {step.name!r}", step.origin, lambda: node.Vary(step.columns[0], per_column[0], ["up", "down"], step.name)
        )
    expr = f"ROOT::RVec<ROOT::RVec<{kind}>>{{{', '.join(per_column)}}}"
    return _compiled(
        f"variation {step.name!r}", step.origin, lambda: node.Vary(step.columns, expr, ["up", "down"], step.name)
    )


def _declare_corrections(plan: Plan) -> None:
    """Load each correctionlib correction once per process, as a C++ global."""
    if not plan.corrections:
        return
    import correctionlib  # noqa: PLC0415

    r = root()
    correctionlib.register_pyroot_binding()
    declare_file(CORRECTIONS_HEADER)
    for c in plan.corrections:
        if c.symbol in _declared_corrections:
            continue
        code = f'const auto {c.symbol} = correction::CorrectionSet::from_file("{c.file}")->at("{c.name}");'
        with captured_stderr() as lines:
            ok = r.gInterpreter.Declare(code)
        if not ok:
            raise ConfigError(f"cannot load correction {c.name!r} from {c.file}: {compiler_messages(lines)}")
        _declared_corrections.add(c.symbol)


def _apply(node: Any, step: Step) -> Any:
    if step.kind == "define":
        return _compiled(f"column {step.name!r}", step.origin, lambda: node.Define(step.name, step.expression))
    if step.kind == "vary":
        return _vary(node, step)
    return _compiled(f"cut {step.name!r}", step.origin, lambda: node.Filter(step.expression, step.name))


PROGRESS_EVERY = 10000  # events between two updates of a progress file


def events_to_read(plan: Plan) -> int:
    """Entries the loop will read (a split sample's files once)."""
    total, seen = 0, set()
    for s in plan.samples:
        if tuple(s.files) in seen:
            continue
        seen.add(tuple(s.files))
        total += min(sum(s.entries), s.entry_limit) if s.entry_limit is not None else sum(s.entries)
    return total


def build_graph(plan: Plan, threads: int, progress: bool = False, progress_file: Path | None = None) -> BookedGraph:
    """Book every result of the plan; nothing runs yet."""
    r = root()
    if threads > 1:
        r.EnableImplicitMT(threads)
    elif r.IsImplicitMTEnabled():
        r.DisableImplicitMT()
    declare_file(FRAMEWORK_HEADER)
    for path in plan.cpp:
        declare_file(Path(path))
    _declare_corrections(plan)
    # Every build declares its own lookup functions: a process may build several graphs.
    tags = {d.index: f"{d.index}_{next(_builds)}" for d in plan.datasets}
    nslots = max(1, r.GetThreadPoolSize()) if threads > 1 else 1
    limited = {d.index: _entries_to_read_code(plan, d, tags[d.index], nslots) for d in plan.datasets}
    code = "".join(_sample_lookup_code(d, tags[d.index]) + (limited[d.index] or "") for d in plan.datasets)
    if not r.gInterpreter.Declare(code):
        raise ConfigError("internal error: the sample lookup tables did not compile")

    booked = []
    watcher = None
    keep_alive: list[Any] = []
    if progress_file is not None:
        watcher = r.fw.make_progress(str(progress_file), events_to_read(plan))
    for d in plan.datasets:
        node = r.RDataFrame(d.tree, d.files)
        if progress:
            r.RDF.Experimental.AddProgressBar(node)
        if watcher is not None:
            count = node.Count()
            r.fw.watch_progress(count, watcher, PROGRESS_EVERY)
            keep_alive.append(count)
        # The file's sample; the plan derives __sample from it with a plain Define, since a
        # varied action must not read a DefinePerSample column directly (aborts in ROOT 6.40).
        node = node.DefinePerSample(FILE_SAMPLE_COLUMN, f"return fw_sample_of_dataset_{tags[d.index]}(rdfsampleinfo_);")
        if limited[d.index] is not None:
            tag = tags[d.index]
            node = node.DefinePerSample("__to_read_of_file", f"return fw_entries_to_read_{tag}(rdfslot_, rdfsampleinfo_);")
            node = node.Define("__to_read", "__to_read_of_file")
            node = node.Filter(f"fw_position_{tag}.Next(rdfslot_) < __to_read")
        result = BookedDataset(d, varied=bool(d.shape_variations))
        # Defines come first in the plan, filters last: "all" is booked before the first filter.
        for step in d.steps:
            if step.kind == "filter" and not result.cutflow:
                result.cutflow.append(_book(node, d, [[]], NO_AXES, CUTFLOW_WEIGHTS, 3, False))
            node = _apply(node, step)
            if step.kind == "filter":
                result.cutflow.append(_book(node, d, [[]], NO_AXES, CUTFLOW_WEIGHTS, 3, False))
        if not result.cutflow:
            result.cutflow.append(_book(node, d, [[]], NO_AXES, CUTFLOW_WEIGHTS, 3, False))
        by_name = {h.name: h for h in d.histograms}
        for fill in d.fills:
            axes = [by_name[name].axes for name in fill.histograms]
            nweights = len(d.weight_entries)
            selected = node
            for column in fill.filters:
                selected = selected.Filter(column)
            result.fills.append(_book(selected, d, axes, fill.column, fill.weights_column, nweights, result.varied))
        booked.append(result)
    # VariationsFor compiles all pending JIT code: call it once everything is booked, so
    # that is one compilation rather than one per histogram.
    for result in booked:
        if result.varied:
            result.fills = [r.fw.variations_for(res) for res in result.fills]
    return BookedGraph(booked, keep_alive)
