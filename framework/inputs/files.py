"""Input stage: find each sample's files, check them, and read their entries and columns.

Opens files (no event loop), once: what a file holds (entries, format, column names and
types, first-event array lengths, per-sample values stored in branches) is kept in the
cache (`framework.cache`, area `inputs`) keyed by the file's path, size and modification
time (for URLs what their server reports, `framework.inputs.locations`), and read from there while
the file is unchanged. Globs and relative paths are resolved against the YAML file that declared
them; a glob in a `root://` URL is expanded by listing the folder on the server; other URLs are
passed through.
"""

from __future__ import annotations

import glob
import logging
from pathlib import Path
from typing import Any

from framework import cache
from framework.config.load import LoadedConfig
from framework.config.schema.systematics import WeightSystematic
from framework.engine.rootenv import root
from framework.errors import InputError, Location, RemoteInputError, did_you_mean
from framework.inputs.locations import URL, kind_of
from framework.inputs.model import SampleInputs
from framework.inputs.retries import retried
from framework.plan.systematics import literal_subscripts

log = logging.getLogger(__name__)

FACTS_VERSION = 1  # of the cached per-file entry


def _expand_url(url_kind: URL, entry: str, sample: str, place: Location) -> list[str]:
    try:
        matches = url_kind.expand(entry)
    except OSError as err:
        raise InputError(
            f"sample {sample!r}: cannot expand {entry!r}: {err}",
            place,
            "is the server up and the folder there? (XRD_CONNECTIONRETRY, XRD_REQUESTTIMEOUT bound the wait)",
        ) from None
    if not matches:
        raise InputError(
            f"sample {sample!r}: no file matches {entry!r} on its server", place, "check the folder and pattern"
        )
    return matches


def expand_entry(base: Path, entry: str, sample: str, place: Location) -> list[str]:
    """Files of one `files:` entry: a URL (a glob in a root:// URL listed on the server), a glob, a
    path, or a `.txt` list of them (one per line)."""
    url_kind = kind_of(entry)
    if isinstance(url_kind, URL):
        return _expand_url(url_kind, entry, sample, place)
    pattern = base / entry
    if entry.endswith(".txt") and pattern.is_file():
        listed = [ln.strip() for ln in pattern.read_text().splitlines()]
        return [
            f for ln in listed if ln and not ln.startswith("#") for f in expand_entry(pattern.parent, ln, sample, place)
        ]
    matches = sorted(glob.glob(str(pattern))) if glob.has_magic(entry) else ([str(pattern)] if pattern.exists() else [])
    if not matches:
        raise InputError(
            f"sample {sample!r}: no file matches {entry!r} (looked for {pattern})",
            place,
            "paths are relative to the YAML file that lists them",
        )
    return [str(Path(m).resolve()) for m in matches]


def _readable(path: str, tree: str, sample: str, place: Location) -> str:
    """What ROOT reads for one file: a Parquet file's cached ROOT conversion, anything else as is."""
    if path.split("?", 1)[0].endswith(".parquet"):
        from framework.inputs.parquet import converted

        try:
            return str(converted(path if isinstance(kind_of(path), URL) else Path(path), tree))
        except InputError as err:
            raise InputError(f"sample {sample!r}: {err.message}", place, err.hint) from None
    return path


def resolve_files(config: LoadedConfig, sample: str) -> list[str]:
    files: list[str] = []
    tree = config.spec.samples[sample].tree
    for i, entry in enumerate(config.spec.samples[sample].files):
        base = config.source.file_of(("samples", sample, "files", i)).parent
        place = config.locate("samples", sample, "files", i)
        files.extend(_readable(f, tree, sample, place) for f in expand_entry(base, entry, sample, place))
    return files


def _opened_quietly(path: str) -> Any:
    """ROOT's open TFile of `path`, or None; ROOT's own message is not shown (the caller's names the sample)."""
    r = root()
    level = r.gErrorIgnoreLevel
    r.gErrorIgnoreLevel = r.kFatal
    try:
        handle = r.TFile.Open(path)
    except OSError:
        handle = None
    finally:
        r.gErrorIgnoreLevel = level
    return handle if handle and not handle.IsZombie() else None


