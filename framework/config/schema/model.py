"""The statistical model of an analysis (`model:`): channels, signal, normalisation uncertainties,
how each systematic enters, MC statistics, observed or Asimov data. Exported as a combine
datacard and a pyhf workspace by `run-analysis export`, fitted by `run-analysis fit`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictInt

from framework.config.schema.base import Name, Strict
from framework.config.schema.presentation import SliceValue


class ModelChannelSpec(Strict):
    """One fitted distribution: a histogram's observable, the other axes sliced (`each`: one channel per bin)."""

    histogram: str = Field(description="Name of a histogram under 'histograms'.")
    axis: str | None = Field(None, description="The fitted observable; default: the histogram's first axis.")
    slices: dict[str, SliceValue] = Field(
        default_factory=dict,
        description="Other axes: 'sum' (default), 'each' (one channel per bin, named <channel>_<value>), "
        "a value, a list of values (summed), or [low, high] on a continuous axis.",
    )
    range: tuple[float, float] | None = Field(
        None, description="Bins of the observable that are fitted, [low, high] on bin edges; default: all."
    )
    rebin: StrictInt | None = Field(None, ge=2, description="Merge this many neighbouring bins (after 'range').")


class NormalisationSpec(Strict):
    """A log-normal normalisation uncertainty (combine's lnN, pyhf's normsys)."""

    value: float | tuple[float, float] = Field(
        description="kappa (e.g. 1.025 for 2.5%), or [down, up] for an asymmetric one (e.g. [0.95, 1.04])."
    )
    processes: list[str] = Field(default_factory=list, description="Processes it applies to; default: all simulated.")
    channels: list[str] = Field(default_factory=list, description="Channels (names under 'channels'); default: all.")


class ModelSpec(Strict):
    channels: dict[Name, ModelChannelSpec] = Field(min_length=1, description="Channel name -> fitted distribution.")
    signal: list[str] = Field(
        default_factory=list,
        description="Signal processes (scaled by the signal strength mu); the others are background.",
    )
    normalisations: dict[Name, NormalisationSpec] = Field(
        default_factory=dict, description="lnN uncertainties by nuisance name, e.g. lumi: {value: 1.025}."
    )
    systematics: dict[str, Literal["shape", "norm", "drop"]] = Field(
        default_factory=dict,
        description="How each systematic of the 'systematic' axis enters (a many-source set's name: all its "
        "members): shape (shape and normalisation), norm (normalisation only), drop. Default: shape.",
    )
    mc_stat: bool = Field(True, description="MC statistical uncertainties (Barlow-Beeston lite: one per bin).")
    data: Literal["observed", "asimov"] = Field(
        "observed", description="Fit the data, or the Asimov data set (the expected yields, mu = 1)."
    )
