"""`run-analysis samples update FILE.yaml`: compute sample metadata and write it back in place.

Per sample: the event count, the sum of generator weights and of their squares (from a
`Runs` tree's genEventCount/genEventSumw/genEventSumw2 where present, else from the
events' generator weight), and per-file figures. The file is edited with ruamel.yaml in
round-trip mode: comments, key order, quoting and layout of everything not computed are
kept, and a value is only rewritten when it changed, so a second run leaves the file
byte for byte identical. Per-file figures double as the cache: a file whose size and
modification time are unchanged is not read again.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError
from ruamel.yaml.util import load_yaml_guess_indent

from framework.config.yamlsource import round_trip_yaml
from framework.engine.rootenv import root
from framework.errors import ConfigError, ExecutionError, FrameworkError, InputError, Location, RemoteInputError
from framework.inputs.files import can_open, expand_entry, open_file
from framework.inputs.locations import kind_of
from framework.inputs.retries import retried

RUNS_COLUMNS = ("genEventCount", "genEventSumw", "genEventSumw2")


@dataclass
class FileFigures:
    events: int
    sum_weights: float
    sum_weights2: float
    size: int
    mtime_ns: int
    splits: dict[str, tuple[int, float]] = field(default_factory=dict)  # sub-process: events, sum of weights


@dataclass
class UpdateReport:
    path: Path
    scanned: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    skims: list[str] = field(default_factory=list)  # skimmed samples, left as they are
    changed: bool = False

    def summary(self) -> str:
        state = "updated" if self.changed else "unchanged"
        skims = f"; skims left as they are: {', '.join(self.skims)}" if self.skims else ""
        return (
            f"{self.path}: {state} ({len(self.scanned)} file(s) read, {len(self.reused)} unchanged file(s) reused"
            f"{skims})"
        )


def _scan_splits(path: str, tree: str, weight: str, split: dict[str, str]) -> dict[str, tuple[int, float]]:
    """Events and sum of generator weights of each sub-process of a split sample, in one pass."""
    if not split:
        return {}
    keys = [*split, "other"]  # events matching no condition: the '<sample>_other' output sample
    choice = str(len(split))
    for k, cond in reversed(list(enumerate(split.values()))):
        choice = f"(({cond}) ? {k} : {choice})"
    df = root().RDataFrame(tree, path).Define("__split", choice).Define("__w", f"double({weight})")
    results = [
        (df.Filter(f"__split == {k}").Count(), df.Filter(f"__split == {k}").Sum["double"]("__w"))
        for k in range(len(keys))
    ]
    return {key: (int(c.GetValue()), float(w.GetValue())) for key, (c, w) in zip(keys, results, strict=True)}


def _scan(
    path: str, tree: str, generator_weight: str, is_data: bool, sample: str, place: Location
) -> tuple[int, float, float]:
    """Events, sum of weights and of squared weights of one file."""
    r = root()
    if r.IsImplicitMTEnabled():
        r.DisableImplicitMT()  # sums in file order: the same file always gives the same figures
    handle = open_file(path, sample, place, retries=0)
    try:
        if not handle.GetKey(tree):
            raise InputError(f"file {path} has no tree {tree!r}", place, "set 'tree:' for this sample")
        runs = handle.Get("Runs") if handle.GetKey("Runs") else None
        run_columns = {str(b.GetName()) for b in runs.GetListOfBranches()} if runs else set()
    finally:
        handle.Close()
    if not is_data and set(RUNS_COLUMNS) <= run_columns:
        df = r.RDataFrame("Runs", path)
        count = df.Sum["Long64_t"]("genEventCount")
        sumw, sumw2 = df.Sum["double"]("genEventSumw"), df.Sum["double"]("genEventSumw2")
        return int(count.GetValue()), float(sumw.GetValue()), float(sumw2.GetValue())
    df = r.RDataFrame(tree, path)
    count = df.Count()
    if is_data:
        return int(count.GetValue()), 0.0, 0.0
    weighted = df.Define("__w", f"double({generator_weight})").Define("__w2", "__w * __w")
    sumw, sumw2 = weighted.Sum["double"]("__w"), weighted.Sum["double"]("__w2")
    return int(count.GetValue()), float(sumw.GetValue()), float(sumw2.GetValue())


def _read(
    path: str,
    tree: str,
    generator_weight: str,
    is_data: bool,
    split: dict[str, str],
    sample: str,
    place: Location,
    retries: int,
) -> tuple[tuple[int, float, float], dict[str, tuple[int, float]]]:
    """`_scan` and `_scan_splits` of one file. A remote file that cannot be opened, or that fails
    while read and cannot be opened any more (its server gone), is read again `retries` times."""

    def attempt() -> tuple[tuple[int, float, float], dict[str, tuple[int, float]]]:
        try:
            return (
                _scan(path, tree, generator_weight, is_data, sample, place),
                _scan_splits(path, tree, "1.0" if is_data else generator_weight, split),
            )
        except FrameworkError:
            raise
        except Exception:
            # ROOT fails with a C++ exception, or a TypeError from a constructor that threw: told
            # from a bug by the file being out of reach now
            if not kind_of(path).remote or can_open(path):
                raise
            raise RemoteInputError(
                f"sample {sample!r}: lost {path} while reading it: it cannot be opened any more",
                place,
                "is its server up?",
            ) from None

    return retried(attempt, retries)


def _mapping_indent(text: str) -> int:
    """The indentation of nested mapping keys in the file (ruamel writes one for all)."""
    indents = [len(m.group(1)) for m in re.finditer(r"^( +)[^\s#-][^:\n]*:", text, flags=re.MULTILINE)]
    return min(indents) if indents else 2


COMPUTED_KEYS = ("events", "sum_weights", "sum_weights2", "split_stats", "file_stats")


def _number(x: float) -> str:
    return str(x) if isinstance(x, int) else repr(float(x))


def _computed_lines(
    indent: str, step: str, totals: dict[str, float | int], figures: dict[str, FileFigures], is_data: bool
) -> list[str]:
    lines = [f"{indent}{key}: {_number(value)}\n" for key, value in totals.items()]
    subs = list(next(iter(figures.values())).splits) if figures else []
    if subs:
        split_sum = sum(w for f in figures.values() for _, w in f.splits.values())
        lines.append(f"{indent}split_stats:\n")
        for sub in subs:
            events = sum(f.splits[sub][0] for f in figures.values())
            sumw = sum(f.splits[sub][1] for f in figures.values())
            fraction = sumw / split_sum if split_sum else 0.0
            lines.append(
                f"{indent}{step}{sub}: {{events: {events}, sum_weights: {_number(sumw)}, "
                f"fraction: {_number(fraction)}}}\n"
            )
    lines.append(f"{indent}file_stats:\n")
    for name, fig in figures.items():
        fields: dict[str, Any] = {"events": fig.events}
        if not is_data:
            fields |= {"sum_weights": fig.sum_weights, "sum_weights2": fig.sum_weights2}
        fields |= {"size": fig.size, "mtime_ns": fig.mtime_ns}
        inner = ", ".join(f"{k}: {_number(v)}" for k, v in fields.items())
        if fig.splits:
            parts = ", ".join(f"{k}: [{v[0]}, {_number(v[1])}]" for k, v in fig.splits.items())
            inner += f", splits: {{{parts}}}"
        lines.append(f"{indent}{step}{json.dumps(name)}: {{{inner}}}\n")
    return lines


def _sample_block(lines: list[str], begin: int, end: int, sample: CommentedMap, new: list[str]) -> list[str]:
    """The lines of one sample (after its name) with the computed keys replaced by `new`."""
    key_lines = sorted((sample.lc.key(k)[0], k) for k in sample)
    kept: list[str] = []
    for i, (line, key) in enumerate(key_lines):
        stop = key_lines[i + 1][0] if i + 1 < len(key_lines) else end
        if key not in COMPUTED_KEYS:
            kept.extend(lines[line:stop])
    head = lines[begin : key_lines[0][0]] if key_lines else []
    return head + kept + new


def _refuse_shared_nodes(path: Path, samples: CommentedMap) -> None:
    """Anchors, aliases and merge keys make one YAML node appear in several places: adding
    computed lines to it would edit all of them. Such a file is refused, left untouched."""
    seen: dict[int, str] = {}
    for name, sample in samples.items():
        place = Location(str(path), samples.lc.key(name)[0] + 1, f"samples.{name}")
        if id(sample) in seen:
            raise ConfigError(
                f"sample {name!r} is an alias of sample {seen[id(sample)]!r}",
                place,
                "write each sample out in full: the computed fields are added per sample",
            )
        seen[id(sample)] = name
        if isinstance(sample, CommentedMap) and (getattr(sample, "merge", None) or sample.anchor.value):
            raise ConfigError(
                f"sample {name!r} uses a YAML anchor or merge key ('<<')",
                place,
                "write each sample out in full: the computed fields are added per sample",
            )


def _plain_data(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _plain_data(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain_data(v) for v in node]
    return node


def _same_but_computed(before: Any, after: Any) -> bool:
    """Whether two loaded files hold the same data apart from the computed keys of samples."""
    a, b = _plain_data(before), _plain_data(after)
    for doc in (a, b):
        for sample in (doc.get("samples") or {}).values():
            if isinstance(sample, dict):
                for key in COMPUTED_KEYS:
                    sample.pop(key, None)
    return bool(a == b)


def _write_through(path: Path, text: str, newline: str) -> None:
    """Write `text` to the file `path` names (through a symbolic link, to its target), keeping its
    mode, under a temporary name renamed at the end."""
    target = Path(os.path.realpath(path))
    mode = target.stat().st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", newline=newline) as stream:
            stream.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def update_samples_file(path: Path, generator_weight: str = "genWeight", retries: int = 0) -> UpdateReport:
    """Compute and write back the figures of every sample in a samples YAML file. A remote file that
    cannot be opened or read is tried again `retries` times, 1, 2, 4 ... s apart."""
    text, newline = _read_text(path)
    doc, samples = _load_samples(path, text)
    _refuse_shared_nodes(path, samples)
    report = UpdateReport(path)
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    step = " " * _mapping_indent(text)
    names = list(samples)
    top = list(doc)
    after_samples = top.index("samples") + 1
    samples_end = doc.lc.key(top[after_samples])[0] if after_samples < len(top) else len(lines)
    edits: list[tuple[int, int, list[str]]] = []
    expected: dict[str, dict[str, float | int]] = {}
    for position, (name, sample) in enumerate(samples.items()):
        place = Location(str(path), samples.lc.key(name)[0] + 1, f"samples.{name}")
        if isinstance(sample, CommentedMap) and "skim" in sample:
            report.skims.append(name)  # its sums are the original sample's (run-analysis skim wrote them)
            continue
        if not isinstance(sample, CommentedMap) or sample.fa.flow_style():
            raise ConfigError(
                f"sample {name!r} is written as a flow mapping {{...}}",
                place,
                "write it as a block (one key per line) so the computed fields can be added below it",
            )
        figures = _figures(path.parent, name, sample, generator_weight, place, report, retries)
        is_data = bool(sample.get("is_data", False))
        totals = expected[name] = _totals(figures, is_data)
        begin = samples.lc.key(name)[0] + 1
        end = samples.lc.key(names[position + 1])[0] if position + 1 < len(names) else samples_end
        while end > begin and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")):
            end -= 1  # blank lines and comments before the next sample belong to it
        new = _computed_lines(" " * sample.lc.col, step, totals, figures, is_data)
        block = _sample_block(lines, begin, end, sample, new)
        if block != lines[begin:end]:
            edits.append((begin, end, block))
    for begin, end, block in reversed(edits):
        lines[begin:end] = block
    report.changed = bool(edits)
    if edits:
        _write_checked(path, doc, "".join(lines), newline, expected)
    return report


def _read_text(path: Path) -> tuple[str, str]:
    """The file's text with LF line ends, and the line end to write it back with."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8").replace("\r\n", "\n")
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"not UTF-8 text (byte {err.start})",
            Location(str(path), raw[: err.start].count(b"\n") + 1, ""),
            "save the file as UTF-8",
        ) from None
    return text, "\r\n" if b"\r\n" in raw else "\n"


