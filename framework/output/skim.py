"""Write stage, skims: the record beside each skim file, and the samples YAML of the skim folder.

`run-analysis skim` writes per sample (or per `--part I/N`) a file of events, `<sample>.root`
(`<sample>.part-I-of-N.root`), and its record `<sample>.json`: what made it (the plan's digest,
the configuration and its hash), what it read (events, sum of generator weights) and what it
holds (`SkimOrigin`). From the records in the folder, `samples.yaml` is written again after every
skim: each sample whose files are all there, as the configuration declares it (its YAML node
copied with its comments: cross-section, era, process, split ...) with `files` the skim's,
`sum_weights` the original sample's and `skim:` its origin; the files' `eras` and `lumi` beside.
An analysis runs on the skim by including that file instead of the original samples' YAML.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from framework.config.load import LoadedConfig
from framework.config.schema.skim import SkimOrigin
from framework.config.yamlsource import round_trip_yaml
from framework.output.format import Frozen
from framework.output.write import current_umask

log = logging.getLogger(__name__)

SKIM_FORMAT_VERSION = 1
SAMPLES_FILE = "samples.yaml"
PART = re.compile(r"^(?P<sample>.+?)(\.part-(?P<i>\d+)-of-(?P<n>\d+))?\.root$")  # names of `plan.skim.skim_file`
DROPPED = ("generate", "events", "file_stats")  # of the original files: a skim's files are others


class SkimRecord(Frozen):
    """`<sample>.json` beside a skim file."""

    format_version: int = SKIM_FORMAT_VERSION
    sample: str
    file: str
    part: tuple[int, int] | None
    digest: str  # of what made it: a skim with the same digest and unchanged inputs is up to date
    inputs: list[str]
    passed: int  # events passing the skim's cuts in the nominal
    sum_gen_weights: float | None  # of the events read
    declared_sum_weights: float | None  # the sample's own, when its YAML declares it and all events were read
    xsec: float | None
    origin: SkimOrigin


def record_path(folder: Path, file: str) -> Path:
    return folder / (file.removesuffix(".root") + ".json")


def read_record(path: Path) -> SkimRecord | None:
    """The record at `path`, or None when it is missing, broken or of another format version."""
    try:
        data = json.loads(path.read_text())
        if data.get("format_version") != SKIM_FORMAT_VERSION:
            return None
        return SkimRecord.model_validate(data)
    except (OSError, ValueError, ValidationError, AttributeError):
        return None


def _replace(path: Path, write: Any) -> None:
    """Write a file through `write(stream)` under a temporary name, renamed at the end."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as stream:
            write(stream)
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def commit_skim(folder: Path, written: Path, record: SkimRecord) -> None:
    """Put a skim file written under a temporary name in place, then its record; remove the sample's
    files of another split into parts (superseded)."""
    os.chmod(written, 0o666 & ~current_umask())
    os.replace(written, folder / record.file)
    _replace(record_path(folder, record.file), lambda stream: stream.write(record.model_dump_json(indent=2)))
    for other in folder.glob(f"{record.sample}*.root"):
        found = PART.match(other.name)
        if found is None or found["sample"] != record.sample or other.name == record.file:
            continue
        n = int(found["n"]) if found["n"] else None
        if n != (record.part[1] if record.part else None):
            other.unlink(missing_ok=True)
            record_path(folder, other.name).unlink(missing_ok=True)


