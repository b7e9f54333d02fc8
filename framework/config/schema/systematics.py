"""Systematic variations: weight factors, shape variations of columns, correctionlib scale factors."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StrictInt, field_validator, model_validator

from framework.config.schema.base import Expression, Strict


class Applicability(Strict):
    """Which simulated samples a systematic applies to (data never). Empty lists mean all."""

    samples: list[str] = Field(default_factory=list, description="Sample names or glob patterns.")
    eras: list[str] = Field(default_factory=list, description="Eras.")

    @field_validator("eras", mode="before")
    @classmethod
    def _eras_as_text(cls, v: Any) -> Any:
        return (
            [str(e) if isinstance(e, int) and not isinstance(e, bool) else e for e in v] if isinstance(v, list) else v
        )


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


Systematic = Annotated[WeightSystematic | ShapeSystematic | CorrectionlibSystematic, Field(discriminator="kind")]
