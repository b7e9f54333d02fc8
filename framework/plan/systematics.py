"""Plan stage, systematics: what each kind of variation adds to a dataset's graph.

One class per kind (`kind:` in the YAML, and for `shape` its form: expressions or a correction),
registered in KINDS. A declaration stands for one systematic, or for a many-source set of them
(`declared_systematics`: `Member`s, plain data). Each member turns into plain plan pieces: factors on
the nominal weight, entries of the weight vector, bin-by-bin combinations, Vary steps and helper
columns; a one-sided member has an up side only. The dataset planner (`framework.plan.dataset`)
only collects them, so a new kind is one new class here. Correction files are read and checked in
`framework.plan.corrections`, shared by every kind that reads one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from framework.config.expressions import subscripts
from framework.config.load import LoadedConfig
from framework.config.schema.systematics import (
    CorrectionInputs,
    CorrectionlibSystematic,
    CorrectionPair,
    ShapeSystematic,
    WeightSystematic,
)
from framework.errors import ConfigError, Location
from framework.plan.corrections import (
    CorrectionPlan,
    check_correction,
    correction_path,
    set_sources,
    with_source,
)


@dataclass(frozen=True, kw_only=True)
class WeightEntry:
    """One entry of the systematic axis filled from the weight vector: nominal x factor."""

    name: str
    factor: str
    origin: Location


@dataclass(frozen=True, kw_only=True)
class CombinedEntry:
    """<name>Up/<name>Down computed after the loop, bin by bin, from member entries."""

    name: str
    method: str  # envelope | rms | hessian
    members: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class VaryPlan:
    name: str
    columns: tuple[str, ...]
    ups: tuple[str, ...]
    downs: tuple[str, ...]
    origin: Location
    condition: str = ""  # C++ test of the sample; where false the columns stay nominal
    places: tuple[tuple[Location, Location], ...] = ()  # of each column's up and down


@dataclass(frozen=True, kw_only=True)
class Contribution:
    nominal_factors: tuple[tuple[str, Location], ...] = ()
    entries: tuple[WeightEntry, ...] = ()
    combined: tuple[CombinedEntry, ...] = ()
    varies: tuple[VaryPlan, ...] = ()
    columns: tuple[tuple[str, str, Location], ...] = ()  # helper columns: (name, expression, place)
    corrections: tuple[CorrectionPlan, ...] = ()


def _when(condition: str | None, factor: str) -> str:
    return factor if condition is None else f"(({condition}) ? double({factor}) : 1.0)"


@dataclass(frozen=True, kw_only=True)
class Member:
    """One systematic of a run: a declared one, or one source of a many-source set (`jes_<source>`)."""

    name: str  # in the systematic axis: <name>Up, <name>Down
    declared: str  # its key under `systematics:`
    kind: str
    source: str | None = None  # of a many-source set
    group: str | None = None  # --systematics GROUP selects it; a set's members are grouped under its name
    one_sided: bool = False  # only <name>Up


class Kind:
    """Base of the systematic kinds. `condition` is a C++ test of the sample, or None (all)."""

    spec_type: ClassVar[type]
    varies_columns: ClassVar[bool] = False  # whether it adds Vary steps (shape variations)

    def handles(self, spec: Any) -> bool:
        return isinstance(spec, self.spec_type)

    def members(self, config: LoadedConfig, name: str, spec: Any) -> list[Member]:
        """The systematics a declaration stands for: itself, unless it is a many-source set."""
        return [Member(name=name, declared=name, kind=spec.kind, group=spec.group, one_sided=spec.one_sided)]

    def contribute(self, config: LoadedConfig, member: Member, spec: Any, condition: str | None) -> Contribution:
        raise NotImplementedError


class WeightKind(Kind):
    spec_type = WeightSystematic

    def contribute(
        self, config: LoadedConfig, member: Member, spec: WeightSystematic, condition: str | None
    ) -> Contribution:
        name = member.declared  # never a set: the member is the declaration
        if spec.from_array is None:
            return Contribution(
                entries=tuple(
                    WeightEntry(
                        name=f"{name}{direction.capitalize()}",
                        factor=_when(condition, str(getattr(spec, direction))),
                        origin=config.locate("systematics", name, direction),
                    )
                    for direction in spec.directions()
                )
            )
        assert spec.indices is not None
        origin = config.locate("systematics", name, "from_array")
        members = tuple(f"{name}_{i}" for i in spec.indices)
        entries = tuple(
            WeightEntry(name=entry, factor=_when(condition, f'fw::at({spec.from_array}, {i}, "{name}")'), origin=origin)
            for entry, i in zip(members, spec.indices)
        )
        combined = () if spec.combine is None else (CombinedEntry(name=name, method=spec.combine, members=members),)
        return Contribution(entries=entries, combined=combined)


class ShapeKind(Kind):
    """`kind: shape` with expressions: `column` with `up` (and `down`), or `columns`."""

    spec_type = ShapeSystematic
    varies_columns = True

    def handles(self, spec: Any) -> bool:
        return isinstance(spec, ShapeSystematic) and spec.correction is None

    def contribute(
        self, config: LoadedConfig, member: Member, spec: ShapeSystematic, condition: str | None
    ) -> Contribution:
        name = member.declared  # never a set: the member is the declaration
        varied = spec.varied()
        key = ("systematics", name, "column") if spec.column is not None else ("systematics", name, "columns")
        where = ("systematics", name) if spec.column is not None else None
        paths = [where or ("systematics", name, "columns", column) for column in varied]
        vary = VaryPlan(
            name=name,
            columns=tuple(varied),
            ups=tuple(v.up for v in varied.values()),
            downs=() if spec.one_sided else tuple(str(v.down) for v in varied.values()),
            origin=config.locate(*key),
            condition=condition or "",
            places=tuple((config.locate(*path, "up"), config.locate(*path, "down")) for path in paths),
        )
        return Contribution(varies=(vary,))


class _CorrectionSets(Kind):
    """What the kinds reading a correction share: a many-source set declared in one block."""

    @staticmethod
    def where(name: str) -> tuple[str, ...]:
        """The YAML place of the correction's keys (file, inputs, key_input, ...)."""
        raise NotImplementedError

    def reference(self, spec: Any) -> CorrectionInputs:
        return spec

    def members(self, config: LoadedConfig, name: str, spec: Any) -> list[Member]:
        ref = self.reference(spec)
        if ref.sources is None:
            return super().members(config, name, spec)
        found = []
        for source in set_sources(config, self.where(name), ref):
            found.append(
                Member(
                    name=name + "_" + re.sub(r"\W", "_", source),
                    declared=name,
                    kind=spec.kind,
                    source=source,
                    group=spec.group or name,
                    one_sided=spec.one_sided,
                )
            )
        return found


