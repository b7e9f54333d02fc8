"""Read YAML files into plain data, remembering where every key came from.

Part of the load stage. `include:` pulls other files in, relative to the including
file; mappings merge key by key (a name defined twice is an error), lists
concatenate in include order, scalars must agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError

from .exceptions import ConfigError, Location

YamlPath = tuple[str | int, ...]


def dotted(path: YamlPath) -> str:
    """`('histograms', 'ht', 'axes', 0)` -> `histograms.ht.axes[0]`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


@dataclass
class SourceMap:
    """Where each YAML path of the merged document was written."""

    places: dict[YamlPath, Location] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)

    def locate(self, path: YamlPath) -> Location:
        """The location of `path`, or of its closest written ancestor."""
        for end in range(len(path), -1, -1):
            place = self.places.get(tuple(path[:end]))
            if place is not None:
                return Location(place.file, place.line, dotted(path))
        root = str(self.files[0]) if self.files else "<config>"
        return Location(root, 1, dotted(path))

    def file_of(self, path: YamlPath) -> Path:
        return Path(self.locate(path).file)


def _plain(node: Any, path: YamlPath, file: Path, line: int, places: dict[YamlPath, Location]) -> Any:
    if isinstance(node, CommentedMap):
        out: dict[str, Any] = {}
        for key, value in node.items():
            key_line = node.lc.key(key)[0] + 1
            sub = (*path, str(key))
            places[sub] = Location(str(file), key_line, dotted(sub))
            out[str(key)] = _plain(value, sub, file, key_line, places)
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for i, value in enumerate(node):
            item_line = node.lc.item(i)[0] + 1
            sub = (*path, i)
            places[sub] = Location(str(file), item_line, dotted(sub))
            items.append(_plain(value, sub, file, item_line, places))
        return items
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return str(node)


def _read_one(file: Path, included_from: Location | None) -> tuple[dict[str, Any], dict[YamlPath, Location]]:
    if not file.is_file():
        raise ConfigError(
            f"file {str(file)!r} does not exist",
            included_from,
            "paths in 'include:' are relative to the file that includes them",
        )
    yaml = YAML(typ="rt")
    try:
        with file.open(encoding="utf-8") as stream:
            document = yaml.load(stream)
    except DuplicateKeyError as err:
        mark = err.problem_mark
        raise ConfigError(
            f"duplicate key: {err.problem}",
            Location(str(file), (mark.line + 1) if mark else 1, ""),
            "each name may appear once in a mapping",
        ) from err
    except MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        raise ConfigError(
            f"not valid YAML: {err.problem or err.context}",
            Location(str(file), (mark.line + 1) if mark else 1, ""),
        ) from err
    if document is None:
        return {}, {}
    if not isinstance(document, CommentedMap):
        raise ConfigError("the top level of a config file must be a mapping of keys", Location(str(file), 1, ""))
    places: dict[YamlPath, Location] = {}
    return _plain(document, (), file, 1, places), places


def _shift(places: dict[YamlPath, Location], prefix: YamlPath, offset: int) -> dict[YamlPath, Location]:
    """Renumber list items below `prefix` by `offset` (their list was appended to another)."""
    depth = len(prefix)
    shifted = {}
    for path, place in places.items():
        if path[:depth] == prefix and len(path) > depth and isinstance(path[depth], int):
            new = (*prefix, path[depth] + offset, *path[depth + 1 :])
            shifted[new] = Location(place.file, place.line, dotted(new))
        else:
            shifted[path] = place
    return shifted


def _merge(
    into: dict[str, Any], into_places: dict[YamlPath, Location], data: dict[str, Any], places: dict[YamlPath, Location]
) -> None:
    for key, value in data.items():
        if key not in into:
            into[key] = value
            into_places.update({p: loc for p, loc in places.items() if p[:1] == (key,)})
            continue
        old = into[key]
        if isinstance(old, dict) and isinstance(value, dict):
            for name, item in value.items():
                if name in old:
                    first = into_places[(key, name)]
                    raise ConfigError(
                        f"{key!r} entry {name!r} is defined twice (first at {first.file}:{first.line})",
                        places[(key, name)],
                        "rename one of them or remove the duplicate",
                    )
                old[name] = item
            into_places.update({p: loc for p, loc in places.items() if p[:1] == (key,) and len(p) > 1})
        elif isinstance(old, list) and isinstance(value, list):
            offset = len(old)
            old.extend(value)
            moved = _shift({p: loc for p, loc in places.items() if p[:1] == (key,) and len(p) > 1}, (key,), offset)
            into_places.update(moved)
        elif old != value:
            first = into_places[(key,)]
            raise ConfigError(
                f"{key!r} is set to {value!r} here and to {old!r} at {first.file}:{first.line}",
                places[(key,)],
                "set it in one file only",
            )


def read_config_tree(path: Path) -> tuple[dict[str, Any], SourceMap]:
    """Read `path` and everything it includes into one plain mapping plus its source map."""
    source = SourceMap()

    def load(file: Path, included_from: Location | None, chain: tuple[Path, ...]) -> tuple[dict, dict]:
        file = file.resolve()
        if file in chain:
            cycle = " -> ".join(str(f) for f in (*chain, file))
            raise ConfigError(f"include cycle: {cycle}", included_from, "remove one of the includes")
        data, places = _read_one(file, included_from)
        source.files.append(file)
        merged: dict[str, Any] = {}
        merged_places: dict[YamlPath, Location] = {}
        includes = data.pop("include", [])
        if isinstance(includes, str):
            includes = [includes]
        if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
            raise ConfigError("'include' must be a list of file paths", places.get(("include",)))
        for i, name in enumerate(includes):
            sub, sub_places = load(file.parent / name, places.get(("include", i)), (*chain, file))
            _merge(merged, merged_places, sub, sub_places)
        _merge(merged, merged_places, data, {p: loc for p, loc in places.items() if p[:1] != ("include",)})
        return merged, merged_places

    data, places = load(path, None, ())
    source.places = places
    return data, source
