"""Plan stage, one dataset: the steps, weights, histograms and fills of one RDataFrame."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping, Sequence

from framework.config.expressions import referenced_names
from framework.config.load import LoadedConfig
from framework.config.lumimask import CUTFLOW_ROW, LUMI_COLUMN, RUN_COLUMN, LumiMaskFile
from framework.config.schema.base import YIELDS
from framework.errors import ConfigError, did_you_mean
from framework.inputs.model import SampleInputs
from framework.plan.axes import category_axis, declared_histograms, value_axis
from framework.plan.columns import ColumnResolver
from framework.plan.model import (
    CUTFLOW_WEIGHTS,
    FILE_SAMPLE_COLUMN,
    SAMPLE_COLUMN,
    WEIGHT_NOMINAL,
    WEIGHTS,
    DatasetPlan,
    FillPlan,
    HistogramPlan,
    SamplePlan,
)
from framework.plan.skimmed import skim_read
from framework.plan.steps import Define, Filter, LumiMask, LumiMaskTable, Mask, Step, Vary
from framework.plan.systematics import (
    CombinedEntry,
    Contribution,
    CorrectionPlan,
    Member,
    check_array_indices,
    contribution,
    varies_columns,
)


def plan_dataset(
    config: LoadedConfig,
    index: int,
    members: list[SamplePlan],
    inputs: SampleInputs,
    chosen_systematics: Sequence[Member],
    is_cpp_symbol: Callable[[str], bool],
    lumi_masks: Mapping[str, LumiMaskFile] | None = None,
) -> tuple[DatasetPlan, list[CorrectionPlan]]:
    """The dataset of `members` (samples sharing tree, format, columns and data/MC status), and
    the corrections its systematics load; `lumi_masks`: the certified luminosity of data samples."""
    spec = config.spec
    is_data = members[0].is_data
    label = f" (sample{'s' if len(members) > 1 else ''} {', '.join(m.name for m in members)})"
    skim = skim_read(config, members, inputs)
    if skim is not None:
        label = label[:-1] + ", read from a skim)"
    r = ColumnResolver(config, inputs.columns, is_cpp_symbol, label)
    systematics = [] if is_data else list(chosen_systematics)
    check_new_names(config, inputs.columns, label, skim.stored() if skim else frozenset())
    sample_column = add_sample_column(r, config, members, systematics)
    declared = list(dict.fromkeys(m.declared for m in systematics))
    check_array_indices(config, declared, inputs.array_sizes, set(inputs.columns), label)
    contributions = [
        (m.name, contribution(config, m, applies(config, m.declared, members, sample_column))) for m in systematics
    ]
    if skim is not None:
        contributions = [(m.name, skim.contribution(m, c)) for m, (_, c) in zip(systematics, contributions)]
    shape_names = add_variations(r, contributions, label)
    skim_mask = skim.mask(r, members[0].tree, shape_names) if skim is not None else None
    for i, cut in enumerate(spec.selection):
        r.require(cut.cut, config.locate("selection", i, "cut"))
    weight_entries, combined, constants = _add_weights(r, config, [c for _, c in contributions], is_data)
    histograms = _histograms(r, config)
    fills = _fills(r, histograms)
    if skim is None:  # (a skim may have dropped what unused definitions read)
        r.check_unused()
    mask = lumi_mask_step(config, members, inputs, lumi_masks or {})
    steps: list[Define | Filter | Mask | Vary | LumiMask] = [
        *r.steps(),
        *((mask,) if mask is not None else ()),
        *((skim_mask,) if skim_mask is not None else ()),
        *(
            Filter(name=cut.name, expression=cut.cut, origin=config.locate("selection", i, "cut"))
            for i, cut in enumerate(spec.selection)
        ),
    ]
    files, file_samples = _files(members)
    dataset = DatasetPlan(
        index=index,
        tree=members[0].tree,
        format=inputs.format,
        is_data=is_data,
        samples=tuple(m.name for m in members),
        files=files,
        file_samples=file_samples,
        steps=tuple(steps),
        cutflow=("all", *((mask.name,) if mask is not None else ()), *(c.name for c in spec.selection)),
        weight_entries=weight_entries,
        combined=combined,
        shape_variations=shape_names,
        one_sided=tuple(m.name for m in systematics if m.one_sided),
        histograms=tuple(histograms),
        fills=tuple(fills),
        input_types=input_types(inputs, steps, fills),
        sample_column=sample_column,
        constants=constants,
    )
    if skim is not None:
        skim.check_definitions(dataset.input_types)
    return dataset, [k for _, c in contributions for k in c.corrections]


def add_sample_column(
    r: ColumnResolver, config: LoadedConfig, members: list[SamplePlan], systematics: list[Member]
) -> str:
    """The column holding each event's sample: the file's sample, unless a split sample divides
    files, or shape variations need a plain Define between the per-file column and the varied
    fills (ROOT 6.40 aborts when a varied action reads a per-sample column)."""
    split = any(m.parent is not None for m in members)
    if not split and not any(varies_columns(config, n) for n in systematics):
        return FILE_SAMPLE_COLUMN
    r.make(SAMPLE_COLUMN, _sample_expression(config, members), config.locate("samples"))
    r.require(SAMPLE_COLUMN, config.locate("samples"))
    return SAMPLE_COLUMN


def lumi_mask_step(
    config: LoadedConfig, members: list[SamplePlan], inputs: SampleInputs, lumi_masks: Mapping[str, LumiMaskFile]
) -> LumiMask | None:
    """The step keeping the certified luminosity sections of the members' masks (None: no member has
    one). The input must have the run and luminosity-section columns, as integers."""
    files = [lumi_masks.get(m.parent or m.name) if m.is_data else None for m in members]
    used = list({f.path: f for f in files if f is not None}.values())
    if not used:
        return None
    masked = [m.name for m, f in zip(members, files) if f is not None]
    who = f"data sample{'s' if len(masked) > 1 else ''} {', '.join(map(repr, masked))}"
    for column in (RUN_COLUMN, LUMI_COLUMN):
        ctype = inputs.column_types.get(column, "")
        if column not in inputs.columns:
            problem = f"{who} has no column {column!r}"
        elif not _is_integer_type(ctype):
            problem = f"{who} has column {column!r} of type {ctype}, not an integer"
        else:
            continue
        raise ConfigError(
            f"{problem}: the lumi mask {used[0].path.name} looks events up by it",
            next(f for f in files if f is not None).origin,
            f"a lumi mask reads NanoAOD's {RUN_COLUMN!r} and {LUMI_COLUMN!r}; "
            "remove 'lumi_mask' from samples without them",
        )
    paths = [f.path for f in used]
    return LumiMask(
        name=CUTFLOW_ROW,
        origin=used[0].origin,
        run_column=RUN_COLUMN,
        lumi_column=LUMI_COLUMN,
        sample_column=FILE_SAMPLE_COLUMN,
        masks=tuple(LumiMaskTable(file=str(f.path), sha256=f.sha256, ranges=f.ranges) for f in used),
        by_sample=tuple(paths.index(f.path) if f is not None else -1 for f in files),
        sample_names=tuple(m.name for m in members),
    )


INTEGER_TYPES = re.compile(
    r"^(const )?((std::)?u?int(8|16|32|64)_t|U?(Char|Short|Int|Long64)_t|(unsigned |signed )?(char|short|int|long|"
    r"long long)|unsigned|ULong_t|Long_t)$"
)


def _is_integer_type(ctype: str) -> bool:
    return bool(INTEGER_TYPES.match(ctype.strip()))


def input_types(inputs: SampleInputs, steps: Sequence[Step], fills: list[FillPlan]) -> dict[str, str]:
    """The C++ types of the input columns the steps and fills read, by name."""
    expressions = [e for st in steps for e in st.expressions()]
    expressions += [e for f in fills for e in (*f.columns, f.weights_column, *(w.expression for w in f.filters))]
    read = {n for e in expressions for n in referenced_names(e) if n in inputs.columns}
    return {n: inputs.column_types[n] for n in sorted(read) if n in inputs.column_types}


def check_new_names(
    config: LoadedConfig, columns: frozenset[str], label: str, stored: frozenset[str] = frozenset()
) -> None:
    """Defines, categories and collections make new columns, from collections that exist; a skim's
    `stored` columns are what they made when it was written (read, not made again)."""
    spec = config.spec
    for block in ("defines", "categories", "collections"):
        for name in getattr(spec, block):
            column = name if block != "collections" else "n" + name
            if column in columns and column not in stored:
                raise ConfigError(
                    f"{column!r} already exists in the input{label}; a {block[:-1]} cannot replace it",
                    config.locate(block, name),
                    "choose another name; to vary an input column use a 'kind: shape' systematic",
                )
    for name, c in spec.collections.items():
        if f"n{name}" in stored:
            continue
        if c.from_ not in spec.collections and not any(col.startswith(c.from_ + "_") for col in columns):
            sources = set(spec.collections) | {col.split("_", 1)[0] for col in columns if "_" in col}
            raise ConfigError(
                f"collection {name!r} is made from {c.from_!r}: "
                f"no collection and no input column {c.from_ + '_*'}{label}",
                config.locate("collections", name, "from"),
                did_you_mean(c.from_, sources)
                or "'from' names a collection or the prefix of input columns (Jet for Jet_pt)",
            )


def add_variations(r: ColumnResolver, contributions: list[tuple[str, Contribution]], label: str) -> tuple[str, ...]:
    """The systematics' helper columns and Vary steps; the names of the shape variations."""
    shape_names: list[str] = []
    for name, contrib in contributions:
        r.declare_symbols(c.symbol for c in contrib.corrections)
        for column, expr, origin in contrib.columns:
            r.make(column, expr, origin)
        for vary in contrib.varies:
            for column in vary.columns:
                if not r.exists(column) or column.startswith("__"):
                    raise ConfigError(
                        f"systematic {name!r} varies column {column!r}, which does not exist{label}",
                        vary.origin,
                        did_you_mean(column, r.known_names()) or "vary an input column or a name under 'defines'",
                    )
                r.require(column, vary.origin)
            for (up_place, _), up in zip(vary.places, vary.ups):
                r.require(up, up_place)
            for (_, down_place), down in zip(vary.places, vary.downs):  # none when one-sided
                r.require(down, down_place)
            r.vary(
                Vary(
                    name=name,
                    origin=vary.origin,
                    columns=vary.columns,
                    ups=vary.ups,
                    downs=vary.downs,
                    condition=vary.condition,
                )
            )
            if name not in shape_names:  # a skim's stored columns of one systematic: a Vary per type
                shape_names.append(name)
    return tuple(shape_names)


