"""The whole analysis: every part of a config, and the JSON Schema made from it."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import Field, model_validator

from framework.config.schema.base import SCHEMA_VERSION, Expression, Name, Strict
from framework.config.schema.batch import BatchSpec
from framework.config.schema.core import CategorySpec, CollectionSpec, CutSpec, HistogramSpec
from framework.config.schema.model import ModelSpec
from framework.config.schema.presentation import (
    ExportsSpec,
    PlotSpec,
    PlotStyleSpec,
    ProcessSpec,
    SignificanceSpec,
    SliceValue,
)
from framework.config.schema.samples import EraSpec, PreprocessSpec, SampleSpec
from framework.config.schema.skim import SkimSpec
from framework.config.schema.systematics import Systematic
from framework.extensions.tnp.schema import TnpSpec


class AnalysisSpec(Strict):
    """A whole analysis: the merged content of the config file and everything it includes."""

    schema_version: Literal[1] = Field(1, alias="schema", description="Version of this configuration language.")
    include: list[str] = Field(default_factory=list, description="Other YAML files merged into this one.")
    analysis: Name = Field(description="Name of the analysis (also the default output folder's).")
    lumi: float | None = Field(None, gt=0, description="Integrated luminosity in /pb for samples without an era.")
    eras: dict[str, EraSpec] = Field(default_factory=dict)
    samples: dict[Name, SampleSpec] = Field(min_length=1)
    cpp: list[str] = Field(default_factory=list, description="C++ headers or sources to declare, relative to the YAML.")
    collections: dict[Name, CollectionSpec] = Field(default_factory=dict)
    defines: dict[Name, Expression] = Field(default_factory=dict, description="New columns: name -> C++ expression.")
    selection: list[CutSpec] = Field(default_factory=list, description="Ordered cuts; each is a cutflow row.")
    categories: dict[Name, CategorySpec] = Field(default_factory=dict)
    weight: Expression = Field("1", description="Nominal event weight for simulation (data has weight 1).")
    generator_weight: Expression = Field(
        "genWeight", description="Per-event generator weight whose sum normalises simulated samples."
    )
    systematics: dict[Name, Systematic] = Field(default_factory=dict)
    histograms: dict[Name, HistogramSpec] = Field(
        default_factory=dict, description="Histograms by name (at least one, unless 'tnp' makes its own)."
    )
    batch: BatchSpec = Field(default_factory=BatchSpec, description="Batch job resources.")
    processes: dict[Name, ProcessSpec] = Field(
        default_factory=dict, description="Labels and colours of processes; stacking order (first at the bottom)."
    )
    plots: dict[Name, PlotSpec] = Field(
        default_factory=dict, description="Plots made by 'run-analysis plot'; default: one per histogram axis."
    )
    style: PlotStyleSpec = Field(default_factory=PlotStyleSpec, description="Experiment label and plot formats.")
    blind: list[dict[str, SliceValue]] = Field(
        default_factory=list,
        description="Regions where data is hidden: axis name -> value, list of values, or [low, high].",
    )
    exports: ExportsSpec = Field(
        default_factory=ExportsSpec, description="Files for fits: combine shapes, corrections."
    )
    tnp: TnpSpec | None = Field(None, description="Tag-and-probe efficiencies and scale factors (see the README).")
    significance: dict[Name, SignificanceSpec] = Field(
        default_factory=dict, description="Local significances reported by 'run-analysis plot'."
    )
    model: ModelSpec | None = Field(
        None, description="The statistical model: exported by 'run-analysis export', fitted by 'run-analysis fit'."
    )
    report: bool = Field(False, description="Also make the plots, tables and report page in OUT/report after a run.")
    preprocess: dict[Name, PreprocessSpec] = Field(
        default_factory=dict, description="Stages that write the files samples read, run before the analysis."
    )
    skim: SkimSpec | None = Field(
        None, description="What 'run-analysis skim' writes: the events passing a selection, with the columns kept."
    )

    @model_validator(mode="after")
    def _something_to_fill(self) -> AnalysisSpec:
        if not self.histograms and self.tnp is None:
            raise ValueError("declare at least one histogram under 'histograms' (or a 'tnp' section)")
        return self


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the configuration language, for editors and check-jsonschema."""
    schema = AnalysisSpec.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://rdf-analysis.invalid/schema/analysis-v{SCHEMA_VERSION}.json"
    return schema


def json_schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
