"""Plan stage, skims: what `run-analysis skim` writes, as a `Plan` of one dataset per sample.

Each dataset's graph is the analysis's own: the columns it defines and the shape variations
(`Vary`) resolved as for a run, then the cuts of `skim.selection`; its `SnapshotPlan` names the
columns written (`skim.keep`, expanded) and the shape systematics held with them. A shape
systematic is held when a kept column depends on it: Snapshot then writes that column's
variations and keeps every event that passes the cuts in the nominal or in any variation.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from framework.config.expressions import referenced_names
from framework.config.load import LoadedConfig
from framework.config.lumimask import sample_lumi_masks
from framework.config.schema.skim import SkimSpec
from framework.errors import ConfigError, did_you_mean
from framework.inputs.model import SampleInputs
from framework.plan.columns import ColumnResolver
from framework.plan.dataset import (
    add_sample_column,
    add_variations,
    applies,
    check_new_names,
    input_types,
    lumi_mask_step,
)
from framework.plan.make import assembled_plan, sample_plan
from framework.plan.model import CUTFLOW_WEIGHTS, DatasetPlan, Plan, RunSelection, SamplePlan, SnapshotPlan
from framework.plan.select import reading, select_samples, select_systematics
from framework.plan.skimmed import definition_digest, systematic_digest
from framework.plan.steps import Define, Filter, LumiMask, Step, Vary
from framework.plan.systematics import CorrectionPlan, Member, contribution, declared_systematics, varies_columns

log = logging.getLogger(__name__)


def skim_file(sample: str, part: tuple[int, int] | None) -> str:
    """`ttbar.root`, or `ttbar.part-2-of-8.root` for a batch part."""
    return f"{sample}.part-{part[0]}-of-{part[1]}.root" if part else f"{sample}.root"


def skim_spec(config: LoadedConfig) -> SkimSpec:
    if config.spec.skim is None:
        raise ConfigError(
            "the configuration has no 'skim:' block",
            config.locate(),
            "add one: skim: {selection: [a cut or the name of a selection step, ...], keep: [columns or "
            "patterns, ...]}",
        )
    return config.spec.skim


def make_skim_plan(
    config: LoadedConfig,
    inputs: dict[str, SampleInputs],
    selection: RunSelection,
    is_cpp_symbol: Callable[[str], bool] = lambda name: False,
    cpp_files: Sequence[Path] = (),
    check_keep: bool = True,
) -> Plan:
    """The skim of every selected sample (of its part `selection.part`): one dataset each.
    `check_keep` False: the caller checked `skim.keep` already (on a plan of all its samples)."""
    skim_spec(config)
    spec = config.spec
    declared = declared_systematics(config)
    chosen = [declared[n] for n in select_systematics(config, selection.systematics)]
    samples: list[SamplePlan] = []
    datasets: list[DatasetPlan] = []
    corrections: list[CorrectionPlan] = []
    unmatched: list[dict[int, str]] = []
    selected = select_samples(config, selection)
    for name in selected:
        if spec.samples[name].skim is not None:
            raise ConfigError(
                f"sample {name!r} is a skim already",
                config.locate("samples", name, "skim"),
                "skim the original samples: include their YAML instead of the skim's",
            )
        read = reading(inputs[name], selection.part, selection.max_events)
        if not read[0]:
            continue
        sample = sample_plan(config, name, inputs[name], read, spec.samples[name].tree, len(datasets), name)
        dataset, needed, missing = _skim_dataset(config, sample, inputs[name], chosen, is_cpp_symbol, selection.part)
        unmatched.append(missing)
        samples.append(sample)
        datasets.append(dataset)
        corrections.extend(c for c in needed if c not in corrections)
    if not datasets:
        i, n = selection.part or (1, 1)
        raise ConfigError(f"part {i}/{n} reads no event: the selected samples have fewer than {n} entries")
    if check_keep:
        _check_matched(config, unmatched, every_sample=set(selected) == set(spec.samples))
    return assembled_plan(config, selection, cpp_files, samples, datasets, chosen, corrections)


def _skim_dataset(
    config: LoadedConfig,
    sample: SamplePlan,
    inputs: SampleInputs,
    chosen: Sequence[Member],
    is_cpp_symbol: Callable[[str], bool],
    part: tuple[int, int] | None,
) -> tuple[DatasetPlan, list[CorrectionPlan], dict[int, str]]:
    """One sample's skim: its graph up to the skim's cuts, the columns kept and the variations held;
    the corrections it loads and the entries of `skim.keep` it has no column for."""
    skim = skim_spec(config)
    label = f" (sample {sample.name})"
    r = ColumnResolver(config, inputs.columns, is_cpp_symbol, label)
    check_new_names(config, inputs.columns, label)
    shapes = [] if sample.is_data else [m for m in chosen if varies_columns(config, m)]
    sample_column = add_sample_column(r, config, [sample], shapes)
    contributions = [
        (m.name, contribution(config, m, applies(config, m.declared, [sample], sample_column))) for m in shapes
    ]
    add_variations(r, contributions, label)
    cuts = _cuts(config, r)
    kept, unmatched = _kept(config, r, inputs)
    # data skimmed through their lumi mask keep what it reads: a run on the skim applies it again
    mask = lumi_mask_step(config, [sample], inputs, sample_lumi_masks(config))
    if mask is not None:
        kept += [c for c in (mask.run_column, mask.lumi_column) if c not in kept]
    derived = [c for c in kept if c not in inputs.columns]
    for column in derived:
        r.require(column, config.locate("skim", "keep"))
    constants = _cutflow_weights(r, config, sample.is_data)
    steps: list[Define | Filter | Vary | LumiMask] = [*r.steps(), *((mask,) if mask is not None else ()), *cuts]
    held = _held(steps, kept, [m.name for m in shapes])
    member = {m.name: m for m in shapes}
    snapshot = SnapshotPlan(
        file=skim_file(sample.name, part),
        tree=sample.tree,
        origin=config.locate("skim", "keep"),
        columns=tuple(kept),
        format=_format(config, skim, held),
        variations=held,
        derived={c: digest for c in derived if (digest := definition_digest(config, c)) is not None},
        definitions={n: systematic_digest(config, member[n]) for n in held},
    )
    dataset = DatasetPlan(
        index=sample.dataset,
        tree=sample.tree,
        format=inputs.format,
        is_data=sample.is_data,
        samples=(sample.name,),
        files=tuple(sample.files),
        file_samples=(0,) * len(sample.files),
        steps=tuple(steps),
        cutflow=("all", *((mask.name,) if mask is not None else ()), *(c.name for c in cuts)),
        weight_entries=("nominal",),
        combined=(),
        shape_variations=held,
        one_sided=tuple(n for n in held if member[n].one_sided),
        histograms=(),
        fills=(),
        input_types={**input_types(inputs, steps, []), **{c: inputs.column_types[c] for c in kept if c not in derived}},
        sample_column=sample_column,
        constants=constants,
        snapshot=snapshot,
    )
    return dataset, [k for _, c in contributions for k in c.corrections], unmatched


def _cuts(config: LoadedConfig, r: ColumnResolver) -> list[Filter]:
    """The skim's cuts: steps of `selection` named, or expressions of their own."""
    steps = {cut.name: i for i, cut in enumerate(config.spec.selection)}
    cuts = []
    for k, entry in enumerate(skim_spec(config).selection):
        place = config.locate("skim", "selection", k)
        if entry in steps:
            i = steps[entry]
            origin = config.locate("selection", i, "cut")
            cut = Filter(name=entry, expression=config.spec.selection[i].cut, origin=origin)
        else:
            names = referenced_names(entry)
            if names == [entry] and not r.exists(entry) and did_you_mean(entry, steps):
                raise ConfigError(
                    f"{entry!r} is no step of 'selection' and no column",
                    place,
                    did_you_mean(entry, steps),
                )
            cut = Filter(name=f"skim_{k}", expression=entry, origin=place)
        r.require(cut.expression, cut.origin)
        cuts.append(cut)
    return cuts


