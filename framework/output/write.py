"""Write stage: one UHI zip file per sample, written atomically, with provenance.

Reading needs only `hist` and `uhi`:

    import zipfile, hist, uhi.io.zip
    with zipfile.ZipFile("OUT/ttbar.hist.zip") as z:
        h = hist.Hist(uhi.io.zip.read(z, "ht"))
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import uhi.io.zip

from framework.engine.run import RunResult, SampleResult
from framework.errors import ExecutionError, InputError
from framework.output.format import CutflowRow, LumiMaskRecord, Provenance, RunProvenance, RunSummary

SUFFIX = ".hist.zip"


def output_name(sample: str, part: list[int] | tuple[int, int] | None = None) -> str:
    """`ttbar.hist.zip`, or `ttbar.part-2-of-8.hist.zip` for a batch part."""
    return f"{sample}.part-{part[0]}-of-{part[1]}{SUFFIX}" if part else f"{sample}{SUFFIX}"


def sample_provenance(run: RunProvenance, result: SampleResult) -> Provenance:
    """The provenance of one sample's output file: the run's, and what the sample read."""
    s = result.sample
    return Provenance(
        **run.model_dump(),
        sample=s.name,
        process=s.process,
        is_data=s.is_data,
        era=s.era,
        files=s.files,
        skipped_files=s.skipped_files,
        events_read=result.events,
        entry_limit=s.entry_limit,
        entry_ranges=s.ranges,
        file_identities={f: _identity(f) for f in s.files},
        xsec_pb=s.xsec,
        lumi_inv_pb=s.lumi,
        sum_gen_weights=result.sum_gen_weights,
        declared_sum_weights=s.sum_weights,
        normalisation=result.norm,
        normalised=run.part is None or s.is_data,
        lumi_mask=LumiMaskRecord(file=mask.file, sha256=mask.sha256) if (mask := result.lumi_mask) else None,
    )


def _identity(path: str) -> tuple[int, int] | None:
    """Size and modification time of a local input file (None for URLs or a file gone)."""
    try:
        stat = os.stat(path) if "://" not in path else None
    except OSError:
        return None
    return (stat.st_size, stat.st_mtime_ns) if stat else None


TEMPORARY = re.compile(r"^\..+\.(\d+)\.[^.]+\.tmp$")  # .<name>.<pid>.<random>.tmp


def temporary(path: Path) -> tuple[int, Path]:
    """A new temporary file beside `path`, named after it and this process (see `remove_stale`)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    return fd, Path(tmp)


def remove_stale(outdir: Path) -> None:
    """Remove the temporaries a killed run left in `outdir` (their process is gone)."""
    for path in outdir.glob(".*.tmp") if outdir.is_dir() else []:
        match = TEMPORARY.match(path.name)
        if match is None:
            continue
        try:
            os.kill(int(match.group(1)), 0)
        except ProcessLookupError:
            path.unlink(missing_ok=True)
        except OSError:
            pass  # another user's process: alive


def check_writable(outdir: Path) -> None:
    """Fail before the event loop, not after it, when the output folder cannot be written; creates
    nothing (a run that fails later leaves no folder behind)."""
    existing = outdir.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    problem = None
    if not existing.is_dir():
        problem = f"{existing} is not a folder"
    elif not os.access(existing, os.W_OK | os.X_OK):
        problem = f"{existing} is not writable"
    if problem:
        raise InputError(f"cannot write to the output folder {outdir}: {problem}", hint="choose another -o/--output")
    if outdir.is_dir():
        remove_stale(outdir)


def _write_zip_temp(path: Path, members: dict[str, Any], histograms: dict[str, Any]) -> Path:
    """Write beside `path` under a temporary name (removed if writing fails); the caller renames it."""
    fd, tmp = temporary(path)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
            for name, h in histograms.items():
                uhi.io.zip.write(z, name, h)
            for name, data in members.items():
                z.writestr(name, json.dumps(data, indent=2))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def write_files(
    outdir: Path, files: dict[str, tuple[dict[str, Any], dict[str, Any]]], summary: tuple[str, Any]
) -> list[Path]:
    """Write {file name: (JSON members, histograms)} and a summary JSON: all of them or none.

    Everything is written under temporary names first and renamed at the end, so a killed
    run never leaves a file that looks complete.
    """
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ExecutionError(f"cannot create output folder {outdir}: {err.strerror or err}") from None
    temporaries: dict[Path, Path] = {}
    try:
        for name, (members, histograms) in files.items():
            temporaries[outdir / name] = _write_zip_temp(outdir / name, members, histograms)
        summary_name, content = summary
        fd, tmp = temporary(outdir / summary_name)
        temporaries[outdir / summary_name] = tmp
        with os.fdopen(fd, "w") as stream:
            json.dump(content, stream, indent=2)
        mode = 0o666 & ~current_umask()
        for tmp_path in temporaries.values():
            os.chmod(tmp_path, mode)
    except BaseException as err:
        for tmp_path in temporaries.values():
            tmp_path.unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise ExecutionError(
                f"cannot write the outputs in {outdir}: {err.strerror or err}; nothing was written",
                hint="free some space or choose another -o/--output",
            ) from None
        raise
    for final, tmp_path in temporaries.items():
        os.replace(tmp_path, final)
    return [p for p in temporaries if p.name.endswith(SUFFIX)]


def current_umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def sample_members(provenance: Provenance, cutflow: list[CutflowRow]) -> dict[str, Any]:
    """The JSON members of an output file, as written."""
    return {"provenance.json": provenance.model_dump(), "cutflow.json": [row.model_dump() for row in cutflow]}


def write_outputs(result: RunResult, provenance: RunProvenance, outdir: Path, summary: dict[str, Any]) -> list[Path]:
    """One file per sample, and the run's summary: `summary` holds the fields of `RunSummary` but
    `outputs` (the files written here)."""
    files = {
        output_name(s.sample.name, provenance.part): (
            sample_members(sample_provenance(provenance, s), s.cutflow),
            s.histograms,
        )
        for s in result.samples
    }
    run_summary = RunSummary(**summary, outputs=list(files))
    return write_files(
        outdir,
        files,
        (summary_name(provenance.part, [s.sample.name for s in result.samples]), run_summary.model_dump()),
    )


def summary_name(part: tuple[int, int] | None, samples: list[str]) -> str:
    """`run.json`; for a batch part, named after its first sample too: jobs of other samples (or
    eras) with the same part number write into the same folder."""
    if part is None:
        return "run.json"
    first = min(samples, default="none")
    more = f"+{len(samples) - 1}" if len(samples) > 1 else ""
    return f"run.{first}{more}.part-{part[0]}-of-{part[1]}.json"


def read_histograms(path: Path) -> dict[str, Any]:
    """All histograms of one output file, as `hist.Hist` (a convenience; hist + uhi suffice)."""
    import hist

    with zipfile.ZipFile(path) as z:
        names = [n[: -len(".json")] for n in z.namelist() if n.endswith(".json") and "/" not in n]
        return {n: hist.Hist(uhi.io.zip.read(z, n)) for n in names if n not in ("provenance", "cutflow")}


def read_member(path: Path, member: str) -> Any:
    with zipfile.ZipFile(path) as z:
        return json.loads(z.read(member))
