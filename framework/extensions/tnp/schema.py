"""The `tnp:` section: tag-and-probe efficiencies and the fits that measure them."""

from __future__ import annotations

import itertools
from typing import Literal

from pydantic import Field, StrictInt, field_validator

from framework.config.schema.base import Expression, Name, Strict


class TnpBinning(Strict):
    """A binning variable of the probe, e.g. {expr: abs(Muon_eta), edges: [0, 0.9, 1.2, 2.1, 2.4]}."""

    expr: Expression = Field(description="Per-muon expression over the collection's columns.")
    edges: list[float] = Field(min_length=2)
    label: str | None = None

    @field_validator("edges")
    @classmethod
    def _increasing(cls, v: list[float]) -> list[float]:
        if any(b <= a for a, b in itertools.pairwise(v)):
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
