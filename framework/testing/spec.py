"""What the built-in event generator makes: the `generate:` block of a sample."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictInt, model_validator

from framework.config.schema.base import Strict


class GeneratorSpec(Strict):
    """Make this sample's files with the built-in event generator when they are missing."""

    process: Literal[
        "zmumu",
        "ttbar",
        "adl",
        "wjets",
        "single_top",
        "tnp_mc",
        "tnp_data",
        "data",
        "h4l",
        "zz4l",
        "zjets4l",
        "data4l",
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
        "ttree",
        description="Write a TTree (NanoAOD's format) or an RNTuple (ROOT's columnar format, read faster); "
        "the events are the same.",
    )

    @model_validator(mode="after")
    def _events_or_mixture(self) -> GeneratorSpec:
        mixes = {"data": {"zmumu", "ttbar"}, "data4l": {"h4l", "zz4l", "zjets4l"}}
        if self.process in mixes:
            if not self.mixture or set(self.mixture) - mixes[self.process]:
                raise ValueError(
                    f"process {self.process!r} needs 'mixture' with event counts of "
                    f"{' and/or '.join(sorted(mixes[self.process]))}"
                )
        elif self.events <= 0:
            raise ValueError(f"process {self.process!r} needs 'events' > 0")
        if self.format == "rntuple" and self.process in ("h4l", "zz4l", "zjets4l", "data4l", "cosmic_dt"):
            raise ValueError(f"process {self.process!r} is written as a TTree only (format: ttree)")
        return self