def _add_weights(
    r: ColumnResolver, config: LoadedConfig, contributions: list[Contribution], is_data: bool
) -> tuple[tuple[str, ...], tuple[CombinedEntry, ...], dict[str, tuple[float, ...]]]:
    """The weight vector (nominal, then each weight variation) and the cutflow's weights:
    constants for collision data, columns for simulation. Returns the vector's entry names,
    the entries combined from them after the loop, and the constants."""
    spec = config.spec
    if is_data:
        constants = {WEIGHTS: (1.0,), CUTFLOW_WEIGHTS: (1.0, 1.0, 1.0)}
        r.provide(constants)
        r.require(CUTFLOW_WEIGHTS, config.locate("weight"))
        return ("nominal",), (), constants
    nominal = f"double({spec.weight})" + "".join(f" * double({f})" for c in contributions for f, _ in c.nominal_factors)
    r.require(nominal, config.locate("weight"))
    r.require(spec.generator_weight, config.locate("generator_weight"))
    entries = [e for c in contributions for e in c.entries]
    for entry in entries:
        r.require(entry.factor, entry.origin)
    factors = "".join(f", {WEIGHT_NOMINAL} * double({e.factor})" for e in entries)
    r.make(WEIGHT_NOMINAL, nominal, config.locate("weight"))
    r.make(WEIGHTS, f"ROOT::RVecD{{{WEIGHT_NOMINAL}{factors}}}", config.locate("weight"))
    r.make(
        CUTFLOW_WEIGHTS,
        f"ROOT::RVecD{{1.0, double({spec.generator_weight}), {WEIGHT_NOMINAL}}}",
        config.locate("generator_weight"),
    )
    r.require(CUTFLOW_WEIGHTS, config.locate("weight"))
    combined = tuple(k for c in contributions for k in c.combined)
    return ("nominal", *(e.name for e in entries)), combined, {}