def _kept(config: LoadedConfig, r: ColumnResolver, inputs: SampleInputs) -> tuple[list[str], dict[int, str]]:
    """The columns `skim.keep` names, sorted: input branches, defines, collections (each of their
    columns), and glob patterns over those; and the entries that match nothing here, with their
    did-you-mean."""
    spec = config.spec
    collections = {name: _collection_columns(config, name, inputs.columns) for name in spec.collections}
    candidates = {c for c in inputs.columns if not c.startswith("__")} | set(spec.defines)
    candidates |= {c for columns in collections.values() for c in columns}
    kept: set[str] = set()
    unmatched: dict[int, str] = {}
    for i, entry in enumerate(skim_spec(config).keep):
        matched = set(collections[entry]) if entry in collections else set(fnmatch.filter(candidates, entry))
        if not matched:
            unmatched[i] = did_you_mean(entry, candidates | set(collections))
        kept |= matched
    return sorted(c for c in kept if r.exists(c)), unmatched


def _check_matched(config: LoadedConfig, unmatched: list[dict[int, str]], every_sample: bool) -> None:
    """An entry of `skim.keep` must match a column of some sample (collision data has no generator
    weights, simulation no trigger of its own ...); a skim of some samples only (a batch job's) cannot
    tell, so it warns."""
    for i in sorted(set.intersection(*(set(u) for u in unmatched))):
        entry = skim_spec(config).keep[i]
        if not every_sample:
            log.warning("skim.keep entry %r matches no column of the samples skimmed here", entry)
            continue
        raise ConfigError(
            f"skim.keep entry {entry!r} matches no input column, define or collection of any sample",
            config.locate("skim", "keep", i),
            next((u[i] for u in unmatched if u[i]), "")
            or "name input columns, defines or collections, or glob patterns such as Jet_*",
        )