def can_open(path: str) -> bool:
    """Whether ROOT opens `path` now."""
    handle = _opened_quietly(path)
    if handle is not None:
        handle.Close()
    return handle is not None


def open_file(path: str, sample: str, place: Location, retries: int, hint: str = "is it a complete ROOT file?") -> Any:
    """The open TFile of one input file of `sample`. A remote file that cannot be opened is tried
    again `retries` times, 1, 2, 4 ... seconds apart; `hint` is for a local one."""
    remote = kind_of(path).remote

    def attempt() -> Any:
        handle = _opened_quietly(path)
        if handle is None:
            message = f"sample {sample!r}: cannot open {path}"
            if remote:
                raise RemoteInputError(message, place, "is the server up and the file there?")
            raise InputError(message, place, hint)
        return handle

    return retried(attempt, retries)


def _open(
    path: str, sample: str, tree: str, place: Location, retries: int = 0, files_place: Location | None = None
) -> tuple[int, str]:
    """Entries and format ('TTree' or 'RNTuple') of `tree` in one file."""
    r = root()
    hint = "is it a complete ROOT file? --skip-bad-files reports unreadable files and goes on without them"
    handle = open_file(path, sample, files_place or place, retries, hint)
    try:
        key = handle.GetKey(tree)
        if not key:
            names = [k.GetName() for k in handle.GetListOfKeys()]
            raise InputError(
                f"sample {sample!r}: file {path} has no tree {tree!r}",
                place,
                f"set 'tree:' to one of: {', '.join(names)}" if names else "the file holds no objects",
            )
        if key.GetClassName() == "ROOT::RNTuple":
            return int(r.RNTupleReader.Open(tree, path).GetNEntries()), "RNTuple"
        return int(handle.Get(tree).GetEntries()), "TTree"
    finally:
        handle.Close()


class FileFacts:
    """What one input file holds: read once, then from the cache while the file is unchanged."""

    def __init__(self, path: str, tree: str) -> None:
        self.path, self.tree = path, tree
        identity = kind_of(path).identity(path)
        key = cache.key_of(FACTS_VERSION, path, tree, identity)
        self._entry = cache.entry_path("inputs", key) if identity is not None else None
        self._data: dict[str, Any] = (cache.read_entry(self._entry) if self._entry else None) or {}

    def _store(self) -> None:
        if self._entry is not None:
            cache.write_entry(self._entry, self._data)

    def opened(self, sample: str, place: Location, retries: int, files_place: Location) -> tuple[int, str]:
        """Entries and format ('TTree' or 'RNTuple'); opening the file is what checks it."""
        if "entries" not in self._data:
            entries, fmt = _open(self.path, sample, self.tree, place, retries, files_place)
            self._data.update(entries=entries, format=fmt)
            self._store()
        return self._data["entries"], self._data["format"]

    def columns(self) -> dict[str, str]:
        """Column names and their C++ types as RDataFrame reports them."""
        if "columns" not in self._data:
            frame = root().RDataFrame(self.tree, self.path)
            self._data["columns"] = {str(c): str(frame.GetColumnType(c)) for c in frame.GetColumnNames()}
            self._store()
        return self._data["columns"]

    def _first_entry(self, field: str, names: list[str], read: Any) -> dict[str, Any]:
        known = self._data.setdefault(field, {})
        missing = [n for n in names if n not in known]
        if missing:
            handle = root().TFile.Open(self.path)
            try:
                tree = handle.Get(self.tree)
                tree.SetBranchStatus("*", 0)
                for name in missing:
                    tree.SetBranchStatus(name, 1)
                tree.GetEntry(0)
                known.update({name: read(getattr(tree, name)) for name in missing})
            finally:
                handle.Close()
            self._store()
        return {n: known[n] for n in names}

    def array_sizes(self, names: list[str]) -> dict[str, int]:
        """Lengths of array columns in the first event of a TTree (checks weight-array indices early)."""
        return self._first_entry("arrays", names, len)

    def values(self, names: list[str]) -> dict[str, float]:
        """First-entry values of scalar branches (per-sample numbers stored as branches)."""
        return self._first_entry("values", names, float)