def _histograms(r: ColumnResolver, config: LoadedConfig) -> list[HistogramPlan]:
    """Every histogram with its axes, their columns and `where` filters resolved."""
    histograms = []
    for hname, hspec in declared_histograms(config.spec).items():
        axes = []
        for i, axis in enumerate(hspec.axes):
            origin = config.locate("histograms", hname, "axes", i) if hname != YIELDS else config.locate("categories")
            if isinstance(axis, str):
                plan = category_axis(axis, config.spec.categories[axis])
            else:
                plan, expr = value_axis(hname, axis)
                if expr is not None:
                    r.make(plan.column, expr, origin)
            r.require(plan.column, origin)
            axes.append(plan)
        weights_column = WEIGHTS
        if hspec.weight is not None:
            weights_column = f"__weights_{hname}"
            r.make(weights_column, f"{WEIGHTS} * double({hspec.weight})", config.locate("histograms", hname, "weight"))
        where = []
        conditions = [hspec.where] if isinstance(hspec.where, str) else list(hspec.where or [])
        for i, condition in enumerate(conditions):
            place = config.locate(*("histograms", hname, "where") + ((i,) if isinstance(hspec.where, list) else ()))
            r.require(condition, place)
            where.append(Filter(name=f"where {condition}", expression=condition, origin=place))
        origin = config.locate("histograms", hname) if hname != YIELDS else config.locate("categories")
        histograms.append(
            HistogramPlan(
                name=hname, axes=tuple(axes), weights_column=weights_column, origin=origin, where=tuple(where)
            )
        )
    return histograms


