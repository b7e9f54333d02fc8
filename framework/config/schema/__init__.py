"""The configuration language, version 1: the single source of truth.

Structure only (types, allowed keys, local rules). Meaning (unknown columns,
cycles, cross-references) is checked in `framework.config.load` and `framework.plan.model`.
The JSON Schema shipped in `framework/config/schema/` is generated from these models.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator

SCHEMA_VERSION = 1
YIELDS = "yields"  # the histogram of events per category that every run writes
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

Expression = Annotated[str, Field(min_length=1, description="A C++ expression over columns (RDataFrame syntax).")]


def _check_identifier(name: str, what: str) -> str:
    if not IDENTIFIER.match(name):
        raise ValueError(f"{what} {name!r} is not a valid name: use letters, digits and '_', not starting with a digit")
    return name


def _check_label(label: str) -> str:
    if not label or label in (".", "..") or any(c in label for c in "/\\") or any(ord(c) < 32 for c in label):
        raise ValueError(f"category label {label!r} cannot be used: plots and exports name files after it; "
                         "use letters, digits and signs other than '/' and '\\'")
    return label


# Names that become column names, file names or folder names: identifiers, checked at their key.
Name = Annotated[str, AfterValidator(lambda v: _check_identifier(v, "name"))]
Label = Annotated[str, AfterValidator(_check_label)]  # category labels, which also name plot files


class Strict(BaseModel):
    """Base of every block: unknown keys are errors, specs are immutable, numbers are finite
    numbers (`.inf`, `.nan` and strings are refused; integers are written as integers)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)