def _metadata(
    config: LoadedConfig, sample: str, facts: list[FileFacts], branches: list[str], columns: dict[str, str], fmt: str
) -> dict[str, float]:
    """Per-sample numbers stored as branches (open-data ntuples carry XSection, SumWeights):
    the first entry of each file, which must agree."""
    found: dict[str, float] = {}
    for branch in branches:
        key = "xsec" if branch == config.spec.samples[sample].xsec else "sum_weights"
        where = config.locate("samples", sample, key)
        if branch not in columns:
            raise InputError(
                f"sample {sample!r}: {key} is read from branch {branch!r}, which the files lack",
                where,
                did_you_mean(branch, columns) or "give the number instead",
            )
        if fmt != "TTree":
            raise InputError(f"sample {sample!r}: {key} from a branch needs TTree files", where)
        values = {f.path: f.values([branch])[branch] for f in facts}
        if len(set(values.values())) > 1:
            raise InputError(
                f"sample {sample!r}: branch {branch!r} differs between files: {values}",
                where,
                "a per-sample value must be the same in every file of the sample",
            )
        found[branch] = next(iter(values.values()))
    return found


def inspect_sample(config: LoadedConfig, sample: str, skip_bad_files: bool = False, retries: int = 0) -> SampleInputs:
    spec = config.spec.samples[sample]
    place = config.locate("samples", sample, "tree")
    facts: list[FileFacts] = []
    opened: list[tuple[int, str]] = []
    skipped: list[str] = []
    for f in resolve_files(config, sample):
        file_facts = FileFacts(f, spec.tree)
        try:
            opened.append(file_facts.opened(sample, place, retries, config.locate("samples", sample, "files")))
            facts.append(file_facts)
        except InputError as err:
            if not skip_bad_files:
                raise
            log.warning("skipping unreadable file of sample %r: %s (%s)", sample, f, err.message)
            skipped.append(f)
    if not facts:
        raise InputError(f"sample {sample!r}: no readable file ({len(skipped)} skipped)", place)
    formats = {fmt for _, fmt in opened}
    if len(formats) > 1:
        raise InputError(f"sample {sample!r} mixes TTree and RNTuple files", config.locate("samples", sample, "files"))
    columns = facts[0].columns()
    inconsistent = {}
    for file_facts in facts[1:]:
        others = file_facts.columns()
        differing = tuple(c for c, t in columns.items() if others.get(c) != t)
        if differing:
            inconsistent[file_facts.path] = differing
    fmt = formats.pop()
    arrays = sorted(
        {
            s.from_array
            for s in config.spec.systematics.values()
            if isinstance(s, WeightSystematic) and s.from_array is not None and s.from_array in columns
        }
        | {array for _, array, _, _ in literal_subscripts(config, set(columns))}
    )
    branches = [v for v in (spec.xsec, spec.sum_weights) if isinstance(v, str)]
    return SampleInputs(
        metadata=_metadata(config, sample, facts, branches, columns, fmt),
        files=tuple(f.path for f in facts),
        entries=tuple(n for n, _ in opened),
        columns=frozenset(columns),
        column_types=columns,
        format=fmt,
        array_sizes=facts[0].array_sizes(arrays) if fmt == "TTree" and opened[0][0] else {},
        skipped=tuple(skipped),
        inconsistent=inconsistent,
    )


def inspect_inputs(
    config: LoadedConfig, samples: list[str], skip_bad_files: bool = False, retries: int = 0
) -> dict[str, SampleInputs]:
    return {name: inspect_sample(config, name, skip_bad_files, retries) for name in samples}
