"""Systematic variations: weight factors, shape variations of columns (from expressions or from a
correctionlib correction), correctionlib scale factors; one-sided variations; many-source sets."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StrictInt, field_validator, model_validator

from framework.config.schema.base import Expression, Strict

SOURCE = "{source}"  # where each source of a many-source set goes in names and keys


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
    one_sided: bool = Field(
        False,
        description="Only an up variation (e.g. a resolution): stored as <name>Up alone and mirrored about the "
        "nominal (2 nominal - up) where a down side is needed (plot bands, tables, exports, statistical model). "
        "Giving 'up' without 'down' says the same.",
    )

    def directions(self) -> tuple[str, ...]:
        """("up",) for a one-sided systematic, else ("up", "down")."""
        return ("up",) if self.one_sided else ("up", "down")


def _one_or_two_sided(model: SystematicBase, down: object) -> None:
    """`one_sided: true` and a `down` contradict each other; `up` alone is one-sided."""
    if model.one_sided and down is not None:
        raise ValueError("a one-sided systematic has no 'down': remove 'down' or 'one_sided'")


class WeightSystematic(SystematicBase):
    """A variation of the event weight: filled in the same pass as the nominal."""

    kind: Literal["weight"]
    up: Expression | None = Field(None, description="Factor multiplying the nominal weight for the up variation.")
    down: Expression | None = Field(
        None, description="Factor multiplying the nominal weight for the down variation (none: one-sided)."
    )
    from_array: str | None = Field(None, description="Array column of weight factors, e.g. LHEScaleWeight.")
    indices: list[StrictInt] | None = Field(None, description="Entries of from_array to use, one variation each.")
    combine: Literal["envelope", "rms", "hessian"] | None = Field(
        None,
        description="Also record <name>Up/Down combining the array entries bin by bin: envelope (max/min), "
        "rms (nominal +- RMS of the deviations, MC replicas) or hessian (nominal +- quadratic sum).",
    )

    @model_validator(mode="before")
    @classmethod
    def _up_alone_is_one_sided(cls, data: Any) -> Any:
        return _mark_one_sided(data, lambda d: "up" in d and "down" not in d)

    @model_validator(mode="after")
    def _one_form(self) -> WeightSystematic:
        pair = self.up is not None or self.down is not None
        array = self.from_array is not None or self.indices is not None
        if pair == array:
            raise ValueError("give either 'up' (and 'down'), or 'from_array' with 'indices'")
        if pair and self.up is None:
            raise ValueError("give 'up' (with 'down', or alone for a one-sided variation)")
        _one_or_two_sided(self, self.down)
        if array and (self.from_array is None or not self.indices):
            raise ValueError("give both 'from_array' and a non-empty 'indices' list")
        if array and self.one_sided:
            raise ValueError("'from_array' variations are not one-sided: each index is its own entry")
        if self.indices is not None and any(i < 0 for i in self.indices):
            raise ValueError("'indices' must be >= 0")
        if self.combine is not None and not array:
            raise ValueError("'combine' applies to 'from_array' variations")
        return self


def _mark_one_sided(data: Any, up_alone: Any) -> Any:
    """The written form `up:` without `down:` as `one_sided: true` (a copy; the YAML's data is not changed)."""
    if isinstance(data, dict) and "one_sided" not in data and up_alone(data):
        return {**data, "one_sided": True}
    return data


class VariedColumn(Strict):
    up: Expression
    down: Expression | None = Field(None, description="None for a one-sided variation.")


class CorrectionInputs(Strict):
    """Where a correctionlib correction is and what it is evaluated on: shared by `kind: correctionlib`
    (at the systematic's level) and the `correction:` of `kind: shape`.

    Every input of the correction is named once: under `inputs` as an expression (per object or per
    event), or as `key_input` (the string input choosing the variation by its key) or `source_input`
    (the string input taking the source of a many-source set). Inputs are converted to the type the
    correction declares (int or real)."""

    file: str = Field(description="CorrectionSet JSON (optionally .gz), relative to this YAML file.")
    inputs: dict[str, Expression] = Field(description="Correction input name -> expression.")
    key_input: str | None = Field(None, description="The string input that selects the variation by its key.")
    up: str = Field("up", description="Key of the up variation (for key_input).")
    down: str = Field("down", description="Key of the down variation (for key_input).")
    sources: list[str] | Literal["all"] | None = Field(
        None,
        description="A many-source set: one systematic <name>_<source> per source, grouped under <name> (or "
        "'group'). Each source goes where '{source}' is written (in the correction's name or the keys) or into "
        "'source_input'. 'all': every source the file offers (corrections matching the name, or the keys of "
        "source_input or of key_input matching 'up').",
    )
    source_input: str | None = Field(None, description="The string input that takes the source of a set.")

    def names(self) -> tuple[str, ...]:
        """The names of the corrections used (one, or up and down)."""
        raise NotImplementedError

    def _check_sources(self) -> None:
        written = [text for text in (*self.names(), self.up, self.down) if SOURCE in text]
        if self.sources is None and (written or self.source_input is not None):
            raise ValueError("'{source}' and 'source_input' need 'sources' (a list, or 'all')")
        if self.sources is not None and not written and self.source_input is None:
            raise ValueError("'sources' needs a place for each source: '{source}' in the name or keys, or source_input")
        if isinstance(self.sources, list) and (not self.sources or len(set(self.sources)) < len(self.sources)):
            raise ValueError("'sources' must list distinct sources")
        if self.source_input is not None and self.source_input == self.key_input:
            raise ValueError("'source_input' and 'key_input' must be different inputs")


class CorrectionPair(Strict):
    up: str = Field(description="Correction giving the up value.")
    down: str | None = Field(None, description="Correction giving the down value (none: one-sided).")


class ShapeCorrection(CorrectionInputs):
    """A shape variation computed from a correction, per object of the varied column (or per event).

    apply: uncertainty -> up = column x (1 + value), down = column x (1 - value) (e.g. JES sources);
    apply: factor -> up = column x value(up), down = column x value(down) (e.g. a momentum scale, JER
    smearing factors): the up and down values come from `key_input`'s keys or from two corrections."""

    correction: str | CorrectionPair = Field(
        description="Name of the correction (or compound correction) in the set, or {up: NAME, down: NAME}."
    )
    apply: Literal["uncertainty", "factor"] = Field(
        "uncertainty",
        description="uncertainty: column x (1 +- value); factor: column x value (the up and down values).",
    )

    def names(self) -> tuple[str, ...]:
        if isinstance(self.correction, CorrectionPair):
            return tuple(n for n in (self.correction.up, self.correction.down) if n is not None)
        return (self.correction,)

    @model_validator(mode="after")
    def _valid(self) -> ShapeCorrection:
        self._check_sources()
        return self


class ShapeSystematic(SystematicBase):
    """A variation that replaces columns (through RDataFrame's Vary): events can move across cuts and bins.

    One column from expressions (`column`, `up`, `down`), several varied together (`columns`), or one
    column from a correctionlib correction (`column`, `correction`).
    """

    kind: Literal["shape"]
    column: str | None = Field(None, description="The column replaced, e.g. Jet_pt.")
    up: Expression | None = None
    down: Expression | None = Field(None, description="None for a one-sided variation.")
    columns: dict[str, VariedColumn] | None = Field(
        None, description="Several columns varied together, e.g. {Jet_pt: {up, down}, Jet_mass: {up, down}}."
    )
    correction: ShapeCorrection | None = Field(
        None, description="The up and down values of `column` from a correctionlib correction, per object."
    )

    @model_validator(mode="before")
    @classmethod
    def _up_alone_is_one_sided(cls, data: Any) -> Any:
        def up_alone(d: dict[str, Any]) -> bool:
            if "up" in d:
                return "down" not in d
            columns = d.get("columns")
            return (
                isinstance(columns, dict)
                and bool(columns)
                and all(isinstance(c, dict) and "up" in c and "down" not in c for c in columns.values())
            )

        return _mark_one_sided(data, up_alone)

    @model_validator(mode="after")
    def _one_form(self) -> ShapeSystematic:
        single = self.up is not None or self.down is not None
        forms = [single, self.columns is not None, self.correction is not None]
        if sum(forms) != 1:
            raise ValueError("give either 'column' with 'up' (and 'down'), or 'columns', or 'column' with 'correction'")
        if single and (self.column is None or self.up is None):
            raise ValueError("give 'column' and 'up' (with 'down', or alone for a one-sided variation)")
        if self.correction is not None and self.column is None:
            raise ValueError("give the 'column' the correction varies")
        if self.columns is not None:
            if not self.columns:
                raise ValueError("'columns' is empty")
            if len({c.down is None for c in self.columns.values()}) > 1:
                raise ValueError("give 'down' for every column of 'columns', or for none (one-sided)")
            _one_or_two_sided(self, next(iter(self.columns.values())).down)
        _one_or_two_sided(self, self.down)
        c = self.correction
        if c is not None and isinstance(c.correction, CorrectionPair):
            _one_or_two_sided(self, c.correction.down)
            if not self.one_sided and c.correction.down is None:
                raise ValueError("give the 'down' correction, or 'one_sided: true'")
        elif c is not None and c.apply == "factor" and c.key_input is None and not self.one_sided:
            raise ValueError(
                "apply: factor with one correction and no 'key_input' gives the same up and down: name the input "
                "choosing them in 'key_input', give 'correction: {up: NAME, down: NAME}', or 'one_sided: true'"
            )
        return self

    def varied(self) -> dict[str, VariedColumn]:
        """The expression forms: column -> its up (and down) expression."""
        if self.columns is not None:
            return dict(self.columns)
        assert self.column is not None and self.up is not None
        return {self.column: VariedColumn(up=self.up, down=self.down)}


class CorrectionlibSystematic(SystematicBase, CorrectionInputs):
    """A scale factor from a correctionlib CorrectionSet, with its up/down variations as weight entries.

    Inputs given as per-object expressions (e.g. GoodMuon_pt) multiply the factors of all objects.
    """

    kind: Literal["correctionlib"]
    correction: str = Field(description="Name of the correction (or compound correction) in the set.")
    nominal: str = Field("nominal", description="Key of the nominal factor.")
    apply_nominal: bool = Field(True, description="Multiply the nominal event weight by the nominal factor.")

    def names(self) -> tuple[str, ...]:
        return (self.correction,)

    @model_validator(mode="after")
    def _valid(self) -> CorrectionlibSystematic:
        self._check_sources()
        return self


Systematic = Annotated[WeightSystematic | ShapeSystematic | CorrectionlibSystematic, Field(discriminator="kind")]
