"""Plan stage, corrections: correctionlib files read once, their corrections found and checked
against what a systematic gives them, and the C++ call that evaluates one.

Shared by every systematic that reads a correction (the `correctionlib` weight kind and the
`correction:` form of `shape`): the file, the name (a correction or a compound correction), the
inputs by name and type, the keys of the string inputs, and the sources of a many-source set are
checked here, each error at its YAML key. No ROOT: correctionlib's pydantic schema reads the file.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framework.config.load import LoadedConfig
from framework.config.schema.systematics import SOURCE, CorrectionInputs
from framework.errors import ConfigError, did_you_mean

YamlPath = tuple[str | int, ...]


@dataclass(frozen=True, kw_only=True)
class CorrectionPlan:
    """A correctionlib correction loaded once before the event loop, as C++ global `symbol`."""

    symbol: str
    file: str
    name: str
    compound: bool = False  # a CompoundCorrection (`cset.compound[name]`)


@dataclass(frozen=True)
class CorrectionFacts:
    """What the plan needs of one correction of a set: its inputs and the keys of its string inputs."""

    name: str
    compound: bool
    inputs: tuple[tuple[str, str], ...]  # (name, type: string | int | real), in the correction's order
    keys: Mapping[str, tuple[str, ...] | None]  # string input -> the keys its categories take (None: any)

    def input_names(self) -> list[str]:
        return [n for n, _ in self.inputs]


@dataclass(frozen=True)
class CorrectionFile:
    path: Path
    corrections: Mapping[str, CorrectionFacts]  # corrections, then compound corrections of other names


def _nodes(node: Any) -> Iterator[dict[str, Any]]:
    """Every content node below `node` (JSON data of a correction), itself first."""
    if isinstance(node, dict):
        if "nodetype" in node:
            yield node
        for value in node.values():
            yield from _nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _nodes(value)


def _keys(data: Any, name: str) -> tuple[str, ...] | None:
    """The keys the categories on input `name` take; None when any key may do (a default) or none says."""
    keys: list[str] = []
    for node in _nodes(data):
        if node.get("nodetype") == "category" and node.get("input") == name:
            if node.get("default") is not None:
                return None
            keys += [str(item["key"]) for item in node.get("content", [])]
    return tuple(dict.fromkeys(keys)) or None


@functools.lru_cache(maxsize=32)
def _read(path: Path, stamp: tuple[int, int]) -> CorrectionFile:
    """The facts of a CorrectionSet file; cached by path, size and modification time. ValueError
    (pydantic's ValidationError, or JSON's) for a file that is not a CorrectionSet."""
    import correctionlib.schemav2  # here: only systematics with corrections need it

    text = gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else path.read_text()
    data = json.loads(text)
    correctionlib.schemav2.CorrectionSet.model_validate(data)
    found: dict[str, CorrectionFacts] = {}
    for c in data.get("corrections", []):
        strings = [v["name"] for v in c["inputs"] if v["type"] == "string"]
        found[c["name"]] = CorrectionFacts(
            c["name"],
            False,
            tuple((v["name"], v["type"]) for v in c["inputs"]),
            {s: _keys(c["data"], s) for s in strings},
        )
    for c in data.get("compound_corrections") or []:
        if c["name"] in found:
            continue
        stack = [found[n] for n in c["stack"] if n in found]
        keys: dict[str, tuple[str, ...] | None] = {}
        for v in c["inputs"]:
            if v["type"] != "string":
                continue
            each = [s.keys.get(v["name"]) for s in stack if v["name"] in s.keys]
            keys[v["name"]] = (
                None if not each or any(k is None for k in each) else tuple(dict.fromkeys(k for ks in each for k in ks))  # type: ignore[union-attr]
            )
        found[c["name"]] = CorrectionFacts(c["name"], True, tuple((v["name"], v["type"]) for v in c["inputs"]), keys)
    return CorrectionFile(path, found)


def correction_path(config: LoadedConfig, where: YamlPath, spec: CorrectionInputs) -> Path:
    """The correction file, relative to the YAML file that names it."""
    return (config.source.file_of((*where, "file")).parent / spec.file).resolve()


def correction_file(config: LoadedConfig, where: YamlPath, spec: CorrectionInputs) -> CorrectionFile:
    """The CorrectionSet named at `where` (the systematic, or its `correction:` block), read once."""
    path = correction_path(config, where, spec)
    place = config.locate(*where, "file")
    if not path.is_file():
        raise ConfigError(f"correction file {str(path)!r} does not exist", place)
    stat = path.stat()
    try:
        return _read(path, (stat.st_size, stat.st_mtime_ns))
    except (ValueError, KeyError, TypeError, OSError) as err:
        raise ConfigError(
            f"{path} is not a valid correctionlib CorrectionSet: {(str(err).splitlines() or [repr(err)])[0]}", place
        ) from None


@dataclass(frozen=True)
class CheckedCorrection:
    """A correction found in its file, every input accounted for: how an expression calls it."""

    plan: CorrectionPlan
    facts: CorrectionFacts

    def arguments(self, spec: CorrectionInputs, key: str | None, source: str | None) -> str:
        """C++ arguments of `fw::correction_*` (corrections.hxx): the correction, its input types ('s', 'i',
        'r'), then each input's value in the correction's order (the key, the source, or the expression)."""
        values = []
        for name, _ in self.facts.inputs:
            if name == spec.key_input:
                values.append(json.dumps(key))
            elif name == spec.source_input:
                values.append(json.dumps(source))
            else:
                values.append(spec.inputs[name])
        types = "".join(kind[0] for _, kind in self.facts.inputs)
        return ", ".join([f"*{self.plan.symbol}", json.dumps(types), *values])


def with_source(text: str, source: str | None) -> str:
    return text.replace(SOURCE, source) if source is not None else text


def check_correction(
    config: LoadedConfig,
    where: YamlPath,
    spec: CorrectionInputs,
    name: str,
    name_key: YamlPath,
    keys: Sequence[tuple[str, YamlPath]],
    source: str | None,
) -> CheckedCorrection:
    """The correction `name` of the file at `where`, its inputs matched by name and type, the `keys`
    (key, YAML key) of key_input and the source of source_input among those its categories take."""
    file = correction_file(config, where, spec)
    of_source = f" (source {source!r})" if source is not None else ""
    if name not in file.corrections:
        raise ConfigError(
            f"no correction {name!r} in {file.path.name}{of_source}",
            config.locate(*name_key),
            did_you_mean(name, file.corrections) or f"corrections: {', '.join(file.corrections)}",
        )
    facts = file.corrections[name]
    names = facts.input_names()
    types = dict(facts.inputs)
    for given in spec.inputs:
        if given not in names:
            raise ConfigError(
                f"correction {name!r} has no input {given!r}",
                config.locate(*where, "inputs", given),
                did_you_mean(given, names) or f"its inputs: {', '.join(names)}",
            )
        if types[given] == "string":
            raise ConfigError(
                f"input {given!r} of correction {name!r} is a string, not a value of the events",
                config.locate(*where, "inputs", given),
                "name it in 'key_input' (the input choosing the variation) or 'source_input' (a set's source)",
            )
    for role in ("key_input", "source_input"):
        chosen = getattr(spec, role)
        if chosen is None:
            continue
        if chosen not in names:
            raise ConfigError(
                f"correction {name!r} has no input {chosen!r}",
                config.locate(*where, role),
                did_you_mean(chosen, names) or f"its inputs: {', '.join(names)}",
            )
        if types[chosen] != "string":
            raise ConfigError(
                f"input {chosen!r} of correction {name!r} is {types[chosen]}, and '{role}' names a string input",
                config.locate(*where, role),
                f"give {chosen!r} under 'inputs' as an expression",
            )
    missing = [n for n in names if n not in spec.inputs and n not in (spec.key_input, spec.source_input)]
    if missing:
        raise ConfigError(
            f"correction {name!r} needs inputs {', '.join(map(repr, missing))}",
            config.locate(*where, "inputs"),
            "give each under 'inputs' as an expression, or name the variation input in 'key_input'",
        )
    if spec.key_input is not None and (known := facts.keys.get(spec.key_input)) is not None:
        for key, place in keys:
            if key not in known:
                raise ConfigError(
                    f"correction {name!r} has no key {key!r} for input {spec.key_input!r}{of_source}",
                    config.locate(*place),
                    did_you_mean(key, known) or f"keys: {', '.join(known)}",
                )
    known = facts.keys.get(spec.source_input) if spec.source_input is not None else None
    if known is not None and source not in known:
        raise ConfigError(
            f"correction {name!r} has no key {source!r} for input {spec.source_input!r}",
            config.locate(*where, "sources"),
            did_you_mean(str(source), known) or f"keys: {', '.join(known)}",
        )
    text = f"{file.path}\0{name}" + ("\0compound" if facts.compound else "")
    symbol = f"fw_correction_{hashlib.sha256(text.encode()).hexdigest()[:12]}"
    plan = CorrectionPlan(symbol=symbol, file=str(file.path), name=name, compound=facts.compound)
    return CheckedCorrection(plan, facts)


def _pattern(text: str) -> re.Pattern[str]:
    before, after = text.split(SOURCE, 1)
    return re.compile(re.escape(before) + "(.+)" + re.escape(after).replace(re.escape(SOURCE), "(?:.+)"))


def set_sources(config: LoadedConfig, where: YamlPath, spec: CorrectionInputs) -> list[str]:
    """The sources of a many-source set: as listed, or (`sources: all`) read from the file: the
    corrections whose names fit the pattern with '{source}', the keys of `source_input`, or the keys of
    `key_input` that fit the `up` key with '{source}'."""
    if isinstance(spec.sources, list):
        return list(spec.sources)
    file = correction_file(config, where, spec)
    name = spec.names()[0]
    place = config.locate(*where, "sources")
    found: list[str] = []
    if SOURCE in name:
        pattern = _pattern(name)
        found = [m.group(1) for n in file.corrections if (m := pattern.fullmatch(n))]
        what = f"no correction of {file.path.name} is named like {name!r}"
    else:
        facts = file.corrections.get(name)
        if facts is None:
            raise ConfigError(
                f"no correction {name!r} in {file.path.name}",
                config.locate(*where, "correction"),
                did_you_mean(name, file.corrections) or f"corrections: {', '.join(file.corrections)}",
            )
        string_input = spec.source_input if spec.source_input is not None else spec.key_input
        keys = facts.keys.get(string_input) if string_input is not None else None
        if keys is None:
            raise ConfigError(
                f"cannot read the sources of correction {name!r} from input {string_input!r}: "
                "no category of it lists its keys",
                place,
                "list the sources under 'sources'",
            )
        if spec.source_input is not None:
            found, what = list(keys), f"input {string_input!r} of correction {name!r} has no keys"
        else:
            pattern = _pattern(spec.up)
            found = [m.group(1) for k in keys if (m := pattern.fullmatch(k))]
            what = f"no key of input {string_input!r} of correction {name!r} is like {spec.up!r}"
    if not found:
        raise ConfigError(f"'sources: all' finds nothing: {what}", place, "list the sources under 'sources'")
    return list(dict.fromkeys(found))