class CorrectionShapeKind(_CorrectionSets):
    """`kind: shape` with `correction:`: the up and down values of a column from a correction, per object.

    uncertainty: column x (1 + value), column x (1 - value); factor: column x value(up), column x value(down)."""

    spec_type = ShapeSystematic
    varies_columns = True

    def handles(self, spec: Any) -> bool:
        return isinstance(spec, ShapeSystematic) and spec.correction is not None

    @staticmethod
    def where(name: str) -> tuple[str, ...]:
        return ("systematics", name, "correction")

    def reference(self, spec: ShapeSystematic) -> CorrectionInputs:
        assert spec.correction is not None
        return spec.correction

    def contribute(
        self, config: LoadedConfig, member: Member, spec: ShapeSystematic, condition: str | None
    ) -> Contribution:
        c = spec.correction
        assert c is not None and spec.column is not None
        where = self.where(member.declared)
        values, corrections = [], []
        for direction in spec.directions():
            if isinstance(c.correction, CorrectionPair):
                name, name_key = getattr(c.correction, direction), (*where, "correction", direction)
            else:
                name, name_key = c.correction, (*where, "correction")
            key = with_source(getattr(c, direction), member.source) if c.key_input is not None else None
            checked = check_correction(
                config,
                where,
                c,
                with_source(name, member.source),
                name_key,
                [(key, (*where, direction))] if key is not None else [],
                member.source,
            )
            sign = 0 if c.apply == "factor" else (1 if direction == "up" else -1)
            values.append(f"fw::correction_vary({spec.column}, {sign}, {checked.arguments(c, key, member.source)})")
            corrections.append(checked.plan)
        place = config.locate(*where)
        vary = VaryPlan(
            name=member.name,
            columns=(spec.column,),
            ups=(values[0],),
            downs=tuple(values[1:]),
            origin=config.locate("systematics", member.declared, "column"),
            condition=condition or "",
            places=((place, place),),
        )
        return Contribution(varies=(vary,), corrections=tuple(dict.fromkeys(corrections)))


