"""Skims: the `skim:` block of an analysis (what `run-analysis skim` keeps), and the `skim:` key a
skimmed sample carries in the samples YAML the skim writes (where its events came from)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictInt

from framework.config.schema.base import Strict

SKIM_FORMATS = ("rntuple", "ttree")


class SkimSpec(Strict):
    """What `run-analysis skim` writes per sample: the events passing `selection`, with the columns `keep`."""

    selection: list[str] = Field(
        default_factory=list,
        description="Cuts, in order: the name of a step of 'selection', or a C++ expression. Empty: every event.",
    )
    keep: list[str] = Field(
        min_length=1,
        description="Columns to write: input branches, defines, collections (all their columns), or glob "
        "patterns over those names (Jet_*). Each entry must match something.",
    )
    format: Literal["rntuple", "ttree"] | None = Field(
        None,
        description="Output format. Default: rntuple, or ttree when shape variations are kept (ROOT 6.40 writes "
        "variations with the events only into a TTree).",
    )


class SkimVariation(Strict):
    """A shape systematic a skim holds: its definition when skimmed and the mask bits of its variations."""

    definition: str = Field(description="SHA-256 of the systematic's YAML when the skim was made.")
    up: StrictInt = Field(ge=0, description="Bit of the skim's mask set for events the up variation kept.")
    down: StrictInt | None = Field(
        None, ge=0, description="Bit of the skim's mask set for events the down variation kept (none: one-sided)."
    )


class SkimOrigin(Strict):
    """Written by `run-analysis skim` on each sample of the samples YAML it makes: where the events came
    from. A run reads the varied columns and the derived columns it lists from the skim."""

    config: str = Field(description="The configuration that made the skim.")
    config_hash: str = Field(description="SHA-256 of that configuration and the files it includes.")
    selection: list[str] = Field(description="The cuts the skim applied, as C++ expressions.")
    events: StrictInt = Field(ge=0, description="Events of the original sample read.")
    format: Literal["rntuple", "ttree"]
    variations: dict[str, SkimVariation] = Field(
        default_factory=dict, description="Shape systematics whose varied columns the skim holds."
    )
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="Derived columns the skim holds (defines, collections) -> SHA-256 of their definition.",
    )
