"""Plan stage, systematics: what each kind of variation adds to a dataset's graph.

One class per kind (`kind:` in the YAML), registered in KINDS. Each turns its spec
into plain plan pieces: factors on the nominal weight, entries of the weight vector,
bin-by-bin combinations, Vary steps and helper columns. The dataset planner
(`framework.plan.model`) only collects them, so a new kind is one new class here.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from framework.errors import ConfigError, Location, did_you_mean
from framework.config.load import LoadedConfig
from framework.config.schema.systematics import CorrectionlibSystematic, ShapeSystematic, WeightSystematic


@dataclass
class WeightEntry:
    """One entry of the systematic axis filled from the weight vector: nominal x factor."""

    name: str
    factor: str
    origin: Location


@dataclass
class CombinedEntry:
    """<name>Up/<name>Down computed after the loop, bin by bin, from member entries."""

    name: str
    method: str  # envelope | rms | hessian
    members: list[str]


@dataclass
class VaryPlan:
    name: str
    columns: list[str]
    ups: list[str]
    downs: list[str]
    origin: Location
    condition: str = ""  # C++ test of the sample; where false the columns stay nominal
    places: list[tuple[Location, Location]] = field(default_factory=list)  # of each column's up and down


@dataclass
class CorrectionPlan:
    """A correctionlib correction loaded once before the event loop, as C++ global `symbol`."""

    symbol: str
    file: str
    name: str


@dataclass
class Contribution:
    nominal_factors: list[tuple[str, Location]] = field(default_factory=list)
    entries: list[WeightEntry] = field(default_factory=list)
    combined: list[CombinedEntry] = field(default_factory=list)
    varies: list[VaryPlan] = field(default_factory=list)
    columns: list[tuple[str, str, Location]] = field(default_factory=list)
    corrections: list[CorrectionPlan] = field(default_factory=list)


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

    def contribute(self, config: LoadedConfig, name: str, spec: WeightSystematic, condition: str | None) -> Contribution:
        out = Contribution()
        if spec.from_array is not None:
            assert spec.indices is not None
            origin = config.locate("systematics", name, "from_array")
            members = [f"{name}_{i}" for i in spec.indices]
            for entry, i in zip(members, spec.indices):
                out.entries.append(
                    WeightEntry(entry, _when(condition, f'fw::at({spec.from_array}, {i}, "{name}")'), origin)
                )
            if spec.combine is not None:
                out.combined.append(CombinedEntry(name, spec.combine, members))
        else:
            for direction, factor in (("Up", spec.up), ("Down", spec.down)):
                origin = config.locate("systematics", name, direction.lower())
                out.entries.append(WeightEntry(f"{name}{direction}", _when(condition, str(factor)), origin))
        return out


class ShapeKind(Kind):
    spec_type = ShapeSystematic
    varies_columns = True

    def contribute(self, config: LoadedConfig, name: str, spec: ShapeSystematic, condition: str | None) -> Contribution:
        varied = spec.varied()
        ups = [v.up for v in varied.values()]
        downs = [v.down for v in varied.values()]
        key = ("systematics", name, "column") if spec.column is not None else ("systematics", name, "columns")
        where = ("systematics", name) if spec.column is not None else None
        places = [
            tuple(config.locate(*(where or ("systematics", name, "columns", column)), d) for d in ("up", "down"))
            for column in varied
        ]
        return Contribution(
            varies=[VaryPlan(name, list(varied), ups, downs, config.locate(*key), condition or "", places)]  # type: ignore[arg-type]
        )


def load_correction(config: LoadedConfig, name: str, spec: CorrectionlibSystematic) -> tuple[Path, Any]:
    """Open the CorrectionSet with correctionlib and check the correction and its inputs."""
    import correctionlib.schemav2  # noqa: PLC0415

    path = (config.source.file_of(("systematics", name, "file")).parent / spec.file).resolve()
    if not path.is_file():
        raise ConfigError(f"correction file {str(path)!r} does not exist", config.locate("systematics", name, "file"))
    try:
        cset = correctionlib.schemav2.CorrectionSet.model_validate_json(
            gzip.open(path).read() if path.suffix == ".gz" else path.read_text()
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
        out = Contribution(corrections=[CorrectionPlan(symbol, str(path), spec.correction)])
        out.columns.append((column, _when(condition, factor(spec.nominal)), place))
        for direction in ("up", "down"):
            out.columns.append((f"{column}_{direction}", _when(condition, factor(getattr(spec, direction))), place))
            ratio = f"fw::ratio({column}_{direction}, {column})" if spec.apply_nominal else f"{column}_{direction}"
            out.entries.append(WeightEntry(f"{name}{direction.capitalize()}", ratio, place))
        if spec.apply_nominal:
            out.nominal_factors.append((column, place))
        return out


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
