"""Plan stage, skimmed samples: how a dataset reads a skim made by `run-analysis skim`.

A skim holds the events of a sample that passed its cuts, the columns it kept and, in a TTree,
the shape variations of those columns: `Jet_pt__jes_up`, `Jet_pt__jes_down` beside `Jet_pt`, and
a mask column, `R_rdf_mask_<tree>_0`, with one bit per variation telling which of them kept the
event (RDataFrame's Snapshot with `fIncludeVariations`, ROOT 6.40). So a dataset of skimmed
samples varies the stored columns (a `Vary` reading `Jet_pt__jes_up`, not the YAML's expression
again), keeps in each variation the events whose bit is set (`Mask`), reads the derived columns
the skim stored instead of computing them, and refuses a shape systematic the skim does not
hold, or whose definition, or whose stored columns' definitions, changed since.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace

from framework.config.expressions import referenced_names
from framework.config.load import LoadedConfig
from framework.config.schema.samples import SampleSpec
from framework.config.schema.skim import SkimOrigin
from framework.errors import ConfigError, Location
from framework.inputs.model import SampleInputs
from framework.plan.columns import ColumnResolver, category_expression
from framework.plan.model import SamplePlan
from framework.plan.steps import Mask, Vary
from framework.plan.systematics import Contribution, Member, VaryPlan

SKIM_MASK = "__in_skim"  # true for the events the skim stored for the nominal, or for the variation
VARIED = "{column}__{systematic}_{direction}"  # Snapshot's name of a varied column ("jes:up" -> "jes_up")


def mask_branch(tree: str, bit: int) -> str:
    """The mask column holding `bit`: Snapshot writes one per 64 variations, named after the tree."""
    return f"R_rdf_mask_{tree.rsplit('/', 1)[-1]}_{bit // 64}"


def mask_bit(tree: str, bit: int) -> str:
    """C++ test of one bit of the skim's mask (bit 0: the nominal)."""
    return f"(({mask_branch(tree, bit)} >> {bit % 64}) & 1) != 0"


# ---------------------------------------------------------------- definitions, as a skim records them


