"""Plan stage, systematics: what each kind of variation adds to a dataset's graph.

One class per kind (`kind:` in the YAML), registered in KINDS. Each turns its spec
into plain plan pieces: factors on the nominal weight, entries of the weight vector,
bin-by-bin combinations, Vary steps and helper columns. The dataset planner
(`framework.plan.dataset`) only collects them, so a new kind is one new class here.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from framework.config.expressions import subscripts
from framework.config.load import LoadedConfig
from framework.config.schema.systematics import CorrectionlibSystematic, ShapeSystematic, WeightSystematic
from framework.errors import ConfigError, Location, did_you_mean


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
class CorrectionPlan:
    """A correctionlib correction loaded once before the event loop, as C++ global `symbol`."""

    symbol: str
    file: str
    name: str


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


class Kind:
    """Base of the systematic kinds. `condition` is a C++ test of the sample, or None (all)."""

    spec_type: ClassVar[type]
    varies_columns: ClassVar[bool] = False  # whether it adds Vary steps (shape variations)

    def contribute(self, config: LoadedConfig, name: str, spec: Any, condition: str | None) -> Contribution:
        raise NotImplementedError


class WeightKind(Kind):
    spec_type = WeightSystematic

    def contribute(
        self, config: LoadedConfig, name: str, spec: WeightSystematic, condition: str | None
    ) -> Contribution:
        if spec.from_array is None:
            return Contribution(
                entries=tuple(
                    WeightEntry(
                        name=f"{name}{direction}",
                        factor=_when(condition, str(factor)),
                        origin=config.locate("systematics", name, direction.lower()),
                    )
                    for direction, factor in (("Up", spec.up), ("Down", spec.down))
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
    spec_type = ShapeSystematic
    varies_columns = True

    def contribute(self, config: LoadedConfig, name: str, spec: ShapeSystematic, condition: str | None) -> Contribution:
        varied = spec.varied()
        ups = tuple(v.up for v in varied.values())
        downs = tuple(v.down for v in varied.values())
        key = ("systematics", name, "column") if spec.column is not None else ("systematics", name, "columns")
        where = ("systematics", name) if spec.column is not None else None
        places = tuple(
            (config.locate(*path, "up"), config.locate(*path, "down"))
            for path in (where or ("systematics", name, "columns", column) for column in varied)
        )
        vary = VaryPlan(
            name=name,
            columns=tuple(varied),
            ups=ups,
            downs=downs,
            origin=config.locate(*key),
            condition=condition or "",
            places=places,
        )
        return Contribution(varies=(vary,))


def load_correction(config: LoadedConfig, name: str, spec: CorrectionlibSystematic) -> tuple[Path, Any]:
    """Open the CorrectionSet with correctionlib and check the correction and its inputs."""
    import correctionlib.schemav2  # here: only correctionlib systematics need it

    path = (config.source.file_of(("systematics", name, "file")).parent / spec.file).resolve()
    if not path.is_file():
        raise ConfigError(f"correction file {str(path)!r} does not exist", config.locate("systematics", name, "file"))
    try:
        cset = correctionlib.schemav2.CorrectionSet.model_validate_json(
            gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_text()
        )
    except ValueError as err:
        raise ConfigError(
            f"{path} is not a valid correctionlib CorrectionSet: {str(err).splitlines()[0]}",
            config.locate("systematics", name, "file"),
        ) from None
    corrections = {c.name: c for c in cset.corrections}
    if spec.correction not in corrections:
        raise ConfigError(
            f"no correction {spec.correction!r} in {path.name}",
            config.locate("systematics", name, "correction"),
            did_you_mean(spec.correction, corrections) or f"corrections: {', '.join(corrections)}",
        )
    return path, corrections[spec.correction]


class CorrectionlibKind(Kind):
    spec_type = CorrectionlibSystematic

    def contribute(
        self, config: LoadedConfig, name: str, spec: CorrectionlibSystematic, condition: str | None
    ) -> Contribution:
        path, correction = load_correction(config, name, spec)
        names = [v.name for v in correction.inputs]
        place = config.locate("systematics", name, "inputs")
        for given in spec.inputs:
            if given not in names:
                raise ConfigError(
                    f"correction {spec.correction!r} has no input {given!r}",
                    config.locate("systematics", name, "inputs", given),
                    did_you_mean(given, names) or f"its inputs: {', '.join(names)}",
                )
        if spec.key_input is not None and spec.key_input not in names:
            raise ConfigError(
                f"correction {spec.correction!r} has no input {spec.key_input!r}",
                config.locate("systematics", name, "key_input"),
                did_you_mean(spec.key_input, names) or f"its inputs: {', '.join(names)}",
            )
        missing = [n for n in names if n not in spec.inputs and n != spec.key_input]
        if missing:
            raise ConfigError(
                f"correction {spec.correction!r} needs inputs {', '.join(map(repr, missing))}",
                place,
                "give each under 'inputs' as an expression, or name the variation input in 'key_input'",
            )
        keys = _category_keys(correction, spec.key_input)
        for key_name in ("nominal", "up", "down"):
            key = getattr(spec, key_name)
            if keys is not None and key not in keys:
                raise ConfigError(
                    f"correction {spec.correction!r} has no key {key!r} for input {spec.key_input!r}",
                    config.locate("systematics", name, key_name),
                    did_you_mean(key, keys) or f"keys: {', '.join(keys)}",
                )
        digest = hashlib.sha256(f"{path}\0{spec.correction}".encode()).hexdigest()[:12]
        symbol = f"fw_correction_{digest}"
        key_pos = names.index(spec.key_input) if spec.key_input is not None else -1
        args = ", ".join(spec.inputs[n] for n in names if n != spec.key_input)

        def factor(key: str) -> str:
            return f'fw::correction_product(*{symbol}, {key_pos}, "{key}", {args})'

        column = f"__sf_{name}"
        columns = [(column, _when(condition, factor(spec.nominal)), place)]
        entries = []
        for direction in ("up", "down"):
            columns.append((f"{column}_{direction}", _when(condition, factor(getattr(spec, direction))), place))
            ratio = f"fw::ratio({column}_{direction}, {column})" if spec.apply_nominal else f"{column}_{direction}"
            entries.append(WeightEntry(name=f"{name}{direction.capitalize()}", factor=ratio, origin=place))
        return Contribution(
            nominal_factors=((column, place),) if spec.apply_nominal else (),
            entries=tuple(entries),
            columns=tuple(columns),
            corrections=(CorrectionPlan(symbol=symbol, file=str(path), name=spec.correction),),
        )


def _category_keys(correction: Any, key_input: str | None) -> list[str] | None:
    """The keys of a correction whose first node is a category on `key_input`, else None."""
    data = correction.data
    if key_input is None or getattr(data, "nodetype", None) != "category" or data.input != key_input:
        return None
    return [str(item.key) for item in data.content]


KINDS: dict[type, Kind] = {k.spec_type: k for k in (WeightKind(), ShapeKind(), CorrectionlibKind())}


def varies_columns(config: LoadedConfig, name: str) -> bool:
    return KINDS[type(config.spec.systematics[name])].varies_columns


def contribution(config: LoadedConfig, name: str, condition: str | None) -> Contribution:
    spec = config.spec.systematics[name]
    return KINDS[type(spec)].contribute(config, name, spec, condition)


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
