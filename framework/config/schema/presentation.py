"""What `run-analysis plot` and `export` make of a run's files: processes, plots, style, exports, significances."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictInt, model_validator

from framework.config.schema.base import Name, Strict

SliceValue = str | int | float | list[str | int | float]


class ProcessSpec(Strict):
    """How a process (the `process` of its samples) looks in plots and tables."""

    label: str | None = Field(None, description="Legend and table label (LaTeX math allowed, e.g. '$t\\bar{t}$').")
    color: str | None = Field(None, description="Matplotlib colour, e.g. '#5790fc' or 'tab:blue'.")


class SignalSpec(Strict):
    """How signal processes are drawn: stacked on top of the backgrounds, as a line over the stack
    (scaled, the factor in the legend: 'ttH x 10'), or both."""

    processes: list[str] | None = Field(
        None, min_length=1, description="Signal processes; default: the statistical model's ('model.signal')."
    )
    stack: bool = Field(
        True,
        description="Stack the signal, unscaled, on top of the backgrounds. false: the simulation total, its "
        "uncertainty bands and the data/simulation ratio are the backgrounds' alone.",
    )
    line: bool | None = Field(
        None, description="Also draw each signal as a line over the stack; default: when not stacked."
    )
    scale: float = Field(1.0, gt=0, description="Factor applied to the line (never to the stack), e.g. 10.")

    @model_validator(mode="after")
    def _drawn(self) -> SignalSpec:
        if not self.stack and self.line is False:
            raise ValueError("with 'stack: false' and 'line: false' the signal is not drawn: set one of them true")
        if self.scale != 1 and not self.draws_line:
            raise ValueError("'scale' applies to the signal's line, never to the stack: add 'line: true'")
        return self

    @property
    def draws_line(self) -> bool:
        return self.line if self.line is not None else not self.stack


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
    xlabel: str | None = Field(None, description="Default: the axis label. Math between $...$ (matplotlib mathtext).")
    ylabel: str | None = Field(
        None,
        description="Default: 'Events / 40 GeV' (uniform bins of 40, the unit in brackets at the end of the x "
        "label), 'Events / GeV' (variable bins: each bin's events divided by its width), 'Events' (categories).",
    )
    signal: SignalSpec | None = Field(None, description="How the signal is drawn here; default: style.signal.")


class PlotStyleSpec(Strict):
    """Experiment label and output formats of every plot."""

    experiment: Literal["CMS", "ATLAS", "ALICE", "LHCb", "none"] = "CMS"
    text: str = Field("Preliminary", description="Text after the experiment name, e.g. 'Open Data', 'Simulation'.")
    com: float = Field(13.0, gt=0, description="Centre-of-mass energy in TeV for the label.")
    formats: list[Literal["png", "pdf", "svg"]] = Field(["png", "pdf"], min_length=1)
    ratio: bool = Field(True, description="Draw the data/MC ratio panel.")
    signal: SignalSpec | None = Field(
        None,
        description="How the signal is drawn in every plot (a plot's own 'signal' replaces it); default: "
        "every process stacked in the order of 'processes'.",
    )


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


class SignificanceSpec(Strict):
    """Local significance of a signal in one histogram: binned Poisson likelihood, statistics only."""

    histogram: str
    axis: str | None = Field(None, description="The fitted observable; default: the histogram's first axis.")
    signal: list[str] = Field(
        min_length=1, description="Signal processes; every other simulated process is background."
    )
    range: tuple[float, float] | None = Field(None, description="Window on the axis, e.g. [115, 135].")
    slices: dict[str, SliceValue] = Field(
        default_factory=dict, description="Selections of the other axes (default: sum)."
    )
