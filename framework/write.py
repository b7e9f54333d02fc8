"""Write stage: one UHI zip file per sample, written atomically, with provenance.

Reading needs only `hist` and `uhi`:

    import zipfile, hist, uhi.io.zip
    with zipfile.ZipFile("OUT/ttbar.hist.zip") as z:
        h = hist.Hist(uhi.io.zip.read(z, "ht"))
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uhi.io.zip

from .exceptions import ExecutionError
from .run import RunResult, SampleResult

SUFFIX = ".hist.zip"


@dataclass(frozen=True)
class Provenance:
    config: str
    config_hash: str
    cpp_hash: str
    versions: dict[str, str]
    command: list[str]
    threads: int
    systematics: list[str]

    def for_sample(self, result: SampleResult) -> dict[str, Any]:
        s = result.sample
        return {
            **self.__dict__,
            "sample": s.name,
            "process": s.process,
            "is_data": s.is_data,
            "era": s.era,
            "files": s.files,
            "events_read": result.events,
            "entry_limit": s.entry_limit,
            "xsec_pb": s.xsec,
            "lumi_inv_pb": s.lumi,
            "sum_gen_weights": result.sum_gen_weights,
            "normalisation": result.norm,
        }


def _write_zip_temp(path: Path, members: dict[str, Any], histograms: dict[str, Any]) -> Path:
    """Write beside `path` under a temporary name; the caller renames it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, h in histograms.items():
            uhi.io.zip.write(z, name, h)
        for name, data in members.items():
            z.writestr(name, json.dumps(data, indent=2))
    return Path(tmp)


def write_outputs(result: RunResult, provenance: Provenance, outdir: Path, summary: dict[str, Any]) -> list[Path]:
    """All files or none: temporaries are renamed only once every sample is written."""
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ExecutionError(f"cannot create output folder {outdir}: {err}") from err
    temporaries: dict[Path, Path] = {}
    try:
        for sample in result.samples:
            path = outdir / f"{sample.sample.name}{SUFFIX}"
            members = {"provenance.json": provenance.for_sample(sample), "cutflow.json": sample.cutflow}
            temporaries[path] = _write_zip_temp(path, members, sample.histograms)
        fd, tmp = tempfile.mkstemp(prefix=".run.json.", dir=outdir)
        with os.fdopen(fd, "w") as stream:
            json.dump({**summary, "outputs": [p.name for p in temporaries]}, stream, indent=2)
        temporaries[outdir / "run.json"] = Path(tmp)
    except BaseException:
        for tmp_path in temporaries.values():
            tmp_path.unlink(missing_ok=True)
        raise
    for final, tmp_path in temporaries.items():
        os.replace(tmp_path, final)
    return [p for p in temporaries if p.suffix == ".zip"]


def read_histograms(path: Path) -> dict[str, Any]:
    """All histograms of one output file, as `hist.Hist` (a convenience; hist + uhi suffice)."""
    import hist  # noqa: PLC0415

    with zipfile.ZipFile(path) as z:
        names = [n[: -len(".json")] for n in z.namelist() if n.endswith(".json") and "/" not in n]
        return {n: hist.Hist(uhi.io.zip.read(z, n)) for n in names if n not in ("provenance", "cutflow")}


def read_member(path: Path, member: str) -> Any:
    with zipfile.ZipFile(path) as z:
        return json.loads(z.read(member))
