"""Input stage: find each sample's files, check them, and read their entries and columns.

Opens files (no event loop). Globs and relative paths are resolved against the
YAML file that declared them; `root://` and other URLs are passed through.
"""

from __future__ import annotations

import glob
import sys
import time
from pathlib import Path

from .exceptions import InputError, Location, did_you_mean
from .load import LoadedConfig
from .plan import SampleInputs
from .rootenv import root


def _is_url(entry: str) -> bool:
    return "://" in entry


def expand_entry(base: Path, entry: str, sample: str, place: Location) -> list[str]:
    """Files of one `files:` entry: a URL as is, a glob, a path, or a `.txt` list of them (one per line)."""
    if _is_url(entry):
        return [entry]
    pattern = base / entry
    if entry.endswith(".txt") and pattern.is_file():
        listed = [ln.strip() for ln in pattern.read_text().splitlines()]
        return [f for ln in listed if ln and not ln.startswith("#") for f in expand_entry(pattern.parent, ln, sample, place)]
    matches = sorted(glob.glob(str(pattern))) if glob.has_magic(entry) else ([str(pattern)] if pattern.exists() else [])
    if not matches:
        raise InputError(
            f"sample {sample!r}: no file matches {entry!r} (looked for {pattern})",
            place,
            "paths are relative to the YAML file that lists them",
        )
    return [str(Path(m).resolve()) for m in matches]


def _readable(path: str, tree: str) -> str:
    """What ROOT reads for one file: a Parquet file's cached ROOT conversion, anything else as is."""
    if path.split("?", 1)[0].endswith(".parquet"):
        from .parquet import converted  # noqa: PLC0415

        return str(converted(path if _is_url(path) else Path(path), tree))
    return path


def resolve_files(config: LoadedConfig, sample: str) -> list[str]:
    files: list[str] = []
    tree = config.spec.samples[sample].tree
    for i, entry in enumerate(config.spec.samples[sample].files):
        base = config.source.file_of(("samples", sample, "files", i)).parent
        files.extend(_readable(f, tree) for f in expand_entry(base, entry, sample, config.locate("samples", sample, "files", i)))
    return files


def _open(path: str, sample: str, tree: str, place: Location, retries: int = 0, files_place: Location | None = None) -> tuple[int, str]:
    """Entries and format ('TTree' or 'RNTuple') of `tree` in one file. A remote file that
    cannot be opened is tried again `retries` times, 1, 2, 4 ... seconds apart."""
    r = root()
    remote = "://" in path
    handle = None
    for attempt in range(retries + 1 if remote else 1):
        level = r.gErrorIgnoreLevel
        r.gErrorIgnoreLevel = r.kFatal
        try:
            handle = r.TFile.Open(path)
        except OSError:
            handle = None
        finally:
            r.gErrorIgnoreLevel = level
        if handle and not handle.IsZombie():
            break
        if attempt < retries and remote:
            time.sleep(2**attempt)
    if not handle or handle.IsZombie():
        hint = (
            f"is the server up and the file there? (tried {retries + 1} time(s); --retries N tries again)"
            if remote
            else "is it a complete ROOT file? --skip-bad-files reports unreadable files and goes on without them"
        )
        raise InputError(f"sample {sample!r}: cannot open {path}", files_place or place, hint)
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


def _array_sizes(path: str, tree: str, names: list[str], entries: int) -> dict[str, int]:
    """Lengths of array columns in the first event of a TTree (checks weight-array indices early)."""
    if not names or not entries:
        return {}
    handle = root().TFile.Open(path)
    try:
        t = handle.Get(tree)
        t.SetBranchStatus("*", 0)
        for name in names:
            t.SetBranchStatus(name, 1)
        t.GetEntry(0)
        return {name: len(getattr(t, name)) for name in names}
    finally:
        handle.Close()


def _metadata(config: LoadedConfig, sample: str, files: list[str], tree: str, branches: list[str],
              columns: frozenset[str], fmt: str) -> dict[str, float]:
    """Per-sample numbers stored as branches (open-data ntuples carry XSection, SumWeights):
    the first entry of each file, which must agree."""
    found: dict[str, float] = {}
    for branch in branches:
        key = "xsec" if branch == config.spec.samples[sample].xsec else "sum_weights"
        where = config.locate("samples", sample, key)
        if branch not in columns:
            raise InputError(f"sample {sample!r}: {key} is read from branch {branch!r}, which the files lack", where,
                             did_you_mean(branch, columns) or "give the number instead")
        if fmt != "TTree":
            raise InputError(f"sample {sample!r}: {key} from a branch needs TTree files", where)
        values = {}
        for f in files:
            handle = root().TFile.Open(f)
            t = handle.Get(tree)
            t.GetEntry(0)
            values[f] = float(getattr(t, branch))
            handle.Close()
        if len(set(values.values())) > 1:
            raise InputError(f"sample {sample!r}: branch {branch!r} differs between files: {values}", where,
                             "a per-sample value must be the same in every file of the sample")
        found[branch] = next(iter(values.values()))
    return found


def inspect_sample(config: LoadedConfig, sample: str, skip_bad_files: bool = False, retries: int = 0) -> SampleInputs:
    spec = config.spec.samples[sample]
    place = config.locate("samples", sample, "tree")
    files: list[str] = []
    opened: list[tuple[int, str]] = []
    skipped: list[str] = []
    for f in resolve_files(config, sample):
        try:
            opened.append(_open(f, sample, spec.tree, place, retries, config.locate("samples", sample, "files")))
            files.append(f)
        except InputError as err:
            if not skip_bad_files:
                raise
            print(f"skipping unreadable file of sample {sample!r}: {f} ({err.message})", file=sys.stderr)
            skipped.append(f)
    if not files:
        raise InputError(f"sample {sample!r}: no readable file ({len(skipped)} skipped)", place)
    formats = {fmt for _, fmt in opened}
    if len(formats) > 1:
        raise InputError(f"sample {sample!r} mixes TTree and RNTuple files", config.locate("samples", sample, "files"))
    columns = frozenset(str(c) for c in root().RDataFrame(spec.tree, files[0]).GetColumnNames())
    fmt = formats.pop()
    arrays = sorted(
        {s.from_array for s in config.spec.systematics.values() if getattr(s, "from_array", None) in columns}
    )
    branches = [v for v in (spec.xsec, spec.sum_weights) if isinstance(v, str)]
    return SampleInputs(
        metadata=_metadata(config, sample, files, spec.tree, branches, columns, fmt),
        files=tuple(files),
        entries=tuple(n for n, _ in opened),
        columns=columns,
        format=fmt,
        array_sizes=_array_sizes(files[0], spec.tree, arrays, opened[0][0]) if fmt == "TTree" else {},
        skipped=tuple(skipped),
    )


def inspect_inputs(
    config: LoadedConfig, samples: list[str], skip_bad_files: bool = False, retries: int = 0
) -> dict[str, SampleInputs]:
    return {name: inspect_sample(config, name, skip_bad_files, retries) for name in samples}