def _fills(r: ColumnResolver, histograms: list[HistogramPlan]) -> list[FillPlan]:
    """One fill per weight vector and `where` chain: a fill's axis values are computed only for
    the events that pass its filters."""

    def key(h: HistogramPlan) -> tuple[str, tuple[str, ...]]:
        return h.weights_column, tuple(w.expression for w in h.where)

    fills = []
    for weights_column, conditions in dict.fromkeys(key(h) for h in histograms):
        group = [h for h in histograms if key(h) == (weights_column, conditions)]
        r.require(weights_column, group[0].origin)
        columns = tuple(dict.fromkeys(a.column for h in group for a in h.axes))
        fills.append(
            FillPlan(
                columns=columns,
                weights_column=weights_column,
                histograms=tuple(h.name for h in group),
                filters=group[0].where,
            )
        )
    return fills


def _files(members: list[SamplePlan]) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """The dataset's files, and the position in `members` of each file's sample."""
    files: list[str] = []
    file_samples: list[int] = []
    for pos, member in enumerate(members):
        if member.parent is not None and pos > 0 and members[pos - 1].parent == member.parent:
            continue  # the sub-processes of a split sample read its files once
        files.extend(member.files)
        file_samples.extend([pos] * len(member.files))
    return tuple(files), tuple(file_samples)


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


def applies(config: LoadedConfig, name: str, members: list[SamplePlan], sample_column: str) -> str | None:
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
