"""Samples, eras and the stages that write their files."""

from __future__ import annotations

from typing import Any

from pydantic import Field, StrictInt, field_validator, model_validator

from framework.config.schema.base import Expression, Name, Strict, check_identifier
from framework.config.schema.skim import SkimOrigin
from framework.testing.spec import GeneratorSpec


class FileStats(Strict):
    events: StrictInt
    sum_weights: float | None = None
    sum_weights2: float | None = None
    size: StrictInt
    mtime_ns: StrictInt
    splits: dict[str, tuple[StrictInt, float]] | None = None


class SplitStats(Strict):
    events: StrictInt
    sum_weights: float
    fraction: float


class SampleSpec(Strict):
    """One sample: a set of files of one physics process in one era."""

    files: list[str] = Field(min_length=1, description="Paths or glob patterns, relative to this YAML file.")
    tree: str = Field("Events", description="Name of the TTree or RNTuple in the files.")
    is_data: bool = Field(False, description="Collision data: no normalisation, weight 1, no systematics.")
    xsec: float | str | None = Field(
        None, description="Cross-section in pb (MC only), or the name of a branch holding it (read from the files)."
    )
    era: str | None = Field(None, description="Data-taking period; selects the luminosity from 'eras'.")
    process: str | None = Field(None, description="Process group for plots and yields; default: the sample name.")
    sum_weights: float | str | None = Field(
        None,
        description="Sum of generator weights of the whole sample, when known; or the name of a branch holding it.",
    )
    generate: GeneratorSpec | None = Field(None, description="Produce the files with the built-in generator.")
    lumi_mask: str | None = Field(
        None,
        min_length=1,
        description="Collision data only: a certified-luminosity JSON (CMS golden JSON, "
        '{"run": [[first_lumi, last_lumi], ...]}), relative to this YAML file; replaces the era\'s mask.',
    )
    split: dict[Name, Expression] | None = Field(
        None,
        description="Sub-processes by event filter, e.g. {ttbb: 'nGenB >= 2'}: each is its own output sample "
        "(the first true condition wins; events matching none go to '<sample>_other'), normalised as the whole sample.",
    )
    events: StrictInt | None = Field(
        None, ge=0, description="Computed by 'run-analysis samples update': events in all files."
    )
    sum_weights2: float | None = Field(None, description="Computed: sum of squared generator weights.")
    split_stats: dict[str, SplitStats] | None = Field(
        None, description="Computed per sub-process of 'split': events, sum of weights, fraction of the sum."
    )
    file_stats: dict[str, FileStats] | None = Field(
        None, description="Computed per file (also the cache: size and mtime_ns say when to read a file again)."
    )
    skim: SkimOrigin | None = Field(
        None, description="Written by 'run-analysis skim': the files are a skim of the sample (see the README)."
    )

    @field_validator("era", mode="before")
    @classmethod
    def _era_as_text(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @field_validator("xsec", "sum_weights")
    @classmethod
    def _number_or_branch(cls, v: float | str | None) -> float | str | None:
        if isinstance(v, str):
            return check_identifier(v, "branch name")
        if v is not None and v <= 0:
            raise ValueError("must be positive (or the name of a branch holding the value)")
        return v

    @model_validator(mode="after")
    def _mc_needs_xsec(self) -> SampleSpec:
        if not self.is_data and self.xsec is None:
            raise ValueError("a simulated sample needs 'xsec' (pb); set 'is_data: true' for collision data")
        if self.is_data and (self.xsec is not None or self.sum_weights is not None or self.sum_weights2 is not None):
            raise ValueError("a data sample takes no 'xsec', 'sum_weights' or 'sum_weights2'")
        if self.skim is not None and not self.is_data and not isinstance(self.sum_weights, float):
            raise ValueError(
                "a skimmed simulated sample needs 'sum_weights' of the original sample (the skim's events are "
                "not all of the sample's): run-analysis skim writes it"
            )
        return self


class EraSpec(Strict):
    lumi: float = Field(gt=0, description="Integrated luminosity in /pb.")
    lumi_mask: str | None = Field(
        None,
        min_length=1,
        description='A certified-luminosity JSON (CMS golden JSON, {"run": [[first_lumi, last_lumi], ...]}), '
        "relative to this YAML file: the era's collision-data samples keep only the events of its luminosity "
        "sections, before any cut (cutflow row 'lumi_mask'). Simulation is never masked.",
    )


class PreprocessSpec(Strict):
    """A stage before the analysis: a C++ writer turns input entries into a new ROOT file (e.g. a
    stream of raw words into one row per orbit), which samples then read like any other file."""

    files: list[str] = Field(min_length=1, description="Input files, relative to this YAML file.")
    tree: str = Field(description="Input tree.")
    columns: list[str] = Field(
        min_length=1, description="Input columns handed to the writer, entry by entry, in order."
    )
    writer: str = Field(
        description="C++ class (from 'cpp:') constructed with the output path, called with the columns of each "
        "entry, then Finish()."
    )
    output: str = Field(description="The file written, relative to this YAML file; remade when older than its inputs.")
    generate: GeneratorSpec | None = Field(
        None, description="Make the (single) input file with the generator when missing."
    )