def definition_entries(config: LoadedConfig, column: str) -> list[tuple[str, str, str]]:
    """The YAML entries a derived column is computed from, transitively, as (block, name, value):
    the defines, categories and collections it reads. Empty for an input column."""
    spec = config.spec
    entries: list[tuple[str, str, str]] = []
    seen: set[str] = set()

    def walk(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        if name in spec.defines:
            entries.append(("defines", name, spec.defines[name]))
            walk_expression(spec.defines[name])
        elif name in spec.categories:
            category = spec.categories[name]
            entries.append(("categories", name, category.model_dump_json()))
            walk_expression(category_expression(category))
        elif (found := _collection_of(config, name)) is not None:
            collection, field = found
            c = spec.collections[collection]
            entries.append(("collections", collection, c.model_dump_json(by_alias=True)))
            walk_expression(c.where)
            for source_field in (c.sort_by, field):
                if source_field is not None:
                    walk(f"{c.from_}_{source_field}")

    def walk_expression(expression: str) -> None:
        for name in referenced_names(expression):
            walk(name)

    walk(column)
    return entries


def _collection_of(config: LoadedConfig, name: str) -> tuple[str, str | None] | None:
    """(collection, field) of a collection's column: `nGoodJet` -> (GoodJet, None), `GoodJet_pt` -> (GoodJet, pt)."""
    collections = config.spec.collections
    if name.startswith("n") and name[1:] in collections:
        return name[1:], None
    for collection in collections:
        if name.startswith(collection + "_") and len(name) > len(collection) + 1:
            return collection, name[len(collection) + 1 :]
    return None


def definition_digest(config: LoadedConfig, column: str) -> str | None:
    """SHA-256 of what a derived column is computed from; None for an input column."""
    entries = definition_entries(config, column)
    return _digest(sorted(entries)) if entries else None


def systematic_digest(config: LoadedConfig, member: Member) -> str:
    """SHA-256 of a systematic's YAML, as validated (and of its name, for a member of a many-source set)."""
    return _digest([member.name, config.spec.systematics[member.declared].model_dump(mode="json")])


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def skim_key(sample: SampleSpec) -> str:
    """What datasets of skimmed samples must share (the variations and columns the skims hold)."""
    if sample.skim is None:
        return ""
    return json.dumps(sample.skim.model_dump(include={"variations", "columns", "format"}), sort_keys=True)


# ---------------------------------------------------------------- a dataset of skimmed samples


@dataclass(frozen=True)
class SkimRead:
    """How a dataset reads the skim of its samples (all alike: `skim_key`)."""

    config: LoadedConfig
    sample: str  # one of them, for messages
    origin: SkimOrigin
    inputs: SampleInputs  # the skim's columns

    @property
    def file(self) -> str:
        """The samples YAML that declares the skim."""
        return str(self.config.source.file_of(("samples", self.sample, "skim")))

    def stored(self) -> frozenset[str]:
        """Derived columns (defines, collections) read from the skim rather than computed."""
        return frozenset(self.origin.columns)

    def contribution(self, member: Member, contribution: Contribution) -> Contribution:
        """A systematic's contribution on the skim: a shape systematic varies the columns the skim
        stored varied (its YAML expressions are not applied again); one it lacks is refused."""
        if not contribution.varies:
            return contribution
        name = member.name
        place = self.config.locate("systematics", member.declared)
        held = self.origin.variations.get(name)
        if held is None:
            raise ConfigError(
                f"shape systematic {name!r} is not in the skim of sample {self.sample!r} ({self.file}): it was "
                f"skimmed without it, so the events and columns it varies are lost",
                place,
                f"leave it out (--systematics), or skim again with it and the columns it varies under skim.keep "
                f"(held: {', '.join(self.origin.variations) or 'none'})",
            )
        if held.definition != systematic_digest(self.config, member):
            raise ConfigError(
                f"shape systematic {name!r} changed since the skim of sample {self.sample!r} ({self.file}) was "
                "made: its stored variations are the old ones",
                place,
                "skim again (run-analysis skim) to store the new variations",
            )
        return replace(contribution, varies=tuple(self._stored_varies(name, place, held.down is not None)))

    def _stored_varies(self, name: str, place: Location, two_sided: bool) -> Iterator[VaryPlan]:
        """One Vary per column type (RDataFrame varies several columns together when they share one)
        of the columns stored with their variations of `name`."""
        columns = self.inputs.columns
        varied = sorted(
            c
            for c in columns
            if VARIED.format(column=c, systematic=name, direction="up") in columns
            and (not two_sided or VARIED.format(column=c, systematic=name, direction="down") in columns)
        )
        by_type: dict[str, list[str]] = {}
        for column in varied:
            by_type.setdefault(self.inputs.column_types[column], []).append(column)
        for group in by_type.values():
            yield VaryPlan(
                name=name,
                columns=tuple(group),
                ups=tuple(VARIED.format(column=c, systematic=name, direction="up") for c in group),
                downs=tuple(VARIED.format(column=c, systematic=name, direction="down") for c in group if two_sided),
                origin=place,
                places=tuple((place, place) for _ in group),
            )

    def mask(self, r: ColumnResolver, tree: str, shapes: tuple[str, ...]) -> Mask | None:
        """The events the skim stored for the nominal and, varied, for each shape systematic of the run;
        None when the skim holds no variation (every event it stored passed the nominal cuts)."""
        if not self.origin.variations:
            return None
        place = self.config.locate("samples", self.sample, "skim")
        r.make(SKIM_MASK, mask_bit(tree, 0), place)
        for name in shapes:
            bits = self.origin.variations[name]
            r.vary(
                Vary(
                    name=name,
                    origin=place,
                    columns=(SKIM_MASK,),
                    ups=(mask_bit(tree, bits.up),),
                    downs=(mask_bit(tree, bits.down),) if bits.down is not None else (),
                )
            )
        r.require(SKIM_MASK, place)
        return Mask(name="skim", expression=SKIM_MASK, origin=place)

    def check_definitions(self, read: Mapping[str, str]) -> None:
        """Derived columns read from the skim must be defined as they were when it was made."""
        for column in sorted(self.stored() & set(read)):
            entries = definition_entries(self.config, column)
            if entries and _digest(sorted(entries)) != self.origin.columns[column]:
                block, name, _ = entries[0]
                raise ConfigError(
                    f"{column!r} is read from the skim of sample {self.sample!r} ({self.file}), which computed it "
                    "with another definition than this configuration's",
                    self.config.locate(block, name),
                    "skim again (run-analysis skim), or leave it out of skim.keep and skim again to compute it here",
                )


def skim_read(config: LoadedConfig, members: list[SamplePlan], inputs: SampleInputs) -> SkimRead | None:
    """How the dataset of `members` reads their skim, or None for samples that are no skim."""
    name = members[0].parent or members[0].name
    origin = config.spec.samples[name].skim
    return None if origin is None else SkimRead(config, name, origin, inputs)
