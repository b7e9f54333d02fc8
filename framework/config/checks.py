"""The meaning of a structurally valid configuration that needs no input file: names that must
be unique, cross-references between blocks, luminosity. One function per topic; `check_meaning`
runs them all (at load, before the extensions expand the configuration).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from framework.config.lumimask import check_lumi_masks
from framework.config.schema.analysis import AnalysisSpec
from framework.config.schema.base import YIELDS
from framework.errors import ConfigError, Location, did_you_mean

if TYPE_CHECKING:
    from framework.config.load import LoadedConfig


def split_names(sample: str, split: dict[str, str] | None) -> list[str]:
    """Output samples of a sample: itself, or its sub-processes and `<sample>_other`."""
    return [*split, f"{sample}_other"] if split else []


def lumi_of(spec: AnalysisSpec, era: str | None) -> float | None:
    if era is not None and era in spec.eras:
        return spec.eras[era].lumi
    return spec.lumi


def check_meaning(config: LoadedConfig) -> None:
    """Cross-references that need no input file."""
    check_column_names(config)
    check_histograms(config)
    check_cut_names(config)
    check_samples(config)
    check_lumi_masks(config)
    check_collections(config)


def check_column_names(config: LoadedConfig) -> None:
    """Collections, defines and categories name columns: each name once."""
    spec = config.spec
    owners: dict[str, Location] = {}
    for block in ("collections", "defines", "categories"):
        for name in getattr(spec, block):
            place = config.locate(block, name)
            if name in owners:
                first = owners[name]
                raise ConfigError(
                    f"name {name!r} is already used at {first.file}:{first.line} ({first.key})",
                    place,
                    "collections, defines and categories share one namespace of column names",
                )
            owners[name] = place


def check_histograms(config: LoadedConfig) -> None:
    """No histogram takes the reserved name; axes are declared categories or mappings, named once."""
    spec = config.spec
    for hname, hist in spec.histograms.items():
        if hname == YIELDS:
            raise ConfigError(
                f"histogram name {YIELDS!r} is reserved",
                config.locate("histograms", hname),
                f"every run writes {YIELDS!r} (events per category); choose another name",
            )
        names: set[str] = set()
        for i, axis in enumerate(hist.axes):
            if isinstance(axis, str):
                if axis not in spec.categories:
                    raise ConfigError(
                        f"histogram axis {axis!r} is not a declared category",
                        config.locate("histograms", hname, "axes", i),
                        did_you_mean(axis, spec.categories)
                        or "declare it under 'categories' or write the axis as a mapping",
                    )
                name = axis
            else:
                name = axis.name or axis.expr
            if name in names or name == "systematic":
                raise ConfigError(
                    f"axis name {name!r} appears twice in histogram {hname!r}"
                    if name != "systematic"
                    else "'systematic' is the name of the axis the framework adds",
                    config.locate("histograms", hname, "axes", i),
                    "give the axis another 'name'",
                )
            names.add(name)


def check_cut_names(config: LoadedConfig) -> None:
    """Cut names are cutflow rows: each once."""
    seen_cuts: dict[str, int] = {}
    for i, cut in enumerate(config.spec.selection):
        if cut.name in seen_cuts:
            raise ConfigError(
                f"cut name {cut.name!r} is used twice (also selection[{seen_cuts[cut.name]}])",
                config.locate("selection", i, "name"),
                "cut names are cutflow rows and must be unique",
            )
        seen_cuts[cut.name] = i


def check_samples(config: LoadedConfig) -> None:
    """Output sample names are distinct, eras are declared, simulation has a luminosity."""
    spec = config.spec
    outputs: dict[str, str] = {}
    for name, sample in spec.samples.items():
        for sub in split_names(name, sample.split):
            if sub in spec.samples and sub != name or sub in outputs:
                raise ConfigError(
                    f"sub-process {sub!r} of sample {name!r} has the name of another sample",
                    config.locate("samples", name, "split"),
                    "output samples need distinct names",
                )
            outputs[sub] = name
        if sample.era is not None and spec.eras and sample.era not in spec.eras:
            raise ConfigError(
                f"era {sample.era!r} of sample {name!r} is not declared under 'eras'",
                config.locate("samples", name, "era"),
                did_you_mean(sample.era, spec.eras) or f"declared eras: {', '.join(spec.eras)}",
            )
        if not sample.is_data and lumi_of(spec, sample.era) is None:
            raise ConfigError(
                f"no luminosity for simulated sample {name!r}",
                config.locate("samples", name),
                "set a top-level 'lumi' (/pb) or give the sample an 'era' declared with a 'lumi'",
            )


def check_collections(config: LoadedConfig) -> None:
    """No collection is made from itself."""
    for name, collection in config.spec.collections.items():
        if collection.from_ == name:
            raise ConfigError(f"collection {name!r} is made from itself", config.locate("collections", name, "from"))