def _collection_columns(config: LoadedConfig, name: str, inputs: frozenset[str]) -> list[str]:
    """Every column of a collection: `nName` and `Name_<field>` for each field of its source."""
    sources = config.spec.collections
    source = name
    while source in sources:  # a view of a view has its source's fields
        source = sources[source].from_
    prefix = source + "_"
    return [f"n{name}", *(f"{name}_{c[len(prefix) :]}" for c in sorted(inputs) if c.startswith(prefix))]


def _cutflow_weights(r: ColumnResolver, config: LoadedConfig, is_data: bool) -> dict[str, tuple[float, ...]]:
    """The cutflow's weights (events, generator weight): the sum of generator weights of the events
    read, for the skim's samples YAML when the original sample declares none."""
    if is_data:
        constants: dict[str, tuple[float, ...]] = {CUTFLOW_WEIGHTS: (1.0, 1.0, 1.0)}
        r.provide(constants)
        return constants
    generator = f"double({config.spec.generator_weight})"
    r.make(CUTFLOW_WEIGHTS, f"ROOT::RVecD{{1.0, {generator}, {generator}}}", config.locate("generator_weight"))
    r.require(CUTFLOW_WEIGHTS, config.locate("generator_weight"))
    return {}


def _held(steps: Sequence[Step], kept: Sequence[str], shapes: Sequence[str]) -> tuple[str, ...]:
    """The shape systematics some kept column depends on, in the order of `shapes`."""
    varied: dict[str, set[str]] = {}  # column -> systematics it depends on
    for step in steps:
        if isinstance(step, Vary):
            for column in step.columns:
                varied.setdefault(column, set()).add(step.name)
        elif isinstance(step, Define):
            found = set().union(*(varied.get(n, set()) for n in referenced_names(step.expression)))
            if found:
                varied.setdefault(step.name, set()).update(found)
    depends = set().union(*(varied.get(c, set()) for c in kept))
    return tuple(n for n in shapes if n in depends)


def _format(config: LoadedConfig, skim: SkimSpec, held: tuple[str, ...]) -> str:
    """RNTuple unless the skim holds shape variations: ROOT 6.40's Snapshot writes them only into a
    TTree (into an RNTuple it ignores fIncludeVariations and writes the nominal alone)."""
    if skim.format == "rntuple" and held:
        raise ConfigError(
            f"an RNTuple skim cannot hold the shape variations of {', '.join(map(repr, held))}: ROOT 6.40 writes "
            "variations with the events only into a TTree",
            config.locate("skim", "format"),
            "use format: ttree, or leave the shape systematics out (--systematics)",
        )
    return skim.format or ("ttree" if held else "rntuple")