def _load_samples(path: Path, text: str) -> tuple[CommentedMap, CommentedMap]:
    """The document in round-trip form, with the file's indentation, and its `samples:` mapping."""
    yaml = round_trip_yaml()
    try:
        _, sequence_indent, dash_offset = load_yaml_guess_indent(text)
        yaml.indent(mapping=_mapping_indent(text), sequence=sequence_indent or 2, offset=dash_offset or 0)
        doc = yaml.load(text)
    except YAMLError as err:
        raise ConfigError(f"not valid YAML: {err}", Location(str(path), 1, "")) from None
    samples = doc.get("samples") if isinstance(doc, CommentedMap) else None
    if not isinstance(samples, CommentedMap):
        raise ConfigError("no 'samples:' mapping in this file", Location(str(path), 1, "samples"))
    return doc, samples


def _totals(figures: dict[str, FileFigures], is_data: bool) -> dict[str, float | int]:
    """A sample's computed fields: events, and for simulation the sums of weights."""
    totals: dict[str, float | int] = {"events": sum(f.events for f in figures.values())}
    if not is_data:
        totals["sum_weights"] = sum(f.sum_weights for f in figures.values())
        totals["sum_weights2"] = sum(f.sum_weights2 for f in figures.values())
    return totals


def _write_checked(
    path: Path, doc: CommentedMap, updated: str, newline: str, expected: dict[str, dict[str, float | int]]
) -> None:
    """Write `updated` only if, read back, it holds the computed fields and differs from `doc` in nothing else."""
    try:
        reloaded = round_trip_yaml().load(updated)
    except YAMLError:
        reloaded = None
    written = (reloaded or {}).get("samples") or {}
    computed_ok = all({k: written.get(name, {}).get(k) for k in totals} == totals for name, totals in expected.items())
    if reloaded is None or not computed_ok or not _same_but_computed(doc, reloaded):
        raise ExecutionError(
            f"updating {path} would change it beyond the computed fields; it was left untouched",
            hint="please report this file's layout; meanwhile write the computed fields by hand",
        )
    _write_through(path, updated, newline)


