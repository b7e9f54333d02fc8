"""Plan stage, entry point: config + inputs + selection -> the `Plan` of a run."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from framework.config.load import LoadedConfig, lumi_of, split_names
from framework.config.lumimask import sample_lumi_masks
from framework.errors import ConfigError
from framework.inputs.model import SampleInputs
from framework.plan.dataset import plan_dataset
from framework.plan.model import DatasetPlan, Plan, RunSelection, SamplePlan
from framework.plan.select import reading, select_samples, select_systematics
from framework.plan.skimmed import skim_key
from framework.plan.systematics import CorrectionPlan, Member, declared_systematics

Reading = tuple[tuple[str, ...], tuple[int, ...], tuple[tuple[int, int], ...] | None, int | None]


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
    systematics = select_systematics(config, selection.systematics)
    declared = declared_systematics(config)
    chosen = [declared[n] for n in systematics]
    read = {n: reading(inputs[n], selection.part, selection.max_events) for n in names}
    names = [n for n in names if read[n][0]]
    if not names:
        i, n = selection.part or (1, 1)
        raise ConfigError(f"part {i}/{n} reads no event: the selected samples have fewer than {n} entries")

    # one dataset per tree, format, data/MC status and columns (with their types)
    # (a skim's samples, also by what the skim holds: their datasets read it alike)
    groups: dict[tuple[str, str, bool, frozenset[str], frozenset[tuple[str, str]], str], list[str]] = {}
    for name in names:
        s, found = spec.samples[name], inputs[name]
        key = (s.tree, found.format, s.is_data, found.columns, frozenset(found.column_types.items()), skim_key(s))
        groups.setdefault(key, []).append(name)

    samples: list[SamplePlan] = []
    datasets: list[DatasetPlan] = []
    corrections: list[CorrectionPlan] = []
    masks = sample_lumi_masks(config)
    for index, ((tree, fmt, _, columns, _, _), members) in enumerate(groups.items()):
        plans = [p for name in members for p in _sample_plans(config, name, inputs[name], read[name], tree, index)]
        samples.extend(plans)
        sizes: dict[str, int] = {}
        for name in members:
            for array, size in inputs[name].array_sizes.items():
                sizes[array] = min(size, sizes.get(array, size))
        found = SampleInputs((), (), columns, fmt, inputs[members[0]].column_types, sizes)
        dataset, needed = plan_dataset(config, index, plans, found, chosen, is_cpp_symbol, masks)
        for name in members:
            _check_files_agree(config, name, inputs[name], dataset)
        datasets.append(dataset)
        corrections.extend(c for c in needed if c not in corrections)
    order = [out for n in names for out in (split_names(n, spec.samples[n].split) or [n])]
    samples.sort(key=lambda s: order.index(s.name))
    return assembled_plan(config, selection, cpp_files, samples, datasets, chosen, corrections)


def assembled_plan(
    config: LoadedConfig,
    selection: RunSelection,
    cpp_files: Sequence[Path],
    samples: Sequence[SamplePlan],
    datasets: Sequence[DatasetPlan],
    chosen: Sequence[Member],
    corrections: Sequence[CorrectionPlan],
) -> Plan:
    """The plan of a run (or a skim) of `datasets` with the systematics `chosen`."""
    return Plan(
        analysis=config.spec.analysis,
        config=str(config.path),
        config_hash=config.config_hash(),
        cpp=tuple(str(p) for p in cpp_files),
        samples=tuple(samples),
        datasets=tuple(datasets),
        systematics=[m.name for m in chosen],
        one_sided=tuple(m.name for m in chosen if m.one_sided),
        max_events=selection.max_events,
        corrections=tuple(corrections),
        part=selection.part,
    )


def _sample_plans(
    config: LoadedConfig, name: str, found: SampleInputs, read: Reading, tree: str, dataset: int
) -> list[SamplePlan]:
    """The sample, or the sub-processes of a split sample, as the dataset reads them."""
    s = config.spec.samples[name]
    return [
        sample_plan(config, name, found, read, tree, dataset, output) for output in split_names(name, s.split) or [name]
    ]


def sample_plan(
    config: LoadedConfig, name: str, found: SampleInputs, read: Reading, tree: str, dataset: int, output: str
) -> SamplePlan:
    """Sample `name` as a dataset reads it, as the output sample `output` (itself, or a sub-process)."""
    s = config.spec.samples[name]
    files, entries, ranges, limit = read
    return SamplePlan(
        name=output,
        process=(s.process or name) if output == name else output,
        is_data=s.is_data,
        era=s.era,
        tree=tree,
        files=list(files),
        entries=entries,
        xsec=found.metadata.get(s.xsec, None) if isinstance(s.xsec, str) else s.xsec,
        lumi=None if s.is_data else lumi_of(config.spec, s.era),
        sum_weights=found.metadata.get(s.sum_weights, None) if isinstance(s.sum_weights, str) else s.sum_weights,
        entry_limit=limit,
        dataset=dataset,
        parent=None if output == name else name,
        skipped_files=tuple(found.skipped),
        ranges=ranges,
    )


def _check_files_agree(config: LoadedConfig, name: str, found: SampleInputs, dataset: DatasetPlan) -> None:
    """A sample's files must all have the columns the analysis reads, with the first file's types."""
    for file, differing in found.inconsistent.items():
        used = sorted(set(differing) & set(dataset.input_types))
        if used:
            raise ConfigError(
                f"sample {name!r}: file {file} lacks, or has with another type, column(s) {', '.join(used)} "
                "that the first file has and the analysis reads",
                config.locate("samples", name, "files"),
                "a sample's files must share the columns the analysis reads; remove the file or split the sample",
            )
