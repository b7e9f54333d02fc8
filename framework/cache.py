"""What is kept between runs, under one folder: `$RDF_ANALYSIS_CACHE` (default
`~/.cache/rdf-analysis`).

- `inputs/`: per input file, its entries, format, column names and types, first-event array
  lengths; keyed by path, size, modification time (URLs: size and ETag).
- `compiled/`: graph steps and the session library compiled to shared libraries; keyed by the
  C++ source, the headers it includes, ROOT version, compiler and flags.
- `symbols/`: which names the `cpp:` headers declare; keyed by the headers' contents and ROOT version.
- `parquet/`: Parquet files converted to ROOT files; keyed by path, size, modification time or ETag.

Every entry is written under a temporary name and renamed into place, so a killed run
leaves nothing half-written and two runs at once never see each other's partial files;
nothing takes a lock to read. Each JSON entry carries the SHA-256 of its content: an entry
that fails the check (a torn or edited file) is deleted and rebuilt, never used.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV = "RDF_ANALYSIS_CACHE"
AREAS = ("inputs", "compiled", "symbols", "parquet")


def root_folder() -> Path:
    return Path(os.environ.get(ENV) or Path.home() / ".cache" / "rdf-analysis")


def folder(area: str) -> Path:
    return root_folder() / area


def key_of(*parts: Any) -> str:
    """A stable hex key for JSON-serialisable parts."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def entry_path(area: str, key: str, suffix: str = ".json") -> Path:
    return folder(area) / key[:2] / f"{key}{suffix}"


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def write_entry(path: Path, payload: dict[str, Any]) -> None:
    write_atomic(path, json.dumps({"sha256": _digest(payload), "entry": payload}, sort_keys=True).encode())


def read_entry(path: Path) -> dict[str, Any] | None:
    """The entry at `path`, or None when it is missing; a damaged entry is deleted."""
    try:
        wrapper = json.loads(path.read_bytes())
        payload = wrapper["entry"]
        if wrapper["sha256"] == _digest(payload):
            return payload
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        pass
    path.unlink(missing_ok=True)
    return None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class AreaInfo:
    area: str
    files: int
    bytes: int

    def line(self) -> str:
        return f"  {self.area:<9} {self.files:>6} files  {self.bytes / 2**20:9.1f} MiB"


def info() -> list[AreaInfo]:
    out = []
    for area in AREAS:
        files = [p for p in folder(area).rglob("*") if p.is_file()] if folder(area).is_dir() else []
        out.append(AreaInfo(area, len(files), sum(p.stat().st_size for p in files)))
    return out


def clear(areas: tuple[str, ...] = AREAS) -> int:
    """Remove the given areas; returns the bytes freed. Safe while runs use the cache: a run
    that loaded a library keeps it mapped, and a missing entry is only a miss."""
    freed = 0
    for area in areas:
        path = folder(area)
        if path.is_dir():
            freed += sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
            shutil.rmtree(path, ignore_errors=True)
    return freed
