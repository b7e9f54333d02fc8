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
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode
from ruamel.yaml.reader import ReaderError

from framework.errors import ConfigError, Location

YamlPath = tuple[str | int, ...]
# A configuration is small; aliases that expand it past this many values are a mistake or an
# attack ("billion laughs"), refused before anything is expanded.
MAX_EXPANDED_NODES = 200_000
PLAIN_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "map", "seq", "merge")}


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
            try:
                key_line = node.lc.key(key)[0] + 1
            except KeyError:  # a key that came through a merge key (<<: *anchor): the mapping's line
                key_line = line
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


def _line_of(text: bytes, position: int) -> int:
    return text[:position].count(b"\n") + 1


def _decoded(file: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        column = err.start - data.rfind(b"\n", 0, err.start)
        raise ConfigError(
            f"not UTF-8 text: byte 0x{data[err.start]:02x} at column {column}",
            Location(str(file), _line_of(data, err.start), ""),
            "save the file as UTF-8",
        ) from None


def _check_nodes(file: Path, root: Node) -> None:
    """Tags other than YAML's plain ones are refused at their line (no object is ever built from
    a tag), and so is a document whose aliases expand it past MAX_EXPANDED_NODES values."""
    sizes: dict[int, int] = {}

    def size(node: Node) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        sizes[id(node)] = 1  # a node that contains itself (a recursive alias) counts once
        if node.tag not in PLAIN_TAGS:
            raise ConfigError(
                f"the tag {str(node.tag).replace('tag:yaml.org,2002:', '!!')!r} is not allowed",
                Location(str(file), node.start_mark.line + 1, ""),
                "a configuration holds plain values, lists and mappings; remove the tag",
            )
        total = 1
        if isinstance(node, MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        elif isinstance(node, SequenceNode):
            total += sum(size(v) for v in node.value)
        if total > MAX_EXPANDED_NODES:
            raise ConfigError(
                f"this value expands to more than {MAX_EXPANDED_NODES:,} values through aliases",
                Location(str(file), node.start_mark.line + 1, ""),
                "a configuration this large is a mistake: write it without nested aliases",
            )
        sizes[id(node)] = total
        return total

    size(root)


def _read_one(file: Path, included_from: Location | None) -> tuple[dict[str, Any], dict[YamlPath, Location]]:
    if not file.is_file():
        raise ConfigError(
            f"file {str(file)!r} does not exist",
            included_from,
            "paths in 'include:' are relative to the file that includes them",
        )
    data = file.read_bytes()
    text = _decoded(file, data)
    yaml = YAML(typ="rt")
    try:
        root = yaml.compose(text)
        if root is not None:
            _check_nodes(file, root)
        document = yaml.load(text)
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
    except ReaderError as err:
        raise ConfigError(
            f"not valid YAML text: {err.reason} (U+{err.character:04X})",
            Location(str(file), text[: err.position].count("\n") + 1, ""),
            "remove the control character",
        ) from None
    except YAMLError as err:
        raise ConfigError(f"not valid YAML: {err}", Location(str(file), 1, "")) from None
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
        index = path[depth] if path[:depth] == prefix and len(path) > depth else None
        if isinstance(index, int):
            new = (*prefix, index + offset, *path[depth + 1 :])
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


def round_trip_yaml() -> YAML:
    """A reader and writer of YAML that keeps comments, quotes and long lines as written, for the
    files the framework edits (`samples update`) or rewrites from the user's (a skim's samples)."""
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    return yaml