@contextmanager
def locked(folder: Path) -> Iterator[None]:
    """One writer of the folder's samples YAML at a time (batch jobs of one skim share the folder)."""
    with open(folder / f".{SAMPLES_FILE}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass
class SamplesReport:
    path: Path
    complete: list[str] = field(default_factory=list)
    waiting: dict[str, str] = field(default_factory=dict)  # sample -> why it is not in the YAML yet


def write_samples_yaml(folder: Path, config: LoadedConfig) -> SamplesReport:
    """`folder/samples.yaml` from the records in the folder, for the samples of `config` (under a lock)."""
    with locked(folder):
        records: dict[str, list[SkimRecord]] = {}
        for path in sorted(folder.glob("*.json")):
            record = read_record(path)
            if record is not None and (folder / record.file).is_file():
                records.setdefault(record.sample, []).append(record)
        report = SamplesReport(folder / SAMPLES_FILE)
        complete = {}
        for name in config.spec.samples:
            found = records.get(name)
            if not found:
                continue
            why = _incomplete(found)
            if why:
                report.waiting[name] = why
            else:
                complete[name] = sorted(found, key=lambda r: r.part or (0, 0))
                report.complete.append(name)
        document = _document(config, complete, folder)
        _replace(report.path, lambda stream: _yaml().dump(document, stream))
        return report


def _incomplete(records: list[SkimRecord]) -> str:
    """Why the parts of a sample do not make the whole yet ('' when they do)."""
    n = records[0].part[1] if records[0].part else 1
    have = {r.part[0] if r.part else 1 for r in records}
    missing = sorted(set(range(1, n + 1)) - have)
    if missing:
        return f"parts {', '.join(f'{i}/{n}' for i in missing)} missing"
    if len({r.origin.config_hash for r in records}) > 1:
        return "its parts come from different configurations: skim them again"
    return ""


def _yaml() -> YAML:
    yaml = round_trip_yaml()
    yaml.indent(mapping=2, sequence=2, offset=0)
    return yaml


def _document(config: LoadedConfig, samples: dict[str, list[SkimRecord]], folder: Path) -> CommentedMap:
    """The skim's samples as the configuration declares them, from the files that declare them (read
    again with their comments), with the skim's files, sums and origin; those files' eras and lumi.
    Lumi masks (the skim applied them; a run on it applies them again) are named from `folder`."""
    sources: dict[Path, CommentedMap] = {}
    document = CommentedMap()
    nodes = CommentedMap()
    for name, records in samples.items():
        source = config.source.file_of(("samples", name))
        if source not in sources:
            sources[source] = _yaml().load(source.read_text())
            if "lumi" in sources[source]:
                document["lumi"] = sources[source]["lumi"]
            if "eras" in sources[source]:
                for era in sources[source]["eras"].values():
                    _moved_mask(era, source.parent, folder)
                document.setdefault("eras", CommentedMap()).update(sources[source]["eras"])
        nodes[name] = _skimmed(sources[source]["samples"][name], records)
        _moved_mask(nodes[name], source.parent, folder)
    document["samples"] = nodes
    names = ", ".join(str(p) for p in sources) or "no sample yet"
    document.yaml_set_start_comment(
        f"Skim of analysis {config.spec.analysis!r}, written by run-analysis skim from {config.path}\n"
        f"(config sha256 {config.config_hash()[:16]}). Include this file instead of {names} to run on the\n"
        "skim. Made again with every skim: edit the configuration's samples, not this file."
    )
    return document


def _moved_mask(node: CommentedMap, declared_in: Path, folder: Path) -> None:
    """A node's `lumi_mask`, relative to the YAML that declared it, made relative to `folder`."""
    if isinstance(node, CommentedMap) and isinstance(node.get("lumi_mask"), str):
        node["lumi_mask"] = os.path.relpath((declared_in / node["lumi_mask"]).resolve(), folder.resolve())


def _skimmed(node: CommentedMap, records: list[SkimRecord]) -> CommentedMap:
    """A sample's YAML node (comments kept) with the skim's files, the original's sums and the origin."""
    first = records[0]
    for key in DROPPED:
        node.pop(key, None)
    files = CommentedSeq(r.file for r in records)
    files.fa.set_flow_style()
    node["files"] = files
    if isinstance(node.get("xsec"), str):
        node["xsec"] = first.xsec  # the value of the branch the YAML names: the skim may not keep it
    sum_weights = first.declared_sum_weights
    if sum_weights is None and first.sum_gen_weights is not None:
        sum_weights = sum(r.sum_gen_weights or 0.0 for r in records)
    if sum_weights is not None:
        node["sum_weights"] = sum_weights
    origin = first.origin.model_dump()
    origin["events"] = sum(r.origin.events for r in records)
    node["skim"] = _block(origin)
    return node


def _block(value: Any) -> Any:
    """Plain data as YAML nodes: mappings in block style, lists and innermost mappings on one line."""
    if isinstance(value, dict):
        out = CommentedMap((k, _block(v)) for k, v in value.items())
        if value and not any(isinstance(v, dict | list) for v in value.values()) and len(value) <= 3:
            out.fa.set_flow_style()
        return out
    if isinstance(value, list):
        seq = CommentedSeq(_block(v) for v in value)
        seq.fa.set_flow_style()
        return seq
    return value