class GeneratorSpec(Strict):
    """Make this sample's files with the built-in event generator when they are missing."""

    process: Literal[
        "zmumu", "ttbar", "adl", "wjets", "single_top", "tnp_mc", "tnp_data", "data", "h4l", "zz4l", "zjets4l", "data4l",
        "cosmic_dt",
    ] = Field(
        description="Physics process to simulate; 'adl' mixes ttbar, Z->ll, WZ and W+jets; 'data' mixes zmumu and "
        "ttbar; 'tnp_mc' and 'tnp_data' are Z->mumu tag-and-probe samples with known efficiencies (data with "
        "background); 'h4l', 'zz4l', 'zjets4l' are flat open-data-style four-lepton ntuples (tree 'mini', MeV) and "
        "'data4l' mixes them; 'cosmic_dt' writes raw drift-tube TDC words of cosmic muons (tree 'raw') and their "
        "truth (tree 'truth')."
    )
    events: StrictInt = Field(0, ge=0, description="Number of events (MC).")
    mixture: dict[str, StrictInt] = Field(
        default_factory=dict, description="For process 'data': events per simulated process, e.g. {zmumu: 20000}."
    )
    seed: StrictInt = Field(1, description="Random seed; the same seed gives the same file.")
    format: Literal["ttree", "rntuple"] = Field(
        "ttree", description="Write a TTree (NanoAOD's format) or an RNTuple (ROOT's columnar format, read faster); "
        "the events are the same."
    )

    @model_validator(mode="after")
    def _events_or_mixture(self) -> GeneratorSpec:
        mixes = {"data": {"zmumu", "ttbar"}, "data4l": {"h4l", "zz4l", "zjets4l"}}
        if self.process in mixes:
            if not self.mixture or set(self.mixture) - mixes[self.process]:
                raise ValueError(
                    f"process {self.process!r} needs 'mixture' with event counts of {' and/or '.join(sorted(mixes[self.process]))}"
                )
        elif self.events <= 0:
            raise ValueError(f"process {self.process!r} needs 'events' > 0")
        if self.format == "rntuple" and self.process in ("h4l", "zz4l", "zjets4l", "data4l", "cosmic_dt"):
            raise ValueError(f"process {self.process!r} is written as a TTree only (format: ttree)")
        return self


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
        None, description="Sum of generator weights of the whole sample, when known; or the name of a branch holding it."
    )
    generate: GeneratorSpec | None = Field(None, description="Produce the files with the built-in generator.")
    split: dict[Name, Expression] | None = Field(
        None,
        description="Sub-processes by event filter, e.g. {ttbb: 'nGenB >= 2'}: each is its own output sample "
        "(the first true condition wins; events matching none go to '<sample>_other'), normalised as the whole sample.",
    )
    events: StrictInt | None = Field(None, ge=0, description="Computed by 'run-analysis samples update': events in all files.")
    sum_weights2: float | None = Field(None, description="Computed: sum of squared generator weights.")
    split_stats: dict[str, SplitStats] | None = Field(
        None, description="Computed per sub-process of 'split': events, sum of weights, fraction of the sum."
    )
    file_stats: dict[str, FileStats] | None = Field(
        None, description="Computed per file (also the cache: size and mtime_ns say when to read a file again)."
    )

    @field_validator("era", mode="before")
    @classmethod
    def _era_as_text(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @field_validator("xsec", "sum_weights")
    @classmethod
    def _number_or_branch(cls, v: float | str | None) -> float | str | None:
        if isinstance(v, str):
            return _check_identifier(v, "branch name")
        if v is not None and v <= 0:
            raise ValueError("must be positive (or the name of a branch holding the value)")
        return v

    @model_validator(mode="after")
    def _mc_needs_xsec(self) -> SampleSpec:
        if not self.is_data and self.xsec is None:
            raise ValueError("a simulated sample needs 'xsec' (pb); set 'is_data: true' for collision data")
        if self.is_data and (self.xsec is not None or self.sum_weights is not None or self.sum_weights2 is not None):
            raise ValueError("a data sample takes no 'xsec', 'sum_weights' or 'sum_weights2'")
        return self


class EraSpec(Strict):
    lumi: float = Field(gt=0, description="Integrated luminosity in /pb.")


class CollectionSpec(Strict):
    """An object view: the objects of collection `from` passing `where`, as `Name_*` columns and `nName`."""

    from_: str = Field(alias="from", description="Source collection prefix, e.g. 'Jet' for Jet_pt, Jet_eta ...")
    where: Expression = Field(description="Per-object boolean mask over the source columns.")
    sort_by: str | None = Field(None, description="Field of the source to order by, e.g. 'pt' (descending).")
    ascending: bool = Field(False, description="Order by increasing sort_by instead.")


class CutSpec(Strict):
    name: str = Field(description="Name of the cutflow row.")
    cut: Expression

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _check_identifier(v, "cut name")


class CategorySpec(Strict):
    """An axis of categories, filled from `expr`. Give exactly one of values, integer, cases, boolean."""

    expr: Expression | None = Field(None, description="Expression giving the category value (not with 'cases').")
    values: list[StrictInt] | None = Field(None, description="Integer category values; other values go to an 'other' bin.")
    integer: tuple[StrictInt, StrictInt] | None = Field(
        None, description="[start, stop): consecutive integers, with under- and overflow (e.g. >= stop)."
    )
    cases: dict[Label, Expression] | None = Field(
        None, description="Label -> boolean condition; the first true condition wins, none -> 'other' bin."
    )
    boolean: bool = Field(False, description="A two-bin axis (false, true) from a boolean expression.")
    label: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> CategorySpec:
        kinds = [k for k in ("values", "integer", "cases") if getattr(self, k) is not None]
        if self.boolean:
            kinds.append("boolean")
        if len(kinds) != 1:
            raise ValueError("give exactly one of 'values', 'integer', 'cases' or 'boolean: true'" + (
                f" (found {', '.join(kinds)})" if kinds else ""))
        if (self.cases is None) == (self.expr is None):
            raise ValueError("'cases' takes no 'expr'; every other category needs 'expr'")
        return self

    @field_validator("integer")
    @classmethod
    def _integer(cls, v: tuple[int, int] | None) -> tuple[int, int] | None:
        return _ordered_integers(v)


class AxisSpec(Strict):
    """A histogram axis over an expression: regular (bins + range), variable (edges) or integer."""

    expr: Expression
    name: str | None = Field(None, description="Axis name; default: expr when it is a plain column name.")
    label: str | None = Field(None, description="Axis label for plots.")
    bins: StrictInt | None = Field(None, gt=0)
    range: tuple[float, float] | None = None
    edges: list[float] | None = Field(None, min_length=2)
    integer: tuple[StrictInt, StrictInt] | None = None

    @model_validator(mode="after")
    def _one_binning(self) -> AxisSpec:
        regular = self.bins is not None or self.range is not None
        kinds = [k for k, present in (("bins+range", regular), ("edges", self.edges), ("integer", self.integer)) if present]
        if len(kinds) != 1:
            raise ValueError("give exactly one binning: 'bins' with 'range', 'edges', or 'integer'")
        if regular and (self.bins is None or self.range is None):
            raise ValueError("a regular axis needs both 'bins' and 'range: [low, high]'")
        if self.name is None and not IDENTIFIER.match(self.expr):
            raise ValueError("an axis over an expression needs a 'name'")
        if self.name is not None:
            _check_identifier(self.name, "axis name")
        return self


    @field_validator("range")
    @classmethod
    def _range(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and not v[0] < v[1]:
            raise ValueError(f"'range' must be [low, high] with low < high (found [{v[0]:g}, {v[1]:g}])")
        return v

    @field_validator("edges")
    @classmethod
    def _edges(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and any(b <= a for a, b in zip(v, v[1:])):
            raise ValueError("'edges' must increase strictly")
        return v

    @field_validator("integer")
    @classmethod
    def _integer(cls, v: tuple[int, int] | None) -> tuple[int, int] | None:
        return _ordered_integers(v)


def _ordered_integers(v: tuple[int, int] | None) -> tuple[int, int] | None:
    if v is not None and v[1] <= v[0]:
        raise ValueError(f"'integer' must be [start, stop] with stop > start (found [{v[0]}, {v[1]}])")
    return v


class HistogramSpec(Strict):
    axes: list[str | AxisSpec] = Field(
        min_length=1, description="Axes in order: a category name, or a mapping defining an axis."
    )
    weight: Expression | None = Field(None, description="Extra factor multiplying the event weight for this histogram.")
    where: Expression | list[Expression] | None = Field(
        None,
        description="Fill only events where this is true (or these are, applied in order): a selection for this "
        "histogram alone. Columns it needs are computed only for events that pass the earlier conditions.",
    )


class Applicability(Strict):
    """Which simulated samples a systematic applies to (data never). Empty lists mean all."""

    samples: list[str] = Field(default_factory=list, description="Sample names or glob patterns.")
    eras: list[str] = Field(default_factory=list, description="Eras.")

    @field_validator("eras", mode="before")
    @classmethod
    def _eras_as_text(cls, v: Any) -> Any:
        return [str(e) if isinstance(e, int) and not isinstance(e, bool) else e for e in v] if isinstance(v, list) else v


class SystematicBase(Strict):
    group: str | None = Field(None, description="Group name; --systematics GROUP selects all its members.")
    applies_to: Applicability | None = Field(None, description="Restrict to some samples or eras.")


class WeightSystematic(SystematicBase):
    """A variation of the event weight: filled in the same pass as the nominal."""

    kind: Literal["weight"]
    up: Expression | None = Field(None, description="Factor multiplying the nominal weight for the up variation.")
    down: Expression | None = Field(None, description="Factor multiplying the nominal weight for the down variation.")
    from_array: str | None = Field(None, description="Array column of weight factors, e.g. LHEScaleWeight.")
    indices: list[StrictInt] | None = Field(None, description="Entries of from_array to use, one variation each.")
    combine: Literal["envelope", "rms", "hessian"] | None = Field(
        None,
        description="Also record <name>Up/Down combining the array entries bin by bin: envelope (max/min), "
        "rms (nominal +- RMS of the deviations, MC replicas) or hessian (nominal +- quadratic sum).",
    )

    @model_validator(mode="after")
    def _one_form(self) -> WeightSystematic:
        pair = self.up is not None or self.down is not None
        array = self.from_array is not None or self.indices is not None
        if pair == array:
            raise ValueError("give either 'up' and 'down', or 'from_array' with 'indices'")
        if pair and (self.up is None or self.down is None):
            raise ValueError("give both 'up' and 'down'")
        if array and (self.from_array is None or not self.indices):
            raise ValueError("give both 'from_array' and a non-empty 'indices' list")
        if self.indices is not None and any(i < 0 for i in self.indices):
            raise ValueError("'indices' must be >= 0")
        if self.combine is not None and not array:
            raise ValueError("'combine' applies to 'from_array' variations")
        return self


class VariedColumn(Strict):
    up: Expression
    down: Expression


class ShapeSystematic(SystematicBase):
    """A variation that replaces columns (through RDataFrame's Vary): events can move across cuts and bins.

    Either one column (`column`, `up`, `down`) or several varied together (`columns`).
    """

    kind: Literal["shape"]
    column: str | None = Field(None, description="The column replaced, e.g. Jet_pt.")
    up: Expression | None = None
    down: Expression | None = None
    columns: dict[str, VariedColumn] | None = Field(
        None, description="Several columns varied together, e.g. {Jet_pt: {up, down}, Jet_mass: {up, down}}."
    )

    @model_validator(mode="after")
    def _one_form(self) -> ShapeSystematic:
        single = self.column is not None or self.up is not None or self.down is not None
        if single == (self.columns is not None):
            raise ValueError("give either 'column' with 'up' and 'down', or 'columns'")
        if single and (self.column is None or self.up is None or self.down is None):
            raise ValueError("give 'column', 'up' and 'down'")
        if self.columns is not None and not self.columns:
            raise ValueError("'columns' is empty")
        return self

    def varied(self) -> dict[str, VariedColumn]:
        if self.columns is not None:
            return dict(self.columns)
        assert self.column is not None and self.up is not None and self.down is not None
        return {self.column: VariedColumn(up=self.up, down=self.down)}


class CorrectionlibSystematic(SystematicBase):
    """A scale factor from a correctionlib CorrectionSet, with its up/down variations as weight entries.

    Inputs given as per-object expressions (e.g. GoodMuon_pt) multiply the factors of all objects.
    """

    kind: Literal["correctionlib"]
    file: str = Field(description="CorrectionSet JSON (optionally .gz), relative to this YAML file.")
    correction: str = Field(description="Name of the correction in the set.")
    inputs: dict[str, Expression] = Field(description="Correction input name -> expression.")
    key_input: str | None = Field(None, description="The string input that selects nominal/up/down.")
    nominal: str = Field("nominal", description="Key of the nominal factor.")
    up: str = Field("up", description="Key of the up variation.")
    down: str = Field("down", description="Key of the down variation.")
    apply_nominal: bool = Field(True, description="Multiply the nominal event weight by the nominal factor.")


Systematic = Annotated[
    WeightSystematic | ShapeSystematic | CorrectionlibSystematic, Field(discriminator="kind")
]


class BatchSpec(Strict):
    """Resources requested by each batch job (`run-analysis submit`)."""

    memory: str = Field("2GB", pattern=r"^\d+(\.\d+)?\s*[KMGT]B$", description="Memory per job, e.g. 2GB.")
    time: str = Field("2h", pattern=r"^\d+[smhd]$", description="Wall time per job, e.g. 90m, 2h.")
    threads: StrictInt = Field(1, ge=1, description="Threads (cores) per job.")
    files_per_job: StrictInt = Field(10, ge=1, description="Input files per job.")


SliceValue = str | int | float | list[str | int | float]


class ProcessSpec(Strict):
    """How a process (the `process` of its samples) looks in plots and tables."""

    label: str | None = Field(None, description="Legend and table label (LaTeX math allowed, e.g. '$t\\bar{t}$').")
    color: str | None = Field(None, description="Matplotlib colour, e.g. '#5790fc' or 'tab:blue'.")


class PlotSpec(Strict):
    """A stacked plot of one axis of a histogram, the other axes sliced or summed."""

    histogram: str = Field(description="Name of a histogram under 'histograms'.")
    axis: str | None = Field(None, description="The axis drawn on x; default: the histogram's first axis.")
    slices: dict[str, SliceValue] = Field(
        default_factory=dict,
        description="Other axes: 'sum' (default), 'each' (one plot per bin), a bin value, a list of values "
        "(summed), or [low, high] on a continuous axis.",
    )
    log: bool = Field(False, description="Logarithmic y axis.")
    rebin: StrictInt | None = Field(None, ge=2, description="Merge this many neighbouring bins of the drawn axis.")
    xlabel: str | None = Field(None, description="Default: the axis label.")
    ylabel: str | None = Field(None, description="Default: 'Events' or 'Events / bin width'.")


class PlotStyleSpec(Strict):
    """Experiment label and output formats of every plot."""

    experiment: Literal["CMS", "ATLAS", "ALICE", "LHCb", "none"] = "CMS"
    text: str = Field("Preliminary", description="Text after the experiment name, e.g. 'Open Data', 'Simulation'.")
    com: float = Field(13.0, gt=0, description="Centre-of-mass energy in TeV for the label.")
    formats: list[Literal["png", "pdf", "svg"]] = Field(["png", "pdf"], min_length=1)
    ratio: bool = Field(True, description="Draw the data/MC ratio panel.")


class CombineExport(Strict):
    """Shapes for CMS combine: one directory per channel, `process`, `process_systUp/Down`, `data_obs`."""

    histogram: str
    axis: str | None = Field(None, description="The fitted observable; default: the histogram's first axis.")
    channels: list[str] = Field(
        default_factory=list, description="Category axes whose bins become combine channels (directories)."
    )
    slices: dict[str, SliceValue] = Field(default_factory=dict, description="Fixed selections of the remaining axes.")
    rebin: StrictInt | None = Field(None, ge=2)


class CorrectionExport(Strict):
    """A correctionlib correction equal to a ratio of histograms, e.g. data/MC."""

    histogram: str
    axes: list[str] = Field(min_length=1, description="Axes of the correction (its inputs, in this order).")
    numerator: list[str] = Field(["data"], min_length=1, description="Processes, or 'data', summed in the numerator.")
    denominator: list[str] = Field(
        default_factory=list, description="Processes summed in the denominator; default: all simulated ones."
    )
    slices: dict[str, SliceValue] = Field(default_factory=dict, description="Selections of the axes not in 'axes'.")
    description: str | None = None


class ExportsSpec(Strict):
    combine: dict[Name, CombineExport] = Field(default_factory=dict, description="File name -> combine shapes.")
    corrections: dict[Name, CorrectionExport] = Field(
        default_factory=dict, description="Correction name -> ratio; all go into one CorrectionSet JSON."
    )


class TnpBinning(Strict):
    """A binning variable of the probe, e.g. {expr: abs(Muon_eta), edges: [0, 0.9, 1.2, 2.1, 2.4]}."""

    expr: Expression = Field(description="Per-muon expression over the collection's columns.")
    edges: list[float] = Field(min_length=2)
    label: str | None = None

    @field_validator("edges")
    @classmethod
    def _increasing(cls, v: list[float]) -> list[float]:
        if any(b <= a for a, b in zip(v, v[1:])):
            raise ValueError("'edges' must increase strictly")
        return v


class TnpEfficiency(Strict):
    """Probes passing `numerator` among those passing `denominator` (names of probe selections)."""

    numerator: list[str] = Field(min_length=1)
    denominator: list[str] = Field(default_factory=list, description="Empty: every probe.")


SIGNAL_MODELS = ("template_gauss", "voigtian", "double_voigtian", "dscb")
BACKGROUND_MODELS = ("cms", "exponential", "chebyshev")


class TnpFitSpec(Strict):
    """How pass and fail mass distributions are fitted."""

    signal: str = Field("template_gauss", description=f"One of {', '.join(SIGNAL_MODELS)}.")
    background: str = Field("cms", description=f"One of {', '.join(BACKGROUND_MODELS)}.")
    range: tuple[float, float] = Field((70.0, 110.0), description="Fit range in the pair mass (GeV).")
    rebin: StrictInt = Field(1, ge=1, description="Merge this many mass bins before fitting.")
    simultaneous: bool = Field(True, description="Pass and fail fitted together with the efficiency as a parameter.")


class TnpAlternative(Strict):
    """A systematic alternative: any fit setting replaced, or another tag definition."""

    signal: str | None = None
    background: str | None = None
    range: tuple[float, float] | None = None
    rebin: StrictInt | None = Field(None, ge=1)
    tag: str | None = Field(None, description="Name of a tag definition under 'tag_variations'.")
    group: str | None = Field(
        None, description="Alternatives of one group (e.g. a wider and a narrower range) count as half their spread."
    )


class TnpSpec(Strict):
    """Tag and probe: pairs of a muon collection, efficiencies in probe bins, fitted, with systematics."""

    collection: str = Field("Muon", description="Prefix of the collection the pairs are made of.")
    tag: Expression = Field(description="Per-muon condition of a tag.")
    probe: Expression = Field(description="Per-muon condition of a probe.")
    opposite_charge: bool = True
    mass: tuple[float, float] = Field((50.0, 130.0), description="Pair mass window (GeV); also the histogram range.")
    mass_bins: StrictInt = Field(80, gt=0)
    selections: dict[Name, Expression] = Field(min_length=1, description="Named per-muon probe selections.")
    efficiencies: dict[Name, TnpEfficiency] = Field(min_length=1)
    binning: dict[Name, TnpBinning] = Field(min_length=1, max_length=3, description="Up to three probe variables.")
    tag_variations: dict[Name, Expression] = Field(default_factory=dict, description="Alternative tag conditions.")
    fit: TnpFitSpec = Field(default_factory=TnpFitSpec)
    data_method: Literal["fit", "count"] = "fit"
    mc_method: Literal["fit", "count"] = "count"
    systematics: dict[Name, TnpAlternative] = Field(default_factory=dict)
    chi2_limit: float = Field(3.0, gt=0, description="Fits with chi2/ndf above this are listed as poor.")
    flow: Literal["clamp", "error"] = Field("clamp", description="correctionlib behaviour outside the bins.")
    workers: StrictInt = Field(2, ge=1, description="Processes that run the fits.")
    plot_fits: bool = Field(True, description="A plot per nominal data fit.")


class PreprocessSpec(Strict):
    """A stage before the analysis: a C++ writer turns input entries into a new ROOT file (e.g. a
    stream of raw words into one row per orbit), which samples then read like any other file."""

    files: list[str] = Field(min_length=1, description="Input files, relative to this YAML file.")
    tree: str = Field(description="Input tree.")
    columns: list[str] = Field(min_length=1, description="Input columns handed to the writer, entry by entry, in order.")
    writer: str = Field(
        description="C++ class (from 'cpp:') constructed with the output path, called with the columns of each "
        "entry, then Finish()."
    )
    output: str = Field(description="The file written, relative to this YAML file; remade when older than its inputs.")
    generate: GeneratorSpec | None = Field(None, description="Make the (single) input file with the generator when missing.")


class SignificanceSpec(Strict):
    """Local significance of a signal in one histogram: binned Poisson likelihood, statistics only."""

    histogram: str
    axis: str | None = Field(None, description="The fitted observable; default: the histogram's first axis.")
    signal: list[str] = Field(min_length=1, description="Signal processes; every other simulated process is background.")
    range: tuple[float, float] | None = Field(None, description="Window on the axis, e.g. [115, 135].")
    slices: dict[str, SliceValue] = Field(default_factory=dict, description="Selections of the other axes (default: sum).")


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
    exports: ExportsSpec = Field(default_factory=ExportsSpec, description="Files for fits: combine shapes, corrections.")
    tnp: TnpSpec | None = Field(None, description="Tag-and-probe efficiencies and scale factors (see the README).")
    significance: dict[Name, SignificanceSpec] = Field(
        default_factory=dict, description="Local significances reported by 'run-analysis plot'."
    )
    report: bool = Field(False, description="Also make the plots, tables and report page in OUT/report after a run.")
    preprocess: dict[Name, PreprocessSpec] = Field(
        default_factory=dict, description="Stages that write the files samples read, run before the analysis."
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
