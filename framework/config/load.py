"""Load stage: YAML files -> validated `AnalysisSpec`, with every key's source line.

Two passes: structure (pydantic, `framework.config.schema`), then the meaning that needs
no input file (`framework.config.checks`); then each extension the config uses (a top-level
key, `framework.extensions`) expands it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic
from pydantic_core import ErrorDetails

from framework import extensions
from framework.config.checks import check_meaning, lumi_of, split_names
from framework.config.schema.analysis import AnalysisSpec
from framework.config.schema.base import Strict
from framework.config.yamlsource import SourceMap, YamlPath, read_config_tree
from framework.errors import ConfigError, Location, did_you_mean

# lumi_of and split_names: later stages import them from here
__all__ = ["LoadedConfig", "load_config", "lumi_of", "split_names", "validate_structure"]


@dataclass(frozen=True)
class LoadedConfig:
    """A validated analysis and where each of its keys was written."""

    path: Path
    spec: AnalysisSpec
    source: SourceMap

    @property
    def folder(self) -> Path:
        return self.path.parent

    def locate(self, *path: str | int) -> Location:
        return self.source.locate(tuple(path))

    def config_hash(self) -> str:
        """Hash of every YAML file that makes up the analysis (main file first)."""
        digest = hashlib.sha256()
        for file in self.source.files:
            digest.update(file.read_bytes())
        return digest.hexdigest()


def _models() -> list[type[Strict]]:
    found: list[type[Strict]] = []
    todo = list(Strict.__subclasses__())
    while todo:
        model = todo.pop()
        found.append(model)
        todo.extend(model.__subclasses__())
    return found


def _field_names(model: type[Strict]) -> set[str]:
    return {f.alias or name for name, f in model.model_fields.items()}


def _valid_keys_beside(siblings: set[str]) -> set[str]:
    """Keys of the config blocks that best fit the keys written beside an unknown one."""
    best: set[str] = set()
    best_score = -1
    for model in _models():
        names = _field_names(model)
        score = len(siblings & names)
        if score > best_score:
            best, best_score = set(names), score
        elif score == best_score:
            best |= names
    return best


def _yaml_path(data: Any, loc: tuple[str | int, ...], missing: bool = False) -> tuple[YamlPath, Any]:
    """Follow pydantic's error location through the data, skipping union-member tags.

    With `missing`, the last element names a key that is absent: it is kept.
    """
    path: list[str | int] = []
    node = data
    for part in loc:
        # two branches (not one `or`), so that mypy knows `part` is an int where `node` is a list
        if isinstance(node, dict) and part in node:  # noqa: SIM114
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            continue
        path.append(part)
    if missing and loc and (not path or path[-1] != loc[-1]):
        path.append(loc[-1])
        node = None
    return tuple(path), node


def _message(error: ErrorDetails, data: Any, source: SourceMap) -> tuple[Location, str]:
    kind = error["type"]
    path, _ = _yaml_path(data, tuple(error["loc"]), missing=kind == "missing")
    if kind == "extra_forbidden":
        key = str(path[-1])
        parent_path, parent = _yaml_path(data, tuple(path[:-1]))
        siblings = set(parent) - {key} if isinstance(parent, dict) else set()
        hint = did_you_mean(key, _valid_keys_beside(siblings)) if siblings or parent_path else ""
        valid = sorted(_valid_keys_beside(siblings))
        text = f"unknown key {key!r}" + (f"; {hint}" if hint else "") + f" (valid keys here: {', '.join(valid)})"
        return source.locate(path), text
    if kind == "missing":
        return source.locate(path), f"missing required key {path[-1]!r}"
    msg = str(error["msg"]).removeprefix("Value error, ")
    if "input" in error and kind.endswith("_type") or kind.endswith("_parsing"):
        msg += f" (found {error.get('input')!r})"
    return source.locate(path), msg


def _relevant(errors: list[ErrorDetails]) -> list[ErrorDetails]:
    """Drop 'wrong type' errors of union members when a deeper error explains the problem."""
    kept = []
    for e in errors:
        loc = tuple(e["loc"])
        # a union member's "wrong type" is noise beside another member's real reason (deeper, or
        # at the same depth but not about the type)
        shadowed = e["type"].endswith("_type") and any(
            tuple(o["loc"])[: len(loc) - 1] == loc[:-1]
            and (len(o["loc"]) > len(loc) or not o["type"].endswith("_type"))
            for o in errors
            if o is not e
        )
        if not shadowed:
            kept.append(e)
    return kept or errors


def validate_structure(data: dict[str, Any], source: SourceMap) -> AnalysisSpec:
    try:
        return AnalysisSpec.model_validate(data)
    except pydantic.ValidationError as err:
        problems = [_message(e, data, source) for e in _relevant(err.errors())]
        first_loc, first_msg = problems[0]
        more = "".join(f"\n  also {loc}: {msg}" for loc, msg in problems[1:])
        raise ConfigError(first_msg + more, first_loc) from None


def load_config(path: str | Path) -> LoadedConfig:
    """Read, merge includes, validate. Raises ConfigError naming the file, line and key."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    data, source = read_config_tree(path)
    spec = validate_structure(data, source)
    config = LoadedConfig(path=path.resolve(), spec=spec, source=source)
    check_meaning(config)
    return extensions.expand(config)