class CorrectionlibKind(_CorrectionSets):
    """`kind: correctionlib`: a scale factor (product over objects) whose variations are weight entries."""

    spec_type = CorrectionlibSystematic

    @staticmethod
    def where(name: str) -> tuple[str, ...]:
        return ("systematics", name)

    def contribute(
        self, config: LoadedConfig, member: Member, spec: CorrectionlibSystematic, condition: str | None
    ) -> Contribution:
        where = self.where(member.declared)
        directions = ("nominal", *spec.directions())
        keys = {d: with_source(getattr(spec, d), member.source) for d in directions}
        checked = check_correction(
            config,
            where,
            spec,
            with_source(spec.correction, member.source),
            (*where, "correction"),
            [(keys[d], (*where, d)) for d in directions] if spec.key_input is not None else [],
            member.source,
        )

        def factor(key: str) -> str:
            return f"fw::correction_product({checked.arguments(spec, key, member.source)})"

        place = config.locate(*where, "inputs")
        column = f"__sf_{member.name}"
        columns = [(column, _when(condition, factor(keys["nominal"])), place)]
        entries = []
        for direction in spec.directions():
            columns.append((f"{column}_{direction}", _when(condition, factor(keys[direction])), place))
            ratio = f"fw::ratio({column}_{direction}, {column})" if spec.apply_nominal else f"{column}_{direction}"
            entries.append(WeightEntry(name=f"{member.name}{direction.capitalize()}", factor=ratio, origin=place))
        return Contribution(
            nominal_factors=((column, place),) if spec.apply_nominal else (),
            entries=tuple(entries),
            columns=tuple(columns),
            corrections=(checked.plan,),
        )


KINDS: tuple[Kind, ...] = (WeightKind(), ShapeKind(), CorrectionShapeKind(), CorrectionlibKind())


def kind_of(spec: Any) -> Kind:
    return next(k for k in KINDS if k.handles(spec))


def declared_systematics(config: LoadedConfig) -> dict[str, Member]:
    """Every systematic of the configuration by name, in the order declared, each many-source set
    expanded into its members (plain data: printable, testable, no ROOT). Reads the correction
    files of sets with `sources: all`."""

    def what(m: Member) -> str:
        return "declared on its own" if m.source is None else f"a member of set {m.declared!r}"

    found: dict[str, Member] = {}
    for name, spec in config.spec.systematics.items():
        kind = kind_of(spec)
        for member in kind.members(config, name, spec):
            if member.name in found:
                first = found[member.name]
                raise ConfigError(
                    f"systematic {member.name!r} is {what(first)} and {what(member)}",
                    config.locate(*kind.where(name), "sources")
                    if isinstance(kind, _CorrectionSets) and member.source is not None
                    else config.locate("systematics", name),
                    "rename one of them, or list the set's sources under 'sources'",
                )
            found[member.name] = member
    return found


def varies_columns(config: LoadedConfig, member: Member) -> bool:
    return kind_of(config.spec.systematics[member.declared]).varies_columns


def contribution(config: LoadedConfig, member: Member, condition: str | None) -> Contribution:
    spec = config.spec.systematics[member.declared]
    return kind_of(spec).contribute(config, member, spec, condition)


def correction_files(config: LoadedConfig) -> list[Path]:
    """The correction files the systematics read (what a watch mode watches)."""
    found = []
    for name, spec in config.spec.systematics.items():
        kind = kind_of(spec)
        if isinstance(kind, _CorrectionSets):
            found.append(correction_path(config, kind.where(name), kind.reference(spec)))
    return found


def literal_subscripts(config: LoadedConfig, columns: set[str]) -> list[tuple[str, str, int, Location]]:
    """Weight-variation factors that index an input array with a number (`PSWeight[2]`): every
    event evaluates them, so the first event of the input already says whether they fit.
    (systematic, array, index, place)."""
    found = []
    for name, syst in config.spec.systematics.items():
        for direction in ("up", "down"):
            expression = getattr(syst, direction, None) if isinstance(syst, WeightSystematic) else None
            for _, _, array, index in subscripts(expression or "", columns):
                if index.strip().isdigit():
                    found.append((name, array, int(index), config.locate("systematics", name, direction)))
    return found


def check_array_indices(
    config: LoadedConfig, names: Sequence[str], sizes: Mapping[str, int], columns: set[str], label: str
) -> None:
    """Indices of weight arrays against the arrays' lengths in the first event of the input."""
    checks = []
    for name in names:
        syst = config.spec.systematics[name]
        array = getattr(syst, "from_array", None)
        indices = getattr(syst, "indices", None) or []
        checks += [(array, index, config.locate("systematics", name, "indices", i)) for i, index in enumerate(indices)]
    checks += [
        (array, index, place) for name, array, index, place in literal_subscripts(config, columns) if name in names
    ]
    for array, index, place in checks:
        if array is not None and array in sizes and index >= sizes[array]:
            raise ConfigError(
                f"index {index} is out of range: {array} has {sizes[array]} entries in the first event{label}",
                place,
                f"valid indices are 0 to {sizes[array] - 1}"
                if sizes[array]
                else f"{array} is empty in the first event",
            )