def _figures(
    base: Path,
    name: str,
    sample: CommentedMap,
    generator_weight: str,
    place: Location,
    report: UpdateReport,
    retries: int,
) -> dict[str, FileFigures]:
    """Per-file figures of one sample: from the cache when size and mtime are unchanged."""
    is_data = bool(sample.get("is_data", False))
    tree = str(sample.get("tree", "Events"))
    split = {str(k): str(v) for k, v in (sample.get("split") or {}).items()}
    cached = sample.get("file_stats") or {}
    figures: dict[str, FileFigures] = {}
    for entry in sample.get("files", []):
        for file in expand_entry(base, str(entry), name, place):
            key = file if "://" in file else os.path.relpath(file, base)
            stat = os.stat(file) if "://" not in file else None
            size, mtime = (stat.st_size, stat.st_mtime_ns) if stat else (0, 0)
            old = cached.get(key)
            old_splits = {k: (int(v[0]), float(v[1])) for k, v in (old.get("splits") or {}).items()} if old else {}
            if (
                stat
                and old
                and old.get("size") == size
                and old.get("mtime_ns") == mtime
                and list(old_splits) == ([*split, "other"] if split else [])
            ):
                figures[key] = FileFigures(
                    int(old["events"]),
                    float(old.get("sum_weights", 0.0)),
                    float(old.get("sum_weights2", 0.0)),
                    size,
                    mtime,
                    old_splits,
                )
                report.reused.append(key)
                continue
            (events, sumw, sumw2), splits = _read(file, tree, generator_weight, is_data, split, name, place, retries)
            figures[key] = FileFigures(events, sumw, sumw2, size, mtime, splits)
            report.scanned.append(key)
    return figures
